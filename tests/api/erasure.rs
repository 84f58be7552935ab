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
    app.order_steps(
        order_id,
        &worker,
        [
            ("grab", json!({})),
            ("depart", json!({})),
            (
                "location",
                json!({"latitude": 31.24567, "longitude": 121.47891, "system": "gcj02", "accuracy_m": 20}),
            ),
        ],
    )
    .await;
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

/// The payload of the one event of `event_type` in `aggregate_id`'s stream.
async fn stored_event(app: &tests::TestApp, event_type: &str, aggregate_id: uuid::Uuid) -> Value {
    sqlx::query_scalar("SELECT payload FROM events WHERE event_type = $1 AND aggregate_id = $2")
        .bind(event_type)
        .bind(aggregate_id.to_string())
        .fetch_one(&app.pool)
        .await
        .expect("the event")
}

#[tokio::test]
async fn homes_and_bases_are_sealed_and_only_their_cells_outlive_their_owners() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let base = app
        .client
        .put(app.url("/api/v1/worker/base"))
        .bearer_auth(&worker.token)
        .json(&json!({"latitude": 31.21234, "longitude": 121.45678, "system": "gcj02", "radius_km": 20}))
        .send()
        .await
        .expect("base");
    assert_eq!(base.status(), StatusCode::NO_CONTENT);
    let saved = app
        .post(
            "/api/v1/me/addresses",
            Some(&customer.token),
            &json!({"label": "家", "address": {"city": "上海市", "district": "徐汇区", "detail": "漕溪北路 1 号", "contact_name": "王女士",
                    "contact_phone": "13800135678", "location": {"latitude": 31.19876, "longitude": 121.43219, "system": "gcj02"}}}),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::CREATED);
    // Check-in opens an hour before the start, so this order starts soon.
    let order_id = app
        .place_order_with(&customer, &tests::order_body_starting_in(30))
        .await;
    app.pay(order_id, &admin).await;
    app.open_dispatch(order_id, &admin).await;

    // The log keeps each point sealed under its owner's key, beside its public cell.
    let placed = stored_event(&app, "OrderPlaced", order_id).await;
    let home = &placed["OrderPlaced"]["booking"]["address"]["location"];
    let based = stored_event(&app, "ServiceBaseSet", worker.id).await;
    let added = stored_event(&app, "AddressAdded", customer.id).await;
    for (point, owner, cell, clear) in [
        (home, customer.id, json!([31.23, 121.47]), "31.2304"),
        (
            &added["AddressAdded"]["address"]["location"],
            customer.id,
            json!([31.2, 121.43]),
            "31.19876",
        ),
        (
            &json!({"sealed": based["ServiceBaseSet"]["sealed"], "cell": based["ServiceBaseSet"]["base"]["location"]}),
            worker.id,
            json!([31.21, 121.46]),
            "31.21234",
        ),
    ] {
        let sealed = point["sealed"].as_str().unwrap_or("");
        assert!(sealed.starts_with(&format!("v1.{owner}.")), "{point}");
        assert_eq!(
            json!([point["cell"]["latitude"], point["cell"]["longitude"]]),
            cell,
            "{point}"
        );
        assert!(!point.to_string().contains(clear), "{point}");
    }
    for (event_type, id) in [("OrderPlaced", order_id), ("ServiceBaseSet", worker.id)] {
        let event = stored_event(&app, event_type, id).await.to_string();
        assert!(
            !event.contains("31.2304") && !event.contains("31.21234"),
            "{event}"
        );
    }
    // The worker's calendar keeps the job's cell only, and no read model keeps the base.
    app.wait_for_projections().await;
    app.order_steps(order_id, &worker, [("grab", json!({}))])
        .await;
    let booked = stored_event(&app, "WorkerBooked", worker.id).await;
    assert_eq!(booked["WorkerBooked"]["location"]["latitude"], 31.23);
    app.wait_for_projections().await;
    let dispatch_state: Value =
        sqlx::query_scalar("SELECT state::jsonb FROM read_dispatch_workers WHERE worker_id = $1")
            .bind(worker.id)
            .fetch_one(&app.pool)
            .await
            .expect("the dispatch read model");
    assert!(
        !dispatch_state.to_string().contains("31.21234"),
        "{dispatch_state}"
    );

    // The worker is guided to the door itself...
    let navigation = || async {
        app.get(
            &format!("/api/v1/orders/{order_id}/navigation"),
            Some(&worker.token),
        )
        .await
        .json::<Value>()
        .await
        .expect("navigation")
    };
    let guided = navigation().await;
    assert_eq!(guided["gcj02"]["latitude"], 31.2304, "{guided}");
    assert!(guided["distance_m"].is_u64(), "from the base: {guided}");

    // ...and once the customer is erased, to the cell, where a check-in is still accepted.
    erase(&app, customer.id).await;
    let guided = navigation().await;
    assert_eq!(guided["gcj02"]["latitude"], 31.23, "{guided}");
    app.order_steps(
        order_id,
        &worker,
        [
            ("depart", json!({})),
            (
                "arrive",
                json!({"latitude": 31.2304, "longitude": 121.4737, "system": "gcj02"}),
            ),
        ],
    )
    .await;
    app.stop().await;
}
