//! The bank-card acquirer adapter, shaped like UnionPay's online gateway (银联全渠道, version
//! 5.1.0).
//!
//! Requests are forms signed by the merchant (`signMethod` 01): the SHA-256 of the parameters
//! other than `signature`, sorted by name and joined as `k=v&…` with raw values, written as
//! lowercase hex, is signed SHA256withRSA and sent base64 in `signature`, with the signing
//! certificate's number in `certId`. Answers and asynchronous notifications are checked the
//! same way with UnionPay's public key. Amounts travel in fen (`txnAmt`), currency 156.
//!
//! - A card payment (`txnType` 01, `bizType` 000201): the customer's browser posts the signed
//!   form to `frontTransReq.do`; UnionPay notifies `backUrl` with `respCode` 00 and its own
//!   transaction number (`queryId`), which the platform keeps as the provider's transaction.
//! - A query (`queryTrans.do`, `txnType` 00) names the order and the time it was sent, which
//!   the adapter keeps in `unionpay_orders`.
//! - A refund (`backTransReq.do`, `txnType` 04) names the original `queryId`; UnionPay pays it
//!   asynchronously, so the first ask answers "under way" and a later one finds it paid by a
//!   query. Asking again for the same refund sends nothing new.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};
use domain::payment::{PaymentMethod, CURRENCY};
use domain::Fen;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::signing::{SigningKey, VerifyingKey};
use application::ports::{Checkout, Headers, Notification, PaymentProvider, StatementLine};

/// UnionPay's code for the yuan.
const CURRENCY_CODE: &str = "156";

/// The bank-card acquirer's settings, from the environment.
#[derive(Debug, Clone)]
pub struct UnionPaySettings {
    /// `ANJIA_UNIONPAY_MER_ID`: the merchant number.
    pub mer_id: String,
    /// `ANJIA_UNIONPAY_CERT_ID`: the serial of the merchant's signing certificate.
    pub cert_id: String,
    /// `ANJIA_UNIONPAY_PRIVATE_KEY`: the merchant's private key (PEM, base64, or a file).
    pub private_key: String,
    /// `ANJIA_UNIONPAY_PUBLIC_KEY`: UnionPay's signing public key (PEM, base64, or a file).
    pub unionpay_public_key: String,
    /// `ANJIA_UNIONPAY_GATEWAY`: the base of `frontTransReq.do`, `backTransReq.do` and
    /// `queryTrans.do`.
    pub gateway: String,
    /// Where the customer's browser returns after paying (`frontUrl`).
    pub front_url: String,
}

impl UnionPaySettings {
    pub const DEFAULT_GATEWAY: &'static str = "https://gateway.95516.com/gateway/api";
}

/// What UnionPay signs: the SHA-256, in lowercase hex, of the parameters other than
/// `signature`, sorted by name and joined as `k=v&…` with raw values.
pub fn digest_to_sign(params: &BTreeMap<String, String>) -> String {
    let joined = params
        .iter()
        .filter(|(key, _)| key.as_str() != "signature")
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    hex::encode(Sha256::digest(joined.as_bytes()))
}

/// Our order number at UnionPay: 32 hexadecimal characters (UnionPay takes 8 to 40 letters and
/// digits).
pub fn order_number(id: Uuid) -> String {
    id.simple().to_string()
}

/// A moment as UnionPay writes it: `YYYYMMDDhhmmss`, Beijing time.
fn txn_time(now: DateTime<Utc>) -> String {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    now.with_timezone(&beijing)
        .format("%Y%m%d%H%M%S")
        .to_string()
}

pub struct UnionPayProvider {
    settings: UnionPaySettings,
    key: SigningKey,
    unionpay_key: VerifyingKey,
    back_url: String,
    pool: PgPool,
    client: reqwest::Client,
}

impl UnionPayProvider {
    pub fn new(settings: UnionPaySettings, back_url: String, pool: PgPool) -> anyhow::Result<Self> {
        Ok(UnionPayProvider {
            key: SigningKey::parse(&settings.private_key).context("ANJIA_UNIONPAY_PRIVATE_KEY")?,
            unionpay_key: VerifyingKey::parse(&settings.unionpay_public_key)
                .context("ANJIA_UNIONPAY_PUBLIC_KEY")?,
            settings,
            back_url,
            pool,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .build()?,
        })
    }

    /// The common fields of a request, with `extra`, signed.
    fn signed(&self, extra: &[(&str, String)]) -> BTreeMap<String, String> {
        let mut params: BTreeMap<String, String> = [
            ("version", "5.1.0".to_owned()),
            ("encoding", "UTF-8".to_owned()),
            ("signMethod", "01".to_owned()),
            ("certId", self.settings.cert_id.clone()),
            ("merId", self.settings.mer_id.clone()),
            ("accessType", "0".to_owned()),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        let signature = self.key.sign(digest_to_sign(&params).as_bytes());
        params.insert("signature".to_owned(), signature);
        params
    }

    /// Checks a form signed by UnionPay.
    fn check(&self, params: &BTreeMap<String, String>) -> Result<(), String> {
        let signature = params.get("signature").ok_or("missing signature")?;
        if !self
            .unionpay_key
            .verify(digest_to_sign(params).as_bytes(), signature)
        {
            return Err("bad signature".into());
        }
        if params.get("merId") != Some(&self.settings.mer_id) {
            return Err("for another merchant".into());
        }
        Ok(())
    }

    /// Posts a signed request to `endpoint` and answers UnionPay's checked answer.
    async fn call(
        &self,
        endpoint: &str,
        params: &BTreeMap<String, String>,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let body = self
            .client
            .post(format!(
                "{}/{endpoint}",
                self.settings.gateway.trim_end_matches('/')
            ))
            .form(params)
            .send()
            .await
            .with_context(|| format!("calling UnionPay {endpoint}"))?
            .error_for_status()?
            .text()
            .await?;
        let answer: BTreeMap<String, String> = serde_urlencoded::from_str(&body)
            .with_context(|| format!("reading UnionPay's answer to {endpoint}"))?;
        self.check(&answer)
            .map_err(|why| anyhow::anyhow!("UnionPay's answer to {endpoint}: {why}"))?;
        Ok(answer)
    }

    /// Remembers when an order was sent, for later queries.
    async fn remember(
        &self,
        order_id: &str,
        payment_id: Uuid,
        kind: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        sqlx::query(
            "INSERT INTO unionpay_orders (order_id, payment_id, kind, txn_time) VALUES ($1, $2, $3, $4)
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(payment_id)
        .bind(kind)
        .bind(txn_time(now))
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT txn_time FROM unionpay_orders WHERE order_id = $1")
                .bind(order_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Asks UnionPay about one of our orders; `None` when it knows none by that number.
    async fn query_order(
        &self,
        order_id: &str,
    ) -> anyhow::Result<Option<BTreeMap<String, String>>> {
        let txn_time: Option<String> =
            sqlx::query_scalar("SELECT txn_time FROM unionpay_orders WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(txn_time) = txn_time else {
            return Ok(None);
        };
        let answer = self
            .call(
                "queryTrans.do",
                &self.signed(&[
                    ("txnType", "00".to_owned()),
                    ("txnSubType", "00".to_owned()),
                    ("bizType", "000000".to_owned()),
                    ("orderId", order_id.to_owned()),
                    ("txnTime", txn_time),
                ]),
            )
            .await?;
        match answer.get("respCode").map(String::as_str) {
            Some("00") => Ok(Some(answer)),
            // 34: no such transaction.
            Some("34") => Ok(None),
            other => anyhow::bail!("queryTrans answered {other:?}"),
        }
    }
}

#[async_trait::async_trait]
impl PaymentProvider for UnionPayProvider {
    fn name(&self) -> &'static str {
        "unionpay"
    }

    fn acknowledgement(&self) -> Option<&'static str> {
        Some("ok")
    }

    async fn create(
        &self,
        payment_id: Uuid,
        amount: Fen,
        _method: PaymentMethod,
    ) -> anyhow::Result<Checkout> {
        let order_id = order_number(payment_id);
        let txn_time = self
            .remember(&order_id, payment_id, "consume", Utc::now())
            .await?;
        let params = self.signed(&[
            ("txnType", "01".to_owned()),
            ("txnSubType", "01".to_owned()),
            ("bizType", "000201".to_owned()),
            ("channelType", "08".to_owned()),
            ("orderId", order_id.clone()),
            ("txnTime", txn_time),
            ("txnAmt", amount.get().to_string()),
            ("currencyCode", CURRENCY_CODE.to_owned()),
            ("frontUrl", self.settings.front_url.clone()),
            ("backUrl", self.back_url.clone()),
        ]);
        // The browser posts these fields to the front gateway; as a link, the same fields.
        let query = serde_urlencoded::to_string(&params)?;
        Ok(Checkout {
            provider: self.name().to_owned(),
            provider_transaction: order_id,
            pay_url: format!(
                "{}/frontTransReq.do?{query}",
                self.settings.gateway.trim_end_matches('/')
            ),
        })
    }

    fn verify(&self, _headers: &Headers, body: &[u8]) -> Result<Notification, String> {
        let params: BTreeMap<String, String> =
            serde_urlencoded::from_bytes(body).map_err(|_| "unreadable form".to_owned())?;
        self.check(&params)?;
        let field = |name: &str| {
            params
                .get(name)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| format!("missing {name}"))
        };
        if field("txnType")? != "01" {
            return Err("not a payment".into());
        }
        if field("currencyCode")? != CURRENCY_CODE {
            return Err("not in yuan".into());
        }
        let status = match field("respCode")?.as_str() {
            "00" | "A6" => "success",
            _ => "failed",
        };
        let order_id = field("orderId")?;
        Ok(Notification {
            notification_id: format!("{}-{}", field("queryId")?, field("traceNo")?),
            payment_id: Uuid::try_parse(order_id).map_err(|_| "malformed orderId")?,
            provider_transaction: field("queryId")?.clone(),
            amount: field("txnAmt")?
                .parse()
                .map_err(|_| "malformed txnAmt".to_owned())?,
            currency: CURRENCY.to_owned(),
            status: status.to_owned(),
            occurred_at: Utc::now(),
        })
    }

    async fn statement(
        &self,
        _day: chrono::NaiveDate,
    ) -> anyhow::Result<Option<Vec<StatementLine>>> {
        // UnionPay's settlement files come zipped through a separate file transfer; they are not
        // fetched yet, so reconciliation reports this provider as not compared.
        Ok(None)
    }

    async fn query(&self, payment_id: Uuid) -> anyhow::Result<Option<Notification>> {
        let Some(answer) = self.query_order(&order_number(payment_id)).await? else {
            return Ok(None);
        };
        let status = match answer.get("origRespCode").map(String::as_str) {
            Some("00" | "A6") => "success",
            // 03, 04, 05: still being processed.
            Some("03" | "04" | "05") | None => return Ok(None),
            Some(_) => "failed",
        };
        let (Some(query_id), Some(amount)) = (
            answer.get("queryId"),
            answer.get("txnAmt").and_then(|amount| amount.parse().ok()),
        ) else {
            anyhow::bail!("queryTrans answered without queryId or txnAmt");
        };
        Ok(Some(Notification {
            notification_id: format!("query-{}", Uuid::now_v7()),
            payment_id,
            provider_transaction: query_id.clone(),
            amount,
            currency: CURRENCY.to_owned(),
            status: status.to_owned(),
            occurred_at: Utc::now(),
        }))
    }

    async fn refund(
        &self,
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Fen,
        _original: Fen,
    ) -> anyhow::Result<Option<String>> {
        let order_id = order_number(refund_id);
        // Asked before: UnionPay pays refunds asynchronously, so find out whether it is paid.
        if let Some(answer) = self.query_order(&order_id).await? {
            return Ok(match answer.get("origRespCode").map(String::as_str) {
                Some("00" | "A6") => answer.get("queryId").cloned(),
                _ => None,
            });
        }
        let original: Option<String> = sqlx::query_scalar(
            "SELECT provider_transaction FROM read_payments WHERE payment_id = $1",
        )
        .bind(payment_id)
        .fetch_optional(&self.pool)
        .await?
        .flatten();
        let original = original.context("the payment's UnionPay queryId is not known yet")?;
        let txn_time = self
            .remember(&order_id, payment_id, "refund", Utc::now())
            .await?;
        let answer = self
            .call(
                "backTransReq.do",
                &self.signed(&[
                    ("txnType", "04".to_owned()),
                    ("txnSubType", "00".to_owned()),
                    ("bizType", "000201".to_owned()),
                    ("channelType", "07".to_owned()),
                    ("orderId", order_id),
                    ("origQryId", original),
                    ("txnTime", txn_time),
                    ("txnAmt", amount.get().to_string()),
                    ("backUrl", self.back_url.clone()),
                ]),
            )
            .await?;
        anyhow::ensure!(
            answer.get("respCode").map(String::as_str) == Some("00"),
            "backTransReq answered {:?}",
            answer.get("respCode")
        );
        // Accepted: paid when a later query says so.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_digest_sorts_the_fields_and_leaves_out_the_signature() {
        let params = BTreeMap::from([
            ("signature".to_owned(), "xyz".to_owned()),
            ("txnAmt".to_owned(), "15000".to_owned()),
            ("bizType".to_owned(), "000201".to_owned()),
        ]);
        assert_eq!(
            digest_to_sign(&params),
            hex::encode(Sha256::digest(b"bizType=000201&txnAmt=15000"))
        );
    }

    #[test]
    fn times_are_beijing_time_without_separators() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T17:30:05Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(txn_time(at), "20261202013005");
    }
}
