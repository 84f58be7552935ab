//! Nothing a user sends can stop a read model or break the booking invariant.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{
    assert_problem, order_body, position_of, spawn_app, spawn_app_with, wait_until, ServerProcess,
    TestApp, User,
};
use uuid::Uuid;

/// Changes a customer's name, which must be accepted; answers the response (for its position).
async fn rename(app: &TestApp, customer: &User, name: &str) -> reqwest::Response {
    let renamed = app
        .client
        .put(app.url("/api/v1/me/profile"))
        .bearer_auth(&customer.token)
        .json(&json!({"name": name}))
        .send()
        .await
        .expect("request");
    assert_eq!(renamed.status(), StatusCode::OK, "renaming to {name}");
    renamed
}

async fn profile_of(app: &TestApp, customer: &User) -> Value {
    app.get("/api/v1/me/profile", Some(&customer.token))
        .await
        .json()
        .await
        .expect("profile")
}

#[tokio::test]
async fn a_nul_or_control_character_in_any_text_field_is_refused_naming_the_field_and_changes_nothing(
) {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let mut with_nul_contact = order_body();
    with_nul_contact["address"]["contact_name"] = json!("测\u{0}试");
    let mut with_nul_note = order_body();
    with_nul_note["note"] = json!("note\u{0}");
    let mut with_control = order_body();
    with_control["address"]["detail"] = json!("世纪大道\u{19}100 号");
    let mut with_line_break = order_body();
    with_line_break["address"]["contact_name"] = json!("王\n女士");
    let mut too_long = order_body();
    too_long["address"]["contact_name"] = json!("王".repeat(41));
    let address = order_body()["address"].clone();
    // Each row: method, path, who, body, the field the refusal names.
    let cases: Vec<(&str, String, Option<&User>, Value, &str)> = vec![
        (
            "PUT",
            "/api/v1/me/profile".into(),
            Some(&customer),
            json!({"name": "a\u{0}b"}),
            "name",
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            Some(&customer),
            with_nul_contact,
            "address.contact_name",
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            Some(&customer),
            with_nul_note,
            "note",
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            Some(&customer),
            with_control,
            "address.detail",
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            Some(&customer),
            with_line_break,
            "address.contact_name",
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            Some(&customer),
            too_long,
            "address.contact_name",
        ),
        (
            "POST",
            "/api/v1/sessions".into(),
            None,
            json!({"login": "x\u{0}@example.com", "password": "whatever-it-is"}),
            "login",
        ),
        (
            "POST",
            "/api/v1/verification-codes".into(),
            None,
            json!({"purpose": "register", "destination": "1380013\u{0}5678"}),
            "destination",
        ),
        (
            "POST",
            format!("/api/v1/admin/customers/{}/suspend", customer.id),
            Some(&admin),
            json!({"reason": "滥用\u{0}"}),
            "reason",
        ),
        (
            "POST",
            "/api/v1/me/addresses".into(),
            Some(&customer),
            json!({"label": "家\u{7}", "address": address}),
            "label",
        ),
    ];
    app.wait_for_projections().await;
    let before = app.event_count().await;
    for (method, path, user, body, field) in cases {
        let request = match method {
            "PUT" => app.client.put(app.url(&path)),
            _ => app.client.post(app.url(&path)),
        };
        let request = match user {
            Some(user) => request.bearer_auth(&user.token),
            None => request,
        };
        let response = request.json(&body).send().await.expect("request");
        let problem = assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
        assert_eq!(problem["field"], field, "{method} {path}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{problem}"
        );
    }
    // A query string is held to the same rule.
    let response = app
        .get("/api/v1/catalogue?q=%E4%BF%9D%00", Some(&customer.token))
        .await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    assert_eq!(problem["field"], "q");
    assert_eq!(app.event_count().await, before, "a refusal wrote an event");

    // Text that is only untidy is kept, trimmed; a note keeps its lines.
    let mut tidy = order_body();
    tidy["address"]["contact_name"] = json!("  王女士  ");
    tidy["note"] = json!("第一行\r\n第二行");
    let order_id = app.place_order_with(&customer, &tidy).await;
    let order = app
        .wait_for_order(&customer.token, order_id, |_| true)
        .await;
    assert_eq!(order["contact_name"], "王女士");
    assert_eq!(order["note"], "第一行\n第二行");
    let readiness: Value = app.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(readiness["status"], "ready", "{readiness}");
    app.stop().await;
}

/// The live generation's schema of a projection.
async fn live_schema(app: &TestApp, projection: &str) -> String {
    let generation: i32 =
        sqlx::query_scalar("SELECT active_generation FROM projections WHERE name = $1")
            .bind(projection)
            .fetch_one(&app.pool)
            .await
            .expect("generation");
    format!("rm_{projection}_g{generation}")
}

#[tokio::test]
async fn an_event_a_projection_cannot_apply_parks_its_stream_while_every_other_stream_flows_and_a_retry_applies_it_after_the_fix(
) {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let troubled = app.register_customer().await;
    let other = app.register_customer().await;
    app.wait_for_projections().await;
    // A defect in the read side, standing in for any event the projection cannot store: the
    // customers table refuses one name.
    let schema = live_schema(&app, "customers").await;
    sqlx::raw_sql(&format!(
        "ALTER TABLE {schema}.customers ADD CONSTRAINT test_defect CHECK (name <> '坏名字')"
    ))
    .execute(&app.pool)
    .await
    .expect("adding the defect");

    rename(&app, &troubled, "坏名字").await;
    // A later event of the same stream waits behind it, in order.
    rename(&app, &troubled, "好名字").await;
    // Everyone else's views keep moving.
    rename(&app, &other, "李先生").await;
    let order_id = app.place_order(&other).await;
    app.wait_for_projections().await;
    let profile = profile_of(&app, &other).await;
    assert_eq!(profile["name"], "李先生");
    app.wait_for_order(&other.token, order_id, |_| true).await;

    let readiness: Value = app.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(readiness["status"], "degraded", "{readiness}");
    let parked = readiness["parked"].as_array().expect("parked");
    assert_eq!(parked.len(), 1, "{readiness}");
    assert_eq!(parked[0]["projection"], "customers");
    assert_eq!(parked[0]["aggregate_id"], troubled.id.to_string());
    // The event that failed and every later one of the stream (a profile change writes more
    // than one event), counted on the log.
    let behind: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE aggregate_type = 'customer' AND aggregate_id = $1
            AND position >= $2",
    )
    .bind(troubled.id.to_string())
    .bind(parked[0]["first_position"].as_i64().expect("position"))
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert!(behind >= 2);
    assert_eq!(parked[0]["events"], behind);
    assert!(
        parked[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("test_defect"),
        "{readiness}"
    );
    let metrics = app.get("/metrics", None).await.text().await.expect("text");
    assert!(
        metrics.contains(&format!(
            "anjia_projection_parked_events{{projection=\"customers\"}} {behind}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("aggregate_id=\"{}\"", troubled.id)),
        "{metrics}"
    );
    let listed: Value = app
        .get("/api/v1/admin/projections/parked", Some(&admin.token))
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    // Before the fix a retry fails again and says so; nothing moves.
    let retried: Value = app
        .post(
            "/api/v1/admin/projections/customers/parked/retry",
            Some(&admin.token),
            &json!({}),
        )
        .await
        .json()
        .await
        .expect("retry");
    assert_eq!(retried["applied"], 0, "{retried}");
    assert_eq!(retried["still_parked"][0]["events"], behind, "{retried}");

    // After the fix the stream is applied in order and the platform is ready again.
    sqlx::raw_sql(&format!(
        "ALTER TABLE {schema}.customers DROP CONSTRAINT test_defect"
    ))
    .execute(&app.pool)
    .await
    .expect("fixing the defect");
    let retried: Value = app
        .post(
            "/api/v1/admin/projections/customers/parked/retry",
            Some(&admin.token),
            &json!({"aggregate_type": "customer", "aggregate_id": troubled.id.to_string()}),
        )
        .await
        .json()
        .await
        .expect("retry");
    assert_eq!(retried["applied"], behind, "{retried}");
    assert_eq!(retried["still_parked"], json!([]), "{retried}");
    let profile = profile_of(&app, &troubled).await;
    assert_eq!(profile["name"], "好名字");
    let readiness: Value = app.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(readiness["status"], "ready", "{readiness}");
    // A stream no longer parked flows live again.
    rename(&app, &troubled, "又一个名字").await;
    wait_until("the live update", async || {
        let profile = profile_of(&app, &troubled).await;
        profile["name"] == "又一个名字"
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_rebuild_meeting_an_event_it_cannot_apply_parks_it_and_answers() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    // An event with a payload no version of the code can read, as a faulty writer might leave.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('customer', $1, 1, 'CustomerRegistered', '1.0', '{\"CustomerRegistered\": {\"garbled\": true}}', '{}')",
    )
    .bind(Uuid::new_v4().to_string())
    .execute(&app.pool)
    .await
    .expect("a bad event");
    app.wait_for_projections().await;
    let rebuilt = app
        .post(
            "/api/v1/admin/projections/customers/rebuild",
            Some(&admin.token),
            &json!({}),
        )
        .await;
    assert_eq!(rebuilt.status(), StatusCode::OK);
    let profile = app.get("/api/v1/me/profile", Some(&customer.token)).await;
    assert_eq!(profile.status(), StatusCode::OK);
    let readiness: Value = app.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(readiness["status"], "degraded", "{readiness}");
    assert_eq!(
        readiness["parked"][0]["first_event_type"],
        "CustomerRegistered"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_double_tap_on_grab_keeps_the_winners_booking_so_the_worker_cannot_be_double_booked() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let other_customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let order_id = app.dispatchable_order(&customer, &admin).await;
    app.wait_for_projections().await;
    let first = ServerProcess::start(&app.database_url).await;
    let second = ServerProcess::start(&app.database_url).await;
    let taps = [
        &first.address,
        &second.address,
        &app.address,
        &first.address,
    ]
    .map(|base| {
        app.client
            .post(format!("{base}/api/v1/orders/{order_id}/grab"))
            .bearer_auth(&worker.token)
            .json(&json!({}))
            .send()
    });
    let statuses: Vec<StatusCode> = join_all(taps)
        .await
        .into_iter()
        .map(|response| response.expect("grab").status())
        .collect();
    // Every tap of the one worker who won answers as the win did.
    assert!(
        statuses.iter().all(|status| *status == StatusCode::OK),
        "{statuses:?}"
    );
    let calendar = live_bookings(&app, worker.id).await;
    assert_eq!(
        calendar
            .iter()
            .filter(|(order, _, _)| *order == order_id)
            .count(),
        1,
        "{calendar:?}"
    );
    // The same hours, named by another customer, are refused: the worker is busy, and the
    // refusal says when, not whose order.
    let mut named = order_body();
    named["scheduled_start"] = calendar[0].1.to_rfc3339().into();
    named["worker_id"] = json!(worker.id);
    let refused = app
        .post("/api/v1/orders", Some(&other_customer.token), &named)
        .await;
    let problem = assert_problem(refused, StatusCode::CONFLICT, "/problems/conflict").await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("已有预约"), "{problem}");
    assert!(!detail.contains(&order_id.to_string()), "{problem}");
    app.stop().await;
}

/// A worker's live bookings, folded from their own stream by the domain's own code.
async fn live_bookings(
    app: &TestApp,
    worker_id: Uuid,
) -> Vec<(
    Uuid,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
)> {
    let worker: domain::worker::Worker = fold(app, worker_id).await;
    worker
        .bookings
        .iter()
        .map(|booked| (booked.order_id, booked.start, booked.end))
        .collect()
}

/// One stream's state, folded from the log by the same event store and domain code the
/// server uses.
async fn fold<A>(app: &TestApp, id: Uuid) -> A
where
    A: cqrs_es::Aggregate<Services = ()> + Clone,
{
    let (state, _) = application::commands::CommandBus::<A>::new(app.pool.clone())
        .load(id)
        .await
        .unwrap_or_else(|error| panic!("loading {} {id}: {error}", A::TYPE));
    state
}

#[tokio::test]
async fn under_concurrent_grabs_named_bookings_rounds_reassignments_declines_and_cancellations_on_two_processes_every_held_order_has_one_booking_and_no_worker_overlaps(
) {
    // Each process runs two write transactions at once, far fewer than the requests it is
    // sent at once: the others wait their turn. A request that, holding one, waited for
    // another would wait for good, and answer 503 when the wait timed out.
    let app = spawn_app_with(|settings| settings.writers = Some(2)).await;
    let admin = app.create_admin().await;
    let mut customers = Vec::new();
    for _ in 0..3 {
        customers.push(app.register_customer().await);
    }
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(app.qualified_worker(&["daily_cleaning"], &admin).await);
    }
    let first = ServerProcess::start_with(&app.database_url, &[("ANJIA_DB_WRITERS", "2")]).await;
    let second = ServerProcess::start_with(&app.database_url, &[("ANJIA_DB_WRITERS", "2")]).await;
    let bases = [
        app.address.clone(),
        first.address.clone(),
        second.address.clone(),
    ];
    let mut orders = Vec::new();
    for seed in [7_u64, 1_234, 99_991] {
        let mut random = application::random::Random(seed);
        // Three start times two hours apart, so many orders overlap and some do not.
        let starts: Vec<String> = (0..3)
            .map(|slot| {
                (chrono::Utc::now()
                    + chrono::Duration::days(2 + seed as i64 % 3)
                    + chrono::Duration::hours(2 * slot))
                .to_rfc3339()
            })
            .collect();
        let mut round_orders = Vec::new();
        for index in 0..6 {
            let customer = &customers[index % customers.len()];
            let mut body = order_body();
            body["scheduled_start"] = random.pick(&starts).clone().into();
            body["duration_minutes"] = json!(120);
            body["quantity"] = json!(2);
            let order_id = app.place_order_with(customer, &body).await;
            let paid = app
                .post(
                    &format!("/api/v1/orders/{order_id}/payments"),
                    Some(&admin.token),
                    &json!({"reference": format!("BANK-{}", order_id.simple()), "amount": 10_000}),
                )
                .await;
            assert_eq!(paid.status(), StatusCode::OK, "paying");
            app.open_dispatch(order_id, &admin).await;
            round_orders.push((order_id, customer.clone()));
        }
        app.wait_for_projections().await;
        // Every kind of request at once, spread over three processes.
        let mut requests = Vec::new();
        for step in 0..40 {
            let base = random.pick(&bases);
            let (order_id, customer) = random.pick(&round_orders);
            let worker = random.pick(&workers);
            let other = random.pick(&workers);
            let request = match random.below(8) {
                0..=2 => app
                    .client
                    .post(format!("{base}/api/v1/orders/{order_id}/grab"))
                    .bearer_auth(&worker.token)
                    .json(&json!({})),
                3 => app
                    .client
                    .post(format!("{base}/api/v1/orders/{order_id}/assignment"))
                    .bearer_auth(&admin.token)
                    .json(&json!({"worker_id": worker.id})),
                4 => app
                    .client
                    .post(format!("{base}/api/v1/orders/{order_id}/reassign"))
                    .bearer_auth(&admin.token)
                    .json(&json!({"worker_id": other.id, "reason": "测试改派 / test"})),
                5 => app
                    .client
                    .post(format!("{base}/api/v1/orders/{order_id}/decline"))
                    .bearer_auth(&worker.token)
                    .json(&json!({"reason": "临时有事 / busy"})),
                6 if step % 5 == 0 => app
                    .client
                    .post(format!("{base}/api/v1/orders/{order_id}/cancel"))
                    .bearer_auth(&customer.token)
                    .json(&json!({"reason": "计划有变 / plans changed"})),
                6 => app
                    .client
                    .post(format!("{base}/api/v1/admin/dispatch/run"))
                    .bearer_auth(&admin.token)
                    .json(&json!({})),
                _ => {
                    // A named booking of a worker at one of the same times.
                    let mut body = order_body();
                    body["scheduled_start"] = random.pick(&starts).clone().into();
                    body["duration_minutes"] = json!(120);
                    body["quantity"] = json!(2);
                    body["worker_id"] = json!(worker.id);
                    app.client
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(&customer.token)
                        .json(&body)
                }
            };
            requests.push(request.send());
        }
        for response in join_all(requests).await {
            let response = response.expect("request");
            assert!(
                !response.status().is_server_error(),
                "seed {seed}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        orders.extend(round_orders.into_iter().map(|(order_id, _)| order_id));
    }
    // Named orders placed during the storm are orders too.
    let all_orders: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'order'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("orders");
    assert!(all_orders.len() >= orders.len());
    // The check over the log: each order that holds a worker has exactly one booking in that
    // worker's calendar, and no worker has two live bookings that overlap.
    let mut calendars = std::collections::HashMap::new();
    for worker in &workers {
        calendars.insert(
            worker.id,
            fold::<domain::worker::Worker>(&app, worker.id).await,
        );
    }
    let mut held = 0;
    for order_id in &all_orders {
        let order_id: Uuid = order_id.parse().expect("uuid");
        let order: domain::order::Order = fold(&app, order_id).await;
        for worker in &workers {
            let bookings = calendars[&worker.id]
                .bookings
                .iter()
                .filter(|booked| booked.order_id == order_id)
                .count();
            if order.holds(worker.id) {
                held += 1;
                assert_eq!(
                    bookings, 1,
                    "order {order_id} ({:?}) holds worker {} with {bookings} bookings",
                    order.status, worker.id
                );
            }
        }
    }
    assert!(held > 0, "the storm left no order held by a worker");
    for (worker_id, worker) in &calendars {
        for (index, booked) in worker.bookings.iter().enumerate() {
            for later in &worker.bookings[index + 1..] {
                assert!(
                    booked.end <= later.start || later.end <= booked.start,
                    "worker {worker_id} is booked twice at once: {booked:?} and {later:?}"
                );
            }
        }
    }
    app.stop().await;
}

/// The race the storm can hit, step by step. Request R books a worker for an order and loses;
/// request X finds R's booking and gives the order to the worker on it; R, having read the
/// order before X wrote, gives the time back. X looks at the calendar after its own write and
/// books the time again. And a request that found the booking made leaves it alone when the
/// order refuses it.
#[tokio::test]
async fn a_booking_given_back_while_another_request_gave_the_order_to_its_worker_is_booked_again() {
    use application::dispatch::{hold, Held};
    use domain::order::{Order, OrderCommand};
    use domain::worker::{Worker, WorkerCommand};

    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let order_id = app.dispatchable_order(&customer, &admin).await;
    let services = app.services();
    let context = application::commands::CommandContext::system();
    let order: Order = fold(&app, order_id).await;
    // The order's bookings in the worker's calendar.
    let booked = || async {
        live_bookings(&app, worker.id)
            .await
            .iter()
            .filter(|(booked, _, _)| *booked == order_id)
            .count()
    };

    // R books; X finds R's booking.
    let r = hold(services, worker.id, &order, order_id, &context)
        .await
        .expect("R books");
    assert_eq!(r, Held::Booked);
    let x = hold(services, worker.id, &order, order_id, &context)
        .await
        .expect("X holds");
    assert_eq!(x, Held::Borrowed);
    // A borrowed booking is not X's to give back.
    assert!(
        !x.give_back(services, worker.id, order_id, "test", &context)
            .await
    );
    assert_eq!(booked().await, 1, "X gave back R's booking");

    // R gives the time back on what it read before X wrote; X gives the order to the worker.
    services
        .workers
        .execute(
            worker.id,
            WorkerCommand::Release {
                order_id,
                reason: "R lost / R 未成功".into(),
                now: chrono::Utc::now(),
            },
            &context,
        )
        .await
        .expect("R releases");
    let standing: Worker = fold(&app, worker.id).await;
    let now = chrono::Utc::now();
    services
        .orders
        .execute(
            order_id,
            OrderCommand::AssignWorker {
                worker: standing.facts(worker.id, domain::values::business_day(now)),
                by: domain::Actor::system(),
                respond_by: Some(now + chrono::Duration::minutes(10)),
                score: None,
                now,
            },
            &context,
        )
        .await
        .expect("X assigns");
    assert_eq!(booked().await, 0, "the race as it happens");
    x.confirm(services, worker.id, order_id, &context).await;
    assert!(fold::<Order>(&app, order_id).await.holds(worker.id));
    assert_eq!(booked().await, 1, "X booked the time again");
    app.stop().await;
}

#[tokio::test]
async fn a_query_sent_with_the_commands_position_reads_its_own_write() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    for round in 0..6 {
        let name = format!("客户{round}");
        let written = rename(&app, &customer, &name).await;
        let position = position_of(&written);
        // By header, and by query parameter.
        let by_header: Value = app
            .client
            .get(app.url("/api/v1/me/profile"))
            .bearer_auth(&customer.token)
            .header("Anjia-Min-Position", &position)
            .send()
            .await
            .expect("read")
            .json()
            .await
            .expect("json");
        assert_eq!(by_header["name"], name.as_str(), "round {round}");
        let by_parameter = app
            .get(
                &format!("/api/v1/me/profile?min_position={position}"),
                Some(&customer.token),
            )
            .await;
        assert_eq!(by_parameter.status(), StatusCode::OK);
        let by_parameter: Value = by_parameter.json().await.expect("json");
        assert_eq!(by_parameter["name"], name.as_str());
    }
    // A retried command answers the first answer's position.
    let first = app
        .client
        .put(app.url("/api/v1/me/profile"))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", "rename-once")
        .json(&json!({"name": "重试者"}))
        .send()
        .await
        .expect("first");
    let again = app
        .client
        .put(app.url("/api/v1/me/profile"))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", "rename-once")
        .json(&json!({"name": "重试者"}))
        .send()
        .await
        .expect("again");
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(position_of(&again), position_of(&first));
    // A position that is not one is refused, naming where it came from.
    let refused = app
        .get(
            "/api/v1/me/profile?min_position=soon",
            Some(&customer.token),
        )
        .await;
    let problem = assert_problem(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    assert_eq!(problem["field"], "min_position");

    // While the views cannot move, the wait ends in a clear "still catching up".
    let mut stalled = app.pool.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(projections::advisory_key("projector", "customers") ^ 0x5eed)
        .execute(&mut *stalled)
        .await
        .expect("holding the projector");
    let written = rename(&app, &customer, "等待者").await;
    let position = position_of(&written);
    let waiting = app
        .client
        .get(app.url("/api/v1/me/profile"))
        .bearer_auth(&customer.token)
        .header("Anjia-Min-Position", &position)
        .send()
        .await
        .expect("read");
    assert!(waiting.headers().contains_key("retry-after"));
    assert_problem(
        waiting,
        StatusCode::SERVICE_UNAVAILABLE,
        "/problems/catching-up",
    )
    .await;
    stalled.rollback().await.expect("releasing the projector");
    let caught_up: Value = app
        .client
        .get(app.url("/api/v1/me/profile"))
        .bearer_auth(&customer.token)
        .header("Anjia-Min-Position", &position)
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(caught_up["name"], "等待者");
    app.stop().await;
}

#[tokio::test]
async fn an_order_may_name_a_saved_address_instead_of_sending_it_again() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let stranger = app.register_customer().await;
    let saved = app
        .post(
            "/api/v1/me/addresses",
            Some(&customer.token),
            &json!({"label": "父母家", "address": {
                "city": "上海市", "district": "徐汇区", "detail": "漕溪北路 88 号 5 楼",
                "contact_name": "陈先生", "contact_phone": "13900001111",
                "location": {"latitude": 31.19, "longitude": 121.43, "system": "gcj02"}}}),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::CREATED);
    let address_id = saved.json::<Value>().await.expect("ack")["address_id"].clone();
    let mut body = order_body();
    body.as_object_mut().expect("object").remove("address");
    body["address_id"] = address_id.clone();
    let order_id = app.place_order_with(&customer, &body).await;
    let order = app
        .wait_for_order(&customer.token, order_id, |_| true)
        .await;
    assert_eq!(order["district"], "徐汇区");
    assert_eq!(order["address_detail"], "漕溪北路 88 号 5 楼");
    assert_eq!(order["contact_name"], "陈先生");
    // Someone else's address, both, or neither: refused, naming the field.
    let refused = app
        .post("/api/v1/orders", Some(&stranger.token), &body)
        .await;
    let problem = assert_problem(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    assert_eq!(problem["field"], "address_id");
    let mut both = order_body();
    both["address_id"] = address_id;
    let mut neither = order_body();
    neither.as_object_mut().expect("object").remove("address");
    for refused_body in [both, neither] {
        let refused = app
            .post("/api/v1/orders", Some(&customer.token), &refused_body)
            .await;
        let problem = assert_problem(
            refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
        assert_eq!(problem["field"], "address");
    }
    app.stop().await;
}

/// The pools hand a connection in steady use out unchecked, and check one that sat idle for a
/// second first (`application::services::pool_options`): after the database dropped it (a
/// restart, a proxy's timeout), the next request gets a live connection, not an error.
/// Long enough idle for a pool to check a connection before handing it out again: the wait
/// is the condition under test, not a guess at how long something takes.
const IDLE_LONG_ENOUGH: Duration =
    application::services::CHECK_AFTER_IDLE.saturating_add(Duration::from_millis(100));

#[tokio::test]
async fn a_pooled_connection_the_database_dropped_while_idle_is_replaced_before_use() {
    let app = spawn_app().await;
    let pool = application::services::pool_options(1, Duration::from_secs(10))
        .connect(&app.database_url)
        .await
        .expect("pool");
    let first: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .expect("first use");
    let dropped: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&app.pool)
        .await
        .expect("dropping the connection");
    assert!(dropped);
    tokio::time::sleep(IDLE_LONG_ENOUGH).await;
    let second: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .expect("the pool handed out the dropped connection");
    assert_ne!(second, first);
    // And the server's own pools, which use the same options, serve on once the database has
    // dropped every connection they held.
    let customer = app.register_customer().await;
    let dropped: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
          WHERE datname = current_database() AND backend_type = 'client backend'
            AND pid <> pg_backend_pid()",
    )
    .fetch_one(&app.pool)
    .await
    .expect("dropping the server's connections");
    assert!(dropped > 0);
    tokio::time::sleep(IDLE_LONG_ENOUGH).await;
    let placed = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", "after-the-drop")
        .json(&tests::order_body())
        .send()
        .await
        .expect("placing");
    assert_eq!(placed.status(), StatusCode::CREATED);
    app.stop().await;
}
