//! The dispatcher's read model: the live state of every order still on its way and of every
//! worker (the aggregates' own folded state, so the dispatcher judges with the same domain
//! code the command side uses), plus ratings, recent earnings, customers' blocks and who
//! served whom.
//!
//! The worker's own stream stays the authority on double booking: the dispatcher plans from
//! this model, and a plan that a newer booking has overtaken is refused by the worker's
//! stream and retried in the next round.

use anyhow::Context;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::customer::CustomerEvent;
use domain::order::{Order, OrderEvent, OrderStatus};
use domain::worker::{Worker, WorkerEvent};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::projector::Projection;

pub struct DispatchProjection;

#[async_trait::async_trait]
impl Projection for DispatchProjection {
    fn name(&self) -> &'static str {
        "dispatch"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "dispatch_orders",
            "dispatch_workers",
            "worker_ratings",
            "worker_earnings",
            "customer_blocks",
            "customer_workers",
        ]
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE {schema}.dispatch_orders (
                order_id        uuid PRIMARY KEY,
                customer_id     uuid        NOT NULL,
                service         text        NOT NULL,
                city            text        NOT NULL,
                status          text        NOT NULL,
                stage           text,
                stage_deadline  timestamptz,
                respond_by      timestamptz,
                pay_by          timestamptz,
                worker_id       uuid,
                starts_at       timestamptz NOT NULL,
                ends_at         timestamptz NOT NULL,
                waiting_since   timestamptz,
                placed_at       timestamptz NOT NULL,
                updated_at      timestamptz NOT NULL,
                state           jsonb       NOT NULL,
                last_sequence   bigint      NOT NULL
            );
            CREATE INDEX ON {schema}.dispatch_orders (status, stage);
            CREATE INDEX ON {schema}.dispatch_orders (pay_by) WHERE status = 'awaiting_payment';
            CREATE TABLE {schema}.dispatch_workers (
                worker_id     uuid PRIMARY KEY,
                city          text    NOT NULL,
                dispatchable  boolean NOT NULL,
                -- The worker's state; its places are cells (ServiceBaseSet and WorkerBooked 2.0).
                state         jsonb   NOT NULL,
                last_sequence bigint  NOT NULL
            );
            CREATE INDEX ON {schema}.dispatch_workers (city) WHERE dispatchable;
            CREATE TABLE {schema}.worker_ratings (
                worker_id    uuid PRIMARY KEY,
                reviews      integer NOT NULL,
                quality_sum  integer NOT NULL,
                attitude_sum integer NOT NULL,
                skill_sum    integer NOT NULL
            );
            CREATE TABLE {schema}.worker_earnings (
                worker_id uuid   NOT NULL,
                order_id  uuid   NOT NULL,
                earned_at timestamptz NOT NULL,
                amount    bigint NOT NULL,
                PRIMARY KEY (worker_id, order_id)
            );
            CREATE TABLE {schema}.customer_blocks (
                customer_id uuid NOT NULL,
                worker_id   uuid NOT NULL,
                blocked_at  timestamptz NOT NULL,
                PRIMARY KEY (customer_id, worker_id)
            );
            CREATE TABLE {schema}.customer_workers (
                customer_id uuid    NOT NULL,
                worker_id   uuid    NOT NULL,
                orders      integer NOT NULL,
                PRIMARY KEY (customer_id, worker_id)
            );"
        )
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        event: &StoredEvent,
    ) -> anyhow::Result<()> {
        match event.aggregate_type.as_str() {
            "order" => apply_order(connection, schema, event).await,
            "worker" => apply_worker(connection, schema, event).await,
            "customer" => apply_customer(connection, schema, event).await,
            _ => Ok(()),
        }
    }
}

/// An order leaves the model once nothing more can happen that dispatch or ratings need.
fn finished(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Reviewed | OrderStatus::Cancelled | OrderStatus::Disputed
    )
}

async fn apply_order(
    connection: &mut PgConnection,
    schema: &str,
    event: &StoredEvent,
) -> anyhow::Result<()> {
    let order_id: Uuid = event.aggregate_id.parse().context("order id")?;
    let decoded: OrderEvent = event.decode()?;
    // A hidden review comes out of its worker's ratings; the order has long left this read
    // model, so the event names the worker.
    // Reviews move the worker's ratings by the worker the event names: the order may have left
    // this read model already (a resolved dispute, or long since reviewed when hidden).
    let rated = match &decoded {
        OrderEvent::OrderReviewed {
            worker_id: Some(worker_id),
            quality,
            attitude,
            skill,
            ..
        } => Some((*worker_id, 1, *quality, *attitude, *skill)),
        OrderEvent::ReviewHidden {
            worker_id: Some(worker_id),
            quality,
            attitude,
            skill,
            ..
        } => Some((*worker_id, -1, *quality, *attitude, *skill)),
        _ => None,
    };
    if let Some((worker_id, sign, quality, attitude, skill)) = rated {
        sqlx::query(&format!(
            "INSERT INTO {schema}.worker_ratings
                 (worker_id, reviews, quality_sum, attitude_sum, skill_sum)
             VALUES ($1, $5, $2 * $5, $3 * $5, $4 * $5)
             ON CONFLICT (worker_id) DO UPDATE SET
                 reviews = {schema}.worker_ratings.reviews + $5,
                 quality_sum = {schema}.worker_ratings.quality_sum + $2 * $5,
                 attitude_sum = {schema}.worker_ratings.attitude_sum + $3 * $5,
                 skill_sum = {schema}.worker_ratings.skill_sum + $4 * $5"
        ))
        .bind(worker_id)
        .bind(i32::from(quality))
        .bind(i32::from(attitude))
        .bind(i32::from(skill))
        .bind(sign)
        .execute(&mut *connection)
        .await?;
        if matches!(decoded, OrderEvent::ReviewHidden { .. }) {
            return Ok(());
        }
    }
    let existing = sqlx::query(&format!(
        "SELECT state, last_sequence FROM {schema}.dispatch_orders WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(&mut *connection)
    .await?;
    let mut order: Order = match existing {
        Some(row) => {
            let sequence: i64 = row.get("last_sequence");
            if sequence >= event.sequence {
                return Ok(());
            }
            serde_json::from_value(row.get("state")).context("order state")?
        }
        // Only a placement starts a row; anything else for a missing row was already finished.
        None if matches!(decoded, OrderEvent::OrderPlaced { .. }) => Order::default(),
        None => return Ok(()),
    };
    let moved_to_city = match &decoded {
        OrderEvent::AddressChanged { address, .. } => Some(address.city.clone()),
        _ => None,
    };
    let placed = match &decoded {
        OrderEvent::OrderPlaced {
            booking, placed_at, ..
        } => Some((booking.address.city.clone(), *placed_at)),
        _ => None,
    };
    let finished_by = match &decoded {
        OrderEvent::ServiceFinished {
            worker_id,
            finished_at,
        } => Some((*worker_id, *finished_at)),
        _ => None,
    };
    // Reviews recorded before events named their worker count by the order's state.
    let review = match &decoded {
        OrderEvent::OrderReviewed {
            quality,
            attitude,
            skill,
            worker_id: None,
            ..
        } => Some((
            1,
            i32::from(*quality),
            i32::from(*attitude),
            i32::from(*skill),
        )),
        _ => None,
    };
    let waiting_from = match &decoded {
        OrderEvent::DispatchOpened { opened_at } => Some(*opened_at),
        _ => None,
    };
    order.apply(decoded);

    if let Some((worker_id, finished_at)) = finished_by {
        let amount = order.total.map_or(0, |total| total.get());
        sqlx::query(&format!(
            "INSERT INTO {schema}.worker_earnings (worker_id, order_id, earned_at, amount)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        ))
        .bind(worker_id)
        .bind(order_id)
        .bind(finished_at)
        .bind(amount)
        .execute(&mut *connection)
        .await?;
        if let Some(customer_id) = order.customer_id {
            sqlx::query(&format!(
                "INSERT INTO {schema}.customer_workers (customer_id, worker_id, orders)
                 VALUES ($1, $2, 1)
                 ON CONFLICT (customer_id, worker_id)
                 DO UPDATE SET orders = {schema}.customer_workers.orders + 1"
            ))
            .bind(customer_id)
            .bind(worker_id)
            .execute(&mut *connection)
            .await?;
        }
    }
    if let (Some((count, quality, attitude, skill)), Some(worker_id)) = (review, order.worker_id) {
        sqlx::query(&format!(
            "INSERT INTO {schema}.worker_ratings
                 (worker_id, reviews, quality_sum, attitude_sum, skill_sum)
             VALUES ($1, $5, $2, $3, $4)
             ON CONFLICT (worker_id) DO UPDATE SET
                 reviews = {schema}.worker_ratings.reviews + $5,
                 quality_sum = {schema}.worker_ratings.quality_sum + $2,
                 attitude_sum = {schema}.worker_ratings.attitude_sum + $3,
                 skill_sum = {schema}.worker_ratings.skill_sum + $4"
        ))
        .bind(worker_id)
        .bind(quality)
        .bind(attitude)
        .bind(skill)
        .bind(count)
        .execute(&mut *connection)
        .await?;
    }

    if finished(order.status) {
        sqlx::query(&format!(
            "DELETE FROM {schema}.dispatch_orders WHERE order_id = $1"
        ))
        .bind(order_id)
        .execute(&mut *connection)
        .await?;
        return Ok(());
    }
    let state = serde_json::to_value(&order)?;
    let (starts_at, ends_at) = order.window.context("a placed order has a window")?;
    if let Some((city, placed_at)) = placed {
        sqlx::query(&format!(
            "INSERT INTO {schema}.dispatch_orders
                 (order_id, customer_id, service, city, status, pay_by, starts_at, ends_at,
                  placed_at, state, last_sequence, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $9)
             ON CONFLICT (order_id) DO NOTHING"
        ))
        .bind(order_id)
        .bind(order.customer_id)
        .bind(order.service.map(|service| service.as_str()))
        .bind(city)
        .bind(order.status.as_str())
        .bind(order.pay_by)
        .bind(starts_at)
        .bind(ends_at)
        .bind(placed_at)
        .bind(state)
        .bind(event.sequence)
        .execute(&mut *connection)
        .await?;
        return Ok(());
    }
    sqlx::query(&format!(
        "UPDATE {schema}.dispatch_orders SET
             status = $2, stage = $3, stage_deadline = $4, respond_by = $5, pay_by = $6,
             worker_id = $7, waiting_since = COALESCE($8, waiting_since), state = $9,
             last_sequence = $10, updated_at = $11,
             starts_at = COALESCE($12, starts_at), ends_at = COALESCE($13, ends_at),
             city = COALESCE($14, city)
         WHERE order_id = $1"
    ))
    .bind(order_id)
    .bind(order.status.as_str())
    .bind(order.stage.map(|stage| stage.as_str()))
    .bind(order.stage_deadline)
    .bind(order.respond_by)
    .bind(order.pay_by)
    .bind(order.worker_id)
    .bind(waiting_from)
    .bind(state)
    .bind(event.sequence)
    .bind(event.recorded_at)
    // A rescheduled or moved order is matched at its new time and place.
    .bind(order.window.map(|(start, _)| start))
    .bind(order.window.map(|(_, end)| end))
    .bind(moved_to_city)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

async fn apply_worker(
    connection: &mut PgConnection,
    schema: &str,
    event: &StoredEvent,
) -> anyhow::Result<()> {
    let worker_id: Uuid = event.aggregate_id.parse().context("worker id")?;
    let decoded: WorkerEvent = event.decode()?;
    let existing = sqlx::query(&format!(
        "SELECT state, city, last_sequence FROM {schema}.dispatch_workers WHERE worker_id = $1"
    ))
    .bind(worker_id)
    .fetch_optional(&mut *connection)
    .await?;
    let (mut worker, mut city): (Worker, String) = match existing {
        Some(row) => {
            let sequence: i64 = row.get("last_sequence");
            if sequence >= event.sequence {
                return Ok(());
            }
            (
                serde_json::from_value(row.get("state")).context("worker state")?,
                row.get("city"),
            )
        }
        None => (Worker::default(), String::new()),
    };
    match &decoded {
        WorkerEvent::WorkerRegistered { profile, .. }
        | WorkerEvent::WorkerProfileUpdated { profile, .. } => {
            city = profile.service_area.city.clone();
        }
        _ => {}
    }
    worker.apply(decoded);
    let dispatchable = worker.registered
        && !worker.suspended
        && worker.review == domain::onboarding::ReviewStatus::Approved;
    sqlx::query(&format!(
        "INSERT INTO {schema}.dispatch_workers (worker_id, city, dispatchable, state, last_sequence)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (worker_id) DO UPDATE SET city = $2, dispatchable = $3, state = $4,
             last_sequence = $5"
    ))
    .bind(worker_id)
    .bind(city)
    .bind(dispatchable)
    .bind(serde_json::to_value(&worker)?)
    .bind(event.sequence)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

async fn apply_customer(
    connection: &mut PgConnection,
    schema: &str,
    event: &StoredEvent,
) -> anyhow::Result<()> {
    let customer_id: Uuid = event.aggregate_id.parse().context("customer id")?;
    match event.decode()? {
        CustomerEvent::WorkerBlocked { worker_id, at } => {
            sqlx::query(&format!(
                "INSERT INTO {schema}.customer_blocks (customer_id, worker_id, blocked_at)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
            ))
            .bind(customer_id)
            .bind(worker_id)
            .bind(at)
            .execute(&mut *connection)
            .await?;
        }
        CustomerEvent::WorkerUnblocked { worker_id, .. } => {
            sqlx::query(&format!(
                "DELETE FROM {schema}.customer_blocks WHERE customer_id = $1 AND worker_id = $2"
            ))
            .bind(customer_id)
            .bind(worker_id)
            .execute(&mut *connection)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// An order in the dispatcher's model.
#[derive(Debug, Clone)]
pub struct DispatchOrderRow {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub service: String,
    pub city: String,
    pub status: String,
    pub stage: Option<String>,
    pub stage_deadline: Option<DateTime<Utc>>,
    pub respond_by: Option<DateTime<Utc>>,
    pub pay_by: Option<DateTime<Utc>>,
    pub worker_id: Option<Uuid>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub placed_at: DateTime<Utc>,
    pub state: Order,
}

const ORDER_COLUMNS: &str = "order_id, customer_id, service, city, status, stage, stage_deadline,
    respond_by, pay_by, worker_id, starts_at, ends_at, waiting_since, placed_at, state";

fn order_row(row: sqlx::postgres::PgRow) -> anyhow::Result<DispatchOrderRow> {
    Ok(DispatchOrderRow {
        order_id: row.get("order_id"),
        customer_id: row.get("customer_id"),
        service: row.get("service"),
        city: row.get("city"),
        status: row.get("status"),
        stage: row.get("stage"),
        stage_deadline: row.get("stage_deadline"),
        respond_by: row.get("respond_by"),
        pay_by: row.get("pay_by"),
        worker_id: row.get("worker_id"),
        starts_at: row.get("starts_at"),
        ends_at: row.get("ends_at"),
        waiting_since: row.get("waiting_since"),
        placed_at: row.get("placed_at"),
        state: serde_json::from_value(row.get("state")).context("order state")?,
    })
}

/// Orders in a dispatch stage (status `dispatching`), oldest first.
pub async fn orders_in_stage(
    pool: &PgPool,
    stage: &str,
    limit: i64,
) -> anyhow::Result<Vec<DispatchOrderRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM read_dispatch_orders
          WHERE status = 'dispatching' AND stage = $1
          ORDER BY waiting_since NULLS FIRST, order_id LIMIT $2"
    ))
    .bind(stage)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(order_row).collect()
}

/// Orders a timer is due for: unpaid past their deadline, a stage or an unconfirmed
/// assignment past its time, or paid and not yet dispatching.
pub async fn due_orders(
    pool: &PgPool,
    now: DateTime<Utc>,
    paid_grace_seconds: i64,
    limit: i64,
) -> anyhow::Result<Vec<DispatchOrderRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM read_dispatch_orders
          WHERE (status = 'awaiting_payment' AND pay_by <= $1)
             OR (status = 'dispatching' AND stage_deadline <= $1)
             OR (status = 'assigned' AND respond_by <= $1)
             OR (status = 'paid' AND updated_at <= $1 - make_interval(secs => $2))
          ORDER BY placed_at LIMIT $3"
    ))
    .bind(now)
    .bind(paid_grace_seconds as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(order_row).collect()
}

pub async fn order(pool: &PgPool, order_id: Uuid) -> anyhow::Result<Option<DispatchOrderRow>> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM read_dispatch_orders WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(pool)
    .await?;
    row.map(order_row).transpose()
}

/// A worker in the dispatcher's model, with their rating and recent income.
#[derive(Debug, Clone)]
pub struct DispatchWorkerRow {
    pub worker_id: Uuid,
    pub city: String,
    pub state: Worker,
    pub rating: Option<f64>,
    pub reviews: i32,
    pub recent_earnings_fen: i64,
}

/// Dispatchable workers, optionally only in some cities.
pub async fn dispatchable_workers(
    pool: &PgPool,
    cities: Option<&[String]>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<DispatchWorkerRow>> {
    let rows = sqlx::query(
        "SELECT w.worker_id, w.city, w.state,
                r.reviews, (r.quality_sum + r.attitude_sum + r.skill_sum)::float8
                    / NULLIF(r.reviews * 3, 0) AS rating,
                COALESCE((SELECT sum(e.amount) FROM read_worker_earnings e
                           WHERE e.worker_id = w.worker_id
                             AND e.earned_at > $2 - interval '30 days'), 0)::bigint AS earned
           FROM read_dispatch_workers w
           LEFT JOIN read_worker_ratings r ON r.worker_id = w.worker_id
          WHERE w.dispatchable AND ($1::text[] IS NULL OR w.city = ANY($1))
          ORDER BY w.worker_id",
    )
    .bind(cities)
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(DispatchWorkerRow {
                worker_id: row.get("worker_id"),
                city: row.get("city"),
                state: serde_json::from_value(row.get("state")).context("worker state")?,
                rating: row.get("rating"),
                reviews: row.get::<Option<i32>, _>("reviews").unwrap_or(0),
                recent_earnings_fen: row.get("earned"),
            })
        })
        .collect()
}

/// A worker's rating summary: reviews and average stars per dimension.
pub async fn rating(pool: &PgPool, worker_id: Uuid) -> anyhow::Result<Option<(i32, f64)>> {
    let row = sqlx::query(
        "SELECT reviews, (quality_sum + attitude_sum + skill_sum)::float8 / (reviews * 3) AS average
           FROM read_worker_ratings WHERE worker_id = $1 AND reviews > 0",
    )
    .bind(worker_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| (row.get("reviews"), row.get("average"))))
}

/// Workers a customer blocked.
pub async fn blocked_by(pool: &PgPool, customer_id: Uuid) -> anyhow::Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT worker_id FROM read_customer_blocks WHERE customer_id = $1 ORDER BY blocked_at",
    )
    .bind(customer_id)
    .fetch_all(pool)
    .await?)
}

/// For each of `customers`, the workers they blocked and the workers who served them before:
/// two queries for a whole round, however many orders it has.
pub async fn customers_workers(
    pool: &PgPool,
    customers: &[Uuid],
) -> anyhow::Result<std::collections::HashMap<Uuid, (Vec<Uuid>, Vec<Uuid>)>> {
    let mut found: std::collections::HashMap<Uuid, (Vec<Uuid>, Vec<Uuid>)> =
        std::collections::HashMap::new();
    let blocked: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT customer_id, worker_id FROM read_customer_blocks WHERE customer_id = ANY($1)",
    )
    .bind(customers)
    .fetch_all(pool)
    .await?;
    for (customer_id, worker_id) in blocked {
        found.entry(customer_id).or_default().0.push(worker_id);
    }
    let served: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT customer_id, worker_id FROM read_customer_workers WHERE customer_id = ANY($1)",
    )
    .bind(customers)
    .fetch_all(pool)
    .await?;
    for (customer_id, worker_id) in served {
        found.entry(customer_id).or_default().1.push(worker_id);
    }
    Ok(found)
}
