//! Fair shares of a bounded resource that many companies use: each key (a
//! company, the base domain) waits for a turn of its own share first, and
//! only then takes one of the shared slots, for as short a time as it needs.
//!
//! So one key's waiting callers never hold a shared slot, and a key never
//! holds more than `share` of them: whatever one company does, the others
//! find `total − share` slots it cannot take. The callers of one key that
//! may wait at once are bounded too (`queue`); past that a caller is
//! refused at once ([`Refused::Full`]) instead of joining a line that cannot
//! be served in time. This is PgBouncer's `pool_size` per database under
//! `max_db_connections`, and `governor`'s keyed limiters, in one shape.
//!
//! Used for the request-concurrency limit (`server/src/startup.rs`, keyed
//! by the request's subdomain) and argon2's slots
//! ([`super::accounts::passwords`], keyed by company). Tenant connections
//! have the same order built into their pools ([`super::tenancy`]).
use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a caller got no turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Its key already had `share + queue` callers: refused at once.
    #[error("too many requests of this company are waiting")]
    Full,
    /// No turn came within the wait.
    #[error("no turn came in time")]
    Timeout,
}

/// A bounded resource divided into fair shares by key. Cheap to clone.
pub struct Shares<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Shares<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<K> {
    total: Arc<Semaphore>,
    size: usize,
    share: usize,
    queue: usize,
    keys: Mutex<HashMap<K, Key>>,
}

/// One key's own share, and its callers holding or waiting for a turn.
struct Key {
    own: Arc<Semaphore>,
    callers: usize,
}

/// A turn: one slot of the key's share and one shared slot, given back when
/// dropped.
pub struct Turn<K: Hash + Eq + Clone> {
    _shared: OwnedSemaphorePermit,
    _own: OwnedSemaphorePermit,
    _caller: Caller<K>,
}

/// Counts a caller of its key while it lives; the last one removes the key.
struct Caller<K: Hash + Eq + Clone> {
    inner: Arc<Inner<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Drop for Caller<K> {
    fn drop(&mut self) {
        let mut keys = self.inner.keys.lock().unwrap();
        if let Some(k) = keys.get_mut(&self.key) {
            k.callers -= 1;
            if k.callers == 0 {
                keys.remove(&self.key);
            }
        }
    }
}

impl<K: Hash + Eq + Clone> Shares<K> {
    /// `total` slots; each key holds at most `share` of them (at least 1, at
    /// most `total`) and has at most `queue` more callers waiting.
    pub fn new(total: usize, share: usize, queue: usize) -> Self {
        let total = total.max(1);
        Self {
            inner: Arc::new(Inner {
                total: Arc::new(Semaphore::new(total)),
                size: total,
                share: share.clamp(1, total),
                queue,
                keys: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The share a key may hold.
    pub fn share(&self) -> usize {
        self.inner.share
    }

    /// Slots in all.
    pub fn total(&self) -> usize {
        self.inner.size
    }

    /// Shared slots taken now.
    pub fn in_use(&self) -> usize {
        self.inner.size - self.inner.total.available_permits()
    }

    /// Keys with a caller now.
    pub fn keys(&self) -> usize {
        self.inner.keys.lock().unwrap().len()
    }

    /// A turn for `key`, within `wait`: its own share first, then a shared
    /// slot.
    pub async fn enter(&self, key: K, wait: Duration) -> Result<Turn<K>, Refused> {
        let deadline = tokio::time::Instant::now() + wait;
        let own = {
            let mut keys = self.inner.keys.lock().unwrap();
            let k = keys.entry(key.clone()).or_insert_with(|| Key {
                own: Arc::new(Semaphore::new(self.inner.share)),
                callers: 0,
            });
            if k.callers >= self.inner.share + self.inner.queue {
                return Err(Refused::Full);
            }
            k.callers += 1;
            k.own.clone()
        };
        let caller = Caller {
            inner: self.inner.clone(),
            key,
        };
        let own = tokio::time::timeout_at(deadline, own.acquire_owned())
            .await
            .map_err(|_| Refused::Timeout)?
            .map_err(|_| Refused::Timeout)?;
        let shared = tokio::time::timeout_at(deadline, self.inner.total.clone().acquire_owned())
            .await
            .map_err(|_| Refused::Timeout)?
            .map_err(|_| Refused::Timeout)?;
        Ok(Turn {
            _shared: shared,
            _own: own,
            _caller: caller,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn one_key_holds_at_most_its_share_and_the_others_still_get_turns() {
        let shares = Shares::new(4, 2, 10);
        let a1 = shares.enter("a", WAIT).await.unwrap();
        let _a2 = shares.enter("a", WAIT).await.unwrap();
        // A third turn of "a" waits for one of a's own, not a shared slot.
        let waiting = {
            let shares = shares.clone();
            tokio::spawn(async move { shares.enter("a", WAIT).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            shares.in_use(),
            2,
            "the waiting caller holds no shared slot"
        );
        let _b1 = shares.enter("b", Duration::from_millis(100)).await.unwrap();
        let _b2 = shares.enter("b", Duration::from_millis(100)).await.unwrap();
        assert_eq!(shares.in_use(), 4);
        assert!(!waiting.is_finished());
        // a's own share frees, and the shared slot it held goes to a's waiter.
        drop(a1);
        assert_eq!(waiting.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn callers_past_share_and_queue_are_refused_at_once() {
        let shares = Shares::new(8, 1, 2);
        let _held = shares.enter(1u32, WAIT).await.unwrap();
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let s = shares.clone();
                tokio::spawn(async move { s.enter(1u32, Duration::from_secs(1)).await.map(|_| ()) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = tokio::time::Instant::now();
        assert_eq!(shares.enter(1, WAIT).await.err(), Some(Refused::Full));
        assert!(started.elapsed() < Duration::from_millis(50));
        // Another key is not in that line.
        assert!(shares.enter(2, Duration::from_millis(100)).await.is_ok());
        for q in queued {
            assert_eq!(q.await.unwrap(), Err(Refused::Timeout));
        }
    }

    #[tokio::test]
    async fn a_key_with_no_callers_is_forgotten() {
        let shares = Shares::new(2, 1, 1);
        let turn = shares.enter("x".to_owned(), WAIT).await.unwrap();
        assert_eq!(shares.keys(), 1);
        let late = shares
            .enter("x".to_owned(), Duration::from_millis(20))
            .await;
        assert_eq!(late.err(), Some(Refused::Timeout));
        assert_eq!(shares.keys(), 1, "the holder is still counted");
        drop(turn);
        assert_eq!(shares.keys(), 0);
        assert_eq!(shares.in_use(), 0);
    }

    #[test]
    fn the_share_is_at_least_one_and_at_most_the_total() {
        assert_eq!(Shares::<u8>::new(4, 0, 0).share(), 1);
        assert_eq!(Shares::<u8>::new(4, 9, 0).share(), 4);
        assert_eq!(Shares::<u8>::new(0, 1, 0).total(), 1);
    }
}
