//! Rooms shared by every signaling process through PostgreSQL.
//!
//! - Seats live in `signaling_seats`, taken and given up in transactions that hold the room's
//!   advisory lock, so two processes never seat a third party or the same participant twice.
//! - Every relayed message is a `NOTIFY` on one channel. Every process listens and hands each
//!   message to the seats it holds. PostgreSQL delivers notifications in commit order, so all
//!   processes see one order of relays, joins and moves. When both parties' seats are on one
//!   process, connected, and none of its relays of the room is still on its way, a relay goes
//!   straight from one seat to the other instead (see `Seats::local_only`).
//! - Messages sent to a participant are numbered across connections and processes, and the
//!   last [`REPLAY_MESSAGES`] are kept, so a participant who comes back saying what they last
//!   received gets everything after it, even what was written into a connection already dead.
//! - A participant away within the grace period keeps a seat on the process they left; what is
//!   sent to them waits there. Coming back through another process *moves* the seat: the old
//!   process forwards what waited, then says it has handed over; the new one holds back newer
//!   messages until then, so nothing is lost or reordered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::protocol::ServerMessage;
use crate::token;

/// The channel every process listens on.
const CHANNEL: &str = "anjia_signaling";
/// Larger notifications go through `signaling_mail` (PostgreSQL's limit is 8000 bytes).
const MAX_NOTIFY_BYTES: usize = 7_900;

/// How the hub behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a dropped participant's seat is kept for them.
    pub grace: Duration,
    /// How often the server pings.
    pub ping_every: Duration,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Messages a connection may send per second.
    pub rate_per_second: u32,
    /// How often a process renews its claim on its seats.
    pub heartbeat_every: Duration,
    /// A process not heard from this long holds no seats.
    pub node_timeout: Duration,
    /// How long a moved seat waits for its old process to hand over what waited there.
    pub handover_timeout: Duration,
    /// How long one write to a connection may take; a connection that does not take its
    /// messages for this long is dropped (it may come back and resume).
    pub send_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grace: Duration::from_secs(15),
            ping_every: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            rate_per_second: 50,
            heartbeat_every: Duration::from_secs(5),
            node_timeout: Duration::from_secs(20),
            handover_timeout: Duration::from_secs(2),
            send_timeout: Duration::from_secs(5),
        }
    }
}

/// What travels between processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "bus", rename_all = "kebab-case")]
enum Bus {
    /// For every seat of the room but the sender's.
    Relay {
        room: Uuid,
        from: Uuid,
        message: ServerMessage,
        /// The process that published it from a connection (`Hub::relay`), which counts it
        /// in flight until it hears it back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<Uuid>,
    },
    /// A participant took a new seat through `connection`: what was committed before this is
    /// not for that seat.
    Seated {
        room: Uuid,
        participant: Uuid,
        connection: Uuid,
    },
    /// A participant came back through `connection`.
    Moved {
        room: Uuid,
        participant: Uuid,
        connection: Uuid,
    },
    /// What waited on the old process, for the participant's new connection.
    Forward {
        room: Uuid,
        to: Uuid,
        connection: Uuid,
        item: Item,
    },
    /// The old process has forwarded everything that waited.
    HandedOver {
        room: Uuid,
        participant: Uuid,
        connection: Uuid,
    },
    /// A notification too large for `NOTIFY`, stored in `signaling_mail`.
    Mail { id: i64 },
    /// The room's interview was cancelled or concluded: every seat in it goes.
    Closed { room: Uuid },
}

/// How many sent messages a seat keeps for a participant who resumes after them.
pub const REPLAY_MESSAGES: usize = 256;

/// Why a seat's channel ended, when the hub ended it: set before the seat goes, read by its
/// connection to tell the participant.
pub(crate) type Ending = std::sync::Arc<std::sync::atomic::AtomicU8>;
const ENDED_TOO_SLOW: u8 = 1;
const ENDED_ROOM_CLOSED: u8 = 2;

/// Messages that may wait for one participant (connected but slow, or away within the grace
/// period). A participant further behind than this is taken out of the room, so one side
/// that stops reading cannot grow the server's memory.
pub const SEAT_QUEUE: usize = 512;

/// What travels through a seat's channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "kebab-case")]
pub(crate) enum Item {
    /// A message not yet sent to the participant.
    Fresh { message: Box<ServerMessage> },
    /// A message already numbered and sent by the process the seat moved from, kept for replay.
    Sent {
        seq: u64,
        message: Box<ServerMessage>,
    },
    /// Where the numbering stood on the process the seat moved from.
    Numbering {
        next_seq: u64,
        unsent_from: Option<u64>,
    },
}

/// What is kept for a participant across connections: their channel, the messages last sent
/// to them (numbered, for a connection that resumes after a given number), and the numbering.
pub(crate) struct Inbox {
    receiver: queue::Receiver,
    /// Set when the participant fell `SEAT_QUEUE` messages behind and was taken out.
    ending: Ending,
    pub(crate) recent: std::collections::VecDeque<(u64, Box<ServerMessage>)>,
    /// The number the next message sent gets (from 1).
    pub(crate) next_seq: u64,
    /// The first number whose write to the last connection's socket failed, if one did.
    pub(crate) unsent_from: Option<u64>,
}

impl Inbox {
    fn new(receiver: queue::Receiver, ending: Ending) -> Inbox {
        Inbox {
            receiver,
            ending,
            recent: std::collections::VecDeque::new(),
            next_seq: 1,
            unsent_from: None,
        }
    }

    /// The next item; cancel-safe, as `select!` needs.
    pub(crate) async fn next(&mut self) -> Option<Item> {
        self.receiver.recv().await
    }

    /// Why the hub ended the channel, if it did: `too-slow` (the participant fell too far
    /// behind) or `room-closed` (the interview was cancelled or concluded).
    pub(crate) fn ended(&self) -> Option<&'static str> {
        match self.ending.load(std::sync::atomic::Ordering::SeqCst) {
            ENDED_TOO_SLOW => Some("too-slow"),
            ENDED_ROOM_CLOSED => Some("room-closed"),
            _ => None,
        }
    }

    /// Keeps a sent message for replay under its number.
    pub(crate) fn keep(&mut self, seq: u64, message: Box<ServerMessage>) {
        if self.recent.len() == REPLAY_MESSAGES {
            self.recent.pop_front();
        }
        self.recent.push_back((seq, message));
        self.next_seq = self.next_seq.max(seq + 1);
    }

    /// Everything, in order, for the process the seat moves to.
    fn drain(mut self) -> Vec<Item> {
        let mut items = vec![Item::Numbering {
            next_seq: self.next_seq,
            unsent_from: self.unsent_from,
        }];
        items.extend(
            self.recent
                .drain(..)
                .map(|(seq, message)| Item::Sent { seq, message }),
        );
        while let Some(item) = self.receiver.try_recv() {
            items.push(item);
        }
        items
    }
}

/// A seat's queue: what waits for one participant. Unlike a channel, which allocates room for
/// 32 items up front, an idle one holds nothing but its header; idle connections are many.
mod queue {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use tokio::sync::Notify;

    use super::Item;

    struct Shared {
        items: Mutex<VecDeque<Item>>,
        capacity: usize,
        /// A permit when something changed: an item came or the sender went.
        changed: Notify,
        sender_gone: AtomicBool,
        receiver_gone: AtomicBool,
    }

    impl Shared {
        fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<Item>> {
            self.items
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    pub(crate) fn channel(capacity: usize) -> (Sender, Receiver) {
        let shared = Arc::new(Shared {
            items: Mutex::new(VecDeque::new()),
            capacity,
            changed: Notify::new(),
            sender_gone: AtomicBool::new(false),
            receiver_gone: AtomicBool::new(false),
        });
        (Sender(shared.clone()), Receiver(shared))
    }

    pub(crate) enum Refused {
        /// `capacity` items wait already.
        Full,
        /// Nobody will read it.
        Closed,
    }

    pub(crate) struct Sender(Arc<Shared>);

    impl Sender {
        pub(crate) fn try_send(&self, item: Item) -> Result<(), Refused> {
            if self.0.receiver_gone.load(Ordering::Acquire) {
                return Err(Refused::Closed);
            }
            {
                let mut items = self.0.items();
                if items.len() >= self.0.capacity {
                    return Err(Refused::Full);
                }
                items.push_back(item);
            }
            self.0.changed.notify_one();
            Ok(())
        }
    }

    impl Drop for Sender {
        fn drop(&mut self) {
            self.0.sender_gone.store(true, Ordering::Release);
            self.0.changed.notify_one();
        }
    }

    pub(crate) struct Receiver(Arc<Shared>);

    impl Receiver {
        /// The next item; `None` once the sender is gone and nothing waits. Cancel-safe: an
        /// item stays queued until this returns it.
        pub(crate) async fn recv(&mut self) -> Option<Item> {
            loop {
                if let Some(item) = self.try_recv() {
                    return Some(item);
                }
                if self.0.sender_gone.load(Ordering::Acquire) {
                    return self.try_recv();
                }
                self.0.changed.notified().await;
            }
        }

        pub(crate) fn try_recv(&mut self) -> Option<Item> {
            self.0.items().pop_front()
        }
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            self.0.receiver_gone.store(true, Ordering::Release);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::protocol::ServerMessage;

        fn item() -> Item {
            Item::Fresh {
                message: Box::new(ServerMessage::Pong),
            }
        }

        #[tokio::test]
        async fn items_arrive_in_order_up_to_capacity_and_the_end_is_told() {
            let (sender, mut receiver) = channel(2);
            assert!(sender.try_send(item()).is_ok());
            assert!(sender.try_send(item()).is_ok());
            assert!(matches!(sender.try_send(item()), Err(Refused::Full)));
            assert!(receiver.recv().await.is_some());
            let waiting = tokio::spawn(async move {
                let mut got = 0;
                while receiver.recv().await.is_some() {
                    got += 1;
                }
                got
            });
            tokio::task::yield_now().await;
            assert!(sender.try_send(item()).is_ok());
            drop(sender);
            assert_eq!(waiting.await.expect("joined"), 2);
        }

        #[test]
        fn nothing_is_sent_to_a_receiver_that_is_gone() {
            let (sender, receiver) = channel(2);
            drop(receiver);
            assert!(matches!(sender.try_send(item()), Err(Refused::Closed)));
        }
    }
}

enum Phase {
    /// A new seat, until its own `Seated` goes by: relays before it were committed before the
    /// seat existed, for whoever was in the room then, and are not delivered to it.
    Joining,
    Connected,
    /// Dropped, within the grace period; messages wait in `inbox`.
    Away,
    /// Came back through this process; waiting for our own `Moved` to go by, before which
    /// messages are the old process's to keep.
    AwaitingMove,
    /// Waiting for the old process to forward what it kept; newer messages wait here.
    AwaitingHandover(Vec<ServerMessage>),
}

struct Seat {
    connection: Uuid,
    phase: Phase,
    outbox: queue::Sender,
    ending: Ending,
    /// Parked here while the participant is away.
    inbox: Option<Inbox>,
}

/// A seat taken for a new connection.
pub(crate) struct Seated {
    pub(crate) connection: Uuid,
    pub(crate) inbox: Inbox,
    /// Whether the other party holds a seat (connected or within grace).
    pub(crate) peer_present: bool,
}

/// The seats this process holds, by room, so a relay finds its room's (at most two) seats
/// without looking at every other room's.
#[derive(Default)]
struct Seats {
    rooms: HashMap<Uuid, HashMap<Uuid, Seat>>,
    count: usize,
    /// Per room, the relays this process has published and not yet heard back.
    in_flight: HashMap<Uuid, u32>,
}

impl Seat {
    /// Queues an item for the participant; false when they are `SEAT_QUEUE` behind.
    fn push(&self, item: Item) -> bool {
        match self.outbox.try_send(item) {
            Ok(()) => true,
            Err(queue::Refused::Full) => {
                self.ending
                    .store(ENDED_TOO_SLOW, std::sync::atomic::Ordering::SeqCst);
                false
            }
            // The connection is gone and its seat with it: nothing waits for this item.
            Err(queue::Refused::Closed) => true,
        }
    }
}

impl Seats {
    fn get(&self, (room, participant): &(Uuid, Uuid)) -> Option<&Seat> {
        self.rooms.get(room)?.get(participant)
    }

    fn get_mut(&mut self, (room, participant): &(Uuid, Uuid)) -> Option<&mut Seat> {
        self.rooms.get_mut(room)?.get_mut(participant)
    }

    fn insert(&mut self, (room, participant): (Uuid, Uuid), seat: Seat) {
        if self
            .rooms
            .entry(room)
            .or_default()
            .insert(participant, seat)
            .is_none()
        {
            self.count += 1;
        }
    }

    fn remove(&mut self, (room, participant): &(Uuid, Uuid)) -> Option<Seat> {
        let seats = self.rooms.get_mut(room)?;
        let seat = seats.remove(participant)?;
        if seats.is_empty() {
            self.rooms.remove(room);
        }
        self.count -= 1;
        Some(seat)
    }

    fn len(&self) -> usize {
        self.count
    }

    /// Whether a relay from `from` may go straight to the room's other seat: both seats are
    /// here, the sender's connected and the other's taking messages, and none of this
    /// process's relays of the room is still on its way through PostgreSQL. Then no process
    /// but this one can deliver anything in the room that must come first: nothing is
    /// reordered. (A seat moving elsewhere meanwhile gets what waited here forwarded, as a
    /// relay heard before its move would have been.)
    fn local_only(&self, room: Uuid, from: Uuid) -> bool {
        let Some(seats) = self.rooms.get(&room) else {
            return false;
        };
        seats.len() == 2
            && self.in_flight.get(&room).copied().unwrap_or(0) == 0
            && seats.iter().all(|(who, seat)| {
                if *who == from {
                    matches!(seat.phase, Phase::Connected)
                } else {
                    matches!(seat.phase, Phase::Connected | Phase::Away)
                }
            })
    }

    /// One of this process's relays of `room` is through (or never will be).
    fn heard_back(&mut self, room: Uuid) {
        if let Some(count) = self.in_flight.get_mut(&room) {
            *count -= 1;
            if *count == 0 {
                self.in_flight.remove(&room);
            }
        }
    }

    /// Hands a relay to the room's seats but the sender's; answers those too far behind.
    fn relay(&mut self, room: Uuid, from: Uuid, message: &ServerMessage) -> Vec<(Uuid, Uuid)> {
        let mut behind = Vec::new();
        for (participant, seat) in self.others_mut(room, from) {
            match &mut seat.phase {
                Phase::Connected | Phase::Away => {
                    if !seat.push(Item::Fresh {
                        message: Box::new(message.clone()),
                    }) {
                        behind.push((participant, seat.connection));
                    }
                }
                Phase::Joining | Phase::AwaitingMove => {}
                Phase::AwaitingHandover(later) => {
                    if later.len() < SEAT_QUEUE {
                        later.push(message.clone());
                    } else {
                        behind.push((participant, seat.connection));
                    }
                }
            }
        }
        behind
    }

    /// The room's seats but `from`'s.
    fn others_mut(&mut self, room: Uuid, from: Uuid) -> impl Iterator<Item = (Uuid, &mut Seat)> {
        self.rooms
            .get_mut(&room)
            .into_iter()
            .flat_map(|seats| seats.iter_mut())
            .filter(move |(who, _)| **who != from)
            .map(|(who, seat)| (*who, seat))
    }
}

/// The signaling rooms, as this process sees them.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    key: Vec<u8>,
    pub(crate) settings: Settings,
    node: Uuid,
    pool: PgPool,
    seats: Mutex<Seats>,
}

enum Claim {
    Fresh,
    ResumeHere,
    ResumeFromElsewhere,
}

impl Hub {
    /// Registers this process, starts listening and starts the heartbeat.
    pub async fn start(pool: PgPool, key: Vec<u8>, settings: Settings) -> sqlx::Result<Hub> {
        let node = Uuid::new_v4();
        sqlx::query("INSERT INTO signaling_nodes (node) VALUES ($1)")
            .bind(node)
            .execute(&pool)
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let hub = Hub {
            inner: Arc::new(Inner {
                key,
                settings,
                node,
                pool,
                seats: Mutex::default(),
            }),
        };
        let weak = Arc::downgrade(&hub.inner);
        tokio::spawn(async move {
            loop {
                let notification = listener.recv().await;
                let Some(inner) = weak.upgrade() else { return };
                let hub = Hub { inner };
                match notification {
                    Ok(notification) => hub.received(notification.payload()).await,
                    Err(error) => {
                        tracing::warn!(%error, "信令监听中断 / the signaling listener failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        let weak = Arc::downgrade(&hub.inner);
        let every = hub.inner.settings.heartbeat_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let hub = Hub { inner };
                if let Err(error) = hub.heartbeat().await {
                    tracing::warn!(%error, "信令心跳失败 / the signaling heartbeat failed");
                }
            }
        });
        Ok(hub)
    }

    /// Closes a room for good (its interview was cancelled or concluded): no seat is taken in
    /// it again, and every process ends the connections it holds there, telling them why.
    pub async fn close_room(&self, room: Uuid) -> sqlx::Result<()> {
        let mut tx = self.inner.pool.begin().await?;
        lock_room(&mut tx, room).await?;
        sqlx::query("INSERT INTO signaling_closed_rooms (room) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(room)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM signaling_seats WHERE room = $1")
            .bind(room)
            .execute(&mut *tx)
            .await?;
        publish(&mut tx, &Bus::Closed { room }).await?;
        tx.commit().await
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.inner.key
    }

    /// A room token this hub will admit.
    pub fn room_token(&self, claims: &token::RoomClaims) -> String {
        token::room_token(&self.inner.key, claims)
    }

    /// How many connections this process holds (for the benchmark and metrics).
    pub fn local_seats(&self) -> usize {
        self.inner.seats.lock().expect("seats").len()
    }

    async fn heartbeat(&self) -> sqlx::Result<()> {
        sqlx::query("UPDATE signaling_nodes SET seen_at = now() WHERE node = $1")
            .bind(self.inner.node)
            .execute(&self.inner.pool)
            .await?;
        sqlx::query("DELETE FROM signaling_mail WHERE created_at < now() - interval '1 minute'")
            .execute(&self.inner.pool)
            .await?;
        sqlx::query("DELETE FROM signaling_nodes WHERE seen_at < now() - interval '1 hour'")
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    fn node_timeout_seconds(&self) -> f64 {
        self.inner.settings.node_timeout.as_secs_f64()
    }

    /// Whether the participant could take their seat now (checked before the upgrade).
    pub(crate) async fn can_seat(&self, room: Uuid, participant: Uuid) -> Result<(), &'static str> {
        let closed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM signaling_closed_rooms WHERE room = $1)",
        )
        .bind(room)
        .fetch_one(&self.inner.pool)
        .await
        .map_err(|error| {
            tracing::error!(%error, "信令房间查询失败 / reading the room failed");
            "unavailable"
        })?;
        if closed {
            return Err("room-closed");
        }
        let rows: Vec<(Uuid, bool)> = sqlx::query_as(
            "SELECT s.participant, s.away_since IS NOT NULL
               FROM signaling_seats s JOIN signaling_nodes n USING (node)
              WHERE s.room = $1 AND n.seen_at > now() - make_interval(secs => $2)",
        )
        .bind(room)
        .bind(self.node_timeout_seconds())
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|error| {
            tracing::error!(%error, "信令座位查询失败 / reading the seats failed");
            "unavailable"
        })?;
        match rows.iter().find(|(who, _)| *who == participant) {
            Some((_, false)) => Err("already-connected"),
            Some((_, true)) => Ok(()),
            None if rows.len() >= 2 => Err("room-full"),
            None => Ok(()),
        }
    }

    /// Takes the participant's seat for a new connection, or refuses.
    pub(crate) async fn seat(&self, room: Uuid, participant: Uuid) -> Result<Seated, &'static str> {
        let connection = Uuid::new_v4();
        let unavailable = |error: sqlx::Error| {
            tracing::error!(%error, "信令入座失败 / taking a seat failed");
            "unavailable"
        };
        let mut tx = self.inner.pool.begin().await.map_err(unavailable)?;
        lock_room(&mut tx, room).await.map_err(unavailable)?;
        sqlx::query(
            "DELETE FROM signaling_seats s WHERE s.room = $1 AND NOT EXISTS (
                 SELECT 1 FROM signaling_nodes n
                  WHERE n.node = s.node AND n.seen_at > now() - make_interval(secs => $2))",
        )
        .bind(room)
        .bind(self.node_timeout_seconds())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let rows: Vec<(Uuid, Uuid, bool)> = sqlx::query_as(
            "SELECT participant, node, away_since IS NOT NULL FROM signaling_seats
              WHERE room = $1 FOR UPDATE",
        )
        .bind(room)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let peer_present = rows.iter().any(|(who, _, _)| *who != participant);
        let claim = match rows.iter().find(|(who, _, _)| *who == participant) {
            Some((_, _, false)) => return Err("already-connected"),
            Some((_, node, true)) if *node == self.inner.node => Claim::ResumeHere,
            Some(_) => Claim::ResumeFromElsewhere,
            None if rows.len() >= 2 => return Err("room-full"),
            None => Claim::Fresh,
        };
        // A new seat, or the participant's own taken back by this connection.
        sqlx::query(
            "INSERT INTO signaling_seats (room, participant, node, connection)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (room, participant) DO UPDATE
                SET node = excluded.node, connection = excluded.connection, away_since = NULL",
        )
        .bind(room)
        .bind(participant)
        .bind(self.inner.node)
        .bind(connection)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if matches!(claim, Claim::Fresh) {
            let seated = Bus::Seated {
                room,
                participant,
                connection,
            };
            publish(&mut tx, &seated).await.map_err(unavailable)?;
        }
        let told = match claim {
            Claim::Fresh => Some(Bus::Relay {
                room,
                from: participant,
                message: ServerMessage::PeerJoined { peer: participant },
                node: None,
            }),
            Claim::ResumeFromElsewhere => Some(Bus::Moved {
                room,
                participant,
                connection,
            }),
            Claim::ResumeHere => None,
        };
        if let Some(told) = told {
            publish(&mut tx, &told).await.map_err(unavailable)?;
        }
        // The local seat exists before the commit, so nothing that follows it is missed.
        let inbox = {
            let mut seats = self.inner.seats.lock().expect("seats");
            let parked = match claim {
                Claim::ResumeHere => seats
                    .get_mut(&(room, participant))
                    .filter(|seat| matches!(seat.phase, Phase::Away))
                    .and_then(|seat| {
                        seat.connection = connection;
                        seat.phase = Phase::Connected;
                        seat.inbox.take()
                    }),
                _ => None,
            };
            match parked {
                Some(inbox) => inbox,
                None => {
                    let (outbox, receiver) = queue::channel(SEAT_QUEUE);
                    let ending = std::sync::Arc::default();
                    let phase = match claim {
                        Claim::ResumeFromElsewhere => Phase::AwaitingMove,
                        _ => Phase::Joining,
                    };
                    seats.insert(
                        (room, participant),
                        Seat {
                            connection,
                            phase,
                            outbox,
                            ending: std::sync::Arc::clone(&ending),
                            inbox: None,
                        },
                    );
                    Inbox::new(receiver, ending)
                }
            }
        };
        if let Err(error) = tx.commit().await {
            self.forget(room, participant, connection);
            return Err(unavailable(error));
        }
        Ok(Seated {
            connection,
            inbox,
            peer_present,
        })
    }

    /// Removes the local seat if `connection` still holds it.
    /// Takes a participant who fell `SEAT_QUEUE` messages behind out of the room: their seat
    /// goes (so their connection's channel ends and it is closed, told why), and the peer is
    /// told they left. They may join again.
    fn take_out(&self, room: Uuid, participant: Uuid, connection: Uuid) {
        tracing::warn!(%room, %participant, "参与者接收过慢，已移出房间 / a participant fell too far behind and was taken out of the room");
        self.forget(room, participant, connection);
        let hub = self.clone();
        tokio::spawn(async move {
            if let Err(error) = hub.give_up(room, participant, connection, false).await {
                tracing::warn!(%error, "移出房间未能记录 / recording a removal failed");
            }
        });
    }

    fn forget(&self, room: Uuid, participant: Uuid, connection: Uuid) {
        let mut seats = self.inner.seats.lock().expect("seats");
        if seats
            .get(&(room, participant))
            .is_some_and(|seat| seat.connection == connection)
        {
            seats.remove(&(room, participant));
        }
    }

    /// Sends to the other party of the room, wherever they are connected.
    pub(crate) async fn relay(
        &self,
        room: Uuid,
        from: Uuid,
        message: ServerMessage,
    ) -> sqlx::Result<()> {
        {
            let mut seats = self.inner.seats.lock().expect("seats");
            if seats.local_only(room, from) {
                // Both parties are here: straight to the other's seat, no detour.
                let behind = seats.relay(room, from, &message);
                drop(seats);
                for (participant, connection) in behind {
                    self.take_out(room, participant, connection);
                }
                return Ok(());
            }
            *seats.in_flight.entry(room).or_default() += 1;
        }
        let published = async {
            let mut connection = self.inner.pool.acquire().await?;
            publish(
                &mut connection,
                &Bus::Relay {
                    room,
                    from,
                    message,
                    node: Some(self.inner.node),
                },
            )
            .await
        }
        .await;
        if published.is_err() {
            // Never to be heard back: it is not in flight.
            let mut seats = self.inner.seats.lock().expect("seats");
            seats.heard_back(room);
        }
        published
    }

    /// A connection ended: the seat waits for the participant (unless they left), and the peer
    /// hears of it only if they do not come back in time.
    pub(crate) async fn dropped(
        &self,
        room: Uuid,
        participant: Uuid,
        connection: Uuid,
        inbox: Inbox,
        left: bool,
    ) {
        {
            let mut seats = self.inner.seats.lock().expect("seats");
            match seats.get_mut(&(room, participant)) {
                Some(seat) if seat.connection == connection => {
                    if left {
                        seats.remove(&(room, participant));
                    } else {
                        // What was held back for a handover still in progress waits too.
                        if let Phase::AwaitingHandover(later) = &mut seat.phase {
                            for message in std::mem::take(later) {
                                seat.push(Item::Fresh {
                                    message: Box::new(message),
                                });
                            }
                        }
                        seat.phase = Phase::Away;
                        seat.inbox = Some(inbox);
                    }
                }
                _ => return,
            }
        }
        if left {
            if let Err(error) = self.give_up(room, participant, connection, false).await {
                tracing::warn!(%error, "离开房间未能记录 / recording a leave failed");
            }
            return;
        }
        if let Err(error) = sqlx::query(
            "UPDATE signaling_seats SET away_since = now()
              WHERE room = $1 AND participant = $2 AND connection = $3",
        )
        .bind(room)
        .bind(participant)
        .bind(connection)
        .execute(&self.inner.pool)
        .await
        {
            tracing::warn!(%error, "掉线未能记录 / recording a drop failed");
        }
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hub.inner.settings.grace).await;
            match hub.give_up(room, participant, connection, true).await {
                Ok(true) => hub.forget(room, participant, connection),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "宽限期结束未能记录 / ending a grace period failed");
                }
            }
        });
    }

    /// Frees the seat `connection` holds (only while away, if `only_away`) and tells the peer.
    async fn give_up(
        &self,
        room: Uuid,
        participant: Uuid,
        connection: Uuid,
        only_away: bool,
    ) -> sqlx::Result<bool> {
        let mut tx = self.inner.pool.begin().await?;
        lock_room(&mut tx, room).await?;
        let freed = sqlx::query(
            "DELETE FROM signaling_seats
              WHERE room = $1 AND participant = $2 AND connection = $3
                AND (NOT $4 OR away_since IS NOT NULL)",
        )
        .bind(room)
        .bind(participant)
        .bind(connection)
        .bind(only_away)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if freed {
            let left = Bus::Relay {
                room,
                from: participant,
                message: ServerMessage::PeerLeft { peer: participant },
                node: None,
            };
            publish(&mut tx, &left).await?;
        }
        tx.commit().await?;
        Ok(freed)
    }

    /// One notification from any process, this one included.
    async fn received(&self, payload: &str) {
        let bus = match serde_json::from_str::<Bus>(payload) {
            Ok(Bus::Mail { id }) => {
                let body: Option<String> = match sqlx::query_scalar(
                    "SELECT body FROM signaling_mail WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.inner.pool)
                .await
                {
                    Ok(body) => body,
                    Err(error) => {
                        tracing::warn!(%error, id, "信令邮件读取失败 / reading signaling mail failed");
                        return;
                    }
                };
                match body.map(|body| serde_json::from_str::<Bus>(&body)) {
                    Some(Ok(bus)) => bus,
                    _ => {
                        tracing::warn!(id, "信令邮件无效 / signaling mail missing or unreadable");
                        return;
                    }
                }
            }
            Ok(bus) => bus,
            Err(error) => {
                tracing::warn!(%error, "信令通知无效 / unreadable signaling notification");
                return;
            }
        };
        self.deliver(bus);
    }

    fn deliver(&self, bus: Bus) {
        let mut seats = self.inner.seats.lock().expect("seats");
        match bus {
            Bus::Relay {
                room,
                from,
                message,
                node,
            } => {
                if node == Some(self.inner.node) {
                    seats.heard_back(room);
                }
                let behind = seats.relay(room, from, &message);
                drop(seats);
                for (participant, connection) in behind {
                    self.take_out(room, participant, connection);
                }
            }
            Bus::Seated {
                room,
                participant,
                connection,
            } => {
                if let Some(seat) = seats.get_mut(&(room, participant)) {
                    if seat.connection == connection && matches!(seat.phase, Phase::Joining) {
                        seat.phase = Phase::Connected;
                    }
                }
            }
            Bus::Moved {
                room,
                participant,
                connection,
            } => {
                let Some(seat) = seats.get_mut(&(room, participant)) else {
                    return;
                };
                if seat.connection == connection {
                    // Ours: from here on, messages are for us; what came before is forwarded.
                    if matches!(seat.phase, Phase::AwaitingMove) {
                        seat.phase = Phase::AwaitingHandover(Vec::new());
                        let hub = self.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(hub.inner.settings.handover_timeout).await;
                            hub.handed_over(room, participant, connection);
                        });
                    }
                    return;
                }
                // Theirs now: forward what waited here, in order, then say so.
                let Some(seat) = seats.remove(&(room, participant)) else {
                    return;
                };
                let waiting = seat.inbox.map(Inbox::drain).unwrap_or_default();
                let hub = self.clone();
                tokio::spawn(async move {
                    if let Err(error) = hub.hand_over(room, participant, connection, waiting).await
                    {
                        tracing::warn!(%error, "座位交接失败 / handing a seat over failed");
                    }
                });
            }
            Bus::Forward {
                room,
                to,
                connection,
                item,
            } => {
                let behind = seats
                    .get(&(room, to))
                    .is_some_and(|seat| seat.connection == connection && !seat.push(item));
                drop(seats);
                if behind {
                    self.take_out(room, to, connection);
                }
            }
            Bus::HandedOver {
                room,
                participant,
                connection,
            } => {
                drop(seats);
                self.handed_over(room, participant, connection);
            }
            Bus::Mail { .. } => {}
            Bus::Closed { room } => {
                let closing: Vec<Uuid> = seats
                    .rooms
                    .get(&room)
                    .map(|held| held.keys().copied().collect())
                    .unwrap_or_default();
                for participant in closing {
                    if let Some(seat) = seats.get(&(room, participant)) {
                        seat.ending
                            .store(ENDED_ROOM_CLOSED, std::sync::atomic::Ordering::SeqCst);
                    }
                    seats.remove(&(room, participant));
                }
            }
        }
    }

    async fn hand_over(
        &self,
        room: Uuid,
        participant: Uuid,
        connection: Uuid,
        waiting: Vec<Item>,
    ) -> sqlx::Result<()> {
        let mut db = self.inner.pool.acquire().await?;
        for item in waiting {
            let forward = Bus::Forward {
                room,
                to: participant,
                connection,
                item,
            };
            publish(&mut db, &forward).await?;
        }
        let done = Bus::HandedOver {
            room,
            participant,
            connection,
        };
        publish(&mut db, &done).await
    }

    /// The moved seat's older messages are all delivered (or their process is gone): the ones
    /// held back follow.
    fn handed_over(&self, room: Uuid, participant: Uuid, connection: Uuid) {
        let mut seats = self.inner.seats.lock().expect("seats");
        let Some(seat) = seats.get_mut(&(room, participant)) else {
            return;
        };
        if seat.connection != connection {
            return;
        }
        if let Phase::AwaitingHandover(later) = &mut seat.phase {
            let later = std::mem::take(later);
            seat.phase = Phase::Connected;
            for message in later {
                seat.push(Item::Fresh {
                    message: Box::new(message),
                });
            }
        }
    }
}

/// Serialises seat changes of one room across processes.
async fn lock_room(connection: &mut PgConnection, room: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind(room)
        .execute(connection)
        .await
        .map(drop)
}

/// Sends a notification to every process (at commit, inside a transaction).
async fn publish(connection: &mut PgConnection, bus: &Bus) -> sqlx::Result<()> {
    let payload = serde_json::to_string(bus).expect("serialises");
    let payload = if payload.len() > MAX_NOTIFY_BYTES {
        let id: i64 =
            sqlx::query_scalar("INSERT INTO signaling_mail (body) VALUES ($1) RETURNING id")
                .bind(&payload)
                .fetch_one(&mut *connection)
                .await?;
        serde_json::to_string(&Bus::Mail { id }).expect("serialises")
    } else {
        payload
    };
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(connection)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(phase: Phase) -> Seat {
        let (outbox, _receiver) = queue::channel(4);
        Seat {
            connection: Uuid::new_v4(),
            phase,
            outbox,
            ending: Ending::default(),
            inbox: None,
        }
    }

    #[test]
    fn a_relay_goes_straight_only_between_two_settled_seats_with_nothing_in_flight() {
        let (room, me, peer) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut seats = Seats::default();
        seats.insert((room, me), seat(Phase::Connected));
        assert!(
            !seats.local_only(room, me),
            "the peer is elsewhere or absent"
        );
        seats.insert((room, peer), seat(Phase::Joining));
        assert!(
            !seats.local_only(room, me),
            "the peer's seat is not settled"
        );
        seats.insert((room, peer), seat(Phase::Away));
        assert!(
            seats.local_only(room, me),
            "an away peer's seat keeps what is sent"
        );
        *seats.in_flight.entry(room).or_default() += 1;
        assert!(
            !seats.local_only(room, me),
            "an earlier relay is on its way"
        );
        seats.heard_back(room);
        assert!(seats.local_only(room, me));
        seats.insert((room, me), seat(Phase::AwaitingHandover(Vec::new())));
        assert!(!seats.local_only(room, me), "the sender's move is not done");
    }
}
