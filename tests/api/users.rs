use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, order_body, spawn_app, TestApp, User};

async fn search(app: &TestApp, admin: &User, path: &str, expected: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.get(path, Some(&admin.token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let found: Vec<Value> = response.json().await.expect("json");
        if found.len() == expected {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{path} found {} rather than {expected}: {found:?}",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn admins_find_customers_by_chinese_name_and_phone_tail_and_suspend_them_with_a_reason() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let li = app.register_customer().await;
    let wang_login = format!("wang-{}@example.com", uuid::Uuid::new_v4().simple());
    let registered = app
        .register(json!({"kind": "customer", "login": wang_login, "password": "a-good-password", "name": "王小明", "phone": "13500004321"}))
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);

    let by_name = search(&app, &admin, "/api/v1/admin/customers?q=小明", 1).await;
    assert_eq!(by_name[0]["name"], "王小明");
    assert_eq!(by_name[0]["phone"], "135****4321");
    let by_tail = search(&app, &admin, "/api/v1/admin/customers?phone_tail=5678", 1).await;
    assert_eq!(by_tail[0]["customer_id"], li.id.to_string());
    // Keyset pages: one at a time, no repeats.
    let first = search(&app, &admin, "/api/v1/admin/customers?limit=1", 1).await;
    let name = first[0]["name"].as_str().expect("name");
    let id = first[0]["customer_id"].as_str().expect("id");
    let second = search(
        &app,
        &admin,
        &format!("/api/v1/admin/customers?limit=1&after_name={name}&after_id={id}"),
        1,
    )
    .await;
    assert_ne!(second[0]["customer_id"], first[0]["customer_id"]);

    let suspended = app
        .post(
            &format!("/api/v1/admin/customers/{}/suspend", li.id),
            Some(&admin.token),
            &json!({"reason": "多次恶意取消 / repeated abusive cancellations"}),
        )
        .await;
    assert_eq!(suspended.status(), StatusCode::OK);
    let refused = app
        .post("/api/v1/orders", Some(&li.token), &order_body())
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    let listed = search(&app, &admin, "/api/v1/admin/customers?suspended=true", 1).await;
    assert_eq!(
        listed[0]["suspension_reason"],
        "多次恶意取消 / repeated abusive cancellations"
    );
    // Who, when and why are on the record.
    let (payload, metadata): (Value, Value) = sqlx::query_as(
        "SELECT payload::jsonb, metadata::jsonb FROM events WHERE aggregate_id = $1 AND event_type = 'CustomerSuspended'",
    )
    .bind(li.id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("event");
    assert_eq!(
        payload["CustomerSuspended"]["by"]["id"],
        admin.id.to_string()
    );
    assert_eq!(metadata["actor_role"], "admin");
    assert!(metadata["occurred_at"].is_string() && metadata["request_id"].is_string());

    let reinstated = app
        .post(
            &format!("/api/v1/admin/customers/{}/reinstate", li.id),
            Some(&admin.token),
            &json!({"reason": "申诉成立 / appeal upheld"}),
        )
        .await;
    assert_eq!(reinstated.status(), StatusCode::OK);
    assert_eq!(
        app.post("/api/v1/orders", Some(&li.token), &order_body())
            .await
            .status(),
        StatusCode::CREATED
    );
    let grouped = app
        .client
        .put(app.url(&format!("/api/v1/admin/customers/{}/groups", li.id)))
        .bearer_auth(&admin.token)
        .json(&json!({"groups": ["高价值客户"]}))
        .send()
        .await
        .expect("request");
    assert_eq!(grouped.status(), StatusCode::OK);
    let in_group = search(&app, &admin, "/api/v1/admin/customers?group=高价值客户", 1).await;
    assert_eq!(in_group[0]["customer_id"], li.id.to_string());
    let detail: Value = app
        .get(
            &format!("/api/v1/admin/customers/{}", li.id),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["customer"]["groups"], json!(["高价值客户"]));
    app.stop().await;
}

#[tokio::test]
async fn admins_find_workers_by_name_service_review_status_level_and_group() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let qualified = app.qualified_worker(&["maternity_nurse"], &admin).await;
    let _pending = app.register_worker(&["home_repair"]).await;
    search(&app, &admin, "/api/v1/admin/workers?q=阿姨", 2).await;
    let nurses = search(
        &app,
        &admin,
        "/api/v1/admin/workers?service=maternity_nurse&review_status=approved&level=silver",
        1,
    )
    .await;
    assert_eq!(nurses[0]["worker_id"], qualified.id.to_string());
    assert_eq!(nurses[0]["certified_skills"], json!(["maternity_nurse"]));
    search(
        &app,
        &admin,
        "/api/v1/admin/workers?review_status=pending",
        1,
    )
    .await;
    search(&app, &admin, "/api/v1/admin/workers?phone_tail=5678", 2).await;
    for bad in [
        "service=juggling",
        "review_status=maybe",
        "level=platinum",
        "phone_tail=12ab",
        "limit=0",
        "after_name=x",
    ] {
        let response = app
            .get(&format!("/api/v1/admin/workers?{bad}"), Some(&admin.token))
            .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    app.stop().await;
}
