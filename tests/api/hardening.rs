//! Attacks a hostile user would try, performed over real HTTP against real servers (parallel
//! requests where the attack is a race, across two server processes where it matters): each
//! now fails and changes nothing.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app, ServerProcess, TestApp};
use uuid::Uuid;

mod production;
mod sign_in;

/// Registers a customer with a known login and password; answers the login.
async fn customer_with_login(app: &TestApp) -> String {
    let login = format!("target-{}@example.com", Uuid::new_v4().simple());
    let registered = app
        .register(
            json!({"kind": "customer", "login": login, "password": "the-right-password",
                         "name": "黄女士", "phone": "13812345678"}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    login
}

#[tokio::test]
async fn someone_elses_order_answers_404_in_every_state_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let owner = app.register_customer().await;
    let stranger = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let other_worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let unpaid = app.place_order(&owner).await;
    let served = app.served_order(&owner, &admin, &worker).await;
    let missing = Uuid::now_v7();
    let order_events =
        || async {
            sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE aggregate_type = 'order' AND aggregate_id = ANY($1)",
        )
        .bind(vec![unpaid.to_string(), served.to_string(), missing.to_string()])
        .fetch_one(&app.pool)
        .await
        .expect("count")
        };
    let before = order_events().await;
    let mut answers = Vec::new();
    for order_id in [unpaid, served, missing] {
        for (who, path, body) in [
            (&stranger, "cancel", json!({"reason": "想取消 / cancel"})),
            (&stranger, "dispute", json!({"reason": "争议 / dispute"})),
            (
                &stranger,
                "review",
                json!({"quality": 1, "attitude": 1, "skill": 1}),
            ),
            (&stranger, "payment-intents", json!({"method": "alipay"})),
            (&other_worker, "accept", json!({})),
            (&other_worker, "depart", json!({})),
            (&other_worker, "finish", json!({})),
            (
                &other_worker,
                "review/reply",
                json!({"reply": "谢谢 / thanks"}),
            ),
        ] {
            let response = app
                .post(
                    &format!("/api/v1/orders/{order_id}/{path}"),
                    Some(&who.token),
                    &body,
                )
                .await;
            answers.push((order_id, path, response.status()));
            assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
        }
        for (who, path) in [(&stranger, "tracking"), (&other_worker, "navigation")] {
            let response = app
                .get(
                    &format!("/api/v1/orders/{order_id}/{path}"),
                    Some(&who.token),
                )
                .await;
            assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
        }
    }
    assert_eq!(order_events().await, before, "{answers:?}");
    app.stop().await;
}

#[tokio::test]
async fn behind_a_proxy_that_appends_its_own_header_line_the_client_cannot_pick_its_address() {
    let app = tests::spawn_app_with(|settings| {
        settings.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")]
    })
    .await;
    let login = customer_with_login(&app).await;
    // The client wrote its own X-Forwarded-For; the proxy appended the real address as a
    // separate header line.
    let signed_in = app
        .client
        .post(app.url("/api/v1/sessions"))
        .header("x-forwarded-for", "198.51.100.50")
        .header("x-forwarded-for", "203.0.113.5")
        .json(&json!({"login": login, "password": "the-right-password"}))
        .send()
        .await
        .expect("request");
    assert_eq!(signed_in.status(), StatusCode::CREATED);
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT client_ip FROM sessions ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .expect("session");
    assert_eq!(recorded.as_deref(), Some("203.0.113.5"));
    app.stop().await;
}

#[tokio::test]
async fn public_distances_cannot_locate_a_workers_base_within_its_kilometre() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let set_base = |latitude: f64, longitude: f64| {
        app.client
            .put(app.url("/api/v1/worker/base"))
            .bearer_auth(&worker.token)
            .json(&json!({"latitude": latitude, "longitude": longitude, "system": "gcj02", "radius_km": 30}))
            .send()
    };
    // Two homes in the same cell of the public grid, 400 m apart.
    let (home_latitude, home_longitude) = (31.2312, 121.4712);
    assert_eq!(
        set_base(home_latitude, home_longitude)
            .await
            .expect("base")
            .status(),
        StatusCode::NO_CONTENT
    );
    app.wait_for_projections().await;
    // An attacker sweeps the map in 50 m steps and filters by radius from each point.
    let probes: Vec<(f64, f64)> = (0..40)
        .map(|step| {
            (
                31.2200 + f64::from(step) * 0.00045,
                121.4600 + f64::from(step) * 0.0003,
            )
        })
        .collect();
    let answers = || async {
        let mut seen = Vec::new();
        for (latitude, longitude) in &probes {
            for within in ["", "&within_km=1", "&within_km=2"] {
                let listed: Vec<Value> = app
                    .get(
                        &format!("/api/v1/workers?skill=daily_cleaning&near_latitude={latitude}&near_longitude={longitude}&near_system=gcj02{within}"),
                        None,
                    )
                    .await
                    .json()
                    .await
                    .expect("workers");
                let distance = listed
                    .iter()
                    .find(|entry| entry["worker_id"] == worker.id.to_string())
                    .map(|entry| entry["distance_km"].clone());
                if let Some(Value::Number(km)) = &distance {
                    let km = km.as_f64().expect("km");
                    assert_eq!(km, km.round(), "distances are whole kilometres");
                }
                seen.push(distance);
            }
        }
        seen
    };
    let from_first_home = answers().await;
    assert!(
        from_first_home.iter().any(Option::is_some),
        "the sweep found the worker"
    );
    assert!(
        from_first_home.iter().any(Option::is_none),
        "and the radius filters left them out somewhere"
    );
    // Moved 400 m within the cell: every public answer is the same, so none of them told
    // where in the cell the home is.
    assert_eq!(
        set_base(home_latitude - 0.0036, home_longitude + 0.0036)
            .await
            .expect("base")
            .status(),
        StatusCode::NO_CONTENT
    );
    app.wait_for_projections().await;
    assert_eq!(answers().await, from_first_home);
    // A radius finer than a kilometre is refused.
    let fine = app
        .get(
            "/api/v1/workers?near_latitude=31.23&near_longitude=121.47&near_system=gcj02&within_km=0.5",
            None,
        )
        .await;
    let problem = assert_problem(
        fine,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    assert_eq!(problem["field"], "within_km");
    app.stop().await;
}

/// An analyst's query over HTTP; answers the status and the body.
async fn analyst_query(app: &TestApp, token: &str, sql: &str) -> (StatusCode, Value) {
    let response = app
        .post("/api/v1/analytics/sql", Some(token), &json!({"sql": sql}))
        .await;
    let status = response.status();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn an_analysts_answer_is_capped_in_bytes_as_well_as_rows() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let analyst = app.create_analyst().await;
    app.refresh_warehouse(&admin).await;
    // 10,000 rows of 20,000 characters would be 200 MB of answer held by the server; DuckDB's
    // own memory limit does not see rows once they are copied out of it.
    let (status, answer) = analyst_query(
        &app,
        &analyst.token,
        "SELECT repeat('x', 20000) AS wide FROM range(10000)",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", answer["detail"]);
    assert_eq!(answer["truncated"], true);
    assert_eq!(answer["truncated_by"], "bytes");
    let rows = answer["rows"].as_array().expect("rows").len();
    assert!(
        (1..=839).contains(&rows),
        "{rows} rows of 20 kB within 16 MiB"
    );
    // Ten times wider, DuckDB's memory limit stops it before any of it is copied out.
    let (status, answer) = analyst_query(
        &app,
        &analyst.token,
        "SELECT repeat('x', 200000) AS wide FROM range(10000)",
    )
    .await;
    match status {
        StatusCode::OK => assert_eq!(answer["truncated_by"], "bytes"),
        _ => assert_eq!(answer["type"], "/problems/sql-out-of-memory", "{answer}"),
    }
    // Narrow rows are still cut by the row limit.
    let (_, narrow) = analyst_query(&app, &analyst.token, "SELECT range FROM range(20000)").await;
    assert_eq!(narrow["truncated_by"], "rows");
    assert_eq!(narrow["rows"].as_array().map(Vec::len), Some(10_000));
    app.stop().await;
}

#[tokio::test]
async fn analysts_run_one_query_each_and_two_at_once_across_two_processes() {
    let slow = |settings: &mut anjia::config::Settings| {
        settings.warehouse.sql.timeout = std::time::Duration::from_secs(3);
    };
    let first = tests::spawn_app_with(slow).await;
    let second = tests::spawn_app_on_with(&first.database_url, slow).await;
    let admin = first.create_admin().await;
    for app in [&first, &second] {
        let refreshed = app
            .post(
                "/api/v1/admin/analytics/refresh",
                Some(&admin.token),
                &json!({}),
            )
            .await;
        assert_eq!(refreshed.status(), StatusCode::OK);
    }
    let analysts = [
        first.create_analyst().await,
        first.create_analyst().await,
        first.create_analyst().await,
    ];
    // Runs until the time-out stops it.
    let endless = "SELECT count(*) FROM range(100000000000) a";
    let outcome = |results: Vec<(StatusCode, Value)>| {
        let busy: Vec<&Value> = results
            .iter()
            .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
            .map(|(_, body)| body)
            .collect();
        for body in &busy {
            assert_eq!(body["type"], "/problems/busy", "{body}");
        }
        let ran = results
            .iter()
            .filter(|(status, body)| {
                *status == StatusCode::UNPROCESSABLE_ENTITY
                    && body["type"] == "/problems/sql-timed-out"
            })
            .count();
        (ran, busy.len())
    };
    // One analyst, two queries at once, one on each process: one runs, one waits its turn.
    let same = join_all([
        analyst_query(&first, &analysts[0].token, endless),
        analyst_query(&second, &analysts[0].token, endless),
    ])
    .await;
    assert_eq!(outcome(same), (1, 1));
    // Three analysts at once across both processes: two slots.
    let three = join_all([
        analyst_query(&first, &analysts[0].token, endless),
        analyst_query(&second, &analysts[1].token, endless),
        analyst_query(&first, &analysts[2].token, endless),
    ])
    .await;
    assert_eq!(outcome(three), (2, 1));
    // Afterwards every slot is free again.
    let (status, _) = analyst_query(&second, &analysts[1].token, "SELECT 1").await;
    assert_eq!(status, StatusCode::OK);
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn a_customer_cannot_hold_a_named_workers_calendar_with_endless_unpaid_orders() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let other_process = ServerProcess::start(&app.database_url).await;
    let bases = [app.address.clone(), other_process.address.clone()];
    // Ten unpaid orders naming the same worker, on ten different days, at once, over both
    // processes.
    let placements = (0..10).map(|index| {
        let mut body = tests::order_body();
        body["scheduled_start"] = tests::future_start(2 + index).into();
        body["worker_id"] = worker.id.to_string().into();
        app.client
            .post(format!("{}/api/v1/orders", bases[index as usize % 2]))
            .bearer_auth(&customer.token)
            .json(&body)
            .send()
    });
    let mut placed = Vec::new();
    let mut refused = 0;
    for response in join_all(placements).await {
        let response = response.expect("request");
        match response.status() {
            StatusCode::CREATED => {
                let ack: Value = response.json().await.expect("ack");
                placed.push(ack["order_id"].as_str().expect("id").to_owned());
            }
            StatusCode::CONFLICT => {
                let problem: Value = response.json().await.expect("problem");
                assert!(
                    problem["detail"]
                        .as_str()
                        .unwrap_or("")
                        .contains("个指定服务人员的待支付订单"),
                    "{problem}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((placed.len(), refused), (3, 7));
    // The worker's calendar holds exactly those three.
    let (worker_state, _) =
        application::commands::CommandBus::<domain::worker::Worker>::new(app.pool.clone())
            .load(worker.id)
            .await
            .expect("worker");
    assert_eq!(worker_state.bookings.len(), 3);
    // Cancelling one frees a place for another.
    let cancelled = app
        .post(
            &format!("/api/v1/orders/{}/cancel", placed[0]),
            Some(&customer.token),
            &json!({"reason": "改期 / rescheduling"}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    app.wait_for_projections().await;
    let mut body = tests::order_body();
    body["scheduled_start"] = tests::future_start(20).into();
    body["worker_id"] = worker.id.to_string().into();
    let again = app
        .post("/api/v1/orders", Some(&customer.token), &body)
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    other_process.terminate().await;
    app.stop().await;
}

#[tokio::test]
async fn a_withdrawal_is_paid_to_the_account_it_was_asked_for_to_the_verified_holder_and_within_the_days_limits(
) {
    let app = tests::spawn_app_with(tests::money_settles_at_once).await;
    let admin = app.create_admin().await;
    let worker = app.worker_with_income(&admin).await;
    let mine = || async {
        app.get("/api/v1/worker/withdrawals", Some(&worker.token))
            .await
            .json::<Value>()
            .await
            .expect("withdrawals")
    };
    let (app_ref, token) = (&app, worker.token.clone());
    let set_account = |holder: &'static str, number: &'static str| {
        let token = token.clone();
        async move {
            let response = app_ref
                .client
                .put(app_ref.url("/api/v1/worker/bank-account"))
                .bearer_auth(&token)
                .json(&json!({"holder_name": holder, "bank": "中国银行", "number": number}))
                .send()
                .await
                .expect("account");
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
    };
    let withdraw = |base: String, key: String, amount: i64| {
        app.client
            .post(format!("{base}/api/v1/worker/withdrawals"))
            .bearer_auth(&worker.token)
            .header("idempotency-key", key)
            .json(&json!({"amount": amount}))
            .send()
    };

    // Asked for with a checked card, then the card on file is swapped: the withdrawal is
    // called off and the money is back; approving it pays nothing anywhere.
    set_account("张阿姨", "6222021234567891111").await;
    let asked = withdraw(app.address.clone(), "first".into(), 5_000)
        .await
        .expect("request");
    assert_eq!(asked.status(), StatusCode::CREATED);
    let asked: Value = asked.json().await.expect("withdrawal");
    set_account("张阿姨", "6222029999999992222").await;
    let listed = mine().await;
    assert_eq!(listed["available"], 12_225, "{listed}");
    app.wait_for_projections().await;
    let approved = app
        .post(
            &format!(
                "/api/v1/admin/withdrawals/{}/approve",
                asked["withdrawal_id"].as_str().expect("id")
            ),
            Some(&admin.token),
            &json!({}),
        )
        .await;
    assert_eq!(approved.status(), StatusCode::CONFLICT);
    let payouts: i64 = sqlx::query_scalar("SELECT count(*) FROM sandbox_payouts")
        .fetch_one(&app.pool)
        .await
        .expect("payouts");
    assert_eq!(payouts, 0);

    // The holder is checked against the identity given at onboarding, not the profile's
    // name, which the worker edits.
    let renamed = app
        .client
        .put(app.url("/api/v1/worker/profile"))
        .bearer_auth(&worker.token)
        .json(
            &json!({"name": "王五", "phone": "13712345678", "years_of_experience": 8,
                      "languages": ["普通话"], "city": "上海市", "districts": ["浦东新区"]}),
        )
        .send()
        .await
        .expect("profile");
    assert_eq!(renamed.status(), StatusCode::OK);
    set_account("王五", "6222023333333333333").await;
    let stranger = withdraw(app.address.clone(), "stranger".into(), 5_000)
        .await
        .expect("request");
    let problem = assert_problem(stranger, StatusCode::CONFLICT, "/problems/illegal-state").await;
    assert!(problem["detail"]
        .as_str()
        .unwrap_or("")
        .contains("实名认证姓名不一致"));

    // Ten at once over two processes: the day allows three (the one called off does not count).
    set_account("张阿姨", "6222024444444444444").await;
    let other_process = ServerProcess::start(&app.database_url).await;
    let bases = [app.address.clone(), other_process.address.clone()];
    let outcomes = join_all(
        (0..10).map(|index| withdraw(bases[index % 2].clone(), format!("burst-{index}"), 1_000)),
    )
    .await;
    let accepted: Vec<Value> = {
        let mut accepted = Vec::new();
        for response in outcomes {
            let response = response.expect("request");
            match response.status() {
                StatusCode::CREATED => accepted.push(response.json().await.expect("withdrawal")),
                StatusCode::CONFLICT => {}
                other => panic!("unexpected {other}"),
            }
        }
        accepted
    };
    assert_eq!(accepted.len(), 3);
    assert_eq!(mine().await["available"], 12_225 - 3_000);
    // Approved, it is paid to the card it was asked for.
    app.wait_for_projections().await;
    let paid: Value = app
        .post(
            &format!(
                "/api/v1/admin/withdrawals/{}/approve",
                accepted[0]["withdrawal_id"].as_str().expect("id")
            ),
            Some(&admin.token),
            &json!({}),
        )
        .await
        .json()
        .await
        .expect("paid");
    assert_eq!(paid["status"], "paid", "{paid}");
    let masked: String = sqlx::query_scalar("SELECT account_masked FROM sandbox_payouts")
        .fetch_one(&app.pool)
        .await
        .expect("payout");
    assert_eq!(masked, "6222 **** **** 4444");
    other_process.terminate().await;
    app.stop().await;
}
