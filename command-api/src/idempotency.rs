//! `Idempotency-Key` on every mutating route: the first response to a key is stored, and a
//! retry with the same key and body gets that response back without running the command again.
//!
//! One transaction per request (`application::commands::Unit`): the key is claimed in it before
//! the handler runs, the handler's commands append their events to it, and the answer is stored
//! in it before its one commit. A concurrent retry's claim waits on the first one's row, then
//! replays the stored answer. A 5xx (or a retryable refusal) rolls everything back, so a retry
//! after a failure tries again. When the handler reaches outside the database part-way
//! (`commands::flush`), the claim and what came before commit then, and the answer is stored
//! after, as its own statement.

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use application::commands::{Unit, UnitEnd};
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

    // Claim the key, in the request's transaction. A claim older than five minutes with no
    // response is taken to be abandoned (its process died after a flush); the command ids
    // derived from the key keep a re-run safe.
    let mut transaction = state.units.begin().await?;
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
    .fetch_optional(&mut *transaction)
    .await?
    .is_some();

    if !claimed {
        transaction.rollback().await?;
        return replay(&state, &caller, &key, &request_hash).await;
    }

    let unit = Unit::new(transaction);
    let response = unit
        .run(next.run(Request::from_parts(parts, Body::from(body))))
        .await;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await;
    let passing = parts.status.is_server_error()
        || parts.extensions.get::<crate::error::Retryable>().is_some();
    let end = unit.end().await;
    let body: Bytes = match body {
        Ok(bytes) => bytes,
        Err(error) => {
            if let UnitEnd::Flushed = end {
                release(&state, &caller, &key).await;
            }
            return Err(ApiError::Internal(anyhow::anyhow!(
                "reading a response body: {error}"
            )));
        }
    };
    let stored = Stored::from_parts(&parts, &body);
    match end {
        // Nothing of it may stand: the whole transaction goes, its claim with it.
        UnitEnd::Open(transaction) if passing => transaction.rollback().await?,
        UnitEnd::Open(mut transaction) => {
            stored
                .write(&caller, &key)
                .execute(&mut *transaction)
                .await?;
            // The one commit. Should it fail, the caller hears so: nothing was saved.
            transaction.commit().await?;
        }
        UnitEnd::Flushed if passing => release(&state, &caller, &key).await,
        UnitEnd::Flushed => {
            if let Err(error) = stored.write(&caller, &key).execute(&state.units).await {
                // The command itself succeeded; only its replay copy is missing. Say so loudly.
                tracing::error!(error = %error, "could not store an idempotent response");
            }
        }
        // A statement failed inside the transaction, so the database rolled it all back: the
        // handler's answer cannot stand if it says something was done.
        UnitEnd::Failed if passing || parts.status.is_client_error() => {}
        UnitEnd::Failed => return Err(ApiError::ConcurrentModification),
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// What is kept of an answer for its replays.
struct Stored<'a> {
    status: i16,
    body: &'a [u8],
    content_type: Option<String>,
    location: Option<String>,
    log_position: Option<String>,
}

impl<'a> Stored<'a> {
    fn from_parts(parts: &axum::http::response::Parts, body: &'a Bytes) -> Self {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Stored {
            status: parts.status.as_u16() as i16,
            body: body.as_ref(),
            content_type: header(header::CONTENT_TYPE.as_str()),
            location: header(header::LOCATION.as_str()),
            log_position: header(crate::positions::POSITION_HEADER),
        }
    }

    fn write(
        &self,
        caller: &'a str,
        key: &'a str,
    ) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(
            "UPDATE idempotency SET status = $3, response_body = $4, content_type = $5, location = $6,
                    log_position = $7, completed_at = now()
              WHERE caller = $1 AND key = $2",
        )
        .bind(caller)
        .bind(key)
        .bind(self.status)
        .bind(self.body)
        .bind(self.content_type.clone())
        .bind(self.location.clone())
        .bind(self.log_position.clone())
    }
}

/// The answer to a key someone else claimed: theirs, once stored.
async fn replay(
    state: &AppState,
    caller: &str,
    key: &str,
    request_hash: &[u8],
) -> Result<Response, ApiError> {
    let stored: Option<StoredResponse> = sqlx::query_as(
        "SELECT request_hash, status, response_body, content_type, location, log_position FROM idempotency WHERE caller = $1 AND key = $2",
    )
    .bind(caller)
    .bind(key)
    .fetch_optional(&state.pool)
    .await?;
    match stored {
        // Released between our claim attempt and this read: the first attempt failed.
        None => Err(ApiError::IdempotencyInProgress),
        Some(stored) if stored.request_hash != request_hash => Err(ApiError::IdempotencyKeyReused),
        Some(StoredResponse { status: None, .. }) => Err(ApiError::IdempotencyInProgress),
        Some(StoredResponse {
            status: Some(status),
            response_body,
            content_type,
            location,
            log_position,
            ..
        }) => {
            let mut response = Response::new(Body::from(response_body.unwrap_or_default()));
            *response.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
            for (name, value) in [
                (header::CONTENT_TYPE, content_type),
                (header::LOCATION, location),
                (
                    header::HeaderName::from_static(crate::positions::POSITION_HEADER),
                    log_position,
                ),
            ] {
                if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
    }
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
