//! The signaling service over real WebSockets: admission by room token, relaying with the
//! sender set by the server, checks on every message, and resuming after a dropped connection
//! without the other side noticing.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{TestApp, User};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SDP: &str = "v=0\r\no=- 4215775240449105457 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n";
const CANDIDATE: &str = "candidate:1 1 udp 2130706431 127.0.0.1 54321 typ host";

fn socket_url(address: &str, token: &str) -> String {
    format!(
        "{}/api/v1/signaling?token={token}",
        address.replace("http://", "ws://")
    )
}

async fn connect(address: &str, token: &str) -> Result<Socket, u16> {
    match tokio_tungstenite::connect_async(socket_url(address, token)).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("connecting: {other}"),
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("sent");
}

/// The next JSON message, skipping pings; fails after five seconds. Relayed messages' numbers
/// (`seq`) are taken off (see `numbered`).
async fn next(socket: &mut Socket) -> Value {
    numbered(socket).await.0
}

/// The next JSON message and its number, if it is a relayed one.
async fn numbered(socket: &mut Socket) -> (Value, Option<u64>) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            let mut message: Value = serde_json::from_str(&text).expect("json");
            let seq = message
                .as_object_mut()
                .and_then(|fields| fields.remove("seq"))
                .and_then(|seq| seq.as_u64());
            return (message, seq);
        }
    }
}

async fn admitted(app: &TestApp, interview: Uuid, user: &User) -> String {
    let response = app
        .post(
            &format!("/api/v1/interviews/{interview}/join"),
            Some(&user.token),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let admission: Value = response.json().await.expect("admission");
    admission["room_token"].as_str().expect("token").to_owned()
}

/// An accepted interview starting in five minutes, and both parties' room tokens.
struct Room {
    interview: Uuid,
    customer: User,
    worker: User,
    customer_token: String,
    worker_token: String,
}

async fn interview_room(app: &TestApp) -> Room {
    let customer = app.register_customer().await;
    let worker = app.register_worker(&["maternity_nurse"]).await;
    let start = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    let requested: Value = app
        .post(
            "/api/v1/interviews",
            Some(&customer.token),
            &json!({"worker_id": worker.id, "service": "maternity_nurse", "start": start}),
        )
        .await
        .json()
        .await
        .expect("interview");
    let interview: Uuid = requested["interview_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let accepted = app
        .post(
            &format!("/api/v1/interviews/{interview}/accept"),
            Some(&worker.token),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let customer_token = admitted(app, interview, &customer).await;
    let worker_token = admitted(app, interview, &worker).await;
    Room {
        interview,
        customer,
        worker,
        customer_token,
        worker_token,
    }
}

#[tokio::test]
async fn two_parties_meet_through_the_signaling_service_and_nobody_else_gets_in() {
    let app = tests::spawn_app().await;
    let Room {
        interview,
        customer,
        worker,
        customer_token,
        worker_token,
    } = interview_room(&app).await;

    // Refusals before the upgrade: no token, a forged one, an expired one, a third party.
    assert_eq!(connect(&app.address, "").await.err(), Some(401));
    assert_eq!(connect(&app.address, "forged.token").await.err(), Some(401));
    let key: Vec<u8> =
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = 'room_token_key'")
            .fetch_one(&app.pool)
            .await
            .expect("key");
    let mint = |sub: Uuid, seconds: i64| {
        signaling::token::room_token(
            &key,
            &signaling::token::RoomClaims {
                room: interview,
                sub,
                role: "customer".into(),
                exp: (chrono::Utc::now() + chrono::Duration::seconds(seconds)).timestamp(),
            },
        )
    };
    assert_eq!(
        connect(&app.address, &mint(customer.id, -5)).await.err(),
        Some(401)
    );
    // A token used for another room than its own is refused.
    assert_eq!(
        connect(
            &app.address,
            &format!("{customer_token}&room={}", Uuid::new_v4())
        )
        .await
        .err(),
        Some(403)
    );

    let mut first = connect(&app.address, &customer_token)
        .await
        .expect("customer in");
    let joined = next(&mut first).await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["peer_present"], false);
    // The same participant twice at once is refused.
    assert_eq!(
        connect(&app.address, &customer_token).await.err(),
        Some(409)
    );
    let mut second = connect(&app.address, &worker_token)
        .await
        .expect("worker in");
    assert_eq!(next(&mut second).await["peer_present"], true);
    assert_eq!(
        next(&mut first).await,
        json!({"type": "peer-joined", "peer": worker.id})
    );
    assert_eq!(
        connect(&app.address, &mint(Uuid::new_v4(), 60)).await.err(),
        Some(409),
        "a third party finds the room full"
    );

    // Relayed with the sender the server knows; a claimed sender is refused.
    send(&mut first, json!({"type": "offer", "sdp": SDP})).await;
    assert_eq!(
        next(&mut second).await,
        json!({"type": "offer", "from": customer.id, "sdp": SDP})
    );
    send(
        &mut first,
        json!({"type": "offer", "sdp": SDP, "from": worker.id}),
    )
    .await;
    assert_eq!(next(&mut first).await["code"], "bad-message");
    send(&mut second, json!({"type": "answer", "sdp": SDP})).await;
    assert_eq!(next(&mut first).await["from"], worker.id.to_string());
    send(
        &mut second,
        json!({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}),
    )
    .await;
    let (candidate, last_seen) = numbered(&mut first).await;
    let last_seen = last_seen.expect("relayed messages are numbered");
    assert_eq!(
        (candidate["candidate"].as_str(), candidate["from"].as_str()),
        (Some(CANDIDATE), Some(worker.id.to_string().as_str()))
    );
    // Bad messages get an error and go nowhere.
    for (bad, code) in [
        (json!({"type": "offer", "sdp": "hello"}), "bad-sdp"),
        (
            json!({"type": "candidate", "candidate": "candidate:1 1 udp 1 999.1.1.1 5 typ host"}),
            "bad-candidate",
        ),
        (json!({"type": "shout"}), "bad-message"),
    ] {
        send(&mut first, bad).await;
        assert_eq!(next(&mut first).await["code"], code);
    }
    heard_nothing_more(&mut second, "nothing bad reached the worker").await;

    // The customer's connection drops; what the worker sends meanwhile waits, and coming back
    // with the same token goes unnoticed.
    drop(first);
    send(
        &mut second,
        json!({"type": "candidate", "candidate": CANDIDATE}),
    )
    .await;
    let mut again = resume(&app.address, &customer_token, last_seen).await;
    assert_eq!(next(&mut again).await["peer_present"], true);
    assert_eq!(next(&mut again).await["type"], "candidate");
    heard_nothing_more(&mut second, "the worker heard no leave and no join").await;

    // Leaving on purpose tells the other side at once.
    send(&mut again, json!({"type": "leave"})).await;
    assert_eq!(
        next(&mut second).await,
        json!({"type": "peer-left", "peer": customer.id})
    );
    app.stop().await;
}

/// Comes back with `token` through `address`, asking again while the server has not yet seen
/// the old connection drop (the seat is still taken then).
async fn reconnect(address: &str, token: &str) -> Socket {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match connect(address, token).await {
            Ok(socket) => return socket,
            Err(409) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(status) => panic!("coming back was refused with {status}"),
        }
    }
}

/// Whether the server closes `socket` within `seconds` (reading past anything still sent).
async fn closed_within(socket: &mut Socket, seconds: u64) -> bool {
    tokio::time::timeout(Duration::from_secs(seconds), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .is_ok()
}

/// Asks for a pong: hearing it next means nothing else was waiting for `socket`.
async fn heard_nothing_more(socket: &mut Socket, why: &str) {
    send(socket, json!({"type": "ping"})).await;
    assert_eq!(next(socket).await["type"], "pong", "{why}");
}

/// Comes back through `address` saying the last message received was number `last`.
async fn resume(address: &str, token: &str, last: u64) -> Socket {
    reconnect(address, &format!("{token}&resume={last}")).await
}

/// A session description larger than PostgreSQL's 8000-byte notification limit, as a video
/// offer with many codecs can be.
fn large_sdp() -> String {
    let mut sdp = String::from(
        "v=0\r\no=- 4215775240449105457 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n",
    );
    for i in 0..200 {
        sdp.push_str(&format!(
            "a=ssrc:{} cname:anjia-interview-{i:04}\r\n",
            1000 + i
        ));
    }
    assert!(sdp.len() > 8_000);
    sdp
}

#[tokio::test]
async fn the_parties_meet_across_two_signaling_processes_and_resume_on_either() {
    let app = tests::spawn_app().await;
    let other = tests::ServerProcess::start(&app.database_url).await;
    let room = interview_room(&app).await;

    let mut customer = connect(&app.address, &room.customer_token)
        .await
        .expect("customer in on the first process");
    assert_eq!(next(&mut customer).await["peer_present"], false);
    // The rooms are shared: the same participant twice is refused by the other process too.
    assert_eq!(
        connect(&other.address, &room.customer_token).await.err(),
        Some(409)
    );
    let mut worker = connect(&other.address, &room.worker_token)
        .await
        .expect("worker in on the second process");
    assert_eq!(next(&mut worker).await["peer_present"], true);
    assert_eq!(
        next(&mut customer).await,
        json!({"type": "peer-joined", "peer": room.worker.id})
    );

    // Relayed both ways, with the server's sender, a large description included.
    let sdp = large_sdp();
    send(&mut customer, json!({"type": "offer", "sdp": sdp})).await;
    assert_eq!(
        next(&mut worker).await,
        json!({"type": "offer", "from": room.customer.id, "sdp": sdp})
    );
    send(&mut worker, json!({"type": "answer", "sdp": SDP})).await;
    let (answer, last_seen) = numbered(&mut customer).await;
    assert_eq!(
        answer,
        json!({"type": "answer", "from": room.worker.id, "sdp": SDP})
    );
    let last_seen = last_seen.expect("relayed messages are numbered");

    // The customer drops from the first process and comes back through the second: what the
    // worker sent meanwhile arrives first and in order, then what followed the return.
    drop(customer);
    for port in [1001, 1002] {
        let candidate = CANDIDATE.replace("54321", &port.to_string());
        send(
            &mut worker,
            json!({"type": "candidate", "candidate": candidate}),
        )
        .await;
    }
    let mut customer = resume(&other.address, &room.customer_token, last_seen).await;
    assert_eq!(next(&mut customer).await["peer_present"], true);
    send(
        &mut worker,
        json!({"type": "candidate", "candidate": CANDIDATE.replace("54321", "1003")}),
    )
    .await;
    for port in ["1001", "1002", "1003"] {
        let candidate = next(&mut customer).await;
        assert_eq!(candidate["type"], "candidate");
        assert!(
            candidate["candidate"]
                .as_str()
                .unwrap_or_default()
                .contains(port),
            "expected port {port} next, got {candidate}"
        );
    }
    heard_nothing_more(&mut worker, "the worker heard no leave and no join").await;

    // A drop that is not followed by a return within the grace period is told to the peer.
    send(&mut customer, json!({"type": "leave"})).await;
    assert_eq!(
        next(&mut worker).await,
        json!({"type": "peer-left", "peer": room.customer.id})
    );
    drop(other);
    app.stop().await;
}

#[tokio::test]
async fn two_webrtc_peers_meet_only_through_signaling_and_exchange_data_and_video() {
    let app = tests::spawn_app().await;
    let room = interview_room(&app).await;
    let caller_url = socket_url(&app.address, &room.customer_token);
    let callee_url = socket_url(&app.address, &room.worker_token);
    let (caller, callee) = tokio::join!(
        tests::peer::call(&caller_url, tests::peer::Side::Caller),
        tests::peer::call(&callee_url, tests::peer::Side::Callee),
    );
    check_call(caller.expect("caller"), callee.expect("callee"));
    app.stop().await;
}

#[tokio::test]
async fn two_webrtc_peers_meet_through_two_signaling_processes() {
    let app = tests::spawn_app().await;
    let other = tests::ServerProcess::start(&app.database_url).await;
    let room = interview_room(&app).await;
    let caller_url = socket_url(&app.address, &room.customer_token);
    let callee_url = socket_url(&other.address, &room.worker_token);
    let (caller, callee) = tokio::join!(
        tests::peer::call(&caller_url, tests::peer::Side::Caller),
        tests::peer::call(&callee_url, tests::peer::Side::Callee),
    );
    check_call(caller.expect("caller"), callee.expect("callee"));
    drop(other);
    app.stop().await;
}

fn check_call(caller: tests::peer::CallReport, callee: tests::peer::CallReport) {
    assert!(caller.connected && callee.connected);
    assert_eq!(
        callee.messages.first().map(String::as_str),
        Some("你好，我是客户 / hello from the customer")
    );
    assert_eq!(
        caller.messages.first().map(String::as_str),
        Some("你好，我是阿姨 / hello from the worker")
    );
    assert!(caller.messages.iter().any(|m| m.starts_with("视频已收到")));
    assert!(callee.video_packets >= tests::peer::VIDEO_PACKETS);
    assert_eq!(callee.video_codec.as_deref(), Some("video/VP8"));
}

/// The platform's call page in two headless Chromium browsers (Debian's, driven by
/// playwright-core; `scripts/ensure-browser` installs both), each with a fake camera and
/// microphone, through a whole call: both decode video, and hanging up tells the other side.
#[tokio::test]
async fn an_interview_call_runs_in_two_headless_chromium_browsers() {
    let app = tests::spawn_app().await;
    let room = interview_room(&app).await;
    let page = app
        .client
        .get(format!("{}/call", app.address))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .headers()
        .get("content-security-policy")
        .is_some_and(|policy| policy
            .to_str()
            .unwrap_or_default()
            .contains("script-src 'self'")));
    let browser_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Chromium and playwright-core: run scripts/ensure-browser"
    );
    let run = tokio::process::Command::new("node")
        .arg(browser_dir.join("call.mjs"))
        .arg(&app.address)
        .arg(room.interview.to_string())
        .arg(&room.customer.token)
        .arg(&room.worker.token)
        .current_dir(&browser_dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser call finished within three minutes")
        .expect("node ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser call failed: {}\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|error| panic!("no result line ({error}): {stdout}\n{stderr}"));
    for side in ["customer", "worker"] {
        assert!(
            result[side]["frames"].as_u64().unwrap_or(0) >= 10,
            "{side} decoded too few frames: {result}"
        );
    }
    assert_eq!(result["customer_status"], "通话中 / In the call");
    assert_eq!(result["customer_reconnects"], 1, "{result}");
    assert_eq!(result["worker_heard_leave_on_drop"], false, "{result}");
    assert_eq!(
        result["worker_status_after"],
        "对方已离开 / The other party left"
    );
    assert_eq!(result["errors"], json!({"customer": [], "worker": []}));
    app.stop().await;
}

#[tokio::test]
async fn every_malformed_message_gets_an_error_and_goes_nowhere() {
    let app = tests::spawn_app().await;
    let room = interview_room(&app).await;
    let mut customer = connect(
        &app.address,
        &format!("{}&room={}", room.customer_token, room.interview),
    )
    .await
    .expect("customer in, naming the token's own room");
    assert_eq!(next(&mut customer).await["type"], "joined");
    // Alone in the room, even a good offer has nobody to go to.
    send(&mut customer, json!({"type": "offer", "sdp": SDP})).await;
    assert_eq!(next(&mut customer).await["code"], "no-peer");
    let mut worker = connect(&app.address, &room.worker_token)
        .await
        .expect("worker in");
    assert_eq!(next(&mut worker).await["type"], "joined");
    assert_eq!(next(&mut customer).await["type"], "peer-joined");

    let text = |value: Value| Message::Text(value.to_string().into());
    let without_media = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    let cases: Vec<(Message, &str)> = vec![
        (Message::Text("hello".into()), "bad-message"),
        (Message::Text("{}".into()), "bad-message"),
        (text(json!({"type": "shout"})), "bad-message"),
        (text(json!({"type": "offer"})), "bad-message"),
        (
            text(json!({"type": "offer", "sdp": SDP, "from": room.worker.id})),
            "bad-message",
        ),
        (Message::Binary(vec![1, 2, 3].into()), "bad-message"),
        (text(json!({"type": "offer", "sdp": "hello"})), "bad-sdp"),
        (
            text(json!({"type": "offer", "sdp": without_media})),
            "bad-sdp",
        ),
        (
            text(json!({"type": "answer",
                "sdp": SDP.replace("o=- 4215775240449105457 2 IN IP4 127.0.0.1", "o=- x")})),
            "bad-sdp",
        ),
        (
            text(json!({"type": "answer",
                "sdp": SDP.replace("m=application 9", "m=application nine")})),
            "bad-sdp",
        ),
        (
            text(json!({"type": "offer", "sdp": format!("{SDP}{}", "a=x\r\n".repeat(4_000))})),
            "too-large",
        ),
    ];
    for (frame, code) in cases {
        let shown: String = format!("{frame:?}").chars().take(120).collect();
        customer.send(frame).await.expect("sent");
        let reply = next(&mut customer).await;
        assert_eq!(reply["type"], "error", "{shown}");
        assert_eq!(reply["code"], code, "{shown}: {reply}");
        assert!(
            reply["message"]
                .as_str()
                .is_some_and(|message| message.contains(" / ")),
            "bilingual: {reply}"
        );
    }
    for bad in [
        "1 1 udp 2130706431 127.0.0.1 54321 typ host",
        "candidate:1 1 sctp 2130706431 127.0.0.1 54321 typ host",
        "candidate:1 1 udp 2130706431 300.0.0.1 54321 typ host",
        "candidate:1 1 udp 2130706431 127.0.0.1 99999 typ host",
        "candidate:1 1 udp 2130706431 127.0.0.1 54321 typ bogus",
        "candidate:1 0 udp 2130706431 127.0.0.1 54321 typ host",
        "candidate:1 1 udp",
    ] {
        send(
            &mut customer,
            json!({"type": "candidate", "candidate": bad}),
        )
        .await;
        assert_eq!(next(&mut customer).await["code"], "bad-candidate", "{bad}");
    }
    // A new second for the rate window, then more than 50 messages in it (pings, which the
    // server answers itself, so the burst is read well within the second): the rest are refused.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for _ in 0..60 {
        send(&mut customer, json!({"type": "ping"})).await;
    }
    let (mut limited, mut pongs) = (0, 0);
    while limited + pongs < 60 {
        let reply = next(&mut customer).await;
        match reply["type"].as_str() {
            Some("pong") => pongs += 1,
            _ => {
                assert_eq!(reply["code"], "rate-limited", "{reply}");
                limited += 1;
            }
        }
    }
    assert!(
        limited >= 10,
        "at most 50 of the 60 are answered: {pongs} pongs"
    );
    heard_nothing_more(&mut worker, "none of the bad messages reached the worker").await;
    app.stop().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_and_the_peer_told_once_the_grace_period_ends() {
    let app = tests::spawn_app_with(|settings| {
        settings.signaling.ping_every = Duration::from_millis(200);
        settings.signaling.idle_timeout = Duration::from_secs(1);
        settings.signaling.grace = Duration::from_secs(1);
    })
    .await;
    let room = interview_room(&app).await;
    let mut worker = connect(&app.address, &room.worker_token)
        .await
        .expect("worker in");
    assert_eq!(next(&mut worker).await["type"], "joined");
    // The customer connects and then never reads, so never answers a ping. The server cannot
    // have heard from them before this moment.
    let started = std::time::Instant::now();
    let mut customer = connect(&app.address, &room.customer_token)
        .await
        .expect("customer in");
    assert_eq!(next(&mut customer).await["type"], "joined");
    assert_eq!(next(&mut worker).await["type"], "peer-joined");
    // The worker, who answers pings (reading does), stays; the silent customer is closed
    // after the idle time-out and, not back within the grace period, leaves.
    assert_eq!(
        next(&mut worker).await,
        json!({"type": "peer-left", "peer": room.customer.id})
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the time-out and the grace period"
    );
    // The customer's socket was closed by the server.
    assert!(
        closed_within(&mut customer, 5).await,
        "the server closed the socket"
    );
    // The seat is free again: the customer may come back with the same token.
    let mut again = connect(&app.address, &room.customer_token)
        .await
        .expect("back in");
    assert_eq!(next(&mut again).await["peer_present"], true);
    assert_eq!(next(&mut worker).await["type"], "peer-joined");
    app.stop().await;
}

#[tokio::test]
async fn a_participant_who_resumes_after_the_last_number_received_misses_nothing_on_either_process()
{
    let app = tests::spawn_app().await;
    let other = tests::ServerProcess::start(&app.database_url).await;
    let room = interview_room(&app).await;
    let candidate = |port: u16| CANDIDATE.replace("54321", &port.to_string());
    let mut worker = connect(&app.address, &room.worker_token)
        .await
        .expect("worker in");
    assert_eq!(next(&mut worker).await["type"], "joined");
    let mut customer = connect(&app.address, &room.customer_token)
        .await
        .expect("customer in");
    assert_eq!(next(&mut customer).await["type"], "joined");
    assert_eq!(next(&mut worker).await["type"], "peer-joined");

    send(
        &mut worker,
        json!({"type": "candidate", "candidate": candidate(2001)}),
    )
    .await;
    let (first, last) = numbered(&mut customer).await;
    assert_eq!(first["candidate"], candidate(2001));
    let mut last = last.expect("relayed messages are numbered");

    // Twice: back on the same process, then on the other one. The worker sends at once after
    // the drop, so the server may well write into the dead socket; whatever it did, the
    // participant who says what they last received gets everything after it, once, in order.
    let mut port = 2001;
    for address in [app.address.clone(), other.address.clone()] {
        drop(customer);
        for _ in 0..2 {
            port += 1;
            send(
                &mut worker,
                json!({"type": "candidate", "candidate": candidate(port)}),
            )
            .await;
        }
        customer = resume(&address, &room.customer_token, last).await;
        assert_eq!(next(&mut customer).await["type"], "joined");
        port += 1;
        send(
            &mut worker,
            json!({"type": "candidate", "candidate": candidate(port)}),
        )
        .await;
        for expected in port - 2..=port {
            let (message, seq) = numbered(&mut customer).await;
            assert_eq!(message["candidate"], candidate(expected), "{message}");
            assert_eq!(seq, Some(last + 1), "numbers follow on without gaps");
            last += 1;
        }
        heard_nothing_more(&mut worker, "the worker heard no leave and no join").await;
    }
    heard_nothing_more(&mut customer, "no duplicates").await;
    drop(other);
    app.stop().await;
}

/// Connects with a small receive buffer, as a phone on a poor network would have, so that a
/// side that stops reading is felt by the server within a few messages.
async fn connect_small(address: &str, token: &str) -> Socket {
    let url = socket_url(address, token);
    let host = address.trim_start_matches("http://");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4 * 1024).expect("buffer");
    let stream = socket
        .connect(host.parse().expect("address"))
        .await
        .expect("connected");
    let (socket, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("upgraded");
    socket
}

#[tokio::test]
async fn a_side_that_stops_reading_is_dropped_and_the_servers_memory_stays_bounded() {
    let app = tests::spawn_app().await;
    let room = interview_room(&app).await;
    let server = tests::ServerProcess::start(&app.database_url).await;
    let mut worker = connect(&server.address, &room.worker_token)
        .await
        .expect("worker in");
    assert_eq!(next(&mut worker).await["type"], "joined");
    // The customer joins and then never reads again.
    let mut customer = connect_small(&server.address, &room.customer_token).await;
    assert_eq!(next(&mut customer).await["type"], "joined");
    assert_eq!(next(&mut worker).await["type"], "peer-joined");
    let before = server.resident_kib();
    // The worker keeps offering large session descriptions, within the rate limit, until the
    // server gives up on the customer: 15 kB a message, 40 a second, for up to a minute.
    let mut sdp = large_sdp();
    while sdp.len() < 15_000 {
        sdp.push_str("a=x-padding:anjia-slow-reader-test\r\n");
    }
    let offer = json!({"type": "offer", "sdp": sdp});
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    let mut peak = before;
    let told = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the slow side was never dropped ({sent} messages sent)"
        );
        send(&mut worker, offer.clone()).await;
        sent += 1;
        peak = peak.max(server.resident_kib());
        // Whatever the worker is told (errors for a peer that is gone, the peer leaving).
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(25), worker.next()).await
        {
            let message: Value = serde_json::from_str(&text).expect("json");
            if message["type"] == "peer-left" {
                break message;
            }
        }
    };
    assert_eq!(told["peer"], room.customer.id.to_string());
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "slow reader dropped after {sent} messages ({} MiB) in {:.1} s; server memory grew {grown_mib} MiB",
        sent * 15 / 1024,
        started.elapsed().as_secs_f64()
    );
    assert!(
        grown_mib < 64,
        "the server grew {grown_mib} MiB for one slow reader"
    );
    // The slow side, reading at last, finds its connection closed, told why where it could be.
    assert!(
        closed_within(&mut customer, 20).await,
        "the server closed the socket"
    );
    server.terminate().await;
    app.stop().await;
}

#[tokio::test]
async fn a_connection_ends_when_its_room_token_expires() {
    let app = tests::spawn_app().await;
    let room = interview_room(&app).await;
    let key: Vec<u8> =
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = 'room_token_key'")
            .fetch_one(&app.pool)
            .await
            .expect("key");
    let short = signaling::token::room_token(
        &key,
        &signaling::token::RoomClaims {
            room: room.interview,
            sub: room.customer.id,
            role: "customer".into(),
            exp: (chrono::Utc::now() + chrono::Duration::seconds(2)).timestamp(),
        },
    );
    let mut customer = connect(&app.address, &short).await.expect("in");
    assert_eq!(next(&mut customer).await["type"], "joined");
    let told = next(&mut customer).await;
    assert_eq!(told["type"], "error", "{told}");
    assert_eq!(told["code"], "token-expired", "{told}");
    assert!(
        closed_within(&mut customer, 5).await,
        "the server closed the socket"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cancelled_interview_closes_its_call_and_its_tokens_admit_nobody_again() {
    let app = tests::spawn_app().await;
    let room = interview_room(&app).await;
    let other = tests::ServerProcess::start(&app.database_url).await;
    // One party on each process.
    let mut customer = connect(&app.address, &room.customer_token)
        .await
        .expect("customer in");
    assert_eq!(next(&mut customer).await["type"], "joined");
    let mut worker = connect(&other.address, &room.worker_token)
        .await
        .expect("worker in");
    assert_eq!(next(&mut worker).await["type"], "joined");
    assert_eq!(next(&mut customer).await["type"], "peer-joined");

    let cancelled = app
        .post(
            &format!("/api/v1/interviews/{}/cancel", room.interview),
            Some(&room.customer.token),
            &json!({"reason": "已找到合适的人 / found someone"}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    // Both connections are told and closed, on either process.
    for socket in [&mut customer, &mut worker] {
        let told = next(socket).await;
        assert_eq!(told["type"], "error", "{told}");
        assert_eq!(told["code"], "room-closed", "{told}");
        assert!(
            closed_within(socket, 5).await,
            "the server closed the socket"
        );
    }
    // The tokens handed out before admit nobody now.
    assert_eq!(
        connect(&app.address, &room.customer_token).await.err(),
        Some(409)
    );
    assert_eq!(
        connect(&other.address, &room.worker_token).await.err(),
        Some(409)
    );
    other.terminate().await;
    app.stop().await;
}

/// What the hubs published on their channel up to now: a probe of our own is heard after
/// everything committed before it.
async fn published_since_last_probe(
    listener: &mut sqlx::postgres::PgListener,
    pool: &sqlx::PgPool,
) -> Vec<String> {
    // A room nobody holds: every hub reads it and does nothing.
    let probe = json!({"bus": "closed", "room": Uuid::new_v4()}).to_string();
    sqlx::query("SELECT pg_notify('anjia_signaling', $1)")
        .bind(&probe)
        .execute(pool)
        .await
        .expect("probe");
    let mut heard = Vec::new();
    loop {
        let notification = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .expect("the probe in time")
            .expect("a notification");
        if notification.payload() == probe {
            return heard;
        }
        heard.push(notification.payload().to_owned());
    }
}

/// The candidates the hubs published on their channel while a customer connected through
/// `customer_at` and a worker through `worker_at` sent each other three each, once their seats
/// had settled (one message each way has arrived).
async fn candidates_published(
    app: &TestApp,
    listener: &mut sqlx::postgres::PgListener,
    customer_at: &str,
    worker_at: &str,
) -> Vec<String> {
    let room = interview_room(app).await;
    let mut customer = connect(customer_at, &room.customer_token)
        .await
        .expect("customer in");
    next(&mut customer).await;
    let mut worker = connect(worker_at, &room.worker_token)
        .await
        .expect("worker in");
    next(&mut worker).await;
    assert_eq!(next(&mut customer).await["type"], "peer-joined");
    candidates_both_ways(&mut customer, &mut worker, &[1000]).await;
    published_since_last_probe(listener, &app.pool).await;
    candidates_both_ways(&mut customer, &mut worker, &[1001, 1002, 1003]).await;
    published_since_last_probe(listener, &app.pool)
        .await
        .into_iter()
        .filter(|payload| payload.contains("candidate"))
        .collect()
}

async fn candidates_both_ways(customer: &mut Socket, worker: &mut Socket, ports: &[u16]) {
    for port in ports {
        let candidate = CANDIDATE.replace("54321", &port.to_string());
        send(
            customer,
            json!({"type": "candidate", "candidate": candidate}),
        )
        .await;
        assert!(next(worker).await["candidate"]
            .as_str()
            .is_some_and(|heard| heard.contains(&port.to_string())));
        send(worker, json!({"type": "candidate", "candidate": candidate})).await;
        assert!(next(customer).await["candidate"]
            .as_str()
            .is_some_and(|heard| heard.contains(&port.to_string())));
    }
}

#[tokio::test]
async fn relays_between_two_seats_of_one_process_go_straight_and_across_processes_through_postgresql(
) {
    let app = tests::spawn_app().await;
    let other = tests::ServerProcess::start(&app.database_url).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.pool)
        .await
        .expect("listener");
    listener.listen("anjia_signaling").await.expect("listen");

    // Both parties on one process: no relay goes through PostgreSQL.
    let relayed = candidates_published(&app, &mut listener, &app.address, &app.address).await;
    assert!(
        relayed.is_empty(),
        "a relay within one process went through PostgreSQL: {relayed:?}"
    );
    // The parties on two processes: every relay goes through PostgreSQL.
    let relayed = candidates_published(&app, &mut listener, &app.address, &other.address).await;
    assert_eq!(relayed.len(), 6, "{relayed:?}");
    drop(other);
    app.stop().await;
}
