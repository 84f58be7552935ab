//! The signaling service: a WebSocket endpoint that relays offers, answers and trickled ICE
//! candidates between the two parties of one interview.
//!
//! - Admission is by a room token (see [`token`]) for one room and one participant; anyone else,
//!   an expired token, or a second live connection of the same participant is refused before
//!   the upgrade.
//! - The server sets the sender of every relayed message, checks each session description and
//!   candidate (see [`protocol`]), and limits message size and rate; a bad message gets an
//!   error back and is not relayed.
//! - A participant whose connection drops may come back within the grace period with the same
//!   token: messages sent meanwhile wait for them, and the other side is told nothing. Only a
//!   `leave`, or the grace period running out, tells the peer they left.
//! - The server pings every connection and closes one that has been silent too long.
//!
//! One process holds a room; sharing rooms across processes is left for later (see the note).

pub mod protocol;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::protocol::{
    check_candidate, check_sdp, ClientMessage, ServerMessage, MAX_MESSAGE_BYTES,
};

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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grace: Duration::from_secs(15),
            ping_every: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            rate_per_second: 50,
        }
    }
}

/// What waits for a participant: their channel, and a message taken from it that their last
/// connection could not deliver (it dropped mid-send), to go first when they come back.
struct Inbox {
    receiver: mpsc::UnboundedReceiver<ServerMessage>,
    held: Option<ServerMessage>,
}

impl Inbox {
    /// The next message; cancel-safe, as `select!` needs.
    async fn next(&mut self) -> Option<ServerMessage> {
        if let Some(held) = self.held.take() {
            return Some(held);
        }
        self.receiver.recv().await
    }
}

struct Seat {
    /// Which connection holds the seat; `None` while the participant is away (in grace).
    connection: Option<u64>,
    outbox: mpsc::UnboundedSender<ServerMessage>,
    /// Taken by the connection that holds the seat, given back when it drops.
    inbox: Option<Inbox>,
}

#[derive(Default)]
struct Rooms {
    next_connection: u64,
    seats: HashMap<Uuid, HashMap<Uuid, Seat>>,
}

/// The rooms of this process.
#[derive(Clone)]
pub struct Hub {
    key: Arc<Vec<u8>>,
    settings: Settings,
    rooms: Arc<Mutex<Rooms>>,
}

enum Admitted {
    Fresh,
    Resumed,
}

impl Hub {
    pub fn new(key: Vec<u8>, settings: Settings) -> Self {
        Hub {
            key: Arc::new(key),
            settings,
            rooms: Arc::default(),
        }
    }

    /// A room token this hub will admit.
    pub fn room_token(&self, claims: &token::RoomClaims) -> String {
        token::room_token(&self.key, claims)
    }

    /// Whether the participant could take their seat now.
    fn can_seat(&self, room: Uuid, participant: Uuid) -> Result<(), &'static str> {
        let rooms = self.rooms.lock().expect("rooms");
        let Some(seats) = rooms.seats.get(&room) else {
            return Ok(());
        };
        match seats.get(&participant) {
            Some(seat) if seat.connection.is_some() => Err("already-connected"),
            Some(_) => Ok(()),
            None if seats.len() >= 2 => Err("room-full"),
            None => Ok(()),
        }
    }

    /// Takes the participant's seat for a new connection, or refuses.
    #[allow(clippy::type_complexity)]
    fn seat(
        &self,
        room: Uuid,
        participant: Uuid,
    ) -> Result<(u64, Inbox, Admitted, bool), &'static str> {
        let mut rooms = self.rooms.lock().expect("rooms");
        rooms.next_connection += 1;
        let connection = rooms.next_connection;
        let seats = rooms.seats.entry(room).or_default();
        let peer_present = seats
            .iter()
            .any(|(who, seat)| *who != participant && seat.connection.is_some());
        if let Some(seat) = seats.get_mut(&participant) {
            if seat.connection.is_some() {
                return Err("already-connected");
            }
            seat.connection = Some(connection);
            let inbox = seat.inbox.take().ok_or("already-connected")?;
            return Ok((connection, inbox, Admitted::Resumed, peer_present));
        }
        if seats.len() >= 2 {
            return Err("room-full");
        }
        let (outbox, receiver) = mpsc::unbounded_channel();
        let inbox = Inbox {
            receiver,
            held: None,
        };
        seats.insert(
            participant,
            Seat {
                connection: Some(connection),
                outbox,
                inbox: None,
            },
        );
        Ok((connection, inbox, Admitted::Fresh, peer_present))
    }

    /// Sends to everyone in the room but `from`; false when nobody else has a seat.
    fn to_peer(&self, room: Uuid, from: Uuid, message: ServerMessage) -> bool {
        let rooms = self.rooms.lock().expect("rooms");
        let mut sent = false;
        if let Some(seats) = rooms.seats.get(&room) {
            for (who, seat) in seats {
                if *who != from {
                    sent |= seat.outbox.send(message.clone()).is_ok();
                }
            }
        }
        sent
    }

    /// A connection ended: the seat waits for the participant (unless they left), and the peer
    /// hears of it only if they do not come back in time.
    fn dropped(&self, room: Uuid, participant: Uuid, connection: u64, inbox: Inbox, left: bool) {
        {
            let mut rooms = self.rooms.lock().expect("rooms");
            let Some(seats) = rooms.seats.get_mut(&room) else {
                return;
            };
            let Some(seat) = seats.get_mut(&participant) else {
                return;
            };
            if seat.connection != Some(connection) {
                return;
            }
            if left {
                seats.remove(&participant);
                if seats.is_empty() {
                    rooms.seats.remove(&room);
                }
            } else {
                seat.connection = None;
                seat.inbox = Some(inbox);
            }
        }
        if left {
            self.to_peer(
                room,
                participant,
                ServerMessage::PeerLeft { peer: participant },
            );
            return;
        }
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hub.settings.grace).await;
            let gone = {
                let mut rooms = hub.rooms.lock().expect("rooms");
                let Some(seats) = rooms.seats.get_mut(&room) else {
                    return;
                };
                let away = seats
                    .get(&participant)
                    .is_some_and(|seat| seat.connection.is_none());
                if away {
                    seats.remove(&participant);
                    if seats.is_empty() {
                        rooms.seats.remove(&room);
                    }
                }
                away
            };
            if gone {
                hub.to_peer(
                    room,
                    participant,
                    ServerMessage::PeerLeft { peer: participant },
                );
            }
        });
    }
}

#[derive(Debug, Deserialize)]
pub struct Admission {
    pub token: String,
}

pub fn router<S>(hub: Hub) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/v1/signaling", get(connect))
        .with_state(hub)
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/problem+json")],
        serde_json::json!({
            "type": format!("/problems/{code}"),
            "title": code,
            "status": status.as_u16(),
            "detail": message,
        })
        .to_string(),
    )
        .into_response()
}

async fn connect(
    State(hub): State<Hub>,
    query: Result<Query<Admission>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Ok(Query(admission)) = query else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "需要入场凭证 / a room token is required",
        );
    };
    let claims = match token::verify_room_token(&hub.key, &admission.token, chrono::Utc::now()) {
        Ok(claims) => claims,
        Err(error) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                &error.to_string(),
            )
        }
    };
    if let Err(code) = hub.can_seat(claims.room, claims.sub) {
        return refuse(
            StatusCode::CONFLICT,
            "conflict",
            &format!("无法进入房间（{code}）/ the room cannot be entered ({code})"),
        );
    }
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |mut socket| async move {
            // The seat is taken only once the connection is up, so an upgrade that never
            // completes holds nothing; a race lost since the check above is told and closed.
            let (connection, inbox, admitted, peer_present) =
                match hub.seat(claims.room, claims.sub) {
                    Ok(seated) => seated,
                    Err(code) => {
                        let refusal =
                            ServerMessage::error(code, "无法进入房间 / the room cannot be entered");
                        let _ = socket
                            .send(Message::Text(
                                serde_json::to_string(&refusal).expect("serialises").into(),
                            ))
                            .await;
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                };
            let (inbox, left) = serve(
                &hub,
                socket,
                claims.room,
                claims.sub,
                inbox,
                admitted,
                peer_present,
            )
            .await;
            hub.dropped(claims.room, claims.sub, connection, inbox, left);
        })
}

/// Runs one connection; answers the seat's inbox and whether the participant left on purpose.
async fn serve(
    hub: &Hub,
    socket: WebSocket,
    room: Uuid,
    me: Uuid,
    mut inbox: Inbox,
    admitted: Admitted,
    peer_present: bool,
) -> (Inbox, bool) {
    let (mut outgoing, mut incoming) = socket.split();
    let send = |message: &ServerMessage| {
        Message::Text(serde_json::to_string(message).expect("serialises").into())
    };
    if outgoing
        .send(send(&ServerMessage::Joined {
            room,
            you: me,
            peer_present,
        }))
        .await
        .is_err()
    {
        return (inbox, false);
    }
    if matches!(admitted, Admitted::Fresh) {
        hub.to_peer(room, me, ServerMessage::PeerJoined { peer: me });
    }
    let mut ping = tokio::time::interval(hub.settings.ping_every);
    let mut last_heard = tokio::time::Instant::now();
    let mut window = (tokio::time::Instant::now(), 0u32);
    loop {
        tokio::select! {
            relayed = inbox.next() => {
                let Some(message) = relayed else { return (inbox, false) };
                if outgoing.send(send(&message)).await.is_err() {
                    // Not delivered: it waits for the participant's next connection.
                    inbox.held = Some(message);
                    return (inbox, false);
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > hub.settings.idle_timeout {
                    let _ = outgoing.send(Message::Close(None)).await;
                    return (inbox, false);
                }
                if outgoing.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return (inbox, false);
                }
            }
            received = incoming.next() => {
                let Some(Ok(frame)) = received else { return (inbox, false) };
                last_heard = tokio::time::Instant::now();
                let text = match frame {
                    Message::Text(text) => text,
                    Message::Close(_) => return (inbox, false),
                    Message::Pong(_) | Message::Ping(_) => continue,
                    Message::Binary(_) => {
                        let _ = outgoing.send(send(&ServerMessage::error("bad-message", "只接受文本消息 / text messages only"))).await;
                        continue;
                    }
                };
                if window.0.elapsed() >= Duration::from_secs(1) {
                    window = (tokio::time::Instant::now(), 0);
                }
                window.1 += 1;
                if window.1 > hub.settings.rate_per_second {
                    let _ = outgoing.send(send(&ServerMessage::error("rate-limited", "消息过于频繁 / too many messages"))).await;
                    continue;
                }
                let reply = match handle(hub, room, me, text.as_str()) {
                    Handled::Relayed => continue,
                    Handled::Leave => return (inbox, true),
                    Handled::Reply(reply) => reply,
                };
                if outgoing.send(send(&reply)).await.is_err() {
                    return (inbox, false);
                }
            }
        }
    }
}

enum Handled {
    Relayed,
    Leave,
    Reply(ServerMessage),
}

fn handle(hub: &Hub, room: Uuid, me: Uuid, text: &str) -> Handled {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(error) => {
            return Handled::Reply(ServerMessage::error(
                "bad-message",
                &format!("无法识别的消息 / unreadable message: {error}"),
            ))
        }
    };
    let relayed = match message {
        ClientMessage::Ping => return Handled::Reply(ServerMessage::Pong),
        ClientMessage::Leave => return Handled::Leave,
        ClientMessage::Offer { sdp } | ClientMessage::Answer { sdp }
            if check_sdp(&sdp).is_err() =>
        {
            let why = check_sdp(&sdp).err().unwrap_or_default();
            return Handled::Reply(ServerMessage::error(
                "bad-sdp",
                &format!("会话描述无效 / invalid session description: {why}"),
            ));
        }
        ClientMessage::Offer { sdp } => ServerMessage::Offer { from: me, sdp },
        ClientMessage::Answer { sdp } => ServerMessage::Answer { from: me, sdp },
        ClientMessage::Candidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
        } => {
            if let Err(why) = check_candidate(&candidate) {
                return Handled::Reply(ServerMessage::error(
                    "bad-candidate",
                    &format!("候选地址无效 / invalid candidate: {why}"),
                ));
            }
            ServerMessage::Candidate {
                from: me,
                candidate,
                sdp_mid,
                sdp_mline_index,
            }
        }
    };
    if hub.to_peer(room, me, relayed) {
        Handled::Relayed
    } else {
        Handled::Reply(ServerMessage::error(
            "no-peer",
            "对方尚未进入房间 / the other party has not joined yet",
        ))
    }
}
