//! WeChat Pay's stand-in (API v3): Native payments, query and refund, and signed, encrypted
//! notifications.

use super::*;

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
