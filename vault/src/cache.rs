//! A cache of what the database holds, kept true by being told of every change: the vault's
//! unwrapped data keys, and (in `application::fresh`) sessions and customers' streams.
//!
//! An entry is served only while the cache is *trusted*: while this process hears every change
//! to what it caches (database triggers notify, and the process that listens calls `forget`).
//! A value read from the database is kept only if nothing was forgotten while it was being read
//! (the epoch), so a read that raced a change is never kept. Every entry leaves after its time
//! whatever happens, and is dropped when it leaves (a data key's bytes are overwritten then).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Held<V> {
    value: V,
    until: Instant,
}

struct Entries<K, V> {
    held: HashMap<K, Held<V>>,
    /// Counts every forgetting: a read that began before one is not kept.
    epoch: u64,
}

pub struct Cache<K, V> {
    entries: Mutex<Entries<K, V>>,
    trusted: AtomicBool,
    ttl: Duration,
    capacity: usize,
}

/// What the cache's epoch was when a read began.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl<K: Eq + Hash + Copy, V: Clone> Cache<K, V> {
    /// An empty cache, not yet trusted, whose entries live `ttl` at most and number
    /// `capacity` at most (beyond it the oldest leave first).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Cache {
            entries: Mutex::new(Entries {
                held: HashMap::new(),
                epoch: 0,
            }),
            trusted: AtomicBool::new(false),
            ttl,
            capacity,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        // A panic while holding the lock leaves only a map: still sound to use.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value held for `key`, while trusted and not past its time.
    pub fn get(&self, key: K) -> Option<V> {
        if !self.trusted.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries();
        entries
            .held
            .get(&key)
            .filter(|held| held.until > Instant::now())
            .map(|held| held.value.clone())
    }

    /// Take one before reading what may be kept.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.entries().epoch)
    }

    /// Keeps a value read under `ticket`, unless something was forgotten since or the cache is
    /// not trusted.
    pub fn put(&self, ticket: Ticket, key: K, value: &V) {
        if !self.trusted.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries();
        if entries.epoch != ticket.0 {
            return;
        }
        if entries.held.len() >= self.capacity && !entries.held.contains_key(&key) {
            entries.held.retain(|_, held| held.until > now);
            if entries.held.len() >= self.capacity {
                let oldest = entries
                    .held
                    .iter()
                    .min_by_key(|(_, held)| held.until)
                    .map(|(key, _)| *key);
                if let Some(oldest) = oldest {
                    entries.held.remove(&oldest);
                }
            }
        }
        entries.held.insert(
            key,
            Held {
                value: value.clone(),
                until: now + self.ttl,
            },
        );
    }

    /// `key` changed elsewhere.
    pub fn forget(&self, key: K) {
        let mut entries = self.entries();
        entries.epoch += 1;
        entries.held.remove(&key);
    }

    pub fn forget_all(&self) {
        let mut entries = self.entries();
        entries.epoch += 1;
        entries.held.clear();
    }

    /// Trusted: entries may be served and kept. Turning it either way forgets every entry:
    /// what was read before trust came back may have missed a change.
    pub fn trust(&self, trusted: bool) {
        if !trusted {
            self.trusted.store(false, Ordering::Release);
            self.forget_all();
        } else {
            self.forget_all();
            self.trusted.store(true, Ordering::Release);
        }
    }

    /// Drops every entry past its time.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.entries().held.retain(|_, held| held.until > now);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    type Keys = Cache<Uuid, [u8; 32]>;

    fn key(byte: u8) -> [u8; 32] {
        [byte; 32]
    }

    fn trusted() -> Keys {
        let keys = Keys::new(Duration::from_secs(60), 3);
        keys.trust(true);
        keys
    }

    #[test]
    fn nothing_is_served_or_kept_until_trusted_and_trust_withdrawn_forgets() {
        let keys = Keys::new(Duration::from_secs(60), 3);
        let owner = Uuid::new_v4();
        keys.put(keys.ticket(), owner, &key(1));
        assert!(keys.get(owner).is_none());
        keys.trust(true);
        keys.put(keys.ticket(), owner, &key(1));
        assert_eq!(keys.get(owner).expect("kept"), [1; 32]);
        keys.trust(false);
        assert!(keys.get(owner).is_none());
        assert_eq!(keys.len(), 0);
    }

    #[test]
    fn a_read_that_raced_a_forgetting_is_not_kept() {
        let keys = trusted();
        let owner = Uuid::new_v4();
        let ticket = keys.ticket();
        keys.forget(owner);
        keys.put(ticket, owner, &key(1));
        assert!(keys.get(owner).is_none());
        keys.put(keys.ticket(), owner, &key(1));
        assert!(keys.get(owner).is_some());
        keys.forget(owner);
        assert!(keys.get(owner).is_none());
    }

    #[test]
    fn keys_leave_after_their_time_and_beyond_capacity_oldest_first() {
        let keys = Keys::new(Duration::from_millis(30), 2);
        keys.trust(true);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        keys.put(keys.ticket(), a, &key(1));
        std::thread::sleep(Duration::from_millis(2));
        keys.put(keys.ticket(), b, &key(2));
        keys.put(keys.ticket(), c, &key(3));
        assert!(keys.get(a).is_none(), "the oldest left to make room");
        assert!(keys.get(b).is_some() && keys.get(c).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(keys.get(b).is_none(), "past its time a key is not served");
        keys.sweep();
        assert_eq!(keys.len(), 0, "and the sweep drops it");
    }
}
