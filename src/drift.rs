//! Drift: every difference between what an environment should be and what
//! it is, as findings (resource, attribute, expected, actual), on the AWS
//! side (from the plan's property diff), inside the database (migrations,
//! pg_cron jobs, extensions, roles), and what lives in the environment's VPC
//! without being poolside's.

use crate::config::Config;
use crate::database::cron::JobAction;
use crate::database::{self, NotInspected};
use crate::database::{Inspection, JobDifference};
pub use crate::engine::plan::Finding;
use crate::engine::plan::{Action, DatabasePlan, Plan};
use crate::model::{Kind, ResourceId};
use crate::resources::{AwsResultExt as _, Context};
use serde_json::{json, Value};

fn finding(
    resource: impl Into<String>,
    attribute: impl Into<String>,
    expected: Value,
    actual: Value,
) -> Finding {
    Finding {
        resource: resource.into(),
        attribute: attribute.into(),
        expected,
        actual,
        remedy: None,
    }
}

/// A finding deploy does not repair by itself, with what does.
fn needs(mut finding: Finding, remedy: String) -> Finding {
    finding.remedy = Some(remedy);
    finding
}

/// The plan's changes, read as differences: what deploy would repair.
pub fn from_plan(plan: &Plan) -> Vec<Finding> {
    let mut found = Vec::new();
    for duplicate in &plan.duplicates {
        found.push(finding(
            duplicate.id.0.as_str(),
            "live copies",
            json!(1),
            json!(duplicate.physical_ids),
        ));
    }
    for problem in &plan.customer_network {
        found.push(needs(
            finding(
                problem.resource.as_str(),
                "customer network",
                json!("what the environment needs"),
                json!(problem.problem),
            ),
            "poolside does not change the customer's network: its owner repairs it, then `poolside drift` checks again".into(),
        ));
    }
    let from_changes = found.len();
    for change in &plan.changes {
        let id = change.id.0.as_str();
        match change.action {
            Action::Create => found.push(finding(id, "exists", json!(true), json!(false))),
            Action::Delete => found.push(finding(id, "exists", json!(false), json!(true))),
            Action::Update | Action::Replace => {
                for p in &change.properties {
                    found.push(finding(
                        id,
                        &p.property,
                        p.after.clone().unwrap_or(Value::Null),
                        p.before.clone().unwrap_or(Value::Null),
                    ));
                }
            }
        }
    }
    // What deploy refuses to do is not repaired by it: the finding says so.
    for refused in &plan.refused {
        let remedy = format!("{}; correct the file", refused.why);
        match found[from_changes..]
            .iter_mut()
            .find(|f| f.resource == refused.resource && f.attribute == refused.property)
        {
            Some(f) => f.remedy = Some(remedy),
            None => found.push(needs(
                finding(
                    refused.resource.as_str(),
                    refused.property.as_str(),
                    Value::Null,
                    Value::Null,
                ),
                remedy,
            )),
        }
    }
    found
}

/// Everything `drift` reports, which `status` counts: the plan's changes,
/// what lives unmanaged in the VPC, and the database's differences.
pub struct Drift {
    pub findings: Vec<Finding>,
    /// The database as read (for what else it tells, such as the schema version).
    pub database: Result<database::Inspection, NotInspected>,
}

impl Drift {
    /// The database should have been read and could not be.
    pub fn database_unreadable(&self) -> bool {
        self.database.as_ref().is_err_and(NotInspected::is_failure)
    }

    /// Why the database side is not among the findings, when it is not.
    pub fn database_unchecked(&self) -> Option<&NotInspected> {
        match &self.database {
            // The missing instance is already a finding.
            Ok(_) | Err(NotInspected::NoInstance) => None,
            Err(why) => Some(why),
        }
    }
}

pub async fn collect(cx: &Context, config: &Config, plan: &Plan) -> anyhow::Result<Drift> {
    let mut findings = from_plan(plan);
    // The VPC's other tenants and the database are read at once.
    let (unmanaged, database) = tokio::join!(unmanaged_in_vpc(cx), database::inspect(cx, config));
    findings.extend(unmanaged?);
    if let Ok(inspection) = &database {
        findings.extend(from_database(inspection));
        findings.extend(jobs_health(inspection));
    }
    findings.extend(pending_reboot(cx, config));
    Ok(Drift { findings, database })
}

/// poolside's pg_cron jobs whose last run failed, and a launcher that does
/// not run: nothing deploy changes, but the release is not healthy (the
/// promote gate `jobs` refuses on the same facts).
fn jobs_health(inspection: &Inspection) -> Vec<Finding> {
    let mut found: Vec<Finding> = inspection
        .jobs_health
        .iter()
        .filter(|h| h.failed())
        .map(|h| {
            let actual = format!(
                "failed at {} ({} failed in 24 h): {}",
                h.last_started.as_deref().unwrap_or("?"),
                h.failed_last_day,
                h.last_message.as_deref().unwrap_or("no message")
            );
            needs(
                finding(format!("cron-job/{}", h.name), "last run", json!("succeeded"), json!(actual)),
                format!("fix what makes it fail (poolside status shows its error); it clears when its next run succeeds (schedule {})", h.schedule),
            )
        })
        .collect();
    let installed = inspection.extension_versions.contains_key("pg_cron");
    if installed && !inspection.cron_scheduler_running {
        found.push(needs(
            finding("database/pg_cron", "launcher", json!("running"), json!("not running: no job runs")),
            "restart PostgreSQL (on RDS, reboot the instance): pg_cron's launcher stops when the database cron.database_name names is dropped".into(),
        ));
    }
    found
}

/// Parameters the instance runs without until it reboots.
fn pending_reboot(cx: &Context, config: &Config) -> Option<Finding> {
    let instance = ResourceId::new(Kind::DbInstance, "main");
    let pending = cx.attribute(&instance, crate::resources::rds::PARAMETERS_PENDING_REBOOT);
    (pending.as_deref() == Some("true")).then(|| {
        needs(
            finding(instance.0.as_str(), "parameters", json!("in effect"), json!("pending-reboot")),
            format!(
                "a reboot applies them (downtime): `poolside deploy --reboot-now`, or a deploy inside the maintenance window {} UTC",
                config.database.maintenance_window
            ),
        )
    })
}

/// The database side of a plan: what the schema step would change. Before
/// the first deploy (no instance yet) that is every migration and job.
pub async fn database_plan(cx: &Context, config: &Config) -> DatabasePlan {
    match database::inspect(cx, config).await {
        Ok(inspection) => DatabasePlan {
            checked: true,
            unreadable: false,
            why_not: None,
            changes: from_database(&inspection),
            warnings: contract_snapshot(config, &inspection.migrations.pending)
                .into_iter()
                .collect(),
        },
        Err(NotInspected::NoInstance) => DatabasePlan {
            checked: true,
            unreadable: false,
            why_not: None,
            changes: first_deploy(config),
            warnings: vec![],
        },
        Err(why) => DatabasePlan {
            checked: false,
            unreadable: why.is_failure(),
            why_not: Some(why.to_string()),
            changes: Vec::new(),
            warnings: vec![],
        },
    }
}

/// What the plan says about pending migrations that contract the schema:
/// deploy takes a manual snapshot before them (database.snapshot_before_changes).
fn contract_snapshot(config: &Config, pending: &[String]) -> Option<String> {
    let shipped = database::migrations::shipped();
    let contracting = database::migrations::contracting_pending(pending, &shipped);
    if contracting.is_empty() {
        return None;
    }
    let what = format!(
        "{} {} the schema (marked `{}`)",
        contracting.join(", "),
        if contracting.len() == 1 {
            "contracts"
        } else {
            "contract"
        },
        database::migrations::CONTRACT_MARKER
    );
    Some(match config.database.snapshot_before_changes {
        true => format!(
            "{what}: deploy first takes a manual snapshot of the instance ({}-before-contract-<time>) and waits until it is available (database.snapshot_before_changes); the snapshot is kept",
            crate::names::database_identifier(config)
        ),
        false => format!(
            "{what}: no snapshot is taken first (database.snapshot_before_changes is off); what it drops is gone"
        ),
    })
}

/// What the first schema step applies to an empty database.
fn first_deploy(config: &Config) -> Vec<Finding> {
    let migrations = database::migrations::shipped().into_iter().map(|m| {
        finding(
            "database/migrations",
            m.file,
            json!("applied"),
            json!("not applied"),
        )
    });
    let owned = database::cron::owned_jobs(config.database.cron_history_days);
    let jobs = owned.into_iter().map(|job| {
        finding(
            format!("cron-job/{}", job.name),
            "exists",
            json!(true),
            json!(false),
        )
    });
    migrations.chain(jobs).collect()
}

/// The database's differences from `sql/`.
pub fn from_database(inspection: &Inspection) -> Vec<Finding> {
    let mut found = Vec::new();
    let m = &inspection.migrations;
    for file in &m.pending {
        found.push(finding(
            "database/migrations",
            file,
            json!("applied"),
            json!("not applied"),
        ));
    }
    for file in &m.changed {
        found.push(finding(
            "database/migrations",
            file,
            json!("applied as shipped"),
            json!("applied with another checksum (edited since)"),
        ));
    }
    for version in &m.unknown {
        found.push(finding(
            "database/migrations",
            format!("version {version}"),
            json!("not applied (not in sql/migrations)"),
            json!("applied"),
        ));
    }
    for version in &m.failed {
        found.push(finding(
            "database/migrations",
            format!("version {version}"),
            json!("succeeded"),
            json!("marked failed"),
        ));
    }
    for job in &inspection.jobs {
        found.extend(job_findings(job));
    }
    for extension in &inspection.extensions_missing {
        found.push(finding(
            format!("database/extension/{extension}"),
            "exists",
            json!(true),
            json!(false),
        ));
    }
    for extension in &inspection.extensions_outdated {
        found.push(finding(
            format!("database/extension/{}", extension.name),
            "version",
            json!(extension.available),
            json!(extension.installed),
        ));
    }
    let privileges = [
        (&inspection.privileges_extra, "not granted", "granted"),
        (&inspection.privileges_missing, "granted", "not granted"),
    ];
    for (grants, expected, actual) in privileges {
        for g in grants {
            found.push(finding(
                format!("database/privilege/{}", g.object),
                format!("{} to {}", g.privilege, g.grantee),
                json!(expected),
                json!(actual),
            ));
        }
    }
    for role in &inspection.roles_missing {
        found.push(finding(
            format!("database/role/{role}"),
            "exists",
            json!(true),
            json!(false),
        ));
    }
    found
}

fn job_findings(job: &JobDifference) -> Vec<Finding> {
    let resource = format!("cron-job/{}", job.name);
    match job.action {
        JobAction::Scheduled => vec![finding(resource, "exists", json!(true), json!(false))],
        JobAction::Unscheduled => vec![finding(resource, "exists", json!(false), json!(true))],
        JobAction::Corrected => {
            let (Some(expected), Some(actual)) = (&job.expected, &job.actual) else {
                return vec![];
            };
            ["schedule", "command", "database", "active"]
                .into_iter()
                .filter(|key| expected[key] != actual[key])
                .map(|key| {
                    finding(
                        resource.clone(),
                        key,
                        expected[key].clone(),
                        actual[key].clone(),
                    )
                })
                .collect()
        }
    }
}

/// What runs in the environment's VPC without being poolside's: EC2
/// instances, and security groups without the environment's tag (the VPC's
/// default group aside). One read of each.
pub async fn unmanaged_in_vpc(cx: &Context) -> anyhow::Result<Vec<Finding>> {
    let Some(vpc) = cx.physical_id(&ResourceId::new(Kind::Vpc, "main")) else {
        return Ok(vec![]);
    };
    let in_vpc = || {
        aws_sdk_ec2::types::Filter::builder()
            .name("vpc-id")
            .values(&vpc)
            .build()
    };
    let (instances, groups) = tokio::try_join!(
        async {
            cx.clients
                .ec2
                .describe_instances()
                .filters(in_vpc())
                .send()
                .await
                .aws("DescribeInstances")
        },
        async {
            cx.clients
                .ec2
                .describe_security_groups()
                .filters(in_vpc())
                .send()
                .await
                .aws("DescribeSecurityGroups")
        },
    )?;
    let name_of = |tags: &[aws_sdk_ec2::types::Tag]| {
        tags.iter()
            .find(|t| t.key() == Some("Name"))
            .and_then(|t| t.value())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    };
    let mut found = Vec::new();
    for instance in instances.reservations().iter().flat_map(|r| r.instances()) {
        let state = instance.state().and_then(|s| s.name()).map(|s| s.as_str());
        if matches!(state, Some("terminated" | "shutting-down")) {
            continue;
        }
        found.push(finding(
            "vpc/main",
            "unmanaged resources",
            json!(null),
            json!(format!(
                "instance {}{}",
                instance.instance_id().unwrap_or("?"),
                name_of(instance.tags())
            )),
        ));
    }
    for group in groups.security_groups() {
        let ours = group.tags().iter().any(|t| {
            t.key() == Some(crate::model::TAG_ENV) && t.value() == Some(cx.environment.as_str())
        });
        if ours || group.group_name() == Some("default") {
            continue;
        }
        found.push(finding(
            "vpc/main",
            "unmanaged resources",
            json!(null),
            json!(format!(
                "security group {} {:?}{}",
                group.group_id().unwrap_or("?"),
                group.group_name().unwrap_or_default(),
                name_of(group.tags())
            )),
        ));
    }
    Ok(found)
}
