//! Tests against real PostgreSQL servers started from the machine's binaries.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{random_hex, running_as_root, server_answers};
use crate::{
    ensure_persistent, find_binaries, start_ephemeral, stop_persistent, APPLICATION_DATABASE_NAME,
    SUPERUSER_NAME,
};

/// How long a server may take to disappear after it was told to.
const DISAPPEARANCE_DEADLINE: Duration = Duration::from_secs(30);

/// Set in the environment of the child process that owns a cluster and then gets killed.
const OWNER_HELPER_ENVIRONMENT_VARIABLE: &str = "LOCALPG_TEST_OWNER_HELPER";

/// The line prefix through which the helper child reports its cluster to the parent test.
const OWNER_HELPER_READY_PREFIX: &str = "LOCALPG-HELPER-READY";

/// Polls `condition` until it holds or the deadline passes; returns whether it held.
fn holds_within(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let give_up_at = Instant::now() + deadline;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= give_up_at {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs one query through `psql` over TCP and returns its trimmed, unaligned output.
fn query_with_psql(
    port: u16,
    database: &str,
    password: Option<&str>,
    sql: &str,
) -> anyhow::Result<String> {
    let binaries = find_binaries()?;
    let mut psql = Command::new(binaries.program_path("psql"));
    psql.args(["-X", "-h", "127.0.0.1", "-U", SUPERUSER_NAME, "-Atc", sql])
        .arg("-p")
        .arg(port.to_string())
        .arg("-d")
        .arg(database)
        // Never prompt: a missing password must fail, not hang the test.
        .arg("--no-password")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null());
    if let Some(password) = password {
        psql.env("PGPASSWORD", password);
    }
    let psql_output = psql.output()?;
    anyhow::ensure!(
        psql_output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&psql_output.stderr)
    );
    Ok(String::from_utf8_lossy(&psql_output.stdout)
        .trim()
        .to_owned())
}

fn port_answers(port: u16) -> bool {
    server_answers(&find_binaries().expect("PostgreSQL binaries"), port)
}

#[test]
fn an_ephemeral_cluster_answers_queries_and_vanishes_when_dropped() {
    let cluster = start_ephemeral().expect("an ephemeral cluster starts");
    let port = cluster.port();
    let data_dir = cluster.data_dir();
    assert_eq!(
        cluster.url("postgres"),
        format!("postgres://anjia@127.0.0.1:{port}/postgres")
    );
    assert_eq!(
        query_with_psql(port, "postgres", None, "select 1").expect("the query runs"),
        "1"
    );
    assert_eq!(
        query_with_psql(port, "postgres", None, "show fsync").expect("the query runs"),
        "off",
        "the test tuning is applied"
    );
    assert!(data_dir.join("PG_VERSION").exists());

    drop(cluster);

    assert!(
        holds_within(DISAPPEARANCE_DEADLINE, || !port_answers(port)),
        "the server on port {port} still answers after the cluster was dropped"
    );
    assert!(
        holds_within(DISAPPEARANCE_DEADLINE, || !data_dir.exists()
            && !data_dir.parent().is_some_and(Path::exists)),
        "{} still exists after the cluster was dropped",
        data_dir.display()
    );
}

#[test]
fn an_ephemeral_cluster_vanishes_when_its_owning_process_is_killed() {
    let mut owner_process = Command::new(std::env::current_exe().expect("the test binary path"))
        .args([
            "--exact",
            "tests::helper_process_that_owns_an_ephemeral_cluster_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(OWNER_HELPER_ENVIRONMENT_VARIABLE, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the owner process starts");
    let owner_stdout = owner_process.stdout.take().expect("piped stdout");
    // The helper exits (closing its stdout) if it cannot start a cluster, so this cannot hang.
    // libtest prints `test <name> ... ` before running the helper, so the report may share a
    // line with that text; only what follows the prefix matters.
    let ready_report = BufReader::new(owner_stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|output_line| {
            output_line
                .split_once(OWNER_HELPER_READY_PREFIX)
                .map(|(_, report)| report.trim().to_owned())
        })
        .expect("the owner process reports its cluster");
    let mut ready_fields = ready_report.split(' ');
    let port: u16 = ready_fields
        .next()
        .and_then(|port_text| port_text.parse().ok())
        .expect("a port");
    let data_dir = PathBuf::from(ready_fields.next().expect("a data directory"));
    assert_eq!(
        query_with_psql(port, "postgres", None, "select 1").expect("the query runs"),
        "1"
    );

    // SIGKILL: the owner runs no destructors and no exit handlers at all.
    owner_process
        .kill()
        .expect("the owner process can be killed");
    owner_process.wait().expect("the owner process is reaped");

    assert!(
        holds_within(DISAPPEARANCE_DEADLINE, || !port_answers(port)),
        "the server on port {port} still answers after its owner was killed"
    );
    assert!(
        holds_within(DISAPPEARANCE_DEADLINE, || !data_dir.exists()
            && !data_dir.parent().is_some_and(Path::exists)),
        "{} still exists after its owner was killed",
        data_dir.display()
    );
}

/// Not a test of its own (it returns at once unless the killed-owner test runs it in a child
/// process, with the variable set). That child starts a cluster, reports it on stdout and then waits to be killed without ever dropping the cluster.
#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the parent test tells its child process what to do through the environment"
)]
fn helper_process_that_owns_an_ephemeral_cluster_until_killed() {
    if std::env::var_os(OWNER_HELPER_ENVIRONMENT_VARIABLE).is_none() {
        return;
    }
    let cluster = start_ephemeral().expect("an ephemeral cluster starts");
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{OWNER_HELPER_READY_PREFIX} {} {}",
        cluster.port(),
        cluster.data_dir().display()
    )
    .expect("stdout is writable");
    stdout.flush().expect("stdout is writable");
    // Behave like a `static`: the cluster is never dropped. Reading stdin blocks until the
    // parent kills us (or, should the parent die first, until its end of the pipe closes).
    std::mem::forget(cluster);
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// A scratch directory for persistent-cluster tests that stops any cluster inside it and
/// removes itself even when the test fails.
struct PersistentSandbox {
    sandbox_dir: PathBuf,
    cluster_dir: PathBuf,
}

impl PersistentSandbox {
    fn new(purpose: &str) -> PersistentSandbox {
        let sandbox_dir = std::env::temp_dir().join(format!(
            "anjia-localpg-test-{purpose}-{}-{}",
            std::process::id(),
            random_hex(4).expect("randomness")
        ));
        std::fs::create_dir(&sandbox_dir).expect("the sandbox directory is created");
        let cluster_dir = sandbox_dir.join("pg");
        PersistentSandbox {
            sandbox_dir,
            cluster_dir,
        }
    }
}

impl Drop for PersistentSandbox {
    fn drop(&mut self) {
        let _ = stop_persistent(&self.cluster_dir);
        let _ = std::fs::remove_dir_all(&self.sandbox_dir);
    }
}

fn server_pid(data_dir: &Path) -> String {
    let pid_file =
        std::fs::read_to_string(data_dir.join("postmaster.pid")).expect("postmaster.pid");
    pid_file.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn a_persistent_cluster_is_created_then_reused_then_stopped_and_started_again() {
    let sandbox = PersistentSandbox::new("lifecycle");

    let created = ensure_persistent(&sandbox.cluster_dir).expect("the cluster is created");
    let port = created.port();
    let password = std::fs::read_to_string(sandbox.sandbox_dir.join("pg.password"))
        .expect("the password file exists")
        .trim()
        .to_owned();
    assert_eq!(
        created.url("anjia"),
        format!("postgres://anjia:{password}@127.0.0.1:{port}/anjia")
    );
    let password_mode = std::fs::metadata(sandbox.sandbox_dir.join("pg.password"))
        .expect("the password file exists")
        .permissions()
        .mode();
    assert_eq!(password_mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(sandbox.sandbox_dir.join("pg.port"))
            .expect("the port file exists")
            .trim(),
        port.to_string()
    );
    assert_eq!(
        query_with_psql(port, APPLICATION_DATABASE_NAME, Some(&password), "select 1")
            .expect("the application database accepts the password"),
        "1"
    );
    assert!(
        query_with_psql(
            port,
            APPLICATION_DATABASE_NAME,
            Some("wrong-password"),
            "select 1"
        )
        .is_err(),
        "a wrong password is rejected"
    );
    assert_eq!(
        query_with_psql(port, "postgres", Some(&password), "show fsync").expect("the query runs"),
        "on",
        "the persistent cluster keeps durable defaults"
    );
    let first_server_pid = server_pid(created.data_dir());

    let reused = ensure_persistent(&sandbox.cluster_dir).expect("the cluster is reused");
    assert_eq!(reused.port(), port);
    assert_eq!(reused.url("anjia"), created.url("anjia"));
    assert_eq!(
        server_pid(reused.data_dir()),
        first_server_pid,
        "the running server is reused, not restarted"
    );

    stop_persistent(&sandbox.cluster_dir).expect("the cluster stops");
    assert!(
        holds_within(DISAPPEARANCE_DEADLINE, || !port_answers(port)),
        "the server on port {port} still answers after stop_persistent"
    );
    stop_persistent(&sandbox.cluster_dir).expect("stopping a stopped cluster is fine");

    let restarted = ensure_persistent(&sandbox.cluster_dir).expect("the stopped cluster starts");
    assert_eq!(restarted.port(), port);
    assert_eq!(
        query_with_psql(port, APPLICATION_DATABASE_NAME, Some(&password), "select 1")
            .expect("the restarted cluster keeps its password and database"),
        "1"
    );
    stop_persistent(&sandbox.cluster_dir).expect("the cluster stops again");
    assert!(
        holds_within(DISAPPEARANCE_DEADLINE, || !port_answers(port)),
        "the server on port {port} still answers after the second stop_persistent"
    );
}

#[test]
fn a_persistent_dir_the_server_user_cannot_reach_is_refused_with_a_clear_error() {
    // Only root hands the server to another user, so only then can a directory be unreachable.
    if !running_as_root().expect("id -u works") {
        return;
    }
    let sandbox = PersistentSandbox::new("unreachable");
    let private_dir = sandbox.sandbox_dir.join("private");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private_dir)
        .expect("the private directory is created");

    let refusal = ensure_persistent(&private_dir.join("pg"))
        .expect_err("an unreachable cluster directory is refused");
    let refusal_message = format!("{refusal:#}");
    assert!(
        refusal_message.contains("cannot enter")
            && refusal_message.contains(&private_dir.display().to_string()),
        "the error names the directory to fix: {refusal_message}"
    );
    assert!(
        !private_dir.join("pg").exists(),
        "nothing is created on refusal"
    );
}
