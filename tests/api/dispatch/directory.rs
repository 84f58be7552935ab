//! Who may be chosen: blocks, free slots across workers, bases, reservations given back, and the
//! worker directory.

use super::*;

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
