use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, order_body_starting_in, spawn_app, ORDER_LATITUDE, ORDER_LONGITUDE};

#[tokio::test]
async fn a_full_order_goes_from_placement_to_completion_and_reads_back_through_the_read_models() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let worker = app
        .qualified_worker(&["daily_cleaning", "deep_cleaning"], &admin)
        .await;

    // Check-in opens an hour before the start, so this order starts soon.
    let order_id = app
        .place_order_with(&customer, &order_body_starting_in(30))
        .await;
    let placed = app
        .wait_for_order(&customer.token, order_id, |order| {
            order["status"] == "awaiting_payment"
        })
        .await;
    assert_eq!(placed["total"], 15_000);
    assert_eq!(placed["contact_phone"], "138****5678");
    assert_eq!(placed["status_zh"], "待支付");

    let paid = app
        .post(
            &format!("/api/v1/orders/{order_id}/payments"),
            Some(&admin.token),
            &json!({"reference": "BANK-1", "amount": 15_000}),
        )
        .await;
    assert_eq!(paid.status(), StatusCode::OK);
    for (path, who, expected) in [
        ("dispatch", &admin, "dispatching"),
        ("accept", &worker, "accepted"),
        ("depart", &worker, "on_the_way"),
        ("arrive", &worker, "arrived"),
        ("start", &worker, "in_service"),
        ("finish", &worker, "completed"),
    ] {
        if path == "accept" {
            let assigned = app
                .post(
                    &format!("/api/v1/orders/{order_id}/assignment"),
                    Some(&admin.token),
                    &json!({"worker_id": worker.id}),
                )
                .await;
            assert_eq!(assigned.status(), StatusCode::OK);
            let ack: Value = assigned.json().await.expect("ack");
            assert_eq!(ack["status"], "assigned");
        }
        // Checking in needs the worker's position, near the address.
        let body = if path == "arrive" {
            json!({"latitude": ORDER_LATITUDE, "longitude": ORDER_LONGITUDE, "system": "gcj02"})
        } else {
            json!({})
        };
        let response = app
            .post(
                &format!("/api/v1/orders/{order_id}/{path}"),
                Some(&who.token),
                &body,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let ack: Value = response.json().await.expect("ack");
        assert_eq!(ack["status"], expected, "{path}");
    }

    let completed = app
        .wait_for_order(&customer.token, order_id, |order| {
            order["status"] == "completed"
        })
        .await;
    assert_eq!(completed["worker_id"], worker.id.to_string());
    for column in [
        "paid_at",
        "assigned_at",
        "accepted_at",
        "departed_at",
        "arrived_at",
        "started_at",
        "finished_at",
    ] {
        assert!(completed[column].is_string(), "{column} should be set");
    }
    // The worker sees it in their list, the customer in theirs, the admin with a filter.
    let worker_list: Value = app
        .get("/api/v1/orders", Some(&worker.token))
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(worker_list["items"][0]["order_id"], order_id.to_string());
    let customer_list: Value = app
        .get("/api/v1/orders", Some(&customer.token))
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(customer_list["items"].as_array().map(Vec::len), Some(1));
    let admin_list: Value = app
        .get(
            "/api/v1/orders?status=completed&service=daily_cleaning",
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(admin_list["items"].as_array().map(Vec::len), Some(1));

    // Every event carries the request's metadata.
    let metadata: Vec<Value> = sqlx::query_scalar(
        "SELECT metadata::jsonb FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(order_id.to_string())
    .fetch_all(&app.pool)
    .await
    .expect("events");
    // Placed, payment requested, paid, dispatch opened at its first stage, assigned, accepted,
    // departed, arrived, started, finished.
    assert_eq!(metadata.len(), 11);
    for entry in &metadata {
        for key in [
            "event_id",
            "command_id",
            "actor_id",
            "actor_role",
            "request_id",
            "client_ip",
            "occurred_at",
        ] {
            assert!(entry[key].is_string(), "metadata lacks {key}: {entry}");
        }
    }
    assert_eq!(metadata[0]["actor_role"], "customer");
    assert_eq!(metadata[9]["actor_role"], "worker");
    assert_eq!(metadata[4]["actor_role"], "admin");

    // Reviewing completes the life; a second review is refused, naming the state.
    let reviewed = app
        .post(
            &format!("/api/v1/orders/{order_id}/review"),
            Some(&customer.token),
            &json!({"quality": 5, "attitude": 5, "skill": 4, "comment": "很好"}),
        )
        .await;
    assert_eq!(reviewed.status(), StatusCode::OK);
    let again = app
        .post(
            &format!("/api/v1/orders/{order_id}/review"),
            Some(&customer.token),
            &json!({"quality": 5, "attitude": 5, "skill": 4}),
        )
        .await;
    let problem = assert_problem(again, StatusCode::CONFLICT, "/problems/illegal-state").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("已评价"),
        "{problem}"
    );

    // A rebuild folds the whole life into one batch; it must equal the event-by-event model.
    app.wait_for_order(&customer.token, order_id, |order| {
        order["status"] == "reviewed"
    })
    .await;
    let live = order_row(&app.pool, order_id).await;
    assert_eq!(live["rating_skill"], 4);
    let rebuilt = app
        .post(
            "/api/v1/admin/projections/orders/rebuild",
            Some(&admin.token),
            &json!({}),
        )
        .await;
    assert_eq!(rebuilt.status(), StatusCode::OK);
    assert_eq!(order_row(&app.pool, order_id).await, live);
    app.stop().await;
}

async fn order_row(pool: &sqlx::PgPool, order_id: uuid::Uuid) -> Value {
    sqlx::query_scalar("SELECT to_jsonb(o) FROM read_orders o WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(pool)
        .await
        .expect("row")
}

#[tokio::test]
async fn another_customers_order_is_not_visible_and_cannot_be_cancelled() {
    let app = spawn_app().await;
    let owner = app.register_customer().await;
    let stranger = app.register_customer().await;
    let order_id = app.place_order(&owner).await;
    app.wait_for_order(&owner.token, order_id, |order| {
        order["status"] == "awaiting_payment"
    })
    .await;

    let seen = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(&stranger.token))
        .await;
    assert_problem(seen, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let cancelled = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&stranger.token),
            &json!({"reason": "想取消"}),
        )
        .await;
    // Someone else's order is not found, as a missing one: its existence stays private.
    assert_problem(cancelled, StatusCode::NOT_FOUND, "/problems/not-found").await;

    let own_cancel = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&owner.token),
            &json!({"reason": "行程有变"}),
        )
        .await;
    assert_eq!(own_cancel.status(), StatusCode::OK);
    let cancelled = app
        .wait_for_order(&owner.token, order_id, |order| {
            order["status"] == "cancelled"
        })
        .await;
    assert_eq!(cancelled["cancel_stage"], "awaiting_payment");
    assert_eq!(cancelled["cancelled_by_role"], "customer");
    app.stop().await;
}

#[tokio::test]
async fn the_catalogue_health_and_openapi_document_are_served() {
    let app = spawn_app().await;
    let catalogue: Value = app
        .get("/api/v1/catalogue", None)
        .await
        .json()
        .await
        .expect("catalogue");
    let names: Vec<&str> = catalogue
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|entry| entry["name_zh"].as_str())
        .collect();
    assert_eq!(
        names,
        ["日常保洁", "深度保洁", "保姆", "月嫂", "育婴师", "家庭维修"]
    );
    let codes = |entries: Value| -> Vec<String> {
        entries
            .as_array()
            .expect("array")
            .iter()
            .map(|entry| entry["code"].as_str().expect("code").to_owned())
            .collect()
    };
    for (query, expected) in [
        ("q=保洁", vec!["daily_cleaning", "deep_cleaning"]),
        ("q=Cleaning", vec!["daily_cleaning", "deep_cleaning"]),
        ("q=月嫂", vec!["maternity_nurse"]),
        (
            "max_price=4500&pricing_unit=per_hour",
            vec!["daily_cleaning", "nanny"],
        ),
        ("duration_minutes=37440", vec!["maternity_nurse"]),
        ("min_price=900000", vec!["maternity_nurse"]),
    ] {
        let found: Value = app
            .get(&format!("/api/v1/catalogue?{query}"), None)
            .await
            .json()
            .await
            .expect("catalogue");
        let mut found = codes(found);
        found.sort();
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        expected.sort();
        assert_eq!(found, expected, "{query}");
    }
    for bad in [
        "min_price=-1",
        "pricing_unit=per_minute",
        "duration_minutes=abc",
    ] {
        let response = app.get(&format!("/api/v1/catalogue?{bad}"), None).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let head = app
        .client
        .head(app.url("/healthz"))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);

    let document: Value = app
        .get("/api/openapi.json", None)
        .await
        .json()
        .await
        .expect("openapi");
    assert!(document["openapi"]
        .as_str()
        .unwrap_or_default()
        .starts_with("3."));
    for spec in command_api::openapi::ROUTES.iter() {
        let method = spec.method.as_str().to_lowercase();
        assert!(
            document["paths"][spec.path][&method].is_object(),
            "{} {} is not documented",
            spec.method,
            spec.path
        );
    }
    let documented: usize = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |ops| ops.len()))
        .sum();
    assert_eq!(
        documented,
        command_api::openapi::ROUTES.len(),
        "the document lists a route the access table does not"
    );
    app.stop().await;
}
