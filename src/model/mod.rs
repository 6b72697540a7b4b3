//! The resource model shared by the blueprint (desired), discovery (live) and
//! the engine (diff and apply).
//!
//! A resource is named by a logical [`ResourceId`] such as `subnet/private-eu-west-1a`,
//! stored on the AWS resource as the `poolside:id` tag. References between
//! resources use logical ids too, so desired and live specs compare directly;
//! something poolside does not manage (a rule added by hand that points at a
//! foreign group, say) keeps its AWS id.
//!
//! Contract: data and pure functions only (no AWS call, no I/O); everything
//! above depends on it, and it depends on nothing of poolside's but serde.

mod id;
pub mod refs;
mod spec;

pub use id::*;
pub use spec::*;

use serde::Serialize;
use std::collections::BTreeMap;

/// A resource that exists in AWS and carries this environment's tags.
#[derive(Clone, Debug, Serialize)]
pub struct Live {
    pub id: ResourceId,
    pub physical_id: String,
    pub spec: Spec,
    /// Values worth reporting that are not desired state (a repository URI, say).
    pub attributes: BTreeMap<String, String>,
}

/// A resource the blueprint wants.
#[derive(Clone, Debug, Serialize)]
pub struct Desired {
    pub id: ResourceId,
    pub spec: Spec,
    /// What must be done first although the spec does not name it: AWS
    /// refuses a NAT gateway or an internet-facing load balancer until the
    /// VPC's internet gateway is attached, say.
    pub after: Vec<ResourceId>,
}

impl Desired {
    /// The same resource, made only once `first` is done.
    pub fn after(mut self, first: &ResourceId) -> Self {
        self.after.push(first.clone());
        self
    }

    /// Everything that must be done before this resource.
    pub fn dependencies(&self) -> Vec<ResourceId> {
        let mut all = self.spec.references();
        all.extend(self.after.iter().cloned());
        all.sort();
        all.dedup();
        all
    }
}
