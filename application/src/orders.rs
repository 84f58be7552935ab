//! The sagas of an order's life that touch more than its own stream: placing it with a named
//! worker's time held (and given back when the order is not placed), and cancelling it with the
//! refund by the policy and the workers' time given back.

use chrono::{DateTime, Utc};
use domain::customer::Customer;
use domain::dispatch::{may_take, Applicant, Ineligible, Wanted};
use domain::order::{Booking, Order, OrderCommand, OrderStatus};
use domain::worker::{Worker, WorkerCommand};
use domain::{Actor, Fen};
use uuid::Uuid;

use crate::commands::{CommandContext, Committed};
use crate::error::{Error, Refusal};
use crate::services::Services;
use domain::message::Text;

/// Places `customer`'s order. A named worker must be able to take the service and must not be
/// blocked by this customer; their time is held first, in their own stream, so two customers
/// cannot both have it, and given back if the order is then refused.
pub async fn place(
    services: &Services,
    customer: &Customer,
    order_id: Uuid,
    booking: Booking,
    worker_id: Option<Uuid>,
    context: &CommandContext,
) -> crate::Result<Committed<Order>> {
    if customer.suspended {
        return Err(Error::refused(
            Refusal::Forbidden,
            domain::message::Explain::text(&domain::customer::CustomerError::Suspended),
        ));
    }
    let customer_id = booking.customer_id;
    // A named worker must be able to take the service, must not be blocked by this customer,
    // and their time is held first, in their own stream, so two customers cannot both have it.
    if let Some(worker_id) = worker_id {
        let (worker, _): (Worker, usize) = services.workers.load(worker_id).await?;
        let facts = worker.facts(worker_id, domain::values::business_day(context.occurred_at));
        if !facts.registered {
            return Err(Error::not_found("服务人员", "worker"));
        }
        // Naming a worker asks nothing of where they work: the customer chose them.
        let wanted = Wanted {
            service: booking.service,
            location: None,
            city: None,
            blocked: &customer.blocked_workers,
            declined_by: &[],
        };
        match may_take(&Applicant::new(&worker, &facts), &wanted) {
            Ok(()) => {}
            Err(Ineligible::Blocked) => {
                return Err(Error::illegal_state(Text::new("orders.blocked-worker")))
            }
            Err(_) => {
                return Err(Error::illegal_state(Text::new(
                    "orders.worker-cannot-take-service-present",
                )))
            }
        }
        reserve_named_hold(services, customer_id, order_id, context.occurred_at).await?;
        let end = booking.scheduled_start
            + chrono::Duration::minutes(i64::from(booking.duration_minutes));
        let hold = WorkerCommand::Book {
            order_id,
            start: booking.scheduled_start,
            end,
            location: booking.address.cell(),
            now: context.occurred_at,
        };
        if let Err(refusal) = services
            .workers
            .execute_deciding_again(worker_id, hold, context)
            .await
        {
            forget_named_hold(services, order_id).await;
            return Err(refusal.into());
        }
    }
    // The order's id is new (made for this request, or from its retry key, whose replay
    // answers before this runs): nothing to read.
    let placed = services
        .orders
        .execute_new(
            order_id,
            OrderCommand::Place {
                order_id,
                booking,
                pay_by: Some(services.dispatch.pay_by(context.occurred_at)),
                now: context.occurred_at,
            },
            context,
        )
        .await;
    let committed = match (placed, worker_id) {
        (Ok(committed), _) => committed,
        (Err(refusal), Some(worker_id)) => {
            forget_named_hold(services, order_id).await;
            crate::dispatch::release(
                services,
                worker_id,
                order_id,
                "下单失败 / the order was not placed",
                context,
            )
            .await;
            return Err(refusal.into());
        }
        (Err(refusal), None) => return Err(refusal.into()),
    };
    Ok(committed)
}

/// Records that `order_id` will hold a named worker's time unpaid, unless the customer holds
/// as many such orders as allowed already: the customer's lock makes parallel requests count
/// one after another, in any process. A hold ends when its order is paid or cancelled (the
/// orders view says so) or when the time to pay has run out; a retry of the same order counts
/// once.
async fn reserve_named_hold(
    services: &Services,
    customer_id: Uuid,
    order_id: Uuid,
    now: DateTime<Utc>,
) -> crate::Result<()> {
    let mut transaction = services.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('named-holds:' || $1, 0))")
        .bind(customer_id.to_string())
        .execute(&mut *transaction)
        .await?;
    let holding: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM named_holds h
          WHERE h.customer_id = $1 AND h.held_until > $3 AND h.order_id <> $2
            AND NOT EXISTS (SELECT 1 FROM read_orders o WHERE o.order_id = h.order_id
                             AND o.status NOT IN ('placed', 'awaiting_payment'))",
    )
    .bind(customer_id)
    .bind(order_id)
    .bind(now)
    .fetch_one(&mut *transaction)
    .await?;
    let limit = services.dispatch.max_unpaid_named;
    if holding >= limit {
        return Err(Error::illegal_state(
            Text::new("orders.unpaid-orders-naming-worker-already").with("limit", limit),
        ));
    }
    sqlx::query(
        "INSERT INTO named_holds (order_id, customer_id, held_until) VALUES ($1, $2, $3)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(customer_id)
    .bind(services.dispatch.pay_by(now))
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// Withdraws a hold whose order was not placed after all.
async fn forget_named_hold(services: &Services, order_id: Uuid) {
    if let Err(error) = sqlx::query("DELETE FROM named_holds WHERE order_id = $1")
        .bind(order_id)
        .execute(&services.pool)
        .await
    {
        tracing::warn!(order_id = %order_id, error = %error, "a named hold was not withdrawn; it lapses when its time to pay runs out");
    }
}

/// Cancels an order, refunds by the policy (or in full), and gives the workers' time back.
/// The money's terms are decided here and recorded on the order's cancellation, so a refund
/// this request could not finish is finished by the money job from the log.
pub async fn cancel(
    services: &Services,
    by: Actor,
    order_id: Uuid,
    reason: String,
    full_refund: bool,
    context: &CommandContext,
) -> crate::Result<Committed<Order>> {
    let (before, _): (Order, usize) = services.orders.load(order_id).await?;
    let settlement = match crate::payments::captured_payment_of(services, order_id).await? {
        Some(payment_id) => {
            let (payment, _): (domain::payment::Payment, usize) =
                services.payments.load(payment_id).await?;
            Some(cancellation_settlement(
                services,
                &before,
                payment_id,
                &payment,
                full_refund,
                context.occurred_at,
            ))
        }
        None => None,
    };
    let command = OrderCommand::Cancel {
        by,
        reason,
        settlement,
        now: context.occurred_at,
    };
    let committed = services.orders.execute(order_id, command, context).await?;
    // The money goes back by the cancellation policy, through the provider it came from.
    if let Err(error) = crate::payments::settle_cancellation(services, order_id, context).await {
        tracing::error!(order_id = %order_id, error = %error, "the cancellation's refund is not finished yet; the money job finishes it");
    }
    let holders = [committed.state.worker_id, committed.state.preferred_worker];
    for (index, worker_id) in holders.iter().enumerate() {
        if let Some(worker_id) = worker_id {
            if index == 1 && holders[0] == Some(*worker_id) {
                continue;
            }
            crate::dispatch::release(
                services,
                *worker_id,
                order_id,
                "订单已取消 / order cancelled",
                context,
            )
            .await;
        }
    }
    Ok(committed)
}

/// What cancelling `order` now does with its captured payment: the policy's refund and fee
/// (or everything back), and half the fee (by the policy's setting) to the worker who had
/// accepted it.
pub fn cancellation_settlement(
    services: &Services,
    order: &Order,
    payment_id: Uuid,
    payment: &domain::payment::Payment,
    full_refund: bool,
    now: DateTime<Utc>,
) -> domain::payment::CancellationSettlement {
    let policy = services.money.refunds;
    let in_escrow = Fen::literal(payment.in_escrow);
    let start = order.window.map_or(now, |(start, _)| start);
    let mut terms = policy.terms(in_escrow, order.worker_id.is_some(), start, now);
    if full_refund {
        terms.refund = in_escrow;
    }
    // After the start nothing is refunded; the escrow is kept as the fee.
    let fee = Fen::literal(payment.in_escrow - terms.refund.get());
    let accepted = matches!(
        order.status,
        OrderStatus::Accepted | OrderStatus::OnTheWay | OrderStatus::Arrived
    );
    domain::payment::CancellationSettlement {
        payment_id,
        refund: terms.refund,
        fee,
        to_worker: policy.fee_share(fee, order.worker_id.filter(|_| accepted)),
    }
}
