//! Password hashing (Argon2), on a bounded pool so a burst of sign-ins cannot take every thread.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::ApiError;
use domain::message::Text;

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("hashing a password: {error}"))
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// How much Argon2 work a process takes on: each hash holds about 19 MiB and a core for tens
/// of milliseconds, so at most `workers` run at once and at most `queue` wait for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordLimits {
    /// `ANJIA_PASSWORD_WORKERS`: hashes at once (default: the machine's cores).
    pub workers: usize,
    /// `ANJIA_PASSWORD_QUEUE`: hashes waiting beyond those; past it a caller hears 429.
    pub queue: usize,
}

impl Default for PasswordLimits {
    fn default() -> Self {
        PasswordLimits {
            workers: std::thread::available_parallelism().map_or(2, |cores| cores.get()),
            queue: 32,
        }
    }
}

/// Password hashing on a bounded pool: a burst of sign-ins waits its turn in a short queue, and
/// what does not fit is answered 429 at once, so no burst can exhaust the memory or the
/// blocking threads.
#[derive(Clone)]
pub struct PasswordPool {
    running: std::sync::Arc<tokio::sync::Semaphore>,
    admitted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    capacity: usize,
}

impl std::fmt::Debug for PasswordPool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PasswordPool")
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Gives an admitted slot back however its holder ends (done, failed or dropped).
struct Admitted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl PasswordPool {
    pub fn new(limits: PasswordLimits) -> Self {
        PasswordPool {
            running: std::sync::Arc::new(tokio::sync::Semaphore::new(limits.workers)),
            admitted: std::sync::Arc::default(),
            capacity: limits.workers + limits.queue,
        }
    }

    /// Runs `work` (hashing or verifying) on a blocking thread when a worker is free; answers
    /// `Busy` straight away when the pool and its queue are full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        use std::sync::atomic::Ordering;
        let before = self.admitted.fetch_add(1, Ordering::SeqCst);
        let _slot = Admitted(self.admitted.clone());
        if before >= self.capacity {
            return Err(ApiError::Busy {
                detail: Text::new("passwords.too-many-sign-ins-being"),
                retry_after_seconds: 1,
            });
        }
        let _permit = self
            .running
            .acquire()
            .await
            .map_err(|error| ApiError::Internal(error.into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| ApiError::Internal(error.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse").expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
    }
}
