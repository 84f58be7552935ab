//! A cache of what the database holds, kept true by being told of every change: the vault's
//! unwrapped data keys, and (in `application::fresh`) sessions and customers' streams.
//!
//! An entry is served only while the cache is *trusted*: while this process hears every change
//! to what it caches (database triggers notify, and the process that listens calls `forget`).
//! A value read from the database is kept only if nothing was forgotten while it was being read
//! (the epoch), so a read that raced a change is never kept. Every entry leaves after its time
//! whatever happens, and is dropped when it leaves (a data key's bytes are overwritten then).
//!
//! Every entry lives the same time, so the order in which entries were put is the order in
//! which they expire: a queue of puts finds the oldest in constant time, for expiry and for
//! making room at capacity.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Held<V> {
    value: V,
    until: Instant,
    /// Which put this entry came from (its record in `Entries::order`).
    stamp: u64,
}

struct Entries<K, V> {
    held: HashMap<K, Held<V>>,
    /// Every put, oldest first, with its stamp. A record whose key was put again or forgotten
    /// since is stale: skipped when it reaches the front, dropped when they pile up.
    order: VecDeque<(K, u64)>,
    stamps: u64,
    /// Counts every forgetting: a read that began before one is not kept.
    epoch: u64,
}

impl<K: Eq + Hash + Copy, V> Entries<K, V> {
    /// Whether the record names the entry as it stands.
    fn is_live(&self, key: &K, stamp: u64) -> bool {
        self.held.get(key).is_some_and(|held| held.stamp == stamp)
    }

    /// Drops the entries past their time, from the front of the order.
    fn expire(&mut self, now: Instant) {
        while let Some(&(key, stamp)) = self.order.front() {
            if self.is_live(&key, stamp) {
                if self.held.get(&key).is_some_and(|held| held.until > now) {
                    break;
                }
                self.held.remove(&key);
            }
            self.order.pop_front();
        }
    }

    /// Makes room for one: the oldest entry leaves.
    fn evict_oldest(&mut self) {
        while let Some((key, stamp)) = self.order.pop_front() {
            if self.is_live(&key, stamp) {
                self.held.remove(&key);
                return;
            }
        }
    }

    /// Drops the stale records once they outnumber the entries; each is dropped once, so a put
    /// costs a constant time on average.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.held.len() + 64 {
            let held = &self.held;
            self.order
                .retain(|(key, stamp)| held.get(key).is_some_and(|entry| entry.stamp == *stamp));
        }
    }
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
                order: VecDeque::new(),
                stamps: 0,
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
        entries.expire(now);
        if entries.held.len() >= self.capacity && !entries.held.contains_key(&key) {
            entries.evict_oldest();
        }
        entries.stamps += 1;
        let stamp = entries.stamps;
        entries.held.insert(
            key,
            Held {
                value: value.clone(),
                until: now + self.ttl,
                stamp,
            },
        );
        entries.order.push_back((key, stamp));
        entries.compact();
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
        entries.order.clear();
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
        self.entries().expire(Instant::now());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().held.len()
    }

    #[cfg(test)]
    fn records(&self) -> usize {
        self.entries().order.len()
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

    #[test]
    fn a_key_put_again_or_forgotten_leaves_only_in_its_turn() {
        let keys = trusted();
        let (a, b, c, d, e) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        keys.put(keys.ticket(), a, &key(1));
        keys.put(keys.ticket(), b, &key(2));
        keys.put(keys.ticket(), c, &key(3));
        // Put again, `a` is now the newest: making room takes `b`, not `a`.
        keys.put(keys.ticket(), a, &key(4));
        keys.put(keys.ticket(), d, &key(5));
        assert!(keys.get(b).is_none(), "the oldest left");
        assert_eq!(keys.get(a), Some(key(4)));
        assert!(keys.get(c).is_some() && keys.get(d).is_some());
        // A forgotten key's old record makes no room: `c`, the oldest left, does.
        keys.forget(a);
        keys.put(keys.ticket(), e, &key(6));
        assert_eq!(keys.len(), 3);
        keys.put(keys.ticket(), b, &key(7));
        assert!(keys.get(c).is_none());
        assert!(keys.get(d).is_some() && keys.get(e).is_some() && keys.get(b).is_some());
    }

    #[test]
    fn the_record_of_puts_stays_bounded_by_the_entries() {
        let keys = trusted();
        let owners = [Uuid::new_v4(), Uuid::new_v4()];
        for round in 0..10_000 {
            keys.put(keys.ticket(), owners[round % 2], &key(1));
            if round % 7 == 0 {
                keys.forget(owners[0]);
            }
        }
        assert!(keys.len() <= 2);
        assert!(keys.records() <= 2 * 2 + 64 + 1, "{}", keys.records());
    }
}
