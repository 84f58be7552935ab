//! Projections: generations and their views, applying events with parking, rebuilds beside
//! the live model, and status. The live loop is the `live` module.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{Acquire, Executor, PgConnection, PgPool, Row};

use crate::log::{read_after, Checkpoint, StoredEvent};

/// One read model fed by the log.
#[async_trait::async_trait]
pub trait Projection: Send + Sync {
    /// The stable name used for checkpoints, schemas and the CLI.
    fn name(&self) -> &'static str;

    /// Creates this projection's tables inside `schema`.
    fn create_tables(&self, schema: &str) -> String;

    /// The tables exposed in `public` as `read_<table>` views.
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event. Must be idempotent: an event may be offered to a fresh generation
    /// that already saw it only through a crash-free replay, but never rely on that.
    ///
    /// A projection implements this, `apply_batch`, or both: each is by default the other (a
    /// batch of one event; every event in turn). The test that feeds every projection the same
    /// log both ways would never end for one that implements neither.
    async fn apply(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        event: &StoredEvent,
    ) -> anyhow::Result<()> {
        self.apply_batch(connection, schema, std::slice::from_ref(event))
            .await
    }

    /// Applies a batch in log order. A projection may fold a batch into fewer writes, as long
    /// as the result equals applying each event in turn.
    async fn apply_batch(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        for event in events {
            self.apply(&mut *connection, schema, event)
                .await
                .with_context(|| {
                    format!(
                        "{} applying event at position {}",
                        self.name(),
                        event.position
                    )
                })?;
        }
        Ok(())
    }
}

pub(crate) fn schema_name(projection: &str, generation: i32) -> String {
    format!("rm_{projection}_g{generation}")
}

/// A stable advisory-lock key per projection, so one process at a time runs its live projector.
pub(crate) fn lease_key(projection: &str) -> i64 {
    advisory_key("projector", projection)
}

/// A PostgreSQL advisory-lock key for `name` within `namespace`, the same in every process and
/// build (FNV-1a; std's hasher is seeded per process).
pub fn advisory_key(namespace: &str, name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = b"anjia-"
        .iter()
        .chain(namespace.as_bytes())
        .chain(b":")
        .chain(name.as_bytes());
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// The transaction-scoped lock that a live step and a rebuild's swap both take, so a swap never
/// lands in the middle of a step. An advisory lock, unlike `FOR UPDATE`, gives an idle step no
/// transaction id, so polling an idle log burns none.
pub(crate) fn swap_key(projection: &str) -> i64 {
    lease_key(projection) ^ 0x5eed
}

/// Held for the whole of a rebuild, so two rebuilds of one projection never interleave.
fn rebuild_key(projection: &str) -> i64 {
    lease_key(projection) ^ 0x0b11d
}

async fn active_generation(connection: &mut PgConnection, name: &str) -> anyhow::Result<i32> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(swap_key(name))
        .execute(&mut *connection)
        .await?;
    let generation =
        sqlx::query_scalar("SELECT active_generation FROM projections WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *connection)
            .await
            .context("reading the active generation")?;
    Ok(generation)
}

/// A projection's table definitions, as a fingerprint: what `create_tables` writes for a
/// placeholder schema.
fn definition(projection: &dyn Projection) -> String {
    let text = projection.create_tables("generation");
    format!(
        "{:016x}:{}",
        advisory_key("projection-definition", &text),
        text.len()
    )
}

/// Creates generation 1 of every projection that has none yet, and rebuilds every projection
/// whose live generation was built from other table definitions than the code's. Safe to run
/// from several processes at once: creation is serialised by a transaction-scoped advisory
/// lock, and a rebuild by its own lock.
pub async fn ensure_all(pool: &PgPool, projections: &[Arc<dyn Projection>]) -> anyhow::Result<()> {
    for projection in projections {
        let recorded: Option<Option<String>> =
            sqlx::query_scalar("SELECT definition FROM projections WHERE name = $1")
                .bind(projection.name())
                .fetch_optional(pool)
                .await?;
        if let Some(recorded) = recorded {
            let current = definition(projection.as_ref());
            if recorded.as_deref() != Some(current.as_str()) {
                tracing::warn!(
                    projection = projection.name(),
                    "the projection's tables changed; rebuilding it"
                );
                match rebuild(pool, projection.as_ref()).await {
                    Ok(_) => {}
                    // Another process is rebuilding it already: wait for its swap, so this
                    // process never serves from tables of the old shape.
                    Err(error) if error.downcast_ref::<RebuildInProgress>().is_some() => loop {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        let now: Option<String> = sqlx::query_scalar(
                            "SELECT definition FROM projections WHERE name = $1",
                        )
                        .bind(projection.name())
                        .fetch_one(pool)
                        .await?;
                        if now.as_deref() == Some(current.as_str()) {
                            break;
                        }
                    },
                    Err(error) => return Err(error),
                }
            }
            continue;
        }
        let mut transaction = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(swap_key(projection.name()))
            .execute(&mut *transaction)
            .await?;
        let exists = sqlx::query("SELECT 1 FROM projections WHERE name = $1")
            .bind(projection.name())
            .fetch_optional(&mut *transaction)
            .await?
            .is_some();
        if !exists {
            create_generation(&mut transaction, projection.as_ref(), 1).await?;
            swap_views(&mut transaction, projection.as_ref(), 1).await?;
            sqlx::query(
                "INSERT INTO projections (name, active_generation, definition) VALUES ($1, 1, $2)",
            )
            .bind(projection.name())
            .bind(definition(projection.as_ref()))
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
    }
    Ok(())
}

async fn create_generation(
    connection: &mut PgConnection,
    projection: &dyn Projection,
    generation: i32,
) -> anyhow::Result<()> {
    let schema = schema_name(projection.name(), generation);
    let recreate = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};");
    connection.execute(recreate.as_str()).await?;
    let tables = projection.create_tables(&schema);
    connection
        .execute(tables.as_str())
        .await
        .with_context(|| format!("creating the tables of {schema}"))?;
    sqlx::query(
        "INSERT INTO projection_checkpoints (projection, generation) VALUES ($1, $2)
         ON CONFLICT (projection, generation) DO UPDATE
            SET last_xid = '0', last_position = 0, applied_events = 0, last_error = NULL",
    )
    .bind(projection.name())
    .bind(generation)
    .execute(&mut *connection)
    .await?;
    sqlx::query("DELETE FROM projection_parked WHERE projection = $1 AND generation = $2")
        .bind(projection.name())
        .bind(generation)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

async fn swap_views(
    connection: &mut PgConnection,
    projection: &dyn Projection,
    generation: i32,
) -> anyhow::Result<()> {
    let schema = schema_name(projection.name(), generation);
    for table in projection.tables() {
        // Dropping first lets a new generation change columns; the transaction hides the gap.
        let replace = format!(
            "DROP VIEW IF EXISTS read_{table}; CREATE VIEW read_{table} AS SELECT * FROM {schema}.{table};"
        );
        connection.execute(replace.as_str()).await?;
    }
    Ok(())
}

/// Applies the next batch for one generation inside the caller's transaction and moves its
/// checkpoint there too. Returns the events read (applied or parked). A rebuild fills its new
/// generation this way; the live loop (the `live` module) reads once for all of its projections.
async fn apply_batch(
    connection: &mut PgConnection,
    projection: &dyn Projection,
    generation: i32,
    batch_size: i64,
) -> anyhow::Result<Vec<StoredEvent>> {
    let row = sqlx::query(
        "SELECT last_xid::text AS xid, last_position FROM projection_checkpoints
          WHERE projection = $1 AND generation = $2",
    )
    .bind(projection.name())
    .bind(generation)
    .fetch_one(&mut *connection)
    .await
    .context("reading the checkpoint")?;
    let checkpoint = Checkpoint {
        transaction_id: row.get::<String, _>("xid").parse()?,
        position: row.get("last_position"),
    };
    let events = read_after(&mut *connection, checkpoint, batch_size).await?;
    if events.is_empty() {
        return Ok(events);
    }
    let set_aside = parked_streams(&mut *connection, projection.name(), generation).await?;
    apply_with_care(&mut *connection, projection, generation, &events, set_aside).await?;
    move_checkpoints(
        &mut *connection,
        &[(projection.name(), generation, &events[..])],
    )
    .await?;
    Ok(events)
}

/// Applies `events` as one batch: `None` when they applied, the failure when parking could
/// answer it (the caller then goes event by event), an error otherwise.
pub(crate) async fn apply_whole(
    connection: &mut PgConnection,
    projection: &dyn Projection,
    schema: &str,
    events: &[StoredEvent],
) -> anyhow::Result<Option<anyhow::Error>> {
    match projection.apply_batch(connection, schema, events).await {
        Ok(()) => Ok(None),
        Err(error) if is_parkable(&error) => Ok(Some(error)),
        Err(error) => Err(error).with_context(|| {
            format!(
                "{} applying events at positions {}..={}",
                projection.name(),
                events.first().map_or(0, |event| event.position),
                events.last().map_or(0, |event| event.position)
            )
        }),
    }
}

/// Applies `events` (in log order, all after the generation's checkpoint) so that one bad event
/// cannot hold the rest back; the checkpoint is the caller's to move.
///
/// The batch is tried whole inside a savepoint. If it fails for a reason that lies in the data
/// rather than the database's health (see `is_parkable`), each event is tried alone: one that
/// still fails is parked with its error, its stream is set aside for this projection, and the
/// rest of the log flows on. A connection or resource failure parks nothing: the step fails
/// and is tried again, as before.
pub(crate) async fn apply_with_care(
    connection: &mut PgConnection,
    projection: &dyn Projection,
    generation: i32,
    events: &[StoredEvent],
    mut set_aside: HashSet<(String, String)>,
) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let schema = schema_name(projection.name(), generation);
    let whole_batch = if holds_none_of(events, &set_aside) {
        let mut savepoint = connection.begin().await?;
        let failed = apply_whole(&mut savepoint, projection, &schema, events).await?;
        if failed.is_some() {
            savepoint.rollback().await?;
        } else {
            savepoint.commit().await?;
        }
        failed
    } else {
        Some(anyhow::anyhow!("the batch holds a stream set aside"))
    };
    let Some(batch_error) = whole_batch else {
        return Ok(());
    };
    tracing::debug!(
        projection = projection.name(),
        error = format!("{batch_error:#}"),
        "a batch failed; applying its events one by one"
    );
    for event in events {
        let stream = (event.aggregate_type.clone(), event.aggregate_id.clone());
        if set_aside.contains(&stream) {
            park(
                &mut *connection,
                projection.name(),
                generation,
                event,
                "an earlier event of this stream is parked",
            )
            .await?;
            continue;
        }
        let mut savepoint = connection.begin().await?;
        match projection.apply(&mut savepoint, &schema, event).await {
            Ok(()) => savepoint.commit().await?,
            Err(error) if is_parkable(&error) => {
                savepoint.rollback().await?;
                let error = format!("{error:#}");
                tracing::error!(
                    projection = projection.name(),
                    position = event.position,
                    aggregate_type = %event.aggregate_type,
                    aggregate_id = %event.aggregate_id,
                    event_type = %event.event_type,
                    error = %error,
                    "an event could not be applied; its stream is parked and the rest flows on"
                );
                park(
                    &mut *connection,
                    projection.name(),
                    generation,
                    event,
                    &error,
                )
                .await?;
                set_aside.insert(stream);
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "{} applying the event at position {}",
                        projection.name(),
                        event.position
                    )
                })
            }
        }
    }
    Ok(())
}

/// Whether none of `events` belongs to a stream set aside.
pub(crate) fn holds_none_of(events: &[StoredEvent], set_aside: &HashSet<(String, String)>) -> bool {
    set_aside.is_empty()
        || !events.iter().any(|event| {
            set_aside.contains(&(event.aggregate_type.clone(), event.aggregate_id.clone()))
        })
}

/// Moves each generation's checkpoint past the last of its events, in one statement.
pub(crate) async fn move_checkpoints(
    connection: &mut PgConnection,
    moves: &[(&str, i32, &[StoredEvent])],
) -> anyhow::Result<()> {
    let mut names = Vec::with_capacity(moves.len());
    let mut generations = Vec::with_capacity(moves.len());
    let mut xids = Vec::with_capacity(moves.len());
    let mut positions = Vec::with_capacity(moves.len());
    let mut counts = Vec::with_capacity(moves.len());
    for (name, generation, events) in moves {
        let Some(last) = events.last() else {
            continue;
        };
        names.push(*name);
        generations.push(*generation);
        xids.push(last.transaction_id.to_string());
        positions.push(last.position);
        counts.push(events.len() as i64);
    }
    if names.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE projection_checkpoints c
            SET last_xid = u.xid::xid8, last_position = u.position,
                applied_events = c.applied_events + u.applied, last_error = NULL,
                updated_at = now()
           FROM unnest($1::text[], $2::int4[], $3::text[], $4::int8[], $5::int8[])
                AS u (projection, generation, xid, position, applied)
          WHERE c.projection = u.projection AND c.generation = u.generation",
    )
    .bind(&names)
    .bind(&generations)
    .bind(&xids)
    .bind(&positions)
    .bind(&counts)
    .execute(&mut *connection)
    .await
    .context("moving the checkpoints")?;
    Ok(())
}

/// Whether a failure lies in the event (its data, or a projection's handling of it), so that
/// parking it is right, rather than in the database's health, where trying again is.
pub(crate) fn is_parkable(error: &anyhow::Error) -> bool {
    for cause in error.chain() {
        if let Some(database) = cause.downcast_ref::<sqlx::Error>() {
            return match database {
                sqlx::Error::Database(failure) => {
                    let code = failure.code().unwrap_or_default();
                    // Connection, transaction rollback (serialisation, deadlock), resources,
                    // operator intervention, system and internal errors: transient.
                    !["08", "40", "53", "54", "55", "57", "58", "XX"]
                        .iter()
                        .any(|class| code.starts_with(class))
                }
                sqlx::Error::Decode(_)
                | sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::TypeNotFound { .. }
                | sqlx::Error::RowNotFound => true,
                _ => false,
            };
        }
    }
    true
}

async fn parked_streams(
    connection: &mut PgConnection,
    projection: &str,
    generation: i32,
) -> anyhow::Result<HashSet<(String, String)>> {
    let streams: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT aggregate_type, aggregate_id FROM projection_parked
          WHERE projection = $1 AND generation = $2",
    )
    .bind(projection)
    .bind(generation)
    .fetch_all(&mut *connection)
    .await
    .context("reading the parked streams")?;
    Ok(streams.into_iter().collect())
}

async fn park(
    connection: &mut PgConnection,
    projection: &str,
    generation: i32,
    event: &StoredEvent,
    error: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO projection_parked
             (projection, generation, position, transaction_id, aggregate_type, aggregate_id,
              sequence, event_type, error)
         VALUES ($1, $2, $3, $4::text::xid8, $5, $6, $7, $8, $9)
         ON CONFLICT (projection, generation, position) DO UPDATE SET error = EXCLUDED.error",
    )
    .bind(projection)
    .bind(generation)
    .bind(event.position)
    .bind(event.transaction_id.to_string())
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.sequence)
    .bind(&event.event_type)
    // An error can quote the event's own bad text; keep only what the column can hold.
    .bind(error.replace('\0', "\\0"))
    .execute(&mut *connection)
    .await
    .context("parking an event")?;
    Ok(())
}

/// A stream a projection has set aside, with what went wrong first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParkedStream {
    pub projection: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The parked events: the one that failed and every later one of the stream.
    pub events: i64,
    pub first_position: i64,
    pub first_event_type: String,
    pub error: String,
    pub parked_at: DateTime<Utc>,
}

/// Every stream set aside by the live generation of any projection, oldest first.
pub async fn parked(pool: &PgPool) -> anyhow::Result<Vec<ParkedStream>> {
    let rows = sqlx::query(
        "SELECT DISTINCT ON (k.projection, k.aggregate_type, k.aggregate_id)
                k.projection, k.aggregate_type, k.aggregate_id, k.position, k.event_type, k.error,
                k.parked_at,
                COUNT(*) OVER (PARTITION BY k.projection, k.aggregate_type, k.aggregate_id) AS events
           FROM projection_parked k
           JOIN projections p ON p.name = k.projection AND p.active_generation = k.generation
          ORDER BY k.projection, k.aggregate_type, k.aggregate_id, k.position",
    )
    .fetch_all(pool)
    .await
    .context("listing parked events")?;
    let mut streams: Vec<ParkedStream> = rows
        .iter()
        .map(|row| {
            Ok(ParkedStream {
                projection: row.try_get("projection")?,
                aggregate_type: row.try_get("aggregate_type")?,
                aggregate_id: row.try_get("aggregate_id")?,
                events: row.try_get("events")?,
                first_position: row.try_get("position")?,
                first_event_type: row.try_get("event_type")?,
                error: row.try_get("error")?,
                parked_at: row.try_get("parked_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    streams.sort_by_key(|stream| stream.first_position);
    Ok(streams)
}

/// What a retry of parked events did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RetryReport {
    /// Events applied and no longer parked.
    pub applied: i64,
    /// Streams still parked, because one of their events failed again.
    pub still_parked: Vec<ParkedStream>,
}

/// Applies a projection's parked events again (after a fix), stream by stream in log order;
/// `only` limits it to one stream. A stream whose event fails again stays parked with the new
/// error. Runs under the projection's swap lock, so it never interleaves with a live step.
pub async fn retry_parked(
    pool: &PgPool,
    projection: &dyn Projection,
    only: Option<(&str, &str)>,
) -> anyhow::Result<RetryReport> {
    let name = projection.name();
    let mut transaction = pool.begin().await?;
    let generation = active_generation(&mut transaction, name).await?;
    let schema = schema_name(name, generation);
    let parked_rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT position, aggregate_type, aggregate_id FROM projection_parked
          WHERE projection = $1 AND generation = $2
            AND ($3::text IS NULL OR (aggregate_type = $3 AND aggregate_id = $4))
          ORDER BY transaction_id, position",
    )
    .bind(name)
    .bind(generation)
    .bind(only.map(|(kind, _)| kind))
    .bind(only.map(|(_, id)| id))
    .fetch_all(&mut *transaction)
    .await?;
    let positions: Vec<i64> = parked_rows
        .iter()
        .map(|(position, _, _)| *position)
        .collect();
    let events = crate::log::read_positions(&mut transaction, &positions).await?;
    let mut failed: HashSet<(String, String)> = HashSet::new();
    let mut report = RetryReport::default();
    for event in &events {
        let stream = (event.aggregate_type.clone(), event.aggregate_id.clone());
        if failed.contains(&stream) {
            continue;
        }
        let mut savepoint = transaction.begin().await?;
        match projection.apply(&mut savepoint, &schema, event).await {
            Ok(()) => {
                savepoint.commit().await?;
                sqlx::query(
                    "DELETE FROM projection_parked
                      WHERE projection = $1 AND generation = $2 AND position = $3",
                )
                .bind(name)
                .bind(generation)
                .bind(event.position)
                .execute(&mut *transaction)
                .await?;
                report.applied += 1;
            }
            Err(error) if is_parkable(&error) => {
                savepoint.rollback().await?;
                park(
                    &mut transaction,
                    name,
                    generation,
                    event,
                    &format!("{error:#}"),
                )
                .await?;
                failed.insert(stream);
            }
            Err(error) => return Err(error),
        }
    }
    transaction.commit().await?;
    report.still_parked = parked(pool)
        .await?
        .into_iter()
        .filter(|stream| {
            stream.projection == name
                && failed.contains(&(stream.aggregate_type.clone(), stream.aggregate_id.clone()))
        })
        .collect();
    Ok(report)
}

const REBUILD_BATCH: i64 = 2_000;

/// A rebuild of the same projection is already under way (in this or another process).
#[derive(Debug, thiserror::Error)]
#[error("a rebuild of {0} is already running")]
pub struct RebuildInProgress(pub String);

/// What a rebuild did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RebuildReport {
    pub projection: String,
    pub previous_generation: i32,
    pub generation: i32,
    pub events_applied: i64,
}

/// Rebuilds a projection from position zero into a new generation while the live one keeps
/// serving, then swaps the views in one transaction and drops the old generation.
pub async fn rebuild(pool: &PgPool, projection: &dyn Projection) -> anyhow::Result<RebuildReport> {
    let name = projection.name();
    let mut rebuild_lock = pool.acquire().await?;
    // Should this future be dropped half-way, the connection (and its lock) goes with it,
    // instead of returning to the pool still holding the lock.
    rebuild_lock.close_on_drop();
    let exclusive: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(rebuild_key(name))
        .fetch_one(&mut *rebuild_lock)
        .await?;
    if !exclusive {
        return Err(RebuildInProgress(name.to_owned()).into());
    }
    let outcome = rebuild_exclusively(pool, projection).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(rebuild_key(name))
        .execute(&mut *rebuild_lock)
        .await?;
    outcome
}

async fn rebuild_exclusively(
    pool: &PgPool,
    projection: &dyn Projection,
) -> anyhow::Result<RebuildReport> {
    let name = projection.name();
    let generation: i32 = {
        let mut transaction = pool.begin().await?;
        let generation: i32 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(generation), 0) + 1 FROM projection_checkpoints WHERE projection = $1",
        )
        .bind(name)
        .fetch_one(&mut *transaction)
        .await?;
        create_generation(&mut transaction, projection, generation).await?;
        transaction.commit().await?;
        generation
    };
    let mut events_applied = 0_i64;
    // Catch up without blocking the live projector.
    loop {
        let mut transaction = pool.begin().await?;
        let applied = apply_batch(&mut transaction, projection, generation, REBUILD_BATCH)
            .await?
            .len();
        transaction.commit().await?;
        events_applied += applied as i64;
        // A short batch means we are near the head; the locked final pass takes the rest, so
        // steady traffic cannot keep this loop from ending.
        if applied < REBUILD_BATCH as usize {
            break;
        }
    }
    // Take the projection's row, apply what arrived meanwhile and swap, all at once.
    let mut transaction = pool.begin().await?;
    let previous_generation = active_generation(&mut transaction, name).await?;
    loop {
        let applied = apply_batch(&mut transaction, projection, generation, REBUILD_BATCH)
            .await?
            .len();
        events_applied += applied as i64;
        if applied == 0 {
            break;
        }
    }
    swap_views(&mut transaction, projection, generation).await?;
    sqlx::query(
        "UPDATE projections SET active_generation = $2, definition = $3, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(generation)
    .bind(definition(projection))
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    // Older generations are no longer read by anyone.
    let stale: Vec<i32> = sqlx::query_scalar(
        "SELECT generation FROM projection_checkpoints WHERE projection = $1 AND generation <> $2",
    )
    .bind(name)
    .bind(generation)
    .fetch_all(pool)
    .await?;
    for old_generation in stale {
        let drop = format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            schema_name(name, old_generation)
        );
        pool.execute(drop.as_str()).await?;
        sqlx::query("DELETE FROM projection_checkpoints WHERE projection = $1 AND generation = $2")
            .bind(name)
            .bind(old_generation)
            .execute(pool)
            .await?;
        sqlx::query("DELETE FROM projection_parked WHERE projection = $1 AND generation = $2")
            .bind(name)
            .bind(old_generation)
            .execute(pool)
            .await?;
    }
    Ok(RebuildReport {
        projection: name.to_owned(),
        previous_generation,
        generation,
        events_applied,
    })
}

/// Where a projection stands against the head of the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub generation: i32,
    pub last_position: i64,
    pub applied_events: i64,
    pub head_position: i64,
    /// Events committed but not yet applied.
    pub pending_events: i64,
    /// How long the oldest unapplied event has waited, in seconds (0 when caught up).
    pub lag_seconds: f64,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

pub async fn status(pool: &PgPool) -> anyhow::Result<Vec<ProjectionStatus>> {
    let rows = sqlx::query(
        "SELECT p.name, p.active_generation, c.last_position, c.applied_events, c.last_error, c.updated_at,
                (SELECT COALESCE(MAX(position), 0) FROM events) AS head_position,
                pending.count AS pending_events,
                COALESCE(EXTRACT(EPOCH FROM (clock_timestamp() - pending.oldest)), 0)::float8 AS lag_seconds
           FROM projections p
           JOIN projection_checkpoints c ON c.projection = p.name AND c.generation = p.active_generation
           CROSS JOIN LATERAL (
                SELECT COUNT(*) AS count, MIN(e.recorded_at) AS oldest
                  FROM events e
                 WHERE (e.transaction_id, e.position) > (c.last_xid, c.last_position)
           ) pending
          ORDER BY p.name",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ProjectionStatus {
                name: row.try_get("name")?,
                generation: row.try_get("active_generation")?,
                last_position: row.try_get("last_position")?,
                applied_events: row.try_get("applied_events")?,
                head_position: row.try_get("head_position")?,
                pending_events: row.try_get("pending_events")?,
                lag_seconds: row.try_get("lag_seconds")?,
                last_error: row.try_get("last_error")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}
