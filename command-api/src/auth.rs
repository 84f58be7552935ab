//! Who is calling: the caller a request's token names, the access rule of every route
//! (`access`), and the order scope. Tokens are `tokens`', password hashing `passwords`'.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use domain::{Actor, Role};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

mod access;

pub use self::access::*;
pub use crate::passwords::*;
pub use crate::tokens::*;

/// Customers and workers reach only their own orders: under `/api/v1/orders/{order_id}`, an
/// order that is not theirs answers 404 exactly as a missing one does, before any rule of the
/// order's state can say (with a 409 or a 403) that it exists and what state it is in. A
/// worker's order is one given to them or naming them; grabbing is open to any worker, and the
/// order's own rules answer it.
pub async fn order_scope(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let Some(rest) = matched.strip_prefix("/api/v1/orders/{order_id}") else {
        return next.run(request).await;
    };
    let actor = request
        .extensions()
        .get::<Caller>()
        .and_then(|caller| caller.0)
        .filter(|actor| matches!(actor.role, Role::Customer | Role::Worker));
    let order_id = request
        .uri()
        .path()
        .split('/')
        .nth(4)
        .and_then(|raw| raw.parse::<Uuid>().ok());
    let (Some(actor), Some(order_id)) = (actor, order_id) else {
        return next.run(request).await;
    };
    if actor.role == Role::Worker && rest == "/grab" {
        return next.run(request).await;
    }
    let order = match state.orders.load(order_id).await {
        Ok((order, _)) => order,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let theirs = match actor.role {
        Role::Customer => order.customer_id == Some(actor.id),
        _ => order.worker_id == Some(actor.id) || order.preferred_worker == Some(actor.id),
    };
    if !theirs {
        return ApiError::not_found("订单", "order").into_response();
    }
    next.run(request).await
}

/// The caller of the current request, when there is one.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Option<Actor>);

/// Checks the bearer token against the route's rule before the handler runs. A route missing
/// from the table is refused: access must be stated, never assumed.
pub async fn authorize(
    State((state, routes)): State<(AppState, &'static [RouteSpec])>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(matched) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
    else {
        return ApiError::not_found("路径", "route").into_response();
    };
    // axum answers HEAD with the GET handler, so HEAD follows GET's rule.
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let Some(spec) = route_spec(routes, &method, &matched) else {
        tracing::error!(route = matched, "route has no access rule");
        return ApiError::Internal(anyhow::anyhow!("route {matched} has no access rule"))
            .into_response();
    };
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let verified = bearer.and_then(|token| state.token_key.verify(token.trim(), Utc::now()));
    // A valid signature is not enough: the session may have been revoked since.
    let verified = match verified {
        Some(verified) => match session_is_live(&state, verified).await {
            Ok(true) => Some(verified),
            Ok(false) => None,
            Err(error) => return ApiError::from(error).into_response(),
        },
        None => None,
    };
    if let Access::Roles(roles) = spec.access {
        let Some(verified) = verified else {
            return ApiError::Unauthenticated.into_response();
        };
        if !roles.contains(&verified.actor.role) {
            return ApiError::forbidden().into_response();
        }
    }
    if let Some(verified) = verified {
        tracing::Span::current().record("actor", tracing::field::display(verified.actor.id));
    }
    let actor = verified.map(|verified| verified.actor);
    if let Some(verified) = verified {
        request.extensions_mut().insert(verified);
    }
    request.extensions_mut().insert(Caller(actor));
    next.run(request).await
}

/// Whether the token's session is still live: served from memory while this process hears
/// every revocation (`application::fresh`).
pub(crate) async fn session_is_live(state: &AppState, verified: Verified) -> sqlx::Result<bool> {
    state
        .services
        .session_is_live(verified.session_id, verified.actor.id)
        .await
}

impl Caller {
    /// The signed-in actor; routes with a role rule always have one.
    pub fn actor(&self) -> Result<Actor, ApiError> {
        self.0.ok_or(ApiError::Unauthenticated)
    }
}

/// The verified token of a signed-in caller, with its session; refused with 401 otherwise.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Verified {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Verified>()
            .copied()
            .ok_or(ApiError::Unauthenticated)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .copied()
            .unwrap_or(Caller(None)))
    }
}
