//! Analysts' SQL: one read-only query at a time against the warehouse.
//!
//! Every query runs on a connection of its own that cannot reach anything but the warehouse:
//! - the file is opened read-only;
//! - external access is off (no files, no network, no `ATTACH`, no `COPY`, no extensions), and
//!   the configuration is locked, so a query cannot switch any of it back on;
//! - memory and threads are capped, and nothing spills to disk;
//! - a timer interrupts the query at its time-out;
//! - rows beyond the limit are not fetched.
//!
//! What runs is decided by DuckDB's own parser: `json_serialize_sql` serialises exactly one
//! `SELECT` and reports anything else as an error, and the statement that runs is DuckDB's own
//! rendering of that parse (`json_deserialize_sql`), wrapped in a subquery, so nothing but the
//! one query the parser saw can run.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use duckdb::{AccessMode, Config, Connection};
use serde::Serialize;

use crate::reports::{freshness, Freshness};
use crate::Warehouse;

/// What one query may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rows returned at most; more are cut off and the answer says so.
    pub rows: usize,
    /// Bytes of answer (its rows as JSON) held at most, on top of DuckDB's own memory limit,
    /// which does not cover what is copied out of it; past it the rows are cut off too.
    pub bytes: usize,
    pub timeout: Duration,
    /// DuckDB's `memory_limit`, for example `512MB`.
    pub memory: String,
    pub threads: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rows: 10_000,
            bytes: 16 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            memory: "512MB".to_owned(),
            threads: 1,
        }
    }
}

/// Longest query text accepted.
pub const MAX_TEXT: usize = 20_000;

/// Why a query was not run, or stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Empty,
    TooLong,
    /// Not exactly one `SELECT` (DuckDB's parser says what it found).
    NotAQuery(String),
    /// It asked for files, the network, extensions or settings.
    Access(String),
    TimedOut(Duration),
    OutOfMemory(String),
    /// Well-formed but wrong: an unknown table or column, a type error, a syntax error.
    Invalid(String),
}

impl Refusal {
    /// The stable problem type.
    pub fn problem(&self) -> &'static str {
        match self {
            Refusal::Empty | Refusal::TooLong | Refusal::NotAQuery(_) => {
                "/problems/sql-not-a-query"
            }
            Refusal::Access(_) => "/problems/sql-access-denied",
            Refusal::TimedOut(_) => "/problems/sql-timed-out",
            Refusal::OutOfMemory(_) => "/problems/sql-out-of-memory",
            Refusal::Invalid(_) => "/problems/sql-invalid",
        }
    }

    /// Chinese first, then English.
    pub fn message(&self) -> String {
        match self {
            Refusal::Empty => "没有要执行的查询 / there is no query to run".to_owned(),
            Refusal::TooLong => format!(
                "查询超过 {MAX_TEXT} 个字符 / the query is longer than {MAX_TEXT} characters"
            ),
            Refusal::NotAQuery(found) => format!(
                "只能执行一条只读 SELECT 查询 / only one read-only SELECT query may run: {found}"
            ),
            Refusal::Access(found) => format!(
                "查询不能访问文件、网络、扩展或设置 / queries may not reach files, the network, extensions or settings: {found}"
            ),
            Refusal::TimedOut(after) => format!(
                "查询超过 {} 秒已被中止 / the query was stopped after {} s",
                after.as_secs_f64(),
                after.as_secs_f64()
            ),
            Refusal::OutOfMemory(found) => format!(
                "查询超出内存上限 / the query went over its memory limit: {found}"
            ),
            Refusal::Invalid(found) => format!("查询有误 / the query is wrong: {found}"),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message())
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Column {
    pub name: String,
    /// DuckDB's name for the type, e.g. `BIGINT`, `DATE`, `VARCHAR[]`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A query's answer. Values are JSON as DuckDB's `to_json` writes them: numbers, strings
/// (dates and UUIDs too), booleans, null, lists and objects.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Answer {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// More rows were there than the limit.
    pub truncated: bool,
    /// Which limit cut the rows off: `rows` or `bytes` (absent when nothing was cut).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_by: Option<String>,
    pub elapsed_ms: f64,
    /// When the warehouse was last refreshed, and how many events it holds.
    pub freshness: Freshness,
    /// The most rows an answer holds, and the most bytes (its rows as JSON).
    pub max_rows: usize,
    pub max_bytes: usize,
}

/// The text without surrounding space and trailing semicolons.
fn trimmed(sql: &str) -> &str {
    let mut text = sql.trim();
    while let Some(rest) = text.strip_suffix(';') {
        text = rest.trim_end();
    }
    text
}

/// The first line of DuckDB's message, without its error-class prefix repeated.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

fn classify(message: &str, timeout: Duration) -> Refusal {
    let line = first_line(message);
    if message.contains("INTERRUPT") || message.contains("Interrupted") {
        Refusal::TimedOut(timeout)
    } else if message.contains("Out of Memory") || message.contains("out of memory") {
        Refusal::OutOfMemory(line)
    } else if message.contains("Permission Error")
        || message.contains("disabled by configuration")
        || message.contains("external access")
    {
        Refusal::Access(line)
    } else {
        Refusal::Invalid(line)
    }
}

impl Warehouse {
    /// A connection for analysts: read-only, shut off from everything outside the file.
    fn open_for_analysts(&self, limits: &Limits) -> anyhow::Result<Connection> {
        if !self.path().exists() {
            return Err(crate::NotLoaded.into());
        }
        let config = Config::default()
            .access_mode(AccessMode::ReadOnly)?
            .enable_autoload_extension(false)?
            .with("autoinstall_known_extensions", "false")?
            .with("allow_community_extensions", "false")?
            .with("enable_external_access", "false")?
            .with("max_temp_directory_size", "0B")?
            .max_memory(&limits.memory)?
            .threads(limits.threads)?
            .with("lock_configuration", "true")?;
        Ok(Connection::open_with_flags(self.path(), config)?)
    }

    /// Runs one analyst's query. The outer error is the platform's (the file could not be
    /// opened, for example while another process writes it); the inner one is the query's.
    pub fn analyst_query(
        &self,
        sql: &str,
        limits: &Limits,
    ) -> anyhow::Result<Result<Answer, Refusal>> {
        if sql.chars().count() > MAX_TEXT {
            return Ok(Err(Refusal::TooLong));
        }
        let text = trimmed(sql);
        if text.is_empty() {
            return Ok(Err(Refusal::Empty));
        }
        let started = Instant::now();
        let connection = self.open_for_analysts(limits)?;

        // DuckDB's parser decides whether this is exactly one SELECT.
        let serialized: String =
            connection.query_row("SELECT json_serialize_sql($1::VARCHAR)", [text], |row| {
                row.get(0)
            })?;
        let parsed: serde_json::Value = serde_json::from_str(&serialized)?;
        if parsed["error"].as_bool() == Some(true) {
            let message = parsed["error_message"].as_str().unwrap_or_default();
            let kind = parsed["error_type"].as_str().unwrap_or_default();
            return Ok(Err(if kind == "parser" {
                Refusal::Invalid(first_line(message))
            } else {
                Refusal::NotAQuery(first_line(message))
            }));
        }
        let statements = parsed["statements"].as_array().map_or(0, Vec::len);
        if statements != 1 {
            return Ok(Err(Refusal::NotAQuery(format!(
                "{statements} 条语句 / {statements} statements"
            ))));
        }

        // What runs is DuckDB's own rendering of that one parsed statement: no comments, no
        // semicolons, nothing the parser did not see.
        let rendered: String = connection.query_row(
            "SELECT json_deserialize_sql($1::JSON)",
            [&serialized],
            |row| row.get(0),
        )?;

        // The time-out: a timer interrupts the connection unless the query is done first.
        let interrupt = connection.interrupt_handle();
        let (done, finished) = mpsc::channel::<()>();
        let timeout = limits.timeout;
        let timer = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(timeout) {
                interrupt.interrupt();
            }
        });
        let outcome = run_wrapped(&connection, &rendered, limits.rows, limits.bytes);
        drop(done);
        let _ = timer.join();
        Ok(match outcome {
            Ok((columns, rows, truncated_by)) => Ok(Answer {
                columns,
                rows,
                truncated: truncated_by.is_some(),
                truncated_by: truncated_by.map(str::to_owned),
                elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
                freshness: freshness(&connection)?,
                max_rows: limits.rows,
                max_bytes: limits.bytes,
            }),
            Err(error) => Err(classify(&format!("{error:#}"), timeout)),
        })
    }
}

/// The columns, the rows, and which limit cut them off.
type Rows = (
    Vec<Column>,
    Vec<Vec<serde_json::Value>>,
    Option<&'static str>,
);

fn run_wrapped(
    connection: &Connection,
    text: &str,
    limit: usize,
    byte_limit: usize,
) -> anyhow::Result<Rows> {
    // A newline before the closing parenthesis, so a trailing `--` comment ends where it should.
    let wrapped = format!("FROM (\n{text}\n) AS analyst_query");
    let mut describe = connection.prepare(&format!("DESCRIBE SELECT * {wrapped}"))?;
    let columns: Vec<Column> = describe
        .query_map([], |row| {
            Ok(Column {
                name: row.get(0)?,
                kind: row.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut query = connection.prepare(&format!(
        "SELECT to_json(analyst_query)::VARCHAR {wrapped} LIMIT {}",
        limit + 1
    ))?;
    let mut rows = Vec::new();
    let mut truncated = None;
    let mut bytes = 0;
    let mut cursor = query.query([])?;
    while let Some(row) = cursor.next()? {
        if rows.len() == limit {
            truncated = Some("rows");
            break;
        }
        let object: String = row.get(0)?;
        // Counted before the row is kept: the answer never holds more than the limit.
        bytes += object.len();
        if bytes > byte_limit {
            truncated = Some("bytes");
            break;
        }
        let object: BTreeMap<String, serde_json::Value> = serde_json::from_str(&object)?;
        rows.push(
            columns
                .iter()
                .map(|column| {
                    object
                        .get(&column.name)
                        .cloned()
                        .unwrap_or(serde_json::Value::Null)
                })
                .collect(),
        );
    }
    Ok((columns, rows, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warehouse() -> (crate::Scratch, Warehouse) {
        let (scratch, warehouse) = crate::Scratch::new();
        let connection = warehouse.open_for_load().expect("created");
        connection
            .execute_batch(
                "INSERT INTO order_facts VALUES
                   ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000009',
                    'daily_cleaning', '上海', '徐汇区', 12000, TIMESTAMP '2026-11-01 02:00:00', DATE '2026-11-01'),
                   ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000009',
                    'nanny', '北京', '朝阳区', 30000, TIMESTAMP '2026-11-02 02:00:00', DATE '2026-11-02');",
            )
            .expect("rows");
        drop(connection);
        (scratch, warehouse)
    }

    fn run(warehouse: &Warehouse, sql: &str) -> Result<Answer, Refusal> {
        warehouse
            .analyst_query(sql, &Limits::default())
            .expect("the file opens")
    }

    #[test]
    fn a_select_answers_with_typed_columns_and_json_values_and_the_row_limit_cuts() {
        let (_directory, warehouse) = warehouse();
        let answer = run(
            &warehouse,
            "SELECT city, sum(total_fen) AS gmv, min(day) AS first FROM order_facts
              GROUP BY city ORDER BY gmv DESC; -- by city",
        )
        .expect("answered");
        assert_eq!(
            answer.columns,
            vec![
                Column {
                    name: "city".into(),
                    kind: "VARCHAR".into()
                },
                Column {
                    name: "gmv".into(),
                    kind: "HUGEINT".into()
                },
                Column {
                    name: "first".into(),
                    kind: "DATE".into()
                },
            ]
        );
        assert_eq!(
            answer.rows[0],
            vec![
                serde_json::json!("北京"),
                serde_json::json!(30000),
                serde_json::json!("2026-11-02")
            ]
        );
        assert!(!answer.truncated);
        let limited = warehouse
            .analyst_query(
                "SELECT * FROM range(10)",
                &Limits {
                    rows: 3,
                    ..Limits::default()
                },
            )
            .expect("opens")
            .expect("answered");
        assert_eq!(limited.rows.len(), 3);
        assert!(limited.truncated);
    }

    #[test]
    fn anything_but_one_select_inside_the_file_is_refused() {
        let (_directory, warehouse) = warehouse();
        for sql in [
            "DELETE FROM order_facts",
            "DROP TABLE order_facts",
            "CREATE TABLE x AS SELECT 1",
            "INSERT INTO order_facts SELECT * FROM order_facts",
            "SET memory_limit = '10GB'",
            "ATTACH 'other.duckdb'",
            "COPY order_facts TO 'out.csv'",
            "INSTALL httpfs",
            "SELECT 1; SELECT 2",
            "PRAGMA database_list",
        ] {
            let refusal = run(&warehouse, sql).expect_err(sql);
            assert!(
                matches!(refusal, Refusal::NotAQuery(_)),
                "{sql}: {refusal:?}"
            );
        }
        // Breaking out of the subquery is a syntax error to DuckDB's parser.
        for sql in ["SELECT (1", "SELECT 1); DELETE FROM order_facts; SELECT (1"] {
            let refusal = run(&warehouse, sql).expect_err(sql);
            assert!(matches!(refusal, Refusal::Invalid(_)), "{sql}: {refusal:?}");
        }
        for sql in [
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM read_text('/etc/hostname')",
            "SELECT * FROM 'https://example.com/x.parquet'",
            "SELECT * FROM glob('/*')",
        ] {
            let refusal = run(&warehouse, sql).expect_err(sql);
            assert!(matches!(refusal, Refusal::Access(_)), "{sql}: {refusal:?}");
        }
        assert_eq!(run(&warehouse, " ;; ").expect_err("empty"), Refusal::Empty);
        assert!(matches!(
            run(&warehouse, "SELECT nothing FROM order_facts").expect_err("unknown column"),
            Refusal::Invalid(_)
        ));
        // Nothing changed.
        let count = run(&warehouse, "SELECT count(*) AS n FROM order_facts").expect("count");
        assert_eq!(count.rows[0][0], serde_json::json!(2));
    }

    #[test]
    fn a_long_query_is_stopped_at_its_time_out_and_a_greedy_one_at_its_memory_limit() {
        let (_directory, warehouse) = warehouse();
        let slow = warehouse
            .analyst_query(
                "SELECT count(*) FROM range(100000) a, range(100000) b WHERE a.range + b.range = -1",
                &Limits { timeout: Duration::from_millis(300), ..Limits::default() },
            )
            .expect("opens");
        assert_eq!(
            slow.expect_err("stopped"),
            Refusal::TimedOut(Duration::from_millis(300))
        );
        let greedy = warehouse
            .analyst_query(
                "SELECT list(range) FROM range(50000000)",
                &Limits {
                    memory: "64MB".into(),
                    ..Limits::default()
                },
            )
            .expect("opens");
        assert!(matches!(
            greedy.expect_err("refused"),
            Refusal::OutOfMemory(_)
        ));
    }
}
