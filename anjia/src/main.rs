//! `anjia`: the platform's one binary.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anjia::config::{self, Environment, FromEnvironment, Settings};
use anjia::server;
use anjia::tools;
use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc rather than the C library's allocator: a request allocates and frees many small
/// buffers across the runtime's threads, where glibc's malloc spent a sixth of the server's
/// CPU (`perf` at concurrency 32, see the README's figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "anjia", about = "安家 Anjia home-services platform")]
struct Cli {
    /// PostgreSQL to use. Without it, the platform runs its own under `--var-dir`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Where the embedded PostgreSQL keeps its data.
    #[arg(long, env = "ANJIA_VAR_DIR", default_value = "var", global = true)]
    var_dir: PathBuf,
    /// The key-encryption key for personal data (base64 of 32 bytes). Without it, the key is
    /// kept in the database, which is fine for development only.
    #[arg(long, env = "ANJIA_MASTER_KEY", global = true, hide_env_values = true)]
    master_key: Option<String>,
    /// What is logged, e.g. `info,sqlx=warn` (tracing's filter syntax).
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    log: String,
    /// Every `ANJIA_*` setting (see `anjia::config::SETTINGS`).
    #[command(flatten)]
    environment: Environment,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Clone, Copy)]
enum DbAction {
    /// Where its data and log are, whether it runs, and on which port.
    Status,
    /// Make it if it does not exist, and start it.
    Start,
    /// Stop it (a fast shutdown: sessions are ended, nothing committed is lost).
    Stop,
    /// Print its connection URL, password included, for psql or another tool.
    Url,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and run the projectors.
    Serve {
        #[arg(long, env = "ANJIA_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Run without projectors (another process runs them).
        #[arg(long)]
        no_projectors: bool,
    },
    /// Apply database migrations.
    Migrate,
    /// Print the API's OpenAPI document (what `/api/openapi.json` answers); the web apps'
    /// typed client is generated from it. Needs no database.
    Openapi,
    /// List every `ANJIA_*` setting: what it does and whether it is set (secrets are not shown).
    /// Needs no database.
    Settings,
    /// The embedded PostgreSQL under `--var-dir` (the one used when no `DATABASE_URL` is
    /// given), which outlives `anjia serve`: see whether it runs, start or stop it, print its
    /// connection URL.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Rebuild a projection from position zero beside the live one, then swap.
    RebuildProjection { name: String },
    /// Show each projection's position and lag.
    ProjectionStatus,
    /// Create an administrator (or, with --role analyst, an analyst) account.
    CreateAdmin {
        #[arg(long, default_value = "admin", value_parser = ["admin", "analyst"])]
        role: String,
        #[arg(long)]
        login: String,
        /// Read from the environment so it stays out of shell history.
        #[arg(long, env = "ANJIA_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Import the list of dishonest persons subject to enforcement (失信被执行人名单) from a CSV
    /// file with the header `name,id_number,case_number,court,published_on`, for offline checks.
    ImportBlacklist { file: PathBuf },
    /// Erase a person: destroy their data key, so their personal data becomes unreadable
    /// everywhere (the event log included), scrub their sign-in data, and rebuild read models.
    ErasePerson { person_id: uuid::Uuid },
    /// Benchmark place-order over HTTP against the raw insert limit (use a release build);
    /// `anjia bench dispatch` times one automatic dispatch round instead.
    Bench {
        #[command(subcommand)]
        what: Option<BenchWhat>,
        #[command(flatten)]
        options: tools::bench::BenchOptions,
    },
    /// Compare each payment provider's statement of a local date with the ledger and list
    /// every difference.
    Reconcile { date: chrono::NaiveDate },
    /// Write a realistic history (customers, workers, orders in five cities, payments,
    /// refunds, reviews, activity, seasons) into the event log, as valid events.
    DemoData(tools::demo_data::DemoOptions),
    /// Replay a day of orders and workers under dispatch policies and print what each did.
    Simulate(tools::simulate::SimulateOptions),
    /// The audit trail: verify the event log's hash chains, or export events as JSON Lines.
    Audit {
        #[command(subcommand)]
        what: AuditWhat,
    },
    /// The analytics warehouse (DuckDB, `ANJIA_WAREHOUSE` or var/warehouse.duckdb).
    Analytics {
        #[command(subcommand)]
        what: AnalyticsWhat,
    },
    /// Print a report from the warehouse: `revenue`, `orders`, `satisfaction` or `activity`.
    Report {
        name: String,
        /// First day (Beijing), YYYY-MM-DD.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last day (Beijing), YYYY-MM-DD.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        city: Option<String>,
        /// `customer` or `worker` (the activity report).
        #[arg(long)]
        role: Option<String>,
        /// CSV instead of JSON.
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Subcommand)]
enum AnalyticsWhat {
    /// Load every event committed since the last refresh, now.
    Refresh,
    /// Write the fact tables as Parquet, partitioned by month (Hive style), under DIR.
    Export { directory: std::path::PathBuf },
    /// The analysts' shell: read-only SQL against the warehouse, statements ending with `;`,
    /// from standard input (or `-c`), under the limits of the HTTP endpoint.
    Sql {
        /// Run this one statement and leave (exit status 1 if it is refused).
        #[arg(short = 'c', long)]
        command: Option<String>,
        /// Print each answer as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditWhat {
    /// Walk every stream's hash chain and report any altered, missing or re-ordered event;
    /// exits with status 2 if it finds any.
    Verify,
    /// Write the events recorded from `--from` up to `--to` (RFC 3339 times or dates, UTC) as
    /// JSON Lines, in commit order, to standard output or `--output`.
    Export {
        #[arg(long, value_parser = parse_instant)]
        from: chrono::DateTime<chrono::Utc>,
        #[arg(long, value_parser = parse_instant)]
        to: chrono::DateTime<chrono::Utc>,
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// An RFC 3339 time, or a date meaning its midnight UTC.
fn parse_instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(moment) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(moment.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| format!("{text} is neither an RFC 3339 time nor a YYYY-MM-DD date"))
}

#[derive(Subcommand)]
enum BenchWhat {
    /// One automatic round of open orders against workers: time, and total cost against the
    /// certified optimum of the same cost matrix. Needs no database.
    Dispatch(tools::simulate::DispatchBenchOptions),
    /// The admins' order search on a large generated table: GIN-indexed terms against a
    /// substring scan.
    Search(tools::search_bench::SearchBenchOptions),
    /// Signaling: idle connections one server process holds and their memory, and relay
    /// latency of offers, answers and candidates across many rooms, on one and two processes.
    Signaling(tools::signaling_bench::SignalingBenchOptions),
    /// The analytics warehouse on a large log: demo data up to `--events`, the load's events
    /// per second, and each report in DuckDB against the same report as SQL on PostgreSQL.
    Analytics(tools::analytics_bench::AnalyticsBenchOptions),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // JSON lines on standard error, each with its request's id, actor and the aggregate a
    // command touched; warnings and errors are also kept for the admins' view.
    use tracing_subscriber::Layer;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .with_filter(
                    tracing_subscriber::EnvFilter::try_new(&cli.log)
                        .unwrap_or_else(|_| "info,sqlx=warn".into()),
                ),
        )
        .with(command_api::logs::CaptureLayer::filtered())
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli.database_url.as_deref();
    let master_key = cli.master_key.as_deref();
    match cli.command {
        Command::Settings => {
            let mut stdout = std::io::stdout().lock();
            for line in cli.environment.describe() {
                writeln!(stdout, "{line}")?;
            }
        }
        Command::Openapi => {
            print_json(command_api::openapi::document())?;
        }
        Command::Db { action } => {
            if url.is_some() {
                anyhow::bail!(
                    "DATABASE_URL names the PostgreSQL in use; there is no embedded one to manage"
                );
            }
            let data_dir = cli.var_dir.join("pg");
            tokio::task::spawn_blocking(move || {
                embedded_db(action, &data_dir, &mut std::io::stdout().lock())
            })
            .await
            .context("managing the embedded PostgreSQL")??;
        }
        Command::Serve {
            listen,
            no_projectors,
        } => {
            let pool_size = config::db_pool(&cli.environment)?;
            // Refused before anything is touched: production mode's rules come first.
            let mut settings = Settings::from_environment(&cli.environment)?;
            settings.check(master_key.is_some())?;
            let pool = server::connect(url, &cli.var_dir, pool_size).await?;
            let vault = server::prepare(&pool, master_key).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            settings.warehouse.path = Some(settings.warehouse.file(&cli.var_dir));
            let running = server::start(pool, listener, !no_projectors, &settings, vault).await?;
            // Machine-readable, so scripts and tests learn the port when asked for port 0.
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "anjia listening on http://{}", running.address)?;
            stdout.flush()?;
            drop(stdout);
            tracing::info!(address = %running.address, "serving");
            server::termination().await;
            tracing::info!("shutting down");
            running.stop().await;
        }
        Command::Migrate => {
            let pool = server::connect(url, &cli.var_dir, 2).await?;
            server::prepare(&pool, master_key).await?;
            let mut stdout = std::io::stdout().lock();
            for (version, description) in migrations::known() {
                writeln!(stdout, "{version} {description}")?;
            }
        }
        Command::RebuildProjection { name } => {
            anyhow::ensure!(
                projections::PROJECTION_NAMES.contains(&name.as_str()),
                "no projection named {name}; known: {}",
                projections::PROJECTION_NAMES.join(", ")
            );
            let pool = server::connect(url, &cli.var_dir, 4).await?;
            let vault = server::prepare(&pool, master_key).await?;
            let projection =
                projections::projection_by_name(&name, &vault).context("projection")?;
            let report = projections::rebuild(&pool, projection.as_ref()).await?;
            writeln!(
                std::io::stdout().lock(),
                "{}",
                serde_json::to_string(&report)?
            )?;
        }
        Command::ProjectionStatus => {
            let pool = server::connect(url, &cli.var_dir, 2).await?;
            let statuses = projections::status(&pool).await?;
            print_json(&statuses)?;
        }
        Command::CreateAdmin {
            login,
            password,
            role,
        } => {
            let pool = server::connect(url, &cli.var_dir, 2).await?;
            server::prepare(&pool, master_key).await?;
            let user_id = command_api::routes::accounts::create_staff(
                &pool,
                &login,
                &password,
                domain::Role::parse(&role).context("role")?,
            )
            .await?;
            writeln!(std::io::stdout().lock(), "{user_id}")?;
        }
        Command::ImportBlacklist { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let pool = server::connect(url, &cli.var_dir, 2).await?;
            server::prepare(&pool, master_key).await?;
            let report = application::background::import_blacklist(&pool, &text).await?;
            print_json(&report)?;
        }
        Command::ErasePerson { person_id } => {
            let pool = server::connect(url, &cli.var_dir, 4).await?;
            let vault = server::prepare(&pool, master_key).await?;
            let report = application::erasure::erase_person(&pool, &vault, person_id).await?;
            print_json(&report)?;
        }
        Command::Bench {
            what: Some(BenchWhat::Search(options)),
            ..
        } => {
            let pool = server::connect(url, &cli.var_dir, 4).await?;
            server::prepare(&pool, master_key).await?;
            let report = tools::search_bench::run(&pool, &options).await?;
            print_json(&report)?;
        }
        Command::Bench {
            what: Some(BenchWhat::Analytics(options)),
            ..
        } => {
            let services = tool_services(&cli.environment, &cli.var_dir, url, master_key).await?;
            let report = tools::analytics_bench::run(&services, &cli.var_dir, &options).await?;
            print_json(&report)?;
        }
        Command::Bench {
            what: Some(BenchWhat::Signaling(options)),
            ..
        } => {
            let report =
                tools::signaling_bench::run(url, &cli.var_dir, master_key, &options).await?;
            print_json(&report)?;
        }
        Command::Bench {
            what: Some(BenchWhat::Dispatch(options)),
            ..
        } => {
            let report =
                tokio::task::spawn_blocking(move || tools::simulate::bench_dispatch(&options))
                    .await?;
            print_json(&report)?;
        }
        Command::Bench {
            what: None,
            options,
        } => {
            let report = tools::bench::run(url, &cli.var_dir, master_key, options).await?;
            print_json(&report)?;
        }
        Command::Analytics {
            what: AnalyticsWhat::Refresh,
        } => {
            let pool = server::connect(url, &cli.var_dir, 4).await?;
            server::prepare(&pool, master_key).await?;
            let warehouse = command_api::warehouse::WarehouseHandle::new(
                command_api::warehouse::WarehouseSettings::from_environment(&cli.environment)?
                    .file(&cli.var_dir),
            );
            let report = warehouse.refresh(&pool).await?;
            print_json(&report)?;
        }
        Command::Analytics {
            what: AnalyticsWhat::Export { directory },
        } => {
            let warehouse = analytics::Warehouse::at(
                command_api::warehouse::WarehouseSettings::from_environment(&cli.environment)?
                    .file(&cli.var_dir),
            );
            let report =
                tokio::task::spawn_blocking(move || warehouse.export(&directory)).await??;
            print_json(&report)?;
        }
        Command::Analytics {
            what: AnalyticsWhat::Sql { command, json },
        } => {
            let settings =
                command_api::warehouse::WarehouseSettings::from_environment(&cli.environment)?;
            let warehouse =
                command_api::warehouse::WarehouseHandle::new(settings.file(&cli.var_dir))
                    .with_limits(settings.sql.clone(), settings.sql_concurrency);
            let output = if json {
                tools::sql_shell::Output::Json
            } else {
                tools::sql_shell::Output::Table
            };
            if !tools::sql_shell::run(&warehouse, command, output).await? {
                std::process::exit(1);
            }
        }
        Command::Report {
            name,
            from,
            to,
            service,
            city,
            role,
            csv,
        } => {
            let warehouse = command_api::warehouse::WarehouseHandle::new(
                command_api::warehouse::WarehouseSettings::from_environment(&cli.environment)?
                    .file(&cli.var_dir),
            );
            let filters = analytics::reports::Filters {
                from,
                to,
                service,
                city,
                role,
            };
            let text = match name.as_str() {
                "revenue" => render(&warehouse.revenue(filters).await?, csv)?,
                "orders" => render(&warehouse.orders(filters).await?, csv)?,
                "satisfaction" => render(&warehouse.satisfaction(filters).await?, csv)?,
                "activity" => render(&warehouse.activity(filters).await?, csv)?,
                other => {
                    anyhow::bail!(
                        "no report named {other}; reports: revenue, orders, satisfaction, activity"
                    )
                }
            };
            writeln!(std::io::stdout().lock(), "{text}")?;
        }
        Command::Audit { what } => {
            let pool = server::connect(url, &cli.var_dir, 2).await?;
            server::prepare(&pool, master_key).await?;
            match what {
                AuditWhat::Verify => {
                    let report = application::audit::verify(&pool).await?;
                    print_json(&report)?;
                    if !report.ok {
                        std::process::exit(2);
                    }
                }
                AuditWhat::Export { from, to, output } => {
                    let written = match output {
                        Some(path) => {
                            let file = std::fs::File::create(&path)
                                .with_context(|| format!("creating {}", path.display()))?;
                            let mut writer = std::io::BufWriter::new(file);
                            application::audit::export(&pool, from, to, &mut writer).await?
                        }
                        None => {
                            let stdout = std::io::stdout();
                            let mut writer = std::io::BufWriter::new(stdout.lock());
                            application::audit::export(&pool, from, to, &mut writer).await?
                        }
                    };
                    tracing::info!(written, "events exported");
                }
            }
        }
        Command::Reconcile { date } => {
            let services = tool_services(&cli.environment, &cli.var_dir, url, master_key).await?;
            let reports = application::payments::reconcile(&services, date).await?;
            print_json(&reports)?;
        }
        Command::DemoData(options) => {
            let services = tool_services(&cli.environment, &cli.var_dir, url, master_key).await?;
            let report = tools::demo_data::generate(&services, &options).await?;
            print_json(&report)?;
        }
        Command::Simulate(options) => {
            let (day, source) = match options.date {
                Some(date) => {
                    let pool = server::connect(url, &cli.var_dir, 2).await?;
                    server::prepare(&pool, master_key).await?;
                    (
                        tools::simulate::day_from_log(&pool, date).await?,
                        format!("event log, orders placed on {date}"),
                    )
                }
                None => {
                    let date = domain::values::business_day(chrono::Utc::now());
                    (
                        tools::simulate::generated_day(
                            options.seed,
                            options.orders,
                            options.workers,
                            date,
                        ),
                        format!(
                            "generated: {} orders, {} workers, seed {}",
                            options.orders, options.workers, options.seed
                        ),
                    )
                }
            };
            let report = tokio::task::spawn_blocking(move || {
                tools::simulate::simulate(&day, &options, source)
            })
            .await?;
            print_json(&report)?;
        }
    }
    Ok(())
}

/// Prints a report as indented JSON on standard output.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(value)?
    )?;
    Ok(())
}

/// The application's services for a tool that runs commands as the server would: no HTTP, no
/// signaling hub.
async fn tool_services(
    environment: &Environment,
    var_dir: &std::path::Path,
    url: Option<&str>,
    master_key: Option<&str>,
) -> anyhow::Result<application::Services> {
    let pool = server::connect(url, var_dir, 4).await?;
    let vault = server::prepare(&pool, master_key).await?;
    let settings = Settings::from_environment(environment)?;
    let base_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    anjia::compose::services(&pool, &settings, vault, &base_url).await
}

/// A report as CSV, or as indented JSON.
fn render<R: analytics::reports::Report>(report: &R, csv: bool) -> anyhow::Result<String> {
    Ok(if csv {
        report.csv()
    } else {
        serde_json::to_string_pretty(report)?
    })
}

/// `anjia db …`: the embedded PostgreSQL in `data_dir`.
fn embedded_db(action: DbAction, data_dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    match action {
        DbAction::Status => {
            let status = localpg::status_persistent(data_dir)?;
            writeln!(out, "data: {}", status.data_dir.display())?;
            writeln!(out, "log: {}", status.log.display())?;
            let state = match (status.initialised, status.running) {
                (false, _) => "not made yet (`anjia db start` or `anjia serve` makes it)",
                (true, true) => "running",
                (true, false) => "stopped",
            };
            writeln!(out, "state: {state}")?;
            if let Some(port) = status.port {
                writeln!(out, "port: {port}")?;
            }
        }
        DbAction::Start => {
            let cluster = localpg::ensure_persistent(data_dir)?;
            writeln!(out, "running on 127.0.0.1:{}", cluster.port())?;
        }
        DbAction::Stop => {
            localpg::stop_persistent(data_dir)?;
            writeln!(out, "stopped")?;
        }
        DbAction::Url => {
            let status = localpg::status_persistent(data_dir)?;
            let url = status.url("anjia").context(
                "the embedded PostgreSQL is not made yet (`anjia db start` or `anjia serve` makes it)",
            )?;
            writeln!(out, "{url}")?;
        }
    }
    Ok(())
}
