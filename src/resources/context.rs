//! What every resource step needs: the clients, the environment, and the map
//! from logical ids to AWS ids (seeded by discovery, grown by creates), with
//! what a delete may take with it.
//!
//! Contract: in-memory state only; it makes no AWS call itself.

use super::spec::{Live, Spec};
use crate::aws::Clients;
use crate::model::*;
use anyhow::anyhow;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What deleting a stateful resource may do. The default keeps data: a
/// bucket or repository that holds anything is not deleted, and an instance
/// leaves a final snapshot.
#[derive(Clone, Copy, Debug)]
pub struct DeletionPolicy {
    /// Empty a bucket (every version and delete marker) and a repository
    /// (every image) before deleting it.
    pub delete_data: bool,
    pub final_snapshot: bool,
}

impl Default for DeletionPolicy {
    fn default() -> Self {
        DeletionPolicy {
            delete_data: false,
            final_snapshot: true,
        }
    }
}

/// What every step needs: the clients, the environment, and the map from
/// logical ids to AWS ids, seeded by discovery and grown by creates.
pub struct Context {
    pub clients: Clients,
    pub environment: String,
    pub region: String,
    /// The target is an emulator (moto, LocalStack): no image pulls, no tasks.
    pub emulator: bool,
    /// `target.poll_interval_seconds`, when the file sets it.
    pub poll_every: Option<std::time::Duration>,
    /// What a delete may take with it; `destroy` sets it from its flags.
    pub deletion: DeletionPolicy,
    /// `database.snapshot_before_changes`: a manual snapshot before a change
    /// of the instance that is hard to undo.
    pub snapshot_before_risk: bool,
    physical_ids: Mutex<BTreeMap<ResourceId, String>>,
    attributes: Mutex<BTreeMap<ResourceId, BTreeMap<String, String>>>,
    /// Secret values read in this run, by ARN: poolside never changes a
    /// value after creating it, so one read serves the schema step and the
    /// local PostgREST. Kept in memory only; never printed.
    secret_values: Mutex<BTreeMap<String, String>>,
}

impl Context {
    pub fn new(clients: Clients, environment: &str, region: &str) -> Self {
        Context {
            clients,
            environment: environment.to_string(),
            region: region.to_string(),
            emulator: false,
            poll_every: None,
            deletion: DeletionPolicy::default(),
            snapshot_before_risk: false,
            physical_ids: Mutex::default(),
            attributes: Mutex::default(),
            secret_values: Mutex::default(),
        }
    }

    /// How often a wait asks AWS again ([`super::waits::poll`]): every 10 s
    /// on AWS, within every describe API's rate limits for one environment;
    /// every second on an emulator, which changes state at once.
    /// `target.poll_interval_seconds` sets another.
    pub fn poll_interval(&self) -> std::time::Duration {
        self.poll_every
            .unwrap_or(std::time::Duration::from_secs(if self.emulator {
                1
            } else {
                10
            }))
    }

    pub fn cached_secret_value(&self, arn: &str) -> Option<String> {
        self.secret_values.lock().unwrap().get(arn).cloned()
    }

    pub fn cache_secret_value(&self, arn: &str, value: &str) {
        self.secret_values
            .lock()
            .unwrap()
            .insert(arn.to_string(), value.to_string());
    }

    /// Remembers what discovery found, so later steps can refer to it.
    pub fn remember(&self, live: &[Live]) {
        for l in live {
            self.record(&l.id, &l.physical_id);
            for (k, v) in &l.attributes {
                self.record_attribute(&l.id, k, v);
            }
        }
    }

    pub fn record(&self, id: &ResourceId, physical_id: &str) {
        self.physical_ids
            .lock()
            .unwrap()
            .insert(id.clone(), physical_id.to_string());
    }

    pub fn record_attribute(&self, id: &ResourceId, key: &str, value: &str) {
        self.attributes
            .lock()
            .unwrap()
            .entry(id.clone())
            .or_default()
            .insert(key.to_string(), value.to_string());
    }

    pub fn physical_id(&self, id: &ResourceId) -> Option<String> {
        self.physical_ids.lock().unwrap().get(id).cloned()
    }

    /// The AWS ids of every resource of one kind that discovery found or this run made.
    pub fn physical_ids_of(&self, kind: Kind) -> Vec<String> {
        self.physical_ids
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id.kind() == Some(kind))
            .map(|(_, physical)| physical.clone())
            .collect()
    }

    /// One attribute of every resource of a kind, by AWS id.
    pub fn attributes_of(&self, kind: Kind, key: &str) -> Vec<(String, String)> {
        let attributes = self.attributes.lock().unwrap();
        self.physical_ids
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id.kind() == Some(kind))
            .filter_map(|(id, physical)| {
                Some((physical.clone(), attributes.get(id)?.get(key)?.clone()))
            })
            .collect()
    }

    pub fn attribute(&self, id: &ResourceId, key: &str) -> Option<String> {
        self.attributes.lock().unwrap().get(id)?.get(key).cloned()
    }

    /// The spec with every `${...}` reference filled in from what discovery
    /// found and this run created; an error names what does not exist yet.
    pub fn fill_references(&self, spec: &Spec) -> anyhow::Result<Spec> {
        let mut missing = Vec::new();
        let filled = spec.substitute(&mut |r| {
            let value = match &r.attribute {
                None => self.physical_id(&r.id),
                Some(attribute) => self.attribute(&r.id, attribute),
            };
            if value.is_none() {
                missing.push(r.to_string());
            }
            value
        });
        if !missing.is_empty() {
            return Err(anyhow!(
                "{} does not exist yet (it failed or was skipped earlier in this run)",
                missing.join(", ")
            ));
        }
        Ok(filled)
    }

    /// The AWS id behind a reference: ours from the map, anything else as written.
    pub fn resolve(&self, reference: &ResourceId) -> anyhow::Result<String> {
        if reference.kind().is_none() {
            return Ok(reference.0.clone());
        }
        self.physical_id(reference).ok_or_else(|| {
            anyhow!("{reference} does not exist yet (it failed or was skipped earlier in this run)")
        })
    }
}
