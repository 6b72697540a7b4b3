//! The specs of the IAM roles of the service tier: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::refs::Reference;
use crate::model::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleSpec {
    pub name: String,
    pub description: String,
    pub trust_policy: Value,
    /// Inline policies by name. Managed policies are not used: every
    /// permission is written here, scoped to this environment's resources.
    pub inline_policies: BTreeMap<String, Value>,
    pub managed_policies: BTreeSet<String>,
    /// The managed policy that caps what the role may do, whatever its own
    /// policies say (the customer's, from `poolside onboarding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    pub tags: Tags,
}

impl Properties for RoleSpec {
    const IMMUTABLE: &'static [&'static str] = &["name"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}
