//! The dispatcher timers: a tick moves each order whose stage ran out on (named, grab, automatic,
//! admins), offers grab orders to the workers who may take them, and runs a round.

use super::*;

/// What one tick of the timers did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct TickReport {
    pub expired_unpaid: usize,
    pub opened: usize,
    pub escalated: usize,
    pub assigned: usize,
    pub released: usize,
    pub offers_sent: usize,
}

/// One tick: due timers, then an automatic round, then reconciliation of reservations.
pub async fn tick(services: &Services, now: DateTime<Utc>) -> anyhow::Result<TickReport> {
    let mut report = TickReport::default();
    let context = CommandContext {
        occurred_at: now,
        ..CommandContext::system()
    };
    for row in model::due_orders(&services.pool, now, 5, 500).await? {
        match run_timer(services, &row, &context).await {
            Ok(Some(kind)) => match kind {
                Timer::Unpaid => report.expired_unpaid += 1,
                Timer::Opened => report.opened += 1,
                Timer::Escalated => report.escalated += 1,
            },
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(order_id = %row.order_id, error = %error, "a dispatch timer step was refused")
            }
        }
    }
    report.assigned = automatic_round(services, &context).await?.assigned;
    report.released = reconcile(services, &context).await?;
    report.offers_sent = broadcast_grab_offers(services, now).await?;
    Ok(report)
}

enum Timer {
    Unpaid,
    Opened,
    Escalated,
}

async fn run_timer(
    services: &Services,
    row: &DispatchOrderRow,
    context: &CommandContext,
) -> crate::Result<Option<Timer>> {
    let now = context.occurred_at;
    // The model may lag; decide on the order's own stream.
    let (order, _): (Order, usize) = services.orders.load(row.order_id).await?;
    match order.status {
        OrderStatus::AwaitingPayment if order.pay_by.is_some_and(|due| due <= now) => {
            services
                .orders
                .execute(row.order_id, OrderCommand::ExpireUnpaid { now }, context)
                .await?;
            if let Some(worker_id) = order.preferred_worker {
                release(
                    services,
                    worker_id,
                    row.order_id,
                    "未按时支付 / not paid in time",
                    context,
                )
                .await;
            }
            if let Some(customer_id) = order.customer_id {
                tell(
                    services,
                    Recipient::Person(customer_id),
                    "order_expired",
                    "订单已自动取消 / Order cancelled",
                    &format!("订单 {} 未在时限内支付，已自动取消。/ Order {} was not paid in time and has been cancelled.", row.order_id, row.order_id),
                )
                .await;
            }
            Ok(Some(Timer::Unpaid))
        }
        OrderStatus::Paid => {
            open(services, row.order_id, context).await?;
            Ok(Some(Timer::Opened))
        }
        OrderStatus::Dispatching if order.stage_deadline.is_some_and(|due| due <= now) => {
            escalate(services, row.order_id, &order, context).await?;
            Ok(Some(Timer::Escalated))
        }
        OrderStatus::Assigned if order.respond_by.is_some_and(|due| due <= now) => {
            escalate(services, row.order_id, &order, context).await?;
            Ok(Some(Timer::Escalated))
        }
        _ => Ok(None),
    }
}

async fn escalate(
    services: &Services,
    order_id: Uuid,
    order: &Order,
    context: &CommandContext,
) -> crate::Result<()> {
    let service = order
        .service
        .ok_or_else(|| Error::not_found("订单", "order"))?;
    let now = context.occurred_at;
    let expiring_worker = (order.status == OrderStatus::Assigned)
        .then_some(order.worker_id)
        .flatten();
    let to = match (expiring_worker, order.stage) {
        // A dispatched worker who did not accept: another automatic round without them.
        (Some(_), Some(DispatchStage::Auto)) => DispatchStage::Auto,
        (Some(_), Some(DispatchStage::Admin)) => DispatchStage::Admin,
        (_, stage) => services.dispatch.next_stage(stage, service),
    };
    let reason = match expiring_worker {
        Some(_) => "服务人员未在时限内确认 / the worker did not confirm in time",
        None => "本阶段无人接单 / nobody took it in this stage",
    };
    let command = OrderCommand::Escalate {
        to,
        deadline: services.dispatch.deadline(to, now),
        reason: reason.to_owned(),
        now,
    };
    services.orders.execute(order_id, command, context).await?;
    if let Some(worker_id) = expiring_worker {
        release(services, worker_id, order_id, reason, context).await;
    }
    if to == DispatchStage::Admin {
        tell(
            services,
            Recipient::Role("admin"),
            "dispatch_needed",
            "订单待人工派单 / An order needs dispatching",
            &format!("订单 {order_id} 自动派单未成功，等待人工派单。/ Order {order_id} could not be dispatched automatically and waits for an admin."),
        )
        .await;
    }
    Ok(())
}

/// How many of the cheapest eligible workers hear of an order offered for grabbing.
const GRAB_BROADCAST_LIMIT: usize = 50;

/// Tells the eligible workers (the nearest and best first, at most fifty) of each order newly
/// offered for grabbing, through the reminder outbox. The reminders and the order's broadcast
/// mark are written in one transaction, so each order is announced once.
pub async fn broadcast_grab_offers(
    services: &Services,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let rows = model::orders_in_stage(&services.pool, DispatchStage::Grab.as_str(), 200).await?;
    let mut sent = 0;
    for row in rows {
        let announced: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM grab_broadcasts WHERE order_id = $1)")
                .bind(row.order_id)
                .fetch_one(&services.pool)
                .await?;
        if announced {
            continue;
        }
        let order = open_order(services, &row).await?;
        let today = domain::values::business_day(now);
        let mut eligible: Vec<(i64, Uuid)> =
            model::dispatchable_workers(&services.pool, Some(std::slice::from_ref(&row.city)), now)
                .await?
                .into_iter()
                .map(candidate)
                .filter_map(|candidate| {
                    domain::dispatch::eligibility(
                        &order,
                        &candidate,
                        &services.dispatch.weights,
                        today,
                    )
                    .ok()
                    .map(|score| (score.total, candidate.worker_id))
                })
                .collect();
        eligible.sort();
        eligible.truncate(GRAB_BROADCAST_LIMIT);
        let service = order.service.spec();
        let local = order
            .start
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
            .format("%Y-%m-%d %H:%M");
        let mut transaction = services.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO grab_broadcasts (order_id, workers) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(row.order_id)
        .bind(eligible.len() as i32)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if inserted == 0 {
            continue;
        }
        // Every eligible worker's offer in one statement: the transaction holds its id (and
        // with it the projectors' horizon) for three round trips, however many they are.
        let workers: Vec<Uuid> = eligible.iter().map(|(_, worker_id)| *worker_id).collect();
        let keys: Vec<String> = workers
            .iter()
            .map(|worker_id| format!("{}:grab_offered:{worker_id}", row.order_id))
            .collect();
        sqlx::query(
            "INSERT INTO reminders (reminder_key, order_id, kind, recipient_id, recipient_role,
                                    due_at, title, body)
             SELECT offer.key, $2, 'grab_offered', offer.worker_id, 'worker', $3, $4, $5
               FROM unnest($1::text[], $6::uuid[]) AS offer (key, worker_id)
             ON CONFLICT (reminder_key) DO NOTHING",
        )
        .bind(&keys)
        .bind(row.order_id)
        .bind(now)
        .bind("可抢订单 / An order you can grab")
        .bind(format!(
            "{}{}（{}）可抢，先到先得。/ A {} order in {} ({}) is open for grabbing: first come, first served.",
            row.city, service.name_zh, local, service.name_en, row.city, local
        ))
        .bind(&workers)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        sent += 1;
    }
    Ok(sent)
}
