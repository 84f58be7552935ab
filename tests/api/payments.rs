//! Paying through the sandbox provider end to end: signed asynchronous notifications, a
//! duplicated notification, forged and mismatched ones refused and logged, and the ledger.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app, TestApp, User};
use uuid::Uuid;

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
    let key: Vec<u8> =
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = 'sandbox_payment_key'")
            .fetch_one(&app.pool)
            .await
            .expect("key");
    let post = |body: Value, key: Vec<u8>, timestamp: i64| {
        let app = &app;
        async move {
            let bytes = serde_json::to_vec(&body).expect("json");
            let signature =
                adapters::payments::sandbox::SandboxProvider::sign(&key, timestamp, &bytes);
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
async fn cancellations_refund_by_the_policy_and_admins_refund_part_of_a_disputed_payment() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let cancel = |order_id: Uuid| {
        let app = &app;
        let token = customer.token.clone();
        async move {
            let response = app
                .post(
                    &format!("/api/v1/orders/{order_id}/cancel"),
                    Some(&token),
                    &json!({"reason": "行程有变 / plans changed"}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    };

    // Before any worker is assigned: everything back.
    let (early, early_payment) = paid_order(&app, &customer, &tests::order_body()).await;
    cancel(early).await;
    let refunded = payment(&app, &customer.token, early_payment).await;
    assert_eq!(refunded["refunded"], 15_000);
    assert_eq!(refunded["in_escrow"], 0);

    // Three hours before the start with a worker assigned: a 20% fee is kept.
    let (late, late_payment) =
        paid_order(&app, &customer, &tests::order_body_starting_in(180)).await;
    let assigned = app.assign(late, worker.id, &admin).await;
    assert_eq!(assigned.status(), StatusCode::OK);
    cancel(late).await;
    let partly = payment(&app, &customer.token, late_payment).await;
    assert_eq!(partly["refunded"], 12_000);

    // A dispute settled by hand: part of what is still in escrow.
    let (_, disputed) = paid_order(&app, &customer, &tests::order_body()).await;
    let path = format!("/api/v1/admin/payments/{disputed}/refunds");
    let too_much = app
        .post(
            &path,
            Some(&admin.token),
            &json!({"amount": 20_000, "reason": "争议 / dispute"}),
        )
        .await;
    assert_problem(
        too_much,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let no_reason = app
        .post(
            &path,
            Some(&admin.token),
            &json!({"amount": 5_000, "reason": ""}),
        )
        .await;
    assert_problem(
        no_reason,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let part = app
        .post(
            &path,
            Some(&admin.token),
            &json!({"amount": 5_000, "reason": "服务不到位 / partly done"}),
        )
        .await;
    assert_eq!(part.status(), StatusCode::OK);
    let after: Value = part.json().await.expect("payment");
    assert_eq!(after["in_escrow"], 10_000);
    assert_eq!(after["refunded"], 5_000);

    let books = ledger(&app, &admin).await;
    // In: 3 × 150.00; back: 150.00 + 120.00 + 50.00; kept as fee: 30.00; still held: 100.00.
    assert_eq!(
        balance(&books, "customer_payments_clearing"),
        45_000 - 32_000
    );
    assert_eq!(balance(&books, "commission_revenue"), 3_000);
    assert_eq!(balance(&books, "platform_escrow"), 10_000);
    assert_eq!(balance(&books, "refunds_payable"), 0);
    assert_eq!(books["trial_balance"], 0);
    let sandbox_refunds: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(amount), 0)::bigint FROM sandbox_refunds")
            .fetch_one(&app.pool)
            .await
            .expect("refunds");
    assert_eq!(
        sandbox_refunds, 32_000,
        "every refund went back through the provider"
    );
    app.stop().await;
}

#[tokio::test]
async fn withdrawals_pass_risk_checks_and_review_a_failed_payout_returns_the_money_and_nothing_pays_twice(
) {
    let app = tests::spawn_app_with(tests::money_settles_at_once).await;
    let admin = app.create_admin().await;
    let worker = app.worker_with_income(&admin).await;
    let mine = |app: &TestApp| {
        let request = app
            .client
            .get(app.url("/api/v1/worker/withdrawals"))
            .bearer_auth(worker.token.clone());
        async move {
            request
                .send()
                .await
                .expect("withdrawals")
                .json::<Value>()
                .await
                .expect("withdrawals")
        }
    };
    let withdraw = |amount: i64, key: &str| {
        let app = &app;
        let token = worker.token.clone();
        let key = key.to_owned();
        async move {
            app.client
                .post(app.url("/api/v1/worker/withdrawals"))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&json!({"amount": amount}))
                .send()
                .await
                .expect("withdrawal")
        }
    };
    let set_account = |holder: &str, number: &str| {
        let app = &app;
        let token = worker.token.clone();
        let body = json!({"holder_name": holder, "bank": "中国银行", "number": number});
        async move {
            let response = app
                .client
                .put(app.url("/api/v1/worker/bank-account"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("account");
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
    };
    assert_problem(
        withdraw(5_000, "w0").await,
        StatusCode::CONFLICT,
        "/problems/illegal-state",
    )
    .await;
    set_account("李四", "6222021234567890000").await;
    let stranger = assert_problem(
        withdraw(5_000, "w1").await,
        StatusCode::CONFLICT,
        "/problems/illegal-state",
    )
    .await;
    assert!(stranger["detail"]
        .as_str()
        .unwrap_or("")
        .contains("verified worker"));
    // The sandbox bank refuses cards ending in 0000: this payout will fail.
    set_account("张阿姨", "6222021234567890000").await;
    assert_problem(
        withdraw(500, "w2").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    assert_problem(
        withdraw(50_000, "w3").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let first = withdraw(5_000, "w4").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("withdrawal");
    let again: Value = withdraw(5_000, "w4").await.json().await.expect("replay");
    assert_eq!(again["withdrawal_id"], first["withdrawal_id"]);
    assert_eq!(mine(&app).await["available"], 7_225, "reserved once");
    app.wait_for_projections().await;
    let queue: Value = app
        .get("/api/v1/admin/withdrawals", Some(&admin.token))
        .await
        .json()
        .await
        .expect("queue");
    assert_eq!(queue.as_array().map(Vec::len), Some(1), "{queue}");
    let failed: Value = app
        .post(
            &format!(
                "/api/v1/admin/withdrawals/{}/approve",
                first["withdrawal_id"].as_str().expect("id")
            ),
            Some(&admin.token),
            &json!({}),
        )
        .await
        .json()
        .await
        .expect("approved");
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        mine(&app).await["available"],
        12_225,
        "a failed payout returns the money"
    );

    set_account("张阿姨", "6222021234567891234").await;
    let second: Value = withdraw(5_000, "w5")
        .await
        .json()
        .await
        .expect("withdrawal");
    let approve_path = format!(
        "/api/v1/admin/withdrawals/{}/approve",
        second["withdrawal_id"].as_str().expect("id")
    );
    app.wait_for_projections().await;
    let paid: Value = app
        .post(&approve_path, Some(&admin.token), &json!({}))
        .await
        .json()
        .await
        .expect("paid");
    assert_eq!(paid["status"], "paid");
    let twice = app
        .post(&approve_path, Some(&admin.token), &json!({}))
        .await;
    assert_eq!(twice.status(), StatusCode::OK);
    let transfers: i64 = sqlx::query_scalar("SELECT count(*) FROM sandbox_payouts WHERE succeeded")
        .fetch_one(&app.pool)
        .await
        .expect("payouts");
    assert_eq!(transfers, 1, "approving twice pays once");

    let third: Value = withdraw(2_000, "w6")
        .await
        .json()
        .await
        .expect("withdrawal");
    app.wait_for_projections().await;
    let reject_path = format!(
        "/api/v1/admin/withdrawals/{}/reject",
        third["withdrawal_id"].as_str().expect("id")
    );
    let no_reason = app
        .post(&reject_path, Some(&admin.token), &json!({"reason": " "}))
        .await;
    assert_problem(
        no_reason,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let rejected: Value = app
        .post(
            &reject_path,
            Some(&admin.token),
            &json!({"reason": "请核对开户行 / check the bank"}),
        )
        .await
        .json()
        .await
        .expect("rejected");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(mine(&app).await["available"], 7_225);

    let books = ledger(&app, &admin).await;
    assert_eq!(
        balance(&books, &format!("worker_available:{}", worker.id)),
        7_225
    );
    assert_eq!(
        balance(&books, &format!("withdrawals_in_transit:{}", worker.id)),
        0
    );
    assert_eq!(balance(&books, "customer_payments_clearing"), 10_000);
    assert_eq!(books["trial_balance"], 0);
    app.stop().await;
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

#[tokio::test]
async fn reconciliation_lists_every_difference_between_the_providers_statement_and_the_ledger() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    // Paid and then cancelled: a capture and a refund, both on the provider's statement.
    let (refunded, refunded_payment) = paid_order(&app, &customer, &tests::order_body()).await;
    let cancelled = app
        .post(
            &format!("/api/v1/orders/{refunded}/cancel"),
            Some(&customer.token),
            &json!({"reason": "不需要了 / no longer needed"}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    // Paid at the provider, but the notification was lost and nobody has asked yet.
    let lost_order = app.place_order(&customer).await;
    let lost = intent(&app, &customer, lost_order, "timeout").await;
    let day = domain::values::business_day(Utc::now()).to_string();
    // The command runs as its own process, off the test's runtime.
    let run = |app: &TestApp| {
        let database_url = app.database_url.clone();
        let day = day.clone();
        async move {
            let output = tokio::task::spawn_blocking(move || {
                tests::run_anjia(&database_url, &["reconcile", &day])
            })
            .await
            .expect("anjia reconcile");
            serde_json::from_str::<Value>(&output).expect("json report")
        }
    };
    let first = run(&app).await;
    let sandbox = &first[0];
    assert_eq!(sandbox["provider"], "sandbox");
    assert_eq!(sandbox["matched"], 2, "{sandbox}");
    let differences = sandbox["differences"].as_array().expect("differences");
    assert_eq!(differences.len(), 1, "{sandbox}");
    assert_eq!(differences[0]["problem"], "missing_in_ledger");
    assert_eq!(
        differences[0]["reference"],
        lost["checkout"]["provider_transaction"]
    );

    // The provider's books say something else for the first payment.
    let payment: Value = app
        .get(
            &format!("/api/v1/payments/{refunded_payment}"),
            Some(&customer.token),
        )
        .await
        .json()
        .await
        .expect("payment");
    sqlx::query(
        "UPDATE sandbox_transactions SET amount = amount + 1 WHERE provider_transaction = $1",
    )
    .bind(payment["provider_transaction"].as_str().expect("txn"))
    .execute(&app.pool)
    .await
    .expect("tampered");
    let second = run(&app).await;
    let problems: Vec<&str> = second[0]["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .filter_map(|difference| difference["problem"].as_str())
        .collect();
    assert_eq!(problems.len(), 2, "{second}");
    assert!(problems.contains(&"amount_differs"));
    let runs: Vec<Value> = app
        .get("/api/v1/admin/reconciliations", Some(&admin.token))
        .await
        .json()
        .await
        .expect("runs");
    assert_eq!(runs.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_payment_that_arrives_after_the_order_was_cancelled_goes_straight_back() {
    let app = tests::spawn_app_with(|settings| {
        settings.dispatch.hold = chrono::Duration::seconds(1);
        settings.dispatch.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let created = intent(&app, &customer, order_id, "timeout").await;
    let payment_id: Uuid = created["payment_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "cancelled"
    })
    .await;
    // The customer did pay; the provider's notification comes late.
    let key: Vec<u8> =
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = 'sandbox_payment_key'")
            .fetch_one(&app.pool)
            .await
            .expect("key");
    let body = serde_json::to_vec(&json!({"notification_id": Uuid::new_v4().to_string(), "payment_id": payment_id,
        "provider_transaction": created["checkout"]["provider_transaction"], "amount": 15_000, "currency": "CNY",
        "status": "success", "occurred_at": Utc::now()}))
    .expect("json");
    let timestamp = Utc::now().timestamp();
    let accepted = app
        .client
        .post(app.url("/api/v1/payments/notifications/sandbox"))
        .header(
            "x-sandbox-signature",
            adapters::payments::sandbox::SandboxProvider::sign(&key, timestamp, &body),
        )
        .header("x-sandbox-timestamp", timestamp.to_string())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("notified");
    assert_eq!(accepted.status(), StatusCode::OK);
    let refunded = payment(&app, &customer.token, payment_id).await;
    assert_eq!(refunded["refunded"], 15_000, "{refunded}");
    assert_eq!(refunded["in_escrow"], 0);
    let order: Value = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(&customer.token))
        .await
        .json()
        .await
        .expect("order");
    assert_eq!(order["status"], "cancelled");
    app.stop().await;
}

#[tokio::test]
async fn admins_set_commission_by_service_and_level_and_an_order_keeps_the_rate_it_was_booked_at() {
    let app = tests::spawn_app_with(|settings| {
        settings.money.settlement_period = chrono::Duration::zero();
        settings.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    // Both approved at the silver level: 18.5% on cleaning by default.
    let before_worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let after_worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let booked_before = app
        .place_order_with(&customer, &tests::order_body_starting_in(30))
        .await;

    let path = "/api/v1/admin/commission-rates/daily_cleaning/silver";
    let put = |path: &'static str, token: String, body: Value| {
        let app = &app;
        async move {
            app.client
                .put(app.url(path))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("put")
        }
    };
    for (body, why) in [
        (
            json!({"basis_points": 6_000, "reason": "过高 / too high"}),
            "over half",
        ),
        (json!({"basis_points": 1_000, "reason": " "}), "no reason"),
        (
            json!({"basis_points": -1, "reason": "负数 / negative"}),
            "negative",
        ),
    ] {
        let refused = put(path, admin.token.clone(), body).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
    }
    let unknown = put(
        "/api/v1/admin/commission-rates/window_washing/silver",
        admin.token.clone(),
        json!({"basis_points": 1_000, "reason": "x"}),
    )
    .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let not_admin = put(
        path,
        customer.token.clone(),
        json!({"basis_points": 0, "reason": "x"}),
    )
    .await;
    assert_eq!(not_admin.status(), StatusCode::FORBIDDEN);
    let set = put(
        path,
        admin.token.clone(),
        json!({"basis_points": 1_000, "reason": "冬季促销 / winter promotion"}),
    )
    .await;
    assert_eq!(set.status(), StatusCode::OK);
    let schedule: Value = set.json().await.expect("rates");
    let silver_cleaning = schedule["rates"]
        .as_array()
        .expect("rates")
        .iter()
        .find(|rate| rate["service"] == "daily_cleaning" && rate["level"] == "silver")
        .expect("the rate")
        .clone();
    assert_eq!(silver_cleaning["basis_points"], 1_000);
    assert_eq!(silver_cleaning["default_basis_points"], 1_850);
    assert_eq!(silver_cleaning["set_by_admin"], true);
    assert_eq!(schedule["rates"].as_array().expect("rates").len(), 18);
    assert_eq!(schedule["changes"][0]["previous"], 1_850);
    assert_eq!(schedule["changes"][0]["set_by"], admin.id.to_string());
    // The audit trail replays the schedule like any other stream.
    let replayed: Value = app
        .get(
            &format!(
                "/api/v1/admin/audit/streams/commission_schedule/{}/state",
                domain::commission::SCHEDULE_ID
            ),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("replayed");
    assert_eq!(
        replayed["state"]["changes"]["daily_cleaning/silver"][0]["basis_points"],
        1_000
    );

    let booked_after = app
        .place_order_with(&customer, &tests::order_body_starting_in(30))
        .await;
    for (order_id, worker) in [
        (booked_before, &before_worker),
        (booked_after, &after_worker),
    ] {
        intent(&app, &customer, order_id, "succeed").await;
        app.wait_for_order(&customer.token, order_id, |order| {
            order["status"] == "dispatching"
        })
        .await;
        app.wait_for_projections().await;
        app.grab_and_serve(order_id, worker).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let books = ledger(&app, &admin).await;
        let before = balance(&books, &format!("worker_available:{}", before_worker.id));
        let after = balance(&books, &format!("worker_available:{}", after_worker.id));
        if (before, after) == (12_225, 13_500) {
            assert_eq!(balance(&books, "commission_revenue"), 2_775 + 1_500);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected 122.25 at the old rate and 135.00 at the new: {before} and {after}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_dispute_after_completion_refunds_part_and_takes_the_workers_share_back_in_proportion() {
    let app = tests::spawn_app_with(|settings| {
        settings.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let (order_id, payment_id) =
        paid_order(&app, &customer, &tests::order_body_starting_in(30)).await;
    app.wait_for_projections().await;
    app.grab_and_serve(order_id, &worker).await;
    // Released at completion: 27.75 commission, 122.25 pending for the worker (T+7).
    let deadline = Instant::now() + Duration::from_secs(20);
    while payment(&app, &customer.token, payment_id).await["status"] != "released" {
        assert!(Instant::now() < deadline, "the escrow was never released");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refund_path = format!("/api/v1/admin/payments/{payment_id}/refunds");
    let refund = |amount: i64| {
        let app = &app;
        let path = refund_path.clone();
        let token = admin.token.clone();
        async move {
            app.post(
                &path,
                Some(&token),
                &json!({"amount": amount, "reason": "打碎花瓶，协商退款 / a broken vase, refund agreed"}),
            )
            .await
        }
    };
    // Without a dispute the worker's money is not touched.
    assert_problem(
        refund(5_000).await,
        StatusCode::CONFLICT,
        "/problems/illegal-state",
    )
    .await;
    let disputed = app
        .post(
            &format!("/api/v1/orders/{order_id}/dispute"),
            Some(&customer.token),
            &json!({"reason": "打碎了花瓶 / broke a vase"}),
        )
        .await;
    assert_eq!(disputed.status(), StatusCode::OK);
    assert_problem(
        refund(15_001).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let refunded = refund(5_000).await;
    assert_eq!(refunded.status(), StatusCode::OK);
    let after: Value = refunded.json().await.expect("payment");
    assert_eq!(after["refunded"], 5_000, "paid back through the provider");
    // 5,000 × 2,775 / 15,000 = 925 from the commission, 4,075 from the worker's pending income.
    let books = ledger(&app, &admin).await;
    assert_eq!(balance(&books, "commission_revenue"), 2_775 - 925);
    assert_eq!(
        balance(&books, &format!("worker_pending:{}", worker.id)),
        12_225 - 4_075
    );
    assert_eq!(balance(&books, "dispute_recoveries"), 0);
    assert_eq!(balance(&books, "refunds_payable"), 0);
    assert_eq!(books["trial_balance"], 0);
    let income: Value = app
        .get("/api/v1/worker/income", Some(&worker.token))
        .await
        .json()
        .await
        .expect("income");
    assert_eq!(income["pending"], 8_150, "{income}");
    // Only admins close a dispute; the order is completed again.
    let path = format!("/api/v1/admin/orders/{order_id}/resolve-dispute");
    let by_customer = app
        .post(&path, Some(&customer.token), &json!({"resolution": "x"}))
        .await;
    assert_eq!(by_customer.status(), StatusCode::FORBIDDEN);
    let resolved = app
        .post(
            &path,
            Some(&admin.token),
            &json!({"resolution": "退款 50 元，双方同意 / ¥50 refunded, both agreed"}),
        )
        .await;
    assert_eq!(resolved.status(), StatusCode::OK);
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "completed"
    })
    .await;
    let again = app
        .post(&path, Some(&admin.token), &json!({"resolution": "again"}))
        .await;
    assert_problem(again, StatusCode::CONFLICT, "/problems/illegal-state").await;
    app.stop().await;
}

#[tokio::test]
async fn a_refund_the_provider_fails_stays_owed_and_the_money_job_pays_it_later() {
    let app = tests::spawn_app_with(|settings| {
        settings.money.query_after = chrono::Duration::zero();
        settings.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let (order_id, payment_id) = app
        .paid_through_sandbox(&customer, &tests::order_body(), "refund_fails_once")
        .await;
    let cancelled = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&customer.token),
            &json!({"reason": "行程有变 / plans changed"}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    // The provider refused the first time: the refund is owed, not lost.
    let owed = payment(&app, &customer.token, payment_id).await;
    assert_eq!(owed["in_escrow"], 0);
    assert_eq!(owed["refunded"], 0, "{owed}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let paid = payment(&app, &customer.token, payment_id).await;
        if paid["refunded"] == 15_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the money job never paid the refund: {paid}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(events_named(&app, payment_id, "RefundCompleted").await, 1);
    let books = ledger(&app, &admin).await;
    assert_eq!(balance(&books, "refunds_payable"), 0);
    assert_eq!(books["trial_balance"], 0);
    let paid_by_sandbox: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sandbox_refunds WHERE payment_id = $1")
            .bind(payment_id)
            .fetch_one(&app.pool)
            .await
            .expect("refunds");
    assert_eq!(paid_by_sandbox, 1, "paid once");
    app.stop().await;
}

/// A paid order three hours ahead, assigned to `worker` who accepts it: a cancellation now is
/// late, so the policy keeps 20% of the 150.00 paid.
async fn accepted_order(
    app: &TestApp,
    customer: &User,
    admin: &User,
    worker: &User,
) -> (Uuid, Uuid) {
    let (order_id, payment_id) =
        paid_order(app, customer, &tests::order_body_starting_in(180)).await;
    let assigned = app.assign(order_id, worker.id, admin).await;
    assert_eq!(assigned.status(), StatusCode::OK);
    let accepted = app.accept(order_id, worker).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    (order_id, payment_id)
}

#[tokio::test]
async fn a_late_cancellation_shows_its_kept_fee_on_the_payment_and_the_order_and_shares_it_with_the_worker(
) {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let analyst = app.create_analyst().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let (order_id, payment_id) = accepted_order(&app, &customer, &admin, &worker).await;

    let cancelled = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&customer.token),
            &json!({"reason": "临时有事 / something came up"}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let position = cancelled
        .headers()
        .get("anjia-position")
        .and_then(|value| value.to_str().ok())
        .expect("a position")
        .to_owned();

    // The payment: 120.00 back, 30.00 kept, 15.00 of it (the default half) to the worker.
    let paid = payment(&app, &customer.token, payment_id).await;
    assert_eq!(
        (
            &paid["refunded"],
            &paid["fee_kept"],
            &paid["fees_to_workers"],
            &paid["in_escrow"]
        ),
        (&json!(12_000), &json!(3_000), &json!(1_500), &json!(0)),
        "{paid}"
    );
    // The order, read at the cancellation's position.
    let order: Value = app
        .client
        .get(app.url(&format!("/api/v1/orders/{order_id}")))
        .bearer_auth(&customer.token)
        .header("Anjia-Min-Position", &position)
        .send()
        .await
        .expect("order")
        .json()
        .await
        .expect("order");
    assert_eq!(order["status"], "cancelled");
    assert_eq!(
        (
            &order["refund"],
            &order["fee_kept"],
            &order["fee_to_worker"]
        ),
        (&json!(12_000), &json!(3_000), &json!(1_500)),
        "{order}"
    );
    // The worker's income: pending, marked as a cancellation fee.
    app.wait_for_projections().await;
    let income: Value = app
        .get("/api/v1/worker/income", Some(&worker.token))
        .await
        .json()
        .await
        .expect("income");
    assert_eq!(income["pending"], 1_500, "{income}");
    assert_eq!(income["incomes"][0]["order_id"], order_id.to_string());
    assert_eq!(income["incomes"][0]["kind"], "cancellation_fee");
    assert_eq!(income["incomes"][0]["amount"], 1_500);
    // The ledger: the platform's half as revenue, the worker's half pending for them.
    let books = ledger(&app, &admin).await;
    assert_eq!(balance(&books, "commission_revenue"), 1_500);
    assert_eq!(
        balance(&books, &format!("worker_pending:{}", worker.id)),
        1_500
    );
    assert_eq!(balance(&books, "platform_escrow"), 0);
    assert_eq!(books["trial_balance"], 0);

    // The revenue report has the kept fees as their own lines, so it and the ledger agree:
    // commission (none: nothing was served) plus kept fees is the ledger's revenue.
    app.refresh_warehouse(&admin).await;
    let report: Value = app
        .get("/api/v1/reports/revenue", Some(&analyst.token))
        .await
        .json()
        .await
        .expect("report");
    assert_eq!(report["total_kept_fees_fen"], 1_500, "{report}");
    assert_eq!(report["total_fee_shares_fen"], 1_500);
    assert_eq!(
        report["total_commission_fen"].as_i64().unwrap_or(-1)
            + report["total_kept_fees_fen"].as_i64().unwrap_or(-1),
        balance(&books, "commission_revenue")
    );
    assert_eq!(report["total_refunds_fen"], 12_000);
    let csv = app
        .get("/api/v1/reports/revenue?format=csv", Some(&analyst.token))
        .await
        .text()
        .await
        .expect("csv");
    assert!(
        csv.lines()
            .next()
            .unwrap_or("")
            .contains("kept_fees_fen,fee_shares_fen"),
        "{csv}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cancellation_whose_refund_a_stopped_process_left_undone_is_finished_by_the_money_job() {
    let app = tests::spawn_app_with(|settings| {
        settings.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let (order_id, payment_id) = accepted_order(&app, &customer, &admin, &worker).await;

    // The cancellation commits with its terms, and the process stops before the refund.
    let settlement = domain::payment::CancellationSettlement {
        payment_id,
        refund: domain::Fen::literal(12_000),
        fee: domain::Fen::literal(3_000),
        to_worker: Some(domain::payment::FeeShare {
            worker_id: worker.id,
            amount: domain::Fen::literal(1_500),
        }),
    };
    let orders = application::commands::CommandBus::<domain::order::Order>::new(app.pool.clone());
    let customer_actor = domain::Actor {
        id: customer.id,
        role: domain::Role::Customer,
    };
    orders
        .execute(
            order_id,
            domain::order::OrderCommand::Cancel {
                by: customer_actor,
                reason: "临时有事 / something came up".to_owned(),
                settlement: Some(settlement),
                now: Utc::now(),
            },
            &application::commands::CommandContext::system(),
        )
        .await
        .expect("cancelled");
    // A share for anyone but the worker who accepted is refused by the order itself.
    let stranger = domain::order::OrderCommand::Cancel {
        by: customer_actor,
        reason: "再次 / again".to_owned(),
        settlement: Some(settlement),
        now: Utc::now(),
    };
    assert!(orders
        .execute(
            order_id,
            stranger,
            &application::commands::CommandContext::system()
        )
        .await
        .is_err());

    // The money job finds it from the log's terms: refund, fee and the worker's share, once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let paid = payment(&app, &customer.token, payment_id).await;
        let income: Value = app
            .get("/api/v1/worker/income", Some(&worker.token))
            .await
            .json()
            .await
            .expect("income");
        if paid["refunded"] == 12_000 && income["pending"] == 1_500 {
            assert_eq!(paid["fee_kept"], 3_000, "{paid}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job never finished it: {paid} {income}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(events_named(&app, payment_id, "RefundIssued").await, 1);
    let books = ledger(&app, &admin).await;
    assert_eq!(balance(&books, "commission_revenue"), 1_500);
    assert_eq!(books["trial_balance"], 0);
    app.stop().await;
}
