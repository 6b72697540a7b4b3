//! The specs of the load balancer, its target groups, listeners and rules: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::refs::Reference;
use crate::model::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    pub name: String,
    pub scheme: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupSpec {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub target_type: String,
    pub vpc: String,
    pub health_check_path: String,
    pub health_check_port: String,
    pub health_check_interval_s: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub matcher: String,
    /// How long a task being replaced keeps its in-flight requests.
    pub deregistration_delay_s: i32,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerSpec {
    pub load_balancer: String,
    pub port: i32,
    pub protocol: String,
    pub certificate: Option<String>,
    pub ssl_policy: Option<String>,
    pub action: ListenerAction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ListenerAction {
    Redirect {
        port: String,
        protocol: String,
        status_code: String,
    },
    Forward {
        target_group: String,
    },
}

/// A rule of a listener that forwards to target groups by weight. ECS owns
/// the weights while it shifts traffic between a service's two target
/// groups, so they are live state (attributes), never desired state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerRuleSpec {
    pub listener: String,
    pub priority: i32,
    pub path_pattern: String,
    /// The first gets all traffic when the rule is made.
    pub target_groups: Vec<String>,
    pub tags: Tags,
}

impl Properties for LoadBalancerSpec {
    const IMMUTABLE: &'static [&'static str] = &["name", "scheme"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}

impl Properties for TargetGroupSpec {
    const IMMUTABLE: &'static [&'static str] = &["name", "port", "protocol", "target_type", "vpc"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}

impl Properties for ListenerSpec {
    const IMMUTABLE: &'static [&'static str] = &["load_balancer", "port"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}

impl Properties for ListenerRuleSpec {
    const IMMUTABLE: &'static [&'static str] = &["listener"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}
