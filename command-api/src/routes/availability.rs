//! A worker's working time (weekly plan, per-date hours, leave) and the slot listing that
//! answers "at which start times on this date can this worker do this job here".

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use domain::availability::{TimeRange, WeeklyPlan};
use domain::worker::{Worker, WorkerCommand};
use domain::CoordinateSystem;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::onboarding::{record, WorkerAdminAck};
use crate::state::AppState;
use crate::text::Line;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(set_plan))
        .routes(routes!(set_day))
        .routes(routes!(take_leave))
        .routes(routes!(slots))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeBody {
    /// Local (Asia/Shanghai) time, `HH:MM`.
    #[schema(value_type = String, example = "09:00")]
    pub start: NaiveTime,
    #[schema(value_type = String, example = "18:00")]
    pub end: NaiveTime,
}

fn ranges(body: Vec<RangeBody>) -> Result<Vec<TimeRange>, ApiError> {
    body.into_iter()
        .map(|range| TimeRange::parse(range.start, range.end).map_err(ApiError::from))
        .collect()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// Seven lists of working hours, Monday first.
    pub days: Vec<Vec<RangeBody>>,
}

/// Set your weekly working plan (workers).
#[utoipa::path(put, path = "/api/v1/worker/availability", tag = "availability", request_body = PlanBody, security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAdminAck), (status = 422, body = crate::error::Problem)))]
pub async fn set_plan(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<PlanBody>,
) -> Result<axum::Json<WorkerAdminAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    if body.days.len() != 7 {
        return Err(ApiError::Invalid(Text::new(
            "availability.days-must-list-7-days",
        )));
    }
    let mut plan = WeeklyPlan::default();
    for (slot, day) in plan.days.iter_mut().zip(body.days) {
        *slot = ranges(day)?;
    }
    record(
        &state,
        worker.id,
        WorkerCommand::SetWeeklyPlan {
            plan,
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayBody {
    /// The hours of that date; empty for a day off.
    pub ranges: Vec<RangeBody>,
}

/// Set your hours for one date, overriding the plan (workers).
#[utoipa::path(put, path = "/api/v1/worker/availability/dates/{date}", tag = "availability", request_body = DayBody, security(("bearer" = ["worker"])),
    params(("date" = String, Path, description = "YYYY-MM-DD"), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAdminAck), (status = 422, body = crate::error::Problem)))]
pub async fn set_day(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(date): AppPath<NaiveDate>,
    AppJson(body): AppJson<DayBody>,
) -> Result<axum::Json<WorkerAdminAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = WorkerCommand::SetDayHours {
        date,
        ranges: ranges(body.ranges)?,
        now: context.occurred_at,
    };
    record(&state, worker.id, command, &context).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveBody {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub reason: Line<200>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeaveAck {
    pub leave_id: Uuid,
}

/// Take leave, first to last day included (workers).
#[utoipa::path(post, path = "/api/v1/worker/leave", tag = "availability", request_body = LeaveBody, security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 201, body = LeaveAck), (status = 422, body = crate::error::Problem)))]
pub async fn take_leave(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<LeaveBody>,
) -> Result<(StatusCode, axum::Json<LeaveAck>), ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    let leave_id = context.new_aggregate_id("leave");
    let command = WorkerCommand::TakeLeave {
        leave_id,
        from: body.from,
        to: body.to,
        reason: String::from(body.reason),
        now: context.occurred_at,
    };
    state.workers.execute(worker.id, command, &context).await?;
    Ok((StatusCode::CREATED, axum::Json(LeaveAck { leave_id })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SlotParams {
    /// The local (Asia/Shanghai) date, `YYYY-MM-DD`.
    pub date: NaiveDate,
    /// 30 to 37,440 (a 26-day term).
    pub duration_minutes: u32,
    /// Between start times; 15 to 240, default 30.
    pub step_minutes: Option<u32>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// `wgs84`, `gcj02` or `bd09`.
    #[param(value_type = Option<crate::schemas::Datum>)]
    pub system: Option<CoordinateSystem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SlotsView {
    pub worker_id: Uuid,
    pub date: NaiveDate,
    /// UTC start times at which the job fits the worker's hours, leave and bookings (travel
    /// time included).
    pub starts: Vec<DateTime<Utc>>,
}

/// The start times on a date at which a worker can do a job of this length at this place.
#[utoipa::path(get, path = "/api/v1/workers/{worker_id}/slots", security(()), tag = "availability", params(("worker_id" = Uuid, Path), SlotParams),
    responses((status = 200, body = SlotsView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn slots(
    State(state): State<AppState>,
    AppPath(worker_id): AppPath<Uuid>,
    AppQuery(params): AppQuery<SlotParams>,
) -> Result<axum::Json<SlotsView>, ApiError> {
    if !(30..=26 * 24 * 60).contains(&params.duration_minutes) {
        return Err(ApiError::Invalid(Text::new(
            "availability.duration-minutes-must-30-37440",
        )));
    }
    let step = crate::routes::params::slot_step(params.step_minutes)?;
    let location =
        crate::routes::params::optional_point(params.latitude, params.longitude, params.system)?;
    let (worker, version): (Worker, usize) = state.workers.load(worker_id).await?;
    if version == 0 || !worker.registered {
        return Err(ApiError::not_found("服务人员", "worker"));
    }
    let starts = worker.free_slots(
        params.date,
        chrono::Duration::minutes(i64::from(params.duration_minutes)),
        step,
        location,
        Utc::now(),
    );
    Ok(axum::Json(SlotsView {
        worker_id,
        date: params.date,
        starts,
    }))
}
