//! Attacks a hostile user would try, performed over real HTTP against real servers (parallel
//! requests where the attack is a race, across two server processes where it matters): each
//! now fails and changes nothing.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app, ServerProcess, TestApp};
use uuid::Uuid;

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

async fn failures_of(app: &TestApp, scope: &str, subject: &str) -> i32 {
    sqlx::query_scalar("SELECT failures FROM sign_in_failures WHERE scope = $1 AND subject = $2")
        .bind(scope)
        .bind(subject)
        .fetch_optional(&app.pool)
        .await
        .expect("failures")
        .unwrap_or(0)
}

#[tokio::test]
async fn forty_parallel_password_guesses_across_two_processes_get_at_most_five_checked() {
    let app = spawn_app().await;
    let login = customer_with_login(&app).await;
    let first = ServerProcess::start(&app.database_url).await;
    let second = ServerProcess::start(&app.database_url).await;

    let guesses = (0..40).map(|index| {
        let base = if index % 2 == 0 {
            &first.address
        } else {
            &second.address
        };
        app.client
            .post(format!("{base}/api/v1/sessions"))
            .json(&json!({"login": login, "password": format!("guess-number-{index}")}))
            .send()
    });
    let mut checked = 0;
    let mut refused = 0;
    for response in join_all(guesses).await {
        let response = response.expect("request");
        match response.status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                refused += 1;
            }
            other => panic!(
                "unexpected {other}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
    assert!(
        (1..=5).contains(&checked),
        "{checked} guesses were checked, {refused} refused"
    );
    assert_eq!(checked + refused, 40);
    // Every guess that was checked counted, and the account is locked, even for the right
    // password.
    assert_eq!(failures_of(&app, "login", &login).await, checked);
    let right = app
        .post(
            "/api/v1/sessions",
            None,
            &json!({"login": login, "password": "the-right-password"}),
        )
        .await;
    if checked == 5 {
        assert_problem(right, StatusCode::TOO_MANY_REQUESTS, "/problems/locked-out").await;
    }
    first.terminate().await;
    second.terminate().await;
    app.stop().await;
}

#[tokio::test]
async fn a_stolen_access_token_cannot_guess_the_password_through_a_password_change() {
    let app = spawn_app().await;
    let login = customer_with_login(&app).await;
    let holder = app.sign_in(&login, "the-right-password").await;
    let change = |current: &'static str| {
        app.client
            .post(app.url("/api/v1/me/password"))
            .bearer_auth(&holder.token)
            .json(&json!({"current_password": current, "new_password": "a-brand-new-password"}))
            .send()
    };
    // Parallel guesses at the current password: at most five are checked.
    let outcomes = join_all((0..12).map(|_| change("not-the-password"))).await;
    let statuses: Vec<StatusCode> = outcomes
        .into_iter()
        .map(|response| response.expect("request").status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    assert!((1..=5).contains(&checked), "{statuses:?}");
    assert!(statuses.iter().all(|status| matches!(
        *status,
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
    )));
    // Once locked, not even the right current password changes it, and signing in is locked
    // too: the guesses counted against the account.
    while failures_of(&app, "login", &login).await < 5 {
        let wrong = change("not-the-password").await.expect("request");
        assert!(matches!(
            wrong.status(),
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
        ));
    }
    let right = change("the-right-password").await.expect("request");
    assert_problem(right, StatusCode::TOO_MANY_REQUESTS, "/problems/locked-out").await;
    let hash_unchanged = app
        .post(
            "/api/v1/sessions",
            None,
            &json!({"login": login, "password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(hash_unchanged.status(), StatusCode::TOO_MANY_REQUESTS);
    sqlx::query("UPDATE sign_in_failures SET locked_until = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .expect("expire the lock");
    app.sign_in(&login, "the-right-password").await;
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_sign_ins_beyond_the_hashing_pool_is_answered_busy_and_not_counted() {
    let app = tests::spawn_app_with(|settings| {
        settings.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
        settings.passwords = command_api::auth::PasswordLimits {
            workers: 1,
            queue: 1,
        };
    })
    .await;
    // Thirty clients at once, each at an unknown login (checked against the dummy hash).
    let attempts = (0..30).map(|index| {
        app.client
            .post(app.url("/api/v1/sessions"))
            .header("x-forwarded-for", format!("198.51.100.{}", index + 1))
            .json(&json!({"login": format!("nobody-{index}@example.com"), "password": "some-password"}))
            .send()
    });
    let mut busy = 0;
    let mut checked = 0;
    for response in join_all(attempts).await {
        let response = response.expect("request");
        match response.status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                let problem: Value = response.json().await.expect("problem");
                assert_eq!(problem["type"], "/problems/busy", "{problem}");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0 && checked > 0, "{busy} busy, {checked} checked");
    // A busy answer judged nothing, so it counted as no failure.
    let counted: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(failures), 0)::bigint FROM sign_in_failures WHERE scope = 'login'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("failures");
    assert_eq!(counted, checked);
    let in_flight: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(in_flight), 0)::bigint FROM sign_in_failures")
            .fetch_one(&app.pool)
            .await
            .expect("in flight");
    assert_eq!(in_flight, 0, "every reservation was settled");
    app.stop().await;
}

#[tokio::test]
async fn parallel_code_requests_across_two_processes_send_one_code() {
    let app = spawn_app().await;
    let first = ServerProcess::start(&app.database_url).await;
    let second = ServerProcess::start(&app.database_url).await;
    let destination = "13500001111";
    let requests = (0..12).map(|index| {
        let base = if index % 2 == 0 {
            &first.address
        } else {
            &second.address
        };
        app.client
            .post(format!("{base}/api/v1/verification-codes"))
            .json(&json!({"purpose": "register", "destination": destination}))
            .send()
    });
    let statuses: Vec<StatusCode> = join_all(requests)
        .await
        .into_iter()
        .map(|response| response.expect("request").status())
        .collect();
    let sent = statuses
        .iter()
        .filter(|status| **status == StatusCode::ACCEPTED)
        .count();
    assert_eq!(sent, 1, "{statuses:?}");
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        11
    );
    let codes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM verification_codes WHERE destination = $1")
            .bind(destination)
            .fetch_one(&app.pool)
            .await
            .expect("codes");
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_messages WHERE destination = $1")
            .bind(destination)
            .fetch_one(&app.pool)
            .await
            .expect("messages");
    assert_eq!((codes, messages), (1, 1));
    first.terminate().await;
    second.terminate().await;
    app.stop().await;
}

#[tokio::test]
async fn staff_cannot_sign_in_by_code_until_they_turn_it_on() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let me: Value = app
        .get("/api/v1/me/security", Some(&admin.token))
        .await
        .json()
        .await
        .expect("security");
    assert_eq!(me["settings"]["sign_in_by_code"], false, "{me}");
    let login: String = sqlx::query_scalar("SELECT login FROM credentials WHERE user_id = $1")
        .bind(admin.id)
        .fetch_one(&app.pool)
        .await
        .expect("login");
    let before = app.mail.count_to(&login);
    let asked = app
        .post(
            "/api/v1/verification-codes",
            None,
            &json!({"purpose": "sign_in", "destination": login}),
        )
        .await;
    assert_eq!(
        asked.status(),
        StatusCode::ACCEPTED,
        "the answer tells nothing"
    );
    assert_eq!(app.mail.count_to(&login), before, "no code went out");
    // Turned on by the admin themself, a code signs them in.
    let turned_on = app
        .client
        .put(app.url("/api/v1/me/security"))
        .bearer_auth(&admin.token)
        .json(&json!({"sign_in_by_code": true, "new_sign_in_alert": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(turned_on.status(), StatusCode::OK);
    sqlx::query("UPDATE verification_codes SET created_at = created_at - interval '2 minutes'")
        .execute(&app.pool)
        .await
        .expect("age codes");
    let code = app.code_for("sign_in", &login).await;
    let signed_in = app
        .post(
            "/api/v1/sessions/code",
            None,
            &json!({"login": login, "code": code}),
        )
        .await;
    assert_eq!(signed_in.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn an_anonymous_registration_id_cannot_be_derived_from_the_clients_key() {
    let app = spawn_app().await;
    let login = format!("keyed-{}@example.com", Uuid::new_v4().simple());
    let code = app.code_for("register", &login).await;
    let key = "the-key-everybody-uses";
    let body = json!({"kind": "customer", "login": login, "password": "a-good-password",
                      "name": "周先生", "verification_code": code});
    let register = || {
        app.client
            .post(app.url("/api/v1/accounts"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let created = register().await.expect("request");
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.expect("account");
    let user_id: Uuid = created["user_id"]
        .as_str()
        .expect("user id")
        .parse()
        .expect("uuid");
    let from_key_alone = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("anjia:account::{key}").as_bytes(),
    );
    assert_ne!(user_id, from_key_alone);
    // A retry after a lost answer is still the same registration.
    let again: Value = register()
        .await
        .expect("request")
        .json()
        .await
        .expect("account");
    assert_eq!(again["user_id"], created["user_id"]);
    app.stop().await;
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
    let refreshed = app
        .post(
            "/api/v1/admin/analytics/refresh",
            Some(&admin.token),
            &json!({}),
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
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
    let slow = |settings: &mut command_api::server::Settings| {
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
                        .contains("unpaid orders naming a worker"),
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
        command_api::commands::CommandBus::<domain::worker::Worker>::new(app.pool.clone())
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
