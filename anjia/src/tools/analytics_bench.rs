//! `anjia bench analytics`: the warehouse on a large log. Generates demo data until the log
//! holds `--events` events, loads a fresh warehouse from the whole log (events per second),
//! then times every report in DuckDB against the same report as SQL on PostgreSQL over the
//! same events, in one run, and checks that both computed the same headline figure.
//!
//! PostgreSQL's side reads the event log itself (`events`, JSON payloads, with the log's
//! `(event_type, recorded_at)` index), because that is the data both sides share: the
//! projections' read models hold only what the apps need, not every movement the reports
//! count.

use std::time::Instant;

use analytics::reports::Filters;
use analytics::Warehouse;
use serde::Serialize;
use sqlx::{PgPool, Row};

use crate::tools::demo_data::{DemoOptions, DemoReport};
use application::stats::median;
use application::Services;

#[derive(Debug, Clone, clap::Args)]
pub struct AnalyticsBenchOptions {
    /// Events the log should hold; demo data is generated until it does.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Months of generated history.
    #[arg(long, default_value_t = 6)]
    pub months: u32,
    /// Runs of each report on each side; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

/// Events the demo history writes per order placed (orders, payments, wallets, workers,
/// presence), measured on generated histories.
const EVENTS_PER_ORDER: u64 = 20;

#[derive(Debug, Serialize)]
pub struct LoadFigures {
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    pub warehouse_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct ReportFigures {
    pub report: &'static str,
    pub duckdb_ms: f64,
    pub postgres_ms: f64,
    /// PostgreSQL's median over DuckDB's.
    pub ratio: f64,
    pub duckdb_runs_ms: Vec<f64>,
    pub postgres_runs_ms: Vec<f64>,
    /// The headline figure each side computed (GMV, orders placed, reviews, person-days
    /// active), which must agree.
    pub figure: &'static str,
    pub duckdb_value: f64,
    pub postgres_value: f64,
    pub agree: bool,
}

#[derive(Debug, Serialize)]
pub struct AnalyticsBenchReport {
    pub events_in_log: i64,
    pub log_bytes: i64,
    pub generated: Option<DemoReport>,
    pub load: LoadFigures,
    pub reports: Vec<ReportFigures>,
}

/// The revenue report over the log: captures, refunds, releases and claw-backs by Beijing day,
/// service and area.
const REVENUE_SQL: &str = "
WITH orders AS (
    SELECT aggregate_id AS order_id,
           payload -> 'OrderPlaced' -> 'booking' ->> 'service' AS service,
           payload -> 'OrderPlaced' -> 'booking' -> 'address' ->> 'city' AS city,
           payload -> 'OrderPlaced' -> 'booking' -> 'address' ->> 'district' AS district
      FROM events WHERE event_type = 'OrderPlaced'
), payments AS (
    SELECT aggregate_id AS payment_id, payload -> 'PaymentCreated' ->> 'order_id' AS order_id
      FROM events WHERE event_type = 'PaymentCreated'
), money AS (
    SELECT aggregate_id AS payment_id, event_type,
           coalesce((payload -> event_type ->> 'amount')::bigint, 0) AS amount,
           coalesce((payload -> event_type ->> 'commission')::bigint,
                    (payload -> event_type ->> 'from_commission')::bigint, 0) AS commission,
           coalesce((payload -> event_type ->> 'worker_share')::bigint,
                    (payload -> event_type ->> 'from_worker')::bigint, 0) AS worker_share,
           coalesce(payload -> event_type ->> 'captured_at', payload -> event_type ->> 'issued_at',
                    payload -> event_type ->> 'released_at')::timestamptz AS at
      FROM events
     WHERE event_type IN ('PaymentCaptured', 'RefundIssued', 'EscrowReleased', 'RefundClawedBack')
)
SELECT (m.at AT TIME ZONE 'Asia/Shanghai')::date AS day, o.service, o.city, o.district,
       sum(m.amount) FILTER (WHERE m.event_type = 'PaymentCaptured')::bigint AS gmv,
       sum(m.amount) FILTER (WHERE m.event_type = 'RefundIssued')::bigint AS refunds,
       (sum(m.commission) FILTER (WHERE m.event_type = 'EscrowReleased')
        - coalesce(sum(m.commission) FILTER (WHERE m.event_type = 'RefundClawedBack'), 0))::bigint AS commission,
       (sum(m.worker_share) FILTER (WHERE m.event_type = 'EscrowReleased')
        - coalesce(sum(m.worker_share) FILTER (WHERE m.event_type = 'RefundClawedBack'), 0))::bigint AS payouts,
       count(DISTINCT p.order_id) FILTER (WHERE m.event_type = 'PaymentCaptured') AS paid_orders
  FROM money m JOIN payments p USING (payment_id) JOIN orders o USING (order_id)
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";

/// The orders report over the log: the funnel by day of placement, service and city, then
/// cancellations and time to assign.
const ORDERS_SQL: &str = "
WITH orders AS (
    SELECT aggregate_id AS order_id,
           ((payload -> 'OrderPlaced' ->> 'placed_at')::timestamptz AT TIME ZONE 'Asia/Shanghai')::date AS day,
           payload -> 'OrderPlaced' -> 'booking' ->> 'service' AS service,
           payload -> 'OrderPlaced' -> 'booking' -> 'address' ->> 'city' AS city
      FROM events WHERE event_type = 'OrderPlaced'
), steps AS (
    SELECT aggregate_id AS order_id,
           bool_or(event_type = 'PaymentRecorded') AS paid,
           bool_or(event_type = 'WorkerAssigned') AS assigned,
           bool_or(event_type = 'ServiceFinished') AS completed,
           bool_or(event_type = 'OrderCancelled') AS cancelled
      FROM events
     WHERE event_type IN ('PaymentRecorded', 'WorkerAssigned', 'ServiceFinished', 'OrderCancelled')
     GROUP BY 1
)
SELECT o.day, o.service, o.city, count(*) AS placed, count(*) FILTER (WHERE s.paid) AS paid,
       count(*) FILTER (WHERE s.assigned) AS assigned, count(*) FILTER (WHERE s.completed) AS completed,
       count(*) FILTER (WHERE s.cancelled) AS cancelled
  FROM orders o LEFT JOIN steps s USING (order_id)
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";

const CANCELLATIONS_SQL: &str = "
SELECT payload -> 'OrderCancelled' ->> 'stage' AS stage, payload -> 'OrderCancelled' ->> 'reason' AS reason,
       count(DISTINCT aggregate_id) AS orders
  FROM events WHERE event_type = 'OrderCancelled' GROUP BY 1, 2 ORDER BY 3 DESC";

const ASSIGN_SQL: &str = "
WITH t AS (
    SELECT aggregate_id,
           min((payload -> 'PaymentRecorded' ->> 'paid_at')::timestamptz) AS paid_at,
           min((payload -> 'WorkerAssigned' ->> 'assigned_at')::timestamptz) AS assigned_at
      FROM events WHERE event_type IN ('PaymentRecorded', 'WorkerAssigned') GROUP BY 1
)
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM assigned_at - paid_at) / 60),
       avg(extract(epoch FROM assigned_at - paid_at) / 60)
  FROM t WHERE paid_at IS NOT NULL AND assigned_at IS NOT NULL";

/// The satisfaction report over the log: reviews not hidden, by worker and in all.
const SATISFACTION_SQL: &str = "
WITH hidden AS (
    SELECT DISTINCT aggregate_id FROM events WHERE event_type = 'ReviewHidden'
), reviews AS (
    SELECT e.aggregate_id, payload -> 'OrderReviewed' ->> 'worker_id' AS worker,
           (payload -> 'OrderReviewed' ->> 'quality')::int AS quality,
           (payload -> 'OrderReviewed' ->> 'attitude')::int AS attitude,
           (payload -> 'OrderReviewed' ->> 'skill')::int AS skill
      FROM events e WHERE event_type = 'OrderReviewed'
       AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.aggregate_id = e.aggregate_id)
)
SELECT worker, count(*) AS reviews, avg(quality), avg(attitude), avg(skill),
       count(*) FILTER (WHERE quality = 5), count(*) FILTER (WHERE quality = 1)
  FROM reviews GROUP BY ROLLUP (worker)";

/// The activity report's daily actives over the log, new against returning.
const ACTIVITY_SQL: &str = "
WITH a AS (
    SELECT (payload -> event_type ->> 'user_id') AS person, payload -> event_type ->> 'role' AS role,
           (payload -> event_type ->> 'at')::timestamptz AS at
      FROM events WHERE event_type IN ('SignedIn', 'AppOpened')
    UNION ALL
    SELECT aggregate_id, 'customer', (payload -> event_type ->> 'registered_at')::timestamptz
      FROM events WHERE event_type = 'CustomerRegistered'
    UNION ALL
    SELECT payload -> 'OrderPlaced' -> 'booking' ->> 'customer_id', 'customer',
           (payload -> 'OrderPlaced' ->> 'placed_at')::timestamptz
      FROM events WHERE event_type = 'OrderPlaced'
    UNION ALL
    SELECT aggregate_id, 'worker', (payload -> event_type ->> 'registered_at')::timestamptz
      FROM events WHERE event_type = 'WorkerRegistered'
    UNION ALL
    SELECT aggregate_id, 'worker', (payload -> event_type ->> 'at')::timestamptz
      FROM events WHERE event_type = 'WorkerWentOnline'
    UNION ALL
    SELECT payload -> event_type ->> 'worker_id', 'worker',
           coalesce(payload -> event_type ->> 'accepted_at', payload -> event_type ->> 'started_at',
                    payload -> event_type ->> 'finished_at')::timestamptz
      FROM events WHERE event_type IN ('OrderAccepted', 'ServiceStarted', 'ServiceFinished')
), days AS (
    SELECT DISTINCT person, role, (at AT TIME ZONE 'Asia/Shanghai')::date AS day
      FROM a WHERE role IN ('customer', 'worker')
), firsts AS (
    SELECT person, role, min(day) AS first_day FROM days GROUP BY 1, 2
)
SELECT d.day, d.role, count(*) AS active, count(*) FILTER (WHERE d.day = f.first_day) AS new
  FROM days d JOIN firsts f USING (person, role)
 GROUP BY 1, 2 ORDER BY 1, 2";

/// Runs `sql` on PostgreSQL, answering the sum of column `column` over its rows (and its
/// time in milliseconds).
async fn on_postgres(pool: &PgPool, sqls: &[&str], column: usize) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let mut figure = 0.0;
    for (index, sql) in sqls.iter().enumerate() {
        let rows = sqlx::query(sql).fetch_all(pool).await?;
        if index == 0 {
            for row in &rows {
                // Skip the ROLLUP's per-worker rows: the grand total has no worker.
                if sql.contains("ROLLUP") {
                    if row.try_get::<Option<String>, _>(0)?.is_none() {
                        figure = row.try_get::<i64, _>(column)? as f64;
                    }
                } else {
                    figure += row.try_get::<Option<i64>, _>(column)?.unwrap_or(0) as f64;
                }
            }
        }
    }
    Ok((started.elapsed().as_secs_f64() * 1000.0, figure))
}

pub async fn run(
    state: &Services,
    var_dir: &std::path::Path,
    options: &AnalyticsBenchOptions,
) -> anyhow::Result<AnalyticsBenchReport> {
    let pool = &state.pool;
    let count = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(&pool)
            .await
    };
    let before = count(pool.clone()).await?;
    let missing = options.events.saturating_sub(before as u64);
    let generated = if missing > options.events / 50 {
        let orders = (missing / EVENTS_PER_ORDER).max(1);
        tracing::info!(orders, "generating demo data for the benchmark");
        Some(
            crate::tools::demo_data::generate(
                state,
                &DemoOptions {
                    months: options.months,
                    orders,
                    seed: options.seed,
                    end: None,
                    batch: 20_000,
                },
            )
            .await?,
        )
    } else {
        None
    };
    let events_in_log = count(pool.clone()).await?;
    sqlx::query("ANALYZE events").execute(pool).await?;
    let log_bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('events')")
        .fetch_one(pool)
        .await?;

    // A fresh warehouse loaded from the whole log.
    let path = var_dir.join("bench-warehouse.duckdb");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("duckdb.wal"));
    let warehouse = Warehouse::at(&path);
    let started = Instant::now();
    let loaded = analytics::load::refresh(pool, &warehouse).await?;
    let seconds = started.elapsed().as_secs_f64();
    let load = LoadFigures {
        events: loaded.events,
        seconds,
        events_per_second: loaded.events as f64 / seconds.max(1e-9),
        warehouse_bytes: std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0),
    };
    tracing::info!(events = load.events, seconds, "warehouse loaded");

    let warehouse = std::sync::Arc::new(warehouse);
    let filters = Filters::default();
    let mut reports = Vec::new();
    type Run = fn(&Warehouse, &Filters) -> anyhow::Result<f64>;
    let cases: [(&'static str, &'static str, Run, Vec<&'static str>, usize); 4] = [
        (
            "revenue",
            "GMV (fen)",
            |warehouse, filters| Ok(warehouse.revenue(filters)?.total_gmv_fen as f64),
            vec![REVENUE_SQL],
            4,
        ),
        (
            "orders",
            "orders placed",
            |warehouse, filters| Ok(warehouse.orders(filters)?.placed as f64),
            vec![ORDERS_SQL, CANCELLATIONS_SQL, ASSIGN_SQL],
            3,
        ),
        (
            "satisfaction",
            "reviews",
            |warehouse, filters| Ok(warehouse.satisfaction(filters)?.overall.reviews as f64),
            vec![SATISFACTION_SQL],
            1,
        ),
        (
            "activity",
            "person-days active",
            |warehouse, filters| {
                Ok(warehouse
                    .activity(filters)?
                    .daily
                    .iter()
                    .map(|row| row.active as f64)
                    .sum())
            },
            vec![ACTIVITY_SQL],
            2,
        ),
    ];
    for (report, figure, duck, sqls, column) in cases {
        let mut duckdb_runs = Vec::new();
        let mut duckdb_value = 0.0;
        for _ in 0..options.runs.max(1) {
            let warehouse = std::sync::Arc::clone(&warehouse);
            let filters = filters.clone();
            let started = Instant::now();
            duckdb_value =
                tokio::task::spawn_blocking(move || duck(&warehouse, &filters)).await??;
            duckdb_runs.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let mut postgres_runs = Vec::new();
        let mut postgres_value = 0.0;
        for _ in 0..options.runs.max(1) {
            let (milliseconds, value) = on_postgres(pool, &sqls, column).await?;
            postgres_runs.push(milliseconds);
            postgres_value = value;
        }
        let duckdb_ms = median(duckdb_runs.clone());
        let postgres_ms = median(postgres_runs.clone());
        tracing::info!(report, duckdb_ms, postgres_ms, "report timed");
        reports.push(ReportFigures {
            report,
            duckdb_ms,
            postgres_ms,
            ratio: postgres_ms / duckdb_ms.max(1e-9),
            duckdb_runs_ms: duckdb_runs,
            postgres_runs_ms: postgres_runs,
            figure,
            duckdb_value,
            postgres_value,
            agree: (duckdb_value - postgres_value).abs() < 0.5,
        });
    }
    Ok(AnalyticsBenchReport {
        events_in_log,
        log_bytes,
        generated,
        load,
        reports,
    })
}
