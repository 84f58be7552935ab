use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, run_anjia, spawn_app, spawn_app_with, valid_id_number, TestApp, User};

async fn admin_view(
    app: &TestApp,
    admin: &User,
    worker: &User,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = app
            .get(
                &format!("/api/v1/admin/workers/{}", worker.id),
                Some(&admin.token),
            )
            .await;
        if response.status() == StatusCode::OK {
            let view: Value = response.json().await.expect("json");
            if ready(&view) {
                return view;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the worker's admin view did not reach the expected state"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn notifications(app: &TestApp, user: &User) -> Vec<Value> {
    app.get("/api/v1/me/notifications", Some(&user.token))
        .await
        .json()
        .await
        .expect("json")
}

/// Waits (up to ten seconds) until `user` has a notification of `kind`.
async fn told(app: &TestApp, user: &User, kind: &str) {
    tests::wait_until(&format!("telling {} {kind}", user.id), async || {
        notifications(app, user)
            .await
            .iter()
            .any(|note| note["kind"] == kind)
    })
    .await;
}

#[tokio::test]
async fn a_worker_on_the_imported_list_is_found_by_the_offline_check_and_cannot_be_approved() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let worker = app.register_worker(&["nanny"]).await;
    let id_number = valid_id_number(321);
    let list = std::env::temp_dir().join(format!("blacklist-{}.csv", uuid::Uuid::new_v4()));
    std::fs::write(
        &list,
        format!(
            "name,id_number,case_number,court,published_on\n张阿姨,{id_number},(2024)京0105执12345号,北京市朝阳区人民法院,2024-03-01\n王某,123456789012345678,(2023)沪0115执1号,上海市浦东新区人民法院,2023-01-01\n"
        ),
    )
    .expect("write the list");
    let database_url = app.database_url.clone();
    let path = list.to_string_lossy().into_owned();
    let report =
        tokio::task::spawn_blocking(move || run_anjia(&database_url, &["import-blacklist", &path]))
            .await
            .expect("import");
    let report: Value = serde_json::from_str(&report).expect("report");
    assert_eq!(report["imported"], 1);
    assert_eq!(report["refused"].as_array().map(Vec::len), Some(1));
    std::fs::remove_file(&list).expect("remove the list");

    let checked = app
        .post(
            "/api/v1/worker/identity",
            Some(&worker.token),
            &json!({"id_number": id_number}),
        )
        .await;
    assert_eq!(checked.status(), StatusCode::OK);
    let checked: Value = checked.json().await.expect("json");
    assert_eq!(checked["status"], "hit");
    assert_eq!(checked["hits"], json!(["(2024)京0105执12345号"]));

    let approval = app
        .post(
            &format!("/api/v1/admin/workers/{}/review", worker.id),
            Some(&admin.token),
            &json!({"decision": "approve"}),
        )
        .await;
    let problem = assert_problem(approval, StatusCode::CONFLICT, "/problems/illegal-state").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("失信"),
        "{problem}"
    );
    let view = admin_view(&app, &admin, &worker, |view| {
        view["background_status"] == "hit"
    })
    .await;
    assert_eq!(view["review_status"], "pending");
    assert_eq!(
        view["id_number"],
        format!("{}********{}", &id_number[..6], &id_number[14..])
    );
    told(&app, &admin, "background_hit").await;
    // The identity number is sealed in the log.
    let leaks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE payload::text LIKE $1")
        .bind(format!("%{id_number}%"))
        .fetch_one(&app.pool)
        .await
        .expect("scan");
    assert_eq!(leaks, 0);
    app.stop().await;
}

#[tokio::test]
async fn only_an_approved_certified_worker_with_valid_certificates_can_be_assigned() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let unreviewed = app.register_worker(&["daily_cleaning"]).await;
    let qualified = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let order_id = app.dispatchable_order(&customer, &admin).await;
    let refused = app
        .post(
            &format!("/api/v1/orders/{order_id}/assignment"),
            Some(&admin.token),
            &json!({"worker_id": unreviewed.id}),
        )
        .await;
    let problem = assert_problem(refused, StatusCode::CONFLICT, "/problems/illegal-state").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("资质审核"),
        "{problem}"
    );
    let assigned = app
        .post(
            &format!("/api/v1/orders/{order_id}/assignment"),
            Some(&admin.token),
            &json!({"worker_id": qualified.id}),
        )
        .await;
    assert_eq!(assigned.status(), StatusCode::OK);

    let view = admin_view(&app, &admin, &qualified, |view| {
        view["review_status"] == "approved"
    })
    .await;
    assert_eq!(view["level"], "silver");
    assert_eq!(view["certified_skills"], json!(["daily_cleaning"]));
    assert_eq!(view["certificates"][0]["kind"], "health_certificate");
    let grouped = app
        .client
        .put(app.url(&format!("/api/v1/admin/workers/{}/groups", qualified.id)))
        .bearer_auth(&admin.token)
        .json(&json!({"groups": ["浦东组", " 金牌保洁 "]}))
        .send()
        .await
        .expect("request");
    assert_eq!(grouped.status(), StatusCode::OK);
    let levelled = app
        .client
        .put(app.url(&format!("/api/v1/admin/workers/{}/level", qualified.id)))
        .bearer_auth(&admin.token)
        .json(&json!({"level": "gold"}))
        .send()
        .await
        .expect("request");
    assert_eq!(levelled.status(), StatusCode::OK);
    let view = admin_view(&app, &admin, &qualified, |view| view["level"] == "gold").await;
    assert_eq!(view["groups"], json!(["浦东组", "金牌保洁"]));
    let gold: Vec<Value> = app
        .get("/api/v1/workers?level=gold", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(gold.len(), 1);
    assert_eq!(gold[0]["worker_id"], qualified.id.to_string());
    let bad_level = app.get("/api/v1/workers?level=platinum", None).await;
    assert_problem(
        bad_level,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    told(&app, &qualified, "review").await;
    app.stop().await;
}

#[tokio::test]
async fn an_expired_certificate_takes_the_worker_off_dispatch_on_time_and_tells_them_and_the_admins(
) {
    // The expiry job runs every second here instead of every minute.
    let app =
        spawn_app_with(|settings| settings.jobs.certificate_expiry_schedule = "* * * * * *".into())
            .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.register_worker(&["nanny"]).await;
    let identity = app
        .post(
            "/api/v1/worker/identity",
            Some(&worker.token),
            &json!({"id_number": valid_id_number(77)}),
        )
        .await;
    assert_eq!(identity.status(), StatusCode::OK);
    let yesterday = domain::values::business_day(chrono::Utc::now())
        .pred_opt()
        .expect("date");
    let certificate = app
        .post(
            "/api/v1/worker/certificates",
            Some(&worker.token),
            &json!({"kind": "health_certificate", "number": "JK-2020-001", "issued_on": "2020-01-01", "expires_on": yesterday.to_string()}),
        )
        .await;
    assert_eq!(certificate.status(), StatusCode::CREATED);
    for (path, body) in [
        ("review", json!({"decision": "approve"})),
        ("certified-skills", json!({"service": "nanny"})),
    ] {
        let response = app
            .post(
                &format!("/api/v1/admin/workers/{}/{path}", worker.id),
                Some(&admin.token),
                &body,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let view = admin_view(&app, &admin, &worker, |view| {
        view["certificates"][0]["expired"] == true
    })
    .await;
    assert_eq!(view["certificates"][0]["number"], "JK-2020-001");
    // The job tells them after it records the expiry, which the view may show first.
    told(&app, &worker, "certificate_expired").await;
    told(&app, &admin, "certificate_expired").await;

    // A nanny order cannot go to this worker any more.
    let mut body = tests::order_body();
    body["service"] = "nanny".into();
    body["unit_price"] = 5_000.into();
    body["quantity"] = 8.into();
    body["duration_minutes"] = 480.into();
    let placed: Value = app
        .post("/api/v1/orders", Some(&customer.token), &body)
        .await
        .json()
        .await
        .expect("json");
    let order_id = placed["order_id"].as_str().expect("id").to_owned();
    for (path, payload) in [
        ("payments", json!({"reference": "R-1", "amount": 40_000})),
        ("dispatch", json!({})),
    ] {
        let response = app
            .post(
                &format!("/api/v1/orders/{order_id}/{path}"),
                Some(&admin.token),
                &payload,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let refused = app
        .post(
            &format!("/api/v1/orders/{order_id}/assignment"),
            Some(&admin.token),
            &json!({"worker_id": worker.id}),
        )
        .await;
    let problem = assert_problem(refused, StatusCode::CONFLICT, "/problems/illegal-state").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("有效证书"),
        "{problem}"
    );
    // Exactly one expiry was recorded, however many ticks ran: wait for two more runs.
    let runs = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(MAX(runs), 0) FROM job_runs WHERE job = 'certificate-expiry'",
        )
        .fetch_one(&app.pool)
        .await
        .expect("job runs")
    };
    let seen = runs().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while runs().await < seen + 2 {
        assert!(Instant::now() < deadline, "the expiry job stopped running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expiries: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'CertificateExpired'")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(expiries, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_http_background_check_adapter_asks_the_provider_with_its_token() {
    let provider = axum::Router::new().route(
        "/check",
        axum::routing::post(
            |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                if headers
                    .get("authorization")
                    .and_then(|value| value.to_str().ok())
                    != Some("Bearer provider-key")
                {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
                }
                let hits = if body["id_number"] == valid_id_number(5) {
                    json!([{"case_number": "(2025)粤0304执99号"}])
                } else {
                    json!([])
                };
                (StatusCode::OK, axum::Json(json!({"hits": hits})))
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, provider).await });
    let app = spawn_app().await;
    let settings = adapters::background::BackgroundCheckSettings {
        url: Some(format!("http://{address}/check")),
        token: Some("provider-key".into()),
    };
    let check = settings.build(&app.pool).expect("adapter");
    let hit = check
        .check(
            "陈某",
            &domain::onboarding::IdCardNumber::parse(&valid_id_number(5)).expect("id"),
        )
        .await
        .expect("checked");
    assert_eq!(hit.hits, vec!["(2025)粤0304执99号".to_owned()]);
    assert_eq!(hit.source, "http:127.0.0.1");
    let clear = check
        .check(
            "李某",
            &domain::onboarding::IdCardNumber::parse(&valid_id_number(6)).expect("id"),
        )
        .await
        .expect("checked");
    assert!(clear.clear());
    app.stop().await;
}

#[tokio::test]
async fn bad_onboarding_input_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let worker = app.register_worker(&["nanny"]).await;
    let before = app.event_count().await;
    let mut wrong_check = valid_id_number(1);
    let last = wrong_check.pop().expect("a check character");
    wrong_check.push(if last == '0' { '1' } else { '0' });
    for id_number in [
        wrong_check.as_str(),
        "11010519850615001",
        "110105198506150011X",
        "1101051985131500",
        "<script>alert(1)</script>",
    ] {
        let response = app
            .post(
                "/api/v1/worker/identity",
                Some(&worker.token),
                &json!({"id_number": id_number}),
            )
            .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    for certificate in [
        json!({"kind": "health_certificate", "number": "A-1", "issued_on": "2026-01-02", "expires_on": "2026-01-01"}),
        json!({"kind": "pilot_licence", "number": "A-1", "issued_on": "2026-01-01", "expires_on": "2027-01-01"}),
        json!({"kind": "health_certificate", "number": "", "issued_on": "2026-01-01", "expires_on": "2027-01-01"}),
        json!({"kind": "health_certificate", "number": "A-1", "issued_on": "yesterday", "expires_on": "2027-01-01"}),
    ] {
        let response = app
            .post(
                "/api/v1/worker/certificates",
                Some(&worker.token),
                &certificate,
            )
            .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    let review = app
        .post(
            &format!("/api/v1/admin/workers/{}/review", worker.id),
            Some(&admin.token),
            &json!({"decision": "maybe"}),
        )
        .await;
    assert_problem(
        review,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let groups: Vec<String> = (0..11).map(|n| format!("组{n}")).collect();
    let too_many = app
        .client
        .put(app.url(&format!("/api/v1/admin/workers/{}/groups", worker.id)))
        .bearer_auth(&admin.token)
        .json(&json!({"groups": groups}))
        .send()
        .await
        .expect("request");
    assert_problem(
        too_many,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let unknown_skill = app
        .post(
            &format!("/api/v1/admin/workers/{}/certified-skills", worker.id),
            Some(&admin.token),
            &json!({"service": "maternity_nurse"}),
        )
        .await;
    assert_problem(
        unknown_skill,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    assert_eq!(app.event_count().await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_worker_updates_their_profile_and_skills_and_the_directory_shows_them() {
    let app = spawn_app().await;
    let worker = app.register_worker(&["nanny"]).await;
    let updated = app
        .client
        .put(app.url("/api/v1/worker/profile"))
        .bearer_auth(&worker.token)
        .json(&json!({"name": "张丽华", "phone": "13955556666", "years_of_experience": 12, "languages": ["普通话", "粤语"],
                      "city": "广州市", "districts": ["天河区"], "photo_ref": "photos/zhang.jpg"}))
        .send()
        .await
        .expect("request");
    assert_eq!(updated.status(), StatusCode::OK);
    let skills = app
        .client
        .put(app.url("/api/v1/worker/skills"))
        .bearer_auth(&worker.token)
        .json(&json!({"skills": ["nanny", "infant_carer"]}))
        .send()
        .await
        .expect("request");
    assert_eq!(skills.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let entry: Value = app
            .get(&format!("/api/v1/workers/{}", worker.id), None)
            .await
            .json()
            .await
            .expect("json");
        if entry["skills"].as_array().map(Vec::len) == Some(2) && entry["name"] == "张丽华" {
            break entry;
        }
        assert!(
            Instant::now() < deadline,
            "the directory did not catch up: {entry}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["phone"], "139****6666");
    assert_eq!(entry["city"], "广州市");
    assert_eq!(entry["photo_ref"], "photos/zhang.jpg");
    assert_eq!(entry["languages"], json!(["普通话", "粤语"]));
    let bad = app
        .client
        .put(app.url("/api/v1/worker/profile"))
        .bearer_auth(&worker.token)
        .json(&json!({"name": "张", "phone": "139", "years_of_experience": 12, "city": "广州市", "districts": []}))
        .send()
        .await
        .expect("request");
    assert_problem(
        bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    app.stop().await;
}
