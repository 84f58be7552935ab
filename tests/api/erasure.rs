use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, run_anjia, spawn_app};

/// Runs `anjia erase-person` for `person`, as its own process; answers its report.
async fn erase(app: &tests::TestApp, person: uuid::Uuid) -> String {
    let database_url = app.database_url.clone();
    let person = person.to_string();
    tokio::task::spawn_blocking(move || run_anjia(&database_url, &["erase-person", &person]))
        .await
        .expect("erase")
}

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
    assert_eq!(before["note"], "家里有猫 / there is a cat");

    // Neither the phone numbers nor the street address appear in the log in the clear.
    let leaks: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE payload::text LIKE '%13800135678%' OR payload::text LIKE '%13912345678%'
            OR payload::text LIKE '%世纪大道%' OR payload::text LIKE '%王女士%' OR payload::text LIKE '%李女士%'
            OR payload::text LIKE '%家里有猫%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("scan");
    assert_eq!(leaks, 0, "personal data in the clear in the event log");

    let output = erase(&app, customer.id).await;
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
    assert_eq!(after["note"], Value::Null, "the note is gone with its key");
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
    erase(&app, worker.id).await;
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

#[tokio::test]
async fn an_emergency_contacts_relation_and_a_bank_account_holder_are_sealed_and_erased_with_their_person(
) {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let contact = app
        .client
        .put(app.url("/api/v1/me/emergency-contact"))
        .bearer_auth(&customer.token)
        .json(&json!({"name": "赵建国", "phone": "13700001111", "relation": "表舅"}))
        .send()
        .await
        .expect("contact");
    assert_eq!(contact.status(), StatusCode::OK);
    let account = app
        .client
        .put(app.url("/api/v1/worker/bank-account"))
        .bearer_auth(&worker.token)
        .json(&json!({"holder_name": "欧阳秀梅", "bank": "中国银行", "number": "6222021234567891234"}))
        .send()
        .await
        .expect("account");
    assert_eq!(account.status(), StatusCode::NO_CONTENT);
    app.wait_for_projections().await;
    let profile: Value = app
        .get("/api/v1/me/profile", Some(&customer.token))
        .await
        .json()
        .await
        .expect("profile");
    assert_eq!(
        profile["emergency_contact"]["relation"], "表舅",
        "{profile}"
    );

    // Neither the relation nor the holder's name is in the log in clear.
    let leaks: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE payload::text LIKE '%表舅%' OR payload::text LIKE '%欧阳秀梅%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("scan");
    assert_eq!(leaks, 0, "personal data in the clear in the event log");
    let versions: Vec<String> = sqlx::query_scalar(
        "SELECT event_version FROM events WHERE event_type IN ('EmergencyContactSet', 'BankAccountSet')",
    )
    .fetch_all(&app.pool)
    .await
    .expect("versions");
    assert_eq!(versions, vec!["2.0".to_owned(), "2.0".to_owned()]);

    // Erasing the worker: their holder name cannot be opened any more.
    erase(&app, worker.id).await;
    let holder: String = sqlx::query_scalar(
        "SELECT payload->'BankAccountSet'->'account'->>'holder_name' FROM events
          WHERE event_type = 'BankAccountSet' AND aggregate_id = $1",
    )
    .bind(worker.id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("holder");
    assert_eq!(
        app.vault
            .open(&domain::Sealed::from_ciphertext(holder))
            .await
            .expect("vault"),
        None
    );
    // Erasing the customer: the relation goes with the rest of the contact.
    erase(&app, customer.id).await;
    let relation: Option<String> =
        sqlx::query_scalar("SELECT emergency_relation FROM read_customers WHERE customer_id = $1")
            .bind(customer.id)
            .fetch_one(&app.pool)
            .await
            .expect("row");
    assert_ne!(relation.as_deref(), Some("表舅"));
    app.stop().await;
}

#[tokio::test]
async fn an_emergency_contact_written_before_relations_were_sealed_still_reads() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    // A 1.0 event, as the platform wrote them before: the relation in clear.
    let sealed = app
        .vault
        .seal_all(customer.id, &["钱老师", "13600002222"])
        .await
        .expect("sealed");
    let payload = json!({"EmergencyContactSet": {"contact": {
        "name": sealed[0].as_str(), "phone": sealed[1].as_str(), "relation": "同事"},
        "set_at": chrono::Utc::now()}});
    let next: i64 = sqlx::query_scalar(
        "SELECT COALESCE(max(sequence), 0) + 1 FROM events WHERE aggregate_type = 'customer' AND aggregate_id = $1",
    )
    .bind(customer.id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("sequence");
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('customer', $1, $2, 'EmergencyContactSet', '1.0', $3, '{}')",
    )
    .bind(customer.id.to_string())
    .bind(next)
    .bind(&payload)
    .execute(&app.pool)
    .await
    .expect("an old event");
    app.wait_for_projections().await;
    let profile: Value = app
        .get("/api/v1/me/profile", Some(&customer.token))
        .await
        .json()
        .await
        .expect("profile");
    assert_eq!(
        profile["emergency_contact"]["relation"], "同事",
        "{profile}"
    );
    // The command side loads it too: a new contact is set over it.
    let contact = app
        .client
        .put(app.url("/api/v1/me/emergency-contact"))
        .bearer_auth(&customer.token)
        .json(&json!({"name": "钱老师", "phone": "13600002222", "relation": "朋友"}))
        .send()
        .await
        .expect("contact");
    assert_eq!(contact.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_workers_reported_position_is_sealed_and_only_its_cell_outlives_the_worker() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let order_id = app.dispatchable_order(&customer, &admin).await;
    for (step, body) in [
        ("grab", json!({})),
        ("depart", json!({})),
        (
            "location",
            json!({"latitude": 31.24567, "longitude": 121.47891, "system": "gcj02", "accuracy_m": 20}),
        ),
    ] {
        let response = app
            .post(
                &format!("/api/v1/orders/{order_id}/{step}"),
                Some(&worker.token),
                &body,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{step}");
    }
    let tracking = || async {
        app.get(
            &format!("/api/v1/orders/{order_id}/tracking"),
            Some(&customer.token),
        )
        .await
        .json::<Value>()
        .await
        .expect("tracking")
    };
    // The customer follows the worker precisely...
    let seen = tracking().await;
    assert_eq!(seen["last_location"]["latitude"], 31.24567, "{seen}");
    // ...but the log holds the position sealed, beside its kilometre cell.
    let stored: Value = sqlx::query_scalar(
        "SELECT payload->'WorkerLocationReported'->'location' FROM events
          WHERE event_type = 'WorkerLocationReported' AND aggregate_id = $1",
    )
    .bind(order_id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("report");
    assert!(
        stored["sealed"].as_str().unwrap_or("").starts_with("v1."),
        "{stored}"
    );
    assert_eq!(stored["cell"]["latitude"], 31.25);
    assert!(!stored.to_string().contains("31.24567"), "{stored}");
    // Once the worker is erased, only the cell is left to show.
    erase(&app, worker.id).await;
    let seen = tracking().await;
    assert_eq!(seen["last_location"]["latitude"], 31.25, "{seen}");
    app.stop().await;
}
