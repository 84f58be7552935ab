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
