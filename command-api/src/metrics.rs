//! Prometheus metrics at `/metrics`.
//!
//! Counted in each process, through the `metrics` facade and its Prometheus exporter: requests
//! and their latency per route (the route's template, not the raw path, so ids do not explode
//! the series), and commands by aggregate and outcome (`application::telemetry`). Read from the
//! database at each scrape, so every process reports the same: projector lag per projection,
//! parked streams, timed-job runs and failures, the log's head; and the process's own connection
//! pool. Those are a snapshot of that moment, not this process's series, so they are written
//! after the recorder's.

use std::fmt::Write;
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

const REQUESTS: &str = "anjia_http_requests_total";
const LATENCY: &str = "anjia_http_request_duration_seconds";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// This process's recorder, installed the first time it is asked for (the HTTP state asks when
/// it is built, before any command runs). Every app of a test process shares it.
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENCY.to_owned()), &BUCKETS)
            .expect("latency buckets are given")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder was installed first; /metrics shows none of this process's counters");
        }
        metrics::describe_counter!(REQUESTS, "HTTP requests by method, route and status.");
        metrics::describe_histogram!(LATENCY, "HTTP request latency by method and route.");
        metrics::describe_counter!(
            application::telemetry::COMMANDS,
            "Commands by aggregate and outcome."
        );
        handle
    })
}

/// Times every request and counts it under its route template.
pub async fn track(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    // Only the standard methods become labels: any other token a client sends would make a
    // new series.
    let method = match request.method().as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
        _ => "other",
    }
    .to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(LATENCY, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A label value as the exposition format wants it: backslash, quote and line break escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Everything, as Prometheus reads it.
pub async fn render(pool: &PgPool) -> anyhow::Result<String> {
    // The exporter parts metric families with blank lines; the snapshot below follows on.
    let mut out = String::new();
    for line in install().render().lines().filter(|line| !line.is_empty()) {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("# HELP anjia_projection_pending_events Events in the log a projection has not applied yet.\n");
    out.push_str("# TYPE anjia_projection_pending_events gauge\n");
    let statuses = projections::status(pool).await?;
    for status in &statuses {
        let _ = writeln!(
            out,
            "anjia_projection_pending_events{{projection=\"{}\"}} {}",
            status.name, status.pending_events
        );
    }
    out.push_str("# HELP anjia_projection_lag_seconds How far behind the log's newest event a projection is.\n");
    out.push_str("# TYPE anjia_projection_lag_seconds gauge\n");
    for status in &statuses {
        let _ = writeln!(
            out,
            "anjia_projection_lag_seconds{{projection=\"{}\"}} {}",
            status.name, status.lag_seconds
        );
    }
    let failing = statuses
        .iter()
        .filter(|status| status.last_error.is_some())
        .count();
    out.push_str(
        "# HELP anjia_projections_failing Projections stopped at an event they cannot apply.\n",
    );
    out.push_str("# TYPE anjia_projections_failing gauge\n");
    let _ = writeln!(out, "anjia_projections_failing {failing}");
    let parked = projections::parked(pool).await?;
    out.push_str("# HELP anjia_projection_parked_events Events a projection set aside (their stream is parked; every other stream flows on).\n");
    out.push_str("# TYPE anjia_projection_parked_events gauge\n");
    for status in &statuses {
        let events: i64 = parked
            .iter()
            .filter(|stream| stream.projection == status.name)
            .map(|stream| stream.events)
            .sum();
        let _ = writeln!(
            out,
            "anjia_projection_parked_events{{projection=\"{}\"}} {events}",
            status.name
        );
    }
    out.push_str(
        "# HELP anjia_projection_parked_stream A stream a projection has parked (1 while it is).\n",
    );
    out.push_str("# TYPE anjia_projection_parked_stream gauge\n");
    for stream in &parked {
        let _ = writeln!(
            out,
            "anjia_projection_parked_stream{{projection=\"{}\",aggregate_type=\"{}\",aggregate_id=\"{}\"}} 1",
            stream.projection,
            label_value(&stream.aggregate_type),
            label_value(&stream.aggregate_id)
        );
    }
    let jobs: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT job, runs, failures FROM job_runs ORDER BY job")
            .fetch_all(pool)
            .await?;
    out.push_str("# HELP anjia_job_runs_total Timed-job runs, in whichever process ran them.\n");
    out.push_str("# TYPE anjia_job_runs_total counter\n");
    for (job, runs, _) in &jobs {
        let _ = writeln!(out, "anjia_job_runs_total{{job=\"{job}\"}} {runs}");
    }
    out.push_str("# HELP anjia_job_failures_total Timed-job runs that failed.\n");
    out.push_str("# TYPE anjia_job_failures_total counter\n");
    for (job, _, failures) in &jobs {
        let _ = writeln!(out, "anjia_job_failures_total{{job=\"{job}\"}} {failures}");
    }
    let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(pool)
        .await?;
    out.push_str("# HELP anjia_event_log_position The newest event's position in the log.\n");
    out.push_str("# TYPE anjia_event_log_position gauge\n");
    let _ = writeln!(out, "anjia_event_log_position {}", head.unwrap_or(0));
    out.push_str(
        "# HELP anjia_db_pool_connections This process's database connections by state.\n",
    );
    out.push_str("# TYPE anjia_db_pool_connections gauge\n");
    let size = pool.size() as usize;
    let idle = pool.num_idle();
    let _ = writeln!(out, "anjia_db_pool_connections{{state=\"idle\"}} {idle}");
    let _ = writeln!(
        out,
        "anjia_db_pool_connections{{state=\"in_use\"}} {}",
        size.saturating_sub(idle)
    );
    out.push_str("# HELP anjia_db_pool_max_connections This process's connection limit.\n");
    out.push_str("# TYPE anjia_db_pool_max_connections gauge\n");
    let _ = writeln!(
        out,
        "anjia_db_pool_max_connections {}",
        pool.options().get_max_connections()
    );
    Ok(out)
}

/// Prometheus metrics in the text format. With `ANJIA_METRICS_TOKEN` set, the scraper must
/// present it as a bearer token; without, the endpoint is open (keep it on an internal network).
#[utoipa::path(get, path = "/metrics", security(()), tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain"), (status = 401, body = crate::error::Problem)))]
pub async fn endpoint(State(state): State<crate::state::AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let matches = given.is_some_and(|given| equal(given.as_bytes(), expected.as_bytes()));
        if !matches {
            return crate::error::ApiError::Unauthenticated.into_response();
        }
    }
    match render(&state.pool).await {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => crate::error::ApiError::Unavailable(error).into_response(),
    }
}

/// Compares without stopping at the first difference.
fn equal(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}
