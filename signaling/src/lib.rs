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
//!   token (and `resume`, the number of the last message received): messages sent meanwhile,
//!   and those after that number, reach them, and the other side is told nothing. Only a
//!   `leave`, or the grace period running out, tells the peer they left.
//! - The server pings every connection and closes one that has been silent too long.
//!
//! One process holds a participant's connection; the rooms themselves are shared by every
//! process through PostgreSQL (see [`hub`]), so the two parties may be connected to different
//! processes.

pub mod hub;
pub mod protocol;
pub mod token;

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use uuid::Uuid;

pub use crate::hub::{Hub, Settings};
use crate::hub::{Inbox, Item, Seated};
use crate::protocol::{
    check_candidate, check_sdp, ClientMessage, ServerMessage, MAX_MESSAGE_BYTES,
};

#[derive(Debug, Deserialize)]
pub struct Admission {
    pub token: String,
    /// The room the client means to enter; a token for another room is refused.
    pub room: Option<Uuid>,
    /// On coming back: the number (`seq`) of the last relayed message received, so that
    /// everything after it is sent again (what the old connection wrote may never have arrived).
    pub resume: Option<u64>,
}

/// The WebSocket the peers of a call signal through.
pub const SOCKET_PATH: &str = "/api/v1/signaling";
/// The call page.
pub const CALL_PAGE_PATH: &str = "/call";
/// The call page's script.
pub const CALL_SCRIPT_PATH: &str = "/call.js";

pub fn router<S>(hub: Hub) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(SOCKET_PATH, get(connect))
        .route(CALL_PAGE_PATH, get(call_page))
        .route(CALL_SCRIPT_PATH, get(call_script))
        .with_state(hub)
}

/// Each connection's WebSocket read buffer: most candidates fit, and a larger message (an
/// offer) grows it as it arrives.
const READ_BUFFER_BYTES: usize = 512;

/// What the call page may load and talk to: its own script, its own signaling socket, and
/// media from the camera; nothing from elsewhere.
const CALL_PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
    connect-src 'self'; media-src 'self' blob: mediastream:; img-src 'self' data:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page that runs an interview call in the browser (`/call#interview=ID` for a signed-in
/// user, or `/call#token=ROOM_TOKEN`).
async fn call_page() -> Response {
    (
        [
            ("content-type", "text/html; charset=utf-8"),
            ("content-security-policy", CALL_PAGE_POLICY),
            ("cache-control", "no-cache"),
            ("permissions-policy", "camera=(self), microphone=(self)"),
        ],
        include_str!("../assets/call.html"),
    )
        .into_response()
}

async fn call_script() -> Response {
    (
        [
            ("content-type", "text/javascript; charset=utf-8"),
            ("cache-control", "no-cache"),
        ],
        include_str!("../assets/call.js"),
    )
        .into_response()
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
    let claims = match token::verify_room_token(hub.key(), &admission.token, chrono::Utc::now()) {
        Ok(claims) => claims,
        Err(error) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                &error.to_string(),
            )
        }
    };
    if admission.room.is_some_and(|room| room != claims.room) {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "入场凭证属于另一个房间 / the room token is for another room",
        );
    }
    match hub.can_seat(claims.room, claims.sub).await {
        Ok(()) => {}
        Err("unavailable") => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "信令服务暂不可用 / signaling is unavailable, try again",
            )
        }
        Err(code) => {
            return refuse(
                StatusCode::CONFLICT,
                "conflict",
                &format!("无法进入房间（{code}）/ the room cannot be entered ({code})"),
            )
        }
    }
    // Only what the connection needs is kept for its life (not the token, for one).
    let resume = admission.resume;
    upgrade
        // Frames up to four times the limit are read and answered with an error; larger ones
        // end the connection.
        .max_message_size(4 * MAX_MESSAGE_BYTES)
        // Signaling messages are small and mostly idle connections are many: a 512-byte read
        // buffer instead of the default 128 KiB (larger messages still arrive whole).
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |mut socket| async move {
            // The seat is taken only once the connection is up, so an upgrade that never
            // completes holds nothing; a race lost since the check above is told and closed.
            // Boxed, like every database step of a connection: a task is as large as the
            // largest step it may await, and idle connections are many.
            let seated = match Box::pin(hub.seat(claims.room, claims.sub)).await {
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
            let connection = seated.connection;
            let (inbox, left) = serve(&hub, socket, &claims, seated, resume).await;
            Box::pin(hub.dropped(claims.room, claims.sub, connection, inbox, left)).await;
        })
}

/// Runs one connection; answers the seat's inbox and whether the participant left on purpose.
///
/// Relayed messages carry a number (`seq`), counted per participant across connections and
/// processes. A connection that resumes after number N is sent again everything after N that
/// the seat still keeps; one that names no number is sent again what the last connection failed
/// to write.
///
/// Every write has `send_timeout` to go through: a side that stops reading is dropped (and
/// may come back), so a blocked write never holds up the idle timer or grows what waits for
/// it beyond the seat's bounded queue. The connection ends when the room token expires.
async fn serve(
    hub: &Hub,
    socket: WebSocket,
    claims: &token::RoomClaims,
    seated: Seated,
    resume: Option<u64>,
) -> (Inbox, bool) {
    let (room, me) = (claims.room, claims.sub);
    let Seated {
        mut inbox,
        mut peer_present,
        ..
    } = seated;
    let (outgoing, mut incoming) = socket.split();
    let settings = hub.settings();
    let mut outgoing = Outgoing {
        sink: outgoing,
        timeout: settings.send_timeout,
    };
    let expires_in = (claims.exp - chrono::Utc::now().timestamp()).max(0) as u64;
    let expiry = tokio::time::sleep(Duration::from_secs(expires_in));
    tokio::pin!(expiry);
    let send = |message: &ServerMessage| {
        Message::Text(serde_json::to_string(message).expect("serialises").into())
    };
    let numbered = |seq: u64, message: &ServerMessage| {
        let mut value = serde_json::to_value(message).expect("serialises");
        value["seq"] = seq.into();
        Message::Text(value.to_string().into())
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
    let mut replay_from = resume
        .map(|last| last + 1)
        .or(inbox.unsent_from)
        .unwrap_or(inbox.next_seq);
    inbox.unsent_from = None;
    let again: Vec<(u64, Box<ServerMessage>)> = inbox
        .recent
        .iter()
        .filter(|(seq, _)| *seq >= replay_from)
        .cloned()
        .collect();
    for (seq, message) in again {
        if outgoing.send(numbered(seq, &message)).await.is_err() {
            inbox.unsent_from = Some(seq);
            return (inbox, false);
        }
    }
    let mut ping = tokio::time::interval(settings.ping_every);
    let mut last_heard = tokio::time::Instant::now();
    let mut window = (tokio::time::Instant::now(), 0u32);
    loop {
        tokio::select! {
            () = &mut expiry => {
                let expired = ServerMessage::error("token-expired", "入场凭证已过期，请重新进入 / the room token has expired; join again with a new one");
                let _ = outgoing.send(send(&expired)).await;
                let _ = outgoing.send(Message::Close(None)).await;
                return (inbox, false);
            }
            item = inbox.next() => {
                let Some(item) = item else {
                    let why = match inbox.ended() {
                        Some("too-slow") => Some(ServerMessage::error("too-slow", "消息接收过慢，已移出房间，请重新进入 / messages were not taken fast enough; you were taken out of the room, join again")),
                        Some(_) => Some(ServerMessage::error("room-closed", "面试已取消或已结束 / the interview was cancelled or has ended")),
                        None => None,
                    };
                    if let Some(why) = why {
                        let _ = outgoing.send(send(&why)).await;
                        let _ = outgoing.send(Message::Close(None)).await;
                    }
                    return (inbox, false);
                };
                let (seq, message) = match item {
                    Item::Fresh { message } => (inbox.next_seq, message),
                    Item::Sent { seq, message } => (seq, message),
                    Item::Numbering { next_seq, unsent_from } => {
                        inbox.next_seq = inbox.next_seq.max(next_seq);
                        if resume.is_none() {
                            replay_from = unsent_from.unwrap_or(next_seq);
                        }
                        continue;
                    }
                };
                match *message {
                    ServerMessage::PeerJoined { .. } => peer_present = true,
                    ServerMessage::PeerLeft { .. } => peer_present = false,
                    _ => {}
                }
                inbox.keep(seq, message.clone());
                if seq < replay_from {
                    // Sent by an earlier connection and received, as the client said.
                    continue;
                }
                if outgoing.send(numbered(seq, &message)).await.is_err() {
                    inbox.unsent_from = Some(seq);
                    return (inbox, false);
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > settings.idle_timeout {
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
                if text.len() > MAX_MESSAGE_BYTES {
                    let _ = outgoing.send(send(&ServerMessage::error("too-large", &format!("消息超过 {MAX_MESSAGE_BYTES} 字节 / a message is at most {MAX_MESSAGE_BYTES} bytes")))).await;
                    continue;
                }
                if window.0.elapsed() >= Duration::from_secs(1) {
                    window = (tokio::time::Instant::now(), 0);
                }
                window.1 += 1;
                if window.1 > settings.rate_per_second {
                    let _ = outgoing.send(send(&ServerMessage::error("rate-limited", "消息过于频繁 / too many messages"))).await;
                    continue;
                }
                let reply = match check(me, text.as_str()) {
                    Checked::Relay(_) if !peer_present => ServerMessage::error(
                        "no-peer",
                        "对方尚未进入房间 / the other party has not joined yet",
                    ),
                    Checked::Relay(message) => match Box::pin(hub.relay(room, me, message)).await {
                        Ok(()) => continue,
                        Err(error) => {
                            tracing::error!(%error, "信令转发失败 / relaying failed");
                            ServerMessage::error("unavailable", "转发失败，请重试 / relaying failed, try again")
                        }
                    },
                    Checked::Leave => return (inbox, true),
                    Checked::Reply(reply) => reply,
                };
                if outgoing.send(send(&reply)).await.is_err() {
                    return (inbox, false);
                }
            }
        }
    }
}

/// The connection's writing half, each write bounded in time.
struct Outgoing {
    sink: futures::stream::SplitSink<WebSocket, Message>,
    timeout: Duration,
}

impl Outgoing {
    /// Writes one message; an error when it failed or did not go through in time.
    async fn send(&mut self, message: Message) -> Result<(), ()> {
        match tokio::time::timeout(self.timeout, self.sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }
}

enum Checked {
    Relay(ServerMessage),
    Leave,
    Reply(ServerMessage),
}

/// Reads and checks one client message; what may be relayed carries the sender the server knows.
fn check(me: Uuid, text: &str) -> Checked {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(error) => {
            return Checked::Reply(ServerMessage::error(
                "bad-message",
                &format!("无法识别的消息 / unreadable message: {error}"),
            ))
        }
    };
    match message {
        ClientMessage::Ping => Checked::Reply(ServerMessage::Pong),
        ClientMessage::Leave => Checked::Leave,
        ClientMessage::Offer { sdp } | ClientMessage::Answer { sdp }
            if check_sdp(&sdp).is_err() =>
        {
            let why = check_sdp(&sdp).err().unwrap_or_default();
            Checked::Reply(ServerMessage::error(
                "bad-sdp",
                &format!("会话描述无效 / invalid session description: {why}"),
            ))
        }
        ClientMessage::Offer { sdp } => Checked::Relay(ServerMessage::Offer { from: me, sdp }),
        ClientMessage::Answer { sdp } => Checked::Relay(ServerMessage::Answer { from: me, sdp }),
        ClientMessage::Candidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
        } => match check_candidate(&candidate) {
            Err(why) => Checked::Reply(ServerMessage::error(
                "bad-candidate",
                &format!("候选地址无效 / invalid candidate: {why}"),
            )),
            Ok(()) => Checked::Relay(ServerMessage::Candidate {
                from: me,
                candidate,
                sdp_mid,
                sdp_mline_index,
            }),
        },
    }
}
