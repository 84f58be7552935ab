//! Money leaving and checked: withdrawals and payouts, reconciliation with the providers
//! statements, and the commission schedule.

use super::*;

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
        .contains("实名认证姓名不一致"));
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
            // With a retry key, as the console sends: the answer is built inside the
            // request's transaction.
            app.client
                .put(app.url(path))
                .bearer_auth(token)
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
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
