use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, run_anjia, spawn_app};

#[tokio::test]
async fn personal_data_is_sealed_in_the_log_and_erasing_a_person_makes_it_unreadable_everywhere() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let order_id = app.place_order(&customer).await;
    let before = app
        .wait_for_order(&admin.token, order_id, |order| {
            order["status"] == "awaiting_payment"
        })
        .await;
    assert_eq!(before["contact_phone"], "138****5678");
    assert_eq!(before["address_detail"], "世纪大道 100 号 2 栋 301");
    assert_eq!(before["contact_name"], "王女士");

    // Neither the phone numbers nor the street address appear in the log in the clear.
    let leaks: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE payload::text LIKE '%13800135678%' OR payload::text LIKE '%13912345678%'
            OR payload::text LIKE '%世纪大道%' OR payload::text LIKE '%王女士%' OR payload::text LIKE '%李女士%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("scan");
    assert_eq!(leaks, 0, "personal data in the clear in the event log");

    let output = {
        let database_url = app.database_url.clone();
        let person = customer.id.to_string();
        tokio::task::spawn_blocking(move || run_anjia(&database_url, &["erase-person", &person]))
            .await
            .expect("erase")
    };
    let report: Value = serde_json::from_str(&output).expect("report");
    assert_eq!(report["key_destroyed"], true);
    assert_eq!(report["sign_in_scrubbed"], true);

    // The order is still there, with its money and status; its personal parts are gone.
    let after = app
        .wait_for_order(&admin.token, order_id, |order| {
            order["address_detail"] == "已删除 / erased"
        })
        .await;
    assert_eq!(after["contact_phone"], "已删除 / erased");
    assert_eq!(after["contact_name"], "已删除 / erased");
    assert_eq!(after["total"], before["total"]);
    assert_eq!(after["status"], before["status"]);
    assert_eq!(after["city"], "上海市");

    let profile: (String, Option<String>) =
        sqlx::query_as("SELECT name, phone_masked FROM read_customers WHERE customer_id = $1")
            .bind(customer.id)
            .fetch_one(&app.pool)
            .await
            .expect("profile row");
    assert_eq!(
        profile,
        (
            "已删除 / erased".to_owned(),
            Some("已删除 / erased".to_owned())
        )
    );

    // The sealed values in the log no longer open, and the log itself is untouched.
    let sealed: Vec<String> = sqlx::query_scalar(
        "SELECT payload -> 'OrderPlaced' -> 'booking' -> 'address' ->> 'contact_phone' FROM events WHERE event_type = 'OrderPlaced'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("sealed values");
    assert_eq!(sealed.len(), 1);
    let opened = app
        .vault
        .open(&domain::Sealed::from_ciphertext(sealed[0].clone()))
        .await
        .expect("vault");
    assert_eq!(opened, None);
    let broken: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events e
          WHERE e.hash <> event_hash(e.prev_hash, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload::text, e.metadata::text)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("verify");
    assert_eq!(broken, 0);

    // The person can no longer sign in, and their sessions are over.
    assert_problem(
        app.get("/api/v1/me", Some(&customer.token)).await,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthenticated",
    )
    .await;
    let logins: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM credentials WHERE login LIKE '%@example.com' AND role = 'customer'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(logins, 0);
    // Nothing more can be sealed for them.
    let refused = app.vault.seal(customer.id, "13800135678").await;
    assert!(matches!(refused, Err(vault::VaultError::Erased(_))));
    app.stop().await;
}

#[tokio::test]
async fn an_erased_workers_directory_entry_keeps_their_skills_but_not_their_phone() {
    let app = spawn_app().await;
    let worker = app.register_worker(&["home_repair"]).await;
    app.wait_for_projections().await;
    let entry: Value = app
        .get(&format!("/api/v1/workers/{}", worker.id), None)
        .await
        .json()
        .await
        .expect("entry");
    assert_eq!(entry["phone"], "137****5678");
    assert_eq!(entry["name"], "张阿姨");
    let database_url = app.database_url.clone();
    let person = worker.id.to_string();
    tokio::task::spawn_blocking(move || run_anjia(&database_url, &["erase-person", &person]))
        .await
        .expect("erase");
    let entry: Value = app
        .get(&format!("/api/v1/workers/{}", worker.id), None)
        .await
        .json()
        .await
        .expect("entry");
    assert_eq!(entry["phone"], "已删除 / erased");
    assert_eq!(entry["name"], "已删除 / erased");
    assert_eq!(entry["skills"], json!(["home_repair"]));
    app.stop().await;
}
