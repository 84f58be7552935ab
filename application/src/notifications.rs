//! The in-app inbox: a message to one person, or to everyone with a role.

use sqlx::PgPool;
use uuid::Uuid;

/// Who a notification is for.
pub enum Recipient {
    Person(Uuid),
    Role(&'static str),
}

/// Writes one message to the inbox: inside the current unit when there is one (so it is sent
/// only if what it tells of is saved), alone otherwise.
pub async fn notify(
    pool: &PgPool,
    recipient: Recipient,
    kind: &str,
    title: &str,
    body: &str,
) -> crate::Result<()> {
    let (person, role) = match recipient {
        Recipient::Person(id) => (Some(id), None),
        Recipient::Role(role) => (None, Some(role)),
    };
    crate::commands::write(
        pool,
        sqlx::query(
            "INSERT INTO notifications (notification_id, recipient_id, recipient_role, kind, title, body) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(person)
        .bind(role)
        .bind(kind)
        .bind(title)
        .bind(body),
    )
    .await?;
    Ok(())
}
