//! What the two parties of a room say to each other through the server, and how each message
//! is checked before it is relayed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The largest message a client may send.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClientMessage {
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    /// A trickled ICE candidate; an empty `candidate` ends the trickle.
    Candidate {
        candidate: String,
        #[serde(default, rename = "sdpMid")]
        sdp_mid: Option<String>,
        #[serde(default, rename = "sdpMLineIndex")]
        sdp_mline_index: Option<u16>,
    },
    Ping,
    Leave,
}

/// A message from the server. Relayed messages carry the sender the server knows, never one a
/// client claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    Joined {
        room: Uuid,
        you: Uuid,
        peer_present: bool,
    },
    PeerJoined {
        peer: Uuid,
    },
    PeerLeft {
        peer: Uuid,
    },
    Offer {
        from: Uuid,
        sdp: String,
    },
    Answer {
        from: Uuid,
        sdp: String,
    },
    Candidate {
        from: Uuid,
        candidate: String,
        #[serde(rename = "sdpMid")]
        sdp_mid: Option<String>,
        #[serde(rename = "sdpMLineIndex")]
        sdp_mline_index: Option<u16>,
    },
    Pong,
    Error {
        code: String,
        message: String,
    },
}

impl ServerMessage {
    pub fn error(code: &str, message: &str) -> Self {
        ServerMessage::Error {
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Checks a session description with the webrtc crate's own parser (RFC 8866 grammar: `v=`,
/// `o=`, `s=`, `t=` in order, every line known to it), and that it describes some media: a
/// call with none has nothing to negotiate.
pub fn check_sdp(sdp: &str) -> Result<(), String> {
    let mut reader = std::io::Cursor::new(sdp.as_bytes());
    let parsed = webrtc::sdp::SessionDescription::unmarshal(&mut reader)
        .map_err(|error| error.to_string())?;
    if parsed.media_descriptions.is_empty() {
        return Err("no media section".into());
    }
    for media in &parsed.media_descriptions {
        if media.media_name.protos.is_empty() || media.media_name.formats.is_empty() {
            return Err(format!(
                "media {} has no transport or formats",
                media.media_name.media
            ));
        }
    }
    Ok(())
}

/// Checks a trickled candidate's form (RFC 8839): `candidate:` foundation, component, transport,
/// priority, address, port, `typ` and a known type. An empty candidate (end of candidates) passes.
pub fn check_candidate(candidate: &str) -> Result<(), String> {
    if candidate.is_empty() {
        return Ok(());
    }
    let body = candidate
        .strip_prefix("candidate:")
        .ok_or("a candidate starts with candidate:")?;
    let fields: Vec<&str> = body.split_whitespace().collect();
    if fields.len() < 8 {
        return Err("a candidate has at least eight fields".into());
    }
    let component: u16 = fields[1].parse().map_err(|_| "bad component")?;
    if !(1..=256).contains(&component) {
        return Err("bad component".into());
    }
    if !matches!(fields[2].to_ascii_lowercase().as_str(), "udp" | "tcp") {
        return Err("transport must be udp or tcp".into());
    }
    fields[3].parse::<u32>().map_err(|_| "bad priority")?;
    let address = fields[4];
    if address.parse::<std::net::IpAddr>().is_err() && !address.ends_with(".local") {
        return Err("bad address".into());
    }
    fields[5].parse::<u16>().map_err(|_| "bad port")?;
    if fields[6] != "typ" || !matches!(fields[7], "host" | "srflx" | "prflx" | "relay") {
        return Err("typ must be host, srflx, prflx or relay".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 4215775240449105457 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n";

    #[test]
    fn session_descriptions_are_checked_for_their_required_lines() {
        assert_eq!(check_sdp(SDP), Ok(()));
        assert!(check_sdp("").is_err());
        assert!(check_sdp("hello").is_err());
        assert!(check_sdp(&SDP.replace("o=- 4215775240449105457 2", "o=-")).is_err());
        assert!(check_sdp(&SDP.replace("m=application", "x application")).is_err());
        assert!(check_sdp(
            &SDP.replace("\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel", "")
        )
        .is_err());
    }

    #[test]
    fn candidates_are_checked_for_their_form() {
        let host = "candidate:1 1 udp 2130706431 127.0.0.1 54321 typ host";
        assert_eq!(check_candidate(host), Ok(()));
        assert_eq!(check_candidate(""), Ok(()));
        assert_eq!(
            check_candidate("candidate:1 1 udp 2130706431 abcd.local 54321 typ host"),
            Ok(())
        );
        for bad in [
            "1 1 udp 2130706431 127.0.0.1 54321 typ host",
            "candidate:1 1 sctp 2130706431 127.0.0.1 54321 typ host",
            "candidate:1 1 udp 2130706431 300.0.0.1 54321 typ host",
            "candidate:1 1 udp 2130706431 127.0.0.1 99999 typ host",
            "candidate:1 1 udp 2130706431 127.0.0.1 54321 typ bogus",
            "candidate:1 1 udp",
        ] {
            assert!(check_candidate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sender_is_not_a_client_field() {
        let claimed =
            r#"{"type":"offer","sdp":"v=0","from":"00000000-0000-0000-0000-000000000001"}"#;
        assert!(serde_json::from_str::<ClientMessage>(claimed).is_err());
    }
}
