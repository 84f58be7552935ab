//! `Idempotency-Key` on every mutating route: the first response to a key is stored, and a
//! retry with the same key and body gets that response back without running the command again.
//!
//! The key is claimed before the handler runs, so two concurrent retries cannot both execute.
//! A 5xx is not stored (the key is released), so a retry after a failure tries again.

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use domain::message::Text;

pub const HEADER: &str = "idempotency-key";

/// Routes whose responses hold access or refresh tokens.
const CREDENTIAL_ROUTES: &[&str] = &[
    "/api/v1/sessions",
    "/api/v1/sessions/refresh",
    "/api/v1/sessions/code",
    "/api/v1/oauth/wechat/callback",
];

/// The largest request body any route accepts.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The caller's key, as handlers see it (it is also written into event metadata).
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(IdempotencyKey(
            parts
                .headers
                .get(HEADER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        ))
    }
}

fn parse_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest(Text::new("idempotency.key-not-ascii")))?
        .trim();
    if key.is_empty() || key.len() > 200 {
        return Err(ApiError::BadRequest(Text::new("idempotency.key-length")));
    }
    Ok(Some(key.to_owned()))
}

/// The first response to a key, as stored.
#[derive(sqlx::FromRow)]
struct StoredResponse {
    request_hash: Vec<u8>,
    status: Option<i16>,
    response_body: Option<Vec<u8>>,
    content_type: Option<String>,
    location: Option<String>,
    log_position: Option<String>,
}

pub async fn replay_or_run(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match replay_or_run_inner(state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn replay_or_run_inner(
    state: AppState,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let key = parse_key(&request)?;
    let route_issues_credentials = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| CREDENTIAL_ROUTES.contains(&path.as_str()));
    // Responses that carry tokens are never stored: the tokens would then sit in plain text.
    let (Some(key), true, false) = (key, mutating, route_issues_credentials) else {
        return Ok(next.run(request).await);
    };
    // Anonymous callers are told apart by address, so one cannot block another's key.
    let caller = match request
        .extensions()
        .get::<Caller>()
        .and_then(|caller| caller.0)
    {
        Some(actor) => actor.id.to_string(),
        None => {
            let address = request
                .extensions()
                .get::<crate::client_address::ClientAddress>()
                .map(|address| address.0.to_string())
                .unwrap_or_default();
            format!("anonymous:{address}")
        }
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let method = request.method().to_string();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(parts.uri.path().as_bytes());
    hasher.update([0]);
    hasher.update(&body);
    let request_hash = hasher.finalize().to_vec();

    // Claim the key. A claim older than five minutes with no response is taken to be abandoned
    // (its process died mid-request); the command ids derived from the key keep a re-run safe.
    let claimed = sqlx::query(
        "INSERT INTO idempotency (caller, key, method, route, request_hash) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (caller, key) DO UPDATE SET created_at = now()
            WHERE idempotency.status IS NULL AND idempotency.created_at < now() - interval '5 minutes'
              AND idempotency.request_hash = EXCLUDED.request_hash
         RETURNING 1",
    )
    .bind(&caller)
    .bind(&key)
    .bind(&method)
    .bind(&route)
    .bind(&request_hash)
    .fetch_optional(&state.pool)
    .await?
    .is_some();

    if !claimed {
        let stored: Option<StoredResponse> = sqlx::query_as(
            "SELECT request_hash, status, response_body, content_type, location, log_position FROM idempotency WHERE caller = $1 AND key = $2",
        )
        .bind(&caller)
        .bind(&key)
        .fetch_optional(&state.pool)
        .await?;
        return match stored {
            // Released between our claim attempt and this read: the first attempt failed.
            None => Err(ApiError::IdempotencyInProgress),
            Some(stored) if stored.request_hash != request_hash => {
                Err(ApiError::IdempotencyKeyReused)
            }
            Some(StoredResponse { status: None, .. }) => Err(ApiError::IdempotencyInProgress),
            Some(StoredResponse {
                status: Some(status),
                response_body,
                content_type,
                location,
                log_position,
                ..
            }) => {
                let location = location.and_then(|value| HeaderValue::from_str(&value).ok());
                let mut response = Response::new(Body::from(response_body.unwrap_or_default()));
                *response.status_mut() =
                    StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
                if let Some(content_type) =
                    content_type.and_then(|value| HeaderValue::from_str(&value).ok())
                {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, content_type);
                }
                if let Some(location) = location {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                if let Some(position) =
                    log_position.and_then(|value| HeaderValue::from_str(&value).ok())
                {
                    response
                        .headers_mut()
                        .insert(crate::positions::POSITION_HEADER, position);
                }
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                Ok(response)
            }
        };
    }

    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let (parts, body) = response.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            release(&state, &caller, &key).await;
            return Err(ApiError::Internal(anyhow::anyhow!(
                "reading a response body: {error}"
            )));
        }
    };
    if parts.status.is_server_error() || parts.extensions.get::<crate::error::Retryable>().is_some()
    {
        release(&state, &caller, &key).await;
    } else {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let location = parts
            .headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let log_position = parts
            .headers
            .get(crate::positions::POSITION_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let stored = sqlx::query(
            "UPDATE idempotency SET status = $3, response_body = $4, content_type = $5, location = $6,
                    log_position = $7, completed_at = now()
              WHERE caller = $1 AND key = $2",
        )
        .bind(&caller)
        .bind(&key)
        .bind(parts.status.as_u16() as i16)
        .bind(body.as_ref())
        .bind(content_type)
        .bind(location)
        .bind(log_position)
        .execute(&state.pool)
        .await;
        if let Err(error) = stored {
            // The command itself succeeded; only its replay copy is missing. Say so loudly.
            tracing::error!(error = %error, "could not store an idempotent response");
        }
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

async fn release(state: &AppState, caller: &str, key: &str) {
    let released =
        sqlx::query("DELETE FROM idempotency WHERE caller = $1 AND key = $2 AND status IS NULL")
            .bind(caller)
            .bind(key)
            .execute(&state.pool)
            .await;
    if let Err(error) = released {
        tracing::warn!(error = %error, "could not release an idempotency key");
    }
}
