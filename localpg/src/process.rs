//! Small process, port and file helpers shared by the ephemeral and persistent clusters.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::binaries::Binaries;
use crate::SUPERUSER_NAME;

/// How long a freshly started server may take to accept connections.
pub(crate) const READINESS_DEADLINE: Duration = Duration::from_secs(30);

/// How often readiness (and shutdown) is polled; short enough that tests stay fast, long enough
/// that a two-core machine is not kept busy spawning `pg_isready`.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How many lines of the server log an error message quotes.
const LOG_TAIL_LINE_COUNT: usize = 30;

/// Whether this process runs as root, asked of `id -u` because the crate forbids `unsafe` and
/// therefore cannot call `geteuid` itself. The answer cannot change, so it is cached.
pub(crate) fn running_as_root() -> Result<bool> {
    static ROOT_ANSWER: OnceLock<bool> = OnceLock::new();
    if let Some(cached_answer) = ROOT_ANSWER.get() {
        return Ok(*cached_answer);
    }
    let id_output = Command::new("id")
        .arg("-u")
        .output()
        .context("could not run `id -u` to find out whether we run as root")?;
    if !id_output.status.success() {
        bail!("`id -u` failed: {}", describe_output(&id_output));
    }
    let is_root = String::from_utf8_lossy(&id_output.stdout).trim() == "0";
    Ok(*ROOT_ANSWER.get_or_init(|| is_root))
}

/// Runs a command to completion, failing with its exit status and output when it does not succeed.
pub(crate) fn run_to_success(command: &mut Command, description: &str) -> Result<Output> {
    let command_output = command.stdin(Stdio::null()).output().with_context(|| {
        format!(
            "could not start {description} ({:?})",
            command.get_program()
        )
    })?;
    if !command_output.status.success() {
        bail!("{description} failed: {}", describe_output(&command_output));
    }
    Ok(command_output)
}

/// A one-line summary of a finished command: its exit status plus whatever it printed.
pub(crate) fn describe_output(command_output: &Output) -> String {
    let printed_stdout = String::from_utf8_lossy(&command_output.stdout);
    let printed_stderr = String::from_utf8_lossy(&command_output.stderr);
    format!(
        "{}; stdout: {:?}; stderr: {:?}",
        command_output.status,
        printed_stdout.trim(),
        printed_stderr.trim()
    )
}

/// The last lines of a server log, for error messages; a missing log is reported as such
/// rather than hiding the original error.
pub(crate) fn log_tail(log_path: &Path) -> String {
    match std::fs::read(log_path) {
        Ok(log_bytes) => {
            let log_text = String::from_utf8_lossy(&log_bytes);
            let all_lines: Vec<&str> = log_text.lines().collect();
            let first_kept_line = all_lines.len().saturating_sub(LOG_TAIL_LINE_COUNT);
            all_lines[first_kept_line..].join("\n")
        }
        Err(read_error) => format!("(could not read {}: {read_error})", log_path.display()),
    }
}

/// Whether a server accepts connections on `127.0.0.1:port`, according to `pg_isready`.
pub(crate) fn server_answers(binaries: &Binaries, port: u16) -> bool {
    Command::new(binaries.program_path("pg_isready"))
        .args([
            "-q",
            "-h",
            "127.0.0.1",
            "-t",
            "1",
            "-d",
            "postgres",
            "-U",
            SUPERUSER_NAME,
        ])
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|exit_status| exit_status.success())
}

/// Polls `pg_isready` until the server accepts connections or the deadline passes.
///
/// `check_server_still_alive` lets the caller abort early when it knows the server has already
/// died (for instance because it could not bind its port), instead of waiting out the deadline.
pub(crate) fn wait_until_ready(
    binaries: &Binaries,
    port: u16,
    log_path: &Path,
    mut check_server_still_alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let deadline = Instant::now() + READINESS_DEADLINE;
    loop {
        if server_answers(binaries, port) {
            return Ok(());
        }
        if let Err(death_report) = check_server_still_alive() {
            bail!(
                "PostgreSQL on port {port} exited during startup ({death_report:#}); server log ({}) ends with:\n{}",
                log_path.display(),
                log_tail(log_path)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "PostgreSQL on port {port} did not accept connections within {READINESS_DEADLINE:?}; server log ({}) ends with:\n{}",
                log_path.display(),
                log_tail(log_path)
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Whether nothing currently listens on `127.0.0.1:port`.
pub(crate) fn loopback_port_is_free(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A loopback port the kernel considers free right now. The listener is dropped before the
/// server binds the port, so a race with another process is possible but rare; callers that
/// can retry do so.
pub(crate) fn choose_free_loopback_port() -> Result<u16> {
    let probe_listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .context("could not bind 127.0.0.1:0 to find a free port")?;
    Ok(probe_listener.local_addr()?.port())
}

/// Random lowercase hex, read from the kernel's generator because the crate has no `rand`.
pub(crate) fn random_hex(byte_count: usize) -> Result<String> {
    let mut random_bytes = vec![0_u8; byte_count];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut random_bytes))
        .context("could not read /dev/urandom")?;
    Ok(random_bytes
        .iter()
        .map(|random_byte| format!("{random_byte:02x}"))
        .collect())
}

/// Appends settings to `postgresql.conf`; later lines win over the defaults initdb wrote.
pub(crate) fn append_settings(data_dir: &Path, settings: &str) -> Result<()> {
    let configuration_path = data_dir.join("postgresql.conf");
    OpenOptions::new()
        .append(true)
        .open(&configuration_path)
        .and_then(|mut configuration_file| {
            configuration_file.write_all(b"\n# Added by Anjia's localpg crate.\n")?;
            configuration_file.write_all(settings.as_bytes())
        })
        .with_context(|| {
            format!(
                "could not append settings to {}",
                configuration_path.display()
            )
        })
}
