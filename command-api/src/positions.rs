//! Reads after writes. A command's answer carries the place in the log where it committed
//! (`Anjia-Position: <transaction id>-<position>`, the same form as the live stream's event ids);
//! a query that sends it back (`Anjia-Min-Position` header, or `min_position` in the query)
//! waits until every projection has applied the log up to there, then answers from views that
//! include the write. Past the wait it answers a `catching-up` problem, so a client is never
//! shown a view older than what it was told was saved without being told so.

use std::time::{Duration, Instant};

use application::commands::Written;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use projections::log::Checkpoint;

use crate::error::ApiError;
use crate::state::AppState;
use domain::message::Text;

/// The response header naming where a command's events were committed.
pub const POSITION_HEADER: &str = "anjia-position";
/// The request header naming the position a query's views must have passed.
pub const MIN_POSITION_HEADER: &str = "anjia-min-position";
/// The same, as a query parameter.
pub const MIN_POSITION_PARAMETER: &str = "min_position";
/// How long a query waits for its views at most.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

pub fn format(checkpoint: Checkpoint) -> String {
    format!("{}-{}", checkpoint.transaction_id, checkpoint.position)
}

/// Reads `<transaction id>-<position>`.
pub fn parse(raw: &str) -> Option<Checkpoint> {
    let (xid, position) = raw.trim().split_once('-')?;
    Some(Checkpoint {
        transaction_id: xid.parse().ok()?,
        position: position.parse().ok()?,
    })
}

fn bad_position(field: &str) -> ApiError {
    ApiError::InvalidField {
        field: field.to_owned(),
        detail: Text::new("positions.malformed"),
    }
}

/// The position a read asks its views to include, from the header or the query parameter (the
/// later of the two when both are given); the parameter is taken out of the query, so the
/// route's own parameters never see it.
fn requested(request: &mut Request) -> Result<Option<(Checkpoint, &'static str)>, ApiError> {
    let header = match request.headers().get(MIN_POSITION_HEADER) {
        Some(value) => {
            let raw = value
                .to_str()
                .map_err(|_| bad_position("Anjia-Min-Position"))?;
            Some(parse(raw).ok_or_else(|| bad_position("Anjia-Min-Position"))?)
        }
        None => None,
    };
    let mut parameter = None;
    if let Some(query) = request.uri().query() {
        let mut rest = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if name == MIN_POSITION_PARAMETER {
                parameter =
                    Some(parse(&value).ok_or_else(|| bad_position(MIN_POSITION_PARAMETER))?);
            } else {
                rest.append_pair(&name, &value);
            }
        }
        if parameter.is_some() {
            let rest = rest.finish();
            let path = request.uri().path();
            let path_and_query = if rest.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{rest}")
            };
            let mut parts = request.uri().clone().into_parts();
            parts.path_and_query = Some(
                path_and_query
                    .parse()
                    .map_err(|_| bad_position(MIN_POSITION_PARAMETER))?,
            );
            *request.uri_mut() = Uri::from_parts(parts).map_err(|_| bad_position("uri"))?;
        }
    }
    Ok(match (header, parameter) {
        (Some(header), Some(parameter)) if parameter > header => {
            Some((parameter, MIN_POSITION_PARAMETER))
        }
        (Some(header), _) => Some((header, "Anjia-Min-Position")),
        (None, Some(parameter)) => Some((parameter, MIN_POSITION_PARAMETER)),
        (None, None) => None,
    })
}

/// Refuses a position no event of the log holds: no command answered it, and waiting for it
/// might never end.
async fn check_exists(state: &AppState, wanted: Checkpoint, field: &str) -> Result<(), ApiError> {
    let held: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM events WHERE position = $1 AND transaction_id = $2::text::xid8",
    )
    .bind(wanted.position)
    .bind(wanted.transaction_id.to_string())
    .fetch_optional(&state.pool)
    .await?;
    if held.is_none() {
        return Err(ApiError::InvalidField {
            field: field.to_owned(),
            detail: Text::new("positions.unknown"),
        });
    }
    Ok(())
}

/// Whether every projection's live generation has applied the log up to `wanted`.
async fn caught_up(state: &AppState, wanted: Checkpoint) -> Result<bool, ApiError> {
    let behind: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM projections p
           JOIN projection_checkpoints c ON c.projection = p.name AND c.generation = p.active_generation
          WHERE (c.last_xid, c.last_position) < ($1::text::xid8, $2)",
    )
    .bind(wanted.transaction_id.to_string())
    .bind(wanted.position)
    .fetch_one(&state.pool)
    .await?;
    Ok(behind == 0)
}

/// Waits, at most `MAX_WAIT`, until every view has applied the log up to `wanted`; answers
/// whether they did.
pub(crate) async fn wait_for_views(state: &AppState, wanted: Checkpoint) -> Result<bool, ApiError> {
    let deadline = Instant::now() + MAX_WAIT;
    loop {
        if caught_up(state, wanted).await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) for the views a query asked to include a write, and marks every answer with
/// where its commands committed.
pub async fn track(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        match requested(&mut request) {
            Err(refusal) => return refusal.into_response(),
            Ok(None) => {}
            Ok(Some((wanted, field))) => {
                if let Err(refusal) = check_exists(&state, wanted, field).await {
                    return refusal.into_response();
                }
                match wait_for_views(&state, wanted).await {
                    Err(failure) => return failure.into_response(),
                    Ok(true) => {}
                    Ok(false) => {
                        return ApiError::CatchingUp {
                            retry_after_seconds: 1,
                        }
                        .into_response()
                    }
                }
            }
        }
    }
    let written = Written::attached();
    request.extensions_mut().insert(written.clone());
    let mut response = next.run(request).await;
    if let Some(checkpoint) = written.get() {
        stamp(response.headers_mut(), checkpoint);
    }
    response
}

/// Names in an answer's headers where its command's events landed.
pub fn stamp(headers: &mut axum::http::HeaderMap, checkpoint: Checkpoint) {
    if let Ok(value) = HeaderValue::from_str(&format(checkpoint)) {
        headers.insert(POSITION_HEADER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back_as_it_was_written_and_garbage_is_refused() {
        let checkpoint = Checkpoint {
            transaction_id: 812,
            position: 4_051,
        };
        assert_eq!(parse(&format(checkpoint)), Some(checkpoint));
        for garbage in ["", "12", "a-1", "1-b", "-1", "1-"] {
            assert_eq!(parse(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn a_header_and_a_parameter_together_ask_for_the_later_and_the_query_loses_the_parameter() {
        let mut request = Request::builder()
            .uri("/api/v1/orders?status=paid&min_position=9-30")
            .header(MIN_POSITION_HEADER, "8-40")
            .body(axum::body::Body::empty())
            .expect("a request");
        let (wanted, field) = requested(&mut request)
            .expect("both parse")
            .expect("a position");
        assert_eq!(
            wanted,
            Checkpoint {
                transaction_id: 9,
                position: 30
            }
        );
        assert_eq!(field, MIN_POSITION_PARAMETER);
        assert_eq!(request.uri().query(), Some("status=paid"));
    }
}
