//! What every handler shares. The `anjia` binary builds it (its composition root).

use std::sync::Arc;

use application::services::Services;

use crate::tokens::TokenKey;

/// The HTTP layer's state: one `Arc`, so that the router and every middleware layer clone it
/// for each request without copying what it holds. Reaches `Shared` (and through it the
/// application's services) by `Deref`, so handlers write `state.orders`, `state.token_key`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What `AppState` holds: the application's services (reached through `Deref`), plus what only
/// the HTTP side needs.
#[derive(Clone)]
pub struct Shared {
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

impl std::ops::Deref for Shared {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    /// Ties long-lived responses to a server's shutdown signal.
    pub fn with_shutdown(mut self, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        Arc::make_mut(&mut self.0).shutdown = shutdown;
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
