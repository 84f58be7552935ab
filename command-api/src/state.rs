//! What every handler shares. The `anjia` binary builds it (its composition root).

use std::sync::Arc;

use application::services::Services;

use crate::tokens::TokenKey;

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
    pub passwords: crate::passwords::PasswordPool,
    /// `ANJIA_STAFF_CODE_SIGN_IN`: whether admins and analysts may sign in by one-time code
    /// before they turn it on themselves (off by default: a phone is easier to take over).
    pub staff_code_sign_in: bool,
    /// The web apps' build folder.
    pub web_dir: std::path::PathBuf,
    /// STUN and TURN for interview calls.
    pub ice: Arc<IceSettings>,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    /// Ties long-lived responses to a server's shutdown signal.
    pub fn with_shutdown(mut self, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }
}

/// STUN and TURN servers for interview calls, read once at start.
#[derive(Debug, Clone, Default)]
pub struct IceSettings {
    pub stun_urls: Vec<String>,
    pub turn_urls: Vec<String>,
    /// The TURN servers' shared secret: each admission gets time-limited credentials from it.
    pub turn_secret: Option<String>,
}
