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

/// Reads up to `limit` events after `after`, only from transactions that can no longer commit
/// an event before them: those below the oldest transaction still in progress.
pub async fn read_after(
    connection: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let rows = sqlx::query(
        "SELECT position, transaction_id::text AS xid, aggregate_type, aggregate_id, sequence,
                event_type, event_version, payload, metadata, recorded_at
           FROM events
          WHERE (transaction_id, position) > ($1::text::xid8, $2)
            AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY transaction_id, position
          LIMIT $3",
    )
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
