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

use super::events::{now_ms, Event, EventSink};
use super::plan::{Action, Change, Plan};
use crate::model::{AwsService, Kind, ResourceId};
use crate::resources::{self, Context};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// How many steps of one AWS service may be in flight at once. AWS throttles
/// each service on its own (token buckets per account and region), so one
/// global cap either idles the fast services or floods the slow ones.
fn max_in_flight(service: AwsService) -> usize {
    match service {
        // EC2's bucket for mutating calls holds 200 (refill 5/s).
        AwsService::Ec2 => 16,
        // PutMetricAlarm: 3 transactions per second.
        AwsService::CloudWatch => 3,
        // Route 53: 5 requests per second per account; IAM and ACM are
        // global or low-rate control planes.
        AwsService::Route53 | AwsService::Iam | AwsService::Acm => 4,
        AwsService::ApplicationAutoScaling => 4,
        _ => 8,
    }
}

#[derive(Debug, Default, Serialize)]
pub struct ApplyReport {
    pub succeeded: Vec<ResourceId>,
    pub failed: Vec<(ResourceId, String)>,
    pub skipped: Vec<ResourceId>,
    /// Made, but their wait abandoned for Ctrl-C (AWS goes on with them).
    pub left_to_aws: Vec<ResourceId>,
}

impl ApplyReport {
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.left_to_aws.is_empty()
    }

    /// What this apply changed in AWS: the steps that finished, and those
    /// whose create call was made before Ctrl-C abandoned their wait.
    pub fn changed(&self) -> Vec<ResourceId> {
        self.succeeded
            .iter()
            .chain(&self.left_to_aws)
            .cloned()
            .collect()
    }
}

/// Kinds whose create AWS finishes by itself once the call returned: what
/// the step still had to do was wait. (A certificate is not: after its
/// request the step writes the validation record itself.)
const FINISHED_BY_AWS: &[Kind] = &[Kind::DbInstance];

/// The resource a create (or a replace's create) made before its wait was
/// interrupted: it was recorded when the call returned.
fn made_before_interrupt(cx: &Context, change: &Change, error: &anyhow::Error) -> Option<String> {
    let interrupted = error
        .chain()
        .any(|cause| cause.is::<crate::interrupt::Interrupted>());
    if !interrupted
        || !matches!(change.action, Action::Create | Action::Replace)
        || !change
            .id
            .kind()
            .is_some_and(|k| FINISHED_BY_AWS.contains(&k))
    {
        return None;
    }
    let before = change.live.as_ref().map(|l| l.physical_id.as_str());
    cx.physical_id(&change.id)
        .filter(|made| Some(made.as_str()) != before)
}

pub async fn apply(cx: &Context, plan: &Plan, events: &dyn EventSink) -> ApplyReport {
    apply_after(cx, plan, events, &[]).await
}

/// [`apply`] of a plan whose steps all come after `done` (steps of this
/// command that already ran, such as the schema step between a deploy's two
/// applies): their events name them as waited for, so the critical path
/// runs through them.
pub async fn apply_after(
    cx: &Context,
    plan: &Plan,
    events: &dyn EventSink,
    done: &[ResourceId],
) -> ApplyReport {
    let mut report = ApplyReport::default();
    // A replace is two steps: the old resource's delete and the new one's create.
    let old_ones: Vec<Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .map(old_one)
        .collect();
    events.emit(Event::ApplyStarted {
        total: plan.changes.len() + old_ones.len(),
    });
    let (mut deletes, mut others): (Vec<&Change>, Vec<&Change>) = plan
        .changes
        .iter()
        .partition(|c| c.action == Action::Delete);

    // Replaced resources that cannot stand next to their replacement go
    // first, what refers to them before them (AWS refuses to delete what is
    // still referred to), so the forward pass can make the new ones.
    let (removed_last, removed_first): (Vec<&Change>, Vec<&Change>) =
        old_ones.iter().partition(|c| c.create_before_destroy);
    if !removed_first.is_empty() {
        let blocked = remove_first(cx, events, &mut report, &removed_first).await;
        others.retain(|c| !blocked.contains(&c.id));
    }
    deletes.extend(removed_last);
    forward(cx, events, &mut report, &others, done).await;
    let mut previous_wave: Vec<ResourceId> = others.iter().map(|c| c.id.clone()).collect();
    if previous_wave.is_empty() {
        previous_wave = done.to_vec();
    }
    delete_waves(cx, events, &mut report, &deletes, previous_wave).await;
    events.emit(Event::ApplyFinished {
        succeeded: report.succeeded.len(),
        failed: report.failed.len(),
        skipped: report.skipped.len(),
    });
    report
}

/// Deletes the old resources of replaces that must go first, what refers to
/// them before them; returns the replaces that cannot be made (their old
/// resource is still there), whose dependants are skipped.
async fn remove_first(
    cx: &Context,
    events: &dyn EventSink,
    report: &mut ApplyReport,
    removed_first: &[&Change],
) -> BTreeSet<ResourceId> {
    let mut removal = ApplyReport::default();
    // The old resources that refer to this one: it goes after them.
    let after_of = |change: &Change| -> Vec<ResourceId> {
        let original = change.id.copy_of();
        removed_first
            .iter()
            .filter(|other| {
                original
                    .as_ref()
                    .is_some_and(|id| other.dependencies.contains(id))
            })
            .map(|other| other.id.clone())
            .collect()
    };
    let referrers_gone = |change: &Change, gone: &BTreeSet<ResourceId>| {
        after_of(change).iter().all(|id| gone.contains(id))
    };
    run_waves(
        cx,
        events,
        &mut removal,
        removed_first,
        &after_of,
        |gone, pending| {
            pending
                .iter()
                .filter(|c| referrers_gone(c, gone))
                .map(|c| c.id.clone())
                .collect()
        },
    )
    .await;
    // A replace whose old resource is still there is not made; what
    // depends on it is skipped.
    let blocked: BTreeSet<ResourceId> = removal
        .failed
        .iter()
        .map(|(id, _)| id)
        .chain(&removal.skipped)
        .filter_map(|id| id.copy_of())
        .collect();
    report.failed.extend(removal.failed);
    report.skipped.extend(removal.skipped);
    blocked
}

/// Forward pass: a step waits for the steps of the resources it refers to.
async fn forward(
    cx: &Context,
    events: &dyn EventSink,
    report: &mut ApplyReport,
    others: &[&Change],
    done: &[ResourceId],
) {
    let in_plan: BTreeSet<&ResourceId> = others.iter().map(|c| &c.id).collect();
    let mut waiting_on: BTreeMap<&ResourceId, BTreeSet<ResourceId>> = others
        .iter()
        .map(|c| {
            let deps = c.dependencies.iter().filter(|d| in_plan.contains(d));
            (&c.id, deps.cloned().collect())
        })
        .collect();
    let after_of = |change: &Change| -> Vec<ResourceId> {
        let deps = waiting_on_at_start(change, &in_plan);
        if deps.is_empty() {
            done.to_vec()
        } else {
            deps
        }
    };
    run_waves(cx, events, report, others, &after_of, |done, pending| {
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
}

/// Deletes, lowest rank first; a wave waits for the one before it.
async fn delete_waves(
    cx: &Context,
    events: &dyn EventSink,
    report: &mut ApplyReport,
    deletes: &[&Change],
    mut previous_wave: Vec<ResourceId>,
) {
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
        let after_of = |_: &Change| previous_wave.clone();
        run_waves(cx, events, report, &wave, &after_of, |_, pending| {
            pending.iter().map(|c| c.id.clone()).collect()
        })
        .await;
        previous_wave = wave.iter().map(|c| c.id.clone()).collect();
    }
}

/// The steps of the plan `change` waits for.
fn waiting_on_at_start(change: &Change, in_plan: &BTreeSet<&ResourceId>) -> Vec<ResourceId> {
    change
        .dependencies
        .iter()
        .filter(|d| in_plan.contains(d))
        .cloned()
        .collect()
}

/// Runs `steps`, starting those that `ready` says may start given what is
/// done, as long as their service has room ([`max_in_flight`]). Steps never
/// made ready (their dependency failed) are reported as skipped.
async fn run_waves<'a>(
    cx: &Context,
    events: &dyn EventSink,
    report: &mut ApplyReport,
    steps: &[&'a Change],
    after_of: &dyn Fn(&Change) -> Vec<ResourceId>,
    mut ready: impl FnMut(&BTreeSet<ResourceId>, &[&'a Change]) -> Vec<ResourceId>,
) {
    let mut pending: Vec<&Change> = steps.to_vec();
    let mut done: BTreeSet<ResourceId> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let mut in_flight: BTreeMap<AwsService, usize> = BTreeMap::new();
    // Ready steps waiting for room in their service, in the order they became ready.
    let mut queued: Vec<ResourceId> = Vec::new();
    loop {
        for id in ready(&done, &pending) {
            if !queued.contains(&id) {
                queued.push(id);
            }
        }
        // After Ctrl-C, what is in flight finishes and nothing new starts.
        let mut index = 0;
        while index < queued.len() && !crate::interrupt::requested() {
            let position = pending
                .iter()
                .position(|c| c.id == queued[index])
                .expect("ready ids come from pending");
            let service = service_of(pending[position]);
            let busy = in_flight.entry(service).or_default();
            if *busy >= max_in_flight(service) {
                index += 1;
                continue;
            }
            *busy += 1;
            queued.remove(index);
            let change = pending.remove(position);
            let started_ms = now_ms();
            events.emit(Event::StepStarted {
                id: change.id.clone(),
                action: change.action,
                after: after_of(change),
                at_ms: started_ms,
            });
            running.push(async move {
                let started = Instant::now();
                let result = run_step(cx, change, events).await;
                (change, result, started.elapsed(), started_ms)
            });
        }
        let Some((change, result, elapsed, started_ms)) = running.next().await else {
            break;
        };
        *in_flight.entry(service_of(change)).or_default() -= 1;
        let finished_ms = now_ms();
        match result {
            Ok(physical_id) => {
                events.emit(Event::StepSucceeded {
                    id: change.id.clone(),
                    action: change.action,
                    physical_id,
                    elapsed_ms: elapsed.as_millis() as u64,
                    started_ms,
                    finished_ms,
                });
                report.succeeded.push(change.id.clone());
                done.insert(change.id.clone());
            }
            Err(error) if made_before_interrupt(cx, change, &error).is_some() => {
                events.emit(Event::StepLeftToAws {
                    id: change.id.clone(),
                    action: change.action,
                    physical_id: made_before_interrupt(cx, change, &error).unwrap_or_default(),
                    started_ms,
                    finished_ms,
                });
                report.left_to_aws.push(change.id.clone());
            }
            Err(error) => {
                let message = format!("{error:#}");
                events.emit(Event::StepFailed {
                    id: change.id.clone(),
                    action: change.action,
                    error: message.clone(),
                    started_ms,
                    finished_ms,
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

/// The delete half of a replace: the old resource, named as a copy of the
/// logical id (`<id>#<aws id>`) so its events and the new one's differ.
fn old_one(replace: &Change) -> Change {
    let live = replace.live.clone().expect("a replace has a live resource");
    Change {
        id: ResourceId(format!("{}#{}", replace.id, live.physical_id)),
        action: Action::Delete,
        properties: Vec::new(),
        desired: None,
        live: Some(live),
        dependencies: replace.dependencies.clone(),
        replaced_because: None,
        create_before_destroy: replace.create_before_destroy,
    }
}

fn service_of(change: &Change) -> AwsService {
    change
        .id
        .kind()
        .map_or(AwsService::Other, |kind| kind.service())
}

async fn run_step(cx: &Context, change: &Change, events: &dyn EventSink) -> anyhow::Result<String> {
    let waits = resources::Waits::new(&events);
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
        // The old resource is deleted in a step of its own (`old_one`).
        Action::Replace => {
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
