//! Walks a plan's dependency graph, running independent steps concurrently.
//!
//! # Contract (after kube-runtime's finalizer docs)
//! - **Expected flow**: creates, updates and replaces run as soon as the
//!   resources they refer to are done; deletes run afterwards in waves by
//!   [`Kind::delete_rank`](crate::model::Kind::delete_rank).
//! - **Guarantees**: a step that fails stops only the steps that depend on it;
//!   independent steps go on, and the report says what succeeded, failed and
//!   was skipped. Every step is idempotent: it tags in the call that creates,
//!   so a crash at any point leaves nothing a re-run cannot find and finish.
//! - **Assumptions**: apply makes one attempt and is meant to be run again;
//!   the plan was made from a fresh discovery.

use super::events::{Event, EventSink};
use super::plan::{Action, Change, Plan};
use crate::model::ResourceId;
use crate::resources::{self, Context};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// How many AWS mutations may be in flight at once.
pub const MAX_CONCURRENT_STEPS: usize = 8;

#[derive(Debug, Default, Serialize)]
pub struct ApplyReport {
    pub succeeded: Vec<ResourceId>,
    pub failed: Vec<(ResourceId, String)>,
    pub skipped: Vec<ResourceId>,
}

impl ApplyReport {
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

pub async fn apply(cx: &Context, plan: &Plan, events: &dyn EventSink) -> ApplyReport {
    let mut report = ApplyReport::default();
    events.emit(Event::ApplyStarted {
        total: plan.changes.len(),
    });
    let (deletes, others): (Vec<&Change>, Vec<&Change>) = plan
        .changes
        .iter()
        .partition(|c| c.action == Action::Delete);

    // Forward pass: a step waits for the steps of the resources it refers to.
    let in_plan: BTreeSet<&ResourceId> = others.iter().map(|c| &c.id).collect();
    let mut waiting_on: BTreeMap<&ResourceId, BTreeSet<ResourceId>> = others
        .iter()
        .map(|c| {
            let deps = c.dependencies.iter().filter(|d| in_plan.contains(d));
            (&c.id, deps.cloned().collect())
        })
        .collect();
    run_waves(cx, events, &mut report, &others, |done, pending| {
        pending
            .iter()
            .filter(|c| {
                waiting_on.get_mut(&c.id).is_some_and(|deps| {
                    deps.retain(|d| !done.contains(d));
                    deps.is_empty()
                })
            })
            .map(|c| c.id.clone())
            .collect()
    })
    .await;

    // Deletes, lowest rank first; a wave waits for the one before it.
    let mut ranks: Vec<u8> = deletes
        .iter()
        .filter_map(|c| c.id.kind())
        .map(|k| k.delete_rank())
        .collect();
    ranks.sort();
    ranks.dedup();
    for rank in ranks {
        let wave: Vec<&Change> = deletes
            .iter()
            .copied()
            .filter(|c| c.id.kind().map(|k| k.delete_rank()) == Some(rank))
            .collect();
        run_waves(cx, events, &mut report, &wave, |_, pending| {
            pending.iter().map(|c| c.id.clone()).collect()
        })
        .await;
    }
    events.emit(Event::ApplyFinished {
        succeeded: report.succeeded.len(),
        failed: report.failed.len(),
        skipped: report.skipped.len(),
    });
    report
}

/// Runs `steps`, at most [`MAX_CONCURRENT_STEPS`] at a time, starting those
/// that `ready` says may start given what is done. Steps never made ready
/// (their dependency failed) are reported as skipped.
async fn run_waves<'a>(
    cx: &Context,
    events: &dyn EventSink,
    report: &mut ApplyReport,
    steps: &[&'a Change],
    mut ready: impl FnMut(&BTreeSet<ResourceId>, &[&'a Change]) -> Vec<ResourceId>,
) {
    let mut pending: Vec<&Change> = steps.to_vec();
    let mut done: BTreeSet<ResourceId> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    loop {
        let startable = ready(&done, &pending);
        for id in startable {
            // After Ctrl-C, what is in flight finishes and nothing new starts.
            if running.len() >= MAX_CONCURRENT_STEPS || crate::interrupt::requested() {
                break;
            }
            let position = pending
                .iter()
                .position(|c| c.id == id)
                .expect("ready ids come from pending");
            let change = pending.remove(position);
            events.emit(Event::StepStarted {
                id: change.id.clone(),
                action: change.action,
            });
            running.push(async move {
                let started = Instant::now();
                let result = run_step(cx, change, events).await;
                (change, result, started.elapsed())
            });
        }
        let Some((change, result, elapsed)) = running.next().await else {
            break;
        };
        match result {
            Ok(physical_id) => {
                events.emit(Event::StepSucceeded {
                    id: change.id.clone(),
                    action: change.action,
                    physical_id,
                    elapsed_ms: elapsed.as_millis() as u64,
                });
                report.succeeded.push(change.id.clone());
                done.insert(change.id.clone());
            }
            Err(error) => {
                let message = format!("{error:#}");
                events.emit(Event::StepFailed {
                    id: change.id.clone(),
                    action: change.action,
                    error: message.clone(),
                });
                report.failed.push((change.id.clone(), message));
            }
        }
    }
    let reason = if crate::interrupt::requested() {
        "interrupted (Ctrl-C) before it started"
    } else {
        "a resource it depends on failed"
    };
    for change in pending {
        events.emit(Event::StepSkipped {
            id: change.id.clone(),
            reason: reason.into(),
        });
        report.skipped.push(change.id.clone());
    }
}

async fn run_step(cx: &Context, change: &Change, events: &dyn EventSink) -> anyhow::Result<String> {
    let waits = resources::Waits::new(events);
    tracing::debug!(id = %change.id, action = change.action.verb(), "step");
    match change.action {
        Action::Create => {
            let desired = change
                .desired
                .as_ref()
                .expect("a create has a desired spec");
            resources::create(cx, &change.id, desired, &waits).await
        }
        Action::Update => {
            let live = change.live.as_ref().expect("an update has a live resource");
            let desired = change
                .desired
                .as_ref()
                .expect("an update has a desired spec");
            resources::update(cx, live, desired, &waits).await?;
            // An update that makes a new id (a task definition revision) recorded it.
            Ok(cx
                .physical_id(&change.id)
                .unwrap_or_else(|| live.physical_id.clone()))
        }
        Action::Replace => {
            let live = change.live.as_ref().expect("a replace has a live resource");
            resources::delete(cx, live, &waits).await?;
            let desired = change
                .desired
                .as_ref()
                .expect("a replace has a desired spec");
            resources::create(cx, &change.id, desired, &waits).await
        }
        Action::Delete => {
            let live = change.live.as_ref().expect("a delete has a live resource");
            resources::delete(cx, live, &waits).await?;
            Ok(live.physical_id.clone())
        }
    }
}
