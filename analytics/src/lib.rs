//! The analytics warehouse: a DuckDB file loaded incrementally from the event log.
//!
//! - The load follows the log by (transaction id, position) checkpoint, as the projectors do
//!   (`projections::log::read_after`), and writes each batch's rows with DuckDB's appender in one
//!   DuckDB transaction with the new checkpoint, so a crash never loads an event twice or skips
//!   one.
//! - Fact tables are append-only, one row per event of interest, each with its UTC time and its
//!   precomputed Asia/Shanghai date (`day`).
//! - Only this member links DuckDB. Extensions are never installed or loaded at run time:
//!   Parquet, JSON and ICU are built into the library (see `scripts/ensure-duckdb`).

pub mod activity;
pub mod load;
pub mod reports;
pub mod sql;

/// The warehouse file does not exist yet: nothing has been loaded into it. Callers answer it
/// as a temporary condition (the refresh job or an admin's refresh creates it).
#[derive(Debug, Clone, Copy)]
pub struct NotLoaded;

impl std::fmt::Display for NotLoaded {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(
            "数据仓库尚未建立，请先刷新 / the warehouse has not been loaded yet: refresh it first",
        )
    }
}

impl std::error::Error for NotLoaded {}

/// A warehouse file of a unit test's own, removed with its write-ahead log afterwards.
#[cfg(test)]
pub(crate) struct Scratch(pub std::path::PathBuf);

#[cfg(test)]
impl Scratch {
    pub(crate) fn new() -> (Scratch, Warehouse) {
        let path = std::env::temp_dir().join(format!("anjia-test-{}.duckdb", uuid::Uuid::new_v4()));
        (Scratch(path.clone()), Warehouse::at(path))
    }
}

#[cfg(test)]
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("duckdb.wal"));
    }
}

use std::path::{Path, PathBuf};

use anyhow::Context;
use duckdb::Connection;

/// The warehouse's tables, created when missing.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS load_state (
    id             INTEGER PRIMARY KEY,
    transaction_id UBIGINT NOT NULL,
    position       BIGINT NOT NULL,
    events         BIGINT NOT NULL,
    refreshed_at   TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS order_facts (
    order_id    UUID NOT NULL,
    customer_id UUID NOT NULL,
    service     VARCHAR NOT NULL,
    city        VARCHAR NOT NULL,
    district    VARCHAR NOT NULL,
    total_fen   BIGINT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    day         DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS order_milestones (
    order_id  UUID NOT NULL,
    milestone VARCHAR NOT NULL,
    worker_id UUID,
    -- how a worker was assigned (grab, auto, admin, named); the stage a cancellation came at
    detail    VARCHAR,
    reason    VARCHAR,
    occurred_at TIMESTAMPTZ NOT NULL,
    day       DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS payment_dim (
    payment_id  UUID NOT NULL,
    order_id    UUID NOT NULL,
    customer_id UUID NOT NULL,
    method      VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS money_facts (
    payment_id       UUID NOT NULL,
    order_id         UUID,
    kind             VARCHAR NOT NULL,
    method           VARCHAR,
    amount_fen       BIGINT NOT NULL,
    commission_fen   BIGINT NOT NULL,
    worker_share_fen BIGINT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    day              DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS review_facts (
    order_id   UUID NOT NULL,
    worker_id  UUID,
    quality    TINYINT NOT NULL,
    attitude   TINYINT NOT NULL,
    skill      TINYINT NOT NULL,
    by_default BOOLEAN NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    day        DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS worker_status_facts (
    worker_id UUID NOT NULL,
    status    VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    day       DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS activity_facts (
    user_id UUID NOT NULL,
    role    VARCHAR NOT NULL,
    kind    VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    day     DATE NOT NULL,
    -- how someone signed in (password, code, oauth) or where the app opened (ios, web, …)
    detail  VARCHAR
);
-- Warehouses made before sign-ins and app opens were loaded.
ALTER TABLE activity_facts ADD COLUMN IF NOT EXISTS detail VARCHAR;
-- Which loader filled the tables (see `LOADER_VERSION`).
CREATE TABLE IF NOT EXISTS loader (version INTEGER NOT NULL);
";

/// The version of the rows the loader makes of events. A loader that makes other rows of the
/// same events (2: kept cancellation fees as their own money rows) bumps it, and a warehouse
/// filled by an older one is emptied when it is next opened for loading: every table is derived
/// from the log, so the next refresh loads all of it again the new way.
pub const LOADER_VERSION: i32 = 2;

/// The fact tables, each with its Beijing `day`.
pub const FACT_TABLES: [&str; 6] = [
    "order_facts",
    "order_milestones",
    "money_facts",
    "review_facts",
    "worker_status_facts",
    "activity_facts",
];

/// Empties a warehouse that an older loader filled, so that it is loaded again from the
/// start; a new or current one is left alone.
fn reload_if_older(connection: &Connection) -> anyhow::Result<()> {
    let version: Option<i32> =
        connection.query_row("SELECT max(version) FROM loader", [], |row| row.get(0))?;
    if version.is_some_and(|version| version >= LOADER_VERSION) {
        return Ok(());
    }
    let loaded: i64 =
        connection.query_row("SELECT count(*) FROM load_state", [], |row| row.get(0))?;
    let mut statements = String::from("BEGIN TRANSACTION;");
    for table in FACT_TABLES
        .iter()
        .chain(&["payment_dim", "load_state", "loader"])
    {
        statements.push_str(&format!("DELETE FROM {table};"));
    }
    statements.push_str(&format!(
        "INSERT INTO loader VALUES ({LOADER_VERSION}); COMMIT;"
    ));
    connection
        .execute_batch(&statements)
        .context("emptying a warehouse an older loader filled")?;
    if loaded > 0 {
        tracing::info!(
            from = version,
            to = LOADER_VERSION,
            "the warehouse was filled by an older loader; it loads again from the start"
        );
    }
    Ok(())
}

/// What an export wrote: each table's rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    pub directory: PathBuf,
    pub tables: Vec<(String, i64)>,
}

/// The warehouse file.
pub struct Warehouse {
    path: PathBuf,
}

impl Warehouse {
    /// `ANJIA_WAREHOUSE`, or `warehouse.duckdb` in the var directory.
    pub fn at(path: impl Into<PathBuf>) -> Warehouse {
        Warehouse { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file for writing (the loader), creating it and its tables when missing.
    pub fn open_for_load(&self) -> anyhow::Result<Connection> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        // Nothing is ever downloaded or loaded at run time.
        let config = duckdb::Config::default().enable_autoload_extension(false)?;
        let connection = Connection::open_with_flags(&self.path, config)
            .with_context(|| format!("opening the warehouse {}", self.path.display()))?;
        connection.execute_batch(SCHEMA)?;
        reload_if_older(&connection)?;
        Ok(connection)
    }

    /// Writes every fact table as Parquet under `directory/<table>/`, partitioned Hive-style by
    /// month (`month=YYYY-MM/…parquet`), and the payments dimension as one file, so any engine
    /// that reads Parquet can take them.
    pub fn export(&self, directory: &Path) -> anyhow::Result<ExportReport> {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("creating {}", directory.display()))?;
        let directory = std::path::absolute(directory)?;
        let connection = self.open_read_only()?;
        let quoted = |path: &Path| format!("'{}'", path.display().to_string().replace('\'', "''"));
        let mut tables = Vec::new();
        for table in FACT_TABLES {
            let target = directory.join(table);
            connection.execute_batch(&format!(
                "COPY (SELECT *, strftime(day, '%Y-%m') AS month FROM {table})
                   TO {} (FORMAT parquet, PARTITION_BY (month), OVERWRITE_OR_IGNORE)",
                quoted(&target)
            ))?;
            let rows: i64 =
                connection.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                    row.get(0)
                })?;
            tables.push((table.to_owned(), rows));
        }
        connection.execute_batch(&format!(
            "COPY payment_dim TO {} (FORMAT parquet)",
            quoted(&directory.join("payment_dim.parquet"))
        ))?;
        let rows: i64 =
            connection.query_row("SELECT count(*) FROM payment_dim", [], |row| row.get(0))?;
        tables.push(("payment_dim".to_owned(), rows));
        Ok(ExportReport { directory, tables })
    }
}
