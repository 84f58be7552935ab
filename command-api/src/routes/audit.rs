//! The audit trail for admins: the global log, any stream's history and replayed state, and the
//! latest verification of the hash chains.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::extract::{AppPath, AppQuery};
use crate::state::AppState;
use crate::text::Line;
use application::audit::{self, AsOf, LogFilter};
use domain::message::Text;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(stream))
        .routes(routes!(state_as_of))
        .routes(routes!(verification))
}

/// The global audit log, newest first (admins): filter by actor, aggregate type, event type and
/// time; page with `before` = the last position seen.
#[utoipa::path(get, path = "/api/v1/admin/audit/events", tag = "audit", security(("bearer" = ["admin"])), params(LogParams),
    responses((status = 200, body = [AuditEvent])))]
pub async fn events(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<LogParams>,
) -> Result<axum::Json<Vec<AuditEvent>>, ApiError> {
    let filter = LogFilter::from(params);
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to {
            return Err(ApiError::Invalid(Text::new("audit.from-after")));
        }
    }
    Ok(axum::Json(
        audit::log(&state.pool, &filter)
            .await
            .map_err(ApiError::Unavailable)?
            .into_iter()
            .map(AuditEvent::from)
            .collect(),
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
#[utoipa::path(get, path = "/api/v1/admin/audit/streams/{aggregate_type}/{aggregate_id}", tag = "audit", security(("bearer" = ["admin"])),
    params(("aggregate_type" = String, Path), ("aggregate_id" = String, Path), StreamParams),
    responses((status = 200, body = [AuditEvent]), (status = 404, body = crate::error::Problem)))]
pub async fn stream(
    State(state): State<AppState>,
    AppPath((aggregate_type, aggregate_id)): AppPath<(String, String)>,
    AppQuery(params): AppQuery<StreamParams>,
) -> Result<axum::Json<Vec<AuditEvent>>, ApiError> {
    let events = audit::history(
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
    Ok(axum::Json(
        events.into_iter().map(AuditEvent::from).collect(),
    ))
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
#[utoipa::path(get, path = "/api/v1/admin/audit/streams/{aggregate_type}/{aggregate_id}/state", tag = "audit", security(("bearer" = ["admin"])),
    params(("aggregate_type" = String, Path), ("aggregate_id" = String, Path), AsOfParams),
    responses((status = 200, body = ReplayedState), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn state_as_of(
    State(state): State<AppState>,
    AppPath((aggregate_type, aggregate_id)): AppPath<(String, String)>,
    AppQuery(params): AppQuery<AsOfParams>,
) -> Result<axum::Json<ReplayedState>, ApiError> {
    let as_of = match (params.sequence, params.at) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Invalid(Text::new("audit.give-sequence-not-both")))
        }
        (Some(sequence), None) if sequence < 1 => {
            return Err(ApiError::Invalid(Text::new("audit.sequence-starts-1")))
        }
        (Some(sequence), None) => AsOf::Sequence(sequence),
        (None, Some(at)) => AsOf::Time(at),
        (None, None) => AsOf::Latest,
    };
    let replayed = audit::state_as_of(&state.pool, &aggregate_type, &aggregate_id, as_of)
        .await
        .map_err(ApiError::Unavailable)?
        .ok_or_else(|| ApiError::not_found("聚合类型", "aggregate type"))?;
    if replayed.sequence == 0 && !matches!(as_of, AsOf::Time(_)) {
        return Err(ApiError::not_found("事件流", "stream"));
    }
    Ok(axum::Json(ReplayedState {
        aggregate_type: replayed.aggregate_type,
        aggregate_id: replayed.aggregate_id,
        sequence: replayed.sequence,
        recorded_at: replayed.recorded_at,
        state: replayed.state,
    }))
}

/// The latest verification of the event log's hash chains (admins); `null` before the first
/// one has run.
#[utoipa::path(get, path = "/api/v1/admin/audit/verification", tag = "audit", security(("bearer" = ["admin"])),
    responses((status = 200, body = Option<Verification>)))]
pub async fn verification(
    State(state): State<AppState>,
) -> Result<axum::Json<Option<Verification>>, ApiError> {
    Ok(axum::Json(
        audit::latest_verification(&state.pool)
            .await
            .map_err(ApiError::Unavailable)?
            .map(Verification::from),
    ))
}

/// The global log's filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    pub actor_id: Option<Uuid>,
    pub aggregate_type: Option<Line<60>>,
    pub event_type: Option<Line<60>>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Keyset: only events before this position (the previous page's last).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

impl From<LogParams> for LogFilter {
    fn from(params: LogParams) -> Self {
        LogFilter {
            actor_id: params.actor_id,
            aggregate_type: params.aggregate_type.map(|line| line.to_string()),
            event_type: params.event_type.map(|line| line.to_string()),
            from: params.from,
            to: params.to,
            before: params.before,
            limit: params.limit,
        }
    }
}

/// One event of a stream, as the audit trail shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Who (actor id and role), when, from where (client IP, user agent), request and command.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
    /// Hex of the event's link in its stream's hash chain.
    pub hash: String,
}

impl From<audit::AuditEvent> for AuditEvent {
    fn from(event: audit::AuditEvent) -> Self {
        AuditEvent {
            position: event.position,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            payload: event.payload,
            metadata: event.metadata,
            recorded_at: event.recorded_at,
            hash: event.hash,
        }
    }
}

/// A stream's state as of an event or a moment, replayed from its events.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplayedState {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The last event applied (0: none).
    pub sequence: i64,
    pub recorded_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
}

/// One thing verification found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChainProblem {
    /// `altered`, `relinked`, `missing`, `rewritten` or `out_of_order`.
    pub kind: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub detail: String,
}

/// One verification run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Verification {
    pub run_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub streams: i64,
    pub events: i64,
    pub ok: bool,
    pub problems: Vec<ChainProblem>,
}

impl From<audit::Verification> for Verification {
    fn from(run: audit::Verification) -> Self {
        Verification {
            run_id: run.run_id,
            started_at: run.started_at,
            finished_at: run.finished_at,
            streams: run.streams,
            events: run.events,
            ok: run.ok,
            problems: run
                .problems
                .into_iter()
                .map(|problem| ChainProblem {
                    kind: problem.kind,
                    aggregate_type: problem.aggregate_type,
                    aggregate_id: problem.aggregate_id,
                    sequence: problem.sequence,
                    detail: problem.detail,
                })
                .collect(),
        }
    }
}
