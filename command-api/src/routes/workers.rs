//! The worker directory and a worker's own availability.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use domain::worker::WorkerCommand;
use projections::workers::{self as worker_views, WorkerRow, WorkerSearch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::error::ApiError;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::orders::ReasonBody;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/workers", get(list))
        .route("/api/v1/workers/{worker_id}", get(show))
        .route("/api/v1/worker/online", post(go_online))
        .route("/api/v1/worker/offline", post(go_offline))
        .route("/api/v1/admin/workers/{worker_id}/suspend", post(suspend))
        .route(
            "/api/v1/admin/workers/{worker_id}/reinstate",
            post(reinstate),
        )
}

/// A worker as the directory shows them; the phone number is masked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerView {
    pub worker_id: Uuid,
    pub name: String,
    pub phone: String,
    pub skills: Vec<String>,
    pub years_of_experience: i16,
    pub languages: Vec<String>,
    pub city: String,
    pub districts: Vec<String>,
    pub photo_ref: Option<String>,
    pub online: bool,
    pub suspended: bool,
    pub registered_at: DateTime<Utc>,
}

impl From<WorkerRow> for WorkerView {
    fn from(row: WorkerRow) -> Self {
        WorkerView {
            worker_id: row.worker_id,
            name: row.name,
            phone: row.phone_masked,
            skills: row.skills,
            years_of_experience: row.years_of_experience,
            languages: row.languages,
            city: row.city,
            districts: row.districts,
            photo_ref: row.photo_ref,
            online: row.online,
            suspended: row.suspended,
            registered_at: row.registered_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorkerListParams {
    /// A catalogue service code.
    pub skill: Option<String>,
    pub city: Option<String>,
    #[serde(default)]
    pub online_only: bool,
    /// `standard` (普通), `silver` (银牌) or `gold` (金牌).
    pub level: Option<String>,
    /// Keyset cursor: the `name` of the last worker of the previous page...
    pub after_name: Option<String>,
    /// ...and its `worker_id`.
    pub after_id: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
}

/// The worker directory: active workers, filtered by skill, city and availability.
#[utoipa::path(get, path = "/api/v1/workers", tag = "workers", params(WorkerListParams),
    responses((status = 200, body = [WorkerView]), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<WorkerListParams>,
) -> Result<axum::Json<Vec<WorkerView>>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Invalid(
            "limit 须在 1–200 之间 / limit must be between 1 and 200".into(),
        ));
    }
    if let Some(skill) = &params.skill {
        if domain::ServiceCode::parse(skill).is_none() {
            return Err(ApiError::Invalid(format!(
                "未知的服务 / unknown service: {skill}"
            )));
        }
    }
    let after = match (params.after_name, params.after_id) {
        (Some(name), Some(id)) => Some((name, id)),
        (None, None) => None,
        _ => {
            return Err(ApiError::Invalid(
                "after_name 与 after_id 须同时给出 / give both after_name and after_id".into(),
            ))
        }
    };
    if let Some(level) = &params.level {
        if !["standard", "silver", "gold"].contains(&level.as_str()) {
            return Err(ApiError::Invalid(format!(
                "未知的等级 / unknown level: {level}"
            )));
        }
    }
    // The public directory shows active workers only.
    let search = WorkerSearch {
        level: params.level,
        service: params.skill,
        city: params.city,
        online_only: params.online_only,
        suspended: Some(false),
        after,
        ..WorkerSearch::default()
    };
    let rows = worker_views::search(&state.pool, &search, limit).await?;
    Ok(axum::Json(rows.into_iter().map(WorkerView::from).collect()))
}

/// One worker's directory entry.
#[utoipa::path(get, path = "/api/v1/workers/{worker_id}", tag = "workers", params(("worker_id" = Uuid, Path)),
    responses((status = 200, body = WorkerView), (status = 404, body = crate::error::Problem)))]
pub async fn show(
    State(state): State<AppState>,
    AppPath(worker_id): AppPath<Uuid>,
) -> Result<axum::Json<WorkerView>, ApiError> {
    let row = worker_views::get(&state.pool, worker_id)
        .await?
        .ok_or_else(|| ApiError::not_found("服务人员", "worker"))?;
    Ok(axum::Json(row.into()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerAck {
    pub worker_id: Uuid,
    pub online: bool,
    pub suspended: bool,
    pub version: usize,
}

async fn run(
    state: &AppState,
    worker_id: Uuid,
    command: WorkerCommand,
    context: &CommandContext,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let committed = state.workers.execute(worker_id, command, context).await?;
    let version = if committed.events == 0 {
        state.workers.load(worker_id).await?.1
    } else {
        committed.version
    };
    Ok(axum::Json(WorkerAck {
        worker_id,
        online: committed.state.online,
        suspended: committed.state.suspended,
        version,
    }))
}

/// Become available for orders (workers).
#[utoipa::path(post, path = "/api/v1/worker/online", tag = "workers", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAck), (status = 409, body = crate::error::Problem)))]
pub async fn go_online(
    State(state): State<AppState>,
    context: CommandContext,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        worker.id,
        WorkerCommand::GoOnline {
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

/// Stop taking orders (workers).
#[utoipa::path(post, path = "/api/v1/worker/offline", tag = "workers", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAck)))]
pub async fn go_offline(
    State(state): State<AppState>,
    context: CommandContext,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        worker.id,
        WorkerCommand::GoOffline {
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

/// Suspend a worker, with a reason (admins).
#[utoipa::path(post, path = "/api/v1/admin/workers/{worker_id}/suspend", tag = "admin", request_body = ReasonBody, security(("bearer" = [])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAck), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn suspend(
    State(state): State<AppState>,
    context: CommandContext,
    AppPath(worker_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReasonBody>,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        worker_id,
        WorkerCommand::Suspend {
            by,
            reason: body.reason,
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

/// Lift a worker's suspension, with a reason (admins).
#[utoipa::path(post, path = "/api/v1/admin/workers/{worker_id}/reinstate", tag = "admin", request_body = ReasonBody, security(("bearer" = [])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAck), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn reinstate(
    State(state): State<AppState>,
    context: CommandContext,
    AppPath(worker_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReasonBody>,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        worker_id,
        WorkerCommand::Reinstate {
            by,
            reason: body.reason,
            now: context.occurred_at,
        },
        &context,
    )
    .await
}
