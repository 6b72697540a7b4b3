//! The data tier: RDS PostgreSQL (its subnet and parameter groups), the
//! secrets the API connects and signs with, and, when the schema step runs
//! inside the VPC, the one-off schema task and its agent's role.

use super::builder::{AccountFacts, Builder};
use super::service::{execution_policy, tasks_trust_policy};
use crate::config::Config;
use crate::database::{cron, in_vpc, index_builds, migrations};
use crate::model::refs::Reference;
use crate::model::*;
use crate::names::{database_identifier, secret_name, AUTHENTICATOR_SECRET, JWT_SECRET};
use crate::resources::spec::*;
use crate::templates::render_json;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn data_tier(
    b: &Builder,
    config: &Config,
    private_subnets: &[ResourceId],
) -> Vec<Desired> {
    let mut out = database(b, config, private_subnets);
    let secrets = [
        (
            AUTHENTICATOR_SECRET,
            "the PostgreSQL login PostgREST connects with",
            GeneratedSecret::Login {
                username: "authenticator".into(),
            },
        ),
        (
            JWT_SECRET,
            "the key PostgREST checks API tokens with (HS256)",
            GeneratedSecret::Random,
        ),
    ];
    for (which, purpose, value) in secrets {
        let id = ResourceId::new(Kind::Secret, which);
        out.push(b.desired(&id, which, |tags| {
            Spec::Secret(SecretSpec {
                name: secret_name(config, which),
                description: format!("poolside {}: {purpose}", config.name),
                value,
                tags,
            })
        }));
    }
    out
}

fn database(b: &Builder, config: &Config, private_subnets: &[ResourceId]) -> Vec<Desired> {
    let db = &config.database;
    let base = database_identifier(config);
    let subnet_group = ResourceId::new(Kind::DbSubnetGroup, "main");
    let parameter_group = ResourceId::new(Kind::DbParameterGroup, "main");
    vec![
        b.desired(&subnet_group, "db", |tags| {
            Spec::DbSubnetGroup(DbSubnetGroupSpec {
                name: base.clone(),
                description: format!("poolside {}: private subnets of the database", config.name),
                subnets: private_subnets.iter().cloned().collect(),
                tags,
            })
        }),
        b.desired(&parameter_group, "db", |tags| {
            Spec::DbParameterGroup(DbParameterGroupSpec {
                // The family is in the name: a major upgrade needs a new group.
                name: format!("{base}-postgres{}", db.engine_major),
                family: format!("postgres{}", db.engine_major),
                description: format!("poolside {}: pg_cron, TLS only", config.name),
                parameters: database_parameters(config),
                tags,
            })
        }),
        b.desired(&ResourceId::new(Kind::DbInstance, "main"), "db", |tags| {
            Spec::DbInstance(DbInstanceSpec {
                identifier: base.clone(),
                engine: "postgres".into(),
                engine_version: db.engine_version.clone(),
                instance_class: db.instance_class.clone(),
                allocated_storage_gb: db.allocated_storage_gb as i32,
                storage_type: "gp3".into(),
                storage_encrypted: true,
                multi_az: db.multi_az,
                publicly_accessible: false,
                backup_retention_days: db.backup_retention_days as i32,
                maintenance_window: db.maintenance_window.clone(),
                backup_window: db.backup_window.clone(),
                deletion_protection: db.deletion_protection,
                db_name: db.name.clone(),
                master_username: db.master_username.clone(),
                manage_master_password: true,
                subnet_group: subnet_group.clone(),
                parameter_group: parameter_group.clone(),
                security_groups: [ResourceId::new(Kind::SecurityGroup, "database")].into(),
                tags,
            })
        }),
    ]
}

/// The parameters poolside sets in the group. pg_cron must be preloaded and
/// told which database holds its jobs. RDS preloads `pg_stat_statements` by
/// default; setting the list replaces it, so it is kept. Only parameters RDS
/// lets a customer modify belong here: `cron.use_background_workers`, for one,
/// is refused by ModifyDBParameterGroup on RDS (moto accepts it).
pub(super) fn database_parameters(config: &Config) -> BTreeMap<String, String> {
    [
        ("shared_preload_libraries", "pg_stat_statements,pg_cron"),
        ("cron.database_name", config.database.name.as_str()),
        ("rds.force_ssl", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn id(kind: Kind, name: &str) -> ResourceId {
    ResourceId::new(kind, name)
}

/// The one-off task that runs the schema step inside the VPC
/// (`database::in_vpc`), and the role its agent uses: the API's pull and log
/// rights, and the two logins it needs (RDS's master secret, authenticator's).
pub(super) fn schema_task(
    b: &Builder,
    config: &Config,
    account: &AccountFacts,
) -> anyhow::Result<Vec<Desired>> {
    let env = &config.name;
    let log_group = crate::names::log_group_name(config);
    let master_secret = Reference::to_attribute(&id(Kind::DbInstance, "main"), "master_secret_arn");
    let authenticator_secret = Reference::to(&id(Kind::Secret, AUTHENTICATOR_SECRET));
    let execution_policy = execution_policy(
        config,
        account,
        &log_group,
        &[master_secret.clone(), authenticator_secret.clone()],
    )?;
    let role = id(Kind::Role, "schema-execution");
    let trust = tasks_trust_policy(account)?;
    let mut out = vec![b.desired(&role, "schema-execution", |tags| {
        Spec::Role(RoleSpec {
            name: format!("poolside-{env}-schema-execution"),
            description: format!(
                "poolside {env}: ECS agent for the schema task: pull its image, write logs, read the master and authenticator logins"
            ),
            trust_policy: trust,
            inline_policies: BTreeMap::from([(
                "poolside-schema-execution".to_string(),
                execution_policy,
            )]),
            managed_policies: BTreeSet::new(),
            permissions_boundary: config.permissions_boundary(),
            tags,
        })
    })];
    let script = schema_script(config)?;
    let mut definition = render_json(
        "schema-task-definition.json.j2",
        json!({
            "family": format!("poolside-{env}-schema"),
            "execution_role_arn": Reference::to_attribute(&role, "arn"),
            "task_role_arn": Reference::to_attribute(&id(Kind::Role, "task"), "arn"),
            "container_name": in_vpc::CONTAINER_NAME,
            "image": format!(
                "{}:{}",
                Reference::to_attribute(&id(Kind::Repository, "postgrest"), "uri"),
                in_vpc::RUNNER_REPOSITORY_TAG
            ),
            "bootstrap": in_vpc::bootstrap(),
            "database_host": Reference::to_attribute(&id(Kind::DbInstance, "main"), "address"),
            "database_port": Reference::to_attribute(&id(Kind::DbInstance, "main"), "port"),
            "database_name": config.database.name,
            "ca_file": in_vpc::CA_FILE,
            "script_variable": in_vpc::SCRIPT_VARIABLE,
            "script": script,
            "master_secret_arn": master_secret,
            "authenticator_secret_arn": authenticator_secret,
            "log_group": log_group,
            "region": config.region,
        }),
    )?;
    let definition_id = id(Kind::TaskDefinition, in_vpc::CONTAINER_NAME);
    definition["tags"] = json!(b.tags(&definition_id, in_vpc::CONTAINER_NAME));
    let definition: TaskDefinitionSpec = serde_json::from_value(definition).map_err(|e| {
        anyhow::anyhow!(
            "templates/schema-task-definition.json.j2 does not render a task definition: {e}"
        )
    })?;
    out.push(Desired {
        id: definition_id,
        spec: Spec::TaskDefinition(definition),
        after: vec![],
    });
    Ok(out)
}

/// The SQL the schema task runs, from `sql/` and the file's database settings.
fn schema_script(config: &Config) -> anyhow::Result<String> {
    let database = &config.database;
    let options = in_vpc::ScriptOptions {
        snapshot_before_contract: database.snapshot_before_changes,
        maintenance_work_mem_mb: index_builds::maintenance_work_mem_mb(&database.instance_class),
    };
    let jobs = cron::owned_jobs(database.cron_history_days);
    in_vpc::script(&database.name, &migrations::shipped(), &jobs, &options)
}
