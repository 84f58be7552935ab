//! Recent warnings and errors, kept in the database for the admins' view.
//!
//! A `tracing` layer copies every WARN and ERROR event (with the fields of the spans around it:
//! request id, actor, aggregate and its id) to each running server of this process, whose
//! writer task stores them in batches. The copy never blocks the code that logs: when a writer
//! falls behind, records are dropped and counted. The database's own warnings (`sqlx`) are not
//! copied, so a failing database cannot feed the writer its own errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// One captured warning or error.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogRecord {
    pub recorded_at: DateTime<Utc>,
    /// `WARN` or `ERROR`.
    pub level: String,
    pub target: String,
    pub message: String,
    /// The event's fields and those of its spans (innermost wins).
    #[schema(value_type = Object)]
    pub fields: Value,
    pub request_id: Option<String>,
    /// `host:pid` of the process that logged it.
    pub process: String,
}

struct Sinks {
    next_id: u64,
    senders: Vec<(u64, mpsc::Sender<LogRecord>)>,
}

fn sinks() -> &'static Mutex<Sinks> {
    static SINKS: OnceLock<Mutex<Sinks>> = OnceLock::new();
    SINKS.get_or_init(|| {
        Mutex::new(Sinks {
            next_id: 0,
            senders: Vec::new(),
        })
    })
}

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Records dropped because a writer fell behind.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn process_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        format!("{host}:{}", std::process::id())
    })
}

/// The layer to add to the process's subscriber.
pub struct CaptureLayer;

impl CaptureLayer {
    /// With its own filter, independent of the log output's: it needs the INFO spans (requests
    /// and commands) for their fields even when the output shows only warnings.
    pub fn filtered<S>(
    ) -> tracing_subscriber::filter::Filtered<Self, tracing_subscriber::filter::LevelFilter, S>
    where
        S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    {
        use tracing_subscriber::Layer as _;
        CaptureLayer.with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    }
}

#[derive(Default)]
struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
}

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        context: Context<'_, S>,
    ) {
        if let Some(span) = context.span(id) {
            let mut fields = SpanFields::default();
            attributes.record(&mut JsonVisitor(&mut fields.0));
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        context: Context<'_, S>,
    ) {
        if let Some(span) = context.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(&mut fields.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() > Level::WARN || metadata.target().starts_with("sqlx") {
            return;
        }
        let senders: Vec<mpsc::Sender<LogRecord>> = {
            let sinks = sinks().lock().expect("log sinks");
            if sinks.senders.is_empty() {
                return;
            }
            sinks
                .senders
                .iter()
                .map(|(_, sender)| sender.clone())
                .collect()
        };
        let mut fields = Map::new();
        if let Some(scope) = context.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<SpanFields>() {
                    for (name, value) in &span_fields.0 {
                        fields.insert(name.clone(), value.clone());
                    }
                }
            }
        }
        event.record(&mut JsonVisitor(&mut fields));
        let message = match fields.remove("message") {
            Some(Value::String(message)) => message,
            _ => String::new(),
        };
        let request_id = fields
            .get("request_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        let record = LogRecord {
            recorded_at: Utc::now(),
            level: metadata.level().to_string(),
            target: metadata.target().to_owned(),
            message,
            fields: Value::Object(fields),
            request_id,
            process: process_name().to_owned(),
        };
        for sender in senders {
            if sender.try_send(record.clone()).is_err() {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Starts storing this process's warnings and errors in `pool` until `shutdown` turns true.
pub fn start_writer(
    pool: PgPool,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let (sender, mut receiver) = mpsc::channel::<LogRecord>(2_000);
    let id = {
        let mut sinks = sinks().lock().expect("log sinks");
        sinks.next_id += 1;
        let id = sinks.next_id;
        sinks.senders.push((id, sender));
        id
    };
    tokio::spawn(async move {
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                received = receiver.recv_many(&mut batch, 200) => {
                    if received == 0 {
                        break;
                    }
                    // Best effort: a database that cannot take them now loses them, and the
                    // JSON logs on standard error still hold them.
                    let _ = store(&pool, &batch).await;
                    batch.clear();
                }
                _ = shutdown.changed() => break,
            }
        }
        sinks()
            .lock()
            .expect("log sinks")
            .senders
            .retain(|(sink, _)| *sink != id);
        receiver.close();
        while receiver.recv_many(&mut batch, 200).await > 0 {
            let _ = store(&pool, &batch).await;
            batch.clear();
        }
    })
}

async fn store(pool: &PgPool, records: &[LogRecord]) -> Result<(), sqlx::Error> {
    let mut insert = sqlx::QueryBuilder::new(
        "INSERT INTO log_events (recorded_at, level, target, message, fields, request_id, process) ",
    );
    insert.push_values(records, |mut row, record| {
        row.push_bind(record.recorded_at)
            .push_bind(&record.level)
            .push_bind(&record.target)
            .push_bind(&record.message)
            .push_bind(&record.fields)
            .push_bind(&record.request_id)
            .push_bind(&record.process);
    });
    insert.build().execute(pool).await.map(|_| ())
}

/// The newest warnings and errors, newest first; `errors_only` leaves out warnings.
pub async fn recent(
    pool: &PgPool,
    errors_only: bool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, LogRecord)>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT log_id, recorded_at, level, target, message, fields, request_id, process
           FROM log_events
          WHERE ($1 = false OR level = 'ERROR') AND ($2::bigint IS NULL OR log_id < $2)
          ORDER BY log_id DESC LIMIT $3",
    )
    .bind(errors_only)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("log_id")?,
                LogRecord {
                    recorded_at: row.try_get("recorded_at")?,
                    level: row.try_get("level")?,
                    target: row.try_get("target")?,
                    message: row.try_get("message")?,
                    fields: row.try_get("fields")?,
                    request_id: row.try_get("request_id")?,
                    process: row.try_get("process")?,
                },
            ))
        })
        .collect()
}
