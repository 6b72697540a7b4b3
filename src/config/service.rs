//! The `[api]` and `[alarms]` sections: the service tier's sizing, its
//! certificate and the alarm thresholds, with phase defaults.

use super::file::Phase;
use super::file::{ApiSection, EnvironmentFile, RolloutStrategy};
use super::validator::{Checked, Validator};

#[derive(Debug, Clone)]
pub struct Api {
    /// `:tag` or `@sha256:...` of the published image (`image_source`).
    pub image_suffix: String,
    /// `:<tag>-rds-ca`: the image in the environment's repository, which is
    /// the published one with the RDS certificate authorities added (so the
    /// tasks verify the database's certificate); what the task definition runs.
    pub repository_suffix: String,
    /// The published image `poolside image push` copies (no tag or digest).
    pub image_source: String,
    pub desired_count: u32,
    pub autoscaling: Option<Autoscaling>,
    /// Fargate task size: CPU units and MiB.
    pub cpu: u32,
    pub memory: u32,
    /// `None`: the load balancer serves plain HTTP (plan warns), unless
    /// poolside makes a certificate in `hosted_zone_id`.
    pub certificate_arn: Option<String>,
    /// The name the certificate is for: clients call it, and so does
    /// verification (pinned to the load balancer's addresses).
    pub domain_name: Option<String>,
    /// The Route 53 zone poolside writes the domain's records into.
    pub hosted_zone_id: Option<String>,
    pub log_retention_days: u32,
    pub container_insights: bool,
    /// Connections each task's PostgREST keeps to the database.
    pub db_pool: u32,
    /// Emulator targets: where the stand-in PostgREST listens (its admin
    /// server, for readiness, on the next port).
    pub local_port: u16,
    pub rollout: Rollout,
}

/// How a new release reaches users: ECS's own deployment strategies, so the
/// traffic shift and an alarm's rollback go on without poolside running.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub strategy: RolloutStrategy,
    /// Canary: the new release's first share; linear: each step's share.
    pub percent: f64,
    pub step_minutes: u32,
    /// After the last shift, the old release stays ready this long.
    pub bake_minutes: u32,
}

impl Rollout {
    /// Whether traffic moves between two target groups (ECS's blue/green
    /// family of strategies), rather than tasks being replaced in one.
    pub fn shifts_traffic(&self) -> bool {
        self.strategy != RolloutStrategy::Rolling
    }
}

#[derive(Debug, Clone)]
pub struct Autoscaling {
    pub max_count: u32,
    pub cpu_target_percent: u32,
    pub requests_per_target: u32,
}

#[derive(Debug, Clone)]
pub struct Alarms {
    pub action_arn: Option<String>,
    pub p95_latency_ms: u32,
    pub p99_latency_ms: u32,
    pub target_5xx_count: u32,
    pub rds_cpu_percent: u32,
    pub rds_free_storage_gb: u32,
    pub rds_connections: u32,
    pub ecs_cpu_percent: u32,
    pub ecs_memory_percent: u32,
}

/// The retention periods CloudWatch Logs accepts.
const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Fargate's CPU units and the memory (MiB) each allows.
fn fargate_memory_allowed(cpu: u32, memory: u32) -> bool {
    match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => (1024..=4096).contains(&memory) && memory % 1024 == 0,
        1024 => (2048..=8192).contains(&memory) && memory % 1024 == 0,
        2048 => (4096..=16384).contains(&memory) && memory % 1024 == 0,
        4096 => (8192..=30720).contains(&memory) && memory % 1024 == 0,
        _ => false,
    }
}

/// PostgREST's own published image.
pub const DEFAULT_IMAGE_SOURCE: &str = "docker.io/postgrest/postgrest";

impl Api {
    /// Whether the load balancer serves HTTPS: with a certificate given, or
    /// one poolside makes for the domain in its zone.
    pub fn https(&self) -> bool {
        self.certificate_arn.is_some() || self.hosted_zone_id.is_some()
    }
}

impl Validator<'_> {
    pub(super) fn check_api(&self, raw: &EnvironmentFile) -> Checked<Api> {
        let a = &raw.api;
        let phase = raw.phase;
        let (image_tag, image_suffix, image_source) = self.check_image(a)?;
        let (desired_count, autoscaling, cpu, memory) = self.check_capacity(raw)?;
        self.check_name_and_certificate(raw)?;
        let (log_retention_days, db_pool, local_port) = self.check_limits(raw)?;
        let rollout = self.check_rollout(raw)?;
        Ok(Api {
            repository_suffix: format!(":{}-rds-ca", image_tag.replace(':', "-")),
            image_suffix,
            image_source,
            desired_count,
            autoscaling,
            cpu,
            memory,
            certificate_arn: a.certificate_arn.clone(),
            domain_name: a.domain_name.clone(),
            hosted_zone_id: a.hosted_zone_id.clone(),
            log_retention_days,
            container_insights: a.container_insights.unwrap_or(phase != Phase::Pilot),
            db_pool,
            local_port,
            rollout,
        })
    }

    /// The image: (tag or digest, its suffix in a reference, the repository
    /// it is copied from).
    fn check_image(&self, a: &ApiSection) -> Checked<(String, String, String)> {
        let image_tag = a.image_tag.clone().unwrap_or_else(|| "v12.0.2".into());
        let image_suffix = if let Some(hex) = image_tag.strip_prefix("sha256:") {
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return self.fail(
                    "api.image_tag",
                    format!("{image_tag:?} is not an image digest (sha256: and 64 hex digits)"),
                );
            }
            format!("@{image_tag}")
        } else {
            let valid = (1..=128).contains(&image_tag.len())
                && image_tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && image_tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return self.fail(
                    "api.image_tag",
                    format!("{image_tag:?} is not an image tag (up to 128 of A-Z a-z 0-9 _ . -) or a digest (sha256:...)"),
                );
            }
            format!(":{image_tag}")
        };
        let image_source = a
            .image_source
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE_SOURCE.into());
        let plain_repository = !image_source.is_empty()
            && !image_source.contains('@')
            && !image_source
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .contains(':')
            && image_source.parse::<oci_client::Reference>().is_ok();
        if !plain_repository {
            return self.fail(
                "api.image_source",
                format!("{image_source:?} is not an image repository such as \"docker.io/postgrest/postgrest\" (no tag or digest: api.image_tag gives it)"),
            );
        }
        Ok((image_tag, image_suffix, image_source))
    }

    /// How many tasks, how far they scale, and their Fargate size:
    /// (desired count, autoscaling, cpu, memory).
    fn check_capacity(
        &self,
        raw: &EnvironmentFile,
    ) -> Checked<(u32, Option<Autoscaling>, u32, u32)> {
        let a = &raw.api;
        let phase = raw.phase;
        let desired_count = a.desired_count.unwrap_or(match phase {
            Phase::Pilot => 1,
            Phase::Limited => 2,
            Phase::Full => 3,
        });
        if !(1..=100).contains(&desired_count) {
            return self.fail(
                "api.desired_count",
                format!("{desired_count} must be between 1 and 100"),
            );
        }
        let max_count = a.max_count.unwrap_or(match phase {
            Phase::Pilot => desired_count,
            Phase::Limited => desired_count.max(6),
            Phase::Full => desired_count.max(20),
        });
        if max_count < desired_count || max_count > 100 {
            return self.fail(
                "api.max_count",
                format!("{max_count} must be between api.desired_count ({desired_count}) and 100"),
            );
        }
        let autoscaling = (max_count > desired_count).then_some(Autoscaling {
            max_count,
            cpu_target_percent: 60,
            requests_per_target: 1000,
        });
        let (default_cpu, default_memory) = match phase {
            Phase::Pilot => (256, 512),
            Phase::Limited => (512, 1024),
            Phase::Full => (1024, 2048),
        };
        let cpu = a.cpu.unwrap_or(default_cpu);
        let memory = a.memory.unwrap_or(if a.cpu.is_some() {
            cpu * 2
        } else {
            default_memory
        });
        if !fargate_memory_allowed(cpu, memory) {
            let key = if [256, 512, 1024, 2048, 4096].contains(&cpu) {
                "api.memory"
            } else {
                "api.cpu"
            };
            return self.fail(
                key,
                format!("cpu {cpu} with memory {memory} MiB is not a Fargate task size (cpu 256/512/1024/2048/4096 with memory 512-30720 MiB as Fargate allows)"),
            );
        }
        Ok((desired_count, autoscaling, cpu, memory))
    }

    /// The API's name, its certificate and its hosted zone, which go together.
    fn check_name_and_certificate(&self, raw: &EnvironmentFile) -> Checked<()> {
        let a = &raw.api;
        if let Some(arn) = &a.certificate_arn {
            let parts: Vec<&str> = arn.split(':').collect();
            if parts.len() != 6
                || parts[0] != "arn"
                || parts[2] != "acm"
                || !parts[5].starts_with("certificate/")
            {
                return self.fail(
                    "api.certificate_arn",
                    format!("{arn:?} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"),
                );
            }
            if parts[3] != raw.region {
                return self.fail(
                    "api.certificate_arn",
                    format!("the certificate is in {}, but a load balancer in {} needs one from its own region", parts[3], raw.region),
                );
            }
        }
        if let Some(name) = &a.domain_name {
            if !is_domain_name(name) {
                return self.fail(
                    "api.domain_name",
                    format!("{name:?} is not a DNS name such as \"api.example.com\" (lower-case labels of a-z, 0-9 and -, separated by dots)"),
                );
            }
        }
        if let Some(zone) = &a.hosted_zone_id {
            let valid = (2..=32).contains(&zone.len())
                && zone
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if !valid {
                return self.fail(
                    "api.hosted_zone_id",
                    format!("{zone:?} is not a Route 53 hosted zone id (upper-case letters and digits such as \"Z0123456789ABCDEFGHIJ\", as `aws route53 list-hosted-zones` shows it, without /hostedzone/)"),
                );
            }
            if a.domain_name.is_none() {
                return self.fail(
                    "api.hosted_zone_id",
                    "needs api.domain_name as well: the name to create in the zone",
                );
            }
        }
        if a.certificate_arn.is_some() && a.domain_name.is_none() {
            return self.fail(
                "api.certificate_arn",
                "needs api.domain_name as well: the name the certificate is for. Clients call the API by it, and so does deploy's verification (the load balancer's own name never matches the certificate)",
            );
        }
        Ok(())
    }

    /// Logs kept, the database pool, and the local API's port:
    /// (log retention days, pool size, local port).
    fn check_limits(&self, raw: &EnvironmentFile) -> Checked<(u32, u32, u16)> {
        let a = &raw.api;
        let phase = raw.phase;
        let log_retention_days = a.log_retention_days.unwrap_or(match phase {
            Phase::Pilot => 14,
            Phase::Limited => 30,
            Phase::Full => 90,
        });
        if !LOG_RETENTION_DAYS.contains(&log_retention_days) {
            return self.fail(
                "api.log_retention_days",
                format!("{log_retention_days} is not a retention CloudWatch Logs offers ({LOG_RETENTION_DAYS:?})"),
            );
        }
        let db_pool = a.db_pool.unwrap_or(match phase {
            Phase::Pilot => 10,
            Phase::Limited => 20,
            Phase::Full => 30,
        });
        if !(1..=200).contains(&db_pool) {
            return self.fail(
                "api.db_pool",
                format!("{db_pool} connections per task: between 1 and 200 (every task holds its pool open, and RDS allows a few hundred in all)"),
            );
        }
        let local_port = a.local_port.unwrap_or(3000);
        if a.local_port.is_some() && raw.target.endpoint_url.is_none() {
            return self.fail(
                "api.local_port",
                "only applies to an emulator target (target.endpoint_url): on AWS the API runs on ECS",
            );
        }
        if local_port == 0 || local_port == u16::MAX {
            return self.fail(
                "api.local_port",
                "must be a port between 1 and 65534 (the admin server takes the next one)",
            );
        }
        Ok((log_retention_days, db_pool, local_port))
    }

    /// Pilot replaces tasks in place (a handful of users); limited sends a
    /// canary share first; full moves traffic in steps.
    fn check_rollout(&self, raw: &EnvironmentFile) -> Checked<Rollout> {
        let a = &raw.api;
        let strategy = a.rollout.unwrap_or(match raw.phase {
            Phase::Pilot => RolloutStrategy::Rolling,
            Phase::Limited => RolloutStrategy::Canary,
            Phase::Full => RolloutStrategy::Linear,
        });
        let (percent, step_minutes, bake_minutes) = match strategy {
            RolloutStrategy::Rolling => {
                for (key, given) in [
                    ("api.rollout_percent", a.rollout_percent.is_some()),
                    ("api.rollout_step_minutes", a.rollout_step_minutes.is_some()),
                    ("api.rollout_bake_minutes", a.rollout_bake_minutes.is_some()),
                ] {
                    if given {
                        return self.fail(
                            key,
                            "only applies to api.rollout = \"canary\" or \"linear\": a rolling deployment shifts no traffic",
                        );
                    }
                }
                // Nothing shifts: there is nothing more to check.
                return Ok(Rollout {
                    strategy,
                    percent: 100.0,
                    step_minutes: 0,
                    bake_minutes: 0,
                });
            }
            RolloutStrategy::Canary => (
                a.rollout_percent.unwrap_or(10.0),
                a.rollout_step_minutes.unwrap_or(10),
                a.rollout_bake_minutes.unwrap_or(10),
            ),
            RolloutStrategy::Linear => (
                a.rollout_percent.unwrap_or(20.0),
                a.rollout_step_minutes.unwrap_or(5),
                a.rollout_bake_minutes.unwrap_or(15),
            ),
        };
        // ECS: multiples of 0.1, from 0.1 (canary) or 3.0 (linear) to 100.
        let (lowest, kind) = if strategy == RolloutStrategy::Linear {
            (3.0, "linear")
        } else {
            (0.1, "canary")
        };
        let tenths = percent * 10.0;
        if !(lowest..=100.0).contains(&percent) || (tenths - tenths.round()).abs() > 1e-9 {
            return self.fail(
                "api.rollout_percent",
                format!("{percent} must be a multiple of 0.1 from {lowest} to 100 (ECS's bounds for a {kind} rollout)"),
            );
        }
        for (key, minutes) in [
            ("api.rollout_step_minutes", step_minutes),
            ("api.rollout_bake_minutes", bake_minutes),
        ] {
            if minutes > 1440 {
                return self.fail(
                    key,
                    format!("{minutes} minutes: ECS allows 0 to 1440 (24 hours)"),
                );
            }
        }
        Ok(Rollout {
            strategy,
            percent,
            step_minutes,
            bake_minutes,
        })
    }

    pub(super) fn check_alarms(&self, raw: &EnvironmentFile) -> Checked<Alarms> {
        let a = &raw.alarms;
        let by_phase = |pilot: u32, limited: u32, full: u32| match raw.phase {
            Phase::Pilot => pilot,
            Phase::Limited => limited,
            Phase::Full => full,
        };
        if let Some(arn) = &a.action_arn {
            let parts: Vec<&str> = arn.split(':').collect();
            if parts.len() < 6 || parts[0] != "arn" || parts[2] != "sns" {
                return self.fail(
                    "alarms.action_arn",
                    format!(
                        "{arn:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)"
                    ),
                );
            }
        }
        let percent = |key: &str, value: Option<u32>, default: u32| -> Checked<u32> {
            let value = value.unwrap_or(default);
            if !(1..=100).contains(&value) {
                return self.fail(
                    &format!("alarms.{key}"),
                    format!("{value} must be a percentage between 1 and 100"),
                );
            }
            Ok(value)
        };
        let positive = |key: &str, value: Option<u32>, default: u32| -> Checked<u32> {
            let value = value.unwrap_or(default);
            if value == 0 {
                return self.fail(&format!("alarms.{key}"), "must be more than 0");
            }
            Ok(value)
        };
        let p95_latency_ms =
            positive("p95_latency_ms", a.p95_latency_ms, by_phase(1000, 800, 500))?;
        let p99_latency_ms = positive(
            "p99_latency_ms",
            a.p99_latency_ms,
            by_phase(2500, 2000, 1500),
        )?;
        if p99_latency_ms < p95_latency_ms {
            return self.fail(
                "alarms.p99_latency_ms",
                format!("{p99_latency_ms} is below alarms.p95_latency_ms ({p95_latency_ms}): the 99th percentile cannot be faster than the 95th"),
            );
        }
        Ok(Alarms {
            action_arn: a.action_arn.clone(),
            p95_latency_ms,
            p99_latency_ms,
            target_5xx_count: positive(
                "target_5xx_count",
                a.target_5xx_count,
                by_phase(10, 25, 50),
            )?,
            rds_cpu_percent: percent("rds_cpu_percent", a.rds_cpu_percent, 80)?,
            rds_free_storage_gb: positive(
                "rds_free_storage_gb",
                a.rds_free_storage_gb,
                by_phase(2, 10, 20),
            )?,
            rds_connections: positive(
                "rds_connections",
                a.rds_connections,
                by_phase(80, 200, 400),
            )?,
            ecs_cpu_percent: percent("ecs_cpu_percent", a.ecs_cpu_percent, 85)?,
            ecs_memory_percent: percent("ecs_memory_percent", a.ecs_memory_percent, 85)?,
        })
    }
}

/// A DNS name of at least two labels, lower case, as ACM certificates name them.
fn is_domain_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}
