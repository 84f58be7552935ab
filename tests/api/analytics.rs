//! The analytics warehouse (DuckDB): loaded from the event log incrementally, and its reports
//! agree with the read models.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, TestApp, User};

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

/// DuckDB's Python package of the warehouse's version, installed by `scripts/ensure-duckdb`.
fn duckdb_python() -> std::path::PathBuf {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/duckdb/python/bin/python");
    assert!(
        python.exists(),
        "DuckDB's Python package is missing: run scripts/ensure-duckdb"
    );
    python
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
    adjust: impl FnOnce(&mut command_api::server::Settings) + Send + 'static,
) -> (TestApp, std::path::PathBuf, std::path::PathBuf) {
    let scratch = std::env::temp_dir().join(format!("anjia-warehouse-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let file = scratch.join("warehouse.duckdb");
    let app = tests::spawn_app_with({
        let file = file.clone();
        move |settings| {
            settings.warehouse.path = Some(file);
            // No scheduled refresh may hold the file while another process opens it.
            settings.jobs.analytics_schedule = "0 0 0 1 1 *".to_owned();
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
async fn the_warehouse_opens_read_only_in_duckdbs_python_package_and_its_parquet_export_reads_back()
{
    let (app, scratch, file) = app_with_warehouse_file(|_| {}).await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let body = tests::order_body_starting_in(30);
    for _ in 0..2 {
        app.paid_through_sandbox(&customer, &body, "succeed").await;
    }
    refresh(&app, &admin).await;

    // The platform's own export: Parquet, partitioned by month.
    let export = scratch.join("export");
    let written = anjia_json(
        &app,
        &file,
        &["analytics", "export", &export.display().to_string()],
    );
    assert!(written["tables"]
        .as_array()
        .expect("tables")
        .contains(&json!(["order_facts", 2])));

    // DuckDB's Python package reads both, and may not write the warehouse.
    let script = r#"
import duckdb, json, sys
warehouse, export = sys.argv[1], sys.argv[2]
con = duckdb.connect(warehouse, read_only=True)
orders = con.sql("SELECT count(*) FROM order_facts").fetchone()[0]
gmv = con.sql("SELECT sum(amount_fen) FROM money_facts WHERE kind = 'captured'").fetchone()[0]
try:
    con.sql("DELETE FROM order_facts")
    writable = True
except duckdb.Error:
    writable = False
con.close()
other = duckdb.connect()
exported = other.sql(
    f"SELECT count(*), count(DISTINCT month) FROM read_parquet('{export}/order_facts/*/*.parquet', hive_partitioning = true)"
).fetchone()
exported_gmv = other.sql(
    f"SELECT sum(amount_fen) FROM read_parquet('{export}/money_facts/*/*.parquet', hive_partitioning = true) WHERE kind = 'captured'"
).fetchone()[0]
print(json.dumps({"version": duckdb.__version__, "orders": orders, "gmv": gmv, "writable": writable,
                  "exported_orders": exported[0], "months": exported[1], "exported_gmv": exported_gmv}))
"#;
    let output = std::process::Command::new(duckdb_python())
        .arg("-c")
        .arg(script)
        .arg(&file)
        .arg(&export)
        .output()
        .expect("running python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("python's answer");
    assert_eq!(
        seen,
        json!({"version": "1.5.6", "orders": 2, "gmv": 30_000, "writable": false,
               "exported_orders": 2, "months": 1, "exported_gmv": 30_000})
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(&scratch);
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

#[tokio::test]
async fn analysts_run_read_only_sql_over_http_and_in_the_shell_and_everything_else_is_refused() {
    let (app, scratch, file) = app_with_warehouse_file(|settings| {
        settings.warehouse.sql.timeout = Duration::from_millis(500);
        settings.warehouse.sql.rows = 50;
    })
    .await;
    let admin = app.create_admin().await;
    let analyst = app.create_analyst().await;
    let customer = app.register_customer().await;
    let body = tests::order_body_starting_in(30);
    for _ in 0..2 {
        app.paid_through_sandbox(&customer, &body, "succeed").await;
    }
    refresh(&app, &admin).await;
    let query = |sql: &str| json!({"sql": sql});

    // The same GMV the revenue report gives, with typed columns.
    let answer = ask(
        &app,
        &analyst,
        query(
            "-- GMV by service
             SELECT o.service, count(*) AS payments, sum(m.amount_fen)::BIGINT AS gmv_fen
               FROM money_facts m JOIN order_facts o USING (order_id)
              WHERE m.kind = 'captured' GROUP BY o.service;",
        ),
    )
    .await;
    assert_eq!(
        answer["columns"],
        json!([{"name": "service", "type": "VARCHAR"}, {"name": "payments", "type": "BIGINT"},
               {"name": "gmv_fen", "type": "BIGINT"}])
    );
    assert_eq!(answer["rows"], json!([["daily_cleaning", 2, 30_000]]));
    assert_eq!(answer["truncated"], json!(false));
    assert!(answer["freshness"]["refreshed_at"].is_string());
    let cut = ask(
        &app,
        &analyst,
        json!({"sql": "SELECT * FROM range(1000)", "max_rows": 7}),
    )
    .await;
    assert_eq!(cut["rows"].as_array().map(Vec::len), Some(7));
    assert_eq!(cut["truncated"], json!(true));
    let platform_limit = ask(&app, &analyst, query("SELECT * FROM range(1000)")).await;
    assert_eq!(platform_limit["rows"].as_array().map(Vec::len), Some(50));

    // Refusals, each with its own problem type; nothing in the warehouse changes.
    let refused = [
        ("DELETE FROM order_facts", "/problems/sql-not-a-query"),
        ("DROP TABLE money_facts", "/problems/sql-not-a-query"),
        ("SELECT 1; SELECT 2", "/problems/sql-not-a-query"),
        ("SET threads = 64", "/problems/sql-not-a-query"),
        ("ATTACH 'x.duckdb' AS x", "/problems/sql-not-a-query"),
        ("   ", "/problems/sql-not-a-query"),
        (
            "SELECT * FROM read_csv('/etc/passwd')",
            "/problems/sql-access-denied",
        ),
        (
            "SELECT * FROM read_parquet('http://127.0.0.1:1/x.parquet')",
            "/problems/sql-access-denied",
        ),
        (
            "SELECT no_such_column FROM order_facts",
            "/problems/sql-invalid",
        ),
        ("SELEC 1", "/problems/sql-invalid"),
        (
            "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range * b.range = -1",
            "/problems/sql-timed-out",
        ),
    ];
    let too_many = json!({"sql": "SELECT 1", "max_rows": 51});
    let mut attempts: Vec<(Value, Option<&str>, StatusCode, &str)> = refused
        .iter()
        .map(|(sql, problem)| {
            (
                query(sql),
                Some(analyst.token.as_str()),
                StatusCode::UNPROCESSABLE_ENTITY,
                *problem,
            )
        })
        .collect();
    attempts.push((
        too_many,
        Some(&analyst.token),
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    ));
    for user in [&admin, &customer] {
        attempts.push((
            query("SELECT 1"),
            Some(&user.token),
            StatusCode::FORBIDDEN,
            "/problems/forbidden",
        ));
    }
    attempts.push((
        query("SELECT 1"),
        None,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthenticated",
    ));
    for (body, token, status, problem) in attempts {
        let response = app.post("/api/v1/analytics/sql", token, &body).await;
        assert_problem(response, status, problem).await;
    }
    let still = ask(
        &app,
        &analyst,
        query("SELECT count(*) AS orders FROM order_facts"),
    )
    .await;
    assert_eq!(still["rows"], json!([[2]]));

    // The shell: statements over several lines from standard input, the shell's own commands,
    // and a refusal that does not end the session.
    let mut shell = anjia_on(&app, &file)
        .args(["analytics", "sql"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running anjia analytics sql");
    {
        use std::io::Write;
        let mut input = shell.stdin.take().expect("stdin");
        input
            .write_all(
                "SELECT city, count(*) AS orders\n  FROM order_facts\n GROUP BY city;\n\
                 DELETE FROM order_facts;\n.tables\n.schema money_facts\n.quit\nSELECT 'never';\n"
                    .as_bytes(),
            )
            .expect("statements");
    }
    let output = shell.wait_with_output().expect("the shell ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a refusal sets the exit status"
    );
    // Columns are aligned by display width: 上海市 is six columns wide.
    assert!(
        stdout.starts_with("city   | orders\n-------+-------\n"),
        "{stdout}"
    );
    assert!(stdout.contains("上海市 | 2"), "{stdout}");
    assert!(stdout.contains("order_facts"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("amount_fen ") && line.contains("| BIGINT")),
        "{stdout}"
    );
    assert!(!stdout.contains("never"), "{stdout}");
    assert!(stderr.contains("/problems/sql-not-a-query"), "{stderr}");
    let answer = anjia_json(
        &app,
        &file,
        &[
            "analytics",
            "sql",
            "--json",
            "-c",
            "SELECT sum(total_fen)::BIGINT AS total FROM order_facts",
        ],
    );
    assert_eq!(answer["rows"], json!([[30_000]]));
    app.stop().await;
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test]
async fn the_activity_report_counts_sign_ins_app_opens_and_work_and_utilisation_agrees_with_the_orders_read_model(
) {
    let app = tests::spawn_app_with(|settings| {
        settings.jobs.analytics_schedule = "0 0 0 1 1 *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let analyst = app.create_analyst().await;
    let first = app.register_customer().await;
    let second = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;

    // App opens: a resume within ten minutes on one platform is not a new open.
    let open = |user: &User, body: Value| {
        let token = user.token.clone();
        let app = &app;
        async move { app.post("/api/v1/me/app-opens", Some(&token), &body).await }
    };
    for (body, recorded) in [
        (json!({"platform": "ios", "app_version": "3.2.1"}), true),
        (json!({"platform": "ios", "app_version": "3.2.1"}), false),
        (json!({"platform": "web"}), true),
    ] {
        let response = open(&first, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let ack: Value = response.json().await.expect("ack");
        assert_eq!(ack["recorded"], json!(recorded));
    }
    for body in [
        json!({"platform": "symbian"}),
        json!({"platform": "android", "app_version": " "}),
        json!({"platform": "android", "device": "x"}),
    ] {
        let response = open(&second, body).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    let response = open(&admin, json!({"platform": "web"})).await;
    assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;

    // The worker goes online, serves one order, and goes offline.
    let response = app
        .post("/api/v1/worker/online", Some(&worker.token), &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (order, _) = app
        .paid_through_sandbox(&first, &tests::order_body_starting_in(30), "succeed")
        .await;
    app.grab_and_serve(order, &worker).await;
    let response = app
        .post("/api/v1/worker/offline", Some(&worker.token), &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.wait_for_projections().await;
    refresh(&app, &admin).await;

    // Everyone was first active today: all new.
    let get = |path: String, token: String| {
        let app = &app;
        async move { app.get(&path, Some(&token)).await }
    };
    let report: Value = get("/api/v1/reports/activity".into(), analyst.token.clone())
        .await
        .json()
        .await
        .expect("report");
    let today = domain::values::business_day(chrono::Utc::now()).to_string();
    let daily = report["daily"].as_array().expect("daily");
    let row = |role: &str| {
        daily
            .iter()
            .find(|row| row["role"] == json!(role) && row["start"] == json!(today))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let customers = scalar(&app, "SELECT count(*) FROM read_customers").await;
    assert_eq!(customers, 2);
    assert_eq!(row("customer")["active"], json!(2));
    assert_eq!(row("customer")["new"], json!(2));
    assert_eq!(row("worker")["active"], json!(1));
    assert_eq!(report["weekly"].as_array().map(Vec::len), Some(2));
    let cohort = &report["cohorts"][0];
    assert_eq!(cohort["size"], cohort["active"][0]);
    assert_eq!(cohort["retention"][0], json!(1.0));
    let workers_only: Value = get(
        "/api/v1/reports/activity?role=worker&format=csv".into(),
        admin.token.clone(),
    )
    .await
    .text()
    .await
    .map(Value::String)
    .expect("csv");
    let csv = workers_only.as_str().expect("text");
    assert!(
        csv.starts_with("period,start,role,active,new,returning\n"),
        "{csv}"
    );
    assert!(csv.contains(&format!("day,{today},worker,1,1,0")), "{csv}");
    assert!(!csv.contains("customer"), "{csv}");

    // Sign-ins and app opens reached the warehouse as they are in the log.
    let sign_ins = scalar(
        &app,
        "SELECT count(*) FROM sessions s JOIN credentials c USING (user_id)
          WHERE c.role IN ('customer', 'worker')",
    )
    .await;
    let loaded = ask(
        &app,
        &analyst,
        json!({"sql": "SELECT kind, coalesce(detail, '') AS detail, count(*) AS n FROM activity_facts
                        WHERE kind IN ('signed_in', 'app_opened') GROUP BY ALL ORDER BY ALL"}),
    )
    .await;
    assert_eq!(
        loaded["rows"],
        json!([
            ["app_opened", "ios", 1],
            ["app_opened", "web", 1],
            ["signed_in", "password", sign_ins]
        ])
    );

    // Utilisation: minutes serving as the orders read model has them, over minutes online as
    // the worker's events have them.
    let served = sqlx::query_scalar::<_, Option<f64>>(
        "SELECT sum(extract(epoch FROM finished_at - started_at))::float8 / 60 FROM read_orders
          WHERE worker_id = $1 AND finished_at IS NOT NULL",
    )
    .bind(worker.id)
    .fetch_one(&app.pool)
    .await
    .expect("served")
    .expect("one service");
    let online = sqlx::query_scalar::<_, Option<f64>>(
        "WITH s AS (
             SELECT event_type, (payload -> event_type ->> 'at')::timestamptz AS at FROM events
              WHERE aggregate_type = 'worker' AND aggregate_id = $1
                AND event_type IN ('WorkerWentOnline', 'WorkerWentOffline')
         ), spells AS (
             SELECT event_type, at, lead(at) OVER (ORDER BY at) AS ended FROM s
         )
         SELECT sum(extract(epoch FROM ended - at))::float8 / 60 FROM spells
          WHERE event_type = 'WorkerWentOnline'",
    )
    .bind(worker.id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("online")
    .expect("one spell");
    let orders: Value = get("/api/v1/reports/orders".into(), analyst.token.clone())
        .await
        .json()
        .await
        .expect("orders report");
    let mine = orders["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .find(|row| row["worker_id"] == json!(worker.id))
        .cloned()
        .expect("the worker's utilisation");
    let close =
        |value: &Value, expected: f64| (value.as_f64().expect("a number") - expected).abs() < 1e-6;
    assert_eq!(mine["services"], json!(1));
    assert!(
        close(&mine["service_minutes"], served),
        "{mine} vs {served}"
    );
    assert!(close(&mine["online_minutes"], online), "{mine} vs {online}");
    assert!(online >= served, "served while online");

    // Filters a report does not take are refused.
    for (path, token) in [
        ("/api/v1/reports/activity?service=nanny", &analyst.token),
        ("/api/v1/reports/activity?role=admin", &analyst.token),
        ("/api/v1/reports/revenue?role=customer", &admin.token),
    ] {
        let response = get(path.into(), token.clone()).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    let response = get("/api/v1/reports/activity".into(), first.token.clone()).await;
    assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    app.stop().await;
}

/// Rows of `sql` over the read models (or the log) as JSON values, for comparing sets.
async fn rows(app: &TestApp, sql: &str) -> Vec<Value> {
    use sqlx::Row;
    let found = sqlx::query(&format!("SELECT to_jsonb(r)::text AS row FROM ({sql}) r"))
        .fetch_all(&app.pool)
        .await
        .expect(sql);
    let mut values: Vec<Value> = found
        .iter()
        .map(|row| serde_json::from_str(row.get::<&str, _>("row")).expect("json"))
        .collect();
    values.sort_by_key(Value::to_string);
    values
}

fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(Value::to_string);
    values
}

fn close(reported: &Value, expected: f64, what: &str) {
    let reported = reported.as_f64().unwrap_or(f64::NAN);
    assert!(
        (reported - expected).abs() < 1e-6,
        "{what}: {reported} vs {expected}"
    );
}

#[tokio::test]
async fn on_a_generated_history_every_report_agrees_with_the_read_models_and_the_log() {
    let app = tests::spawn_app_with(|settings| {
        settings.jobs.analytics_schedule = "0 0 0 1 1 *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let analyst = app.create_analyst().await;
    // Three months ending sixty days ago: every order has run its course (service, review
    // window, settlement), so no job of the platform has anything left to do with them.
    let end = domain::values::business_day(chrono::Utc::now()) - chrono::Duration::days(60);
    let output = tests::run_anjia(
        &app.database_url,
        &[
            "demo-data",
            "--orders",
            "700",
            "--months",
            "3",
            "--end",
            &end.to_string(),
            "--seed",
            "11",
            "--batch",
            "500",
        ],
    );
    let generated: Value = serde_json::from_str(&output).expect("demo-data report");
    assert_eq!(generated["in_flight"], json!(0), "{generated}");
    assert_eq!(
        generated["completed"]
            .as_i64()
            .zip(generated["cancelled"].as_i64())
            .map(|(a, b)| a + b),
        generated["orders"].as_i64(),
        "every order of a finished history was served or cancelled: {generated}"
    );
    let placed = generated["orders"].as_i64().expect("orders");
    assert!((650..=750).contains(&placed), "{generated}");
    for field in [
        "completed",
        "cancelled",
        "refunded",
        "reviewed",
        "default_reviews",
    ] {
        assert!(generated[field].as_i64() > Some(0), "{field}: {generated}");
    }
    // Every event is a valid link of its stream's hash chain.
    let verified: Value =
        serde_json::from_str(&tests::run_anjia(&app.database_url, &["audit", "verify"]))
            .expect("verification");
    assert_eq!(verified["ok"], json!(true), "{verified}");
    assert_eq!(verified["problems"], json!([]));

    app.wait_for_projections().await;
    refresh(&app, &admin).await;
    let report = |name: &str| {
        let app = &app;
        let path = format!("/api/v1/reports/{name}");
        let token = analyst.token.clone();
        async move {
            let response = app.get(&path, Some(&token)).await;
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.expect("report")
        }
    };

    // Revenue: totals, and GMV by service and city.
    let revenue = report("revenue").await;
    revenue_agrees(&app, &revenue).await;
    let mut by_area: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for row in revenue["rows"].as_array().expect("rows") {
        let key = (
            row["service"].as_str().unwrap_or_default().to_owned(),
            row["city"].as_str().unwrap_or_default().to_owned(),
        );
        *by_area.entry(key).or_default() += row["gmv_fen"].as_i64().unwrap_or(0);
    }
    by_area.retain(|_, gmv| *gmv != 0);
    let expected: Vec<Value> = rows(
        &app,
        "SELECT o.service, o.city, sum(p.amount)::bigint AS gmv FROM read_payments p
           JOIN read_orders o USING (order_id)
          WHERE p.status IN ('captured', 'released') GROUP BY 1, 2",
    )
    .await;
    let reported: Vec<Value> = sorted(
        by_area
            .into_iter()
            .map(|((service, city), gmv)| json!({"service": service, "city": city, "gmv": gmv}))
            .collect(),
    );
    assert_eq!(reported, expected);
    assert!(expected.len() >= 10, "several services in several cities");

    // Orders: the funnel, volume by day, service and city, cancellations, time to assign.
    let orders = report("orders").await;
    funnel_agrees(&app, &orders).await;
    assert_eq!(orders["placed"].as_i64(), Some(placed));
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM read_orders
              WHERE paid_at IS NOT NULL AND finished_at IS NULL AND cancelled_at IS NULL",
        )
        .await,
        0,
        "every paid order of a finished history was served or cancelled"
    );
    let volume: Vec<Value> = sorted(
        orders["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| {
                json!({"day": row["day"], "service": row["service"], "city": row["city"],
                       "placed": row["placed"], "completed": row["completed"]})
            })
            .collect(),
    );
    let expected = rows(
        &app,
        "SELECT to_char((placed_at AT TIME ZONE 'Asia/Shanghai')::date, 'YYYY-MM-DD') AS day,
                service, city, count(*) AS placed, count(finished_at) AS completed
           FROM read_orders GROUP BY 1, 2, 3",
    )
    .await;
    assert_eq!(volume, expected);
    let cancellations = sorted(orders["cancellations"].as_array().expect("list").clone());
    let expected = rows(
        &app,
        "SELECT cancel_stage AS stage, cancel_reason AS reason, count(*) AS orders
           FROM read_orders WHERE cancelled_at IS NOT NULL GROUP BY 1, 2",
    )
    .await;
    assert_eq!(cancellations, expected);
    let minutes: f64 = sqlx::query_scalar(
        "SELECT avg(extract(epoch FROM assigned_at - paid_at) / 60.0)::float8 FROM read_orders
          WHERE assigned_at IS NOT NULL AND paid_at IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .expect("minutes");
    close(
        &orders["assign_minutes_average"],
        minutes,
        "minutes to assign",
    );
    // Utilisation: each worker's minutes serving, as the orders read model has them.
    let served = rows(
        &app,
        "SELECT worker_id::text AS worker, count(*) AS services,
                round((sum(extract(epoch FROM finished_at - started_at)) / 60)::numeric, 3)::float8 AS minutes
           FROM read_orders WHERE started_at IS NOT NULL AND finished_at IS NOT NULL
          GROUP BY worker_id",
    )
    .await;
    let reported = sorted(
        orders["workers"]
            .as_array()
            .expect("workers")
            .iter()
            .filter(|row| row["services"].as_i64() > Some(0))
            .map(|row| {
                let minutes = row["service_minutes"].as_f64().unwrap_or(0.0);
                json!({"worker": row["worker_id"], "services": row["services"],
                       "minutes": (minutes * 1000.0).round() / 1000.0})
            })
            .collect(),
    );
    let served: Vec<Value> = served
        .into_iter()
        .map(|row| {
            json!({"worker": row["worker"], "services": row["services"],
                   "minutes": row["minutes"].as_f64().unwrap_or(f64::NAN)})
        })
        .collect();
    assert_eq!(reported, served);
    assert!(
        orders["utilisation"].as_f64() > Some(0.0),
        "{}",
        orders["utilisation"]
    );

    // Satisfaction: averages, the distribution and per-worker counts of the reviews read model.
    let satisfaction = report("satisfaction").await;
    let overall: (i64, f64, f64, f64) = sqlx::query_as(
        "SELECT count(*), avg(quality)::float8, avg(attitude)::float8, avg(skill)::float8
           FROM read_reviews WHERE NOT hidden",
    )
    .fetch_one(&app.pool)
    .await
    .expect("reviews");
    assert_eq!(satisfaction["overall"]["reviews"].as_i64(), Some(overall.0));
    close(&satisfaction["overall"]["quality"], overall.1, "quality");
    close(&satisfaction["overall"]["attitude"], overall.2, "attitude");
    close(&satisfaction["overall"]["skill"], overall.3, "skill");
    let mut distribution = Vec::new();
    for stars in 1..=5 {
        let counts: (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE quality = $1), count(*) FILTER (WHERE attitude = $1),
                    count(*) FILTER (WHERE skill = $1)
               FROM read_reviews WHERE NOT hidden",
        )
        .bind(stars)
        .fetch_one(&app.pool)
        .await
        .expect("distribution");
        distribution.push(json!([counts.0, counts.1, counts.2]));
    }
    assert_eq!(satisfaction["distribution"], json!(distribution));
    let per_worker = rows(
        &app,
        "SELECT worker_id::text AS key, count(*) AS reviews FROM read_reviews WHERE NOT hidden
          GROUP BY worker_id",
    )
    .await;
    let reported = sorted(
        satisfaction["by_worker"]
            .as_array()
            .expect("by worker")
            .iter()
            .map(|row| json!({"key": row["key"], "reviews": row["reviews"]}))
            .collect(),
    );
    assert_eq!(reported, per_worker);

    // Activity: daily actives per role, counted straight from the log in PostgreSQL.
    let activity = report("activity").await;
    let daily = sorted(
        activity["daily"]
            .as_array()
            .expect("daily")
            .iter()
            .map(|row| json!({"day": row["start"], "role": row["role"], "active": row["active"]}))
            .collect(),
    );
    let expected = rows(
        &app,
        "WITH a AS (
             SELECT (payload -> event_type ->> 'user_id')::uuid AS person,
                    payload -> event_type ->> 'role' AS role,
                    (payload -> event_type ->> 'at')::timestamptz AS at
               FROM events WHERE aggregate_type = 'presence'
             UNION ALL
             SELECT aggregate_id::uuid, 'customer',
                    (payload -> event_type ->> 'registered_at')::timestamptz
               FROM events WHERE event_type = 'CustomerRegistered'
             UNION ALL
             SELECT (payload -> 'OrderPlaced' -> 'booking' ->> 'customer_id')::uuid, 'customer',
                    (payload -> 'OrderPlaced' ->> 'placed_at')::timestamptz
               FROM events WHERE event_type = 'OrderPlaced'
             UNION ALL
             SELECT aggregate_id::uuid, 'worker',
                    (payload -> event_type ->> 'registered_at')::timestamptz
               FROM events WHERE event_type = 'WorkerRegistered'
             UNION ALL
             SELECT aggregate_id::uuid, 'worker', (payload -> event_type ->> 'at')::timestamptz
               FROM events WHERE event_type = 'WorkerWentOnline'
             UNION ALL
             SELECT (payload -> event_type ->> 'worker_id')::uuid, 'worker',
                    coalesce(payload -> event_type ->> 'accepted_at',
                             payload -> event_type ->> 'started_at',
                             payload -> event_type ->> 'finished_at')::timestamptz
               FROM events
              WHERE event_type IN ('OrderAccepted', 'ServiceStarted', 'ServiceFinished')
         )
         SELECT to_char((at AT TIME ZONE 'Asia/Shanghai')::date, 'YYYY-MM-DD') AS day, role,
                count(DISTINCT person) AS active
           FROM a WHERE role IN ('customer', 'worker') GROUP BY 1, 2",
    )
    .await;
    assert_eq!(daily, expected);
    let customers = scalar(&app, "SELECT count(*) FROM read_customers").await;
    assert_eq!(generated["customers"].as_i64(), Some(customers));
    let cohorts = activity["cohorts"].as_array().expect("cohorts");
    let first_week: i64 = cohorts
        .iter()
        .filter(|cohort| cohort["role"] == json!("customer"))
        .map(|cohort| cohort["size"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(first_week, customers, "every customer is in one cohort");
    app.stop().await;
}
