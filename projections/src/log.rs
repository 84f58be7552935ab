//! Reading the event log in commit-safe order.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

/// One event as it is stored, with the columns the migrations add.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub position: i64,
    pub transaction_id: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// Decodes the payload into an aggregate's event type.
    ///
    /// An event written at an older version is brought to today's shape by
    /// `domain::upcast` first; one at a version no upcaster knows is an error (the projector
    /// parks its stream) rather than being misread.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> anyhow::Result<E> {
        use anyhow::Context;
        let payload =
            domain::upcast::upcast(&self.event_type, &self.event_version, self.payload.clone())
                .map_err(|why| anyhow::anyhow!("{why} (position {})", self.position))?;
        serde_json::from_value(payload).with_context(|| {
            format!(
                "decoding {} v{} at position {}",
                self.event_type, self.event_version, self.position
            )
        })
    }
}

/// A point in the log: everything at or before it has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Checkpoint {
    pub transaction_id: u64,
    pub position: i64,
}

/// Told whenever this process commits events, so the projectors waiting in it for more look
/// again at once instead of at their next poll (commits of other processes are found by the
/// poll).
static COMMITTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Events were committed by this process: wakes the projectors waiting for more.
pub fn committed() {
    COMMITTED.notify_waiters();
}

/// Resolves when this process next commits events (see [`committed`]); counts from when it
/// is enabled (`Notified::enable`) or first polled.
pub fn next_commit() -> tokio::sync::futures::Notified<'static> {
    COMMITTED.notified()
}

/// The `application_name` of the projectors' connections. Their transactions write read models
/// only, never events (the events table refuses an insert from such a connection), so they are
/// left out of [`HORIZON`].
pub const PROJECTOR_APPLICATION: &str = "anjia-projector";

/// SQL for the point below which no event can still commit: the oldest transaction in progress
/// that may write events, or the next transaction id when none is. A projector's own
/// transaction is not counted: otherwise one projector's long batch would hold every follower
/// of the log back for as long as it runs. Reading the running transactions a moment after the
/// snapshot only ever counts more of them, never fewer, and a transaction that takes its id
/// later takes one above the snapshot's.
pub const HORIZON: &str = "COALESCE(
       (SELECT MIN(running) FROM pg_snapshot_xip(pg_current_snapshot()) AS running
         WHERE running::text::bigint % 4294967296 NOT IN (
               SELECT backend_xid::text::bigint FROM pg_stat_activity
                WHERE application_name = 'anjia-projector' AND backend_xid IS NOT NULL)),
       pg_snapshot_xmax(pg_current_snapshot()))";

/// Reads up to `limit` events after `after`, only from transactions that can no longer commit
/// an event before them: those below [`HORIZON`].
pub async fn read_after(
    connection: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let rows = sqlx::query(&format!(
        "SELECT position, transaction_id::text AS xid, aggregate_type, aggregate_id, sequence,
                event_type, event_version, payload, metadata, recorded_at
           FROM events
          WHERE (transaction_id, position) > ($1::text::xid8, $2)
            AND transaction_id < {HORIZON}
          ORDER BY transaction_id, position
          LIMIT $3"
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.position)
    .bind(limit)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter().map(row_to_event).collect()
}

/// Reads the events at the given positions, in commit order.
pub async fn read_positions(
    connection: &mut PgConnection,
    positions: &[i64],
) -> sqlx::Result<Vec<StoredEvent>> {
    let rows = sqlx::query(
        "SELECT position, transaction_id::text AS xid, aggregate_type, aggregate_id, sequence,
                event_type, event_version, payload, metadata, recorded_at
           FROM events
          WHERE position = ANY($1)
          ORDER BY transaction_id, position",
    )
    .bind(positions)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter().map(row_to_event).collect()
}

fn row_to_event(row: &sqlx::postgres::PgRow) -> sqlx::Result<StoredEvent> {
    let xid: String = row.try_get("xid")?;
    Ok(StoredEvent {
        position: row.try_get("position")?,
        transaction_id: xid
            .parse()
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_horizon_leaves_out_the_projectors_by_their_application_name() {
        assert!(super::HORIZON.contains(&format!("'{}'", super::PROJECTOR_APPLICATION)));
    }
}
