//! ECS task definitions: the API's and the schema task's, one revision per
//! change, and the container as poolside compares it.

use crate::model::*;
use crate::resources::aws_error::{error_code, AwsResultExt};
use crate::resources::context::Context;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::tags::{check_owner, ecs_tags, from_ecs_tags};
use crate::resources::waits::Waits;
use anyhow::anyhow;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, KeyValuePair, LogConfiguration, LogDriver, NetworkMode,
    PortMapping, Secret, TaskDefinitionField, TaskDefinitionStatus,
};
use std::collections::BTreeMap;

/// The family's latest active revision.
pub async fn discover_task_definition(
    cx: &Context,
    id: &ResourceId,
    family: &str,
) -> anyhow::Result<Vec<Live>> {
    let out = match cx
        .clients
        .ecs
        .describe_task_definition()
        .task_definition(family)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
    {
        Ok(out) => out,
        // ECS says "Unable to describe task definition" as a ClientException.
        Err(err) if error_code(&err) == Some("ClientException") => return Ok(vec![]),
        Err(err) => return Err(err).aws("DescribeTaskDefinition"),
    };
    let Some(task) = out.task_definition() else {
        return Ok(vec![]);
    };
    if task.status() != Some(&TaskDefinitionStatus::Active) {
        return Ok(vec![]);
    }
    let tags = from_ecs_tags(out.tags());
    check_owner(cx, "task definition family", family, &tags)?;
    let [container] = task.container_definitions() else {
        return Err(anyhow!(
            "task definition {family} has {} containers; poolside's has exactly one",
            task.container_definitions().len()
        ));
    };
    Ok(vec![Live {
        id: id.clone(),
        physical_id: task.task_definition_arn().unwrap_or_default().to_string(),
        spec: Spec::TaskDefinition(TaskDefinitionSpec {
            // `family` may name a revision (family:N or its ARN).
            family: task.family().unwrap_or(family).to_string(),
            cpu: task.cpu().unwrap_or_default().to_string(),
            memory: task.memory().unwrap_or_default().to_string(),
            execution_role: task.execution_role_arn().unwrap_or_default().to_string(),
            task_role: task.task_role_arn().unwrap_or_default().to_string(),
            container: container_spec(container),
            tags,
        }),
        attributes: BTreeMap::from([
            (
                "image".to_string(),
                container.image().unwrap_or_default().to_string(),
            ),
            // For the local data plane, which runs what the revision says:
            // which revision this is, and its container as registered.
            (
                "container_of".to_string(),
                task.task_definition_arn().unwrap_or_default().to_string(),
            ),
            (
                "container".to_string(),
                serde_json::to_string(&container_spec(container))?,
            ),
        ]),
    }])
}

fn container_spec(c: &ContainerDefinition) -> ContainerSpec {
    let log = c.log_configuration();
    ContainerSpec {
        name: c.name().unwrap_or_default().to_string(),
        image: c.image().unwrap_or_default().to_string(),
        command: c.command().to_vec(),
        ports: c
            .port_mappings()
            .iter()
            .filter_map(|p| p.container_port())
            .collect(),
        environment: c
            .environment()
            .iter()
            .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
            .collect(),
        secrets: c
            .secrets()
            .iter()
            .map(|s| (s.name().to_string(), s.value_from().to_string()))
            .collect(),
        log_driver: log
            .map(|l| l.log_driver().as_str().to_string())
            .unwrap_or_default(),
        log_options: log
            .and_then(|l| l.options())
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        readonly_root_filesystem: c.readonly_root_filesystem().unwrap_or(false),
    }
}

fn container_definition(c: &ContainerSpec) -> anyhow::Result<ContainerDefinition> {
    let mut secrets = Vec::new();
    for (name, value_from) in &c.secrets {
        secrets.push(
            Secret::builder()
                .name(name)
                .value_from(value_from)
                .build()?,
        );
    }
    let log = LogConfiguration::builder()
        .log_driver(LogDriver::from(c.log_driver.as_str()))
        .set_options(Some(c.log_options.clone().into_iter().collect()))
        .build()?;
    Ok(ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .set_command((!c.command.is_empty()).then(|| c.command.clone()))
        .essential(true)
        .set_port_mappings(Some(
            c.ports
                .iter()
                .map(|p| {
                    PortMapping::builder()
                        .container_port(*p)
                        .protocol(aws_sdk_ecs::types::TransportProtocol::Tcp)
                        .build()
                })
                .collect(),
        ))
        .set_environment(Some(
            c.environment
                .iter()
                .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                .collect(),
        ))
        .set_secrets(Some(secrets))
        .log_configuration(log)
        .readonly_root_filesystem(c.readonly_root_filesystem)
        .build())
}

/// Registers a revision: both the create and every update.
pub async fn register_task_definition(
    cx: &Context,
    id: &ResourceId,
    spec: &TaskDefinitionSpec,
) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ecs
        .register_task_definition()
        .family(&spec.family)
        .cpu(&spec.cpu)
        .memory(&spec.memory)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .execution_role_arn(&spec.execution_role)
        .task_role_arn(&spec.task_role)
        .container_definitions(container_definition(&spec.container)?)
        .set_tags(Some(ecs_tags(&spec.tags)))
        .send()
        .await
        .aws("RegisterTaskDefinition")?;
    let arn = out
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or_else(|| anyhow!("RegisterTaskDefinition returned no ARN"))?
        .to_string();
    // The new revision is what the service must move to in this run.
    cx.record(id, &arn);
    Ok(arn)
}

/// Deregisters every active revision of the family.
pub async fn delete_task_definition(cx: &Context, family: &str) -> anyhow::Result<()> {
    let ecs = &cx.clients.ecs;
    let revisions = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .send()
        .await
        .aws("ListTaskDefinitions")?;
    for arn in revisions.task_definition_arns() {
        ecs.deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .aws("DeregisterTaskDefinition")?;
    }
    Ok(())
}

/// The API's task definition is what its service runs. After ECS rolled a
/// release back (or a run stopped between registering a revision and
/// moving the service to it), the family's latest revision is not that one:
/// then the revision the service runs is read instead (one more call), so a
/// file that names what runs plans no change.
pub async fn read_running_task_definition(cx: &Context, live: &mut [Live]) -> anyhow::Result<()> {
    let id = ResourceId::new(Kind::TaskDefinition, "api");
    let running = live.iter().find_map(|l| match &l.spec {
        Spec::Service(s) if l.id == ResourceId::new(Kind::Service, "api") => {
            Some(s.task_definition.clone())
        }
        _ => None,
    });
    let Some(latest) = live.iter().position(|l| l.id == id) else {
        return Ok(());
    };
    let Some(running) = running.filter(|r| *r != live[latest].physical_id) else {
        return Ok(());
    };
    let Spec::TaskDefinition(latest_spec) = &live[latest].spec else {
        return Ok(());
    };
    // Only a revision of the same family: anything else is the plan's to change.
    let family = &latest_spec.family;
    if !running.contains(&format!("task-definition/{family}:")) {
        return Ok(());
    }
    if let Some(found) = discover_task_definition(cx, &id, &running).await?.pop() {
        live[latest] = found;
    }
    Ok(())
}

/// The task definition a service runs, as registered (for the local data plane).
pub async fn task_definition(cx: &Context, arn: &str) -> anyhow::Result<(String, ContainerSpec)> {
    task_definition_container(cx, arn).await
}

/// The revision the API service runs and its container, as discovery saw
/// them, when nothing in this run changed either since (the service still
/// runs the revision discovery found, and no newer one was registered).
pub fn discovered_api_container(cx: &Context) -> Option<(String, ContainerSpec)> {
    let service = ResourceId::new(Kind::Service, "api");
    let task_definition = ResourceId::new(Kind::TaskDefinition, "api");
    let runs = cx.attribute(&service, "task_definition")?;
    let seen = cx.attribute(&task_definition, "container_of")?;
    let latest = cx.physical_id(&task_definition)?;
    if runs != seen || seen != latest {
        return None;
    }
    let container = serde_json::from_str(&cx.attribute(&task_definition, "container")?).ok()?;
    Some((seen, container))
}

pub(super) async fn task_definition_container(
    cx: &Context,
    arn: &str,
) -> anyhow::Result<(String, ContainerSpec)> {
    let out = cx
        .clients
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .aws("DescribeTaskDefinition")?;
    let task = out
        .task_definition()
        .ok_or_else(|| anyhow!("task definition {arn} not found"))?;
    let container = task
        .container_definitions()
        .first()
        .ok_or_else(|| anyhow!("task definition {arn} has no container"))?;
    Ok((
        task.task_definition_arn().unwrap_or(arn).to_string(),
        container_spec(container),
    ))
}

impl Resource for TaskDefinitionSpec {
    async fn create(
        &self,
        cx: &Context,
        id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        register_task_definition(cx, id, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        _old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        register_task_definition(cx, &live.id, self).await.map(drop)
    }

    async fn delete(&self, cx: &Context, _live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_task_definition(cx, &self.family).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is registered reads back the same, or every plan would show a change.
    #[test]
    fn a_container_reads_back_as_it_was_registered() {
        let spec = ContainerSpec {
            name: "schema".into(),
            image: "111122223333.dkr.ecr.eu-west-1.amazonaws.com/r:psql".into(),
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            ports: [3000].into(),
            environment: [("PGHOST".to_string(), "db".to_string())].into(),
            secrets: [(
                "PGPASSWORD".to_string(),
                "arn:aws:secretsmanager:eu-west-1:1:secret:x:password::".to_string(),
            )]
            .into(),
            log_driver: "awslogs".into(),
            log_options: [("awslogs-group".to_string(), "/g".to_string())].into(),
            readonly_root_filesystem: true,
        };
        assert_eq!(container_spec(&container_definition(&spec).unwrap()), spec);
        let no_command = ContainerSpec {
            command: vec![],
            ..spec
        };
        let registered = container_definition(&no_command).unwrap();
        assert!(registered.command().is_empty());
        assert_eq!(container_spec(&registered), no_command);
    }
}
