//! The environment file as it is written on disk (`environments/<name>.toml`).
//!
//! Every table denies unknown keys, so a typo is an error that points at the key
//! instead of a setting that is silently ignored.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Pilot,
    Limited,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NatGateways {
    /// One NAT gateway in the first AZ, shared by every private subnet.
    Shared,
    /// One NAT gateway per AZ, so losing an AZ does not cut the others off.
    PerAz,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentFile {
    pub name: String,
    pub region: String,
    pub phase: Phase,
    #[serde(default)]
    pub target: TargetSection,
    pub network: NetworkSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub registry: RegistrySection,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub alarms: AlarmsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// Send every AWS call to this endpoint (LocalStack or moto) instead of AWS.
    pub endpoint_url: Option<String>,
    /// Expected AWS account id; deploy refuses to run against another account.
    pub account_id: Option<String>,
    /// The emulator at `endpoint_url` runs ECS tasks (the realistic layer in
    /// `tests/`; moto and LocalStack run none), so `schema_runner =
    /// "ecs-task"` can run there.
    #[serde(default)]
    pub emulator_runs_tasks: bool,
    /// How often a wait asks AWS again (default 10 s on AWS, 1 s on an emulator).
    pub poll_interval_seconds: Option<u64>,
    /// The operator's own credentials: a profile of ~/.aws/config instead of
    /// the default credential chain.
    pub profile: Option<String>,
    /// The role the customer granted (`poolside onboarding`), assumed before
    /// any other call.
    pub role_arn: Option<String>,
    /// The external id the role's trust policy requires.
    pub external_id: Option<String>,
    /// How long one role session lasts ("1h" unless set).
    pub session_duration: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// A network poolside makes: its range and zones.
    pub vpc_cidr: Option<String>,
    pub availability_zones: Option<Vec<String>>,
    /// Or the customer's network: poolside makes only its security groups
    /// and (unless `create_endpoints = false`) its interface endpoints there.
    pub vpc_id: Option<String>,
    pub public_subnet_ids: Option<Vec<String>>,
    pub private_subnet_ids: Option<Vec<String>>,
    pub create_endpoints: Option<bool>,
    #[serde(default)]
    pub public_subnet_prefix: Option<u8>,
    #[serde(default)]
    pub private_subnet_prefix: Option<u8>,
    #[serde(default)]
    pub public_subnet_cidrs: Option<Vec<String>>,
    #[serde(default)]
    pub private_subnet_cidrs: Option<Vec<String>>,
    pub allowed_ingress_cidrs: Vec<String>,
    /// Acknowledges `0.0.0.0/0` in `allowed_ingress_cidrs` in phase full.
    #[serde(default)]
    pub open_to_internet: bool,
    #[serde(default)]
    pub nat_gateways: Option<NatGateways>,
    #[serde(default)]
    pub api_port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    pub bucket_name: Option<String>,
    pub noncurrent_version_expiration_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    pub repository_name: Option<String>,
    /// Removed: read only to say so (see `check_registry`).
    pub keep_last_images: Option<u32>,
    pub untagged_image_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub engine_version: Option<String>,
    pub instance_class: Option<String>,
    pub allocated_storage_gb: Option<u32>,
    pub multi_az: Option<bool>,
    pub backup_retention_days: Option<u32>,
    /// Weekly, UTC, as RDS writes it: `sun:05:00-sun:06:00`.
    pub maintenance_window: Option<String>,
    /// Daily, UTC: `03:00-04:00`.
    pub backup_window: Option<String>,
    /// Take a manual snapshot before a change that is hard to undo.
    pub snapshot_before_changes: Option<bool>,
    /// Days of pg_cron's run history (`cron.job_run_details`) kept.
    pub cron_history_days: Option<u32>,
    pub deletion_protection: Option<bool>,
    /// The application database, created with the instance.
    pub name: Option<String>,
    pub master_username: Option<String>,
    /// Connect here instead of the instance endpoint: the stand-in PostgreSQL
    /// on the moto target, or an SSM port-forward to a private instance.
    pub connect_host: Option<String>,
    pub connect_port: Option<u16>,
    /// `verify-full` (default) or `disable` (emulator targets only).
    pub tls: Option<DatabaseTls>,
    /// PEM bundle of the CAs that sign the database certificate (the RDS bundle).
    pub ca_bundle: Option<String>,
    /// Networks (a VPN, Direct Connect) from which deploy may reach PostgreSQL
    /// directly: admitted on 5432 by the database's security group.
    #[serde(default)]
    pub admin_ingress_cidrs: Vec<String>,
    /// Where the schema step runs: `deploy-host` (this machine connects) or
    /// `ecs-task` (a one-off task inside the VPC). Default: `ecs-task` on AWS
    /// unless a tunnel or an admin network is configured.
    pub schema_runner: Option<SchemaRunner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchemaRunner {
    /// The machine running deploy connects to PostgreSQL (inside the VPC, a
    /// VPN, Direct Connect, or a tunnel at connect_host/connect_port).
    DeployHost,
    /// A one-off Fargate task in the API's subnets and security group runs
    /// the schema step with psql and reports back through its logs.
    EcsTask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseTls {
    /// TLS, with the server's certificate checked against the CA bundle and its name.
    VerifyFull,
    /// Plain text: only for a local stand-in database.
    Disable,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// A tag of the PostgREST image in the environment's repository, or a
    /// digest (`sha256:...`).
    pub image_tag: Option<String>,
    /// Where `poolside image push` copies the image from (a repository, no tag).
    pub image_source: Option<String>,
    pub desired_count: Option<u32>,
    /// Above `desired_count`: the autoscaler may add tasks up to this many.
    pub max_count: Option<u32>,
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
    pub certificate_arn: Option<String>,
    /// The name clients call the API by (the certificate's name).
    pub domain_name: Option<String>,
    /// A Route 53 zone for the name: poolside creates its alias record, and a
    /// DNS-validated certificate when `certificate_arn` is not given.
    pub hosted_zone_id: Option<String>,
    pub log_retention_days: Option<u32>,
    pub container_insights: Option<bool>,
    /// PostgREST's connection pool per task (PGRST_DB_POOL).
    pub db_pool: Option<u32>,
    /// Emulator targets: the local port the stand-in PostgREST listens on.
    pub local_port: Option<u16>,
    /// How ECS moves traffic to a new release: rolling, canary or linear.
    pub rollout: Option<RolloutStrategy>,
    /// Canary: the share of traffic the new release gets first; linear:
    /// the share each step adds.
    pub rollout_percent: Option<f64>,
    /// Minutes each canary or linear step runs before the next shift.
    pub rollout_step_minutes: Option<u32>,
    /// Minutes the old release stays ready after all traffic moved.
    pub rollout_bake_minutes: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloutStrategy {
    /// New tasks replace old ones behind one target group.
    Rolling,
    /// A share of traffic goes to the new release, the rest after a bake.
    Canary,
    /// Traffic moves in equal steps.
    Linear,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsSection {
    pub action_arn: Option<String>,
    pub p95_latency_ms: Option<u32>,
    pub p99_latency_ms: Option<u32>,
    pub target_5xx_count: Option<u32>,
    pub rds_cpu_percent: Option<u32>,
    pub rds_free_storage_gb: Option<u32>,
    pub rds_connections: Option<u32>,
    pub ecs_cpu_percent: Option<u32>,
    pub ecs_memory_percent: Option<u32>,
}
