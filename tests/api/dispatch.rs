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

/// Settings with windows of a second or two, and no scheduled ticks: the test drives them.
fn quick_windows(settings: &mut command_api::server::Settings) {
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

#[tokio::test]
async fn a_worker_on_the_way_is_tracked_checks_in_near_the_address_and_reminders_go_out_once() {
    let app = spawn_app().await;
    let other_process = ServerProcess::start(&app.database_url).await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let stranger = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let order_id = app
        .place_order_with(&customer, &order_body_starting_in(30))
        .await;
    app.pay(order_id, &admin).await;
    let grabbed = app
        .post(
            &format!("/api/v1/orders/{order_id}/grab"),
            Some(&worker.token),
            &json!({}),
        )
        .await;
    assert_eq!(grabbed.status(), StatusCode::OK);
    let late = app
        .post(
            &format!("/api/v1/orders/{order_id}/grab"),
            Some(&stranger.token),
            &json!({}),
        )
        .await;
    let problem = assert_problem(late, StatusCode::CONFLICT, "/problems/illegal-state").await;
    assert!(problem["detail"]
        .as_str()
        .unwrap_or("")
        .contains("already been taken"));
    app.wait_for_projections().await;
    let offers: Vec<Value> = app
        .get("/api/v1/offers", Some(&stranger.token))
        .await
        .json()
        .await
        .expect("offers");
    assert!(
        offers
            .iter()
            .all(|offer| offer["order_id"] != order_id.to_string()),
        "a taken order disappears from everyone's offers"
    );

    let post = |path: &str, body: Value| {
        let app = &app;
        let token = worker.token.clone();
        let path = format!("/api/v1/orders/{order_id}/{path}");
        async move { app.post(&path, Some(&token), &body).await }
    };
    assert_eq!(post("depart", json!({})).await.status(), StatusCode::OK);
    let two_km_north = json!({"latitude": north(2_000.0), "longitude": ORDER_LONGITUDE, "system": "gcj02", "accuracy_m": 25});
    let ping = post("location", two_km_north.clone()).await;
    assert_eq!(ping.status(), StatusCode::OK);
    let ping: Value = ping.json().await.expect("ack");
    // Both points are brought to WGS-84 first; the datum offset drifts by a metre or so here.
    let distance = ping["distance_m"].as_i64().expect("distance");
    assert!((1_997..=2_003).contains(&distance), "{distance}");
    let eta: DateTime<Utc> = ping["eta"].as_str().expect("eta").parse().expect("time");
    let minutes = (eta - Utc::now()).num_minutes();
    assert!((6..=8).contains(&minutes), "eta in {minutes} minutes");
    let too_soon = post("location", two_km_north).await;
    assert_eq!(too_soon.headers()["retry-after"], "10");
    assert_problem(
        too_soon,
        StatusCode::TOO_MANY_REQUESTS,
        "/problems/too-frequent",
    )
    .await;
    let vague = post("location", json!({"latitude": north(1_000.0), "longitude": ORDER_LONGITUDE, "system": "gcj02", "accuracy_m": 900})).await;
    assert_problem(
        vague,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;

    let seen = tracking(&app, &customer.token, order_id).await;
    assert_eq!(seen["status"], "on_the_way");
    assert!(
        (seen["last_location"]["latitude"].as_f64().expect("lat") - north(2_000.0)).abs() < 1e-9
    );
    assert_eq!(seen["estimated_arrival"], ping["eta"]);

    // Navigation opens each map in its own datum.
    let navigation: Value = app
        .get(
            &format!("/api/v1/orders/{order_id}/navigation"),
            Some(&worker.token),
        )
        .await
        .json()
        .await
        .expect("navigation");
    assert_eq!(navigation["gcj02"]["latitude"], ORDER_LATITUDE);
    assert!(navigation["links"]["amap"]
        .as_str()
        .expect("amap")
        .contains(&format!("{ORDER_LONGITUDE:.6},{ORDER_LATITUDE:.6}")));
    let bd_latitude = navigation["bd09"]["latitude"].as_f64().expect("bd");
    assert!(navigation["links"]["baidu"]
        .as_str()
        .expect("baidu")
        .contains(&format!("latlng:{bd_latitude:.6}")));
    assert!(navigation["links"]["tencent"]
        .as_str()
        .expect("tencent")
        .contains(&format!("tocoord={ORDER_LATITUDE:.6},{ORDER_LONGITUDE:.6}")));
    let distance = navigation["distance_m"].as_i64().expect("distance");
    assert!((1_997..=2_003).contains(&distance), "{distance}");
    let hidden = app
        .get(
            &format!("/api/v1/orders/{order_id}/navigation"),
            Some(&stranger.token),
        )
        .await;
    assert_problem(hidden, StatusCode::NOT_FOUND, "/problems/not-found").await;

    // Check-in: not from a kilometre away, and the position is required.
    let far = post(
        "arrive",
        json!({"latitude": north(1_000.0), "longitude": ORDER_LONGITUDE, "system": "gcj02"}),
    )
    .await;
    assert_problem(far, StatusCode::CONFLICT, "/problems/illegal-state").await;
    let blind = app
        .client
        .post(app.url(&format!("/api/v1/orders/{order_id}/arrive")))
        .bearer_auth(&worker.token)
        .send()
        .await
        .expect("arrive");
    assert_problem(
        blind,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    // From the door, in GPS coordinates: the datum is converted before measuring.
    let door = domain::GeoPoint::new(
        ORDER_LATITUDE,
        ORDER_LONGITUDE,
        domain::CoordinateSystem::Gcj02,
    )
    .expect("point")
    .to_system(domain::CoordinateSystem::Wgs84);
    let arrived = post(
        "arrive",
        json!({"latitude": door.latitude, "longitude": door.longitude, "system": "wgs84"}),
    )
    .await;
    assert_eq!(arrived.status(), StatusCode::OK);

    // The customer heard that the order was accepted, once, although both processes run the
    // reminder job; the start reminders were cancelled by the arrival.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        app.wait_for_projections().await;
        let reminders = application::reminders::of_order(&app.pool, order_id)
            .await
            .expect("reminders");
        let accepted = reminders
            .iter()
            .find(|(kind, ..)| kind == "order_accepted")
            .cloned();
        let starts_cancelled = reminders
            .iter()
            .filter(|(kind, ..)| kind.starts_with("starts_in"))
            .all(|(_, _, delivered, cancelled)| *cancelled && !*delivered);
        if accepted
            .as_ref()
            .is_some_and(|(_, _, delivered, _)| *delivered)
            && starts_cancelled
        {
            break;
        }
        assert!(Instant::now() < deadline, "reminders stuck: {reminders:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Both processes run the reminder job every five seconds; wait until it has run several more
    // times (in either) before counting deliveries.
    let runs = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(max(runs), 0) FROM job_runs WHERE job = 'reminders'",
        )
        .fetch_one(&app.pool)
        .await
        .expect("job runs")
    };
    let seen = runs().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs().await < seen + 4 {
        assert!(
            Instant::now() < deadline,
            "the reminder job stopped running"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let inbox: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE recipient_id = $1 AND kind = 'order_accepted'",
    )
    .bind(customer.id)
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(inbox, 1);
    let outbox: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_messages WHERE body LIKE '%accepted your%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    let smtp = app
        .mail
        .all()
        .iter()
        .filter(|message| message.text().contains("accepted your"))
        .count() as i64;
    assert_eq!(outbox + smtp, 1, "one e-mail, whichever process sent it");
    drop(other_process);
    app.stop().await;
}

#[tokio::test]
async fn customers_block_workers_and_blocked_workers_cannot_take_their_orders() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let blocked = app
        .post(
            "/api/v1/me/blocked-workers",
            Some(&customer.token),
            &json!({"worker_id": worker.id}),
        )
        .await;
    assert_eq!(blocked.status(), StatusCode::NO_CONTENT);
    let unknown = app
        .post(
            "/api/v1/me/blocked-workers",
            Some(&customer.token),
            &json!({"worker_id": Uuid::new_v4()}),
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let list: Value = app
        .get("/api/v1/me/blocked-workers", Some(&customer.token))
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(list["worker_ids"], json!([worker.id]));

    let mut named = order_body();
    named["worker_id"] = worker.id.to_string().into();
    let refused = app
        .post("/api/v1/orders", Some(&customer.token), &named)
        .await;
    assert_problem(refused, StatusCode::CONFLICT, "/problems/illegal-state").await;

    let order_id = app.place_order(&customer).await;
    app.pay(order_id, &admin).await;
    app.wait_for_projections().await;
    let grab = app
        .post(
            &format!("/api/v1/orders/{order_id}/grab"),
            Some(&worker.token),
            &json!({}),
        )
        .await;
    assert_problem(grab, StatusCode::CONFLICT, "/problems/illegal-state").await;
    let offers: Vec<Value> = app
        .get("/api/v1/offers", Some(&worker.token))
        .await
        .json()
        .await
        .expect("offers");
    assert!(offers.is_empty(), "{offers:?}");

    let lifted = app
        .client
        .delete(app.url(&format!("/api/v1/me/blocked-workers/{}", worker.id)))
        .bearer_auth(&customer.token)
        .send()
        .await
        .expect("unblock");
    assert_eq!(lifted.status(), StatusCode::NO_CONTENT);
    app.wait_for_projections().await;
    let grab = app
        .post(
            &format!("/api/v1/orders/{order_id}/grab"),
            Some(&worker.token),
            &json!({}),
        )
        .await;
    assert_eq!(grab.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn slots_across_every_eligible_worker_count_who_is_free() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let first = app.qualified_worker(&["daily_cleaning"], &admin).await;
    app.qualified_worker(&["daily_cleaning"], &admin).await;
    app.qualified_worker(&["nanny"], &admin).await;
    let day = (Utc::now() + chrono::Duration::days(4))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
    let date = day.date_naive();
    let nine = date
        .and_hms_opt(9, 0, 0)
        .expect("09:00")
        .and_local_timezone(chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .single()
        .expect("a time")
        .with_timezone(&Utc);
    let mut body = order_body();
    body["scheduled_start"] = nine.to_rfc3339().into();
    body["worker_id"] = first.id.to_string().into();
    app.place_order_with(&customer, &body).await;
    app.wait_for_projections().await;
    let path = format!(
        "/api/v1/slots?service=daily_cleaning&city=%E4%B8%8A%E6%B5%B7%E5%B8%82&date={date}&duration_minutes=180&latitude={ORDER_LATITUDE}&longitude={ORDER_LONGITUDE}&system=gcj02"
    );
    let slots: Vec<Value> = app.get(&path, None).await.json().await.expect("slots");
    let at_nine = slots
        .iter()
        .find(|slot| {
            slot["start"]
                .as_str()
                .and_then(|raw| raw.parse::<DateTime<Utc>>().ok())
                == Some(nine)
        })
        .expect("nine o'clock is offered");
    assert_eq!(
        at_nine["workers"], 1,
        "one of the two cleaners is held at nine"
    );
    let midnight = date.and_hms_opt(0, 0, 0).expect("00:00");
    assert!(
        slots
            .iter()
            .all(|slot| slot["workers"].as_u64().unwrap_or(0) <= 2),
        "{midnight}"
    );
    let bad = app
        .get(
            "/api/v1/slots?service=daily_cleaning&city=上海市&date=2030-01-01&duration_minutes=5",
            None,
        )
        .await;
    assert_problem(
        bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_worker_sets_a_base_within_limits() {
    let app = spawn_app().await;
    let worker = app.register_worker(&["daily_cleaning"]).await;
    for (body, status) in [
        (
            json!({"latitude": ORDER_LATITUDE, "longitude": ORDER_LONGITUDE, "system": "gcj02", "radius_km": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"latitude": 95.0, "longitude": ORDER_LONGITUDE, "system": "gcj02", "radius_km": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"latitude": ORDER_LATITUDE, "longitude": ORDER_LONGITUDE, "system": "mars", "radius_km": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"latitude": ORDER_LATITUDE, "longitude": ORDER_LONGITUDE, "system": "bd09", "radius_km": 5}),
            StatusCode::NO_CONTENT,
        ),
    ] {
        let response = app
            .client
            .put(app.url("/api/v1/worker/base"))
            .bearer_auth(&worker.token)
            .json(&body)
            .send()
            .await
            .expect("base");
        assert_eq!(response.status(), status, "{body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_reservation_left_by_a_crash_between_booking_and_assigning_is_given_back() {
    let app = spawn_app_with(quick_windows).await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let order_id = app.place_order(&customer).await;
    app.pay(order_id, &admin).await;
    // A process books the worker for the order and dies before the order takes the worker.
    let (order, _): (Order, usize) =
        application::commands::CommandBus::<Order>::new(app.pool.clone())
            .load(order_id)
            .await
            .expect("order");
    let (start, end) = order.window.expect("window");
    application::commands::CommandBus::<Worker>::new(app.pool.clone())
        .execute(
            worker.id,
            domain::worker::WorkerCommand::Book {
                order_id,
                start,
                end,
                location: order.location,
                now: Utc::now(),
            },
            &application::commands::CommandContext::system(),
        )
        .await
        .expect("booked");
    // A held reservation (the worker really has the order) must survive the same check.
    let held_order = app
        .place_order_with(&customer, &order_body_starting_in(3 * 24 * 60))
        .await;
    app.pay(held_order, &admin).await;
    let grabbed = app
        .post(
            &format!("/api/v1/orders/{held_order}/grab"),
            Some(&worker.token),
            &json!({}),
        )
        .await;
    assert_eq!(grabbed.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.wait_for_projections().await;
        app.post("/api/v1/admin/dispatch/run", Some(&admin.token), &json!({}))
            .await;
        let calendar = events_of(&app, worker.id).await;
        if calendar.iter().any(|(kind, payload)| {
            kind == "BookingReleased" && payload["order_id"] == order_id.to_string()
        }) {
            assert!(!calendar
                .iter()
                .any(|(kind, payload)| kind == "BookingReleased"
                    && payload["order_id"] == held_order.to_string()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the orphan reservation was never given back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.stop().await;
}

/// Sets a worker's base `metres` north of the order address.
async fn set_base(app: &TestApp, worker: &User, metres: f64, radius_km: u32) {
    let set = app
        .client
        .put(app.url("/api/v1/worker/base"))
        .bearer_auth(&worker.token)
        .json(&json!({"latitude": north(metres), "longitude": ORDER_LONGITUDE, "system": "gcj02", "radius_km": radius_km}))
        .send()
        .await
        .expect("base");
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
}

/// Takes an order from grab to a review with the given stars.
async fn serve_and_review(app: &TestApp, admin: &User, customer: &User, worker: &User, stars: u8) {
    let order_id = app
        .place_order_with(customer, &order_body_starting_in(30))
        .await;
    app.pay(order_id, admin).await;
    app.grab_and_serve(order_id, worker).await;
    let reviewed = app
        .post(
            &format!("/api/v1/orders/{order_id}/review"),
            Some(&customer.token),
            &json!({"quality": stars, "attitude": stars, "skill": stars}),
        )
        .await;
    assert_eq!(reviewed.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_directory_filters_by_rating_distance_from_an_address_and_availability_on_a_date() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let liked = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let disliked = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let far = app.qualified_worker(&["daily_cleaning"], &admin).await;
    set_base(&app, &liked, 1_000.0, 10).await;
    set_base(&app, &disliked, -2_000.0, 10).await;
    set_base(&app, &far, 30_000.0, 10).await;
    serve_and_review(&app, &admin, &customer, &liked, 5).await;
    serve_and_review(&app, &admin, &customer, &disliked, 2).await;
    let date = (Utc::now() + chrono::Duration::days(5)).date_naive();
    let leave = app
        .post(
            "/api/v1/worker/leave",
            Some(&far.token),
            &json!({"from": date, "to": date, "reason": "探亲 / family visit"}),
        )
        .await;
    assert_eq!(leave.status(), StatusCode::CREATED);
    app.wait_for_projections().await;

    let names = |query: &'static str| {
        let app = &app;
        async move {
            let response = app
                .get(
                    &format!("/api/v1/workers?skill=daily_cleaning{query}"),
                    None,
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            let workers: Vec<Value> = response.json().await.expect("workers");
            workers
        }
    };
    let ids = |workers: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = workers
            .iter()
            .map(|worker| worker["worker_id"].as_str().expect("id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut list: Vec<Uuid>| -> Vec<String> {
        list.sort();
        list.into_iter().map(|id| id.to_string()).collect()
    };
    let near = "&near_latitude=31.2304&near_longitude=121.4737&near_system=gcj02";
    let nearby = names(near).await;
    assert_eq!(ids(&nearby), sorted(vec![liked.id, disliked.id]));
    let liked_view = nearby
        .iter()
        .find(|worker| worker["worker_id"] == liked.id.to_string())
        .expect("liked");
    assert_eq!(liked_view["rating"], 5.0);
    assert_eq!(liked_view["reviews"], 1);
    assert_eq!(liked_view["distance_km"], 1.0);
    assert_eq!(ids(&names("&min_rating=4").await), sorted(vec![liked.id]));
    let everyone =
        names("&near_latitude=31.2304&near_longitude=121.4737&near_system=gcj02&within_km=50")
            .await;
    assert_eq!(ids(&everyone), sorted(vec![liked.id, disliked.id, far.id]));
    // The same place given in Baidu's datum finds the same workers.
    let point = domain::GeoPoint::new(
        ORDER_LATITUDE,
        ORDER_LONGITUDE,
        domain::CoordinateSystem::Gcj02,
    )
    .expect("point")
    .to_system(domain::CoordinateSystem::Bd09);
    let baidu = app
        .get(
            &format!(
                "/api/v1/workers?skill=daily_cleaning&near_latitude={}&near_longitude={}&near_system=bd09",
                point.latitude, point.longitude
            ),
            None,
        )
        .await
        .json::<Vec<Value>>()
        .await
        .expect("workers");
    assert_eq!(ids(&baidu), sorted(vec![liked.id, disliked.id]));
    let query = format!("&within_km=50{near}&available_on={date}");
    let available = app
        .get(
            &format!("/api/v1/workers?skill=daily_cleaning{query}"),
            None,
        )
        .await
        .json::<Vec<Value>>()
        .await
        .expect("workers");
    assert_eq!(ids(&available), sorted(vec![liked.id, disliked.id]));
    for bad in [
        "&min_rating=6",
        "&within_km=5",
        "&near_latitude=31.2",
        "&available_on=tomorrow",
    ] {
        let response = app
            .get(&format!("/api/v1/workers?skill=daily_cleaning{bad}"), None)
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn reminders_reach_a_phone_login_by_sms_and_an_email_login_by_mail() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let phone = format!("139{:08}", Uuid::new_v4().as_u128() % 100_000_000);
    let registered = app
        .register(json!({"kind": "customer", "login": phone, "password": "a-good-password", "name": "王先生", "phone": phone}))
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let customer = app.sign_in(&phone, "a-good-password").await;
    let order_id = app
        .place_order_with(&customer, &order_body_starting_in(120))
        .await;
    app.pay(order_id, &admin).await;
    let assigned = app.assign(order_id, worker.id, &admin).await;
    assert_eq!(assigned.status(), StatusCode::OK);
    let accepted = app.accept(order_id, &worker).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(30);
    let sms = loop {
        let sms: Option<String> = sqlx::query_scalar(
            "SELECT body FROM outbox_messages WHERE channel = 'sms' AND destination = $1 AND body LIKE '%已接单%'",
        )
        .bind(&phone)
        .fetch_optional(&app.pool)
        .await
        .expect("outbox");
        let offered_mail = app
            .mail
            .all()
            .iter()
            .any(|mail| mail.text().contains("waiting for you to accept"));
        if let (Some(sms), true) = (sms, offered_mail) {
            break sms;
        }
        assert!(Instant::now() < deadline, "reminders did not go out");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(sms.starts_with("【安家】"), "{sms}");
    // The start reminders wait for their time: an hour and a quarter of an hour before.
    let pending = application::reminders::of_order(&app.pool, order_id)
        .await
        .expect("reminders");
    let waiting: Vec<&str> = pending
        .iter()
        .filter(|(_, _, delivered, cancelled)| !delivered && !cancelled)
        .map(|(kind, ..)| kind.as_str())
        .collect();
    assert_eq!(
        waiting,
        [
            "starts_in_60",
            "starts_in_60",
            "starts_in_15",
            "starts_in_15"
        ]
    );
    app.stop().await;
}
