//! The specs of the cluster, the task definitions and the service with its deployment strategy: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::refs::Reference;
use crate::model::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub name: String,
    pub container_insights: bool,
    pub tags: Tags,
}

/// A Fargate task definition with one container. An update registers a new
/// revision; the service then moves to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinitionSpec {
    pub family: String,
    pub cpu: String,
    pub memory: String,
    pub execution_role: String,
    pub task_role: String,
    pub container: ContainerSpec,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Overrides the image's command; empty keeps it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    pub ports: BTreeSet<i32>,
    pub environment: BTreeMap<String, String>,
    /// Variable name → Secrets Manager ARN (with an optional `:json-key::`).
    pub secrets: BTreeMap<String, String>,
    pub log_driver: String,
    pub log_options: BTreeMap<String, String>,
    pub readonly_root_filesystem: bool,
}

/// How ECS rolls out a new task definition. Traffic-shifting strategies
/// (canary, linear) move traffic from the service's target group to its
/// alternate one through the production listener rule, and roll back when
/// one of the alarms fires, without poolside running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    /// ROLLING, CANARY or LINEAR, as ECS names them.
    pub strategy: String,
    /// Canary: the first share; linear: each step's share.
    pub percent: Option<f64>,
    pub step_minutes: Option<i32>,
    pub bake_minutes: Option<i32>,
    pub rollback_alarms: BTreeSet<String>,
    /// The alternate target group, the production listener rule and the
    /// role ECS uses to change the rule; set for traffic-shifting strategies.
    pub traffic: Option<TrafficRouting>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficRouting {
    pub alternate_target_group: String,
    pub production_rule: String,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    pub cluster: String,
    pub task_definition: String,
    /// `None` while an autoscaler owns the count: then it is not drift.
    pub desired_count: Option<i32>,
    /// The count at create when the autoscaler owns it afterwards.
    #[serde(skip)]
    pub initial_count: i32,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub assign_public_ip: bool,
    pub target_group: String,
    pub container_name: String,
    pub container_port: i32,
    pub circuit_breaker_rollback: bool,
    /// `None` when the service reports no deployment configuration (moto
    /// after CreateService): then it is not drift.
    pub deployment: Option<DeploymentSpec>,
    /// The service's newest deployment failed (its circuit breaker tripped
    /// with nothing to roll back to, say). Never desired: a deploy that finds
    /// it starts a new deployment, even when nothing else changed.
    pub last_deployment_failed: bool,
    pub tags: Tags,
    /// What must exist first that the spec does not name (the listener).
    #[serde(skip)]
    pub depends_on: Vec<ResourceId>,
}

impl Properties for ClusterSpec {
    const IMMUTABLE: &'static [&'static str] = &["name"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}

impl Properties for TaskDefinitionSpec {
    const IMMUTABLE: &'static [&'static str] = &["family"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}

impl Properties for ServiceSpec {
    const IMMUTABLE: &'static [&'static str] = &["name", "cluster"];

    fn ordering(&self) -> Vec<ResourceId> {
        self.depends_on.clone()
    }

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        // What serde skips is not part of the round trip: carry it over.
        ServiceSpec {
            initial_count: self.initial_count,
            depends_on: self.depends_on.clone(),
            ..substitute_serialized(self, resolve)
        }
    }

    fn with_unreported_from(&self, desired: &Self) -> Self {
        if self.deployment.is_some() {
            return self.clone();
        }
        // The breaker is part of the same unreported configuration.
        ServiceSpec {
            deployment: desired.deployment.clone(),
            circuit_breaker_rollback: desired.circuit_breaker_rollback,
            ..self.clone()
        }
    }
}
