//! `Idempotency-Key` on every mutating route: the first response to a key is stored, and a
//! retry with the same key and body gets that response back without running the command again.
//!
//! One transaction per request (`application::commands::Unit`): the handler's commands append
//! their events to it, and at the end the key's claim and the answer go in with one statement
//! before its one commit. A key with a record is answered from it without running the handler.
//! Two first attempts with one key may both run; the second then waits on the first's rows
//! (the same streams, or the claim), is rolled back and answers with the first's answer. A 5xx
//! (or a retryable refusal) rolls everything back, so a retry after a failure tries again. When
//! the handler reaches outside the database part-way (`commands::flush`), the claim and what
//! came before commit then, and the answer is stored after, as its own statement.

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::positions;
use crate::state::AppState;
use application::commands::{Answer, Claim, Finished, Unit, UnitEnd};
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

    // A key claimed already is answered from its record, without running the handler again.
    if let Some(answered) = recorded(&state, &caller, &key, &request_hash).await? {
        return answered;
    }
    let claim = Claim {
        caller,
        key,
        method,
        route,
        request_hash,
    };
    // First lazily: a request that writes one command commits it with its claim in one
    // statement. Should that command's decision no longer hold by then, the request runs
    // again in a unit begun at once, as every request did before.
    let again = (next.clone(), parts.clone(), body.clone());
    if let Ran::Answered(response) = run_in_unit(&state, &claim, next, parts, body, true).await? {
        return Ok(response);
    }
    let (next, parts, body) = again;
    match run_in_unit(&state, &claim, next, parts, body, false).await? {
        Ran::Answered(response) => Ok(response),
        Ran::Again => Err(ApiError::ConcurrentModification),
    }
}

/// What running a request in a unit came to.
enum Ran {
    Answered(Response),
    /// A lazy unit's command no longer held: nothing of it stands; run it again, eagerly.
    Again,
}

async fn run_in_unit(
    state: &AppState,
    claim: &Claim,
    next: Next,
    parts: axum::http::request::Parts,
    body: Bytes,
    lazy: bool,
) -> Result<Ran, ApiError> {
    let unit = if lazy {
        Unit::lazy(state.units.clone(), claim.clone())
    } else {
        Unit::new(state.units.begin().await?, claim.clone())
    };
    let response = unit
        .run(next.run(Request::from_parts(parts, Body::from(body))))
        .await;
    let (mut parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await;
    let passing = parts.status.is_server_error()
        || parts.extensions.get::<crate::error::Retryable>().is_some();
    let end = unit.end().await;
    let body: Bytes = match body {
        Ok(bytes) => bytes,
        Err(error) => {
            if let UnitEnd::Flushed = end {
                release(state, claim).await;
            }
            return Err(ApiError::Internal(anyhow::anyhow!(
                "reading a response body: {error}"
            )));
        }
    };
    let answer = answer(&parts, &body);
    match end {
        UnitEnd::Surprised => return Ok(Ran::Again),
        // Nothing was written: the answer stands only if no one else has answered the key.
        UnitEnd::Lazy(_) if passing => {
            return answer_of_another(state, claim, parts, body)
                .await
                .map(Ran::Answered);
        }
        UnitEnd::Lazy(waiting) => match waiting.finish(claim, &answer).await? {
            Finished::Committed(landed) => {
                unit.committed();
                if let Some(landed) = landed {
                    positions::stamp(&mut parts.headers, landed);
                }
            }
            Finished::Taken => return replay(state, claim).await.map(Ran::Answered),
            Finished::Surprised => return Ok(Ran::Again),
        },
        // Nothing of it may stand: the whole transaction goes. A concurrent first attempt
        // with the same key may be why (it wrote the same streams first): then its answer is
        // this one's too.
        UnitEnd::Open(transaction) if passing => {
            transaction.rollback().await?;
            return answer_of_another(state, claim, parts, body)
                .await
                .map(Ran::Answered);
        }
        UnitEnd::Open(mut transaction) => {
            // The claim and the answer in one statement, then the one commit. Should either
            // fail, the caller hears so: nothing was saved.
            if !claim.take(&mut transaction, Some(&answer)).await? {
                transaction.rollback().await?;
                return replay(state, claim).await.map(Ran::Answered);
            }
            transaction.commit().await?;
            unit.committed();
        }
        UnitEnd::Flushed if passing => release(state, claim).await,
        UnitEnd::Flushed => {
            if let Err(error) = claim.answer(&state.units, &answer).await {
                // The command itself succeeded; only its replay copy is missing. Say so loudly.
                tracing::error!(error = %error, "could not store an idempotent response");
            }
        }
        UnitEnd::Taken => return replay(state, claim).await.map(Ran::Answered),
        // A statement failed inside the transaction, so the database rolled it all back: the
        // handler's answer cannot stand if it says something was done.
        UnitEnd::Failed if passing || parts.status.is_client_error() => {
            return answer_of_another(state, claim, parts, body)
                .await
                .map(Ran::Answered);
        }
        UnitEnd::Failed => return Err(ApiError::ConcurrentModification),
    }
    Ok(Ran::Answered(Response::from_parts(parts, Body::from(body))))
}

fn answer<'a>(parts: &axum::http::response::Parts, body: &'a Bytes) -> Answer<'a> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    Answer {
        status: parts.status.as_u16() as i16,
        body: body.as_ref(),
        content_type: header(header::CONTENT_TYPE.as_str()),
        location: header(header::LOCATION.as_str()),
        log_position: header(crate::positions::POSITION_HEADER),
    }
}

/// A failed request's own answer, unless another request with the same key has answered by now.
async fn answer_of_another(
    state: &AppState,
    claim: &Claim,
    parts: axum::http::response::Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    match recorded(state, &claim.caller, &claim.key, &claim.request_hash).await? {
        Some(answered) => answered,
        None => Ok(Response::from_parts(parts, Body::from(body))),
    }
}

/// The answer to a key someone else holds: theirs, or that it is still being worked on.
async fn replay(state: &AppState, claim: &Claim) -> Result<Response, ApiError> {
    recorded(state, &claim.caller, &claim.key, &claim.request_hash)
        .await?
        // Released between their claim and this read: their attempt failed.
        .unwrap_or(Err(ApiError::IdempotencyInProgress))
}

/// What the record of a key says, when there is one: its stored answer, or a refusal (still in
/// progress, or sent before with another body).
async fn recorded(
    state: &AppState,
    caller: &str,
    key: &str,
    request_hash: &[u8],
) -> Result<Option<Result<Response, ApiError>>, ApiError> {
    let stored: Option<StoredResponse> = sqlx::query_as(
        "SELECT request_hash, status, response_body, content_type, location, log_position FROM idempotency WHERE caller = $1 AND key = $2",
    )
    .bind(caller)
    .bind(key)
    .fetch_optional(&state.pool)
    .await?;
    Ok(match stored {
        None => None,
        Some(stored) if stored.request_hash != request_hash => {
            Some(Err(ApiError::IdempotencyKeyReused))
        }
        Some(StoredResponse { status: None, .. }) => Some(Err(ApiError::IdempotencyInProgress)),
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
            Some(Ok(response))
        }
    })
}

async fn release(state: &AppState, claim: &Claim) {
    if let Err(error) = claim.release(&state.units).await {
        tracing::warn!(error = %error, "could not release an idempotency key");
    }
}
