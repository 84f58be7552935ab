//! The database schema, as sqlx migrations embedded in the binary.
//!
//! The event store's tables follow postgres-es's layout, extended with a global position, the
//! writing transaction id, the recording time and a per-stream hash chain. Read-model tables are
//! not here: each projection creates its own, per generation, so it can be rebuilt beside the live one.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;

static MIGRATOR: Migrator = sqlx::migrate!("./sql");

/// Applies every migration not yet applied. Safe to call from several processes at once:
/// sqlx serialises them with an advisory lock.
pub async fn run(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

/// The migrations this build knows, for `anjia migrate` to report.
pub fn known() -> impl Iterator<Item = (i64, &'static str)> {
    MIGRATOR
        .iter()
        .map(|migration| (migration.version, &*migration.description))
}
