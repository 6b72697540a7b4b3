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

use crate::model::*;
use crate::resources::aws_error::AwsResultExt;
use crate::resources::context::Context;
use crate::resources::spec::*;
use crate::resources::waits::Waits;
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
        (Some(c), _) if strategy == "CANARY" => {
            (c.canary_percent(), c.canary_bake_time_in_minutes())
        }
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
    /// A new service's first deployment failed: "the rollback method
    /// requires a previous deployment in COMPLETED state", so nothing serves.
    #[error("the first deployment of {service} failed{} ({reason}): no earlier release exists to go back to, so the service serves nothing; fix the cause and deploy again", alarms_text(.alarms))]
    FirstFailed {
        service: String,
        alarms: Vec<String>,
        reason: String,
    },
}

fn alarms_text(alarms: &[String]) -> String {
    match alarms {
        [] => String::new(),
        [one] => format!(" after alarm {one} fired"),
        many => format!(" after alarms {} fired", many.join(", ")),
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
        if let Some(finished) = finished(deployment, &spec.name) {
            return finished;
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

/// The deployment's end, once it has one: `Ok` when it succeeded, the
/// rollout's error when ECS rolled it back or stopped it.
fn finished(
    deployment: &aws_sdk_ecs::types::ServiceDeployment,
    service: &str,
) -> Option<anyhow::Result<()>> {
    let status = deployment.status().cloned();
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
    let service = service.to_string();
    // A new service's first deployment has no source revision.
    let first = deployment.source_service_revisions().is_empty();
    let error = match status? {
        ServiceDeploymentStatus::Successful => return Some(Ok(())),
        ServiceDeploymentStatus::RollbackSuccessful | ServiceDeploymentStatus::RollbackFailed
            if first =>
        {
            RolloutError::FirstFailed {
                service,
                alarms,
                reason,
            }
        }
        ServiceDeploymentStatus::RollbackSuccessful => RolloutError::RolledBack {
            service,
            alarms,
            reason,
        },
        ServiceDeploymentStatus::RollbackFailed => RolloutError::RollbackFailed {
            service,
            alarms,
            reason,
        },
        ServiceDeploymentStatus::Stopped => RolloutError::Stopped { service, reason },
        _ => return None,
    };
    Some(Err(error.into()))
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
                call = call.created_at(
                    aws_sdk_ecs::types::CreatedAt::builder()
                        .after(after)
                        .build(),
                )
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
        let sent = if cx.emulator {
            // moto answers HTTP 500 (not implemented): the SDK's retries
            // cost 4-9 s on every deploy that follows a service.
            call.customize()
                .config_override(
                    aws_sdk_ecs::config::Builder::default()
                        .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled()),
                )
                .send()
                .await
        } else {
            call.send().await
        };
        let out = match sent {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{context, json_error};
    use aws_sdk_ecs::operation::describe_service_deployments::DescribeServiceDeploymentsOutput;
    use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
    use aws_sdk_ecs::types::{
        LoadBalancer, Rollback, Service, ServiceDeployment, ServiceDeploymentAlarms,
        ServiceDeploymentBrief, ServiceDeploymentLifecycleStage as Stage, ServiceRevisionSummary,
    };
    use aws_smithy_mocks::mock;

    const ARN: &str =
        "arn:aws:ecs:eu-west-1:1:service-deployment/poolside-pilot/poolside-pilot-api/abc";
    const ALARM: &str = "poolside-pilot-api-target-5xx";

    fn canary() -> DeploymentSpec {
        DeploymentSpec {
            strategy: "CANARY".into(),
            percent: Some(10.0),
            step_minutes: Some(5),
            bake_minutes: Some(10),
            rollback_alarms: [ALARM.to_string()].into(),
            traffic: Some(TrafficRouting {
                alternate_target_group: "arn:tg-a".into(),
                production_rule: "arn:rule".into(),
                role: "arn:role".into(),
            }),
        }
    }

    fn spec() -> ServiceSpec {
        ServiceSpec {
            name: "poolside-pilot-api".into(),
            cluster: "arn:aws:ecs:eu-west-1:1:cluster/poolside-pilot".into(),
            task_definition: "arn:td:2".into(),
            desired_count: Some(2),
            initial_count: 2,
            subnets: Default::default(),
            security_groups: Default::default(),
            assign_public_ip: false,
            target_group: "arn:tg".into(),
            container_name: "postgrest".into(),
            container_port: 3000,
            circuit_breaker_rollback: true,
            deployment: Some(canary()),
            last_deployment_failed: false,
            tags: Default::default(),
            depends_on: vec![],
        }
    }

    fn pace() -> Pace {
        Pace {
            poll: Duration::from_secs(10),
            listed_within: Duration::from_secs(60),
        }
    }

    fn listed() -> ListServiceDeploymentsOutput {
        ListServiceDeploymentsOutput::builder()
            .service_deployments(
                ServiceDeploymentBrief::builder()
                    .service_deployment_arn(ARN)
                    .created_at(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                    .status(ServiceDeploymentStatus::InProgress)
                    .build(),
            )
            .build()
    }

    fn deployment(
        status: ServiceDeploymentStatus,
        stage: Stage,
    ) -> DescribeServiceDeploymentsOutput {
        let mut d = ServiceDeployment::builder()
            .service_deployment_arn(ARN)
            .status(status.clone())
            .lifecycle_stage(stage)
            .source_service_revisions(
                ServiceRevisionSummary::builder()
                    .arn("arn:aws:ecs:eu-west-1:123456789012:service-revision/poolside-pilot/poolside-pilot-api/1")
                    .build(),
            );
        if status == ServiceDeploymentStatus::RollbackSuccessful {
            d = d
                .alarms(
                    ServiceDeploymentAlarms::builder()
                        .alarm_names(ALARM)
                        .triggered_alarm_names(ALARM)
                        .build(),
                )
                .rollback(
                    Rollback::builder()
                        .reason("CloudWatch alarm triggered")
                        .build(),
                );
        }
        DescribeServiceDeploymentsOutput::builder()
            .service_deployments(d.build())
            .build()
    }

    /// What a service with a canary rollout sends is what it reads back, or
    /// every plan would show a change.
    #[test]
    fn a_canary_configuration_reads_back_as_it_was_sent() {
        let spec = spec();
        let sent = configure(DeploymentConfiguration::builder(), spec.deployment.as_ref()).build();
        assert_eq!(sent.strategy(), Some(&DeploymentStrategy::Canary));
        let alarms = sent.alarms().unwrap();
        assert!(alarms.enable() && alarms.rollback());
        assert_eq!(alarms.alarm_names(), [ALARM]);
        assert_eq!(
            sent.canary_configuration().unwrap().canary_percent(),
            Some(10.0)
        );
        let service = Service::builder()
            .deployment_configuration(sent)
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn("arn:tg")
                    .set_advanced_configuration(advanced(spec.deployment.as_ref()))
                    .build(),
            )
            .build();
        assert_eq!(read(&service), spec.deployment);
        // A rolling service reports no traffic routing even where AWS kept it.
        let rolling = DeploymentSpec {
            strategy: "ROLLING".into(),
            percent: None,
            step_minutes: None,
            bake_minutes: None,
            traffic: None,
            ..canary()
        };
        let sent = configure(DeploymentConfiguration::builder(), Some(&rolling)).build();
        assert!(sent.canary_configuration().is_none());
        let service = Service::builder()
            .deployment_configuration(sent)
            .load_balancers(
                LoadBalancer::builder()
                    .set_advanced_configuration(advanced(Some(&canary())))
                    .build(),
            )
            .build();
        assert_eq!(read(&service), Some(rolling));
    }

    /// ECS lists the deployment a moment after the update, shifts, and an
    /// alarm rolls it back: the error names the alarm and says the previous
    /// release serves again.
    #[tokio::test(start_paused = true)]
    async fn a_rollback_by_alarm_fails_naming_the_alarm() {
        let not_yet = mock!(aws_sdk_ecs::Client::list_service_deployments)
            .then_output(|| ListServiceDeploymentsOutput::builder().build());
        let list = mock!(aws_sdk_ecs::Client::list_service_deployments).then_output(listed);
        let shifting = mock!(aws_sdk_ecs::Client::describe_service_deployments).then_output(|| {
            deployment(
                ServiceDeploymentStatus::InProgress,
                Stage::ProductionTrafficShift,
            )
        });
        let rolled_back =
            mock!(aws_sdk_ecs::Client::describe_service_deployments).then_output(|| {
                deployment(
                    ServiceDeploymentStatus::RollbackSuccessful,
                    Stage::ProductionTrafficShift,
                )
            });
        let cx = context(|c| {
            c.ecs = crate::mocked!(aws_sdk_ecs, [&not_yet, &list, &shifting, &rolled_back]);
        });
        let id = ResourceId::new(Kind::Service, "api");
        let since = aws_smithy_types::DateTime::from_secs(1_799_999_999);
        let err = follow(
            &cx,
            &id,
            &spec(),
            Some(since),
            &pace(),
            &Waits::new(&crate::resources::Unwatched),
        )
        .await
        .unwrap_err();
        let Some(RolloutError::RolledBack { alarms, .. }) = err.downcast_ref::<RolloutError>()
        else {
            panic!("a rollback: {err:#}");
        };
        assert_eq!(alarms, &[ALARM]);
        let text = err.to_string();
        assert!(text.contains(ALARM), "{text}");
        assert!(
            text.contains("previous release serves all traffic again"),
            "{text}"
        );
        assert_eq!((not_yet.num_calls(), list.num_calls()), (1, 1));
        assert_eq!((shifting.num_calls(), rolled_back.num_calls()), (1, 1));
    }

    /// A new service's first deployment has nothing to roll back to: ECS's
    /// rollback "requires a previous deployment in COMPLETED state", so the
    /// error must not say an earlier release serves.
    #[test]
    fn a_failed_first_deployment_does_not_claim_a_previous_release_serves() {
        let answer = deployment(ServiceDeploymentStatus::RollbackFailed, Stage::ScaleUp);
        let mut first = answer.service_deployments()[0].clone();
        first.source_service_revisions = Some(vec![]);
        let err = finished(&first, "poolside-pilot-api").unwrap().unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err.downcast_ref(), Some(RolloutError::FirstFailed { .. })),
            "{text}"
        );
        assert!(text.contains("the service serves nothing"), "{text}");
        // With a source revision, the same answer is an ordinary failed rollback.
        let later = &answer.service_deployments()[0];
        let text = finished(later, "poolside-pilot-api")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(text.contains("could not roll the new release"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_successful_rollout_is_followed_to_its_end() {
        let list = mock!(aws_sdk_ecs::Client::list_service_deployments).then_output(listed);
        let baking = mock!(aws_sdk_ecs::Client::describe_service_deployments)
            .sequence()
            .output(|| deployment(ServiceDeploymentStatus::InProgress, Stage::BakeTime))
            .times(3)
            .build();
        let done = mock!(aws_sdk_ecs::Client::describe_service_deployments)
            .then_output(|| deployment(ServiceDeploymentStatus::Successful, Stage::CleanUp));
        let cx = context(|c| {
            c.ecs = crate::mocked!(aws_sdk_ecs, [&list, &baking, &done]);
        });
        let id = ResourceId::new(Kind::Service, "api");
        follow(
            &cx,
            &id,
            &spec(),
            None,
            &pace(),
            &Waits::new(&crate::resources::Unwatched),
        )
        .await
        .unwrap();
        assert_eq!((baking.num_calls(), done.num_calls()), (3, 1));
    }

    /// On AWS a refused ListServiceDeployments (a policy without it) is an
    /// error naming the call; only an emulator may lack the call.
    #[tokio::test(start_paused = true)]
    async fn a_refused_listing_is_an_error_on_aws() {
        let denied = mock!(aws_sdk_ecs::Client::list_service_deployments)
            .sequence()
            .http_status(
                400,
                Some(json_error(
                    "AccessDeniedException",
                    "User is not authorized to perform: ecs:ListServiceDeployments",
                )),
            )
            .build();
        let cx = context(|c| {
            c.ecs = crate::mocked!(aws_sdk_ecs, [&denied]);
        });
        let id = ResourceId::new(Kind::Service, "api");
        let err = follow(
            &cx,
            &id,
            &spec(),
            None,
            &pace(),
            &Waits::new(&crate::resources::Unwatched),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("ListServiceDeployments"), "{err}");
    }

    #[test]
    fn the_limit_covers_every_step_and_the_bake() {
        let mut s = spec();
        // Canary: one step of 5 minutes, a 10-minute bake, 30 to spare.
        assert_eq!(limit(&s), Duration::from_secs(45 * 60));
        s.deployment = Some(DeploymentSpec {
            strategy: "LINEAR".into(),
            percent: Some(20.0),
            step_minutes: Some(5),
            bake_minutes: Some(15),
            ..canary()
        });
        assert_eq!(limit(&s), Duration::from_secs((5 * 5 + 15 + 30) * 60));
    }
}
