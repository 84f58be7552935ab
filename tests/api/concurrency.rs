use std::time::{Duration, Instant};

use domain::order::{Booking, OrderEvent};
use domain::{Address, Fen, ServiceCode};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{spawn_app, ServerProcess};
use uuid::Uuid;

#[tokio::test]
async fn concurrent_assignments_of_one_order_across_two_processes_leave_exactly_one_winner() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let mut workers = Vec::new();
    for _ in 0..6 {
        workers.push(app.qualified_worker(&["daily_cleaning"], &admin).await);
    }
    let order_id = app.dispatchable_order(&customer, &admin).await;
    let first = ServerProcess::start(&app.database_url).await;
    let second = ServerProcess::start(&app.database_url).await;

    let attempts = workers.iter().enumerate().map(|(index, worker)| {
        let base = if index % 2 == 0 {
            &first.address
        } else {
            &second.address
        };
        app.client
            .post(format!("{base}/api/v1/orders/{order_id}/assignment"))
            .bearer_auth(&admin.token)
            .json(&json!({"worker_id": worker.id}))
            .send()
    });
    let mut outcomes = Vec::new();
    for response in join_all(attempts).await {
        let response = response.expect("request");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        outcomes.push((status, body));
    }
    let winners = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");
    for (status, body) in outcomes
        .iter()
        .filter(|(status, _)| *status != StatusCode::OK)
    {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        let kind = body["type"].as_str().unwrap_or_default();
        assert!(
            kind == "/problems/concurrent-modification" || kind == "/problems/illegal-state",
            "{body}"
        );
    }
    let assignments: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE aggregate_id = $1 AND event_type = 'WorkerAssigned'",
    )
    .bind(order_id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(assignments, 1);
    app.stop().await;
}

async fn placed_event(vault: &vault::Vault, order_id: Uuid, customer_id: Uuid) -> OrderEvent {
    let sealed = vault
        .seal_all(customer_id, &["建国路 1 号", "赵先生", "13600001111"])
        .await
        .expect("sealed");
    let start = chrono::Utc::now() + chrono::Duration::days(3);
    OrderEvent::OrderPlaced {
        order_id,
        booking: Booking {
            customer_id,
            service: ServiceCode::HomeRepair,
            unit_price: Fen::new(8_000).expect("fen"),
            quantity: 1,
            scheduled_start: start,
            duration_minutes: 60,
            address: Address {
                city: "北京市".into(),
                district: "朝阳区".into(),
                detail: sealed[0].clone(),
                contact_name: sealed[1].clone(),
                contact_phone: sealed[2].clone(),
                location: None,
            },
            note: None,
            preferred_worker: None,
        },
        total: Fen::new(8_000).expect("fen"),
        placed_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn the_projector_applies_every_event_exactly_once_while_an_early_transaction_is_held_open() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;

    // An early writer takes a position and then stalls before committing.
    let slow_order = Uuid::new_v4();
    let mut held = app.pool.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('order', $1, 1, 'OrderPlaced', '1.0', $2, '{}')",
    )
    .bind(slow_order.to_string())
    .bind(serde_json::to_value(placed_event(&app.vault, slow_order, customer.id).await).expect("json"))
    .execute(&mut *held)
    .await
    .expect("held insert");

    // Meanwhile many writers commit later positions.
    let body = tests::order_body();
    let placements = (0..40).map(|_| app.post("/api/v1/orders", Some(&customer.token), &body));
    let responses = join_all(placements).await;
    assert!(responses
        .iter()
        .all(|response| response.status() == StatusCode::CREATED));

    // While the early transaction is open, the projector must not move past it.
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        let applied_orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM read_orders")
            .fetch_one(&app.pool)
            .await
            .expect("count");
        assert_eq!(
            applied_orders, 0,
            "the projector read past an uncommitted earlier event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    held.commit().await.expect("commit");
    app.wait_for_projections().await;

    let total_events = app.event_count().await;
    let applied: i64 = sqlx::query_scalar(
        "SELECT c.applied_events FROM projection_checkpoints c JOIN projections p ON p.name = c.projection AND p.active_generation = c.generation WHERE p.name = 'orders'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("checkpoint");
    assert_eq!(
        applied, total_events,
        "every event is offered to the projector exactly once"
    );
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM read_orders")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(orders, 41);
    // Each row reflects its stream's last event: none skipped, none applied out of order.
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM read_orders o
          WHERE o.last_sequence <> (SELECT MAX(sequence) FROM events e WHERE e.aggregate_type = 'order' AND e.aggregate_id = o.order_id::text)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("mismatches");
    assert_eq!(mismatched, 0);
    let slow: String = sqlx::query_scalar("SELECT status FROM read_orders WHERE order_id = $1")
        .bind(slow_order)
        .fetch_one(&app.pool)
        .await
        .expect("slow order projected");
    assert_eq!(slow, "placed");
    app.stop().await;
}

#[tokio::test]
async fn the_event_log_is_append_only_and_hash_chained() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    let refused = sqlx::query("UPDATE events SET payload = '{}' WHERE aggregate_id = $1")
        .bind(order_id.to_string())
        .execute(&app.pool)
        .await;
    assert!(refused.is_err(), "an event was altered");
    let deleted = sqlx::query("DELETE FROM events WHERE aggregate_id = $1")
        .bind(order_id.to_string())
        .execute(&app.pool)
        .await;
    assert!(deleted.is_err(), "an event was deleted");
    // Recomputing each hash from its predecessor gives the stored hash.
    let broken: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events e
          WHERE e.hash <> event_hash(e.prev_hash, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload::text, e.metadata::text)
             OR e.prev_hash <> COALESCE((SELECT p.hash FROM events p WHERE p.aggregate_type = e.aggregate_type
                                          AND p.aggregate_id = e.aggregate_id AND p.sequence = e.sequence - 1), '\\x'::bytea)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("verify");
    assert_eq!(broken, 0);

    // Someone with the power to switch the guard off alters an event: the chain shows it.
    sqlx::raw_sql(
        "ALTER TABLE events DISABLE TRIGGER events_append_only;
         UPDATE events SET payload = '{\"PaymentRequested\": {\"amount\": 1, \"requested_at\": \"2026-01-01T00:00:00Z\"}}'
          WHERE event_type = 'PaymentRequested';
         ALTER TABLE events ENABLE TRIGGER events_append_only;",
    )
    .execute(&app.pool)
    .await
    .expect("tamper");
    let broken: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events e
          WHERE e.hash <> event_hash(e.prev_hash, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload::text, e.metadata::text)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("verify");
    assert_eq!(broken, 1);
    app.stop().await;
}

#[tokio::test]
async fn one_worker_assigned_concurrently_to_overlapping_orders_from_two_processes_is_booked_once()
{
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(app.dispatchable_order(&customer, &admin).await);
    }
    let first = ServerProcess::start(&app.database_url).await;
    let second = ServerProcess::start(&app.database_url).await;
    let attempts = orders.iter().enumerate().map(|(index, order_id)| {
        let base = if index % 2 == 0 {
            &first.address
        } else {
            &second.address
        };
        app.client
            .post(format!("{base}/api/v1/orders/{order_id}/assignment"))
            .bearer_auth(&admin.token)
            .json(&json!({"worker_id": worker.id}))
            .send()
    });
    let statuses: Vec<StatusCode> = join_all(attempts)
        .await
        .into_iter()
        .map(|response| response.expect("request").status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::OK)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|status| *status == StatusCode::OK || *status == StatusCode::CONFLICT),
        "{statuses:?}"
    );

    // The worker's calendar, folded from their own stream: one booking, no overlaps.
    let events: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, payload::jsonb FROM events WHERE aggregate_type = 'worker' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(worker.id.to_string())
    .fetch_all(&app.pool)
    .await
    .expect("events");
    let mut calendar: Vec<(String, String, String)> = Vec::new();
    for (event_type, payload) in events {
        match event_type.as_str() {
            "WorkerBooked" => {
                let booked = &payload["WorkerBooked"];
                let entry = |key: &str| booked[key].as_str().expect("field").to_owned();
                calendar.push((entry("order_id"), entry("start"), entry("end")));
            }
            "BookingReleased" => {
                let order = payload["BookingReleased"]["order_id"]
                    .as_str()
                    .expect("order")
                    .to_owned();
                calendar.retain(|(booked, _, _)| *booked != order);
            }
            _ => {}
        }
    }
    assert_eq!(calendar.len(), 1, "{calendar:?}");
    let assigned: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'WorkerAssigned'")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(assigned, 1);
    let (winner, _, _) = &calendar[0];
    let winner_assigned: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE aggregate_id = $1 AND event_type = 'WorkerAssigned'",
    )
    .bind(winner)
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(
        winner_assigned, 1,
        "the booking belongs to the order that got the worker"
    );

    // Declining gives the time back: another of the overlapping orders can now have the worker.
    let declined = app
        .post(
            &format!("/api/v1/orders/{winner}/decline"),
            Some(&worker.token),
            &json!({"reason": "临时有事 / something came up"}),
        )
        .await;
    assert_eq!(declined.status(), StatusCode::OK);
    let other = orders
        .iter()
        .find(|order| order.to_string() != *winner)
        .expect("another order");
    let reassigned = app
        .post(
            &format!("/api/v1/orders/{other}/assignment"),
            Some(&admin.token),
            &json!({"worker_id": worker.id}),
        )
        .await;
    assert_eq!(reassigned.status(), StatusCode::OK);
    let overlapping = orders
        .iter()
        .find(|order| order.to_string() != *winner && *order != other)
        .expect("a third order");
    let refused = app
        .post(
            &format!("/api/v1/orders/{overlapping}/assignment"),
            Some(&admin.token),
            &json!({"worker_id": worker.id}),
        )
        .await;
    let problem = tests::assert_problem(refused, StatusCode::CONFLICT, "/problems/conflict").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("已有预约"),
        "{problem}"
    );
    app.stop().await;
}
