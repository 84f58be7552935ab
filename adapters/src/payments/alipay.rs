//! The Alipay adapter (开放平台 OpenAPI, RSA2).
//!
//! Requests carry the common parameters (`app_id`, `method`, `charset`, `sign_type`,
//! `timestamp`, `version`, `notify_url`, `biz_content`) and a `sign`: SHA256withRSA, by the
//! app's private key, over every non-empty parameter except `sign`, sorted by name and joined as
//! `k=v&…` with raw (not URL-encoded) values. An asynchronous notification is checked the same
//! way with Alipay's public key, leaving out `sign` and `sign_type`; a synchronous answer is
//! checked over the exact text of its `…_response` object. Amounts travel in yuan with two
//! decimals and are turned into fen exactly, never through floating point.
//!
//! A customer pays on Alipay's mobile cashier (`alipay.trade.wap.pay`): the checkout URL is the
//! gateway with the signed request, and Alipay notifies `notify_url` when the customer has paid.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};
use domain::payment::{PaymentMethod, CURRENCY};
use domain::Fen;
use serde_json::{json, Value};
use uuid::Uuid;

use super::signing::{SigningKey, VerifyingKey};
use application::ports::{Checkout, Headers, Notification, PaymentProvider, StatementLine};

/// Alipay settings, from the environment.
#[derive(Debug, Clone)]
pub struct AlipaySettings {
    /// `ANJIA_ALIPAY_APP_ID`.
    pub app_id: String,
    /// `ANJIA_ALIPAY_PRIVATE_KEY`: the app's private key (PEM, base64, or a file holding it).
    pub private_key: String,
    /// `ANJIA_ALIPAY_PUBLIC_KEY`: Alipay's public key (PEM, base64, or a file holding it).
    pub alipay_public_key: String,
    /// `ANJIA_ALIPAY_GATEWAY`.
    pub gateway: String,
}

impl AlipaySettings {
    pub const DEFAULT_GATEWAY: &'static str = "https://openapi.alipay.com/gateway.do";
}

/// Fen as Alipay writes money: yuan with exactly two decimals.
pub fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Alipay's yuan as fen, exactly: at most two decimals, no sign, no exponent.
pub fn fen_of_yuan(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let cents: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(cents)
}

/// The text Alipay signs: non-empty parameters sorted by name, minus the ones left out.
pub fn content_to_sign(params: &BTreeMap<String, String>, leave_out: &[&str]) -> String {
    params
        .iter()
        .filter(|(key, value)| !value.is_empty() && !leave_out.contains(&key.as_str()))
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Our payment's number at Alipay (`out_trade_no`).
pub fn trade_number(payment_id: Uuid) -> String {
    payment_id.simple().to_string()
}

fn payment_of(trade_number: &str) -> Option<Uuid> {
    Uuid::try_parse(trade_number).ok()
}

pub struct AlipayProvider {
    settings: AlipaySettings,
    key: SigningKey,
    alipay_key: VerifyingKey,
    notify_url: String,
    client: reqwest::Client,
}

impl AlipayProvider {
    pub fn new(settings: AlipaySettings, notify_url: String) -> anyhow::Result<Self> {
        Ok(AlipayProvider {
            key: SigningKey::parse(&settings.private_key).context("ANJIA_ALIPAY_PRIVATE_KEY")?,
            alipay_key: VerifyingKey::parse(&settings.alipay_public_key)
                .context("ANJIA_ALIPAY_PUBLIC_KEY")?,
            settings,
            notify_url,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .build()?,
        })
    }

    /// The common parameters and `biz_content` of one call, signed.
    pub fn signed_request(
        &self,
        method: &str,
        biz_content: &Value,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, String> {
        let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
        let mut params = BTreeMap::from([
            ("app_id".to_owned(), self.settings.app_id.clone()),
            ("method".to_owned(), method.to_owned()),
            ("format".to_owned(), "JSON".to_owned()),
            ("charset".to_owned(), "utf-8".to_owned()),
            ("sign_type".to_owned(), "RSA2".to_owned()),
            (
                "timestamp".to_owned(),
                now.with_timezone(&beijing)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
            ),
            ("version".to_owned(), "1.0".to_owned()),
            ("notify_url".to_owned(), self.notify_url.clone()),
            ("biz_content".to_owned(), biz_content.to_string()),
        ]);
        let sign = self
            .key
            .sign(content_to_sign(&params, &["sign"]).as_bytes());
        params.insert("sign".to_owned(), sign);
        params
    }

    /// Calls the gateway and returns the checked `…_response` object.
    async fn call(&self, method: &str, biz_content: &Value) -> anyhow::Result<Value> {
        let params = self.signed_request(method, biz_content, Utc::now());
        let body = self
            .client
            .post(&self.settings.gateway)
            .form(&params)
            .send()
            .await
            .with_context(|| format!("calling Alipay {method}"))?
            .error_for_status()?
            .bytes()
            .await?;
        let field = format!("{}_response", method.replace('.', "_"));
        let (raw, sign) = response_parts(&body, &field)
            .with_context(|| format!("Alipay's answer to {method} has no {field}"))?;
        anyhow::ensure!(
            self.alipay_key.verify(raw.as_bytes(), &sign),
            "Alipay's answer to {method} failed its signature check"
        );
        Ok(serde_json::from_str(raw)?)
    }

    fn notification_from(&self, response: &Value, notification_id: String) -> Option<Notification> {
        let text = |name: &str| response.get(name).and_then(Value::as_str);
        let status = match text("trade_status")? {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => "success",
            "TRADE_CLOSED" => "failed",
            _ => return None,
        };
        Some(Notification {
            notification_id,
            payment_id: payment_of(text("out_trade_no")?)?,
            provider_transaction: text("trade_no")?.to_owned(),
            amount: fen_of_yuan(text("total_amount")?)?,
            currency: CURRENCY.to_owned(),
            status: status.to_owned(),
            occurred_at: Utc::now(),
        })
    }
}

/// The exact text of `field` in a gateway answer, and the answer's `sign`.
pub fn response_parts<'a>(body: &'a [u8], field: &str) -> Option<(&'a str, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let parsed: Value = serde_json::from_str(text).ok()?;
    let sign = parsed.get("sign")?.as_str()?.to_owned();
    let key = format!("\"{field}\"");
    let after_key = text.find(&key)? + key.len();
    let colon = after_key + text[after_key..].find(':')? + 1;
    let start = colon + (text[colon..].len() - text[colon..].trim_start().len());
    let mut values = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
    values.next()?.ok()?;
    Some((&text[start..start + values.byte_offset()], sign))
}

#[async_trait::async_trait]
impl PaymentProvider for AlipayProvider {
    fn name(&self) -> &'static str {
        "alipay"
    }

    fn acknowledgement(&self) -> Option<&'static str> {
        Some("success")
    }

    async fn create(
        &self,
        payment_id: Uuid,
        amount: Fen,
        _method: PaymentMethod,
    ) -> anyhow::Result<Checkout> {
        let biz = json!({
            "out_trade_no": trade_number(payment_id),
            "total_amount": yuan(amount.get()),
            "subject": "安家家政服务 / Anjia home service",
            "product_code": "QUICK_WAP_WAY",
            "timeout_express": "15m",
        });
        let params = self.signed_request("alipay.trade.wap.pay", &biz, Utc::now());
        let query = serde_urlencoded::to_string(&params)?;
        Ok(Checkout {
            provider: self.name().to_owned(),
            provider_transaction: trade_number(payment_id),
            pay_url: format!("{}?{query}", self.settings.gateway),
        })
    }

    fn verify(&self, _headers: &Headers, body: &[u8]) -> Result<Notification, String> {
        let params: BTreeMap<String, String> =
            serde_urlencoded::from_bytes(body).map_err(|_| "unreadable form".to_owned())?;
        let sign = params.get("sign").ok_or("missing sign")?;
        if params.get("sign_type").map(String::as_str) != Some("RSA2") {
            return Err("sign_type is not RSA2".into());
        }
        let signed = content_to_sign(&params, &["sign", "sign_type"]);
        if !self.alipay_key.verify(signed.as_bytes(), sign) {
            return Err("bad signature".into());
        }
        if params.get("app_id") != Some(&self.settings.app_id) {
            return Err("notification for another app".into());
        }
        let field = |name: &str| {
            params
                .get(name)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| format!("missing {name}"))
        };
        let status = match field("trade_status")?.as_str() {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => "success",
            "TRADE_CLOSED" => "failed",
            "WAIT_BUYER_PAY" => "pending",
            other => return Err(format!("unknown trade_status {other}")),
        };
        Ok(Notification {
            notification_id: field("notify_id")?.clone(),
            payment_id: payment_of(field("out_trade_no")?).ok_or("malformed out_trade_no")?,
            provider_transaction: field("trade_no")?.clone(),
            amount: fen_of_yuan(field("total_amount")?).ok_or("malformed total_amount")?,
            currency: CURRENCY.to_owned(),
            status: status.to_owned(),
            occurred_at: Utc::now(),
        })
    }

    async fn statement(
        &self,
        _day: chrono::NaiveDate,
    ) -> anyhow::Result<Option<Vec<StatementLine>>> {
        // Alipay's bills come as zipped GBK CSV files through a download link; they are not
        // fetched yet, so reconciliation reports this provider as not compared.
        Ok(None)
    }

    async fn query(&self, payment_id: Uuid) -> anyhow::Result<Option<Notification>> {
        let response = self
            .call(
                "alipay.trade.query",
                &json!({ "out_trade_no": trade_number(payment_id) }),
            )
            .await?;
        match response.get("code").and_then(Value::as_str) {
            Some("10000") => {}
            // Not paid yet: Alipay only opens the trade when the customer scans or logs in.
            Some("40004") => return Ok(None),
            other => anyhow::bail!("alipay.trade.query answered {other:?}: {response}"),
        }
        Ok(self.notification_from(&response, format!("query-{}", Uuid::now_v7())))
    }

    async fn refund(
        &self,
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Fen,
        _original: Fen,
    ) -> anyhow::Result<Option<String>> {
        // `out_request_no` makes a repeated request for the same refund pay nothing more.
        let request_number = refund_id.simple().to_string();
        let response = self
            .call(
                "alipay.trade.refund",
                &json!({
                    "out_trade_no": trade_number(payment_id),
                    "refund_amount": yuan(amount.get()),
                    "out_request_no": request_number,
                    "refund_reason": "安家退款 / Anjia refund",
                }),
            )
            .await?;
        anyhow::ensure!(
            response.get("code").and_then(Value::as_str) == Some("10000"),
            "alipay.trade.refund answered {response}"
        );
        // Alipay answers a refund synchronously: code 10000 means it is paid.
        Ok(Some(request_number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_and_fen_convert_exactly() {
        for fen in [0, 1, 9, 10, 99, 100, 12_345, 100_000_007] {
            assert_eq!(fen_of_yuan(&yuan(fen)), Some(fen));
        }
        assert_eq!(fen_of_yuan("88"), Some(8_800));
        assert_eq!(fen_of_yuan("88.5"), Some(8_850));
        for bad in ["", ".5", "1.234", "-1.00", "1e3", "1,00", " 1.00", "1.0a"] {
            assert_eq!(fen_of_yuan(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_signed_text_sorts_and_leaves_out_sign_and_empty_values() {
        let params = BTreeMap::from([
            ("sign".to_owned(), "xyz".to_owned()),
            ("sign_type".to_owned(), "RSA2".to_owned()),
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1 & 中".to_owned()),
            ("c".to_owned(), String::new()),
        ]);
        assert_eq!(
            content_to_sign(&params, &["sign"]),
            "a=1 & 中&b=2&sign_type=RSA2"
        );
        assert_eq!(
            content_to_sign(&params, &["sign", "sign_type"]),
            "a=1 & 中&b=2"
        );
    }

    #[test]
    fn a_response_object_is_taken_as_written() {
        let body = br#"{"alipay_trade_query_response": {"code":"10000","msg":"Success" , "total_amount":"88.00"},"sign":"c2ln"}"#;
        let (raw, sign) = response_parts(body, "alipay_trade_query_response").unwrap();
        assert_eq!(
            raw,
            r#"{"code":"10000","msg":"Success" , "total_amount":"88.00"}"#
        );
        assert_eq!(sign, "c2ln");
        assert!(response_parts(b"{}", "alipay_trade_query_response").is_none());
    }
}
