//! Starting the platform: the database (given, or our own under `./var`), migrations,
//! projections, the projectors, the timed jobs and the HTTP server, and stopping it all
//! gracefully.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use projections::{ProjectorStats, Projectors};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use std::str::FromStr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use command_api::state::AppState;

use crate::config::{Mode, Settings};

/// Connects to `database_url`, or, when there is none, to the platform's own PostgreSQL under
/// `var_dir` (started, and created on first use, from the machine's PostgreSQL binaries).
pub async fn connect(
    database_url: Option<&str>,
    var_dir: &Path,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let url = resolve_database_url(database_url, var_dir).await?;
    let options = PgConnectOptions::from_str(&url).context("parsing DATABASE_URL")?;
    application::services::pool_options(max_connections, Duration::from_secs(10))
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")
}

/// `DATABASE_URL` when given, or else the embedded PostgreSQL's under `var_dir` (started if
/// it is not running).
pub async fn resolve_database_url(
    database_url: Option<&str>,
    var_dir: &Path,
) -> anyhow::Result<String> {
    if let Some(url) = database_url {
        return Ok(url.to_owned());
    }
    let data_dir =
        std::path::absolute(var_dir.join("pg")).context("resolving the data directory")?;
    let cluster = tokio::task::spawn_blocking(move || localpg::ensure_persistent(&data_dir))
        .await
        .context("starting the embedded PostgreSQL")??;
    tracing::info!("using the embedded PostgreSQL under {}", var_dir.display());
    Ok(cluster.url("anjia"))
}

/// Applies migrations, opens the vault of personal-data keys and sets up every projection's
/// first generation. `master_key` is the key-encryption key (`ANJIA_MASTER_KEY`), if given.
pub async fn prepare(pool: &PgPool, master_key: Option<&str>) -> anyhow::Result<vault::Vault> {
    migrations::run(pool).await.context("applying migrations")?;
    let vault = vault::Vault::load(pool.clone(), master_key)
        .await
        .context("opening the vault")?;
    projections::ensure_all(pool, &projections::all_projections(&vault))
        .await
        .context("setting up projections")?;
    Ok(vault)
}

/// A running server and its projectors.
pub struct Running {
    pub address: SocketAddr,
    /// What its use cases are given: for tests that take a flow step by step.
    pub services: application::services::Services,
    pub projector_stats: Vec<(String, Arc<ProjectorStats>)>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    scheduler: Option<tokio_cron_scheduler::JobScheduler>,
    /// The projectors' own runtime (one thread), apart from the requests'.
    projector_runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // A runtime may not be dropped where blocking is not allowed (inside another one).
        if let Some(runtime) = self.projector_runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Running {
    /// Stops the timed jobs and accepting requests, lets in-flight ones finish, and stops the
    /// projectors at a checkpoint.
    pub async fn stop(mut self) {
        if let Some(scheduler) = self.scheduler.as_mut() {
            if let Err(error) = scheduler.shutdown().await {
                tracing::warn!(error = %error, "stopping the scheduler");
            }
        }
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }

    pub fn shutdown_signal(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Serves the app on `listener` and runs the projectors, until `stop` or the signal.
pub async fn start(
    pool: PgPool,
    listener: TcpListener,
    run_projectors: bool,
    settings: &Settings,
    vault: vault::Vault,
) -> anyhow::Result<Running> {
    anyhow::ensure!(
        settings.mode == Mode::Development || !settings.payment_providers.sandbox,
        "the payment sandbox confirms its own payments: it runs only in development mode"
    );
    let (shutdown, shutdown_receiver) = watch::channel(false);
    let address = listener.local_addr()?;
    let base_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let state = crate::compose::state(pool.clone(), settings, vault.clone(), &base_url)
        .await?
        .with_shutdown(shutdown_receiver.clone());
    // Sessions, customers and data keys are served from memory while this process hears
    // every change to them.
    application::fresh::Fresh::start(
        &state.services.fresh,
        pool.clone(),
        shutdown_receiver.clone(),
    );
    let mut tasks = vec![command_api::logs::start_writer(
        pool.clone(),
        shutdown_receiver.clone(),
    )];
    let mut projector_stats = Vec::new();
    let mut projector_runtime = None;
    if run_projectors {
        // Projectors run on a thread of their own. On the requests' runtime, each of their
        // round trips to the database waited its turn behind every request in flight, so
        // under load the views fell behind by as much as the run queue was long; here the
        // operating system shares the cores between the two.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("anjia-projectors")
            .enable_all()
            .build()
            .context("starting the projectors' runtime")?;
        let projections = projections::all_projections(&vault);
        // The projectors' connections say who they are: the log's horizon leaves their
        // transactions out (projections::log::HORIZON). One loop steps every projection this
        // process leads: it holds their leases on one connection and applies on another.
        let projector_pool = application::services::pool_options(3, Duration::from_secs(10))
            .connect_lazy_with(
                pool.connect_options()
                    .as_ref()
                    .clone()
                    .application_name(projections::log::PROJECTOR_APPLICATION)
                    // A batch and its checkpoints commit together, and all can be made again
                    // from the log: a crash may lose the last fraction of a second of them,
                    // never a view's consistency. So a step does not wait for the disk, and
                    // the commands' commits do not queue behind the projectors' flushes.
                    .options([("synchronous_commit", "off")]),
            );
        let projectors = Projectors::new(projector_pool, projections);
        projector_stats = projectors.stats();
        tasks.push(runtime.spawn(projectors.run(shutdown_receiver.clone())));
        projector_runtime = Some(runtime);
    }
    // Timed jobs run beside the projectors: a process started without background work runs
    // neither.
    let scheduler = if run_projectors {
        let scheduler = application::jobs::schedule(state.services.clone(), &settings.jobs).await?;
        scheduler
            .add(analytics_refresh(&state, &settings.jobs)?)
            .await?;
        scheduler.start().await?;
        Some(scheduler)
    } else {
        None
    };
    let services = state.services.clone();
    let app = command_api::app(state).into_make_service_with_connect_info::<SocketAddr>();
    let mut server_shutdown = shutdown_receiver.clone();
    tasks.push(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(error = %error, "the HTTP server failed");
        }
    }));
    Ok(Running {
        address,
        services,
        projector_stats,
        shutdown,
        tasks,
        scheduler,
        projector_runtime,
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn termination() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

/// The analytics warehouse's refresh, in one process at a time.
fn analytics_refresh(
    state: &AppState,
    settings: &application::jobs::JobSettings,
) -> anyhow::Result<tokio_cron_scheduler::Job> {
    let pool = state.pool.clone();
    let warehouse = state.warehouse.clone();
    Ok(tokio_cron_scheduler::Job::new_async(
        settings.analytics_schedule.as_str(),
        move |_id, _lock| {
            let pool = pool.clone();
            let warehouse = warehouse.clone();
            Box::pin(async move {
                match application::jobs::exclusively(
                    &pool,
                    "analytics-refresh",
                    warehouse.refresh(&pool),
                )
                .await
                {
                    Ok(Some(report)) if report.events > 0 => tracing::info!(
                        events = report.events,
                        seconds = report.seconds,
                        "数据仓库已刷新 / the analytics warehouse was refreshed"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::error!(
                        error = format!("{error:#}"),
                        "the analytics refresh job failed"
                    ),
                }
            })
        },
    )?)
}
