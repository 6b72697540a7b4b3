//! ECS: the cluster and the Fargate service behind the load balancer (its
//! task definitions are `task_definitions.rs`, its rollouts `rollout.rs`).

pub mod rollout;
pub mod spec;
pub mod task_definitions;

use super::aws_error::{error_code, AwsResultExt};
use super::context::Context;
use super::tags::{check_owner, ecs_tags, from_ecs_tags, sync_ecs_tags};
use super::waits::Waits;
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use anyhow::{anyhow, bail};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ClusterField, ClusterSetting, ClusterSettingName,
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRolloutState, LaunchType,
    LoadBalancer, NetworkConfiguration, PropagateTags, ServiceField,
};
use std::collections::BTreeMap;
use std::time::Duration;
use task_definitions::task_definition_container;

// ---- cluster ----

pub async fn discover_cluster(
    cx: &Context,
    id: &ResourceId,
    name: &str,
) -> anyhow::Result<Vec<Live>> {
    let out = cx
        .clients
        .ecs
        .describe_clusters()
        .clusters(name)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .aws("DescribeClusters")?;
    let Some(cluster) = out
        .clusters()
        .iter()
        .find(|c| c.cluster_name() == Some(name) && c.status() == Some("ACTIVE"))
    else {
        return Ok(vec![]);
    };
    let tags = from_ecs_tags(cluster.tags());
    check_owner(cx, "ECS cluster", name, &tags)?;
    let insights = cluster
        .settings()
        .iter()
        .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
        .and_then(|s| s.value())
        .is_some_and(|v| v != "disabled");
    Ok(vec![Live {
        id: id.clone(),
        physical_id: cluster.cluster_arn().unwrap_or_default().to_string(),
        spec: Spec::Cluster(ClusterSpec {
            name: name.to_string(),
            container_insights: insights,
            tags,
        }),
        attributes: BTreeMap::new(),
    }])
}

fn insights_setting(on: bool) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(if on { "enabled" } else { "disabled" })
        .build()
}

/// ECS's service-linked role. In a new account it may not exist yet; ECS then
/// refuses CreateCluster and CreateService with "Unable to assume the service
/// linked role".
const ECS_SERVICE: &str = "ecs.amazonaws.com";

/// Creates ECS's service-linked role; one that exists already is fine.
pub async fn ensure_service_linked_role(cx: &Context) -> anyhow::Result<()> {
    match cx
        .clients
        .iam
        .create_service_linked_role()
        .aws_service_name(ECS_SERVICE)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // AWS: InvalidInput "Service role name AWSServiceRoleForECS has been taken".
        Err(err)
            if error_code(&err) == Some("EntityAlreadyExists")
                || (error_code(&err) == Some("InvalidInput")
                    && super::aws_error::error_message(&err)
                        .is_some_and(|m| m.contains("has been taken"))) =>
        {
            Ok(())
        }
        Err(err) => Err(err).aws("CreateServiceLinkedRole"),
    }
}

/// ECS cannot use a role yet that IAM made seconds ago: the service-linked
/// role, or a role named in the call.
fn role_not_assumable_yet<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    // "Unable to assume the service linked role", or for the role a
    // service's load balancer names, "ECS was unable to assume the role".
    error_code(err) == Some("InvalidParameterException")
        && super::aws_error::error_message(err)
            .is_some_and(|m| m.to_ascii_lowercase().contains("unable to assume"))
}

pub async fn create_cluster(cx: &Context, spec: &ClusterSpec) -> anyhow::Result<String> {
    ensure_service_linked_role(cx).await?;
    let out =
        super::aws_error::retry_while_settling("CreateCluster", role_not_assumable_yet, || {
            cx.clients
                .ecs
                .create_cluster()
                .cluster_name(&spec.name)
                .settings(insights_setting(spec.container_insights))
                .set_tags(Some(ecs_tags(&spec.tags)))
                .send()
        })
        .await
        .aws("CreateCluster")?;
    out.cluster()
        .and_then(|c| c.cluster_arn())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("CreateCluster returned no ARN"))
}

pub async fn update_cluster(
    cx: &Context,
    arn: &str,
    old: &ClusterSpec,
    new: &ClusterSpec,
) -> anyhow::Result<()> {
    if old.container_insights != new.container_insights {
        // UpdateCluster takes the same settings as UpdateClusterSettings,
        // and moto implements only the former.
        cx.clients
            .ecs
            .update_cluster()
            .cluster(arn)
            .settings(insights_setting(new.container_insights))
            .send()
            .await
            .aws("UpdateCluster")?;
    }
    sync_ecs_tags(cx, arn, &old.tags, &new.tags).await
}

pub async fn delete_cluster(cx: &Context, arn: &str) -> anyhow::Result<()> {
    super::aws_error::ignore_not_found(
        cx.clients.ecs.delete_cluster().cluster(arn).send().await,
        "DeleteCluster",
    )
}

// ---- task definition ----

// ---- service ----

/// How long a new task may fail health checks while PostgREST connects to
/// the database. Set on every create and update, not compared: moto does not
/// report it back.
const HEALTH_CHECK_GRACE_PERIOD_S: i32 = 60;

/// The service by name, when it exists and is not being deleted.
pub async fn describe_service(
    cx: &Context,
    cluster: &str,
    name: &str,
) -> anyhow::Result<Option<aws_sdk_ecs::types::Service>> {
    let out = match cx
        .clients
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .include(ServiceField::Tags)
        .send()
        .await
    {
        Ok(out) => out,
        Err(err) if error_code(&err) == Some("ClusterNotFoundException") => return Ok(None),
        Err(err) => return Err(err).aws("DescribeServices"),
    };
    Ok(out
        .services()
        .iter()
        .find(|s| s.service_name() == Some(name) && s.status() == Some("ACTIVE"))
        .cloned())
}

/// What [`describe_service`] found, checked for our tags.
pub fn observe_service(
    cx: &Context,
    id: &ResourceId,
    name: &str,
    service: Option<aws_sdk_ecs::types::Service>,
    autoscaled: bool,
) -> anyhow::Result<Vec<Live>> {
    let Some(service) = service else {
        return Ok(vec![]);
    };
    let tags = from_ecs_tags(service.tags());
    check_owner(cx, "ECS service", name, &tags)?;
    Ok(vec![service_live(id, name, &service, autoscaled, tags)])
}

fn service_live(
    id: &ResourceId,
    name: &str,
    service: &aws_sdk_ecs::types::Service,
    autoscaled: bool,
    tags: Tags,
) -> Live {
    let network = service
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration());
    let load_balancer = service.load_balancers().first();
    let breaker = service
        .deployment_configuration()
        .and_then(|d| d.deployment_circuit_breaker());
    let deployment = rollout::read(service);
    Live {
        id: id.clone(),
        physical_id: service.service_arn().unwrap_or_default().to_string(),
        spec: Spec::Service(ServiceSpec {
            name: name.to_string(),
            cluster: service.cluster_arn().unwrap_or_default().to_string(),
            task_definition: service.task_definition().unwrap_or_default().to_string(),
            desired_count: (!autoscaled).then_some(service.desired_count()),
            initial_count: service.desired_count(),
            subnets: network
                .map(|n| n.subnets().iter().cloned().collect())
                .unwrap_or_default(),
            security_groups: network
                .map(|n| n.security_groups().iter().cloned().collect())
                .unwrap_or_default(),
            assign_public_ip: network.and_then(|n| n.assign_public_ip())
                == Some(&AssignPublicIp::Enabled),
            target_group: load_balancer
                .and_then(|l| l.target_group_arn())
                .unwrap_or_default()
                .to_string(),
            container_name: load_balancer
                .and_then(|l| l.container_name())
                .unwrap_or_default()
                .to_string(),
            container_port: load_balancer
                .and_then(|l| l.container_port())
                .unwrap_or_default(),
            // AWS always reports the breaker (disabled or not); moto never
            // does (EMULATOR.md), so there a missing one is not drift.
            // A traffic-shifting service has no breaker of its own to compare:
            // whatever AWS kept from its rolling days is not sent again.
            circuit_breaker_rollback: rolls(deployment.as_ref())
                && breaker.is_none_or(|b| b.enable() && b.rollback()),
            deployment,
            last_deployment_failed: last_deployment_failed(service),
            tags,
            depends_on: vec![],
        }),
        attributes: service_attributes(name, service),
    }
}

/// Live state, for status; not desired state.
fn service_attributes(
    name: &str,
    service: &aws_sdk_ecs::types::Service,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("name".to_string(), name.to_string()),
        ("running".to_string(), service.running_count().to_string()),
        ("desired".to_string(), service.desired_count().to_string()),
        (
            "task_definition".to_string(),
            service.task_definition().unwrap_or_default().to_string(),
        ),
        (
            "rollout".to_string(),
            service
                .deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
                .and_then(|d| d.rollout_state())
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
        ),
    ])
}

fn network(spec: &ServiceSpec) -> anyhow::Result<NetworkConfiguration> {
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(spec.subnets.iter().cloned().collect()))
                .set_security_groups(Some(spec.security_groups.iter().cloned().collect()))
                .assign_public_ip(if spec.assign_public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()?,
        )
        .build())
}

/// Whether the service rolls out by replacing tasks (ECS's `ROLLING`), as
/// opposed to shifting traffic between two target groups.
fn rolls(spec: Option<&DeploymentSpec>) -> bool {
    spec.is_none_or(|d| d.strategy == "ROLLING")
}

fn deployment(spec: &ServiceSpec) -> DeploymentConfiguration {
    let mut builder =
        rollout::configure(DeploymentConfiguration::builder(), spec.deployment.as_ref());
    // "The deployment circuit breaker can only be used for services using
    // the rolling update deployment type" (ECS API reference).
    if rolls(spec.deployment.as_ref()) {
        builder = builder.deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(spec.circuit_breaker_rollback)
                .rollback(spec.circuit_breaker_rollback)
                .build(),
        );
    }
    // Rolling: new tasks start before old ones stop, so capacity never drops.
    builder
        .maximum_percent(200)
        .minimum_healthy_percent(100)
        .build()
}

fn load_balancer(spec: &ServiceSpec) -> LoadBalancer {
    LoadBalancer::builder()
        .target_group_arn(&spec.target_group)
        .container_name(&spec.container_name)
        .container_port(spec.container_port)
        .set_advanced_configuration(rollout::advanced(spec.deployment.as_ref()))
        .build()
}

/// Set on a live service whose target groups ECS has swapped: after a
/// traffic shift the alternate group may be the one serving.
pub const TARGET_GROUPS_SWAPPED: &str = "target_groups_swapped";

/// Reads a service's two target groups in the blueprint's roles, so that a
/// swap ECS made is not a change; the update keeps ECS's orientation.
pub fn orient_target_groups(live: &mut [Live]) {
    let arn_of = |live: &[Live], name: &str| {
        live.iter()
            .find(|l| l.id == ResourceId::new(Kind::TargetGroup, name))
            .map(|l| l.physical_id.clone())
    };
    let (Some(primary), Some(alternate)) = (
        arn_of(live, "api"),
        arn_of(live, crate::names::ALTERNATE_TARGET_GROUP),
    ) else {
        return;
    };
    for l in live.iter_mut() {
        let Spec::Service(service) = &mut l.spec else {
            continue;
        };
        let Some(traffic) = service.deployment.as_mut().and_then(|d| d.traffic.as_mut()) else {
            continue;
        };
        if service.target_group == alternate && traffic.alternate_target_group == primary {
            std::mem::swap(
                &mut service.target_group,
                &mut traffic.alternate_target_group,
            );
            l.attributes
                .insert(TARGET_GROUPS_SWAPPED.to_string(), "true".to_string());
        }
    }
}

/// Whether the newest deployment (ECS lists the PRIMARY one first) failed.
fn last_deployment_failed(service: &aws_sdk_ecs::types::Service) -> bool {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .is_some_and(|d| d.rollout_state() == Some(&DeploymentRolloutState::Failed))
}

/// On AWS, tasks pull their image from ECR: a service pointed at an image
/// the repository lacks never starts a task, and its circuit breaker trips
/// with nothing to roll back to. Refuse that before asking ECS.
async fn ensure_image_pullable(cx: &Context, task_definition: &str) -> anyhow::Result<()> {
    if cx.emulator {
        // The emulator's ECR holds no layers and runs no tasks: the local data
        // plane runs the installed PostgREST binary instead (README).
        return Ok(());
    }
    let (_, container) = task_definition_container(cx, task_definition).await?;
    super::registry::ensure_image_exists(cx, &container.image).await
}

pub async fn create_service(cx: &Context, spec: &ServiceSpec) -> anyhow::Result<String> {
    ensure_image_pullable(cx, &spec.task_definition).await?;
    let network = network(spec)?;
    let out =
        super::aws_error::retry_while_settling("CreateService", role_not_assumable_yet, || {
            cx.clients
                .ecs
                .create_service()
                .cluster(&spec.cluster)
                .service_name(&spec.name)
                .task_definition(&spec.task_definition)
                .desired_count(spec.desired_count.unwrap_or(spec.initial_count))
                .launch_type(LaunchType::Fargate)
                .network_configuration(network.clone())
                .load_balancers(load_balancer(spec))
                .deployment_configuration(deployment(spec))
                .health_check_grace_period_seconds(HEALTH_CHECK_GRACE_PERIOD_S)
                .propagate_tags(PropagateTags::Service)
                .enable_ecs_managed_tags(true)
                .set_tags(Some(ecs_tags(&spec.tags)))
                .send()
        })
        .await
        .aws("CreateService")?;
    out.service()
        .and_then(|s| s.service_arn())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("CreateService returned no ARN"))
}

pub async fn update_service(
    cx: &Context,
    arn: &str,
    old: &ServiceSpec,
    new: &ServiceSpec,
    target_groups_swapped: bool,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    ensure_image_pullable(cx, &new.task_definition).await?;
    // Both sides in ECS's orientation, so that comparing them shows what
    // UpdateService really changes.
    let swap = |spec: &ServiceSpec| {
        let mut spec = spec.clone();
        if target_groups_swapped {
            if let Some(traffic) = spec.deployment.as_mut().and_then(|d| d.traffic.as_mut()) {
                std::mem::swap(&mut spec.target_group, &mut traffic.alternate_target_group);
            }
        }
        spec
    };
    let (old, sent) = (&swap(old), swap(new));
    let new = &sent;
    // AWS's order for moving a load-balanced service from rolling to a
    // traffic-shifting strategy ("Updating an Amazon ECS service to use
    // blue/green deployments"): first the load balancer entry gets its
    // advanced configuration under a rolling deployment of what runs now,
    // which ECS completes; only then the strategy (and the new release).
    if rolls(old.deployment.as_ref()) && !rolls(new.deployment.as_ref()) {
        let mut first = new.clone();
        first.task_definition = old.task_definition.clone();
        first.circuit_breaker_rollback = true;
        if let Some(d) = first.deployment.as_mut() {
            d.strategy = "ROLLING".into();
            (d.percent, d.step_minutes, d.bake_minutes) = (None, None, None);
        }
        send_update(cx, old, &first, waits).await?;
        return send_update(cx, &first, new, waits).await;
    }
    send_update(cx, old, new, waits).await?;
    sync_ecs_tags(cx, arn, &old.tags, &new.tags).await
}

/// One UpdateService from `old` to `new`, followed to the end of the
/// deployment it starts, whatever starts one: a new task definition, a new
/// load balancer or network configuration (UpdateService: "Amazon ECS
/// starts new tasks with the updated Elastic Load Balancing
/// configuration"), or a failed last deployment.
async fn send_update(
    cx: &Context,
    old: &ServiceSpec,
    new: &ServiceSpec,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    let starts_deployment = old.task_definition != new.task_definition
        || old.last_deployment_failed
        || load_balancer(old) != load_balancer(new)
        || network(old)? != network(new)?;
    let mut call = cx
        .clients
        .ecs
        .update_service()
        .cluster(&new.cluster)
        .service(&new.name)
        .task_definition(&new.task_definition)
        // A failed deployment is not retried by ECS: start a new one.
        .force_new_deployment(old.last_deployment_failed)
        .network_configuration(network(new)?)
        .load_balancers(load_balancer(new))
        .deployment_configuration(deployment(new))
        .health_check_grace_period_seconds(HEALTH_CHECK_GRACE_PERIOD_S);
    // An autoscaled service keeps the count the autoscaler chose.
    if let Some(count) = new.desired_count {
        call = call.desired_count(count);
    }
    let before =
        aws_smithy_types::DateTime::from(std::time::SystemTime::now() - Duration::from_secs(60));
    super::aws_error::retry_while_settling("UpdateService", role_not_assumable_yet, || {
        call.clone().send()
    })
    .await
    .aws("UpdateService")?;
    if starts_deployment {
        let id = ResourceId::new(Kind::Service, "api");
        rollout::follow(
            cx,
            &id,
            new,
            Some(before),
            &rollout::Pace::for_target(cx),
            waits,
        )
        .await?;
    }
    Ok(())
}

/// Follows a rollout this run did not start (an earlier run's, cut off
/// while ECS shifted traffic) to its end, if discovery saw one going.
pub async fn follow_unfinished(
    cx: &Context,
    desired: &Spec,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    let id = ResourceId::new(Kind::Service, "api");
    if cx.attribute(&id, "rollout").as_deref() != Some("IN_PROGRESS") {
        return Ok(());
    }
    let Spec::Service(spec) = cx.fill_references(desired)? else {
        return Ok(());
    };
    rollout::follow(cx, &id, &spec, None, &rollout::Pace::for_target(cx), waits).await
}

/// Follows the deployment ECS started for a service this run created (or
/// replaced), from `since` (the run's start) on: "Amazon ECS automatically
/// creates a new service revision when you create a service", deployed by a
/// service deployment whose circuit breaker can fail it. Followed after the
/// apply, so that what depends on the service was not held back for it.
pub async fn follow_created(
    cx: &Context,
    desired: &Spec,
    since: std::time::SystemTime,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    let Spec::Service(spec) = cx.fill_references(desired)? else {
        return Ok(());
    };
    // Clock skew between this machine and ECS, as for an update's.
    let since = aws_smithy_types::DateTime::from(since - Duration::from_secs(60));
    let id = ResourceId::new(Kind::Service, "api");
    let pace = rollout::Pace::for_target(cx);
    rollout::follow(cx, &id, &spec, Some(since), &pace, waits).await
}

/// How long a deleted service may take to drain its tasks.
const DRAINED_WITHIN: Duration = Duration::from_secs(10 * 60);

/// Deletes the service (scaling its tasks down with it) and waits until ECS
/// reports it INACTIVE: until then its tasks still hold their network
/// interfaces, and the cluster refuses to be deleted.
pub async fn delete_service(
    cx: &Context,
    id: &ResourceId,
    spec: &ServiceSpec,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    super::aws_error::ignore_not_found(
        cx.clients
            .ecs
            .delete_service()
            .cluster(&spec.cluster)
            .service(&spec.name)
            .force(true)
            .send()
            .await,
        "DeleteService",
    )?;
    let drained = async {
        let mut pause = Duration::from_secs(2);
        loop {
            let out = cx
                .clients
                .ecs
                .describe_services()
                .cluster(&spec.cluster)
                .services(&spec.name)
                .send()
                .await;
            let status = match out {
                Ok(out) => out
                    .services()
                    .first()
                    .and_then(|s| s.status())
                    .map(str::to_string),
                Err(err)
                    if super::aws_error::error_code(&err) == Some("ClusterNotFoundException") =>
                {
                    None
                }
                Err(err) => return Err(err).aws("DescribeServices"),
            };
            if status.as_deref().is_none_or(|s| s == "INACTIVE") {
                return Ok(());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(15));
        }
    };
    match waits
        .report(
            id,
            "its tasks have stopped (INACTIVE)",
            DRAINED_WITHIN,
            tokio::time::timeout(DRAINED_WITHIN, drained),
        )
        .await?
    {
        Ok(result) => result,
        Err(_) => bail!(
            "service {} was deleted but still drains its tasks after {} minutes",
            spec.name,
            DRAINED_WITHIN.as_secs() / 60
        ),
    }
}

/// The service's tasks, for verification: how many run of how many wanted.
pub struct ServiceCounts {
    pub running: i32,
    pub desired: i32,
    pub task_definition: String,
}

pub async fn service_counts(
    cx: &Context,
    cluster: &str,
    name: &str,
) -> anyhow::Result<Option<ServiceCounts>> {
    let out = cx
        .clients
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .aws("DescribeServices")?;
    Ok(out
        .services()
        .iter()
        .find(|s| s.status() == Some("ACTIVE"))
        .map(|s| ServiceCounts {
            running: s.running_count(),
            desired: s.desired_count(),
            task_definition: s.task_definition().unwrap_or_default().to_string(),
        }))
}

impl Resource for ClusterSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_cluster(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_cluster(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_cluster(cx, &live.physical_id).await
    }
}

impl Resource for ServiceSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_service(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        let swapped = live.attributes.contains_key(TARGET_GROUPS_SWAPPED);
        update_service(cx, &live.physical_id, old, self, swapped, waits).await
    }

    async fn delete(&self, cx: &Context, live: &Live, waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_service(cx, &live.id, self, waits).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{context, json_error, query_error};
    use aws_sdk_ecs::operation::create_cluster::CreateClusterOutput;
    use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
    use aws_sdk_ecs::types::{Cluster, ContainerDefinition, TaskDefinition};
    use aws_smithy_mocks::mock;

    /// A new account: IAM says the role exists already (a second deploy, or
    /// another tool made it), and ECS cannot assume it for a few seconds.
    #[tokio::test(start_paused = true)]
    async fn a_cluster_is_made_once_ecs_can_assume_its_service_linked_role() {
        let role = mock!(aws_sdk_iam::Client::create_service_linked_role)
            .sequence()
            .http_status(
                400,
                Some(query_error(
                    "InvalidInput",
                    "Service role name AWSServiceRoleForECS has been taken in this account, please try a different suffix.",
                )),
            )
            .build();
        let not_yet = mock!(aws_sdk_ecs::Client::create_cluster)
            .sequence()
            .http_status(
                400,
                Some(json_error(
                    "InvalidParameterException",
                    "Unable to assume the service linked role. Please verify that the ECS service linked role exists.",
                )),
            )
            .times(2)
            .build();
        let created = mock!(aws_sdk_ecs::Client::create_cluster).then_output(|| {
            CreateClusterOutput::builder()
                .cluster(
                    Cluster::builder()
                        .cluster_arn("arn:aws:ecs:eu-west-1:1:cluster/poolside-pilot")
                        .build(),
                )
                .build()
        });
        let cx = context(|c| {
            c.iam = crate::mocked!(aws_sdk_iam, [&role]);
            c.ecs = crate::mocked!(aws_sdk_ecs, [&not_yet, &created]);
        });
        let spec = ClusterSpec {
            name: "poolside-pilot".into(),
            container_insights: false,
            tags: Default::default(),
        };
        let arn = create_cluster(&cx, &spec).await.unwrap();
        assert_eq!(arn, "arn:aws:ecs:eu-west-1:1:cluster/poolside-pilot");
        assert_eq!(role.num_calls(), 1);
        assert_eq!(not_yet.num_calls(), 2);
    }

    /// Any other refusal is not retried: it is the user's to fix.
    #[tokio::test(start_paused = true)]
    async fn other_invalid_parameters_fail_at_once() {
        let role = mock!(aws_sdk_iam::Client::create_service_linked_role)
            .then_output(|| aws_sdk_iam::operation::create_service_linked_role::CreateServiceLinkedRoleOutput::builder().build());
        let refused = mock!(aws_sdk_ecs::Client::create_cluster)
            .sequence()
            .http_status(
                400,
                Some(json_error(
                    "InvalidParameterException",
                    "Tags can only contain ...",
                )),
            )
            .build();
        let cx = context(|c| {
            c.iam = crate::mocked!(aws_sdk_iam, [&role]);
            c.ecs = crate::mocked!(aws_sdk_ecs, [&refused]);
        });
        let spec = ClusterSpec {
            name: "poolside-pilot".into(),
            container_insights: false,
            tags: Default::default(),
        };
        let err = create_cluster(&cx, &spec).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("InvalidParameterException"),
            "{err:#}"
        );
        assert_eq!(refused.num_calls(), 1);
    }

    /// An empty repository: ECS is not asked to start tasks that cannot pull
    /// their image, and the error gives the command that copies it there.
    #[tokio::test]
    async fn a_service_whose_image_is_not_in_ecr_is_refused_with_the_copy_command() {
        let image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/poolside-pilot/postgrest:v12.0.2";
        let task = mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(move || {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .task_definition_arn(
                            "arn:aws:ecs:eu-west-1:1:task-definition/poolside-pilot-api:1",
                        )
                        .container_definitions(
                            ContainerDefinition::builder()
                                .name("postgrest")
                                .image(image)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let missing = mock!(aws_sdk_ecr::Client::describe_images)
            .match_requests(|r| {
                r.repository_name() == Some("poolside-pilot/postgrest")
                    && r.registry_id() == Some("123456789012")
                    && r.image_ids()[0].image_tag() == Some("v12.0.2")
            })
            .sequence()
            .http_status(
                400,
                Some(json_error(
                    "ImageNotFoundException",
                    "The image with imageId {imageDigest:'null', imageTag:'v12.0.2'} does not exist within the repository with name 'poolside-pilot/postgrest' in the registry with id '123456789012'",
                )),
            )
            .build();
        let cx = context(|c| {
            c.ecs = crate::mocked!(aws_sdk_ecs, [&task]);
            c.ecr = crate::mocked!(aws_sdk_ecr, [&missing]);
        });
        let spec = service_spec();
        // No CreateService rule: a call to it would fail the test differently.
        let err = format!("{:#}", create_service(&cx, &spec).await.unwrap_err());
        assert!(
            err.contains("is not in ECR repository poolside-pilot/postgrest"),
            "{err}"
        );
        assert_eq!(missing.num_calls(), 1);
    }

    /// A deleted service drains its tasks before ECS calls it INACTIVE; the
    /// cluster and the subnets cannot go before that.
    #[tokio::test(start_paused = true)]
    async fn deleting_the_service_waits_until_it_has_drained() {
        use aws_sdk_ecs::operation::delete_service::DeleteServiceOutput;
        use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
        let delete = mock!(aws_sdk_ecs::Client::delete_service)
            .match_requests(|r| r.force() == Some(true))
            .then_output(|| DeleteServiceOutput::builder().build());
        let status = |s: &'static str| {
            mock!(aws_sdk_ecs::Client::describe_services).then_output(move || {
                DescribeServicesOutput::builder()
                    .services(aws_sdk_ecs::types::Service::builder().status(s).build())
                    .build()
            })
        };
        let (draining, still, inactive) =
            (status("DRAINING"), status("DRAINING"), status("INACTIVE"));
        let cx = context(|c| {
            c.ecs = crate::mocked!(aws_sdk_ecs, [&delete, &draining, &still, &inactive]);
        });
        let id = ResourceId::new(Kind::Service, "api");
        delete_service(
            &cx,
            &id,
            &service_spec(),
            &Waits::new(&crate::resources::Unwatched),
        )
        .await
        .unwrap();
        assert_eq!(inactive.num_calls(), 1);
    }

    fn service_spec() -> ServiceSpec {
        ServiceSpec {
            name: "poolside-pilot-api".into(),
            cluster: "arn:aws:ecs:eu-west-1:1:cluster/poolside-pilot".into(),
            task_definition: "arn:aws:ecs:eu-west-1:1:task-definition/poolside-pilot-api:1".into(),
            desired_count: Some(1),
            initial_count: 1,
            subnets: ["subnet-1".to_string()].into(),
            security_groups: ["sg-1".to_string()].into(),
            assign_public_ip: false,
            target_group: "arn:tg".into(),
            container_name: "postgrest".into(),
            container_port: 3000,
            circuit_breaker_rollback: true,
            deployment: None,
            last_deployment_failed: false,
            tags: Default::default(),
            depends_on: vec![],
        }
    }

    /// The circuit breaker goes with the rolling strategy only (the API
    /// says it applies to rolling alone); canary and linear roll back on
    /// their alarms.
    #[test]
    fn the_circuit_breaker_is_sent_with_the_rolling_strategy_only() {
        let rolling = deployment(&service_spec());
        assert!(rolling.deployment_circuit_breaker().is_some());
        let mut canary = service_spec();
        canary.circuit_breaker_rollback = false;
        canary.deployment = Some(DeploymentSpec {
            strategy: "CANARY".into(),
            percent: Some(10.0),
            step_minutes: Some(10),
            bake_minutes: Some(10),
            rollback_alarms: ["poolside-pilot-api-5xx".to_string()].into(),
            traffic: None,
        });
        let sent = deployment(&canary);
        assert!(sent.deployment_circuit_breaker().is_none(), "{sent:?}");
        assert_eq!(
            sent.strategy(),
            Some(&aws_sdk_ecs::types::DeploymentStrategy::Canary)
        );
    }

    /// Rolling to canary in AWS's documented order: the load balancer entry
    /// gets its advanced configuration under a rolling deployment of the
    /// release that runs (followed to its end), then the strategy and the
    /// new release change (followed too).
    #[tokio::test]
    async fn rolling_to_canary_goes_in_the_order_aws_documents() {
        use aws_sdk_ecs::operation::describe_service_deployments::DescribeServiceDeploymentsOutput;
        use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
        use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
        use aws_sdk_ecs::types::{
            DeploymentStrategy, ServiceDeployment, ServiceDeploymentBrief, ServiceDeploymentStatus,
        };
        let first = mock!(aws_sdk_ecs::Client::update_service)
            .match_requests(|r| {
                let d = r.deployment_configuration().unwrap();
                d.strategy() == Some(&DeploymentStrategy::Rolling)
                    && d.deployment_circuit_breaker().is_some()
                    && r.task_definition() == Some("arn:td:1")
                    && r.load_balancers()[0].advanced_configuration().is_some()
            })
            .then_output(|| UpdateServiceOutput::builder().build());
        let second = mock!(aws_sdk_ecs::Client::update_service)
            .match_requests(|r| {
                let d = r.deployment_configuration().unwrap();
                d.strategy() == Some(&DeploymentStrategy::Canary)
                    && d.deployment_circuit_breaker().is_none()
                    && r.task_definition() == Some("arn:td:2")
            })
            .then_output(|| UpdateServiceOutput::builder().build());
        let listed = mock!(aws_sdk_ecs::Client::list_service_deployments)
            .sequence()
            .output(|| {
                ListServiceDeploymentsOutput::builder()
                    .service_deployments(
                        ServiceDeploymentBrief::builder()
                            .service_deployment_arn("arn:deployment")
                            .created_at(aws_smithy_types::DateTime::from_secs(1_900_000_000))
                            .status(ServiceDeploymentStatus::InProgress)
                            .build(),
                    )
                    .build()
            })
            .times(2)
            .build();
        let done = mock!(aws_sdk_ecs::Client::describe_service_deployments)
            .sequence()
            .output(|| {
                DescribeServiceDeploymentsOutput::builder()
                    .service_deployments(
                        ServiceDeployment::builder()
                            .service_deployment_arn("arn:deployment")
                            .status(ServiceDeploymentStatus::Successful)
                            .build(),
                    )
                    .build()
            })
            .times(2)
            .build();
        let mut cx = context(|c| {
            c.ecs = crate::mocked!(aws_sdk_ecs, [&first, &second, &listed, &done], MatchAny);
        });
        // No image check (the emulator path), but ECS's answers as AWS gives them.
        cx.emulator = true;
        let mut old = service_spec();
        old.task_definition = "arn:td:1".into();
        old.deployment = Some(DeploymentSpec {
            strategy: "ROLLING".into(),
            percent: None,
            step_minutes: None,
            bake_minutes: None,
            rollback_alarms: Default::default(),
            traffic: None,
        });
        let mut new = service_spec();
        new.task_definition = "arn:td:2".into();
        new.circuit_breaker_rollback = false;
        new.deployment = Some(DeploymentSpec {
            strategy: "CANARY".into(),
            percent: Some(10.0),
            step_minutes: Some(10),
            bake_minutes: Some(10),
            rollback_alarms: ["poolside-pilot-api-5xx".to_string()].into(),
            traffic: Some(TrafficRouting {
                alternate_target_group: "arn:tg-a".into(),
                production_rule: "arn:rule".into(),
                role: "arn:role".into(),
            }),
        });
        update_service(
            &cx,
            "arn:service",
            &old,
            &new,
            false,
            &Waits::new(&crate::resources::Unwatched),
        )
        .await
        .unwrap();
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        assert_eq!(done.num_calls(), 2, "each update's deployment is followed");
    }
}
