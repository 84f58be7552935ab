//! Analysts SQL over HTTP and in the shell: read-only, limited, and everything else refused.

use super::*;

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
