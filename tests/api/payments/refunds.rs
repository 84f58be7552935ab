//! Refunds: cancellations by the policy, late payments sent back, disputes after completion, a
//! provider that fails a refund, and a refund a stopped process left undone.

use super::*;

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
    let position = tests::position_of(&cancelled);

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
