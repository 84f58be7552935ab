//! Dispatch end to end: holds while paying, the named → grab → automatic → admin escalation,
//! the optimal automatic round, grabbing under load from two server processes, tracking,
//! check-in, navigation and reminders.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::order::{Order, OrderStatus};
use domain::worker::Worker;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{
    assert_problem, order_body, order_body_starting_in, spawn_app, spawn_app_with, ServerProcess,
    TestApp, User, ORDER_LATITUDE, ORDER_LONGITUDE,
};
use uuid::Uuid;

mod directory;
mod tracking;

/// Settings with windows of a second or two, and no scheduled ticks: the test drives them.
fn quick_windows(settings: &mut anjia::config::Settings) {
    let dispatch = &mut settings.dispatch;
    dispatch.hold = chrono::Duration::seconds(1);
    dispatch.named_confirm = chrono::Duration::seconds(1);
    dispatch.grab_window = chrono::Duration::seconds(1);
    dispatch.auto_window = chrono::Duration::seconds(2);
    dispatch.accept_within = chrono::Duration::seconds(1);
    dispatch.reservation_grace = chrono::Duration::seconds(1);
    // New Year's midnight only: in a test, ticks come from the admin endpoint.
    dispatch.schedule = "0 0 0 1 1 *".to_owned();
}

async fn tracking(app: &TestApp, token: &str, order_id: Uuid) -> Value {
    let response = app
        .get(&format!("/api/v1/orders/{order_id}/tracking"), Some(token))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("tracking json")
}

/// Runs the dispatcher until the order's tracking satisfies `ready`.
async fn dispatch_until(
    app: &TestApp,
    admin: &User,
    order_id: Uuid,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        app.wait_for_projections().await;
        let ran = app
            .post("/api/v1/admin/dispatch/run", Some(&admin.token), &json!({}))
            .await;
        assert_eq!(ran.status(), StatusCode::OK);
        let now = tracking(app, &admin.token, order_id).await;
        if ready(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the order never got there: {now}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn events_of(app: &TestApp, aggregate_id: Uuid) -> Vec<(String, Value)> {
    sqlx::query_as::<_, (String, Value)>(
        "SELECT event_type, payload -> event_type FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(aggregate_id.to_string())
    .fetch_all(&app.pool)
    .await
    .expect("events")
}

#[tokio::test]
async fn a_named_worker_who_does_not_confirm_is_passed_over_through_grab_automatic_and_admin() {
    let app = spawn_app_with(|settings| {
        quick_windows(settings);
        // Long enough to look at the offers before the automatic rounds take over.
        settings.dispatch.grab_window = chrono::Duration::seconds(3);
    })
    .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let named = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let other = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let third = app.qualified_worker(&["daily_cleaning"], &admin).await;

    let mut body = order_body();
    body["worker_id"] = named.id.to_string().into();
    let order_id = app.place_order_with(&customer, &body).await;
    app.pay(order_id, &admin).await;
    let offered = tracking(&app, &customer.token, order_id).await;
    assert_eq!(offered["status"], "assigned");
    assert_eq!(offered["dispatch_stage"], "named");
    assert_eq!(offered["worker_id"], named.id.to_string());
    assert!(offered["respond_by"].is_string());

    // The named worker stays silent: the order is offered for grabbing, not to them.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let grabbing = dispatch_until(&app, &admin, order_id, |order| {
        order["dispatch_stage"] == "grab"
    })
    .await;
    assert_eq!(grabbing["status"], "dispatching");
    app.wait_for_projections().await;
    let offers_for = |worker: &User| {
        let token = worker.token.clone();
        let app = &app;
        async move {
            let response = app.get("/api/v1/offers", Some(&token)).await;
            assert_eq!(response.status(), StatusCode::OK);
            let offers: Vec<Value> = response.json().await.expect("offers");
            offers
                .iter()
                .any(|offer| offer["order_id"] == order_id.to_string())
        }
    };
    assert!(offers_for(&other).await, "offered to an eligible worker");
    // The eligible workers heard of it, once; the worker who let it pass did not.
    let deadline = Instant::now() + Duration::from_secs(20);
    let announced = loop {
        app.post("/api/v1/admin/dispatch/run", Some(&admin.token), &json!({}))
            .await;
        let announced: Vec<Uuid> = sqlx::query_scalar(
            "SELECT recipient_id FROM reminders WHERE order_id = $1 AND kind = 'grab_offered' ORDER BY recipient_id",
        )
        .bind(order_id)
        .fetch_all(&app.pool)
        .await
        .expect("reminders");
        if !announced.is_empty() {
            break announced;
        }
        assert!(
            Instant::now() < deadline,
            "the grab offer was never announced"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut expected = vec![other.id, third.id];
    expected.sort();
    assert_eq!(announced, expected);
    assert!(
        !offers_for(&named).await,
        "not offered to the worker who let it pass"
    );
    let refused = app
        .post(
            &format!("/api/v1/orders/{order_id}/grab"),
            Some(&named.token),
            &json!({}),
        )
        .await;
    assert_problem(refused, StatusCode::CONFLICT, "/problems/illegal-state").await;

    // Nobody grabs: the automatic round gives it to an eligible worker, with its reasons.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let automatic = dispatch_until(&app, &admin, order_id, |order| {
        order["dispatch_stage"] == "auto" && order["status"] == "assigned"
    })
    .await;
    let chosen: Uuid = automatic["worker_id"]
        .as_str()
        .expect("a worker")
        .parse()
        .expect("uuid");
    assert_ne!(chosen, named.id);
    let assigned = events_of(&app, order_id)
        .await
        .into_iter()
        .rfind(|(kind, _)| kind == "WorkerAssigned")
        .expect("an assignment")
        .1;
    assert_eq!(assigned["score"]["method"], "optimal");
    assert_eq!(assigned["score"]["eligible_workers"], 2);
    assert!(assigned["score"]["travel_minutes"].is_number());

    // That worker does not accept either; then nobody is left and the admins take over.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let queued = dispatch_until(&app, &admin, order_id, |order| {
        order["dispatch_stage"] == "admin"
    })
    .await;
    assert_eq!(queued["status"], "dispatching");
    app.wait_for_projections().await;
    let queue: Vec<Value> = app
        .get(
            "/api/v1/admin/dispatch/queue?stage=admin",
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("queue");
    assert!(queue
        .iter()
        .any(|item| item["order_id"] == order_id.to_string()));
    let candidates: Vec<Value> = app
        .get(
            &format!("/api/v1/admin/orders/{order_id}/candidates"),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("candidates");
    let declined = candidates
        .iter()
        .filter(|candidate| {
            candidate["ineligible"]
                .as_str()
                .is_some_and(|why| why.contains("declined"))
        })
        .count();
    // The named worker and both automatic picks, each of whom let it pass.
    assert_eq!(declined, 3, "{candidates:?}");

    // An admin dispatches by hand, then reassigns with a reason; the first worker's time is
    // given back.
    let by_hand = app.assign(order_id, other.id, &admin).await;
    assert_eq!(by_hand.status(), StatusCode::OK);
    let no_reason = app
        .post(
            &format!("/api/v1/orders/{order_id}/reassign"),
            Some(&admin.token),
            &json!({"worker_id": third.id, "reason": " "}),
        )
        .await;
    assert_problem(
        no_reason,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let reassigned = app
        .post(
            &format!("/api/v1/orders/{order_id}/reassign"),
            Some(&admin.token),
            &json!({"worker_id": third.id, "reason": "客户要求更换 / the customer asked for another worker"}),
        )
        .await;
    assert_eq!(reassigned.status(), StatusCode::OK);
    let now = tracking(&app, &admin.token, order_id).await;
    assert_eq!(now["worker_id"], third.id.to_string());
    let other_calendar = events_of(&app, other.id).await;
    assert_eq!(
        other_calendar.last().map(|(kind, _)| kind.as_str()),
        Some("BookingReleased"),
        "{other_calendar:?}"
    );
    let withdrawn = events_of(&app, order_id)
        .await
        .into_iter()
        .find(|(kind, _)| kind == "AssignmentWithdrawn")
        .expect("withdrawal recorded")
        .1;
    assert_eq!(
        withdrawn["reason"],
        "客户要求更换 / the customer asked for another worker"
    );
    // The worker it was taken from is told.
    let told: Vec<Value> = app
        .get("/api/v1/me/notifications", Some(&other.token))
        .await
        .json()
        .await
        .expect("notifications");
    assert!(
        told.iter().any(|note| note["kind"] == "order_reassigned"),
        "{told:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unpaid_order_is_cancelled_and_its_workers_time_is_given_back() {
    let app = spawn_app_with(quick_windows).await;
    let admin = app.create_admin().await;
    let first = app.register_customer().await;
    let second = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let mut body = order_body();
    body["worker_id"] = worker.id.to_string().into();

    let held = app.place_order_with(&first, &body).await;
    let taken = app.post("/api/v1/orders", Some(&second.token), &body).await;
    assert_problem(taken, StatusCode::CONFLICT, "/problems/conflict").await;

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let cancelled =
        dispatch_until(&app, &admin, held, |order| order["status"] == "cancelled").await;
    assert_eq!(cancelled["worker_id"], Value::Null);
    let reason = events_of(&app, held)
        .await
        .into_iter()
        .find(|(kind, _)| kind == "OrderCancelled")
        .expect("cancelled")
        .1;
    assert_eq!(reason["by"]["role"], "system");
    // The time is free again.
    app.place_order_with(&second, &body).await;
    app.stop().await;
}

/// Three workers' bases around People's Square, for the optimal-round test.
fn north(metres: f64) -> f64 {
    ORDER_LATITUDE + metres / 111_195.0
}

#[tokio::test]
async fn the_automatic_round_finds_the_assignment_with_least_total_travel_not_the_greedy_one() {
    let app = spawn_app_with(|settings| {
        quick_windows(settings);
        settings
            .dispatch
            .set_modes("daily_cleaning=auto")
            .expect("modes");
    })
    .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let near = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let farther = app.qualified_worker(&["daily_cleaning"], &admin).await;
    for (worker, metres, radius) in [(&near, 0.0, 20), (&farther, 2_500.0, 3)] {
        let set = app
            .client
            .put(app.url("/api/v1/worker/base"))
            .bearer_auth(&worker.token)
            .json(&json!({"latitude": north(metres), "longitude": ORDER_LONGITUDE, "system": "gcj02", "radius_km": radius}))
            .send()
            .await
            .expect("base");
        assert_eq!(set.status(), StatusCode::NO_CONTENT);
    }
    // The first order is a little nearer the near worker; the second only the near worker can
    // reach. Greedy would give the first to the near worker and leave the second unassigned.
    let mut orders = Vec::new();
    for metres in [1_000.0, -1_200.0] {
        let mut body = order_body();
        body["address"]["location"]["latitude"] = north(metres).into();
        let order_id = app.place_order_with(&customer, &body).await;
        app.pay(order_id, &admin).await;
        orders.push(order_id);
    }
    let mut assigned = HashMap::new();
    for order_id in &orders {
        let now = dispatch_until(&app, &admin, *order_id, |order| {
            order["status"] == "assigned"
        })
        .await;
        assigned.insert(
            *order_id,
            now["worker_id"].as_str().expect("worker").to_owned(),
        );
    }
    assert_eq!(assigned[&orders[0]], farther.id.to_string());
    assert_eq!(assigned[&orders[1]], near.id.to_string());
    let rounds: Vec<Value> = app
        .get("/api/v1/admin/dispatch/rounds", Some(&admin.token))
        .await
        .json()
        .await
        .expect("rounds");
    assert!(rounds.iter().any(|round| round["assigned"] == 2));
    app.stop().await;
}

/// Folds a stream's events from the store into its aggregate.
async fn fold<A: Aggregate>(app: &TestApp, aggregate_type: &str) -> HashMap<Uuid, A>
where
    A::Event: serde::de::DeserializeOwned,
{
    let rows = sqlx::query_as::<_, (String, Value)>(
        "SELECT aggregate_id, payload FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence",
    )
    .bind(aggregate_type)
    .fetch_all(&app.pool)
    .await
    .expect("events");
    let mut folded: HashMap<Uuid, A> = HashMap::new();
    for (id, payload) in rows {
        let event: A::Event = serde_json::from_value(payload).expect("an event");
        folded
            .entry(id.parse().expect("uuid"))
            .or_default()
            .apply(event);
    }
    folded
}

#[tokio::test]
async fn hundreds_of_concurrent_bookings_and_grabs_from_two_processes_never_double_book() {
    let app = spawn_app().await;
    let other_process = ServerProcess::start(&app.database_url).await;
    let admin = app.create_admin().await;
    let mut workers = Vec::new();
    for _ in 0..10 {
        workers.push(app.qualified_worker(&["daily_cleaning"], &admin).await);
    }
    let mut customers = Vec::new();
    for _ in 0..5 {
        customers.push(app.register_customer().await);
    }
    let day = Utc::now() + chrono::Duration::days(3);
    let start_at = |slot: i64| (day + chrono::Duration::minutes(slot * 75)).to_rfc3339();

    // Thirty orders at five overlapping times, open for grabbing.
    let mut orders = Vec::new();
    for index in 0..30 {
        let mut body = order_body();
        body["scheduled_start"] = start_at(index % 5).into();
        let order_id = app
            .place_order_with(&customers[index as usize % customers.len()], &body)
            .await;
        app.pay(order_id, &admin).await;
        orders.push(order_id);
    }
    let bases = [app.address.clone(), other_process.address.clone()];

    // Every worker grabs every order, and customers name workers for clashing times the next
    // day, all at once, spread over both processes.
    let mut requests = Vec::new();
    for (w, worker) in workers.iter().enumerate() {
        for (o, order_id) in orders.iter().enumerate() {
            requests.push((
                bases[(w + o) % 2].clone(),
                worker.token.clone(),
                format!("/api/v1/orders/{order_id}/grab"),
                json!({}),
                Some((*order_id, worker.id)),
            ));
        }
    }
    let next_day = day + chrono::Duration::days(1);
    for index in 0..120usize {
        let mut body = order_body();
        body["scheduled_start"] = (next_day + chrono::Duration::minutes((index % 6) as i64 * 40))
            .to_rfc3339()
            .into();
        body["worker_id"] = workers[index % workers.len()].id.to_string().into();
        requests.push((
            bases[index % 2].clone(),
            customers[index % customers.len()].token.clone(),
            "/api/v1/orders".to_owned(),
            body,
            None,
        ));
    }
    // Interleave grabs and bookings.
    requests.sort_by_key(|request| {
        Uuid::new_v5(&Uuid::NAMESPACE_OID, request.2.as_bytes()).as_u128() ^ request.1.len() as u128
    });
    let total = requests.len();
    let client = reqwest::Client::new();
    // Status, the (order, worker) of a grab, whether it was a booking.
    type Outcome = (StatusCode, Option<(Uuid, Uuid)>, bool);
    let outcomes: Vec<Outcome> =
        futures::stream::iter(requests.into_iter().map(|(base, token, path, body, grab)| {
            let client = client.clone();
            async move {
                let response = client
                    .post(format!("{base}{path}"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .expect("a response");
                (response.status(), grab, path == "/api/v1/orders")
            }
        }))
        .buffer_unordered(48)
        .collect()
        .await;
    assert!(total >= 400, "{total} requests");
    let mut grabs_won: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    let mut bookings_made = 0;
    for (status, grab, booking) in &outcomes {
        assert!(
            matches!(
                *status,
                StatusCode::OK | StatusCode::CREATED | StatusCode::CONFLICT
            ),
            "unexpected {status}"
        );
        if let (StatusCode::OK, Some((order_id, worker_id))) = (*status, grab) {
            grabs_won.entry(*order_id).or_default().push(*worker_id);
        }
        if *booking && *status == StatusCode::CREATED {
            bookings_made += 1;
        }
    }
    assert!(
        grabs_won.values().all(|winners| winners.len() == 1),
        "{grabs_won:?}"
    );
    assert!(!grabs_won.is_empty() && bookings_made > 0);

    // Every worker's calendar, folded from their own stream: no two jobs overlap, travel
    // included, and each reserved order is held by exactly that worker.
    let calendars: HashMap<Uuid, Worker> = fold(&app, "worker").await;
    let order_states: HashMap<Uuid, Order> = fold(&app, "order").await;
    let mut holder: HashMap<Uuid, Uuid> = HashMap::new();
    for (worker_id, worker) in &calendars {
        for (index, booked) in worker.bookings.iter().enumerate() {
            for other in &worker.bookings[index + 1..] {
                assert!(
                    !booked.clashes(other.start, other.end, other.location),
                    "worker {worker_id} is booked twice: {booked:?} and {other:?}"
                );
            }
            assert!(
                holder.insert(booked.order_id, *worker_id).is_none(),
                "order {} is held by two workers",
                booked.order_id
            );
            let order = &order_states[&booked.order_id];
            let holds = order.worker_id == Some(*worker_id)
                || (order.preferred_worker == Some(*worker_id)
                    && order.status == OrderStatus::AwaitingPayment);
            assert!(
                holds,
                "worker {worker_id} reserves order {} that is not theirs: {order:?}",
                booked.order_id
            );
        }
    }
    for (order_id, winners) in &grabs_won {
        assert_eq!(holder.get(order_id), Some(&winners[0]));
        assert_eq!(order_states[order_id].status, OrderStatus::Accepted);
    }
    // Every order a worker holds shows that worker; no order names a worker without a booking.
    for (order_id, order) in &order_states {
        if let Some(worker_id) = order.worker_id {
            assert_eq!(holder.get(order_id), Some(&worker_id), "order {order_id}");
        }
    }
    drop(other_process);
    app.stop().await;
}
