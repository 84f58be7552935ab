//! Private PostgreSQL servers built from the machine's own PostgreSQL binaries.
//!
//! Anjia needs a database in two situations where nobody handed it a `DATABASE_URL`:
//!
//! * `anjia serve` on a developer machine, which gets a *persistent* cluster under `./var/pg`
//!   (see [`ensure_persistent`] and [`stop_persistent`]). That server deliberately outlives the
//!   process so that a second `anjia serve` or `anjia rebuild-projection` can share it.
//! * The test suite, which gets a *throwaway* cluster per test process (see [`start_ephemeral`]).
//!   That server is tuned for speed rather than durability and disappears, data directory and
//!   all, when the owning process exits for any reason, including `SIGKILL`.
//!
//! PostgreSQL refuses to run as root, so when this process is root every server-side binary
//! (`initdb`, `postgres`, `pg_ctl`) runs as an unprivileged system user through `setpriv`; the
//! client tools (`psql`, `pg_isready`) run as whoever we are.

mod binaries;
mod ephemeral;
mod persistent;
mod process;
mod server_user;

#[cfg(test)]
mod tests;

pub use binaries::{find_binaries, Binaries};
pub use ephemeral::{start_ephemeral, EphemeralCluster};
pub use persistent::{
    ensure_persistent, status_persistent, stop_persistent, ClusterStatus, PersistentCluster,
};

/// The database role every cluster is initialised with; it is the cluster's superuser.
pub const SUPERUSER_NAME: &str = "anjia";

/// The application database that [`ensure_persistent`] guarantees to exist.
pub const APPLICATION_DATABASE_NAME: &str = "anjia";
