//! `poolside status`: what an environment is and runs now, read-only: phase,
//! outputs, the release (image and schema version), the service's tasks and
//! last deployment, alarm states, the database's engine and the maintenance
//! RDS has pending for it, the last run from the history, the lock.

use super::{exit, RunOptions, Session};
use crate::config::Config;
use crate::database::cron::JobHealth;
use crate::model::{Kind, ResourceId};
use crate::output::{self, Format};
use crate::resources::rds::{self, maintenance, maintenance::Maintenance};
use crate::resources::Context;
use crate::state;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
pub(super) struct Status {
    pub(super) environment: String,
    pub(super) phase: String,
    /// No finding of `drift`: AWS side, unmanaged resources, database;
    /// `None` (null) when nothing differs but the database could not be read.
    pub(super) in_sync: Option<bool>,
    /// How many findings `drift` reports.
    pub(super) differences: usize,
    /// Why the database is not in `in_sync`, when it could not be read.
    pub(super) database_unchecked: Option<String>,
    /// It should have been read and could not be: `in_sync` is then
    /// unknown (null) unless something else differs.
    pub(super) database_unreadable: bool,
    /// What the plan refuses of the file (plan and deploy fail on it).
    pub(super) plan_refused: Vec<String>,
    /// On an emulator, no task runs: the local PostgREST stands in.
    pub(super) emulator: bool,
    pub(super) api_url: Option<String>,
    pub(super) database_endpoint: Option<String>,
    pub(super) bucket: Option<String>,
    pub(super) repository_uri: Option<String>,
    pub(super) image: Option<String>,
    /// The digest of that image, as ECR lists it: what a tag pointed at
    /// when read (`None` when ECR does not list the image).
    pub(super) image_digest: Option<String>,
    pub(super) schema_version: Option<i64>,
    pub(super) tasks_running: Option<i32>,
    pub(super) tasks_desired: Option<i32>,
    pub(super) last_deployment: Option<String>,
    /// The production rule's weights (`targetgroup/<name>/<id>=<weight>`):
    /// mid-shift, how much traffic each release gets.
    pub(super) traffic: Option<String>,
    pub(super) alarms: Vec<(String, String)>,
    /// The database as RDS runs it and what it will do to it by itself.
    pub(super) database_engine: Option<DatabaseEngine>,
    /// How poolside's pg_cron jobs last ran; `None` when the database side
    /// was not read (`database_unchecked` says why).
    pub(super) jobs: Option<Vec<JobHealth>>,
    /// pg_cron's launcher runs; without it no job runs.
    pub(super) jobs_scheduler_running: Option<bool>,
    /// pgvector's (`vector`) and pg_cron's installed versions.
    pub(super) extensions: Option<std::collections::BTreeMap<String, String>>,
    /// The changes `plan` would show: the AWS side's and the database's.
    pub(super) planned_changes: usize,
    pub(super) last_run: Option<state::Record>,
    pub(super) lock: Option<state::LockInfo>,
}

#[derive(Serialize)]
pub(super) struct DatabaseEngine {
    /// The version RDS runs, minor included (RDS upgrades minors by itself:
    /// a newer one than the file's is not a difference).
    pub(super) version: Option<String>,
    /// The parameter group has changes that take effect at the next reboot
    /// (`pending-reboot`): `deploy --reboot-now`, or a deploy inside the
    /// maintenance window, reboots the instance for them.
    pub(super) parameters_pending_reboot: bool,
    /// `database.maintenance_window`, UTC.
    pub(super) maintenance_window: String,
    /// What RDS will apply by itself (DescribePendingMaintenanceActions);
    /// `None` when it could not be read (`maintenance_unchecked` says why).
    pub(super) pending_maintenance: Option<Vec<Maintenance>>,
    /// Why the pending maintenance could not be read.
    pub(super) maintenance_unchecked: Option<String>,
}

/// The digest of the image the task definition names: from the reference
/// when it is pinned by digest, from ECR (one read) when it is a tag.
async fn image_digest(cx: &Context, image: Option<&str>) -> Option<String> {
    let image = image?;
    if let Some((_, digest)) = image.split_once('@') {
        return Some(digest.to_string());
    }
    match crate::resources::registry::image_digest(cx, image).await {
        Ok(digest) => digest,
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "reading the image's digest");
            None
        }
    }
}

/// `sha256:` and the first 12 hex digits, as `docker images` shows them.
pub(super) fn short_digest(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

/// The instance's engine as discovery found it, and its pending maintenance
/// (one more read, which needs the instance's ARN). `None` without an instance.
async fn database_engine(cx: &Context, window: &str) -> Option<DatabaseEngine> {
    let id = ResourceId::new(Kind::DbInstance, "main");
    let arn = cx.attribute(&id, "arn")?;
    let (pending_maintenance, maintenance_unchecked) = match maintenance::pending(cx, &arn).await {
        Ok(found) => (Some(found), None),
        Err(_) if cx.emulator => (
            None,
            Some("the emulator does not list pending maintenance".to_string()),
        ),
        Err(err) => (None, Some(format!("{err:#}"))),
    };
    Some(DatabaseEngine {
        version: cx.attribute(&id, rds::RUNNING_ENGINE_VERSION),
        parameters_pending_reboot: cx.attribute(&id, rds::PARAMETERS_PENDING_REBOOT).as_deref()
            == Some("true"),
        maintenance_window: window.to_string(),
        pending_maintenance,
        maintenance_unchecked,
    })
}

/// Reads what environment `config` is and runs now; changes nothing.
pub async fn status(run: &RunOptions, config: Config) -> anyhow::Result<ExitCode> {
    let session = Session::open(config).await?;
    let status = read(&session).await?;
    match run.output {
        Format::Json => output::json_line("status", &status),
        Format::Human => print(&status),
    }
    run.print_stats(&session);
    Ok(ExitCode::from(exit::OK))
}

/// Everything `status` shows of the session's environment. Read-only; an
/// environment not deployed is an error.
pub(super) async fn read(session: &Session) -> anyhow::Result<Status> {
    let env = session.config.name.clone();
    // The last run and the lock are read while discovery reads.
    let state = async {
        match session.existing_state().await? {
            Some(store) => {
                let (runs, lock) = tokio::try_join!(
                    state::list(&store, &env, 1),
                    state::lock_holder(&store, &env)
                )?;
                anyhow::Ok((runs.into_iter().next(), lock))
            }
            None => Ok((None, None)),
        }
    };
    let (plan, state) = tokio::join!(session.plan(), state);
    let plan = plan?;
    let outputs = session.outputs();
    session.ensure_deployed()?;
    let cx = &session.cx;
    let config = &session.config;
    // Everything below was read once by discovery; status asks AWS only for
    // the instance's pending maintenance, alongside drift's database look.
    let service = ResourceId::new(Kind::Service, "api");
    let count = |key: &str| {
        cx.attribute(&service, key)
            .and_then(|v| v.parse::<i32>().ok())
    };
    let image = cx.attribute(&ResourceId::new(Kind::TaskDefinition, "api"), "image");
    let mut alarms = cx.attributes_of(Kind::Alarm, "state");
    alarms.sort();
    // In sync exactly when `drift` finds nothing: the same findings.
    let (drift, database_engine, image_digest) = tokio::join!(
        crate::drift::collect(cx, config, &plan),
        database_engine(cx, &config.database.maintenance_window),
        image_digest(cx, image.as_deref())
    );
    let drift = drift?;
    let inspected = drift.database.as_ref().ok();
    let schema_version = inspected.and_then(|i| i.migrations.applied_version);
    let jobs = inspected.map(|i| i.jobs_health.clone());
    let jobs_scheduler_running = inspected.map(|i| i.cron_scheduler_running);
    let extensions = inspected.map(|i| i.extension_versions.clone());
    let (last_run, lock) = state?;
    let status = Status {
        environment: env.clone(),
        phase: format!("{:?}", config.phase).to_lowercase(),
        in_sync: in_sync(&drift),
        differences: drift.findings.len(),
        database_unchecked: drift.database_unchecked().map(|why| why.to_string()),
        database_unreadable: drift.database_unreadable(),
        plan_refused: plan.refused.iter().map(|r| r.why.clone()).collect(),
        emulator: config.endpoint_url.is_some(),
        api_url: outputs.api_url.clone(),
        database_endpoint: outputs.database_endpoint.clone(),
        bucket: outputs.bucket_name.clone(),
        repository_uri: outputs.repository_uri.clone(),
        image,
        image_digest,
        schema_version,
        tasks_running: count("running"),
        tasks_desired: count("desired"),
        last_deployment: cx.attribute(&service, "rollout").filter(|r| !r.is_empty()),
        traffic: cx
            .attribute(&ResourceId::new(Kind::ListenerRule, "api"), "weights")
            .filter(|w| !w.is_empty()),
        alarms,
        database_engine,
        jobs,
        jobs_scheduler_running,
        planned_changes: plan.changes.len()
            + inspected.map_or(0, |i| crate::drift::from_database(i).len()),
        extensions,
        last_run,
        lock,
    };
    Ok(status)
}

/// `drift` finds nothing: yes; it finds something: no; it finds nothing
/// but could not read the database: unknown.
fn in_sync(drift: &crate::drift::Drift) -> Option<bool> {
    match (drift.findings.is_empty(), drift.database_unreadable()) {
        (false, _) => Some(false),
        (true, true) => None,
        (true, false) => Some(true),
    }
}

/// Whether the environment is as its file says, and what keeps it from being known.
fn print_sync(s: &Status) {
    println!(
        "  in sync:        {}",
        match (s.in_sync, s.differences) {
            (Some(true), _) => "yes".to_string(),
            (None, _) =>
                "unknown: nothing differs on the AWS side, and the database could not be read"
                    .to_string(),
            (Some(false), 1) => "no, 1 difference (poolside drift lists it)".to_string(),
            (Some(false), n) => format!("no, {n} differences (poolside drift lists them)"),
        }
    );
    for why in &s.plan_refused {
        println!("  refused:        {why} (plan and deploy fail on it)");
    }
    if let Some(why) = &s.database_unchecked {
        println!("  (the database side was not checked: {why})");
    }
}

fn print(s: &Status) {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("Environment `{}` (phase {})", s.environment, s.phase);
    print_sync(s);
    println!("  api_url:        {}", or_dash(&s.api_url));
    println!("  database:       {}", or_dash(&s.database_endpoint));
    println!("  bucket:         {}", or_dash(&s.bucket));
    println!("  repository:     {}", or_dash(&s.repository_uri));
    let digest = s.image_digest.as_deref().map(short_digest);
    let digest = digest.map_or(String::new(), |d| format!(" ({d})"));
    println!("  image:          {}{digest}", or_dash(&s.image));
    println!(
        "  schema version: {}",
        s.schema_version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unknown (database not reachable from here)".into())
    );
    match (s.tasks_running, s.tasks_desired) {
        (Some(running), Some(desired)) => println!(
            "  tasks:          {running} running of {desired} desired, last deployment {}{}",
            or_dash(&s.last_deployment),
            if s.emulator {
                " (the emulator runs no task: the local PostgREST stands in for them)"
            } else {
                ""
            }
        ),
        _ => println!("  tasks:          no service"),
    }
    if let Some(traffic) = &s.traffic {
        println!("  traffic:        {traffic}");
    }
    let in_alarm: Vec<&str> = s
        .alarms
        .iter()
        .filter(|(_, state)| state == "ALARM")
        .map(|(n, _)| n.as_str())
        .collect();
    println!(
        "  alarms:         {} ({} in ALARM{})",
        s.alarms.len(),
        in_alarm.len(),
        if in_alarm.is_empty() {
            String::new()
        } else {
            format!(": {}", in_alarm.join(", "))
        }
    );
    print_database(s);
    match &s.last_run {
        Some(r) => println!(
            "  last run:       {} {} at {} by {} ({:.1}s)",
            r.command,
            r.result,
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.started_at)
            ),
            r.by(),
            r.duration_ms as f64 / 1000.0
        ),
        None => println!("  last run:       none recorded"),
    }
    match &s.lock {
        Some(lock) => println!("  lock:           held by {}", lock.describe()),
        None => println!("  lock:           free"),
    }
}

/// The database's engine, its maintenance, and its jobs.
fn print_database(s: &Status) {
    if let Some(engine) = &s.database_engine {
        print_engine(engine);
    }
    if let Some(extensions) = s.extensions.as_ref().filter(|e| !e.is_empty()) {
        let listed: Vec<String> = extensions
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect();
        println!("  extensions:     {}", listed.join(", "));
    }
    if let Some(jobs) = &s.jobs {
        let running = s.jobs_scheduler_running.unwrap_or(false);
        println!("  jobs:           {}", jobs_line(jobs, running));
    }
}

fn print_engine(engine: &DatabaseEngine) {
    println!(
        "  postgres:       {}{}",
        engine.version.as_deref().unwrap_or("-"),
        if engine.parameters_pending_reboot {
            format!(", parameters wait for a reboot (deploy --reboot-now, or a deploy inside the maintenance window {} UTC)", engine.maintenance_window)
        } else {
            format!(", maintenance window {} UTC", engine.maintenance_window)
        }
    );
    match (
        &engine.maintenance_unchecked,
        engine.pending_maintenance.as_deref(),
    ) {
        (Some(why), _) => println!("  maintenance:    unknown ({why})"),
        (None, None | Some([])) => println!("  maintenance:    none pending"),
        (None, Some(actions)) => {
            for (n, action) in actions.iter().enumerate() {
                let label = if n == 0 { "maintenance:" } else { "" };
                println!("  {label:<15} {action}");
            }
        }
    }
}

/// poolside's pg_cron jobs in one line: how many, and the failing ones.
pub(super) fn jobs_line(jobs: &[JobHealth], scheduler_running: bool) -> String {
    if !scheduler_running {
        return format!(
            "{} scheduled, but pg_cron's scheduler is not running: none of them runs (it stops when the database cron.database_name names is dropped; restart PostgreSQL, or reboot the instance)",
            jobs.len()
        );
    }
    let failing: Vec<String> = jobs
        .iter()
        .filter(|j| j.failed())
        .map(|j| {
            format!(
                "{} failed at {} ({}); it runs next on \"{}\" (GMT)",
                j.name,
                j.last_started.as_deref().unwrap_or("?"),
                j.last_message.as_deref().unwrap_or("no message"),
                j.schedule
            )
        })
        .collect();
    let ran = jobs.iter().filter(|j| j.last_status.is_some()).count();
    let not_yet = jobs.len() - ran;
    let paused: Vec<&str> = jobs
        .iter()
        .filter(|j| !j.active)
        .map(|j| j.name.as_str())
        .collect();
    let mut line = jobs_runs_line(jobs, &failing, ran);
    if ran > 0 && not_yet > 0 {
        line.push_str(&format!("; {not_yet} not run yet"));
    }
    let superseded: Vec<&str> = jobs
        .iter()
        .filter(|j| j.last_run_superseded && j.last_status.as_deref() == Some("failed"))
        .map(|j| j.name.as_str())
        .collect();
    if !superseded.is_empty() {
        line.push_str(&format!(
            "; {} last failed running a command a deploy has corrected since (not counted)",
            superseded.join(", ")
        ));
    }
    match paused.as_slice() {
        [] => line,
        paused => format!(
            "{line}; paused: {} (a deploy resumes {})",
            paused.join(", "),
            if paused.len() == 1 { "it" } else { "them" }
        ),
    }
}

/// How the jobs' last runs went, in a line.
fn jobs_runs_line(jobs: &[JobHealth], failing: &[String], ran: usize) -> String {
    match (failing, ran) {
        ([], 0) => format!("{} scheduled, none has run yet", jobs.len()),
        ([], _) => format!(
            "{} scheduled, each last run of those that ran succeeded or is running",
            jobs.len()
        ),
        (failing, _) => format!(
            "{} scheduled, {} failing: {}",
            jobs.len(),
            failing.len(),
            failing.join("; ")
        ),
    }
}
