//! Sending messages to people: the `EmailSender` and `SmsSender` ports. The adapters (SMTP, an
//! SMS gateway, the development outbox) live in the `adapters` crate.

use std::sync::Arc;

#[async_trait::async_trait]
pub trait EmailSender: Send + Sync {
    async fn send(&self, to: &str, subject: &str, body: &str) -> anyhow::Result<()>;
}

#[async_trait::async_trait]
pub trait SmsSender: Send + Sync {
    async fn send(&self, phone: &str, text: &str) -> anyhow::Result<()>;
}

/// Where messages go, from the environment.
/// The ports a use case sends messages through.
#[derive(Clone)]
pub struct Notifier {
    pub email: Arc<dyn EmailSender>,
    pub sms: Arc<dyn SmsSender>,
}
