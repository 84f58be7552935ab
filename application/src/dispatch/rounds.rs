//! Automatic rounds: the open orders and the candidates, one minimum-cost assignment, and each
//! proposal assigned.

use super::*;

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
    let held = hold(services, worker_id, &order, order_id, context).await?;
    if let Err(refusal) = services.orders.execute(order_id, command, context).await {
        held.give_back(
            services,
            worker_id,
            order_id,
            "派单失败 / assignment failed",
            context,
        )
        .await;
        return Err(refusal.into());
    }
    held.confirm(services, worker_id, order_id, context).await;
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
