//! Executing commands against the event store, with the metadata every event carries.
//!
//! This is cqrs-es's `CqrsFramework::execute_with_metadata` without inline queries (read models
//! are fed only by the log-following projectors) and returning what was committed, so a
//! response can show the state the command produced. The events go in with one statement that
//! answers where they landed; postgres-es's repository is not used on this path because it
//! opens a transaction of its own, and a request's writes share one (see [`Unit`]).
//!
//! A request that carries an idempotency key runs inside a [`Unit`]: one transaction that every
//! command of the request appends to and that commits once, with the key's claim and the stored
//! answer. The HTTP layer starts it lazy: a request that writes one command sends it with the
//! claim and the answer as one statement at the end ([`Waiting::finish`]), and begins nothing
//! before. Before the request reaches outside (a payment provider,
//! the bank, a background check, a text message), [`flush`] claims the key and commits what it
//! has written so far, so nothing outside ever acts on an intent that could still be rolled
//! back. Work that no caller's key names (a provider's notification, a job's step) runs in a
//! unit of its own with [`atomically`]; [`write`] puts a plain statement (a notification for a
//! person, a log row) in the current unit, so it stands or falls with the unit's events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope};
use domain::Actor;
use projections::log::Checkpoint;
use sqlx::postgres::PgRow;
use sqlx::{Acquire, PgConnection, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

pub struct CommandBus<A: Aggregate> {
    pool: PgPool,
    upcaster: domain::upcast::Upcaster,
    /// Told the id of each stream this bus wrote to, once the write has committed.
    on_commit: Option<Arc<dyn Fn(Uuid) + Send + Sync>>,
    aggregate: std::marker::PhantomData<fn() -> A>,
}

/// What a successful command committed.
pub struct Committed<A> {
    /// The aggregate's state after the command.
    pub state: A,
    /// The sequence number of its last event (its version).
    pub version: usize,
    pub events: usize,
}

type Failure<A> = AggregateError<<A as Aggregate>::Error>;

/// What a command is decided on: the stream as read, or (for a new stream) nothing.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    Read,
    Empty,
}

/// A command decided as a new stream's found the stream there: nothing was appended.
#[derive(Debug, thiserror::Error)]
#[error("the stream exists")]
struct StreamExists;

fn database<E: std::error::Error>(error: sqlx::Error) -> AggregateError<E> {
    match &error {
        // The stream's primary key: another writer appended at this sequence first.
        sqlx::Error::Database(database) if database.code().as_deref() == Some("23505") => {
            AggregateError::AggregateConflict
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            AggregateError::DatabaseConnectionError(Box::new(error))
        }
        _ => AggregateError::UnexpectedError(Box::new(error)),
    }
}

/// Counts a command by how it ended.
fn count<A: Aggregate>(outcome: &Result<Committed<A>, Failure<A>>) {
    let label = match outcome {
        Ok(_) => "committed",
        Err(AggregateError::UserError(_)) => "refused",
        Err(AggregateError::AggregateConflict) => "conflict",
        Err(_) => "failed",
    };
    crate::telemetry::count_command(A::TYPE, label);
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + Clone,
{
    pub fn new(pool: PgPool) -> Self {
        CommandBus {
            pool,
            upcaster: domain::upcast::Upcaster,
            on_commit: None,
            aggregate: std::marker::PhantomData,
        }
    }

    /// Calls `hook` with a stream's id when a write to it has committed (for a request's unit
    /// of work, when the unit commits; never for one rolled back): for what this process keeps
    /// of the stream in memory, so that a request's next request reads its own writes.
    pub fn on_commit(mut self, hook: impl Fn(Uuid) + Send + Sync + 'static) -> Self {
        self.on_commit = Some(Arc::new(hook));
        self
    }

    fn committed_later(&self, unit: &Unit, aggregate_id: Uuid) {
        if let Some(hook) = &self.on_commit {
            let hook = hook.clone();
            unit.after_commit(Box::new(move || hook(aggregate_id)));
        }
    }

    /// Loads the current state of one aggregate: inside the request's unit of work when there
    /// is one, so a request sees what it has written itself.
    pub async fn load(&self, aggregate_id: Uuid) -> Result<(A, usize), Failure<A>> {
        let id = aggregate_id.to_string();
        if let Some(unit) = Unit::current() {
            let mut state = unit.state.lock().await;
            if matches!(
                &*state,
                UnitState::Lazy(Waiting {
                    append: Some(_),
                    ..
                })
            ) {
                unit.materialize(&mut state).await;
            }
            if let UnitState::Open(transaction) = &mut *state {
                return self.read(transaction, &id).await;
            }
        }
        let mut connection = self.pool.acquire().await.map_err(database)?;
        self.read(&mut connection, &id).await
    }

    /// Loads the state as committed, outside any request's unit of work.
    pub async fn load_committed(&self, aggregate_id: Uuid) -> Result<(A, usize), Failure<A>> {
        let mut connection = self.pool.acquire().await.map_err(database)?;
        self.read(&mut connection, &aggregate_id.to_string()).await
    }

    /// The stream's events, brought to today's shapes and applied in order.
    async fn read(
        &self,
        connection: &mut PgConnection,
        id: &str,
    ) -> Result<(A, usize), Failure<A>> {
        let rows = sqlx::query(
            "SELECT event_type, event_version, payload, metadata, sequence FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(A::TYPE)
        .bind(id)
        .fetch_all(connection)
        .await
        .map_err(database)?;
        let mut aggregate = A::default();
        let mut version = 0;
        for row in rows {
            let (event, sequence) = self.decode(id, &row)?;
            aggregate.apply(event);
            version = sequence;
        }
        Ok((aggregate, version))
    }

    fn decode(&self, id: &str, row: &PgRow) -> Result<(A::Event, usize), Failure<A>> {
        let sequence: i64 = row.get("sequence");
        let mut event = SerializedEvent {
            aggregate_id: id.to_owned(),
            sequence: sequence as usize,
            aggregate_type: A::TYPE.to_owned(),
            event_type: row.get("event_type"),
            event_version: row.get("event_version"),
            payload: row.get("payload"),
            metadata: row.get("metadata"),
        };
        if self
            .upcaster
            .can_upcast(&event.event_type, &event.event_version)
        {
            event = self.upcaster.upcast(event);
        }
        let envelope = EventEnvelope::<A>::try_from(event)
            .map_err(|error| AggregateError::DeserializationError(Box::new(error)))?;
        Ok((envelope.payload, envelope.sequence))
    }

    #[tracing::instrument(name = "command", skip_all, fields(aggregate = A::TYPE, aggregate_id = %aggregate_id))]
    pub async fn execute(
        &self,
        aggregate_id: Uuid,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Committed<A>, Failure<A>> {
        let outcome = self
            .decide_and_commit(aggregate_id, command, context, false)
            .await;
        count(&outcome);
        outcome
    }

    async fn decide_and_commit(
        &self,
        aggregate_id: Uuid,
        command: A::Command,
        context: &CommandContext,
        may_decide_again: bool,
    ) -> Result<Committed<A>, Failure<A>> {
        self.decide_and_commit_from(
            aggregate_id,
            command,
            context,
            may_decide_again,
            Start::Read,
        )
        .await
    }

    async fn decide_and_commit_from(
        &self,
        aggregate_id: Uuid,
        command: A::Command,
        context: &CommandContext,
        may_decide_again: bool,
        start: Start,
    ) -> Result<Committed<A>, Failure<A>> {
        let id = aggregate_id.to_string();
        if let Some(unit) = Unit::current() {
            let mut state = unit.state.lock().await;
            if let UnitState::Lazy(Waiting {
                append: pending, ..
            }) = &mut *state
            {
                if pending.is_none() && !may_decide_again {
                    // Nothing written yet: decided on the stream as committed, and appended
                    // with the key's claim at the end, in one statement.
                    let mut connection = self.pool.acquire().await.map_err(database)?;
                    let (committed, append) = self
                        .decide(&mut connection, &id, command, context, start)
                        .await?;
                    if let Some(append) = append {
                        *pending = Some(append);
                        self.committed_later(&unit, aggregate_id);
                    }
                    return Ok(committed);
                }
                unit.materialize(&mut state).await;
            }
            if let UnitState::Open(transaction) = &mut *state {
                // A command that may be decided again after a conflict appends under a
                // savepoint, so that losing the race leaves the request's transaction usable.
                let outcome = if may_decide_again {
                    let mut savepoint = transaction.begin().await.map_err(database)?;
                    let outcome = self
                        .decide_and_append(&mut savepoint, &id, command, context, start)
                        .await;
                    match outcome {
                        Ok(committed) => savepoint
                            .commit()
                            .await
                            .map(|()| committed)
                            .map_err(database),
                        Err(error) => {
                            savepoint.rollback().await.map_err(database)?;
                            Err(error)
                        }
                    }
                } else {
                    self.decide_and_append(transaction, &id, command, context, start)
                        .await
                };
                if matches!(&outcome, Ok(committed) if committed.events > 0) {
                    self.committed_later(&unit, aggregate_id);
                }
                let stream_exists = matches!(&outcome,
                    Err(AggregateError::UnexpectedError(error)) if error.is::<StreamExists>());
                if matches!(
                    outcome,
                    Err(AggregateError::AggregateConflict
                        | AggregateError::DatabaseConnectionError(_)
                        | AggregateError::UnexpectedError(_))
                ) && !may_decide_again
                    && !stream_exists
                {
                    // The transaction is aborted: nothing more of this request may commit.
                    *state = UnitState::Failed;
                }
                return outcome;
            }
            if matches!(&*state, UnitState::Failed | UnitState::Surprised) {
                // The request's transaction is gone: what follows must not commit alone, as
                // if what came before had stood.
                return Err(AggregateError::AggregateConflict);
            }
        }
        // Alone: the events go in with one statement, which is its own transaction.
        let mut connection = self.pool.acquire().await.map_err(database)?;
        let outcome = self
            .decide_and_append(&mut connection, &id, command, context, start)
            .await;
        if matches!(&outcome, Ok(committed) if committed.events > 0) {
            projections::log::committed();
            if let Some(hook) = &self.on_commit {
                hook(aggregate_id);
            }
        }
        outcome
    }

    async fn decide_and_append(
        &self,
        connection: &mut PgConnection,
        id: &str,
        command: A::Command,
        context: &CommandContext,
        start: Start,
    ) -> Result<Committed<A>, Failure<A>> {
        let (committed, append) = self.decide(connection, id, command, context, start).await?;
        if let Some(append) = append {
            append.run(connection).await.map_err(|error| match error {
                Appended::Failed(error) => database(error),
                Appended::StreamExists => AggregateError::UnexpectedError(Box::new(StreamExists)),
            })?;
        }
        Ok(committed)
    }

    /// Decides `command` on the stream (read through `connection`, or empty): the state it
    /// leads to, and the events to append, if any.
    async fn decide(
        &self,
        connection: &mut PgConnection,
        id: &str,
        command: A::Command,
        context: &CommandContext,
        start: Start,
    ) -> Result<(Committed<A>, Option<Append>), Failure<A>> {
        let (mut state, version) = match start {
            Start::Read => self.read(connection, id).await?,
            Start::Empty => (A::default(), 0),
        };
        // The sink applies each event to the state as the aggregate writes it.
        let sink: EventSink<A> = EventSink::default();
        state
            .handle(command, &(), &sink)
            .await
            .map_err(AggregateError::UserError)?;
        let events = sink.collect().await;
        if events.is_empty() {
            return Ok((
                Committed {
                    state,
                    version,
                    events: 0,
                },
                None,
            ));
        }
        let metadata = serde_json::to_value(context.metadata())
            .map_err(|error| AggregateError::UnexpectedError(Box::new(error)))?;
        let mut append = Append {
            aggregate_type: A::TYPE,
            aggregate_id: id.to_owned(),
            sequences: Vec::with_capacity(events.len()),
            types: Vec::with_capacity(events.len()),
            versions: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
            metadata,
            new_stream: start == Start::Empty,
            written: context.written.clone(),
        };
        for (offset, event) in events.iter().enumerate() {
            append.sequences.push((version + 1 + offset) as i64);
            append.types.push(event.event_type());
            append.versions.push(event.event_version());
            append.payloads.push(
                serde_json::to_value(event)
                    .map_err(|error| AggregateError::UnexpectedError(Box::new(error)))?,
            );
        }
        let count = events.len();
        Ok((
            Committed {
                state,
                version: version + count,
                events: count,
            },
            Some(append),
        ))
    }
}

/// One command's events, decided and not yet in the log.
pub struct Append {
    aggregate_type: &'static str,
    aggregate_id: String,
    sequences: Vec<i64>,
    types: Vec<String>,
    versions: Vec<String>,
    payloads: Vec<serde_json::Value>,
    metadata: serde_json::Value,
    /// Decided on the empty state: appended only if the stream is still empty.
    new_stream: bool,
    /// Told where the events landed.
    written: Written,
}

/// Why an append did not land.
enum Appended {
    Failed(sqlx::Error),
    StreamExists,
}

/// The statement that appends a command's events: the rows go in in the order given, so each
/// one's hash covers the one before it. `$8`: only into an empty stream.
macro_rules! append_events {
    () => {
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT $1, $2, appended.sequence, appended.event_type, appended.event_version, appended.payload::json, $7::jsonb::json
           FROM unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[])
                WITH ORDINALITY AS appended (sequence, event_type, event_version, payload, place)
          WHERE NOT $8 OR NOT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2)
          ORDER BY appended.place
         RETURNING transaction_id::text, position"
    };
}
const APPEND: &str = append_events!();

/// A key's claim meeting another: taken over only when that one was abandoned (no answer after
/// five minutes, the same request).
macro_rules! claim_conflict {
    () => {
        "ON CONFLICT (caller, key) DO UPDATE SET created_at = now(), status = EXCLUDED.status,
                response_body = EXCLUDED.response_body, content_type = EXCLUDED.content_type,
                location = EXCLUDED.location, log_position = EXCLUDED.log_position,
                completed_at = EXCLUDED.completed_at
            WHERE idempotency.status IS NULL AND idempotency.created_at < now() - interval '5 minutes'
              AND idempotency.request_hash = EXCLUDED.request_hash"
    };
}

/// A lazy unit's one statement: its command's events, then the key's claim with the answer and
/// the place the events landed. Should the stream have moved on (23505), the new stream be
/// there already (AJ002) or the key be someone else's (AJ001), the statement fails whole.
const FINISH: &str = concat!(
    "WITH appended AS (",
    append_events!(),
    "), claimed AS (
         INSERT INTO idempotency (caller, key, method, route, request_hash, status, response_body,
                                  content_type, location, log_position, completed_at)
         SELECT $9, $10, $11, $12, $13, $14, $15, $16, $17,
                COALESCE($18, (SELECT a.transaction_id || '-' || a.position FROM appended a
                                ORDER BY a.position DESC LIMIT 1)),
                now()
         ",
    claim_conflict!(),
    "
         RETURNING 1)
     SELECT (SELECT a.transaction_id FROM appended a ORDER BY a.position DESC LIMIT 1),
            (SELECT max(a.position) FROM appended a)
      WHERE anjia_require((SELECT count(*) FROM appended) = $19, 'AJ002')
        AND anjia_require((SELECT count(*) FROM claimed) = 1, 'AJ001')"
);

impl Append {
    fn bind<'q>(
        &'q self,
        statement: &'q str,
    ) -> sqlx::query::QueryAs<'q, Postgres, (String, i64), sqlx::postgres::PgArguments> {
        sqlx::query_as(statement)
            .bind(self.aggregate_type)
            .bind(&self.aggregate_id)
            .bind(&self.sequences)
            .bind(&self.types)
            .bind(&self.versions)
            .bind(&self.payloads)
            .bind(&self.metadata)
            .bind(self.new_stream)
    }

    /// Appends the events with one statement, and tells `written` where they landed.
    async fn run(&self, connection: &mut PgConnection) -> Result<(), Appended> {
        let landed: Vec<(String, i64)> = self
            .bind(APPEND)
            .fetch_all(&mut *connection)
            .await
            .map_err(Appended::Failed)?;
        if landed.is_empty() {
            return Err(Appended::StreamExists);
        }
        self.landed(&landed);
        Ok(())
    }

    /// Tells `written` where the last of the events landed, and answers it.
    fn landed(&self, landed: &[(String, i64)]) -> Option<Checkpoint> {
        let (transaction_id, position) = landed.iter().max_by_key(|(_, position)| *position)?;
        let checkpoint = Checkpoint {
            transaction_id: transaction_id.parse().ok()?,
            position: *position,
        };
        self.written.record(checkpoint);
        Some(checkpoint)
    }
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + Clone,
    A::Command: Clone,
{
    /// Like `execute`, for a stream that should be new (its id made for the occasion, such as
    /// an order's from a fresh or a retry key): the command is decided on the empty state
    /// without reading the stream, and appended only if the stream is still empty. When it
    /// is not (a late retry of a key whose answer was purged), the command is decided again
    /// on the stream as it is, as `execute` would.
    #[tracing::instrument(name = "command", skip_all, fields(aggregate = A::TYPE, aggregate_id = %aggregate_id))]
    pub async fn execute_new(
        &self,
        aggregate_id: Uuid,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Committed<A>, Failure<A>> {
        let outcome = self
            .decide_and_commit_from(aggregate_id, command.clone(), context, false, Start::Empty)
            .await;
        let outcome = match outcome {
            Err(AggregateError::UnexpectedError(error)) if error.is::<StreamExists>() => {
                self.decide_and_commit(aggregate_id, command, context, false)
                    .await
            }
            outcome => outcome,
        };
        count(&outcome);
        outcome
    }

    /// Like `execute`, but when another writer got to the stream first the command is decided
    /// again on the new state (up to a few times). For commands whose answer should depend on
    /// who won, such as a grab: the loser then hears "already taken", not "try again".
    pub async fn execute_deciding_again(
        &self,
        aggregate_id: Uuid,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Committed<A>, Failure<A>> {
        let mut attempts = 0;
        loop {
            let outcome = self
                .decide_and_commit(aggregate_id, command.clone(), context, true)
                .await;
            count(&outcome);
            match outcome {
                Err(AggregateError::AggregateConflict) if attempts < 5 => attempts += 1,
                outcome => return outcome,
            }
        }
    }
}

/// One request's writes: a transaction that its commands append to, committed once, with the
/// idempotency key's claim and the stored answer in one statement at the end. The claim goes in
/// last so that the transaction takes its id (which holds back every reader of the log until it
/// ends) only for the moment between its first write and its commit, not for the whole request;
/// a lazy unit ([`Unit::lazy`]) holds it for one statement only.
pub struct Unit {
    /// The key the request claims; none for a unit of [`atomically`].
    claim: Option<Claim>,
    state: tokio::sync::Mutex<UnitState>,
    /// What to tell once the unit's writes have committed.
    after_commit: std::sync::Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

/// The idempotency key a request claims, and the request it was first sent with.
#[derive(Clone)]
pub struct Claim {
    /// The caller's user id, or `anonymous:<address>`.
    pub caller: String,
    pub key: String,
    pub method: String,
    pub route: String,
    /// SHA-256 of the method, path and body: a key sent again with another body is refused.
    pub request_hash: Vec<u8>,
}

/// What is kept of an answer for its replays.
pub struct Answer<'a> {
    pub status: i16,
    pub body: &'a [u8],
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub log_position: Option<String>,
}

impl Claim {
    /// Claims the key, with the answer when it is known (a claim without one is in progress).
    /// Waits while another transaction holds an uncommitted claim on the key; false when the
    /// key is someone else's. A claim older than five minutes with no answer is taken to be
    /// abandoned (its process died after a flush) and is taken over; the command ids derived
    /// from the key keep a re-run safe.
    pub async fn take(
        &self,
        connection: &mut PgConnection,
        answer: Option<&Answer<'_>>,
    ) -> sqlx::Result<bool> {
        let taken = sqlx::query(concat!(
            "INSERT INTO idempotency (caller, key, method, route, request_hash, status, response_body,
                                      content_type, location, log_position, completed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $6 IS NULL THEN NULL ELSE now() END)
             ",
            claim_conflict!(),
            "
             RETURNING 1"
        ))
        .bind(&self.caller)
        .bind(&self.key)
        .bind(&self.method)
        .bind(&self.route)
        .bind(&self.request_hash)
        .bind(answer.map(|answer| answer.status))
        .bind(answer.map(|answer| answer.body))
        .bind(answer.and_then(|answer| answer.content_type.as_deref()))
        .bind(answer.and_then(|answer| answer.location.as_deref()))
        .bind(answer.and_then(|answer| answer.log_position.as_deref()))
        .fetch_optional(connection)
        .await?;
        Ok(taken.is_some())
    }

    /// Stores the answer on a claim taken earlier (by a flush).
    pub async fn answer(&self, pool: &PgPool, answer: &Answer<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE idempotency SET status = $3, response_body = $4, content_type = $5, location = $6,
                    log_position = $7, completed_at = now()
              WHERE caller = $1 AND key = $2",
        )
        .bind(&self.caller)
        .bind(&self.key)
        .bind(answer.status)
        .bind(answer.body)
        .bind(answer.content_type.as_deref())
        .bind(answer.location.as_deref())
        .bind(answer.log_position.as_deref())
        .execute(pool)
        .await
        .map(drop)
    }

    /// Gives up a claim taken earlier (by a flush) whose request then failed, so a retry runs.
    pub async fn release(&self, pool: &PgPool) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM idempotency WHERE caller = $1 AND key = $2 AND status IS NULL")
            .bind(&self.caller)
            .bind(&self.key)
            .execute(pool)
            .await
            .map(drop)
    }
}

enum UnitState {
    /// No transaction yet: what is read is read as committed, and the one command decided so
    /// far waits to be appended, with the key's claim, in one statement at the end (no
    /// `BEGIN`, no `COMMIT`, and a transaction id held for that statement only). Anything
    /// more (a second command, a read of what it wrote, a plain write, a flush) begins the
    /// transaction and appends it first.
    Lazy(Waiting),
    /// Writes so far are in this transaction, not yet committed; the key is not claimed yet.
    Open(Transaction<'static, Postgres>),
    /// [`flush`] claimed the key and committed; the request's later commands commit alone.
    Flushed,
    /// [`flush`] found the key claimed by another request: this one's work was rolled back.
    Taken,
    /// A statement failed inside the transaction, which the database has therefore aborted.
    Failed,
    /// A lazy unit could not begin its transaction with its waiting command (another writer
    /// got to the stream first, a new stream was there, or the database failed): nothing of
    /// it stands, and the request is to be run again eagerly.
    Surprised,
    /// Finished by the HTTP layer.
    Done,
}

/// A lazy unit's state: where it begins its transaction when it needs one, and the one
/// command decided so far, waiting.
pub struct Waiting {
    pool: PgPool,
    append: Option<Append>,
}

impl Waiting {
    /// Ends a lazy unit: its waiting command's events, the key's claim and the answer in one
    /// statement, which is its own transaction (one round trip, one commit). Without events,
    /// the claim alone. Once it has committed, the caller tells the unit ([`Unit::committed`]).
    pub async fn finish(self, claim: &Claim, answer: &Answer<'_>) -> sqlx::Result<Finished> {
        let mut connection = self.pool.acquire().await?;
        let Some(append) = self.append else {
            return Ok(if claim.take(&mut connection, Some(answer)).await? {
                Finished::Committed(None)
            } else {
                Finished::Taken
            });
        };
        let outcome = append
            .bind(FINISH)
            .bind(&claim.caller)
            .bind(&claim.key)
            .bind(&claim.method)
            .bind(&claim.route)
            .bind(&claim.request_hash)
            .bind(answer.status)
            .bind(answer.body)
            .bind(answer.content_type.as_deref())
            .bind(answer.location.as_deref())
            .bind(answer.log_position.as_deref())
            .bind(append.sequences.len() as i64)
            .fetch_optional(&mut *connection)
            .await;
        match outcome {
            Ok(Some(landed)) => Ok(Finished::Committed(append.landed(&[landed]))),
            Ok(None) => Ok(Finished::Surprised),
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("AJ001") => {
                Ok(Finished::Taken)
            }
            // The stream moved on, or a new stream was there: the decision no longer holds.
            Err(sqlx::Error::Database(error))
                if matches!(error.code().as_deref(), Some("AJ002" | "23505")) =>
            {
                Ok(Finished::Surprised)
            }
            Err(error) => Err(error),
        }
    }
}

/// How [`Waiting::finish`] ended.
pub enum Finished {
    /// Committed; where its events landed, if it had any.
    Committed(Option<Checkpoint>),
    /// Another request holds the key: nothing of this one was written.
    Taken,
    /// The command's decision no longer held (see [`UnitEnd::Surprised`]).
    Surprised,
}

/// How a unit ended, for the layer that began it.
pub enum UnitEnd {
    /// Lazy to the end: nothing begun, at most one command's events waiting. The caller
    /// appends them with the claim and the answer ([`Waiting::finish`]).
    Lazy(Waiting),
    /// A lazy unit found, beginning its transaction, that its command's decision no longer
    /// held: nothing of it stands, and the request is to be run again in an eager unit.
    Surprised,
    /// Still open and unclaimed: the caller claims the key with the answer and commits (or
    /// rolls it back).
    Open(Transaction<'static, Postgres>),
    /// Claimed and committed part-way by [`flush`]: what follows committed alone.
    Flushed,
    /// Another request holds the key; this one's writes were rolled back.
    Taken,
    /// Aborted by a failed statement: nothing of it may be reported as saved.
    Failed,
}

tokio::task_local! {
    static UNIT: Arc<Unit>;
}

impl Unit {
    pub fn new(transaction: Transaction<'static, Postgres>, claim: Claim) -> Arc<Unit> {
        Self::begun(transaction, Some(claim))
    }

    fn begun(transaction: Transaction<'static, Postgres>, claim: Option<Claim>) -> Arc<Unit> {
        Self::with(UnitState::Open(transaction), claim)
    }

    /// A request's unit that begins no transaction until it needs one (see
    /// `UnitState::Lazy`); `pool` is where it begins it.
    pub fn lazy(pool: PgPool, claim: Claim) -> Arc<Unit> {
        Self::with(UnitState::Lazy(Waiting { pool, append: None }), Some(claim))
    }

    fn with(state: UnitState, claim: Option<Claim>) -> Arc<Unit> {
        Arc::new(Unit {
            claim,
            state: tokio::sync::Mutex::new(state),
            after_commit: std::sync::Mutex::default(),
        })
    }

    /// Begins a lazy unit's transaction and appends its waiting command. When that fails the
    /// unit is spent (nothing of it may commit) and marked to be run again eagerly.
    async fn materialize(&self, state: &mut UnitState) {
        let UnitState::Lazy(waiting) = state else {
            return;
        };
        let (pool, append) = (waiting.pool.clone(), waiting.append.take());
        *state = UnitState::Surprised;
        // When the transaction cannot begin, the eager run begins its own and says what the
        // database answered.
        let Ok(mut transaction) = pool.begin().await else {
            return;
        };
        if let Some(append) = append {
            // A new stream found there already is a surprise too.
            if let Err(failure) = append.run(&mut transaction).await {
                if let Appended::Failed(error) = failure {
                    tracing::debug!(error = %error, "a lazy unit's append failed as its transaction began");
                }
                return;
            }
        }
        *state = UnitState::Open(transaction);
    }

    fn after_commit(&self, hook: Box<dyn FnOnce() + Send>) {
        self.after_commit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(hook);
    }

    /// The layer that began the unit committed it: tells those waiting for its writes.
    pub fn committed(&self) {
        projections::log::committed();
        let hooks = std::mem::take(
            &mut *self
                .after_commit
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for hook in hooks {
            hook();
        }
    }

    /// Runs `work` (a request's handler) with this unit as its commands' transaction.
    pub async fn run<F: std::future::Future>(self: &Arc<Self>, work: F) -> F::Output {
        UNIT.scope(self.clone(), work).await
    }

    fn current() -> Option<Arc<Unit>> {
        UNIT.try_with(Arc::clone).ok()
    }

    /// Takes the transaction back once the request's work is over.
    pub async fn end(&self) -> UnitEnd {
        let mut state = self.state.lock().await;
        match std::mem::replace(&mut *state, UnitState::Done) {
            UnitState::Surprised => UnitEnd::Surprised,
            UnitState::Lazy(waiting) => UnitEnd::Lazy(waiting),
            UnitState::Open(transaction) => UnitEnd::Open(transaction),
            UnitState::Flushed => UnitEnd::Flushed,
            UnitState::Taken => UnitEnd::Taken,
            UnitState::Failed | UnitState::Done => UnitEnd::Failed,
        }
    }
}

/// Claims the current request's key and commits what it has written so far, before it reaches
/// outside: a provider, a bank or a message must never act on an intent that could still be
/// rolled back. When another request holds the key, this one's work is rolled back and it is
/// refused (its caller hears the other's answer). Without a unit, or once flushed, it does
/// nothing.
pub async fn flush() -> Result<(), crate::error::Error> {
    let Some(unit) = Unit::current() else {
        return Ok(());
    };
    let mut state = unit.state.lock().await;
    unit.materialize(&mut state).await;
    match std::mem::replace(&mut *state, UnitState::Failed) {
        UnitState::Open(mut transaction) => {
            let taken = match &unit.claim {
                Some(claim) => claim.take(&mut transaction, None).await?,
                None => true,
            };
            if taken {
                transaction.commit().await?;
                *state = UnitState::Flushed;
                unit.committed();
                Ok(())
            } else {
                transaction.rollback().await?;
                *state = UnitState::Taken;
                Err(crate::error::Error::Conflict)
            }
        }
        UnitState::Failed | UnitState::Surprised => Err(crate::error::Error::Conflict),
        other => {
            *state = other;
            Ok(())
        }
    }
}

/// Runs `work` in a unit of its own, for work that no caller's key names: its commands' events
/// and what it writes through [`write`] commit together, once, when it succeeds; nothing of it
/// stands when it fails (or when a statement of it failed). A [`flush`] inside commits what
/// came before, as in a request. Inside a request's unit, `work` joins that one instead.
pub async fn atomically<T, E, F>(pool: &PgPool, work: F) -> Result<T, E>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: From<crate::error::Error>,
{
    if Unit::current().is_some() {
        return work.await;
    }
    let transaction = pool.begin().await.map_err(crate::error::Error::from)?;
    let unit = Unit::begun(transaction, None);
    let outcome = unit.run(work).await;
    match (unit.end().await, outcome) {
        (UnitEnd::Open(transaction), Ok(value)) => {
            transaction
                .commit()
                .await
                .map_err(crate::error::Error::from)?;
            unit.committed();
            Ok(value)
        }
        (UnitEnd::Flushed, Ok(value)) => Ok(value),
        // A statement failed, so the database rolled the transaction back: what `work`
        // answered cannot stand.
        // (A unit of its own is never lazy; the last two cannot happen.)
        (UnitEnd::Failed | UnitEnd::Taken | UnitEnd::Lazy(_) | UnitEnd::Surprised, Ok(_)) => {
            Err(crate::error::Error::Conflict.into())
        }
        (UnitEnd::Open(transaction), Err(error)) => {
            // Dropping it would roll back too, but only once the connection is next used.
            let _ = transaction.rollback().await;
            Err(error)
        }
        (_, Err(error)) => Err(error),
    }
}

/// Runs one statement that is not an event (a notification for a person, a log row) in the
/// current unit when it is open, so that it commits with the unit's events or not at all;
/// alone on `pool` otherwise.
pub async fn write(
    pool: &PgPool,
    statement: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
) -> Result<sqlx::postgres::PgQueryResult, crate::error::Error> {
    if let Some(unit) = Unit::current() {
        let mut state = unit.state.lock().await;
        unit.materialize(&mut state).await;
        match &mut *state {
            UnitState::Open(transaction) => {
                let outcome = statement.execute(&mut **transaction).await;
                if outcome.is_err() {
                    // The transaction is aborted: nothing more of this unit may commit.
                    *state = UnitState::Failed;
                }
                return Ok(outcome?);
            }
            // What follows must not commit alone, as if what came before had stood.
            UnitState::Failed | UnitState::Surprised => return Err(crate::error::Error::Conflict),
            _ => {}
        }
    }
    Ok(statement.execute(pool).await?)
}

/// Who, when, from where and why: the metadata written with every event of a command.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub command_id: Uuid,
    pub actor: Option<Actor>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub idempotency_key: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// Where this request's events were committed, for its answer's `Anjia-Position`.
    pub written: Written,
}

impl CommandContext {
    /// A context for work the platform does on its own (jobs, the CLI, benchmarks).
    pub fn system() -> Self {
        CommandContext {
            command_id: Uuid::now_v7(),
            actor: None,
            request_id: None,
            client_ip: None,
            user_agent: None,
            idempotency_key: None,
            occurred_at: Utc::now(),
            written: Written::default(),
        }
    }

    pub fn metadata(&self) -> HashMap<String, String> {
        let mut metadata = HashMap::new();
        metadata.insert("command_id".to_owned(), self.command_id.to_string());
        metadata.insert("occurred_at".to_owned(), self.occurred_at.to_rfc3339());
        let (actor_id, actor_role) = match self.actor {
            Some(actor) => (actor.id.to_string(), actor.role.as_str()),
            None => (String::new(), "system"),
        };
        metadata.insert("actor_id".to_owned(), actor_id);
        metadata.insert("actor_role".to_owned(), actor_role.to_owned());
        for (name, value) in [
            ("request_id", &self.request_id),
            ("client_ip", &self.client_ip),
            ("user_agent", &self.user_agent),
            ("idempotency_key", &self.idempotency_key),
        ] {
            if let Some(value) = value {
                metadata.insert(name.to_owned(), value.clone());
            }
        }
        metadata
    }

    /// A stable id for a new aggregate created by this request: derived from the caller and the
    /// Idempotency-Key when there is one, so a re-run after a lost response cannot create a twin.
    pub fn new_aggregate_id(&self, kind: &str) -> Uuid {
        match &self.idempotency_key {
            Some(key) => {
                let caller = self
                    .actor
                    .map(|actor| actor.id.to_string())
                    .unwrap_or_default();
                Uuid::new_v5(
                    &Uuid::NAMESPACE_OID,
                    format!("anjia:{kind}:{caller}:{key}").as_bytes(),
                )
            }
            None => Uuid::now_v7(),
        }
    }
}

/// Where one request's commands committed: the furthest point, when any committed. The HTTP
/// layer attaches one to a request and answers with it; work without an answer (jobs, tools)
/// leaves it detached.
#[derive(Debug, Clone, Default)]
pub struct Written(Option<Arc<Mutex<Option<Checkpoint>>>>);

impl Written {
    pub fn attached() -> Self {
        Written(Some(Arc::default()))
    }

    /// Whether anyone will read what is recorded: a command run by a job or a tool has no
    /// answer to carry it, so looking its position up would be wasted.
    pub fn is_attached(&self) -> bool {
        self.0.is_some()
    }

    pub fn record(&self, checkpoint: Checkpoint) {
        if let Some(slot) = &self.0 {
            let mut furthest = slot.lock().expect("position lock");
            if furthest.is_none_or(|seen| seen < checkpoint) {
                *furthest = Some(checkpoint);
            }
        }
    }

    pub fn get(&self) -> Option<Checkpoint> {
        self.0
            .as_ref()
            .and_then(|slot| *slot.lock().expect("position lock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_furthest_commit_of_a_request_is_kept() {
        let written = Written::attached();
        written.record(Checkpoint {
            transaction_id: 9,
            position: 30,
        });
        written.record(Checkpoint {
            transaction_id: 8,
            position: 40,
        });
        assert_eq!(
            written.get(),
            Some(Checkpoint {
                transaction_id: 9,
                position: 30,
            })
        );
        let detached = Written::default();
        detached.record(Checkpoint::default());
        assert_eq!(detached.get(), None);
    }
}
