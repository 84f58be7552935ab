//! UnionPay's stand-in (the bank-card acquirer's online gateway, 5.1.0): the front-end form, query,
//! refund and notifications.

use super::*;

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
