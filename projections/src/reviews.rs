//! The reviews read model: every review with its stars, text, tags, the worker's reply and
//! whether an admin hid it, by worker, for the public review lists and rating summaries.
//!
//! A review event names neither the worker nor the customer; the projection replays the order's
//! own stream up to the review to learn them, which costs one read per review (rare next to the
//! other events) and keeps this projection independent of every other read model.

use anyhow::Context;
use domain::order::{Order, OrderEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::projector::Projection;

pub struct ReviewsProjection;

#[async_trait::async_trait]
impl Projection for ReviewsProjection {
    fn name(&self) -> &'static str {
        "reviews"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["reviews"]
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE {schema}.reviews (
                order_id      uuid PRIMARY KEY,
                worker_id     uuid        NOT NULL,
                customer_id   uuid        NOT NULL,
                service       text        NOT NULL,
                quality       smallint    NOT NULL,
                attitude      smallint    NOT NULL,
                skill         smallint    NOT NULL,
                comment       text        NOT NULL,
                tags          text[]      NOT NULL,
                by_default    boolean     NOT NULL,
                reviewed_at   timestamptz NOT NULL,
                reply         text,
                replied_at    timestamptz,
                hidden        boolean     NOT NULL DEFAULT false,
                hidden_reason text,
                hidden_by     uuid,
                hidden_at     timestamptz
            );
            CREATE INDEX ON {schema}.reviews (worker_id, reviewed_at DESC, order_id) WHERE NOT hidden;"
        )
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        event: &StoredEvent,
    ) -> anyhow::Result<()> {
        if event.aggregate_type != "order"
            || !matches!(
                event.event_type.as_str(),
                "OrderReviewed" | "ReviewReplied" | "ReviewHidden"
            )
        {
            return Ok(());
        }
        let order_id: Uuid = event.aggregate_id.parse().context("order id")?;
        match event.decode::<OrderEvent>()? {
            OrderEvent::OrderReviewed {
                quality,
                attitude,
                skill,
                comment,
                reviewed_at,
                tags,
                by_default,
                ..
            } => {
                let order = order_before(connection, event).await?;
                let (Some(worker_id), Some(customer_id), Some(service)) =
                    (order.worker_id, order.customer_id, order.service)
                else {
                    anyhow::bail!(
                        "the reviewed order {order_id} has no worker, customer or service"
                    );
                };
                sqlx::query(&format!(
                    "INSERT INTO {schema}.reviews (order_id, worker_id, customer_id, service, quality,
                         attitude, skill, comment, tags, by_default, reviewed_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
                ))
                .bind(order_id)
                .bind(worker_id)
                .bind(customer_id)
                .bind(service.as_str())
                .bind(i16::from(quality))
                .bind(i16::from(attitude))
                .bind(i16::from(skill))
                .bind(comment)
                .bind(tags)
                .bind(by_default)
                .bind(reviewed_at)
                .execute(&mut *connection)
                .await?;
            }
            OrderEvent::ReviewReplied {
                reply, replied_at, ..
            } => {
                sqlx::query(&format!(
                    "UPDATE {schema}.reviews SET reply = $2, replied_at = $3 WHERE order_id = $1"
                ))
                .bind(order_id)
                .bind(reply)
                .bind(replied_at)
                .execute(&mut *connection)
                .await?;
            }
            OrderEvent::ReviewHidden {
                by,
                reason,
                hidden_at,
                ..
            } => {
                sqlx::query(&format!(
                    "UPDATE {schema}.reviews SET hidden = true, hidden_reason = $2, hidden_by = $3,
                         hidden_at = $4 WHERE order_id = $1"
                ))
                .bind(order_id)
                .bind(reason)
                .bind(by.id)
                .bind(hidden_at)
                .execute(&mut *connection)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The order as its events before `event` leave it.
async fn order_before(connection: &mut PgConnection, event: &StoredEvent) -> anyhow::Result<Order> {
    use cqrs_es::Aggregate;
    let payloads: Vec<(serde_json::Value, String)> = sqlx::query_as(
        "SELECT payload::jsonb, event_version FROM events
          WHERE aggregate_type = 'order' AND aggregate_id = $1 AND sequence < $2
          ORDER BY sequence",
    )
    .bind(&event.aggregate_id)
    .bind(event.sequence)
    .fetch_all(&mut *connection)
    .await?;
    let mut order = Order::default();
    for (payload, version) in payloads {
        let event_type = payload
            .as_object()
            .and_then(|variant| variant.keys().next())
            .cloned()
            .unwrap_or_default();
        let payload = domain::upcast::upcast(&event_type, &version, payload)
            .map_err(|why| anyhow::anyhow!("an order event: {why}"))?;
        order.apply(serde_json::from_value(payload).context("an order event")?);
    }
    Ok(order)
}
