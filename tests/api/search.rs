//! The admins' search, Chinese included, over orders, customers and workers.

use reqwest::StatusCode;
use serde_json::Value;
use tests::{spawn_app, TestApp, User};
use uuid::Uuid;

async fn found(app: &TestApp, admin: &User, query: &str) -> Vec<Uuid> {
    let response = app
        .get(
            &format!("/api/v1/orders?q={}", urlencode(query)),
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let page: Value = response.json().await.expect("page");
    let mut ids: Vec<Uuid> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            item["order_id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("uuid")
        })
        .collect();
    ids.sort();
    ids
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn chinese_search_finds_orders_by_part_of_a_service_place_name_or_phone_tail() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let daily = app.place_order_with(&customer, &tests::order_body()).await;
    let mut deep_body = tests::order_body();
    deep_body["service"] = "deep_cleaning".into();
    deep_body["unit_price"] = 50_000.into();
    deep_body["quantity"] = 1.into();
    deep_body["duration_minutes"] = 360.into();
    deep_body["address"]["district"] = "徐汇区".into();
    deep_body["address"]["contact_name"] = "赵先生".into();
    deep_body["address"]["contact_phone"] = "13900001234".into();
    let deep = app.place_order_with(&customer, &deep_body).await;
    let mut nanny_body = tests::order_body();
    nanny_body["service"] = "nanny".into();
    nanny_body["unit_price"] = 5_000.into();
    nanny_body["quantity"] = 8.into();
    nanny_body["duration_minutes"] = 480.into();
    let nanny = app.place_order_with(&customer, &nanny_body).await;
    app.wait_for_projections().await;

    let mut cleaning = vec![daily, deep];
    cleaning.sort();
    assert_eq!(
        found(&app, &admin, "保洁").await,
        cleaning,
        "保洁 finds both cleanings"
    );
    assert_eq!(found(&app, &admin, "深度保洁").await, vec![deep]);
    assert_eq!(found(&app, &admin, "保姆").await, vec![nanny]);
    assert_eq!(
        found(&app, &admin, "deep clean").await,
        vec![deep],
        "English prefixes"
    );
    assert_eq!(found(&app, &admin, "徐汇").await, vec![deep]);
    assert_eq!(found(&app, &admin, "赵").await, vec![deep], "one character");
    assert_eq!(
        found(&app, &admin, "1234").await,
        vec![deep],
        "a phone's last digits"
    );
    assert_eq!(
        found(&app, &admin, "保洁 浦东").await,
        vec![daily],
        "every term must match"
    );
    assert!(found(&app, &admin, "月嫂").await.is_empty());
    assert!(
        found(&app, &admin, "洁日").await.is_empty(),
        "no match across words"
    );

    let counts: Vec<Value> = app
        .get(
            &format!("/api/v1/admin/order-counts?q={}", urlencode("保洁")),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("counts");
    let total: i64 = counts
        .iter()
        .map(|count| count["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(total, 2);
    // A customer searching sees only their own orders.
    let stranger = app.register_customer().await;
    let theirs = app
        .get(
            &format!("/api/v1/orders?q={}", urlencode("保洁")),
            Some(&stranger.token),
        )
        .await
        .json::<Value>()
        .await
        .expect("page");
    assert!(theirs["items"].as_array().expect("items").is_empty());
    app.stop().await;
}
