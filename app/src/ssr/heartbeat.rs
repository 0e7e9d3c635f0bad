//! A beat repeated while a long job runs, stopped when its guard is dropped: how a move, a restore, an import or an export says in the registry that it is alive.
use std::future::Future;
use std::time::Duration;

/// Runs its beat every period until dropped.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    /// Runs `beat` every `period`, the first at once, until dropped.
    pub fn every<F, Fut>(period: Duration, mut beat: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                beat().await;
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
