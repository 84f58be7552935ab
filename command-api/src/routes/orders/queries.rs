//! Reading orders: one order, the filtered and paged list, counts by status and daily figures, each
//! as its reader may see it.

use super::*;
use domain::message::Text;

/// An order, as its customer, its worker or an admin sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub worker_id: Option<Uuid>,
    pub service: String,
    pub status: String,
    pub status_zh: String,
    pub status_en: String,
    /// Fen.
    pub unit_price: i64,
    pub quantity: i32,
    /// Fen.
    pub total: i64,
    pub scheduled_start: DateTime<Utc>,
    pub duration_minutes: i32,
    pub city: String,
    pub district: String,
    pub address_detail: String,
    pub contact_name: String,
    /// Masked, e.g. `138****5678`.
    pub contact_phone: String,
    pub note: Option<String>,
    pub placed_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub departed_at: Option<DateTime<Utc>>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by_role: Option<String>,
    pub cancel_reason: Option<String>,
    pub cancel_stage: Option<String>,
    /// Fen given back when a paid order was cancelled.
    pub refund: Option<i64>,
    /// Fen kept by the cancellation policy (a late cancellation), the worker's share included.
    pub fee_kept: Option<i64>,
    /// Fen of the kept fee that went to the worker who had accepted the order.
    pub fee_to_worker: Option<i64>,
    pub disputed_at: Option<DateTime<Utc>>,
    pub dispute_reason: Option<String>,
    pub rating_quality: Option<i16>,
    pub rating_attitude: Option<i16>,
    pub rating_skill: Option<i16>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<OrderRow> for OrderView {
    fn from(row: OrderRow) -> Self {
        let (_, status_zh, status_en) =
            OrderStatus::parse(&row.status).unwrap_or_default().labels();
        OrderView {
            order_id: row.order_id,
            customer_id: row.customer_id,
            worker_id: row.worker_id,
            service: row.service,
            status: row.status,
            status_zh: status_zh.into(),
            status_en: status_en.into(),
            unit_price: row.unit_price,
            quantity: row.quantity,
            total: row.total,
            scheduled_start: row.scheduled_start,
            duration_minutes: row.duration_minutes,
            city: row.city,
            district: row.district,
            address_detail: row.address_detail,
            contact_name: row.contact_name,
            contact_phone: row.contact_phone_masked,
            note: row.note,
            placed_at: row.placed_at,
            paid_at: row.paid_at,
            assigned_at: row.assigned_at,
            accepted_at: row.accepted_at,
            departed_at: row.departed_at,
            arrived_at: row.arrived_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            cancelled_at: row.cancelled_at,
            cancelled_by_role: row.cancelled_by_role,
            cancel_reason: row.cancel_reason,
            cancel_stage: row.cancel_stage,
            refund: row.refund_fen,
            fee_kept: row.fee_kept_fen,
            fee_to_worker: row.fee_to_worker_fen,
            disputed_at: row.disputed_at,
            dispute_reason: row.dispute_reason,
            rating_quality: row.rating_quality,
            rating_attitude: row.rating_attitude,
            rating_skill: row.rating_skill,
            updated_at: row.updated_at,
            version: row.last_sequence,
        }
    }
}

fn may_see(actor: Actor, row: &OrderRow) -> bool {
    match actor.role {
        Role::Admin => true,
        Role::Customer => row.customer_id == actor.id,
        Role::Worker => row.worker_id == Some(actor.id),
        Role::Analyst | Role::System => false,
    }
}

/// One order. Others' orders answer 404, so their existence is not revealed.
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders", security(("bearer" = ["customer", "worker", "admin"])),
    params(("order_id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = crate::error::Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<OrderView>, ApiError> {
    let actor = caller.actor()?;
    let row = order_views::get(&state.pool, order_id)
        .await?
        .filter(|row| may_see(actor, row))
        .ok_or_else(|| ApiError::not_found("订单", "order"))?;
    Ok(axum::Json(row.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Comma-separated statuses.
    pub status: Option<Line<200>>,
    pub service: Option<Line<30>>,
    /// Admins only.
    pub customer_id: Option<Uuid>,
    /// Admins only.
    pub worker_id: Option<Uuid>,
    pub placed_from: Option<DateTime<Utc>>,
    pub placed_to: Option<DateTime<Utc>>,
    pub scheduled_from: Option<DateTime<Utc>>,
    pub scheduled_to: Option<DateTime<Utc>>,
    /// Free text, Chinese included (保洁 finds 日常保洁 and 深度保洁): the service, the city,
    /// district or street, the contact's name, or the last four digits of their phone.
    pub q: Option<Line<100>>,
    /// `placed_at` (default), `scheduled_start` or `total`.
    #[param(value_type = Option<crate::schemas::OrderSort>)]
    pub sort: Option<SortKey>,
    /// `desc` (default) or `asc`.
    #[param(value_type = Option<crate::schemas::SortDirection>)]
    pub direction: Option<Direction>,
    pub cursor: Option<Line<200>>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Orders: a customer's own, a worker's assigned, or (admins) all, filtered and sorted.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = ["customer", "worker", "admin"])), params(ListParams),
    responses((status = 200, body = OrderPage), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<axum::Json<OrderPage>, ApiError> {
    let actor = caller.actor()?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Invalid(Text::new(
            "orders.limit-must-between-1-200",
        )));
    }
    let mut statuses = Vec::new();
    for raw in params
        .status
        .iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|raw| !raw.is_empty())
    {
        statuses.push(OrderStatus::parse(raw).ok_or_else(|| {
            ApiError::Invalid(Text::new("orders.unknown-status").with("raw", raw))
        })?);
    }
    if let Some(service) = &params.service {
        if ServiceCode::parse(service).is_none() {
            return Err(ApiError::Invalid(
                Text::new("orders.unknown-service").with("service", service),
            ));
        }
    }
    let mut filter = OrderFilter {
        customer_id: params.customer_id,
        worker_id: params.worker_id,
        statuses,
        service: params.service.map(String::from),
        placed_from: params.placed_from,
        placed_to: params.placed_to,
        scheduled_from: params.scheduled_from,
        scheduled_to: params.scheduled_to,
        text: params
            .q
            .filter(|text| !text.trim().is_empty())
            .map(String::from),
    };
    match actor.role {
        Role::Admin => {}
        Role::Customer => filter.customer_id = Some(actor.id),
        Role::Worker => filter.worker_id = Some(actor.id),
        Role::Analyst | Role::System => return Err(ApiError::forbidden()),
    }
    let page = order_views::list(
        &state.pool,
        &filter,
        params.sort.unwrap_or_default(),
        params.direction.unwrap_or_default(),
        params.cursor.as_deref(),
        limit,
    )
    .await
    .map_err(|error| match error {
        order_views::ListError::BadCursor => ApiError::Invalid(Text::new("orders.bad-cursor")),
        order_views::ListError::Database(cause) => cause.into(),
    })?;
    Ok(axum::Json(OrderPage {
        items: page.items.into_iter().map(OrderView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CountParams {
    /// The same free text as the order list's `q`.
    pub q: Option<Line<100>>,
    pub service: Option<Line<30>>,
    pub placed_from: Option<DateTime<Utc>>,
    pub placed_to: Option<DateTime<Utc>>,
}

/// How many orders are in each status, optionally of a search (admins).
#[utoipa::path(get, path = "/api/v1/admin/order-counts", tag = "admin", security(("bearer" = ["admin"])), params(CountParams),
    responses((status = 200, body = [StatusCount])))]
pub async fn counts(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<CountParams>,
) -> Result<axum::Json<Vec<StatusCount>>, ApiError> {
    let filter = OrderFilter {
        service: params.service.map(String::from),
        placed_from: params.placed_from,
        placed_to: params.placed_to,
        text: params
            .q
            .filter(|text| !text.trim().is_empty())
            .map(String::from),
        ..OrderFilter::default()
    };
    let counts = order_views::counts_by_status(&state.pool, &filter).await?;
    Ok(axum::Json(
        counts
            .into_iter()
            .map(|(status, count)| StatusCount { status, count })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// First day (Beijing), default 29 days before `to`.
    pub from: Option<chrono::NaiveDate>,
    /// Last day (Beijing), default today.
    pub to: Option<chrono::NaiveDate>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DayStat {
    /// The day the orders were placed, Beijing time.
    pub day: chrono::NaiveDate,
    pub service: String,
    pub status: String,
    pub orders: i64,
    /// Sum of the orders' totals, fen.
    pub total: i64,
}

/// Orders placed per day, service and status, with their value, for the dashboard (admins).
/// At most 366 days at a time.
#[utoipa::path(get, path = "/api/v1/admin/order-stats", tag = "admin", security(("bearer" = ["admin"])), params(StatsParams),
    responses((status = 200, body = [DayStat]), (status = 422, body = crate::error::Problem)))]
pub async fn stats(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<StatsParams>,
) -> Result<axum::Json<Vec<DayStat>>, ApiError> {
    let to = params
        .to
        .unwrap_or_else(|| domain::values::business_day(chrono::Utc::now()));
    let from = params.from.unwrap_or(to - chrono::Duration::days(29));
    if from > to || (to - from).num_days() > 365 {
        return Err(ApiError::Invalid(Text::new(
            "orders.range-must-start-before-ends",
        )));
    }
    let start = domain::availability::local_instant(from, chrono::NaiveTime::MIN);
    let end =
        domain::availability::local_instant(to + chrono::Duration::days(1), chrono::NaiveTime::MIN);
    let rows: Vec<(chrono::NaiveDate, String, String, i64, i64)> = sqlx::query_as(
        "SELECT (placed_at AT TIME ZONE 'Asia/Shanghai')::date AS day, service, status,
                count(*), coalesce(sum(total), 0)::bigint
           FROM read_orders WHERE placed_at >= $1 AND placed_at < $2
          GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|(day, service, status, orders, total)| DayStat {
                day,
                service,
                status,
                orders,
                total,
            })
            .collect(),
    ))
}
