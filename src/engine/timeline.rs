//! Where a command's time went: every step's start and end, what it waited
//! for, and the critical path through them.
//!
//! The critical path is the chain of steps, each waiting for the one before,
//! whose durations add up to the most: no amount of concurrency finishes
//! sooner. On real AWS it names what to blame (RDS's ten minutes); next to
//! the makespan (first start to last end) it says how much time the
//! scheduler itself lost.

use crate::model::ResourceId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Clone, Debug, Serialize)]
pub struct StepTime {
    pub id: ResourceId,
    pub after: Vec<ResourceId>,
    pub started_ms: u64,
    pub finished_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriticalPath {
    pub steps: Vec<ResourceId>,
    /// The sum of the path's step durations.
    pub critical_path_ms: u64,
    /// From the first step's start to the last step's end.
    pub makespan_ms: u64,
}

#[derive(Debug, Default)]
pub struct Timeline(Mutex<Vec<StepTime>>);

impl Timeline {
    pub fn record(&self, step: StepTime) {
        self.0.lock().unwrap().push(step);
    }

    pub fn steps(&self) -> Vec<StepTime> {
        self.0.lock().unwrap().clone()
    }

    pub fn critical_path(&self) -> Option<CriticalPath> {
        critical_path(&self.steps())
    }
}

/// The longest chain by duration through `after`; `None` when nothing ran.
pub fn critical_path(steps: &[StepTime]) -> Option<CriticalPath> {
    let by_id: BTreeMap<&ResourceId, &StepTime> = steps.iter().map(|s| (&s.id, s)).collect();
    // Longest chain ending at each step, in start order: a step starts after
    // everything it waited for, so those are already computed.
    let mut ordered: Vec<&StepTime> = steps.iter().collect();
    ordered.sort_by_key(|s| (s.started_ms, s.finished_ms));
    let mut longest: BTreeMap<&ResourceId, (u64, Option<&ResourceId>)> = BTreeMap::new();
    for step in &ordered {
        let duration = step.finished_ms.saturating_sub(step.started_ms);
        let best_before = step
            .after
            .iter()
            .filter(|id| by_id.contains_key(id))
            .filter_map(|id| longest.get(id).map(|(length, _)| (*length, id)))
            .max_by_key(|(length, _)| *length);
        let entry = match best_before {
            Some((length, id)) => (length + duration, Some(id)),
            None => (duration, None),
        };
        longest.insert(&step.id, entry);
    }
    let (mut end, (length, _)) = longest
        .iter()
        .max_by_key(|(id, (length, _))| (*length, by_id[*id].finished_ms))?;
    let mut chain = vec![(*end).clone()];
    while let Some((_, Some(before))) = longest.get(end) {
        chain.push((*before).clone());
        end = before;
    }
    chain.reverse();
    let first = steps.iter().map(|s| s.started_ms).min()?;
    let last = steps.iter().map(|s| s.finished_ms).max()?;
    Some(CriticalPath {
        steps: chain,
        critical_path_ms: *length,
        makespan_ms: last - first,
    })
}

impl std::fmt::Display for CriticalPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.steps.iter().map(|id| id.0.as_str()).collect();
        write!(
            f,
            "critical path: {}, {:.1} s of {:.1} s",
            names.join(" → "),
            self.critical_path_ms as f64 / 1000.0,
            self.makespan_ms as f64 / 1000.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, after: &[&str], started_ms: u64, finished_ms: u64) -> StepTime {
        StepTime {
            id: ResourceId(id.into()),
            after: after.iter().map(|a| ResourceId((*a).into())).collect(),
            started_ms,
            finished_ms,
        }
    }

    #[test]
    fn the_critical_path_is_the_longest_chain_by_duration_not_the_last_to_finish() {
        // vpc → subnet → nat (slow) and vpc → bucket-policy, which started
        // late (the scheduler was busy) and so ends last, but is short.
        let steps = [
            step("vpc", &[], 0, 100),
            step("subnet", &["vpc"], 100, 200),
            step("nat", &["subnet"], 200, 900),
            step("bucket", &[], 0, 50),
            step("bucket-policy", &["bucket"], 950, 1000),
        ];
        let path = critical_path(&steps).unwrap();
        let names: Vec<&str> = path.steps.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["vpc", "subnet", "nat"]);
        assert_eq!(path.critical_path_ms, 900);
        assert_eq!(path.makespan_ms, 1000);
        assert_eq!(
            path.to_string(),
            "critical path: vpc → subnet → nat, 0.9 s of 1.0 s"
        );
    }

    #[test]
    fn a_dependency_outside_the_timeline_does_not_count_and_nothing_ran_is_none() {
        let steps = [step("alarm", &["not-in-this-run"], 10, 30)];
        let path = critical_path(&steps).unwrap();
        assert_eq!(path.steps, [ResourceId("alarm".into())]);
        assert_eq!(path.critical_path_ms, 20);
        assert!(critical_path(&[]).is_none());
    }
}
