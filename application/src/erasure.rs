//! `anjia erase-person`: the right to be forgotten in an append-only log.
//!
//! The person's data key is destroyed, so every value sealed under it, in the event log and
//! anywhere else, can no longer be read. Their sign-in data is scrubbed, and every read model is
//! rebuilt from the log so none keeps a copy it opened earlier. Orders, amounts and the hash
//! chain are untouched: the events stay, only their sealed parts go dark.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct ErasureReport {
    pub person_id: Uuid,
    /// False when the person had no key (nothing of theirs was ever sealed).
    pub key_destroyed: bool,
    pub sign_in_scrubbed: bool,
    pub sessions_revoked: u64,
    pub messages_deleted: u64,
    pub projections_rebuilt: Vec<projections::RebuildReport>,
}

pub async fn erase_person(
    pool: &PgPool,
    vault: &vault::Vault,
    person_id: Uuid,
) -> anyhow::Result<ErasureReport> {
    let key_destroyed = vault.erase(person_id).await?;
    let mut transaction = pool.begin().await?;
    let login: Option<String> =
        sqlx::query_scalar("SELECT login FROM credentials WHERE user_id = $1 FOR UPDATE")
            .bind(person_id)
            .fetch_optional(&mut *transaction)
            .await?;
    let mut messages_deleted = 0;
    if let Some(login) = &login {
        // The login is a phone number or an e-mail address: it goes, and nobody can sign in.
        sqlx::query("UPDATE credentials SET login = 'erased:' || user_id::text, password_hash = '!' WHERE user_id = $1")
            .bind(person_id)
            .execute(&mut *transaction)
            .await?;
        for table in ["verification_codes", "outbox_messages"] {
            messages_deleted += sqlx::query(&format!("DELETE FROM {table} WHERE destination = $1"))
                .bind(login)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
        }
        sqlx::query("DELETE FROM sign_in_failures WHERE scope = 'login' AND subject = $1")
            .bind(login)
            .execute(&mut *transaction)
            .await?;
    }
    let sessions_revoked = sqlx::query(
        "UPDATE sessions SET revoked_at = COALESCE(revoked_at, now()), revoked_reason = COALESCE(revoked_reason, 'person erased'),
                client_ip = NULL, user_agent = NULL
          WHERE user_id = $1",
    )
    .bind(person_id)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    // A WeChat identifier points at the person too.
    sqlx::query("DELETE FROM external_identities WHERE user_id = $1")
        .bind(person_id)
        .execute(&mut *transaction)
        .await?;
    // Stored responses may echo what the person sent.
    sqlx::query("DELETE FROM idempotency WHERE caller = $1")
        .bind(person_id.to_string())
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    let mut projections_rebuilt = Vec::new();
    for projection in projections::all_projections(vault) {
        projections_rebuilt.push(projections::rebuild(pool, projection.as_ref()).await?);
    }
    Ok(ErasureReport {
        person_id,
        key_destroyed,
        sign_in_scrubbed: login.is_some(),
        sessions_revoked,
        messages_deleted,
        projections_rebuilt,
    })
}
