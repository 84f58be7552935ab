//! Writes reminders into the `reminders` outbox as order events arrive: new order for a
//! worker, order accepted, service starting in 60 and in 15 minutes, service over, and the
//! review invitation. Each has a key (order, kind, recipient), so replaying the log (a
//! rebuild, a crash before the checkpoint) never writes one twice; the delivery job sends each
//! once. Reminders that no longer make sense (the order was cancelled, the worker changed, the
//! review was written) are cancelled before they are due.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use domain::order::OrderEvent;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::projector::Projection;

pub struct RemindersProjection;

/// How long after the service ends the review invitation goes out.
pub const REVIEW_INVITATION_AFTER_MINUTES: i64 = 60;

#[async_trait::async_trait]
impl Projection for RemindersProjection {
    fn name(&self) -> &'static str {
        "reminders"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["reminder_orders", "reminder_interviews"]
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE {schema}.reminder_orders (
                order_id    uuid PRIMARY KEY,
                customer_id uuid        NOT NULL,
                service     text        NOT NULL,
                starts_at   timestamptz NOT NULL
            );
            CREATE TABLE {schema}.reminder_interviews (
                interview_id uuid PRIMARY KEY,
                customer_id  uuid NOT NULL,
                worker_id    uuid NOT NULL,
                service      text NOT NULL
            );"
        )
    }

    /// Placements, most of a busy log, are remembered together: one statement for each run of
    /// them. Every other event is taken in turn after them, as before.
    async fn apply_batch(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        let mut placed = Vec::new();
        for event in events {
            match event.aggregate_type.as_str() {
                "order" => {
                    let order_id: Uuid = event.aggregate_id.parse().context("order id")?;
                    let decoded: OrderEvent = event.decode()?;
                    if let OrderEvent::OrderPlaced { booking, .. } = &decoded {
                        placed.push((
                            order_id,
                            booking.customer_id,
                            booking.service.as_str(),
                            booking.scheduled_start,
                        ));
                        continue;
                    }
                    if !reminds(&decoded) {
                        continue;
                    }
                    remember(connection, schema, &placed).await?;
                    placed.clear();
                    order_reminders(connection, schema, event, order_id, decoded).await?;
                }
                // Interviews keep tables of their own.
                "interview" => interview_reminders(connection, schema, event).await?,
                _ => {}
            }
        }
        remember(connection, schema, &placed).await
    }
}

/// Remembers placed orders: whose they are, what and when.
async fn remember(
    connection: &mut PgConnection,
    schema: &str,
    placed: &[(Uuid, Uuid, &str, DateTime<Utc>)],
) -> anyhow::Result<()> {
    if placed.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO {schema}.reminder_orders (order_id, customer_id, service, starts_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[])
         ON CONFLICT DO NOTHING"
    ))
    .bind(placed.iter().map(|order| order.0).collect::<Vec<_>>())
    .bind(placed.iter().map(|order| order.1).collect::<Vec<_>>())
    .bind(placed.iter().map(|order| order.2).collect::<Vec<_>>())
    .bind(placed.iter().map(|order| order.3).collect::<Vec<_>>())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Whether an order's event writes, moves or cancels reminders: the others need not even
/// look the order up.
fn reminds(event: &OrderEvent) -> bool {
    matches!(
        event,
        OrderEvent::WorkerAssigned { .. }
            | OrderEvent::OrderAccepted { .. }
            | OrderEvent::ServiceFinished { .. }
            | OrderEvent::WorkerArrived { .. }
            | OrderEvent::ServiceStarted { .. }
            | OrderEvent::OrderReviewed { .. }
            | OrderEvent::OrderRescheduled { .. }
            | OrderEvent::OrderCancelled { .. }
            | OrderEvent::OrderDisputed { .. }
            | OrderEvent::AssignmentDeclined { .. }
            | OrderEvent::AssignmentExpired { .. }
            | OrderEvent::AssignmentWithdrawn { .. }
    )
}

/// The reminders one event of a placed order writes, moves or cancels (see `reminds`).
async fn order_reminders(
    connection: &mut PgConnection,
    schema: &str,
    event: &StoredEvent,
    order_id: Uuid,
    decoded: OrderEvent,
) -> anyhow::Result<()> {
    let Some(row) = sqlx::query(&format!(
        "SELECT customer_id, service, starts_at FROM {schema}.reminder_orders WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(&mut *connection)
    .await?
    else {
        return Ok(());
    };
    let order = OrderFacts {
        order_id,
        customer_id: row.get("customer_id"),
        service: domain::ServiceCode::parse(row.get::<&str, _>("service"))
            .map(|service| service.spec().name_zh)
            .unwrap_or("服务"),
        service_en: domain::ServiceCode::parse(row.get::<&str, _>("service"))
            .map(|service| service.spec().name_en)
            .unwrap_or("service"),
        starts_at: row.get("starts_at"),
    };
    let at = event.recorded_at;
    match decoded {
        // A worker who grabbed an order needs no news of it.
        OrderEvent::WorkerAssigned { assigned_by, .. }
            if assigned_by.role == domain::Role::Worker => {}
        OrderEvent::WorkerAssigned { worker_id, .. } => {
            write(
                connection,
                &order,
                Reminder {
                    kind: "order_offered",
                    recipient: (worker_id, "worker"),
                    due_at: at,
                    title: "新订单 / New order".into(),
                    body: format!(
                        "您有一个新的{}订单（{}），请尽快确认。/ A new {} order ({}) is waiting for you to accept.",
                        order.service, order.local_start(), order.service_en, order.local_start()
                    ),
                },
            )
            .await?;
        }
        OrderEvent::OrderAccepted { worker_id, .. } => {
            write(
                connection,
                &order,
                Reminder {
                    kind: "order_accepted",
                    recipient: (order.customer_id, "customer"),
                    due_at: at,
                    title: "服务人员已接单 / Your order was accepted".into(),
                    body: format!(
                        "您的{}订单已有服务人员接单，服务时间 {}。/ A worker accepted your {} order for {}.",
                        order.service, order.local_start(), order.service_en, order.local_start()
                    ),
                },
            )
            .await?;
            for minutes in [60, 15] {
                let due_at = order.starts_at - Duration::minutes(minutes);
                if due_at < at {
                    continue;
                }
                for recipient in [(order.customer_id, "customer"), (worker_id, "worker")] {
                    write(
                        connection,
                        &order,
                        Reminder {
                            kind: if minutes == 60 { "starts_in_60" } else { "starts_in_15" },
                            recipient,
                            due_at,
                            title: format!("服务将在 {minutes} 分钟后开始 / Service starts in {minutes} minutes"),
                            body: format!(
                                "{}将于 {} 开始。/ The {} starts at {}.",
                                order.service, order.local_start(), order.service_en, order.local_start()
                            ),
                        },
                    )
                    .await?;
                }
            }
        }
        OrderEvent::ServiceFinished { finished_at, .. } => {
            write(
                connection,
                &order,
                Reminder {
                    kind: "service_over",
                    recipient: (order.customer_id, "customer"),
                    due_at: at,
                    title: "服务已完成 / Service finished".into(),
                    body: format!(
                        "您的{}服务已完成，感谢使用安家。/ Your {} is finished. Thank you for using Anjia.",
                        order.service, order.service_en
                    ),
                },
            )
            .await?;
            write(
                connection,
                &order,
                Reminder {
                    kind: "review_invitation",
                    recipient: (order.customer_id, "customer"),
                    due_at: finished_at + Duration::minutes(REVIEW_INVITATION_AFTER_MINUTES),
                    title: "邀请您评价 / Please review your service".into(),
                    body: format!(
                        "请为本次{}服务评分：服务质量、态度与技能。/ Please rate your {}: quality, attitude and skill.",
                        order.service, order.service_en
                    ),
                },
            )
            .await?;
        }
        OrderEvent::WorkerArrived { .. } | OrderEvent::ServiceStarted { .. } => {
            for kind in ["starts_in_60", "starts_in_15"] {
                cancel(connection, order_id, None, Some(kind), at).await?;
            }
        }
        OrderEvent::OrderReviewed { .. } => {
            cancel(connection, order_id, None, Some("review_invitation"), at).await?;
        }
        // The start reminders move with the start, and say the new time.
        OrderEvent::OrderRescheduled { start, .. } => {
            let before = order.local_start();
            let after = OrderFacts {
                starts_at: start,
                ..order
            }
            .local_start();
            sqlx::query(&format!(
                "UPDATE {schema}.reminder_orders SET starts_at = $2 WHERE order_id = $1"
            ))
            .bind(order_id)
            .bind(start)
            .execute(&mut *connection)
            .await?;
            for (kind, minutes) in [("starts_in_60", 60), ("starts_in_15", 15)] {
                sqlx::query(
                    "UPDATE reminders SET due_at = $3, title = replace(title, $4, $5),
                            body = replace(body, $4, $5)
                      WHERE order_id = $1 AND kind = $2
                        AND delivered_at IS NULL AND cancelled_at IS NULL",
                )
                .bind(order_id)
                .bind(kind)
                .bind(start - Duration::minutes(minutes))
                .bind(&before)
                .bind(&after)
                .execute(&mut *connection)
                .await?;
            }
        }
        OrderEvent::OrderCancelled { .. } | OrderEvent::OrderDisputed { .. } => {
            cancel(connection, order_id, None, None, at).await?;
        }
        OrderEvent::AssignmentDeclined { worker_id, .. }
        | OrderEvent::AssignmentExpired { worker_id, .. }
        | OrderEvent::AssignmentWithdrawn { worker_id, .. } => {
            cancel(connection, order_id, Some(worker_id), None, at).await?;
            // The customer's start reminders wait for the next worker's acceptance.
            cancel(connection, order_id, Some(order.customer_id), None, at).await?;
        }
        _ => {}
    }
    Ok(())
}

struct OrderFacts {
    order_id: Uuid,
    customer_id: Uuid,
    service: &'static str,
    service_en: &'static str,
    starts_at: DateTime<Utc>,
}

impl OrderFacts {
    /// The start in Beijing time, as people read it.
    fn local_start(&self) -> String {
        beijing_time(self.starts_at)
    }
}

/// A moment in Beijing time, as people read it.
fn beijing_time(at: DateTime<Utc>) -> String {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    at.with_timezone(&offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

struct Reminder {
    kind: &'static str,
    recipient: (Uuid, &'static str),
    due_at: DateTime<Utc>,
    title: String,
    body: String,
}

async fn write(
    connection: &mut PgConnection,
    order: &OrderFacts,
    reminder: Reminder,
) -> anyhow::Result<()> {
    let key = format!(
        "{}:{}:{}",
        order.order_id, reminder.kind, reminder.recipient.0
    );
    sqlx::query(
        "INSERT INTO reminders (reminder_key, order_id, kind, recipient_id, recipient_role,
                                due_at, title, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (reminder_key) DO NOTHING",
    )
    .bind(key)
    .bind(order.order_id)
    .bind(reminder.kind)
    .bind(reminder.recipient.0)
    .bind(reminder.recipient.1)
    .bind(reminder.due_at)
    .bind(reminder.title)
    .bind(reminder.body)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Cancels undelivered reminders of an order, for one recipient or kind or all of them.
async fn cancel(
    connection: &mut PgConnection,
    order_id: Uuid,
    recipient: Option<Uuid>,
    kind: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE reminders SET cancelled_at = $4
          WHERE order_id = $1 AND delivered_at IS NULL AND cancelled_at IS NULL
            AND ($2::uuid IS NULL OR recipient_id = $2)
            AND ($3::text IS NULL OR kind = $3)",
    )
    .bind(order_id)
    .bind(recipient)
    .bind(kind)
    .bind(at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Interview reminders: both parties an hour before, and when the call opens (ten minutes
/// before). A new time proposed, a decline, a cancellation or an outcome cancels those not yet
/// sent; accepting a new time writes new ones (the key carries the start).
async fn interview_reminders(
    connection: &mut PgConnection,
    schema: &str,
    event: &StoredEvent,
) -> anyhow::Result<()> {
    use domain::interview::InterviewEvent;
    let interview_id: Uuid = event.aggregate_id.parse().context("interview id")?;
    let decoded: InterviewEvent = event.decode()?;
    let at = event.recorded_at;
    match decoded {
        InterviewEvent::InterviewRequested {
            customer_id,
            worker_id,
            service,
            ..
        } => {
            sqlx::query(&format!(
                "INSERT INTO {schema}.reminder_interviews (interview_id, customer_id, worker_id, service)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            ))
            .bind(interview_id)
            .bind(customer_id)
            .bind(worker_id)
            .bind(service.as_str())
            .execute(&mut *connection)
            .await?;
        }
        InterviewEvent::InterviewAccepted { start, .. } => {
            let Some(row) = sqlx::query(&format!(
                "SELECT customer_id, worker_id, service FROM {schema}.reminder_interviews
                  WHERE interview_id = $1"
            ))
            .bind(interview_id)
            .fetch_optional(&mut *connection)
            .await?
            else {
                return Ok(());
            };
            let service = domain::ServiceCode::parse(row.get::<&str, _>("service"));
            let (zh, en) = service
                .map(|service| (service.spec().name_zh, service.spec().name_en))
                .unwrap_or(("服务", "service"));
            let local = beijing_time(start);
            let recipients = [
                (row.get::<Uuid, _>("customer_id"), "customer"),
                (row.get::<Uuid, _>("worker_id"), "worker"),
            ];
            for (kind, minutes) in [("interview_in_60", 60), ("interview_open", 10)] {
                let due_at = start - Duration::minutes(minutes);
                if due_at < at {
                    continue;
                }
                let (title, body) = if minutes == 60 {
                    (
                        "视频面试将在 1 小时后开始 / Video interview in one hour".to_owned(),
                        format!(
                            "{zh}视频面试将于 {local} 开始。/ The {en} video interview starts at {local}."
                        ),
                    )
                } else {
                    (
                        "视频面试可以进入了 / Your video interview is open".to_owned(),
                        format!(
                            "{zh}视频面试将于 {local} 开始，现在可以进入通话。/ The {en} video interview starts at {local}; you can join the call now."
                        ),
                    )
                };
                for (recipient, role) in recipients {
                    sqlx::query(
                        "INSERT INTO reminders (reminder_key, interview_id, kind, recipient_id,
                                                recipient_role, due_at, title, body)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                         ON CONFLICT (reminder_key) DO NOTHING",
                    )
                    .bind(format!(
                        "interview:{interview_id}:{kind}:{recipient}:{}",
                        start.timestamp()
                    ))
                    .bind(interview_id)
                    .bind(kind)
                    .bind(recipient)
                    .bind(role)
                    .bind(due_at)
                    .bind(&title)
                    .bind(&body)
                    .execute(&mut *connection)
                    .await?;
                }
            }
        }
        InterviewEvent::InterviewTimeProposed { .. }
        | InterviewEvent::InterviewDeclined { .. }
        | InterviewEvent::InterviewCancelled { .. }
        | InterviewEvent::InterviewConcluded { .. } => {
            sqlx::query(
                "UPDATE reminders SET cancelled_at = $2
                  WHERE interview_id = $1 AND delivered_at IS NULL AND cancelled_at IS NULL",
            )
            .bind(interview_id)
            .bind(at)
            .execute(&mut *connection)
            .await?;
        }
        InterviewEvent::ParticipantJoined { .. } => {}
    }
    Ok(())
}
