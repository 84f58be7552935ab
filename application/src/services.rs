//! What every use case is given: the database, one command bus per aggregate, the vault, the
//! ports to the world outside and the settings. Built once by the composition root (the `anjia`
//! binary, or a test) from adapters; cheap to clone.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::activity::Presence;
use domain::commission::CommissionSchedule;
use domain::customer::Customer;
use domain::interview::Interview;
use domain::order::Order;
use domain::payment::Payment;
use domain::wallet::Wallet;
use domain::worker::Worker;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::background::BackgroundCheck;
use crate::commands::CommandBus;
use crate::notify::Notifier;
use crate::ports::BankTransfer;
use crate::ports::Providers;
use crate::settings::DispatchSettings;
use crate::settings::MoneySettings;
use crate::settings::ReviewSettings;

/// A connection idle this long is checked (one round trip) before it is handed out again.
pub const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The options of every pool the platform opens. sqlx checks each connection it hands out
/// with a round trip by default: one more wait on every request, on both ends. A connection in
/// steady use is handed out as it is; one that sat idle for `CHECK_AFTER_IDLE` (when a restart
/// or a dropped link is likely to have killed it) is checked first. A connection that dies
/// while in use fails its statement and is closed either way.
pub fn pool_options(max_connections: u32, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_AFTER_IDLE {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

#[derive(Clone)]
pub struct Services {
    pub pool: PgPool,
    /// Connections for requests' transactions (`commands::Unit`), apart from `pool`: a request
    /// holds one of these for its whole length and may still need one of `pool`'s, so the two
    /// never wait on each other. There are `Ports::writers` of them: the write transactions
    /// that run at once; a request beyond them waits for a connection here, in the process,
    /// rather than crowding the database's cores.
    pub units: PgPool,
    pub orders: Arc<CommandBus<Order>>,
    pub workers: Arc<CommandBus<Worker>>,
    pub customers: Arc<CommandBus<Customer>>,
    pub payments: Arc<CommandBus<Payment>>,
    pub wallets: Arc<CommandBus<Wallet>>,
    pub commissions: Arc<CommandBus<CommissionSchedule>>,
    pub interviews: Arc<CommandBus<Interview>>,
    /// Sign-ins and app opens, one stream per person and Beijing day.
    pub presence: Arc<CommandBus<Presence>>,
    /// Seals and opens personal data.
    pub vault: vault::Vault,
    /// E-mail and SMS.
    pub notifier: Notifier,
    pub background: Arc<dyn BackgroundCheck>,
    pub bank: Arc<dyn BankTransfer>,
    /// The payment providers by name.
    pub payment_providers: Providers,
    pub dispatch: Arc<DispatchSettings>,
    pub money: Arc<MoneySettings>,
    pub reviews: Arc<ReviewSettings>,
    /// Sessions, customers and data keys served from memory while this process hears every
    /// change to them; `fresh::Fresh::start` begins listening (the server does).
    pub fresh: Arc<crate::fresh::Fresh>,
}

/// The ports and settings `Services::new` takes; the buses it makes itself.
pub struct Ports {
    pub vault: vault::Vault,
    pub notifier: Notifier,
    pub background: Arc<dyn BackgroundCheck>,
    pub bank: Arc<dyn BankTransfer>,
    pub payment_providers: Providers,
    pub dispatch: DispatchSettings,
    pub money: MoneySettings,
    pub reviews: ReviewSettings,
    /// Requests' write transactions at once (see `Services::units`); `default_writers()`.
    pub writers: u32,
}

/// Write transactions at once by default: four for each core this process may use, at least
/// four. A commit is mostly waiting (for the log's flush, for the client), so a few per core
/// keep the cores busy; many more only make them switch between backends, and every step of
/// the projectors wait in that crowd (measured by `anjia bench`: see the README).
pub fn default_writers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    u32::try_from(cores * 4).unwrap_or(u32::MAX).max(4)
}

impl Services {
    pub fn new(pool: PgPool, ports: Ports) -> Self {
        let units = pool_options(ports.writers.max(1), pool.options().get_acquire_timeout())
            .connect_lazy_with(pool.connect_options().as_ref().clone());
        let fresh = Arc::new(crate::fresh::Fresh::new(ports.vault.clone()));
        let remembered = fresh.clone();
        Services {
            units,
            orders: Arc::new(CommandBus::new(pool.clone())),
            workers: Arc::new(CommandBus::new(pool.clone())),
            customers: Arc::new(
                CommandBus::new(pool.clone())
                    .on_commit(move |customer_id| remembered.customers.forget(customer_id)),
            ),
            payments: Arc::new(CommandBus::new(pool.clone())),
            wallets: Arc::new(CommandBus::new(pool.clone())),
            commissions: Arc::new(CommandBus::new(pool.clone())),
            interviews: Arc::new(CommandBus::new(pool.clone())),
            presence: Arc::new(CommandBus::new(pool.clone())),
            fresh,
            vault: ports.vault,
            notifier: ports.notifier,
            background: ports.background,
            bank: ports.bank,
            payment_providers: ports.payment_providers,
            dispatch: Arc::new(ports.dispatch),
            money: Arc::new(ports.money),
            reviews: Arc::new(ports.reviews),
            pool,
        }
    }
}

/// What every request reads, served from memory while this process hears every change to it
/// (`fresh`), else from the database.
impl Services {
    /// Whether `session_id` is `user_id`'s, unrevoked and unexpired: from memory when held.
    pub async fn session_is_live(&self, session_id: Uuid, user_id: Uuid) -> sqlx::Result<bool> {
        let now = Utc::now();
        if let Some(life) = self.fresh.sessions.get(session_id) {
            return Ok(life.user_id == user_id && life.expires_at > now);
        }
        let ticket = self.fresh.sessions.ticket();
        let row: Option<(Uuid, DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT user_id, expires_at, revoked_at IS NOT NULL FROM sessions WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((owner, expires_at, revoked)) = row else {
            return Ok(false);
        };
        if revoked {
            return Ok(false);
        }
        let life = crate::fresh::SessionLife {
            user_id: owner,
            expires_at,
        };
        self.fresh.sessions.put(ticket, session_id, &life);
        Ok(owner == user_id && expires_at > now)
    }

    /// A customer's state as committed (never a request's own uncommitted writes): from
    /// memory when held. For reading before deciding, such as whether they may order.
    pub async fn customer(
        &self,
        customer_id: Uuid,
    ) -> Result<crate::fresh::CustomerState, cqrs_es::AggregateError<domain::customer::CustomerError>>
    {
        if let Some(state) = self.fresh.customers.get(customer_id) {
            return Ok(state);
        }
        let ticket = self.fresh.customers.ticket();
        let state = Arc::new(self.customers.load_committed(customer_id).await?);
        self.fresh.customers.put(ticket, customer_id, &state);
        Ok(state)
    }
}
