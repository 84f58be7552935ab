//! What a command costs the database: the statements it runs (each one round trip: sqlx sends a
//! prepared statement's bind and execute together), the transactions it writes (each a durable
//! commit that waits for the log's fsync) and the server time they take, read from
//! `pg_stat_statements` and the transaction counter around a run of commands that nothing else
//! touches the database during.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgPool;

/// The database's counters at one moment (or, summed with `add_between`, over several spans).
#[derive(Default)]
pub struct Counters {
    /// Per statement: its text, calls and total execution time (ms).
    statements: HashMap<i64, (String, i64, f64)>,
    /// The next transaction id: how many transactions (and subtransactions) have written so far.
    next_xid: i64,
    /// Beats of the caches sent so far: each takes a transaction id (a `NOTIFY` does).
    beats: i64,
}

/// One statement's share of a command.
#[derive(Debug, Serialize)]
pub struct StatementCost {
    pub calls_per_command: f64,
    pub server_ms_per_command: f64,
    /// The statement's normalised text, cut at 160 characters.
    pub query: String,
}

/// What one kind of command cost, on average over `commands` of them.
#[derive(Debug, Serialize)]
pub struct CommandCost {
    pub command: String,
    pub commands: usize,
    /// Statements run, `BEGIN` and `COMMIT` included: the round trips to the database.
    pub statements_per_command: f64,
    /// Transactions that wrote (were given a transaction id): the durable commits, the
    /// sandbox provider's own among them.
    pub writing_transactions_per_command: f64,
    /// Savepoints that wrote (an append that may lose a race and be decided again): each
    /// takes a transaction id of its own but commits with its transaction.
    pub subtransactions_per_command: f64,
    /// Of those, the sandbox provider's own (its ledger of checkouts and refunds, one statement
    /// each): what a real provider writes on its own servers, not the platform's commits.
    pub provider_writing_transactions_per_command: f64,
    /// Explicit `COMMIT`s; the other writing transactions are single statements.
    pub explicit_commits_per_command: f64,
    /// Time the server spent executing them (not waiting for the network or the client).
    pub server_ms_per_command: f64,
    pub latency_p50_ms: f64,
    /// The statements by calls, most first.
    pub statements: Vec<StatementCost>,
}

/// The tables the in-process sandbox provider keeps its own books in.
const PROVIDER_TABLES: [&str; 2] = ["sandbox_transactions", "sandbox_refunds"];

/// A statement of the sandbox provider's that writes: each runs alone, its own transaction.
fn provider_write(query: &str) -> bool {
    let verb = query.split_whitespace().next().unwrap_or_default();
    ["INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|writes| verb.eq_ignore_ascii_case(writes))
        && PROVIDER_TABLES.iter().any(|table| query.contains(table))
}

/// Makes sure `pg_stat_statements` can be read; says why not when it cannot (a server that
/// does not preload it: the embedded one does, see `localpg`).
pub async fn enable(pool: &PgPool) -> Result<(), String> {
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(pool)
        .await
        .map_err(|error| format!("pg_stat_statements: {error}"))?;
    sqlx::query("SELECT 1 FROM pg_stat_statements LIMIT 1")
        .execute(pool)
        .await
        .map_err(|error| {
            format!("pg_stat_statements is not loaded (shared_preload_libraries): {error}")
        })?;
    Ok(())
}

/// Reads the counters. Its own queries name `pg_stat_statements` or the snapshot, and are left
/// out of what a command cost.
pub async fn snapshot(pool: &PgPool) -> anyhow::Result<Counters> {
    let rows: Vec<(i64, String, i64, f64)> = sqlx::query_as(
        "SELECT queryid, query, calls, total_exec_time FROM pg_stat_statements
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND queryid IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    let next_xid: i64 =
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(pool)
            .await?;
    let beats = rows
        .iter()
        .filter(|(_, query, _, _)| query.contains(application::fresh::BEAT_MARK))
        .map(|(_, _, calls, _)| calls)
        .sum();
    Ok(Counters {
        statements: rows
            .into_iter()
            .filter(|(_, query, _, _)| !is_own(query))
            .map(|(id, query, calls, time)| (id, (query, calls, time)))
            .collect(),
        next_xid,
        beats,
    })
}

/// Not a command's: the bench's own statements (its counters' queries, and any marked
/// `anjia-bench`) and the caches' beat, which every process sends twice a second.
fn is_own(query: &str) -> bool {
    query.contains("pg_stat_statements")
        || query.contains("pg_current_snapshot")
        || query.contains("anjia-bench")
        || query.contains(application::fresh::BEAT_MARK)
}

impl Counters {
    /// Adds what happened between `before` and `after`.
    pub fn add_between(&mut self, before: &Counters, after: &Counters) {
        for (id, (query, calls, time)) in &after.statements {
            let (calls_before, time_before) = before
                .statements
                .get(id)
                .map_or((0, 0.0), |(_, calls, time)| (*calls, *time));
            let total = self
                .statements
                .entry(*id)
                .or_insert_with(|| (query.clone(), 0, 0.0));
            total.1 += calls - calls_before;
            total.2 += time - time_before;
        }
        self.next_xid += after.next_xid - before.next_xid;
        self.beats += after.beats - before.beats;
    }
}

/// What happened between `before` and `after`, shared out over `commands`.
pub fn between(
    command: &str,
    commands: usize,
    latency_p50_ms: f64,
    before: &Counters,
    after: &Counters,
) -> CommandCost {
    let per = |value: f64| {
        if commands == 0 {
            0.0
        } else {
            value / commands as f64
        }
    };
    let mut statements: Vec<StatementCost> = after
        .statements
        .iter()
        .filter_map(|(id, (query, calls, time))| {
            let (before_calls, before_time) = before
                .statements
                .get(id)
                .map_or((0, 0.0), |(_, calls, time)| (*calls, *time));
            let calls = calls - before_calls;
            (calls > 0).then(|| StatementCost {
                calls_per_command: per(calls as f64),
                server_ms_per_command: per(time - before_time),
                query: query
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(160)
                    .collect(),
            })
        })
        .collect();
    statements.sort_by(|a, b| {
        b.calls_per_command
            .total_cmp(&a.calls_per_command)
            .then(b.server_ms_per_command.total_cmp(&a.server_ms_per_command))
    });
    let calls_of = |verb: &str| -> f64 {
        statements
            .iter()
            .filter(|statement| {
                statement
                    .query
                    .split_whitespace()
                    .next()
                    .is_some_and(|first| first.eq_ignore_ascii_case(verb))
            })
            .map(|statement| statement.calls_per_command)
            .sum()
    };
    let commits = calls_of("commit");
    let subtransactions = calls_of("savepoint");
    // The snapshot itself writes nothing, so every transaction id given out between the two
    // readings went to the commands, but for the caches' beats.
    let transaction_ids =
        per((after.next_xid - before.next_xid - (after.beats - before.beats)) as f64);
    CommandCost {
        command: command.to_owned(),
        commands,
        statements_per_command: statements.iter().map(|s| s.calls_per_command).sum(),
        writing_transactions_per_command: transaction_ids - subtransactions,
        subtransactions_per_command: subtransactions,
        explicit_commits_per_command: commits,
        provider_writing_transactions_per_command: statements
            .iter()
            .filter(|statement| provider_write(&statement.query))
            .map(|statement| statement.calls_per_command)
            .sum(),
        server_ms_per_command: statements.iter().map(|s| s.server_ms_per_command).sum(),
        latency_p50_ms,
        statements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_providers_writes_are_told_apart_from_the_platforms() {
        assert!(provider_write(
            "INSERT INTO sandbox_transactions (payment_id) VALUES ($1)"
        ));
        assert!(provider_write(
            "UPDATE sandbox_transactions SET status = $2 WHERE payment_id = $1"
        ));
        assert!(!provider_write(
            "SELECT provider_transaction FROM sandbox_transactions WHERE payment_id = $1"
        ));
        assert!(!provider_write(
            "INSERT INTO payment_notifications (log_id) VALUES ($1)"
        ));
    }
}
