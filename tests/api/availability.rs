use chrono::{Duration, NaiveTime, Timelike};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, order_body, spawn_app, TestApp, User};

fn shanghai_hour(instant: &Value) -> u32 {
    let parsed: chrono::DateTime<chrono::Utc> =
        instant.as_str().expect("time").parse().expect("rfc3339");
    parsed
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
        .hour()
}

async fn slot_hours(
    app: &TestApp,
    worker: &User,
    date: chrono::NaiveDate,
    extra: &str,
) -> Vec<u32> {
    let view: Value = app
        .get(
            &format!(
                "/api/v1/workers/{}/slots?date={date}&duration_minutes=180&step_minutes=60{extra}",
                worker.id
            ),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    view["starts"]
        .as_array()
        .expect("starts")
        .iter()
        .map(shanghai_hour)
        .collect()
}

/// Places, pays and opens an order at a local date and hour; returns its id.
async fn order_at(
    app: &TestApp,
    customer: &User,
    admin: &User,
    date: chrono::NaiveDate,
    hour: u32,
) -> String {
    let start = domain::availability::local_instant(
        date,
        NaiveTime::from_hms_opt(hour, 0, 0).expect("time"),
    );
    let mut body = order_body();
    body["scheduled_start"] = start.to_rfc3339().into();
    let placed = app
        .post("/api/v1/orders", Some(&customer.token), &body)
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order_id = placed.json::<Value>().await.expect("json")["order_id"]
        .as_str()
        .expect("id")
        .to_owned();
    for (path, payload) in [
        ("payments", json!({"reference": "R", "amount": 15_000})),
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
    order_id
}

#[tokio::test]
async fn slots_follow_the_weekly_plan_leave_and_bookings_with_travel_time() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let day = domain::values::business_day(chrono::Utc::now()) + Duration::days(3);
    let next_day = day + Duration::days(1);

    let every_day = json!([{"start": "08:00", "end": "20:00"}]);
    let plan = app
        .client
        .put(app.url("/api/v1/worker/availability"))
        .bearer_auth(&worker.token)
        .json(&json!({"days": [every_day, every_day, every_day, every_day, every_day, every_day, every_day]}))
        .send()
        .await
        .expect("request");
    assert_eq!(plan.status(), StatusCode::OK);
    let leave = app
        .post(
            "/api/v1/worker/leave",
            Some(&worker.token),
            &json!({"from": next_day, "to": next_day, "reason": "探亲 / family visit"}),
        )
        .await;
    assert_eq!(leave.status(), StatusCode::CREATED);
    assert_eq!(
        slot_hours(&app, &worker, day, "").await,
        (8..=17).collect::<Vec<_>>()
    );
    assert!(slot_hours(&app, &worker, next_day, "").await.is_empty());

    // A booking at 09:00–12:00 takes those hours and the travel time after them.
    let morning = order_at(&app, &customer, &admin, day, 9).await;
    let assigned = app
        .post(
            &format!("/api/v1/orders/{morning}/assignment"),
            Some(&admin.token),
            &json!({"worker_id": worker.id}),
        )
        .await;
    assert_eq!(assigned.status(), StatusCode::OK);
    let here = "&latitude=31.2304&longitude=121.4737&system=gcj02";
    assert_eq!(
        slot_hours(&app, &worker, day, here).await,
        vec![13, 14, 15, 16, 17]
    );

    // Outside working hours, or on leave, the worker cannot be assigned.
    for (date, hour) in [(day, 18), (next_day, 10)] {
        let order = order_at(&app, &customer, &admin, date, hour).await;
        let refused = app
            .post(
                &format!("/api/v1/orders/{order}/assignment"),
                Some(&admin.token),
                &json!({"worker_id": worker.id}),
            )
            .await;
        let problem =
            assert_problem(refused, StatusCode::CONFLICT, "/problems/illegal-state").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("休假"),
            "{problem}"
        );
    }
    // Bad plans and queries are refused.
    let six_days = app
        .client
        .put(app.url("/api/v1/worker/availability"))
        .bearer_auth(&worker.token)
        .json(&json!({"days": [every_day, every_day, every_day, every_day, every_day, every_day]}))
        .send()
        .await
        .expect("request");
    assert_problem(
        six_days,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let backwards = app
        .client
        .put(app.url(&format!("/api/v1/worker/availability/dates/{day}")))
        .bearer_auth(&worker.token)
        .json(&json!({"ranges": [{"start": "18:00", "end": "09:00"}]}))
        .send()
        .await
        .expect("request");
    assert_problem(
        backwards,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let bad_query = app
        .get(
            &format!(
                "/api/v1/workers/{}/slots?date={day}&duration_minutes=5",
                worker.id
            ),
            None,
        )
        .await;
    assert_problem(
        bad_query,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    app.stop().await;
}
