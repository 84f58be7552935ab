//! What every handler shares.

use std::sync::Arc;

use application::services::{Ports, Services};
use sqlx::PgPool;

use crate::auth::TokenKey;

/// The HTTP layer's state: the application's services (reached through `Deref`, so handlers
/// write `state.orders`), plus what only the HTTP side needs.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub token_key: TokenKey,
    /// Reverse proxies whose `X-Forwarded-For` we believe.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Turns true when the server shuts down, so long-lived responses (live streams) end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// WeChat sign-in, when configured.
    pub oauth: Option<Arc<dyn application::identity::IdentityProvider>>,
    /// The interview calls' signaling rooms, shared with every process through PostgreSQL.
    pub signaling: signaling::Hub,
    /// `ANJIA_METRICS_TOKEN`: the bearer token `/metrics` asks for, if any.
    pub metrics_token: Option<String>,
    /// The analytics warehouse (DuckDB) and its refresh/report lock.
    pub warehouse: crate::warehouse::WarehouseHandle,
    /// Argon2 hashing, on a bounded pool.
    pub passwords: crate::auth::PasswordPool,
    /// `ANJIA_STAFF_CODE_SIGN_IN`: whether admins and analysts may sign in by one-time code
    /// before they turn it on themselves (off by default: a phone is easier to take over).
    pub staff_code_sign_in: bool,
    /// The web apps' build folder.
    pub web_dir: std::path::PathBuf,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    /// `base_url` is where this platform is reached: providers send their notifications there.
    pub async fn new(
        pool: PgPool,
        settings: &crate::server::Settings,
        vault: vault::Vault,
        base_url: &str,
    ) -> anyhow::Result<Self> {
        let sandbox = adapters::payments::sandbox::SandboxProvider::new(
            pool.clone(),
            adapters::payments::sandbox::sandbox_key(&pool).await?,
            format!("{base_url}/api/v1/payments/notifications/sandbox"),
        );
        let token_key = TokenKey::load_or_create(&pool).await?;
        let services = Services::new(
            pool.clone(),
            Ports {
                vault,
                notifier: settings.notify.build(&pool)?,
                background: settings.background.build(&pool)?,
                bank: Arc::new(adapters::bank::SandboxBank { pool: pool.clone() }),
                payment_providers: adapters::payments::providers(
                    sandbox,
                    &settings.payment_providers,
                    base_url,
                    &pool,
                )?,
                dispatch: settings.dispatch.clone(),
                money: settings.money.clone(),
                reviews: settings.reviews.clone(),
            },
        );
        Ok(AppState {
            oauth: match &settings.oauth {
                Some(wechat) => Some(Arc::new(adapters::wechat_sign_in::WechatSignIn::new(
                    wechat.clone(),
                )?)),
                None => None,
            },
            signaling: signaling::Hub::start(
                pool.clone(),
                crate::auth::server_secret(&pool, "room_token_key").await?,
                settings.signaling.clone(),
            )
            .await?,
            trusted_proxies: settings.trusted_proxies.clone(),
            metrics_token: settings.metrics_token.clone(),
            // Without a setting (tests) each state gets a file of its own.
            warehouse: match &settings.warehouse.path {
                Some(path) => crate::warehouse::WarehouseHandle::new(path.clone()),
                None => crate::warehouse::WarehouseHandle::scratch(),
            }
            .with_limits(
                settings.warehouse.sql.clone(),
                settings.warehouse.sql_concurrency,
            ),
            shutdown: tokio::sync::watch::channel(false).1,
            passwords: crate::auth::PasswordPool::new(settings.passwords),
            staff_code_sign_in: settings.staff_code_sign_in,
            web_dir: settings.web_dir.clone(),
            token_key,
            services,
        })
    }
}
impl AppState {
    /// Ties long-lived responses to a server's shutdown signal.
    pub fn with_shutdown(mut self, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }
}
