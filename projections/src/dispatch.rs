//! The dispatcher's read model: the live state of every order still on its way and of every
//! worker (the aggregates' own folded state, so the dispatcher judges with the same domain
//! code the command side uses), plus ratings, recent earnings, customers' blocks and who
//! served whom.
//!
//! The worker's own stream stays the authority on double booking: the dispatcher plans from
//! this model, and a plan that a newer booking has overtaken is refused by the worker's
//! stream and retried in the next round.

use std::collections::{HashMap, HashSet};

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

    /// Orders, workers and customers write tables of their own, so each kind is applied in log
    /// order among itself: the same result as every event in turn. Orders and workers are read
    /// with one statement per batch, folded in memory and written back with one more.
    async fn apply_batch(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        let mut orders = Vec::new();
        let mut workers = Vec::new();
        for event in events {
            match event.aggregate_type.as_str() {
                "order" => orders.push((event.aggregate_id.parse().context("order id")?, event)),
                "worker" => workers.push((event.aggregate_id.parse().context("worker id")?, event)),
                "customer" => apply_customer(connection, schema, event).await?,
                _ => {}
            }
        }
        apply_orders(connection, schema, &orders).await?;
        apply_workers(connection, schema, &workers).await?;
        Ok(())
    }
}

/// An order leaves the model once nothing more can happen that dispatch or ratings need.
fn finished(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Reviewed | OrderStatus::Cancelled | OrderStatus::Disputed
    )
}

/// A row of `dispatch_orders` as it will be written.
struct OrderRow {
    customer_id: Option<Uuid>,
    service: Option<String>,
    city: String,
    status: String,
    stage: Option<String>,
    stage_deadline: Option<DateTime<Utc>>,
    respond_by: Option<DateTime<Utc>>,
    pay_by: Option<DateTime<Utc>>,
    worker_id: Option<Uuid>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    waiting_since: Option<DateTime<Utc>>,
    placed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    state: Order,
    last_sequence: i64,
}

/// One order of a batch: its row as it stands, whether the table may hold it (it was found,
/// or not looked up), and whether the batch changed it.
#[derive(Default)]
struct OrderSlot {
    row: Option<OrderRow>,
    stored: bool,
    changed: bool,
}

/// Reviews counted into a worker's ratings: reviews, quality, attitude and skill.
type RatingsDelta = (i32, i32, i32, i32);

/// What a batch adds beside the orders' rows: ratings, earnings and who served whom.
#[derive(Default)]
struct OrderEffects {
    ratings: HashMap<Uuid, RatingsDelta>,
    /// First one wins, as `ON CONFLICT DO NOTHING` would for each in turn.
    earnings: Vec<(Uuid, Uuid, DateTime<Utc>, i64)>,
    served: HashMap<(Uuid, Uuid), i32>,
}

impl OrderEffects {
    fn rate(&mut self, worker_id: Uuid, delta: RatingsDelta) {
        let total = self.ratings.entry(worker_id).or_default();
        total.0 += delta.0;
        total.1 += delta.1;
        total.2 += delta.2;
        total.3 += delta.3;
    }
}

const ORDER_ROW_COLUMNS: &str = "order_id, customer_id, service, city, status, stage, \
     stage_deadline, respond_by, pay_by, worker_id, starts_at, ends_at, waiting_since, \
     placed_at, updated_at, state, last_sequence";

async fn load_orders(
    connection: &mut PgConnection,
    schema: &str,
    ids: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, OrderSlot>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_ROW_COLUMNS} FROM {schema}.dispatch_orders WHERE order_id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(&mut *connection)
    .await?;
    let mut slots: HashMap<Uuid, OrderSlot> =
        ids.iter().map(|id| (*id, OrderSlot::default())).collect();
    for row in rows {
        let state: Order = serde_json::from_value(row.try_get("state")?).context("order state")?;
        let order_id: Uuid = row.try_get("order_id")?;
        slots.insert(
            order_id,
            OrderSlot {
                row: Some(OrderRow {
                    customer_id: row.try_get("customer_id")?,
                    service: row.try_get("service")?,
                    city: row.try_get("city")?,
                    status: row.try_get("status")?,
                    stage: row.try_get("stage")?,
                    stage_deadline: row.try_get("stage_deadline")?,
                    respond_by: row.try_get("respond_by")?,
                    pay_by: row.try_get("pay_by")?,
                    worker_id: row.try_get("worker_id")?,
                    starts_at: row.try_get("starts_at")?,
                    ends_at: row.try_get("ends_at")?,
                    waiting_since: row.try_get("waiting_since")?,
                    placed_at: row.try_get("placed_at")?,
                    updated_at: row.try_get("updated_at")?,
                    state,
                    last_sequence: row.try_get("last_sequence")?,
                }),
                stored: true,
                changed: false,
            },
        );
    }
    Ok(slots)
}

/// The distinct streams of a batch's events.
fn stream_ids(events: &[(Uuid, &StoredEvent)]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = events.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

async fn apply_orders(
    connection: &mut PgConnection,
    schema: &str,
    events: &[(Uuid, &StoredEvent)],
) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids = stream_ids(events);
    // An order whose stream begins in this batch has no row yet (a batch moves its checkpoint
    // as it commits, so none is applied twice), so it is not looked up. Were its row there
    // after all, the upsert never moves a row back, and a finished one is deleted as ever.
    let mut begun = HashSet::new();
    let mut seen = HashSet::new();
    for (order_id, event) in events {
        if seen.insert(*order_id) && event.sequence == 1 {
            begun.insert(*order_id);
        }
    }
    let known: Vec<Uuid> = ids.into_iter().filter(|id| !begun.contains(id)).collect();
    let mut slots = load_orders(&mut *connection, schema, &known).await?;
    for order_id in begun {
        slots.insert(
            order_id,
            OrderSlot {
                row: None,
                stored: true,
                changed: false,
            },
        );
    }
    let mut effects = OrderEffects::default();
    for &(order_id, event) in events {
        let decoded: OrderEvent = event.decode()?;
        let slot = slots.entry(order_id).or_default();
        fold_order(slot, &mut effects, order_id, event, decoded)?;
    }
    write_orders(connection, schema, &slots).await?;
    write_effects(connection, schema, &effects).await
}

/// One event on one order's row, as the model has always taken it.
fn fold_order(
    slot: &mut OrderSlot,
    effects: &mut OrderEffects,
    order_id: Uuid,
    event: &StoredEvent,
    decoded: OrderEvent,
) -> anyhow::Result<()> {
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
        effects.rate(
            worker_id,
            (
                sign,
                i32::from(quality) * sign,
                i32::from(attitude) * sign,
                i32::from(skill) * sign,
            ),
        );
        if matches!(decoded, OrderEvent::ReviewHidden { .. }) {
            return Ok(());
        }
    }
    let mut order: Order = match &slot.row {
        Some(row) if row.last_sequence >= event.sequence => return Ok(()),
        Some(row) => row.state.clone(),
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
        if !effects
            .earnings
            .iter()
            .any(|(worker, order, _, _)| (*worker, *order) == (worker_id, order_id))
        {
            effects
                .earnings
                .push((worker_id, order_id, finished_at, amount));
        }
        if let Some(customer_id) = order.customer_id {
            *effects.served.entry((customer_id, worker_id)).or_default() += 1;
        }
    }
    if let (Some(delta), Some(worker_id)) = (review, order.worker_id) {
        effects.rate(worker_id, delta);
    }

    if finished(order.status) {
        slot.row = None;
        slot.changed = true;
        return Ok(());
    }
    let (starts_at, ends_at) = order.window.context("a placed order has a window")?;
    if let Some((city, placed_at)) = placed {
        // A placement never overwrites a row that is there (`ON CONFLICT DO NOTHING`).
        if slot.row.is_none() {
            slot.row = Some(OrderRow {
                customer_id: order.customer_id,
                service: order.service.map(|service| service.as_str().to_owned()),
                city,
                status: order.status.as_str().to_owned(),
                stage: None,
                stage_deadline: None,
                respond_by: None,
                pay_by: order.pay_by,
                worker_id: None,
                starts_at,
                ends_at,
                waiting_since: None,
                placed_at,
                updated_at: placed_at,
                state: order,
                last_sequence: event.sequence,
            });
            slot.changed = true;
        }
        return Ok(());
    }
    let Some(row) = slot.row.as_mut() else {
        return Ok(());
    };
    row.status = order.status.as_str().to_owned();
    row.stage = order.stage.map(|stage| stage.as_str().to_owned());
    row.stage_deadline = order.stage_deadline;
    row.respond_by = order.respond_by;
    row.pay_by = order.pay_by;
    row.worker_id = order.worker_id;
    row.waiting_since = waiting_from.or(row.waiting_since);
    row.last_sequence = event.sequence;
    row.updated_at = event.recorded_at;
    // A rescheduled or moved order is matched at its new time and place.
    row.starts_at = starts_at;
    row.ends_at = ends_at;
    if let Some(city) = moved_to_city {
        row.city = city;
    }
    row.state = order;
    slot.changed = true;
    Ok(())
}

/// Writes every order the batch changed: one delete for those that left, one upsert for the
/// rest.
async fn write_orders(
    connection: &mut PgConnection,
    schema: &str,
    slots: &HashMap<Uuid, OrderSlot>,
) -> anyhow::Result<()> {
    let gone: Vec<Uuid> = slots
        .iter()
        .filter(|(_, slot)| slot.changed && slot.stored && slot.row.is_none())
        .map(|(id, _)| *id)
        .collect();
    if !gone.is_empty() {
        sqlx::query(&format!(
            "DELETE FROM {schema}.dispatch_orders WHERE order_id = ANY($1)"
        ))
        .bind(&gone)
        .execute(&mut *connection)
        .await?;
    }
    let written: Vec<(Uuid, &OrderRow)> = slots
        .iter()
        .filter(|(_, slot)| slot.changed)
        .filter_map(|(id, slot)| slot.row.as_ref().map(|row| (*id, row)))
        .collect();
    if written.is_empty() {
        return Ok(());
    }
    let mut states = Vec::with_capacity(written.len());
    for (_, row) in &written {
        states.push(serde_json::to_value(&row.state)?);
    }
    sqlx::query(&format!(
        "INSERT INTO {schema}.dispatch_orders ({ORDER_ROW_COLUMNS})
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::timestamptz[], $8::timestamptz[],
                              $9::timestamptz[], $10::uuid[], $11::timestamptz[],
                              $12::timestamptz[], $13::timestamptz[], $14::timestamptz[],
                              $15::timestamptz[], $16::jsonb[], $17::int8[])
         ON CONFLICT (order_id) DO UPDATE SET
             customer_id = EXCLUDED.customer_id, service = EXCLUDED.service,
             city = EXCLUDED.city, status = EXCLUDED.status, stage = EXCLUDED.stage,
             stage_deadline = EXCLUDED.stage_deadline, respond_by = EXCLUDED.respond_by,
             pay_by = EXCLUDED.pay_by, worker_id = EXCLUDED.worker_id,
             starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
             waiting_since = EXCLUDED.waiting_since, placed_at = EXCLUDED.placed_at,
             updated_at = EXCLUDED.updated_at, state = EXCLUDED.state,
             last_sequence = EXCLUDED.last_sequence
         WHERE {schema}.dispatch_orders.last_sequence < EXCLUDED.last_sequence"
    ))
    .bind(written.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(each(&written, |row| row.customer_id))
    .bind(each(&written, |row| row.service.as_deref()))
    .bind(each(&written, |row| row.city.as_str()))
    .bind(each(&written, |row| row.status.as_str()))
    .bind(each(&written, |row| row.stage.as_deref()))
    .bind(each(&written, |row| row.stage_deadline))
    .bind(each(&written, |row| row.respond_by))
    .bind(each(&written, |row| row.pay_by))
    .bind(each(&written, |row| row.worker_id))
    .bind(each(&written, |row| row.starts_at))
    .bind(each(&written, |row| row.ends_at))
    .bind(each(&written, |row| row.waiting_since))
    .bind(each(&written, |row| row.placed_at))
    .bind(each(&written, |row| row.updated_at))
    .bind(states)
    .bind(each(&written, |row| row.last_sequence))
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// One column of the rows to write, for binding as an array.
fn each<'a, T>(written: &[(Uuid, &'a OrderRow)], pick: impl Fn(&'a OrderRow) -> T) -> Vec<T> {
    written.iter().map(|(_, row)| pick(row)).collect()
}

/// Writes a batch's ratings, earnings and who served whom, one statement each.
async fn write_effects(
    connection: &mut PgConnection,
    schema: &str,
    effects: &OrderEffects,
) -> anyhow::Result<()> {
    if !effects.ratings.is_empty() {
        let (workers, deltas): (Vec<Uuid>, Vec<RatingsDelta>) = effects
            .ratings
            .iter()
            .map(|(id, delta)| (*id, *delta))
            .unzip();
        sqlx::query(&format!(
            "INSERT INTO {schema}.worker_ratings
                 (worker_id, reviews, quality_sum, attitude_sum, skill_sum)
             SELECT * FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::int4[], $5::int4[])
             ON CONFLICT (worker_id) DO UPDATE SET
                 reviews = {schema}.worker_ratings.reviews + EXCLUDED.reviews,
                 quality_sum = {schema}.worker_ratings.quality_sum + EXCLUDED.quality_sum,
                 attitude_sum = {schema}.worker_ratings.attitude_sum + EXCLUDED.attitude_sum,
                 skill_sum = {schema}.worker_ratings.skill_sum + EXCLUDED.skill_sum"
        ))
        .bind(&workers)
        .bind(deltas.iter().map(|delta| delta.0).collect::<Vec<_>>())
        .bind(deltas.iter().map(|delta| delta.1).collect::<Vec<_>>())
        .bind(deltas.iter().map(|delta| delta.2).collect::<Vec<_>>())
        .bind(deltas.iter().map(|delta| delta.3).collect::<Vec<_>>())
        .execute(&mut *connection)
        .await?;
    }
    if !effects.earnings.is_empty() {
        sqlx::query(&format!(
            "INSERT INTO {schema}.worker_earnings (worker_id, order_id, earned_at, amount)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::int8[])
             ON CONFLICT DO NOTHING"
        ))
        .bind(effects.earnings.iter().map(|e| e.0).collect::<Vec<_>>())
        .bind(effects.earnings.iter().map(|e| e.1).collect::<Vec<_>>())
        .bind(effects.earnings.iter().map(|e| e.2).collect::<Vec<_>>())
        .bind(effects.earnings.iter().map(|e| e.3).collect::<Vec<_>>())
        .execute(&mut *connection)
        .await?;
    }
    if !effects.served.is_empty() {
        let (pairs, counts): (Vec<(Uuid, Uuid)>, Vec<i32>) = effects
            .served
            .iter()
            .map(|(pair, count)| (*pair, *count))
            .unzip();
        sqlx::query(&format!(
            "INSERT INTO {schema}.customer_workers (customer_id, worker_id, orders)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[])
             ON CONFLICT (customer_id, worker_id)
             DO UPDATE SET orders = {schema}.customer_workers.orders + EXCLUDED.orders"
        ))
        .bind(pairs.iter().map(|pair| pair.0).collect::<Vec<_>>())
        .bind(pairs.iter().map(|pair| pair.1).collect::<Vec<_>>())
        .bind(&counts)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// A worker of a batch: state, city and sequence as they stand (0 for a worker not stored
/// yet), and whether the batch changed it.
struct WorkerSlot {
    state: Worker,
    city: String,
    last_sequence: i64,
    changed: bool,
}

/// Whether the dispatcher may send the worker orders.
fn dispatchable(worker: &Worker) -> bool {
    worker.registered
        && !worker.suspended
        && worker.review == domain::onboarding::ReviewStatus::Approved
}

async fn apply_workers(
    connection: &mut PgConnection,
    schema: &str,
    events: &[(Uuid, &StoredEvent)],
) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids = stream_ids(events);
    let rows = sqlx::query(&format!(
        "SELECT worker_id, state, city, last_sequence FROM {schema}.dispatch_workers
          WHERE worker_id = ANY($1)"
    ))
    .bind(&ids)
    .fetch_all(&mut *connection)
    .await?;
    let mut slots: HashMap<Uuid, WorkerSlot> = HashMap::with_capacity(ids.len());
    for row in rows {
        slots.insert(
            row.try_get("worker_id")?,
            WorkerSlot {
                state: serde_json::from_value(row.try_get("state")?).context("worker state")?,
                city: row.try_get("city")?,
                last_sequence: row.try_get("last_sequence")?,
                changed: false,
            },
        );
    }
    for &(worker_id, event) in events {
        let decoded: WorkerEvent = event.decode()?;
        let slot = slots.entry(worker_id).or_insert_with(|| WorkerSlot {
            state: Worker::default(),
            city: String::new(),
            last_sequence: 0,
            changed: false,
        });
        if slot.last_sequence >= event.sequence {
            continue;
        }
        match &decoded {
            WorkerEvent::WorkerRegistered { profile, .. }
            | WorkerEvent::WorkerProfileUpdated { profile, .. } => {
                slot.city = profile.service_area.city.clone();
            }
            _ => {}
        }
        slot.state.apply(decoded);
        slot.last_sequence = event.sequence;
        slot.changed = true;
    }
    let written: Vec<(Uuid, &WorkerSlot)> = slots
        .iter()
        .filter(|(_, slot)| slot.changed)
        .map(|(id, slot)| (*id, slot))
        .collect();
    if written.is_empty() {
        return Ok(());
    }
    let mut states = Vec::with_capacity(written.len());
    for (_, slot) in &written {
        states.push(serde_json::to_value(&slot.state)?);
    }
    sqlx::query(&format!(
        "INSERT INTO {schema}.dispatch_workers (worker_id, city, dispatchable, state, last_sequence)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::bool[], $4::jsonb[], $5::int8[])
         ON CONFLICT (worker_id) DO UPDATE SET city = EXCLUDED.city,
             dispatchable = EXCLUDED.dispatchable, state = EXCLUDED.state,
             last_sequence = EXCLUDED.last_sequence"
    ))
    .bind(written.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(
        written
            .iter()
            .map(|(_, slot)| slot.city.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        written
            .iter()
            .map(|(_, slot)| dispatchable(&slot.state))
            .collect::<Vec<_>>(),
    )
    .bind(states)
    .bind(
        written
            .iter()
            .map(|(_, slot)| slot.last_sequence)
            .collect::<Vec<_>>(),
    )
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
