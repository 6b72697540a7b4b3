//! The specs of the service's auto scaling: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::refs::Reference;
use crate::model::*;
use serde::{Deserialize, Serialize};

/// Application Auto Scaling of the service: its bounds and target-tracking policies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingSpec {
    /// `service/<cluster>/<service>`.
    pub resource_id: String,
    pub min_capacity: i32,
    pub max_capacity: i32,
    pub cpu_target_percent: i32,
    pub requests_per_target: i32,
    /// `app/<lb>/<id>/targetgroup/<tg>/<id>` for the requests metric.
    pub request_label: String,
    #[serde(skip)]
    pub depends_on: Vec<ResourceId>,
}

impl Properties for ScalingSpec {
    const IMMUTABLE: &'static [&'static str] = &["resource_id"];

    fn ordering(&self) -> Vec<ResourceId> {
        self.depends_on.clone()
    }

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        ScalingSpec {
            depends_on: self.depends_on.clone(),
            ..substitute_serialized(self, resolve)
        }
    }
}
