//! Sessions, customers and data keys served from memory (`application::fresh`): served while
//! the tables are locked, and every change heard by every process within the stated bound.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{order_body, spawn_app, ServerProcess, TestApp};

/// The most a process may serve what changed elsewhere: `fresh::STALE_AFTER` plus one beat.
const BOUND: Duration = Duration::from_millis(2_500);

async fn in_memory(app: &TestApp, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let readiness: Value = app
            .client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        if readiness["caches_in_memory"] == true {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "caches never trusted: {readiness}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status_of(request: reqwest::RequestBuilder) -> StatusCode {
    request.send().await.expect("request").status()
}

/// Polls until `refused` says so; returns how long it took. Panics past the bound.
async fn refused_within_bound<F, Fut>(mut attempt: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if attempt().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < BOUND,
            "still served as before {BOUND:?} after the change"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_session_is_checked_from_memory_and_its_revocation_reaches_every_process() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let other = ServerProcess::start(&app.database_url).await;
    in_memory(&app, &app.address).await;
    in_memory(&app, &other.address).await;
    let me = |base: &str, token: &str| {
        app.client
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(token)
    };
    assert_eq!(
        status_of(me(&other.address, &customer.token)).await,
        StatusCode::OK
    );

    // With `sessions` locked against every reader, the other process still answers: the
    // session comes from its memory.
    let mut lock = app.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        status_of(me(&other.address, &customer.token)),
    )
    .await
    .expect("answered while the table was locked");
    assert_eq!(answered, StatusCode::OK);
    lock.rollback().await.expect("unlock");

    // Revoked through this process: this process refuses the token at once, the other one
    // within the bound.
    let signed_out = app
        .post(
            "/api/v1/sessions/sign-out-everywhere",
            Some(&customer.token),
            &json!({}),
        )
        .await;
    assert_eq!(signed_out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status_of(me(&app.address, &customer.token)).await,
        StatusCode::UNAUTHORIZED
    );
    refused_within_bound(|| async {
        status_of(me(&other.address, &customer.token)).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // A revocation written by hand, by no process at all, is heard too (the trigger).
    let again = app.register_customer().await;
    assert_eq!(
        status_of(me(&other.address, &again.token)).await,
        StatusCode::OK
    );
    sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'by hand' WHERE session_id = $1",
    )
    .bind(again.session_id)
    .execute(&app.pool)
    .await
    .expect("revoke");
    refused_within_bound(|| async {
        status_of(me(&other.address, &again.token)).await == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test]
async fn a_customers_standing_is_read_from_memory_yet_a_suspension_elsewhere_stops_their_orders() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let other = ServerProcess::start(&app.database_url).await;
    in_memory(&app, &other.address).await;
    let place = |body: &Value| {
        app.client
            .post(format!("{}/api/v1/orders", other.address))
            .bearer_auth(&customer.token)
            .json(body)
            .send()
    };

    // What a customer writes, their next request reads: an address added on the other
    // process is there for the order placed right after it, on that process.
    let added = app
        .client
        .post(format!("{}/api/v1/me/addresses", other.address))
        .bearer_auth(&customer.token)
        .json(&json!({"label": "家", "address": {"city": "上海市", "district": "黄浦区", "detail": "人民大道 200 号",
                      "contact_name": "王女士", "contact_phone": "13800001111",
                      "location": {"latitude": 31.2304, "longitude": 121.4737, "system": "gcj02"}}}))
        .send()
        .await
        .expect("request");
    assert_eq!(added.status(), StatusCode::CREATED);
    let address_id = added.json::<Value>().await.expect("json")["address_id"].clone();
    let mut body = order_body();
    body.as_object_mut().expect("object").remove("address");
    body["address_id"] = address_id;
    let placed = place(&body).await.expect("request");
    assert_eq!(
        placed.status(),
        StatusCode::CREATED,
        "{:?}",
        placed.text().await
    );

    // With `person_keys` locked against every reader, the other process still seals.
    let mut lock = app.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE person_keys IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock keys");
    // The order's note is sealed under the customer's key: it too comes from memory.
    body["note"] = json!("门口有狗，请先敲门");
    let placed = tokio::time::timeout(Duration::from_secs(10), place(&body))
        .await
        .expect("answered while the customer's key was locked")
        .expect("request");
    assert_eq!(placed.status(), StatusCode::CREATED);
    lock.rollback().await.expect("unlock");

    // Suspended through this process: the other one refuses their next orders within the bound.
    let suspended = app
        .post(
            &format!("/api/v1/admin/customers/{}/suspend", customer.id),
            Some(&admin.token),
            &json!({"reason": "测试 / test"}),
        )
        .await;
    assert_eq!(suspended.status(), StatusCode::OK);
    refused_within_bound(|| async {
        place(&body).await.expect("request").status() == StatusCode::FORBIDDEN
    })
    .await;
}
