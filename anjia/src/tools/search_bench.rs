//! `anjia bench search`: the admins' order search on a large synthetic table, through the
//! GIN-indexed search terms, against the same searches as a substring scan.
//!
//! The table lives in its own schema (`bench_search`), is filled with generated orders (all six
//! services, a dozen districts, common surnames, random phone tails) whose terms are computed
//! as the orders projection computes them, and is dropped afterwards.

use std::time::Instant;

use serde::Serialize;
use sqlx::PgPool;

use application::stats::Sorted;

#[derive(Debug, Clone, clap::Args)]
pub struct SearchBenchOptions {
    /// How many orders the table holds.
    #[arg(long, default_value_t = 1_000_000)]
    pub orders: i64,
    /// How many times each search runs.
    #[arg(long, default_value_t = 20)]
    pub repeat: usize,
}

#[derive(Debug, Serialize)]
pub struct SearchTiming {
    pub query: String,
    /// Rows the query matches in the whole table.
    pub matches: i64,
    /// First page (50 newest) through the search terms, milliseconds.
    pub indexed_p50_ms: f64,
    pub indexed_p99_ms: f64,
    /// The same page by a substring scan, milliseconds.
    pub scan_p50_ms: f64,
    /// scan p50 / indexed p50.
    pub speed_up: f64,
}

#[derive(Debug, Serialize)]
pub struct SearchBenchReport {
    pub orders: i64,
    pub fill_seconds: f64,
    pub index_seconds: f64,
    pub searches: Vec<SearchTiming>,
}

const QUERIES: [&str; 8] = [
    "保洁",
    "深度保洁",
    "月嫂 浦东",
    "王",
    "张伟",
    "5678",
    "deep clean",
    "徐汇 保姆 李",
];

pub async fn run(pool: &PgPool, options: &SearchBenchOptions) -> anyhow::Result<SearchBenchReport> {
    sqlx::raw_sql(
        "DROP SCHEMA IF EXISTS bench_search CASCADE;
         CREATE SCHEMA bench_search;
         CREATE TABLE bench_search.orders (
             order_id     bigint PRIMARY KEY,
             placed_at    timestamptz NOT NULL,
             search_text  text NOT NULL,
             search_terms text[] NOT NULL
         );",
    )
    .execute(pool)
    .await?;
    let services: Vec<String> = domain::catalogue::catalogue()
        .iter()
        .map(|spec| format!("{} {}", spec.name_zh, spec.name_en))
        .collect();
    const DISTRICTS: [&str; 12] = [
        "浦东新区",
        "徐汇区",
        "静安区",
        "黄浦区",
        "长宁区",
        "普陀区",
        "虹口区",
        "杨浦区",
        "闵行区",
        "宝山区",
        "嘉定区",
        "松江区",
    ];
    const SURNAMES: [&str; 10] = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
    const GIVEN: [&str; 12] = [
        "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军",
    ];
    let started = Instant::now();
    let now = chrono::Utc::now();
    let mut next = 1i64;
    while next <= options.orders {
        let last = (next + 9_999).min(options.orders);
        let ids: Vec<i64> = (next..=last).collect();
        let mut times = Vec::with_capacity(ids.len());
        let mut texts = Vec::with_capacity(ids.len());
        let mut terms = Vec::with_capacity(ids.len());
        for &n in &ids {
            let index = n as usize;
            let text = format!(
                "{} 上海市 {} {}{} 1{:08} 138****{:04}",
                services[index % services.len()],
                DISTRICTS[(index / 7) % DISTRICTS.len()],
                SURNAMES[(index / 11) % SURNAMES.len()],
                GIVEN[(index / 13) % GIVEN.len()],
                (n * 7_919) % 100_000_000,
                (n * 104_729) % 10_000,
            );
            times.push(now - chrono::Duration::seconds(n));
            terms.push(projections::search::index_terms(&text).join("\u{1}"));
            texts.push(text);
        }
        sqlx::query(
            "INSERT INTO bench_search.orders (order_id, placed_at, search_text, search_terms)
             SELECT id, at, text, string_to_array(terms, chr(1))
               FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[]) AS t(id, at, text, terms)",
        )
        .bind(&ids)
        .bind(&times)
        .bind(&texts)
        .bind(&terms)
        .execute(pool)
        .await?;
        next = last + 1;
    }
    let fill_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    sqlx::raw_sql(
        "ALTER TABLE bench_search.orders ALTER COLUMN search_terms SET STATISTICS 1000;
         CREATE INDEX ON bench_search.orders USING gin (search_terms);
         CREATE INDEX ON bench_search.orders (placed_at DESC, order_id DESC);
         ANALYZE bench_search.orders;",
    )
    .execute(pool)
    .await?;
    let index_seconds = started.elapsed().as_secs_f64();
    let mut searches = Vec::new();
    for query in QUERIES {
        let wanted = projections::search::query_terms(query);
        let matches: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bench_search.orders WHERE search_terms @> $1::text[]",
        )
        .bind(&wanted)
        .fetch_one(pool)
        .await?;
        let mut indexed = Vec::new();
        for _ in 0..options.repeat {
            let started = Instant::now();
            sqlx::query(
                "SELECT order_id FROM bench_search.orders
                  WHERE search_terms @> $1::text[]
                  ORDER BY placed_at DESC, order_id DESC LIMIT 50",
            )
            .bind(&wanted)
            .persistent(false)
            .fetch_all(pool)
            .await?;
            indexed.push(started.elapsed().as_secs_f64() * 1_000.0);
        }
        // The scan: every word of the query as a substring.
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        let mut scanned = Vec::new();
        for _ in 0..options.repeat.min(5) {
            let started = Instant::now();
            sqlx::query(
                "SELECT order_id FROM bench_search.orders o
                  WHERE (SELECT bool_and(strpos(lower(o.search_text), word) > 0) FROM unnest($1::text[]) AS word)
                  ORDER BY placed_at DESC, order_id DESC LIMIT 50",
            )
            .bind(&words)
            .fetch_all(pool)
            .await?;
            scanned.push(started.elapsed().as_secs_f64() * 1_000.0);
        }
        let (indexed, scanned) = (Sorted::new(indexed), Sorted::new(scanned));
        let indexed_p50_ms = indexed.median();
        let scan_p50_ms = scanned.median();
        searches.push(SearchTiming {
            query: query.to_owned(),
            matches,
            indexed_p50_ms,
            indexed_p99_ms: indexed.percentile(0.99),
            scan_p50_ms,
            speed_up: scan_p50_ms / indexed_p50_ms.max(0.001),
        });
    }
    sqlx::raw_sql("DROP SCHEMA bench_search CASCADE")
        .execute(pool)
        .await?;
    Ok(SearchBenchReport {
        orders: options.orders,
        fill_seconds,
        index_seconds,
        searches,
    })
}
