//! The integration-test harness: a throwaway PostgreSQL per test process, a fresh database per
//! test, the real app on a real port, and typed helpers for what tests do over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub mod peer;
pub mod providers;
pub mod smtp;

/// One cluster per test process; it stops and vanishes when the process exits.
fn cluster() -> &'static localpg::EphemeralCluster {
    static CLUSTER: OnceLock<localpg::EphemeralCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| localpg::start_ephemeral().expect("starting the test PostgreSQL"))
}

/// A fresh, migrated database; returns its URL.
pub async fn fresh_database() -> String {
    let cluster = cluster();
    let name = format!("test_{}", Uuid::new_v4().simple());
    let admin = PgPool::connect(&cluster.url("postgres"))
        .await
        .expect("connecting to the test cluster");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("creating a test database");
    admin.close().await;
    cluster.url(&name)
}

pub struct TestApp {
    pub address: String,
    /// Where the app's e-mail goes.
    pub mail: smtp::SmtpSink,
    /// The app's vault, for tests that write events by hand.
    pub vault: vault::Vault,
    pub pool: PgPool,
    pub database_url: String,
    pub client: reqwest::Client,
    running: Option<anjia::server::Running>,
}

/// Starts the real app with its projectors on a fresh database and a free port.
pub async fn spawn_app() -> TestApp {
    let database_url = fresh_database().await;
    spawn_app_on(&database_url).await
}

/// Logs go to the test's captured output (shown when it fails); `RUST_LOG` chooses how much.
#[allow(
    clippy::disallowed_methods,
    reason = "the test harness is not the platform: whoever runs the tests chooses their log"
)]
fn init_logging() {
    static LOGGING: OnceLock<()> = OnceLock::new();
    LOGGING.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "warn,sqlx=error".into());
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::Layer;
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(filter),
            )
            .with(command_api::logs::CaptureLayer::filtered())
            .try_init();
    });
}

pub async fn spawn_app_on(database_url: &str) -> TestApp {
    spawn_app_configured(database_url, |_| {}).await
}

/// Starts another app on an existing database with its settings adjusted: a second process
/// of the same platform, in this one.
pub async fn spawn_app_on_with(
    database_url: &str,
    adjust: impl FnOnce(&mut anjia::config::Settings),
) -> TestApp {
    spawn_app_configured(database_url, adjust).await
}

/// Settings under which income is available at once and bank accounts may be used at once.
pub fn money_settles_at_once(settings: &mut anjia::config::Settings) {
    settings.money.settlement_period = chrono::Duration::zero();
    settings.money.schedule = "*/1 * * * * *".to_owned();
    settings.money.withdrawals.account_age_hours = 0;
}

/// Starts the app on a fresh database with its settings adjusted, e.g. a faster job schedule.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut anjia::config::Settings)) -> TestApp {
    let database_url = fresh_database().await;
    spawn_app_configured(&database_url, adjust).await
}

async fn spawn_app_configured(
    database_url: &str,
    adjust: impl FnOnce(&mut anjia::config::Settings),
) -> TestApp {
    init_logging();
    // The server's own pool options, as `anjia serve` opens them.
    let pool = application::services::pool_options(40, std::time::Duration::from_secs(30))
        .connect(database_url)
        .await
        .expect("connecting to the test database");
    let vault = anjia::server::prepare(&pool, None)
        .await
        .expect("migrating");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let mail = smtp::SmtpSink::start().await;
    let mut settings = anjia::config::Settings {
        mode: anjia::config::Mode::Development,
        notify: adapters::notify::NotifySettings {
            smtp_url: Some(mail.url()),
            mail_from: Some("安家 Anjia <no-reply@anjia.test>".into()),
            ..Default::default()
        },
        web_dir: web_dist(),
        ..Default::default()
    };
    // A test refreshes the warehouse when it means to: a scheduled refresh that happens to fall
    // inside a test (every five minutes) would load part of what the test then loads.
    settings.jobs.analytics_schedule = "0 0 0 1 1 *".to_owned();
    adjust(&mut settings);
    let running = anjia::server::start(pool.clone(), listener, true, &settings, vault.clone())
        .await
        .expect("starting");
    TestApp {
        address: format!("http://{}", running.address),
        mail,
        vault,
        pool,
        database_url: database_url.to_owned(),
        client: reqwest::Client::new(),
        running: Some(running),
    }
}

/// A session of one signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub token: String,
    pub refresh_token: String,
    pub session_id: Uuid,
    pub role: String,
}

impl TestApp {
    /// Runs one of the browser scripts in `tests/browser` (`node SCRIPT CONFIG`), answering
    /// each `NEED_CODE <address>` line it prints with the code mailed to that address; answers
    /// how it exited and the last other line it printed (its JSON result), within `limit`.
    pub async fn drive_browser(
        &self,
        script: &str,
        config: &Value,
        limit: Duration,
    ) -> (std::process::ExitStatus, String) {
        self.drive_browser_telling(script, config, limit, None)
            .await
    }

    /// `drive_browser`, also sending to `events` each `EVENT <what>` line the script prints
    /// (what it has reached), so that the test can act at that moment rather than after a
    /// guessed wait.
    pub async fn drive_browser_telling(
        &self,
        script: &str,
        config: &Value,
        limit: Duration,
        events: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    ) -> (std::process::ExitStatus, String) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let browser_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
        let mut child = tokio::process::Command::new("node")
            .arg(browser_dir.join(script))
            .arg(config.to_string())
            .current_dir(&browser_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut last = String::new();
        let run = async {
            while let Some(line) = stdout.next_line().await.expect("a line") {
                if let Some(address) = line.strip_prefix("NEED_CODE ") {
                    let code = self
                        .mail
                        .latest_to(address)
                        .await
                        .code()
                        .expect("a code in the mail");
                    stdin
                        .write_all(format!("{code}\n").as_bytes())
                        .await
                        .expect("sending the code");
                } else if let Some(event) = line.strip_prefix("EVENT ") {
                    if let Some(events) = &events {
                        let _ = events.send(event.to_owned());
                    }
                } else {
                    last = line;
                }
            }
            child.wait().await.expect("node ran")
        };
        let status = tokio::time::timeout(limit, run)
            .await
            .unwrap_or_else(|_| panic!("{script} finished within {limit:?}"));
        (status, last)
    }
}

/// Why a browser script failed, short enough to survive a log that keeps only its last lines:
/// how far it got (its last checks), the end of what it wrote to stderr, then its problems,
/// last of all.
pub fn browser_failure(script: &str, result: &Value, stderr: &str) -> String {
    let checks = result["checks"].as_array().cloned().unwrap_or_default();
    let last_checks: Vec<String> = checks
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|check| format!("  ✓ {}", check.as_str().unwrap_or_default()))
        .collect();
    let stderr_tail: Vec<&str> = stderr.lines().rev().take(10).collect();
    let problems: Vec<String> = result["problems"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|problem| {
            let text = problem
                .as_str()
                .map_or_else(|| problem.to_string(), str::to_owned);
            let short: String = text.lines().take(8).collect::<Vec<_>>().join("\n    ");
            format!("  ✗ {short}")
        })
        .collect();
    format!(
        "{script} failed after {} checks; the last:\n{}\nstderr (last lines):\n{}\nproblems:\n{}",
        checks.len(),
        last_checks.join("\n"),
        stderr_tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        problems.join("\n"),
    )
}

/// The clone's `web/` folder (the Vite project).
pub fn web_folder() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .join("web")
}

/// The web apps' build, as `scripts/test` makes it before the tests run.
pub fn web_dist() -> std::path::PathBuf {
    web_folder().join("dist")
}

pub fn future_start(days: i64) -> String {
    (Utc::now() + chrono::Duration::days(days)).to_rfc3339()
}

/// Where `order_body` sends the worker: People's Square, Shanghai, in GCJ-02.
pub const ORDER_LATITUDE: f64 = 31.2304;
pub const ORDER_LONGITUDE: f64 = 121.4737;

/// An order body starting `minutes` from now.
pub fn order_body_starting_in(minutes: i64) -> Value {
    let mut body = order_body();
    body["scheduled_start"] = (Utc::now() + chrono::Duration::minutes(minutes))
        .to_rfc3339()
        .into();
    body
}

/// Polls `done` until it holds; fails the test, naming `what`, after 30 seconds.
pub async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where a command's answer says its events landed (`Anjia-Position`).
pub fn position_of(response: &Response) -> String {
    response
        .headers()
        .get("anjia-position")
        .and_then(|value| value.to_str().ok())
        .expect("a command's answer carries Anjia-Position")
        .to_owned()
}

pub fn order_body() -> Value {
    json!({
        "service": "daily_cleaning",
        "unit_price": 5_000,
        "quantity": 3,
        "scheduled_start": future_start(2),
        "duration_minutes": 180,
        "address": {
            "city": "上海市", "district": "浦东新区", "detail": "世纪大道 100 号 2 栋 301",
            "contact_name": "王女士", "contact_phone": "13800135678",
            "location": { "latitude": 31.2304, "longitude": 121.4737, "system": "gcj02" }
        },
        "note": "家里有猫 / there is a cat"
    })
}

impl TestApp {
    /// The running app's use cases, for a test that takes a flow step by step.
    pub fn services(&self) -> &application::services::Services {
        &self.running.as_ref().expect("the app is running").services
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.post_asking(path, token, body, None).await
    }

    /// `post`, asking for problems in English (`Accept-Language: en`; Chinese otherwise).
    pub async fn post_in_english(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.post_asking(path, token, body, Some("en")).await
    }

    async fn post_asking(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        language: Option<&str>,
    ) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(language) = language {
            request = request.header("accept-language", language);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("sending a request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("sending a request")
    }

    pub async fn sign_in(&self, login: &str, password: &str) -> User {
        let response = self
            .post(
                "/api/v1/sessions",
                None,
                &json!({"login": login, "password": password}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "signing in");
        let session: Value = response.json().await.expect("session json");
        User {
            id: session["user_id"]
                .as_str()
                .expect("user id")
                .parse()
                .expect("uuid"),
            token: session["access_token"].as_str().expect("token").to_owned(),
            refresh_token: session["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
            session_id: session["session_id"]
                .as_str()
                .expect("session id")
                .parse()
                .expect("uuid"),
            role: session["role"].as_str().expect("role").to_owned(),
        }
    }

    /// Requests a one-time code for `destination` and reads it where a person would: from the
    /// mailbox (the SMTP sink) for an address, from the SMS outbox for a phone number.
    pub async fn code_for(&self, purpose: &str, destination: &str) -> String {
        let response = self
            .post(
                "/api/v1/verification-codes",
                None,
                &json!({"purpose": purpose, "destination": destination}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "requesting a code: {}",
            response.text().await.unwrap_or_default()
        );
        if destination.contains('@') {
            return self
                .mail
                .latest_to(destination)
                .await
                .code()
                .expect("a code in the mail");
        }
        let text: String = sqlx::query_scalar(
            "SELECT body FROM outbox_messages WHERE channel = 'sms' AND destination = $1 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(domain::PhoneNumber::parse(destination).expect("a phone number").as_str())
        .fetch_one(&self.pool)
        .await
        .expect("an SMS in the outbox");
        text.split(|c: char| !c.is_ascii_digit())
            .find(|digits| digits.len() == 6)
            .expect("a code in the SMS")
            .to_owned()
    }

    /// Registers an account (requesting and reading its code) and answers the raw response.
    pub async fn register(&self, mut body: Value) -> Response {
        let login = body["login"].as_str().expect("login").to_owned();
        let code = self.code_for("register", &login).await;
        body["verification_code"] = code.into();
        self.post("/api/v1/accounts", None, &body).await
    }

    pub async fn register_customer(&self) -> User {
        let login = format!("customer-{}@example.com", Uuid::new_v4().simple());
        let response = self
            .register(json!({"kind": "customer", "login": login, "password": "a-good-password", "name": "李女士", "phone": "13912345678"}))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering a customer: {}",
            response.text().await.unwrap_or_default()
        );
        self.sign_in(&login, "a-good-password").await
    }

    pub async fn register_worker(&self, skills: &[&str]) -> User {
        let login = format!("worker-{}@example.com", Uuid::new_v4().simple());
        let response = self
            .register(json!({"kind": "worker", "login": login, "password": "a-good-password", "name": "张阿姨", "phone": "13712345678",
                        "worker": {"skills": skills, "years_of_experience": 8, "languages": ["普通话"], "city": "上海市", "districts": ["浦东新区"]}}))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering a worker: {}",
            response.text().await.unwrap_or_default()
        );
        self.sign_in(&login, "a-good-password").await
    }

    /// A registered worker who has submitted their identity and the certificates their
    /// skills need, waiting for an admin's review.
    pub async fn onboarded_worker(&self, skills: &[&str]) -> User {
        let worker = self.register_worker(skills).await;
        let identity = self
            .post(
                "/api/v1/worker/identity",
                Some(&worker.token),
                &json!({"id_number": valid_id_number(worker.id.as_u128() as u32)}),
            )
            .await;
        assert_eq!(
            identity.status(),
            StatusCode::OK,
            "identity: {}",
            identity.text().await.unwrap_or_default()
        );
        let mut certificates = std::collections::BTreeSet::new();
        for skill in skills {
            let service = domain::ServiceCode::parse(skill).expect("a catalogue service");
            certificates.extend(
                domain::onboarding::required_certificates(service)
                    .iter()
                    .map(|kind| kind.as_str()),
            );
        }
        for kind in certificates {
            let added = self
                .post(
                    "/api/v1/worker/certificates",
                    Some(&worker.token),
                    &json!({"kind": kind, "number": format!("NO-{}", &worker.id.simple().to_string()[..16]), "issued_on": "2025-01-01", "expires_on": "2099-12-31"}),
                )
                .await;
            assert_eq!(
                added.status(),
                StatusCode::CREATED,
                "certificate: {}",
                added.text().await.unwrap_or_default()
            );
        }
        worker
    }

    /// A worker who has passed onboarding: identity checked, approved, skills certified and the
    /// certificates those skills need on file. Returns the worker.
    pub async fn qualified_worker(&self, skills: &[&str], admin: &User) -> User {
        let worker = self.onboarded_worker(skills).await;
        let approved = self
            .post(
                &format!("/api/v1/admin/workers/{}/review", worker.id),
                Some(&admin.token),
                &json!({"decision": "approve", "level": "silver"}),
            )
            .await;
        assert_eq!(
            approved.status(),
            StatusCode::OK,
            "approval: {}",
            approved.text().await.unwrap_or_default()
        );
        for skill in skills {
            let certified = self
                .post(
                    &format!("/api/v1/admin/workers/{}/certified-skills", worker.id),
                    Some(&admin.token),
                    &json!({"service": skill}),
                )
                .await;
            assert_eq!(
                certified.status(),
                StatusCode::OK,
                "certification: {}",
                certified.text().await.unwrap_or_default()
            );
        }
        worker
    }

    pub async fn create_admin(&self) -> User {
        self.create_staff(domain::Role::Admin).await
    }

    pub async fn create_analyst(&self) -> User {
        self.create_staff(domain::Role::Analyst).await
    }

    async fn create_staff(&self, role: domain::Role) -> User {
        let login = format!("{}-{}@example.com", role.as_str(), Uuid::new_v4().simple());
        command_api::routes::accounts::create_staff(&self.pool, &login, "a-staff-password", role)
            .await
            .expect("creating a staff account");
        self.sign_in(&login, "a-staff-password").await
    }

    /// Loads everything in the log into the analytics warehouse, as an admin.
    pub async fn refresh_warehouse(&self, admin: &User) {
        let refreshed = self
            .post(
                "/api/v1/admin/analytics/refresh",
                Some(&admin.token),
                &json!({}),
            )
            .await;
        assert_eq!(
            refreshed.status(),
            StatusCode::OK,
            "refreshing the warehouse"
        );
    }

    /// Places an order and returns its id.
    pub async fn place_order(&self, customer: &User) -> Uuid {
        self.place_order_with(customer, &order_body()).await
    }

    /// Places an order from a given body and returns its id.
    pub async fn place_order_with(&self, customer: &User, body: &Value) -> Uuid {
        let response = self
            .post("/api/v1/orders", Some(&customer.token), body)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "placing an order: {}",
            response.text().await.unwrap_or_default()
        );
        let ack: Value = response.json().await.expect("ack json");
        ack["order_id"]
            .as_str()
            .expect("order id")
            .parse()
            .expect("uuid")
    }

    /// An admin assigns a worker to an order by hand; the response is the test's to judge.
    pub async fn assign(&self, order_id: Uuid, worker_id: Uuid, admin: &User) -> Response {
        self.post(
            &format!("/api/v1/orders/{order_id}/assignment"),
            Some(&admin.token),
            &json!({"worker_id": worker_id}),
        )
        .await
    }

    /// A worker who has served one paid 150.00 cleaning and holds its 122.25 (after the default
    /// commission) available to withdraw. Needs settings with no settlement period and a quick
    /// money job (`money_settles_at_once`).
    pub async fn worker_with_income(&self, admin: &User) -> User {
        let customer = self.register_customer().await;
        let worker = self.qualified_worker(&["daily_cleaning"], admin).await;
        let (order_id, _) = self
            .paid_through_sandbox(&customer, &order_body_starting_in(30), "succeed")
            .await;
        self.grab_and_serve(order_id, &worker).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let mine: Value = self
                .get("/api/v1/worker/withdrawals", Some(&worker.token))
                .await
                .json()
                .await
                .expect("withdrawals");
            if mine["available"] == 12_225 {
                return worker;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the income never became available: {mine}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The assigned worker accepts an order; the response is the test's to judge.
    pub async fn accept(&self, order_id: Uuid, worker: &User) -> Response {
        self.post(
            &format!("/api/v1/orders/{order_id}/accept"),
            Some(&worker.token),
            &json!({}),
        )
        .await
    }

    /// A worker grabs an order open for grabbing and serves it to the end: sets off, checks in
    /// at the door of `order_body`'s address, starts and finishes.
    pub async fn grab_and_serve(&self, order_id: Uuid, worker: &User) {
        let door =
            json!({"latitude": ORDER_LATITUDE, "longitude": ORDER_LONGITUDE, "system": "gcj02"});
        self.order_steps(
            order_id,
            worker,
            [
                ("grab", json!({})),
                ("depart", json!({})),
                ("arrive", door),
                ("start", json!({})),
                ("finish", json!({})),
            ],
        )
        .await;
    }

    /// `who` takes each step of an order in turn (`POST /api/v1/orders/{id}/{step}` with its
    /// body), each of which must succeed.
    pub async fn order_steps(
        &self,
        order_id: Uuid,
        who: &User,
        steps: impl IntoIterator<Item = (&str, Value)>,
    ) {
        for (step, body) in steps {
            let response = self
                .post(
                    &format!("/api/v1/orders/{order_id}/{step}"),
                    Some(&who.token),
                    &body,
                )
                .await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{step}: {}",
                response.text().await.unwrap_or_default()
            );
        }
    }

    /// Places an order starting in half an hour, pays it (offline), opens it for dispatch and
    /// has `worker` serve it; answers its id.
    pub async fn served_order(&self, customer: &User, admin: &User, worker: &User) -> Uuid {
        let order_id = self
            .place_order_with(customer, &order_body_starting_in(30))
            .await;
        self.pay(order_id, admin).await;
        self.open_dispatch(order_id, admin).await;
        self.wait_for_projections().await;
        self.grab_and_serve(order_id, worker).await;
        order_id
    }

    /// Records the offline payment of an order's ¥150.00; dispatch opens with it.
    pub async fn pay(&self, order_id: Uuid, admin: &User) {
        let paid = self
            .post(
                &format!("/api/v1/orders/{order_id}/payments"),
                Some(&admin.token),
                &json!({"reference": format!("BANK-{}", order_id.simple()), "amount": 15_000}),
            )
            .await;
        assert_eq!(
            paid.status(),
            StatusCode::OK,
            "paying: {}",
            paid.text().await.unwrap_or_default()
        );
    }

    /// Places an order and pays it through the sandbox provider, which behaves as `behaviour`
    /// says (`succeed`, `timeout`, `refund_fails_once`, ...), until dispatch opens; answers the
    /// order's and the payment's ids.
    pub async fn paid_through_sandbox(
        &self,
        customer: &User,
        body: &Value,
        behaviour: &str,
    ) -> (Uuid, Uuid) {
        let order_id = self.place_order_with(customer, body).await;
        let response = self
            .post(
                &format!("/api/v1/orders/{order_id}/payment-intents"),
                Some(&customer.token),
                &json!({"method": "alipay", "sandbox": behaviour}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "opening the payment"
        );
        let created: Value = response.json().await.expect("intent");
        self.wait_for_order(&customer.token, order_id, |order| {
            order["status"] == "dispatching"
        })
        .await;
        self.wait_for_projections().await;
        let payment_id = created["payment_id"]
            .as_str()
            .expect("payment id")
            .parse()
            .expect("uuid");
        (order_id, payment_id)
    }

    /// Places, pays and opens an order for dispatch.
    pub async fn dispatchable_order(&self, customer: &User, admin: &User) -> Uuid {
        let order_id = self.place_order(customer).await;
        let paid = self
            .post(
                &format!("/api/v1/orders/{order_id}/payments"),
                Some(&admin.token),
                &json!({"reference": "BANK-0001", "amount": 15_000}),
            )
            .await;
        assert_eq!(paid.status(), StatusCode::OK, "paying");
        self.open_dispatch(order_id, admin).await;
        order_id
    }

    /// An admin opens a paid order for dispatch.
    pub async fn open_dispatch(&self, order_id: Uuid, admin: &User) {
        let opened = self
            .post(
                &format!("/api/v1/orders/{order_id}/dispatch"),
                Some(&admin.token),
                &json!({}),
            )
            .await;
        assert_eq!(opened.status(), StatusCode::OK, "opening dispatch");
    }

    /// Polls the read model until the order satisfies `ready`, or fails after a deadline.
    pub async fn wait_for_order(
        &self,
        token: &str,
        order_id: Uuid,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let response = self
                .get(&format!("/api/v1/orders/{order_id}"), Some(token))
                .await;
            if response.status() == StatusCode::OK {
                let order: Value = response.json().await.expect("order json");
                if ready(&order) {
                    return order;
                }
            }
            assert!(
                Instant::now() < deadline,
                "order {order_id} did not reach the expected state in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every projection has applied every committed event.
    pub async fn wait_for_projections(&self) {
        // Generous: under the whole suite's load on two cores a generated history of thousands
        // of events takes the slowest projection well over half a minute.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let statuses = projections::status(&self.pool)
                .await
                .expect("projection status");
            if statuses.iter().all(|status| status.pending_events == 0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "projections did not catch up: {statuses:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("counting events")
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

/// Asserts a problem document with the given status and type; returns it.
pub async fn assert_problem(response: Response, status: StatusCode, problem_type: &str) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = response.json().await.expect("problem json");
    assert_eq!(problem["type"], problem_type, "{problem}");
    assert_eq!(problem["status"], status.as_u16());
    problem
}

/// The `anjia` binary built beside this test binary (`scripts/test` builds it first).
pub fn anjia_binary() -> std::path::PathBuf {
    let test_binary = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/api-<hash> -> target/<profile>/anjia
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile dir");
    let binary = profile_dir.join("anjia");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build --bin anjia` (scripts/test does)",
        binary.display()
    );
    binary
}

/// A separate `anjia serve` process against the same database: for claims across processes.
pub struct ServerProcess {
    pub address: String,
    child: Child,
}

impl ServerProcess {
    /// The process's resident memory in kilobytes, from `/proc`.
    pub fn resident_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmRSS:"))
                    .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Starts the process and waits (off the async runtime) for it to say where it listens.
    pub async fn start(database_url: &str) -> ServerProcess {
        ServerProcess::start_with(database_url, &[]).await
    }

    /// Starts the process with some settings of its environment added, e.g.
    /// `("ANJIA_DB_WRITERS", "2")`.
    pub async fn start_with(database_url: &str, settings: &[(&str, &str)]) -> ServerProcess {
        let database_url = database_url.to_owned();
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        tokio::task::spawn_blocking(move || ServerProcess::start_blocking(&database_url, &settings))
            .await
            .expect("starting a server process")
    }

    fn start_blocking(database_url: &str, settings: &[(String, String)]) -> ServerProcess {
        let mut child = Command::new(anjia_binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            // It finds DuckDB's library through its own run path (build/rpath.rs).
            .env_remove("LD_LIBRARY_PATH")
            .env("DATABASE_URL", database_url)
            .env("ANJIA_MODE", "development")
            .env("ANJIA_WEB_DIR", web_dist())
            .env("RUST_LOG", "warn")
            .envs(settings.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting anjia serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the listen line");
        let address = line
            .trim()
            .strip_prefix("anjia listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from anjia serve: {line:?}"))
            .to_owned();
        ServerProcess { address, child }
    }
}

impl ServerProcess {
    /// Sends SIGTERM, as a service manager would, and waits for the process to exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        tokio::task::spawn_blocking(move || {
            let sent = Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("running kill");
            assert!(sent.success(), "kill -TERM {pid}");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                if let Some(status) = self.child.try_wait().expect("waiting") {
                    return status;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "anjia did not stop within 30 s of SIGTERM"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
        .await
        .expect("terminating")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an `anjia` subcommand to completion and returns its standard output.
pub fn run_anjia(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(anjia_binary())
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env("DATABASE_URL", database_url)
        // The test databases are a developer's: the payment sandbox is one of their providers.
        .env("ANJIA_MODE", "development")
        .env("RUST_LOG", "warn")
        .output()
        .expect("running anjia");
    assert!(
        output.status.success(),
        "anjia {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// A well-formed resident identity number (Beijing Chaoyang, born 1985-06-15) whose sequence
/// digits come from `seed`, with its check character computed.
pub fn valid_id_number(seed: u32) -> String {
    let body = format!("11010519850615{:03}", seed % 1000);
    let check = domain::onboarding::IdCardNumber::check_character(&body).expect("17 digits");
    format!("{body}{check}")
}
