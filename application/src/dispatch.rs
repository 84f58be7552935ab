//! The dispatcher: opens paid orders for dispatch at the stage the settings choose, moves them
//! on when a stage's time runs out (named worker → grab → automatic → admins), runs the
//! automatic rounds, and gives back time that a failed step left reserved.
//!
//! Every step is a command on one stream and safe to repeat, so the timer job may run in any
//! number of processes (it holds an advisory lock per tick) and pick up after a crash.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use domain::dispatch::{
    may_take, Applicant, Candidate, DispatchStage, Ineligible, Method, OpenOrder, Wanted,
};
use domain::order::{Order, OrderCommand, OrderStatus};
use domain::worker::{Worker, WorkerCommand};
use domain::ServiceCode;
use projections::dispatch::{self as model, DispatchOrderRow};
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::error::Error;
use crate::notifications::{notify, Recipient};
use crate::services::Services;
use domain::message::Text;

mod rounds;
mod timers;

pub use self::rounds::*;
pub use self::timers::*;

/// Opens a paid order for dispatch: at the named worker, else at the service's first stage.
/// Safe to call again: an order already dispatching is left alone.
pub async fn open(
    services: &Services,
    order_id: Uuid,
    context: &CommandContext,
) -> crate::Result<()> {
    let (order, _): (Order, usize) = services.orders.load(order_id).await?;
    if order.status != OrderStatus::Paid {
        return Ok(());
    }
    let service = order
        .service
        .ok_or_else(|| Error::not_found("订单", "order"))?;
    let now = context.occurred_at;
    let stage = if order.preferred_worker.is_some() {
        DispatchStage::Named
    } else {
        services.dispatch.first_open_stage(service)
    };
    let command = OrderCommand::OpenDispatch {
        stage: Some(stage),
        deadline: services.dispatch.deadline(stage, now),
        now,
    };
    let committed = services.orders.execute(order_id, command, context).await?;
    match (stage, committed.state.worker_id) {
        (DispatchStage::Named, Some(worker_id)) => {
            tell(
                services,
                Recipient::Person(worker_id),
                "order_offered",
                "新订单待确认 / A new order for you",
                &format!(
                    "客户指定您服务订单 {order_id}，请在 {minutes} 分钟内确认。/ A customer chose you for order {order_id}; please confirm within {minutes} minutes.",
                    minutes = services.dispatch.named_confirm.num_minutes().max(1)
                ),
            )
            .await;
        }
        (DispatchStage::Admin, _) => {
            tell(
                services,
                Recipient::Role("admin"),
                "dispatch_needed",
                "订单待人工派单 / An order needs dispatching",
                &format!("订单 {order_id} 等待人工派单。/ Order {order_id} is waiting for an admin to dispatch it."),
            )
            .await;
        }
        _ => {}
    }
    Ok(())
}

async fn tell(services: &Services, recipient: Recipient, kind: &str, title: &str, body: &str) {
    if let Err(error) = notify(&services.pool, recipient, kind, title, body).await {
        tracing::warn!(error = %error, kind, "could not record a notification");
    }
}

/// Gives a worker's reserved time for an order back, unless the order (read from its own
/// stream, now) holds that worker: a request that lost, or a step that ran late, never undoes
/// the booking of the one that won. A failure here leaves a reservation the reconciliation
/// step gives back later. Returns whether the time was given back.
///
/// The order is read again after the release: another request may have given the order to
/// this worker between the first reading and the release, relying on the booking just given
/// back, and the time is then booked again. That request, for its part, looks at the
/// worker's calendar after its own write when it relied on a booking it did not make
/// ([`confirm_hold`]); as each side writes before it reads, at least one of them sees the
/// other.
pub async fn release(
    services: &Services,
    worker_id: Uuid,
    order_id: Uuid,
    reason: &str,
    context: &CommandContext,
) -> bool {
    match services.orders.load(order_id).await {
        Ok((order, _)) if order.holds(worker_id) => {
            tracing::info!(worker_id = %worker_id, order_id = %order_id, reason, "the order holds this worker; the booking is kept");
            return false;
        }
        Ok(_) => {}
        Err(error) => {
            tracing::error!(worker_id = %worker_id, order_id = %order_id, error = %error, "could not read the order before releasing; the reconciliation step will judge it");
            return false;
        }
    }
    let release = WorkerCommand::Release {
        order_id,
        reason: reason.to_owned(),
        now: context.occurred_at,
    };
    match services
        .workers
        .execute_deciding_again(worker_id, release, context)
        .await
    {
        Ok(released) if released.events > 0 => {}
        Ok(_) => return true,
        Err(error) => {
            tracing::error!(worker_id = %worker_id, order_id = %order_id, error = %error, "could not release a booking");
            return false;
        }
    }
    match unbooked(services, worker_id, order_id).await {
        Ok(Some(order)) => {
            tracing::warn!(worker_id = %worker_id, order_id = %order_id, "the order took this worker while their time was given back; booking it again");
            if let Err(error) = hold(services, worker_id, &order, order_id, context).await {
                tracing::error!(worker_id = %worker_id, order_id = %order_id, error = %error, "an order holds a worker whose time could not be booked again; the reconciliation step tells the admins");
            }
            false
        }
        Ok(None) => true,
        Err(error) => {
            tracing::error!(worker_id = %worker_id, order_id = %order_id, error = %error, "could not read the order after releasing; the reconciliation step will judge it");
            true
        }
    }
}

/// The order, when it holds the worker and the worker's calendar has no booking for it: the
/// time to book again.
async fn unbooked(
    services: &Services,
    worker_id: Uuid,
    order_id: Uuid,
) -> crate::Result<Option<Order>> {
    let (worker, _): (Worker, usize) = services.workers.load(worker_id).await?;
    if worker
        .bookings
        .iter()
        .any(|booked| booked.order_id == order_id)
    {
        return Ok(None);
    }
    let (order, _): (Order, usize) = services.orders.load(order_id).await?;
    Ok(order.holds(worker_id).then_some(order))
}

/// Whose booking a request's hold stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// This request booked the time: it gives it back if the order does not take the worker.
    Booked,
    /// The worker already had this order's time booked, by another request that may still
    /// give it back: this request leaves it alone and, once the order is the worker's,
    /// confirms it ([`confirm_hold`]).
    Borrowed,
}

impl Held {
    /// Gives the time back after the order refused the worker, if this request booked it.
    pub async fn give_back(
        self,
        services: &Services,
        worker_id: Uuid,
        order_id: Uuid,
        reason: &str,
        context: &CommandContext,
    ) -> bool {
        match self {
            Held::Booked => release(services, worker_id, order_id, reason, context).await,
            Held::Borrowed => false,
        }
    }

    /// Once the order holds the worker: a borrowed booking is looked for again. The order is
    /// the worker's either way; a failure here is logged, and the reconciliation step books
    /// the time (or tells the admins it is taken).
    pub async fn confirm(
        self,
        services: &Services,
        worker_id: Uuid,
        order_id: Uuid,
        context: &CommandContext,
    ) {
        if self == Held::Borrowed {
            if let Err(error) = confirm_hold(services, worker_id, order_id, context).await {
                tracing::error!(worker_id = %worker_id, order_id = %order_id, error = %error, "could not confirm the booking an order took its worker on; the reconciliation step will judge it");
            }
        }
    }
}

/// After an order took a worker on a booking another request had made: books the time again
/// if that request gave it back meanwhile (see [`release`]).
pub async fn confirm_hold(
    services: &Services,
    worker_id: Uuid,
    order_id: Uuid,
    context: &CommandContext,
) -> crate::Result<()> {
    let Some(order) = unbooked(services, worker_id, order_id).await? else {
        return Ok(());
    };
    tracing::warn!(worker_id = %worker_id, order_id = %order_id, "the booking this order took the worker on was given back meanwhile; booking it again");
    hold(services, worker_id, &order, order_id, context).await?;
    Ok(())
}

/// Reserves a worker's time for an order in the worker's own stream; says whether this call
/// booked it or found it booked already.
pub async fn hold(
    services: &Services,
    worker_id: Uuid,
    order: &Order,
    order_id: Uuid,
    context: &CommandContext,
) -> crate::Result<Held> {
    let (start, end) = order
        .window
        .ok_or_else(|| Error::not_found("订单", "order"))?;
    let booking = WorkerCommand::Book {
        order_id,
        start,
        end,
        location: order.location,
        now: context.occurred_at,
    };
    let booked = services
        .workers
        .execute_deciding_again(worker_id, booking, context)
        .await?;
    Ok(if booked.events > 0 {
        Held::Booked
    } else {
        Held::Borrowed
    })
}

/// Gives back reservations that no order holds: left by a process that stopped between
/// booking a worker and committing the order. Judged on the order's own stream.
pub async fn reconcile(services: &Services, context: &CommandContext) -> anyhow::Result<usize> {
    let now = context.occurred_at;
    // The read model names the suspects (reservations it cannot match to an order that holds
    // them); each is then judged on the order's own stream.
    let suspects = sqlx::query_as::<_, (Uuid, Uuid)>(
        "SELECT w.worker_id, (b->>'order_id')::uuid
           FROM read_dispatch_workers w
          CROSS JOIN LATERAL jsonb_array_elements(w.state->'bookings') b
           LEFT JOIN read_dispatch_orders o ON o.order_id = (b->>'order_id')::uuid
          WHERE (b->>'booked_at')::timestamptz <= $1
            AND (b->>'end')::timestamptz > $2
            AND NOT COALESCE(o.worker_id = w.worker_id
                  OR (o.status IN ('awaiting_payment', 'paid')
                      AND o.state->>'preferred_worker' = w.worker_id::text), false)
          LIMIT 500",
    )
    .bind(now - services.dispatch.reservation_grace)
    .bind(now - Duration::days(1))
    .fetch_all(&services.pool)
    .await?;
    let mut released = 0;
    for (worker_id, order_id) in suspects {
        if release(
            services,
            worker_id,
            order_id,
            "对账：订单未占用此时段 / reconciliation: no order holds this time",
            context,
        )
        .await
        {
            released += 1;
        }
    }
    rebook_held_orders(services, context).await?;
    Ok(released)
}

/// The other half of reconciliation: an order that holds a worker whose calendar has no
/// booking for it (a release that raced a new hold of the same worker) gets its time booked
/// again. If the time was taken meanwhile the booking is refused, the worker's stream stays
/// free of overlaps, and the admins are told.
async fn rebook_held_orders(services: &Services, context: &CommandContext) -> anyhow::Result<()> {
    let now = context.occurred_at;
    let suspects = sqlx::query_as::<_, (Uuid, Uuid)>(
        "SELECT o.order_id, w.worker_id
           FROM read_dispatch_orders o
           JOIN read_dispatch_workers w
             ON w.worker_id = COALESCE(o.worker_id, (o.state->>'preferred_worker')::uuid)
          WHERE o.status IN ('awaiting_payment', 'paid', 'assigned', 'accepted', 'on_the_way',
                             'arrived', 'in_service')
            AND o.ends_at > $1
            AND o.updated_at <= $2
            AND NOT EXISTS (
                SELECT 1 FROM jsonb_array_elements(w.state->'bookings') b
                 WHERE (b->>'order_id')::uuid = o.order_id)
          LIMIT 500",
    )
    .bind(now)
    .bind(now - services.dispatch.reservation_grace)
    .fetch_all(&services.pool)
    .await?;
    for (order_id, worker_id) in suspects {
        let Some(order) = unbooked(services, worker_id, order_id).await? else {
            continue;
        };
        tracing::warn!(order_id = %order_id, worker_id = %worker_id, "an order holds a worker with no booking; booking again");
        if let Err(error) = hold(services, worker_id, &order, order_id, context).await {
            tracing::error!(order_id = %order_id, worker_id = %worker_id, error = %error, "an order holds a worker whose time could not be booked again");
            tell(
                services,
                Recipient::Role("admin"),
                "dispatch_needed",
                "订单需要改派 / An order needs another worker",
                &format!("订单 {order_id} 的服务人员时段已被占用，请改派。/ The worker of order {order_id} is no longer free at its time; please reassign it."),
            )
            .await;
        }
    }
    Ok(())
}

/// A worker takes an order offered for grabbing. Refused early, with the order's own answer,
/// before any time is reserved; then the worker's time is held and the grab decided on the
/// order's latest state, so the first valid grab wins and every later one is told the order is
/// taken. `Ok` when the order is this worker's (also for a retried grab).
pub async fn grab(
    services: &Services,
    order_id: Uuid,
    worker_id: Uuid,
    context: &CommandContext,
) -> crate::Result<()> {
    let (order, _): (Order, usize) = services.orders.load(order_id).await?;
    if order.status == OrderStatus::New {
        return Err(Error::not_found("订单", "order"));
    }
    if order.worker_id == Some(worker_id) && order.status == OrderStatus::Accepted {
        // Already this worker's: a retried grab.
        return Ok(());
    }
    // Refused early, with the order's own answer, before any time is reserved.
    let (worker, _): (Worker, usize) = services.workers.load(worker_id).await?;
    let facts = worker.facts(worker_id, domain::values::business_day(context.occurred_at));
    let blocked = match order.customer_id {
        Some(customer_id) => projections::dispatch::blocked_by(&services.pool, customer_id).await?,
        None => Vec::new(),
    };
    if let Some(service) = order.service {
        // A grab asks the radius, not the city: the offers a worker sees are their city's.
        let wanted = Wanted {
            service,
            location: order.location,
            city: None,
            blocked: &blocked,
            declined_by: &[],
        };
        match may_take(&Applicant::new(&worker, &facts), &wanted) {
            Err(Ineligible::Blocked) => {
                return Err(Error::illegal_state(Text::new(
                    "dispatch.customer-asked-not-served",
                )))
            }
            Err(Ineligible::OutOfRange) => {
                return Err(Error::illegal_state(Text::new(
                    "dispatch.address-outside-service-radius",
                )))
            }
            // The order's own answer says why (suspended, not approved, not certified).
            _ => {}
        }
    }
    let command = OrderCommand::Grab {
        worker: facts,
        now: context.occurred_at,
    };
    if let Err(refusal) = order.decide_only(command.clone()) {
        return Err(refusal.into());
    }
    let held = hold(services, worker_id, &order, order_id, context).await?;
    match services
        .orders
        .execute_deciding_again(order_id, command, context)
        .await
    {
        Ok(_) => {
            held.confirm(services, worker_id, order_id, context).await;
            Ok(())
        }
        Err(refusal) => {
            let released = held
                .give_back(
                    services,
                    worker_id,
                    order_id,
                    "抢单未成功 / the grab did not win",
                    context,
                )
                .await;
            if !released {
                // The order holds this worker: another tap of the same worker won, so this
                // one answers as a retry would.
                let (order, _): (Order, usize) = services.orders.load(order_id).await?;
                if order.worker_id == Some(worker_id) && order.status == OrderStatus::Accepted {
                    return Ok(());
                }
            }
            Err(refusal.into())
        }
    }
}
