//! Executing commands against the event store, with the metadata every event carries.
//!
//! This is cqrs-es's `CqrsFramework::execute_with_metadata` without inline queries (read models
//! are fed only by the log-following projectors) and returning what was committed, so a
//! response can show the state the command produced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use domain::Actor;
use postgres_es::PostgresEventRepository;
use projections::log::Checkpoint;
use sqlx::PgPool;
use uuid::Uuid;

pub struct CommandBus<A: Aggregate> {
    store: PersistedEventStore<PostgresEventRepository, A>,
    pool: PgPool,
}

/// What a successful command committed.
pub struct Committed<A> {
    /// The aggregate's state after the command.
    pub state: A,
    /// The sequence number of its last event (its version).
    pub version: usize,
    pub events: usize,
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + Clone,
{
    pub fn new(pool: PgPool) -> Self {
        CommandBus {
            store: PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()))
                .with_upcasters(vec![Box::new(domain::upcast::Upcaster)]),
            pool,
        }
    }

    /// Loads the current state of one aggregate.
    pub async fn load(&self, aggregate_id: Uuid) -> Result<(A, usize), AggregateError<A::Error>> {
        let events = self.store.load_events(&aggregate_id.to_string()).await?;
        let version = events.last().map_or(0, |envelope| envelope.sequence);
        let mut aggregate = A::default();
        for envelope in events {
            aggregate.apply(envelope.payload);
        }
        Ok((aggregate, version))
    }

    #[tracing::instrument(name = "command", skip_all, fields(aggregate = A::TYPE, aggregate_id = %aggregate_id))]
    pub async fn execute(
        &self,
        aggregate_id: Uuid,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Committed<A>, AggregateError<A::Error>> {
        let outcome = self.decide_and_commit(aggregate_id, command, context).await;
        let label = match &outcome {
            Ok(_) => "committed",
            Err(AggregateError::UserError(_)) => "refused",
            Err(AggregateError::AggregateConflict) => "conflict",
            Err(_) => "failed",
        };
        crate::telemetry::count_command(A::TYPE, label);
        outcome
    }

    async fn decide_and_commit(
        &self,
        aggregate_id: Uuid,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Committed<A>, AggregateError<A::Error>> {
        let id = aggregate_id.to_string();
        let mut aggregate_context = self.store.load_aggregate(&id).await?;
        let aggregate = aggregate_context.aggregate();
        let sink: EventSink<A> = EventSink::default();
        aggregate
            .handle(command, &(), &sink)
            .await
            .map_err(AggregateError::UserError)?;
        let state = aggregate.clone();
        let events = sink.collect().await;
        let committed = self
            .store
            .commit(events, aggregate_context, context.metadata())
            .await?;
        let version = committed.last().map_or(0, |envelope| envelope.sequence);
        if !committed.is_empty() && context.written.is_attached() {
            // FIXME(issue 20): one more round trip per command; the single-commit write path
            // will return the position from its own insert.
            let place: Option<(String, i64)> = sqlx::query_as(
                "SELECT transaction_id::text, position FROM events
                  WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
            )
            .bind(A::TYPE)
            .bind(&id)
            .bind(version as i64)
            .fetch_optional(&self.pool)
            .await
            .map_err(|error| AggregateError::DatabaseConnectionError(Box::new(error)))?;
            if let Some((xid, position)) = place {
                if let Ok(transaction_id) = xid.parse() {
                    context.written.record(Checkpoint {
                        transaction_id,
                        position,
                    });
                }
            }
        }
        Ok(Committed {
            state,
            version,
            events: committed.len(),
        })
    }
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + Clone,
    A::Command: Clone,
{
    /// Like `execute`, but when another writer got to the stream first the command is decided
    /// again on the new state (up to a few times). For commands whose answer should depend on
    /// who won, such as a grab: the loser then hears "already taken", not "try again".
    pub async fn execute_deciding_again(
        &self,
        aggregate_id: Uuid,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Committed<A>, AggregateError<A::Error>> {
        let mut attempts = 0;
        loop {
            match self.execute(aggregate_id, command.clone(), context).await {
                Err(AggregateError::AggregateConflict) if attempts < 5 => attempts += 1,
                outcome => return outcome,
            }
        }
    }
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
