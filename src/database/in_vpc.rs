//! The schema step from inside the VPC, for operators with AWS credentials
//! and no network path to the private instance (`database.schema_runner =
//! "ecs-task"`).
//!
//! A one-off Fargate task runs in the API's private subnets and security
//! group, which the database already admits, so nothing is opened to the
//! internet. Its image is the official `postgres` Alpine image with the RDS
//! certificate authorities added (`poolside image push` copies it next to
//! PostgREST), so psql verifies the instance's certificate (`verify-full`).
//! Its task definition, part of the plan, carries the generated script: the
//! migrations with the same ledger and checksums as the deploy-host path
//! (sqlx's `_sqlx_migrations`), the pg_cron reconciliation and the
//! authenticator's password. Logins come from Secrets Manager by ARN (ECS
//! injects them); psql's `\password` turns the authenticator's password into
//! a SCRAM verifier in the task, so no secret is in the task definition, the
//! script or the logs. The script reports what it did on lines that start
//! with [`MARKER`], which deploy reads back from CloudWatch Logs.

use super::cron;
use super::migrations::{self, Shipped};
use super::report::DataTierReport;
use super::schema_script::SNAPSHOT_NEEDED;
pub use super::schema_script::{script, ScriptOptions, MARKER};
use super::task_log::{self, LogTail};
use crate::model::{Kind, ResourceId};
use crate::resources::spec::{Desired, Spec};
use crate::resources::{AwsResultExt as _, Context, Waits};
use anyhow::{anyhow, bail, Context as _};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType,
    NetworkConfiguration, Task, TaskOverride,
};
use std::time::Duration;

/// The image psql runs from: copied into the environment's repository by
/// `poolside image push`, with the RDS bundle at [`CA_FILE`].
/// ECR Public's copy of Docker's official image: the same image, without
/// Docker Hub's anonymous pull limit.
pub const RUNNER_IMAGE_SOURCE: &str = "public.ecr.aws/docker/library/postgres";
pub const RUNNER_IMAGE_TAG: &str = "16-alpine";
/// Its tag in the environment's repository.
pub const RUNNER_REPOSITORY_TAG: &str = "psql-16-alpine-rds-ca";
/// Where the derived images keep the RDS certificate authorities.
pub const CA_FILE: &str = "/etc/poolside/rds-ca-bundle.pem";
/// The container's name in the schema task definition.
pub const CONTAINER_NAME: &str = "schema";
/// The environment variable that carries the SQL script.
pub const SCRIPT_VARIABLE: &str = "POOLSIDE_SCHEMA_SQL";
/// The environment variable that tells the script the snapshot was taken.
pub const SNAPSHOT_VARIABLE: &str = "POOLSIDE_SNAPSHOT";
/// Set to `yes` after a major upgrade: the task runs ANALYZE first.
pub const ANALYZE_VARIABLE: &str = "POOLSIDE_ANALYZE";
/// The jobs deploy paused before a major upgrade, for the task to resume.
pub const RESUME_VARIABLE: &str = "POOLSIDE_RESUME";
/// What the task run before a major upgrade pauses the jobs with.
const PAUSE_VARIABLE: &str = "POOLSIDE_PAUSE_SQL";
/// Tasks started by deploy say so (visible in the console and ListTasks).
const STARTED_BY: &str = "poolside-schema";
/// A task whose log says nothing for this long is given up on: pulling
/// the image, starting and connecting take minutes at most, and once psql
/// runs the task reports its progress at least once a minute.
const SILENCE_LIMIT: Duration = Duration::from_secs(15 * 60);
/// ...and one that runs this long, whatever it says: a vector index of a
/// large table can take hours to build.
const TASK_LIMIT: Duration = Duration::from_secs(12 * 3600);

/// What the container runs: create the app database if it is missing,
/// ANALYZE after a major upgrade (before the jobs paused for it resume),
/// run the script, then give `authenticator` its password unless it
/// already logs in with it. `set -e` and `ON_ERROR_STOP` make any failure
/// the exit code. Meanwhile a second psql reports how far the main
/// session is ([`task_log`]) every 10 seconds.
pub fn bootstrap() -> String {
    let head = r#"set -eu
echo "poolside: connecting to $PGHOST:$PGPORT"
exists=$(psql -X -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PGDATABASE'")
if [ "$exists" != 1 ]; then
  psql -X -q -d postgres -c "CREATE DATABASE \"$PGDATABASE\""
  echo "poolside: database-created"
fi
# A statement whose client is gone (the task stopped) is cancelled; the
# keepalives let the server see a connection that vanished unclosed.
export PGOPTIONS="-c client_connection_check_interval=10s -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
every="${POOLSIDE_PROGRESS_EVERY:-@every@}"
(
  n=0
  while sleep "$every"; do
    n=$((n + 1))
    PGAPPNAME=poolside-schema-progress psql -X -q -tA -F '|' -d "$PGDATABASE" -c "@query@" 2>/dev/null ||
      if [ $((n % 6)) -eq 0 ]; then echo "poolside: progress|unavailable||0|0|0|0|0"; fi
  done
) &
progress=$!
trap 'kill "$progress" 2>/dev/null || true' EXIT
# StopTask's SIGTERM ends the shell between commands (PID 1 ignores it
# otherwise); during a psql it waits, and StopTask's SIGKILL 30 s later
# closes the connection, which the check above notices.
trap 'exit 143' TERM INT
if [ "${POOLSIDE_ANALYZE:-}" = yes ]; then
  psql -X -q -v ON_ERROR_STOP=1 -d "$PGDATABASE" -c 'ANALYZE'
  echo "poolside: analyzed"
fi
printf '%s\n' "$POOLSIDE_SCHEMA_SQL" | psql -X -q -v ON_ERROR_STOP=1 -v snapshot="${POOLSIDE_SNAPSHOT:-}" -v resume="${POOLSIDE_RESUME:-}" -d "$PGDATABASE"
if PGUSER="$AUTHENTICATOR_USER" PGPASSWORD="$AUTHENTICATOR_PASSWORD" psql -X -d "$PGDATABASE" -tAc 'SELECT 1' >/dev/null 2>&1; then
  :
else
  printf '%s\n%s\n' "$AUTHENTICATOR_PASSWORD" "$AUTHENTICATOR_PASSWORD" |
    psql -X -q -v ON_ERROR_STOP=1 -d "$PGDATABASE" -c "\\password \"$AUTHENTICATOR_USER\""
  echo "poolside: authenticator-password-set"
fi
echo "poolside: done"
"#;
    head.replace("@every@", &task_log::PROGRESS_EVERY_SECONDS.to_string())
        .replace("@query@", &task_log::progress_query())
}

/// What the task runs before a major upgrade, instead of [`bootstrap`]:
/// the pause of poolside's jobs, in the variable [`PAUSE_VARIABLE`].
const PAUSE_COMMAND: &str = r#"set -eu
echo "poolside: connecting to $PGHOST:$PGPORT"
printf '%s\n' "$POOLSIDE_PAUSE_SQL" | psql -X -q -v ON_ERROR_STOP=1 -d "$PGDATABASE"
echo "poolside: done"
"#;

/// What the script's [`MARKER`] lines say, folded into the report.
pub fn read_markers(lines: &[String], shipped: &[Shipped], report: &mut DataTierReport) -> bool {
    let mut done = false;
    for line in lines {
        let Some(rest) = line.trim().strip_prefix(MARKER) else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.as_slice() {
            ["database-created"] => report.database_created = true,
            ["authenticator-password-set"] => report.authenticator_password_set = true,
            ["done"] => done = true,
            ["schema", "reload"] => report.schema_reloaded = true,
            ["analyzed"] => report.analyzed_after_upgrade = true,
            ["resumed-after-upgrade", name] => {
                report.jobs_resumed_after_upgrade.push(name.to_string());
            }
            ["applied", version] => {
                if let Some(s) = version
                    .parse::<i64>()
                    .ok()
                    .and_then(|v| shipped.iter().find(|s| s.migration.version == v))
                {
                    report.migrations_applied.push(migrations::Applied {
                        version: s.migration.version,
                        file: s.file.clone(),
                        elapsed_ms: 0,
                    });
                }
            }
            ["paused", name] => report.jobs_paused_for_migrations.push(name.to_string()),
            ["extension", name, installed, available] => report
                .extensions_updated
                .push(format!("{name} {installed} -> {available}")),
            ["running", name] => report.jobs_running_at_migration.push(name.to_string()),
            ["privilege", statement @ ..] => {
                report.privileges_restored.push(statement.join(" "));
            }
            ["job", action, name] => {
                let action = match *action {
                    "scheduled" => cron::JobAction::Scheduled,
                    "corrected" => cron::JobAction::Corrected,
                    "unscheduled" => cron::JobAction::Unscheduled,
                    _ => continue,
                };
                report.jobs_changed.push(cron::JobChange {
                    name: name.to_string(),
                    action,
                });
            }
            _ => {}
        }
    }
    done
}

/// Where the task runs: the API's cluster, subnets and security group.
pub struct Placement {
    pub cluster: String,
    /// The psql image, checked before the task is started.
    pub image: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub log_group: String,
}

impl Placement {
    /// From the blueprint's service and schema task definition, with the ids
    /// this run knows.
    pub fn from_blueprint(cx: &Context, desired: &[Desired]) -> anyhow::Result<Placement> {
        let find = |id: &ResourceId| {
            desired
                .iter()
                .find(|d| &d.id == id)
                .ok_or_else(|| anyhow!("the blueprint has no {id}"))
        };
        let service = cx.fill_references(&find(&ResourceId::new(Kind::Service, "api"))?.spec)?;
        let Spec::Service(service) = service else {
            bail!("service/api is not a service");
        };
        let task = ResourceId::new(Kind::TaskDefinition, CONTAINER_NAME);
        let Spec::TaskDefinition(definition) = cx.fill_references(&find(&task)?.spec)? else {
            bail!("{task} is not a task definition");
        };
        Ok(Placement {
            cluster: service.cluster,
            image: definition.container.image.clone(),
            task_definition: cx
                .physical_id(&task)
                .ok_or_else(|| anyhow!("{task} is not registered"))?,
            subnets: service.subnets.into_iter().collect(),
            security_groups: service.security_groups.into_iter().collect(),
            log_group: definition
                .container
                .log_options
                .get("awslogs-group")
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// Runs the schema task and waits for it; fills `report` from its output.
/// When the script stops for a snapshot (a migration that contracts the
/// schema is pending, `database.snapshot_before_changes`), deploy takes it
/// and runs the task again, telling it the snapshot's name.
pub async fn run(
    cx: &Context,
    placement: &Placement,
    shipped: &[Shipped],
    waits: &Waits<'_>,
    report: &mut DataTierReport,
) -> anyhow::Result<()> {
    crate::resources::registry::ensure_image_exists(cx, &placement.image).await?;
    let instance = ResourceId::new(Kind::DbInstance, "main");
    // pg_upgrade does not carry the planner's statistics over.
    let upgraded = cx.attribute(&instance, crate::resources::rds::upgrade::MAJOR_UPGRADED);
    let mut variables = Vec::new();
    if upgraded.as_deref() == Some("true") {
        variables.push((ANALYZE_VARIABLE, "yes".to_string()));
    }
    if let Some(paused) = cx
        .attribute(&instance, cron::JOBS_PAUSED_FOR_UPGRADE)
        .filter(|p| !p.is_empty())
    {
        variables.push((RESUME_VARIABLE, paused));
    }
    let (task_arn, task, lines) = run_once(cx, placement, waits, &variables).await?;
    report.endpoint = format!("the schema task {task_arn}");
    let (task_arn, task, lines) = match lines.iter().any(|l| l.trim() == SNAPSHOT_NEEDED) {
        false => (task_arn, task, lines),
        true => {
            let identifier = cx
                .physical_id(&instance)
                .ok_or_else(|| anyhow!("{instance} does not exist"))?;
            let snapshot = crate::resources::rds::snapshots::take_before(
                cx,
                &instance,
                &identifier,
                "contract",
                waits,
            )
            .await?;
            report.snapshot_before_migrations = Some(snapshot.clone());
            variables.push((SNAPSHOT_VARIABLE, snapshot));
            run_once(cx, placement, waits, &variables).await?
        }
    };
    report.endpoint = format!("the schema task {task_arn}");
    let exit_code = schema_container(&task).and_then(|c| c.exit_code());
    let done = read_markers(&lines, shipped, report);
    if exit_code == Some(0) && done {
        return Ok(());
    }
    Err(failure(&task_arn, &task, &lines, report))
}

/// One run of the schema task, to its end: its ARN, the stopped task and
/// its output. `variables` are set in its environment for this run (the
/// snapshot taken for it, statistics to regenerate).
async fn run_once(
    cx: &Context,
    placement: &Placement,
    waits: &Waits<'_>,
    variables: &[(&str, String)],
) -> anyhow::Result<(String, Task, Vec<String>)> {
    run_container(cx, placement, waits, (None, variables)).await
}

/// Runs the schema task definition, with `command` instead of its own
/// when given, and waits for it to stop.
async fn run_container(
    cx: &Context,
    placement: &Placement,
    waits: &Waits<'_>,
    (command, variables): (Option<&str>, &[(&str, String)]),
) -> anyhow::Result<(String, Task, Vec<String>)> {
    let network = AwsVpcConfiguration::builder()
        .set_subnets(Some(placement.subnets.clone()))
        .set_security_groups(Some(placement.security_groups.clone()))
        .assign_public_ip(AssignPublicIp::Disabled)
        .build()
        .context("the schema task's network configuration")?;
    let overrides = (command.is_some() || !variables.is_empty()).then(|| {
        let environment = variables
            .iter()
            .map(|(name, value)| KeyValuePair::builder().name(*name).value(value).build())
            .collect();
        let command = command.map(|c| vec!["sh".to_string(), "-c".to_string(), c.to_string()]);
        TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(CONTAINER_NAME)
                    .set_command(command)
                    .set_environment(Some(environment))
                    .build(),
            )
            .build()
    });
    let out = cx
        .clients
        .ecs
        .run_task()
        .cluster(&placement.cluster)
        .task_definition(&placement.task_definition)
        .launch_type(LaunchType::Fargate)
        .count(1)
        .started_by(STARTED_BY)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(network)
                .build(),
        )
        .set_overrides(overrides)
        .send()
        .await
        .aws("RunTask")?;
    if let Some(failure) = out.failures().first() {
        bail!(
            "ECS did not start the schema task ({}: {}){}",
            failure.reason().unwrap_or("no reason given"),
            failure.detail().unwrap_or(""),
            failure
                .arn()
                .map(|a| format!(" for {a}"))
                .unwrap_or_default()
        );
    }
    let task_arn = out
        .tasks()
        .first()
        .and_then(|t| t.task_arn())
        .ok_or_else(|| anyhow!("RunTask returned no task"))?
        .to_string();
    let (task, lines) = wait_until_stopped(cx, placement, &task_arn, waits).await?;
    Ok((task_arn, task, lines))
}

/// Pauses poolside's pg_cron jobs before a major upgrade, from inside the
/// VPC as the schema step runs: the schema task definition that is live
/// (the instance still runs the old major), with a command of its own.
/// Returns the jobs it paused; the schema task after the upgrade resumes
/// them ([`RESUME_VARIABLE`]).
pub async fn pause_jobs_for_upgrade(
    cx: &Context,
    placement: &Placement,
    app_database: &str,
    waits: &Waits<'_>,
) -> anyhow::Result<Vec<String>> {
    crate::resources::registry::ensure_image_exists(cx, &placement.image).await?;
    let pause = super::schema_script::pause_for_upgrade(app_database);
    let variables = [(PAUSE_VARIABLE, pause)];
    let (task_arn, task, lines) =
        run_container(cx, placement, waits, (Some(PAUSE_COMMAND), &variables)).await?;
    let mut report = DataTierReport::default();
    let done = read_markers(&lines, &[], &mut report);
    let exit_code = schema_container(&task).and_then(|c| c.exit_code());
    if exit_code == Some(0) && done {
        return Ok(report.jobs_paused_for_migrations);
    }
    Err(failure(&task_arn, &task, &lines, &report)
        .context("pausing poolside's pg_cron jobs before the major upgrade (nothing was upgraded)"))
}

/// The task's one container, which runs psql.
fn schema_container(task: &Task) -> Option<&aws_sdk_ecs::types::Container> {
    task.containers()
        .iter()
        .find(|c| c.name() == Some(CONTAINER_NAME))
}

/// Why the schema task failed: psql's exit and last words, or why its
/// container never ran; and the jobs it left paused, if it did.
fn failure(
    task_arn: &str,
    task: &Task,
    lines: &[String],
    report: &DataTierReport,
) -> anyhow::Error {
    let container = schema_container(task);
    let reason = match container.and_then(|c| c.exit_code()) {
        Some(code) => format!("psql exited with {code}"),
        None => format!(
            "the task stopped before its container ran: {}{}",
            task.stopped_reason().unwrap_or("no reason given"),
            container
                .and_then(|c| c.reason())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
    };
    let resumed = lines.iter().any(|l| l.trim() == "poolside: resumed");
    let paused = match report.jobs_paused_for_migrations.is_empty() || resumed {
        true => String::new(),
        false => format!(
            "\n  poolside's pg_cron jobs {} were paused for the migrations and stay paused until the next deploy resumes them.",
            report.jobs_paused_for_migrations.join(", ")
        ),
    };
    anyhow!(
        "the schema task {task_arn} failed: {reason}{}{paused}",
        output_tail(lines)
    )
}

/// The task's last lines for the error message; its errors are psql's.
fn output_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return "\n  The task wrote no output (its log stream is empty or missing).".into();
    }
    let tail = &lines[lines.len().saturating_sub(15)..];
    let mut text = String::from("\n  Its last output:");
    for line in tail {
        text.push_str("\n    ");
        text.push_str(line);
    }
    text
}

/// Waits for the task to stop, saying meanwhile how far its index builds
/// and ANALYZE are (its progress lines); returns the stopped task and its
/// output. Gives up, and stops the task, when its log is silent for
/// [`SILENCE_LIMIT`] or it has run for [`TASK_LIMIT`].
async fn wait_until_stopped(
    cx: &Context,
    placement: &Placement,
    task_arn: &str,
    waits: &Waits<'_>,
) -> anyhow::Result<(Task, Vec<String>)> {
    let id = ResourceId::new(Kind::TaskDefinition, CONTAINER_NAME);
    // awslogs names the stream `<prefix>/<container>/<task id>`.
    let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    let stream = format!("{CONTAINER_NAME}/{CONTAINER_NAME}/{task_id}");
    let mut tail = LogTail::new(&placement.log_group, &stream);
    let followed = follow(cx, (&placement.cluster, task_arn), &mut tail, waits);
    let waited = waits
        .report(
            &id,
            "the schema task has run",
            TASK_LIMIT,
            tokio::time::timeout(TASK_LIMIT, followed),
        )
        .await;
    let gave_up = match waited {
        Ok(Ok(Ok(Some(result)))) => return Ok(result),
        // A failed look at the task: the task itself may be fine.
        Ok(Ok(Err(failed))) => return Err(failed),
        Ok(Ok(Ok(None))) => format!("wrote nothing for {} minutes", SILENCE_LIMIT.as_secs() / 60),
        Ok(Err(_elapsed)) => format!(
            "did not finish within {} hours",
            TASK_LIMIT.as_secs() / 3600
        ),
        Err(interrupted) => {
            stop_task(cx, &placement.cluster, task_arn).await;
            return Err(interrupted.into());
        }
    };
    stop_task(cx, &placement.cluster, task_arn).await;
    Err(anyhow!(
        "the schema task {task_arn} {gave_up}; it was stopped. What it wrote is in CloudWatch Logs ({}, stream {stream})",
        placement.log_group
    ))
}

/// Not left running behind a deploy that gave up on it.
async fn stop_task(cx: &Context, cluster: &str, task_arn: &str) {
    let _ = cx
        .clients
        .ecs
        .stop_task()
        .cluster(cluster)
        .task(task_arn)
        .reason("poolside deploy stopped waiting for the schema step")
        .send()
        .await;
}

/// Polls the task until it stops, reading its log as it grows and saying
/// its progress lines; `None` once the log has been silent for
/// [`SILENCE_LIMIT`] (a log that cannot be read is not silent).
async fn follow(
    cx: &Context,
    (cluster, task_arn): (&str, &str),
    tail: &mut LogTail,
    waits: &Waits<'_>,
) -> anyhow::Result<Option<(Task, Vec<String>)>> {
    let id = ResourceId::new(Kind::TaskDefinition, CONTAINER_NAME);
    let started = tokio::time::Instant::now();
    let mut log = FollowedLog::default();
    let mut delay = Duration::from_secs(2);
    let mut unseen_since = None;
    loop {
        let looked = look_at_task(cx, (cluster, task_arn), &mut unseen_since).await?;
        let stopped = looked
            .flatten()
            .filter(|t| t.last_status() == Some("STOPPED"));
        log.read(cx, tail, |said| {
            waits.note(&id, said, started.elapsed(), Duration::ZERO)
        })
        .await;
        if let Some(task) = stopped {
            log.read_to_its_end(cx, tail).await;
            return Ok(Some((task, task_log::without_progress(&log.lines))));
        }
        if log.heard.elapsed() >= SILENCE_LIMIT {
            return Ok(None);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// How long DescribeTasks may fail in a row (after the SDK's own retries)
/// before deploy stops looking.
const UNSEEN_LIMIT: Duration = Duration::from_secs(120);

/// The task as DescribeTasks lists it (`Some(None)`: not listed yet, as
/// it is eventually consistent); `None` after a failed look, an error once
/// looks have failed for [`UNSEEN_LIMIT`]: the task is then left running.
async fn look_at_task(
    cx: &Context,
    (cluster, task_arn): (&str, &str),
    unseen_since: &mut Option<tokio::time::Instant>,
) -> anyhow::Result<Option<Option<Task>>> {
    let looked = cx
        .clients
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(task_arn)
        .send()
        .await;
    match looked {
        Ok(out) => {
            *unseen_since = None;
            let task = out.tasks().first().cloned();
            if let Some(status) = task.as_ref().and_then(|t| t.last_status()) {
                tracing::info!(status, "schema task");
            }
            Ok(Some(task))
        }
        Err(err) => {
            let since = *unseen_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() < UNSEEN_LIMIT {
                tracing::warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "cannot see the schema task; trying again");
                return Ok(None);
            }
            Err(err).aws("DescribeTasks").with_context(|| format!(
                "deploy cannot see the schema task {task_arn} and stopped waiting for it; the task goes on running and finishes its migrations on its own (the next deploy waits for its migration lock). Stop it with `aws ecs stop-task --cluster {cluster} --task {task_arn}` if you must"
            ))
        }
    }
}

/// What deploy has read of the task's log, and when it last heard from it.
struct FollowedLog {
    lines: Vec<String>,
    heard: tokio::time::Instant,
    warned: bool,
}

impl Default for FollowedLog {
    fn default() -> Self {
        FollowedLog {
            lines: Vec::new(),
            heard: tokio::time::Instant::now(),
            warned: false,
        }
    }
}

impl FollowedLog {
    /// Reads what the task wrote since, saying each progress line.
    async fn read(&mut self, cx: &Context, tail: &mut LogTail, mut say: impl FnMut(&str)) {
        match tail.read(cx).await {
            Ok(new) => {
                if !new.is_empty() {
                    self.heard = tokio::time::Instant::now();
                }
                for said in new.iter().filter_map(|l| task_log::describe(l)) {
                    say(&said);
                }
                self.lines.extend(new);
            }
            Err(why) => {
                // Unknown is not silent: the task may be busy.
                self.heard = tokio::time::Instant::now();
                if !std::mem::replace(&mut self.warned, true) {
                    tracing::warn!(%why, "cannot read the schema task's log; waiting for the task without it");
                }
            }
        }
    }

    /// After the task stopped: awslogs may deliver its last lines a moment
    /// later, so the log is read again, for up to half a minute, until it
    /// holds the script's last word.
    async fn read_to_its_end(&mut self, cx: &Context, tail: &mut LogTail) {
        for _ in 0..6 {
            let last_word = self
                .lines
                .iter()
                .any(|l| l.trim() == "poolside: done" || l.trim() == SNAPSHOT_NEEDED);
            if last_word {
                return;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            self.read(cx, tail, |_| {}).await;
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::blueprint::{self, AccountFacts};
    use crate::database::privileges;
    use crate::database::schema_script::migration_lock_id;
    use sqlx::{ConnectOptions as _, Row as _};
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::process::Command;

    const MASTER: (&str, &str) = ("admin", "P@55w0rd!");
    const AUTHENTICATOR_PASSWORD: &str = "a-long 'random' $password";

    /// A PostgreSQL cluster of the test's own (pg_cron for `poolside`, the
    /// app database of the config below), from the local stack's script.
    struct Server {
        port: u16,
        dir: tempfile::TempDir,
    }

    impl Server {
        fn start() -> Server {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let server = Server {
                port,
                dir: tempfile::tempdir().unwrap(),
            };
            let out = server.script("start");
            assert!(
                out.status.success(),
                "localstack/postgres.sh start failed (run ./localstack/install.sh first):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            server
        }

        fn script(&self, command: &str) -> std::process::Output {
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("localstack/postgres.sh"))
                .arg(command)
                .env("POOLSIDE_PG_DATA", self.dir.path().join("data"))
                .env("POOLSIDE_PG_PORT", self.port.to_string())
                .env("POOLSIDE_PG_CRON_DB", "poolside")
                .output()
                .unwrap()
        }

        async fn connect(&self, (user, password): (&str, &str)) -> sqlx::PgConnection {
            sqlx::postgres::PgConnectOptions::new()
                .host("127.0.0.1")
                .port(self.port)
                .username(user)
                .password(password)
                .database("poolside")
                .ssl_mode(sqlx::postgres::PgSslMode::Disable)
                .connect()
                .await
                .unwrap()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.script("stop");
        }
    }

    /// The blueprint of an AWS environment with no way in from the deploying machine.
    fn aws_blueprint() -> Vec<Desired> {
        let text = "name = \"t\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
                    availability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n";
        let config = crate::config::parse("t.toml", "t", text.into()).unwrap();
        assert_eq!(
            config.database.schema_runner,
            crate::config::SchemaRunner::EcsTask
        );
        let account = AccountFacts {
            account_id: "111122223333".into(),
            partition: "aws".into(),
            s3_prefix_list: Some("pl-6da54004".into()),
        };
        blueprint::build(&config, &account).unwrap()
    }

    /// The schema task's container, as the blueprint renders it.
    fn container() -> crate::resources::spec::ContainerSpec {
        let desired = aws_blueprint();
        let Some(Spec::TaskDefinition(definition)) = desired
            .iter()
            .find(|d| d.id.0 == "task-definition/schema")
            .map(|d| &d.spec)
        else {
            panic!("no task-definition/schema")
        };
        definition.container.clone()
    }

    /// Runs the container's command here as ECS would: its environment, the
    /// secrets it names filled in, and the server of this test (plain TCP:
    /// the TLS settings are the task's, for RDS).
    fn run_task(
        server: &Server,
        container: &crate::resources::spec::ContainerSpec,
    ) -> (bool, Vec<String>) {
        let [_, _, command] = container.command.as_slice() else {
            panic!("the command is sh -c SCRIPT: {:?}", container.command)
        };
        run_command(server, container, command, &[])
    }

    /// [`run_task`] with a command and variables of its own, as RunTask's
    /// container overrides give them.
    fn run_command(
        server: &Server,
        container: &crate::resources::spec::ContainerSpec,
        command: &str,
        overrides: &[(&str, &str)],
    ) -> (bool, Vec<String>) {
        let mut env: BTreeMap<String, String> = container.environment.clone();
        env.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env.insert("PGHOST".into(), "127.0.0.1".into());
        env.insert("PGPORT".into(), server.port.to_string());
        env.insert("PGSSLMODE".into(), "disable".into());
        env.remove("PGSSLROOTCERT");
        for (name, value_from) in &container.secrets {
            let value = match (
                value_from.contains("master_secret_arn"),
                name.ends_with("USER"),
            ) {
                (true, true) => MASTER.0,
                (true, false) => MASTER.1,
                (false, true) => "authenticator",
                (false, false) => AUTHENTICATOR_PASSWORD,
            };
            env.insert(name.clone(), value.into());
        }
        // No controlling terminal, as in a task: psql's `\password` then
        // reads standard input instead of /dev/tty.
        let out = Command::new("setsid")
            .args(["sh", "-c", command])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(&env)
            .output()
            .unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).to_string();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        assert!(
            !text.contains(AUTHENTICATOR_PASSWORD) && !text.contains(MASTER.1),
            "the task printed a password:\n{text}"
        );
        (
            out.status.success(),
            text.lines().map(str::to_string).collect(),
        )
    }

    /// psql runs the schema script for `list` as the master user, as the task does.
    fn run_script(server: &Server, list: &[Shipped]) -> std::process::Output {
        run_script_with(server, list, false, "")
    }

    /// [`run_script`] with `database.snapshot_before_changes` and the
    /// snapshot the task is told was taken (empty: none).
    fn run_script_with(
        server: &Server,
        list: &[Shipped],
        snapshot_before_contract: bool,
        snapshot: &str,
    ) -> std::process::Output {
        let options = ScriptOptions {
            snapshot_before_contract,
            maintenance_work_mem_mb: Some(128),
        };
        let script = script("poolside", list, &cron::owned_jobs(7), &options).unwrap();
        Command::new("psql")
            .args(["-X", "-q", "-v", &format!("snapshot={snapshot}")])
            .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
            .args(["-U", MASTER.0, "-d", "poolside", "-f", "-"])
            .env("PGPASSWORD", MASTER.1)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child.stdin.take().unwrap().write_all(script.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap()
    }

    /// `list` and a migration of the test's own after its last one.
    fn with_migration(mut list: Vec<Shipped>, name: &str, sql: String) -> Vec<Shipped> {
        use sqlx::migrate::{Migration, MigrationType};
        use std::borrow::Cow;
        let version = list.last().unwrap().migration.version + 1;
        let sql: &'static str = Box::leak(sql.into_boxed_str());
        list.push(Shipped {
            migration: Migration::new(
                version,
                Cow::Owned(name.to_string()),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                sql.contains("-- poolside: no-transaction"),
            ),
            file: format!("sql/migrations/{version:04}_{name}.sql"),
        });
        list
    }

    /// Which jobs were active, as a migration saw them, by name.
    async fn seen(app: &mut sqlx::PgConnection, table: &str) -> BTreeMap<String, bool> {
        sqlx::query_as::<_, (String, bool)>(&format!("SELECT jobname, active FROM {table}"))
            .fetch_all(app)
            .await
            .unwrap()
            .into_iter()
            .collect()
    }

    /// poolside's jobs are paused while migrations run (a job must not run
    /// against a half-migrated schema) and resumed after, on both runners
    /// and after a failed migration; another user's job is left running.
    #[tokio::test]
    async fn jobs_are_paused_while_migrations_run_and_resumed_after() {
        let server = Server::start();
        let (ok, lines) = run_task(&server, &container());
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        let mut app = server.connect(MASTER).await;
        sqlx::query("SELECT cron.schedule('someone-elses', '0 1 * * *', 'SELECT 2')")
            .execute(&mut app)
            .await
            .unwrap();
        let record = |table: &str| {
            format!("CREATE TABLE public.{table} AS SELECT jobname, active FROM cron.job WHERE jobname IS NOT NULL;")
        };
        let owned: Vec<String> = cron::owned_jobs(7).into_iter().map(|j| j.name).collect();
        let during = |seen: &BTreeMap<String, bool>| {
            let mut expected: BTreeMap<String, bool> =
                owned.iter().map(|n| (n.clone(), false)).collect();
            expected.insert("someone-elses".into(), true);
            assert_eq!(seen, &expected, "the jobs as the migration saw them");
        };
        let all_active = || async {
            let active: Vec<bool> = sqlx::query_scalar("SELECT active FROM cron.job")
                .fetch_all(&mut server.connect(MASTER).await)
                .await
                .unwrap();
            assert!(active.iter().all(|a| *a), "a job stayed paused: {active:?}");
        };

        // The task's script.
        let list = with_migration(
            migrations::shipped(),
            "seen_by_task",
            record("seen_by_task"),
        );
        let out = run_script(&server, &list);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let mut report = DataTierReport::default();
        read_markers(&stdout, &list, &mut report);
        let mut sorted = owned.clone();
        sorted.sort();
        assert_eq!(report.jobs_paused_for_migrations, sorted);
        assert_eq!(report.jobs_running_at_migration, Vec::<String>::new());
        during(&seen(&mut app, "seen_by_task").await);
        all_active().await;

        // The deploy host's path.
        let list = with_migration(list, "seen_by_host", record("seen_by_host"));
        let mut report = DataTierReport::default();
        let cron_conn = server.connect(MASTER).await;
        crate::database::migrate_with_jobs_paused(
            &mut app,
            Some(cron_conn),
            "poolside",
            &list,
            &mut report,
        )
        .await
        .unwrap();
        assert_eq!(report.migrations_applied.len(), 1);
        assert_eq!(report.jobs_paused_for_migrations.len(), owned.len());
        during(&seen(&mut app, "seen_by_host").await);
        all_active().await;

        // A migration that fails: rolled back, and the jobs run again.
        let list = with_migration(list, "fails", "SELECT 1 / 0;".into());
        let mut report = DataTierReport::default();
        let cron_conn = server.connect(MASTER).await;
        let mut app = server.connect(MASTER).await;
        let err = crate::database::migrate_with_jobs_paused(
            &mut app,
            Some(cron_conn),
            "poolside",
            &list,
            &mut report,
        )
        .await
        .unwrap_err();
        assert!(format!("{err:#}").contains("division by zero"), "{err:#}");
        all_active().await;
    }

    /// A run under way counts while its backend lives: one pg_cron lists
    /// as running after a server restart does not hold up the migrations.
    #[tokio::test]
    async fn a_run_under_way_is_one_whose_backend_still_runs() {
        let server = Server::start();
        let (ok, lines) = run_task(&server, &container());
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        let mut cron_conn = server.connect(MASTER).await;
        let mut runner = server.connect(MASTER).await;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut runner)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, start_time)
             SELECT jobid, nextval('cron.runid_seq'), $1, database, username, command, 'running', now()
               FROM cron.job WHERE jobname = 'cleanup-metrics'",
        )
        .bind(pid)
        .execute(&mut cron_conn)
        .await
        .unwrap();
        let names: Vec<String> = cron::declared().into_iter().map(|j| j.name).collect();
        assert_eq!(
            cron::running(&mut cron_conn, &names).await.unwrap(),
            ["cleanup-metrics"]
        );
        drop(runner);
        let mut gone = false;
        for _ in 0..50 {
            if cron::running(&mut cron_conn, &names)
                .await
                .unwrap()
                .is_empty()
            {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(gone, "a run whose backend ended still counts as under way");
    }

    /// With `database.snapshot_before_changes`, the script stops before a
    /// pending migration that contracts the schema until it is told a
    /// snapshot was taken, and applies nothing meanwhile.
    #[tokio::test]
    async fn the_script_stops_before_a_contracting_migration_until_a_snapshot_is_taken() {
        let server = Server::start();
        let (ok, lines) = run_task(&server, &container());
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        let list = with_migration(
            migrations::shipped(),
            "drop_metrics",
            "-- poolside: contract\nDROP TABLE api.model_metrics CASCADE;".into(),
        );
        let contracting = list.last().unwrap().migration.version;
        let server = &server;
        let is_applied = |version: i64| async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT FROM _sqlx_migrations WHERE version = $1)",
            )
            .bind(version)
            .fetch_one(&mut server.connect(MASTER).await)
            .await
            .unwrap()
        };
        let stopped = run_script_with(server, &list, true, "");
        let stdout = String::from_utf8_lossy(&stopped.stdout).to_string();
        assert!(!stopped.status.success());
        assert!(stdout.contains(SNAPSHOT_NEEDED), "{stdout}");
        assert!(
            !is_applied(contracting).await,
            "applied before its snapshot"
        );
        let paused: i64 = sqlx::query_scalar("SELECT count(*) FROM cron.job WHERE NOT active")
            .fetch_one(&mut server.connect(MASTER).await)
            .await
            .unwrap();
        assert_eq!(paused, 0, "a run that stopped first paused no job");

        let ran = run_script_with(server, &list, true, "poolside-x-before-contract-1");
        assert!(
            ran.status.success(),
            "{}",
            String::from_utf8_lossy(&ran.stderr)
        );
        assert!(is_applied(contracting).await);
        // With the setting off, nothing stops a contracting migration.
        let list = with_migration(
            list,
            "drop_examples",
            "-- poolside: contract\nDROP TABLE platform.training_examples;".into(),
        );
        let last = list.last().unwrap().migration.version;
        assert!(run_script_with(server, &list, false, "").status.success());
        assert!(is_applied(last).await);
    }

    /// pg_cron put back to an older version, as an engine upgrade leaves an
    /// extension: both runners bring it to the server's version, and say so.
    #[tokio::test]
    async fn an_extension_behind_the_servers_version_is_updated_by_both_runners() {
        let server = Server::start();
        let (ok, lines) = run_task(&server, &container());
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        let mut app = server.connect(MASTER).await;
        let older = || async {
            let mut conn = server.connect(MASTER).await;
            for statement in [
                "DROP EXTENSION pg_cron CASCADE",
                "CREATE EXTENSION pg_cron VERSION '1.3'",
            ] {
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
        };
        older().await;
        let outdated = super::super::extensions::outdated(&mut app).await.unwrap();
        assert_eq!(outdated.len(), 1, "{outdated:?}");
        assert_eq!(
            (outdated[0].name.as_str(), outdated[0].installed.as_str()),
            ("pg_cron", "1.3")
        );
        let current = outdated[0].available.clone();

        // The task's script: updated, reported, and the jobs the drop took scheduled again.
        let out = run_script(&server, &migrations::shipped());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let mut report = DataTierReport::default();
        read_markers(&stdout, &migrations::shipped(), &mut report);
        assert_eq!(
            report.extensions_updated,
            [format!("pg_cron 1.3 -> {current}")]
        );
        assert_eq!(report.jobs_changed.len(), cron::owned_jobs(7).len());
        assert_eq!(
            super::super::extensions::outdated(&mut app).await.unwrap(),
            []
        );

        // The deploy host's path.
        older().await;
        let updated = crate::database::update_extensions(&mut app).await.unwrap();
        assert_eq!(updated, [format!("pg_cron 1.3 -> {current}")]);
        assert_eq!(
            super::super::extensions::outdated(&mut app).await.unwrap(),
            []
        );
    }

    /// A migration that builds an index: the session gets the
    /// maintenance_work_mem set for it, and a second session reports how far
    /// the build is while it runs.
    #[tokio::test]
    async fn an_index_build_in_a_migration_reports_its_progress() {
        struct Heard(std::sync::Mutex<Vec<String>>);
        impl crate::resources::WaitObserver for Heard {
            fn waiting(&self, _: &ResourceId, until: &str, _: Duration, _: Duration) {
                self.0.lock().unwrap().push(until.to_string());
            }
        }
        let server = Server::start();
        let (ok, lines) = run_task(&server, &container());
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        // The table in one migration, its index in the next: as an index
        // is added to a table that exists (the one case that takes long).
        let list = with_migration(
            migrations::shipped(),
            "bulk",
            "CREATE TABLE api.bulk (id bigint, body text);
             INSERT INTO api.bulk SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 1500000) g;"
                .into(),
        );
        let list = with_migration(
            list,
            "bulk_index",
            "-- poolside: no-transaction\nCREATE INDEX CONCURRENTLY bulk_body ON api.bulk (body);"
                .into(),
        );
        let mut app = server.connect(MASTER).await;
        super::super::index_builds::set_maintenance_work_mem(&mut app, 64)
            .await
            .unwrap();
        let heard = Heard(Default::default());
        let waits = Waits::new(&heard);
        let watch = super::super::index_builds::Watch {
            conn: server.connect(MASTER).await,
            waits: &waits,
            every: Duration::from_millis(100),
        };
        let mut report = DataTierReport::default();
        crate::database::migrate_with_jobs_paused_watched(
            &mut app,
            None,
            ("poolside", Some(watch)),
            &list,
            &mut report,
        )
        .await
        .unwrap();
        assert_eq!(report.migrations_applied.len(), 2);
        let heard = heard.0.lock().unwrap().clone();
        assert!(
            heard
                .iter()
                .any(|h| h.starts_with("index bulk_body: building index")
                    && h.contains("loading tuples in tree")),
            "no progress of the build was reported: {heard:?}"
        );
        let memory: String = sqlx::query_scalar("SHOW maintenance_work_mem")
            .fetch_one(&mut app)
            .await
            .unwrap();
        assert_eq!(memory, "64MB");
    }

    /// The schema task says how far its index builds are while it runs:
    /// its second psql session prints progress lines that deploy turns into
    /// what it says while it waits; and psql's failure stays the task's
    /// exit code with that session beside it.
    #[tokio::test]
    async fn the_schema_task_reports_an_index_builds_progress_in_its_log() {
        let server = Server::start();
        let mut container = container();
        let (ok, lines) = run_task(&server, &container);
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        let list = with_migration(
            migrations::shipped(),
            "bulk",
            "CREATE TABLE api.bulk (id bigint, body text);
             INSERT INTO api.bulk SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 2000000) g;
             CREATE TABLE public.task_session AS SELECT current_setting('client_connection_check_interval') AS check_interval;"
                .into(),
        );
        let list = with_migration(
            list,
            "bulk_index",
            "-- poolside: no-transaction\nSET maintenance_work_mem = '64MB';\nCREATE INDEX CONCURRENTLY bulk_body ON api.bulk (body, id);".into(),
        );
        let options = ScriptOptions::default();
        let script_text = script("poolside", &list, &cron::owned_jobs(7), &options).unwrap();
        container
            .environment
            .insert(SCRIPT_VARIABLE.into(), script_text);
        let command = bootstrap();
        let (ok, lines) = run_command(
            &server,
            &container,
            &command,
            &[("POOLSIDE_PROGRESS_EVERY", "0.2")],
        );
        assert!(ok, "the run failed:\n{}", lines.join("\n"));
        let said: Vec<String> = lines.iter().filter_map(|l| task_log::describe(l)).collect();
        assert!(
            said.iter()
                .any(|s| s.starts_with("index bulk_body: building index")),
            "no progress of the build in the task's output: {said:?}\n{}",
            lines.join("\n")
        );
        let mut report = DataTierReport::default();
        assert!(read_markers(
            &task_log::without_progress(&lines),
            &list,
            &mut report
        ));
        assert_eq!(report.migrations_applied.len(), 2);
        // A statement of a task that is gone is cancelled within 10 s.
        let interval: String = sqlx::query_scalar("SELECT check_interval FROM public.task_session")
            .fetch_one(&mut server.connect(MASTER).await)
            .await
            .unwrap();
        assert_eq!(interval, "10s");

        let list = with_migration(list, "fails", "SELECT 1 / 0;".into());
        let script_text = script("poolside", &list, &cron::owned_jobs(7), &options).unwrap();
        container
            .environment
            .insert(SCRIPT_VARIABLE.into(), script_text);
        let (ok, lines) = run_command(
            &server,
            &container,
            &command,
            &[("POOLSIDE_PROGRESS_EVERY", "0.2")],
        );
        assert!(
            !ok,
            "a failed migration must fail the task:\n{}",
            lines.join("\n")
        );
        assert!(
            lines.iter().any(|l| l.contains("division by zero")),
            "{lines:?}"
        );
    }

    #[test]
    fn the_task_looks_at_its_progress_every_ten_seconds_unless_told_otherwise() {
        let command = bootstrap();
        assert!(
            command.contains(r#"every="${POOLSIDE_PROGRESS_EVERY:-10}""#),
            "{command}"
        );
        assert!(!command.contains('@'), "a placeholder is left: {command}");
        assert!(command.contains("FROM pg_stat_progress_create_index"));
    }

    /// Before a major upgrade the schema task pauses poolside's jobs (and
    /// no one else's); after it, the task runs ANALYZE first and then
    /// resumes exactly the jobs it was told were paused.
    #[tokio::test]
    async fn the_schema_task_pauses_the_jobs_before_an_upgrade_and_resumes_them_after() {
        let server = Server::start();
        let container = container();
        let (ok, lines) = run_task(&server, &container);
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        let mut app = server.connect(MASTER).await;
        sqlx::query("SELECT cron.schedule('someone-elses', '0 1 * * *', 'SELECT 2')")
            .execute(&mut app)
            .await
            .unwrap();
        let active = || async {
            sqlx::query_as::<_, (String, bool)>("SELECT jobname, active FROM cron.job")
                .fetch_all(&mut server.connect(MASTER).await)
                .await
                .unwrap()
                .into_iter()
                .collect::<BTreeMap<String, bool>>()
        };
        let mut owned: Vec<String> = cron::owned_jobs(7).into_iter().map(|j| j.name).collect();
        owned.sort();

        let pause = super::super::schema_script::pause_for_upgrade("poolside");
        let (ok, lines) = run_command(
            &server,
            &container,
            PAUSE_COMMAND,
            &[(PAUSE_VARIABLE, &pause)],
        );
        assert!(ok, "the pause failed:\n{}", lines.join("\n"));
        let mut report = DataTierReport::default();
        assert!(read_markers(&lines, &[], &mut report), "{lines:?}");
        assert_eq!(report.jobs_paused_for_migrations, owned);
        let mut expected: BTreeMap<String, bool> =
            owned.iter().map(|n| (n.clone(), false)).collect();
        expected.insert("someone-elses".into(), true);
        assert_eq!(active().await, expected);

        // One job paused by hand too, not by deploy: the upgrade's
        // resumption leaves it to the reconciliation, which reports it.
        let resume = owned[1..].join(",");
        let (ok, lines) = run_command(
            &server,
            &container,
            container.command.last().unwrap(),
            &[(ANALYZE_VARIABLE, "yes"), (RESUME_VARIABLE, &resume)],
        );
        assert!(
            ok,
            "the run after the upgrade failed:\n{}",
            lines.join("\n")
        );
        let mut report = DataTierReport::default();
        assert!(
            read_markers(&lines, &migrations::shipped(), &mut report),
            "{lines:?}"
        );
        assert!(report.analyzed_after_upgrade);
        assert_eq!(report.jobs_resumed_after_upgrade, owned[1..].to_vec());
        let corrected: Vec<&str> = report
            .jobs_changed
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(corrected, [owned[0].as_str()]);
        let analyzed = lines.iter().position(|l| l.trim() == "poolside: analyzed");
        let resumed = lines
            .iter()
            .position(|l| l.contains("resumed-after-upgrade"));
        assert!(
            analyzed < resumed,
            "ANALYZE runs before the jobs resume: {lines:?}"
        );
        assert!(active().await.values().all(|a| *a));
    }

    /// The retention job keeps `database.cron_history_days` of pg_cron's
    /// record of runs, and runs where that record is.
    #[tokio::test]
    async fn the_history_job_deletes_runs_older_than_the_days_kept() {
        let server = Server::start();
        let (ok, lines) = run_task(&server, &container());
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        let mut conn = server.connect(MASTER).await;
        let (database, command): (String, String) =
            sqlx::query_as("SELECT database, command FROM cron.job WHERE jobname = $1")
                .bind(cron::HISTORY_JOB)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(database, "poolside");
        for age in [1, 6, 8, 30] {
            sqlx::query(&format!(
                "INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status, start_time, end_time)
                 SELECT jobid, nextval('cron.runid_seq'), database, username, command, 'succeeded',
                        now() - interval '{age} days', now() - interval '{age} days'
                   FROM cron.job WHERE jobname = 'cleanup-metrics'"
            ))
            .execute(&mut conn)
            .await
            .unwrap();
        }
        sqlx::query(&command).execute(&mut conn).await.unwrap();
        let ages: Vec<i32> = sqlx::query_scalar(
            "SELECT extract(day FROM now() - end_time)::int FROM cron.job_run_details ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(ages, [1, 6], "7 days kept by default");
    }

    /// A migration marked no-transaction builds its index CONCURRENTLY
    /// (PostgreSQL refuses that inside a transaction) through the task's
    /// psql script and through the deploy host's migrator alike.
    #[tokio::test]
    async fn a_migration_marked_no_transaction_builds_its_index_concurrently_on_both_runners() {
        use sqlx::migrate::{Migration, MigrationType};
        use std::borrow::Cow;
        let server = Server::start();
        let (ok, lines) = run_task(&server, &container());
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        let concurrently = |version: i64, index: &str| {
            let sql = format!(
                "-- poolside: no-transaction\nCREATE INDEX CONCURRENTLY {index} ON api.rag_documents (title);"
            );
            let sql: &'static str = Box::leak(sql.into_boxed_str());
            Shipped {
                migration: Migration::new(
                    version,
                    Cow::Borrowed("index"),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    true,
                ),
                file: format!("sql/migrations/{version:04}_index.sql"),
            }
        };
        let mut list = migrations::shipped();
        let last = list.last().unwrap().migration.version;
        list.push(concurrently(last + 1, "rag_documents_title_task"));

        // The task's path: psql runs the script as the master user.
        let out = run_script(&server, &list);
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{text}");
        assert!(
            !text.contains("cannot run inside a transaction block"),
            "{text}"
        );

        // The deploy host's path: sqlx's migrator, the same ledger.
        list.push(concurrently(last + 2, "rag_documents_title_host"));
        let mut app = server.connect(MASTER).await;
        let applied = migrations::migrate(&mut app, &list).await.unwrap();
        assert_eq!(
            applied.iter().map(|a| a.version).collect::<Vec<_>>(),
            [last + 2]
        );
        let valid: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname IN ('rag_documents_title_task', 'rag_documents_title_host') AND i.indisvalid",
        )
        .fetch_one(&mut app)
        .await
        .unwrap();
        assert_eq!(valid, 2);
    }

    #[tokio::test]
    async fn the_schema_task_converges_the_database_as_the_deploy_host_path_does() {
        let server = Server::start();
        let container = container();
        let shipped = migrations::shipped();

        let (ok, lines) = run_task(&server, &container);
        assert!(ok, "the first run failed:\n{}", lines.join("\n"));
        let mut report = DataTierReport::default();
        assert!(read_markers(&lines, &shipped, &mut report), "{lines:?}");
        assert!(report.database_created);
        assert!(report.authenticator_password_set);
        assert_eq!(report.migrations_applied.len(), shipped.len());
        assert!(
            report.schema_reloaded,
            "migrations ran: PostgREST is told to reload"
        );
        assert_eq!(report.jobs_changed.len(), cron::owned_jobs(7).len());

        // The password works, and the deploy-host path finds nothing to do:
        // same ledger, same checksums, same jobs.
        drop(
            server
                .connect(("authenticator", AUTHENTICATOR_PASSWORD))
                .await,
        );
        let mut app = server.connect(MASTER).await;
        assert_eq!(migrations::migrate(&mut app, &shipped).await.unwrap(), []);
        let mut cron_conn = server.connect(MASTER).await;
        let changes = cron::reconcile(&mut cron_conn, &mut app, "poolside", &cron::owned_jobs(7))
            .await
            .unwrap();
        assert_eq!(changes, []);

        // The script takes sqlx's migration lock, so the two paths exclude each other.
        let mut locker = server.connect(MASTER).await;
        sqlx::migrate::Migrate::lock(&mut locker).await.unwrap();
        let (high, low): (i64, i64) = sqlx::query_as(
            "SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        )
        .fetch_one(&mut locker)
        .await
        .unwrap();
        assert_eq!(
            ((high << 32) | low) as u64 as i64,
            migration_lock_id("poolside")
        );
        drop(locker);

        // The privilege matrix is recorded as the migrations left it.
        let recorded = privileges::recorded(&mut app).await.unwrap();
        assert_eq!(recorded, Some(privileges::current(&mut app).await.unwrap()));

        // Drift it by hand: a privilege granted, a job's schedule, a job we
        // own but no longer declare, and someone else's job, which must stay.
        sqlx::query("GRANT DELETE ON api.messages TO web_anon")
            .execute(&mut app)
            .await
            .unwrap();
        sqlx::query("SELECT cron.alter_job(jobid, schedule => '5 5 * * *') FROM cron.job WHERE jobname = 'cleanup-metrics'")
            .execute(&mut app).await.unwrap();
        sqlx::query("SELECT cron.schedule('retired-job', '0 1 * * *', 'SELECT 1')")
            .execute(&mut app)
            .await
            .unwrap();
        sqlx::query("INSERT INTO platform.scheduled_jobs (name) VALUES ('retired-job')")
            .execute(&mut app)
            .await
            .unwrap();
        sqlx::query("SELECT cron.schedule('someone-elses', '0 1 * * *', 'SELECT 2')")
            .execute(&mut app)
            .await
            .unwrap();

        // PostgREST listens on `pgrst` for a schema reload: the run that
        // puts a privilege back must tell it.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with(
                sqlx::postgres::PgConnectOptions::new()
                    .host("127.0.0.1")
                    .port(server.port)
                    .username(MASTER.0)
                    .password(MASTER.1)
                    .database("poolside")
                    .ssl_mode(sqlx::postgres::PgSslMode::Disable),
            )
            .await
            .unwrap();
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
            .await
            .unwrap();
        listener.listen("pgrst").await.unwrap();

        let (ok, lines) = run_task(&server, &container);
        assert!(ok, "the second run failed:\n{}", lines.join("\n"));
        let mut report = DataTierReport::default();
        assert!(read_markers(&lines, &shipped, &mut report));
        assert!(report.schema_reloaded, "{lines:?}");
        let heard = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
            .await
            .expect("PostgREST was not told to reload its schema")
            .unwrap();
        assert_eq!(heard.payload(), "reload schema");
        assert!(!report.database_created && !report.authenticator_password_set);
        assert_eq!(report.migrations_applied, []);
        let changes: Vec<(String, cron::JobAction)> = report
            .jobs_changed
            .iter()
            .map(|c| (c.name.clone(), c.action.clone()))
            .collect();
        assert_eq!(
            changes,
            [
                ("cleanup-metrics".to_string(), cron::JobAction::Corrected),
                ("retired-job".to_string(), cron::JobAction::Unscheduled),
            ]
        );
        let jobs: Vec<String> = sqlx::query("SELECT jobname FROM cron.job ORDER BY jobname")
            .fetch_all(&mut app)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(jobs.contains(&"someone-elses".to_string()), "{jobs:?}");
        assert!(!jobs.contains(&"retired-job".to_string()), "{jobs:?}");
        assert_eq!(
            report.privileges_restored,
            ["REVOKE DELETE ON TABLE api.messages FROM web_anon"]
        );
        assert_eq!(
            privileges::recorded(&mut app).await.unwrap(),
            Some(privileges::current(&mut app).await.unwrap()),
            "the hand-made grant is still there"
        );

        // An applied migration edited since: refused, naming the file, nothing applied.
        sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = 3")
            .execute(&mut app)
            .await
            .unwrap();
        let (ok, lines) = run_task(&server, &container);
        assert!(
            !ok,
            "an edited migration was accepted:\n{}",
            lines.join("\n")
        );
        let text = lines.join("\n");
        assert!(
            text.contains("sql/migrations/0003_")
                && text.contains("was changed after it was applied"),
            "{text}"
        );
        assert!(!read_markers(
            &lines,
            &shipped,
            &mut DataTierReport::default()
        ));
    }

    /// The task runs where the API's tasks run: private subnets, the API's
    /// group (which the database admits), the API's cluster.
    #[test]
    fn the_task_is_placed_in_the_private_subnets_and_the_api_group() {
        let desired = aws_blueprint();
        let cx = crate::resources::testing::context(|_| {});
        for d in &desired {
            cx.record(&d.id, &format!("aws-id-of-{}", d.id));
            for key in ["uri", "address", "port", "master_secret_arn", "arn"] {
                cx.record_attribute(&d.id, key, &format!("{key}-of-{}", d.id));
            }
        }
        let placement = Placement::from_blueprint(&cx, &desired).unwrap();
        let mut subnets = placement.subnets.clone();
        subnets.sort();
        assert_eq!(
            subnets,
            [
                "aws-id-of-subnet/private-eu-west-1a",
                "aws-id-of-subnet/private-eu-west-1b"
            ]
        );
        assert_eq!(placement.security_groups, ["aws-id-of-sg/api"]);
        assert_eq!(placement.cluster, "aws-id-of-cluster/main");
        assert_eq!(
            placement.task_definition,
            "aws-id-of-task-definition/schema"
        );
        assert_eq!(
            placement.image,
            format!("uri-of-repository/postgrest:{RUNNER_REPOSITORY_TAG}")
        );
        assert_eq!(placement.log_group, "/poolside/t/api");
    }

    #[test]
    fn markers_fill_the_report_and_other_lines_are_ignored() {
        let shipped = migrations::shipped();
        let lines: Vec<String> = [
            "poolside: connecting to db:5432",
            "poolside: applied 4",
            "NOTICE: something",
            "poolside: job scheduled generate-embeddings",
            "poolside: applied 999",
            "poolside: done",
        ]
        .map(String::from)
        .to_vec();
        let mut report = DataTierReport::default();
        assert!(read_markers(&lines, &shipped, &mut report));
        assert_eq!(report.migrations_applied.len(), 1);
        assert!(report.migrations_applied[0]
            .file
            .starts_with("sql/migrations/0004_"));
        assert_eq!(report.jobs_changed[0].action, cron::JobAction::Scheduled);
        assert!(!read_markers(&lines[..5], &shipped, &mut report));
    }

    mod ecs_run {
        use super::*;
        use crate::resources::testing::context;
        use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsOutput;
        use aws_sdk_cloudwatchlogs::types::OutputLogEvent;
        use aws_sdk_ecr::operation::describe_images::DescribeImagesOutput;
        use aws_sdk_ecr::types::ImageDetail;
        use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
        use aws_sdk_ecs::operation::run_task::RunTaskOutput;
        use aws_sdk_ecs::types::{Container, Failure};
        use aws_smithy_mocks::mock;

        const TASK: &str = "arn:aws:ecs:eu-west-1:111122223333:task/poolside-pilot/0123abcd";

        fn placement() -> Placement {
            Placement {
                cluster: "arn:aws:ecs:eu-west-1:111122223333:cluster/poolside-pilot".into(),
                image: format!(
                    "111122223333.dkr.ecr.eu-west-1.amazonaws.com/poolside-pilot/postgrest:{RUNNER_REPOSITORY_TAG}"
                ),
                task_definition: "arn:aws:ecs:eu-west-1:111122223333:task-definition/poolside-pilot-schema:3".into(),
                subnets: vec!["subnet-a".into(), "subnet-b".into()],
                security_groups: vec!["sg-api".into()],
                log_group: "/poolside/pilot/api".into(),
            }
        }

        fn task(status: &str, exit_code: Option<i32>) -> Task {
            Task::builder()
                .task_arn(TASK)
                .last_status(status)
                .containers(
                    Container::builder()
                        .name(CONTAINER_NAME)
                        .set_exit_code(exit_code)
                        .build(),
                )
                .set_stopped_reason(
                    (status == "STOPPED").then(|| "Essential container in task exited".to_string()),
                )
                .build()
        }

        /// RunTask starts the task.
        fn started() -> aws_smithy_mocks::Rule {
            mock!(aws_sdk_ecs::Client::run_task).then_output(|| {
                RunTaskOutput::builder()
                    .tasks(task("PROVISIONING", None))
                    .build()
            })
        }

        /// DescribeTasks: the task stopped, its container exited with `code`.
        fn stopped_with(code: i32) -> aws_smithy_mocks::Rule {
            mock!(aws_sdk_ecs::Client::describe_tasks).then_output(move || {
                DescribeTasksOutput::builder()
                    .tasks(task("STOPPED", Some(code)))
                    .build()
            })
        }

        /// A JSON-protocol refusal, as ECS, ECR and CloudWatch Logs answer.
        fn refusal(
            code: &str,
            message: &str,
        ) -> aws_smithy_runtime_api::http::Response<aws_smithy_types::body::SdkBody> {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(crate::resources::testing::json_error(
                    code, message,
                )),
            )
        }

        fn image_listed() -> aws_smithy_mocks::Rule {
            mock!(aws_sdk_ecr::Client::describe_images).then_output(|| {
                DescribeImagesOutput::builder()
                    .image_details(ImageDetail::builder().build())
                    .build()
            })
        }

        /// A task's log stream: `lines` for the first read of a run (once),
        /// then nothing more for every later read. In `MatchAny` mode, with
        /// one such pair per run and the ends last.
        fn logs(lines: &'static [&'static str]) -> [aws_smithy_mocks::Rule; 2] {
            let first = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
                .match_requests(|r| {
                    r.log_stream_name() == Some("schema/schema/0123abcd")
                        && r.next_token().is_none()
                })
                .sequence()
                .output(move || {
                    GetLogEventsOutput::builder()
                        .set_events(Some(
                            lines
                                .iter()
                                .map(|l| OutputLogEvent::builder().message(*l).build())
                                .collect(),
                        ))
                        .next_forward_token("f/1")
                        .build()
                })
                .build();
            let end = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
                .match_requests(|r| r.next_token() == Some("f/1"))
                .then_output(|| {
                    GetLogEventsOutput::builder()
                        .next_forward_token("f/1")
                        .build()
                });
            [first, end]
        }

        /// The script stops for a snapshot before a contracting migration:
        /// deploy takes it, waits for it, and runs the task again with its
        /// name, which the second run applies under.
        #[tokio::test(start_paused = true)]
        async fn a_task_stopped_for_a_snapshot_runs_again_once_it_is_taken() {
            use aws_sdk_rds::operation::create_db_snapshot::CreateDbSnapshotOutput;
            use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
            use aws_sdk_rds::types::DbSnapshot;
            let first_run = mock!(aws_sdk_ecs::Client::run_task)
                .match_requests(|r| r.overrides().is_none())
                .then_output(|| {
                    RunTaskOutput::builder()
                        .tasks(task("PROVISIONING", None))
                        .build()
                });
            let stopped_for_snapshot = stopped_with(3);
            let second_run = mock!(aws_sdk_ecs::Client::run_task)
                .match_requests(|r| {
                    let variables: Vec<(&str, &str)> = r
                        .overrides()
                        .into_iter()
                        .flat_map(|o| o.container_overrides())
                        .filter(|c| c.name() == Some(CONTAINER_NAME))
                        .flat_map(|c| c.environment())
                        .filter_map(|kv| Some((kv.name()?, kv.value()?)))
                        .collect();
                    variables.len() == 1
                        && variables[0].0 == SNAPSHOT_VARIABLE
                        && variables[0]
                            .1
                            .starts_with("poolside-pilot-before-contract-")
                })
                .then_output(|| {
                    RunTaskOutput::builder()
                        .tasks(task("PROVISIONING", None))
                        .build()
                });
            let stopped_done = stopped_with(0);
            let create = mock!(aws_sdk_rds::Client::create_db_snapshot)
                .match_requests(|r| r.db_instance_identifier() == Some("poolside-pilot"))
                .then_output(|| CreateDbSnapshotOutput::builder().build());
            let available = mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(|| {
                DescribeDbSnapshotsOutput::builder()
                    .db_snapshots(DbSnapshot::builder().status("available").build())
                    .build()
            });
            let instance_available = || {
                mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
                    aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput::builder()
                        .db_instances(
                            aws_sdk_rds::types::DbInstance::builder()
                                .db_instance_status("available")
                                .build(),
                        )
                        .build()
                })
            };
            let (ready, ready_again) = (instance_available(), instance_available());
            let image = image_listed();
            let [needed, needed_end] = logs(&[
                "poolside: connecting to db:5432",
                "poolside: snapshot-needed",
                "psql:<stdin>:30: ERROR:  a migration that contracts the schema is pending: deploy takes a snapshot first",
            ]);
            let [applied, applied_end] = logs(&["poolside: applied 5", "poolside: done"]);
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&image]);
                c.ecs = crate::mocked!(
                    aws_sdk_ecs,
                    [
                        &first_run,
                        &stopped_for_snapshot,
                        &second_run,
                        &stopped_done
                    ]
                );
                c.logs = crate::mocked!(
                    aws_sdk_cloudwatchlogs,
                    [&needed, &applied, &needed_end, &applied_end],
                    MatchAny
                );
                c.rds = crate::mocked!(aws_sdk_rds, [&ready, &create, &available, &ready_again]);
            });
            cx.record(&ResourceId::new(Kind::DbInstance, "main"), "poolside-pilot");
            let mut report = DataTierReport::default();
            let sink = crate::engine::events::Discard;
            run_schema_task(&cx, &placement(), &mut report, &sink)
                .await
                .unwrap();
            assert_eq!(second_run.num_calls(), 1);
            assert_eq!(create.num_calls(), 1);
            assert!(report
                .snapshot_before_migrations
                .as_deref()
                .is_some_and(|s| s.starts_with("poolside-pilot-before-contract-")));
            assert_eq!(report.migrations_applied.len(), 1);
        }

        #[tokio::test(start_paused = true)]
        async fn waits_for_the_task_to_stop_and_reads_what_it_did_from_its_logs() {
            let run = mock!(aws_sdk_ecs::Client::run_task)
                .match_requests(|r| {
                    r.started_by() == Some(STARTED_BY)
                        && r.network_configuration()
                            .and_then(|n| n.awsvpc_configuration())
                            .is_some_and(|a| {
                                a.assign_public_ip() == Some(&AssignPublicIp::Disabled)
                            })
                })
                .then_output(|| {
                    RunTaskOutput::builder()
                        .tasks(task("PROVISIONING", None))
                        .build()
                });
            // Just started: not listed yet (eventual consistency), then running, then stopped.
            let unlisted = mock!(aws_sdk_ecs::Client::describe_tasks)
                .then_output(|| DescribeTasksOutput::builder().build());
            let running = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(|| {
                DescribeTasksOutput::builder()
                    .tasks(task("RUNNING", None))
                    .build()
            });
            let stopped = stopped_with(0);
            let image = image_listed();
            let [first, end] = logs(&[
                "poolside: connecting to db:5432",
                "poolside: applied 5",
                "poolside: job corrected cleanup-metrics",
                "poolside: done",
            ]);
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&image]);
                c.ecs = crate::mocked!(aws_sdk_ecs, [&run, &unlisted, &running, &stopped]);
                c.logs = crate::mocked!(aws_sdk_cloudwatchlogs, [&first, &end], MatchAny);
            });
            let mut report = DataTierReport::default();
            let sink = crate::engine::events::Discard;
            run_schema_task(&cx, &placement(), &mut report, &sink)
                .await
                .unwrap();
            assert_eq!(report.migrations_applied.len(), 1);
            assert_eq!(report.jobs_changed[0].name, "cleanup-metrics");
            assert_eq!(stopped.num_calls(), 1);
            assert!(end.num_calls() >= 1, "the stream is read to its end");
        }

        /// What deploy says while the task runs: its progress lines, as
        /// they reach its log stream, before the task stops.
        #[tokio::test(start_paused = true)]
        async fn the_tasks_progress_is_said_while_it_runs() {
            struct Heard(std::sync::Mutex<Vec<String>>);
            impl crate::resources::WaitObserver for Heard {
                fn waiting(&self, _: &ResourceId, until: &str, _: Duration, _: Duration) {
                    self.0.lock().unwrap().push(until.to_string());
                }
            }
            let run = started();
            let running = mock!(aws_sdk_ecs::Client::describe_tasks)
                .sequence()
                .output(|| {
                    DescribeTasksOutput::builder()
                        .tasks(task("RUNNING", None))
                        .build()
                })
                .times(3)
                .build();
            let stopped = stopped_with(0);
            let image = image_listed();
            let [first, end] = logs(&[
                "poolside: connecting to db:5432",
                "poolside: progress|index|rag_documents_embedding_idx|building index: loading tuples in tree|0|0|400|1000",
            ]);
            let later = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
                .match_requests(|r| r.next_token() == Some("f/1"))
                .sequence()
                .output(|| {
                    GetLogEventsOutput::builder()
                        .events(OutputLogEvent::builder().message("poolside: progress|analyze|rag_documents|acquiring sample rows|10|20|0|0").build())
                        .events(OutputLogEvent::builder().message("poolside: applied 5").build())
                        .events(OutputLogEvent::builder().message("poolside: done").build())
                        .next_forward_token("f/2")
                        .build()
                })
                .build();
            let at_end = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
                .match_requests(|r| r.next_token() == Some("f/2"))
                .then_output(|| {
                    GetLogEventsOutput::builder()
                        .next_forward_token("f/2")
                        .build()
                });
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&image]);
                c.ecs = crate::mocked!(aws_sdk_ecs, [&run, &running, &stopped]);
                c.logs = crate::mocked!(
                    aws_sdk_cloudwatchlogs,
                    [&first, &later, &end, &at_end],
                    MatchAny
                );
            });
            let heard = Heard(Default::default());
            let mut report = DataTierReport::default();
            super::super::run(
                &cx,
                &placement(),
                &migrations::shipped(),
                &Waits::new(&heard),
                &mut report,
            )
            .await
            .unwrap();
            let heard = heard.0.lock().unwrap().clone();
            assert_eq!(
                heard,
                [
                    "index rag_documents_embedding_idx: building index: loading tuples in tree, 40% of its rows",
                    "ANALYZE rag_documents: acquiring sample rows, 50% of its sample"
                ]
            );
            assert_eq!(report.migrations_applied.len(), 1);
        }

        /// A task whose log says nothing for 15 minutes is given up on and
        /// stopped, rather than waited for to the end of the task limit.
        #[tokio::test(start_paused = true)]
        async fn a_silent_task_is_stopped_after_a_quarter_of_an_hour() {
            let run = started();
            let pending = mock!(aws_sdk_ecs::Client::describe_tasks)
                .sequence()
                .output(|| {
                    DescribeTasksOutput::builder()
                        .tasks(task("PENDING", None))
                        .build()
                })
                .repeatedly()
                .build();
            let stop = mock!(aws_sdk_ecs::Client::stop_task)
                .match_requests(|r| r.task() == Some(TASK))
                .then_output(|| {
                    aws_sdk_ecs::operation::stop_task::StopTaskOutput::builder().build()
                });
            let no_stream = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events).then_error(|| {
                aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError::ResourceNotFoundException(
                    aws_sdk_cloudwatchlogs::types::error::ResourceNotFoundException::builder()
                        .message("The specified log stream does not exist.")
                        .build(),
                )
            });
            let image = image_listed();
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&image]);
                c.ecs = crate::mocked!(aws_sdk_ecs, [&run, &pending, &stop], MatchAny);
                c.logs = crate::mocked!(aws_sdk_cloudwatchlogs, [&no_stream], MatchAny);
            });
            let started = tokio::time::Instant::now();
            let err = run_schema_task(
                &cx,
                &placement(),
                &mut DataTierReport::default(),
                &crate::engine::events::Discard,
            )
            .await
            .unwrap_err()
            .to_string();
            assert!(err.contains("wrote nothing for 15 minutes"), "{err}");
            assert_eq!(stop.num_calls(), 1);
            let waited = started.elapsed();
            assert!(
                waited >= SILENCE_LIMIT && waited < SILENCE_LIMIT * 2,
                "{waited:?}"
            );
        }

        /// A log deploy may not read (GetLogEvents refused) is not a
        /// silent one: the task is waited for to its end, however long.
        #[tokio::test(start_paused = true)]
        async fn a_log_that_cannot_be_read_does_not_stop_a_long_task() {
            let run = started();
            // 20 minutes of looks, 10 s apart, then stopped.
            let running = mock!(aws_sdk_ecs::Client::describe_tasks)
                .sequence()
                .output(|| {
                    DescribeTasksOutput::builder()
                        .tasks(task("RUNNING", None))
                        .build()
                })
                .times(125)
                .build();
            let stopped = stopped_with(0);
            let stop = mock!(aws_sdk_ecs::Client::stop_task).then_output(|| {
                aws_sdk_ecs::operation::stop_task::StopTaskOutput::builder().build()
            });
            let denied =
                mock!(aws_sdk_cloudwatchlogs::Client::get_log_events).then_http_response(|| {
                    refusal(
                        "AccessDeniedException",
                        "User is not authorized to perform: logs:GetLogEvents",
                    )
                });
            let image = image_listed();
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&image]);
                c.ecs = crate::mocked!(aws_sdk_ecs, [&run, &running, &stopped, &stop]);
                c.logs = crate::mocked!(aws_sdk_cloudwatchlogs, [&denied], MatchAny);
            });
            let started = tokio::time::Instant::now();
            let err = run_schema_task(
                &cx,
                &placement(),
                &mut DataTierReport::default(),
                &crate::engine::events::Discard,
            )
            .await
            .unwrap_err()
            .to_string();
            // Its exit is known; what it did is not (no `done` read).
            assert!(err.contains("psql exited with 0"), "{err}");
            assert_eq!(stopped.num_calls(), 1);
            assert_eq!(stop.num_calls(), 0);
            assert!(started.elapsed() > SILENCE_LIMIT, "{:?}", started.elapsed());
        }

        /// DescribeTasks failing for two minutes in a row: deploy stops
        /// waiting, says the task goes on, and does not stop it.
        #[tokio::test(start_paused = true)]
        async fn a_task_deploy_cannot_see_is_left_running_and_said_so() {
            let run = started();
            let unavailable = mock!(aws_sdk_ecs::Client::describe_tasks).then_http_response(|| {
                refusal(
                    "AccessDeniedException",
                    "User is not authorized to perform: ecs:DescribeTasks",
                )
            });
            let stop = mock!(aws_sdk_ecs::Client::stop_task).then_output(|| {
                aws_sdk_ecs::operation::stop_task::StopTaskOutput::builder().build()
            });
            let image = image_listed();
            let [first, end] = logs(&["poolside: connecting to db:5432"]);
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&image]);
                c.ecs = crate::mocked!(aws_sdk_ecs, [&run, &unavailable, &stop], MatchAny);
                c.logs = crate::mocked!(aws_sdk_cloudwatchlogs, [&first, &end], MatchAny);
            });
            let err = run_schema_task(
                &cx,
                &placement(),
                &mut DataTierReport::default(),
                &crate::engine::events::Discard,
            )
            .await
            .unwrap_err();
            let err = format!("{err:#}");
            assert!(err.contains("the task goes on running"), "{err}");
            assert!(err.contains("aws ecs stop-task --cluster"), "{err}");
            assert_eq!(stop.num_calls(), 0);
        }

        #[test]
        fn the_pause_fits_in_runtasks_overrides() {
            // RunTask: "A total of 8192 characters are allowed for overrides",
            // JSON included; the environment's name and the structure are
            // well under 512.
            let pause = super::super::super::schema_script::pause_for_upgrade(
                "a_database_name_as_long_as_postgresql_allows_which_is_63_chars",
            );
            assert!(
                PAUSE_COMMAND.len() + pause.len() + 512 < 8192,
                "{}",
                pause.len()
            );
        }

        /// Before a major upgrade with the schema task: the live task
        /// definition runs the pause alone (its own command, the SQL in a
        /// variable), and the jobs it paused are what it says it paused.
        #[tokio::test(start_paused = true)]
        async fn the_pause_before_an_upgrade_runs_the_task_with_a_command_of_its_own() {
            let run = mock!(aws_sdk_ecs::Client::run_task)
                .match_requests(|r| {
                    let Some(container) = r
                        .overrides()
                        .into_iter()
                        .flat_map(|o| o.container_overrides())
                        .find(|c| c.name() == Some(CONTAINER_NAME))
                    else {
                        return false;
                    };
                    let sql = container
                        .environment()
                        .iter()
                        .find(|kv| kv.name() == Some(PAUSE_VARIABLE))
                        .and_then(|kv| kv.value());
                    container.command() == ["sh", "-c", PAUSE_COMMAND]
                        && sql.is_some_and(|sql| {
                            sql.contains("cron.alter_job(job_id => jobid, active => false)")
                        })
                        && r.task_definition() == Some(placement().task_definition.as_str())
                })
                .then_output(|| {
                    RunTaskOutput::builder()
                        .tasks(task("PROVISIONING", None))
                        .build()
                });
            let stopped = stopped_with(0);
            let image = image_listed();
            let [first, end] = logs(&[
                "poolside: connecting to db:5432",
                "poolside: paused purge-cron-history",
                "poolside: paused refresh-stats",
                "poolside: done",
            ]);
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&image]);
                c.ecs = crate::mocked!(aws_sdk_ecs, [&run, &stopped]);
                c.logs = crate::mocked!(aws_sdk_cloudwatchlogs, [&first, &end], MatchAny);
            });
            let paused = pause_jobs_for_upgrade(
                &cx,
                &placement(),
                "poolside",
                &Waits::new(&crate::engine::events::Discard),
            )
            .await
            .unwrap();
            assert_eq!(paused, ["purge-cron-history", "refresh-stats"]);
            assert_eq!(run.num_calls(), 1);
        }

        async fn run_schema_task(
            cx: &Context,
            placement: &Placement,
            report: &mut DataTierReport,
            sink: &crate::engine::events::Discard,
        ) -> anyhow::Result<()> {
            run(
                cx,
                placement,
                &migrations::shipped(),
                &Waits::new(sink),
                report,
            )
            .await
        }

        #[tokio::test(start_paused = true)]
        async fn a_failed_run_reports_psqls_last_words() {
            let run = started();
            let stopped = stopped_with(3);
            let image = image_listed();
            let [first, end] = logs(&[
                "poolside: connecting to db:5432",
                "poolside: paused cleanup-metrics",
                "psql:<stdin>:40: ERROR:  sql/migrations/0003_embeddings_and_search.sql was changed after it was applied",
            ]);
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&image]);
                c.ecs = crate::mocked!(aws_sdk_ecs, [&run, &stopped]);
                c.logs = crate::mocked!(aws_sdk_cloudwatchlogs, [&first, &end], MatchAny);
            });
            let err = run_schema_task(
                &cx,
                &placement(),
                &mut DataTierReport::default(),
                &crate::engine::events::Discard,
            )
            .await
            .unwrap_err()
            .to_string();
            assert!(err.contains("psql exited with 3"), "{err}");
            assert!(
                err.contains("0003_embeddings_and_search.sql was changed"),
                "{err}"
            );
            assert!(
                err.contains("jobs cleanup-metrics were paused for the migrations and stay paused until the next deploy"),
                "{err}"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn ecs_refusing_to_place_the_task_is_an_error_naming_why() {
            let run = mock!(aws_sdk_ecs::Client::run_task).then_output(|| {
                RunTaskOutput::builder()
                    .failures(
                        Failure::builder()
                            .reason("RESOURCE:ENI")
                            .detail("no free IP addresses in subnet-a")
                            .build(),
                    )
                    .build()
            });
            let image = image_listed();
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&image]);
                c.ecs = crate::mocked!(aws_sdk_ecs, [&run]);
            });
            let err = run_schema_task(
                &cx,
                &placement(),
                &mut DataTierReport::default(),
                &crate::engine::events::Discard,
            )
            .await
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("RESOURCE:ENI") && err.contains("no free IP addresses"),
                "{err}"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn a_missing_psql_image_names_the_push_command_before_any_task_starts() {
            let missing = mock!(aws_sdk_ecr::Client::describe_images).then_http_response(|| {
                refusal(
                    "ImageNotFoundException",
                    "The image with imageId {imageTag:'psql-16-alpine-rds-ca'} does not exist",
                )
            });
            let run = mock!(aws_sdk_ecs::Client::run_task)
                .then_output(|| RunTaskOutput::builder().build());
            let cx = context(|c| {
                c.ecr = crate::mocked!(aws_sdk_ecr, [&missing]);
                c.ecs = crate::mocked!(aws_sdk_ecs, [&run]);
            });
            let err = run_schema_task(
                &cx,
                &placement(),
                &mut DataTierReport::default(),
                &crate::engine::events::Discard,
            )
            .await
            .unwrap_err()
            .to_string();
            assert!(err.contains("poolside image push --env pilot"), "{err}");
            assert_eq!(run.num_calls(), 0);
        }
    }
}
