//! A worker on the way: location reports, check-in, navigation links and the customer tracking
//! view.

use super::*;
use domain::message::Text;

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
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/location", tag = "dispatch", request_body = LocationReport, security(("bearer" = ["worker"])),
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
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/arrive", tag = "orders", request_body = Option<PointBody>, security(("bearer" = ["worker"])),
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
#[utoipa::path(get, path = "/api/v1/orders/{order_id}/navigation", tag = "dispatch", security(("bearer" = ["worker", "admin"])),
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
        .ok_or_else(|| ApiError::IllegalState(Text::new("dispatch.address-no-coordinates")))?;
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
#[utoipa::path(get, path = "/api/v1/orders/{order_id}/tracking", tag = "dispatch", security(("bearer" = ["customer", "worker", "admin"])),
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
