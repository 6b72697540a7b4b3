//! What apply reports while it runs; the CLI turns these into a progress bar,
//! plain status lines or JSON.

use super::plan::Action;
use crate::model::ResourceId;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    ApplyStarted {
        total: usize,
    },
    StepStarted {
        id: ResourceId,
        action: Action,
        /// The steps this one waited for (its dependencies in the plan, or
        /// the delete wave before it).
        after: Vec<ResourceId>,
        /// Milliseconds since the command started, as all `*_ms` times here.
        at_ms: u64,
    },
    StepSucceeded {
        id: ResourceId,
        action: Action,
        physical_id: String,
        elapsed_ms: u64,
        started_ms: u64,
        finished_ms: u64,
    },
    /// A step is waiting for AWS (an instance to become available, say).
    StepWaiting {
        id: ResourceId,
        until: String,
        elapsed_s: u64,
        limit_s: u64,
    },
    StepFailed {
        id: ResourceId,
        action: Action,
        error: String,
        started_ms: u64,
        finished_ms: u64,
    },
    StepSkipped {
        id: ResourceId,
        reason: String,
    },
    /// Ctrl-C during a step's wait, after its create call succeeded: the
    /// resource exists and AWS goes on with it; the next run adopts it.
    StepLeftToAws {
        id: ResourceId,
        action: Action,
        physical_id: String,
        started_ms: u64,
        finished_ms: u64,
    },
    ApplyFinished {
        succeeded: usize,
        failed: usize,
        skipped: usize,
    },
}

/// Milliseconds since the command started: the one clock of every event, so
/// the steps of a deploy's two applies and its schema step line up.
pub fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

pub trait EventSink: Sync {
    fn emit(&self, event: Event);
}

/// A sink for work whose progress nobody watches (unit tests).
#[cfg(test)]
pub struct Discard;

#[cfg(test)]
impl EventSink for Discard {
    fn emit(&self, _: Event) {}
}

/// A step's long waits are events too: "waiting until ..." lines, and the
/// JSON stream's `step_waiting`.
impl<S: EventSink> crate::resources::WaitObserver for S {
    fn waiting(
        &self,
        id: &ResourceId,
        until: &str,
        elapsed: std::time::Duration,
        limit: std::time::Duration,
    ) {
        self.emit(Event::StepWaiting {
            id: id.clone(),
            until: until.to_string(),
            elapsed_s: elapsed.as_secs(),
            limit_s: limit.as_secs(),
        });
    }
}

impl EventSink for &dyn EventSink {
    fn emit(&self, event: Event) {
        (**self).emit(event)
    }
}
