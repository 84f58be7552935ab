//! `anjia bench`'s realistic mix: whole order lives over HTTP, as the apps make them. A
//! customer places an order and pays it through the sandbox (which confirms 200 ms later, as a
//! provider would, through the payment notification); a worker grabs it, sets off, checks in
//! at the door, starts and finishes; the customer reviews. Every request carries its own
//! `Idempotency-Key`, as the apps' do.
//!
//! A worker's time is booked by the order they take, so each flow has a worker of its own,
//! onboarded beforehand through the same API (registration with a code, identity, certificate,
//! an admin's approval and certification) from addresses of their own behind a trusted proxy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::sql_cost::{self, CommandCost, Counters};
use application::stats::Sorted;

/// The steps of one flow, in order.
pub const STEPS: [&str; 8] = [
    "place-order",
    "pay",
    "grab",
    "depart",
    "arrive",
    "start",
    "finish",
    "review",
];

/// One step's latencies at one concurrency.
#[derive(Debug, Serialize)]
pub struct StepFigures {
    pub step: &'static str,
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Whole flows at one concurrency.
#[derive(Debug, Serialize)]
pub struct FlowLevel {
    pub concurrency: usize,
    pub flows: usize,
    pub flows_per_second: f64,
    /// From placing to reviewing, the sandbox's 200 ms before it confirms included.
    pub flow_p50_ms: f64,
    pub flow_p99_ms: f64,
    /// Each request's own latency (for `pay`, the payment intent; the provider's notification
    /// that follows is the platform's work, not a request the customer waits on).
    pub steps: Vec<StepFigures>,
    /// How many flows did not complete.
    pub failed: usize,
    /// The first error of each of the first five that did not.
    pub failures: Vec<String>,
}

/// The HTTP side of the bench.
#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    pub base: String,
}

impl Http {
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        forwarded_for: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("idempotency-key", Uuid::new_v4().to_string())
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(address) = forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn ok(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        forwarded_for: Option<&str>,
    ) -> anyhow::Result<Value> {
        let (status, answer) = self.post(path, token, body, forwarded_for).await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {answer}");
        Ok(answer)
    }
}

/// A signed-in person: their id and access token.
#[derive(Clone)]
pub struct Person {
    pub id: Uuid,
    pub token: String,
}

pub async fn sign_in(http: &Http, login: &str, password: &str) -> anyhow::Result<Person> {
    let session = http
        .ok(
            "/api/v1/sessions",
            None,
            &json!({"login": login, "password": password}),
            None,
        )
        .await?;
    Ok(Person {
        id: session["user_id"].as_str().context("no user id")?.parse()?,
        token: session["access_token"]
            .as_str()
            .context("no access token")?
            .to_owned(),
    })
}

/// Registers and signs in an account, its code read from the development outbox.
pub async fn register(
    http: &Http,
    pool: &sqlx::PgPool,
    mut body: Value,
    forwarded_for: Option<&str>,
) -> anyhow::Result<Person> {
    let login = body["login"].as_str().context("login")?.to_owned();
    http.ok(
        "/api/v1/verification-codes",
        None,
        &json!({"purpose": "register", "destination": login}),
        forwarded_for,
    )
    .await?;
    let message: String = sqlx::query_scalar(
        "SELECT body FROM outbox_messages WHERE destination = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&login)
    .fetch_one(pool)
    .await
    .context("reading the code from the outbox")?;
    let code = message
        .split(|c: char| !c.is_ascii_digit())
        .find(|digits| digits.len() == 6)
        .context("no code in the message")?;
    body["verification_code"] = code.into();
    http.ok("/api/v1/accounts", None, &body, forwarded_for)
        .await?;
    let password = body["password"].as_str().context("password")?.to_owned();
    sign_in(http, &login, &password).await
}

/// A valid resident identity number, different for each `index` below 36,500.
fn identity_number(index: usize) -> String {
    let born = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date")
        + chrono::Duration::days(index as i64 % 36_500);
    let body = format!("110105{}{:03}", born.format("%Y%m%d"), index % 1000);
    let check = domain::onboarding::IdCardNumber::check_character(&body).expect("17 digits");
    format!("{body}{check}")
}

/// A cleaner onboarded and approved through the API, as a new worker and an admin would.
pub async fn qualified_cleaner(
    http: &Http,
    pool: &sqlx::PgPool,
    admin: &Person,
    index: usize,
) -> anyhow::Result<Person> {
    let address = format!("10.{}.{}.1", index / 250 % 250, index % 250);
    let login = format!("bench-worker-{}@example.com", Uuid::new_v4().simple());
    let worker = register(
        http,
        pool,
        json!({"kind": "worker", "login": login, "password": "bench-password-1", "name": "张阿姨", "phone": "13712345678",
               "worker": {"skills": ["daily_cleaning"], "years_of_experience": 8, "languages": ["普通话"],
                          "city": "上海市", "districts": ["浦东新区"]}}),
        Some(&address),
    )
    .await?;
    http.ok(
        "/api/v1/worker/identity",
        Some(&worker.token),
        &json!({"id_number": identity_number(index)}),
        Some(&address),
    )
    .await?;
    for kind in domain::onboarding::required_certificates(domain::ServiceCode::DailyCleaning) {
        http.ok(
            "/api/v1/worker/certificates",
            Some(&worker.token),
            &json!({"kind": kind.as_str(), "number": format!("NO-{}", &worker.id.simple().to_string()[..16]),
                    "issued_on": "2025-01-01", "expires_on": "2099-12-31"}),
            Some(&address),
        )
        .await?;
    }
    http.ok(
        &format!("/api/v1/admin/workers/{}/review", worker.id),
        Some(&admin.token),
        &json!({"decision": "approve", "level": "silver"}),
        None,
    )
    .await?;
    http.ok(
        &format!("/api/v1/admin/workers/{}/certified-skills", worker.id),
        Some(&admin.token),
        &json!({"service": "daily_cleaning"}),
        None,
    )
    .await?;
    Ok(worker)
}

/// `count` cleaners, onboarded `parallel` at a time.
pub async fn qualified_cleaners(
    http: &Http,
    pool: &sqlx::PgPool,
    admin: &Person,
    first_index: usize,
    count: usize,
) -> anyhow::Result<Vec<Person>> {
    let mut cleaners = Vec::with_capacity(count);
    let indexes: Vec<usize> = (first_index..first_index + count).collect();
    for chunk in indexes.chunks(8) {
        let made = futures::future::join_all(
            chunk
                .iter()
                .map(|index| qualified_cleaner(http, pool, admin, *index)),
        )
        .await;
        for cleaner in made {
            cleaners.push(cleaner?);
        }
    }
    Ok(cleaners)
}

/// Where the orders' door is: People's Square, Shanghai, in GCJ-02.
pub const DOOR: (f64, f64) = (31.2304, 121.4737);

/// One flow's state between its steps.
struct Flow<'a> {
    http: &'a Http,
    pool: &'a sqlx::PgPool,
    customer: &'a Person,
    worker: &'a Person,
    sequence: usize,
    order: Option<Uuid>,
}

impl Flow<'_> {
    fn order_path(&self, step: &str) -> anyhow::Result<String> {
        let order = self.order.context("the order is not placed")?;
        Ok(format!("/api/v1/orders/{order}/{step}"))
    }

    /// Runs step `index` of `STEPS`; answers the latency of its request. `pay` returns once
    /// the provider's notification has opened dispatch, so that what it costs the database is
    /// counted with it.
    async fn step(&mut self, index: usize) -> anyhow::Result<f64> {
        let begun = Instant::now();
        let customer = Some(self.customer.token.as_str());
        let worker = Some(self.worker.token.as_str());
        match STEPS[index] {
            "place-order" => {
                let placed = self
                    .http
                    .ok(
                        "/api/v1/orders",
                        customer,
                        // Soon enough that the worker may check in now.
                        &super::bench::order_body(self.sequence, chrono::Duration::minutes(30)),
                        None,
                    )
                    .await?;
                self.order = Some(
                    placed["order_id"]
                        .as_str()
                        .context("no order id")?
                        .parse()?,
                );
                Ok(elapsed_ms(begun))
            }
            "pay" => {
                let path = self.order_path("payment-intents")?;
                self.http
                    .ok(
                        &path,
                        customer,
                        &json!({"method": "alipay", "sandbox": "succeed"}),
                        None,
                    )
                    .await?;
                let latency = elapsed_ms(begun);
                self.dispatch_opened().await?;
                Ok(latency)
            }
            "grab" => {
                let path = self.order_path("grab")?;
                self.http.ok(&path, worker, &json!({}), None).await?;
                Ok(elapsed_ms(begun))
            }
            "arrive" => {
                let path = self.order_path("arrive")?;
                let door = json!({"latitude": DOOR.0, "longitude": DOOR.1, "system": "gcj02"});
                self.http.ok(&path, worker, &door, None).await?;
                Ok(elapsed_ms(begun))
            }
            "review" => {
                let path = self.order_path("review")?;
                let review =
                    json!({"quality": 5, "attitude": 5, "skill": 4, "comment": "很好 / very good"});
                self.http.ok(&path, customer, &review, None).await?;
                Ok(elapsed_ms(begun))
            }
            step => {
                let path = self.order_path(step)?;
                self.http.ok(&path, worker, &json!({}), None).await?;
                Ok(elapsed_ms(begun))
            }
        }
    }

    /// Waits for the order's stream to open dispatch (the provider's notification came).
    async fn dispatch_opened(&self) -> anyhow::Result<()> {
        let order = self.order.context("the order is not placed")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let opened: bool = sqlx::query_scalar(
                "SELECT /* anjia-bench: not a command's */ EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'order' AND aggregate_id = $1
                                   AND event_type = 'DispatchOpened')",
            )
            .bind(order.to_string())
            .fetch_one(self.pool)
            .await?;
            if opened {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "dispatch did not open within 30 s of paying"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn elapsed_ms(begun: Instant) -> f64 {
    begun.elapsed().as_secs_f64() * 1_000.0
}

/// What each step costs the database, over `workers.len()` flows run one at a time on a
/// server with nothing else running.
pub async fn cost(
    http: &Http,
    pool: &sqlx::PgPool,
    customer: &Person,
    workers: &[Person],
) -> anyhow::Result<Vec<CommandCost>> {
    let mut totals: Vec<Counters> = STEPS.iter().map(|_| Counters::default()).collect();
    let mut latencies: Vec<Vec<f64>> = STEPS.iter().map(|_| Vec::new()).collect();
    for (sequence, worker) in workers.iter().enumerate() {
        let mut flow = Flow {
            http,
            pool,
            customer,
            worker,
            sequence,
            order: None,
        };
        for index in 0..STEPS.len() {
            let before = sql_cost::snapshot(pool).await?;
            let latency = flow
                .step(index)
                .await
                .with_context(|| format!("{} for the cost", STEPS[index]))?;
            let after = sql_cost::snapshot(pool).await?;
            totals[index].add_between(&before, &after);
            latencies[index].push(latency);
        }
    }
    Ok(STEPS
        .iter()
        .zip(totals)
        .zip(latencies)
        .map(|((step, total), latencies)| {
            sql_cost::between(
                step,
                workers.len(),
                Sorted::new(latencies).median(),
                &Counters::default(),
                &total,
            )
        })
        .collect())
}

/// `flows` whole flows, `concurrency` at a time, each with a worker of its own.
pub async fn level(
    http: &Http,
    pool: &sqlx::PgPool,
    customer: &Person,
    workers: Vec<Person>,
    concurrency: usize,
) -> anyhow::Result<FlowLevel> {
    let queue = Arc::new(std::sync::Mutex::new(workers.into_iter().enumerate()));
    let started = Instant::now();
    let mut runners = Vec::new();
    for _ in 0..concurrency {
        let queue = queue.clone();
        let http = http.clone();
        let pool = pool.clone();
        let customer = customer.clone();
        runners.push(tokio::spawn(async move {
            let mut steps: Vec<Vec<f64>> = STEPS.iter().map(|_| Vec::new()).collect();
            let mut whole = Vec::new();
            let mut failed = Vec::new();
            loop {
                let next = queue.lock().expect("queue").next();
                let Some((sequence, worker)) = next else {
                    break;
                };
                let begun = Instant::now();
                let mut flow = Flow {
                    http: &http,
                    pool: &pool,
                    customer: &customer,
                    worker: &worker,
                    sequence,
                    order: None,
                };
                let mut outcome = Ok(());
                for index in 0..STEPS.len() {
                    match flow.step(index).await {
                        Ok(latency) => steps[index].push(latency),
                        Err(error) => {
                            outcome = Err(format!("{}: {error:#}", STEPS[index]));
                            break;
                        }
                    }
                }
                match outcome {
                    Ok(()) => whole.push(elapsed_ms(begun)),
                    Err(error) => failed.push(error),
                }
            }
            (steps, whole, failed)
        }));
    }
    let mut steps: Vec<Vec<f64>> = STEPS.iter().map(|_| Vec::new()).collect();
    let mut whole = Vec::new();
    let mut failed = Vec::new();
    for runner in runners {
        let (runner_steps, runner_whole, runner_failed) = runner.await?;
        for (all, more) in steps.iter_mut().zip(runner_steps) {
            all.extend(more);
        }
        whole.extend(runner_whole);
        failed.extend(runner_failed);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let completed = whole.len();
    let whole = Sorted::new(whole);
    Ok(FlowLevel {
        concurrency,
        flows: completed,
        flows_per_second: completed as f64 / elapsed,
        flow_p50_ms: whole.percentile(0.50),
        flow_p99_ms: whole.percentile(0.99),
        steps: STEPS
            .iter()
            .zip(steps)
            .map(|(step, latencies)| {
                let count = latencies.len();
                let latencies = Sorted::new(latencies);
                StepFigures {
                    step,
                    count,
                    p50_ms: latencies.percentile(0.50),
                    p99_ms: latencies.percentile(0.99),
                }
            })
            .collect(),
        failed: failed.len(),
        failures: failed.into_iter().take(5).collect(),
    })
}
