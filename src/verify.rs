//! The checks that end a deploy: the API answers through the environment's
//! public URL, it serves what the migrations put in the `api` schema (its
//! schema cache is fresh), the load balancer's targets are healthy, and no
//! alarm of the environment is in ALARM. Each check reports passed, failed or skipped
//! (with why), and every check runs even when an earlier one failed.

use crate::config::Config;
use crate::database::migrations;
use crate::model::{Kind, ResourceId};
use crate::resources::{
    alarms, ecs, load_balancer, load_balancer::listeners, poll, AwsResultExt as _, Context, Waits,
};
use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Verification {
    pub checks: Vec<Check>,
}

impl Verification {
    pub fn failed(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .collect()
    }
}

/// What `GET /rpc/hello` answers: PostgREST returns the text as a JSON string.
pub const HELLO: &str = "hello world";

/// How long a new service may take to run its tasks and pass health checks.
const STABLE_WITHIN: Duration = Duration::from_secs(15 * 60);

/// `through`: a host name whose addresses the API URL's host is pinned to
/// (the load balancer behind the API's domain name), so the check reaches it
/// and verifies TLS for the domain before any DNS record exists.
pub async fn verify(
    cx: &Context,
    config: &Config,
    api_url: &str,
    through: Option<&str>,
    waits: &Waits<'_>,
) -> Verification {
    let emulator = config.endpoint_url.is_some();
    let targets = if emulator && !config.emulator_runs_tasks {
        Check {
            name: "targets",
            outcome: Outcome::Skipped,
            detail: "the emulator runs no ECS tasks, so nothing is registered; the local PostgREST stands in for them".into(),
        }
    } else {
        check_targets(cx, config, waits).await
    };
    let api = check_api(api_url, through, if emulator { 5 } else { 24 }).await;
    let schema = if api.outcome == Outcome::Passed {
        check_schema(api_url, through, if emulator { 10 } else { 12 }).await
    } else {
        Check {
            name: "schema",
            outcome: Outcome::Skipped,
            detail: "the API does not answer".into(),
        }
    };
    let alarms = check_alarms(cx).await;
    Verification {
        checks: vec![api, schema, targets, alarms],
    }
}

pub async fn check_api(api_url: &str, through: Option<&str>, attempts: u32) -> Check {
    let url = format!("{api_url}/rpc/hello");
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        // Resolved on every attempt: a new load balancer's name takes a
        // while to resolve, and its addresses change.
        let client = match pinned_client(&url, through).await {
            Ok(client) => client,
            Err(err) => {
                last = err;
                continue;
            }
        };
        match client
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if status.is_success()
                    && serde_json::from_str::<String>(&body).ok().as_deref() == Some(HELLO)
                {
                    return Check {
                        name: "api",
                        outcome: Outcome::Passed,
                        detail: format!("GET {url} answered {body}"),
                    };
                }
                last = format!("GET {url} answered {status}: {}", truncate(&body));
            }
            Err(err) => last = format!("GET {url} failed: {err}"),
        }
    }
    Check {
        name: "api",
        outcome: Outcome::Failed,
        detail: last,
    }
}

/// PostgREST serves from a schema cache, reloaded on `NOTIFY pgrst` (which
/// the schema step sends): each table, view and function the migrations
/// leave in `api` must be in it. `OPTIONS` asks the cache and runs nothing;
/// it cannot name a function that needs arguments, so those are listed as
/// not probed rather than called.
async fn check_schema(api_url: &str, through: Option<&str>, attempts: u32) -> Check {
    let expected = migrations::api_paths(&migrations::shipped());
    let unprobed: Vec<&String> = expected
        .iter()
        .filter(|(_, a)| **a)
        .map(|(p, _)| p)
        .collect();
    let probed: Vec<&String> = expected
        .iter()
        .filter(|(_, a)| !**a)
        .map(|(p, _)| p)
        .collect();
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            // The reload is asynchronous: the NOTIFY may still be in flight.
            let pause = Duration::from_secs(if attempts > 10 { 5 } else { 1 });
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = crate::interrupt::wait() => {
                    last = format!("interrupted (Ctrl-C) while waiting for PostgREST to reload: {last}");
                    break;
                }
            }
        }
        match missing_from_cache(api_url, through, &probed).await {
            Ok(missing) if missing.is_empty() => {
                let mut detail = format!(
                    "PostgREST's schema cache has the {} table(s), view(s) and function(s) the migrations leave in api",
                    probed.len()
                );
                if !unprobed.is_empty() {
                    detail += &format!(
                        " (not probed, as OPTIONS cannot name a function that needs arguments: {})",
                        join(&unprobed)
                    );
                }
                return Check {
                    name: "schema",
                    outcome: Outcome::Passed,
                    detail,
                };
            }
            Ok(missing) => {
                last = format!(
                    "PostgREST's schema cache lacks {}: it is older than the migrations (PostgREST reloads it on NOTIFY pgrst, 'reload schema', and when its tasks restart)",
                    join(&missing)
                )
            }
            Err(err) => last = err,
        }
    }
    Check {
        name: "schema",
        outcome: Outcome::Failed,
        detail: last,
    }
}

fn join(paths: &[&String]) -> String {
    paths
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The paths PostgREST answers `OPTIONS` with 404 (not in its schema cache).
async fn missing_from_cache<'a>(
    api_url: &str,
    through: Option<&str>,
    paths: &[&'a String],
) -> Result<Vec<&'a String>, String> {
    let client = pinned_client(api_url, through).await?;
    // All at once: each is a cache lookup, and a deploy waits for them.
    let asked = paths.iter().map(|path| {
        let client = &client;
        async move {
            let url = format!("{api_url}{path}");
            let response = client
                .request(reqwest::Method::OPTIONS, &url)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| format!("OPTIONS {url} failed: {e}"))?;
            match response.status() {
                status if status.is_success() => Ok(None),
                reqwest::StatusCode::NOT_FOUND => Ok(Some(*path)),
                status => {
                    let body = response.text().await.unwrap_or_default();
                    Err(format!(
                        "OPTIONS {url} answered {status}: {}",
                        truncate(&body)
                    ))
                }
            }
        }
    });
    let answers = futures::future::join_all(asked).await;
    let mut missing = Vec::new();
    for answer in answers {
        if let Some(path) = answer? {
            missing.push(path);
        }
    }
    Ok(missing)
}

/// A client that sends requests for the URL's host to `through`'s addresses.
async fn pinned_client(url: &str, through: Option<&str>) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder();
    let Some(through) = through else {
        return builder.build().map_err(|e| e.to_string());
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((through, port))
        .await
        .map_err(|e| format!("{through} does not resolve yet: {e}"))?
        .collect();
    builder
        .resolve_to_addrs(&host, &addresses)
        .build()
        .map_err(|e| e.to_string())
}

fn truncate(text: &str) -> String {
    let short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        format!("{short}...")
    } else {
        short
    }
}

async fn check_targets(cx: &Context, config: &Config, waits: &Waits<'_>) -> Check {
    let cluster = crate::names::cluster_name(config);
    let service = crate::names::service_name(config);
    if let Some(unsettled) = settle(cx, &cluster, &service, waits).await {
        return unsettled;
    }
    let failed = |detail: String| Check {
        name: "targets",
        outcome: Outcome::Failed,
        detail,
    };
    let groups = match serving_target_groups(cx).await {
        Ok(groups) if groups.is_empty() => {
            return failed("the production rule forwards to no target group".into())
        }
        Ok(groups) => groups,
        Err(err) => return failed(format!("{err:#}")),
    };
    let poll = if cx.emulator {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let read = async {
        loop {
            let health = match read_health(cx, &groups).await {
                Ok(health) => health,
                Err(err) => return failed(format!("{err:#}")),
            };
            if health.initial == 0 {
                return health.check(&groups);
            }
            tokio::time::sleep(poll).await;
        }
    };
    let waited = waits
        .report(
            &ResourceId::new(Kind::TargetGroup, "api"),
            "its targets pass their first health checks",
            HEALTHY_WITHIN,
            tokio::time::timeout(HEALTHY_WITHIN, read),
        )
        .await;
    match waited {
        Ok(Ok(check)) => check,
        Ok(Err(_elapsed)) => failed(format!(
            "targets still in their initial health checks after {} minutes",
            HEALTHY_WITHIN.as_secs() / 60
        )),
        Err(interrupted) => Check {
            name: "targets",
            outcome: Outcome::Skipped,
            detail: interrupted.to_string(),
        },
    }
}

/// How long targets may stay `initial` (ELB's first health checks) after the
/// service settled: ECS counts a task running before ELB has checked it.
const HEALTHY_WITHIN: Duration = Duration::from_secs(5 * 60);

/// The targets of the serving groups, by health.
#[derive(Default)]
struct Health {
    healthy: usize,
    /// Still in ELB's first health checks (`initial`): not yet a verdict.
    initial: usize,
    /// Old tasks deregistering (`draining`): on their way out, not a problem.
    draining: usize,
    problems: Vec<String>,
}

async fn read_health(cx: &Context, groups: &[String]) -> anyhow::Result<Health> {
    let mut health = Health::default();
    for group in groups {
        let name = target_group_name(group);
        let targets = load_balancer::target_health(cx, group).await?;
        if targets.is_empty() {
            health
                .problems
                .push(format!("no target is registered with {name}"));
        }
        let before = (health.healthy, health.initial, health.draining);
        for (target, state, reason) in targets {
            match state.as_str() {
                "healthy" => health.healthy += 1,
                "initial" => health.initial += 1,
                "draining" => health.draining += 1,
                _ => health
                    .problems
                    .push(format!("{name}: {target} {state} ({reason})")),
            }
        }
        // A serving group whose only targets are on their way out serves nothing.
        let draining = health.draining - before.2;
        if health.healthy == before.0 && health.initial == before.1 && draining > 0 {
            let targets = match draining {
                1 => "1 target is".to_string(),
                n => format!("{n} targets are"),
            };
            health.problems.push(format!(
                "no healthy target in {name}: its {targets} draining on the way out"
            ));
        }
    }
    Ok(health)
}

impl Health {
    fn check(&self, groups: &[String]) -> Check {
        if !self.problems.is_empty() {
            return Check {
                name: "targets",
                outcome: Outcome::Failed,
                detail: format!("not healthy: {}", self.problems.join("; ")),
            };
        }
        let draining = match self.draining {
            0 => String::new(),
            n => format!(" ({n} draining on their way out)"),
        };
        Check {
            name: "targets",
            outcome: Outcome::Passed,
            detail: format!(
                "{healthy} of {healthy} targets healthy in {}{draining}",
                groups
                    .iter()
                    .map(|g| target_group_name(g))
                    .collect::<Vec<_>>()
                    .join(" and "),
                healthy = self.healthy
            ),
        }
    }
}

/// Waits for the service to settle: `None` once it has, or the check that
/// says why not (Ctrl-C, or not within the bound).
async fn settle(cx: &Context, cluster: &str, service: &str, waits: &Waits<'_>) -> Option<Check> {
    let stable = waits
        .report(
            &ResourceId::new(Kind::Service, "api"),
            "its tasks run and pass health checks",
            STABLE_WITHIN,
            tokio::time::timeout(
                STABLE_WITHIN,
                poll(cx.poll_interval(), || service_stable(cx, cluster, service)),
            ),
        )
        .await;
    let stable = match stable {
        Ok(stable) => stable,
        Err(interrupted) => {
            return Some(Check {
                name: "targets",
                outcome: Outcome::Skipped,
                detail: interrupted.to_string(),
            })
        }
    };
    let stable = match stable {
        Ok(result) => result,
        Err(_elapsed) => Err(anyhow::anyhow!(
            "ECS never reported one deployment with every desired task running"
        )),
    };
    if let Err(err) = stable {
        let counts = ecs::service_counts(cx, cluster, service)
            .await
            .ok()
            .flatten();
        let detail = match counts {
            Some(c) => format!(
                "the service did not settle within {} minutes: {} of {} tasks running ({err})",
                STABLE_WITHIN.as_secs() / 60,
                c.running,
                c.desired
            ),
            None => format!("the service did not settle: {err}"),
        };
        return Some(Check {
            name: "targets",
            outcome: Outcome::Failed,
            detail,
        });
    }
    None
}

/// One look at the service: `Some` once it is stable as ECS's
/// ServicesStable waiter defines it (one deployment, every desired task
/// running); an error where the waiter fails (the service MISSING, draining
/// or inactive). The waiter backs off from 15 s to 10 minutes; this looks
/// every [`Context::poll_interval`].
async fn service_stable(cx: &Context, cluster: &str, service: &str) -> anyhow::Result<Option<()>> {
    let out = cx
        .clients
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .aws("DescribeServices")?;
    if out.failures().iter().any(|f| f.reason() == Some("MISSING")) {
        anyhow::bail!("ECS does not know the service (MISSING)");
    }
    let Some(found) = out.services().first() else {
        // Not described and not missing: look again.
        return Ok(None);
    };
    if let Some(status @ ("DRAINING" | "INACTIVE")) = found.status() {
        anyhow::bail!("the service is {status}");
    }
    let settled = found.deployments().len() == 1 && found.running_count() == found.desired_count();
    Ok(settled.then_some(()))
}

/// The groups that serve the API now: after a canary or linear shift, ECS
/// has moved the tasks (and the production rule's weight) to the alternate
/// group and drained the other, so the blueprint's `target-group/api` is
/// not necessarily the one to check. Without the rule, the listener
/// forwards to that group alone.
async fn serving_target_groups(cx: &Context) -> anyhow::Result<Vec<String>> {
    if let Some(rule) = cx.physical_id(&ResourceId::new(Kind::ListenerRule, "api")) {
        return listeners::serving_target_groups(cx, &rule).await;
    }
    cx.physical_id(&ResourceId::new(Kind::TargetGroup, "api"))
        .map(|group| vec![group])
        .ok_or_else(|| anyhow::anyhow!("the target group does not exist"))
}

/// `poolside-pilot-a` from `arn:...:targetgroup/poolside-pilot-a/0123...`.
fn target_group_name(arn: &str) -> &str {
    arn.rsplit(":targetgroup/")
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(arn)
}

pub async fn check_alarms(cx: &Context) -> Check {
    let ours = cx.physical_ids_of(crate::model::Kind::Alarm);
    // Discovery read every alarm's state moments ago; read again only for an
    // alarm it did not see (created in this run) or saw in ALARM (for its reason).
    let seen = cx.attributes_of(crate::model::Kind::Alarm, "state");
    if seen.len() == ours.len() && seen.iter().all(|(_, state)| state != "ALARM") {
        return Check {
            name: "alarms",
            outcome: Outcome::Passed,
            detail: "no alarm of the environment is in ALARM".into(),
        };
    }
    match alarms::firing(cx, &ours).await {
        Ok(firing) if firing.is_empty() => Check {
            name: "alarms",
            outcome: Outcome::Passed,
            detail: "no alarm of the environment is in ALARM".into(),
        },
        Ok(firing) => Check {
            name: "alarms",
            outcome: Outcome::Failed,
            detail: firing
                .iter()
                .map(|(name, reason)| format!("{name} in ALARM: {reason}"))
                .collect::<Vec<_>>()
                .join("; "),
        },
        Err(err) => Check {
            name: "alarms",
            outcome: Outcome::Failed,
            detail: format!("{err:#}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// After a canary or linear shift, ECS has put the tasks in the
    /// alternate group and left the first one empty: the check reads the
    /// group the production rule forwards to now, not the blueprint's.
    #[tokio::test]
    async fn after_a_shift_the_targets_check_reads_the_group_that_serves() {
        use aws_sdk_ecs::types::{Deployment, Service};
        use aws_sdk_elasticloadbalancingv2::types::{
            Action, ActionTypeEnum, ForwardActionConfig, Rule, TargetDescription, TargetGroupTuple,
            TargetHealth, TargetHealthDescription, TargetHealthStateEnum,
        };
        use aws_smithy_mocks::mock;
        let arn = |name: &str| {
            format!("arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/{name}/0123456789abcdef")
        };
        let (primary, alternate) = (arn("poolside-pilot"), arn("poolside-pilot-a"));
        let stable = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            aws_sdk_ecs::operation::describe_services::DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .status("ACTIVE")
                        .desired_count(2)
                        .running_count(2)
                        .deployments(Deployment::builder().status("PRIMARY").build())
                        .build(),
                )
                .build()
        });
        let weights = {
            let (primary, alternate) = (primary.clone(), alternate.clone());
            mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules).then_output(move || {
                let group = |arn: &str, weight| {
                    TargetGroupTuple::builder()
                        .target_group_arn(arn)
                        .weight(weight)
                        .build()
                };
                aws_sdk_elasticloadbalancingv2::operation::describe_rules::DescribeRulesOutput::builder()
                    .rules(
                        Rule::builder()
                            .actions(
                                Action::builder()
                                    .r#type(ActionTypeEnum::Forward)
                                    .forward_config(
                                        ForwardActionConfig::builder()
                                            .target_groups(group(&primary, 0))
                                            .target_groups(group(&alternate, 100))
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            })
        };
        let drained = {
            let primary = primary.clone();
            mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
                .match_requests(move |r| r.target_group_arn() == Some(primary.as_str()))
                .then_output(|| {
                    aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput::builder().build()
                })
        };
        let serving = {
            let alternate = alternate.clone();
            mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
                .match_requests(move |r| r.target_group_arn() == Some(alternate.as_str()))
                .then_output(|| {
                    let target = |ip: &str| {
                        TargetHealthDescription::builder()
                            .target(TargetDescription::builder().id(ip).port(3000).build())
                            .target_health(
                                TargetHealth::builder()
                                    .state(TargetHealthStateEnum::Healthy)
                                    .build(),
                            )
                            .build()
                    };
                    aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput::builder()
                        .target_health_descriptions(target("10.0.1.10"))
                        .target_health_descriptions(target("10.0.2.10"))
                        .build()
                })
        };
        let cx = crate::resources::testing::context(|clients| {
            clients.ecs = crate::mocked!(aws_sdk_ecs, [&stable]);
            clients.elb = crate::mocked!(
                aws_sdk_elasticloadbalancingv2,
                [&weights, &drained, &serving],
                MatchAny
            );
        });
        cx.record(&ResourceId::new(Kind::TargetGroup, "api"), &primary);
        cx.record(
            &ResourceId::new(Kind::TargetGroup, "api-alternate"),
            &alternate,
        );
        cx.record(
            &ResourceId::new(Kind::ListenerRule, "api"),
            "arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener-rule/app/poolside-pilot/1/2/3",
        );
        let text = "name = \"pilot\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
             availability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n";
        let config = crate::config::parse("pilot.toml", "pilot", text.to_string()).unwrap();
        let check = check_targets(&cx, &config, &Waits::new(&crate::resources::Unwatched)).await;
        assert_eq!(check.outcome, Outcome::Passed, "{}", check.detail);
        assert_eq!(check.detail, "2 of 2 targets healthy in poolside-pilot-a");
        assert_eq!(drained.num_calls(), 0, "the drained group was read");
        assert_eq!(serving.num_calls(), 1);
    }

    /// The service is looked at every 10 s until one deployment runs every
    /// desired task (ECS's ServicesStable), not at the SDK waiter's backoff.
    #[tokio::test(start_paused = true)]
    async fn the_service_is_stable_once_one_deployment_runs_every_task() {
        use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
        use aws_sdk_ecs::types::{Deployment, Service};
        use aws_smithy_mocks::mock;
        let service = |deployments: usize, running: i32| {
            let mut service = Service::builder()
                .status("ACTIVE")
                .desired_count(2)
                .running_count(running);
            for _ in 0..deployments {
                service = service.deployments(Deployment::builder().build());
            }
            DescribeServicesOutput::builder()
                .services(service.build())
                .build()
        };
        let looks = mock!(aws_sdk_ecs::Client::describe_services)
            .sequence()
            .output(move || service(2, 2))
            .times(3)
            .output(move || service(1, 1))
            .output(move || service(1, 2))
            .build();
        let cx = crate::resources::testing::context(|clients| {
            clients.ecs = crate::mocked!(aws_sdk_ecs, [&looks]);
        });
        let started = tokio::time::Instant::now();
        let unsettled = settle(&cx, "c", "s", &Waits::new(&crate::resources::Unwatched)).await;
        assert!(unsettled.is_none(), "{unsettled:?}");
        assert_eq!(looks.num_calls(), 5);
        assert_eq!(started.elapsed(), Duration::from_secs(40));
    }

    /// `check_targets` for a settled pilot service whose target group
    /// answers DescribeTargetHealth by `health`, in turn.
    async fn targets_check(health: &aws_smithy_mocks::Rule) -> Check {
        use aws_sdk_ecs::types::{Deployment, Service};
        use aws_smithy_mocks::mock;
        let group = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/poolside-pilot/0123456789abcdef";
        let stable = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            aws_sdk_ecs::operation::describe_services::DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .status("ACTIVE")
                        .desired_count(1)
                        .running_count(1)
                        .deployments(Deployment::builder().status("PRIMARY").build())
                        .build(),
                )
                .build()
        });
        let cx = crate::resources::testing::context(|clients| {
            clients.ecs = crate::mocked!(aws_sdk_ecs, [&stable]);
            clients.elb = crate::mocked!(aws_sdk_elasticloadbalancingv2, [health]);
        });
        cx.record(&ResourceId::new(Kind::TargetGroup, "api"), group);
        let text = "name = \"pilot\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
             availability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n";
        let config = crate::config::parse("pilot.toml", "pilot", text.to_string()).unwrap();
        check_targets(&cx, &config, &Waits::new(&crate::resources::Unwatched)).await
    }

    /// DescribeTargetHealth's answer: one target per (address, state).
    fn target_health(
        targets: &[(
            &str,
            aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum,
        )],
    ) -> aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput
    {
        use aws_sdk_elasticloadbalancingv2::types::{
            TargetDescription, TargetHealth, TargetHealthDescription,
        };
        let mut out = aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput::builder();
        for (ip, state) in targets {
            out = out.target_health_descriptions(
                TargetHealthDescription::builder()
                    .target(TargetDescription::builder().id(*ip).port(3000).build())
                    .target_health(TargetHealth::builder().state(state.clone()).build())
                    .build(),
            );
        }
        out.build()
    }

    /// ECS counts a task running before ELB has checked it: targets still in
    /// their first health checks are waited for, not failed, and an old
    /// task's target draining on its way out is no problem.
    #[tokio::test(start_paused = true)]
    async fn targets_in_their_first_health_checks_are_waited_for_and_draining_ones_pass() {
        use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum as State;
        let health =
            aws_smithy_mocks::mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
                .sequence()
                .output(|| {
                    target_health(&[
                        ("10.0.1.10", State::Initial),
                        ("10.0.2.10", State::Draining),
                    ])
                })
                .times(2)
                .output(|| {
                    target_health(&[
                        ("10.0.1.10", State::Healthy),
                        ("10.0.2.10", State::Draining),
                    ])
                })
                .build();
        let check = targets_check(&health).await;
        assert_eq!(check.outcome, Outcome::Passed, "{}", check.detail);
        assert_eq!(
            check.detail,
            "1 of 1 targets healthy in poolside-pilot (1 draining on their way out)"
        );
        assert_eq!(health.num_calls(), 3);
    }

    /// A group read after its traffic moved elsewhere lists only the old
    /// tasks, draining: nothing serves there, which is a failure, not a pass.
    #[tokio::test(start_paused = true)]
    async fn a_group_whose_only_targets_are_draining_fails() {
        use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum as State;
        let health =
            aws_smithy_mocks::mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
                .then_output(|| {
                    target_health(&[
                        ("10.0.2.10", State::Draining),
                        ("10.0.2.11", State::Draining),
                    ])
                });
        let check = targets_check(&health).await;
        assert_eq!(check.outcome, Outcome::Failed, "{}", check.detail);
        assert_eq!(
            check.detail,
            "not healthy: no healthy target in poolside-pilot: its 2 targets are draining on the way out"
        );
    }

    /// The API's domain has no DNS record (`.invalid` never resolves), yet the
    /// check reaches the server behind `through` and asks it for that name.
    #[tokio::test]
    async fn the_api_check_reaches_the_domain_through_the_load_balancer_addresses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 4096];
            let n = socket.read(&mut request).await.unwrap();
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            let body = "\"hello world\"";
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            request
        });
        let url = format!("http://api.poolside.invalid:{port}");
        let check = check_api(&url, Some("localhost"), 1).await;
        assert_eq!(check.outcome, Outcome::Passed, "{}", check.detail);
        let request = server.await.unwrap();
        assert!(
            request.contains(&format!("host: api.poolside.invalid:{port}")),
            "{request}"
        );
        // Without the pin the name does not resolve, and the check says so.
        let unpinned = check_api(&url, None, 1).await;
        assert_eq!(unpinned.outcome, Outcome::Failed);
    }
}
