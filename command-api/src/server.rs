//! Starting the platform: the database (given, or our own under `./var`), migrations,
//! projections, the projectors and the HTTP server, and stopping it all gracefully.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use projections::{Projector, ProjectorStats};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// Connects to `database_url`, or, when there is none, to the platform's own PostgreSQL under
/// `var_dir` (started, and created on first use, from the machine's PostgreSQL binaries).
pub async fn connect(
    database_url: Option<&str>,
    var_dir: &Path,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let url = resolve_database_url(database_url, var_dir).await?;
    let options = PgConnectOptions::from_str(&url).context("parsing DATABASE_URL")?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
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

/// `ANJIA_MODE`: how much the server trusts the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The default: refuses a payment sandbox that confirms its own payments, and personal
    /// data sealed under a key kept in the same database.
    #[default]
    Production,
    /// A developer's machine and the tests (`scripts/start` asks for it): the sandbox takes
    /// payments without a real provider, and a generated key may seal personal data.
    Development,
}

impl Mode {
    pub fn from_environment() -> anyhow::Result<Mode> {
        match setting("ANJIA_MODE").as_deref() {
            None | Some("production") => Ok(Mode::Production),
            Some("development") => Ok(Mode::Development),
            Some(other) => {
                anyhow::bail!("ANJIA_MODE must be production or development, not {other}")
            }
        }
    }
}

/// Where the platform's ports point, from the environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `ANJIA_MODE`: production unless asked for development.
    pub mode: Mode,
    pub notify: adapters::notify::NotifySettings,
    pub background: adapters::background::BackgroundCheckSettings,
    pub jobs: application::jobs::JobSettings,
    pub oauth: Option<adapters::wechat_sign_in::OAuthSettings>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub dispatch: application::dispatch::DispatchSettings,
    /// `ANJIA_PUBLIC_URL`: where this platform is reached from outside (payment providers'
    /// notifications come back there); by default the address it listens on.
    pub public_url: Option<String>,
    pub money: application::money::MoneySettings,
    /// Alipay and WeChat Pay, when configured.
    pub payment_providers: adapters::payments::ProviderSettings,
    /// `ANJIA_METRICS_TOKEN`: when set, `/metrics` asks for it as a bearer token.
    pub metrics_token: Option<String>,
    pub reviews: application::reviews::ReviewSettings,
    /// The signaling rooms' grace period, pings and time-outs.
    pub signaling: signaling::Settings,
    /// The analytics warehouse's file and refresh schedule.
    pub warehouse: crate::warehouse::WarehouseSettings,
    /// How much password hashing a process takes on at once.
    pub passwords: crate::auth::PasswordLimits,
    /// `ANJIA_STAFF_CODE_SIGN_IN=on`: admins and analysts may sign in by one-time code unless
    /// they turned it off (by default they may not until they turn it on).
    pub staff_code_sign_in: bool,
    /// `ANJIA_WEB_DIR`: the web apps' build (`vite build`'s `dist`), served at `/admin/`.
    pub web_dir: std::path::PathBuf,
}

impl Settings {
    pub fn from_environment() -> anyhow::Result<Self> {
        let mode = Mode::from_environment()?;
        Ok(Settings {
            mode,
            trusted_proxies: crate::client_address::trusted_proxies_from_environment()?,
            notify: adapters::notify::NotifySettings::from_environment(),
            background: adapters::background::BackgroundCheckSettings::from_environment(),
            jobs: <application::jobs::JobSettings as crate::config::FromEnvironment>::from_environment()?,
            oauth: crate::config::oauth_settings(),
            dispatch: <application::dispatch::DispatchSettings as crate::config::FromEnvironment>::from_environment()?,
            money: <application::money::MoneySettings as crate::config::FromEnvironment>::from_environment()?,
            payment_providers: crate::config::provider_settings(mode)?,
            metrics_token: setting("ANJIA_METRICS_TOKEN"),
            reviews: <application::reviews::ReviewSettings as crate::config::FromEnvironment>::from_environment()?,
            signaling: signaling::Settings::default(),
            warehouse: crate::warehouse::WarehouseSettings::from_environment(),
            passwords: crate::auth::PasswordLimits::from_environment()?,
            staff_code_sign_in: setting("ANJIA_STAFF_CODE_SIGN_IN").as_deref() == Some("on"),
            web_dir: setting("ANJIA_WEB_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| std::path::PathBuf::from("web/dist")),
            public_url: std::env::var("ANJIA_PUBLIC_URL")
                .ok()
                .map(|url| url.trim().trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty()),
        })
    }
}

impl Settings {
    /// What production mode refuses to start with; what development mode allows, said loudly.
    /// `master_key_given`: whether `ANJIA_MASTER_KEY` is set.
    pub fn check(&self, master_key_given: bool) -> anyhow::Result<()> {
        if self.mode == Mode::Production {
            anyhow::ensure!(
                !self.payment_providers.sandbox,
                "the payment sandbox confirms its own payments: it runs only with ANJIA_MODE=development"
            );
            anyhow::ensure!(
                master_key_given,
                "ANJIA_MASTER_KEY is not set: personal data would be sealed under a key kept in the \
                 database itself. Set it (base64 of 32 bytes, kept outside the database), or run \
                 with ANJIA_MODE=development on a developer's machine"
            );
        } else {
            if !master_key_given {
                tracing::warn!("DEVELOPMENT MODE: personal data is sealed under a development key kept in the database; never use this with real people's data (set ANJIA_MASTER_KEY)");
            }
            if self.payment_providers.sandbox {
                tracing::warn!(
                    "DEVELOPMENT MODE: the payment sandbox confirms payments that no provider took"
                );
            }
        }
        Ok(())
    }
}

/// A running server and its projectors.
pub struct Running {
    pub address: SocketAddr,
    pub projector_stats: Vec<(String, Arc<ProjectorStats>)>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    scheduler: Option<tokio_cron_scheduler::JobScheduler>,
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
        for task in self.tasks {
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
    let state = AppState::new(pool.clone(), settings, vault.clone(), &base_url)
        .await?
        .with_shutdown(shutdown_receiver.clone());
    let mut tasks = vec![crate::logs::start_writer(
        pool.clone(),
        shutdown_receiver.clone(),
    )];
    let mut projector_stats = Vec::new();
    if run_projectors {
        for projection in projections::all_projections(&vault) {
            let name = projection.name().to_owned();
            let projector = Projector::new(pool.clone(), projection);
            projector_stats.push((name, projector.stats.clone()));
            tasks.push(tokio::spawn(projector.run(shutdown_receiver.clone())));
        }
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
    let app = crate::app(state).into_make_service_with_connect_info::<SocketAddr>();
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
        projector_stats,
        shutdown,
        tasks,
        scheduler,
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

/// An environment setting, trimmed; `None` when unset or blank.
/// A setting that must be there because `anchor` is (a provider's other settings once its
/// first one is given).
pub fn required_with(name: &str, anchor: &str) -> anyhow::Result<String> {
    setting(name).ok_or_else(|| anyhow::anyhow!("{name} is required with {anchor}"))
}

pub fn setting(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
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
