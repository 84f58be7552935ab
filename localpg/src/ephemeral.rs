//! Throwaway clusters for tests: fast, trust-authenticated, and gone when their owner is gone.
//!
//! The hard requirement is cleanup when the owning process dies without running destructors
//! (a `static` is never dropped, and `SIGKILL` runs nothing at all). Without `unsafe` we cannot
//! use `prctl(PR_SET_PDEATHSIG)`, so the server runs under a small `sh` watchdog instead. The
//! watchdog's standard input is a pipe whose only writer is this process. The kernel closes that
//! writer however this process ends, the watchdog's `read` then returns end-of-file, and the
//! watchdog sends `SIGINT` (PostgreSQL's fast shutdown) to the server, waits for it and deletes
//! the whole cluster directory. Dropping an [`EphemeralCluster`] closes the pipe early and waits
//! for the same sequence to finish.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::binaries::{find_binaries, Binaries};
use crate::process::{
    append_settings, choose_free_loopback_port, log_tail, random_hex, run_to_success,
    wait_until_ready,
};
use crate::server_user::ServerUser;
use crate::SUPERUSER_NAME;

/// The watchdog, run as `sh -c WATCHDOG_SCRIPT watchdog LOG_PATH CLUSTER_ROOT SERVER_COMMAND...`.
///
/// * Terminal signals are ignored so that only the closing pipe ends the cluster; the server
///   installs its own handlers, so inheriting the ignored dispositions does not affect it.
/// * Standard input moves to descriptor 3 because POSIX shells give background jobs `/dev/null`
///   as standard input; the reader job names descriptor 3 explicitly, and the server does not
///   inherit it at all.
/// * When the server exits on its own (e.g. it could not bind its port) the watchdog leaves a
///   marker file, so the starting process can stop waiting and read the log; the directory is
///   only deleted once the owner has let go of the pipe.
const WATCHDOG_SCRIPT: &str = r#"
trap '' INT HUP TERM QUIT
log_path=$1
cluster_root=$2
shift 2
exec 3<&0 </dev/null >>"$log_path" 2>&1
"$@" 3<&- &
server_pid=$!
{ read -r _ignored_line <&3; kill -INT "$server_pid" 2>/dev/null; } &
reader_pid=$!
exec 3<&-
wait "$server_pid"
echo "$?" >"$cluster_root/server-exited"
wait "$reader_pid"
rm -rf -- "$cluster_root"
"#;

/// The marker file the watchdog writes into the cluster root once the server process has exited.
const SERVER_EXITED_MARKER_NAME: &str = "server-exited";

/// How many times a start is retried when another process grabbed our chosen port first.
const PORT_CONFLICT_ATTEMPT_COUNT: usize = 3;

/// How long dropping a cluster waits for the fast shutdown and the directory removal.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// How often dropping a cluster checks whether the watchdog has finished; shutdown usually takes
/// well under a second, so a short interval keeps tests snappy without burning the CPU.
const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Settings tuned for tests: durability is worthless for a cluster that is deleted anyway.
/// The unix socket is disabled because the default socket directory is often not writable;
/// everything talks TCP on loopback.
const TEST_TUNED_SETTINGS: &str = "\
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 400
shared_buffers = 128MB
";

/// A running throwaway PostgreSQL server with trust authentication for the `anjia` superuser.
///
/// The server stops and its directory is deleted when this value is dropped, or — if it never
/// is — when the owning process exits.
#[derive(Debug)]
pub struct EphemeralCluster {
    port: u16,
    cluster_root: PathBuf,
    watchdog: Child,
    /// Our end of the watchdog's lifeline; `None` once shutdown has begun.
    watchdog_lifeline: Option<ChildStdin>,
}

impl EphemeralCluster {
    /// A connection URL for `database` as the `anjia` superuser (no password: trust auth).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER_NAME}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's data directory; it no longer exists once the cluster is gone.
    pub fn data_dir(&self) -> PathBuf {
        self.cluster_root.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.cluster_root.join("server.log")
    }

    /// Closes the lifeline and waits (boundedly) for the watchdog to stop the server and delete
    /// the directory. Safe to call repeatedly.
    fn shut_down(&mut self) {
        // Dropping our write end is exactly what the kernel does when this process exits.
        drop(self.watchdog_lifeline.take());
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_watchdog_status)) => return,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(SHUTDOWN_POLL_INTERVAL),
                Ok(None) => {
                    tracing::warn!(
                        cluster_root = %self.cluster_root.display(),
                        "ephemeral PostgreSQL did not shut down within {SHUTDOWN_DEADLINE:?}; leaving its watchdog to finish"
                    );
                    return;
                }
                Err(wait_error) => {
                    tracing::warn!(%wait_error, "could not wait for the ephemeral PostgreSQL watchdog");
                    return;
                }
            }
        }
    }
}

impl Drop for EphemeralCluster {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Starts a throwaway cluster: a fresh directory under the system temp dir, a free loopback
/// port, trust authentication for the `anjia` superuser and settings tuned for tests.
/// Only the `postgres` database exists; tests create their own.
pub fn start_ephemeral() -> Result<EphemeralCluster> {
    let binaries = find_binaries()?;
    let server_user = ServerUser::determine()?;
    let mut attempt_number = 1;
    loop {
        match start_once(&binaries, &server_user) {
            Ok(cluster) => return Ok(cluster),
            Err(StartFailure::PortTaken(port_error))
                if attempt_number < PORT_CONFLICT_ATTEMPT_COUNT =>
            {
                tracing::debug!(%port_error, attempt_number, "port taken by another process; retrying with a new one");
                attempt_number += 1;
            }
            Err(StartFailure::PortTaken(start_error) | StartFailure::Other(start_error)) => {
                return Err(start_error)
            }
        }
    }
}

enum StartFailure {
    /// Someone else bound the port between our probe and the server's bind; worth retrying.
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for StartFailure {
    fn from(start_error: anyhow::Error) -> Self {
        StartFailure::Other(start_error)
    }
}

fn start_once(
    binaries: &Binaries,
    server_user: &ServerUser,
) -> Result<EphemeralCluster, StartFailure> {
    let cluster_root = create_unique_cluster_root()?;
    // Until the watchdog owns the directory, removing it after a failure is our job.
    let mut removal_guard = RemoveDirectoryOnDrop(Some(cluster_root.clone()));
    server_user.hand_over(&cluster_root)?;
    server_user.ensure_can_reach(&cluster_root)?;

    let data_dir = cluster_root.join("data");
    DirBuilder::new()
        .mode(0o700)
        .create(&data_dir)
        .with_context(|| format!("could not create {}", data_dir.display()))?;
    server_user.hand_over(&data_dir)?;
    run_to_success(
        server_user
            .command(&binaries.program_path("initdb"))
            .arg("--pgdata")
            .arg(&data_dir)
            .args(["--username", SUPERUSER_NAME, "--auth", "trust"])
            .args(["--encoding", "UTF8", "--locale", "C", "--no-sync"]),
        "initdb for an ephemeral cluster",
    )
    .map_err(StartFailure::Other)?;

    let port = choose_free_loopback_port()?;
    append_settings(&data_dir, &format!("{TEST_TUNED_SETTINGS}port = {port}\n"))?;

    let log_path = cluster_root.join("server.log");
    let server_command = server_user.command(&binaries.program_path("postgres"));
    let mut watchdog_command = Command::new("/bin/sh");
    watchdog_command
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("localpg-watchdog")
        .arg(&log_path)
        .arg(&cluster_root)
        .arg(server_command.get_program())
        .args(server_command.get_args())
        .arg("-D")
        .arg(&data_dir)
        .current_dir("/")
        // Its own process group keeps a Ctrl-C aimed at `cargo test` away from the server;
        // the test process dying closes the lifeline, which shuts the server down in order.
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut watchdog = watchdog_command
        .spawn()
        .context("could not start the PostgreSQL watchdog shell /bin/sh")?;
    let watchdog_lifeline = watchdog.stdin.take();
    removal_guard.disarm();
    let cluster = EphemeralCluster {
        port,
        cluster_root,
        watchdog,
        watchdog_lifeline,
    };

    let exited_marker_path = cluster.cluster_root.join(SERVER_EXITED_MARKER_NAME);
    let readiness = wait_until_ready(binaries, port, &cluster.log_path(), || {
        if exited_marker_path.exists() {
            Err(anyhow!("the postgres process ended"))
        } else {
            Ok(())
        }
    });
    match readiness {
        Ok(()) => {
            tracing::debug!(port, data_dir = %cluster.data_dir().display(), "ephemeral PostgreSQL is ready");
            Ok(cluster)
        }
        Err(readiness_error) => {
            let server_log = log_tail(&cluster.log_path());
            // Dropping `cluster` here stops the watchdog and deletes the directory.
            if server_log.contains("could not bind")
                || server_log.contains("Address already in use")
            {
                Err(StartFailure::PortTaken(readiness_error))
            } else {
                Err(StartFailure::Other(readiness_error))
            }
        }
    }
}

/// Creates `<temp>/anjia-localpg-<pid>-<sequence>-<random>` with mode 0700; the random part
/// keeps a reused pid from colliding with a directory a killed process left behind.
fn create_unique_cluster_root() -> Result<PathBuf> {
    static SEQUENCE_NUMBER: AtomicU64 = AtomicU64::new(0);
    let temp_dir = std::env::temp_dir();
    let directory_name = format!(
        "anjia-localpg-{}-{}-{}",
        std::process::id(),
        SEQUENCE_NUMBER.fetch_add(1, Ordering::Relaxed),
        random_hex(4)?
    );
    let cluster_root = temp_dir.join(directory_name);
    DirBuilder::new()
        .mode(0o700)
        .create(&cluster_root)
        .with_context(|| format!("could not create {}", cluster_root.display()))?;
    Ok(cluster_root)
}

struct RemoveDirectoryOnDrop(Option<PathBuf>);

impl RemoveDirectoryOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveDirectoryOnDrop {
    fn drop(&mut self) {
        if let Some(directory) = self.0.take() {
            if let Err(removal_error) = std::fs::remove_dir_all(&directory) {
                tracing::warn!(%removal_error, directory = %directory.display(), "could not remove a failed cluster directory");
            }
        }
    }
}
