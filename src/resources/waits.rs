//! Long waits (an RDS instance becoming available, a deployment baking)
//! report how long they have been waiting, so that ten quiet minutes do not
//! look like a hang, and give up at once on Ctrl-C.
//!
//! Contract: the resource families wait through [`Waits`]; who hears about
//! it (apply's event stream, or nobody) is a [`WaitObserver`] given from
//! above, so this layer does not know the engine's events.

use crate::model::ResourceId;
use std::time::Duration;

/// Asks `look` every `every` until it answers `Some`, or fails. The interval
/// is steady where the SDK's waiters back off to two minutes between polls,
/// so a state change is noticed within one interval; the SDK's retry layer
/// still backs off when a call is throttled.
pub async fn poll<T, F, Fut>(every: Duration, mut look: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    loop {
        if let Some(done) = look().await? {
            return Ok(done);
        }
        tokio::time::sleep(every).await;
    }
}

/// Who hears that a step is still waiting.
pub trait WaitObserver: Sync {
    fn waiting(&self, id: &ResourceId, until: &str, elapsed: Duration, limit: Duration);
}

/// Waits nobody watches (a one-off call outside an apply, unit tests).
pub struct Unwatched;

impl WaitObserver for Unwatched {
    fn waiting(&self, _: &ResourceId, _: &str, _: Duration, _: Duration) {}
}

/// Long waits (an RDS instance becoming available) report how long they have
/// been waiting, so that ten quiet minutes do not look like a hang.
pub struct Waits<'a> {
    observer: &'a dyn WaitObserver,
}

/// How often a long wait says it is still waiting.
const WAIT_REPORT_EVERY: Duration = Duration::from_secs(15);

impl<'a> Waits<'a> {
    pub fn new(observer: &'a dyn WaitObserver) -> Self {
        Waits { observer }
    }

    /// Waits for `wait`, reporting every 15 s; gives up with [`Interrupted`]
    /// on Ctrl-C (the resource goes on changing in AWS; the next run finds it).
    ///
    /// [`Interrupted`]: crate::interrupt::Interrupted
    /// Says at once what is being waited for now (a deployment's new stage).
    pub fn note(&self, id: &ResourceId, until: &str, elapsed: Duration, limit: Duration) {
        self.observer.waiting(id, until, elapsed, limit);
    }

    pub async fn report<T>(
        &self,
        id: &ResourceId,
        until: &str,
        limit: Duration,
        wait: impl std::future::Future<Output = T>,
    ) -> Result<T, crate::interrupt::Interrupted> {
        let started = tokio::time::Instant::now();
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + WAIT_REPORT_EVERY,
            WAIT_REPORT_EVERY,
        );
        tokio::pin!(wait);
        loop {
            tokio::select! {
                done = &mut wait => return Ok(done),
                _ = crate::interrupt::wait() => return Err(crate::interrupt::Interrupted),
                _ = ticks.tick() => self.observer.waiting(id, until, started.elapsed(), limit),
            }
        }
    }
}
