//! Dispatch and tracking over HTTP: grabbing offered orders, admins' reassignment and queue,
//! workers' service base, customers' blocked workers, location reports, check-in, navigation,
//! tracking, and the slot listing across every eligible worker.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::Router;
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
use crate::routes::orders::OrderAck;
use crate::state::AppState;
use crate::text::{Line, Paragraph};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders/{order_id}/grab", post(grab))
        .route("/api/v1/orders/{order_id}/reassign", post(reassign))
        .route("/api/v1/orders/{order_id}/location", post(report_location))
        .route("/api/v1/orders/{order_id}/arrive", post(arrive))
        .route("/api/v1/orders/{order_id}/navigation", get(navigation))
        .route("/api/v1/orders/{order_id}/tracking", get(tracking))
        .route("/api/v1/offers", get(offers))
        .route("/api/v1/worker/base", put(set_base))
        .route(
            "/api/v1/me/blocked-workers",
            get(list_blocked).post(block_worker),
        )
        .route(
            "/api/v1/me/blocked-workers/{worker_id}",
            delete(unblock_worker),
        )
        .route("/api/v1/slots", get(any_worker_slots))
        .route("/api/v1/admin/dispatch/queue", get(queue))
        .route("/api/v1/admin/dispatch/rounds", get(rounds))
        .route("/api/v1/admin/dispatch/run", post(run_now))
        .route(
            "/api/v1/admin/orders/{order_id}/candidates",
            get(candidates),
        )
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
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/grab", tag = "dispatch", security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn grab(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let worker_id = context.actor.ok_or(ApiError::Unauthenticated)?.id;
    application::dispatch::grab(&state, order_id, worker_id, &context).await?;
    crate::routes::orders::current_ack(&state, order_id).await
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
#[utoipa::path(get, path = "/api/v1/offers", tag = "dispatch", security(("bearer" = [])),
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
pub struct ReassignBody {
    pub worker_id: Uuid,
    pub reason: Paragraph<500>,
}

/// Move an assigned or accepted order to another worker, with a reason (admins). The new
/// worker's time is reserved first; the old worker's is given back.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/reassign", tag = "dispatch", request_body = ReassignBody, security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn reassign(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReassignBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    if order.status == OrderStatus::New {
        return Err(ApiError::not_found("订单", "order"));
    }
    let (worker, _): (Worker, usize) = state.workers.load(body.worker_id).await?;
    let command = OrderCommand::Reassign {
        worker: worker.facts(
            body.worker_id,
            domain::values::business_day(context.occurred_at),
        ),
        by,
        reason: body.reason.to_string(),
        now: context.occurred_at,
    };
    let reason = body.reason;
    order.decide_only(command.clone())?;
    let previous = order.worker_id;
    application::dispatch::hold(&state, body.worker_id, &order, order_id, &context).await?;
    if let Err(refusal) = state.orders.execute(order_id, command, &context).await {
        application::dispatch::release(
            &state,
            body.worker_id,
            order_id,
            "改派失败 / reassignment failed",
            &context,
        )
        .await;
        return Err(refusal.into());
    }
    if let Some(previous) = previous {
        application::dispatch::release(
            &state,
            previous,
            order_id,
            "订单已改派 / the order was reassigned",
            &context,
        )
        .await;
    }
    // The new worker hears of it through the reminder outbox; the customer and the worker
    // it was taken from are told here.
    let told = [
        (
            order.customer_id,
            "您的订单已更换服务人员 / Another worker will serve your order",
        ),
        (
            previous,
            "订单已改派给其他服务人员 / The order was given to another worker",
        ),
    ];
    for (person, title) in told {
        if let Some(person) = person {
            if let Err(error) = application::notifications::notify(
                &state.pool,
                application::notifications::Recipient::Person(person),
                "order_reassigned",
                title,
                &format!("原因：{reason} / Reason: {reason}", reason = reason.trim()),
            )
            .await
            {
                tracing::warn!(error = %error, "a reassignment notice was not written");
            }
        }
    }
    crate::routes::orders::current_ack(&state, order_id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationReport {
    pub latitude: f64,
    pub longitude: f64,
    #[schema(value_type = crate::schemas::Datum)]
    pub system: CoordinateSystem,
    /// The fix's accuracy in metres (at most 500).
    pub accuracy_m: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LocationAck {
    pub order_id: Uuid,
    /// Estimated arrival at the address, when it has coordinates.
    pub eta: Option<DateTime<Utc>>,
    pub distance_m: Option<u32>,
}

/// Report where you are while on the way (workers; at most every 10 seconds).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/location", tag = "dispatch", request_body = LocationReport, security(("bearer" = [])),
    params(("order_id" = Uuid, Path)),
    responses((status = 200, body = LocationAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn report_location(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<LocationReport>,
) -> Result<axum::Json<LocationAck>, ApiError> {
    let worker_id = context.actor.ok_or(ApiError::Unauthenticated)?.id;
    let location = GeoPoint::new(body.latitude, body.longitude, body.system)?;
    // Where a worker goes is theirs: the report is kept sealed under their own key.
    let sealed = state
        .vault
        .seal(
            worker_id,
            &domain::values::SealedPoint::plaintext(&location),
        )
        .await
        .map_err(crate::error::vault_error)?;
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    let destination = opened_destination(&state, &order).await?;
    let command = OrderCommand::ReportLocation {
        worker_id,
        location,
        sealed,
        destination,
        accuracy_m: body.accuracy_m,
        now: context.occurred_at,
    };
    let committed = state.orders.execute(order_id, command, &context).await?;
    Ok(axum::Json(LocationAck {
        order_id,
        eta: committed.state.eta,
        distance_m: destination
            .or(committed.state.location)
            .map(|address| address.distance_m(location).round() as u32),
    }))
}

/// Check in at the address (workers): with your position, within 300 m of the address, from
/// an hour before the start until the end of the service.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/arrive", tag = "orders", request_body = Option<PointBody>, security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn arrive(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    OptionalJson(body): OptionalJson<PointBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let worker_id = context.actor.ok_or(ApiError::Unauthenticated)?.id;
    let position = body.map(|body| body.point()).transpose()?;
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    let command = OrderCommand::Arrive {
        worker_id,
        position,
        destination: opened_destination(&state, &order).await?,
        now: context.occurred_at,
    };
    let committed = state.orders.execute(order_id, command, &context).await?;
    Ok(axum::Json(OrderAck {
        order_id,
        status: committed.state.status.as_str().to_owned(),
        version: committed.version,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FromParams {
    /// Where you are now; without it, your last reported position or your base.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    #[param(value_type = Option<crate::schemas::Datum>)]
    pub system: Option<CoordinateSystem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PointView {
    pub latitude: f64,
    pub longitude: f64,
    pub system: String,
}

impl From<GeoPoint> for PointView {
    fn from(point: GeoPoint) -> Self {
        PointView {
            latitude: point.latitude,
            longitude: point.longitude,
            system: point.system.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NavigationView {
    pub order_id: Uuid,
    /// The destination in each datum.
    pub wgs84: PointView,
    pub gcj02: PointView,
    pub bd09: PointView,
    #[schema(value_type = NavigationLinksView)]
    pub links: NavigationLinks,
    pub distance_m: Option<u32>,
    pub travel_minutes: Option<i64>,
    pub estimated_arrival: Option<DateTime<Utc>>,
}

/// The map apps' links of a `NavigationView`, as the document describes them.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NavigationLinksView {
    /// Amap (高德地图), GCJ-02.
    amap: String,
    /// Baidu Maps (百度地图), BD-09.
    baidu: String,
    /// Tencent Maps (腾讯地图), GCJ-02.
    tencent: String,
}

/// Navigation to the order's address (its worker or admins): links that open Amap, Baidu Maps
/// and Tencent Maps at the destination in each one's datum, with distance and travel time.
#[utoipa::path(get, path = "/api/v1/orders/{order_id}/navigation", tag = "dispatch", security(("bearer" = [])),
    params(("order_id" = Uuid, Path), FromParams),
    responses((status = 200, body = NavigationView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn navigation(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<Uuid>,
    AppQuery(params): AppQuery<FromParams>,
) -> Result<axum::Json<NavigationView>, ApiError> {
    let actor = caller.actor()?;
    let from =
        crate::routes::params::optional_point(params.latitude, params.longitude, params.system)?;
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    let visible = match actor.role {
        Role::Admin => order.status != OrderStatus::New,
        Role::Worker => order.worker_id == Some(actor.id),
        _ => false,
    };
    if !visible {
        return Err(ApiError::not_found("订单", "order"));
    }
    let destination = opened_destination(&state, &order)
        .await?
        .or(order.location)
        .ok_or_else(|| {
            ApiError::IllegalState("该地址没有坐标 / this address has no coordinates".into())
        })?;
    let last = last_position(&state, &order).await?;
    let from = match (from, last) {
        (Some(from), _) => Some(from),
        (None, Some(last)) => Some(last),
        (None, None) => {
            let (worker, _): (Worker, usize) = match order.worker_id {
                Some(worker_id) => state.workers.load(worker_id).await?,
                None => (Worker::default(), 0),
            };
            open_point(&state, worker.base_sealed.as_ref())
                .await?
                .or(worker.base.map(|base| base.location))
        }
    };
    let place =
        sqlx::query_scalar::<_, String>("SELECT district FROM read_orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&state.pool)
            .await?
            .unwrap_or_else(|| "服务地址".to_owned());
    let travel = from.map(|from| driving_minutes(from, destination));
    Ok(axum::Json(NavigationView {
        order_id,
        wgs84: destination.to_system(CoordinateSystem::Wgs84).into(),
        gcj02: destination.to_system(CoordinateSystem::Gcj02).into(),
        bd09: destination.to_system(CoordinateSystem::Bd09).into(),
        links: navigation_links(destination, &place),
        distance_m: from.map(|from| from.distance_m(destination).round() as u32),
        travel_minutes: travel,
        estimated_arrival: travel.map(|minutes| Utc::now() + chrono::Duration::minutes(minutes)),
    }))
}

/// The worker's last reported position, opened from its seal (its cell when it can no longer
/// be opened).
async fn last_position(state: &AppState, order: &Order) -> Result<Option<GeoPoint>, ApiError> {
    Ok(open_point(state, order.last_sealed_location.as_ref())
        .await?
        .or(order.last_location))
}

/// The order's address point, opened from its seal under the customer's key (`None` when the
/// address has no coordinates or they can no longer be opened).
pub(crate) async fn opened_destination(
    state: &AppState,
    order: &Order,
) -> Result<Option<GeoPoint>, ApiError> {
    open_point(state, order.sealed_location.as_ref()).await
}

/// A sealed point, opened.
pub(crate) async fn open_point(
    state: &AppState,
    sealed: Option<&domain::values::Sealed>,
) -> Result<Option<GeoPoint>, ApiError> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let opened = state
        .vault
        .open(sealed)
        .await
        .map_err(crate::error::vault_error)?;
    Ok(opened
        .as_deref()
        .and_then(domain::values::SealedPoint::parse))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrackingView {
    pub order_id: Uuid,
    pub status: String,
    pub worker_id: Option<Uuid>,
    pub last_location: Option<PointView>,
    pub last_reported_at: Option<DateTime<Utc>>,
    pub estimated_arrival: Option<DateTime<Utc>>,
    pub dispatch_stage: Option<String>,
    pub stage_deadline: Option<DateTime<Utc>>,
    pub respond_by: Option<DateTime<Utc>>,
    pub pay_by: Option<DateTime<Utc>>,
    /// Metres between the worker's last reported cell and the address's cell (a grid of
    /// about a kilometre), while they are on the way.
    pub distance_m: Option<u32>,
}

/// Where the order stands and where its worker is (its customer, its worker, admins).
#[utoipa::path(get, path = "/api/v1/orders/{order_id}/tracking", tag = "dispatch", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)),
    responses((status = 200, body = TrackingView), (status = 404, body = crate::error::Problem)))]
pub async fn tracking(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<TrackingView>, ApiError> {
    let actor = caller.actor()?;
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    let visible = order.status != OrderStatus::New
        && match actor.role {
            Role::Admin => true,
            Role::Customer => order.customer_id == Some(actor.id),
            Role::Worker => order.worker_id == Some(actor.id),
            _ => false,
        };
    if !visible {
        return Err(ApiError::not_found("订单", "order"));
    }
    Ok(axum::Json(TrackingView {
        order_id,
        status: order.status.as_str().to_owned(),
        worker_id: order.worker_id,
        last_location: last_position(&state, &order).await?.map(PointView::from),
        last_reported_at: order.last_ping_at,
        estimated_arrival: order.eta,
        dispatch_stage: order.stage.map(|stage| stage.as_str().to_owned()),
        stage_deadline: order.stage_deadline,
        respond_by: order.respond_by,
        pay_by: order.pay_by,
        distance_m: match (order.status, order.last_location, order.location) {
            (OrderStatus::OnTheWay, Some(from), Some(to)) => {
                Some(from.to_system(to.system).distance_m(to).round() as u32)
            }
            _ => None,
        },
    }))
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
#[utoipa::path(put, path = "/api/v1/worker/base", tag = "dispatch", request_body = BaseBody, security(("bearer" = [])),
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
#[utoipa::path(get, path = "/api/v1/me/blocked-workers", tag = "dispatch", security(("bearer" = [])),
    responses((status = 200, body = BlockedWorkers)))]
pub async fn list_blocked(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<BlockedWorkers>, ApiError> {
    let (customer, _): (domain::customer::Customer, usize) =
        state.customers.load(caller.actor()?.id).await?;
    Ok(axum::Json(BlockedWorkers {
        worker_ids: customer.blocked_workers,
    }))
}

/// Never be offered this worker again (customers).
#[utoipa::path(post, path = "/api/v1/me/blocked-workers", tag = "dispatch", request_body = BlockBody, security(("bearer" = [])),
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
#[utoipa::path(delete, path = "/api/v1/me/blocked-workers/{worker_id}", tag = "dispatch", security(("bearer" = [])),
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
#[utoipa::path(get, path = "/api/v1/slots", tag = "availability", params(AnySlotParams),
    responses((status = 200, body = [AnySlot]), (status = 422, body = crate::error::Problem)))]
pub async fn any_worker_slots(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<AnySlotParams>,
) -> Result<axum::Json<Vec<AnySlot>>, ApiError> {
    let spec = params.service.spec();
    if !(spec.min_duration_minutes..=spec.max_duration_minutes).contains(&params.duration_minutes) {
        return Err(ApiError::Invalid(format!(
            "服务时长须在 {} 到 {} 分钟之间 / duration must be between {} and {} minutes",
            spec.min_duration_minutes,
            spec.max_duration_minutes,
            spec.min_duration_minutes,
            spec.max_duration_minutes
        )));
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueItem {
    pub order_id: Uuid,
    pub service: String,
    pub city: String,
    pub status: String,
    pub stage: Option<String>,
    pub stage_deadline: Option<DateTime<Utc>>,
    pub respond_by: Option<DateTime<Utc>>,
    pub worker_id: Option<Uuid>,
    pub scheduled_start: DateTime<Utc>,
    pub waiting_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    /// `named`, `grab`, `auto` or `admin`; all stages when absent.
    pub stage: Option<Line<20>>,
}

/// Orders being dispatched, by stage, oldest first (admins). `stage=admin` is the manual queue.
#[utoipa::path(get, path = "/api/v1/admin/dispatch/queue", tag = "dispatch", security(("bearer" = [])), params(QueueParams),
    responses((status = 200, body = [QueueItem]), (status = 422, body = crate::error::Problem)))]
pub async fn queue(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<QueueParams>,
) -> Result<axum::Json<Vec<QueueItem>>, ApiError> {
    if let Some(stage) = &params.stage {
        if DispatchStage::parse(stage).is_none() {
            return Err(ApiError::Invalid(format!(
                "未知的派单阶段 / unknown dispatch stage: {stage}"
            )));
        }
    }
    let rows = sqlx::query_as::<
        _,
        (
            Uuid,
            String,
            String,
            String,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<Uuid>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
        ),
    >(
        "SELECT order_id, service, city, status, stage, stage_deadline, respond_by, worker_id,
                starts_at, waiting_since
           FROM read_dispatch_orders
          WHERE status IN ('paid', 'dispatching', 'assigned') AND ($1::text IS NULL OR stage = $1)
          ORDER BY waiting_since NULLS FIRST, order_id LIMIT 500",
    )
    .bind(&params.stage)
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| QueueItem {
                order_id: row.0,
                service: row.1,
                city: row.2,
                status: row.3,
                stage: row.4,
                stage_deadline: row.5,
                respond_by: row.6,
                worker_id: row.7,
                scheduled_start: row.8,
                waiting_since: row.9,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoundView {
    pub ran_at: DateTime<Utc>,
    pub orders: i32,
    pub workers: i32,
    pub assigned: i32,
    pub unassigned: i32,
    pub refused: i32,
    pub total_cost: i64,
    pub millis: i64,
}

/// The latest automatic rounds (admins).
#[utoipa::path(get, path = "/api/v1/admin/dispatch/rounds", tag = "dispatch", security(("bearer" = [])),
    responses((status = 200, body = [RoundView])))]
pub async fn rounds(State(state): State<AppState>) -> Result<axum::Json<Vec<RoundView>>, ApiError> {
    let rows = sqlx::query_as::<_, (DateTime<Utc>, i32, i32, i32, i32, i32, i64, i64)>(
        "SELECT ran_at, orders, workers, assigned, unassigned, refused, total_cost, millis
           FROM dispatch_rounds ORDER BY round_id DESC LIMIT 50",
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| RoundView {
                ran_at: row.0,
                orders: row.1,
                workers: row.2,
                assigned: row.3,
                unassigned: row.4,
                refused: row.5,
                total_cost: row.6,
                millis: row.7,
            })
            .collect(),
    ))
}

/// Run the dispatcher's timers and an automatic round now (admins), instead of waiting for the
/// schedule. Runs only if no other process is running it at this moment.
#[utoipa::path(post, path = "/api/v1/admin/dispatch/run", tag = "dispatch", security(("bearer" = [])),
    responses((status = 200, body = Object)))]
pub async fn run_now(
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let report = application::jobs::dispatch_tick(&state, Utc::now()).await?;
    Ok(axum::Json(
        serde_json::json!({ "ran": report.is_some(), "report": report }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CandidateView {
    pub worker_id: Uuid,
    /// Present when the worker is eligible: the cost and its parts.
    #[schema(value_type = Option<Object>)]
    pub score: Option<domain::dispatch::AssignmentScore>,
    /// Present when not eligible.
    pub ineligible: Option<String>,
}

/// Every dispatchable worker in the order's city, eligible ones first by cost, with why the
/// others cannot take it (admins, for dispatching by hand).
#[utoipa::path(get, path = "/api/v1/admin/orders/{order_id}/candidates", tag = "dispatch", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)),
    responses((status = 200, body = [CandidateView]), (status = 404, body = crate::error::Problem)))]
pub async fn candidates(
    State(state): State<AppState>,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<Vec<CandidateView>>, ApiError> {
    let row = model::order(&state.pool, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("订单", "order"))?;
    let open = application::dispatch::open_order(&state, &row).await?;
    let now = Utc::now();
    let today = domain::values::business_day(now);
    let mut views: Vec<CandidateView> =
        model::dispatchable_workers(&state.pool, Some(std::slice::from_ref(&row.city)), now)
            .await?
            .into_iter()
            .map(application::dispatch::candidate)
            .map(|candidate| {
                let outcome = domain::dispatch::eligibility(
                    &open,
                    &candidate,
                    &state.dispatch.weights,
                    today,
                );
                CandidateView {
                    worker_id: candidate.worker_id,
                    ineligible: outcome.as_ref().err().map(describe),
                    score: outcome.ok(),
                }
            })
            .collect();
    views.sort_by_key(|view| {
        (
            view.score.is_none(),
            view.score.as_ref().map_or(0, |score| score.total),
        )
    });
    Ok(axum::Json(views))
}

fn describe(reason: &Ineligible) -> String {
    match reason {
        Ineligible::Inactive => "未在岗或未通过审核 / not active or not approved",
        Ineligible::NotQualified => "无该服务的认证技能 / not certified for this service",
        Ineligible::Declined => "已拒绝或错过此单 / declined or missed this order",
        Ineligible::Blocked => "被客户屏蔽 / blocked by the customer",
        Ineligible::OutOfRange => "超出服务范围 / outside the service radius",
        Ineligible::Busy => "该时段已有安排 / busy at that time",
    }
    .to_owned()
}
