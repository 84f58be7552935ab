//! The dispatcher: opens paid orders for dispatch at the stage the settings choose, moves them
//! on when a stage's time runs out (named worker → grab → automatic → admins), runs the
//! automatic rounds, and gives back time that a failed step left reserved.
//!
//! Every step is a command on one stream and safe to repeat, so the timer job may run in any
//! number of processes (it holds an advisory lock per tick) and pick up after a crash.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use domain::dispatch::{
    may_take, Applicant, Candidate, DispatchStage, Ineligible, Method, OpenOrder, Wanted, Weights,
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

/// How dispatch behaves, from the environment.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// `ANJIA_HOLD_MINUTES`: how long an unpaid order (and its named worker's time) is held.
    pub hold: Duration,
    /// `ANJIA_NAMED_CONFIRM_MINUTES`: how long a named worker has to confirm.
    pub named_confirm: Duration,
    /// `ANJIA_GRAB_WINDOW_MINUTES`: how long an order is offered for grabbing.
    pub grab_window: Duration,
    /// `ANJIA_AUTO_WINDOW_MINUTES`: how long automatic rounds try before the admins take over.
    pub auto_window: Duration,
    /// `ANJIA_ACCEPT_MINUTES`: how long a dispatched worker has to accept.
    pub accept_within: Duration,
    /// `ANJIA_DISPATCH_MODES`, e.g. `daily_cleaning=grab,nanny=auto`: the first stage per
    /// service for orders that name no worker (`grab`, `auto` or `admin`).
    pub modes: HashMap<ServiceCode, DispatchStage>,
    /// `ANJIA_DISPATCH_SCHEDULE`: when the timers and automatic rounds run (cron with seconds).
    pub schedule: String,
    /// How old a reservation must be before reconciliation may give it back: every step that
    /// books a worker and then commits the order finishes well inside it. One minute.
    pub reservation_grace: Duration,
    pub weights: Weights,
    /// `ANJIA_MAX_UNPAID_NAMED_ORDERS`: unpaid orders naming a worker one customer may hold
    /// at once (each holds that worker's time until paid or expired).
    pub max_unpaid_named: i64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        let modes = ServiceCode::ALL
            .into_iter()
            .map(|service| {
                // Quick jobs go to whoever grabs first; live-in care is matched with care.
                let stage = match service {
                    ServiceCode::DailyCleaning
                    | ServiceCode::DeepCleaning
                    | ServiceCode::HomeRepair => DispatchStage::Grab,
                    _ => DispatchStage::Auto,
                };
                (service, stage)
            })
            .collect();
        DispatchSettings {
            hold: Duration::minutes(15),
            named_confirm: Duration::minutes(10),
            grab_window: Duration::minutes(10),
            auto_window: Duration::minutes(30),
            accept_within: Duration::minutes(10),
            modes,
            schedule: "*/5 * * * * *".to_owned(),
            reservation_grace: Duration::minutes(1),
            weights: Weights::default(),
            max_unpaid_named: 3,
        }
    }
}

impl DispatchSettings {
    /// Reads `service=stage,…`.
    pub fn set_modes(&mut self, raw: &str) -> anyhow::Result<()> {
        for pair in raw
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (service, stage) = pair
                .split_once('=')
                .with_context(|| format!("ANJIA_DISPATCH_MODES: `{pair}` is not service=stage"))?;
            let service = ServiceCode::parse(service.trim())
                .with_context(|| format!("ANJIA_DISPATCH_MODES: unknown service `{service}`"))?;
            let stage = DispatchStage::parse(stage.trim())
                .filter(|stage| *stage != DispatchStage::Named)
                .with_context(|| {
                    format!("ANJIA_DISPATCH_MODES: `{stage}` is not grab, auto or admin")
                })?;
            self.modes.insert(service, stage);
        }
        Ok(())
    }

    pub fn first_open_stage(&self, service: ServiceCode) -> DispatchStage {
        self.modes
            .get(&service)
            .copied()
            .unwrap_or(DispatchStage::Auto)
    }

    pub fn deadline(&self, stage: DispatchStage, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let window = match stage {
            DispatchStage::Named => self.named_confirm,
            DispatchStage::Grab => self.grab_window,
            DispatchStage::Auto => self.auto_window,
            DispatchStage::Admin => return None,
        };
        Some(now + window)
    }

    /// The stage after `stage` for a service: grab and auto in the order the service's mode
    /// implies, then the admins.
    fn next_stage(&self, stage: Option<DispatchStage>, service: ServiceCode) -> DispatchStage {
        let first = self.first_open_stage(service);
        match stage {
            None | Some(DispatchStage::Named) => first,
            Some(DispatchStage::Grab) => DispatchStage::Auto,
            Some(DispatchStage::Auto) | Some(DispatchStage::Admin) => DispatchStage::Admin,
        }
    }

    pub fn pay_by(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.hold
    }
}

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
        Ok(_) => true,
        Err(error) => {
            tracing::error!(worker_id = %worker_id, order_id = %order_id, error = %error, "could not release a booking");
            false
        }
    }
}

/// Reserves a worker's time for an order in the worker's own stream.
pub async fn hold(
    services: &Services,
    worker_id: Uuid,
    order: &Order,
    order_id: Uuid,
    context: &CommandContext,
) -> crate::Result<()> {
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
    services
        .workers
        .execute_deciding_again(worker_id, booking, context)
        .await?;
    Ok(())
}

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
        for (_, worker_id) in &eligible {
            sqlx::query(
                "INSERT INTO reminders (reminder_key, order_id, kind, recipient_id, recipient_role,
                                        due_at, title, body)
                 VALUES ($1, $2, 'grab_offered', $3, 'worker', $4, $5, $6)
                 ON CONFLICT (reminder_key) DO NOTHING",
            )
            .bind(format!("{}:grab_offered:{worker_id}", row.order_id))
            .bind(row.order_id)
            .bind(worker_id)
            .bind(now)
            .bind("可抢订单 / An order you can grab")
            .bind(format!(
                "{}{}（{}）可抢，先到先得。/ A {} order in {} ({}) is open for grabbing: first come, first served.",
                row.city, service.name_zh, local, service.name_en, row.city, local
            ))
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        sent += 1;
    }
    Ok(sent)
}

/// What an automatic round did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RoundReport {
    pub orders: usize,
    pub workers: usize,
    pub assigned: usize,
    pub unassigned: usize,
    pub refused: usize,
    pub total_cost: i64,
    pub millis: u128,
}

/// The open order as the domain's matcher sees it, from the model row and the customer's
/// blocks and history.
pub async fn open_order(services: &Services, row: &DispatchOrderRow) -> anyhow::Result<OpenOrder> {
    let mut orders = open_orders(services, std::slice::from_ref(row)).await?;
    Ok(orders.pop().expect("one row, one order"))
}

/// Many open orders at once: the customers' blocks and histories are read in one go.
pub async fn open_orders(
    services: &Services,
    rows: &[DispatchOrderRow],
) -> anyhow::Result<Vec<OpenOrder>> {
    let mut customers: Vec<Uuid> = rows.iter().map(|row| row.customer_id).collect();
    customers.sort();
    customers.dedup();
    let mut known = model::customers_workers(&services.pool, &customers).await?;
    rows.iter()
        .map(|row| {
            let (blocked, previous_workers) = known.remove(&row.customer_id).unwrap_or_default();
            // Another order of the same customer in this batch needs the same lists.
            known.insert(row.customer_id, (blocked.clone(), previous_workers.clone()));
            Ok(OpenOrder {
                order_id: row.order_id,
                customer_id: row.customer_id,
                service: ServiceCode::parse(&row.service).context("the order's service")?,
                city: row.city.clone(),
                start: row.starts_at,
                end: row.ends_at,
                location: row.state.location,
                declined_by: row.state.declined_by.clone(),
                blocked,
                previous_workers,
                waiting_since: row.waiting_since.unwrap_or(row.placed_at),
            })
        })
        .collect()
}

pub fn candidate(row: model::DispatchWorkerRow) -> Candidate {
    Candidate {
        worker_id: row.worker_id,
        worker: row.state,
        city: row.city,
        rating: row.rating,
        recent_earnings_fen: row.recent_earnings_fen,
    }
}

/// Matches every order waiting in the automatic stage to the available workers at once, then
/// books and assigns each pairing. A pairing a newer booking overtook is refused by the
/// worker's stream and waits for the next round.
pub async fn automatic_round(
    services: &Services,
    context: &CommandContext,
) -> anyhow::Result<RoundReport> {
    let started = std::time::Instant::now();
    let rows = model::orders_in_stage(&services.pool, DispatchStage::Auto.as_str(), 2_000).await?;
    if rows.is_empty() {
        return Ok(RoundReport::default());
    }
    let orders = open_orders(services, &rows).await?;
    let mut cities: Vec<String> = orders.iter().map(|order| order.city.clone()).collect();
    cities.sort();
    cities.dedup();
    let candidates: Vec<Candidate> =
        model::dispatchable_workers(&services.pool, Some(&cities), context.occurred_at)
            .await?
            .into_iter()
            .map(candidate)
            .collect();
    let today = domain::values::business_day(context.occurred_at);
    let round = domain::dispatch::plan_round(
        &orders,
        &candidates,
        &services.dispatch.weights,
        Method::Optimal,
        today,
    );
    let mut report = RoundReport {
        orders: orders.len(),
        workers: candidates.len(),
        unassigned: round.unassigned.len(),
        total_cost: round.total_cost,
        ..RoundReport::default()
    };
    for proposal in round.proposals {
        let order = &orders[proposal.order_index];
        let worker = &candidates[proposal.worker_index];
        match assign(
            services,
            order.order_id,
            worker.worker_id,
            Some(proposal.score),
            context,
        )
        .await
        {
            Ok(()) => report.assigned += 1,
            Err(error) => {
                report.refused += 1;
                tracing::info!(order_id = %order.order_id, worker_id = %worker.worker_id, error = %error, "an automatic assignment was overtaken");
            }
        }
    }
    report.millis = started.elapsed().as_millis();
    sqlx::query(
        "INSERT INTO dispatch_rounds (orders, workers, assigned, unassigned, refused, total_cost, millis)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(report.orders as i32)
    .bind(report.workers as i32)
    .bind(report.assigned as i32)
    .bind(report.unassigned as i32)
    .bind(report.refused as i32)
    .bind(report.total_cost)
    .bind(report.millis as i64)
    .execute(&services.pool)
    .await?;
    Ok(report)
}

/// Books a worker and assigns them an order (by the dispatcher or an admin); gives the time
/// back if the order refuses.
pub async fn assign(
    services: &Services,
    order_id: Uuid,
    worker_id: Uuid,
    score: Option<domain::dispatch::AssignmentScore>,
    context: &CommandContext,
) -> crate::Result<()> {
    let (worker, _): (Worker, usize) = services.workers.load(worker_id).await?;
    let (order, _): (Order, usize) = services.orders.load(order_id).await?;
    if order.status == OrderStatus::New {
        return Err(Error::not_found("订单", "order"));
    }
    let now = context.occurred_at;
    let by = context.actor.unwrap_or_else(domain::Actor::system);
    let command = OrderCommand::AssignWorker {
        worker: worker.facts(worker_id, domain::values::business_day(now)),
        by,
        respond_by: Some(now + services.dispatch.accept_within),
        score,
        now,
    };
    hold(services, worker_id, &order, order_id, context).await?;
    if let Err(refusal) = services.orders.execute(order_id, command, context).await {
        release(
            services,
            worker_id,
            order_id,
            "派单失败 / assignment failed",
            context,
        )
        .await;
        return Err(refusal.into());
    }
    tell(
        services,
        Recipient::Person(worker_id),
        "order_offered",
        "新订单待确认 / A new order for you",
        &format!(
            "您有新的派单 {order_id}，请在 {minutes} 分钟内确认。/ Order {order_id} was dispatched to you; please accept within {minutes} minutes.",
            minutes = services.dispatch.accept_within.num_minutes().max(1)
        ),
    )
    .await;
    Ok(())
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
        let (order, _): (Order, usize) = services.orders.load(order_id).await?;
        let (worker, _): (Worker, usize) = services.workers.load(worker_id).await?;
        if !order.holds(worker_id)
            || worker
                .bookings
                .iter()
                .any(|booked| booked.order_id == order_id)
        {
            continue;
        }
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
    let command = OrderCommand::Grab {
        worker: facts,
        now: context.occurred_at,
    };
    let blocked = match order.customer_id {
        Some(customer_id) => projections::dispatch::blocked_by(&services.pool, customer_id).await?,
        None => Vec::new(),
    };
    if let (Some(service), OrderCommand::Grab { worker: facts, .. }) = (order.service, &command) {
        // A grab asks the radius, not the city: the offers a worker sees are their city's.
        let wanted = Wanted {
            service,
            location: order.location,
            city: None,
            blocked: &blocked,
            declined_by: &[],
        };
        match may_take(&Applicant::new(&worker, facts), &wanted) {
            Err(Ineligible::Blocked) => {
                return Err(Error::illegal_state(
                    "该客户不接受您的服务 / this customer has asked not to be served by you",
                ))
            }
            Err(Ineligible::OutOfRange) => {
                return Err(Error::illegal_state(
                    "订单地址超出您的服务范围 / the address is outside your service radius",
                ))
            }
            // The order's own answer says why (suspended, not approved, not certified).
            _ => {}
        }
    }
    if let Err(refusal) = order.decide_only(command.clone()) {
        return Err(refusal.into());
    }
    hold(services, worker_id, &order, order_id, context).await?;
    match services
        .orders
        .execute_deciding_again(order_id, command, context)
        .await
    {
        Ok(_) => Ok(()),
        Err(refusal) => {
            let released = release(
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
