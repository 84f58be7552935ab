//! The analytics warehouse as the platform runs it: refreshed on a schedule (one process at a
//! time, under the job's advisory lock) and on demand, and read by the reports.
//!
//! DuckDB lets one process write a file and others read it only while nobody writes, so the
//! file is open only while a refresh or a report runs. Within a process a lock keeps reports out
//! while a refresh writes; a report that meets another process's refresh tries again for a few
//! seconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use analytics::activity::ActivityReport;
use analytics::load::LoadReport;
use analytics::reports::{Filters, OrdersReport, RevenueReport, SatisfactionReport};
use analytics::sql::{Answer, Limits, Refusal};
use analytics::Warehouse;
use sqlx::PgPool;

/// Where the warehouse lives.
#[derive(Debug, Clone)]
pub struct WarehouseSettings {
    /// `ANJIA_WAREHOUSE`: the DuckDB file; by default `warehouse.duckdb` in the var directory.
    /// (`ANJIA_ANALYTICS_SCHEDULE`, with the other jobs, says when it is refreshed.)
    pub path: Option<PathBuf>,
    /// What an analyst's query may use: `ANJIA_SQL_TIMEOUT_MS`, `ANJIA_SQL_MEMORY` (e.g.
    /// `512MB`), `ANJIA_SQL_THREADS`, `ANJIA_SQL_MAX_ROWS` and `ANJIA_SQL_MAX_BYTES`.
    pub sql: Limits,
    /// `ANJIA_SQL_CONCURRENCY`: analysts' queries running at once across every process
    /// (each analyst one at a time).
    pub sql_concurrency: usize,
}

impl Default for WarehouseSettings {
    fn default() -> Self {
        WarehouseSettings {
            path: None,
            sql: Limits::default(),
            sql_concurrency: 2,
        }
    }
}

impl WarehouseSettings {
    /// The file: the setting, or `warehouse.duckdb` under `var_dir`.
    pub fn file(&self, var_dir: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| var_dir.join("warehouse.duckdb"))
    }
}

/// The warehouse of this process, with the lock between its refreshes and its reports.
#[derive(Clone)]
pub struct WarehouseHandle {
    warehouse: Arc<Warehouse>,
    gate: Arc<tokio::sync::RwLock<()>>,
    limits: Limits,
    concurrency: usize,
    _scratch: Option<Arc<Scratch>>,
}

/// A warehouse file of one process's own (no setting given), removed with it.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("duckdb.wal"));
    }
}

impl WarehouseHandle {
    pub fn new(path: PathBuf) -> WarehouseHandle {
        WarehouseHandle {
            warehouse: Arc::new(Warehouse::at(path)),
            gate: Arc::default(),
            limits: Limits::default(),
            concurrency: 2,
            _scratch: None,
        }
    }

    /// The same warehouse, with these limits on analysts' queries and this many at once.
    pub fn with_limits(self, limits: Limits, concurrency: usize) -> WarehouseHandle {
        WarehouseHandle {
            limits,
            concurrency,
            ..self
        }
    }

    /// Analysts' queries that may run at once, across every process.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A warehouse in a file of its own under the system's temporary directory, removed when
    /// the last handle goes (tests, and a server run without a var directory).
    pub fn scratch() -> WarehouseHandle {
        let path =
            std::env::temp_dir().join(format!("anjia-warehouse-{}.duckdb", uuid::Uuid::new_v4()));
        WarehouseHandle {
            _scratch: Some(Arc::new(Scratch(path.clone()))),
            ..WarehouseHandle::new(path)
        }
    }

    pub fn path(&self) -> &Path {
        self.warehouse.path()
    }

    /// Loads what the log holds beyond the warehouse's checkpoint, waiting for another
    /// process's refresh to finish first.
    pub async fn refresh(&self, pool: &PgPool) -> anyhow::Result<LoadReport> {
        let mut lock = pool.acquire().await?;
        lock.close_on_drop();
        let key = projections::advisory_key("job", "analytics");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut *lock)
            .await?;
        let outcome = {
            let _writing = self.gate.write().await;
            analytics::load::refresh(pool, &self.warehouse).await
        };
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut *lock)
            .await?;
        outcome
    }

    /// The revenue report.
    pub async fn revenue(&self, filters: Filters) -> anyhow::Result<RevenueReport> {
        self.read(move |warehouse| warehouse.revenue(&filters))
            .await
    }

    /// The orders report.
    pub async fn orders(&self, filters: Filters) -> anyhow::Result<OrdersReport> {
        self.read(move |warehouse| warehouse.orders(&filters)).await
    }

    /// The satisfaction report.
    pub async fn satisfaction(&self, filters: Filters) -> anyhow::Result<SatisfactionReport> {
        self.read(move |warehouse| warehouse.satisfaction(&filters))
            .await
    }

    /// The activity report.
    pub async fn activity(&self, filters: Filters) -> anyhow::Result<ActivityReport> {
        self.read(move |warehouse| warehouse.activity(&filters))
            .await
    }

    /// One analyst's query, read-only and within `limits`.
    pub async fn query(
        &self,
        sql: String,
        limits: Limits,
    ) -> anyhow::Result<Result<Answer, Refusal>> {
        self.read(move |warehouse| warehouse.analyst_query(&sql, &limits))
            .await
    }

    async fn read<T, F>(&self, report: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: Fn(&Warehouse) -> anyhow::Result<T> + Send + Sync + 'static,
    {
        let _reading = self.gate.read().await;
        let report = Arc::new(report);
        let mut attempt = 0;
        loop {
            let warehouse = Arc::clone(&self.warehouse);
            let run = Arc::clone(&report);
            let outcome = tokio::task::spawn_blocking(move || run(&warehouse)).await?;
            match outcome {
                // Another process is writing the file: it will be done shortly.
                Err(error) if attempt < 20 && format!("{error:#}").contains("lock") => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                outcome => return outcome,
            }
        }
    }
}
