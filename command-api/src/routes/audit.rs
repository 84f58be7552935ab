//! The audit trail for admins: the global log, any stream's history and replayed state, and the
//! latest verification of the hash chains.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::audit::{AsOf, AuditEvent, LogFilter, ReplayedState, Verification};
use crate::error::ApiError;
use crate::extract::{AppPath, AppQuery};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/audit/events", get(events))
        .route(
            "/api/v1/admin/audit/streams/{aggregate_type}/{aggregate_id}",
            get(stream),
        )
        .route(
            "/api/v1/admin/audit/streams/{aggregate_type}/{aggregate_id}/state",
            get(state_as_of),
        )
        .route("/api/v1/admin/audit/verification", get(verification))
}

/// The global audit log, newest first (admins): filter by actor, aggregate type, event type and
/// time; page with `before` = the last position seen.
#[utoipa::path(get, path = "/api/v1/admin/audit/events", tag = "audit", security(("bearer" = [])), params(LogFilter),
    responses((status = 200, body = [AuditEvent])))]
pub async fn events(
    State(state): State<AppState>,
    AppQuery(filter): AppQuery<LogFilter>,
) -> Result<axum::Json<Vec<AuditEvent>>, ApiError> {
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to {
            return Err(ApiError::Invalid(
                "开始时间晚于结束时间 / from is after to".into(),
            ));
        }
    }
    Ok(axum::Json(
        crate::audit::log(&state.pool, &filter)
            .await
            .map_err(ApiError::Unavailable)?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Only events after this sequence number.
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

/// One stream's events in order, with who, when and from where (admins).
#[utoipa::path(get, path = "/api/v1/admin/audit/streams/{aggregate_type}/{aggregate_id}", tag = "audit", security(("bearer" = [])),
    params(("aggregate_type" = String, Path), ("aggregate_id" = String, Path), StreamParams),
    responses((status = 200, body = [AuditEvent]), (status = 404, body = crate::error::Problem)))]
pub async fn stream(
    State(state): State<AppState>,
    AppPath((aggregate_type, aggregate_id)): AppPath<(String, String)>,
    AppQuery(params): AppQuery<StreamParams>,
) -> Result<axum::Json<Vec<AuditEvent>>, ApiError> {
    let events = crate::audit::history(
        &state.pool,
        &aggregate_type,
        &aggregate_id,
        params.after.unwrap_or(0),
        params.limit.unwrap_or(500).clamp(1, 1_000),
    )
    .await
    .map_err(ApiError::Unavailable)?;
    if events.is_empty() && params.after.unwrap_or(0) == 0 {
        return Err(ApiError::not_found("事件流", "stream"));
    }
    Ok(axum::Json(events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfParams {
    /// Replay through this event number.
    pub sequence: Option<i64>,
    /// Or every event recorded at or before this time.
    pub at: Option<DateTime<Utc>>,
}

/// A stream's state as of an event number or a moment, rebuilt by replaying its events
/// (admins); without either, as of now.
#[utoipa::path(get, path = "/api/v1/admin/audit/streams/{aggregate_type}/{aggregate_id}/state", tag = "audit", security(("bearer" = [])),
    params(("aggregate_type" = String, Path), ("aggregate_id" = String, Path), AsOfParams),
    responses((status = 200, body = ReplayedState), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn state_as_of(
    State(state): State<AppState>,
    AppPath((aggregate_type, aggregate_id)): AppPath<(String, String)>,
    AppQuery(params): AppQuery<AsOfParams>,
) -> Result<axum::Json<ReplayedState>, ApiError> {
    let as_of = match (params.sequence, params.at) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Invalid(
                "sequence 与 at 只能给一个 / give sequence or at, not both".into(),
            ))
        }
        (Some(sequence), None) if sequence < 1 => {
            return Err(ApiError::Invalid(
                "sequence 从 1 开始 / sequence starts at 1".into(),
            ))
        }
        (Some(sequence), None) => AsOf::Sequence(sequence),
        (None, Some(at)) => AsOf::Time(at),
        (None, None) => AsOf::Latest,
    };
    let replayed = crate::audit::state_as_of(&state.pool, &aggregate_type, &aggregate_id, as_of)
        .await
        .map_err(ApiError::Unavailable)?
        .ok_or_else(|| ApiError::not_found("聚合类型", "aggregate type"))?;
    if replayed.sequence == 0 && !matches!(as_of, AsOf::Time(_)) {
        return Err(ApiError::not_found("事件流", "stream"));
    }
    Ok(axum::Json(replayed))
}

/// The latest verification of the event log's hash chains (admins); `null` before the first
/// one has run.
#[utoipa::path(get, path = "/api/v1/admin/audit/verification", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = Option<Verification>)))]
pub async fn verification(
    State(state): State<AppState>,
) -> Result<axum::Json<Option<Verification>>, ApiError> {
    Ok(axum::Json(
        crate::audit::latest_verification(&state.pool)
            .await
            .map_err(ApiError::Unavailable)?,
    ))
}
