//! Operating the platform: projection status, lag and rebuilds, and recent warnings and errors.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::AppPath;
use crate::state::AppState;
use crate::text::Line;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(projection_status))
        .routes(routes!(rebuild))
        .routes(routes!(parked))
        .routes(routes!(retry_parked))
        .routes(routes!(logs))
        .routes(routes!(jobs))
}

#[derive(Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct JobRunView {
    pub job: String,
    /// Runs since the database was created, in every process.
    pub runs: i64,
    pub failures: i64,
    pub last_run_at: DateTime<Utc>,
    /// The last failure's message, kept until a run succeeds.
    pub last_error: Option<String>,
}

/// The timed jobs: how often each ran and failed, when it last ran and its last error (admins).
#[utoipa::path(get, path = "/api/v1/admin/jobs", tag = "admin", security(("bearer" = ["admin"])),
    responses((status = 200, body = [JobRunView])))]
pub async fn jobs(State(state): State<AppState>) -> Result<axum::Json<Vec<JobRunView>>, ApiError> {
    Ok(axum::Json(
        sqlx::query_as(
            "SELECT job, runs, failures, last_run_at, last_error FROM job_runs ORDER BY job",
        )
        .fetch_all(&state.pool)
        .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// `warn` (warnings and errors, the default) or `error`.
    pub level: Option<Line<20>>,
    /// Keyset: entries older than this id (the previous page's last).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogEntryView {
    pub id: i64,
    #[serde(flatten)]
    pub record: crate::logs::LogRecord,
}

/// Recent warnings and errors from every process, newest first (admins), each with its request
/// id, actor and aggregate where it had them.
#[utoipa::path(get, path = "/api/v1/admin/logs", tag = "admin", security(("bearer" = ["admin"])), params(LogParams),
    responses((status = 200, body = [LogEntryView]), (status = 422, body = crate::error::Problem)))]
pub async fn logs(
    State(state): State<AppState>,
    crate::extract::AppQuery(params): crate::extract::AppQuery<LogParams>,
) -> Result<axum::Json<Vec<LogEntryView>>, ApiError> {
    let errors_only = match params.level.as_deref() {
        None | Some("warn") => false,
        Some("error") => true,
        Some(_) => return Err(ApiError::Invalid(Text::new("admin.level-must-warn-error"))),
    };
    let entries = crate::logs::recent(
        &state.pool,
        errors_only,
        params.before,
        params.limit.unwrap_or(100).clamp(1, 500),
    )
    .await?;
    Ok(axum::Json(
        entries
            .into_iter()
            .map(|(id, record)| LogEntryView { id, record })
            .collect(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectionStatusView {
    pub name: String,
    pub generation: i32,
    pub last_position: i64,
    pub applied_events: i64,
    pub head_position: i64,
    /// Committed events not yet applied.
    pub pending_events: i64,
    /// Age of the oldest unapplied event, in seconds.
    pub lag_seconds: f64,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Each projection's position, lag and last error (admins).
#[utoipa::path(get, path = "/api/v1/admin/projections", tag = "admin", security(("bearer" = ["admin"])),
    responses((status = 200, body = [ProjectionStatusView])))]
pub async fn projection_status(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<ProjectionStatusView>>, ApiError> {
    let statuses = projections::status(&state.pool).await?;
    Ok(axum::Json(
        statuses
            .into_iter()
            .map(|status| ProjectionStatusView {
                name: status.name,
                generation: status.generation,
                last_position: status.last_position,
                applied_events: status.applied_events,
                head_position: status.head_position,
                pending_events: status.pending_events,
                lag_seconds: status.lag_seconds,
                last_error: status.last_error,
                updated_at: status.updated_at,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RebuildView {
    pub projection: String,
    pub previous_generation: i32,
    pub generation: i32,
    pub events_applied: i64,
}

/// Rebuild a projection from position zero beside the live one, then swap (admins).
#[utoipa::path(post, path = "/api/v1/admin/projections/{name}/rebuild", tag = "admin", security(("bearer" = ["admin"])),
    params(("name" = String, Path)),
    responses((status = 200, body = RebuildView), (status = 404, body = crate::error::Problem)))]
pub async fn rebuild(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> Result<axum::Json<RebuildView>, ApiError> {
    let projection = projections::projection_by_name(&name, &state.vault)
        .ok_or_else(|| ApiError::not_found("投影", "projection"))?;
    let report = projections::rebuild(&state.pool, projection.as_ref())
        .await
        .map_err(
            |error| match error.downcast_ref::<projections::RebuildInProgress>() {
                Some(in_progress) => ApiError::Conflict(
                    Text::new("admin.rebuild-in-progress").with("in_progress", in_progress),
                ),
                None => ApiError::Internal(error),
            },
        )?;
    Ok(axum::Json(RebuildView {
        projection: report.projection,
        previous_generation: report.previous_generation,
        generation: report.generation,
        events_applied: report.events_applied,
    }))
}

/// Every stream a projection has set aside, with the first error and how many events wait
/// behind it (admins).
#[utoipa::path(get, path = "/api/v1/admin/projections/parked", tag = "admin", security(("bearer" = ["admin"])),
    responses((status = 200, body = [crate::routes::health::ParkedStreamView])))]
pub async fn parked(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<crate::routes::health::ParkedStreamView>>, ApiError> {
    Ok(axum::Json(
        projections::parked(&state.pool)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// Only this stream (with `aggregate_id`); every parked stream of the projection when left out.
    pub aggregate_type: Option<Line<60>>,
    pub aggregate_id: Option<Line<100>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetryView {
    /// Parked events applied now.
    pub applied: i64,
    /// Streams whose events failed again, with the new error.
    pub still_parked: Vec<crate::routes::health::ParkedStreamView>,
}

/// Apply a projection's parked events again, after a fix (admins). A stream whose event fails
/// again stays parked with the new error.
#[utoipa::path(post, path = "/api/v1/admin/projections/{name}/parked/retry", tag = "admin", security(("bearer" = ["admin"])),
    params(("name" = String, Path)), request_body(content = Option<RetryBody>),
    responses((status = 200, body = RetryView), (status = 404, body = crate::error::Problem)))]
pub async fn retry_parked(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
    crate::extract::OptionalJson(body): crate::extract::OptionalJson<RetryBody>,
) -> Result<axum::Json<RetryView>, ApiError> {
    let projection = projections::projection_by_name(&name, &state.vault)
        .ok_or_else(|| ApiError::not_found("投影", "projection"))?;
    let body = body.unwrap_or_default();
    let only = match (&body.aggregate_type, &body.aggregate_id) {
        (Some(kind), Some(id)) => Some((kind.as_str(), id.as_str())),
        (None, None) => None,
        _ => {
            return Err(ApiError::Invalid(Text::new(
                "admin.give-both-aggregate-type-aggregate",
            )))
        }
    };
    let report = projections::retry_parked(&state.pool, projection.as_ref(), only).await?;
    Ok(axum::Json(RetryView {
        applied: report.applied,
        still_parked: report.still_parked.into_iter().map(Into::into).collect(),
    }))
}
