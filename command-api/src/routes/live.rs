//! One live channel per person (Server-Sent Events): the events of the orders they are party
//! to, as they are committed, in the log's commit-safe order. Each message's id is its place in
//! the log (`<transaction id>-<position>`); a client that reconnects with `Last-Event-ID` gets
//! everything after it and nothing twice.
//!
//! Messages carry no personal data: the order, the event's type and sequence and when it was
//! recorded. The client reads the order itself for details.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use domain::order::OrderEvent;
use domain::{Actor, Role};
use futures::Stream;
use projections::log::{read_after, Checkpoint};
use serde::Serialize;
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/live", get(live))
}

#[derive(Debug, Serialize)]
struct LiveMessage {
    order_id: String,
    event_type: String,
    sequence: i64,
    recorded_at: chrono::DateTime<chrono::Utc>,
    /// For a location report: where the worker is and when they should arrive.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<serde_json::Value>,
}

fn parse_last_event_id(headers: &HeaderMap) -> Result<Option<Checkpoint>, ApiError> {
    let Some(raw) = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(None);
    };
    let bad = || {
        ApiError::BadRequest(
            "Last-Event-ID 格式应为 <xid>-<position> / Last-Event-ID must be <xid>-<position>"
                .into(),
        )
    };
    crate::positions::parse(raw).map(Some).ok_or_else(bad)
}

/// Where "now" is in the log: the last event no running transaction can precede.
async fn head(pool: &sqlx::PgPool) -> Result<Checkpoint, ApiError> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, position FROM events
          WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((xid, position)) => Checkpoint {
            transaction_id: xid
                .parse()
                .map_err(|_| ApiError::Internal(anyhow::anyhow!("a transaction id")))?,
            position,
        },
        None => Checkpoint::default(),
    })
}

/// The orders this person is party to, as far as the read model knows now.
async fn known_orders(pool: &sqlx::PgPool, actor: Actor) -> Result<HashSet<String>, ApiError> {
    let column = match actor.role {
        Role::Customer => "customer_id",
        Role::Worker => "worker_id",
        _ => return Ok(HashSet::new()),
    };
    let ids: Vec<Uuid> = sqlx::query_scalar(&format!(
        "SELECT order_id FROM read_orders WHERE {column} = $1"
    ))
    .bind(actor.id)
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(|id| id.to_string()).collect())
}

/// Live order events for the signed-in person (all orders for admins), resumable.
#[utoipa::path(get, path = "/api/v1/live", tag = "orders", security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses((status = 200, description = "Server-Sent Events: one message per order event; `id` is `<xid>-<position>`, `event` the event type, `data` its JSON",
                  content_type = "text/event-stream", body = String),
              (status = 400, body = crate::error::Problem)))]
pub async fn live(
    State(state): State<AppState>,
    context: CommandContext,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let actor = context.actor.ok_or(ApiError::Unauthenticated)?;
    let start = match parse_last_event_id(&headers)? {
        Some(checkpoint) => checkpoint,
        None => head(&state.pool).await?,
    };
    let orders = known_orders(&state.pool, actor).await?;
    let stream = futures::stream::unfold(
        (state, actor, start, orders, Vec::<Event>::new()),
        |(state, actor, mut checkpoint, mut orders, mut pending)| async move {
            loop {
                // A shutting-down server ends the stream; the client resumes elsewhere.
                if *state.shutdown.borrow() {
                    return None;
                }
                if let Some(event) = pending.pop() {
                    return Some((Ok(event), (state, actor, checkpoint, orders, pending)));
                }
                let batch = match state.pool.acquire().await {
                    Ok(mut connection) => read_after(&mut connection, checkpoint, 200)
                        .await
                        .unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                let mut ready = Vec::new();
                for stored in batch {
                    checkpoint = Checkpoint {
                        transaction_id: stored.transaction_id,
                        position: stored.position,
                    };
                    if stored.aggregate_type != "order" {
                        continue;
                    }
                    // A person joins an order's story when it is placed for them or they are
                    // assigned to it, and a worker leaves it when it is taken from them.
                    let mut position = None;
                    let mut leaving = false;
                    if let Ok(decoded) = stored.decode::<OrderEvent>() {
                        match decoded {
                            OrderEvent::WorkerLocationReported { location, eta, .. } => {
                                position = Some(serde_json::json!({
                                    "latitude": location.latitude,
                                    "longitude": location.longitude,
                                    "system": location.system.as_str(),
                                    "eta": eta,
                                }));
                            }
                            OrderEvent::AssignmentDeclined { worker_id, .. }
                            | OrderEvent::AssignmentExpired { worker_id, .. }
                            | OrderEvent::AssignmentWithdrawn { worker_id, .. }
                                if worker_id == actor.id =>
                            {
                                leaving = true;
                            }
                            OrderEvent::OrderPlaced { booking, .. }
                                if booking.customer_id == actor.id =>
                            {
                                orders.insert(stored.aggregate_id.clone());
                            }
                            OrderEvent::WorkerAssigned { worker_id, .. }
                                if worker_id == actor.id =>
                            {
                                orders.insert(stored.aggregate_id.clone());
                            }
                            _ => {}
                        }
                    }
                    if actor.role != Role::Admin && !orders.contains(&stored.aggregate_id) {
                        continue;
                    }
                    if leaving {
                        // The worker hears that it was taken from them, and nothing after.
                        orders.remove(&stored.aggregate_id);
                    }
                    let message = LiveMessage {
                        order_id: stored.aggregate_id.clone(),
                        event_type: stored.event_type.clone(),
                        sequence: stored.sequence,
                        recorded_at: stored.recorded_at,
                        position,
                    };
                    let data = serde_json::to_string(&message).unwrap_or_default();
                    ready.push(
                        Event::default()
                            .id(format!("{}-{}", stored.transaction_id, stored.position))
                            .event(stored.event_type.clone())
                            .data(data),
                    );
                }
                // Popped from the end: keep log order.
                ready.reverse();
                pending = ready;
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
