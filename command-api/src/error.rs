//! The one error type of the HTTP layer, rendered as `application/problem+json` (RFC 9457).
//!
//! A caller can tell a refused command (4xx, with the domain's reason) from a failure to record
//! it (5xx, opaque: the details go to the log, keyed by the request id).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cqrs_es::AggregateError;
use domain::message::{Lang, Text};
use serde::Serialize;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub enum ApiError {
    /// 400: the request cannot be read (malformed JSON, a bad header).
    BadRequest(Text),
    /// 401: no valid access token.
    Unauthenticated,
    /// 401: the login or password is wrong (which one is not said).
    BadCredentials,
    /// 403: the caller's role or identity may not do this.
    Forbidden(Text),
    /// 404: no such resource.
    NotFound(Text),
    /// 405: the path exists but not with this method.
    MethodNotAllowed,
    /// 409: the command does not fit the current state.
    IllegalState(Text),
    /// 409: another request changed the same thing first; nothing of this one was written.
    ConcurrentModification,
    /// 409: a uniqueness rule (for example a login already taken).
    Conflict(Text),
    /// 409: a request with this Idempotency-Key is still being processed.
    IdempotencyInProgress,
    /// 429: too many failed attempts; try again after the given number of seconds.
    LockedOut { retry_after_seconds: i64 },
    /// 429: the same thing was asked for too soon after the last time.
    TooFrequent {
        detail: Text,
        retry_after_seconds: i64,
    },
    /// 429: one-time codes are sent at most once a minute and a few times an hour.
    CodeSendLimited {
        detail: Text,
        retry_after_seconds: i64,
    },
    /// 429: the server has as much of this kind of work as it takes on at once.
    Busy {
        detail: Text,
        retry_after_seconds: i64,
    },
    /// 410: a live stream asked to resume from further back than is kept.
    ResumeTooOld,
    /// 413: the body is larger than allowed.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 422: well-formed but invalid input.
    Invalid(Text),
    /// 422: one field of the request is invalid; the problem names it in `field`.
    InvalidField { field: String, detail: Text },
    /// 422: a one-time code that is wrong, spent or expired.
    BadCode,
    /// 422: an Idempotency-Key reused for a different request.
    IdempotencyKeyReused,
    /// 422: an analyst's query that may not run, or was stopped (time-out, memory).
    SqlRefused(analytics::sql::Refusal),
    /// 503: the views a query asked for (`Anjia-Min-Position`) have not caught up with that
    /// write within the wait; retry after the given number of seconds.
    CatchingUp { retry_after_seconds: i64 },
    /// 503: the database cannot be reached.
    Unavailable(anyhow::Error),
    /// 503: the analytics warehouse has not been loaded yet.
    WarehouseNotLoaded,
    /// 500: anything else. The cause is logged, never sent.
    Internal(anyhow::Error),
}

/// In English, as logs read it: the words of the problem it answers.
impl std::fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.text(), formatter)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::IllegalState(_)
            | ApiError::ConcurrentModification
            | ApiError::Conflict(_)
            | ApiError::IdempotencyInProgress => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::ResumeTooOld => StatusCode::GONE,
            ApiError::LockedOut { .. }
            | ApiError::TooFrequent { .. }
            | ApiError::Busy { .. }
            | ApiError::CodeSendLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_)
            | ApiError::InvalidField { .. }
            | ApiError::IdempotencyKeyReused
            | ApiError::BadCode
            | ApiError::SqlRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_)
            | ApiError::CatchingUp { .. }
            | ApiError::WarehouseNotLoaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable problem type: clients switch on it, so it never changes.
    pub fn problem_type(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "/problems/bad-request",
            ApiError::Unauthenticated => "/problems/unauthenticated",
            ApiError::BadCredentials => "/problems/bad-credentials",
            ApiError::Forbidden(_) => "/problems/forbidden",
            ApiError::NotFound(_) => "/problems/not-found",
            ApiError::MethodNotAllowed => "/problems/method-not-allowed",
            ApiError::IllegalState(_) => "/problems/illegal-state",
            ApiError::ConcurrentModification => "/problems/concurrent-modification",
            ApiError::Conflict(_) => "/problems/conflict",
            ApiError::IdempotencyInProgress => "/problems/idempotency-in-progress",
            ApiError::PayloadTooLarge => "/problems/payload-too-large",
            ApiError::ResumeTooOld => "/problems/resume-too-old",
            ApiError::LockedOut { .. } => "/problems/locked-out",
            ApiError::TooFrequent { .. } => "/problems/too-frequent",
            ApiError::Busy { .. } => "/problems/busy",
            ApiError::CodeSendLimited { .. } => "/problems/code-send-limited",
            ApiError::UnsupportedMediaType => "/problems/unsupported-media-type",
            ApiError::Invalid(_) | ApiError::InvalidField { .. } => "/problems/invalid-input",
            ApiError::IdempotencyKeyReused => "/problems/idempotency-key-reused",
            ApiError::BadCode => "/problems/bad-code",
            ApiError::SqlRefused(refusal) => refusal.problem(),
            ApiError::CatchingUp { .. } => "/problems/catching-up",
            ApiError::Unavailable(_) => "/problems/unavailable",
            ApiError::WarehouseNotLoaded => "/problems/warehouse-not-loaded",
            ApiError::Internal(_) => "/problems/internal",
        }
    }

    /// What went wrong, by its code in the message table and the values it names.
    pub fn text(&self) -> Text {
        match self {
            ApiError::BadRequest(text)
            | ApiError::Forbidden(text)
            | ApiError::NotFound(text)
            | ApiError::IllegalState(text)
            | ApiError::Conflict(text)
            | ApiError::Invalid(text)
            | ApiError::TooFrequent { detail: text, .. }
            | ApiError::CodeSendLimited { detail: text, .. }
            | ApiError::Busy { detail: text, .. } => text.clone(),
            ApiError::InvalidField { field, detail } => Text::new("invalid-field")
                .with("field", field)
                .nested("detail", detail.clone()),
            ApiError::LockedOut {
                retry_after_seconds,
            } => Text::new("locked-out").with("seconds", retry_after_seconds),
            ApiError::SqlRefused(refusal) => sql_text(refusal),
            ApiError::Unauthenticated => Text::new("unauthenticated"),
            ApiError::BadCredentials => Text::new("bad-credentials"),
            ApiError::MethodNotAllowed => Text::new("method-not-allowed"),
            ApiError::ConcurrentModification => Text::new("concurrent-modification"),
            ApiError::IdempotencyInProgress => Text::new("idempotency-in-progress"),
            ApiError::ResumeTooOld => Text::new("resume-too-old"),
            ApiError::PayloadTooLarge => Text::new("payload-too-large"),
            ApiError::UnsupportedMediaType => Text::new("unsupported-media-type"),
            ApiError::BadCode => Text::new("bad-code"),
            ApiError::IdempotencyKeyReused => Text::new("idempotency-key-reused"),
            ApiError::CatchingUp { .. } => Text::new("catching-up"),
            ApiError::Unavailable(_) => Text::new("unavailable"),
            ApiError::WarehouseNotLoaded => Text::new("warehouse-not-loaded"),
            ApiError::Internal(_) => Text::new("internal"),
        }
    }

    /// The problem's title in `lang`: what its status means.
    fn title(&self, lang: Lang) -> String {
        Text::new(match self.status_code().as_u16() {
            400 => "title.400",
            401 => "title.401",
            403 => "title.403",
            404 => "title.404",
            405 => "title.405",
            409 => "title.409",
            410 => "title.410",
            413 => "title.413",
            415 => "title.415",
            422 => "title.422",
            429 => "title.429",
            503 => "title.503",
            _ => "title.500",
        })
        .render(lang)
    }

    pub fn not_found(what_zh: &str, what_en: &str) -> Self {
        application::Error::not_found(what_zh, what_en).into()
    }

    pub fn forbidden() -> Self {
        ApiError::Forbidden(Text::new("forbidden"))
    }
}

/// The problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The kind of problem, in the language asked for.
    pub title: String,
    pub status: u16,
    /// What went wrong, in the language the request asked for (`Accept-Language`; Simplified
    /// Chinese unless it asks for English).
    pub detail: String,
    /// The stable code of this refusal (`order.illegal-transition`, `bad-credentials`), for an
    /// app that shows its own text.
    pub code: String,
    /// The request field that was refused, as a path (`address.contact_name`, `items[2]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let lang = crate::language::current();
        let this = self;
        let text = this.text();
        let status = this.status_code();
        let problem = Problem {
            kind: this.problem_type(),
            title: this.title(lang),
            status: status.as_u16(),
            detail: text.render(lang),
            code: text.code.to_owned(),
            field: match &this {
                ApiError::InvalidField { field, .. } => Some(field.clone()),
                _ => None,
            },
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let ApiError::LockedOut {
            retry_after_seconds,
        }
        | ApiError::TooFrequent {
            retry_after_seconds,
            ..
        }
        | ApiError::Busy {
            retry_after_seconds,
            ..
        }
        | ApiError::CatchingUp {
            retry_after_seconds,
        }
        | ApiError::CodeSendLimited {
            retry_after_seconds,
            ..
        } = &this
        {
            if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if matches!(
            this,
            ApiError::ConcurrentModification
                | ApiError::IdempotencyInProgress
                | ApiError::LockedOut { .. }
                | ApiError::TooFrequent { .. }
                | ApiError::Busy { .. }
                | ApiError::CatchingUp { .. }
                | ApiError::CodeSendLimited { .. }
                | ApiError::Unavailable(_)
                | ApiError::WarehouseNotLoaded
        ) {
            response.extensions_mut().insert(Retryable);
        }
        if let ApiError::Internal(cause) | ApiError::Unavailable(cause) = &this {
            // The logging middleware reads this and logs once, inside the request's span.
            response
                .extensions_mut()
                .insert(LoggedCause(format!("{cause:#}")));
        }
        response
    }
}

/// A warehouse's failure: not loaded yet is a temporary 503, anything else an internal error.
pub fn warehouse_error(error: anyhow::Error) -> ApiError {
    if error.is::<analytics::NotLoaded>() {
        ApiError::WarehouseNotLoaded
    } else {
        ApiError::Internal(error)
    }
}

/// Marks a response whose failure is passing (a conflict to retry, a lock-out, an outage): its
/// Idempotency-Key is released rather than bound to it.
#[derive(Debug, Clone, Copy)]
pub struct Retryable;

/// The hidden cause of a 5xx, carried to the logging middleware.
#[derive(Debug, Clone)]
pub struct LoggedCause(pub String);

impl From<sqlx::Error> for ApiError {
    /// A lost connection is a temporary 503, anything else an internal error.
    fn from(error: sqlx::Error) -> Self {
        application::Error::from(error).into()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        ApiError::Internal(error)
    }
}

impl From<application::Error> for ApiError {
    fn from(error: application::Error) -> Self {
        use application::error::Refusal;
        match error {
            application::Error::NotFound(text) => ApiError::NotFound(text),
            application::Error::Refused { kind, text } => match kind {
                Refusal::Invalid => ApiError::Invalid(text),
                Refusal::IllegalState => ApiError::IllegalState(text),
                Refusal::Forbidden => ApiError::Forbidden(text),
                Refusal::Conflict => ApiError::Conflict(text),
                Refusal::NotFound => ApiError::NotFound(text),
                Refusal::TooFrequent {
                    retry_after_seconds,
                } => ApiError::TooFrequent {
                    detail: text,
                    retry_after_seconds,
                },
            },
            application::Error::Conflict => ApiError::ConcurrentModification,
            application::Error::Unavailable(cause) => ApiError::Unavailable(cause),
            application::Error::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// An analyst's refused query, in the table's words.
fn sql_text(refusal: &analytics::sql::Refusal) -> Text {
    use analytics::sql::Refusal;
    // What DuckDB found is in English; a count of statements comes in both languages.
    let found = |found: &str| {
        (
            Lang::Zh.pick(found).to_owned(),
            Lang::En.pick(found).to_owned(),
        )
    };
    match refusal {
        Refusal::Empty => Text::new("sql.empty"),
        Refusal::TooLong => Text::new("sql.too-long").with("max", analytics::sql::MAX_TEXT),
        Refusal::NotAQuery(what) => {
            let (zh, en) = found(what);
            Text::new("sql.not-a-query").each("found", zh, en)
        }
        Refusal::Access(what) => Text::new("sql.access").with("found", what),
        Refusal::TimedOut(after) => Text::new("sql.timed-out").with("seconds", after.as_secs_f64()),
        Refusal::OutOfMemory(what) => Text::new("sql.out-of-memory").with("found", what),
        Refusal::Invalid(what) => Text::new("sql.invalid").with("found", what),
    }
}

impl From<domain::order::OrderError> for ApiError {
    fn from(error: domain::order::OrderError) -> Self {
        application::Error::from(error).into()
    }
}

impl<E: application::error::Classify> From<AggregateError<E>> for ApiError {
    fn from(error: AggregateError<E>) -> Self {
        application::Error::from(error).into()
    }
}

impl From<domain::ValueError> for ApiError {
    fn from(error: domain::ValueError) -> Self {
        ApiError::Invalid(domain::message::Explain::text(&error))
    }
}

/// Maps a vault failure: sealing for an erased person is refused, the rest is internal.
pub fn vault_error(error: vault::VaultError) -> ApiError {
    application::Error::from(error).into()
}
