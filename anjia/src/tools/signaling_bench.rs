//! `anjia bench signaling`: how many idle signaling connections one server process holds on
//! this machine and what they cost in memory, and how long offers, answers and candidates take
//! from one party to the other at a steady rate across many rooms.
//!
//! The servers are separate `anjia serve` processes against the same database, so their memory
//! is measured apart from the clients' (this process, which shares the machine's two cores with
//! them and with PostgreSQL). Room tokens are minted with the platform's key; the rooms need no
//! interviews behind them. The latency runs go once with both parties on one server and once
//! with each on its own, and every relay goes through PostgreSQL's NOTIFY either way.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::server;
use application::stats::Sorted;

#[derive(Debug, Clone, clap::Args)]
pub struct SignalingBenchOptions {
    /// Idle connections to open (two per room) and hold.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// How long to hold them, in seconds (past the server's 30 s idle time-out, so pings and
    /// pongs keep them alive).
    #[arg(long, default_value_t = 40)]
    pub hold_seconds: u64,
    /// Rooms exchanging messages in the latency run.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Candidates per second per room in the latency run (both directions together).
    #[arg(long, default_value_t = 10)]
    pub rate: u32,
    /// Seconds of steady candidates in the latency run.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub requested: usize,
    pub opened: usize,
    /// Still open after the hold.
    pub held: usize,
    pub open_seconds: f64,
    pub hold_seconds: u64,
    pub server_rss_before_mib: f64,
    pub server_rss_held_mib: f64,
    pub server_bytes_per_connection: f64,
}

#[derive(Debug, Serialize)]
pub struct LatencyReport {
    /// "one process" (both parties on one server) or "two processes".
    pub servers: &'static str,
    pub rooms: usize,
    pub messages_per_second: f64,
    pub offer: Percentiles,
    pub answer: Percentiles,
    pub candidate: Percentiles,
    pub lost: usize,
    /// Errors the server answered with, by code (none expected).
    pub errors: HashMap<String, usize>,
}

#[derive(Debug, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct SignalingBenchReport {
    pub idle: IdleReport,
    pub latency: Vec<LatencyReport>,
}

/// A separate server process.
struct ServerChild {
    child: tokio::process::Child,
    address: String,
}

impl ServerChild {
    async fn start(database_url: &str) -> anyhow::Result<ServerChild> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["serve", "--listen", "127.0.0.1:0", "--no-projectors"])
            .env("DATABASE_URL", database_url)
            .env("ANJIA_MODE", "development")
            // Three servers and this process share the database's connections.
            .env("ANJIA_DB_POOL", "24")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting anjia serve")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await?;
        let address = line
            .trim()
            .strip_prefix("anjia listening on http://")
            .with_context(|| format!("unexpected first line from anjia serve: {line:?}"))?
            .to_owned();
        Ok(ServerChild { child, address })
    }

    /// Resident memory, from /proc.
    fn rss_bytes(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .context("VmRSS")?;
        Ok(kib * 1024)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Minter {
    key: Vec<u8>,
}

impl Minter {
    fn url(&self, address: &str, room: Uuid, participant: Uuid) -> String {
        let token = signaling::token::room_token(
            &self.key,
            &signaling::token::RoomClaims {
                room,
                sub: participant,
                role: "customer".into(),
                exp: (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp(),
            },
        );
        format!("ws://{address}/api/v1/signaling?token={token}")
    }
}

async fn open(url: &str) -> anyhow::Result<Socket> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    // The first message says the seat is taken.
    wait_for(&mut socket, "joined").await?;
    Ok(socket)
}

/// Reads until a message of `kind` arrives.
async fn wait_for(socket: &mut Socket, kind: &str) -> anyhow::Result<()> {
    let marker = format!("\"type\":\"{kind}\"");
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains(&marker) => return Ok(()),
            Some(Ok(Message::Text(text))) if text.contains("\"error\"") => {
                bail!("waiting for {kind}: {text}")
            }
            Some(Ok(_)) => continue,
            _ => bail!("closed while waiting for {kind}"),
        }
    }
}

pub async fn run(
    database_url: Option<&str>,
    var_dir: &Path,
    master_key: Option<&str>,
    options: &SignalingBenchOptions,
) -> anyhow::Result<SignalingBenchReport> {
    let url = server::resolve_database_url(database_url, var_dir).await?;
    let pool = server::connect(Some(&url), var_dir, 4).await?;
    server::prepare(&pool, master_key).await?;
    let minter = Arc::new(Minter {
        key: application::secrets::server_secret(&pool, "room_token_key").await?,
    });
    // The idle connections get a server of their own, stopped afterwards, so their grace
    // periods ending later do not disturb the latency runs.
    let idle_server = ServerChild::start(&url).await?;
    let idle = idle_connections(&idle_server, &minter, options).await?;
    drop(idle_server);
    let first = ServerChild::start(&url).await?;
    let second = ServerChild::start(&url).await?;
    let mut latency = Vec::new();
    for (label, callee_server) in [("one process", &first), ("two processes", &second)] {
        latency.push(relay_latency(label, &first, callee_server, &minter, options).await?);
    }
    drop((first, second));
    Ok(SignalingBenchReport { idle, latency })
}

async fn idle_connections(
    server: &ServerChild,
    minter: &Arc<Minter>,
    options: &SignalingBenchOptions,
) -> anyhow::Result<IdleReport> {
    // Let the fresh server settle before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_bytes()?;
    let started = Instant::now();
    let alive = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut opened = 0;
    let mut readers = Vec::new();
    let address = server.address.clone();
    let mut pending = futures::stream::iter(0..options.connections)
        .map(|index| {
            let minter = Arc::clone(minter);
            let address = address.clone();
            async move {
                // Two parties per room: even and odd indexes share a room.
                let room = Uuid::from_u128(0xbe_0000_0000 + (index / 2) as u128);
                let participant = Uuid::from_u128(0xbe_1000_0000 + index as u128);
                open(&minter.url(&address, room, participant)).await
            }
        })
        .buffer_unordered(64);
    while let Some(socket) = pending.next().await {
        let Ok(mut socket) = socket else { continue };
        opened += 1;
        let alive = Arc::clone(&alive);
        alive.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Reading answers the server's pings; the connection is otherwise idle.
        readers.push(tokio::spawn(async move {
            while let Some(Ok(frame)) = socket.next().await {
                if let Message::Close(_) = frame {
                    break;
                }
            }
            alive.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }));
    }
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(options.hold_seconds)).await;
    let held_rss = server.rss_bytes()?;
    let held = alive.load(std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.abort();
    }
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    Ok(IdleReport {
        requested: options.connections,
        opened,
        held,
        open_seconds,
        hold_seconds: options.hold_seconds,
        server_rss_before_mib: mib(before),
        server_rss_held_mib: mib(held_rss),
        server_bytes_per_connection: held_rss.saturating_sub(before) as f64 / opened.max(1) as f64,
    })
}

const SDP_HEAD: &str = "v=0\r\no=- ";
const SDP_TAIL: &str = " 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n";

/// Sent times by (room, sequence), and what arrived by kind.
#[derive(Default)]
struct Clock {
    sent: HashMap<(usize, u64), Instant>,
    arrived: HashMap<&'static str, Vec<f64>>,
    /// Error messages the server sent back, by code.
    errors: HashMap<String, usize>,
}

async fn relay_latency(
    label: &'static str,
    caller_server: &ServerChild,
    callee_server: &ServerChild,
    minter: &Arc<Minter>,
    options: &SignalingBenchOptions,
) -> anyhow::Result<LatencyReport> {
    let clock = Arc::new(Mutex::new(Clock::default()));
    let run = Uuid::new_v4().as_u128() & 0xffff_ffff_0000_0000;
    let mut pairs = Vec::new();
    for room_index in 0..options.rooms {
        let room = Uuid::from_u128(run + 0x1_0000 + room_index as u128);
        let mut caller = open(&minter.url(
            &caller_server.address,
            room,
            Uuid::from_u128(run + 0x2_0000 + room_index as u128),
        ))
        .await?;
        let callee = open(&minter.url(
            &callee_server.address,
            room,
            Uuid::from_u128(run + 0x3_0000 + room_index as u128),
        ))
        .await?;
        // As a real client does, the caller offers once it has heard the callee arrive.
        wait_for(&mut caller, "peer-joined").await?;
        pairs.push((caller, callee));
    }
    // Each room: an offer, an answer, then candidates both ways at the steady rate.
    let per_room_interval = Duration::from_secs_f64(1.0 / f64::from(options.rate.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (room_index, (caller, callee)) in pairs.into_iter().enumerate() {
        let clock = Arc::clone(&clock);
        let seconds = options.seconds;
        tasks.push(tokio::spawn(async move {
            room_exchange(
                room_index,
                caller,
                callee,
                clock,
                per_room_interval,
                seconds,
            )
            .await
        }));
    }
    let mut lost = 0;
    for task in tasks {
        lost += task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut clock = clock.lock().expect("clock");
    let total: usize = clock.arrived.values().map(Vec::len).sum();
    let mut percentiles = |kind: &str| {
        let samples = Sorted::new(std::mem::take(
            clock.arrived.entry(kind_name(kind)).or_default(),
        ));
        Percentiles {
            count: samples.len(),
            p50_ms: samples.median(),
            p99_ms: samples.percentile(0.99),
            max_ms: samples.percentile(1.0),
        }
    };
    Ok(LatencyReport {
        servers: label,
        rooms: options.rooms,
        messages_per_second: total as f64 / elapsed,
        offer: percentiles("offer"),
        answer: percentiles("answer"),
        candidate: percentiles("candidate"),
        lost,
        errors: std::mem::take(&mut clock.errors),
    })
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "offer" => "offer",
        "answer" => "answer",
        _ => "candidate",
    }
}

/// One room's conversation; answers how many messages never arrived.
async fn room_exchange(
    room: usize,
    caller: Socket,
    callee: Socket,
    clock: Arc<Mutex<Clock>>,
    interval: Duration,
    seconds: u64,
) -> anyhow::Result<usize> {
    let (mut caller_out, caller_in) = caller.split();
    let (mut callee_out, callee_in) = callee.split();
    let readers = [caller_in, callee_in].map(|mut incoming| {
        let clock = Arc::clone(&clock);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = incoming.next().await {
                let Message::Text(text) = frame else { continue };
                let Ok(message) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                let kind = message["type"].as_str().unwrap_or_default().to_owned();
                if kind == "error" {
                    let code = message["code"].as_str().unwrap_or_default().to_owned();
                    *clock.lock().expect("clock").errors.entry(code).or_default() += 1;
                    continue;
                }
                let sequence = match kind.as_str() {
                    "offer" | "answer" => message["sdp"]
                        .as_str()
                        .and_then(|sdp| sdp.strip_prefix(SDP_HEAD))
                        .and_then(|rest| rest.split(' ').next())
                        .and_then(|id| id.parse::<u64>().ok()),
                    "candidate" => message["candidate"]
                        .as_str()
                        .and_then(|c| c.strip_prefix("candidate:"))
                        .and_then(|rest| rest.split(' ').next())
                        .and_then(|id| id.parse::<u64>().ok()),
                    _ => None,
                };
                let Some(sequence) = sequence else { continue };
                let mut clock = clock.lock().expect("clock");
                if let Some(sent) = clock.sent.remove(&(room, sequence)) {
                    let millis = sent.elapsed().as_secs_f64() * 1000.0;
                    clock
                        .arrived
                        .entry(kind_name(&kind))
                        .or_default()
                        .push(millis);
                }
            }
        })
    });
    let mut sequence = 0u64;
    let send = |sequence: u64, message: serde_json::Value| {
        clock
            .lock()
            .expect("clock")
            .sent
            .insert((room, sequence), Instant::now());
        Message::Text(message.to_string().into())
    };
    sequence += 1;
    let offer = send(
        sequence,
        serde_json::json!({"type": "offer", "sdp": format!("{SDP_HEAD}{sequence}{SDP_TAIL}")}),
    );
    caller_out.send(offer).await?;
    sequence += 1;
    let answer = send(
        sequence,
        serde_json::json!({"type": "answer", "sdp": format!("{SDP_HEAD}{sequence}{SDP_TAIL}")}),
    );
    callee_out.send(answer).await?;
    let mut tick = tokio::time::interval(interval);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        tick.tick().await;
        sequence += 1;
        let candidate = send(
            sequence,
            serde_json::json!({"type": "candidate",
                "candidate": format!("candidate:{sequence} 1 udp 2130706431 127.0.0.1 {} typ host", 10_000 + sequence % 50_000),
                "sdpMid": "0", "sdpMLineIndex": 0}),
        );
        if sequence % 2 == 0 {
            caller_out.send(candidate).await?;
        } else {
            callee_out.send(candidate).await?;
        }
    }
    // Let the last ones arrive, then close.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = caller_out.close().await;
    let _ = callee_out.close().await;
    for reader in readers {
        reader.abort();
    }
    let lost = clock
        .lock()
        .expect("clock")
        .sent
        .keys()
        .filter(|(sent_room, _)| *sent_room == room)
        .count();
    Ok(lost)
}
