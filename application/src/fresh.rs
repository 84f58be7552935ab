//! What every request reads, served from memory and kept true across processes: whether a
//! session is live, a customer's stream (their standing, saved addresses and blocked workers)
//! and, inside the vault, people's unwrapped data keys.
//!
//! The database announces every change to them on [`CHANNEL`] (triggers of migration 0032, so
//! no writer can change one unheard), and each process listens and forgets what changed. A
//! cache serves only while this process can show it hears everything: every [`BEAT_EVERY`] it
//! announces a beat of its own, and the caches are trusted only while a beat sent less than
//! [`STALE_AFTER`] ago has come back. So an entry served here reflects every change committed
//! before the notification reached this process (normally a few milliseconds), and never lags
//! by more than `STALE_AFTER` plus one beat, whatever happens to the connection. Losing the
//! connection forgets everything at once; trust comes back with the first beat heard after
//! listening again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::customer::Customer;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use uuid::Uuid;
use vault::cache::Cache;

/// The channel the database announces changes on.
pub const CHANNEL: &str = "anjia_fresh";

/// The beat, with the channel written out (it is `CHANNEL`, tested) and marked with
/// [`BEAT_MARK`] in a comment, which `pg_stat_statements` keeps (it turns the channel's literal
/// into a parameter): so the statement is told apart from a command's.
const BEAT: &str = "SELECT /* anjia-beat */ pg_notify('anjia_fresh', $1)";
/// What marks the beat's statement.
pub const BEAT_MARK: &str = "anjia-beat";
/// How often a process checks that it still hears the channel.
pub const BEAT_EVERY: Duration = Duration::from_millis(500);
/// How old the last beat heard back may be while the caches are served.
pub const STALE_AFTER: Duration = Duration::from_secs(2);
/// Sessions and customers stay at most this long, even when nothing changes.
pub const TTL: Duration = Duration::from_secs(60);
const CAPACITY: usize = 50_000;

/// A session's life as stored: whose it is and until when. Only unrevoked sessions are held.
#[derive(Debug, Clone, Copy)]
pub struct SessionLife {
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// A customer's state and version, as committed.
pub type CustomerState = Arc<(Customer, usize)>;

/// The caches and what this process hears.
pub struct Fresh {
    pub sessions: Cache<Uuid, SessionLife>,
    pub customers: Cache<Uuid, CustomerState>,
    vault: vault::Vault,
    link: Mutex<Link>,
    /// The number of the newest beat of this process heard back.
    heard: tokio::sync::watch::Sender<Option<u64>>,
    /// This process's beats read `beat:<process>:<number>`.
    beat_prefix: String,
}

/// Whether the caches are trusted, and the beats on their way.
#[derive(Default)]
struct Link {
    trusted: bool,
    /// When the newest beat heard back was sent.
    confirmed: Option<Instant>,
    /// Beats sent and not yet heard, by number.
    sent: VecDeque<(u64, Instant)>,
    next: u64,
}

impl Fresh {
    pub fn new(vault: vault::Vault) -> Fresh {
        Fresh {
            sessions: Cache::new(TTL, CAPACITY),
            customers: Cache::new(TTL, CAPACITY),
            vault,
            link: Mutex::default(),
            heard: tokio::sync::watch::Sender::new(None),
            beat_prefix: format!("beat:{}:", Uuid::new_v4()),
        }
    }

    fn link(&self) -> std::sync::MutexGuard<'_, Link> {
        self.link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn trust(&self, trusted: bool) {
        self.sessions.trust(trusted);
        self.customers.trust(trusted);
        self.vault.trust_cache(trusted);
    }

    /// Whether the caches are being served now.
    pub fn trusted(&self) -> bool {
        self.link().trusted
    }

    /// One notification's payload: `<kind>:<id>`, or a beat.
    fn heard(&self, payload: &str) {
        if let Some(number) = payload.strip_prefix(&self.beat_prefix) {
            let Ok(number) = number.parse::<u64>() else {
                return;
            };
            let mut link = self.link();
            while let Some(&(sent_number, sent_at)) = link.sent.front() {
                if sent_number > number {
                    break;
                }
                link.sent.pop_front();
                if sent_number == number {
                    link.confirmed = Some(sent_at);
                }
            }
            if !link.trusted && link.confirmed.is_some() {
                link.trusted = true;
                self.trust(true);
            }
            drop(link);
            self.heard.send_replace(Some(number));
            return;
        }
        let Some((kind, id)) = payload.split_once(':') else {
            return;
        };
        let Ok(id) = id.parse::<Uuid>() else {
            // Not a kind this build keeps: nothing to forget.
            return;
        };
        match kind {
            "session" => self.sessions.forget(id),
            "customer" => self.customers.forget(id),
            "key" => self.vault.forget(id),
            _ => {}
        }
    }

    /// The connection was lost or never made: nothing is served until a beat comes back.
    fn deaf(&self) {
        let mut link = self.link();
        link.trusted = false;
        link.confirmed = None;
        link.sent.clear();
        self.trust(false);
    }

    /// The next beat's number, noting when it was sent; withdraws trust when the last beat
    /// heard back is too old.
    fn beat(&self) -> u64 {
        let mut link = self.link();
        let now = Instant::now();
        let stale = link
            .confirmed
            .is_none_or(|confirmed| now.duration_since(confirmed) > STALE_AFTER);
        if link.trusted && stale {
            tracing::warn!(
                "缓存失去同步，改为直读数据库 / caches out of touch: reading the database"
            );
            link.trusted = false;
            self.trust(false);
        }
        let number = link.next;
        link.next += 1;
        link.sent.push_back((number, now));
        // Beats lost with a connection are never heard: keep only the recent ones.
        while link.sent.len() > 64 {
            link.sent.pop_front();
        }
        number
    }

    /// Sends the next beat.
    async fn send_beat(&self, pool: &PgPool) -> sqlx::Result<u64> {
        let number = self.beat();
        sqlx::query(BEAT)
            .bind(format!("{}{number}", self.beat_prefix))
            .execute(pool)
            .await?;
        Ok(number)
    }

    /// Returns once this process has heard every change committed before the call: for a
    /// process that has just changed something it serves from memory (a revocation), so its
    /// next request sees the change. Gives up trust rather than wait past `STALE_AFTER`.
    pub async fn catch_up(&self, pool: &PgPool) {
        if !self.trusted() {
            return;
        }
        let mut heard = self.heard.subscribe();
        let caught_up = async {
            let number = self.send_beat(pool).await?;
            heard
                .wait_for(|heard| heard.is_some_and(|heard| heard >= number))
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            Ok::<_, sqlx::Error>(())
        };
        match tokio::time::timeout(STALE_AFTER, caught_up).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "缓存追赶失败 / the caches could not catch up");
                self.deaf();
            }
            Err(_) => {
                tracing::warn!("缓存追赶超时 / the caches did not catch up in time");
                self.deaf();
            }
        }
    }

    /// Starts listening and beating. The tasks end when `shutdown` turns true or `fresh` is
    /// dropped.
    pub fn start(fresh: &Arc<Fresh>, pool: PgPool, shutdown: tokio::sync::watch::Receiver<bool>) {
        let weak = Arc::downgrade(fresh);
        let listening_pool = pool.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = listen(weak, listening_pool) => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
        });
        let weak = Arc::downgrade(fresh);
        let mut stop = shutdown;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(BEAT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
                let Some(fresh) = weak.upgrade() else { return };
                if let Err(error) = fresh.send_beat(&pool).await {
                    tracing::warn!(%error, "缓存心跳失败 / the caches' beat failed");
                }
            }
        });
    }
}

async fn listen(fresh: Weak<Fresh>, pool: PgPool) {
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                let Some(fresh) = fresh.upgrade() else { return };
                fresh.deaf();
                tracing::warn!(%error, "缓存监听连接失败 / the caches' listener cannot connect");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let received = listener.try_recv().await;
            let Some(fresh) = fresh.upgrade() else { return };
            match received {
                Ok(Some(notification)) => fresh.heard(notification.payload()),
                Ok(None) => {
                    // Lost, and reconnected: what was announced meanwhile was not heard.
                    fresh.deaf();
                    tracing::warn!("缓存监听断开，已重连 / the caches' listener reconnected");
                }
                Err(error) => {
                    fresh.deaf();
                    tracing::warn!(%error, "缓存监听中断 / the caches' listener failed");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_beat_goes_out_on_the_channel_every_process_listens_to() {
        assert!(BEAT.contains(&format!("'{CHANNEL}'")));
        assert!(BEAT.contains(&format!("/* {BEAT_MARK} */")));
    }

    #[tokio::test]
    async fn a_process_trusts_its_caches_only_once_its_own_beat_comes_back_and_not_when_stale() {
        // With its key given, the vault reads nothing at start: the pool is never used.
        let pool = PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").expect("lazy pool");
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let vault = vault::Vault::load(pool, Some(key)).await.expect("vault");
        let fresh = Fresh::new(vault);
        let prefix = fresh.beat_prefix.clone();
        let session = Uuid::new_v4();
        let life = SessionLife {
            user_id: Uuid::new_v4(),
            expires_at: Utc::now() + chrono::Duration::hours(1),
        };
        let first = fresh.beat();
        fresh.heard(&format!("beat:{}:0", Uuid::new_v4()));
        assert!(!fresh.trusted(), "another process's beat proves nothing");
        fresh.heard(&format!("{prefix}{first}"));
        assert!(fresh.trusted());
        fresh.sessions.put(fresh.sessions.ticket(), session, &life);
        assert!(fresh.sessions.get(session).is_some());
        fresh.heard(&format!("session:{session}"));
        assert!(fresh.sessions.get(session).is_none(), "told, it forgets");

        fresh.sessions.put(fresh.sessions.ticket(), session, &life);
        fresh.deaf();
        assert!(!fresh.trusted() && fresh.sessions.get(session).is_none());

        // A beat that never comes back leaves the caches untrusted after STALE_AFTER.
        let beat = fresh.beat();
        fresh.heard(&format!("{prefix}{beat}"));
        assert!(fresh.trusted());
        fresh.link().confirmed = Some(Instant::now() - STALE_AFTER - Duration::from_millis(1));
        fresh.beat();
        assert!(!fresh.trusted());
    }
}
