//! Locating (and, as a last resort on Debian, installing) the PostgreSQL server binaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use crate::process::{describe_output, running_as_root};

/// Every program this crate runs from the PostgreSQL bin directory. A directory only counts as
/// a PostgreSQL installation when all of them are present, so that we never mix versions.
const REQUIRED_PROGRAMS: [&str; 5] = ["initdb", "postgres", "pg_ctl", "pg_isready", "psql"];

/// Where Debian and Ubuntu put one directory per installed PostgreSQL major version.
const DEBIAN_POSTGRESQL_ROOT: &str = "/usr/lib/postgresql";

/// A directory holding a complete set of PostgreSQL server and client binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// The directory containing `initdb`, `postgres`, `pg_ctl`, `pg_isready` and `psql`.
    pub bin_dir: PathBuf,
}

impl Binaries {
    /// The full path of one program in the bin directory, e.g. `psql`.
    pub fn program_path(&self, program_name: &str) -> PathBuf {
        self.bin_dir.join(program_name)
    }

    /// Whether the installation carries the `pg_stat_statements` module (Debian's does, in the
    /// `lib` folder beside `bin`).
    pub fn has_pg_stat_statements(&self) -> bool {
        self.bin_dir
            .parent()
            .is_some_and(|root| root.join("lib/pg_stat_statements.so").is_file())
    }
}

/// Locates `initdb`/`postgres`/`pg_ctl`: first on `PATH`, then in the newest
/// `/usr/lib/postgresql/*/bin`.
///
/// When nothing is found and we run as root, Debian's `postgresql` package is installed
/// non-interactively and the search is repeated. Otherwise a clear error explains what to install.
pub fn find_binaries() -> Result<Binaries> {
    if let Some(found_binaries) = search_for_binaries() {
        return Ok(found_binaries);
    }
    if !running_as_root()? {
        bail!(
            "no PostgreSQL server binaries found: none of the PATH directories and no {DEBIAN_POSTGRESQL_ROOT}/*/bin \
             directory contains all of {REQUIRED_PROGRAMS:?}; install PostgreSQL (on Debian: \
             `apt-get install postgresql`) or set DATABASE_URL to an existing server"
        );
    }

    // Several threads (or tests) can reach this point together; a single installation is enough,
    // and the others simply find the binaries once the lock is released.
    static INSTALLATION_LOCK: Mutex<()> = Mutex::new(());
    let _installation_guard = INSTALLATION_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found_binaries) = search_for_binaries() {
        return Ok(found_binaries);
    }
    install_debian_postgresql_package()?;
    search_for_binaries().with_context(|| {
        format!(
            "installed Debian's postgresql package, but still found no directory containing all of {REQUIRED_PROGRAMS:?}"
        )
    })
}

fn search_for_binaries() -> Option<Binaries> {
    search_path_variable().or_else(search_debian_layout)
}

#[allow(
    clippy::disallowed_methods,
    reason = "PATH is how the system finds programs, not a setting of the platform's"
)]
fn search_path_variable() -> Option<Binaries> {
    let path_variable = std::env::var_os("PATH")?;
    std::env::split_paths(&path_variable)
        .filter(|candidate_dir| !candidate_dir.as_os_str().is_empty())
        .find(|candidate_dir| contains_all_required_programs(candidate_dir))
        .map(|bin_dir| Binaries { bin_dir })
}

fn search_debian_layout() -> Option<Binaries> {
    let version_dirs = std::fs::read_dir(DEBIAN_POSTGRESQL_ROOT).ok()?;
    version_dirs
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version_key = parse_version(&entry.file_name().to_string_lossy())?;
            let bin_dir = entry.path().join("bin");
            contains_all_required_programs(&bin_dir).then_some((version_key, bin_dir))
        })
        .max_by(|(left_version, _), (right_version, _)| left_version.cmp(right_version))
        .map(|(_, bin_dir)| Binaries { bin_dir })
}

/// Turns a directory name such as `15` or `9.6` into comparable numbers, so that `15` sorts
/// after `9.6` (a plain string comparison would get this wrong).
fn parse_version(directory_name: &str) -> Option<Vec<u64>> {
    directory_name
        .split('.')
        .map(|component| component.parse().ok())
        .collect()
}

fn contains_all_required_programs(candidate_dir: &Path) -> bool {
    REQUIRED_PROGRAMS
        .iter()
        .all(|program_name| is_executable_file(&candidate_dir.join(program_name)))
}

fn is_executable_file(candidate_path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(candidate_path)
        .map(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn install_debian_postgresql_package() -> Result<()> {
    tracing::info!("no PostgreSQL binaries found; installing Debian's postgresql package with apt-get (this takes a while)");
    // The lock timeout lets concurrent test processes queue behind one another instead of failing
    // on dpkg's lock.
    let apt_lock_timeout = "DPkg::Lock::Timeout=300";
    run_apt_get(&["-o", apt_lock_timeout, "update"])?;
    run_apt_get(&[
        "-o",
        apt_lock_timeout,
        "install",
        "-y",
        "--no-install-recommends",
        "postgresql",
    ])
}

fn run_apt_get(arguments: &[&str]) -> Result<()> {
    let apt_output = Command::new("apt-get")
        .args(arguments)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .context("could not run apt-get to install PostgreSQL (is this a Debian-based system?)")?;
    if !apt_output.status.success() {
        bail!(
            "`apt-get {}` failed while installing PostgreSQL: {}",
            arguments.join(" "),
            describe_output(&apt_output)
        );
    }
    Ok(())
}

#[cfg(test)]
mod version_ordering_tests {
    use super::parse_version;

    #[test]
    fn numeric_version_directories_sort_by_number_not_by_text() {
        assert!(parse_version("15") > parse_version("9.6"));
        assert!(parse_version("16") > parse_version("15"));
        assert_eq!(parse_version("not-a-version"), None);
    }
}
