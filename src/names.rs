//! The names an environment's resources get in AWS, and the fixed names of
//! their parts (secrets, containers, the alternate target group).
//!
//! Contract: pure functions of the configuration, no AWS call. This module
//! sits below the blueprint and the resource families so that both, and the
//! commands that look resources up (verification, the local data plane, the
//! operator policy), agree on a name without importing each other.

use crate::config::Config;

/// The generated secret PostgREST connects to the database with.
pub const AUTHENTICATOR_SECRET: &str = "authenticator";
/// The generated secret PostgREST checks API tokens with.
pub const JWT_SECRET: &str = "jwt";
/// The API's container in its task definition.
pub const CONTAINER_NAME: &str = "postgrest";
/// The target group ECS shifts the API's traffic to during a rollout.
pub const ALTERNATE_TARGET_GROUP: &str = "api-alternate";

/// The name of one of the environment's generated secrets.
pub fn secret_name(config: &Config, which: &str) -> String {
    format!("poolside/{}/{which}", config.name)
}

/// The RDS instance's identifier (also its groups' base name and the alarms' dimension).
pub fn database_identifier(config: &Config) -> String {
    format!("poolside-{}", config.name)
}

pub fn cluster_name(config: &Config) -> String {
    format!("poolside-{}", config.name)
}

pub fn service_name(config: &Config) -> String {
    format!("poolside-{}-api", config.name)
}

/// Alarm names start with this, so discovery finds the environment's alarms.
pub fn alarm_prefix(config: &Config) -> String {
    format!("poolside-{}-", config.name)
}

pub fn log_group_name(config: &Config) -> String {
    format!("/poolside/{}/api", config.name)
}

/// PostgREST's admin server (`/live`, `/ready`) listens next to the API port.
pub fn admin_port(config: &Config) -> u16 {
    config.network.api_port + 1
}

/// The AWS-managed policy of the role ECS shifts traffic with: the one
/// managed policy poolside attaches, and so the only one the operator
/// policy lets it attach.
pub fn load_balancers_infrastructure_policy(partition: &str) -> String {
    format!("arn:{partition}:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers")
}
