//! One live channel per person (Server-Sent Events): the events of the orders they are party
//! to, as they are committed, in the log's commit-safe order. Each message's id is its place in
//! the log (`<transaction id>-<position>`); a client that reconnects with `Last-Event-ID` gets
//! everything after it and nothing twice.
//!
//! Messages carry no personal data: the order, the event's type and sequence and when it was
//! recorded. The client reads the order itself for details.
//!
//! Workers also hear the grab hall: an order entering the grab stage, and what then takes it
//! out of the hall (assigned, cancelled, moved to another stage), so their hall page updates
//! without polling. Whether they may grab it is decided by `GET /api/v1/offers` as ever.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use domain::order::OrderEvent;
use domain::{Actor, Role};
use futures::Stream;
use projections::log::{read_after, Checkpoint};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Verified;
use crate::error::ApiError;
use crate::state::AppState;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(live))
}

/// Live streams one person may hold open at once, across every process (a phone and a browser
/// or two, with room for a reconnect that overlaps the old stream).
pub const STREAMS_PER_PERSON: usize = 3;

/// How far back a stream may resume: an older `Last-Event-ID` answers 410 and the client
/// reloads what it shows, rather than the server rescanning the log from there.
pub const RESUME_WINDOW: chrono::Duration = chrono::Duration::hours(1);

/// How often an open stream checks that its session was not revoked.
const SESSION_CHECK: Duration = Duration::from_secs(5);

/// One open stream, registered in `live_streams` so that a person's streams are counted in
/// every process, until it is dropped (the client left or the stream ended).
struct StreamSlot {
    pool: sqlx::PgPool,
    stream_id: Uuid,
}

impl StreamSlot {
    /// Registers a stream for `person`, unless they hold `STREAMS_PER_PERSON` already: the
    /// person's lock makes parallel opens count one after another, in any process.
    async fn open(pool: &sqlx::PgPool, person: Uuid) -> Result<Option<StreamSlot>, ApiError> {
        let mut transaction = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('live-streams:' || $1, 0))")
            .bind(person.to_string())
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "DELETE FROM live_streams WHERE person_id = $1 AND seen_at < now() - interval '20 seconds'",
        )
        .bind(person)
        .execute(&mut *transaction)
        .await?;
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM live_streams WHERE person_id = $1")
                .bind(person)
                .fetch_one(&mut *transaction)
                .await?;
        if open >= STREAMS_PER_PERSON as i64 {
            return Ok(None);
        }
        let stream_id = Uuid::now_v7();
        sqlx::query("INSERT INTO live_streams (stream_id, person_id) VALUES ($1, $2)")
            .bind(stream_id)
            .bind(person)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(Some(StreamSlot {
            pool: pool.clone(),
            stream_id,
        }))
    }

    /// Says the stream is still open.
    async fn renew(&self) {
        if let Err(error) =
            sqlx::query("UPDATE live_streams SET seen_at = now() WHERE stream_id = $1")
                .bind(self.stream_id)
                .execute(&self.pool)
                .await
        {
            tracing::warn!(%error, "a live stream's registration was not renewed");
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let (pool, stream_id) = (self.pool.clone(), self.stream_id);
        // Gone at once when a runtime is at hand; otherwise it lapses after 20 s.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = sqlx::query("DELETE FROM live_streams WHERE stream_id = $1")
                    .bind(stream_id)
                    .execute(&pool)
                    .await;
            });
        }
    }
}

/// Refuses a resume point the stream would have to rescan the log from: one no event holds,
/// or one older than the resume window.
async fn check_resume(pool: &sqlx::PgPool, from: Checkpoint) -> Result<(), ApiError> {
    if from == Checkpoint::default() {
        return Err(ApiError::ResumeTooOld);
    }
    let recorded: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT recorded_at FROM events WHERE position = $1 AND transaction_id::text = $2",
    )
    .bind(from.position)
    .bind(from.transaction_id.to_string())
    .fetch_optional(pool)
    .await?;
    match recorded {
        Some(recorded_at) if recorded_at > chrono::Utc::now() - RESUME_WINDOW => Ok(()),
        _ => Err(ApiError::ResumeTooOld),
    }
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
    let bad = || ApiError::BadRequest(Text::new("live.last-event-id-must-xid"));
    crate::positions::parse(raw).map(Some).ok_or_else(bad)
}

/// Where "now" is in the log: the last event no running transaction can precede.
async fn head(pool: &sqlx::PgPool) -> Result<Checkpoint, ApiError> {
    let row: Option<(String, i64)> = sqlx::query_as(&format!(
        "SELECT transaction_id::text, position FROM events
          WHERE transaction_id < {}
          ORDER BY transaction_id DESC, position DESC LIMIT 1",
        projections::log::HORIZON
    ))
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

/// The orders in the grab hall now, which every worker's stream follows until they leave it.
async fn hall_orders(pool: &sqlx::PgPool, actor: Actor) -> Result<HashSet<String>, ApiError> {
    if actor.role != Role::Worker {
        return Ok(HashSet::new());
    }
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT order_id FROM read_dispatch_orders WHERE status = 'dispatching' AND stage = $1",
    )
    .bind(domain::dispatch::DispatchStage::Grab.as_str())
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(|id| id.to_string()).collect())
}

/// What an open stream carries from one message to the next.
struct Following {
    state: AppState,
    verified: Verified,
    checkpoint: Checkpoint,
    orders: HashSet<String>,
    hall: HashSet<String>,
    pending: Vec<Event>,
    session_checked: std::time::Instant,
    slot: StreamSlot,
}

/// Live order events for the signed-in person (all orders for admins), resumable within an
/// hour. A stream ends when its access token expires or its session is revoked (the client
/// reconnects with a fresh token and `Last-Event-ID`); one person holds at most three at once,
/// in all processes together.
#[utoipa::path(get, path = "/api/v1/live", tag = "orders", security(("bearer" = ["customer", "worker", "admin"])),
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (from the last hour)")),
    responses((status = 200, description = "Server-Sent Events: one message per order event; `id` is `<xid>-<position>`, `event` the event type, `data` its JSON",
                  content_type = "text/event-stream", body = String),
              (status = 400, body = crate::error::Problem),
              (status = 410, description = "The resume point is older than the last hour: reload, then follow without Last-Event-ID", body = crate::error::Problem),
              (status = 429, body = crate::error::Problem)))]
pub async fn live(
    State(state): State<AppState>,
    verified: Verified,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let actor = verified.actor;
    let start = match parse_last_event_id(&headers)? {
        Some(checkpoint) => {
            check_resume(&state.pool, checkpoint).await?;
            checkpoint
        }
        None => head(&state.pool).await?,
    };
    let slot = StreamSlot::open(&state.pool, actor.id)
        .await?
        .ok_or_else(|| ApiError::Busy {
            detail: Text::new("live.most-live-streams-open-once")
                .with("STREAMS_PER_PERSON", STREAMS_PER_PERSON),
            retry_after_seconds: 5,
        })?;
    // Which orders the person is party to is read from the views, which must have applied the
    // log up to where the stream starts: an order placed a moment before would otherwise be in
    // neither the views nor the stream. Past the bounded wait the stream starts anyway.
    crate::positions::wait_for_views(&state, start).await?;
    let orders = known_orders(&state.pool, actor).await?;
    let hall = hall_orders(&state.pool, actor).await?;
    let following = Following {
        state,
        verified,
        checkpoint: start,
        orders,
        hall,
        pending: Vec::new(),
        session_checked: std::time::Instant::now(),
        slot,
    };
    let stream = futures::stream::unfold(following, |mut following| async move {
        loop {
            let Following {
                state,
                verified,
                checkpoint,
                orders,
                hall,
                pending,
                session_checked,
                slot,
            } = &mut following;
            let actor = verified.actor;
            // A shutting-down server ends the stream; the client resumes elsewhere. So does an
            // expired token, or a session signed out or revoked since the stream opened.
            if *state.shutdown.borrow() || chrono::Utc::now() >= verified.expires_at {
                return None;
            }
            if session_checked.elapsed() >= SESSION_CHECK {
                *session_checked = std::time::Instant::now();
                slot.renew().await;
                if !crate::auth::session_is_live(state, *verified)
                    .await
                    .unwrap_or(true)
                {
                    return None;
                }
            }
            if let Some(event) = pending.pop() {
                return Some((Ok(event), following));
            }
            let batch = match state.pool.acquire().await {
                Ok(mut connection) => read_after(&mut connection, *checkpoint, 200)
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
                *checkpoint = Checkpoint {
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
                // The grab hall, for workers: an order entering it, and what takes it out.
                let mut hall_news = false;
                let decoded = stored.decode::<OrderEvent>().ok();
                if actor.role == Role::Worker {
                    if let Some(event) = &decoded {
                        let in_hall = hall.contains(&stored.aggregate_id);
                        match event {
                            OrderEvent::DispatchStageEntered {
                                stage: domain::dispatch::DispatchStage::Grab,
                                ..
                            } => {
                                hall.insert(stored.aggregate_id.clone());
                                hall_news = true;
                            }
                            OrderEvent::DispatchStageEntered { .. }
                            | OrderEvent::WorkerAssigned { .. }
                            | OrderEvent::OrderCancelled { .. }
                                if in_hall =>
                            {
                                hall.remove(&stored.aggregate_id);
                                hall_news = true;
                            }
                            _ => {}
                        }
                    }
                }
                if let Some(decoded) = decoded {
                    match decoded {
                        OrderEvent::WorkerLocationReported { location, eta, .. } => {
                            // Opened for the people following the order; the cell once the
                            // worker's key is gone.
                            let opened = state
                                .vault
                                .open(&location.sealed)
                                .await
                                .ok()
                                .flatten()
                                .as_deref()
                                .and_then(domain::values::SealedPoint::parse)
                                .unwrap_or(location.cell);
                            position = Some(serde_json::json!({
                                "latitude": opened.latitude,
                                "longitude": opened.longitude,
                                "system": opened.system.as_str(),
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
                        OrderEvent::WorkerAssigned { worker_id, .. } if worker_id == actor.id => {
                            orders.insert(stored.aggregate_id.clone());
                        }
                        _ => {}
                    }
                }
                if actor.role != Role::Admin && !orders.contains(&stored.aggregate_id) && !hall_news
                {
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
            *pending = ready;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
