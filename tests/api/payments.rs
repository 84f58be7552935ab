//! Paying through the sandbox provider end to end: signed asynchronous notifications, a
//! duplicated notification, forged and mismatched ones refused and logged, and the ledger.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app, TestApp, User};
use uuid::Uuid;

mod money_out;
mod refunds;

async fn intent(app: &TestApp, customer: &User, order_id: Uuid, sandbox: &str) -> Value {
    let response = app
        .post(
            &format!("/api/v1/orders/{order_id}/payment-intents"),
            Some(&customer.token),
            &json!({"method": "alipay", "sandbox": sandbox}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("intent")
}

async fn ledger(app: &TestApp, admin: &User) -> Value {
    app.wait_for_projections().await;
    app.get("/api/v1/admin/ledger", Some(&admin.token))
        .await
        .json()
        .await
        .expect("ledger")
}

fn balance(ledger: &Value, account: &str) -> i64 {
    ledger["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|entry| entry["account"] == account)
        .and_then(|entry| entry["balance"].as_i64())
        .unwrap_or(0)
}

async fn events_named(app: &TestApp, aggregate_id: Uuid, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = $2")
        .bind(aggregate_id.to_string())
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_sandbox_payment_notified_twice_pays_the_order_once_and_fills_escrow() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let created = intent(&app, &customer, order_id, "notify_twice").await;
    assert_eq!(created["amount"], 15_000);
    let payment_id: Uuid = created["payment_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    assert!(created["checkout"]["pay_url"]
        .as_str()
        .expect("url")
        .starts_with("https://"));

    // The provider confirms asynchronously; the order moves on to dispatch.
    let paid = app
        .wait_for_order(&customer.token, order_id, |order| {
            order["status"] == "dispatching"
        })
        .await;
    assert!(paid["paid_at"].is_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log: Vec<Value> = app
            .get("/api/v1/admin/payment-notifications", Some(&admin.token))
            .await
            .json()
            .await
            .expect("log");
        let outcomes: Vec<&str> = log
            .iter()
            .filter_map(|entry| entry["outcome"].as_str())
            .collect();
        if outcomes.len() >= 2 {
            assert!(
                outcomes.contains(&"accepted") && outcomes.contains(&"duplicate"),
                "{outcomes:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second notification never came: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(events_named(&app, payment_id, "PaymentCaptured").await, 1);
    assert_eq!(events_named(&app, order_id, "PaymentRecorded").await, 1);

    let payment: Value = app
        .get(
            &format!("/api/v1/payments/{payment_id}"),
            Some(&customer.token),
        )
        .await
        .json()
        .await
        .expect("payment");
    assert_eq!(payment["status"], "captured");
    assert_eq!(payment["in_escrow"], 15_000);
    let books = ledger(&app, &admin).await;
    assert_eq!(balance(&books, "customer_payments_clearing"), 15_000);
    assert_eq!(balance(&books, "platform_escrow"), 15_000);
    assert_eq!(books["trial_balance"], 0);
    app.stop().await;
}

#[tokio::test]
async fn forged_replayed_and_mismatched_notifications_change_nothing_and_are_logged() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let created = intent(&app, &customer, order_id, "timeout").await;
    let payment_id: Uuid = created["payment_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let transaction = created["checkout"]["provider_transaction"]
        .as_str()
        .expect("txn")
        .to_owned();
    let key = sandbox_key(&app).await;
    let post = |body: Value, key: Vec<u8>, timestamp: i64| {
        let app = &app;
        async move { notify_sandbox(app, &body, &key, timestamp).await }
    };
    let genuine = |amount: i64, currency: &str| {
        json!({"notification_id": Uuid::new_v4().to_string(), "payment_id": payment_id, "provider_transaction": transaction,
               "amount": amount, "currency": currency, "status": "success", "occurred_at": Utc::now()})
    };
    let now = Utc::now().timestamp();
    // Signed with another key.
    let forged = post(genuine(15_000, "CNY"), b"not the key".to_vec(), now).await;
    assert_problem(forged, StatusCode::BAD_REQUEST, "/problems/bad-request").await;
    // Genuinely signed, but an hour old: a replay.
    let stale = post(genuine(15_000, "CNY"), key.clone(), now - 3_600).await;
    assert_problem(stale, StatusCode::BAD_REQUEST, "/problems/bad-request").await;
    // Signed, but for another amount or currency.
    let short = post(genuine(1, "CNY"), key.clone(), now).await;
    assert_problem(short, StatusCode::BAD_REQUEST, "/problems/bad-request").await;
    let dollars = post(genuine(15_000, "USD"), key.clone(), now).await;
    assert_problem(dollars, StatusCode::BAD_REQUEST, "/problems/bad-request").await;
    // Nothing changed. (The order's view may still be catching up with its placing under a
    // loaded machine: read it once every projection has applied what was committed.)
    assert_eq!(events_named(&app, payment_id, "PaymentCaptured").await, 0);
    app.wait_for_projections().await;
    let order = app
        .wait_for_order(&customer.token, order_id, |order| {
            order["status"].is_string()
        })
        .await;
    assert_eq!(order["status"], "awaiting_payment");
    let rejected: Vec<Value> = app
        .get(
            "/api/v1/admin/payment-notifications?outcome=rejected",
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("log");
    let reasons: Vec<&str> = rejected
        .iter()
        .filter_map(|entry| entry["reason"].as_str())
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons
        .iter()
        .any(|reason| reason.contains("bad signature")));
    assert!(reasons.iter().any(|reason| reason.contains("stale")));
    assert!(reasons
        .iter()
        .any(|reason| reason.contains("does not match")));
    assert!(reasons.iter().any(|reason| reason.contains("USD")));
    // The genuine one, late because the provider timed out, still pays the order.
    let accepted = post(genuine(15_000, "CNY"), key, now).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "dispatching"
    })
    .await;
    // Only its customer sees the payment.
    let stranger = app.register_customer().await;
    let hidden = app
        .get(
            &format!("/api/v1/payments/{payment_id}"),
            Some(&stranger.token),
        )
        .await;
    assert_problem(hidden, StatusCode::NOT_FOUND, "/problems/not-found").await;
    app.stop().await;
}

async fn sandbox_key(app: &TestApp) -> Vec<u8> {
    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = 'sandbox_payment_key'")
        .fetch_one(&app.pool)
        .await
        .expect("key")
}

/// Posts `body` to the sandbox's callback as the sandbox would, signed with `key` at `timestamp`.
async fn notify_sandbox(
    app: &TestApp,
    body: &Value,
    key: &[u8],
    timestamp: i64,
) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).expect("json");
    let signature = adapters::payments::sandbox::SandboxProvider::sign(key, timestamp, &bytes);
    app.client
        .post(app.url("/api/v1/payments/notifications/sandbox"))
        .header("x-sandbox-signature", signature)
        .header("x-sandbox-timestamp", timestamp.to_string())
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .expect("posted")
}

/// The transaction (as a 32-bit id, like `xmin`) that wrote each of these events, in order.
async fn written_by(app: &TestApp, events: &[(Uuid, &str)]) -> Vec<i64> {
    let mut transactions = Vec::new();
    for (aggregate_id, event_type) in events {
        let transaction: i64 = sqlx::query_scalar(
            "SELECT transaction_id::text::bigint % 4294967296 FROM events
              WHERE aggregate_id = $1 AND event_type = $2",
        )
        .bind(aggregate_id.to_string())
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .unwrap_or_else(|error| panic!("{event_type}: {error}"));
        transactions.push(transaction);
    }
    transactions
}

/// One durable commit each: the intent with the key's stored answer, and the provider's
/// notification with all it causes (the capture, the order paid, dispatch opened, the log).
#[tokio::test]
async fn a_payment_intent_and_its_notification_each_commit_once() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let key = Uuid::new_v4().to_string();
    let response = app
        .client
        .post(app.url(&format!("/api/v1/orders/{order_id}/payment-intents")))
        .bearer_auth(&customer.token)
        .header("idempotency-key", &key)
        .json(&json!({"method": "wechat_pay", "sandbox": "timeout"}))
        .send()
        .await
        .expect("intent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("intent");
    let payment_id: Uuid = created["payment_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let (answer_status, answered_by): (i16, i64) =
        sqlx::query_as("SELECT status, xmin::text::bigint FROM idempotency WHERE key = $1")
            .bind(&key)
            .fetch_one(&app.pool)
            .await
            .expect("the key's record");
    assert_eq!(answer_status, 201);
    assert_eq!(
        written_by(&app, &[(payment_id, "PaymentCreated")]).await,
        vec![answered_by],
        "the intent and its stored answer commit together"
    );

    let notification_id = Uuid::new_v4().to_string();
    let notified = notify_sandbox(
        &app,
        &json!({"notification_id": notification_id, "payment_id": payment_id,
                "provider_transaction": created["checkout"]["provider_transaction"],
                "amount": 15_000, "currency": "CNY", "status": "success", "occurred_at": Utc::now()}),
        &sandbox_key(&app).await,
        Utc::now().timestamp(),
    )
    .await;
    assert_eq!(notified.status(), StatusCode::OK);
    let logged_by: i64 = sqlx::query_scalar(
        "SELECT xmin::text::bigint FROM payment_notifications
          WHERE notification_id = $1 AND outcome = 'accepted'",
    )
    .bind(&notification_id)
    .fetch_one(&app.pool)
    .await
    .expect("the log's row");
    let caused = written_by(
        &app,
        &[
            (payment_id, "PaymentCaptured"),
            (order_id, "PaymentRecorded"),
            (order_id, "DispatchOpened"),
        ],
    )
    .await;
    assert_eq!(
        caused,
        vec![logged_by; 3],
        "the capture, the order paid, dispatch opened and the log commit together"
    );
    app.stop().await;
}

/// A provider sends a notification again while the platform does not accept it: one that
/// outran its intent's commit is refused as an unknown payment, then accepted once the intent
/// is there.
#[tokio::test]
async fn a_notification_that_outran_its_intent_is_sent_again_and_pays_the_order() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let services = app.services();
    let payment_id = Uuid::now_v7();
    let amount = domain::Fen::literal(15_000);
    services
        .payment_providers
        .get("sandbox")
        .expect("the sandbox")
        .create(payment_id, amount, domain::payment::PaymentMethod::Alipay)
        .await
        .expect("a checkout");
    // The sandbox notifies 200 ms later: before the intent exists.
    let (running, admin) = (&app, &admin);
    // The reasons logged for this payment's notifications with `outcome`.
    let logged = |outcome: &'static str| async move {
        let log: Vec<Value> = running
            .get(
                &format!("/api/v1/admin/payment-notifications?outcome={outcome}"),
                Some(&admin.token),
            )
            .await
            .json()
            .await
            .expect("log");
        log.iter()
            .filter(|entry| entry["payment_id"] == payment_id.to_string())
            .map(|entry| entry["reason"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    tests::wait_until("the first notification", async || {
        !logged("rejected").await.is_empty()
    })
    .await;
    assert_eq!(logged("rejected").await, ["unknown payment"]);
    services
        .payments
        .execute(
            payment_id,
            domain::payment::PaymentCommand::Create {
                payment_id,
                order_id,
                customer_id: customer.id,
                amount,
                method: domain::payment::PaymentMethod::Alipay,
                provider: "sandbox".to_owned(),
                now: Utc::now(),
            },
            &application::commands::CommandContext::system(),
        )
        .await
        .map(drop)
        .expect("the intent, late");
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "dispatching"
    })
    .await;
    assert_eq!(events_named(&app, payment_id, "PaymentCaptured").await, 1);
    assert_eq!(logged("accepted").await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_sandbox_payment_leaves_the_order_awaiting_payment() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let created = intent(&app, &customer, order_id, "fail").await;
    let payment_id = created["payment_id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let payment: Value = app
            .get(
                &format!("/api/v1/payments/{payment_id}"),
                Some(&customer.token),
            )
            .await
            .json()
            .await
            .expect("payment");
        if payment["status"] == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "{payment}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let order: Value = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(&customer.token))
        .await
        .json()
        .await
        .expect("order");
    assert_eq!(order["status"], "awaiting_payment");
    // Paying again, another way, works.
    intent(&app, &customer, order_id, "succeed").await;
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "dispatching"
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_completed_order_releases_escrow_to_commission_and_the_workers_income_which_settles() {
    let app = tests::spawn_app_with(|settings| {
        settings.money.settlement_period = chrono::Duration::zero();
        settings.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    // Approved at the silver level: 20% commission on cleaning, less 1.5 points.
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let order_id = app
        .place_order_with(&customer, &tests::order_body_starting_in(30))
        .await;
    intent(&app, &customer, order_id, "succeed").await;
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "dispatching"
    })
    .await;
    app.wait_for_projections().await;
    app.grab_and_serve(order_id, &worker).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let income = loop {
        app.wait_for_projections().await;
        let income: Value = app
            .get("/api/v1/worker/income?group=month", Some(&worker.token))
            .await
            .json()
            .await
            .expect("income");
        // The balance comes from the wallet, the series from the read model: wait for both.
        if income["available"] == 12_225 && income["series"][0]["settled"] == 12_225 {
            break income;
        }
        assert!(
            Instant::now() < deadline,
            "the income never settled: {income}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(income["pending"], 0);
    assert_eq!(income["incomes"][0]["order_id"], order_id.to_string());
    assert_eq!(income["series"][0]["amount"], 12_225);
    assert_eq!(income["series"][0]["settled"], 12_225);
    let books = ledger(&app, &admin).await;
    assert_eq!(balance(&books, "customer_payments_clearing"), 15_000);
    assert_eq!(balance(&books, "platform_escrow"), 0);
    assert_eq!(balance(&books, "commission_revenue"), 2_775);
    assert_eq!(
        balance(&books, &format!("worker_available:{}", worker.id)),
        12_225
    );
    assert_eq!(balance(&books, &format!("worker_pending:{}", worker.id)), 0);
    assert_eq!(books["trial_balance"], 0);
    // Rebuilt from position zero, the ledger is the same.
    let rebuilt = app
        .post(
            "/api/v1/admin/projections/ledger/rebuild",
            Some(&admin.token),
            &json!({}),
        )
        .await;
    assert!(rebuilt.status().is_success(), "{}", rebuilt.status());
    assert_eq!(ledger(&app, &admin).await["accounts"], books["accounts"]);
    let bad = app
        .get("/api/v1/worker/income?group=year", Some(&worker.token))
        .await;
    assert_problem(
        bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    app.stop().await;
}

async fn paid_order(app: &TestApp, customer: &User, body: &Value) -> (Uuid, Uuid) {
    app.paid_through_sandbox(customer, body, "succeed").await
}

async fn payment(app: &TestApp, token: &str, payment_id: Uuid) -> Value {
    app.get(&format!("/api/v1/payments/{payment_id}"), Some(token))
        .await
        .json()
        .await
        .expect("payment")
}

#[tokio::test]
async fn a_payment_whose_notification_never_came_is_found_by_the_query_job() {
    let app = tests::spawn_app_with(|settings| {
        settings.money.query_after = chrono::Duration::zero();
        settings.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let (_, payment_id) = app
        .paid_through_sandbox(&customer, &tests::order_body(), "timeout")
        .await;
    assert_eq!(events_named(&app, payment_id, "PaymentCaptured").await, 1);
    let log: Vec<Value> = app
        .get("/api/v1/admin/payment-notifications", Some(&admin.token))
        .await
        .json()
        .await
        .expect("log");
    assert!(log.is_empty(), "no notification came: {log:?}");
    app.stop().await;
}
