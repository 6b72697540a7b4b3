//! `poolside deploy`: plan, refuse what must not be applied, confirm, then
//! apply in two stages around the schema step, start the local PostgREST on
//! an emulator, and verify. Runs inside the guarded skeleton (lock, history)
//! of `guarded.rs`; it makes AWS calls only through the session and the
//! engine.

use super::guarded;
use super::Session;
use super::{exit, RunOptions};
use crate::config::Config;
use crate::database;
use crate::engine::apply::apply_after;
use crate::engine::events::now_ms;
use crate::engine::plan::{Action, Plan};
use crate::engine::timeline::StepTime;
use crate::local_plane;
use crate::model::{Kind, ResourceId};
use crate::output::{self, Format, Progress};
use crate::resources::{ecs, Waits};
use crate::state::RememberedDomain;
use crate::verify;
use anyhow::{bail, Context as _};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// What `poolside deploy` was asked to do.
#[derive(Debug)]
pub struct DeployOptions {
    pub env: String,
    /// Apply without asking for confirmation.
    pub yes: bool,
    /// Ids of resources holding data this plan may delete or replace.
    pub allow_replace: Vec<String>,
    /// How long to wait for another command's lock on the environment.
    pub lock_timeout: Duration,
    /// A plan saved by `poolside plan --out`, applied only if still current.
    pub plan: Option<std::path::PathBuf>,
    /// Reboot the database for parameters waiting for one, outside its
    /// maintenance window too.
    pub reboot_now: bool,
    /// Make the database's major upgrade the plan holds.
    pub allow_major_upgrade: bool,
}

pub async fn deploy(
    run: &RunOptions,
    config: Config,
    options: &DeployOptions,
) -> anyhow::Result<ExitCode> {
    super::session::refuse_unsafe_migrations()?;
    let session = Session::open(config).await?;
    guarded::run(&session, "deploy", options.lock_timeout, async |guard| {
        deploy_locked(run, &session, guard, options).await
    })
    .await
}

pub(super) async fn deploy_locked(
    run: &RunOptions,
    session: &Session,
    guard: &guarded::Guarded,
    options: &DeployOptions,
) -> anyhow::Result<ExitCode> {
    let started = std::time::SystemTime::now();
    let plan = session.plan().await?;
    // After discovery: it finds the instance the database side reads.
    let database = crate::drift::database_plan(&session.cx, &session.config).await;
    let plan = plan.with_database(database);
    guard.note_plan(&plan);
    output::print_plan(&plan, run.output, run.compact);
    if let Err(err) = refusal(session, options, &plan).await {
        run.print_stats(session);
        return Err(err);
    }
    // A saved plan was reviewed when it was made, as Terraform's is.
    if plan.changes_anything() && !options.yes && options.plan.is_none() {
        confirm(&options.env)?;
    }
    let (configured, remembered) = remember_new_domain(session, guard, &options.env).await?;
    // The schema step runs between the resources the API service needs and
    // the service itself: its tasks log in as `authenticator`, which the
    // migrations create and the schema step gives its password.
    let (before_schema, after_schema) = plan.split_at(&ResourceId::new(Kind::Service, "api"));
    let progress = Progress::new(run.output);
    let stage = Stage {
        run,
        guard,
        session,
        env: &options.env,
        progress: &progress,
        reboot_now: options.reboot_now,
    };
    let waits = Waits::new(&progress);
    if plan.major_upgrade().is_some() {
        pause_jobs_for_upgrade(session, &waits, run.output).await?;
    }
    stage.apply(&before_schema, &after_schema, &[]).await?;
    stop_if_interrupted("the schema step and the service")?;
    let schema_step = match schema_step(&stage, &before_schema, &after_schema, &waits).await {
        Ok(step) => step,
        Err(err) => {
            run.print_stats(session);
            return Err(err);
        }
    };
    stop_if_interrupted("the service")?;
    stage
        .apply(&after_schema, &Plan::default(), &[schema_step])
        .await?;
    if run.output == Format::Human && !plan.is_empty() {
        let s = &plan.summary;
        println!(
            "Apply complete: {} created, {} updated, {} replaced, {} deleted.",
            s.create, s.update, s.replace, s.delete
        );
    }
    if !plan.is_empty() {
        progress.print_critical_path();
    }
    let current: Vec<_> = configured.into_iter().collect();
    if remembered.iter().any(|d| !current.contains(d)) {
        // What was made in domains the file no longer names went with this apply.
        crate::state::remember_domains(guard.store(), &options.env, &current).await?;
    }
    stop_if_interrupted("verification")?;
    if let Err(err) = serve(session, options, (&plan, started), &waits, run.output).await {
        run.print_stats(session);
        return Err(err);
    }
    verify_and_report(run, session, options, &waits).await
}

/// poolside's pg_cron jobs paused before a major upgrade, so that none runs
/// between the upgrade and the schema step that updates pg_cron and the
/// statistics; the schema step resumes them. With `schema_runner =
/// "ecs-task"` a run of the live schema task pauses them.
async fn pause_jobs_for_upgrade(
    session: &Session,
    waits: &Waits<'_>,
    format: Format,
) -> anyhow::Result<()> {
    let (cx, config) = (&session.cx, &session.config);
    let paused = database::pause_jobs_for_upgrade(cx, config, &session.desired, waits).await?;
    if paused.is_empty() {
        return Ok(());
    }
    let instance = ResourceId::new(Kind::DbInstance, "main");
    session.cx.record_attribute(
        &instance,
        database::JOBS_PAUSED_FOR_UPGRADE,
        &paused.join(","),
    );
    match format {
        Format::Json => output::json_line(
            "jobs_paused_for_upgrade",
            serde_json::json!({ "jobs": paused }),
        ),
        Format::Human => eprintln!(
            "Paused pg_cron jobs {} for the major upgrade; the schema step resumes them.",
            paused.join(", ")
        ),
    }
    Ok(())
}

/// Why the plan must not be applied, if it must not: a saved plan that no
/// longer matches, duplicates, data it would lose, a contracting migration
/// ahead of its release. Nothing has been changed when it says so.
async fn refusal(session: &Session, options: &DeployOptions, plan: &Plan) -> anyhow::Result<()> {
    if let Some(path) = &options.plan {
        check_saved_plan(path, &options.env, plan)?;
    }
    if !plan.duplicates.is_empty() {
        let named: Vec<String> = plan
            .duplicates
            .iter()
            .map(|d| format!("{} ({})", d.id, d.physical_ids.join(", ")))
            .collect();
        bail!(
            "deploy of `{}` refused: more than one live resource claims {}. poolside does not guess which one is real, and deletes none on a guess. Leave out each copy you do not want with `poolside forget --env {} --id <id> --aws-id <copy>` (it keeps the copy, untagged; delete it by hand if you like), then run deploy again. Nothing was changed",
            options.env,
            named.join("; "),
            options.env
        );
    }
    if !plan.refused.is_empty() {
        let why: Vec<&str> = plan.refused.iter().map(|r| r.why.as_str()).collect();
        bail!(
            "deploy of `{}` refused: {}. Nothing was changed",
            options.env,
            why.join("; ")
        );
    }
    if !plan.customer_network.is_empty() {
        let named: Vec<String> = plan
            .customer_network
            .iter()
            .map(|p| format!("{}: {}", p.resource, p.problem))
            .collect();
        bail!(
            "deploy of `{}` refused: the customer's network is not ready for the environment, and poolside changes nothing of it. Correct the ids in the file, or have the network's owner fix:\n  {}\nNothing was changed",
            options.env,
            named.join("\n  ")
        );
    }
    let unallowed: Vec<String> = plan
        .data_losses()
        .into_iter()
        .map(|id| id.0.clone())
        .filter(|id| !options.allow_replace.contains(id))
        .collect();
    if !unallowed.is_empty() {
        let flags: Vec<String> = unallowed
            .iter()
            .map(|id| format!("--allow-replace {id}"))
            .collect();
        bail!(
            "deploy of `{}` refused: the plan deletes or replaces {}, which hold{} data (a replace deletes the old one; the instance leaves a final snapshot). Nothing was changed. If that is what you mean, run deploy again with {}",
            options.env,
            unallowed.join(", "),
            if unallowed.len() == 1 { "s" } else { "" },
            flags.join(" ")
        );
    }

    if let Some((from, to)) = plan
        .major_upgrade()
        .filter(|_| !options.allow_major_upgrade)
    {
        bail!(
            "deploy of `{}` refused: the plan upgrades PostgreSQL from {from} to {to}, a major upgrade: minutes of downtime, and it cannot be undone (only a snapshot taken before brings the old version back). Nothing was changed. If that is what you mean, run deploy again with --allow-major-upgrade",
            options.env
        );
    }
    if let Some(refusal) = contract_refusal(session).await {
        bail!(
            "deploy of `{}` refused: {refusal}. Nothing was changed",
            options.env
        );
    }

    Ok(())
}

/// Remembers a new domain before anything is made in it, so that a file
/// that later drops it still leads plan and destroy to what is there:
/// (the configured domain, the domains remembered before this run).
async fn remember_new_domain(
    session: &Session,
    guard: &guarded::Guarded,
    env: &str,
) -> anyhow::Result<(Option<RememberedDomain>, Vec<RememberedDomain>)> {
    let configured = session.configured_domain();
    let remembered = session.remembered_domains().await?;
    if let Some(domain) = configured.as_ref().filter(|d| !remembered.contains(d)) {
        let mut domains = remembered.clone();
        domains.push(domain.clone());
        crate::state::remember_domains(guard.store(), env, &domains).await?;
    }
    Ok((configured, remembered))
}

/// The schema step, reported and put on the timeline (on AWS it can be the
/// long pole); returns its step id for what waits on it.
async fn schema_step(
    stage: &Stage<'_>,
    before_schema: &Plan,
    after_schema: &Plan,
    waits: &Waits<'_>,
) -> anyhow::Result<ResourceId> {
    let (run, session, progress) = (stage.run, stage.session, stage.progress);
    let schema_started_ms = now_ms();
    let reboot = (session.desired.as_slice(), stage.reboot_now);
    let data_tier = database::converge(&session.cx, &session.config, reboot, waits)
        .await
        .with_context(|| {
            let held_back = if after_schema.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} held back until it succeeds: {})",
                    after_schema.changes.len(),
                    after_schema
                        .changes
                        .iter()
                        .map(|c| c.id.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            format!("deploy of `{}`: the AWS resources the database needs are in place, but the schema step failed{held_back}; fix the cause and run deploy again", stage.env)
        })?;
    output::print_data_tier(&data_tier, run.output);
    let schema_step = ResourceId("database/schema".into());
    progress.timeline.record(StepTime {
        id: schema_step.clone(),
        after: before_schema.changes.iter().map(|c| c.id.clone()).collect(),
        started_ms: schema_started_ms,
        finished_ms: now_ms(),
    });
    Ok(schema_step)
}

/// Follows the service's deployment that nothing followed yet (a new
/// service's first, or one an earlier run left unfinished; an update
/// follows its own), and starts the local PostgREST on an emulator.
async fn serve(
    session: &Session,
    options: &DeployOptions,
    (plan, started): (&Plan, std::time::SystemTime),
    waits: &Waits<'_>,
    format: Format,
) -> anyhow::Result<()> {
    let service = ResourceId::new(Kind::Service, "api");
    if let Some(desired) = session.desired.iter().find(|d| d.id == service) {
        let cx = &session.cx;
        let followed = match plan.changes.iter().find(|c| c.id == service) {
            None => ecs::follow_unfinished(cx, &desired.spec, waits).await,
            Some(c) if matches!(c.action, Action::Create | Action::Replace) => {
                ecs::follow_created(cx, &desired.spec, started, waits).await
            }
            Some(_) => Ok(()),
        };
        followed.map_err(|err| err.context(format!("deploy of `{}`", options.env)))?;
    }
    if session.config.endpoint_url.is_some() {
        let local = local_plane::ensure_running(&session.cx, &session.config)
            .await
            .with_context(|| format!("deploy of `{}`: the local PostgREST (standing in for the ECS tasks) did not start", options.env))?;
        output::print_local_api(&local, format);
    }
    Ok(())
}

/// Verification, the outputs, and the run's result.
async fn verify_and_report(
    run: &RunOptions,
    session: &Session,
    options: &DeployOptions,
    waits: &Waits<'_>,
) -> anyhow::Result<ExitCode> {
    let api_url = session
        .api_url()
        .context("the load balancer's DNS name is unknown")?;
    let verification = verify::verify(
        &session.cx,
        &session.config,
        &api_url,
        session.verify_through().as_deref(),
        waits,
    )
    .await;
    output::print_verification(&verification, run.output);
    output::print_outputs(&session.outputs(), run.output);
    run.print_stats(session);
    let failed = verification.failed();
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|c| c.name).collect();
        bail!(
            "deploy of `{}` is in place but its verification failed ({}): see the checks above",
            options.env,
            names.join(", ")
        );
    }
    Ok(ExitCode::from(exit::OK))
}

/// Expand, then contract (README): migrations run before the service rolls,
/// so a contracting one applied in a deploy that also moves the service to
/// a new image takes away what the release still serving may use. `None`
/// when nothing runs yet, the image stays, or the database is not reachable
/// from here (the ecs-task runner: then the rule is not checked).
async fn contract_refusal(session: &Session) -> Option<String> {
    let cx = &session.cx;
    let task_definition = ResourceId::new(Kind::TaskDefinition, "api");
    let running = cx.attribute(&task_definition, "image")?;
    let desired = session.desired.iter().find(|d| d.id == task_definition)?;
    let crate::resources::spec::Spec::TaskDefinition(wanted) =
        cx.fill_references(&desired.spec).ok()?
    else {
        return None;
    };
    if running == wanted.container.image {
        return None;
    }
    let contracting = database::pending_contracts(cx, &session.config).await;
    contract_rule(&running, &wanted.container.image, &contracting)
}

fn contract_rule(running: &str, wanted: &str, contracting: &[String]) -> Option<String> {
    if running == wanted || contracting.is_empty() {
        return None;
    }
    Some(format!(
        "{} {} marked `{}` and would be applied while {running} still serves traffic, before the service moves to {wanted}: it removes what that release may still use. Deploy the new image first with a poolside build that does not ship {}, then this build",
        contracting.join(", "),
        if contracting.len() == 1 { "is" } else { "are" },
        database::migrations::CONTRACT_MARKER,
        if contracting.len() == 1 { "it" } else { "them" },
    ))
}

/// A saved plan applies only to what it was made from: the same discovery
/// (fingerprint) and the same changes (the same file and sql/).
fn check_saved_plan(path: &std::path::Path, env: &str, now: &Plan) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the saved plan {}", path.display()))?;
    let saved: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a plan saved by poolside: {e}", path.display()))?;
    if saved["environment"] != env {
        bail!(
            "{} is a plan of environment {}, not `{env}`",
            path.display(),
            saved["environment"]
        );
    }
    let current = serde_json::to_value(now)?;
    if saved["database"] != current["database"] {
        bail!(
            "refusing the saved plan {}: the database of `{env}` is not what the plan was made from (its migrations, jobs or privileges changed since, or it was not read then or now). Nothing was changed; make a new plan",
            path.display()
        );
    }
    if saved["fingerprint"] != current["fingerprint"] {
        bail!(
            "refusing the saved plan {}: environment `{env}` changed since it was made (what exists in AWS is not what the plan was made from). Nothing was changed; make a new plan",
            path.display()
        );
    }
    if saved["changes"] != current["changes"] {
        bail!(
            "refusing the saved plan {}: today's plan of `{env}` differs from it (the environment file or this poolside changed since). Nothing was changed; make a new plan",
            path.display()
        );
    }
    Ok(())
}

/// Between the phases of a deploy: after Ctrl-C, say what did not start.
fn stop_if_interrupted(not_started: &str) -> anyhow::Result<()> {
    if crate::interrupt::requested() {
        eprintln!("Interrupted before {not_started}. Run deploy again to finish: every step is idempotent.");
        return Err(crate::interrupt::Interrupted.into());
    }
    Ok(())
}

/// What applying one stage of a plan needs, to report a stage that failed.
struct Stage<'a> {
    run: &'a RunOptions,
    guard: &'a guarded::Guarded,
    session: &'a Session,
    env: &'a str,
    progress: &'a Progress,
    reboot_now: bool,
}

impl Stage<'_> {
    /// Applies `changes`; if they do not all succeed, reports the run and
    /// fails naming what failed, was skipped, and is held back with it.
    async fn apply(
        &self,
        changes: &Plan,
        held_back: &Plan,
        done: &[ResourceId],
    ) -> anyhow::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let report = apply_after(&self.session.cx, changes, self.progress, done).await;
        self.guard.note_done(&report.changed());
        if report.is_success() {
            return Ok(());
        }
        self.run.print_stats(self.session);
        if self.run.output == Format::Json {
            output::json_line("apply_report", &report);
        }
        if crate::interrupt::requested() {
            eprintln!(
                "Interrupted: {} done, {} made and left to AWS (their waits abandoned), {} not finished, {} not started. Run deploy again to finish: every step is idempotent, and it adopts what was made.",
                report.succeeded.len(),
                report.left_to_aws.len(),
                report.failed.len(),
                report.skipped.len() + held_back.changes.len()
            );
            return Err(crate::interrupt::Interrupted.into());
        }
        let not_started = match held_back.changes.len() {
            0 => String::new(),
            n => format!(", {n} not started (they wait for the schema step)"),
        };
        // The failures themselves, so the error (and history) says what went wrong.
        let failures: Vec<String> = report
            .failed
            .iter()
            .map(|(id, error)| format!("{id}: {error}"))
            .collect();
        bail!(
            "deploy of `{}` incomplete: {} failed ({}), {} skipped{not_started}, {} done. Fix the cause and run deploy again: it picks up where this run stopped.",
            self.env,
            report.failed.len(),
            failures.join("; "),
            report.skipped.len(),
            report.succeeded.len()
        );
    }
}

fn confirm(env: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to ask for confirmation: standard input is not a terminal. Re-run with --yes to apply without asking.");
    }
    eprint!("\nApply these changes to environment `{env}`? Only 'yes' is accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        return Err(guarded::Cancelled("deploy cancelled: nothing was changed".into()).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::contract_rule;

    #[test]
    fn a_contracting_migration_waits_until_the_new_image_runs() {
        let contract = ["sql/migrations/0007_drop_column.sql".to_string()];
        let refusal = contract_rule("repo:v1-rds-ca", "repo:v2-rds-ca", &contract).unwrap();
        assert!(refusal.contains("0007_drop_column.sql"), "{refusal}");
        assert!(
            refusal.contains("repo:v1-rds-ca still serves traffic"),
            "{refusal}"
        );
        // The image already runs, or nothing contracts: no refusal.
        assert_eq!(
            contract_rule("repo:v2-rds-ca", "repo:v2-rds-ca", &contract),
            None
        );
        assert_eq!(contract_rule("repo:v1-rds-ca", "repo:v2-rds-ca", &[]), None);
    }
}
