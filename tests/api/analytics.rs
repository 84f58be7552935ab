//! The analytics warehouse (DuckDB): loaded from the event log incrementally, and its reports
//! agree with the read models.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, TestApp, User};

mod activity;
mod files;
mod sql;

async fn refresh(app: &TestApp, admin: &User) -> Value {
    let response = app
        .post(
            "/api/v1/admin/analytics/refresh",
            Some(&admin.token),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("refresh report")
}

const GMV: &str =
    "SELECT sum(amount)::bigint FROM read_payments WHERE status IN ('captured', 'released')";
const PAID_ORDERS: &str =
    "SELECT count(DISTINCT order_id) FROM read_payments WHERE status IN ('captured', 'released')";

/// The revenue report's totals are the ledger read models' sums.
async fn revenue_agrees(app: &TestApp, report: &Value) {
    let gmv = scalar(app, GMV).await;
    let paid_orders = scalar(app, PAID_ORDERS).await;
    let refunds = scalar(app, "SELECT sum(amount)::bigint FROM read_refunds").await;
    let payouts = scalar(
        app,
        "SELECT sum(amount)::bigint FROM read_wallet_incomes WHERE kind = 'service'",
    )
    .await;
    let fee_shares = scalar(
        app,
        "SELECT sum(amount)::bigint FROM read_wallet_incomes WHERE kind = 'cancellation_fee'",
    )
    .await;
    let kept_fees = scalar(
        app,
        "SELECT sum(fee - fee_to_worker)::bigint FROM read_refunds",
    )
    .await;
    let released = scalar(
        app,
        "SELECT sum(amount)::bigint FROM read_payments WHERE status = 'released'",
    )
    .await;
    assert_eq!(report["total_gmv_fen"], gmv, "{report}");
    assert_eq!(report["total_refunds_fen"], refunds);
    assert_eq!(report["total_net_fen"], gmv - refunds);
    assert_eq!(report["total_worker_payouts_fen"], payouts);
    assert_eq!(report["total_fee_shares_fen"], fee_shares);
    assert_eq!(report["total_kept_fees_fen"], kept_fees);
    assert_eq!(report["total_commission_fen"], released - payouts);
    assert_eq!(report["paid_orders"], paid_orders);
    assert_eq!(report["average_order_fen"], gmv / paid_orders.max(1));
}

/// Each step of the orders report's funnel counts what the orders read model counts.
async fn funnel_agrees(app: &TestApp, report: &Value) {
    for (field, column) in [
        ("placed", "placed_at"),
        ("paid", "paid_at"),
        ("assigned", "assigned_at"),
        ("completed", "finished_at"),
        ("cancelled", "cancelled_at"),
    ] {
        let sql = format!("SELECT count({column}) FROM read_orders");
        assert_eq!(
            report[field].as_i64(),
            Some(scalar(app, &sql).await),
            "{field}: {report}"
        );
    }
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>(sql)
        .fetch_one(&app.pool)
        .await
        .expect(sql)
        .unwrap_or(0)
}

#[tokio::test]
async fn the_revenue_and_orders_reports_agree_with_the_read_models_and_refreshes_load_only_what_is_new(
) {
    let app = tests::spawn_app_with(|settings| {
        settings.money.settlement_period = chrono::Duration::zero();
        settings.money.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let analyst = app.create_analyst().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let body = tests::order_body_starting_in(30);
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(
            app.paid_through_sandbox(&customer, &body, "succeed")
                .await
                .0,
        );
    }
    // One served (escrow released to commission and the worker), one cancelled with a full
    // refund, one left paid.
    app.grab_and_serve(orders[0], &worker).await;
    let cancelled = app
        .post(
            &format!("/api/v1/admin/orders/{}/cancel", orders[1]),
            Some(&admin.token),
            &json!({"reason": "客户要求 / customer asked"}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(&app, "SELECT sum(amount)::bigint FROM read_wallet_incomes").await == 0
        || scalar(&app, "SELECT sum(amount)::bigint FROM read_refunds").await == 0
    {
        assert!(Instant::now() < deadline, "release and refund never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.wait_for_projections().await;
    }

    let loaded = refresh(&app, &admin).await;
    assert!(loaded["events"].as_u64().unwrap_or(0) > 0, "{loaded}");
    assert_eq!(loaded["events"], loaded["total_events"]);

    // The same figures from the read models.
    let (gmv, paid_orders) = (scalar(&app, GMV).await, scalar(&app, PAID_ORDERS).await);
    assert_eq!((gmv, paid_orders), (45_000, 3));

    let report: Value = app
        .get("/api/v1/reports/revenue", Some(&analyst.token))
        .await
        .json()
        .await
        .expect("report");
    revenue_agrees(&app, &report).await;
    assert!(report["freshness"]["refreshed_at"].is_string());
    let row = &report["rows"][0];
    assert_eq!(
        (row["service"].as_str(), row["city"].as_str()),
        (Some("daily_cleaning"), body["address"]["city"].as_str())
    );

    // The orders report against the orders read model.
    let funnel: Value = app
        .get("/api/v1/reports/orders", Some(&analyst.token))
        .await
        .json()
        .await
        .expect("orders report");
    funnel_agrees(&app, &funnel).await;
    assert_eq!(
        (funnel["placed"].as_i64(), funnel["completed"].as_i64()),
        (Some(3), Some(1))
    );
    let (stage, reason): (String, String) = sqlx::query_as(
        "SELECT cancel_stage, cancel_reason FROM read_orders WHERE cancelled_at IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .expect("cancellation");
    assert_eq!(
        funnel["cancellations"],
        json!([{"stage": stage, "reason": reason, "orders": 1}])
    );
    let minutes: f64 = sqlx::query_scalar(
        "SELECT avg(extract(epoch FROM assigned_at - paid_at) / 60.0)::float8 FROM read_orders
          WHERE assigned_at IS NOT NULL AND paid_at IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .expect("minutes");
    let reported = funnel["assign_minutes_average"].as_f64().expect("minutes");
    assert!(
        (reported - minutes).abs() < 0.001,
        "{reported} vs {minutes}"
    );

    // Filters and formats.
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .date_naive();
    let filtered = |query: String| {
        let app = &app;
        let token = analyst.token.clone();
        async move {
            app.get(&format!("/api/v1/reports/revenue?{query}"), Some(&token))
                .await
                .json::<Value>()
                .await
                .expect("report")
        }
    };
    assert_eq!(
        filtered(format!("from={today}&to={today}&service=daily_cleaning")).await["total_gmv_fen"],
        gmv
    );
    let yesterday = today - chrono::Duration::days(1);
    assert_eq!(filtered(format!("to={yesterday}")).await["rows"], json!([]));
    assert_eq!(filtered("city=拉萨".to_owned()).await["total_gmv_fen"], 0);
    let csv = app
        .get("/api/v1/reports/revenue?format=csv", Some(&analyst.token))
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv
        .headers()
        .get("content-type")
        .is_some_and(|value| value.to_str().unwrap_or_default().starts_with("text/csv")));
    let text = csv.text().await.expect("csv");
    assert!(text.starts_with("day,service,city,district,gmv_fen,"));
    assert_eq!(
        text.lines().count(),
        1 + report["rows"].as_array().map_or(0, Vec::len)
    );

    // Bad input changes nothing and says why; customers may not read reports.
    for query in [
        "from=2026-02-01&to=2026-01-01",
        "format=xml",
        "service=yoga",
        "from=yesterday",
    ] {
        assert_problem(
            app.get(
                &format!("/api/v1/reports/revenue?{query}"),
                Some(&analyst.token),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    assert_eq!(
        app.get("/api/v1/reports/revenue", Some(&customer.token))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Each refresh loads exactly the events committed since the one before (the background
    // jobs may have added some), never one again.
    let since = |before: &Value, after: &Value| {
        let (before, after) = (before.clone(), after.clone());
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM events
                  WHERE (transaction_id, position) > ($1::text::xid8, $2)
                    AND (transaction_id, position) <= ($3::text::xid8, $4)",
            )
            .bind(before["transaction_id"].as_u64().expect("xid").to_string())
            .bind(before["position"].as_i64().expect("position"))
            .bind(after["transaction_id"].as_u64().expect("xid").to_string())
            .bind(after["position"].as_i64().expect("position"))
            .fetch_one(&pool)
            .await
            .expect("count")
        }
    };
    let again = refresh(&app, &admin).await;
    assert_eq!(again["events"].as_i64(), Some(since(&loaded, &again).await));
    assert_eq!(
        again["total_events"].as_i64(),
        loaded["total_events"]
            .as_i64()
            .zip(again["events"].as_i64())
            .map(|(total, new)| total + new)
    );
    app.paid_through_sandbox(&customer, &body, "succeed").await;
    let more = refresh(&app, &admin).await;
    let new = more["events"].as_i64().unwrap_or(0);
    assert!(new > 0);
    assert_eq!(new, since(&again, &more).await);
    assert_eq!(
        more["total_events"].as_i64(),
        again["total_events"].as_i64().map(|total| total + new)
    );
    let report: Value = app
        .get("/api/v1/reports/revenue", Some(&admin.token))
        .await
        .json()
        .await
        .expect("report");
    assert_eq!(report["total_gmv_fen"], gmv + 15_000);
    app.stop().await;
}

/// An analyst's query over HTTP, answered 200.
async fn ask(app: &TestApp, analyst: &User, body: Value) -> Value {
    let response = app
        .post("/api/v1/analytics/sql", Some(&analyst.token), &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("answer")
}

/// An app whose warehouse is a file in a scratch directory of its own (so other processes can
/// open it), refreshed only on demand; returns the app, the directory and the file.
async fn app_with_warehouse_file(
    adjust: impl FnOnce(&mut anjia::config::Settings) + Send + 'static,
) -> (TestApp, std::path::PathBuf, std::path::PathBuf) {
    let scratch = std::env::temp_dir().join(format!("anjia-warehouse-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let file = scratch.join("warehouse.duckdb");
    let app = tests::spawn_app_with({
        let file = file.clone();
        move |settings| {
            settings.warehouse.path = Some(file);
            // The harness schedules no refresh, so none holds the file while another process
            // opens it.
            adjust(settings);
        }
    })
    .await;
    (app, scratch, file)
}

/// `anjia` with these arguments, on the test's database and warehouse file.
fn anjia_on(app: &TestApp, warehouse: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(tests::anjia_binary());
    command
        .env("ANJIA_WAREHOUSE", warehouse)
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn");
    command
}

/// Runs `anjia` with `args` on the warehouse file; it must succeed and print JSON.
fn anjia_json(app: &TestApp, warehouse: &std::path::Path, args: &[&str]) -> Value {
    let output = anjia_on(app, warehouse)
        .args(args)
        .output()
        .expect("running anjia");
    assert!(
        output.status.success(),
        "anjia {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

#[tokio::test]
async fn the_satisfaction_report_agrees_with_the_reviews_read_model_and_leaves_hidden_reviews_out()
{
    let app = tests::spawn_app().await;
    let admin = app.create_admin().await;
    let analyst = app.create_analyst().await;
    let customer = app.register_customer().await;
    // One worker per order: a worker's time is held for the whole booking.
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(app.qualified_worker(&["daily_cleaning"], &admin).await);
    }
    let mut reviewed = Vec::new();
    for (worker, stars) in workers.iter().zip([[5, 4, 3], [2, 3, 4], [4, 4, 5]]) {
        let order = app.served_order(&customer, &admin, worker).await;
        let given = app
            .post(
                &format!("/api/v1/orders/{order}/review"),
                Some(&customer.token),
                &json!({"quality": stars[0], "attitude": stars[1], "skill": stars[2]}),
            )
            .await;
        assert_eq!(given.status(), StatusCode::OK);
        reviewed.push(order);
    }
    let hidden = app
        .post(
            &format!("/api/v1/admin/orders/{}/review/hide", reviewed[1]),
            Some(&admin.token),
            &json!({"reason": "含有个人信息 / contains personal data"}),
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    app.wait_for_projections().await;
    refresh(&app, &admin).await;

    let report: Value = app
        .get("/api/v1/reports/satisfaction", Some(&analyst.token))
        .await
        .json()
        .await
        .expect("report");
    let expected: (i64, f64, f64, f64) = sqlx::query_as(
        "SELECT count(*), avg(quality)::float8, avg(attitude)::float8, avg(skill)::float8
           FROM read_reviews WHERE NOT hidden",
    )
    .fetch_one(&app.pool)
    .await
    .expect("read model");
    let overall = &report["overall"];
    assert_eq!(overall["reviews"].as_i64(), Some(expected.0), "{report}");
    assert_eq!(expected.0, 2, "the hidden review is left out");
    for (field, value) in [
        ("quality", expected.1),
        ("attitude", expected.2),
        ("skill", expected.3),
    ] {
        let reported = overall[field].as_f64().expect("average");
        assert!(
            (reported - value).abs() < 1e-9,
            "{field}: {reported} vs {value}"
        );
    }
    // Stars 1 to 5, each [quality, attitude, skill]: quality 5 and 4, attitude 4 twice, skill
    // 3 and 5.
    assert_eq!(
        report["distribution"],
        json!([[0, 0, 0], [0, 0, 0], [0, 0, 1], [1, 2, 0], [1, 0, 1]])
    );
    let per_worker: Vec<(String, i64)> = sqlx::query_as(
        "SELECT worker_id::text, count(*) FROM read_reviews WHERE NOT hidden
          GROUP BY worker_id ORDER BY worker_id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("per worker");
    let reported: Vec<(String, i64)> = report["by_worker"]
        .as_array()
        .expect("by worker")
        .iter()
        .map(|row| {
            (
                row["key"].as_str().unwrap_or_default().to_owned(),
                row["reviews"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(reported, per_worker);
    assert_eq!(report["by_service"][0]["key"], "daily_cleaning");
    assert_eq!(report["trend"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        report["falling"],
        json!([]),
        "no worker has two windows of reviews"
    );
    app.stop().await;
}
