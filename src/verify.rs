//! The checks that end a deploy: the API answers through the environment's
//! public URL, the load balancer's targets are healthy, and no alarm of the
//! environment is in ALARM. Each check reports passed, failed or skipped
//! (with why), and every check runs even when an earlier one failed.

use crate::config::Config;
use crate::model::{Kind, ResourceId};
use crate::resources::{alarms, ecs, load_balancer, Context, Waits};
use aws_sdk_ecs::client::Waiters as _;
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

pub async fn verify(
    cx: &Context,
    config: &Config,
    api_url: &str,
    waits: &Waits<'_>,
) -> Verification {
    let emulator = config.endpoint_url.is_some();
    let targets = if emulator {
        Check {
            name: "targets",
            outcome: Outcome::Skipped,
            detail: "the emulator runs no ECS tasks, so nothing is registered; the local PostgREST stands in for them".into(),
        }
    } else {
        check_targets(cx, config, waits).await
    };
    let api = check_api(api_url, if emulator { 5 } else { 24 }).await;
    let alarms = check_alarms(cx).await;
    Verification {
        checks: vec![api, targets, alarms],
    }
}

async fn check_api(api_url: &str, attempts: u32) -> Check {
    let url = format!("{api_url}/rpc/hello");
    let client = reqwest::Client::new();
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
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

fn truncate(text: &str) -> String {
    let short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        format!("{short}...")
    } else {
        short
    }
}

async fn check_targets(cx: &Context, config: &Config, waits: &Waits<'_>) -> Check {
    let cluster = crate::blueprint::cluster_name(config);
    let service = crate::blueprint::service_name(config);
    let stable = waits
        .report(
            &ResourceId::new(Kind::Service, "api"),
            "its tasks run and pass health checks",
            STABLE_WITHIN,
            cx.clients
                .ecs
                .wait_until_services_stable()
                .cluster(&cluster)
                .services(&service)
                .wait(STABLE_WITHIN),
        )
        .await;
    if let Err(err) = stable {
        let counts = ecs::service_counts(cx, &cluster, &service)
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
        return Check {
            name: "targets",
            outcome: Outcome::Failed,
            detail,
        };
    }
    let Some(target_group) = cx.physical_id(&ResourceId::new(Kind::TargetGroup, "api")) else {
        return Check {
            name: "targets",
            outcome: Outcome::Failed,
            detail: "the target group does not exist".into(),
        };
    };
    match load_balancer::target_health(cx, &target_group).await {
        Ok(targets) if targets.is_empty() => Check {
            name: "targets",
            outcome: Outcome::Failed,
            detail: "no target is registered with the load balancer".into(),
        },
        Ok(targets) => {
            let unhealthy: Vec<String> = targets
                .iter()
                .filter(|(_, state, _)| state != "healthy")
                .map(|(target, state, reason)| format!("{target} {state} ({reason})"))
                .collect();
            if unhealthy.is_empty() {
                Check {
                    name: "targets",
                    outcome: Outcome::Passed,
                    detail: format!("{} of {} targets healthy", targets.len(), targets.len()),
                }
            } else {
                Check {
                    name: "targets",
                    outcome: Outcome::Failed,
                    detail: format!("not healthy: {}", unhealthy.join("; ")),
                }
            }
        }
        Err(err) => Check {
            name: "targets",
            outcome: Outcome::Failed,
            detail: format!("{err:#}"),
        },
    }
}

async fn check_alarms(cx: &Context) -> Check {
    let ours = cx.physical_ids_of(crate::model::Kind::Alarm);
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
