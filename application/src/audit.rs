//! The replayable audit trail: any stream's history with its metadata, its state as of any
//! event or moment (rebuilt by replaying the domain's own `apply`), the global log, a
//! verification of the hash chains, and an export another system can replay.
//!
//! Verification recomputes every hash here, in Rust, rather than trusting the database's
//! `event_hash` function (which whoever altered a row could have altered too). It reports:
//! - `altered`: a row's hash is not the hash of its own contents;
//! - `relinked`: a row does not point at its predecessor's hash (moved, swapped or re-ordered);
//! - `missing`: a gap in a stream's sequence numbers, or a stream now shorter than when it was
//!   last verified;
//! - `rewritten`: the event a previous run saw at a stream's head now has another hash (a whole
//!   history rewritten with a fresh chain);
//! - `out_of_order`: a stream's later event was inserted before its earlier one.

use std::collections::HashMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use futures::TryStreamExt;
use projections::log::StoredEvent;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// The aggregate types whose state can be replayed.
pub const AGGREGATE_TYPES: [&str; 8] = [
    "order",
    "worker",
    "customer",
    "payment",
    "wallet",
    "commission_schedule",
    "interview",
    "presence",
];

/// One event of a stream, as the audit trail shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    /// Who (actor id and role), when, from where (client IP, user agent), request and command.
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
    /// Hex of the event's link in its stream's hash chain.
    pub hash: String,
}

const EVENT_COLUMNS: &str = "position, aggregate_type, aggregate_id, sequence, event_type, \
    event_version, payload::jsonb AS payload, metadata::jsonb AS metadata, recorded_at, hash";

fn audit_event(row: &sqlx::postgres::PgRow) -> Result<AuditEvent, sqlx::Error> {
    Ok(AuditEvent {
        position: row.try_get("position")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
        hash: hex::encode(row.try_get::<Vec<u8>, _>("hash")?),
    })
}

/// A stream's events in order, from `after_sequence` on.
pub async fn history(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    after_sequence: i64,
    limit: i64,
) -> anyhow::Result<Vec<AuditEvent>> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3
          ORDER BY sequence LIMIT $4"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(after_sequence)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(audit_event).collect::<Result<_, _>>()?)
}

/// Up to which event a state is wanted.
#[derive(Debug, Clone, Copy)]
pub enum AsOf {
    /// Through this sequence number.
    Sequence(i64),
    /// Every event recorded at or before this moment.
    Time(DateTime<Utc>),
    Latest,
}

/// A stream's state as of an event or a moment, replayed from its events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayedState {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The last event applied (0: none).
    pub sequence: i64,
    pub recorded_at: Option<DateTime<Utc>>,
    pub state: serde_json::Value,
}

fn fold<A>(events: &[StoredEvent]) -> anyhow::Result<serde_json::Value>
where
    A: Aggregate + Serialize,
{
    let mut state = A::default();
    for event in events {
        state.apply(event.decode::<A::Event>()?);
    }
    Ok(serde_json::to_value(state)?)
}

/// Replays a stream. `None` for an aggregate type that cannot be replayed.
pub async fn state_as_of(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    as_of: AsOf,
) -> anyhow::Result<Option<ReplayedState>> {
    if !AGGREGATE_TYPES.contains(&aggregate_type) {
        return Ok(None);
    }
    let (through, until) = match as_of {
        AsOf::Sequence(sequence) => (sequence, None),
        AsOf::Time(moment) => (i64::MAX, Some(moment)),
        AsOf::Latest => (i64::MAX, None),
    };
    let rows = sqlx::query(
        "SELECT position, transaction_id::text::bigint AS transaction_id, aggregate_type,
                aggregate_id, sequence, event_type, event_version, payload::jsonb AS payload,
                metadata::jsonb AS metadata, recorded_at
           FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence <= $3
            AND ($4::timestamptz IS NULL OR recorded_at <= $4)
          ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(through)
    .bind(until)
    .fetch_all(pool)
    .await?;
    let events = rows
        .iter()
        .map(|row| {
            Ok(StoredEvent {
                position: row.try_get("position")?,
                transaction_id: row.try_get::<i64, _>("transaction_id")? as u64,
                aggregate_type: row.try_get("aggregate_type")?,
                aggregate_id: row.try_get("aggregate_id")?,
                sequence: row.try_get("sequence")?,
                event_type: row.try_get("event_type")?,
                event_version: row.try_get("event_version")?,
                payload: row.try_get("payload")?,
                metadata: row.try_get("metadata")?,
                recorded_at: row.try_get("recorded_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let state = match aggregate_type {
        "order" => fold::<domain::order::Order>(&events)?,
        "worker" => fold::<domain::worker::Worker>(&events)?,
        "customer" => fold::<domain::customer::Customer>(&events)?,
        "payment" => fold::<domain::payment::Payment>(&events)?,
        "wallet" => fold::<domain::wallet::Wallet>(&events)?,
        "commission_schedule" => fold::<domain::commission::CommissionSchedule>(&events)?,
        "interview" => fold::<domain::interview::Interview>(&events)?,
        "presence" => fold::<domain::activity::Presence>(&events)?,
        _ => return Ok(None),
    };
    Ok(Some(ReplayedState {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        sequence: events.last().map_or(0, |event| event.sequence),
        recorded_at: events.last().map(|event| event.recorded_at),
        state,
    }))
}

/// The global log's filters.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub actor_id: Option<Uuid>,
    pub aggregate_type: Option<String>,
    pub event_type: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Keyset: only events before this position (the previous page's last).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// The global log, newest first.
pub async fn log(pool: &PgPool, filter: &LogFilter) -> anyhow::Result<Vec<AuditEvent>> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
          WHERE ($1::text IS NULL OR metadata ->> 'actor_id' = $1)
            AND ($2::text IS NULL OR aggregate_type = $2)
            AND ($3::text IS NULL OR event_type = $3)
            AND ($4::timestamptz IS NULL OR recorded_at >= $4)
            AND ($5::timestamptz IS NULL OR recorded_at < $5)
            AND ($6::bigint IS NULL OR position < $6)
          ORDER BY position DESC LIMIT $7"
    ))
    .bind(filter.actor_id.map(|id| id.to_string()))
    .bind(&filter.aggregate_type)
    .bind(&filter.event_type)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.before)
    .bind(filter.limit.unwrap_or(100).clamp(1, 500))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(audit_event).collect::<Result<_, _>>()?)
}

/// What an event's hash covers, besides its predecessor's hash.
pub struct Hashed<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    /// Exactly as stored.
    pub payload: &'a str,
    pub metadata: &'a str,
}

/// The hash of one event, as the database's `event_hash` defines it.
pub fn event_hash(previous: &[u8], event: &Hashed<'_>) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    for part in [event.aggregate_type, event.aggregate_id] {
        hasher.update(Sha256::digest(part.as_bytes()));
    }
    hasher.update(event.sequence.to_be_bytes());
    for part in [
        event.event_type,
        event.event_version,
        event.payload,
        event.metadata,
    ] {
        hasher.update(Sha256::digest(part.as_bytes()));
    }
    hasher.finalize().to_vec()
}

/// One thing verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainProblem {
    /// `altered`, `relinked`, `missing`, `rewritten` or `out_of_order`.
    pub kind: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub detail: String,
}

/// One verification run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub run_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub streams: i64,
    pub events: i64,
    pub ok: bool,
    pub problems: Vec<ChainProblem>,
}

struct Head {
    sequence: i64,
    hash: Vec<u8>,
}

/// Where the walk of one stream stands.
struct Walk {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    hash: Vec<u8>,
    position: i64,
    sound: bool,
}

type Key = (String, String);

/// Ends one stream's walk: a stream shorter than its verified head lost events; a sound one's
/// head moves.
fn finish(
    walk: Option<Walk>,
    problems: &mut Vec<ChainProblem>,
    known: &mut HashMap<Key, Head>,
    sound: &mut Vec<(String, String, i64, Vec<u8>)>,
) {
    let Some(mut walk) = walk else {
        return;
    };
    if let Some(head) = known.remove(&(walk.aggregate_type.clone(), walk.aggregate_id.clone())) {
        if walk.sequence < head.sequence {
            walk.sound = false;
            problems.push(ChainProblem {
                kind: "missing".into(),
                aggregate_type: walk.aggregate_type.clone(),
                aggregate_id: walk.aggregate_id.clone(),
                sequence: walk.sequence + 1,
                detail: format!(
                    "the stream ends at {}, but {} events were verified before",
                    walk.sequence, head.sequence
                ),
            });
        }
    }
    if walk.sound {
        sound.push((
            walk.aggregate_type,
            walk.aggregate_id,
            walk.sequence,
            walk.hash,
        ));
    }
}

/// Walks every stream's chain, compares each stream with its head as last verified, records the
/// run and moves the heads of the streams found sound.
pub async fn verify(pool: &PgPool) -> anyhow::Result<Verification> {
    let started_at = Utc::now();
    let mut known: HashMap<Key, Head> = HashMap::new();
    let mut heads = sqlx::query(
        "SELECT aggregate_type, aggregate_id, last_sequence, last_hash FROM audit_stream_heads",
    )
    .fetch(pool);
    while let Some(row) = heads.try_next().await? {
        known.insert(
            (row.try_get("aggregate_type")?, row.try_get("aggregate_id")?),
            Head {
                sequence: row.try_get("last_sequence")?,
                hash: row.try_get("last_hash")?,
            },
        );
    }
    drop(heads);

    let mut problems = Vec::new();
    let mut sound: Vec<(String, String, i64, Vec<u8>)> = Vec::new();
    let mut streams = 0i64;
    let mut events = 0i64;
    let mut rows = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload::text AS payload, metadata::text AS metadata, prev_hash, hash, position
           FROM events ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .fetch(pool);
    // The stream being walked.
    let mut current: Option<Walk> = None;
    // Heads verified earlier whose later events must still chain to them.
    let mut pending_head_checks: HashMap<Key, (i64, Vec<u8>)> = known
        .iter()
        .map(|(key, head)| (key.clone(), (head.sequence, head.hash.clone())))
        .collect();
    while let Some(row) = rows.try_next().await? {
        events += 1;
        let aggregate_type: String = row.try_get("aggregate_type")?;
        let aggregate_id: String = row.try_get("aggregate_id")?;
        let sequence: i64 = row.try_get("sequence")?;
        let prev_hash: Vec<u8> = row.try_get("prev_hash")?;
        let hash: Vec<u8> = row.try_get("hash")?;
        let position: i64 = row.try_get("position")?;
        let same_stream = current.as_ref().is_some_and(|walk| {
            walk.aggregate_type == aggregate_type && walk.aggregate_id == aggregate_id
        });
        if !same_stream {
            finish(current.take(), &mut problems, &mut known, &mut sound);
            streams += 1;
            current = Some(Walk {
                aggregate_type: aggregate_type.clone(),
                aggregate_id: aggregate_id.clone(),
                sequence: 0,
                hash: Vec::new(),
                position: i64::MIN,
                sound: true,
            });
        }
        let stream = current.as_mut().expect("a stream");
        let problem = |kind: &str, detail: String| ChainProblem {
            kind: kind.into(),
            aggregate_type: aggregate_type.clone(),
            aggregate_id: aggregate_id.clone(),
            sequence,
            detail,
        };
        if sequence != stream.sequence + 1 {
            problems.push(problem(
                "missing",
                format!(
                    "events {} to {} are missing",
                    stream.sequence + 1,
                    sequence - 1
                ),
            ));
            stream.sound = false;
        } else if prev_hash != stream.hash {
            problems.push(problem(
                "relinked",
                "the event does not point at its predecessor's hash".into(),
            ));
            stream.sound = false;
        }
        let recomputed = event_hash(
            &prev_hash,
            &Hashed {
                aggregate_type: &aggregate_type,
                aggregate_id: &aggregate_id,
                sequence,
                event_type: &row.try_get::<String, _>("event_type")?,
                event_version: &row.try_get::<String, _>("event_version")?,
                payload: &row.try_get::<String, _>("payload")?,
                metadata: &row.try_get::<String, _>("metadata")?,
            },
        );
        if recomputed != hash {
            problems.push(problem(
                "altered",
                "the event's contents do not match its hash".into(),
            ));
            stream.sound = false;
        }
        if position < stream.position {
            problems.push(problem(
                "out_of_order",
                "recorded before the event it follows".into(),
            ));
            stream.sound = false;
        }
        if let Some((head_sequence, head_hash)) =
            pending_head_checks.get(&(aggregate_type.clone(), aggregate_id.clone()))
        {
            if sequence == *head_sequence && hash != *head_hash {
                problems.push(problem(
                    "rewritten",
                    "the event verified last time now has another hash".into(),
                ));
                stream.sound = false;
                pending_head_checks.remove(&(aggregate_type.clone(), aggregate_id.clone()));
            }
        }
        stream.sequence = sequence;
        stream.hash = hash;
        stream.position = position;
    }
    drop(rows);
    finish(current.take(), &mut problems, &mut known, &mut sound);
    // Streams verified before that have no events at all now.
    for ((aggregate_type, aggregate_id), head) in known {
        problems.push(ChainProblem {
            kind: "missing".into(),
            aggregate_type,
            aggregate_id,
            sequence: 1,
            detail: format!("all {} verified events are gone", head.sequence),
        });
    }
    problems.dedup();
    let verification = Verification {
        run_id: Uuid::now_v7(),
        started_at,
        finished_at: Utc::now(),
        streams,
        events,
        ok: problems.is_empty(),
        problems,
    };
    let mut transaction = pool.begin().await?;
    for chunk in sound.chunks(1_000) {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO audit_stream_heads (aggregate_type, aggregate_id, last_sequence, last_hash) ",
        );
        insert.push_values(
            chunk,
            |mut row, (aggregate_type, aggregate_id, sequence, hash)| {
                row.push_bind(aggregate_type)
                    .push_bind(aggregate_id)
                    .push_bind(sequence)
                    .push_bind(hash);
            },
        );
        insert.push(
            " ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
              SET last_sequence = EXCLUDED.last_sequence, last_hash = EXCLUDED.last_hash",
        );
        insert.build().execute(&mut *transaction).await?;
    }
    sqlx::query(
        "INSERT INTO audit_verifications (run_id, started_at, finished_at, streams, events, problems, ok)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(verification.run_id)
    .bind(verification.started_at)
    .bind(verification.finished_at)
    .bind(verification.streams)
    .bind(verification.events)
    .bind(serde_json::to_value(&verification.problems)?)
    .bind(verification.ok)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    if !verification.ok {
        tracing::error!(
            problems = verification.problems.len(),
            "the audit verification found problems in the event log"
        );
    }
    Ok(verification)
}

/// The latest verification, if any ran.
pub async fn latest_verification(pool: &PgPool) -> anyhow::Result<Option<Verification>> {
    let row = sqlx::query(
        "SELECT run_id, started_at, finished_at, streams, events, problems, ok
           FROM audit_verifications ORDER BY finished_at DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Verification {
        run_id: row.try_get("run_id")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        streams: row.try_get("streams")?,
        events: row.try_get("events")?,
        ok: row.try_get("ok")?,
        problems: serde_json::from_value(row.try_get("problems")?)?,
    }))
}

/// One line of an export: everything another system needs to replay or re-verify the event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The payload and metadata exactly as stored (their hashes cover this text).
    pub payload: String,
    pub metadata: String,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

/// Writes every event recorded in `[from, to)` as JSON Lines, in commit order. Returns how
/// many were written.
pub async fn export(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut rows = sqlx::query(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload::text AS payload, metadata::text AS metadata, recorded_at, prev_hash, hash
           FROM events WHERE recorded_at >= $1 AND recorded_at < $2
          ORDER BY transaction_id, position",
    )
    .bind(from)
    .bind(to)
    .fetch(pool);
    let mut written = 0;
    while let Some(row) = rows.try_next().await? {
        let line = ExportedEvent {
            position: row.try_get("position")?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
            recorded_at: row.try_get("recorded_at")?,
            prev_hash: hex::encode(row.try_get::<Vec<u8>, _>("prev_hash")?),
            hash: hex::encode(row.try_get::<Vec<u8>, _>("hash")?),
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}
