//! Delivers due reminders from the outbox to the in-app inbox, and by SMS or e-mail to the
//! login the person registered with.
//!
//! A run claims due rows for [`CLAIM`] under a claim id of its own, with `FOR UPDATE SKIP
//! LOCKED`, and puts them in the inbox in the same short transaction, so with any number of
//! server processes each reminder reaches the inbox exactly once. SMS and e-mail leave the
//! database after that commit, outside any transaction: a transaction held open through them
//! would hold back every projector (they read the log below the oldest transaction in
//! progress) for as long as a gateway takes. Just before its send, each reminder's claim is
//! renewed, only if it is still this run's and the reminder is still wanted: a run slowed down
//! by a gateway leaves what another run took over after its claim ran out, and a reminder
//! cancelled meanwhile is not sent. It is then marked delivered. A process that dies after
//! sending but before marking leaves the claim to run out and the next run sends again (at
//! least once for outside channels).

use sqlx::PgPool;
use uuid::Uuid;

use crate::services::Services;

/// How long a run's claim on a reminder lasts, from its claim and again from just before its
/// send: after it, a reminder not marked delivered (its run stopped or stalled) is claimed
/// again. Longer than a send may take (the gateways time out after 10 s).
pub const CLAIM: &str = "1 minute";

/// What a delivery run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub reminders: usize,
    pub sms: usize,
    pub email: usize,
}

/// One claimed reminder.
#[derive(sqlx::FromRow)]
struct Claimed {
    key: String,
    recipient: Uuid,
    kind: String,
    title: String,
    body: String,
    login: Option<String>,
    in_inbox: bool,
}

/// Delivers up to `limit` due reminders.
pub async fn deliver_due(services: &Services, limit: i64) -> anyhow::Result<Delivered> {
    let claim_id = Uuid::new_v4();
    let claimed = claim(&services.pool, claim_id, limit).await?;
    let mut delivered = Delivered::default();
    for reminder in claimed {
        let still_ours = sqlx::query(&format!(
            "UPDATE reminders SET claimed_until = now() + interval '{CLAIM}'
              WHERE reminder_key = $1 AND claim_id = $2
                AND delivered_at IS NULL AND cancelled_at IS NULL"
        ))
        .bind(&reminder.key)
        .bind(claim_id)
        .execute(&services.pool)
        .await?
        .rows_affected()
            == 1;
        if !still_ours {
            continue;
        }
        let mut channels = vec!["in_app"];
        let mut error = None;
        match reminder.login.as_deref() {
            Some(email) if email.contains('@') => {
                match services
                    .notifier
                    .email
                    .send(email, &reminder.title, &reminder.body)
                    .await
                {
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
                    .send(
                        phone,
                        &format!("【安家】{}：{}", reminder.title, reminder.body),
                    )
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
            tracing::warn!(reminder = %reminder.key, error = %error, "a reminder reached the inbox but not its outside channel");
        }
        sqlx::query(
            "UPDATE reminders SET delivered_at = now(), channels = $2, attempts = attempts + 1,
                    last_error = $3, claim_id = NULL, claimed_until = NULL
              WHERE reminder_key = $1 AND claim_id = $4",
        )
        .bind(&reminder.key)
        .bind(&channels)
        .bind(&error)
        .bind(claim_id)
        .execute(&services.pool)
        .await?;
        delivered.reminders += 1;
    }
    Ok(delivered)
}

/// Claims up to `limit` due reminders no run holds for `claim_id`, and puts those not there yet
/// in the inbox, in one transaction of three statements.
async fn claim(pool: &PgPool, claim_id: Uuid, limit: i64) -> anyhow::Result<Vec<Claimed>> {
    let mut transaction = pool.begin().await?;
    let claimed: Vec<Claimed> = sqlx::query_as(&format!(
        "WITH due AS (
              SELECT r.reminder_key, c.login
                FROM reminders r
                LEFT JOIN credentials c ON c.user_id = r.recipient_id
               WHERE r.delivered_at IS NULL AND r.cancelled_at IS NULL AND r.due_at <= now()
                 AND (r.claimed_until IS NULL OR r.claimed_until < now())
               ORDER BY r.due_at
               LIMIT $1
                 FOR UPDATE OF r SKIP LOCKED),
              claimed AS (
              UPDATE reminders r SET claim_id = $2, claimed_until = now() + interval '{CLAIM}'
                FROM due
               WHERE r.reminder_key = due.reminder_key
              RETURNING r.reminder_key AS key, r.recipient_id AS recipient, r.kind, r.title, r.body,
                        due.login, r.in_inbox_at IS NOT NULL AS in_inbox, r.due_at)
         SELECT key, recipient, kind, title, body, login, in_inbox FROM claimed ORDER BY due_at, key"
    ))
    .bind(limit)
    .bind(claim_id)
    .fetch_all(&mut *transaction)
    .await?;
    let new: Vec<&Claimed> = claimed
        .iter()
        .filter(|reminder| !reminder.in_inbox)
        .collect();
    if !new.is_empty() {
        sqlx::query(
            "INSERT INTO notifications (notification_id, recipient_id, kind, title, body)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[])",
        )
        .bind(new.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
        .bind(
            new.iter()
                .map(|reminder| reminder.recipient)
                .collect::<Vec<_>>(),
        )
        .bind(
            new.iter()
                .map(|reminder| reminder.kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            new.iter()
                .map(|reminder| reminder.title.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            new.iter()
                .map(|reminder| reminder.body.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *transaction)
        .await?;
        sqlx::query("UPDATE reminders SET in_inbox_at = now() WHERE reminder_key = ANY($1)")
            .bind(
                new.iter()
                    .map(|reminder| reminder.key.as_str())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(claimed)
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
