//! Password hashing and checking with argon2id, on the blocking pool.
//!
//! The crate's defaults are OWASP's recommended minimum (19 MiB, 2
//! iterations, 1 lane). Both operations are CPU-bound for tens of
//! milliseconds, so async code calls the `_blocking` forms, which run at
//! most one computation per core at a time: the others wait up to
//! [`WAIT`] for a slot, then are refused as [`Busy`]. A flood of sign-ins
//! therefore costs at most a core's worth of argon2 memory per core, not
//! 19 MiB per request.
use std::{sync::OnceLock, time::Duration};

use argon2::{
    password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier},
    Argon2,
};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// How long a hash or a check waits for a free slot.
pub const WAIT: Duration = Duration::from_secs(3);

/// Every slot stayed taken for [`WAIT`] (503).
#[derive(Debug, thiserror::Error)]
#[error("too many passwords are being hashed or checked right now")]
pub struct Busy;

/// One slot per core, for the whole process: the cores are what is shared.
fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}

/// Runs `work` on the blocking pool once a slot is free.
async fn in_a_slot<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Busy> {
    let _slot = tokio::time::timeout(WAIT, slots().acquire())
        .await
        .map_err(|_| Busy)?
        .map_err(|_| Busy)?;
    Ok(tokio::task::spawn_blocking(work)
        .await
        .expect("argon2 does not panic"))
}

pub fn hash(password: &Password) -> String {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .expect("argon2 with default parameters and an OS salt cannot fail")
        .to_string()
}

pub fn verify(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Hashes on the blocking pool, off the async workers, in a slot.
pub async fn hash_blocking(password: Password) -> Result<String, Busy> {
    in_a_slot(move || hash(&password)).await
}

/// Verifies on the blocking pool, off the async workers, in a slot.
pub async fn verify_blocking(password: String, stored_hash: String) -> Result<bool, Busy> {
    in_a_slot(move || verify(&password, &stored_hash)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_computations_run_at_once_than_there_are_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..cores * 4)
            .map(|_| {
                let (running, peak) = (running.clone(), peak.clone());
                tokio::spawn(in_a_slot(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, SeqCst);
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(peak >= 1 && peak <= cores, "peak {peak}, cores {cores}");
    }

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let p = Password::parse("correct horse battery").unwrap();
        let h = hash(&p);
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse battery!", &h));
        assert!(!verify("x", "not a hash"));
    }
}
