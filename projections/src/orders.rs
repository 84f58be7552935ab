//! The orders read model: one row per order, for a customer's list, a worker's list, the
//! order page and the admin list with filters, sorting and keyset pagination.

use anyhow::Context;
use base64::Engine;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use domain::order::{Booking, OrderEvent, OrderStatus};
use domain::Fen;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::personal;
use crate::projector::Projection;

pub struct OrdersProjection {
    pub vault: vault::Vault,
}

#[async_trait::async_trait]
impl Projection for OrdersProjection {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["orders"]
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE {schema}.orders (
                order_id             uuid PRIMARY KEY,
                customer_id          uuid        NOT NULL,
                worker_id            uuid,
                service              text        NOT NULL,
                status               text        NOT NULL,
                unit_price           bigint      NOT NULL,
                quantity             integer     NOT NULL,
                total                bigint      NOT NULL,
                scheduled_start      timestamptz NOT NULL,
                duration_minutes     integer     NOT NULL,
                city                 text        NOT NULL,
                district             text        NOT NULL,
                address_detail       text        NOT NULL,
                contact_name         text        NOT NULL,
                contact_phone_masked text        NOT NULL,
                note                 text,
                placed_at            timestamptz NOT NULL,
                paid_at              timestamptz,
                assigned_at          timestamptz,
                accepted_at          timestamptz,
                departed_at          timestamptz,
                arrived_at           timestamptz,
                started_at           timestamptz,
                finished_at          timestamptz,
                cancelled_at         timestamptz,
                cancelled_by_role    text,
                cancel_reason        text,
                cancel_stage         text,
                -- A paid order's cancellation: refunded, kept, and the worker's share of it.
                refund_fen           bigint,
                fee_kept_fen         bigint,
                fee_to_worker_fen    bigint,
                disputed_at          timestamptz,
                dispute_reason       text,
                rating_quality       smallint,
                rating_attitude      smallint,
                rating_skill         smallint,
                updated_at           timestamptz NOT NULL,
                last_sequence        bigint      NOT NULL,
                -- The service's names, the place, the contact's name and masked phone.
                search_text          text        NOT NULL DEFAULT '',
                search_terms         text[]      NOT NULL DEFAULT '{{}}'
            );
            -- New terms wait in the index's pending list until it fills; the insert that
            -- fills it merges the list into the index while the projector's step waits. At the
            -- default 4 MB that merge took 60-90 ms every two seconds under load, the orders
            -- view's worst lag; a small list merges a little and often.
            CREATE INDEX ON {schema}.orders USING gin (search_terms)
                WITH (gin_pending_list_limit = 256);
            -- A longer list of common terms, so the planner can tell a rare term (use the GIN
            -- index) from a common one (walk the newest orders); see `anjia bench search`.
            ALTER TABLE {schema}.orders ALTER COLUMN search_terms SET STATISTICS 1000;
            CREATE INDEX ON {schema}.orders (placed_at DESC, order_id DESC);
            CREATE INDEX ON {schema}.orders (scheduled_start, order_id);
            CREATE INDEX ON {schema}.orders (customer_id, placed_at DESC, order_id DESC);
            CREATE INDEX ON {schema}.orders (worker_id, scheduled_start, order_id);
            CREATE INDEX ON {schema}.orders (status, placed_at DESC, order_id DESC);"
        )
    }

    /// Folds each order's events in the batch into one row change, so a batch costs one
    /// statement per order instead of one per event (placing an order writes two events).
    async fn apply_batch(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        let mut changes: Vec<(Uuid, RowChange)> = Vec::new();
        let mut index_by_order: HashMap<Uuid, usize> = HashMap::new();
        for event in events
            .iter()
            .filter(|event| event.aggregate_type == "order")
        {
            let order_id: Uuid = event.aggregate_id.parse().context("order id")?;
            let decoded: OrderEvent = event.decode()?;
            let index = *index_by_order.entry(order_id).or_insert_with(|| {
                changes.push((order_id, RowChange::default()));
                changes.len() - 1
            });
            changes[index].1.absorb(decoded, event);
        }
        // New orders go in as multi-row inserts, one per set of columns; changes to existing
        // orders are one update each.
        let (mut inserts, updates): (Vec<_>, Vec<_>) = changes
            .into_iter()
            .partition(|(_, change)| change.placed.is_some());
        // Open every new order's sealed address parts with one key lookup.
        let opened = {
            let sealed: Vec<&domain::Sealed> = inserts
                .iter()
                .filter_map(|(_, change)| change.placed.as_ref())
                .flat_map(|(booking, _, _)| {
                    let address = &booking.address;
                    [
                        &address.detail,
                        &address.contact_name,
                        &address.contact_phone,
                    ]
                })
                .collect();
            self.vault.open_all(&sealed).await?
        };
        let mut opened = opened.into_iter();
        // And their notes, with another.
        let mut notes = {
            let sealed: Vec<&domain::Sealed> = inserts
                .iter()
                .filter_map(|(_, change)| change.placed.as_ref())
                .filter_map(|(booking, _, _)| booking.note.as_ref())
                .collect();
            self.vault.open_all(&sealed).await?.into_iter()
        };
        for (_, change) in &mut inserts {
            let (detail, contact_name, phone) = (
                opened.next().flatten(),
                opened.next().flatten(),
                opened.next().flatten(),
            );
            let has_note = change
                .placed
                .as_ref()
                .is_some_and(|(booking, _, _)| booking.note.is_some());
            change.opened = Some(OpenedAddress {
                detail: personal::readable(detail),
                contact_name: personal::readable(contact_name),
                contact_phone_masked: personal::masked_phone(phone),
                note: if has_note {
                    notes.next().flatten()
                } else {
                    None
                },
            });
        }
        let mut inserts_by_columns: Vec<(Vec<&'static str>, Vec<(Uuid, RowChange)>)> = Vec::new();
        for (order_id, change) in inserts {
            let columns: Vec<&'static str> =
                change.columns.iter().map(|(column, _)| *column).collect();
            match inserts_by_columns
                .iter_mut()
                .find(|(existing, _)| *existing == columns)
            {
                Some((_, rows)) => rows.push((order_id, change)),
                None => inserts_by_columns.push((columns, vec![(order_id, change)])),
            }
        }
        for (columns, rows) in inserts_by_columns {
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk: Vec<_> = rows.by_ref().take(INSERT_CHUNK).collect();
                insert_new_orders(connection, schema, &columns, chunk).await?;
            }
        }
        for (order_id, mut change) in updates {
            if let Some(address) = change.moved_to.take() {
                let mut opened = self
                    .vault
                    .open_all(&[
                        &address.detail,
                        &address.contact_name,
                        &address.contact_phone,
                    ])
                    .await?
                    .into_iter();
                let opened = OpenedAddress {
                    detail: personal::readable(opened.next().flatten()),
                    contact_name: personal::readable(opened.next().flatten()),
                    contact_phone_masked: personal::masked_phone(opened.next().flatten()),
                    // A moved address leaves the note as it was.
                    note: None,
                };
                let service: Option<String> = sqlx::query_scalar(&format!(
                    "SELECT service FROM {schema}.orders WHERE order_id = $1"
                ))
                .bind(order_id)
                .fetch_optional(&mut *connection)
                .await?;
                let service = service
                    .as_deref()
                    .and_then(domain::ServiceCode::parse)
                    .unwrap_or(domain::ServiceCode::DailyCleaning);
                let text = search_text_of(service, &address, &opened);
                change.columns.extend([
                    ("city", Value::Text(address.city.clone())),
                    ("district", Value::Text(address.district.clone())),
                    ("address_detail", Value::Text(opened.detail)),
                    ("contact_name", Value::Text(opened.contact_name)),
                    (
                        "contact_phone_masked",
                        Value::Text(opened.contact_phone_masked),
                    ),
                    (
                        "search_terms",
                        Value::Terms(crate::search::index_terms(&text)),
                    ),
                    ("search_text", Value::Text(text)),
                ]);
            }
            change.update(connection, schema, order_id).await?;
        }
        Ok(())
    }
}

/// The columns every new order row is inserted with, after `order_id`, in binding order, each
/// with the type of the array its values are bound as (`search_terms`: one joined text a row).
const INSERTED_COLUMNS: [(&str, &str); 19] = [
    ("customer_id", "uuid[]"),
    ("service", "text[]"),
    ("unit_price", "int8[]"),
    ("quantity", "int4[]"),
    ("total", "int8[]"),
    ("scheduled_start", "timestamptz[]"),
    ("duration_minutes", "int4[]"),
    ("city", "text[]"),
    ("district", "text[]"),
    ("address_detail", "text[]"),
    ("contact_name", "text[]"),
    ("contact_phone_masked", "text[]"),
    ("note", "text[]"),
    ("placed_at", "timestamptz[]"),
    ("status", "text[]"),
    ("updated_at", "timestamptz[]"),
    ("last_sequence", "int8[]"),
    ("search_text", "text[]"),
    ("search_terms", "text[]"),
];

/// Rows per insert: the arrays of one statement stay a bounded size.
const INSERT_CHUNK: usize = 1_000;

/// What separates the terms of one row in the insert's array of terms (PostgreSQL's arrays
/// are rectangular, so each row's terms travel as one text). Text fields refuse control
/// characters, so no term holds it.
const TERM_SEPARATOR: char = '\u{1f}';

fn joined_terms(terms: Vec<String>) -> String {
    let terms: Vec<String> = terms
        .into_iter()
        .filter(|term| !term.contains(TERM_SEPARATOR))
        .collect();
    terms.join(&TERM_SEPARATOR.to_string())
}

/// One extra column's values, a row each, as the array it is bound as.
enum Column {
    Times(Vec<Option<DateTime<Utc>>>),
    Ids(Vec<Option<Uuid>>),
    Texts(Vec<String>),
    Smalls(Vec<i16>),
    Amounts(Vec<i64>),
    Terms(Vec<String>),
}

impl Column {
    fn of(value: &Value) -> Column {
        match value {
            Value::Time(_) | Value::NoTime => Column::Times(Vec::new()),
            Value::Id(_) => Column::Ids(Vec::new()),
            Value::Text(_) => Column::Texts(Vec::new()),
            Value::Small(_) => Column::Smalls(Vec::new()),
            Value::Amount(_) => Column::Amounts(Vec::new()),
            Value::Terms(_) => Column::Terms(Vec::new()),
        }
    }

    fn push(&mut self, value: Value) -> anyhow::Result<()> {
        match (self, value) {
            (Column::Times(times), Value::Time(time)) => times.push(Some(time)),
            (Column::Times(times), Value::NoTime) => times.push(None),
            (Column::Ids(ids), Value::Id(id)) => ids.push(id),
            (Column::Texts(texts), Value::Text(text)) => texts.push(text),
            (Column::Smalls(numbers), Value::Small(number)) => numbers.push(number),
            (Column::Amounts(numbers), Value::Amount(number)) => numbers.push(number),
            (Column::Terms(terms), Value::Terms(row)) => terms.push(joined_terms(row)),
            _ => anyhow::bail!("one column of new orders holds values of two kinds"),
        }
        Ok(())
    }

    /// The array's type, and how a row's element becomes the column's value.
    fn sql(&self, element: &str) -> (&'static str, String) {
        match self {
            Column::Times(_) => ("timestamptz[]", element.to_owned()),
            Column::Ids(_) => ("uuid[]", element.to_owned()),
            Column::Texts(_) => ("text[]", element.to_owned()),
            Column::Smalls(_) => ("int2[]", element.to_owned()),
            Column::Amounts(_) => ("int8[]", element.to_owned()),
            Column::Terms(_) => ("text[]", terms_of(element)),
        }
    }

    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        match self {
            Column::Times(values) => query.bind(values),
            Column::Ids(values) => query.bind(values),
            Column::Texts(values) => query.bind(values),
            Column::Smalls(values) => query.bind(values),
            Column::Amounts(values) => query.bind(values),
            Column::Terms(values) => query.bind(values),
        }
    }
}

/// A row's joined terms as the array the column holds.
fn terms_of(element: &str) -> String {
    format!("string_to_array({element}, chr(31))")
}

/// New orders, each row's values in the same place of one array per column: one statement
/// whose text depends only on the extra columns, so it is prepared once and planned once
/// (a multi-row `VALUES` was a new statement, parsed and planned, for every number of rows).
async fn insert_new_orders(
    connection: &mut PgConnection,
    schema: &str,
    extra_columns: &[&'static str],
    rows: Vec<(Uuid, RowChange)>,
) -> anyhow::Result<()> {
    let count = rows.len();
    let mut order_ids = Vec::with_capacity(count);
    let mut customer_ids = Vec::with_capacity(count);
    let mut services = Vec::with_capacity(count);
    let mut unit_prices = Vec::with_capacity(count);
    let mut quantities = Vec::with_capacity(count);
    let mut totals = Vec::with_capacity(count);
    let mut starts = Vec::with_capacity(count);
    let mut durations = Vec::with_capacity(count);
    let mut cities = Vec::with_capacity(count);
    let mut districts = Vec::with_capacity(count);
    let mut details = Vec::with_capacity(count);
    let mut contact_names = Vec::with_capacity(count);
    let mut phones = Vec::with_capacity(count);
    let mut notes = Vec::with_capacity(count);
    let mut placed = Vec::with_capacity(count);
    let mut statuses = Vec::with_capacity(count);
    let mut updated = Vec::with_capacity(count);
    let mut sequences = Vec::with_capacity(count);
    let mut texts = Vec::with_capacity(count);
    let mut terms = Vec::with_capacity(count);
    let mut extras: Option<Vec<Column>> = None;
    for (order_id, change) in rows {
        let (Some((booking, total, placed_at)), Some(opened)) = (change.placed, change.opened)
        else {
            unreachable!("only placed orders, with their address opened, are inserted")
        };
        let text = search_text(&booking, &opened);
        order_ids.push(order_id);
        customer_ids.push(booking.customer_id);
        services.push(booking.service.as_str());
        unit_prices.push(booking.unit_price.get());
        quantities.push(booking.quantity as i32);
        totals.push(total.get());
        starts.push(booking.scheduled_start);
        durations.push(booking.duration_minutes as i32);
        cities.push(booking.address.city);
        districts.push(booking.address.district);
        details.push(opened.detail);
        contact_names.push(opened.contact_name);
        phones.push(opened.contact_phone_masked);
        notes.push(opened.note);
        placed.push(placed_at);
        statuses.push(change.status.unwrap_or_default().as_str());
        updated.push(change.updated_at.unwrap_or_else(Utc::now));
        sequences.push(change.last_sequence);
        terms.push(joined_terms(crate::search::index_terms(&text)));
        texts.push(text);
        let columns = extras.get_or_insert_with(|| {
            change
                .columns
                .iter()
                .map(|(_, value)| Column::of(value))
                .collect()
        });
        anyhow::ensure!(
            columns.len() == change.columns.len(),
            "new orders grouped by their columns differ in them"
        );
        for (column, (_, value)) in columns.iter_mut().zip(change.columns) {
            column.push(value)?;
        }
    }
    let extras = extras.unwrap_or_default();
    let mut arrays: Vec<String> = Vec::new();
    let mut selected: Vec<String> = Vec::new();
    let base = std::iter::once(("order_id", "uuid[]")).chain(INSERTED_COLUMNS);
    for (place, (column, array_type)) in (1..).zip(base) {
        arrays.push(format!("${place}::{array_type}"));
        let element = format!("u.c{place}");
        selected.push(if column == "search_terms" {
            terms_of(&element)
        } else {
            element
        });
    }
    for column in &extras {
        let place = arrays.len() + 1;
        let (array_type, value) = column.sql(&format!("u.c{place}"));
        arrays.push(format!("${place}::{array_type}"));
        selected.push(value);
    }
    let names: Vec<String> = (1..=arrays.len())
        .map(|place| format!("c{place}"))
        .collect();
    let columns: Vec<&str> = std::iter::once("order_id")
        .chain(INSERTED_COLUMNS.iter().map(|(column, _)| *column))
        .chain(extra_columns.iter().copied())
        .collect();
    // A row that exists already (only after a replayed batch) takes the fold if it is newer:
    // the fold starts at the order's first event, so it is the whole story.
    let sql = format!(
        "INSERT INTO {schema}.orders ({}) SELECT {} FROM unnest({}) AS u ({})
         ON CONFLICT (order_id) DO UPDATE SET {} WHERE {schema}.orders.last_sequence < EXCLUDED.last_sequence",
        columns.join(", "),
        selected.join(", "),
        arrays.join(", "),
        names.join(", "),
        columns[1..]
            .iter()
            .map(|column| format!("{column} = EXCLUDED.{column}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut query = sqlx::query(&sql)
        .bind(order_ids)
        .bind(customer_ids)
        .bind(services)
        .bind(unit_prices)
        .bind(quantities)
        .bind(totals)
        .bind(starts)
        .bind(durations)
        .bind(cities)
        .bind(districts)
        .bind(details)
        .bind(contact_names)
        .bind(phones)
        .bind(notes)
        .bind(placed)
        .bind(statuses)
        .bind(updated)
        .bind(sequences)
        .bind(texts)
        .bind(terms);
    for column in extras {
        query = column.bind(query);
    }
    query.execute(&mut *connection).await?;
    Ok(())
}

/// What the admins' search finds an order by: the service's names in both languages, the
/// place, and the contact's name and masked phone.
fn search_text(booking: &Booking, opened: &OpenedAddress) -> String {
    search_text_of(booking.service, &booking.address, opened)
}

fn search_text_of(
    service: domain::ServiceCode,
    address: &domain::Address,
    opened: &OpenedAddress,
) -> String {
    let spec = service.spec();
    [
        spec.name_zh,
        spec.name_en,
        &address.city,
        &address.district,
        &opened.detail,
        &opened.contact_name,
        &opened.contact_phone_masked,
    ]
    .join(" ")
}

/// The personal parts of a new order's address, as the read model shows them.
struct OpenedAddress {
    detail: String,
    contact_name: String,
    contact_phone_masked: String,
    /// The order's note, when it has one and it can still be opened.
    note: Option<String>,
}

/// What one order's events in a batch do to its row.
#[derive(Default)]
struct RowChange {
    opened: Option<OpenedAddress>,
    /// An existing order's new address, to open before the update.
    moved_to: Option<domain::Address>,
    placed: Option<(Booking, Fen, DateTime<Utc>)>,
    status: Option<OrderStatus>,
    columns: Vec<(&'static str, Value)>,
    last_sequence: i64,
    updated_at: Option<DateTime<Utc>>,
}

impl RowChange {
    fn absorb(&mut self, event: OrderEvent, stored: &StoredEvent) {
        if let OrderEvent::AddressChanged { address, .. } = &event {
            match &mut self.placed {
                // Placed in the same batch: the row goes in with the new address.
                Some((booking, _, _)) => booking.address = address.clone(),
                None => self.moved_to = Some(address.clone()),
            }
        }
        // Placed in the same batch: a new time or price goes into the row as it is inserted,
        // not as an extra column (the insert names those columns once).
        match (&event, &mut self.placed) {
            (OrderEvent::OrderRescheduled { start, .. }, Some((booking, _, _))) => {
                booking.scheduled_start = *start;
            }
            (OrderEvent::PriceAdjusted { to, .. }, Some((_, total, _))) => *total = *to,
            _ => {}
        }
        self.last_sequence = stored.sequence;
        self.updated_at = Some(stored.recorded_at);
        let (status, columns) = effect(event, &mut self.placed);
        if status.is_some() {
            self.status = status;
        }
        for (column, value) in columns {
            if self.placed.is_some() && INSERTED_COLUMNS.iter().any(|(base, _)| *base == column) {
                continue;
            }
            match self
                .columns
                .iter_mut()
                .find(|(existing, _)| *existing == column)
            {
                Some(slot) => slot.1 = value,
                None => self.columns.push((column, value)),
            }
        }
    }

    async fn update(
        self,
        connection: &mut PgConnection,
        schema: &str,
        order_id: Uuid,
    ) -> anyhow::Result<()> {
        let mut statement: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("UPDATE {schema}.orders SET status = "));
        match self.status {
            Some(status) => statement.push_bind(status.as_str()),
            None => statement.push("status"),
        };
        statement
            .push(", updated_at = ")
            .push_bind(self.updated_at.unwrap_or_else(Utc::now));
        statement
            .push(", last_sequence = ")
            .push_bind(self.last_sequence);
        for (column, value) in self.columns {
            statement.push(format!(", {column} = "));
            let mut single = statement.separated("");
            value.push_to(&mut single);
        }
        // The sequence guard makes a repeated change a no-op.
        statement.push(" WHERE order_id = ").push_bind(order_id);
        statement
            .push(" AND last_sequence < ")
            .push_bind(self.last_sequence);
        statement.build().execute(&mut *connection).await?;
        Ok(())
    }
}

/// The status an event leads to and the columns it sets. `OrderPlaced` fills `placed`.
fn effect(
    event: OrderEvent,
    placed: &mut Option<(Booking, Fen, DateTime<Utc>)>,
) -> (Option<OrderStatus>, Vec<(&'static str, Value)>) {
    let (status, columns) = match event {
        OrderEvent::OrderPlaced {
            booking,
            total,
            placed_at,
            ..
        } => {
            *placed = Some((booking, total, placed_at));
            (OrderStatus::Placed, vec![])
        }
        OrderEvent::PaymentRequested { .. } => (OrderStatus::AwaitingPayment, vec![]),
        OrderEvent::PaymentRecorded { paid_at, .. } => {
            (OrderStatus::Paid, vec![("paid_at", Value::Time(paid_at))])
        }
        OrderEvent::DispatchOpened { .. } => (OrderStatus::Dispatching, vec![]),
        OrderEvent::WorkerAssigned {
            worker_id,
            assigned_at,
            ..
        } => (
            OrderStatus::Assigned,
            vec![
                ("worker_id", Value::Id(Some(worker_id))),
                ("assigned_at", Value::Time(assigned_at)),
            ],
        ),
        OrderEvent::AssignmentDeclined { .. } => (
            OrderStatus::Dispatching,
            vec![
                ("worker_id", Value::Id(None)),
                ("assigned_at", Value::NoTime),
            ],
        ),
        OrderEvent::OrderAccepted { accepted_at, .. } => (
            OrderStatus::Accepted,
            vec![("accepted_at", Value::Time(accepted_at))],
        ),
        OrderEvent::WorkerDeparted { departed_at, .. } => (
            OrderStatus::OnTheWay,
            vec![("departed_at", Value::Time(departed_at))],
        ),
        OrderEvent::WorkerArrived { arrived_at, .. } => (
            OrderStatus::Arrived,
            vec![("arrived_at", Value::Time(arrived_at))],
        ),
        OrderEvent::ServiceStarted { started_at, .. } => (
            OrderStatus::InService,
            vec![("started_at", Value::Time(started_at))],
        ),
        OrderEvent::ServiceFinished { finished_at, .. } => (
            OrderStatus::Completed,
            vec![("finished_at", Value::Time(finished_at))],
        ),
        OrderEvent::OrderReviewed {
            quality,
            attitude,
            skill,
            ..
        } => (
            OrderStatus::Reviewed,
            vec![
                ("rating_quality", Value::Small(quality.into())),
                ("rating_attitude", Value::Small(attitude.into())),
                ("rating_skill", Value::Small(skill.into())),
            ],
        ),
        OrderEvent::OrderCancelled {
            by,
            reason,
            stage,
            cancelled_at,
            settlement,
        } => {
            let mut columns = vec![
                ("cancelled_at", Value::Time(cancelled_at)),
                (
                    "cancelled_by_role",
                    Value::Text(by.role.as_str().to_owned()),
                ),
                ("cancel_reason", Value::Text(reason)),
                ("cancel_stage", Value::Text(stage.as_str().to_owned())),
            ];
            if let Some(settlement) = settlement {
                let to_worker = settlement.to_worker.map_or(0, |share| share.amount.get());
                columns.extend([
                    ("refund_fen", Value::Amount(settlement.refund.get())),
                    ("fee_kept_fen", Value::Amount(settlement.fee.get())),
                    ("fee_to_worker_fen", Value::Amount(to_worker)),
                ]);
            }
            (OrderStatus::Cancelled, columns)
        }
        OrderEvent::DisputeResolved { .. } => (OrderStatus::Completed, vec![]),
        OrderEvent::OrderDisputed {
            reason,
            disputed_at,
            ..
        } => (
            OrderStatus::Disputed,
            vec![
                ("disputed_at", Value::Time(disputed_at)),
                ("dispute_reason", Value::Text(reason)),
            ],
        ),
        OrderEvent::AssignmentExpired { .. } => (
            OrderStatus::Dispatching,
            vec![
                ("worker_id", Value::Id(None)),
                ("assigned_at", Value::NoTime),
            ],
        ),
        OrderEvent::AssignmentWithdrawn { .. } => {
            return (
                None,
                vec![
                    ("worker_id", Value::Id(None)),
                    ("assigned_at", Value::NoTime),
                ],
            )
        }
        OrderEvent::OrderRescheduled { start, .. } => {
            return (None, vec![("scheduled_start", Value::Time(start))])
        }
        OrderEvent::PriceAdjusted { to, .. } => {
            return (None, vec![("total", Value::Amount(to.get()))])
        }
        // Opened and written by the batch (it needs the vault).
        OrderEvent::AddressChanged { .. } => return (None, vec![]),
        // Dispatch stages and positions live in the dispatch read model, replies and hidden
        // reviews in the reviews read model.
        OrderEvent::DispatchStageEntered { .. }
        | OrderEvent::WorkerLocationReported { .. }
        | OrderEvent::ReviewReplied { .. }
        | OrderEvent::ReviewHidden { .. } => return (None, vec![]),
    };
    (Some(status), columns)
}

enum Value {
    Time(DateTime<Utc>),
    NoTime,
    Id(Option<Uuid>),
    Text(String),
    Small(i16),
    Amount(i64),
    Terms(Vec<String>),
}

impl Value {
    fn push_to(self, values: &mut sqlx::query_builder::Separated<'_, '_, Postgres, &str>) {
        match self {
            Value::Time(time) => values.push_bind(time),
            Value::NoTime => values.push_bind(None::<DateTime<Utc>>),
            Value::Id(id) => values.push_bind(id),
            Value::Text(text) => values.push_bind(text),
            Value::Small(number) => values.push_bind(number),
            Value::Amount(number) => values.push_bind(number),
            Value::Terms(terms) => values.push_bind(terms),
        };
    }
}

/// One order as the read side shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OrderRow {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub worker_id: Option<Uuid>,
    pub service: String,
    pub status: String,
    pub unit_price: i64,
    pub quantity: i32,
    pub total: i64,
    pub scheduled_start: DateTime<Utc>,
    pub duration_minutes: i32,
    pub city: String,
    pub district: String,
    pub address_detail: String,
    pub contact_name: String,
    pub contact_phone_masked: String,
    pub note: Option<String>,
    pub placed_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub departed_at: Option<DateTime<Utc>>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by_role: Option<String>,
    pub cancel_reason: Option<String>,
    pub cancel_stage: Option<String>,
    pub refund_fen: Option<i64>,
    pub fee_kept_fen: Option<i64>,
    pub fee_to_worker_fen: Option<i64>,
    pub disputed_at: Option<DateTime<Utc>>,
    pub dispute_reason: Option<String>,
    pub rating_quality: Option<i16>,
    pub rating_attitude: Option<i16>,
    pub rating_skill: Option<i16>,
    pub updated_at: DateTime<Utc>,
    pub last_sequence: i64,
}

pub async fn get(pool: &PgPool, order_id: Uuid) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as("SELECT * FROM read_orders WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(pool)
        .await
}

/// The column a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    #[default]
    PlacedAt,
    ScheduledStart,
    Total,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Asc,
    #[default]
    Desc,
}

/// Which orders to list. Every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub customer_id: Option<Uuid>,
    pub worker_id: Option<Uuid>,
    pub statuses: Vec<OrderStatus>,
    pub service: Option<String>,
    pub placed_from: Option<DateTime<Utc>>,
    pub placed_to: Option<DateTime<Utc>>,
    pub scheduled_from: Option<DateTime<Utc>>,
    pub scheduled_to: Option<DateTime<Utc>>,
    /// Free text, Chinese included: the service, the place, the contact's name or phone tail.
    pub text: Option<String>,
}

/// Where the next page starts: the sort value and id of the last row seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    sort: SortKey,
    direction: Direction,
    time: Option<DateTime<Utc>>,
    amount: Option<i64>,
    order_id: Uuid,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// Shown to people as `orders.bad-cursor`.
    #[error("the page cursor is invalid or belongs to another sort order")]
    BadCursor,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub items: Vec<OrderRow>,
    pub next_cursor: Option<String>,
}

fn encode_cursor(cursor: &Cursor) -> String {
    let json = serde_json::to_vec(cursor).expect("cursor serialises");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(raw: &str, sort: SortKey, direction: Direction) -> Result<Cursor, ListError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| ListError::BadCursor)?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| ListError::BadCursor)?;
    let complete = match sort {
        SortKey::Total => cursor.amount.is_some(),
        SortKey::PlacedAt | SortKey::ScheduledStart => cursor.time.is_some(),
    };
    if cursor.sort != sort || cursor.direction != direction || !complete {
        return Err(ListError::BadCursor);
    }
    Ok(cursor)
}

/// Narrows a query over `read_orders` by every field of `filter`.
fn push_filters(query: &mut QueryBuilder<'_, Postgres>, filter: &OrderFilter) {
    if let Some(customer_id) = filter.customer_id {
        query.push(" AND customer_id = ").push_bind(customer_id);
    }
    if let Some(worker_id) = filter.worker_id {
        query.push(" AND worker_id = ").push_bind(worker_id);
    }
    if !filter.statuses.is_empty() {
        let statuses: Vec<&str> = filter
            .statuses
            .iter()
            .map(|status| status.as_str())
            .collect();
        query
            .push(" AND status = ANY(")
            .push_bind(statuses)
            .push(")");
    }
    if let Some(service) = &filter.service {
        query.push(" AND service = ").push_bind(service.clone());
    }
    if let Some(from) = filter.placed_from {
        query.push(" AND placed_at >= ").push_bind(from);
    }
    if let Some(to) = filter.placed_to {
        query.push(" AND placed_at < ").push_bind(to);
    }
    if let Some(from) = filter.scheduled_from {
        query.push(" AND scheduled_start >= ").push_bind(from);
    }
    if let Some(to) = filter.scheduled_to {
        query.push(" AND scheduled_start < ").push_bind(to);
    }
    if let Some(text) = &filter.text {
        // Every term of the query must be among the order's (GIN-indexed) terms; a query with
        // nothing to search by (punctuation only) finds nothing.
        let terms = crate::search::query_terms(text);
        if terms.is_empty() {
            query.push(" AND false");
        }
        query
            .push(" AND search_terms @> ")
            .push_bind(terms)
            .push("::text[]");
    }
}

/// Lists orders with keyset pagination: a page costs the same wherever it is in the list.
pub async fn list(
    pool: &PgPool,
    filter: &OrderFilter,
    sort: SortKey,
    direction: Direction,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page, ListError> {
    let cursor = cursor
        .map(|raw| decode_cursor(raw, sort, direction))
        .transpose()?;
    let column = match sort {
        SortKey::PlacedAt => "placed_at",
        SortKey::ScheduledStart => "scheduled_start",
        SortKey::Total => "total",
    };
    let (comparison, order) = match direction {
        Direction::Asc => (">", "ASC"),
        Direction::Desc => ("<", "DESC"),
    };
    let mut query: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT * FROM read_orders WHERE true");
    push_filters(&mut query, filter);
    if let Some(cursor) = &cursor {
        query.push(format!(" AND ({column}, order_id) {comparison} ("));
        match sort {
            SortKey::Total => query.push_bind(cursor.amount),
            SortKey::PlacedAt | SortKey::ScheduledStart => query.push_bind(cursor.time),
        };
        query.push(", ").push_bind(cursor.order_id).push(")");
    }
    query.push(format!(
        " ORDER BY {column} {order}, order_id {order} LIMIT "
    ));
    query.push_bind(i64::from(limit) + 1);
    // Planned for these very terms each time: a cached generic plan cannot tell a rare term
    // (walk the GIN index) from a common one (walk the newest rows), and guessing wrong costs
    // a scan of the whole table.
    let mut items: Vec<OrderRow> = query
        .build_query_as()
        .persistent(false)
        .fetch_all(pool)
        .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|last| {
            encode_cursor(&Cursor {
                sort,
                direction,
                time: match sort {
                    SortKey::PlacedAt => Some(last.placed_at),
                    SortKey::ScheduledStart => Some(last.scheduled_start),
                    SortKey::Total => None,
                },
                amount: (sort == SortKey::Total).then_some(last.total),
                order_id: last.order_id,
            })
        })
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// How many orders are in each status, for the admin list's tabs.
pub async fn counts_by_status(
    pool: &PgPool,
    filter: &OrderFilter,
) -> sqlx::Result<Vec<(String, i64)>> {
    let mut query: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT status, COUNT(*) AS count FROM read_orders WHERE true");
    push_filters(&mut query, filter);
    query.push(" GROUP BY status ORDER BY status");
    let rows = query.build().persistent(false).fetch_all(pool).await?;
    rows.iter()
        .map(|row| Ok((row.try_get("status")?, row.try_get("count")?)))
        .collect()
}
