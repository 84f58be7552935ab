//! Admins correcting orders: reschedule, change the address, adjust the price, cancel with a
//! full refund. Each is an event with who and why (the audit trail shows them); the worker's
//! booked time moves with the order, and the customer and the worker are told.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::order::{Order, OrderCommand};
use domain::worker::WorkerCommand;
use domain::Fen;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath};
use crate::routes::acks::{ack, OrderAck};
use crate::routes::orders::AddressBody;
use crate::state::AppState;
use crate::text::{Line, Paragraph};
use application::commands::CommandContext;
use application::notifications::{notify, Recipient};
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reschedule))
        .routes(routes!(change_address))
        .routes(routes!(adjust_price))
        .routes(routes!(cancel))
}

/// The workers whose calendars hold the order: the assigned one, or the one the customer named.
fn holders(order: &Order) -> Vec<Uuid> {
    let mut holders: Vec<Uuid> = order.worker_id.into_iter().collect();
    if let Some(named) = order.preferred_worker {
        if !holders.contains(&named) {
            holders.push(named);
        }
    }
    holders
}

/// Moves the holders' booked time to the order's new window or place; refused (changing
/// nothing) when a holder is not free then.
async fn move_bookings(
    state: &AppState,
    order_id: Uuid,
    order: &Order,
    context: &CommandContext,
) -> Result<(), ApiError> {
    let Some((start, end)) = order.window else {
        return Ok(());
    };
    for worker_id in holders(order) {
        let command = WorkerCommand::MoveBooking {
            order_id,
            start,
            end,
            location: order.location,
            now: context.occurred_at,
        };
        match state
            .workers
            .execute_deciding_again(worker_id, command, context)
            .await
        {
            Ok(_) => {}
            // Not booked there (a hold already given back): nothing to move.
            Err(cqrs_es::AggregateError::UserError(domain::worker::WorkerError::NotFound)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Tells the customer and the worker what changed.
async fn tell(state: &AppState, order: &Order, kind: &str, title: &str, body: &str) {
    let people = order.customer_id.into_iter().chain(holders(order));
    for person in people {
        if let Err(error) = notify(&state.pool, Recipient::Person(person), kind, title, body).await
        {
            tracing::warn!(error = %error, "a correction notice was not written");
        }
    }
}

/// Decides `command` on the order as it stands, moves the holders' time to the result, then
/// records it; so a worker who is not free refuses the change before anything is written.
async fn correct(
    state: &AppState,
    order_id: Uuid,
    command: OrderCommand,
    context: &CommandContext,
) -> Result<(Order, application::commands::Committed<Order>), ApiError> {
    let (before, _): (Order, usize) = state.orders.load(order_id).await?;
    if before.status == domain::order::OrderStatus::New {
        return Err(ApiError::not_found("订单", "order"));
    }
    let events = before.decide_only(command.clone())?;
    let mut after = before.clone();
    for event in events {
        cqrs_es::Aggregate::apply(&mut after, event);
    }
    if after.window != before.window || after.location != before.location {
        if let Err(refusal) = move_bookings(state, order_id, &after, context).await {
            // A second holder refused: the first one's time goes back where it was.
            let _ = move_bookings(state, order_id, &before, context).await;
            return Err(refusal);
        }
    }
    match state.orders.execute(order_id, command, context).await {
        Ok(committed) => Ok((before, committed)),
        Err(error) => {
            // Put the holders' time back where the order still is.
            if after.window != before.window || after.location != before.location {
                let _ = move_bookings(state, order_id, &before, context).await;
            }
            Err(error.into())
        }
    }
}

fn beijing(time: DateTime<Utc>) -> String {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    time.with_timezone(&offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    pub scheduled_start: DateTime<Utc>,
    pub reason: Paragraph<500>,
}

/// Move an order to another start, same duration (admins). A worker holding it keeps it only
/// if they are free then; otherwise nothing changes (409) and the order can be reassigned.
#[utoipa::path(post, path = "/api/v1/admin/orders/{order_id}/reschedule", tag = "orders", request_body = RescheduleBody, security(("bearer" = ["admin"])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn reschedule(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<RescheduleBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = OrderCommand::Reschedule {
        by,
        start: body.scheduled_start,
        reason: body.reason.to_string(),
        now: context.occurred_at,
    };
    let (_, committed) = correct(&state, order_id, command, &context).await?;
    let when = beijing(body.scheduled_start);
    tell(
        &state,
        &committed.state,
        "order_rescheduled",
        "订单已改期 / Order rescheduled",
        &format!(
            "服务时间改为 {when}（北京时间），原因：{reason} / The service now starts at {when} Beijing time. Reason: {reason}",
            reason = body.reason.trim()
        ),
    )
    .await;
    Ok(ack(order_id, committed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressChangeBody {
    pub address: AddressBody,
    pub reason: Paragraph<500>,
}

/// Correct where the service takes place (admins). The personal parts are sealed under the
/// customer's key, as when the order was placed.
#[utoipa::path(post, path = "/api/v1/admin/orders/{order_id}/address", tag = "orders", request_body = AddressChangeBody, security(("bearer" = ["admin"])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn change_address(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<AddressChangeBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    let owner = order
        .customer_id
        .ok_or_else(|| ApiError::not_found("订单", "order"))?;
    let address = body.address.parse_and_seal(&state.vault, owner).await?;
    let place = format!("{}{}", address.city, address.district);
    let command = OrderCommand::ChangeAddress {
        by,
        address,
        reason: body.reason.to_string(),
        now: context.occurred_at,
    };
    let (_, committed) = correct(&state, order_id, command, &context).await?;
    tell(
        &state,
        &committed.state,
        "order_address_changed",
        "服务地址已修改 / Service address changed",
        &format!(
            "服务地址改为 {place}，详见订单。原因：{reason} / The service address is now in {place}; see the order. Reason: {reason}",
            reason = body.reason.trim()
        ),
    )
    .await;
    Ok(ack(order_id, committed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    /// The new total, fen.
    pub total: i64,
    pub reason: Paragraph<500>,
}

/// Correct an order's price (admins). Before payment the amount due changes; after payment
/// only a lower price is accepted, and the difference goes back through the provider.
#[utoipa::path(post, path = "/api/v1/admin/orders/{order_id}/price", tag = "orders", request_body = PriceBody, security(("bearer" = ["admin"])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn adjust_price(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<PriceBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let total = Fen::new(body.total)?;
    // A payment already opened with the provider would be charged the old amount.
    let open_intent: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM read_payments WHERE order_id = $1 AND status = 'pending')",
    )
    .bind(order_id)
    .fetch_one(&state.pool)
    .await?;
    if open_intent {
        return Err(ApiError::IllegalState(Text::new(
            "corrections.customer-paying-price-cannot-change",
        )));
    }
    let command = OrderCommand::AdjustPrice {
        by,
        total,
        reason: body.reason.to_string(),
        now: context.occurred_at,
    };
    // The difference goes back first, then the price changes: if the second step fails, a
    // retry with the same Idempotency-Key issues the same refund (nothing more) and then
    // records the price; the other order could leave a lower price with nothing refunded.
    let (current, _): (Order, usize) = state.orders.load(order_id).await?;
    current.decide_only(command.clone())?;
    let from = current.total.unwrap_or(Fen::ZERO);
    if let Some(payment_id) = application::payments::captured_payment_of(&state, order_id).await? {
        application::payments::refund(
            &state,
            payment_id,
            Fen::literal(from.get() - total.get()),
            Fen::ZERO,
            &format!("价格调整 / price adjusted: {}", body.reason.trim()),
            &context,
        )
        .await?;
    }
    let (_, committed) = correct(&state, order_id, command, &context).await?;
    tell(
        &state,
        &committed.state,
        "order_price_adjusted",
        "订单价格已调整 / Order price adjusted",
        &format!(
            "订单金额由 {from} 调整为 {total}，原因：{reason} / The order total changed from {from} to {total}. Reason: {reason}",
            reason = body.reason.trim()
        ),
    )
    .await;
    Ok(ack(order_id, committed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminCancelBody {
    pub reason: Paragraph<500>,
    /// `full` (default: everything paid goes back) or `policy` (the cancellation policy's fee
    /// is kept).
    #[serde(default)]
    pub refund: Option<Line<20>>,
}

/// Cancel an order for the customer (admins), refunding in full unless told to apply the
/// policy; the workers' time is given back and both sides are told.
#[utoipa::path(post, path = "/api/v1/admin/orders/{order_id}/cancel", tag = "orders", request_body = AdminCancelBody, security(("bearer" = ["admin"])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<AdminCancelBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let full_refund = match body.refund.as_deref() {
        None | Some("full") => true,
        Some("policy") => false,
        Some(_) => {
            return Err(ApiError::Invalid(Text::new(
                "corrections.refund-must-full-policy",
            )))
        }
    };
    let (before, _): (Order, usize) = state.orders.load(order_id).await?;
    let acknowledged = crate::routes::orders::cancel_order(
        &state,
        &context,
        order_id,
        body.reason.to_string(),
        full_refund,
    )
    .await?;
    tell(
        &state,
        &before,
        "order_cancelled_by_admin",
        "订单已由客服取消 / Order cancelled by customer service",
        &format!(
            "订单已取消，原因：{reason} / The order was cancelled. Reason: {reason}",
            reason = body.reason.trim()
        ),
    )
    .await;
    Ok(acknowledged)
}
