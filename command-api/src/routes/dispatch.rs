//! Dispatch and tracking over HTTP: grabbing offered orders, admins' reassignment and queue,
//! workers' service base, customers' blocked workers, location reports, check-in, navigation,
//! tracking, and the slot listing across every eligible worker.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use domain::dispatch::{may_take, Applicant, DispatchStage, Ineligible, Wanted};
use domain::geo::{driving_minutes, navigation_links, NavigationLinks};
use domain::order::{Order, OrderCommand, OrderStatus};
use domain::worker::{ServiceBase, Worker, WorkerCommand};
use domain::{CoordinateSystem, GeoPoint, Role, ServiceCode};
use projections::dispatch as model;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery, OptionalJson};
use crate::routes::acks::OrderAck;
use crate::state::AppState;
use crate::text::{Line, Paragraph};
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

mod desk;
mod tracking;

pub use self::desk::*;
pub use self::tracking::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(grab))
        .routes(routes!(reassign))
        .routes(routes!(report_location))
        .routes(routes!(arrive))
        .routes(routes!(navigation))
        .routes(routes!(tracking))
        .routes(routes!(offers))
        .routes(routes!(set_base))
        .routes(routes!(list_blocked, block_worker))
        .routes(routes!(unblock_worker))
        .routes(routes!(any_worker_slots))
        .routes(routes!(queue))
        .routes(routes!(rounds))
        .routes(routes!(run_now))
        .routes(routes!(candidates))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointBody {
    pub latitude: f64,
    pub longitude: f64,
    /// `wgs84` (GPS), `gcj02` (Amap, Tencent) or `bd09` (Baidu).
    #[schema(value_type = crate::schemas::Datum)]
    pub system: CoordinateSystem,
}

impl PointBody {
    fn point(&self) -> Result<GeoPoint, ApiError> {
        Ok(GeoPoint::new(self.latitude, self.longitude, self.system)?)
    }
}

/// Take an order offered for grabbing (workers). The first valid grab wins; every later one
/// gets 409 `illegal-state` saying the order is taken.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/grab", tag = "dispatch", security(("bearer" = ["worker"])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn grab(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let worker_id = context.actor.ok_or(ApiError::Unauthenticated)?.id;
    application::dispatch::grab(&state, order_id, worker_id, &context).await?;
    crate::routes::acks::current_ack(&state, order_id).await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OfferView {
    pub order_id: Uuid,
    pub service: String,
    pub city: String,
    pub scheduled_start: DateTime<Utc>,
    pub scheduled_end: DateTime<Utc>,
    /// Until when it is offered.
    pub offered_until: Option<DateTime<Utc>>,
    /// Minutes of driving from where you will be to the address, when both are known.
    pub travel_minutes: Option<i64>,
    pub distance_m: Option<u32>,
    /// The district of the address (its street stays hidden until the order is yours).
    pub district: String,
    /// What the customer pays, in fen.
    pub total: i64,
}

/// Orders offered for grabbing that you can take now: your certified skills, in your radius,
/// free for the slot (travel included), not blocked by the customer, not declined by you.
#[utoipa::path(get, path = "/api/v1/offers", tag = "dispatch", security(("bearer" = ["worker"])),
    responses((status = 200, body = [OfferView])))]
pub async fn offers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<OfferView>>, ApiError> {
    let worker_id = caller.actor()?.id;
    let (worker, _): (Worker, usize) = state.workers.load(worker_id).await?;
    let candidate = domain::dispatch::Candidate {
        worker_id,
        city: worker_city(&state, worker_id).await?,
        worker,
        rating: None,
        recent_earnings_fen: 0,
    };
    let today = domain::values::business_day(Utc::now());
    let mut views = Vec::new();
    let rows = model::orders_in_stage(&state.pool, DispatchStage::Grab.as_str(), 500).await?;
    let opens = application::dispatch::open_orders(&state, &rows).await?;
    let ids: Vec<Uuid> = rows.iter().map(|row| row.order_id).collect();
    let districts: std::collections::HashMap<Uuid, String> = sqlx::query_as::<_, (Uuid, String)>(
        "SELECT order_id, district FROM read_orders WHERE order_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .collect();
    for (row, open) in rows.iter().zip(opens) {
        let Ok(score) =
            domain::dispatch::eligibility(&open, &candidate, &state.dispatch.weights, today)
        else {
            continue;
        };
        let distance_m = match (candidate.worker.position_before(open.start), open.location) {
            (Some(from), Some(to)) => Some(from.distance_m(to).round() as u32),
            _ => None,
        };
        views.push(OfferView {
            order_id: row.order_id,
            service: row.service.clone(),
            city: row.city.clone(),
            scheduled_start: row.starts_at,
            scheduled_end: row.ends_at,
            offered_until: row.stage_deadline,
            travel_minutes: distance_m.map(|_| score.travel_minutes),
            distance_m,
            district: districts.get(&row.order_id).cloned().unwrap_or_default(),
            total: row.state.total.map_or(0, |total| total.get()),
        });
    }
    Ok(axum::Json(views))
}

async fn worker_city(state: &AppState, worker_id: Uuid) -> Result<String, ApiError> {
    let city: Option<String> =
        sqlx::query_scalar("SELECT city FROM read_dispatch_workers WHERE worker_id = $1")
            .bind(worker_id)
            .fetch_optional(&state.pool)
            .await?;
    Ok(city.unwrap_or_default())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BaseBody {
    pub latitude: f64,
    pub longitude: f64,
    #[schema(value_type = crate::schemas::Datum)]
    pub system: CoordinateSystem,
    /// 1 to 100 km.
    pub radius_km: u32,
}

/// Set where you set off from and how far you will go (workers).
#[utoipa::path(put, path = "/api/v1/worker/base", tag = "dispatch", request_body = BaseBody, security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 204), (status = 422, body = crate::error::Problem)))]
pub async fn set_base(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<BaseBody>,
) -> Result<StatusCode, ApiError> {
    let worker_id = context.actor.ok_or(ApiError::Unauthenticated)?.id;
    let base = ServiceBase {
        location: GeoPoint::new(body.latitude, body.longitude, body.system)?,
        radius_km: body.radius_km,
    }
    .validated()?;
    // Where a worker sets off from is often their home: kept sealed under their own key.
    let sealed = state
        .vault
        .seal(
            worker_id,
            &domain::values::SealedPoint::plaintext(&base.location),
        )
        .await
        .map_err(crate::error::vault_error)?;
    let command = WorkerCommand::SetServiceBase {
        base,
        sealed,
        now: context.occurred_at,
    };
    state.workers.execute(worker_id, command, &context).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    pub worker_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockedWorkers {
    pub worker_ids: Vec<Uuid>,
}

/// Workers you blocked (customers).
#[utoipa::path(get, path = "/api/v1/me/blocked-workers", tag = "dispatch", security(("bearer" = ["customer"])),
    responses((status = 200, body = BlockedWorkers)))]
pub async fn list_blocked(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<BlockedWorkers>, ApiError> {
    let customer = state.customer(caller.actor()?.id).await?;
    Ok(axum::Json(BlockedWorkers {
        worker_ids: customer.0.blocked_workers.clone(),
    }))
}

/// Never be offered this worker again (customers).
#[utoipa::path(post, path = "/api/v1/me/blocked-workers", tag = "dispatch", request_body = BlockBody, security(("bearer" = ["customer"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn block_worker(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<BlockBody>,
) -> Result<StatusCode, ApiError> {
    let customer_id = context.actor.ok_or(ApiError::Unauthenticated)?.id;
    let (worker, _): (Worker, usize) = state.workers.load(body.worker_id).await?;
    if !worker.registered {
        return Err(ApiError::not_found("服务人员", "worker"));
    }
    let command = domain::customer::CustomerCommand::BlockWorker {
        worker_id: body.worker_id,
        now: context.occurred_at,
    };
    state
        .customers
        .execute(customer_id, command, &context)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a block (customers).
#[utoipa::path(delete, path = "/api/v1/me/blocked-workers/{worker_id}", tag = "dispatch", security(("bearer" = ["customer"])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 204)))]
pub async fn unblock_worker(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(worker_id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let customer_id = context.actor.ok_or(ApiError::Unauthenticated)?.id;
    let command = domain::customer::CustomerCommand::UnblockWorker {
        worker_id,
        now: context.occurred_at,
    };
    state
        .customers
        .execute(customer_id, command, &context)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnySlotParams {
    #[param(value_type = crate::schemas::Service)]
    pub service: ServiceCode,
    pub city: Line<40>,
    /// The local (Asia/Shanghai) date.
    pub date: NaiveDate,
    pub duration_minutes: u32,
    /// 15 to 240, default 30.
    pub step_minutes: Option<u32>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    #[param(value_type = Option<crate::schemas::Datum>)]
    pub system: Option<CoordinateSystem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnySlot {
    pub start: DateTime<Utc>,
    /// How many eligible workers are free then.
    pub workers: u32,
}

/// Start times on a date at which any eligible worker (certified for the service, in range,
/// free with travel time) can serve this service at this address.
#[utoipa::path(get, path = "/api/v1/slots", security(()), tag = "availability", params(AnySlotParams),
    responses((status = 200, body = [AnySlot]), (status = 422, body = crate::error::Problem)))]
pub async fn any_worker_slots(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<AnySlotParams>,
) -> Result<axum::Json<Vec<AnySlot>>, ApiError> {
    let spec = params.service.spec();
    if !(spec.min_duration_minutes..=spec.max_duration_minutes).contains(&params.duration_minutes) {
        return Err(ApiError::Invalid(
            Text::new("order.bad-duration")
                .with("min", spec.min_duration_minutes)
                .with("max", spec.max_duration_minutes),
        ));
    }
    let step = crate::routes::params::slot_step(params.step_minutes)?;
    let location =
        crate::routes::params::optional_point(params.latitude, params.longitude, params.system)?;
    let city = domain::values::required_text("城市 city", &params.city, 40)?;
    let now = Utc::now();
    let today = domain::values::business_day(now);
    let duration = chrono::Duration::minutes(i64::from(params.duration_minutes));
    let mut counts: BTreeMap<DateTime<Utc>, u32> = BTreeMap::new();
    for row in
        model::dispatchable_workers(&state.pool, Some(std::slice::from_ref(&city)), now).await?
    {
        let facts = row.state.facts(row.worker_id, today);
        let wanted = Wanted {
            service: params.service,
            location,
            city: None,
            blocked: &[],
            declined_by: &[],
        };
        if may_take(&Applicant::new(&row.state, &facts), &wanted).is_err() {
            continue;
        }
        for start in row
            .state
            .free_slots(params.date, duration, step, location, now)
        {
            *counts.entry(start).or_default() += 1;
        }
    }
    Ok(axum::Json(
        counts
            .into_iter()
            .map(|(start, workers)| AnySlot { start, workers })
            .collect(),
    ))
}
