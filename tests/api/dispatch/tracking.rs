//! A worker on the way: tracking, check-in near the address, and reminders by the inbox, SMS and
//! e-mail.

use super::*;

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
        .contains("已被其他服务人员接走"));
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
