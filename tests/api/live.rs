use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::spawn_app;

/// One server-sent event: its id, type and data.
#[derive(Debug, Clone)]
struct Message {
    id: String,
    event: String,
    data: Value,
}

/// Opens a live stream. When this returns the server has fixed where the stream starts.
async fn open(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(format!("{base}/api/v1/live")).bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    response
}

/// Reads messages from an open stream until `wanted` arrived, with a deadline.
async fn read(response: reqwest::Response, wanted: usize) -> Vec<Message> {
    read_skipping(response, wanted, &[]).await
}

/// Like `read`, but messages of the event types in `skip` are neither counted nor kept.
async fn read_skipping(
    mut response: reqwest::Response,
    wanted: usize,
    skip: &[&str],
) -> Vec<Message> {
    let mut buffer = String::new();
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while messages.len() < wanted {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(remaining, response.chunk())
            .await
            .expect("messages in time")
            .expect("bytes")
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|value| value.trim().to_owned())
            };
            if let (Some(id), Some(event), Some(data)) =
                (field("id:"), field("event:"), field("data:"))
            {
                if skip.contains(&event.as_str()) {
                    continue;
                }
                messages.push(Message {
                    id,
                    event,
                    data: serde_json::from_str(&data).expect("json data"),
                });
            }
        }
    }
    messages
}

#[tokio::test]
async fn a_customer_follows_their_order_live_and_resumes_after_a_reconnect_without_gaps_or_repeats()
{
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let stranger = app.register_customer().await;
    let admin = app.create_admin().await;

    // Open the stream first, then place the order.
    let stream = open(&app.client, &app.address, &customer.token, None).await;
    let order_id = app.place_order(&customer).await;
    let first = read(stream, 2).await;
    assert_eq!(first[0].event, "OrderPlaced");
    assert_eq!(first[1].event, "PaymentRequested");
    assert_eq!(first[0].data["order_id"], order_id.to_string());
    assert!(
        first[0].data.get("booking").is_none(),
        "no personal data on the live channel"
    );

    // While the customer is away, the order moves on.
    let paid = app
        .post(
            &format!("/api/v1/orders/{order_id}/payments"),
            Some(&admin.token),
            &json!({"reference": "R-9", "amount": 15_000}),
        )
        .await;
    assert_eq!(paid.status(), StatusCode::OK);
    let resumed = read(
        open(
            &app.client,
            &app.address,
            &customer.token,
            Some(&first[1].id),
        )
        .await,
        1,
    )
    .await;
    assert_eq!(resumed[0].event, "PaymentRecorded");
    assert_eq!(resumed[0].data["sequence"], 3);

    // Someone else's stream never carries this order.
    let other = app.place_order(&stranger).await;
    let theirs = read(
        open(
            &app.client,
            &app.address,
            &stranger.token,
            Some(&first[1].id),
        )
        .await,
        2,
    )
    .await;
    assert!(
        theirs
            .iter()
            .all(|message| message.data["order_id"] == other.to_string()),
        "{theirs:?}"
    );
    // An open stream does not hold up a graceful shutdown: the server ends it.
    let _still_open = open(&app.client, &app.address, &customer.token, None).await;
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the server stopped with a live stream open");
}

#[tokio::test]
async fn the_customer_sees_the_workers_position_live_and_a_passed_over_worker_hears_no_more() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let first_choice = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let order_id = app
        .place_order_with(&customer, &tests::order_body_starting_in(40))
        .await;
    app.pay(order_id, &admin).await;
    // An admin gives it to one worker, then moves it to another.
    for (path, body) in [
        ("assignment", json!({"worker_id": first_choice.id})),
        (
            "reassign",
            json!({"worker_id": worker.id, "reason": "离得更近 / nearer"}),
        ),
    ] {
        let response = app
            .post(
                &format!("/api/v1/orders/{order_id}/{path}"),
                Some(&admin.token),
                &body,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // The streams start from what the read models know now.
    app.wait_for_projections().await;
    let customer_stream = open(&app.client, &app.address, &customer.token, None).await;
    // The first worker's stream from the order's first event: they hear the order until it is
    // taken from them.
    let placed: String = sqlx::query_scalar(
        "SELECT transaction_id::text || '-' || position FROM events
          WHERE aggregate_type = 'order' AND aggregate_id = $1 ORDER BY position LIMIT 1",
    )
    .bind(order_id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("the order's first event");
    let passed_over = open(
        &app.client,
        &app.address,
        &first_choice.token,
        Some(&placed),
    )
    .await;
    for path in ["accept", "depart"] {
        let response = app
            .post(
                &format!("/api/v1/orders/{order_id}/{path}"),
                Some(&worker.token),
                &json!({}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let ping = app
        .post(
            &format!("/api/v1/orders/{order_id}/location"),
            Some(&worker.token),
            &json!({"latitude": tests::ORDER_LATITUDE + 0.01, "longitude": tests::ORDER_LONGITUDE, "system": "gcj02", "accuracy_m": 15}),
        )
        .await;
    assert_eq!(ping.status(), StatusCode::OK);
    let seen = read(customer_stream, 3).await;
    let kinds: Vec<&str> = seen.iter().map(|message| message.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["OrderAccepted", "WorkerDeparted", "WorkerLocationReported"]
    );
    let position = &seen[2].data["position"];
    assert_eq!(position["system"], "gcj02");
    assert!(position["eta"].is_string());
    // The passed-over worker's stream: their assignment, the withdrawal, then nothing of the
    // rest (beside, like every worker, the order entering the grab hall if it did).
    let theirs = read_skipping(passed_over, 2, &["DispatchStageEntered"]).await;
    assert_eq!(theirs[0].event, "WorkerAssigned");
    assert_eq!(theirs[1].event, "AssignmentWithdrawn");
    app.stop().await;
}

#[tokio::test]
async fn a_live_stream_is_capped_per_person_ends_with_its_session_and_never_rescans_the_log() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    // Resuming from the log's beginning (or a point no event holds) is refused, not rescanned.
    for too_old in ["0-0", "1-1"] {
        let refused = app
            .client
            .get(app.url("/api/v1/live"))
            .bearer_auth(&customer.token)
            .header("last-event-id", too_old)
            .send()
            .await
            .expect("request");
        tests::assert_problem(refused, StatusCode::GONE, "/problems/resume-too-old").await;
    }
    // Three at once, over two processes; a fourth, on either, is refused until one closes.
    let other = tests::ServerProcess::start(&app.database_url).await;
    let mut streams = Vec::new();
    for base in [&app.address, &other.address, &other.address] {
        streams.push(open(&app.client, base, &customer.token, None).await);
    }
    let fourth = app
        .client
        .get(app.url("/api/v1/live"))
        .bearer_auth(&customer.token)
        .send()
        .await
        .expect("request");
    tests::assert_problem(fourth, StatusCode::TOO_MANY_REQUESTS, "/problems/busy").await;
    drop(streams.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    let replacement = loop {
        let response = app
            .client
            .get(app.url("/api/v1/live"))
            .bearer_auth(&customer.token)
            .send()
            .await
            .expect("request");
        if response.status() == StatusCode::OK {
            break response;
        }
        assert!(
            Instant::now() < deadline,
            "a closed stream's place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Signing out everywhere ends every open stream within seconds.
    let revoked = app
        .client
        .delete(app.url(&format!("/api/v1/sessions/{}", customer.session_id)))
        .bearer_auth(&customer.token)
        .send()
        .await
        .expect("revoke");
    assert!(revoked.status().is_success(), "{}", revoked.status());
    for mut stream in streams.into_iter().chain([replacement]) {
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            // Keep-alives may come; the stream ends when the server closes it.
            while let Ok(Some(_)) = stream.chunk().await {}
        })
        .await;
        assert!(ended.is_ok(), "the stream outlived its session");
    }
    other.terminate().await;
    app.stop().await;
}

#[tokio::test]
async fn a_workers_stream_hears_an_order_enter_the_grab_hall_and_leave_it_with_no_personal_data() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let watcher = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let grabber = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let stream = open(&app.client, &app.address, &watcher.token, None).await;
    let (order_id, _) = app
        .paid_through_sandbox(&customer, &tests::order_body(), "succeed")
        .await;
    let grabbed = app
        .post(
            &format!("/api/v1/orders/{order_id}/grab"),
            Some(&grabber.token),
            &json!({}),
        )
        .await;
    assert_eq!(grabbed.status(), StatusCode::OK);
    // The watcher is party to nothing: it hears the order enter the hall and be taken, and
    // nothing of the customer's or the grabber's.
    let messages = read(stream, 2).await;
    let events: Vec<&str> = messages
        .iter()
        .map(|message| message.event.as_str())
        .collect();
    assert_eq!(
        events,
        ["DispatchStageEntered", "WorkerAssigned"],
        "{messages:?}"
    );
    for message in &messages {
        assert_eq!(message.data["order_id"], json!(order_id));
        assert!(message.data.get("position").is_none());
    }
    app.stop().await;
}
