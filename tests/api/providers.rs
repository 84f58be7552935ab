//! The Alipay and WeChat Pay adapters against stand-ins of their servers, with keys the test
//! generates: signed requests, signed (and for WeChat Pay encrypted) notifications, forged,
//! tampered, stale and replayed notifications refused or ignored, the query job and refunds.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::providers::{
    delivered, keys, FakeAlipay, FakeUnionPay, FakeWechatPay, WECHAT_API_V3_KEY,
    WECHAT_PLATFORM_SERIAL,
};
use tests::{TestApp, User};
use uuid::Uuid;

async fn intent(app: &TestApp, customer: &User, order_id: Uuid, method: &str) -> Value {
    let response = app
        .post(
            &format!("/api/v1/orders/{order_id}/payment-intents"),
            Some(&customer.token),
            &json!({ "method": method }),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("intent");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn id_of(value: &Value) -> Uuid {
    value.as_str().expect("id").parse().expect("uuid")
}

async fn captures(app: &TestApp, payment_id: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'PaymentCaptured'",
    )
    .bind(payment_id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("count")
}

async fn outcomes(app: &TestApp, provider: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "SELECT outcome, reason FROM payment_notifications WHERE provider = $1 ORDER BY received_at, log_id",
    )
    .bind(provider)
    .fetch_all(&app.pool)
    .await
    .expect("log")
}

async fn events_of(app: &TestApp, ids: &[Uuid]) -> i64 {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = ANY($1)")
        .bind(&ids)
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

async fn cancel(app: &TestApp, customer: &User, order_id: Uuid) {
    let response = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&customer.token),
            &json!({"reason": "行程有变 / plans changed"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn payment(app: &TestApp, customer: &User, payment_id: Uuid) -> Value {
    app.get(
        &format!("/api/v1/payments/{payment_id}"),
        Some(&customer.token),
    )
    .await
    .json()
    .await
    .expect("payment")
}

#[tokio::test]
async fn alipay_requests_are_signed_notifications_verified_and_refunds_paid_through_alipay() {
    let _ = keys();
    let alipay = FakeAlipay::start().await;
    let settings = alipay.settings();
    let app = tests::spawn_app_with(move |config| {
        config.payment_providers.alipay = Some(settings);
        config.money.query_after = chrono::Duration::zero();
        config.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let created = intent(&app, &customer, order_id, "alipay").await;
    let payment_id = id_of(&created["payment_id"]);
    assert_eq!(created["checkout"]["provider"], "alipay");
    let pay_url = created["checkout"]["pay_url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert!(pay_url.starts_with(&alipay.gateway), "{pay_url}");
    let query: BTreeMap<String, String> =
        serde_urlencoded::from_str(pay_url.split_once('?').expect("query").1).expect("query");
    assert_eq!(query["method"], "alipay.trade.wap.pay");
    let biz: Value = serde_json::from_str(&query["biz_content"]).expect("biz");
    assert_eq!(biz["total_amount"], "150.00");
    assert_eq!(biz["out_trade_no"], payment_id.simple().to_string());

    // The customer pays on the cashier, which checks our signature; Alipay then notifies.
    let cashier = reqwest::get(&pay_url).await.expect("cashier");
    assert_eq!(
        cashier.status(),
        StatusCode::OK,
        "{}",
        cashier.text().await.unwrap_or_default()
    );
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "dispatching"
    })
    .await;
    let sent = delivered(|| alipay.sent(), 1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].1.status, sent[0].1.body.as_str()),
        (200, "success")
    );
    assert_eq!(captures(&app, payment_id).await, 1);

    // Alipay retries the same notification: acknowledged, nothing changes.
    let (_, _, notify_url) = alipay
        .trade(&payment_id.simple().to_string())
        .expect("trade");
    let again = alipay.deliver(&notify_url, sent[0].0.clone()).await;
    assert_eq!((again.status, again.body.as_str()), (200, "success"));
    assert_eq!(captures(&app, payment_id).await, 1);

    // A second order: forged notifications for it change nothing.
    let second = app.place_order(&customer).await;
    let second_intent = intent(&app, &customer, second, "alipay").await;
    let second_payment = id_of(&second_intent["payment_id"]);
    let out_trade_no = second_payment.simple().to_string();
    let genuine = FakeAlipay::paid_fields(&out_trade_no, "2026000000000000000000000001", "150.00");
    let events_before = events_of(&app, &[second, second_payment]).await;
    // Signed by somebody else.
    let forged = alipay.notification(&genuine, &keys().stranger);
    // Signed by Alipay, then the amount changed.
    let tampered = alipay
        .notification(&genuine, &keys().alipay)
        .replace("total_amount=150.00", "total_amount=1.50");
    // Signed by Alipay, for another app.
    let mut other_app = genuine.clone();
    other_app.insert("app_id".into(), "2021000000009999".into());
    // Signed by Alipay, but for the wrong amount.
    let mut short = genuine.clone();
    short.insert("total_amount".into(), "1.50".into());
    for form in [
        forged,
        tampered,
        alipay.notification(&other_app, &keys().alipay),
        alipay.notification(&short, &keys().alipay),
    ] {
        let refused = alipay.deliver(&notify_url, form).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_ne!(refused.body, "success");
    }
    assert_eq!(
        events_of(&app, &[second, second_payment]).await,
        events_before
    );
    let reasons: Vec<String> = outcomes(&app, "alipay")
        .await
        .into_iter()
        .filter(|(outcome, _)| outcome == "rejected")
        .filter_map(|(_, reason)| reason)
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("bad signature"))
            .count(),
        2,
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("another app")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("does not match")),
        "{reasons:?}"
    );

    // The customer pays the second order but Alipay's notification is lost: the query job,
    // which has been asking all along (Alipay answering "no such trade"), finds it.
    alipay.notify.store(false, Ordering::SeqCst);
    let second_url = second_intent["checkout"]["pay_url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(
        reqwest::get(&second_url).await.expect("cashier").status(),
        StatusCode::OK
    );
    app.wait_for_order(&customer.token, second, |order| {
        order["status"] == "dispatching"
    })
    .await;
    assert_eq!(captures(&app, second_payment).await, 1);

    // Cancelled before any worker: the whole amount goes back through Alipay, once.
    cancel(&app, &customer, order_id).await;
    let refunded = payment(&app, &customer, payment_id).await;
    assert_eq!(refunded["refunded"], 15_000, "{refunded}");
    let refunds = alipay.refunds();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    let (request_number, (trade, amount)) = refunds.into_iter().next().expect("refund");
    assert_eq!(
        (trade.as_str(), amount.as_str()),
        (payment_id.simple().to_string().as_str(), "150.00")
    );
    let recorded: String = sqlx::query_scalar(
        "SELECT payload->'RefundCompleted'->>'provider_refund' FROM events
          WHERE aggregate_id = $1 AND event_type = 'RefundCompleted'",
    )
    .bind(payment_id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("refund event");
    assert_eq!(recorded, request_number);
    app.stop().await;
}

#[tokio::test]
async fn wechat_pay_requests_are_signed_notifications_decrypted_and_verified_and_refunds_paid() {
    let _ = keys();
    let wechat = FakeWechatPay::start().await;
    let settings = wechat.settings();
    let app = tests::spawn_app_with(move |config| {
        config.payment_providers.wechat_pay = Some(settings);
        config.money.query_after = chrono::Duration::zero();
        config.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    // WeChat Pay opens the transaction only for a correctly signed request.
    let created = intent(&app, &customer, order_id, "wechat_pay").await;
    let payment_id = id_of(&created["payment_id"]);
    let out_trade_no = payment_id.simple().to_string();
    assert_eq!(created["checkout"]["provider"], "wechat_pay");
    assert!(created["checkout"]["pay_url"]
        .as_str()
        .expect("url")
        .starts_with("weixin://wxpay/bizpayurl?pr="));
    let (transaction_id, total, notify_url) = wechat.transaction(&out_trade_no).expect("opened");
    assert_eq!(total, 15_000);

    wechat.customer_pays(&out_trade_no).await;
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "dispatching"
    })
    .await;
    let sent = delivered(|| wechat.sent(), 1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2.status, 200, "{}", sent[0].2.body);
    assert_eq!(captures(&app, payment_id).await, 1);
    // WeChat Pay delivers the same notification again: acknowledged, nothing changes.
    let again = wechat
        .deliver(&notify_url, (sent[0].0.clone(), sent[0].1.clone()))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(captures(&app, payment_id).await, 1);

    // A second order: forged and tampered notifications for it change nothing.
    let second = app.place_order(&customer).await;
    let second_payment = id_of(&intent(&app, &customer, second, "wechat_pay").await["payment_id"]);
    let second_number = second_payment.simple().to_string();
    let paid = FakeWechatPay::paid_transaction(&second_number, &transaction_id, 15_000);
    let now = chrono::Utc::now().timestamp();
    let signed = |body: String, key: &tests::providers::TestKey, serial: &str, at: i64| {
        let headers = FakeWechatPay::signed_headers(&body, key, serial, at);
        (headers, body)
    };
    let genuine_body = FakeWechatPay::envelope(&paid, WECHAT_API_V3_KEY);
    // The ciphertext altered, the envelope signed again (as an insider with the platform key might).
    let mut altered: Value = serde_json::from_str(&genuine_body).expect("json");
    let ciphertext = altered["resource"]["ciphertext"]
        .as_str()
        .expect("ct")
        .to_owned();
    let flipped = if ciphertext.starts_with('A') {
        "B"
    } else {
        "A"
    };
    altered["resource"]["ciphertext"] = json!(format!("{flipped}{}", &ciphertext[1..]));
    let mut short = paid.clone();
    short["amount"]["total"] = json!(1);
    let mut other_merchant = paid.clone();
    other_merchant["mchid"] = json!("1900009999");
    let events_before = events_of(&app, &[second, second_payment]).await;
    let attempts = [
        (
            "forged",
            signed(
                genuine_body.clone(),
                &keys().stranger,
                WECHAT_PLATFORM_SERIAL,
                now,
            ),
        ),
        (
            "unknown serial",
            signed(
                genuine_body.clone(),
                &keys().wechat_platform,
                "SOMEONE_ELSES",
                now,
            ),
        ),
        (
            "stale",
            signed(
                genuine_body.clone(),
                &keys().wechat_platform,
                WECHAT_PLATFORM_SERIAL,
                now - 3_600,
            ),
        ),
        (
            "altered",
            signed(
                altered.to_string(),
                &keys().wechat_platform,
                WECHAT_PLATFORM_SERIAL,
                now,
            ),
        ),
        (
            "another key",
            signed(
                FakeWechatPay::envelope(&paid, "0123456789abcdef0123456789abcdef"),
                &keys().wechat_platform,
                WECHAT_PLATFORM_SERIAL,
                now,
            ),
        ),
        ("short", FakeWechatPay::notification(&short)),
        (
            "other merchant",
            FakeWechatPay::notification(&other_merchant),
        ),
    ];
    for (what, message) in attempts {
        let refused = wechat.deliver(&notify_url, message).await;
        assert_eq!(refused.status, 400, "{what}: {}", refused.body);
    }
    // Genuinely signed, but the body changed after signing.
    let (headers, body) = FakeWechatPay::notification(&paid);
    let swapped = wechat
        .deliver(
            &notify_url,
            (
                headers,
                body.replace("TRANSACTION.SUCCESS", "TRANSACTION.SUCCESS "),
            ),
        )
        .await;
    assert_eq!(swapped.status, 400, "{}", swapped.body);
    assert_eq!(
        events_of(&app, &[second, second_payment]).await,
        events_before
    );
    let reasons: Vec<String> = outcomes(&app, "wechat_pay")
        .await
        .into_iter()
        .filter(|(outcome, _)| outcome == "rejected")
        .filter_map(|(_, reason)| reason)
        .collect();
    assert_eq!(reasons.len(), 8, "{reasons:?}");
    for expected in [
        "bad signature",
        "unknown platform key",
        "stale",
        "does not decrypt",
        "does not match",
        "another merchant",
    ] {
        assert!(
            reasons.iter().any(|reason| reason.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }

    // Paid, but the notification is lost: the query job (signed GET) finds it.
    wechat.notify.store(false, Ordering::SeqCst);
    wechat.customer_pays(&second_number).await;
    app.wait_for_order(&customer.token, second, |order| {
        order["status"] == "dispatching"
    })
    .await;
    assert_eq!(captures(&app, second_payment).await, 1);

    // Cancelled before any worker: the whole amount back through WeChat Pay, which first
    // answers PROCESSING; the refund stays owed until the money job hears it has succeeded.
    cancel(&app, &customer, order_id).await;
    let owed = payment(&app, &customer, payment_id).await;
    assert_eq!(owed["refunded"], 0, "{owed}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let refunded = payment(&app, &customer, payment_id).await;
        if refunded["refunded"] == 15_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never paid: {refunded}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let refunds = wechat.refunds();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    let (_, (refund_id, amount, of)) = refunds.into_iter().next().expect("refund");
    assert_eq!((amount, of), (15_000, 15_000));
    let recorded: String = sqlx::query_scalar(
        "SELECT payload->'RefundCompleted'->>'provider_refund' FROM events
          WHERE aggregate_id = $1 AND event_type = 'RefundCompleted'",
    )
    .bind(payment_id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("refund event");
    assert_eq!(recorded, refund_id);
    app.stop().await;
}

#[tokio::test]
async fn with_the_sandbox_off_a_method_without_a_real_provider_is_refused() {
    let _ = keys();
    let alipay = FakeAlipay::start().await;
    let settings = alipay.settings();
    let app = tests::spawn_app_with(move |config| {
        config.payment_providers.alipay = Some(settings);
        config.payment_providers.sandbox = false;
    })
    .await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    for method in ["bank_card", "wechat_pay"] {
        let refused = app
            .post(
                &format!("/api/v1/orders/{order_id}/payment-intents"),
                Some(&customer.token),
                &json!({ "method": method }),
            )
            .await;
        tests::assert_problem(
            refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    // Nobody can confirm a payment through the sandbox's endpoint either.
    let forged = app
        .client
        .post(app.url("/api/v1/payments/notifications/sandbox"))
        .body("{}")
        .send()
        .await
        .expect("posted");
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
    let alipay_intent = intent(&app, &customer, order_id, "alipay").await;
    assert_eq!(alipay_intent["checkout"]["provider"], "alipay");
    app.stop().await;
}

#[tokio::test]
async fn bank_cards_are_paid_through_the_acquirers_gateway_verified_and_refunded() {
    let _ = keys();
    let unionpay = FakeUnionPay::start().await;
    let settings = unionpay.settings();
    let app = tests::spawn_app_with(move |config| {
        config.payment_providers.unionpay = Some(settings);
        // No sandbox: a bank card can only be paid through the acquirer.
        config.payment_providers.sandbox = false;
        config.money.query_after = chrono::Duration::zero();
        config.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let created = intent(&app, &customer, order_id, "bank_card").await;
    let payment_id = id_of(&created["payment_id"]);
    assert_eq!(created["checkout"]["provider"], "unionpay");
    let pay_url = created["checkout"]["pay_url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert!(pay_url.starts_with(&unionpay.gateway), "{pay_url}");
    let form: BTreeMap<String, String> =
        serde_urlencoded::from_str(pay_url.split_once('?').expect("form").1).expect("form");
    assert_eq!(
        (
            form["txnType"].as_str(),
            form["txnAmt"].as_str(),
            form["currencyCode"].as_str()
        ),
        ("01", "15000", "156")
    );
    assert_eq!(form["orderId"], payment_id.simple().to_string());

    // The card is paid on the gateway, which checks our signature; UnionPay then notifies.
    let paid = reqwest::get(&pay_url).await.expect("gateway");
    assert_eq!(
        paid.status(),
        StatusCode::OK,
        "{}",
        paid.text().await.unwrap_or_default()
    );
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "dispatching"
    })
    .await;
    let sent = delivered(|| unionpay.sent(), 1).await;
    assert_eq!((sent[0].1.status, sent[0].1.body.as_str()), (200, "ok"));
    assert_eq!(captures(&app, payment_id).await, 1);

    // Forged and tampered notifications for a second card payment change nothing.
    let second = app.place_order(&customer).await;
    let second_intent = intent(&app, &customer, second, "bank_card").await;
    let second_payment = id_of(&second_intent["payment_id"]);
    let back_url = unionpay
        .back_url(&payment_id.simple().to_string())
        .expect("back url");
    let genuine =
        FakeUnionPay::paid_fields(&second_payment.simple().to_string(), "799999999", "15000");
    let before = events_of(&app, &[second, second_payment]).await;
    for form in [
        FakeUnionPay::signed_form(&genuine, &keys().stranger),
        FakeUnionPay::signed_form(&genuine, &keys().unionpay).replace("txnAmt=15000", "txnAmt=150"),
    ] {
        let refused = unionpay.deliver(&back_url, form).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
    }
    assert_eq!(events_of(&app, &[second, second_payment]).await, before);

    // Cancelled before any worker: the refund goes back through the acquirer, which pays it
    // asynchronously; the money job finds it paid.
    cancel(&app, &customer, order_id).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let refunded = payment(&app, &customer, payment_id).await;
        if refunded["refunded"] == 15_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refund was never paid: {refunded}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let refunds = unionpay.refunds();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].1, "15000");
    app.stop().await;
}
