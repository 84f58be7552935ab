//! `anjia bench`: place-order over real HTTP against the real database, beside the raw limit of
//! that database (single-row durable inserts of the same size), at several concurrencies; then
//! whole order lives at the same concurrencies (`flow_bench`); and first what each command
//! costs the database (`sql_cost`), measured with nothing else running.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use serde::Serialize;
use serde_json::json;

use super::flow_bench::{self, FlowLevel, Http};
use super::sql_cost::{self, CommandCost};
use crate::server;
use application::stats::Sorted;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Seconds of load per concurrency level and per measurement.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub concurrency: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub struct LevelReport {
    pub concurrency: usize,
    pub commands: usize,
    pub commands_per_second: f64,
    pub command_p50_ms: f64,
    pub command_p99_ms: f64,
    pub raw_inserts_per_second: f64,
    pub raw_insert_p50_ms: f64,
    pub raw_insert_p99_ms: f64,
    /// Commands per second divided by raw inserts per second.
    pub ratio_to_raw_limit: f64,
    pub projection_lag_p50_ms: f64,
    pub projection_lag_p99_ms: f64,
    pub errors: usize,
    /// Everything the database ran while the level's orders were placed and projected (the
    /// projectors and timed jobs included), shared out over its orders: where the time goes.
    pub database: Option<CommandCost>,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub seconds_per_level: u64,
    pub event_bytes: usize,
    /// What each kind of command costs the database, one at a time with no projector running.
    pub cost: Vec<CommandCost>,
    /// Why `cost` is empty, when it is.
    pub cost_unavailable: Option<String>,
    pub levels: Vec<LevelReport>,
    /// Whole flows (place, pay, grab, depart, arrive, start, finish, review) per concurrency.
    pub flows: Vec<FlowLevel>,
}

/// How many commands of a kind the cost is averaged over.
const COST_SAMPLES: usize = 100;
/// How many whole flows each step's cost is averaged over.
const COST_FLOWS: usize = 10;
/// Whole flows run at each concurrency, per unit of concurrency.
const FLOWS_PER_RUNNER: usize = 4;

/// An order's body; `start_in` from now is when the service starts.
pub(super) fn order_body(sequence: usize, start_in: chrono::Duration) -> serde_json::Value {
    let (latitude, longitude) = flow_bench::DOOR;
    json!({
        "service": "daily_cleaning",
        "unit_price": 5_000,
        "quantity": 3,
        "scheduled_start": (Utc::now() + start_in).to_rfc3339(),
        "duration_minutes": 180,
        "address": {
            "city": "上海市", "district": "浦东新区", "detail": format!("世纪大道 {} 号", sequence % 2000 + 1),
            "contact_name": "王女士", "contact_phone": "13800135678",
            "location": { "latitude": latitude, "longitude": longitude, "system": "gcj02" }
        },
        "note": "请带清洁工具 / please bring cleaning supplies"
    })
}

/// Places one order as the phone app does, with an idempotency key of its own; its latency in
/// milliseconds when it succeeded.
async fn place_order(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    sequence: usize,
) -> Option<f64> {
    let begun = Instant::now();
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&order_body(sequence, chrono::Duration::days(2)))
        .send()
        .await
        .ok()?;
    response
        .status()
        .is_success()
        .then(|| begun.elapsed().as_secs_f64() * 1_000.0)
}

pub async fn run(
    database_url: Option<&str>,
    var_dir: &Path,
    master_key: Option<&str>,
    options: BenchOptions,
) -> anyhow::Result<BenchReport> {
    let max_concurrency = options.concurrency.iter().copied().max().unwrap_or(1);
    let pool = server::connect(database_url, var_dir, (max_concurrency as u32 + 8).max(16)).await?;
    let vault = server::prepare(&pool, master_key).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    // The benchmark pays through the sandbox: a developer's run, in development mode.
    // The flows' workers register from addresses of their own, forwarded by "a proxy" the
    // server trusts: one address would soon reach its hourly limit of codes.
    let settings = crate::config::Settings {
        mode: crate::config::Mode::Development,
        trusted_proxies: vec![std::net::IpAddr::from([127, 0, 0, 1])],
        ..Default::default()
    };
    // First a server without projectors or timed jobs, so that what the database does while
    // it places orders one at a time is the commands' own work.
    let cost_unavailable = sql_cost::enable(&pool).await.err();
    let quiet = server::start(pool.clone(), listener, false, &settings, vault.clone()).await?;
    let base = format!("http://{}", quiet.address);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(max_concurrency * 2)
        .build()?;

    let http = Http {
        client: client.clone(),
        base: base.clone(),
    };
    let login = format!("bench-{}@example.com", uuid::Uuid::new_v4());
    let customer = flow_bench::register(
        &http,
        &pool,
        json!({"kind": "customer", "login": login, "password": "bench-password-1", "name": "压测用户", "phone": "13800135678"}),
        None,
    )
    .await
    .context("registering the bench customer")?;
    let token = customer.token.clone();
    let admin_login = format!("bench-admin-{}@example.com", uuid::Uuid::new_v4().simple());
    command_api::routes::accounts::create_staff(
        &pool,
        &admin_login,
        "bench-password-1",
        domain::Role::Admin,
    )
    .await?;
    let admin = flow_bench::sign_in(&http, &admin_login, "bench-password-1").await?;
    let mut cleaners_made = 0;

    let mut cost = Vec::new();
    if cost_unavailable.is_none() {
        let url = format!("{base}/api/v1/orders");
        // A first order warms the connections and their prepared statements.
        place_order(&client, &url, &token, 0).await;
        let before = sql_cost::snapshot(&pool).await?;
        let mut latencies = Vec::new();
        for sequence in 1..=COST_SAMPLES {
            latencies.push(
                place_order(&client, &url, &token, sequence)
                    .await
                    .context("placing an order for the cost")?,
            );
        }
        let after = sql_cost::snapshot(&pool).await?;
        let latency = Sorted::new(latencies).median();
        cost.push(sql_cost::between(
            "place-order",
            COST_SAMPLES,
            latency,
            &before,
            &after,
        ));
        let cleaners =
            flow_bench::qualified_cleaners(&http, &pool, &admin, cleaners_made, COST_FLOWS).await?;
        cleaners_made += COST_FLOWS;
        cost.extend(flow_bench::cost(&http, &pool, &customer, &cleaners).await?);
    }
    quiet.stop().await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = server::start(pool.clone(), listener, true, &settings, vault).await?;
    let base = format!("http://{}", running.address);

    // The raw limit writes rows as large as a real OrderPlaced event.
    let event_bytes: i32 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(octet_length(payload::text) + octet_length(metadata::text)), 1000) FROM events WHERE event_type = 'CustomerRegistered'",
    )
    .fetch_one(&pool)
    .await?;
    let sample_payload =
        serde_json::to_string(&json!({"OrderPlaced": order_body(0, chrono::Duration::days(2))}))?;
    let event_bytes = (sample_payload.len() + event_bytes as usize).max(500);
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS bench_raw_inserts (id bigserial PRIMARY KEY, payload json NOT NULL)")
        .execute(&pool)
        .await?;
    let raw_payload = Arc::new(serde_json::to_string(
        &json!({"padding": "x".repeat(event_bytes.saturating_sub(16))}),
    )?);

    let orders_stats = running
        .projector_stats
        .iter()
        .find(|(name, _)| name == "orders")
        .map(|(_, stats)| stats.clone())
        .context("the orders projector is not running")?;
    // The orders placed for the cost were recorded before this server started: they are not
    // part of any level's lag.
    orders_caught_up(&pool).await?;
    let duration = Duration::from_secs(options.seconds);
    let mut levels = Vec::new();
    for &concurrency in &options.concurrency {
        orders_stats.drain_lag_millis();
        let counted = if cost_unavailable.is_none() {
            Some(sql_cost::snapshot(&pool).await?)
        } else {
            None
        };
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let mut workers = Vec::new();
        for worker_index in 0..concurrency {
            let client = client.clone();
            let url = format!("{base}/api/v1/orders");
            let token = token.clone();
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                let mut sequence = worker_index * 1_000_000;
                while Instant::now() < deadline {
                    sequence += 1;
                    match place_order(&client, &url, &token, sequence).await {
                        Some(latency) => latencies.push(latency),
                        None => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for worker in workers {
            let (worker_latencies, worker_errors) = worker.await?;
            latencies.extend(worker_latencies);
            errors += worker_errors;
        }
        let elapsed = started.elapsed().as_secs_f64();
        // Let the projector finish this level's events so every one has a lag sample.
        orders_caught_up(&pool).await?;
        let lag = Sorted::new(orders_stats.drain_lag_millis());
        let commands = latencies.len();
        let latencies = Sorted::new(latencies);
        let database = match counted {
            Some(before) => Some(sql_cost::between(
                &format!("place-order at concurrency {concurrency}"),
                commands,
                latencies.median(),
                &before,
                &sql_cost::snapshot(&pool).await?,
            )),
            None => None,
        };

        let raw = raw_inserts(&pool, concurrency, duration, raw_payload.clone()).await?;
        let commands_per_second = commands as f64 / elapsed;
        levels.push(LevelReport {
            concurrency,
            commands,
            commands_per_second,
            command_p50_ms: latencies.percentile(0.50),
            command_p99_ms: latencies.percentile(0.99),
            raw_inserts_per_second: raw.0,
            raw_insert_p50_ms: raw.1,
            raw_insert_p99_ms: raw.2,
            ratio_to_raw_limit: if raw.0 > 0.0 {
                commands_per_second / raw.0
            } else {
                0.0
            },
            projection_lag_p50_ms: lag.percentile(0.50),
            projection_lag_p99_ms: lag.percentile(0.99),
            errors,
            database,
        });
    }
    sqlx::raw_sql("DROP TABLE IF EXISTS bench_raw_inserts")
        .execute(&pool)
        .await?;
    // The flows go to the running server, not the quiet one the cost was measured on.
    let http = Http {
        client: client.clone(),
        base: base.clone(),
    };
    let mut flows = Vec::new();
    for &concurrency in &options.concurrency {
        let count = concurrency * FLOWS_PER_RUNNER;
        let cleaners =
            flow_bench::qualified_cleaners(&http, &pool, &admin, cleaners_made, count).await?;
        cleaners_made += count;
        orders_caught_up(&pool).await?;
        flows.push(flow_bench::level(&http, &pool, &customer, cleaners, concurrency).await?);
    }
    running.stop().await;
    Ok(BenchReport {
        seconds_per_level: options.seconds,
        event_bytes,
        cost,
        cost_unavailable,
        levels,
        flows,
    })
}

/// Waits (up to 30 s) until the orders projector has applied every committed event.
async fn orders_caught_up(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let pending: i64 = projections::status(pool)
            .await?
            .iter()
            .find(|status| status.name == "orders")
            .map_or(0, |status| status.pending_events);
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Single-row inserts, one durable commit each, at `concurrency`: what the database can do.
async fn raw_inserts(
    pool: &sqlx::PgPool,
    concurrency: usize,
    duration: Duration,
    payload: Arc<String>,
) -> anyhow::Result<(f64, f64, f64)> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let pool = pool.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                sqlx::query("INSERT INTO bench_raw_inserts (payload) VALUES ($1::json)")
                    .bind(payload.as_str())
                    .execute(&pool)
                    .await?;
                latencies.push(begun.elapsed().as_secs_f64() * 1_000.0);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = latencies.len();
    let latencies = Sorted::new(latencies);
    Ok((
        count as f64 / elapsed,
        latencies.percentile(0.5),
        latencies.percentile(0.99),
    ))
}
