use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app, TestApp, User};

async fn profile(app: &TestApp, customer: &User, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = app.get("/api/v1/me/profile", Some(&customer.token)).await;
        if response.status() == StatusCode::OK {
            let profile: Value = response.json().await.expect("json");
            if ready(&profile) {
                return profile;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the profile did not catch up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_customer_keeps_a_profile_with_contact_details_an_emergency_contact_and_addresses() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let registered = profile(&app, &customer, |profile| profile["name"] == "李女士").await;
    assert_eq!(registered["phone"], "139****5678");

    let updated = app
        .client
        .put(app.url("/api/v1/me/profile"))
        .bearer_auth(&customer.token)
        .json(&json!({"name": " 李晓梅 ", "phone": "13611112222", "email": "Xiaomei@Example.com"}))
        .send()
        .await
        .expect("request");
    assert_eq!(updated.status(), StatusCode::OK);
    let emergency = app
        .client
        .put(app.url("/api/v1/me/emergency-contact"))
        .bearer_auth(&customer.token)
        .json(&json!({"name": "李建国", "phone": "13733334444", "relation": "父亲"}))
        .send()
        .await
        .expect("request");
    assert_eq!(emergency.status(), StatusCode::OK);
    let added = app
        .post(
            "/api/v1/me/addresses",
            Some(&customer.token),
            &json!({"label": "父母家", "address": {"city": "北京市", "district": "海淀区", "detail": "中关村大街 27 号", "contact_name": "李建国",
                    "contact_phone": "13733334444", "location": {"latitude": 39.983, "longitude": 116.316, "system": "bd09"}}}),
        )
        .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let address_id = added.json::<Value>().await.expect("json")["address_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let shown = profile(&app, &customer, |profile| {
        profile["addresses"]
            .as_array()
            .is_some_and(|list| !list.is_empty())
    })
    .await;
    assert_eq!(shown["name"], "李晓梅");
    assert_eq!(shown["phone"], "136****2222");
    assert_eq!(shown["email"], "x***@example.com");
    assert_eq!(
        shown["emergency_contact"],
        json!({"name": "李建国", "phone": "137****4444", "relation": "父亲"})
    );
    let address = &shown["addresses"][0];
    assert_eq!(address["label"], "父母家");
    assert_eq!(address["detail"], "中关村大街 27 号");
    assert_eq!(address["contact_phone"], "137****4444");
    assert_eq!(address["coordinate_system"], "bd09");

    let removed = app
        .client
        .delete(app.url(&format!("/api/v1/me/addresses/{address_id}")))
        .bearer_auth(&customer.token)
        .send()
        .await
        .expect("request");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    profile(&app, &customer, |profile| {
        profile["addresses"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    let again = app
        .client
        .delete(app.url(&format!("/api/v1/me/addresses/{address_id}")))
        .bearer_auth(&customer.token)
        .send()
        .await
        .expect("request");
    assert_problem(again, StatusCode::NOT_FOUND, "/problems/not-found").await;
    app.stop().await;
}

#[tokio::test]
async fn bad_profile_input_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let before = app.event_count().await;
    let cases = [
        json!({"name": "   "}),
        json!({"name": "名".repeat(41)}),
        json!({"name": "李", "phone": "12345"}),
        json!({"name": "李", "email": "not-an-address"}),
        json!({"name": "李", "email": "13800135678"}),
        json!({"name": "李", "nickname": "小李"}),
        json!({"name": "'); DROP TABLE events; --", "phone": "1380013567'; --"}),
    ];
    for body in cases {
        let response = app
            .client
            .put(app.url("/api/v1/me/profile"))
            .bearer_auth(&customer.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    let bad_relation = app
        .client
        .put(app.url("/api/v1/me/emergency-contact"))
        .bearer_auth(&customer.token)
        .json(&json!({"name": "李建国", "phone": "13733334444", "relation": " "}))
        .send()
        .await
        .expect("request");
    assert_problem(
        bad_relation,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let bad_datum = app
        .post(
            "/api/v1/me/addresses",
            Some(&customer.token),
            &json!({"label": "家", "address": {"city": "北京市", "district": "海淀区", "detail": "x", "contact_name": "李",
                    "contact_phone": "13733334444", "location": {"latitude": 39.9, "longitude": 116.3, "system": "mercator"}}}),
        )
        .await;
    assert_problem(
        bad_datum,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    assert_eq!(app.event_count().await, before);
    // The injection attempt went nowhere: the events table is still there.
    let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("events table");
    app.stop().await;
}
