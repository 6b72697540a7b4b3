//! `poolside destroy`: deletes everything of one environment, found by its
//! tags and names (never by a name prefix, so another environment is never
//! touched), in reverse dependency order.
//!
//! Data is kept unless the user says otherwise: a bucket or repository that
//! holds anything is refused without `--delete-data`, the instance leaves a
//! final snapshot unless `--skip-final-snapshot` (which phase `full` refuses),
//! deletion protection is honoured, and the secrets go with Secrets Manager's
//! recovery window. Every guard is checked before anything is deleted, and
//! all of their problems are reported at once.
//!
//! A destroy that stops half-way is finished by running it again: discovery
//! finds what is left. With nothing left it says so and exits 0.

use super::guarded;
use super::Session;
use super::{exit, RunOptions};
use crate::config::{Config, Phase};
use crate::database;
use crate::engine::apply::{apply, ApplyReport};
use crate::engine::plan::Plan;
use crate::local_plane;
use crate::model::{Kind, ResourceId};
use crate::output::{self, Format, Progress};
use crate::resources::spec::Spec;
use crate::resources::{registry, storage, DeletionPolicy};
use anyhow::{bail, Context as _};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// What `poolside destroy` was asked to do.
#[derive(Debug)]
pub struct DestroyOptions {
    pub env: String,
    /// Do not ask for the environment's name.
    pub yes: bool,
    /// Empty and delete a bucket or repository that holds data.
    pub delete_data: bool,
    /// Delete the instance without a final snapshot (refused in phase full).
    pub skip_final_snapshot: bool,
    /// How long to wait for another command's lock on the environment.
    pub lock_timeout: Duration,
}

/// What destroy did, for `--output json`.
#[derive(Debug, serde::Serialize)]
struct DestroyReport<'a> {
    deleted: usize,
    final_snapshot: Option<String>,
    secrets_recoverable_for_days: Option<i64>,
    local_dump: Option<&'a str>,
    local_api_stopped: Option<u32>,
}

pub async fn destroy(
    run: &RunOptions,
    config: Config,
    options: &DestroyOptions,
) -> anyhow::Result<ExitCode> {
    if options.skip_final_snapshot && config.phase == Phase::Full {
        bail!(
            "refusing --skip-final-snapshot: `{}` is in phase full, whose database is kept as a final snapshot when it is deleted",
            options.env
        );
    }
    let mut session = Session::open(config).await?;
    session.cx.deletion = DeletionPolicy {
        delete_data: options.delete_data,
        final_snapshot: !options.skip_final_snapshot,
    };
    let session = session;
    guarded::run(&session, "destroy", options.lock_timeout, async |guard| {
        destroy_locked(run, &session, guard, options).await
    })
    .await
}

async fn destroy_locked(
    run: &RunOptions,
    session: &Session,
    guard: &guarded::Guarded,
    options: &DestroyOptions,
) -> anyhow::Result<ExitCode> {
    // What the bucket and the repository hold is asked while discovery
    // reads: they are found by name, and a missing one holds nothing.
    let (plan, held) = tokio::join!(session.destroy_plan(), data_held_by_name(session, options));
    let plan = plan?;
    guard.note_plan(&plan);
    let emulator = session.config.endpoint_url.is_some();
    if plan.is_empty() {
        nothing_to_destroy(run, session, &plan, &options.env).await?;
        run.print_stats(session);
        return Ok(ExitCode::from(exit::OK));
    }
    let file = run.environment_file(&options.env);
    let problems = guards(&plan, held, &file)?;
    output::print_destroy_plan(&plan, run.output);
    if !problems.is_empty() {
        run.print_stats(session);
        bail!(
            "destroy of `{}` refused before deleting anything:\n  - {}",
            options.env,
            problems.join("\n  - ")
        );
    }
    if !options.yes {
        confirm_by_name(&options.env)?;
    }
    let local = if emulator {
        stand_in_for_snapshot(session).await?
    } else {
        LocalPlane::default()
    };
    let progress = Progress::new(run.output);
    let report = apply(&session.cx, &plan, &progress).await;
    guard.note_done(&report.changed());
    if !report.is_success() {
        run.print_stats(session);
        return Err(incomplete(run, &report, &options.env));
    }
    progress.print_critical_path();
    if !session.remembered_domains().await?.is_empty() {
        crate::state::remember_domains(guard.store(), &options.env, &[]).await?;
    }
    if let Some(login) = &local.master {
        local_plane::drop_database(&session.config, &login.username, &login.password).await?;
    }
    print_summary(run, session, &plan, &report, &local, &options.env);
    run.print_stats(session);
    Ok(ExitCode::from(exit::OK))
}

/// An empty plan: nothing of the environment exists (the local PostgREST,
/// if one still runs, is stopped).
async fn nothing_to_destroy(
    run: &RunOptions,
    session: &Session,
    plan: &Plan,
    env: &str,
) -> anyhow::Result<()> {
    let emulator = session.config.endpoint_url.is_some();
    let stopped = if emulator {
        local_plane::stop(&session.config).await?
    } else {
        None
    };
    match run.output {
        Format::Json => output::json_line("plan", plan),
        Format::Human => println!(
            "Nothing to destroy: no resource of environment `{}` exists.",
            env
        ),
    }
    if let Some(pid) = stopped {
        eprintln!("Stopped the local PostgREST (pid {pid}).");
    }
    Ok(())
}

/// What the emulator's local data plane leaves behind: the master login
/// (read before the instance, and on moto its secret, goes), whether the
/// local PostgREST was stopped, and the dump standing in for the final
/// snapshot.
#[derive(Default)]
struct LocalPlane {
    master: Option<database::Login>,
    api_stopped: Option<u32>,
    dump: Option<std::path::PathBuf>,
}

async fn stand_in_for_snapshot(session: &Session) -> anyhow::Result<LocalPlane> {
    let master = database::master_login(&session.cx).await?;
    let api_stopped = local_plane::stop(&session.config).await?;
    let dump = match &master {
        Some(login) if session.cx.deletion.final_snapshot => {
            local_plane::dump_database(&session.config, &login.username, &login.password)
                .await
                .context("dumping the local database before deleting it")?
        }
        _ => None,
    };
    Ok(LocalPlane {
        master,
        api_stopped,
        dump,
    })
}

/// The error of a destroy that did not finish (an interrupt, or failures).
fn incomplete(run: &RunOptions, report: &ApplyReport, env: &str) -> anyhow::Error {
    if run.output == Format::Json {
        output::json_line("apply_report", report);
    }
    if crate::interrupt::requested() {
        eprintln!(
            "Interrupted: {} deleted, the rest not. Run destroy again to finish.",
            report.succeeded.len()
        );
        return crate::interrupt::Interrupted.into();
    }
    anyhow::anyhow!(
        "destroy of `{env}` incomplete: {} failed, {} skipped, {} deleted. Fix the cause and run destroy again: it picks up what is left.",
        report.failed.len(),
        report.skipped.len(),
        report.succeeded.len()
    )
}

fn print_summary(
    run: &RunOptions,
    session: &Session,
    plan: &Plan,
    report: &ApplyReport,
    local: &LocalPlane,
    env: &str,
) {
    let instance = ResourceId::new(Kind::DbInstance, "main");
    let final_snapshot = session.cx.attribute(&instance, "final_snapshot");
    let has_secrets = plan
        .changes
        .iter()
        .any(|c| c.id.kind() == Some(Kind::Secret));
    let local_dump_text = local.dump.as_ref().map(|p| p.display().to_string());
    let summary = DestroyReport {
        deleted: report.succeeded.len(),
        final_snapshot,
        secrets_recoverable_for_days: has_secrets
            .then_some(crate::resources::secrets::RECOVERY_WINDOW_DAYS),
        local_dump: local_dump_text.as_deref(),
        local_api_stopped: local.api_stopped,
    };
    match run.output {
        Format::Json => output::json_line("destroy", &summary),
        Format::Human => {
            println!(
                "Destroy complete: {} deleted from environment `{}`.",
                summary.deleted, env
            );
            if let Some(snapshot) = &summary.final_snapshot {
                println!("Final snapshot of the database: {snapshot} (restore it with RestoreDBInstanceFromDBSnapshot).");
            }
            if let Some(days) = summary.secrets_recoverable_for_days {
                println!(
                    "The secrets can be restored for {days} days (Secrets Manager RestoreSecret)."
                );
            }
            if let Some(dump) = &summary.local_dump {
                println!("Local database dumped to {dump} (pg_restore reads it).");
            }
        }
    }
}

/// Every reason not to start, each saying what to pass or change. `held`
/// says what the bucket and the repository hold ([`data_held_by_name`]);
/// it matters for those the plan deletes.
fn guards(
    plan: &Plan,
    mut held: Vec<(ResourceId, anyhow::Result<Option<String>>)>,
    file: &std::path::Path,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for change in &plan.changes {
        let Some(live) = &change.live else { continue };
        if let Spec::DbInstance(db) = &live.spec {
            if db.deletion_protection {
                problems.push(format!(
                    "RDS instance {} has deletion protection on: set database.deletion_protection = false in {} and run deploy, then destroy",
                    db.identifier,
                    file.display()
                ));
            }
        }
        if let Some(at) = held.iter().position(|(id, _)| *id == change.id) {
            problems.extend(held.swap_remove(at).1?);
        }
    }
    Ok(problems)
}

/// What the blueprint's bucket and repository hold, unless --delete-data
/// deletes it with them.
async fn data_held_by_name(
    session: &Session,
    options: &DestroyOptions,
) -> Vec<(ResourceId, anyhow::Result<Option<String>>)> {
    if options.delete_data {
        return Vec::new();
    }
    let holders = session
        .desired
        .iter()
        .filter(|d| matches!(d.spec, Spec::Bucket(_) | Spec::Repository(_)))
        .map(|d| async { (d.id.clone(), data_held(&session.cx, &d.spec).await) });
    futures::future::join_all(holders).await
}

/// What a bucket or repository holds that destroy would delete with it,
/// said as the reason to pass --delete-data; `None` when empty.
async fn data_held(cx: &crate::resources::Context, spec: &Spec) -> anyhow::Result<Option<String>> {
    let (name, held, what, one, many, why) = match spec {
        Spec::Bucket(bucket) => (
            &bucket.name,
            storage::count_versions(cx, &bucket.name, 10).await?,
            "bucket",
            "object version or delete marker",
            "object versions or delete markers",
            "model artifacts",
        ),
        Spec::Repository(repository) => (
            &repository.name,
            registry::count_images(cx, &repository.name, 10).await?,
            "repository",
            "image",
            "images",
            "releases",
        ),
        _ => return Ok(None),
    };
    if held == 0 {
        return Ok(None);
    }
    let count = if held >= 10 {
        "10 or more".to_string()
    } else {
        held.to_string()
    };
    Ok(Some(format!(
        "{what} {name} holds {} ({why}): pass --delete-data to delete them with it",
        crate::output::count(count, one, many)
    )))
}

/// Asks for the environment's name, as a deliberate act; never without a terminal.
fn confirm_by_name(env: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to ask for confirmation: standard input is not a terminal. Re-run with --yes to destroy without asking.");
    }
    eprint!("\nThis deletes environment `{env}` and cannot be undone. Type its name to confirm: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != env {
        return Err(guarded::Cancelled("destroy cancelled: nothing was deleted".into()).into());
    }
    Ok(())
}
