//! Admins correcting orders: reschedule (the worker's time moves, or the change is refused),
//! change the address, adjust the price (refunding the difference), cancel with a full refund;
//! each recorded with who and why, both sides told; and the dashboard's statistics.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, TestApp, User};
use uuid::Uuid;

async fn kinds_told(app: &TestApp, user: &User) -> Vec<String> {
    let notes: Vec<Value> = app
        .get("/api/v1/me/notifications", Some(&user.token))
        .await
        .json()
        .await
        .expect("notifications");
    notes
        .iter()
        .map(|note| note["kind"].as_str().expect("kind").to_owned())
        .collect()
}

async fn order(app: &TestApp, user: &User, order_id: Uuid) -> Value {
    app.get(&format!("/api/v1/orders/{order_id}"), Some(&user.token))
        .await
        .json()
        .await
        .expect("order")
}

/// Paid through the sandbox provider: captured, in escrow.
async fn paid_order(app: &TestApp, customer: &User, body: &Value) -> (Uuid, Uuid) {
    app.paid_through_sandbox(customer, body, "succeed").await
}

fn starting_in_days(days: i64) -> Value {
    let mut body = tests::order_body();
    body["scheduled_start"] = (chrono::Utc::now() + chrono::Duration::days(days))
        .to_rfc3339()
        .into();
    body
}

#[tokio::test]
async fn admins_reschedule_move_change_the_price_and_cancel_with_who_and_why_and_both_sides_told() {
    let app = tests::spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let post = |path: String, user: &User, body: Value| {
        let app = &app;
        let token = user.token.clone();
        async move { app.post(&path, Some(&token), &body).await }
    };

    // An order the worker holds, and a second one of theirs a day later.
    let (first, _) = paid_order(&app, &customer, &starting_in_days(2)).await;
    assert_eq!(
        app.assign(first, worker.id, &admin).await.status(),
        StatusCode::OK
    );
    let (second, _) = paid_order(&app, &customer, &starting_in_days(3)).await;
    assert_eq!(
        app.assign(second, worker.id, &admin).await.status(),
        StatusCode::OK
    );
    let second_start = order(&app, &customer, second).await["scheduled_start"].clone();

    let reschedule = format!("/api/v1/admin/orders/{first}/reschedule");
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for (body, status) in [
        (
            json!({"scheduled_start": past, "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"scheduled_start": second_start, "reason": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        assert_eq!(
            post(reschedule.clone(), &admin, body).await.status(),
            status
        );
    }
    assert_eq!(
        post(
            reschedule.clone(),
            &customer,
            json!({"scheduled_start": second_start, "reason": "x"})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    // Onto the worker's other job: refused, nothing changes.
    let events_before = app.event_count().await;
    let clash = post(
        reschedule.clone(),
        &admin,
        json!({"scheduled_start": second_start, "reason": "客户要求 / customer asked"}),
    )
    .await;
    assert_problem(clash, StatusCode::CONFLICT, "/problems/conflict").await;
    assert_eq!(app.event_count().await, events_before);
    // To a free time: the order and the worker's booked time move together.
    // Whole seconds: the read model keeps microseconds.
    let new_start = (chrono::Utc::now() + chrono::Duration::days(4))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let moved = post(
        reschedule,
        &admin,
        json!({"scheduled_start": new_start, "reason": "客户出差，改到周末 / the customer is away"}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let booked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'worker' AND aggregate_id = $1
            AND event_type = 'WorkerBooked' AND payload->'WorkerBooked'->>'order_id' = $2",
    )
    .bind(worker.id.to_string())
    .bind(first.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(booked, 2, "booked at the old time, then at the new one");
    app.wait_for_order(&customer.token, first, |order| {
        order["scheduled_start"].as_str().is_some_and(|start| {
            chrono::DateTime::parse_from_rfc3339(start).expect("time")
                == chrono::DateTime::parse_from_rfc3339(&new_start).expect("time")
        })
    })
    .await;
    assert!(kinds_told(&app, &customer)
        .await
        .contains(&"order_rescheduled".to_owned()));
    assert!(kinds_told(&app, &worker)
        .await
        .contains(&"order_rescheduled".to_owned()));

    // Another address: sealed for the customer, searchable, in the audit trail with its reason.
    let moved_house = post(
        format!("/api/v1/admin/orders/{first}/address"),
        &admin,
        json!({"address": {"city": "上海市", "district": "徐汇区", "detail": "漕溪北路 88 号",
                           "contact_name": "赵先生", "contact_phone": "13900001234",
                           "location": {"latitude": 31.19, "longitude": 121.43, "system": "gcj02"}},
               "reason": "客户搬家 / the customer moved"}),
    )
    .await;
    assert_eq!(moved_house.status(), StatusCode::OK);
    app.wait_for_order(&customer.token, first, |order| {
        order["district"] == "徐汇区"
    })
    .await;
    let shown = order(&app, &customer, first).await;
    assert_eq!(shown["contact_name"], "赵先生");
    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/admin/audit/streams/order/{first}"),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("history");
    let changed = history
        .iter()
        .find(|event| event["event_type"] == "AddressChanged")
        .expect("the change");
    assert_eq!(changed["metadata"]["actor_id"], admin.id.to_string());
    assert_eq!(
        changed["payload"]["AddressChanged"]["reason"],
        "客户搬家 / the customer moved"
    );
    assert!(kinds_told(&app, &worker)
        .await
        .contains(&"order_address_changed".to_owned()));

    // A lower price after payment: the difference goes back; a higher one is refused.
    let (priced, payment_id) = paid_order(&app, &customer, &starting_in_days(5)).await;
    let price = format!("/api/v1/admin/orders/{priced}/price");
    let higher = post(
        price.clone(),
        &admin,
        json!({"total": 20_000, "reason": "加钟 / longer"}),
    )
    .await;
    assert_problem(higher, StatusCode::CONFLICT, "/problems/illegal-state").await;
    let same = post(
        price.clone(),
        &admin,
        json!({"total": 15_000, "reason": "同价 / same"}),
    )
    .await;
    assert_problem(
        same,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let lower = post(
        price,
        &admin,
        json!({"total": 12_000, "reason": "少做一小时 / one hour less"}),
    )
    .await;
    assert_eq!(lower.status(), StatusCode::OK);
    let payment: Value = app
        .get(
            &format!("/api/v1/payments/{payment_id}"),
            Some(&customer.token),
        )
        .await
        .json()
        .await
        .expect("payment");
    assert_eq!(payment["refunded"], 3_000);
    assert_eq!(payment["in_escrow"], 12_000);
    app.wait_for_order(&customer.token, priced, |order| order["total"] == 12_000)
        .await;
    assert!(kinds_told(&app, &customer)
        .await
        .contains(&"order_price_adjusted".to_owned()));

    // Cancelled by the desk three hours before the start, with a worker: still a full refund.
    let (cancelled, cancelled_payment) =
        paid_order(&app, &customer, &tests::order_body_starting_in(180)).await;
    let other = app.qualified_worker(&["daily_cleaning"], &admin).await;
    assert_eq!(
        app.assign(cancelled, other.id, &admin).await.status(),
        StatusCode::OK
    );
    let path = format!("/api/v1/admin/orders/{cancelled}/cancel");
    let bad = post(
        path.clone(),
        &admin,
        json!({"reason": "x", "refund": "some"}),
    )
    .await;
    assert_problem(
        bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let done = post(
        path,
        &admin,
        json!({"reason": "服务人员生病 / the worker fell ill"}),
    )
    .await;
    assert_eq!(done.status(), StatusCode::OK);
    let refunded: Value = app
        .get(
            &format!("/api/v1/payments/{cancelled_payment}"),
            Some(&customer.token),
        )
        .await
        .json()
        .await
        .expect("payment");
    assert_eq!(refunded["refunded"], 15_000);
    assert!(kinds_told(&app, &other)
        .await
        .contains(&"order_cancelled_by_admin".to_owned()));

    // The dashboard: orders by day, service and status.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.wait_for_projections().await;
        let stats: Vec<Value> = app
            .get("/api/v1/admin/order-stats", Some(&admin.token))
            .await
            .json()
            .await
            .expect("stats");
        let orders: i64 = stats
            .iter()
            .map(|row| row["orders"].as_i64().expect("n"))
            .sum();
        let cancelled_rows: i64 = stats
            .iter()
            .filter(|row| row["status"] == "cancelled")
            .map(|row| row["orders"].as_i64().expect("n"))
            .sum();
        if orders == 4 && cancelled_rows == 1 {
            assert!(stats.iter().all(|row| row["service"] == "daily_cleaning"));
            let value: i64 = stats
                .iter()
                .map(|row| row["total"].as_i64().expect("fen"))
                .sum();
            assert_eq!(value, 15_000 * 3 + 12_000);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the statistics never added up: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let backwards = app
        .get(
            "/api/v1/admin/order-stats?from=2026-02-01&to=2026-01-01",
            Some(&admin.token),
        )
        .await;
    assert_problem(
        backwards,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    app.stop().await;
}
