//! The web console (后台管理端): served by `anjia serve` itself, typed from the server's own
//! OpenAPI document, and driven in Debian's Chromium against a real server and database.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{order_body, spawn_app, web_dist, web_folder, TestApp, User};

/// Skips nothing: the test command builds the console before the tests run.
fn require_build() {
    assert!(
        web_dist().join("admin/index.html").exists(),
        "the console is not built: run scripts/build-web (scripts/test does)"
    );
}

#[tokio::test]
async fn the_console_is_served_with_a_history_fallback_long_cached_assets_and_a_root_redirect() {
    require_build();
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |path: &str| client.get(app.url(path)).send();

    let root = get("/").await.expect("root");
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/admin/");
    let bare = get("/admin").await.expect("bare");
    assert!(bare.status().is_redirection());
    assert_eq!(bare.headers()["location"], "/admin/");

    let page = get("/admin/").await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .contains("script-src 'self'"));
    let html = page.text().await.expect("html");
    assert!(html.contains("<div id=\"app\">"), "{html}");

    // Any path under /admin/ that is not a file answers the same page: the browser's router
    // takes over (history mode).
    let deep = get("/admin/orders?status=paid").await.expect("deep link");
    assert_eq!(deep.status(), StatusCode::OK);
    assert_eq!(deep.text().await.expect("html"), html);

    // The hashed assets the page names are cached for a year, with their content types.
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page names its script");
    assert!(script.starts_with("/assets/"), "{script}");
    let asset = get(script).await.expect("asset");
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(
        asset.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    // The build keeps compressed copies: a browser that takes Brotli or gzip gets the smaller.
    for (accepted, encoding) in [
        ("br, gzip", Some("br")),
        ("gzip", Some("gzip")),
        ("identity", None),
    ] {
        let compressed = client
            .get(app.url(script))
            .header("accept-encoding", accepted)
            .send()
            .await
            .expect("asset");
        assert_eq!(compressed.status(), StatusCode::OK);
        assert_eq!(
            compressed
                .headers()
                .get("content-encoding")
                .and_then(|value| value.to_str().ok()),
            encoding,
            "{accepted}"
        );
        assert_eq!(
            compressed.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(compressed.headers()["vary"], "accept-encoding");
    }
    for missing in [
        "/assets/no-such-file.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
    ] {
        let response = get(missing).await.expect("missing asset");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
    }
    // The API's own unknown paths stay problems, not the console's page.
    let unknown = get("/api/v1/no-such-route").await.expect("unknown");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .contains("problem+json"));
    app.stop().await;
}

#[tokio::test]
async fn without_a_build_the_console_says_how_to_make_one() {
    let app = tests::spawn_app_with(|settings| {
        settings.web_dir = std::env::temp_dir().join("anjia-no-such-build");
    })
    .await;
    let page = app
        .client
        .get(app.url("/admin/"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = page.text().await.expect("text");
    assert!(
        text.contains("scripts/start") && text.contains("npm run build"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_checked_in_api_types_are_what_the_servers_document_generates() {
    let app = spawn_app().await;
    let document = app
        .get("/api/openapi.json", None)
        .await
        .text()
        .await
        .expect("document");
    let scratch = std::env::temp_dir().join(format!("anjia-openapi-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let json = scratch.join("openapi.json");
    let generated = scratch.join("schema.d.ts");
    std::fs::write(&json, document).expect("writing the document");
    let web = web_folder();
    let output = std::process::Command::new("node")
        .arg(web.join("node_modules/openapi-typescript/bin/cli.js"))
        .arg(&json)
        .arg("-o")
        .arg(&generated)
        .current_dir(&web)
        .output()
        .expect("running openapi-typescript (scripts/build-web installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fresh = std::fs::read_to_string(&generated).expect("generated types");
    let checked_in =
        std::fs::read_to_string(web.join("src/api/schema.d.ts")).expect("checked-in types");
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        fresh == checked_in,
        "web/src/api/schema.d.ts differs from what the server's /api/openapi.json generates: \
         run `anjia openapi > var/openapi.json && (cd web && npm run api)` and commit it"
    );
    app.stop().await;
}

/// A staff account with a password the browser types.
async fn staff(app: &TestApp, role: domain::Role) -> (String, String) {
    let login = format!(
        "{}-{}@example.com",
        role.as_str(),
        uuid::Uuid::new_v4().simple()
    );
    let password = "a-console-password".to_owned();
    command_api::routes::accounts::create_staff(&app.pool, &login, &password, role)
        .await
        .expect("creating a staff account");
    (login, password)
}

/// An order paid through the sandbox (so a refund goes back through it) whose contact name is
/// `contact`, a term nothing else matches.
async fn paid_order(app: &TestApp, customer: &User, contact: &str) -> uuid::Uuid {
    let mut body = order_body();
    body["address"]["contact_name"] = contact.into();
    app.paid_through_sandbox(customer, &body, "succeed").await.0
}

#[tokio::test]
async fn an_admin_and_an_analyst_use_the_console_in_chromium() {
    require_build();
    let app = tests::spawn_app_with(tests::money_settles_at_once).await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    // A worker with income asks to withdraw some of it; another waits for review.
    let earner = app.worker_with_income(&admin).await;
    for (path, body) in [
        (
            "/api/v1/worker/bank-account",
            json!({"holder_name": "张阿姨", "bank": "中国银行", "number": "6222021234567891234"}),
        ),
        ("/api/v1/worker/withdrawals", json!({"amount": 5_000})),
    ] {
        let response = app
            .client
            .request(
                if path.ends_with("account") {
                    reqwest::Method::PUT
                } else {
                    reqwest::Method::POST
                },
                app.url(path),
            )
            .bearer_auth(&earner.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
    let pending = app.onboarded_worker(&["deep_cleaning"]).await;
    // A month of history behind the charts, and two orders of our own to act on.
    let database_url = app.database_url.clone();
    tokio::task::spawn_blocking(move || {
        tests::run_anjia(
            &database_url,
            &[
                "demo-data",
                "--months",
                "1",
                "--orders",
                "400",
                "--seed",
                "11",
            ],
        )
    })
    .await
    .expect("demo data");
    let repriced = paid_order(&app, &customer, "蓝鲸改价").await;
    let cancelled = paid_order(&app, &customer, "白鹭退款").await;
    app.wait_for_projections().await;
    app.refresh_warehouse(&admin).await;
    let (admin_login, admin_password) = staff(&app, domain::Role::Admin).await;
    let (analyst_login, analyst_password) = staff(&app, domain::Role::Analyst).await;

    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .join("var/screenshots/console");
    let config = json!({
        "base": app.address,
        "admin": {"login": admin_login, "password": admin_password},
        "analyst": {"login": analyst_login, "password": analyst_password},
        "repriced": {"order_id": repriced, "term": "蓝鲸改价", "new_total_fen": 12_000, "reason": "上门后确认面积较小，按实际收费"},
        "cancelled": {"order_id": cancelled, "term": "白鹭退款", "refund_fen": 15_000, "reason": "客户临时出差，全额退款"},
        "pending": {"worker_id": pending.id, "name": "张阿姨"},
        "shots": shots,
    });
    let browser_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let run = tokio::process::Command::new("node")
        .arg(browser_dir.join("console.mjs"))
        .arg(config.to_string())
        .current_dir(&browser_dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the console test finished within five minutes")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|error| panic!("no result line ({error}): {stdout}\n{stderr}"));
    assert!(
        output.status.success() && result["problems"].as_array().is_some_and(Vec::is_empty),
        "{}",
        tests::browser_failure("console.mjs", &result, &stderr)
    );
    for page in [
        "sign-in",
        "dashboard",
        "orders",
        "order-drawer",
        "money",
        "money-withdrawals",
        "audit",
        "audit-stream",
        "workers",
        "worker-drawer",
        "dispatch",
        "customers",
        "reviews",
        "operations",
        "analytics",
        "analytics-en",
        "sql",
    ] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }

    // What the browser did is what the platform recorded.
    let shown = |order_id: uuid::Uuid| {
        let app = &app;
        let admin = &admin;
        async move {
            app.get(&format!("/api/v1/orders/{order_id}"), Some(&admin.token))
                .await
                .json::<Value>()
                .await
                .expect("order")
        }
    };
    let after = shown(repriced).await;
    assert_eq!(after["total"], 12_000, "{after}");
    let after = shown(cancelled).await;
    assert_eq!(after["status"], "cancelled", "{after}");
    assert_eq!(after["refund"], 15_000, "{after}");
    let history: Value = app
        .get(
            &format!("/api/v1/admin/audit/streams/order/{repriced}"),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("history");
    let adjusted = history
        .as_array()
        .and_then(|events| {
            events
                .iter()
                .find(|event| event["event_type"] == "PriceAdjusted")
        })
        .expect("a PriceAdjusted event");
    assert_eq!(
        adjusted["payload"]["PriceAdjusted"]["reason"],
        "上门后确认面积较小，按实际收费"
    );
    assert_eq!(adjusted["metadata"]["actor_role"], "admin", "{adjusted}");
    // The approved worker is dispatchable at the level chosen; the withdrawal left review.
    let (dispatchable, level): (bool, String) = sqlx::query_as(
        "SELECT d.dispatchable, w.level FROM read_dispatch_workers d
           JOIN read_workers w ON w.worker_id = d.worker_id WHERE d.worker_id = $1",
    )
    .bind(pending.id)
    .fetch_one(&app.pool)
    .await
    .expect("the worker's read models");
    assert!(dispatchable);
    assert_eq!(level, "gold");
    let withdrawal: String =
        sqlx::query_scalar("SELECT status FROM read_withdrawals WHERE worker_id = $1")
            .bind(earner.id)
            .fetch_one(&app.pool)
            .await
            .expect("the withdrawal");
    assert_ne!(withdrawal, "requested");
    app.stop().await;
}

#[tokio::test]
async fn the_routes_the_console_added_answer_from_the_read_models() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let get = |path: String| {
        let app = &app;
        let token = admin.token.clone();
        async move {
            let response = app.get(&path, Some(&token)).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.json::<Value>().await.expect("json")
        }
    };

    // Nothing verified yet: the answer says so instead of failing.
    assert_eq!(
        get("/api/v1/admin/audit/verification".into()).await,
        Value::Null
    );

    // A paid order cancelled by an admin: its payment shows the refund.
    let (cancelled, payment_id) = app
        .paid_through_sandbox(&customer, &order_body(), "succeed")
        .await;
    let cancel = app
        .post(
            &format!("/api/v1/admin/orders/{cancelled}/cancel"),
            Some(&admin.token),
            &json!({"reason": "客户改变主意", "refund": "full"}),
        )
        .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let payments = loop {
        let payments = get(format!("/api/v1/admin/payments?order_id={cancelled}")).await;
        if payments[0]["refunded"] == 15_000 || std::time::Instant::now() > deadline {
            break payments;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(payments.as_array().map(Vec::len), Some(1), "{payments}");
    assert_eq!(payments[0]["payment_id"], payment_id.to_string());
    assert_eq!(payments[0]["refunded"], 15_000, "{payments}");
    assert_eq!(payments[0]["refunds"][0]["amount"], 15_000);
    let refused = app
        .get("/api/v1/admin/payments?limit=0", Some(&admin.token))
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A served order's review is listed for admins, and hiding it is seen in the filters.
    let served = app.served_order(&customer, &admin, &worker).await;
    let reviewed = app
        .post(
            &format!("/api/v1/orders/{served}/review"),
            Some(&customer.token),
            &json!({"quality": 2, "attitude": 4, "skill": 5, "comment": "来晚了"}),
        )
        .await;
    assert_eq!(reviewed.status(), StatusCode::OK);
    app.wait_for_projections().await;
    let listed = get("/api/v1/admin/reviews?max_stars=2".into()).await;
    assert_eq!(listed[0]["order_id"], served.to_string(), "{listed}");
    assert_eq!(listed[0]["hidden"], false);
    assert_eq!(
        get("/api/v1/admin/reviews?max_stars=1".into()).await,
        json!([])
    );
    let hidden = app
        .post(
            &format!("/api/v1/admin/orders/{served}/review/hide"),
            Some(&admin.token),
            &json!({"reason": "含有个人信息"}),
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    app.wait_for_projections().await;
    let listed = get("/api/v1/admin/reviews?hidden=true".into()).await;
    assert_eq!(listed[0]["hidden_reason"], "含有个人信息", "{listed}");
    assert_eq!(
        get("/api/v1/admin/reviews?hidden=false".into()).await,
        json!([])
    );

    // The dashboard counts the orders and their paid value from the read models: both orders
    // fall in the thirty days, and today's figures are the last day's (a run that crosses
    // midnight in Shanghai sees them yesterday, so the test sums the days).
    let dashboard = get("/api/v1/admin/dashboard".into()).await;
    let days = dashboard["by_day"].as_array().cloned().unwrap_or_default();
    assert_eq!(days.len(), 30);
    let sum = |field: &str| {
        days.iter()
            .map(|day| day[field].as_i64().unwrap_or(0))
            .sum::<i64>()
    };
    assert_eq!(sum("orders"), 2, "{dashboard}");
    assert_eq!(sum("gmv"), 30_000, "{dashboard}");
    assert_eq!(dashboard["today"]["orders"], days[29]["orders"]);
    assert_eq!(dashboard["today"]["gmv"], days[29]["gmv"]);
    if dashboard["today"]["orders"] == 2 {
        assert_eq!(dashboard["today"]["cancelled"], 1, "{dashboard}");
        assert_eq!(dashboard["today"]["finished"], 1, "{dashboard}");
        assert_eq!(dashboard["today"]["completion_rate"], 0.5, "{dashboard}");
    }
    assert_eq!(dashboard["by_service"][0]["service"], "daily_cleaning");
    // Hidden reviews are left out of the averages.
    assert_eq!(dashboard["satisfaction"]["reviews"], 0, "{dashboard}");

    // The timed jobs' runs are listed, whatever has run so far.
    assert!(get("/api/v1/admin/jobs".into()).await.is_array());
    app.stop().await;
}

#[tokio::test]
async fn a_phone_lands_in_the_app_browses_services_and_a_customer_signs_up_with_a_mailed_code() {
    assert!(
        web_dist().join("app/index.html").exists(),
        "the phone app is not built: run scripts/build-web (scripts/test does)"
    );
    let app = spawn_app().await;
    let email = format!("chen-{}@example.com", uuid::Uuid::new_v4().simple());
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .join("var/screenshots/app");
    let config = json!({"base": app.address, "email": email, "shots": shots});
    let (status, last) = app
        .drive_browser("app.mjs", &config, Duration::from_secs(180))
        .await;
    let result: Value = serde_json::from_str(&last)
        .unwrap_or_else(|error| panic!("no result line ({error}): {last}"));
    assert!(
        status.success() && result["problems"].as_array().is_some_and(Vec::is_empty),
        "{}",
        tests::browser_failure("app.mjs", &result, "")
    );
    assert_eq!(
        result["checks"].as_array().map(Vec::len),
        Some(8),
        "{result:#}"
    );
    // The account exists, as a customer.
    let role: String = sqlx::query_scalar("SELECT role FROM credentials WHERE login = $1")
        .bind(&email)
        .fetch_one(&app.pool)
        .await
        .expect("the new account");
    assert_eq!(role, "customer");
    app.stop().await;
}
