//! The app's own extractors, so that every rejection is a problem document.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::text;
use domain::message::{Lang, Text};

/// JSON body extractor whose rejections are problem documents. Every string in the body passes
/// `text::check_json` before the body is read into `T`, and a field `T` refuses is named.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = body_bytes(request, state).await?;
        parse_json(&bytes).map(AppJson)
    }
}

/// A JSON body that may be left out: no body at all reads as `None`.
pub struct OptionalJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(request.headers());
        let bytes = body_bytes(request, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJson(None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(|value| OptionalJson(Some(value)))
    }
}

/// `application/json`, or any `application/…+json`, as axum's own `Json` accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn body_bytes<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::BadRequest(unreadable(rejection.body_text())),
        })
}

/// Reads a JSON body: malformed JSON is a 400; a string that fails the text check, or a field
/// of the wrong type or value, is a 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|error| {
        ApiError::BadRequest(Text::new("extract.malformed-json").with("error", error))
    })?;
    text::check_json(&value).map_err(field_fault)?;
    serde_path_to_error::deserialize(value).map_err(|error| {
        let field = error.path().to_string();
        ApiError::InvalidField {
            field: if field == "." {
                "(body)".to_owned()
            } else {
                field
            },
            detail: value_reason(&error.into_inner().to_string()),
        }
    })
}

/// A request the server could not read, with the reason its parser gave (in English).
fn unreadable(reason: String) -> Text {
    Text::new("bad-request").with("reason", reason)
}

/// Why a value was refused, as the deserialiser said: its own words (English) or, from the
/// text check and the bounded types, the table's in both languages (`中文 / English`).
pub fn value_reason(message: &str) -> Text {
    Text::new("invalid-value").each("reason", Lang::Zh.pick(message), Lang::En.pick(message))
}

fn field_fault(fault: text::FieldFault) -> ApiError {
    ApiError::InvalidField {
        field: fault.field,
        detail: fault.fault.text(),
    }
}

/// Path extractor whose rejections are problem documents.
pub struct AppPath<T>(pub T);

impl<S, T> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await {
            for (name, value) in &raw {
                text::check_any(value).map_err(|fault| {
                    ApiError::NotFound(
                        Text::new("extract.invalid-path-parameter")
                            .with("fault", fault)
                            .with("name", name),
                    )
                })?;
            }
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(AppPath(value)),
            Err(rejection) => Err(match rejection {
                PathRejection::FailedToDeserializePathParams(error) => ApiError::NotFound(
                    Text::new("extract.unreadable-path-parameter")
                        .with("reason", error.body_text()),
                ),
                other => ApiError::BadRequest(unreadable(other.body_text())),
            }),
        }
    }
}

/// Query-string extractor whose rejections are problem documents.
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        text::check_pairs(
            pairs
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        .map_err(field_fault)?;
        // Deserialised as axum's `Query` does, with the path of a refused value kept, so the
        // problem names the parameter (`within_km`), not only what was wrong with it.
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(value) => Ok(AppQuery(value)),
            Err(error) => {
                let field = error.path().to_string();
                let detail = value_reason(&error.into_inner().to_string());
                if field.is_empty() || field == "." {
                    Err(ApiError::Invalid(
                        Text::new("extract.invalid-query-parameter").with("detail", detail),
                    ))
                } else {
                    Err(ApiError::InvalidField { field, detail })
                }
            }
        }
    }
}

/// The command context of a request: who (the caller the access token names), from where (the
/// settled client address, else the socket's peer), the request and idempotency ids, the user
/// agent, and where its commands' answer records their position.
pub struct RequestContext(pub application::commands::CommandContext);

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::ConnectInfo;
        let headers = parts.headers.clone();
        let header_text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(|value| value.chars().take(300).collect::<String>())
        };
        let client_ip = match parts
            .extensions
            .get::<crate::client_address::ClientAddress>()
        {
            Some(address) => Some(address.0.to_string()),
            None => ConnectInfo::<std::net::SocketAddr>::from_request_parts(parts, state)
                .await
                .ok()
                .map(|ConnectInfo(address)| address.ip().to_string()),
        };
        Ok(RequestContext(application::commands::CommandContext {
            command_id: uuid::Uuid::now_v7(),
            actor: crate::auth::Caller::from_request_parts(parts, state)
                .await?
                .0,
            request_id: header_text("x-request-id"),
            client_ip,
            user_agent: header_text(axum::http::header::USER_AGENT.as_str()),
            idempotency_key: header_text(crate::idempotency::HEADER),
            occurred_at: chrono::Utc::now(),
            written: parts
                .extensions
                .get::<application::commands::Written>()
                .cloned()
                .unwrap_or_default(),
        }))
    }
}
