//! The platform's own secrets, kept in the database so every process shares them.

/// A random 32-byte secret of the platform's (token keys, the sandbox's signing key, the room
/// token key), made once and shared by every process through `server_secrets`.
pub async fn server_secret(pool: &sqlx::PgPool, name: &str) -> Result<Vec<u8>, sqlx::Error> {
    let fresh: [u8; 32] = rand::random();
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(name)
        .bind(fresh.as_slice())
        .execute(pool)
        .await?;
    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
}
