//! Sending messages to people: the `EmailSender` and `SmsSender` ports and their adapters.
//!
//! E-mail goes out over SMTP (lettre) when `ANJIA_SMTP_URL` is set; SMS goes to an HTTP gateway
//! when `ANJIA_SMS_GATEWAY_URL` is set. Without them, in development, messages land in the
//! `outbox_messages` table, where a developer (or a test) can read them.

use std::sync::Arc;

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;
use uuid::Uuid;

use application::notify::{EmailSender, Notifier, SmsSender};

#[derive(Clone, Default)]
pub struct NotifySettings {
    /// `smtp://host:port` (plain, for a local relay), `smtp://host:port?tls=required` (STARTTLS)
    /// or `smtps://user:password@host:port` (TLS).
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub sms_gateway_url: Option<String>,
    pub sms_gateway_token: Option<String>,
}

impl std::fmt::Debug for NotifySettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NotifySettings")
            .field("smtp", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("mail_from", &self.mail_from)
            .field("sms_gateway_url", &self.sms_gateway_url)
            .finish_non_exhaustive()
    }
}

impl NotifySettings {}

/// Both senders, as the app uses them.
impl NotifySettings {
    /// SMTP and the SMS gateway when configured, the outbox table otherwise.
    pub fn build(&self, pool: &PgPool) -> anyhow::Result<Notifier> {
        let settings = self;
        let email: Arc<dyn EmailSender> = match &settings.smtp_url {
            Some(url) => Arc::new(SmtpEmailSender::new(
                url,
                settings
                    .mail_from
                    .as_deref()
                    .unwrap_or("安家 Anjia <no-reply@anjia.invalid>"),
            )?),
            None => Arc::new(Outbox { pool: pool.clone() }),
        };
        let sms: Arc<dyn SmsSender> = match &settings.sms_gateway_url {
            Some(url) => Arc::new(HttpSmsSender {
                client: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()?,
                url: url.clone(),
                token: settings.sms_gateway_token.clone(),
            }),
            None => Arc::new(Outbox { pool: pool.clone() }),
        };
        Ok(Notifier { email, sms })
    }
}

/// E-mail over SMTP.
pub struct SmtpEmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl SmtpEmailSender {
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("reading ANJIA_SMTP_URL")?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(SmtpEmailSender {
            transport,
            from: from.parse().context("reading ANJIA_MAIL_FROM")?,
        })
    }
}

#[async_trait::async_trait]
impl EmailSender for SmtpEmailSender {
    async fn send(&self, to: &str, subject: &str, body: &str) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse().context("the recipient address")?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .context("building the message")?;
        self.transport
            .send(message)
            .await
            .context("sending over SMTP")?;
        Ok(())
    }
}

/// SMS through an HTTP gateway: POST `{ "phone": ..., "text": ... }` with a bearer token.
pub struct HttpSmsSender {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

#[async_trait::async_trait]
impl SmsSender for HttpSmsSender {
    async fn send(&self, phone: &str, text: &str) -> anyhow::Result<()> {
        let mut request = self
            .client
            .post(&self.url)
            .json(&serde_json::json!({ "phone": phone, "text": text }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.context("calling the SMS gateway")?;
        anyhow::ensure!(
            response.status().is_success(),
            "the SMS gateway answered {}",
            response.status()
        );
        Ok(())
    }
}

/// The development sender for both channels: a table.
pub struct Outbox {
    pool: PgPool,
}

impl Outbox {
    async fn store(
        &self,
        channel: &str,
        destination: &str,
        subject: Option<&str>,
        body: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO outbox_messages (message_id, channel, destination, subject, body) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(channel)
        .bind(destination)
        .bind(subject)
        .bind(body)
        .execute(&self.pool)
        .await
        .context("writing to the outbox")?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl EmailSender for Outbox {
    async fn send(&self, to: &str, subject: &str, body: &str) -> anyhow::Result<()> {
        self.store("email", to, Some(subject), body).await
    }
}

#[async_trait::async_trait]
impl SmsSender for Outbox {
    async fn send(&self, phone: &str, text: &str) -> anyhow::Result<()> {
        self.store("sms", phone, None, text).await
    }
}
