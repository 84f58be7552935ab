//! A real WebRTC peer (the webrtc crate) that meets its counterpart only through the platform's
//! signaling service: it negotiates over the WebSocket, trickles candidates, opens a data
//! channel and sends (or receives) a video track's RTP packets on loopback.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Mutex};
use tokio_tungstenite::tungstenite::Message;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_VP8};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::data_channel::RTCDataChannel;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_candidate::{RTCIceCandidate, RTCIceCandidateInit};
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

/// Which side of the call a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Makes the offer, opens the data channel and sends video (the customer).
    Caller,
    /// Answers, and receives the channel and the video (the worker).
    Callee,
}

/// What a peer saw by the end of its call.
#[derive(Debug, Default)]
pub struct CallReport {
    pub connected: bool,
    /// Data-channel messages received, in order.
    pub messages: Vec<String>,
    /// RTP packets received on the video track (the callee's count).
    pub video_packets: usize,
    /// The video track's codec as negotiated (the callee's view).
    pub video_codec: Option<String>,
}

/// The number of video packets the callee waits for before it says so.
pub const VIDEO_PACKETS: usize = 30;

/// Runs one side of a call through the signaling socket at `url` until both have connected,
/// exchanged a data-channel message and the callee has received [`VIDEO_PACKETS`] packets.
pub async fn call(url: &str, side: Side) -> anyhow::Result<CallReport> {
    tokio::time::timeout(Duration::from_secs(60), run(url, side))
        .await
        .map_err(|_| anyhow!("{side:?}: the call did not complete within 60 s"))?
}

async fn run(url: &str, side: Side) -> anyhow::Result<CallReport> {
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("connecting to signaling")?;
    let (mut sink, mut stream) = socket.split();
    let joined = next_json(&mut stream).await?;
    if joined["type"] != "joined" {
        bail!("expected joined, got {joined}");
    }
    let mut peer_present = joined["peer_present"] == true;

    // Everything the peer connection wants said goes through one writer.
    let (say, mut said) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        // `null` ends the conversation (the peer connection's handlers keep senders alive).
        while let Some(message) = said.recv().await.filter(|message| !message.is_null()) {
            if sink
                .send(Message::Text(message.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let pc = Arc::new(peer_connection().await?);
    let (state_tx, mut state_rx) = watch::channel(RTCPeerConnectionState::New);
    pc.on_peer_connection_state_change(Box::new(move |state| {
        let _ = state_tx.send(state);
        Box::pin(async {})
    }));
    let candidates = say.clone();
    pc.on_ice_candidate(Box::new(move |candidate: Option<RTCIceCandidate>| {
        let candidates = candidates.clone();
        Box::pin(async move {
            let message = match candidate.map(|candidate| candidate.to_json()) {
                Some(Ok(init)) => json!({
                    "type": "candidate",
                    "candidate": init.candidate,
                    "sdpMid": init.sdp_mid,
                    "sdpMLineIndex": init.sdp_mline_index,
                }),
                Some(Err(_)) => return,
                None => json!({"type": "candidate", "candidate": ""}),
            };
            let _ = candidates.send(message);
        })
    }));

    let (heard_tx, mut heard_rx) = mpsc::unbounded_channel::<String>();
    let video = Arc::new(Mutex::new((0usize, None::<String>)));
    let (video_done_tx, _) = watch::channel(false);
    let sender_track = match side {
        Side::Caller => {
            let channel = pc.create_data_channel("chat", None).await?;
            wire_channel(
                &channel,
                heard_tx.clone(),
                "你好，我是客户 / hello from the customer",
            );
            let track = Arc::new(TrackLocalStaticRTP::new(
                RTCRtpCodecCapability {
                    mime_type: MIME_TYPE_VP8.to_owned(),
                    clock_rate: 90_000,
                    ..Default::default()
                },
                "camera".to_owned(),
                "anjia-interview".to_owned(),
            ));
            let sender = pc
                .add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
                .await?;
            // RTCP from the far side must be read for the interceptors to work.
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 1500];
                while sender.read(&mut buffer).await.is_ok() {}
            });
            Some(track)
        }
        Side::Callee => {
            let heard = heard_tx.clone();
            let video_done = video_done_tx.clone();
            pc.on_data_channel(Box::new(move |channel: Arc<RTCDataChannel>| {
                wire_channel(
                    &channel,
                    heard.clone(),
                    "你好，我是阿姨 / hello from the worker",
                );
                let video_done = video_done.clone();
                let reporter = Arc::clone(&channel);
                // Once the video has come through, the callee says so on the channel.
                tokio::spawn(async move {
                    let mut done = video_done.subscribe();
                    if done.wait_for(|done| *done).await.is_ok() {
                        let _ = reporter
                            .send_text(format!("视频已收到 / video received ({VIDEO_PACKETS})"))
                            .await;
                    }
                });
                Box::pin(async {})
            }));
            let video = Arc::clone(&video);
            pc.on_track(Box::new(move |track, _receiver, _transceiver| {
                let video = Arc::clone(&video);
                let video_done = video_done_tx.clone();
                Box::pin(async move {
                    video.lock().await.1 = Some(track.codec().capability.mime_type.clone());
                    tokio::spawn(async move {
                        while track.read_rtp().await.is_ok() {
                            let mut seen = video.lock().await;
                            seen.0 += 1;
                            if seen.0 == VIDEO_PACKETS {
                                video_done.send_replace(true);
                            }
                        }
                    });
                })
            }));
            None
        }
    };

    let mut offered = false;
    let mut pending: Vec<RTCIceCandidateInit> = Vec::new();
    let mut report = CallReport::default();
    let mut video_sender: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        if side == Side::Caller && peer_present && !offered {
            offered = true;
            let offer = pc.create_offer(None).await?;
            pc.set_local_description(offer.clone()).await?;
            say.send(json!({"type": "offer", "sdp": offer.sdp}))?;
        }
        if *state_rx.borrow() == RTCPeerConnectionState::Connected && video_sender.is_none() {
            if let Some(track) = sender_track.clone() {
                video_sender = Some(tokio::spawn(send_video(track)));
            }
        }
        let finished = report.connected
            && match side {
                Side::Caller => report.messages.iter().any(|m| m.starts_with("视频已收到")),
                Side::Callee => {
                    !report.messages.is_empty() && video.lock().await.0 >= VIDEO_PACKETS
                }
            };
        if finished {
            break;
        }
        tokio::select! {
            frame = next_json(&mut stream) => {
                let message = frame?;
                match message["type"].as_str() {
                    Some("peer-joined") => peer_present = true,
                    Some("offer") => {
                        let sdp = message["sdp"].as_str().context("offer sdp")?.to_owned();
                        pc.set_remote_description(RTCSessionDescription::offer(sdp)?).await?;
                        for candidate in pending.drain(..) {
                            pc.add_ice_candidate(candidate).await?;
                        }
                        let answer = pc.create_answer(None).await?;
                        pc.set_local_description(answer.clone()).await?;
                        say.send(json!({"type": "answer", "sdp": answer.sdp}))?;
                    }
                    Some("answer") => {
                        let sdp = message["sdp"].as_str().context("answer sdp")?.to_owned();
                        pc.set_remote_description(RTCSessionDescription::answer(sdp)?).await?;
                        for candidate in pending.drain(..) {
                            pc.add_ice_candidate(candidate).await?;
                        }
                    }
                    Some("candidate") => {
                        let candidate = message["candidate"].as_str().unwrap_or_default();
                        if candidate.is_empty() {
                            continue;
                        }
                        let init = RTCIceCandidateInit {
                            candidate: candidate.to_owned(),
                            sdp_mid: message["sdpMid"].as_str().map(str::to_owned),
                            sdp_mline_index: message["sdpMLineIndex"].as_u64().map(|i| i as u16),
                            username_fragment: None,
                        };
                        if pc.remote_description().await.is_some() {
                            pc.add_ice_candidate(init).await?;
                        } else {
                            pending.push(init);
                        }
                    }
                    Some("error") => bail!("{side:?}: the signaling service said {message}"),
                    _ => {}
                }
            }
            changed = state_rx.changed() => {
                changed?;
                let state = *state_rx.borrow();
                match state {
                    RTCPeerConnectionState::Connected => report.connected = true,
                    RTCPeerConnectionState::Failed => bail!("{side:?}: the connection failed"),
                    _ => {}
                }
            }
            heard = heard_rx.recv() => {
                report.messages.push(heard.context("channel messages")?);
            }
            // Re-check the video count now and then.
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    {
        let seen = video.lock().await;
        report.video_packets = seen.0;
        report.video_codec = seen.1.clone();
    }
    if side == Side::Caller {
        let _ = say.send(json!({"type": "leave"}));
    }
    let _ = say.send(Value::Null);
    if let Some(sender) = video_sender {
        sender.abort();
    }
    // The callee keeps the connection until the caller, having read its last message, leaves.
    if side == Side::Callee {
        let caller_left = async {
            while let Ok(message) = next_json(&mut stream).await {
                if message["type"] == "peer-left" {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), caller_left)
            .await
            .map_err(|_| anyhow!("the caller never left"))?;
    }
    pc.close().await?;
    let _ = writer.await;
    Ok(report)
}

async fn peer_connection() -> anyhow::Result<RTCPeerConnection> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    let interceptors = register_default_interceptors(Registry::new(), &mut media)?;
    let mut settings = SettingEngine::default();
    // Loopback only: the test machine has no other network to speak of.
    settings.set_include_loopback_candidate(true);
    settings.set_network_types(vec![NetworkType::Udp4]);
    settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(interceptors)
        .with_setting_engine(settings)
        .build();
    Ok(api.new_peer_connection(RTCConfiguration::default()).await?)
}

/// Greets on open and passes what is heard on.
fn wire_channel(channel: &Arc<RTCDataChannel>, heard: mpsc::UnboundedSender<String>, hello: &str) {
    let opened = Arc::clone(channel);
    let hello = hello.to_owned();
    channel.on_open(Box::new(move || {
        Box::pin(async move {
            let _ = opened.send_text(hello).await;
        })
    }));
    channel.on_message(Box::new(move |message: DataChannelMessage| {
        let _ = heard.send(String::from_utf8_lossy(&message.data).into_owned());
        Box::pin(async {})
    }));
}

/// Sends a VP8-looking RTP packet every 20 ms (the receiver counts packets, it does not decode).
async fn send_video(track: Arc<TrackLocalStaticRTP>) {
    let mut sequence: u16 = 0;
    let mut timestamp: u32 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let packet = webrtc::rtp::packet::Packet {
            header: webrtc::rtp::header::Header {
                version: 2,
                marker: true,
                sequence_number: sequence,
                timestamp,
                ..Default::default()
            },
            // A VP8 payload descriptor (start of partition) and a few bytes of frame.
            payload: bytes::Bytes::from_static(&[0x10, 0x00, 0x9d, 0x01, 0x2a, 0x10, 0x00]),
        };
        if track.write_rtp(&packet).await.is_err() {
            return;
        }
        sequence = sequence.wrapping_add(1);
        timestamp = timestamp.wrapping_add(1_800);
    }
}

async fn next_json<S>(stream: &mut S) -> anyhow::Result<Value>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
            Some(Ok(Message::Close(_))) | None => bail!("the signaling socket closed"),
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(error.into()),
        }
    }
}
