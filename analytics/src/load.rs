//! The incremental load: events after the warehouse's checkpoint, in batches, each batch's fact
//! rows appended with DuckDB's appender in one transaction with the new checkpoint.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use duckdb::{params, Connection};
use projections::log::{read_after, Checkpoint, StoredEvent};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Warehouse;

/// Events read from PostgreSQL per batch.
pub const BATCH: i64 = 20_000;

/// What a refresh did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoadReport {
    pub events: u64,
    pub rows: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    /// Events in the warehouse after the refresh.
    pub total_events: i64,
    pub transaction_id: u64,
    pub position: i64,
    pub refreshed_at: DateTime<Utc>,
}

/// The Asia/Shanghai calendar date of a moment (China keeps UTC+8 all year).
pub fn beijing_day(at: DateTime<Utc>) -> NaiveDate {
    domain::values::business_day(at)
}

/// order, customer, service, city, district, total, placed at
type OrderRow = (Uuid, Uuid, String, String, String, i64, DateTime<Utc>);
/// order, milestone, worker, detail, reason, at
type MilestoneRow = (
    Uuid,
    &'static str,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
);
/// payment, order, kind, method, amount, commission, worker share, at
type MoneyRow = (
    Uuid,
    Option<Uuid>,
    &'static str,
    Option<String>,
    i64,
    i64,
    i64,
    DateTime<Utc>,
);
/// order, worker, quality, attitude, skill, by default, at
type ReviewRow = (Uuid, Option<Uuid>, u8, u8, u8, bool, DateTime<Utc>);

/// person, role, kind, detail (sign-in method, platform), at
type ActivityRow = (
    Uuid,
    &'static str,
    &'static str,
    Option<String>,
    DateTime<Utc>,
);

#[derive(Debug, Default)]
struct Rows {
    orders: Vec<OrderRow>,
    milestones: Vec<MilestoneRow>,
    payments: Vec<(Uuid, Uuid, Uuid, String)>,
    money: Vec<MoneyRow>,
    reviews: Vec<ReviewRow>,
    worker_status: Vec<(Uuid, &'static str, DateTime<Utc>)>,
    activity: Vec<ActivityRow>,
}

impl Rows {
    fn count(&self) -> u64 {
        (self.orders.len()
            + self.milestones.len()
            + self.payments.len()
            + self.money.len()
            + self.reviews.len()
            + self.worker_status.len()
            + self.activity.len()) as u64
    }
}

fn text<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
}

/// Turns events into fact rows; `payments` maps payment ids to (order, method) across batches.
fn facts(
    events: &[StoredEvent],
    payments: &mut HashMap<Uuid, (Uuid, String)>,
) -> anyhow::Result<Rows> {
    use domain::activity::PresenceEvent;
    use domain::customer::CustomerEvent;
    use domain::order::OrderEvent;
    use domain::payment::PaymentEvent;
    use domain::worker::WorkerEvent;
    use domain::Role;
    let mut rows = Rows::default();
    for event in events {
        let id: Option<Uuid> = event.aggregate_id.parse().ok();
        let Some(id) = id else { continue };
        match event.aggregate_type.as_str() {
            "order" => {
                let milestone = |rows: &mut Rows,
                                 name: &'static str,
                                 worker: Option<Uuid>,
                                 detail: Option<String>,
                                 reason: Option<String>,
                                 at: DateTime<Utc>| {
                    rows.milestones.push((id, name, worker, detail, reason, at));
                };
                match event.decode::<OrderEvent>()? {
                    OrderEvent::OrderPlaced {
                        booking,
                        total,
                        placed_at,
                        ..
                    } => {
                        rows.orders.push((
                            id,
                            booking.customer_id,
                            booking.service.as_str().to_owned(),
                            booking.address.city.clone(),
                            booking.address.district.clone(),
                            total.get(),
                            placed_at,
                        ));
                        rows.activity.push((
                            booking.customer_id,
                            "customer",
                            "order_placed",
                            None,
                            placed_at,
                        ));
                    }
                    OrderEvent::PaymentRecorded { paid_at, .. } => {
                        milestone(&mut rows, "paid", None, None, None, paid_at)
                    }
                    OrderEvent::WorkerAssigned {
                        worker_id,
                        assigned_by,
                        assigned_at,
                        ..
                    } => milestone(
                        &mut rows,
                        "assigned",
                        Some(worker_id),
                        text(&assigned_by.role),
                        None,
                        assigned_at,
                    ),
                    OrderEvent::OrderAccepted {
                        worker_id,
                        accepted_at,
                    } => {
                        rows.activity
                            .push((worker_id, "worker", "order_work", None, accepted_at));
                        milestone(
                            &mut rows,
                            "accepted",
                            Some(worker_id),
                            None,
                            None,
                            accepted_at,
                        )
                    }
                    OrderEvent::ServiceStarted {
                        worker_id,
                        started_at,
                    } => {
                        rows.activity
                            .push((worker_id, "worker", "order_work", None, started_at));
                        milestone(
                            &mut rows,
                            "started",
                            Some(worker_id),
                            None,
                            None,
                            started_at,
                        )
                    }
                    OrderEvent::ServiceFinished {
                        worker_id,
                        finished_at,
                    } => {
                        rows.activity
                            .push((worker_id, "worker", "order_work", None, finished_at));
                        milestone(
                            &mut rows,
                            "completed",
                            Some(worker_id),
                            None,
                            None,
                            finished_at,
                        )
                    }
                    OrderEvent::OrderCancelled {
                        reason,
                        stage,
                        cancelled_at,
                        ..
                    } => milestone(
                        &mut rows,
                        "cancelled",
                        None,
                        text(&stage),
                        Some(reason),
                        cancelled_at,
                    ),
                    OrderEvent::ReviewHidden { reason, .. } => milestone(
                        &mut rows,
                        "review_hidden",
                        None,
                        None,
                        Some(reason),
                        event.recorded_at,
                    ),
                    OrderEvent::OrderDisputed { .. } => {
                        milestone(&mut rows, "disputed", None, None, None, event.recorded_at)
                    }
                    OrderEvent::OrderReviewed {
                        quality,
                        attitude,
                        skill,
                        reviewed_at,
                        by_default,
                        worker_id,
                        ..
                    } => rows.reviews.push((
                        id,
                        worker_id,
                        quality,
                        attitude,
                        skill,
                        by_default,
                        reviewed_at,
                    )),
                    _ => {}
                }
            }
            "payment" => match event.decode::<PaymentEvent>()? {
                PaymentEvent::PaymentCreated {
                    order_id,
                    customer_id,
                    method,
                    ..
                } => {
                    let method = method.as_str().to_owned();
                    payments.insert(id, (order_id, method.clone()));
                    rows.payments.push((id, order_id, customer_id, method));
                }
                PaymentEvent::PaymentCaptured {
                    amount,
                    captured_at,
                    ..
                } => {
                    let (order, method) = payments.get(&id).cloned().unzip();
                    rows.money.push((
                        id,
                        order,
                        "captured",
                        method,
                        amount.get(),
                        0,
                        0,
                        captured_at,
                    ));
                }
                PaymentEvent::RefundIssued {
                    amount,
                    fee,
                    fee_to_worker,
                    issued_at,
                    ..
                } => {
                    let (order, method) = payments.get(&id).cloned().unzip();
                    rows.money.push((
                        id,
                        order,
                        "refunded",
                        method.clone(),
                        amount.get(),
                        0,
                        0,
                        issued_at,
                    ));
                    if fee.get() > 0 {
                        // The fee kept: the platform's part as commission, the worker's as
                        // their share, as the ledger posts it.
                        let to_worker = fee_to_worker.map_or(0, |share| share.amount.get());
                        rows.money.push((
                            id,
                            order,
                            "fee_kept",
                            method,
                            fee.get(),
                            fee.get() - to_worker,
                            to_worker,
                            issued_at,
                        ));
                    }
                }
                PaymentEvent::EscrowReleased {
                    commission,
                    worker_share,
                    released_at,
                    ..
                } => {
                    let (order, method) = payments.get(&id).cloned().unzip();
                    rows.money.push((
                        id,
                        order,
                        "released",
                        method,
                        commission.get() + worker_share.get(),
                        commission.get(),
                        worker_share.get(),
                        released_at,
                    ));
                }
                PaymentEvent::RefundClawedBack {
                    amount,
                    from_commission,
                    from_worker,
                    issued_at,
                    ..
                } => {
                    let (order, method) = payments.get(&id).cloned().unzip();
                    rows.money.push((
                        id,
                        order,
                        "clawed_back",
                        method,
                        amount.get(),
                        from_commission.get(),
                        from_worker.get(),
                        issued_at,
                    ));
                }
                _ => {}
            },
            "worker" => {
                let status = match event.decode::<WorkerEvent>()? {
                    WorkerEvent::WorkerRegistered { registered_at, .. } => {
                        rows.activity
                            .push((id, "worker", "registered", None, registered_at));
                        Some(("registered", registered_at))
                    }
                    WorkerEvent::WorkerWentOnline { at } => {
                        rows.activity.push((id, "worker", "went_online", None, at));
                        Some(("online", at))
                    }
                    WorkerEvent::WorkerWentOffline { at } => Some(("offline", at)),
                    WorkerEvent::WorkerSuspended { at, .. } => Some(("suspended", at)),
                    WorkerEvent::WorkerReinstated { at, .. } => Some(("reinstated", at)),
                    WorkerEvent::WorkerApproved { at, .. } => Some(("approved", at)),
                    WorkerEvent::WorkerRejected { at, .. } => Some(("rejected", at)),
                    _ => None,
                };
                if let Some((status, at)) = status {
                    rows.worker_status.push((id, status, at));
                }
            }
            "customer" => {
                if let CustomerEvent::CustomerRegistered { registered_at, .. } =
                    event.decode::<CustomerEvent>()?
                {
                    rows.activity
                        .push((id, "customer", "registered", None, registered_at));
                }
            }
            "presence" => {
                let (user, role, kind, detail, at) = match event.decode::<PresenceEvent>()? {
                    PresenceEvent::SignedIn {
                        user_id,
                        role,
                        method,
                        at,
                    } => (user_id, role, "signed_in", text(&method), at),
                    PresenceEvent::AppOpened {
                        user_id,
                        role,
                        platform,
                        at,
                        ..
                    } => (
                        user_id,
                        role,
                        "app_opened",
                        Some(platform.as_str().to_owned()),
                        at,
                    ),
                };
                // Only the people the activity report counts.
                let role = match role {
                    Role::Customer => "customer",
                    Role::Worker => "worker",
                    _ => continue,
                };
                rows.activity.push((user, role, kind, detail, at));
            }
            _ => {}
        }
    }
    Ok(rows)
}

/// Appends a batch's rows and the new checkpoint in one DuckDB transaction.
fn append(
    connection: &mut Connection,
    rows: &Rows,
    checkpoint: Checkpoint,
    events: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let transaction = connection.transaction()?;
    {
        let mut appender = transaction.appender("order_facts")?;
        for (order, customer, service, city, district, total, at) in &rows.orders {
            appender.append_row(params![
                order,
                customer,
                service,
                city,
                district,
                total,
                at,
                beijing_day(*at)
            ])?;
        }
        let mut appender = transaction.appender("order_milestones")?;
        for (order, milestone, worker, detail, reason, at) in &rows.milestones {
            appender.append_row(params![
                order,
                milestone,
                worker,
                detail,
                reason,
                at,
                beijing_day(*at)
            ])?;
        }
        let mut appender = transaction.appender("payment_dim")?;
        for (payment, order, customer, method) in &rows.payments {
            appender.append_row(params![payment, order, customer, method])?;
        }
        let mut appender = transaction.appender("money_facts")?;
        for (payment, order, kind, method, amount, commission, share, at) in &rows.money {
            appender.append_row(params![
                payment,
                order,
                kind,
                method,
                amount,
                commission,
                share,
                at,
                beijing_day(*at)
            ])?;
        }
        let mut appender = transaction.appender("review_facts")?;
        for (order, worker, quality, attitude, skill, by_default, at) in &rows.reviews {
            appender.append_row(params![
                order,
                worker,
                quality,
                attitude,
                skill,
                by_default,
                at,
                beijing_day(*at)
            ])?;
        }
        let mut appender = transaction.appender("worker_status_facts")?;
        for (worker, status, at) in &rows.worker_status {
            appender.append_row(params![worker, status, at, beijing_day(*at)])?;
        }
        let mut appender = transaction.appender("activity_facts")?;
        for (user, role, kind, detail, at) in &rows.activity {
            appender.append_row(params![user, role, kind, at, beijing_day(*at), detail])?;
        }
    }
    transaction.execute(
        "INSERT INTO load_state (id, transaction_id, position, events, refreshed_at)
         VALUES (1, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET transaction_id = excluded.transaction_id,
             position = excluded.position, events = load_state.events + excluded.events,
             refreshed_at = excluded.refreshed_at",
        params![checkpoint.transaction_id, checkpoint.position, events, now],
    )?;
    transaction.commit()?;
    Ok(())
}

/// The warehouse's checkpoint and event count.
fn state(connection: &Connection) -> anyhow::Result<(Checkpoint, i64)> {
    let mut statement = connection
        .prepare("SELECT transaction_id, position, events FROM load_state WHERE id = 1")?;
    let mut rows = statement.query([])?;
    Ok(match rows.next()? {
        Some(row) => (
            Checkpoint {
                transaction_id: row.get(0)?,
                position: row.get(1)?,
            },
            row.get(2)?,
        ),
        None => (Checkpoint::default(), 0),
    })
}

fn payment_index(connection: &Connection) -> anyhow::Result<HashMap<Uuid, (Uuid, String)>> {
    let mut statement =
        connection.prepare("SELECT payment_id, order_id, method FROM payment_dim")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, Uuid>(0)?, (row.get(1)?, row.get(2)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Loads every event committed since the last refresh. One process at a time (the caller holds
/// the lock); the file is open only while loading, so analysts can read it between refreshes.
pub async fn refresh(pool: &PgPool, warehouse: &Warehouse) -> anyhow::Result<LoadReport> {
    let started = Instant::now();
    let path = warehouse.path().to_owned();
    let (mut connection, mut checkpoint, mut total, mut payments) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let connection = Warehouse::at(path).open_for_load()?;
            let (checkpoint, total) = state(&connection)?;
            let payments = payment_index(&connection)?;
            Ok((connection, checkpoint, total, payments))
        })
        .await??;
    let (mut events_loaded, mut rows_loaded) = (0u64, 0u64);
    let mut db = pool.acquire().await?;
    loop {
        let events = read_after(&mut db, checkpoint, BATCH)
            .await
            .context("reading the event log")?;
        let Some(last) = events.last() else { break };
        let next = Checkpoint {
            transaction_id: last.transaction_id,
            position: last.position,
        };
        let rows = facts(&events, &mut payments)?;
        rows_loaded += rows.count();
        let count = events.len() as i64;
        let now = Utc::now();
        connection = tokio::task::spawn_blocking(move || -> anyhow::Result<Connection> {
            append(&mut connection, &rows, next, count, now)?;
            Ok(connection)
        })
        .await??;
        events_loaded += count as u64;
        total += count;
        checkpoint = next;
        if count < BATCH {
            break;
        }
    }
    // A refresh that found nothing new still says the warehouse is current as of now.
    let refreshed_at = Utc::now();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        append(
            &mut connection,
            &Rows::default(),
            checkpoint,
            0,
            refreshed_at,
        )
    })
    .await??;
    let seconds = started.elapsed().as_secs_f64();
    Ok(LoadReport {
        events: events_loaded,
        rows: rows_loaded,
        seconds,
        events_per_second: events_loaded as f64 / seconds.max(1e-9),
        total_events: total,
        transaction_id: checkpoint.transaction_id,
        position: checkpoint.position,
        refreshed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_beijing_day_turns_at_sixteen_hundred_utc() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().expect("time");
        let day = |text: &str| text.parse::<NaiveDate>().expect("date");
        assert_eq!(beijing_day(at("2026-03-01T15:59:59Z")), day("2026-03-01"));
        assert_eq!(beijing_day(at("2026-03-01T16:00:00Z")), day("2026-03-02"));
        assert_eq!(beijing_day(at("2026-12-31T23:00:00Z")), day("2027-01-01"));
    }
}
