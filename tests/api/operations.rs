//! Operating the platform: Prometheus metrics, the admins' view of recent warnings and errors,
//! and the embedded database's own commands.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app_with};

#[tokio::test]
async fn metrics_count_requests_by_route_template_commands_and_report_projector_lag_and_the_pool() {
    let app = spawn_app_with(|settings| {
        settings.metrics_token = Some("scrape-secret".into());
    })
    .await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    app.wait_for_order(&customer.token, order_id, |_| true)
        .await;

    let anonymous = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_problem(
        anonymous,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthenticated",
    )
    .await;
    let scraped = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-secret")
        .send()
        .await
        .expect("scrape");
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/plain; version=0.0.4")));
    let text = scraped.text().await.expect("text");
    for expected in [
        "anjia_http_requests_total{method=\"POST\",route=\"/api/v1/orders\",status=\"201\"}",
        "anjia_http_requests_total{method=\"GET\",route=\"/api/v1/orders/{order_id}\",status=\"200\"}",
        "anjia_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/orders/{order_id}\",le=\"+Inf\"}",
        "anjia_http_request_duration_seconds_sum{method=\"GET\",route=\"/api/v1/orders/{order_id}\"}",
        "anjia_commands_total{aggregate=\"order\",outcome=\"committed\"}",
        "anjia_projection_pending_events{projection=\"orders\"}",
        "anjia_projection_lag_seconds{projection=\"ledger\"}",
        "anjia_projections_failing 0",
        "# TYPE anjia_job_runs_total counter",
        "anjia_db_pool_connections{state=\"idle\"}",
        "anjia_db_pool_max_connections",
        "anjia_event_log_position",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    // Raw ids never become series of their own.
    assert!(!text.contains(&order_id.to_string()));
    // Every sample line is a name, optional labels and a number.
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("a sample");
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            name.starts_with("anjia_") && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{line}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn warnings_reach_the_admins_log_view_with_their_request_id_and_fields() {
    let app = tests::spawn_app().await;
    let admin = app.create_admin().await;
    // A forged payment notification is refused with a warning.
    let forged = app
        .client
        .post(app.url("/api/v1/payments/notifications/sandbox"))
        .header("x-sandbox-signature", "00")
        .header(
            "x-sandbox-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .json(&json!({"forged": true}))
        .send()
        .await
        .expect("posted");
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let request_id = forged
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .expect("a request id")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let entries: Vec<Value> = app
            .get("/api/v1/admin/logs?level=warn", Some(&admin.token))
            .await
            .json()
            .await
            .expect("entries");
        if let Some(found) = entries
            .iter()
            .find(|entry| entry["request_id"] == request_id.as_str())
        {
            break found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the warning of {request_id} never reached the view: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(entry["level"], "WARN");
    assert!(entry["message"]
        .as_str()
        .expect("message")
        .contains("refused"));
    assert_eq!(entry["fields"]["provider"], "sandbox");
    assert!(entry["fields"]["reason"].is_string());
    assert!(entry["process"].as_str().expect("process").contains(':'));
    let errors_only: Vec<Value> = app
        .get("/api/v1/admin/logs?level=error", Some(&admin.token))
        .await
        .json()
        .await
        .expect("entries");
    assert!(errors_only.iter().all(|entry| entry["level"] == "ERROR"));
    let bad = app
        .get("/api/v1/admin/logs?level=chatty", Some(&admin.token))
        .await;
    assert_problem(
        bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let customer = app.register_customer().await;
    let refused = app.get("/api/v1/admin/logs", Some(&customer.token)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn on_sigterm_requests_in_flight_finish_and_every_order_a_caller_was_told_of_is_kept() {
    let app = tests::spawn_app().await;
    let customer = app.register_customer().await;
    let server = tests::ServerProcess::start(&app.database_url).await;
    let address = server.address.clone();
    let body = tests::order_body();
    let requests: Vec<_> = (0..40)
        .map(|_| {
            let client = app.client.clone();
            let url = format!("{address}/api/v1/orders");
            let token = customer.token.clone();
            let body = body.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                    .json(&body)
                    .send()
                    .await
            })
        })
        .collect();
    // Signal as soon as the first order is stored, with the rest still arriving.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'OrderPlaced' AND metadata ->> 'actor_id' = $1",
        )
        .bind(customer.id.to_string())
        .fetch_one(&app.pool)
        .await
        .expect("count");
        if stored > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no order was ever stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = server.terminate().await;
    assert!(status.success(), "a clean exit: {status:?}");
    let mut told = Vec::new();
    for request in requests {
        // Connections opened after the signal are refused; those accepted are answered.
        if let Ok(response) = request.await.expect("joined") {
            if response.status() == StatusCode::CREATED {
                let placed: Value = response.json().await.expect("order");
                told.push(placed["order_id"].as_str().expect("id").to_owned());
            }
        }
    }
    assert!(
        !told.is_empty(),
        "some requests were accepted before the signal"
    );
    for order_id in &told {
        let kept: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'OrderPlaced'",
        )
        .bind(order_id)
        .fetch_one(&app.pool)
        .await
        .expect("count");
        assert_eq!(kept, 1, "order {order_id} was reported saved");
    }
    // The projectors (here the remaining process's) carry every one of them into the read model.
    app.wait_for_projections().await;
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM read_orders WHERE customer_id = $1")
        .bind(customer.id)
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert!(listed >= told.len() as i64);
    app.stop().await;
}

/// `anjia db`: the embedded PostgreSQL, which outlives `anjia serve`, is looked at, started,
/// reached by the URL it prints and stopped, each by a command of its own.
#[tokio::test]
async fn the_embedded_database_is_started_reached_and_stopped_with_anjia_db() {
    let var = std::env::temp_dir().join(format!("anjia-db-{}", uuid::Uuid::new_v4().simple()));
    let var_dir = var.to_string_lossy().into_owned();
    let db = |action: &str| {
        let output = std::process::Command::new(tests::anjia_binary())
            .args(["--var-dir", &var_dir, "db", action])
            .env_remove("DATABASE_URL")
            .output()
            .expect("running anjia");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, status, _) = db("status");
    assert!(ok && status.contains("state: not made yet"), "{status}");
    let (ok, _, refused) = db("url");
    assert!(!ok && refused.contains("not made yet"), "{refused}");

    let (ok, started, stderr) = db("start");
    assert!(
        ok && started.starts_with("running on 127.0.0.1:"),
        "{started}{stderr}"
    );
    let (_, status, _) = db("status");
    assert!(
        status.contains("state: running") && status.contains("port: "),
        "{status}"
    );
    let (ok, url, _) = db("url");
    assert!(ok && url.starts_with("postgres://anjia:"), "{url}");
    let pool = sqlx::PgPool::connect(url.trim())
        .await
        .expect("the printed URL connects");
    let answer: i32 = sqlx::query_scalar("SELECT 40 + 2")
        .fetch_one(&pool)
        .await
        .expect("a query");
    assert_eq!(answer, 42);
    pool.close().await;

    let (ok, stopped, stderr) = db("stop");
    assert!(ok && stopped.trim() == "stopped", "{stopped}{stderr}");
    let (_, status, _) = db("status");
    assert!(status.contains("state: stopped"), "{status}");
    assert!(
        sqlx::PgPool::connect(url.trim()).await.is_err(),
        "a stopped server answered"
    );
    // Stopping again is not an error; DATABASE_URL leaves nothing embedded to manage.
    assert!(db("stop").0);
    let elsewhere = std::process::Command::new(tests::anjia_binary())
        .args(["--var-dir", &var_dir, "db", "status"])
        .env("DATABASE_URL", url.trim())
        .output()
        .expect("running anjia");
    assert!(!elsewhere.status.success());
    let _ = std::fs::remove_dir_all(&var);
}
