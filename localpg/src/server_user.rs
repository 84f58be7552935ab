//! Which operating-system user the PostgreSQL server binaries run as.
//!
//! `initdb` and `postgres` refuse to run as root. When we are root (typical in containers and CI)
//! the server binaries run as an unprivileged system user instead: `postgres` when the distribution
//! created one, otherwise a dedicated `anjia-pg` user that we create. We switch users with
//! `setpriv`, which replaces itself with the target program. That matters for the long-running
//! server: `runuser` would stay in between as a parent process and turn our `SIGINT` (fast
//! shutdown) into `SIGTERM` followed by `SIGKILL`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::process::{describe_output, run_to_success, running_as_root};

/// The system user created when root runs us and no `postgres` user exists.
const DEDICATED_SYSTEM_USER_NAME: &str = "anjia-pg";

/// The distribution's PostgreSQL system user, preferred when present.
const DISTRIBUTION_SYSTEM_USER_NAME: &str = "postgres";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerUser {
    /// We are not root, so the server binaries run as ourselves.
    CurrentUser,
    /// We are root, so the server binaries run as this unprivileged account.
    Unprivileged(UnprivilegedAccount),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnprivilegedAccount {
    pub(crate) user_name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl ServerUser {
    /// Decides (once per process) who runs the server binaries, creating the dedicated system
    /// user when we are root and the machine has no `postgres` user.
    pub(crate) fn determine() -> Result<ServerUser> {
        static DETERMINED_USER: OnceLock<ServerUser> = OnceLock::new();
        if let Some(cached_user) = DETERMINED_USER.get() {
            return Ok(cached_user.clone());
        }
        let server_user = if running_as_root()? {
            ServerUser::Unprivileged(find_or_create_unprivileged_account()?)
        } else {
            ServerUser::CurrentUser
        };
        Ok(DETERMINED_USER.get_or_init(|| server_user).clone())
    }

    /// A command that runs `program` as the server user. The working directory is `/` because
    /// PostgreSQL's tools complain when they cannot access the inherited one (e.g. `/root`).
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut command = match self {
            ServerUser::CurrentUser => Command::new(program),
            ServerUser::Unprivileged(account) => {
                let mut setpriv_command = Command::new("setpriv");
                setpriv_command
                    .arg(format!("--reuid={}", account.uid))
                    .arg(format!("--regid={}", account.gid))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(program);
                setpriv_command
            }
        };
        command.current_dir("/");
        command
    }

    /// Gives a file or directory we created to the server user, so that PostgreSQL can write it.
    pub(crate) fn hand_over(&self, owned_path: &Path) -> Result<()> {
        if let ServerUser::Unprivileged(account) = self {
            std::os::unix::fs::chown(owned_path, Some(account.uid), Some(account.gid))
                .with_context(|| {
                    format!(
                        "could not give {} to the PostgreSQL user `{}`",
                        owned_path.display(),
                        account.user_name
                    )
                })?;
        }
        Ok(())
    }

    /// Fails with an explanation when the server user cannot enter `directory`, which happens
    /// when the project lives below a private home directory such as `/root` and we are root.
    /// We deliberately do not loosen anyone's home directory permissions ourselves.
    pub(crate) fn ensure_can_reach(&self, directory: &Path) -> Result<()> {
        let ServerUser::Unprivileged(account) = self else {
            return Ok(());
        };
        if self.can_enter(directory)? {
            return Ok(());
        }
        // access(2) fails on the first component that cannot be searched; walk down from `/` to
        // name that component in the error, since it is the one the operator has to fix.
        let mut ancestors_from_root: Vec<&Path> = directory.ancestors().collect();
        ancestors_from_root.reverse();
        let mut blocking_directory = directory;
        for ancestor in ancestors_from_root {
            if !self.can_enter(ancestor)? {
                blocking_directory = ancestor;
                break;
            }
        }
        bail!(
            "PostgreSQL refuses to run as root, so it runs as the unprivileged user `{user}`, but `{user}` \
             cannot enter {blocking} and therefore cannot reach {wanted}. Move the project (or the \
             cluster directory) somewhere other users may traverse (e.g. under /srv or /opt), grant \
             search permission yourself (e.g. `chmod o+x {blocking}`), or set DATABASE_URL to an \
             existing PostgreSQL server.",
            user = account.user_name,
            blocking = blocking_directory.display(),
            wanted = directory.display(),
        )
    }

    fn can_enter(&self, directory: &Path) -> Result<bool> {
        let test_status = self
            .command(Path::new("test"))
            .arg("-x")
            .arg(directory)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("could not run `setpriv` (from util-linux) to test directory access as the PostgreSQL user")?;
        Ok(test_status.success())
    }
}

fn find_or_create_unprivileged_account() -> Result<UnprivilegedAccount> {
    if let Some(distribution_account) = look_up_account(DISTRIBUTION_SYSTEM_USER_NAME)? {
        return Ok(distribution_account);
    }
    if let Some(dedicated_account) = look_up_account(DEDICATED_SYSTEM_USER_NAME)? {
        return Ok(dedicated_account);
    }
    tracing::info!(
        user = DEDICATED_SYSTEM_USER_NAME,
        "creating a system user to run PostgreSQL, which refuses to run as root"
    );
    let useradd_result = run_to_success(
        Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            DEDICATED_SYSTEM_USER_NAME,
        ]),
        "creating the PostgreSQL system user with useradd",
    );
    // Another process may have created the user at the same moment, in which case useradd fails
    // but the account now exists; only the lookup decides.
    match (look_up_account(DEDICATED_SYSTEM_USER_NAME)?, useradd_result) {
        (Some(dedicated_account), _) => Ok(dedicated_account),
        (None, Err(useradd_error)) => Err(useradd_error),
        (None, Ok(_)) => bail!(
            "useradd reported success but `getent passwd {DEDICATED_SYSTEM_USER_NAME}` finds no such user"
        ),
    }
}

/// Looks a user up with `getent passwd`, which also sees users from NSS sources other than
/// `/etc/passwd`. Exit status 2 means "no such user"; anything else unexpected is an error.
fn look_up_account(user_name: &str) -> Result<Option<UnprivilegedAccount>> {
    let getent_output = Command::new("getent")
        .args(["passwd", user_name])
        .stdin(Stdio::null())
        .output()
        .context("could not run `getent passwd`")?;
    match getent_output.status.code() {
        Some(0) => {}
        Some(2) => return Ok(None),
        _ => bail!(
            "`getent passwd {user_name}` failed: {}",
            describe_output(&getent_output)
        ),
    }
    let passwd_line = String::from_utf8_lossy(&getent_output.stdout);
    let passwd_fields: Vec<&str> = passwd_line.trim().split(':').collect();
    let (Some(uid_field), Some(gid_field)) = (passwd_fields.get(2), passwd_fields.get(3)) else {
        bail!("unexpected `getent passwd {user_name}` output: {passwd_line:?}");
    };
    Ok(Some(UnprivilegedAccount {
        user_name: user_name.to_owned(),
        uid: uid_field
            .parse()
            .with_context(|| format!("bad uid in {passwd_line:?}"))?,
        gid: gid_field
            .parse()
            .with_context(|| format!("bad gid in {passwd_line:?}"))?,
    }))
}
