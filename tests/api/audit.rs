//! The replayable audit trail: a stream's history with its metadata, its state replayed as of
//! any event or moment, the global log, `anjia audit verify` against a tampered log, and
//! `anjia audit export` re-verified from the exported lines alone.

use std::collections::HashMap;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::Value;
use tests::{assert_problem, spawn_app, TestApp, User};
use uuid::Uuid;

async fn get_json(app: &TestApp, path: &str, user: &User) -> Value {
    let response = app.get(path, Some(&user.token)).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_streams_history_shows_who_acted_and_its_state_replays_as_of_any_event_or_moment() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let before_payment = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.pay(order_id, &admin).await;

    let stream = format!("/api/v1/admin/audit/streams/order/{order_id}");
    let history = get_json(&app, &stream, &admin).await;
    let history = history.as_array().expect("events");
    assert_eq!(history[0]["event_type"], "OrderPlaced");
    assert_eq!(history[0]["sequence"], 1);
    assert_eq!(history[0]["metadata"]["actor_id"], customer.id.to_string());
    assert_eq!(history[0]["metadata"]["actor_role"], "customer");
    assert!(history[0]["metadata"]["request_id"].is_string());
    assert!(history[0]["metadata"]["client_ip"].is_string());
    let paid = history
        .iter()
        .find(|event| event["event_type"] == "PaymentRecorded")
        .expect("the payment");
    assert_eq!(paid["metadata"]["actor_id"], admin.id.to_string());
    assert_eq!(paid["metadata"]["actor_role"], "admin");

    let as_of = |query: &str| format!("{stream}/state{query}");
    let placed = get_json(&app, &as_of("?sequence=2"), &admin).await;
    assert_eq!(placed["sequence"], 2);
    assert_eq!(placed["state"]["status"], "awaiting_payment");
    let then = get_json(
        &app,
        &as_of(&format!(
            "?at={}",
            before_payment.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )),
        &admin,
    )
    .await;
    assert_eq!(then["state"], placed["state"], "the same moment, two ways");
    let now = get_json(&app, &as_of(""), &admin).await;
    assert_ne!(now["state"]["status"], "awaiting_payment");
    assert_eq!(now["sequence"], history.len() as i64);

    for bad in [
        "?sequence=0",
        "?sequence=2&at=2026-01-01T00:00:00Z",
        "?at=yesterday",
    ] {
        let refused = app.get(&as_of(bad), Some(&admin.token)).await;
        assert!(
            refused.status() == StatusCode::UNPROCESSABLE_ENTITY
                || refused.status() == StatusCode::BAD_REQUEST,
            "{bad}: {}",
            refused.status()
        );
    }
    let unknown = app
        .get(
            &format!("/api/v1/admin/audit/streams/spaceship/{order_id}/state"),
            Some(&admin.token),
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let missing = app
        .get(
            &format!("/api/v1/admin/audit/streams/order/{}", Uuid::new_v4()),
            Some(&admin.token),
        )
        .await;
    assert_problem(missing, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let not_admin = app.get(&stream, Some(&customer.token)).await;
    assert_eq!(not_admin.status(), StatusCode::FORBIDDEN);

    // The global log: by actor, type and time, newest first, in pages.
    let by_admin = get_json(
        &app,
        &format!(
            "/api/v1/admin/audit/events?actor_id={}&aggregate_type=order",
            admin.id
        ),
        &admin,
    )
    .await;
    let by_admin = by_admin.as_array().expect("events");
    assert!(by_admin
        .iter()
        .any(|event| event["event_type"] == "PaymentRecorded"
            && event["aggregate_id"] == order_id.to_string()));
    assert!(by_admin
        .iter()
        .all(|event| event["metadata"]["actor_id"] == admin.id.to_string()));
    let first_page = get_json(&app, "/api/v1/admin/audit/events?limit=2", &admin).await;
    let first_page = first_page.as_array().expect("events");
    assert_eq!(first_page.len(), 2);
    assert!(first_page[0]["position"].as_i64() > first_page[1]["position"].as_i64());
    let next = get_json(
        &app,
        &format!(
            "/api/v1/admin/audit/events?limit=2&before={}",
            first_page[1]["position"]
        ),
        &admin,
    )
    .await;
    assert!(next[0]["position"].as_i64() < first_page[1]["position"].as_i64());
    let placed_only = get_json(
        &app,
        &format!(
            "/api/v1/admin/audit/events?event_type=OrderPlaced&from={}",
            (before_payment - chrono::Duration::minutes(5))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        &admin,
    )
    .await;
    assert_eq!(placed_only.as_array().expect("events").len(), 1);
    let backwards = app
        .get(
            "/api/v1/admin/audit/events?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
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

fn anjia_audit(database_url: &str, args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(tests::anjia_binary())
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running anjia");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("utf-8"),
    )
}

#[tokio::test]
async fn audit_verify_reports_altered_missing_and_reordered_events_and_the_export_reverifies() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        orders.push(app.place_order(&customer).await);
    }
    let database_url = app.database_url.clone();
    let (status, report) = tokio::task::spawn_blocking({
        let url = database_url.clone();
        move || anjia_audit(&url, &["verify"])
    })
    .await
    .expect("verify");
    assert_eq!(status, 0, "{report}");
    let clean: Value = serde_json::from_str(&report).expect("report");
    assert_eq!(clean["ok"], true);
    assert!(clean["events"].as_i64() >= Some(8));

    // The export alone is enough to check every hash and link again.
    let until = Utc::now();
    let file = std::env::temp_dir().join(format!("anjia-export-{}.jsonl", Uuid::new_v4()));
    let (status, _) = tokio::task::spawn_blocking({
        let url = database_url.clone();
        let path = file.to_string_lossy().into_owned();
        let to = until.to_rfc3339();
        move || {
            anjia_audit(
                &url,
                &[
                    "export",
                    "--from",
                    "2020-01-01",
                    "--to",
                    &to,
                    "--output",
                    &path,
                ],
            )
        }
    })
    .await
    .expect("export");
    assert_eq!(status, 0);
    let exported = std::fs::read_to_string(&file).expect("export file");
    std::fs::remove_file(&file).ok();
    let expected: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE recorded_at < $1")
        .bind(until)
        .fetch_one(&app.pool)
        .await
        .expect("count");
    let lines: Vec<application::audit::ExportedEvent> = exported
        .lines()
        .map(|line| serde_json::from_str(line).expect("a line"))
        .collect();
    assert_eq!(lines.len() as i64, expected);
    let mut heads: HashMap<(String, String), String> = HashMap::new();
    for line in &lines {
        let previous = hex::decode(&line.prev_hash).expect("hex");
        let recomputed = application::audit::event_hash(
            &previous,
            &application::audit::Hashed {
                aggregate_type: &line.aggregate_type,
                aggregate_id: &line.aggregate_id,
                sequence: line.sequence,
                event_type: &line.event_type,
                event_version: &line.event_version,
                payload: &line.payload,
                metadata: &line.metadata,
            },
        );
        assert_eq!(hex::encode(recomputed), line.hash);
        let key = (line.aggregate_type.clone(), line.aggregate_id.clone());
        assert_eq!(
            heads.get(&key).cloned().unwrap_or_default(),
            line.prev_hash,
            "each event links to the one before it in the export"
        );
        heads.insert(key, line.hash.clone());
    }

    // Someone able to switch the guard off edits the log.
    let [altered, headless, swapped, truncated] = [orders[0], orders[1], orders[2], orders[3]];
    sqlx::raw_sql(&format!(
        "ALTER TABLE events DISABLE TRIGGER events_append_only;
         UPDATE events SET payload = '{{\"OrderPlaced\": {{}}}}' WHERE aggregate_id = '{altered}' AND sequence = 1;
         DELETE FROM events WHERE aggregate_id = '{headless}' AND sequence = 1;
         UPDATE events SET sequence = 100 WHERE aggregate_id = '{swapped}' AND sequence = 1;
         UPDATE events SET sequence = 1 WHERE aggregate_id = '{swapped}' AND sequence = 2;
         UPDATE events SET sequence = 2 WHERE aggregate_id = '{swapped}' AND sequence = 100;
         DELETE FROM events WHERE aggregate_id = '{truncated}' AND sequence = 2;
         ALTER TABLE events ENABLE TRIGGER events_append_only;"
    ))
    .execute(&app.pool)
    .await
    .expect("tampering");
    let (status, report) = tokio::task::spawn_blocking({
        let url = database_url.clone();
        move || anjia_audit(&url, &["verify"])
    })
    .await
    .expect("verify");
    assert_eq!(status, 2, "problems make the command fail: {report}");
    let shown = get_json(&app, "/api/v1/admin/audit/verification", &admin).await;
    assert_eq!(shown["ok"], false);
    let kinds_of = |stream: Uuid| -> Vec<String> {
        shown["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .filter(|problem| problem["aggregate_id"] == stream.to_string())
            .map(|problem| problem["kind"].as_str().expect("kind").to_owned())
            .collect()
    };
    assert_eq!(kinds_of(altered), ["altered"]);
    assert_eq!(kinds_of(headless), ["missing"]);
    assert!(
        kinds_of(swapped).contains(&"relinked".to_owned()),
        "{:?}",
        kinds_of(swapped)
    );
    assert_eq!(kinds_of(truncated), ["missing"]);
    let others = shown["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|problem| {
            ![altered, headless, swapped, truncated]
                .iter()
                .any(|id| problem["aggregate_id"] == id.to_string())
        })
        .count();
    assert_eq!(others, 0, "untouched streams are sound: {shown}");
    app.stop().await;
}
