//! The service tier: PostgREST on ECS Fargate. Its log group, the roles of
//! its agent and its tasks, the cluster, the task definition, the service
//! (with its rollout strategy and rollback alarms) and its autoscaling.

use super::builder::{AccountFacts, Builder};
use super::load_balancer::Front;
use super::observability::ROLLBACK_ALARMS;
use crate::config::{Config, RolloutStrategy};
use crate::model::refs::Reference;
use crate::model::*;
use crate::names::{
    admin_port, alarm_prefix, cluster_name, log_group_name, service_name, AUTHENTICATOR_SECRET,
    CONTAINER_NAME, JWT_SECRET,
};
use crate::resources::spec::*;
use crate::templates::render_json;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

fn id(kind: Kind, name: &str) -> ResourceId {
    ResourceId::new(kind, name)
}

fn arn_of(kind: Kind, name: &str) -> String {
    Reference::to_attribute(&id(kind, name), "arn")
}

/// What the service runs: its log group, its roles, the cluster and the
/// task definition.
pub(super) fn tasks(
    b: &Builder,
    config: &Config,
    account: &AccountFacts,
) -> anyhow::Result<Vec<Desired>> {
    let api = &config.api;
    let log_group = log_group_name(config);
    let mut out = vec![b.desired(&id(Kind::LogGroup, "api"), "api", |tags| {
        Spec::LogGroup(LogGroupSpec {
            name: log_group.clone(),
            retention_days: api.log_retention_days as i32,
            tags,
        })
    })];
    out.extend(roles(b, config, account, &log_group)?);
    out.push(b.desired(&id(Kind::Cluster, "main"), "cluster", |tags| {
        Spec::Cluster(ClusterSpec {
            name: cluster_name(config),
            container_insights: api.container_insights,
            tags,
        })
    }));
    out.push(task_definition(b, config, &log_group)?);
    Ok(out)
}

/// The trust policy of the roles ECS tasks and their agents assume.
pub(super) fn tasks_trust_policy(account: &AccountFacts) -> anyhow::Result<serde_json::Value> {
    render_json(
        "ecs-tasks-trust-policy.json.j2",
        json!({ "account_id": account.account_id }),
    )
}

/// The agent's role (pull, log, read the two secrets) and the task's own
/// (nothing).
fn roles(
    b: &Builder,
    config: &Config,
    account: &AccountFacts,
    log_group: &str,
) -> anyhow::Result<Vec<Desired>> {
    let env = &config.name;
    let trust = tasks_trust_policy(account)?;
    let execution_policy = execution_policy(
        config,
        account,
        log_group,
        &[
            Reference::to(&id(Kind::Secret, AUTHENTICATOR_SECRET)),
            Reference::to(&id(Kind::Secret, JWT_SECRET)),
        ],
    )?;
    let roles = [
        (
            "task-execution",
            "ECS agent for the API tasks: pull the image, write logs, read the API's two secrets",
            BTreeMap::from([("poolside-task-execution".to_string(), execution_policy)]),
        ),
        (
            "task",
            "the API tasks themselves: PostgREST calls no AWS API, so no permissions",
            BTreeMap::new(),
        ),
    ];
    Ok(roles
        .into_iter()
        .map(|(name, purpose, inline_policies)| {
            b.desired(&id(Kind::Role, name), name, |tags| {
                Spec::Role(RoleSpec {
                    name: format!("poolside-{env}-{name}"),
                    description: format!("poolside {env}: {purpose}"),
                    trust_policy: trust.clone(),
                    inline_policies,
                    managed_policies: BTreeSet::new(),
                    permissions_boundary: config.permissions_boundary(),
                    tags,
                })
            })
        })
        .collect())
}

/// What an ECS agent of this environment may do: pull from its repository,
/// write to its log group, and read exactly the secrets its tasks name.
pub(super) fn execution_policy(
    config: &Config,
    account: &AccountFacts,
    log_group: &str,
    secret_arns: &[String],
) -> anyhow::Result<serde_json::Value> {
    let partition = &account.partition;
    render_json(
        "task-execution-policy.json.j2",
        json!({
            "repository_arn": format!(
                "arn:{partition}:ecr:{}:{}:repository/{}",
                config.region, account.account_id, config.registry.repository_name
            ),
            "log_group_arn": format!(
                "arn:{partition}:logs:{}:{}:log-group:{log_group}",
                config.region, account.account_id
            ),
            "secret_arns": secret_arns,
        }),
    )
}

fn task_definition(b: &Builder, config: &Config, log_group: &str) -> anyhow::Result<Desired> {
    let api = &config.api;
    let mut task_definition = render_json(
        "task-definition.json.j2",
        json!({
            "family": format!("poolside-{}-api", config.name),
            "cpu": api.cpu,
            "memory": api.memory,
            "db_pool": api.db_pool,
            "execution_role_arn": arn_of(Kind::Role, "task-execution"),
            "task_role_arn": arn_of(Kind::Role, "task"),
            "container_name": CONTAINER_NAME,
            "image": format!(
                "{}{}",
                Reference::to_attribute(&id(Kind::Repository, "postgrest"), "uri"),
                api.repository_suffix
            ),
            "api_port": config.network.api_port,
            "admin_port": admin_port(config),
            "database_host": Reference::to_attribute(&id(Kind::DbInstance, "main"), "address"),
            "database_port": Reference::to_attribute(&id(Kind::DbInstance, "main"), "port"),
            "database_name": config.database.name,
            "authenticator_secret_arn": Reference::to(&id(Kind::Secret, AUTHENTICATOR_SECRET)),
            "jwt_secret_arn": Reference::to(&id(Kind::Secret, JWT_SECRET)),
            "log_group": log_group,
            "region": config.region,
        }),
    )?;
    let task_definition_id = id(Kind::TaskDefinition, "api");
    task_definition["tags"] = json!(b.tags(&task_definition_id, "api"));
    let task_definition: TaskDefinitionSpec =
        serde_json::from_value(task_definition).map_err(|e| {
            anyhow::anyhow!(
                "templates/task-definition.json.j2 does not render a task definition: {e}"
            )
        })?;
    Ok(Desired {
        id: task_definition_id,
        spec: Spec::TaskDefinition(task_definition),
        after: vec![],
    })
}

/// How ECS rolls a new task definition out: all at once (rolling, with the
/// circuit breaker), or shifting traffic to the alternate group (canary,
/// linear) and rolling back on the alarms.
fn deployment(config: &Config, front: &Front) -> DeploymentSpec {
    let rollout = &config.api.rollout;
    let shifts = rollout.shifts_traffic();
    DeploymentSpec {
        strategy: match rollout.strategy {
            RolloutStrategy::Rolling => "ROLLING",
            RolloutStrategy::Canary => "CANARY",
            RolloutStrategy::Linear => "LINEAR",
        }
        .into(),
        percent: shifts.then_some(rollout.percent),
        step_minutes: shifts.then_some(rollout.step_minutes as i32),
        bake_minutes: shifts.then_some(rollout.bake_minutes as i32),
        rollback_alarms: ROLLBACK_ALARMS
            .iter()
            .map(|name| format!("{}{name}", alarm_prefix(config)))
            .collect(),
        traffic: shifts.then(|| TrafficRouting {
            alternate_target_group: Reference::to(&front.alternate_target_group),
            production_rule: Reference::to(&front.production_rule),
            role: arn_of(Kind::Role, "ecs-load-balancers"),
        }),
    }
}

/// The ECS service, and its autoscaling when configured.
pub(super) fn service(
    b: &Builder,
    config: &Config,
    front: &Front,
    private_subnets: &[ResourceId],
) -> Vec<Desired> {
    let api = &config.api;
    let service = id(Kind::Service, "api");
    let service_desired = b.desired(&service, "api", |tags| {
        Spec::Service(ServiceSpec {
            name: service_name(config),
            cluster: Reference::to(&id(Kind::Cluster, "main")),
            task_definition: Reference::to(&id(Kind::TaskDefinition, "api")),
            desired_count: match api.autoscaling {
                Some(_) => None,
                None => Some(api.desired_count as i32),
            },
            initial_count: api.desired_count as i32,
            subnets: private_subnets.iter().map(Reference::to).collect(),
            security_groups: [Reference::to(&id(Kind::SecurityGroup, "api"))].into(),
            assign_public_ip: false,
            target_group: Reference::to(&front.target_group),
            container_name: CONTAINER_NAME.into(),
            container_port: config.network.api_port.into(),
            // ECS's circuit breaker is for rolling deployments only; canary
            // and linear roll back on the alarms instead.
            circuit_breaker_rollback: !api.rollout.shifts_traffic(),
            deployment: Some(deployment(config, front)),
            last_deployment_failed: false,
            // ECS refuses a target group that no listener uses yet.
            depends_on: vec![
                front.serving_listener.clone(),
                front.production_rule.clone(),
            ],
            tags,
        })
    });
    // ECS watches the rollback alarms from the first deployment on.
    let service_desired = ROLLBACK_ALARMS
        .iter()
        .fold(service_desired, |d, name| d.after(&id(Kind::Alarm, name)));
    let mut out = vec![service_desired];
    if let Some(scaling) = &api.autoscaling {
        out.push(Desired {
            id: id(Kind::Scaling, "api"),
            spec: Spec::Scaling(ScalingSpec {
                resource_id: format!("service/{}/{}", cluster_name(config), service_name(config)),
                min_capacity: api.desired_count as i32,
                max_capacity: scaling.max_count as i32,
                cpu_target_percent: scaling.cpu_target_percent as i32,
                requests_per_target: scaling.requests_per_target as i32,
                request_label: format!(
                    "{}/{}",
                    Reference::to_attribute(&front.load_balancer, "dimension"),
                    Reference::to_attribute(&front.target_group, "dimension")
                ),
                depends_on: vec![service.clone()],
            }),
            after: vec![],
        });
    }
    out
}
