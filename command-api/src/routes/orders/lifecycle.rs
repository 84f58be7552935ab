//! An order after it is placed: cancelling (and what it would refund), disputes, reviews, offline
//! payment, dispatch by the admins, finishing and declining.

use super::*;
use domain::message::Text;

/// Cancel an order before its service starts (its customer or an admin).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", tag = "orders", request_body = ReasonBody, security(("bearer" = ["customer", "admin"])),
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
#[utoipa::path(get, path = "/api/v1/orders/{order_id}/cancellation", tag = "orders", security(("bearer" = ["customer", "admin"])),
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
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/dispute", tag = "orders", request_body = ReasonBody, security(("bearer" = ["customer", "admin"])),
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
#[utoipa::path(post, path = "/api/v1/admin/orders/{order_id}/resolve-dispute", tag = "orders", request_body = ResolutionBody, security(("bearer" = ["admin"])),
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
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/review", tag = "orders", request_body = OrderReviewBody, security(("bearer" = ["customer"])),
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
        return Err(ApiError::Invalid(Text::new(
            "orders.review-most-1000-characters",
        )));
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
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/payments", tag = "orders", request_body = PaymentBody, security(("bearer" = ["admin"])),
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

/// Open a paid order for dispatch (admins).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/dispatch", tag = "orders", security(("bearer" = ["admin"])),
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
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/assignment", tag = "orders", request_body = AssignBody, security(("bearer" = ["admin"])),
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

/// Finish the service (workers). The customer's payment leaves escrow: the commission to the
/// platform, the rest to the worker's pending income.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/finish", tag = "orders", security(("bearer" = ["worker"])),
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
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/decline", tag = "orders", request_body = ReasonBody, security(("bearer" = ["worker"])),
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
