//! Delivers due reminders from the outbox to the in-app inbox, and by SMS or e-mail to the
//! login the person registered with.
//!
//! Each run claims due rows with `FOR UPDATE SKIP LOCKED` and marks them delivered in the same
//! transaction as the in-app notification, so with any number of server processes each
//! reminder reaches the inbox exactly once. SMS and e-mail leave the database: a process that
//! dies after sending but before committing would send again on the next run (at least once
//! for external channels), and the reminder key goes with them for the gateway to de-duplicate.

use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::services::Services;

/// What a delivery run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub reminders: usize,
    pub sms: usize,
    pub email: usize,
}

/// Delivers up to `limit` due reminders.
pub async fn deliver_due(services: &Services, limit: i64) -> anyhow::Result<Delivered> {
    let mut transaction = services.pool.begin().await?;
    let rows = sqlx::query(
        "SELECT r.reminder_key, r.recipient_id, r.recipient_role, r.kind, r.title, r.body,
                c.login
           FROM reminders r
           LEFT JOIN credentials c ON c.user_id = r.recipient_id
          WHERE r.delivered_at IS NULL AND r.cancelled_at IS NULL AND r.due_at <= now()
          ORDER BY r.due_at
          LIMIT $1
          FOR UPDATE OF r SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *transaction)
    .await?;
    let mut delivered = Delivered::default();
    for row in rows {
        let key: String = row.get("reminder_key");
        let recipient: Uuid = row.get("recipient_id");
        let kind: String = row.get("kind");
        let title: String = row.get("title");
        let body: String = row.get("body");
        let login: Option<String> = row.get("login");
        sqlx::query(
            "INSERT INTO notifications (notification_id, recipient_id, kind, title, body)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(recipient)
        .bind(&kind)
        .bind(&title)
        .bind(&body)
        .execute(&mut *transaction)
        .await?;
        let mut channels = vec!["in_app"];
        let mut error = None;
        match login.as_deref() {
            Some(email) if email.contains('@') => {
                match services.notifier.email.send(email, &title, &body).await {
                    Ok(()) => {
                        channels.push("email");
                        delivered.email += 1;
                    }
                    Err(cause) => error = Some(format!("email: {cause:#}")),
                }
            }
            Some(phone) if domain::PhoneNumber::parse(phone).is_ok() => {
                match services
                    .notifier
                    .sms
                    .send(phone, &format!("【安家】{title}：{body}"))
                    .await
                {
                    Ok(()) => {
                        channels.push("sms");
                        delivered.sms += 1;
                    }
                    Err(cause) => error = Some(format!("sms: {cause:#}")),
                }
            }
            _ => {}
        }
        if let Some(error) = &error {
            tracing::warn!(reminder = %key, error = %error, "a reminder reached the inbox but not its outside channel");
        }
        sqlx::query(
            "UPDATE reminders SET delivered_at = now(), channels = $2, attempts = attempts + 1,
                    last_error = $3
              WHERE reminder_key = $1",
        )
        .bind(&key)
        .bind(&channels)
        .bind(&error)
        .execute(&mut *transaction)
        .await?;
        delivered.reminders += 1;
    }
    transaction.commit().await?;
    Ok(delivered)
}

/// The reminders of one order, for tests and the admins.
pub async fn of_order(
    pool: &PgPool,
    order_id: Uuid,
) -> sqlx::Result<Vec<(String, Uuid, bool, bool)>> {
    sqlx::query_as(
        "SELECT kind, recipient_id, delivered_at IS NOT NULL, cancelled_at IS NOT NULL
           FROM reminders WHERE order_id = $1 ORDER BY due_at, kind, recipient_id",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await
}
