//! Alipay's stand-in: the mobile cashier, the OpenAPI gateway's query and refund, and its signed
//! notifications.

use super::*;

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
