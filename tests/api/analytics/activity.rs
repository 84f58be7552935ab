//! The activity report, and every report against the read models on a generated history.

use super::*;

#[tokio::test]
async fn the_activity_report_counts_sign_ins_app_opens_and_work_and_utilisation_agrees_with_the_orders_read_model(
) {
    let app = tests::spawn_app().await;
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
    let app = tests::spawn_app().await;
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
