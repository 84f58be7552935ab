//! Stand-ins for Alipay's gateway and WeChat Pay's API v3, for the adapters' tests.
//!
//! They are written from the providers' documentation independently of the platform's
//! adapters: their own canonical strings, and the `rsa` crate's signing where the platform uses
//! `ring`. Each checks the platform's request signatures with the merchant's public key and
//! refuses what fails (the test then fails), answers signed with the provider's key, and sends
//! signed (for WeChat Pay also encrypted) notifications to the platform's callback, keeping
//! what it sent so a test can replay or tamper with it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// An RSA key pair made for one test process.
pub struct TestKey {
    private: rsa::RsaPrivateKey,
}

impl TestKey {
    fn generate() -> Self {
        TestKey {
            private: rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("an RSA key"),
        }
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_pem(&self) -> String {
        self.private
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PEM")
            .to_string()
    }

    /// The public key as bare base64 SubjectPublicKeyInfo, as the Alipay console shows it.
    pub fn public_base64(&self) -> String {
        B64.encode(
            self.private
                .to_public_key()
                .to_public_key_der()
                .expect("DER")
                .as_bytes(),
        )
    }

    pub fn public_pem(&self) -> String {
        self.private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM")
    }

    /// SHA256withRSA, base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(self.private.clone());
        B64.encode(key.sign(message).to_vec())
    }

    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(bytes) = B64.decode(signature) else {
            return false;
        };
        let Ok(signature) = rsa::pkcs1v15::Signature::try_from(bytes.as_slice()) else {
            return false;
        };
        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(self.private.to_public_key())
            .verify(message, &signature)
            .is_ok()
    }
}

/// The keys of one test process, made once.
pub struct TestKeys {
    pub alipay_app: TestKey,
    pub alipay: TestKey,
    pub wechat_merchant: TestKey,
    pub wechat_platform: TestKey,
    pub unionpay_merchant: TestKey,
    pub unionpay: TestKey,
    /// Nobody's: for forgeries.
    pub stranger: TestKey,
}

pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| TestKeys {
        alipay_app: TestKey::generate(),
        alipay: TestKey::generate(),
        wechat_merchant: TestKey::generate(),
        wechat_platform: TestKey::generate(),
        unionpay_merchant: TestKey::generate(),
        unionpay: TestKey::generate(),
        stranger: TestKey::generate(),
    })
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

/// What a stand-in got back from the platform for one notification.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub status: u16,
    pub body: String,
}

/// Posts a notification form to the platform, as the form-posting providers do.
async fn post_form(url: &str, form: &str) -> Delivery {
    let response = reqwest::Client::new()
        .post(url)
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(form.to_owned())
        .send()
        .await
        .expect("delivering");
    Delivery {
        status: response.status().as_u16(),
        body: response.text().await.unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Alipay

pub const ALIPAY_APP_ID: &str = "2021000000000001";

#[derive(Debug, Clone)]
struct AlipayTrade {
    total_amount: String,
    trade_no: String,
    paid: bool,
    notify_url: String,
}

#[derive(Default)]
struct AlipayBook {
    trades: HashMap<String, AlipayTrade>,
    /// out_request_no → (out_trade_no, refund_amount).
    refunds: BTreeMap<String, (String, String)>,
    /// Notification forms sent, and how the platform answered.
    sent: Vec<(String, Delivery)>,
}

#[derive(Clone)]
pub struct FakeAlipay {
    /// The gateway's URL (`…/gateway.do`).
    pub gateway: String,
    book: Arc<Mutex<AlipayBook>>,
    /// Off: customers pay but no notification is sent (only a query finds out).
    pub notify: Arc<AtomicBool>,
}

/// Alipay's canonical text: sorted, non-empty, raw values, without the named parameters.
pub fn alipay_content(params: &BTreeMap<String, String>, without: &[&str]) -> String {
    let mut pairs: Vec<String> = Vec::new();
    for (key, value) in params {
        if value.is_empty() || without.iter().any(|left_out| left_out == key) {
            continue;
        }
        pairs.push(format!("{key}={value}"));
    }
    pairs.join("&")
}

impl FakeAlipay {
    pub async fn start() -> FakeAlipay {
        let mut fake = FakeAlipay {
            gateway: String::new(),
            book: Arc::default(),
            notify: Arc::new(AtomicBool::new(true)),
        };
        let router = Router::new()
            .route("/gateway.do", get(alipay_cashier).post(alipay_api))
            .with_state(fake.clone());
        fake.gateway = format!("{}/gateway.do", serve(router).await);
        fake
    }

    /// The platform's settings for this gateway.
    pub fn settings(&self) -> adapters::payments::alipay::AlipaySettings {
        adapters::payments::alipay::AlipaySettings {
            app_id: ALIPAY_APP_ID.into(),
            private_key: keys().alipay_app.private_pem(),
            alipay_public_key: keys().alipay.public_base64(),
            gateway: self.gateway.clone(),
        }
    }

    /// A notification form for a trade, signed by `key` (Alipay's own, or a forger's).
    pub fn notification(&self, fields: &BTreeMap<String, String>, key: &TestKey) -> String {
        let mut params = fields.clone();
        params.insert("sign_type".into(), "RSA2".into());
        let sign = key.sign(alipay_content(&params, &["sign", "sign_type"]).as_bytes());
        params.insert("sign".into(), sign);
        serde_urlencoded::to_string(&params).expect("form")
    }

    /// The fields Alipay notifies for a paid trade.
    pub fn paid_fields(
        out_trade_no: &str,
        trade_no: &str,
        total_amount: &str,
    ) -> BTreeMap<String, String> {
        [
            (
                "notify_time",
                chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            ),
            ("notify_type", "trade_status_sync".into()),
            ("notify_id", Uuid::new_v4().simple().to_string()),
            ("app_id", ALIPAY_APP_ID.into()),
            ("charset", "utf-8".into()),
            ("version", "1.0".into()),
            ("trade_no", trade_no.into()),
            ("out_trade_no", out_trade_no.into()),
            ("total_amount", total_amount.into()),
            ("receipt_amount", total_amount.into()),
            ("trade_status", "TRADE_SUCCESS".into()),
            ("subject", "安家家政服务 / Anjia home service".into()),
            (
                "gmt_payment",
                chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    }

    /// Posts a notification form to the platform, as Alipay does.
    pub async fn deliver(&self, notify_url: &str, form: String) -> Delivery {
        let delivery = post_form(notify_url, &form).await;
        self.book
            .lock()
            .expect("book")
            .sent
            .push((form, delivery.clone()));
        delivery
    }

    /// Notification forms sent so far, with the platform's answers.
    pub fn sent(&self) -> Vec<(String, Delivery)> {
        self.book.lock().expect("book").sent.clone()
    }

    /// The trade Alipay knows for `out_trade_no`: (total_amount, trade_no, notify_url).
    pub fn trade(&self, out_trade_no: &str) -> Option<(String, String, String)> {
        self.book
            .lock()
            .expect("book")
            .trades
            .get(out_trade_no)
            .map(|trade| {
                (
                    trade.total_amount.clone(),
                    trade.trade_no.clone(),
                    trade.notify_url.clone(),
                )
            })
    }

    /// Refunds paid: out_request_no → (out_trade_no, refund_amount).
    pub fn refunds(&self) -> BTreeMap<String, (String, String)> {
        self.book.lock().expect("book").refunds.clone()
    }
}

/// Checks the app's signature over a request, as Alipay does.
fn alipay_check(params: &BTreeMap<String, String>) -> Result<(), String> {
    let sign = params.get("sign").ok_or("no sign")?;
    if params.get("sign_type").map(String::as_str) != Some("RSA2") {
        return Err("sign_type".into());
    }
    if params.get("app_id").map(String::as_str) != Some(ALIPAY_APP_ID) {
        return Err("app_id".into());
    }
    if !keys()
        .alipay_app
        .verifies(alipay_content(params, &["sign"]).as_bytes(), sign)
    {
        return Err("invalid-signature".into());
    }
    Ok(())
}

/// The mobile cashier: the customer arrives with the signed request and pays.
async fn alipay_cashier(
    State(fake): State<FakeAlipay>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(reason) = alipay_check(&params) {
        return (StatusCode::BAD_REQUEST, reason).into_response();
    }
    if params.get("method").map(String::as_str) != Some("alipay.trade.wap.pay") {
        return (StatusCode::BAD_REQUEST, "method").into_response();
    }
    let biz: Value =
        serde_json::from_str(params.get("biz_content").map(String::as_str).unwrap_or(""))
            .unwrap_or_default();
    let (Some(out_trade_no), Some(total_amount), Some(notify_url)) = (
        biz["out_trade_no"].as_str(),
        biz["total_amount"].as_str(),
        params.get("notify_url"),
    ) else {
        return (StatusCode::BAD_REQUEST, "biz_content").into_response();
    };
    let trade = AlipayTrade {
        total_amount: total_amount.to_owned(),
        trade_no: format!("2026{}", &Uuid::new_v4().simple().to_string()[..24]),
        paid: true,
        notify_url: notify_url.clone(),
    };
    fake.book
        .lock()
        .expect("book")
        .trades
        .insert(out_trade_no.to_owned(), trade.clone());
    if fake.notify.load(Ordering::SeqCst) {
        let form = fake.notification(
            &FakeAlipay::paid_fields(out_trade_no, &trade.trade_no, &trade.total_amount),
            &keys().alipay,
        );
        let fake = fake.clone();
        tokio::spawn(async move {
            fake.deliver(&trade.notify_url, form).await;
        });
    }
    (StatusCode::OK, "支付宝收银台 / cashier: paid").into_response()
}

/// The OpenAPI gateway: query and refund.
async fn alipay_api(State(fake): State<FakeAlipay>, body: String) -> Response {
    let params: BTreeMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    if let Err(reason) = alipay_check(&params) {
        return (StatusCode::BAD_REQUEST, reason).into_response();
    }
    let biz: Value =
        serde_json::from_str(params.get("biz_content").map(String::as_str).unwrap_or(""))
            .unwrap_or_default();
    let out_trade_no = biz["out_trade_no"].as_str().unwrap_or_default().to_owned();
    let method = params.get("method").cloned().unwrap_or_default();
    let mut book = fake.book.lock().expect("book");
    let trade = book
        .trades
        .get(&out_trade_no)
        .filter(|trade| trade.paid)
        .cloned();
    let answer = match (method.as_str(), trade) {
        ("alipay.trade.query", Some(trade)) => json!({
            "code": "10000", "msg": "Success", "out_trade_no": out_trade_no,
            "trade_no": trade.trade_no, "trade_status": "TRADE_SUCCESS",
            "total_amount": trade.total_amount,
        }),
        ("alipay.trade.refund", Some(trade)) => {
            let request_number = biz["out_request_no"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let fresh = !book.refunds.contains_key(&request_number);
            book.refunds.entry(request_number).or_insert((
                out_trade_no.clone(),
                biz["refund_amount"].as_str().unwrap_or_default().to_owned(),
            ));
            json!({
                "code": "10000", "msg": "Success", "out_trade_no": out_trade_no,
                "trade_no": trade.trade_no, "refund_fee": biz["refund_amount"],
                "fund_change": if fresh { "Y" } else { "N" },
            })
        }
        _ => {
            json!({"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"})
        }
    };
    // Spaces inside the object: the platform must check the text as written.
    let text = answer.to_string().replace("\",\"", "\", \"");
    let sign = keys().alipay.sign(text.as_bytes());
    let field = format!("{}_response", method.replace('.', "_"));
    (
        [("content-type", "text/html;charset=utf-8")],
        format!("{{\"{field}\":{text},\"sign\":\"{sign}\"}}"),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// WeChat Pay

pub const WECHAT_MCH_ID: &str = "1900000109";
pub const WECHAT_APP_ID: &str = "wxd678efh567hg6787";
pub const WECHAT_MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
pub const WECHAT_PLATFORM_SERIAL: &str = "PUB_KEY_ID_0114232134912410000000000000";
pub const WECHAT_API_V3_KEY: &str = "a7cde1ef3a4b5c6d7e8f9a0b1c2d3e4f";

#[derive(Debug, Clone)]
struct WechatTransaction {
    total: i64,
    transaction_id: String,
    paid: bool,
    notify_url: String,
}

#[derive(Default)]
struct WechatBook {
    transactions: HashMap<String, WechatTransaction>,
    /// out_refund_no → (refund_id, refund, total).
    refunds: BTreeMap<String, (String, i64, i64)>,
    /// Notifications sent (headers, body), and how the platform answered.
    sent: Vec<SentNotification>,
}

#[derive(Clone)]
pub struct FakeWechatPay {
    pub base_url: String,
    book: Arc<Mutex<WechatBook>>,
    pub notify: Arc<AtomicBool>,
}

/// A signed notification: its headers and body.
pub type SignedMessage = (Vec<(String, String)>, String);

/// A notification sent: its headers, its body and the platform's answer.
pub type SentNotification = (Vec<(String, String)>, String, Delivery);

impl FakeWechatPay {
    pub async fn start() -> FakeWechatPay {
        let mut fake = FakeWechatPay {
            base_url: String::new(),
            book: Arc::default(),
            notify: Arc::new(AtomicBool::new(true)),
        };
        let router = Router::new()
            .route("/v3/pay/transactions/native", post(wechat_native))
            .route(
                "/v3/pay/transactions/out-trade-no/{number}",
                get(wechat_query),
            )
            .route("/v3/refund/domestic/refunds", post(wechat_refund))
            .with_state(fake.clone());
        fake.base_url = serve(router).await;
        fake
    }

    pub fn settings(&self) -> adapters::payments::wechat_pay::WechatPaySettings {
        adapters::payments::wechat_pay::WechatPaySettings {
            merchant_id: WECHAT_MCH_ID.into(),
            app_id: WECHAT_APP_ID.into(),
            merchant_serial: WECHAT_MERCHANT_SERIAL.into(),
            private_key: keys().wechat_merchant.private_pem(),
            platform_key: keys().wechat_platform.public_pem(),
            platform_serial: WECHAT_PLATFORM_SERIAL.into(),
            api_v3_key: WECHAT_API_V3_KEY.into(),
            base_url: self.base_url.clone(),
        }
    }

    /// Headers signing `body` as WeChat Pay does.
    pub fn signed_headers(
        body: &str,
        key: &TestKey,
        serial: &str,
        timestamp: i64,
    ) -> Vec<(String, String)> {
        let nonce = Uuid::new_v4().simple().to_string();
        let signature = key.sign(format!("{timestamp}\n{nonce}\n{body}\n").as_bytes());
        vec![
            ("Wechatpay-Timestamp".into(), timestamp.to_string()),
            ("Wechatpay-Nonce".into(), nonce),
            ("Wechatpay-Signature".into(), signature),
            ("Wechatpay-Serial".into(), serial.into()),
        ]
    }

    /// A transaction's encrypted notification body.
    pub fn envelope(transaction: &Value, api_v3_key: &str) -> String {
        let nonce: String = Uuid::new_v4().simple().to_string()[..12].to_owned();
        let cipher = Aes256Gcm::new_from_slice(api_v3_key.as_bytes()).expect("32 bytes");
        let plain = transaction.to_string();
        let sealed = cipher
            .encrypt(
                aes_gcm::Nonce::from_slice(nonce.as_bytes()),
                Payload {
                    msg: plain.as_bytes(),
                    aad: b"transaction",
                },
            )
            .expect("sealing");
        json!({
            "id": Uuid::new_v4().to_string(),
            "create_time": chrono::Utc::now().to_rfc3339(),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": B64.encode(sealed),
                "associated_data": "transaction",
                "nonce": nonce,
            }
        })
        .to_string()
    }

    /// The transaction WeChat Pay describes for a paid `out_trade_no` of `total` fen.
    pub fn paid_transaction(out_trade_no: &str, transaction_id: &str, total: i64) -> Value {
        json!({
            "mchid": WECHAT_MCH_ID, "appid": WECHAT_APP_ID, "out_trade_no": out_trade_no,
            "transaction_id": transaction_id, "trade_type": "NATIVE", "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功", "bank_type": "OTHERS",
            "success_time": chrono::Utc::now().to_rfc3339(),
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
        })
    }

    /// A notification signed by WeChat Pay's key, fresh.
    pub fn notification(transaction: &Value) -> SignedMessage {
        let body = Self::envelope(transaction, WECHAT_API_V3_KEY);
        let headers = Self::signed_headers(
            &body,
            &keys().wechat_platform,
            WECHAT_PLATFORM_SERIAL,
            chrono::Utc::now().timestamp(),
        );
        (headers, body)
    }

    pub async fn deliver(&self, notify_url: &str, (headers, body): SignedMessage) -> Delivery {
        let mut request = reqwest::Client::new()
            .post(notify_url)
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.expect("delivering");
        let delivery = Delivery {
            status: response.status().as_u16(),
            body: response.text().await.unwrap_or_default(),
        };
        self.book
            .lock()
            .expect("book")
            .sent
            .push((headers, body, delivery.clone()));
        delivery
    }

    /// The customer scans the code and pays: WeChat Pay notifies (unless told not to).
    pub async fn customer_pays(&self, out_trade_no: &str) {
        let transaction = {
            let mut book = self.book.lock().expect("book");
            let transaction = book
                .transactions
                .get_mut(out_trade_no)
                .expect("a transaction the platform opened");
            transaction.paid = true;
            transaction.clone()
        };
        if self.notify.load(Ordering::SeqCst) {
            let message = Self::notification(&Self::paid_transaction(
                out_trade_no,
                &transaction.transaction_id,
                transaction.total,
            ));
            self.deliver(&transaction.notify_url, message).await;
        }
    }

    pub fn sent(&self) -> Vec<SentNotification> {
        self.book.lock().expect("book").sent.clone()
    }

    /// The merchant's numbers (`out_trade_no`) of the transactions opened so far.
    pub fn opened(&self) -> Vec<String> {
        self.book
            .lock()
            .expect("book")
            .transactions
            .keys()
            .cloned()
            .collect()
    }

    /// (transaction_id, total, notify_url) of an opened transaction.
    pub fn transaction(&self, out_trade_no: &str) -> Option<(String, i64, String)> {
        self.book
            .lock()
            .expect("book")
            .transactions
            .get(out_trade_no)
            .map(|t| (t.transaction_id.clone(), t.total, t.notify_url.clone()))
    }

    pub fn refunds(&self) -> BTreeMap<String, (String, i64, i64)> {
        self.book.lock().expect("book").refunds.clone()
    }
}

/// Checks the merchant's `Authorization` header, as WeChat Pay does.
fn wechat_check(
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &str,
) -> Result<(), String> {
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .ok_or("no Authorization")?;
    let fields = authorization
        .strip_prefix("WECHATPAY2-SHA256-RSA2048 ")
        .ok_or("scheme")?;
    let fields: HashMap<&str, &str> = fields
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.trim(), value.trim().trim_matches('"')))
        .collect();
    if fields.get("mchid") != Some(&WECHAT_MCH_ID) {
        return Err("mchid".into());
    }
    if fields.get("serial_no") != Some(&WECHAT_MERCHANT_SERIAL) {
        return Err("serial_no".into());
    }
    let timestamp: i64 = fields
        .get("timestamp")
        .ok_or("timestamp")?
        .parse()
        .map_err(|_| "timestamp")?;
    if (chrono::Utc::now().timestamp() - timestamp).abs() > 300 {
        return Err("stale".into());
    }
    let message = format!(
        "{method}\n{path_and_query}\n{timestamp}\n{}\n{body}\n",
        fields.get("nonce_str").ok_or("nonce_str")?
    );
    if !keys().wechat_merchant.verifies(
        message.as_bytes(),
        fields.get("signature").ok_or("signature")?,
    ) {
        return Err("SIGN_ERROR".into());
    }
    Ok(())
}

fn wechat_answer(status: StatusCode, body: Value) -> Response {
    let text = body.to_string();
    let headers = FakeWechatPay::signed_headers(
        &text,
        &keys().wechat_platform,
        WECHAT_PLATFORM_SERIAL,
        chrono::Utc::now().timestamp(),
    );
    let mut response = (status, [("content-type", "application/json")], text).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    response
}

fn wechat_refused(reason: String) -> Response {
    wechat_answer(
        StatusCode::UNAUTHORIZED,
        json!({"code": "SIGN_ERROR", "message": reason}),
    )
}

async fn wechat_native(
    State(fake): State<FakeWechatPay>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(reason) = wechat_check("POST", "/v3/pay/transactions/native", &headers, &body) {
        return wechat_refused(reason);
    }
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    if request["mchid"] != WECHAT_MCH_ID
        || request["appid"] != WECHAT_APP_ID
        || request["amount"]["currency"] != "CNY"
    {
        return wechat_answer(
            StatusCode::BAD_REQUEST,
            json!({"code": "PARAM_ERROR", "message": "参数错误"}),
        );
    }
    let out_trade_no = request["out_trade_no"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    fake.book.lock().expect("book").transactions.insert(
        out_trade_no.clone(),
        WechatTransaction {
            total: request["amount"]["total"].as_i64().unwrap_or_default(),
            transaction_id: format!("42000{}", &Uuid::new_v4().simple().to_string()[..23]),
            paid: false,
            notify_url: request["notify_url"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        },
    );
    wechat_answer(
        StatusCode::OK,
        json!({"code_url": format!("weixin://wxpay/bizpayurl?pr={}", &out_trade_no[..10])}),
    )
}

async fn wechat_query(
    State(fake): State<FakeWechatPay>,
    Path(number): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!(
        "/v3/pay/transactions/out-trade-no/{number}?mchid={}",
        query.get("mchid").cloned().unwrap_or_default()
    );
    if let Err(reason) = wechat_check("GET", &path, &headers, "") {
        return wechat_refused(reason);
    }
    let transaction = fake
        .book
        .lock()
        .expect("book")
        .transactions
        .get(&number)
        .cloned();
    match transaction {
        None => wechat_answer(
            StatusCode::NOT_FOUND,
            json!({"code": "ORDER_NOT_EXIST", "message": "订单不存在"}),
        ),
        Some(found) if found.paid => wechat_answer(
            StatusCode::OK,
            FakeWechatPay::paid_transaction(&number, &found.transaction_id, found.total),
        ),
        Some(_) => wechat_answer(
            StatusCode::OK,
            json!({"mchid": WECHAT_MCH_ID, "appid": WECHAT_APP_ID, "out_trade_no": number,
                   "trade_state": "NOTPAY", "trade_state_desc": "订单未支付"}),
        ),
    }
}

async fn wechat_refund(
    State(fake): State<FakeWechatPay>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(reason) = wechat_check("POST", "/v3/refund/domestic/refunds", &headers, &body) {
        return wechat_refused(reason);
    }
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    let out_trade_no = request["out_trade_no"].as_str().unwrap_or_default();
    let mut book = fake.book.lock().expect("book");
    let Some(paid) = book
        .transactions
        .get(out_trade_no)
        .filter(|t| t.paid)
        .cloned()
    else {
        return wechat_answer(
            StatusCode::NOT_FOUND,
            json!({"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}),
        );
    };
    let refund = request["amount"]["refund"].as_i64().unwrap_or_default();
    if request["amount"]["total"].as_i64() != Some(paid.total) || refund > paid.total {
        return wechat_answer(
            StatusCode::BAD_REQUEST,
            json!({"code": "PARAM_ERROR", "message": "金额不符"}),
        );
    }
    let out_refund_no = request["out_refund_no"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // As WeChat Pay does: a new refund is PROCESSING; asked again, it has succeeded.
    let status = if book.refunds.contains_key(&out_refund_no) {
        "SUCCESS"
    } else {
        "PROCESSING"
    };
    let (refund_id, _, _) = book
        .refunds
        .entry(out_refund_no.clone())
        .or_insert((
            format!("50300{}", &Uuid::new_v4().simple().to_string()[..24]),
            refund,
            paid.total,
        ))
        .clone();
    wechat_answer(
        StatusCode::OK,
        json!({"refund_id": refund_id, "out_refund_no": out_refund_no, "out_trade_no": out_trade_no,
               "transaction_id": paid.transaction_id, "channel": "ORIGINAL", "status": status,
               "amount": {"refund": refund, "total": paid.total, "currency": "CNY"}}),
    )
}

// ---------------------------------------------------------------------------------------------
// UnionPay (the bank-card acquirer's online gateway, 5.1.0)

pub const UNIONPAY_MER_ID: &str = "777290058110048";
pub const UNIONPAY_CERT_ID: &str = "69629715588";

/// UnionPay's signed text: the SHA-256 hex of the sorted `k=v&…` fields but `signature`.
pub fn unionpay_digest(params: &BTreeMap<String, String>) -> String {
    use sha2::Digest;
    let mut joined = String::new();
    for (key, value) in params {
        if key == "signature" {
            continue;
        }
        if !joined.is_empty() {
            joined.push('&');
        }
        joined.push_str(key);
        joined.push('=');
        joined.push_str(value);
    }
    hex::encode(Sha256::digest(joined.as_bytes()))
}

#[derive(Debug, Clone)]
struct UnionPayOrder {
    /// `consume` or `refund`.
    kind: &'static str,
    amount: String,
    query_id: String,
    back_url: String,
}

#[derive(Default)]
struct UnionPayBook {
    orders: HashMap<String, UnionPayOrder>,
    /// Notification forms sent, and how the platform answered.
    sent: Vec<(String, Delivery)>,
}

#[derive(Clone)]
pub struct FakeUnionPay {
    /// The gateway's base (`…/gateway/api`).
    pub gateway: String,
    book: Arc<Mutex<UnionPayBook>>,
}

impl FakeUnionPay {
    pub async fn start() -> FakeUnionPay {
        let mut fake = FakeUnionPay {
            gateway: String::new(),
            book: Arc::default(),
        };
        let router = Router::new()
            .route("/gateway/api/frontTransReq.do", get(unionpay_front))
            .route("/gateway/api/queryTrans.do", post(unionpay_query))
            .route("/gateway/api/backTransReq.do", post(unionpay_back))
            .with_state(fake.clone());
        fake.gateway = format!("{}/gateway/api", serve(router).await);
        fake
    }

    pub fn settings(&self) -> adapters::payments::unionpay::UnionPaySettings {
        adapters::payments::unionpay::UnionPaySettings {
            mer_id: UNIONPAY_MER_ID.into(),
            cert_id: UNIONPAY_CERT_ID.into(),
            private_key: keys().unionpay_merchant.private_pem(),
            unionpay_public_key: keys().unionpay.public_pem(),
            gateway: self.gateway.clone(),
            front_url: "https://anjia.test/app/".into(),
        }
    }

    /// A form signed by `key` (UnionPay's own, or a forger's).
    pub fn signed_form(fields: &BTreeMap<String, String>, key: &TestKey) -> String {
        let mut params = fields.clone();
        params.insert(
            "signature".into(),
            key.sign(unionpay_digest(&params).as_bytes()),
        );
        serde_urlencoded::to_string(&params).expect("form")
    }

    /// The fields UnionPay notifies for a paid order.
    pub fn paid_fields(order_id: &str, query_id: &str, amount: &str) -> BTreeMap<String, String> {
        [
            ("version", "5.1.0"),
            ("encoding", "UTF-8"),
            ("signMethod", "01"),
            ("merId", UNIONPAY_MER_ID),
            ("txnType", "01"),
            ("txnSubType", "01"),
            ("bizType", "000201"),
            ("accessType", "0"),
            ("currencyCode", "156"),
            ("respCode", "00"),
            ("respMsg", "成功[0000000]"),
            ("orderId", order_id),
            ("queryId", query_id),
            ("txnAmt", amount),
            ("traceNo", "123456"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// Posts a notification form to the platform, as UnionPay does.
    pub async fn deliver(&self, back_url: &str, form: String) -> Delivery {
        let delivery = post_form(back_url, &form).await;
        self.book
            .lock()
            .expect("book")
            .sent
            .push((form, delivery.clone()));
        delivery
    }

    pub fn sent(&self) -> Vec<(String, Delivery)> {
        self.book.lock().expect("book").sent.clone()
    }

    /// Refund orders: (order id, amount, the original's query id is checked when made).
    pub fn refunds(&self) -> Vec<(String, String)> {
        let book = self.book.lock().expect("book");
        let mut refunds: Vec<(String, String)> = book
            .orders
            .iter()
            .filter(|(_, order)| order.kind == "refund")
            .map(|(id, order)| (id.clone(), order.amount.clone()))
            .collect();
        refunds.sort();
        refunds
    }

    /// The back URL an order was opened with.
    pub fn back_url(&self, order_id: &str) -> Option<String> {
        let book = self.book.lock().expect("book");
        book.orders
            .get(order_id)
            .map(|order| order.back_url.clone())
    }
}

fn unionpay_check(params: &BTreeMap<String, String>) -> Result<(), String> {
    let signature = params.get("signature").ok_or("no signature")?;
    if params.get("merId").map(String::as_str) != Some(UNIONPAY_MER_ID)
        || params.get("certId").map(String::as_str) != Some(UNIONPAY_CERT_ID)
        || params.get("signMethod").map(String::as_str) != Some("01")
    {
        return Err("merchant".into());
    }
    if !keys()
        .unionpay_merchant
        .verifies(unionpay_digest(params).as_bytes(), signature)
    {
        return Err("invalid-signature".into());
    }
    Ok(())
}

fn unionpay_answer(fields: &[(&str, String)]) -> Response {
    let params: BTreeMap<String, String> = fields
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .chain([("merId".to_owned(), UNIONPAY_MER_ID.to_owned())])
        .collect();
    FakeUnionPay::signed_form(&params, &keys().unionpay).into_response()
}

/// The front gateway: the customer's browser arrives with the signed form and pays by card.
async fn unionpay_front(
    State(fake): State<FakeUnionPay>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(reason) = unionpay_check(&params) {
        return (StatusCode::BAD_REQUEST, reason).into_response();
    }
    let field = |name: &str| params.get(name).cloned().unwrap_or_default();
    if field("txnType") != "01" || field("currencyCode") != "156" {
        return (StatusCode::BAD_REQUEST, "txnType").into_response();
    }
    let order = UnionPayOrder {
        kind: "consume",
        amount: field("txnAmt"),
        query_id: format!("7{}", &Uuid::new_v4().simple().to_string()[..20]),
        back_url: field("backUrl"),
    };
    fake.book
        .lock()
        .expect("book")
        .orders
        .insert(field("orderId"), order.clone());
    let form = FakeUnionPay::signed_form(
        &FakeUnionPay::paid_fields(&field("orderId"), &order.query_id, &order.amount),
        &keys().unionpay,
    );
    let notifier = fake.clone();
    tokio::spawn(async move {
        notifier.deliver(&order.back_url, form).await;
    });
    (StatusCode::OK, "银联收银台 / card payment accepted").into_response()
}

async fn unionpay_query(State(fake): State<FakeUnionPay>, body: String) -> Response {
    let params: BTreeMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    if let Err(reason) = unionpay_check(&params) {
        return (StatusCode::BAD_REQUEST, reason).into_response();
    }
    let order_id = params.get("orderId").cloned().unwrap_or_default();
    let order = fake
        .book
        .lock()
        .expect("book")
        .orders
        .get(&order_id)
        .cloned();
    match order {
        Some(order) => unionpay_answer(&[
            ("respCode", "00".into()),
            ("origRespCode", "00".into()),
            ("orderId", order_id),
            ("queryId", order.query_id),
            ("txnAmt", order.amount),
        ]),
        None => unionpay_answer(&[("respCode", "34".into()), ("orderId", order_id)]),
    }
}

/// The back gateway: refunds, against the original payment's query id.
async fn unionpay_back(State(fake): State<FakeUnionPay>, body: String) -> Response {
    let params: BTreeMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    if let Err(reason) = unionpay_check(&params) {
        return (StatusCode::BAD_REQUEST, reason).into_response();
    }
    let field = |name: &str| params.get(name).cloned().unwrap_or_default();
    let mut book = fake.book.lock().expect("book");
    let original = book
        .orders
        .values()
        .any(|order| order.kind == "consume" && order.query_id == field("origQryId"));
    if field("txnType") != "04" || !original {
        return unionpay_answer(&[("respCode", "12".into())]);
    }
    book.orders
        .entry(field("orderId"))
        .or_insert(UnionPayOrder {
            kind: "refund",
            amount: field("txnAmt"),
            query_id: format!("8{}", &Uuid::new_v4().simple().to_string()[..20]),
            back_url: field("backUrl"),
        });
    unionpay_answer(&[("respCode", "00".into()), ("orderId", field("orderId"))])
}
