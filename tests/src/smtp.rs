//! A real SMTP server for tests: it speaks enough of RFC 5321 for a real client (lettre) to
//! deliver to it, and keeps every message so a test can read what a person would receive.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One delivered message.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message as sent after DATA.
    pub raw: String,
}

impl ReceivedMail {
    /// The body as text, with base64 transfer encoding undone.
    pub fn text(&self) -> String {
        let (headers, body) = self.raw.split_once("\r\n\r\n").unwrap_or((&self.raw, ""));
        let base64_encoded = headers.lines().any(|line| {
            line.to_ascii_lowercase()
                .starts_with("content-transfer-encoding: base64")
        });
        if base64_encoded {
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            body.to_owned()
        }
    }

    /// The first six-digit number in the body: a verification code.
    pub fn code(&self) -> Option<String> {
        self.text()
            .split(|c: char| !c.is_ascii_digit())
            .find(|digits| digits.len() == 6)
            .map(str::to_owned)
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub address: SocketAddr,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the SMTP sink");
        let address = listener.local_addr().expect("sink address");
        let messages: Arc<Mutex<Vec<ReceivedMail>>> = Arc::default();
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, store).await;
                });
            }
        });
        SmtpSink { address, messages }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Waits for the newest message to `recipient`, failing after a deadline.
    pub async fn latest_to(&self, recipient: &str) -> ReceivedMail {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .messages
                .lock()
                .expect("sink lock")
                .iter()
                .rev()
                .find(|mail| mail.to.iter().any(|to| to.eq_ignore_ascii_case(recipient)))
                .cloned();
            if let Some(mail) = found {
                return mail;
            }
            assert!(Instant::now() < deadline, "no mail reached {recipient}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every message received so far.
    pub fn all(&self) -> Vec<ReceivedMail> {
        self.messages.lock().expect("sink lock").clone()
    }

    pub fn count_to(&self, recipient: &str) -> usize {
        self.messages
            .lock()
            .expect("sink lock")
            .iter()
            .filter(|mail| mail.to.iter().any(|to| to.eq_ignore_ascii_case(recipient)))
            .count()
    }
}

fn address_in(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}

async fn serve(stream: TcpStream, store: Arc<Mutex<Vec<ReceivedMail>>>) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            writer
                .write_all(b"250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n")
                .await?;
        } else if command.starts_with("HELO") || command.starts_with("NOOP") {
            writer.write_all(b"250 OK\r\n").await?;
        } else if command.starts_with("MAIL FROM") {
            from = address_in(&line);
            to.clear();
            writer.write_all(b"250 OK\r\n").await?;
        } else if command.starts_with("RCPT TO") {
            to.push(address_in(&line));
            writer.write_all(b"250 OK\r\n").await?;
        } else if command == "DATA" {
            writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                // Undo dot-stuffing.
                raw.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            store.lock().expect("sink lock").push(ReceivedMail {
                from: from.clone(),
                to: to.clone(),
                raw,
            });
            writer.write_all(b"250 OK queued\r\n").await?;
        } else if command.starts_with("RSET") {
            from.clear();
            to.clear();
            writer.write_all(b"250 OK\r\n").await?;
        } else if command.starts_with("QUIT") {
            writer.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            writer.write_all(b"502 not implemented\r\n").await?;
        }
    }
}
