//! Password hashing and checking with argon2id, on the blocking pool.
//!
//! The crate's defaults are OWASP's recommended minimum (19 MiB, 2
//! iterations, 1 lane). Both operations are CPU-bound for tens of
//! milliseconds, so async code calls the `_blocking` forms, which run at
//! most one computation per core at a time: the others wait up to
//! [`WAIT`] for a slot, then are refused as [`Busy`]. A flood of sign-ins
//! therefore costs at most a core's worth of argon2 memory per core, not
//! 19 MiB per request.
//!
//! The slots are divided fairly ([`crate::ssr::shares`]): the work is
//! [`Whose`], and one company (or the base domain's signups and platform
//! admins) holds at most half of them, with [`QUEUE`] more waiting, so a
//! flood of sign-ins on one company leaves the other half to the rest.
use std::{sync::OnceLock, time::Duration};

use argon2::{
    password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier},
    Argon2,
};
use uuid::Uuid;

use crate::domain::Password;
use crate::ssr::shares::Shares;

/// How long a hash or a check waits for a free slot.
pub const WAIT: Duration = Duration::from_secs(3);

/// A company's (or the platform's) calls that may wait for a slot past
/// those it holds; more are refused at once.
pub const QUEUE: usize = 8;

/// Whose password it is: the key the slots are divided by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Whose {
    /// A company's user.
    Company(Uuid),
    /// The base domain: signups, platform admins, companies being created.
    Platform,
}

/// Every slot stayed taken for [`WAIT`], or the caller's line was full (503).
#[derive(Debug, thiserror::Error)]
#[error("too many passwords are being hashed or checked right now")]
pub struct Busy;

/// One slot per core, for the whole process: the cores are what is shared.
/// Each key holds at most half of them.
fn slots() -> &'static Shares<Whose> {
    static SLOTS: OnceLock<Shares<Whose>> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Shares::new(cores, cores / 2, QUEUE)
    })
}

/// Runs `work` on the blocking pool once `whose` has one of `slots`.
async fn in_a_slot<T: Send + 'static>(
    slots: &Shares<Whose>,
    whose: Whose,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Busy> {
    let _slot = slots.enter(whose, WAIT).await.map_err(|_| Busy)?;
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

/// Hashes on the blocking pool, off the async workers, in a slot of
/// `whose` share.
pub async fn hash_blocking(whose: Whose, password: Password) -> Result<String, Busy> {
    in_a_slot(slots(), whose, move || hash(&password)).await
}

/// Verifies on the blocking pool, off the async workers, in a slot of
/// `whose` share.
pub async fn verify_blocking(
    whose: Whose,
    password: String,
    stored_hash: String,
) -> Result<bool, Busy> {
    in_a_slot(slots(), whose, move || verify(&password, &stored_hash)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_computations_run_at_once_than_there_are_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let slots = Shares::new(cores, cores / 2, 64);
        let tasks: Vec<_> = (0..cores * 4)
            .map(|i| {
                let (running, peak, slots) = (running.clone(), peak.clone(), slots.clone());
                let whose = Whose::Company(Uuid::from_u128(i as u128 % 3));
                tokio::spawn(async move {
                    in_a_slot(&slots, whose, move || {
                        use std::sync::atomic::Ordering::SeqCst;
                        let now = running.fetch_add(1, SeqCst) + 1;
                        peak.fetch_max(now, SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        running.fetch_sub(1, SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(peak >= 1 && peak <= cores, "peak {peak}, cores {cores}");
    }

    /// Another company is served while one company's calls wait: it
    /// holds at most half the slots (and one, on a single core, leaves a
    /// second company waiting only for that one call, not for its line).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_company_flooding_the_slots_leaves_room_for_another() {
        // As on a machine of two cores.
        let slots = Shares::new(2, 1, QUEUE);
        let flood = Whose::Company(Uuid::from_u128(0xf100d));
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let slots = slots.clone();
                tokio::spawn(async move {
                    in_a_slot(&slots, flood, || {
                        std::thread::sleep(Duration::from_millis(600))
                    })
                    .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Unshared, the other company would wait behind all four (1.2 s).
        let other = Whose::Company(Uuid::from_u128(0x0de7));
        tokio::time::timeout(Duration::from_millis(400), in_a_slot(&slots, other, || ()))
            .await
            .expect("another company got a slot while the flood waited")
            .unwrap();
        for c in calls {
            c.await.unwrap().unwrap();
        }
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
