//! The built-in sandbox provider, running in-process. It behaves like the real providers: it
//! answers a new payment with checkout details and later, asynchronously, posts a signed
//! notification to the platform's callback (HMAC-SHA256 over the timestamp and body, with a key
//! only the platform's processes share). Told through `SandboxControl`, it fails, times out
//! (never notifies), notifies twice or refuses the first refund.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use application::ports::{
    Checkout, Headers, Notification, PaymentProvider, SandboxBehaviour, SandboxControl,
    StatementLine,
};
use chrono::{DateTime, Utc};
use domain::payment::{PaymentMethod, CURRENCY};
use domain::Fen;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

/// The sandbox's signing key.
pub async fn sandbox_key(pool: &PgPool) -> anyhow::Result<Vec<u8>> {
    Ok(application::secrets::server_secret(pool, "sandbox_payment_key").await?)
}

/// Notifications older than this are refused as replays.
const MAX_NOTIFICATION_AGE_SECONDS: i64 = 300;

/// How long the sandbox waits before sending a notification the platform did not accept
/// again: once after each.
const RETRY_AFTER: [std::time::Duration; 3] = [
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(5),
    std::time::Duration::from_secs(25),
];

pub const SANDBOX_SIGNATURE: &str = "x-sandbox-signature";
pub const SANDBOX_TIMESTAMP: &str = "x-sandbox-timestamp";

/// The built-in sandbox provider, running in-process.
pub struct SandboxProvider {
    pool: PgPool,
    /// How the next payments are to be answered, by payment (`SandboxControl`).
    scripts: Arc<Mutex<HashMap<Uuid, SandboxBehaviour>>>,
    key: Vec<u8>,
    /// Where notifications go: this platform's own callback.
    callback_url: String,
    client: reqwest::Client,
}

impl SandboxProvider {
    pub fn new(pool: PgPool, key: Vec<u8>, callback_url: String) -> Self {
        SandboxProvider {
            pool,
            scripts: Arc::default(),
            key,
            callback_url,
            client: reqwest::Client::new(),
        }
    }

    /// The signature over `timestamp.body`, hex.
    pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Delivers a notification as a provider does: sent again, later, while the platform does
    /// not accept it (a provider keeps trying for hours; the sandbox for half a minute).
    async fn deliver(&self, notification: &Notification) {
        for wait in RETRY_AFTER.iter().map(Some).chain([None]) {
            match self.notify(notification).await {
                Ok(()) => return,
                Err(error) => match wait {
                    Some(wait) => {
                        tracing::info!(error = %format!("{error:#}"), "a sandbox notification was not accepted; sending it again later");
                        tokio::time::sleep(*wait).await;
                    }
                    None => {
                        tracing::warn!(error = %format!("{error:#}"), "a sandbox notification was not accepted; giving up")
                    }
                },
            }
        }
    }

    /// Posts a notification to the callback, as a provider's server would.
    async fn notify(&self, notification: &Notification) -> anyhow::Result<()> {
        let body = serde_json::to_vec(notification)?;
        let timestamp = Utc::now().timestamp();
        let signature = Self::sign(&self.key, timestamp, &body);
        let response = self
            .client
            .post(&self.callback_url)
            .header(SANDBOX_SIGNATURE, signature)
            .header(SANDBOX_TIMESTAMP, timestamp.to_string())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .context("delivering a sandbox notification")?;
        anyhow::ensure!(
            response.status().is_success(),
            "the platform answered {}",
            response.status()
        );
        Ok(())
    }
}

#[async_trait::async_trait]
impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn create(
        &self,
        payment_id: Uuid,
        amount: Fen,
        method: PaymentMethod,
    ) -> anyhow::Result<Checkout> {
        let behaviour = self
            .scripts
            .lock()
            .expect("sandbox script lock")
            .remove(&payment_id)
            .unwrap_or_default();
        let provider_transaction = format!("SBX{}", payment_id.simple());
        sqlx::query(
            "INSERT INTO sandbox_transactions (payment_id, provider_transaction, amount, behaviour, status)
             VALUES ($1, $2, $3, $4, 'pending') ON CONFLICT (payment_id) DO NOTHING",
        )
        .bind(payment_id)
        .bind(&provider_transaction)
        .bind(amount.get())
        .bind(behaviour.as_str())
        .execute(&self.pool)
        .await?;
        if behaviour == SandboxBehaviour::Timeout {
            // The customer pays, but the notification is lost: only a query finds out.
            sqlx::query(
                "UPDATE sandbox_transactions SET status = 'success', settled_at = now() WHERE payment_id = $1",
            )
            .bind(payment_id)
            .execute(&self.pool)
            .await?;
        } else {
            let status = if behaviour == SandboxBehaviour::Fail {
                "failed"
            } else {
                "success"
            };
            let notification = Notification {
                notification_id: Uuid::now_v7().to_string(),
                payment_id,
                provider_transaction: provider_transaction.clone(),
                amount: amount.get(),
                currency: CURRENCY.to_owned(),
                status: status.to_owned(),
                occurred_at: Utc::now(),
            };
            let sandbox = SandboxProvider {
                pool: self.pool.clone(),
                scripts: self.scripts.clone(),
                key: self.key.clone(),
                callback_url: self.callback_url.clone(),
                client: self.client.clone(),
            };
            let times = if behaviour == SandboxBehaviour::NotifyTwice {
                2
            } else {
                1
            };
            // Asynchronously, as a provider does once the customer has paid.
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let _ = sqlx::query(
                    "UPDATE sandbox_transactions SET status = $2, settled_at = now() WHERE payment_id = $1",
                )
                .bind(payment_id)
                .bind(&notification.status)
                .execute(&sandbox.pool)
                .await;
                for attempt in 0..times {
                    let mut sent = notification.clone();
                    if attempt > 0 {
                        sent.notification_id = Uuid::now_v7().to_string();
                    }
                    sandbox.deliver(&sent).await;
                }
            });
        }
        Ok(Checkout {
            provider: "sandbox".into(),
            pay_url: format!(
                "https://sandbox.anjia.invalid/cashier/{provider_transaction}?method={}",
                method.as_str()
            ),
            provider_transaction,
        })
    }

    async fn statement(
        &self,
        day: chrono::NaiveDate,
    ) -> anyhow::Result<Option<Vec<StatementLine>>> {
        let from = domain::availability::local_instant(day, chrono::NaiveTime::MIN);
        let to = from + chrono::Duration::days(1);
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT 'payment', provider_transaction, amount FROM sandbox_transactions
              WHERE status = 'success' AND settled_at >= $1 AND settled_at < $2
             UNION ALL
             SELECT 'refund', provider_refund, amount FROM sandbox_refunds
              WHERE created_at >= $1 AND created_at < $2
             ORDER BY 2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(
            rows.into_iter()
                .map(|(kind, reference, amount)| StatementLine {
                    kind,
                    reference,
                    amount,
                })
                .collect(),
        ))
    }

    async fn query(&self, payment_id: Uuid) -> anyhow::Result<Option<Notification>> {
        let row: Option<(String, i64, String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT provider_transaction, amount, status, settled_at FROM sandbox_transactions WHERE payment_id = $1",
        )
        .bind(payment_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.and_then(|(provider_transaction, amount, status, settled_at)| {
                (status != "pending").then(|| Notification {
                    notification_id: format!("query-{}", Uuid::now_v7()),
                    payment_id,
                    provider_transaction,
                    amount,
                    currency: CURRENCY.to_owned(),
                    status,
                    occurred_at: settled_at.unwrap_or_else(Utc::now),
                })
            }),
        )
    }

    async fn refund(
        &self,
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Fen,
        _original: Fen,
    ) -> anyhow::Result<Option<String>> {
        let fails_now = sqlx::query(
            "UPDATE sandbox_transactions SET behaviour = 'succeed'
              WHERE payment_id = $1 AND behaviour = 'refund_fails_once'",
        )
        .bind(payment_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        anyhow::ensure!(
            !fails_now,
            "the sandbox refused this refund, as it was told to"
        );
        let provider_refund = format!("SBXR{}", refund_id.simple());
        sqlx::query(
            "INSERT INTO sandbox_refunds (refund_id, payment_id, provider_refund, amount)
             VALUES ($1, $2, $3, $4) ON CONFLICT (refund_id) DO NOTHING",
        )
        .bind(refund_id)
        .bind(payment_id)
        .bind(&provider_refund)
        .bind(amount.get())
        .execute(&self.pool)
        .await?;
        Ok(Some(provider_refund))
    }

    fn verify(&self, headers: &Headers, body: &[u8]) -> Result<Notification, String> {
        let header = |name: &str| {
            headers
                .get(name)
                .map(str::to_owned)
                .ok_or_else(|| format!("missing {name}"))
        };
        let signature = header(SANDBOX_SIGNATURE)?;
        let timestamp: i64 = header(SANDBOX_TIMESTAMP)?
            .parse()
            .map_err(|_| "malformed timestamp".to_owned())?;
        if (Utc::now().timestamp() - timestamp).abs() > MAX_NOTIFICATION_AGE_SECONDS {
            return Err("stale timestamp".into());
        }
        let given = hex::decode(signature).map_err(|_| "malformed signature".to_owned())?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&given)
            .map_err(|_| "bad signature".to_owned())?;
        serde_json::from_slice(body).map_err(|error| format!("unreadable body: {error}"))
    }
}

#[async_trait::async_trait]
impl SandboxControl for SandboxProvider {
    async fn script(&self, payment_id: Uuid, behaviour: SandboxBehaviour) -> anyhow::Result<()> {
        self.scripts
            .lock()
            .expect("sandbox script lock")
            .insert(payment_id, behaviour);
        Ok(())
    }
}
