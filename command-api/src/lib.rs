//! The command side over HTTP: axum routes that turn requests into domain commands, append
//! their events through `application::commands` (cqrs-es aggregates, postgres-es's table), and
//! answer queries from the read models.
//! Also the `anjia` binary's subcommands: serving, migrating, rebuilding and benchmarking.
//!
//! Only this crate knows HTTP and JSON DTOs.

pub mod auth;
pub mod client_address;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod language;
pub mod logs;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod passwords;
pub mod positions;
pub mod routes;
pub mod schemas;
pub mod state;
pub mod text;
pub mod tokens;
pub mod warehouse;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, LoggedCause};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application. Tests call this same function.
pub fn app(state: AppState) -> Router {
    let (documented, _) = openapi::routes().split_for_parts();
    let routes = documented
        .merge(signaling::router(state.signaling.clone()))
        // Innermost first: the idempotency check runs after authorisation has named the caller.
        // A panicking handler becomes a 500 problem here, inside the idempotency layer, so
        // its key is released rather than left claimed.
        .route_layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                ApiError::Internal(anyhow::anyhow!("a handler panicked")).into_response()
            },
        ))
        // Inside the idempotency layer, so a replayed answer carries its position too.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            positions::track,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::replay_or_run,
        ))
        // After authorisation has named the caller: someone else's order is not found.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::order_scope,
        ))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), openapi::ROUTES.as_slice()),
            auth::authorize,
        ))
        .with_state(state.clone());
    routes
        .merge(routes::web::router(state.web_dir.clone()))
        .fallback(|| async { ApiError::not_found("路径", "route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(idempotency::BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client_address::settle,
        ))
        .layer(middleware::from_fn(log_failures))
        .layer(middleware::from_fn(metrics::track))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let request_id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id, actor = tracing::field::Empty)
            }),
        )
        // Outermost: every problem, a fallback's or a rejected body's too, is written in the
        // language the request asks for.
        .layer(language::NegotiateLayer)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Logs each server error once, inside the request's span, with its hidden cause.
async fn log_failures(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(LoggedCause(cause)) = response.extensions().get::<LoggedCause>() {
        tracing::error!(status = response.status().as_u16(), cause, "request failed");
    }
    response.into_response()
}
