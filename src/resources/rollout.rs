//! How ECS rolls a new release out, and how poolside follows it.
//!
//! The strategies are ECS's own (ROLLING, CANARY, LINEAR): ECS moves traffic
//! from the service's target group to its alternate one through the
//! production listener rule, bakes, and rolls back by itself when one of the
//! rollback alarms fires. So a shift and its rollback go on when the
//! operator's machine goes away; poolside only starts them and follows them
//! (ListServiceDeployments / DescribeServiceDeployments), and a later run
//! picks up a deployment that is still going.
//!
//! moto implements neither the strategies nor the two calls: on an emulator
//! target there is nothing to follow (README). The following is tested
//! against the exact responses AWS documents (aws-smithy-mocks) and against
//! tests/realistic_aws.py, which plays a deployment's stages and rollback.

use super::{AwsResultExt, Context, Waits};
use crate::model::*;
use anyhow::anyhow;
use aws_sdk_ecs::types::{
    AdvancedConfiguration, CanaryConfiguration, DeploymentAlarms, DeploymentConfiguration,
    DeploymentStrategy, LinearConfiguration, ServiceDeploymentStatus,
};
use std::time::Duration;

/// The part of a service's deployment configuration that names the strategy.
pub fn configure(
    builder: aws_sdk_ecs::types::builders::DeploymentConfigurationBuilder,
    spec: Option<&DeploymentSpec>,
) -> aws_sdk_ecs::types::builders::DeploymentConfigurationBuilder {
    let Some(d) = spec else {
        return builder;
    };
    let strategy = DeploymentStrategy::from(d.strategy.as_str());
    let mut builder = builder.strategy(strategy.clone());
    if !d.rollback_alarms.is_empty() {
        builder = builder.alarms(
            DeploymentAlarms::builder()
                .set_alarm_names(Some(d.rollback_alarms.iter().cloned().collect()))
                .enable(true)
                .rollback(true)
                .build()
                .expect("alarm names, enable and rollback are all set"),
        );
    }
    match strategy {
        DeploymentStrategy::Canary => builder
            .canary_configuration(
                CanaryConfiguration::builder()
                    .set_canary_percent(d.percent)
                    .set_canary_bake_time_in_minutes(d.step_minutes)
                    .build(),
            )
            .set_bake_time_in_minutes(d.bake_minutes),
        DeploymentStrategy::Linear => builder
            .linear_configuration(
                LinearConfiguration::builder()
                    .set_step_percent(d.percent)
                    .set_step_bake_time_in_minutes(d.step_minutes)
                    .build(),
            )
            .set_bake_time_in_minutes(d.bake_minutes),
        _ => builder,
    }
}

/// The load balancer entry's advanced configuration, for strategies that
/// shift traffic between the two target groups.
pub fn advanced(spec: Option<&DeploymentSpec>) -> Option<AdvancedConfiguration> {
    let traffic = spec?.traffic.as_ref()?;
    Some(
        AdvancedConfiguration::builder()
            .alternate_target_group_arn(&traffic.alternate_target_group)
            .production_listener_rule(&traffic.production_rule)
            .role_arn(&traffic.role)
            .build(),
    )
}

/// What a service reports back; `None` when it reports no configuration.
pub fn read(service: &aws_sdk_ecs::types::Service) -> Option<DeploymentSpec> {
    let d: &DeploymentConfiguration = service.deployment_configuration()?;
    // Services made before ECS had strategies report none: rolling.
    let strategy = d
        .strategy()
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "ROLLING".into());
    let (percent, step_minutes) = match (d.canary_configuration(), d.linear_configuration()) {
        (Some(c), _) if strategy == "CANARY" => (c.canary_percent(), c.canary_bake_time_in_minutes()),
        (_, Some(l)) if strategy == "LINEAR" => (l.step_percent(), l.step_bake_time_in_minutes()),
        _ => (None, None),
    };
    let shifts = strategy != "ROLLING";
    let traffic = service
        .load_balancers()
        .first()
        .and_then(|l| l.advanced_configuration())
        .filter(|_| shifts)
        .map(|a| TrafficRouting {
            alternate_target_group: a.alternate_target_group_arn().unwrap_or_default().into(),
            production_rule: a.production_listener_rule().unwrap_or_default().into(),
            role: a.role_arn().unwrap_or_default().into(),
        });
    Some(DeploymentSpec {
        strategy,
        percent,
        step_minutes,
        bake_minutes: d.bake_time_in_minutes().filter(|_| shifts),
        rollback_alarms: d
            .alarms()
            .filter(|a| a.enable() && a.rollback())
            .map(|a| a.alarm_names().iter().cloned().collect())
            .unwrap_or_default(),
        traffic,
    })
}

/// How a followed deployment ended, when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("ECS rolled the new release of {service} back{}: the previous release serves all traffic again ({reason})", alarms_text(.alarms))]
    RolledBack {
        service: String,
        alarms: Vec<String>,
        reason: String,
    },
    #[error("ECS could not roll the new release of {service} back{} ({reason}): check the service in the ECS console before anything else", alarms_text(.alarms))]
    RollbackFailed {
        service: String,
        alarms: Vec<String>,
        reason: String,
    },
    #[error("the deployment of {service} was stopped ({reason})")]
    Stopped { service: String, reason: String },
}

fn alarms_text(alarms: &[String]) -> String {
    match alarms {
        [] => String::new(),
        [one] => format!(" after alarm {one} fired"),
        many => format!(" after alarms {} fired", many.join(", ")),
    }
}

impl RolloutError {
    /// The alarms that made ECS roll back, for history.
    pub fn alarms(&self) -> &[String] {
        match self {
            RolloutError::RolledBack { alarms, .. } | RolloutError::RollbackFailed { alarms, .. } => alarms,
            RolloutError::Stopped { .. } => &[],
        }
    }
}

/// Pauses between reads of a deployment's state; tests shorten them.
pub struct Pace {
    pub poll: Duration,
    /// How long ECS may take to list a deployment it just started.
    pub listed_within: Duration,
}

impl Pace {
    /// ECS changes a stage every minute or more; an emulator (a test's
    /// stand-in for ECS) at once.
    pub fn for_target(cx: &Context) -> Self {
        let poll = if cx.emulator { 1 } else { 10 };
        Pace {
            poll: Duration::from_secs(poll),
            listed_within: Duration::from_secs(60),
        }
    }
}

/// How long a deployment may take before poolside stops following it (ECS
/// goes on): every step's bake, the final bake, and half an hour for tasks
/// to start and drain.
pub fn limit(spec: &ServiceSpec) -> Duration {
    let minutes = spec.deployment.as_ref().map_or(0, |d| {
        let steps = match (d.strategy.as_str(), d.percent) {
            ("LINEAR", Some(p)) if p > 0.0 => (100.0 / p).ceil() as i32,
            ("CANARY", _) => 1,
            _ => 0,
        };
        steps * d.step_minutes.unwrap_or(0) + d.bake_minutes.unwrap_or(0)
    });
    Duration::from_secs((minutes.max(0) as u64 + 30) * 60)
}

/// Follows the service's newest deployment started at or after `since` (or
/// the one still going, with `since` = `None`) until it ends. Ok when it
/// succeeded or there is none; a [`RolloutError`] when ECS rolled it back.
pub async fn follow(
    cx: &Context,
    id: &ResourceId,
    spec: &ServiceSpec,
    since: Option<aws_smithy_types::DateTime>,
    pace: &Pace,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    let Some(arn) = newest(cx, spec, since, pace).await? else {
        return Ok(());
    };
    let limit = limit(spec);
    let started = tokio::time::Instant::now();
    let mut last_stage = String::new();
    loop {
        let out = cx
            .clients
            .ecs
            .describe_service_deployments()
            .service_deployment_arns(&arn)
            .send()
            .await
            .aws("DescribeServiceDeployments")?;
        let deployment = out
            .service_deployments()
            .first()
            .ok_or_else(|| anyhow!("ECS does not describe the deployment {arn} it listed"))?;
        let status = deployment.status().cloned();
        let stage = deployment
            .lifecycle_stage()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let alarms: Vec<String> = deployment
            .alarms()
            .map(|a| a.triggered_alarm_names().to_vec())
            .unwrap_or_default();
        let reason = deployment
            .rollback()
            .and_then(|r| r.reason())
            .or(deployment.status_reason())
            .unwrap_or("no reason given")
            .to_string();
        let service = spec.name.clone();
        match status {
            Some(ServiceDeploymentStatus::Successful) => return Ok(()),
            Some(ServiceDeploymentStatus::RollbackSuccessful) => {
                return Err(RolloutError::RolledBack { service, alarms, reason }.into())
            }
            Some(ServiceDeploymentStatus::RollbackFailed) => {
                return Err(RolloutError::RollbackFailed { service, alarms, reason }.into())
            }
            Some(ServiceDeploymentStatus::Stopped) => {
                return Err(RolloutError::Stopped { service, reason }.into())
            }
            _ => {}
        }
        let what = format!(
            "ECS has rolled the release out (now {}, {})",
            status.as_ref().map(|s| s.as_str()).unwrap_or("PENDING"),
            if stage.is_empty() { "starting" } else { &stage }
        );
        if what != last_stage {
            waits.note(id, &what, started.elapsed(), limit);
            last_stage = what;
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "the deployment of {} still runs after {} minutes ({last_stage}); ECS goes on with it, and the next deploy follows it",
                spec.name,
                limit.as_secs() / 60
            );
        }
        waits
            .report(id, &last_stage, limit, tokio::time::sleep(pace.poll))
            .await?;
    }
}

/// The ARN of the deployment to follow: the newest since `since`, or the
/// newest one not finished. ECS lists a deployment shortly after the update
/// that started it, so a just-started one is looked for a little while.
async fn newest(
    cx: &Context,
    spec: &ServiceSpec,
    since: Option<aws_smithy_types::DateTime>,
    pace: &Pace,
) -> anyhow::Result<Option<String>> {
    let started = tokio::time::Instant::now();
    loop {
        let mut call = cx
            .clients
            .ecs
            .list_service_deployments()
            .cluster(&spec.cluster)
            .service(&spec.name);
        match since {
            Some(after) => {
                call = call.created_at(aws_sdk_ecs::types::CreatedAt::builder().after(after).build())
            }
            None => {
                for status in [
                    ServiceDeploymentStatus::Pending,
                    ServiceDeploymentStatus::InProgress,
                    ServiceDeploymentStatus::RollbackRequested,
                    ServiceDeploymentStatus::RollbackInProgress,
                    ServiceDeploymentStatus::StopRequested,
                ] {
                    call = call.status(status);
                }
            }
        }
        let out = match call.send().await {
            Ok(out) => out,
            // moto has no service deployments: nothing runs there to follow.
            Err(err) if cx.emulator => {
                tracing::debug!(error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "the emulator lists no service deployments");
                return Ok(None);
            }
            Err(err) => return Err(err).aws("ListServiceDeployments"),
        };
        let newest = out
            .service_deployments()
            .iter()
            .max_by_key(|d| d.created_at().map(|t| (t.secs(), t.subsec_nanos())))
            .and_then(|d| d.service_deployment_arn())
            .map(str::to_string);
        if newest.is_some() || since.is_none() || started.elapsed() >= pace.listed_within {
            return Ok(newest);
        }
        tokio::time::sleep(pace.poll.min(Duration::from_secs(5))).await;
    }
}
