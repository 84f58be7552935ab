//! The phone app (用户端 and 服务人员端) in Chromium, two or three people at once, over a
//! real server: `tests/browser/phone.mjs` drives the screens, these tests set the scene and
//! check what the log holds afterwards.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tests::{web_dist, TestApp, User};

fn require_build() {
    assert!(
        web_dist().join("app/index.html").exists(),
        "the phone app is not built: run scripts/build-web (scripts/test does)"
    );
}

/// Where screenshots of the phone screens go (a test artifact, not committed).
fn shots() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .join("var/screenshots/phone")
}

/// A user's login and password, as the browser signs in with them.
async fn credentials(app: &TestApp, user: &User) -> Value {
    let login: String = sqlx::query_scalar("SELECT login FROM credentials WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(&app.pool)
        .await
        .expect("the user's login");
    json!({"id": user.id, "login": login, "password": "a-good-password"})
}

/// Runs `phone.mjs` with `config` and answers its result line once it has checked `checks`
/// things with no problem.
async fn drive(app: &TestApp, config: Value, checks: usize) -> Value {
    drive_telling(app, config, checks, None).await
}

/// `drive`, sending the script's `EVENT` lines to `events`.
async fn drive_telling(
    app: &TestApp,
    config: Value,
    checks: usize,
    events: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> Value {
    let (status, last) = app
        .drive_browser_telling("phone.mjs", &config, Duration::from_secs(240), events)
        .await;
    let result: Value = serde_json::from_str(&last)
        .unwrap_or_else(|error| panic!("no result line ({error}): {last}"));
    assert!(
        status.success() && result["problems"].as_array().is_some_and(Vec::is_empty),
        "{}",
        tests::browser_failure("phone.mjs", &result, "")
    );
    assert_eq!(
        result["checks"].as_array().map(Vec::len),
        Some(checks),
        "{result:#}"
    );
    result
}

/// The door of the customer's home, as a phone's GPS gives it (WGS-84), and a point 2 km north.
const DOOR: (f64, f64) = (31.2304, 121.4737);
const TWO_KM_NORTH: f64 = 0.018;

#[tokio::test]
async fn a_customer_books_pays_and_follows_a_named_worker_who_serves_and_replies_on_two_phones() {
    require_build();
    let app = tests::spawn_app().await;
    let admin = app.create_admin().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let email = format!("lin-{}@example.com", uuid::Uuid::new_v4().simple());
    let config = json!({
        "base": app.address,
        "shots": shots(),
        "scenario": "serve",
        "email": email,
        "worker": credentials(&app, &worker).await,
        "door": {"latitude": DOOR.0, "longitude": DOOR.1},
        "away": {"latitude": DOOR.0 + TWO_KM_NORTH, "longitude": DOOR.1},
    });
    let result = drive(&app, config, 15).await;
    // The log holds what the screens showed: served by the named worker, reviewed, replied.
    let order_id: uuid::Uuid = result["order_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("the order's id");
    let (status, worker_id): (String, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT status, worker_id FROM read_orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&app.pool)
            .await
            .expect("the order");
    assert_eq!(status, "reviewed");
    assert_eq!(worker_id, Some(worker.id));
    let reply: Option<String> =
        sqlx::query_scalar("SELECT reply FROM read_reviews WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&app.pool)
            .await
            .expect("the review");
    assert!(reply.is_some_and(|reply| reply.contains("期待下次")));
    app.stop().await;
}

#[tokio::test]
async fn two_workers_grab_one_order_at_once_and_a_worker_reads_income_and_asks_to_withdraw() {
    require_build();
    let app = tests::spawn_app_with(tests::money_settles_at_once).await;
    let admin = app.create_admin().await;
    let earner = app.worker_with_income(&admin).await;
    let account = app
        .client
        .put(app.url("/api/v1/worker/bank-account"))
        .bearer_auth(&earner.token)
        .json(
            &json!({"holder_name": "张阿姨", "bank": "中国银行", "number": "6222021234567891234"}),
        )
        .send()
        .await
        .expect("bank account");
    assert!(
        account.status().is_success(),
        "bank account: {}",
        account.status()
    );
    let rivals = [
        app.qualified_worker(&["daily_cleaning"], &admin).await,
        app.qualified_worker(&["daily_cleaning"], &admin).await,
    ];
    let customer = app.register_customer().await;
    let (order_id, _) = app
        .paid_through_sandbox(&customer, &tests::order_body_starting_in(90), "succeed")
        .await;
    let config = json!({
        "base": app.address,
        "shots": shots(),
        "scenario": "race",
        "order_id": order_id,
        "rivals": [credentials(&app, &rivals[0]).await, credentials(&app, &rivals[1]).await],
        "earner": credentials(&app, &earner).await,
        "here": {"latitude": DOOR.0, "longitude": DOOR.1},
    });
    drive(&app, config, 4).await;
    let winner: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT worker_id FROM read_orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&app.pool)
            .await
            .expect("the order");
    assert!(
        rivals.iter().any(|rival| Some(rival.id) == winner),
        "{winner:?}"
    );
    let requested: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'WithdrawalRequested' AND aggregate_id = $1",
    )
    .bind(earner.id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("the withdrawal");
    assert_eq!(requested, 1);
    app.stop().await;
}

#[tokio::test]
async fn with_wechat_pay_configured_the_pay_screen_draws_its_code_and_hears_the_payment_live() {
    require_build();
    let _ = tests::providers::keys();
    let wechat = tests::providers::FakeWechatPay::start().await;
    let settings = wechat.settings();
    let app = tests::spawn_app_with(move |config| {
        config.payment_providers.wechat_pay = Some(settings);
    })
    .await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let config = json!({
        "base": app.address,
        "shots": shots(),
        "scenario": "wechat",
        "order_id": order_id,
        "customer": credentials(&app, &customer).await,
        "here": {"latitude": DOOR.0, "longitude": DOOR.1},
    });
    // The customer scans the code once the screen shows it (and its screenshot is taken).
    let (shown, mut reached) = tokio::sync::mpsc::unbounded_channel();
    let paying = async {
        let event = tokio::time::timeout(Duration::from_secs(60), reached.recv())
            .await
            .expect("the code was shown in time");
        assert_eq!(event.as_deref(), Some("wechat-code-shown"));
        let trade = wechat
            .opened()
            .first()
            .cloned()
            .expect("a transaction opened");
        wechat.customer_pays(&trade).await;
    };
    let (result, ()) = tokio::join!(drive_telling(&app, config, 2, Some(shown)), paying);
    assert_eq!(result["scenario"], "wechat");
    let status: String = sqlx::query_scalar("SELECT status FROM read_orders WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&app.pool)
        .await
        .expect("the order");
    assert_ne!(status, "awaiting_payment");
    app.stop().await;
}

/// GET `path` as `token`, expecting `status`; answers the body.
async fn read_json(app: &TestApp, path: &str, token: Option<&str>, status: u16) -> Value {
    let response = app.get(path, token).await;
    assert_eq!(response.status().as_u16(), status, "{path}");
    response.json().await.unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_routes_the_phone_app_reads_answer_their_parties_and_no_one_else() {
    let app = tests::spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let stranger = app.register_customer().await;

    // Which outside sign-in providers are set up: none here.
    let providers = read_json(&app, "/api/v1/oauth/providers", None, 200).await;
    assert_eq!(providers, json!({"wechat": false}));

    // A worker's own file: onboarding's state and working time.
    let nanny = app.onboarded_worker(&["nanny"]).await;
    app.wait_for_projections().await;
    let own = read_json(&app, "/api/v1/worker/me", Some(&nanny.token), 200).await;
    assert_eq!(own["review_status"], "pending");
    assert!(own["id_number"].as_str().is_some_and(|id| id.contains('*')));
    assert!(own["certificates"]
        .as_array()
        .is_some_and(|all| !all.is_empty()));
    assert_eq!(own["plan"], Value::Null);
    assert_eq!(own["languages"], json!(["普通话"]));
    read_json(&app, "/api/v1/worker/me", Some(&customer.token), 403).await;

    // Interviews list both sides' own, and nobody else's.
    let requested = app
        .post(
            "/api/v1/interviews",
            Some(&customer.token),
            &json!({"worker_id": nanny.id, "service": "nanny",
                    "start": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339()}),
        )
        .await;
    assert_eq!(requested.status().as_u16(), 201);
    let listed = read_json(&app, "/api/v1/interviews", Some(&customer.token), 200).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["status"], "requested");
    let theirs = read_json(&app, "/api/v1/interviews", Some(&nanny.token), 200).await;
    assert_eq!(theirs, listed);
    let none = read_json(&app, "/api/v1/interviews", Some(&stranger.token), 200).await;
    assert_eq!(none, json!([]));

    // What cancelling would refund: nothing paid yet, then all of it before a worker is
    // assigned.
    let unpaid = app.place_order(&customer).await;
    let quote = read_json(
        &app,
        &format!("/api/v1/orders/{unpaid}/cancellation"),
        Some(&customer.token),
        200,
    )
    .await;
    assert_eq!(quote, json!({"paid": 0, "refund": 0, "fee": 0}));
    let (paid, _) = app
        .paid_through_sandbox(&customer, &tests::order_body_starting_in(30), "succeed")
        .await;
    let quote = read_json(
        &app,
        &format!("/api/v1/orders/{paid}/cancellation"),
        Some(&customer.token),
        200,
    )
    .await;
    assert_eq!(quote, json!({"paid": 15_000, "refund": 15_000, "fee": 0}));
    read_json(
        &app,
        &format!("/api/v1/orders/{paid}/cancellation"),
        Some(&stranger.token),
        404,
    )
    .await;

    // The hall offers it with its district and price; the review of a served order reads
    // back to its parties.
    let cleaner = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let offers = read_json(&app, "/api/v1/offers", Some(&cleaner.token), 200).await;
    let offer = offers
        .as_array()
        .and_then(|all| all.iter().find(|offer| offer["order_id"] == json!(paid)))
        .cloned()
        .expect("the paid order is offered");
    assert_eq!(offer["district"], "浦东新区");
    assert_eq!(offer["total"], 15_000);
    app.grab_and_serve(paid, &cleaner).await;
    let review_path = format!("/api/v1/orders/{paid}/review");
    read_json(&app, &review_path, Some(&customer.token), 404).await;
    app.wait_for_projections().await;
    let reviewed = app
        .post(
            &review_path,
            Some(&customer.token),
            &json!({"quality": 5, "attitude": 4, "skill": 5, "comment": "很仔细 / careful", "tags": []}),
        )
        .await;
    assert_eq!(reviewed.status().as_u16(), 200);
    app.wait_for_projections().await;
    for token in [&customer.token, &cleaner.token] {
        let review = read_json(&app, &review_path, Some(token), 200).await;
        assert_eq!(review["attitude"], 4);
        assert_eq!(review["comment"], "很仔细 / careful");
    }
    read_json(&app, &review_path, Some(&stranger.token), 404).await;

    // A worker's page carries their level, certified skills and in-date certificates' kinds.
    let page = read_json(&app, &format!("/api/v1/workers/{}", cleaner.id), None, 200).await;
    assert_eq!(page["level"], "silver");
    assert_eq!(page["certified_skills"], json!(["daily_cleaning"]));
    assert_eq!(page["certificates"], json!(["health_certificate"]));
    assert_eq!(page["reviews"], 1);
    app.stop().await;
}
