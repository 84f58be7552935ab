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
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
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
        "the console test failed: {result:#}\n{stderr}"
    );
    for page in ["sign-in", "dashboard", "orders", "analytics", "sql"] {
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
    app.stop().await;
}
