//! Placing, following and moving orders through their life.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use domain::order::{Booking, Order, OrderCommand, OrderStatus};
use domain::{
    Actor, Address, CoordinateSystem, Fen, GeoPoint, PhoneNumber, PlainAddress, Role, SealedPoint,
    ServiceCode,
};
use projections::orders::{self as order_views, Direction, OrderFilter, OrderRow, SortKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::params::ReasonBody;
use crate::state::AppState;
use crate::text::{Line, Paragraph};
use application::commands::{CommandContext, Committed};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders", post(place).get(list))
        .route("/api/v1/orders/{order_id}", get(show))
        .route("/api/v1/orders/{order_id}/cancel", post(cancel))
        .route("/api/v1/orders/{order_id}/dispute", post(dispute))
        .route(
            "/api/v1/admin/orders/{order_id}/resolve-dispute",
            post(resolve_dispute),
        )
        .route(
            "/api/v1/orders/{order_id}/review",
            post(review).get(crate::routes::reviews::of_order),
        )
        .route("/api/v1/orders/{order_id}/cancellation", get(cancellation))
        .route("/api/v1/orders/{order_id}/payments", post(record_payment))
        .route("/api/v1/orders/{order_id}/dispatch", post(open_dispatch))
        .route("/api/v1/orders/{order_id}/assignment", post(assign))
        .route("/api/v1/orders/{order_id}/accept", post(accept))
        .route("/api/v1/orders/{order_id}/decline", post(decline))
        .route("/api/v1/orders/{order_id}/depart", post(depart))
        .route("/api/v1/orders/{order_id}/start", post(start))
        .route("/api/v1/orders/{order_id}/finish", post(finish))
        .route("/api/v1/admin/order-counts", get(counts))
        .route("/api/v1/admin/order-stats", get(stats))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    pub latitude: f64,
    pub longitude: f64,
    /// `wgs84`, `gcj02` or `bd09`.
    #[schema(value_type = crate::schemas::Datum)]
    pub system: CoordinateSystem,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    pub city: Line<40>,
    pub district: Line<40>,
    pub detail: Line<200>,
    pub contact_name: Line<40>,
    pub contact_phone: Line<20>,
    pub location: Option<LocationBody>,
}

impl AddressBody {
    /// Checks the address, then seals its personal parts under `owner`'s key.
    pub(crate) async fn parse_and_seal(
        self,
        vault: &vault::Vault,
        owner: Uuid,
    ) -> Result<Address, ApiError> {
        let location = self
            .location
            .map(|point| GeoPoint::new(point.latitude, point.longitude, point.system))
            .transpose()?;
        let plain = PlainAddress::parse(
            &self.city,
            &self.district,
            &self.detail,
            &self.contact_name,
            PhoneNumber::parse(&self.contact_phone)?,
            location,
        )?;
        let point = plain.location.as_ref().map(SealedPoint::plaintext);
        let mut texts = vec![
            plain.detail.as_str(),
            plain.contact_name.as_str(),
            plain.contact_phone.as_str(),
        ];
        texts.extend(point.as_deref());
        let mut sealed = vault
            .seal_all(owner, &texts)
            .await
            .map_err(crate::error::vault_error)?
            .into_iter();
        let mut next = || sealed.next().expect("every value was sealed");
        Ok(Address {
            city: plain.city,
            district: plain.district,
            detail: next(),
            contact_name: next(),
            contact_phone: next(),
            location: plain
                .location
                .map(|location| SealedPoint::new(&location, next())),
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderBody {
    /// A catalogue service code, e.g. `daily_cleaning`.
    #[schema(value_type = crate::schemas::Service, example = "daily_cleaning")]
    pub service: ServiceCode,
    /// Unit price in fen, within the service's range.
    pub unit_price: i64,
    /// Number of units (hours, visits or 26-day terms).
    pub quantity: u32,
    /// UTC start time.
    pub scheduled_start: DateTime<Utc>,
    pub duration_minutes: u32,
    /// Where the service takes place; or give `address_id` instead.
    pub address: Option<AddressBody>,
    /// One of your saved addresses (`/api/v1/me/addresses`), instead of `address`.
    pub address_id: Option<Uuid>,
    pub note: Option<Paragraph<500>>,
    /// A worker the customer chooses. Their time is held while the order awaits payment, and
    /// after payment they must confirm in time or the order goes to the next dispatch stage.
    pub worker_id: Option<Uuid>,
}

/// The outcome of a command on an order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderAck {
    pub order_id: Uuid,
    pub status: String,
    /// The order's version (the sequence number of its last event).
    pub version: usize,
}

pub(crate) fn ack(order_id: Uuid, committed: Committed<Order>) -> axum::Json<OrderAck> {
    axum::Json(OrderAck {
        order_id,
        status: committed.state.status.as_str().to_owned(),
        version: committed.version,
    })
}

/// Place an order (customers).
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = PlaceOrderBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 201, body = OrderAck), (status = 422, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)))]
pub async fn place(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<PlaceOrderBody>,
) -> Result<Response, ApiError> {
    let actor = context.actor.ok_or(ApiError::Unauthenticated)?;
    // The customer's own stream decides whether they may order.
    let (customer, _): (domain::customer::Customer, usize) = state.customers.load(actor.id).await?;
    let note = body
        .note
        .map(|note| note.trim().chars().take(500).collect::<String>())
        .filter(|note| !note.is_empty());
    // Free text to the worker often says who is at home and when: sealed like the address.
    let note = match note {
        Some(note) => Some(
            state
                .vault
                .seal(actor.id, &note)
                .await
                .map_err(crate::error::vault_error)?,
        ),
        None => None,
    };
    let booking = Booking {
        customer_id: actor.id,
        service: body.service,
        unit_price: Fen::new(body.unit_price)?,
        quantity: body.quantity,
        scheduled_start: body.scheduled_start,
        duration_minutes: body.duration_minutes,
        address: match (body.address, body.address_id) {
            (Some(address), None) => address.parse_and_seal(&state.vault, actor.id).await?,
            (None, Some(address_id)) => {
                customer.saved_address(address_id).cloned().ok_or_else(|| {
                    ApiError::InvalidField {
                        field: "address_id".into(),
                        detail: "不是您保存的地址 / not one of your saved addresses".into(),
                    }
                })?
            }
            _ => {
                return Err(ApiError::InvalidField {
                    field: "address".into(),
                    detail: "请给出 address 或 address_id 之一 / give either address or address_id"
                        .into(),
                })
            }
        },
        note,
        preferred_worker: body.worker_id,
    };
    let order_id = context.new_aggregate_id("order");
    let committed = application::orders::place(
        &state,
        &customer,
        order_id,
        booking,
        body.worker_id,
        &context,
    )
    .await?;
    let location = format!("/api/v1/orders/{order_id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        ack(order_id, committed),
    )
        .into_response())
}

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
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders", security(("bearer" = [])),
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
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = OrderPage), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<axum::Json<OrderPage>, ApiError> {
    let actor = caller.actor()?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Invalid(
            "limit 须在 1–200 之间 / limit must be between 1 and 200".into(),
        ));
    }
    let mut statuses = Vec::new();
    for raw in params
        .status
        .iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|raw| !raw.is_empty())
    {
        statuses.push(
            OrderStatus::parse(raw).ok_or_else(|| {
                ApiError::Invalid(format!("未知的订单状态 / unknown status: {raw}"))
            })?,
        );
    }
    if let Some(service) = &params.service {
        if ServiceCode::parse(service).is_none() {
            return Err(ApiError::Invalid(format!(
                "未知的服务 / unknown service: {service}"
            )));
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
        order_views::ListError::BadCursor => ApiError::Invalid(error.to_string()),
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
#[utoipa::path(get, path = "/api/v1/admin/order-counts", tag = "admin", security(("bearer" = [])), params(CountParams),
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
#[utoipa::path(get, path = "/api/v1/admin/order-stats", tag = "admin", security(("bearer" = [])), params(StatsParams),
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
        return Err(ApiError::Invalid(
            "日期范围须在一年以内且开始不晚于结束 / the range must start before it ends and span at most a year".into(),
        ));
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

pub(crate) async fn run(
    state: &AppState,
    order_id: Uuid,
    command: OrderCommand,
    context: &CommandContext,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let committed = state.orders.execute(order_id, command, context).await?;
    Ok(ack(order_id, committed))
}

/// Cancel an order before its service starts (its customer or an admin).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", tag = "orders", request_body = ReasonBody, security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReasonBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    cancel_order(&state, &context, order_id, String::from(body.reason), false).await
}

/// What cancelling now would give back, by the cancellation policy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancellationQuote {
    /// Fen paid and held for the order (none before payment).
    pub paid: i64,
    /// Fen that would go back.
    pub refund: i64,
    /// Fen the policy would keep.
    pub fee: i64,
}

/// What cancelling the order now would refund and keep, to show before confirming (its
/// customer or admins). The cancellation itself decides again when it happens.
#[utoipa::path(get, path = "/api/v1/orders/{order_id}/cancellation", tag = "orders", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)),
    responses((status = 200, body = CancellationQuote), (status = 404, body = crate::error::Problem)))]
pub async fn cancellation(
    State(state): State<AppState>,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<CancellationQuote>, ApiError> {
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    if order.status == OrderStatus::New {
        return Err(ApiError::not_found("订单", "order"));
    }
    let quote = match application::payments::captured_payment_of(&state, order_id).await? {
        Some(payment_id) => {
            let (payment, _): (domain::payment::Payment, usize) =
                state.payments.load(payment_id).await?;
            let terms = application::orders::cancellation_settlement(
                &state,
                &order,
                payment_id,
                &payment,
                false,
                Utc::now(),
            );
            CancellationQuote {
                paid: payment.in_escrow,
                refund: terms.refund.get(),
                fee: terms.fee.get(),
            }
        }
        None => CancellationQuote {
            paid: 0,
            refund: 0,
            fee: 0,
        },
    };
    Ok(axum::Json(quote))
}

/// Cancels an order for its customer or an admin (`application::orders::cancel`).
pub(crate) async fn cancel_order(
    state: &AppState,
    context: &CommandContext,
    order_id: Uuid,
    reason: String,
    full_refund: bool,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let committed =
        application::orders::cancel(state, by, order_id, reason, full_refund, context).await?;
    Ok(ack(order_id, committed))
}

/// Open a dispute during or after the service (its customer or an admin).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/dispute", tag = "orders", request_body = ReasonBody, security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem)))]
pub async fn dispute(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReasonBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = OrderCommand::Dispute {
        by,
        reason: String::from(body.reason),
        now: context.occurred_at,
    };
    run(&state, order_id, command, &context).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolutionBody {
    /// How the dispute was settled, for the record.
    pub resolution: Paragraph<500>,
}

/// Close a dispute (admins), after any refund was made on the payment. The order is completed;
/// if its money was still in escrow (disputed during the service) it is released now.
#[utoipa::path(post, path = "/api/v1/admin/orders/{order_id}/resolve-dispute", tag = "orders", request_body = ResolutionBody, security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn resolve_dispute(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<ResolutionBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = OrderCommand::ResolveDispute {
        by,
        resolution: String::from(body.resolution),
        now: context.occurred_at,
    };
    let acknowledged = run(&state, order_id, command, &context).await?;
    // If this fails the money job releases it on its next run.
    if let Err(error) = application::money::release_for_order(&state, order_id, &context).await {
        tracing::warn!(order_id = %order_id, error = ?error, "releasing a resolved order's escrow failed; the money job will retry");
    }
    Ok(acknowledged)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderReviewBody {
    /// Service quality, 1 to 5 stars.
    pub quality: u8,
    pub attitude: u8,
    pub skill: u8,
    #[serde(default)]
    pub comment: Paragraph<1000>,
    /// Codes from `GET /api/v1/review-tags`.
    #[serde(default)]
    pub tags: Vec<Line<20>>,
}

/// Review a completed order, once, within the review window (its customer).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/review", tag = "orders", request_body = OrderReviewBody, security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem)))]
pub async fn review(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<OrderReviewBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let customer = context.actor.ok_or(ApiError::Unauthenticated)?;
    if body.comment.chars().count() > 1000 {
        return Err(ApiError::Invalid(
            "评价最多 1000 字 / a review is at most 1000 characters".into(),
        ));
    }
    let command = OrderCommand::Review {
        customer_id: customer.id,
        quality: body.quality,
        attitude: body.attitude,
        skill: body.skill,
        comment: String::from(body.comment),
        tags: body.tags.into_iter().map(String::from).collect(),
        window: state.reviews.window,
        now: context.occurred_at,
    };
    run(&state, order_id, command, &context).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// The bank or cashier reference of an offline payment.
    pub reference: Line<100>,
    /// Fen; must equal the order total.
    pub amount: i64,
}

/// Record an offline payment for an order awaiting payment (admins).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/payments", tag = "orders", request_body = PaymentBody, security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn record_payment(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<PaymentBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let reference =
        domain::values::required_text("支付流水号 payment reference", &body.reference, 100)?;
    let command = OrderCommand::RecordPayment {
        payment_reference: reference,
        amount: Fen::new(body.amount)?,
        now: context.occurred_at,
    };
    let recorded = run(&state, order_id, command, &context).await?;
    // Paid: dispatch starts now. If this step fails, the dispatcher's timer opens it shortly.
    match application::dispatch::open(&state, order_id, &context).await {
        Ok(()) => current_ack(&state, order_id).await,
        Err(error) => {
            tracing::warn!(order_id = %order_id, error = %error, "dispatch did not open on payment; the timer will");
            Ok(recorded)
        }
    }
}

pub(crate) async fn current_ack(
    state: &AppState,
    order_id: Uuid,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let (order, version): (Order, usize) = state.orders.load(order_id).await?;
    if order.status == OrderStatus::New {
        return Err(ApiError::not_found("订单", "order"));
    }
    Ok(axum::Json(OrderAck {
        order_id,
        status: order.status.as_str().to_owned(),
        version,
    }))
}

/// Open a paid order for dispatch (admins).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/dispatch", tag = "orders", security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem)))]
pub async fn open_dispatch(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    match order.status {
        OrderStatus::New => return Err(ApiError::not_found("订单", "order")),
        // Payment normally opens dispatch already; asking again is answered with the state.
        OrderStatus::Paid | OrderStatus::Dispatching => {}
        _ => {
            return Err(domain::order::OrderError::IllegalTransition {
                verb: ("开始派单", "open dispatch for"),
                state: order.status,
            }
            .into())
        }
    }
    application::dispatch::open(&state, order_id, &context).await?;
    current_ack(&state, order_id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub worker_id: Uuid,
}

/// Assign a worker to a paid order (admins). The worker must be active and skilled for it.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/assignment", tag = "orders", request_body = AssignBody, security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem)))]
pub async fn assign(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<AssignBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    application::dispatch::assign(&state, order_id, body.worker_id, None, &context).await?;
    current_ack(&state, order_id).await
}

macro_rules! worker_step {
    ($name:ident, $path:literal, $variant:ident, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "orders", security(("bearer" = [])),
            params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
            responses((status = 200, body = OrderAck), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
        pub async fn $name(
            State(state): State<AppState>,
            RequestContext(context): RequestContext,
            AppPath(order_id): AppPath<Uuid>,
        ) -> Result<axum::Json<OrderAck>, ApiError> {
            let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
            let command = OrderCommand::$variant { worker_id: worker.id, now: context.occurred_at };
            run(&state, order_id, command, &context).await
        }
    };
}

worker_step!(
    accept,
    "/api/v1/orders/{order_id}/accept",
    Accept,
    "Accept an order assigned to you (workers)."
);
worker_step!(
    depart,
    "/api/v1/orders/{order_id}/depart",
    Depart,
    "Set off to the customer (workers)."
);
worker_step!(
    start,
    "/api/v1/orders/{order_id}/start",
    StartService,
    "Start the service (workers)."
);
/// Finish the service (workers). The customer's payment leaves escrow: the commission to the
/// platform, the rest to the worker's pending income.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/finish", tag = "orders", security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn finish(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = OrderCommand::FinishService {
        worker_id: worker.id,
        now: context.occurred_at,
    };
    let finished = run(&state, order_id, command, &context).await?;
    // If this step fails, the money job finishes it.
    if let Err(error) = application::money::release_for_order(&state, order_id, &context).await {
        tracing::warn!(order_id = %order_id, error = %error, "the escrow was not released at once; the money job will");
    }
    Ok(finished)
}

/// Decline an order assigned to you; it goes back to dispatch (workers).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/decline", tag = "orders", request_body = ReasonBody, security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem)))]
pub async fn decline(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReasonBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = OrderCommand::Decline {
        worker_id: worker.id,
        reason: String::from(body.reason),
        now: context.occurred_at,
    };
    let acknowledged = run(&state, order_id, command, &context).await?;
    application::dispatch::release(
        &state,
        worker.id,
        order_id,
        "服务人员拒单 / declined by the worker",
        &context,
    )
    .await;
    Ok(acknowledged)
}
