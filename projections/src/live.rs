//! The live projectors of one process: one loop follows the log for every projection whose
//! lease this process holds. Each step reads the log once, from the checkpoint furthest behind,
//! and applies what each projection has not seen yet, all in one transaction that moves every
//! checkpoint with one statement. Seven projections stepping apart read the same events seven
//! times and paid seven transactions' round trips for them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::watch;

use crate::log::{read_after, Checkpoint, StoredEvent};
use crate::projector::{
    apply_whole, apply_with_care, holds_none_of, lease_key, move_checkpoints, schema_name,
    swap_key, Projection,
};

/// How long a loop woken by a commit waits for more before it looks. With one loop, not seven,
/// a step is cheap enough that a longer wait only adds lag (5 ms measured: lag p50 at c8
/// 15–16 ms against 10–11 ms at 1 ms).
const COALESCE_COMMITS: Duration = Duration::from_millis(1);

/// How often a loop tries again for the leases another process holds.
const CLAIM_EVERY: Duration = Duration::from_secs(1);

/// Measurements a running projector keeps: how long after recording each event was applied.
#[derive(Debug, Default)]
pub struct ProjectorStats {
    lag_samples: Mutex<VecDeque<f64>>,
}

impl ProjectorStats {
    const KEEP: usize = 100_000;

    fn record(&self, events: &[StoredEvent], applied_at: DateTime<Utc>) {
        if events.is_empty() {
            return;
        }
        let mut samples = self.lag_samples.lock().expect("stats lock");
        for event in events {
            let lag = (applied_at - event.recorded_at)
                .num_microseconds()
                .unwrap_or(i64::MAX);
            if samples.len() == Self::KEEP {
                samples.pop_front();
            }
            samples.push_back(lag as f64 / 1_000.0);
        }
    }

    /// Lag in milliseconds of every event applied since the last drain.
    pub fn drain_lag_millis(&self) -> Vec<f64> {
        self.lag_samples
            .lock()
            .expect("stats lock")
            .drain(..)
            .collect()
    }
}

struct Member {
    projection: Arc<dyn Projection>,
    stats: Arc<ProjectorStats>,
}

/// Where one projection stands at the start of a step.
struct Standing {
    generation: i32,
    checkpoint: Checkpoint,
    set_aside: HashSet<(String, String)>,
}

enum Stepped {
    /// The events read from the log (each projection applied its part of them).
    Read(usize),
    /// An event failed where it may be parked: the step is taken again with savepoints.
    NeedsCare,
}

/// The live projectors of one process.
pub struct Projectors {
    pool: PgPool,
    members: Vec<Member>,
    batch_size: i64,
    idle_poll: Duration,
}

impl Projectors {
    /// `pool`'s connections must be the projectors' own (`crate::log::PROJECTOR_APPLICATION`),
    /// which the log's horizon leaves out.
    pub fn new(pool: PgPool, projections: Vec<Arc<dyn Projection>>) -> Self {
        Projectors {
            pool,
            members: projections
                .into_iter()
                .map(|projection| Member {
                    projection,
                    stats: Arc::default(),
                })
                .collect(),
            batch_size: 1_000,
            idle_poll: Duration::from_millis(20),
        }
    }

    /// Each projection's measurements, by name.
    pub fn stats(&self) -> Vec<(String, Arc<ProjectorStats>)> {
        self.members
            .iter()
            .map(|member| (member.projection.name().to_owned(), member.stats.clone()))
            .collect()
    }

    /// Follows the log until `shutdown` turns true, stopping only between steps, so every stop
    /// is at a checkpoint. Across processes, one holder of a projection's lease runs it at a
    /// time; a process runs those it holds.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let mut held = Vec::new();
            if let Err(error) = self.run_with_leases(&mut shutdown, &mut held).await {
                tracing::error!(error = format!("{error:#}"), "projectors failed; retrying");
                self.record_error(&held, &error).await;
                wait_or_shutdown(&mut shutdown, Duration::from_secs(1)).await;
            }
        }
        tracing::info!("projectors stopped at a checkpoint");
    }

    async fn run_with_leases(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        held: &mut Vec<usize>,
    ) -> anyhow::Result<()> {
        let mut lease_connection = self.pool.acquire().await?;
        // A panic or cancellation must not hand a connection that holds leases back to the pool.
        lease_connection.close_on_drop();
        let outcome = async {
            let mut claimed_at: Option<Instant> = None;
            while !*shutdown.borrow() {
                if held.len() < self.members.len()
                    && claimed_at.is_none_or(|at| at.elapsed() >= CLAIM_EVERY)
                {
                    self.claim(&mut lease_connection, held).await?;
                    claimed_at = Some(Instant::now());
                }
                if held.is_empty() {
                    // Another process runs them all; look again later in case it goes away.
                    wait_or_shutdown(shutdown, CLAIM_EVERY).await;
                    continue;
                }
                // Listening before looking, so a commit while the step runs is not missed.
                let next_commit = crate::log::next_commit();
                tokio::pin!(next_commit);
                next_commit.as_mut().enable();
                let read = self.step(held).await?;
                if read < self.batch_size as usize {
                    tokio::select! {
                        () = next_commit => {
                            // Woken by a commit: a moment more gathers the commits that follow
                            // it into the same step, so a busy log costs at most one step per
                            // `COALESCE_COMMITS`.
                            tokio::time::sleep(COALESCE_COMMITS).await;
                        }
                        () = wait_or_shutdown(shutdown, self.idle_poll) => {}
                    }
                }
            }
            anyhow::Ok(())
        }
        .await;
        if !held.is_empty() {
            let keys: Vec<i64> = held.iter().map(|&member| self.lease(member)).collect();
            sqlx::query("SELECT pg_advisory_unlock(key) FROM unnest($1::int8[]) AS key")
                .bind(&keys)
                .execute(&mut *lease_connection)
                .await?;
        }
        outcome
    }

    fn lease(&self, member: usize) -> i64 {
        lease_key(self.members[member].projection.name())
    }

    /// Takes the leases of the projections no process runs yet, on the connection that holds
    /// them for as long as this loop runs.
    async fn claim(
        &self,
        connection: &mut PgConnection,
        held: &mut Vec<usize>,
    ) -> anyhow::Result<()> {
        let wanted: Vec<usize> = (0..self.members.len())
            .filter(|member| !held.contains(member))
            .collect();
        let keys: Vec<i64> = wanted.iter().map(|&member| self.lease(member)).collect();
        let places: Vec<i64> = sqlx::query_scalar(
            "SELECT place FROM unnest($1::int8[]) WITH ORDINALITY AS u (key, place)
              WHERE pg_try_advisory_lock(key)",
        )
        .bind(&keys)
        .fetch_all(&mut *connection)
        .await
        .context("claiming the projectors' leases")?;
        for place in places {
            let member = usize::try_from(place - 1).context("a lease's place")?;
            held.push(wanted[member]);
        }
        held.sort_unstable();
        Ok(())
    }

    /// One step for every projection in `held`. Returns how many events it read.
    async fn step(&self, held: &[usize]) -> anyhow::Result<usize> {
        match self.try_step(held, false).await? {
            Stepped::Read(read) => Ok(read),
            Stepped::NeedsCare => match self.try_step(held, true).await? {
                Stepped::Read(read) => Ok(read),
                Stepped::NeedsCare => unreachable!("a careful step parks what fails"),
            },
        }
    }

    /// A step in one transaction. Without `careful`, each projection applies its part of the
    /// batch straight away, and the first failure that parking could answer rolls everything
    /// back for a careful step, where each projection's part is tried inside a savepoint and
    /// event by event when it fails (`apply_with_care`). A projection with streams set aside is
    /// always applied with care.
    async fn try_step(&self, held: &[usize], careful: bool) -> anyhow::Result<Stepped> {
        let mut transaction = self.pool.begin().await?;
        // A rebuild's swap or a retry of parked events holds its projection's lock for a
        // moment: that projection sits this step out and the others go on. Holding the lock
        // also keeps a second loop (a lease lost with its connection) off the same projection.
        let keys: Vec<i64> = held
            .iter()
            .map(|&member| swap_key(self.members[member].projection.name()))
            .collect();
        let free: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(key)
               FROM unnest($1::int8[]) WITH ORDINALITY AS u (key, place) ORDER BY place",
        )
        .bind(&keys)
        .fetch_all(&mut *transaction)
        .await
        .context("locking the projections against a swap")?;
        let stepping: Vec<usize> = held
            .iter()
            .zip(free)
            .filter_map(|(&member, free)| free.then_some(member))
            .collect();
        if stepping.is_empty() {
            return Ok(Stepped::Read(0));
        }
        let names: Vec<&str> = stepping
            .iter()
            .map(|&member| self.members[member].projection.name())
            .collect();
        let mut standings = standings(&mut transaction, &names).await?;
        let Some(from) = standings.values().map(|standing| standing.checkpoint).min() else {
            return Ok(Stepped::Read(0));
        };
        let events = read_after(&mut transaction, from, self.batch_size).await?;
        if events.is_empty() {
            return Ok(Stepped::Read(0));
        }
        let mut applied: Vec<(usize, i32, &[StoredEvent])> = Vec::with_capacity(stepping.len());
        for &member in &stepping {
            let projection = self.members[member].projection.as_ref();
            let Some(standing) = standings.remove(projection.name()) else {
                continue;
            };
            let unseen = events.partition_point(|event| {
                Checkpoint {
                    transaction_id: event.transaction_id,
                    position: event.position,
                } <= standing.checkpoint
            });
            let part = &events[unseen..];
            if part.is_empty() {
                continue;
            }
            if careful || !holds_none_of(part, &standing.set_aside) {
                apply_with_care(
                    &mut transaction,
                    projection,
                    standing.generation,
                    part,
                    standing.set_aside,
                )
                .await?;
            } else {
                let schema = schema_name(projection.name(), standing.generation);
                if let Some(error) =
                    apply_whole(&mut transaction, projection, &schema, part).await?
                {
                    tracing::debug!(
                        projection = projection.name(),
                        error = format!("{error:#}"),
                        "a batch failed; stepping again with care"
                    );
                    return Ok(Stepped::NeedsCare);
                }
            }
            applied.push((member, standing.generation, part));
        }
        let moves: Vec<(&str, i32, &[StoredEvent])> = applied
            .iter()
            .map(|&(member, generation, part)| {
                (self.members[member].projection.name(), generation, part)
            })
            .collect();
        move_checkpoints(&mut transaction, &moves).await?;
        transaction.commit().await?;
        let now = Utc::now();
        for (member, _, part) in applied {
            self.members[member].stats.record(part, now);
        }
        Ok(Stepped::Read(events.len()))
    }

    async fn record_error(&self, held: &[usize], error: &anyhow::Error) {
        let names: Vec<&str> = held
            .iter()
            .map(|&member| self.members[member].projection.name())
            .collect();
        let outcome = sqlx::query(
            "UPDATE projection_checkpoints c SET last_error = $2, updated_at = now()
               FROM projections p
              WHERE p.name = ANY($1) AND c.projection = p.name
                AND c.generation = p.active_generation",
        )
        .bind(&names)
        .bind(format!("{error:#}"))
        .execute(&self.pool)
        .await;
        if let Err(db_error) = outcome {
            tracing::warn!(error = %db_error, "could not record the projectors' error");
        }
    }
}

/// Each named projection's active generation, checkpoint and streams set aside, in one
/// statement (taken after the swap locks, so a swap that committed before them is seen).
async fn standings(
    connection: &mut PgConnection,
    names: &[&str],
) -> anyhow::Result<HashMap<String, Standing>> {
    let rows = sqlx::query(
        "SELECT p.name, p.active_generation, c.last_xid::text AS xid, c.last_position,
                COALESCE(parked.types, '{}') AS parked_types, COALESCE(parked.ids, '{}') AS parked_ids
           FROM projections p
           JOIN projection_checkpoints c
             ON c.projection = p.name AND c.generation = p.active_generation
           LEFT JOIN LATERAL (
                SELECT array_agg(k.aggregate_type) AS types, array_agg(k.aggregate_id) AS ids
                  FROM (SELECT DISTINCT aggregate_type, aggregate_id FROM projection_parked
                         WHERE projection = p.name AND generation = p.active_generation) k
                ) parked ON true
          WHERE p.name = ANY($1)",
    )
    .bind(names)
    .fetch_all(&mut *connection)
    .await
    .context("reading where the projections stand")?;
    rows.iter()
        .map(|row| {
            let types: Vec<String> = row.try_get("parked_types")?;
            let ids: Vec<String> = row.try_get("parked_ids")?;
            let standing = Standing {
                generation: row.try_get("active_generation")?,
                checkpoint: Checkpoint {
                    transaction_id: row.try_get::<String, _>("xid")?.parse()?,
                    position: row.try_get("last_position")?,
                },
                set_aside: types.into_iter().zip(ids).collect(),
            };
            Ok((row.try_get("name")?, standing))
        })
        .collect()
}

async fn wait_or_shutdown(shutdown: &mut watch::Receiver<bool>, period: Duration) {
    let _ = tokio::time::timeout(period, shutdown.changed()).await;
}
