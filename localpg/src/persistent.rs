//! The persistent development cluster behind `anjia serve` when no `DATABASE_URL` is given.
//!
//! Unlike the ephemeral cluster, this server is started with `pg_ctl` (which detaches it into its
//! own session) and deliberately keeps running after we exit, so that a second `anjia serve` or
//! `anjia rebuild-projection` can share it. Its files, for a cluster directory `var/pg`:
//!
//! * `var/pg/` — the PostgreSQL data directory;
//! * `var/pg.password` — the `anjia` role's random password (mode 0600);
//! * `var/pg.port` — the port, chosen once at creation (54329 when it was free);
//! * `var/pg.log` — the server log.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::binaries::{find_binaries, Binaries};
use crate::process::{
    append_settings, choose_free_loopback_port, describe_output, log_tail, loopback_port_is_free,
    random_hex, run_to_success, server_answers, wait_until_ready,
};
use crate::server_user::ServerUser;
use crate::{APPLICATION_DATABASE_NAME, SUPERUSER_NAME};

/// The port a new persistent cluster takes when it is free: memorable, and away from 5432 so a
/// system-wide PostgreSQL can coexist.
const PREFERRED_PORT: u16 = 54329;

/// How long `pg_ctl` may take to start or stop the server; generous because a durable cluster
/// may need crash recovery after an unclean shutdown.
const PG_CTL_TIMEOUT_SECONDS: &str = "120";

/// A running persistent cluster with password authentication for the `anjia` role.
pub struct PersistentCluster {
    port: u16,
    password: String,
    data_dir: PathBuf,
}

impl PersistentCluster {
    /// A connection URL for `database` as the `anjia` role, password included.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER_NAME}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's data directory, as an absolute path.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Written by hand so that the password never ends up in logs.
impl std::fmt::Debug for PersistentCluster {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PersistentCluster")
            .field("port", &self.port)
            .field("password", &"<redacted>")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

/// Makes sure the persistent cluster in `dir` exists, runs and has the `anjia` database.
///
/// * Initialised and running (`postmaster.pid` present and the port answers): reused as is.
/// * Initialised but stopped: started with `pg_ctl start -w`, logging to `dir/../pg.log`.
/// * Absent: created with `initdb` (scram-sha-256 authentication, role `anjia`, a random password
///   stored in `<dir>.password`, a port stored in `<dir>.port`, listening on 127.0.0.1 only,
///   durable default settings) and then started.
///
/// The server keeps running after this process exits; see [`stop_persistent`].
pub fn ensure_persistent(dir: &Path) -> Result<PersistentCluster> {
    let binaries = find_binaries()?;
    let server_user = ServerUser::determine()?;
    let layout = PersistentLayout::for_cluster_dir(dir)?;
    std::fs::create_dir_all(&layout.parent_dir)
        .with_context(|| format!("could not create {}", layout.parent_dir.display()))?;
    server_user.ensure_can_reach(&layout.parent_dir)?;

    if !layout.is_initialised()? {
        initialise(&binaries, &server_user, &layout)?;
    }
    let port = layout.read_recorded_port()?.with_context(|| {
        format!(
            "the cluster in {} exists but its port file {} is missing; recreate it with the port \
             from its postgresql.conf",
            layout.data_dir.display(),
            layout.port_path.display()
        )
    })?;
    let password = layout.read_password()?;

    if layout.server_is_running(&binaries, port)? {
        tracing::debug!(port, data_dir = %layout.data_dir.display(), "reusing the running persistent PostgreSQL");
    } else {
        start(&binaries, &server_user, &layout, port)?;
    }
    wait_until_ready(&binaries, port, &layout.log_path, || Ok(()))?;

    let cluster = PersistentCluster {
        port,
        password,
        data_dir: layout.data_dir,
    };
    ensure_database_exists(&binaries, &cluster, APPLICATION_DATABASE_NAME)?;
    Ok(cluster)
}

/// What is known of the persistent cluster in `dir`, found without starting it.
pub struct ClusterStatus {
    /// The server's data directory, as an absolute path.
    pub data_dir: PathBuf,
    /// Where the server logs.
    pub log: PathBuf,
    /// Whether `initdb` has made it.
    pub initialised: bool,
    /// Whether its server answers on its port.
    pub running: bool,
    /// The loopback port it listens on, once made.
    pub port: Option<u16>,
    password: Option<String>,
}

impl ClusterStatus {
    /// A connection URL for `database` as the `anjia` role, password included; `None` before
    /// the cluster is made.
    pub fn url(&self, database: &str) -> Option<String> {
        Some(format!(
            "postgres://{SUPERUSER_NAME}:{}@127.0.0.1:{}/{database}",
            self.password.as_deref()?,
            self.port?
        ))
    }
}

/// Written by hand so that the password never ends up in logs.
impl std::fmt::Debug for ClusterStatus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClusterStatus")
            .field("data_dir", &self.data_dir)
            .field("initialised", &self.initialised)
            .field("running", &self.running)
            .field("port", &self.port)
            .finish()
    }
}

/// Whether the persistent cluster in `dir` exists and runs, its port and log; nothing is
/// started or changed.
pub fn status_persistent(dir: &Path) -> Result<ClusterStatus> {
    let layout = PersistentLayout::for_cluster_dir(dir)?;
    let initialised = layout.is_initialised()?;
    let port = if initialised {
        layout.read_recorded_port()?
    } else {
        None
    };
    let running = match port {
        Some(port) if layout.pid_file_exists()? => server_answers(&find_binaries()?, port),
        _ => false,
    };
    let password = if initialised {
        Some(layout.read_password()?)
    } else {
        None
    };
    Ok(ClusterStatus {
        data_dir: layout.data_dir,
        log: layout.log_path,
        initialised,
        running,
        port,
        password,
    })
}

/// Stops the persistent cluster in `dir` with a fast shutdown (`pg_ctl stop -m fast`).
/// A cluster that is not running, or does not exist, counts as stopped.
pub fn stop_persistent(dir: &Path) -> Result<()> {
    let layout = PersistentLayout::for_cluster_dir(dir)?;
    if !layout.pid_file_exists()? {
        return Ok(());
    }
    let binaries = find_binaries()?;
    let server_user = ServerUser::determine()?;
    let pg_ctl_output = server_user
        .command(&binaries.program_path("pg_ctl"))
        .args([
            "stop",
            "--wait",
            "--mode",
            "fast",
            "--timeout",
            PG_CTL_TIMEOUT_SECONDS,
        ])
        .arg("--pgdata")
        .arg(&layout.data_dir)
        .stdin(Stdio::null())
        .output()
        .context("could not run pg_ctl stop")?;
    if pg_ctl_output.status.success() || !layout.pid_file_exists()? {
        return Ok(());
    }
    // A stale postmaster.pid left by a crash or reboot names a process that no longer exists;
    // the server is stopped, which is what the caller asked for, and the next start ignores it.
    if String::from_utf8_lossy(&pg_ctl_output.stderr).contains("No such process") {
        return Ok(());
    }
    bail!(
        "pg_ctl stop failed for {}: {}",
        layout.data_dir.display(),
        describe_output(&pg_ctl_output)
    )
}

/// Where the persistent cluster's files live, derived from the cluster directory.
struct PersistentLayout {
    data_dir: PathBuf,
    parent_dir: PathBuf,
    password_path: PathBuf,
    port_path: PathBuf,
    log_path: PathBuf,
}

impl PersistentLayout {
    fn for_cluster_dir(cluster_dir: &Path) -> Result<PersistentLayout> {
        // Absolute paths because the server binaries run with `/` as their working directory.
        let data_dir = std::path::absolute(cluster_dir)
            .with_context(|| format!("could not make {} absolute", cluster_dir.display()))?;
        let (Some(parent_dir), Some(directory_name)) = (data_dir.parent(), data_dir.file_name())
        else {
            bail!(
                "{} cannot hold a PostgreSQL cluster: it has no parent directory",
                data_dir.display()
            );
        };
        let sibling_path = |suffix: &str| {
            let mut sibling_name = directory_name.to_os_string();
            sibling_name.push(suffix);
            parent_dir.join(sibling_name)
        };
        Ok(PersistentLayout {
            password_path: sibling_path(".password"),
            port_path: sibling_path(".port"),
            log_path: parent_dir.join("pg.log"),
            parent_dir: parent_dir.to_path_buf(),
            data_dir,
        })
    }

    fn is_initialised(&self) -> Result<bool> {
        let version_path = self.data_dir.join("PG_VERSION");
        version_path
            .try_exists()
            .with_context(|| format!("could not check for {}", version_path.display()))
    }

    fn pid_file_exists(&self) -> Result<bool> {
        let pid_file_path = self.data_dir.join("postmaster.pid");
        pid_file_path
            .try_exists()
            .with_context(|| format!("could not check for {}", pid_file_path.display()))
    }

    fn server_is_running(&self, binaries: &Binaries, port: u16) -> Result<bool> {
        Ok(self.pid_file_exists()? && server_answers(binaries, port))
    }

    fn read_recorded_port(&self) -> Result<Option<u16>> {
        match std::fs::read_to_string(&self.port_path) {
            Ok(port_text) => port_text.trim().parse().map(Some).with_context(|| {
                format!("{} does not hold a port number", self.port_path.display())
            }),
            Err(read_error) if read_error.kind() == ErrorKind::NotFound => Ok(None),
            Err(read_error) => Err(read_error)
                .with_context(|| format!("could not read {}", self.port_path.display())),
        }
    }

    fn read_password(&self) -> Result<String> {
        let password_text = std::fs::read_to_string(&self.password_path).with_context(|| {
            format!(
                "could not read the cluster password from {} (without it nobody can log in; \
                 delete {} to start over with an empty cluster)",
                self.password_path.display(),
                self.data_dir.display()
            )
        })?;
        Ok(password_text.trim().to_owned())
    }
}

fn initialise(
    binaries: &Binaries,
    server_user: &ServerUser,
    layout: &PersistentLayout,
) -> Result<()> {
    prepare_empty_data_dir(&layout.data_dir)?;
    server_user.hand_over(&layout.data_dir)?;

    let port = match layout.read_recorded_port()? {
        Some(recorded_port) => recorded_port,
        None => {
            let chosen_port = if loopback_port_is_free(PREFERRED_PORT) {
                PREFERRED_PORT
            } else {
                choose_free_loopback_port()?
            };
            write_private_file(&layout.port_path, &format!("{chosen_port}\n"))?;
            chosen_port
        }
    };

    let password = random_hex(24)?;
    write_private_file(&layout.password_path, &format!("{password}\n"))?;
    // initdb runs as the server user, who must not be able to read our copy of the password in
    // general, so it gets a short-lived copy of its own.
    let initdb_password_path = layout.parent_dir.join(format!(
        "{}.initdb-password",
        layout
            .data_dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    ));
    write_private_file(&initdb_password_path, &password)?;
    let initdb_result = server_user.hand_over(&initdb_password_path).and_then(|()| {
        run_to_success(
            server_user
                .command(&binaries.program_path("initdb"))
                .arg("--pgdata")
                .arg(&layout.data_dir)
                .args(["--username", SUPERUSER_NAME, "--auth", "scram-sha-256"])
                .arg("--pwfile")
                .arg(&initdb_password_path)
                .args(["--encoding", "UTF8", "--locale", "C"]),
            "initdb for the persistent cluster",
        )
    });
    let removal_result = std::fs::remove_file(&initdb_password_path);
    initdb_result?;
    removal_result
        .with_context(|| format!("could not remove {}", initdb_password_path.display()))?;

    // The unix socket is disabled because its default directory is often not writable for us;
    // everything talks TCP on loopback. Room for several server processes' pools (64 each by
    // default) beside the tools.
    append_settings(
        &layout.data_dir,
        &format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
             max_connections = 300\n"
        ),
    )?;
    tracing::info!(port, data_dir = %layout.data_dir.display(), "created a persistent PostgreSQL cluster");
    Ok(())
}

/// Creates the data directory (mode 0700, as PostgreSQL demands) or accepts an empty existing
/// one. A non-empty directory without `PG_VERSION` is refused rather than overwritten.
fn prepare_empty_data_dir(data_dir: &Path) -> Result<()> {
    match std::fs::read_dir(data_dir) {
        Ok(mut existing_entries) => {
            if existing_entries.next().is_some() {
                bail!(
                    "{} exists and is not empty but holds no PostgreSQL cluster (no PG_VERSION); \
                     move it aside or delete it",
                    data_dir.display()
                );
            }
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("could not restrict {}", data_dir.display()))
        }
        Err(read_error) if read_error.kind() == ErrorKind::NotFound => DirBuilder::new()
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("could not create {}", data_dir.display())),
        Err(read_error) => {
            Err(read_error).with_context(|| format!("could not read {}", data_dir.display()))
        }
    }
}

/// Writes a file only its owner can read (mode 0600), also when it already existed.
fn write_private_file(file_path: &Path, contents: &str) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file_path)
        .and_then(|mut private_file| {
            private_file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            private_file.write_all(contents.as_bytes())
        })
        .with_context(|| format!("could not write {}", file_path.display()))
}

fn start(
    binaries: &Binaries,
    server_user: &ServerUser,
    layout: &PersistentLayout,
    port: u16,
) -> Result<()> {
    // pg_ctl opens the log as the server user, so the file must exist and belong to that user.
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(&layout.log_path)
        .with_context(|| format!("could not create {}", layout.log_path.display()))?;
    server_user.hand_over(&layout.log_path)?;

    tracing::info!(port, data_dir = %layout.data_dir.display(), log = %layout.log_path.display(), "starting the persistent PostgreSQL");
    let pg_ctl_output = server_user
        .command(&binaries.program_path("pg_ctl"))
        .args(["start", "--wait", "--timeout", PG_CTL_TIMEOUT_SECONDS])
        .arg("--pgdata")
        .arg(&layout.data_dir)
        .arg("--log")
        .arg(&layout.log_path)
        // Statement statistics, which `anjia bench` reads to tell what each command costs.
        .args(
            binaries
                .has_pg_stat_statements()
                .then_some(["-o", "-c shared_preload_libraries=pg_stat_statements"])
                .into_iter()
                .flatten(),
        )
        // A process group of its own keeps a Ctrl-C aimed at `anjia serve` away from pg_ctl
        // while it waits; pg_ctl itself puts the server into a new session.
        .process_group(0)
        .stdin(Stdio::null())
        .output()
        .context("could not run pg_ctl start")?;
    if pg_ctl_output.status.success() {
        return Ok(());
    }
    // Another `anjia` process may have started the same cluster a moment earlier, in which case
    // our pg_ctl fails but the server is exactly what we want.
    if layout.server_is_running(binaries, port)? {
        return Ok(());
    }
    bail!(
        "pg_ctl start failed for {}: {}; server log ({}) ends with:\n{}",
        layout.data_dir.display(),
        describe_output(&pg_ctl_output),
        layout.log_path.display(),
        log_tail(&layout.log_path)
    )
}

/// Creates `database_name` unless it exists. The name is a fixed identifier from this crate,
/// not user input, which is why it is interpolated into SQL.
fn ensure_database_exists(
    binaries: &Binaries,
    cluster: &PersistentCluster,
    database_name: &str,
) -> Result<()> {
    let database_exists = || -> Result<bool> {
        let query_output = run_to_success(
            psql_command(binaries, cluster)
                .arg("--command")
                .arg(format!(
                    "SELECT 1 FROM pg_database WHERE datname = '{database_name}'"
                )),
            "checking for the application database with psql",
        )?;
        Ok(String::from_utf8_lossy(&query_output.stdout).trim() == "1")
    };
    if database_exists()? {
        return Ok(());
    }
    let creation_result = run_to_success(
        psql_command(binaries, cluster)
            .arg("--command")
            .arg(format!("CREATE DATABASE \"{database_name}\"")),
        "creating the application database with psql",
    );
    // A concurrent `anjia` process may have won the race; only the database's existence counts.
    match creation_result {
        Ok(_) => Ok(()),
        Err(_) if database_exists()? => Ok(()),
        Err(creation_error) => Err(creation_error),
    }
}

/// `psql` against the cluster's `postgres` database: no `.psqlrc`, unaligned tuples only, and
/// stopping on the first error.
fn psql_command(binaries: &Binaries, cluster: &PersistentCluster) -> Command {
    let mut psql = Command::new(binaries.program_path("psql"));
    psql.args(["--no-psqlrc", "--no-align", "--tuples-only", "--quiet"])
        .args(["--set", "ON_ERROR_STOP=1", "--host", "127.0.0.1"])
        .args(["--username", SUPERUSER_NAME, "--dbname", "postgres"])
        .arg("--port")
        .arg(cluster.port.to_string())
        .env("PGPASSWORD", &cluster.password)
        .env("PGCONNECT_TIMEOUT", "10");
    psql
}
