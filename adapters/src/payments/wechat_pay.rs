//! The WeChat Pay adapter (API v3).
//!
//! Every request carries `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
//! signature=…,timestamp=…,serial_no=…`, the signature being SHA256withRSA by the merchant's key
//! over `METHOD\nPATH?QUERY\ntimestamp\nnonce\nbody\n`. Every answer and notification is signed
//! by WeChat Pay the same way over `timestamp\nnonce\nbody\n` (headers `Wechatpay-Timestamp`,
//! `-Nonce`, `-Signature`, `-Serial`) and is refused unless the signature checks with the
//! platform key of that serial and the timestamp is within five minutes. A notification's
//! `resource` is AES-256-GCM encrypted under the merchant's APIv3 key, with the resource's nonce
//! and associated data. Amounts are integer fen, as in the platform.
//!
//! A customer pays by the Native flow: the checkout URL is the `weixin://` code URL the app shows
//! or opens.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use anyhow::Context;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::payment::{PaymentMethod, CURRENCY};
use domain::Fen;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::signing::{SigningKey, VerifyingKey};
use application::ports::{Checkout, Headers, Notification, PaymentProvider, StatementLine};

/// WeChat Pay settings, from the environment.
#[derive(Debug, Clone)]
pub struct WechatPaySettings {
    /// `ANJIA_WECHATPAY_MCH_ID`: the merchant number.
    pub merchant_id: String,
    /// `ANJIA_WECHATPAY_APP_ID`: the app the payments are for.
    pub app_id: String,
    /// `ANJIA_WECHATPAY_SERIAL`: the serial number of the merchant's certificate.
    pub merchant_serial: String,
    /// `ANJIA_WECHATPAY_PRIVATE_KEY`: the merchant's private key (PEM, or a file holding it).
    pub private_key: String,
    /// `ANJIA_WECHATPAY_PLATFORM_KEY`: WeChat Pay's public key (PEM, or a file holding it).
    pub platform_key: String,
    /// `ANJIA_WECHATPAY_PLATFORM_SERIAL`: which key that is (the `Wechatpay-Serial` it signs with).
    pub platform_serial: String,
    /// `ANJIA_WECHATPAY_API_V3_KEY`: the 32-character APIv3 key.
    pub api_v3_key: String,
    /// `ANJIA_WECHATPAY_BASE_URL`.
    pub base_url: String,
}

impl WechatPaySettings {
    pub const DEFAULT_BASE_URL: &'static str = "https://api.mch.weixin.qq.com";
}

pub const TIMESTAMP: &str = "wechatpay-timestamp";
pub const NONCE: &str = "wechatpay-nonce";
pub const SIGNATURE: &str = "wechatpay-signature";
pub const SERIAL: &str = "wechatpay-serial";

/// Answers and notifications older (or newer) than this are refused as replays.
const MAX_AGE_SECONDS: i64 = 300;

/// The text a request's signature covers.
pub fn request_message(
    method: &str,
    path: &str,
    timestamp: i64,
    nonce: &str,
    body: &str,
) -> String {
    format!("{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n")
}

/// The text an answer's or notification's signature covers.
pub fn answer_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// A notification's encrypted part.
#[derive(Debug, Deserialize)]
struct Resource {
    algorithm: String,
    ciphertext: String,
    #[serde(default)]
    associated_data: String,
    nonce: String,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    id: String,
    event_type: String,
    resource: Resource,
}

/// A transaction as WeChat Pay describes it (in a notification's resource or a query answer).
#[derive(Debug, Deserialize)]
struct Transaction {
    mchid: String,
    appid: String,
    out_trade_no: String,
    #[serde(default)]
    transaction_id: Option<String>,
    trade_state: String,
    #[serde(default)]
    amount: Option<TransactionAmount>,
    #[serde(default)]
    success_time: Option<DateTime<chrono::FixedOffset>>,
}

#[derive(Debug, Deserialize)]
struct TransactionAmount {
    total: i64,
    currency: String,
}

pub struct WechatPayProvider {
    settings: WechatPaySettings,
    key: SigningKey,
    platform_key: VerifyingKey,
    cipher: Aes256Gcm,
    notify_url: String,
    client: reqwest::Client,
}

impl WechatPayProvider {
    pub fn new(settings: WechatPaySettings, notify_url: String) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.api_v3_key.len() == 32,
            "ANJIA_WECHATPAY_API_V3_KEY must be 32 characters"
        );
        Ok(WechatPayProvider {
            key: SigningKey::parse(&settings.private_key).context("ANJIA_WECHATPAY_PRIVATE_KEY")?,
            platform_key: VerifyingKey::parse(&settings.platform_key)
                .context("ANJIA_WECHATPAY_PLATFORM_KEY")?,
            cipher: Aes256Gcm::new_from_slice(settings.api_v3_key.as_bytes())
                .expect("a 32-byte key"),
            settings,
            notify_url,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .build()?,
        })
    }

    /// The `Authorization` header for one request.
    pub fn authorization(&self, method: &str, path: &str, body: &str) -> String {
        let timestamp = Utc::now().timestamp();
        let nonce = Uuid::new_v4().simple().to_string().to_uppercase();
        let signature = self
            .key
            .sign(request_message(method, path, timestamp, &nonce, body).as_bytes());
        format!(
            "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
            self.settings.merchant_id, self.settings.merchant_serial
        )
    }

    /// Checks WeChat Pay's signature headers over `body`.
    fn check_signed(&self, headers: &Headers, body: &[u8]) -> Result<(), String> {
        let header = |name: &str| headers.get(name).ok_or_else(|| format!("missing {name}"));
        if header(SERIAL)? != self.settings.platform_serial {
            return Err("signed with an unknown platform key".into());
        }
        let timestamp = header(TIMESTAMP)?;
        let seconds: i64 = timestamp
            .parse()
            .map_err(|_| "malformed timestamp".to_owned())?;
        if (Utc::now().timestamp() - seconds).abs() > MAX_AGE_SECONDS {
            return Err("stale timestamp".into());
        }
        let message = answer_message(timestamp, header(NONCE)?, body);
        if !self.platform_key.verify(&message, header(SIGNATURE)?) {
            return Err("bad signature".into());
        }
        Ok(())
    }

    /// Sends one signed request and returns the checked answer (`None` for 404).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Option<Value>> {
        let text = body.map(Value::to_string).unwrap_or_default();
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.settings.base_url))
            .header(
                reqwest::header::AUTHORIZATION,
                self.authorization(method.as_str(), path, &text),
            )
            .header(reqwest::header::ACCEPT, "application/json");
        if body.is_some() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(text);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling WeChat Pay {method} {path}"))?;
        let status = response.status();
        let headers: Headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let answer = response.bytes().await?;
        if let Err(reason) = self.check_signed(&headers, &answer) {
            anyhow::bail!("WeChat Pay's answer to {path} was refused: {reason}");
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        anyhow::ensure!(
            status.is_success(),
            "WeChat Pay answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        if answer.is_empty() {
            return Ok(Some(Value::Null));
        }
        Ok(Some(serde_json::from_slice(&answer)?))
    }

    /// Opens a notification's resource.
    fn decrypt(&self, resource: &Resource) -> Result<Vec<u8>, String> {
        if resource.algorithm != "AEAD_AES_256_GCM" {
            return Err(format!("unknown algorithm {}", resource.algorithm));
        }
        if resource.nonce.len() != 12 {
            return Err("malformed nonce".into());
        }
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(resource.ciphertext.as_bytes())
            .map_err(|_| "malformed ciphertext".to_owned())?;
        self.cipher
            .decrypt(
                aes_gcm::Nonce::from_slice(resource.nonce.as_bytes()),
                Payload {
                    msg: &ciphertext,
                    aad: resource.associated_data.as_bytes(),
                },
            )
            .map_err(|_| "the resource does not decrypt under our APIv3 key".to_owned())
    }

    fn notification_of(
        &self,
        transaction: Transaction,
        notification_id: String,
    ) -> Result<Option<Notification>, String> {
        if transaction.mchid != self.settings.merchant_id
            || transaction.appid != self.settings.app_id
        {
            return Err("a transaction of another merchant or app".into());
        }
        let status = match transaction.trade_state.as_str() {
            "SUCCESS" => "success",
            "CLOSED" | "PAYERROR" | "REVOKED" => "failed",
            // NOTPAY, USERPAYING: nothing to do yet.
            _ => return Ok(None),
        };
        let payment_id = Uuid::try_parse(&transaction.out_trade_no)
            .map_err(|_| "malformed out_trade_no".to_owned())?;
        let (amount, currency) = match transaction.amount {
            Some(amount) => (amount.total, amount.currency),
            None if status == "failed" => (0, CURRENCY.to_owned()),
            None => return Err("a successful transaction without its amount".into()),
        };
        Ok(Some(Notification {
            notification_id,
            payment_id,
            provider_transaction: transaction.transaction_id.unwrap_or_default(),
            amount,
            currency,
            status: status.to_owned(),
            occurred_at: transaction
                .success_time
                .map(|at| at.with_timezone(&Utc))
                .unwrap_or_else(Utc::now),
        }))
    }
}

#[async_trait::async_trait]
impl PaymentProvider for WechatPayProvider {
    fn name(&self) -> &'static str {
        "wechat_pay"
    }

    async fn create(
        &self,
        payment_id: Uuid,
        amount: Fen,
        _method: PaymentMethod,
    ) -> anyhow::Result<Checkout> {
        let out_trade_no = payment_id.simple().to_string();
        let body = json!({
            "appid": self.settings.app_id,
            "mchid": self.settings.merchant_id,
            "description": "安家家政服务 / Anjia home service",
            "out_trade_no": out_trade_no,
            "notify_url": self.notify_url,
            "amount": { "total": amount.get(), "currency": CURRENCY },
        });
        let answer = self
            .call(
                reqwest::Method::POST,
                "/v3/pay/transactions/native",
                Some(&body),
            )
            .await?
            .context("WeChat Pay answered 404 to a new transaction")?;
        let code_url = answer
            .get("code_url")
            .and_then(Value::as_str)
            .context("WeChat Pay's answer has no code_url")?;
        Ok(Checkout {
            provider: self.name().to_owned(),
            provider_transaction: out_trade_no,
            pay_url: code_url.to_owned(),
        })
    }

    fn verify(&self, headers: &Headers, body: &[u8]) -> Result<Notification, String> {
        self.check_signed(headers, body)?;
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|error| format!("unreadable body: {error}"))?;
        let plain = self.decrypt(&envelope.resource)?;
        let transaction: Transaction = serde_json::from_slice(&plain)
            .map_err(|error| format!("unreadable resource: {error}"))?;
        if !envelope.event_type.starts_with("TRANSACTION.") {
            return Err(format!("unexpected event {}", envelope.event_type));
        }
        match self.notification_of(transaction, envelope.id)? {
            Some(notification) => Ok(notification),
            None => Err("a notification for an unpaid transaction".into()),
        }
    }

    async fn statement(
        &self,
        _day: chrono::NaiveDate,
    ) -> anyhow::Result<Option<Vec<StatementLine>>> {
        // The trade bill (`/v3/bill/tradebill`) is a download of its own; not fetched yet.
        Ok(None)
    }

    async fn query(&self, payment_id: Uuid) -> anyhow::Result<Option<Notification>> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            payment_id.simple(),
            self.settings.merchant_id
        );
        let Some(answer) = self.call(reqwest::Method::GET, &path, None).await? else {
            return Ok(None);
        };
        let transaction: Transaction = serde_json::from_value(answer)?;
        self.notification_of(transaction, format!("query-{}", Uuid::now_v7()))
            .map_err(|reason| anyhow::anyhow!(reason))
    }

    async fn refund(
        &self,
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Fen,
        original: Fen,
    ) -> anyhow::Result<Option<String>> {
        // `out_refund_no` makes a repeated request for the same refund pay nothing more.
        let body = json!({
            "out_trade_no": payment_id.simple().to_string(),
            "out_refund_no": refund_id.simple().to_string(),
            "reason": "安家退款 / Anjia refund",
            "amount": { "refund": amount.get(), "total": original.get(), "currency": CURRENCY },
        });
        let answer = self
            .call(
                reqwest::Method::POST,
                "/v3/refund/domestic/refunds",
                Some(&body),
            )
            .await?
            .context("WeChat Pay answered 404 to a refund")?;
        // Asking again with the same out_refund_no answers the refund's current status, so the
        // money job's retries double as status queries.
        match answer
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "SUCCESS" => answer
                .get("refund_id")
                .and_then(Value::as_str)
                .map(|id| Some(id.to_owned()))
                .context("WeChat Pay's refund answer has no refund_id"),
            "PROCESSING" => Ok(None),
            _ => anyhow::bail!("WeChat Pay did not pay the refund: {answer}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_texts_end_every_line_with_a_newline() {
        assert_eq!(
            request_message("GET", "/v3/certificates", 1554208460, "593BEC0C", ""),
            "GET\n/v3/certificates\n1554208460\n593BEC0C\n\n"
        );
        assert_eq!(
            answer_message("1554209980", "c5ac7061", b"{}"),
            b"1554209980\nc5ac7061\n{}\n"
        );
    }
}
