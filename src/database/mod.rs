//! The data tier inside PostgreSQL, run by `deploy` once the RDS instance is
//! available: apply pending parameter changes (reboot), make sure the app
//! database exists, apply the migrations in `sql/migrations`, give the
//! `authenticator` role its password from Secrets Manager, and reconcile the
//! pg_cron jobs in `sql/jobs.toml`.
//!
//! Credentials come from Secrets Manager on every run and are never logged:
//! the master login from the secret RDS manages, the authenticator's from ours.

pub mod cron;
pub mod extensions;
pub mod in_vpc;
pub mod index_builds;
pub mod lint;
pub mod migrations;
mod password;
pub mod privileges;
mod report;
mod schema_script;
mod server;
mod task_log;
mod tunnel;

use crate::config::{Config, SchemaRunner};
use crate::model::{Kind, ResourceId};
use crate::names::AUTHENTICATOR_SECRET;
use crate::resources::spec::Desired;
use crate::resources::{rds, secrets, Context, Waits};
use anyhow::{anyhow, bail, Context as _};
pub use report::DataTierReport;
use serde::Serialize;
pub use server::Login;
pub use server::RDS_CA_BUNDLE;
use server::{Patience, Server, Unreached};
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};

async fn read_login(cx: &Context, arn: &str, what: &str) -> anyhow::Result<Login> {
    let text = secrets::read_value(cx, arn).await?;
    serde_json::from_str(&text).map_err(|_| {
        anyhow!("the {what} secret {arn} does not hold a JSON login with username and password")
    })
}

/// The master login RDS keeps for the instance, when the instance exists.
pub async fn master_login(cx: &Context) -> anyhow::Result<Option<Login>> {
    let instance = ResourceId::new(Kind::DbInstance, "main");
    match cx.attribute(&instance, "master_secret_arn") {
        Some(arn) => Ok(Some(read_login(cx, &arn, "RDS master").await?)),
        None => Ok(None),
    }
}

/// Brings the inside of the database to what this build ships, from this
/// machine or from a task inside the VPC (`database.schema_runner`).
pub async fn converge(
    cx: &Context,
    config: &Config,
    (desired, reboot_now): (&[Desired], bool),
    waits: &Waits<'_>,
) -> anyhow::Result<DataTierReport> {
    let started = Instant::now();
    let instance = ResourceId::new(Kind::DbInstance, "main");
    let identifier = cx.physical_id(&instance).ok_or_else(|| {
        anyhow!("{instance} does not exist: the data tier needs the RDS instance")
    })?;
    let mut report = DataTierReport {
        database: config.database.name.clone(),
        ..DataTierReport::default()
    };
    let policy = rds::RebootPolicy {
        now: reboot_now,
        window: config.database.maintenance_window.clone(),
        at: std::time::SystemTime::now(),
    };
    match rds::reboot_if_parameters_pending(cx, &instance, &identifier, &policy, waits).await? {
        rds::Reboot::Done => report.rebooted_for_parameters = true,
        rds::Reboot::Deferred => report.reboot_deferred_to_window = Some(policy.window),
        rds::Reboot::NotNeeded => {}
    }
    if config.database.schema_runner == SchemaRunner::EcsTask {
        let shipped = migrations::shipped();
        report.migrations_total = shipped.len();
        report.jobs_total = cron::owned_jobs(config.database.cron_history_days).len();
        report.cron_database = config.database.name.clone();
        let placement = in_vpc::Placement::from_blueprint(cx, desired)?;
        in_vpc::run(cx, &placement, &shipped, waits, &mut report).await?;
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let (server, master) = server_and_master(cx, config, &instance).await?;
    report.endpoint = server.describe();
    let app_database = config.database.name.as_str();
    if cx.emulator {
        let mut admin = server.connect(&master, "postgres").await?;
        crate::local_plane::claim_server(&mut admin, &cx.environment, &report.endpoint).await?;
        let _ = admin.close().await;
    }

    report.database_created = ensure_database(&server, &master, app_database).await?;

    let mut app = server.connect(&master, app_database).await?;
    // On error `app` is dropped on return, which releases the migration lock.
    let reach = (&server, &master, (cx, waits));
    let database = (app_database, config.database.instance_class.as_str());
    migrate(reach, &mut app, database, &mut report).await?;

    report.extensions_updated = update_extensions(&mut app).await?;
    report.analyzed_after_upgrade = analyze_after_upgrade(cx, &mut app).await?;
    report.privileges_restored = keep_privileges(&mut app, &report).await?;
    if !report.migrations_applied.is_empty() || !report.privileges_restored.is_empty() {
        sqlx::query("NOTIFY pgrst, 'reload schema'")
            .execute(&mut app)
            .await?;
        report.schema_reloaded = true;
    }

    let authenticator = authenticator_login(cx).await?;
    report.authenticator_password_set =
        ensure_password(&server, &mut app, &authenticator, app_database).await?;
    let paused = cx.attribute(&instance, JOBS_PAUSED_FOR_UPGRADE);
    let jobs = (config.database.cron_history_days, paused);
    reconcile_jobs(
        &server,
        &master,
        (&mut app, app_database),
        jobs,
        &mut report,
    )
    .await?;
    let _ = app.close().await;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The login `authenticator` must have, from its secret.
async fn authenticator_login(cx: &Context) -> anyhow::Result<Login> {
    let id = ResourceId::new(Kind::Secret, AUTHENTICATOR_SECRET);
    let arn = cx
        .attribute(&id, "arn")
        .or_else(|| cx.physical_id(&id))
        .ok_or_else(|| anyhow!("the authenticator secret does not exist"))?;
    read_login(cx, &arn, "authenticator").await
}

/// Applies the migrations this build ships that the database lacks, with
/// poolside's pg_cron jobs paused while any is pending.
async fn migrate(
    (server, master, (cx, waits)): (&Server, &Login, (&Context, &Waits<'_>)),
    app: &mut PgConnection,
    (app_database, instance_class): (&str, &str),
    report: &mut DataTierReport,
) -> anyhow::Result<()> {
    let shipped = migrations::shipped();
    report.migrations_total = shipped.len();
    let pending = migrations::status(app, &shipped).await?.pending;
    if pending.is_empty() {
        return migrate_with_jobs_paused(app, None, app_database, &shipped, report).await;
    }
    if !migrations::contracting_pending(&pending, &shipped).is_empty() {
        report.snapshot_before_migrations = snapshot_before_contract(cx, waits).await?;
    }
    if let Some(mb) = index_builds::maintenance_work_mem_mb(instance_class) {
        index_builds::set_maintenance_work_mem(app, mb).await?;
        report.maintenance_work_mem_mb = Some(mb);
    }
    let cron_conn = cron_session(server, master, app, Patience::Retry).await?;
    let watch = index_builds::Watch {
        conn: server.connect(master, app_database).await?,
        waits,
        every: index_builds::PROGRESS_EVERY,
    };
    migrate_with_jobs_paused_watched(
        app,
        cron_conn,
        (app_database, Some(watch)),
        &shipped,
        report,
    )
    .await
}

/// A manual snapshot of the instance, waited for, before migrations that
/// contract the schema (`database.snapshot_before_changes`): what they drop
/// is otherwise gone. Returns its name; none when the setting is off.
async fn snapshot_before_contract(
    cx: &Context,
    waits: &Waits<'_>,
) -> anyhow::Result<Option<String>> {
    if !cx.snapshot_before_risk {
        return Ok(None);
    }
    let instance = ResourceId::new(Kind::DbInstance, "main");
    let identifier = cx
        .physical_id(&instance)
        .ok_or_else(|| anyhow!("{instance} does not exist"))?;
    let name = rds::snapshots::take_before(cx, &instance, &identifier, "contract", waits).await?;
    Ok(Some(name))
}

/// Applies `shipped` with poolside's jobs paused (through `cron_conn`, when
/// pg_cron is there), so none starts against a half-migrated schema, and
/// resumes them after, also when a migration fails.
async fn migrate_with_jobs_paused(
    app: &mut PgConnection,
    cron_conn: Option<PgConnection>,
    app_database: &str,
    shipped: &[migrations::Shipped],
    report: &mut DataTierReport,
) -> anyhow::Result<()> {
    migrate_with_jobs_paused_watched(app, cron_conn, (app_database, None), shipped, report).await
}

/// [`migrate_with_jobs_paused`], with index builds watched when `watch` is given.
async fn migrate_with_jobs_paused_watched(
    app: &mut PgConnection,
    mut cron_conn: Option<PgConnection>,
    (app_database, watch): (&str, Option<index_builds::Watch<'_>>),
    shipped: &[migrations::Shipped],
    report: &mut DataTierReport,
) -> anyhow::Result<()> {
    if let Some(conn) = cron_conn.as_mut() {
        report.jobs_paused_for_migrations = cron::pause_owned(conn, app, app_database)
            .await
            .map_err(|e| {
                anyhow!(
                    "pausing poolside's pg_cron jobs for the migrations: {}",
                    migrations::database_message(&e)
                )
            })?;
        report.jobs_running_at_migration =
            runs_under_way(conn, &report.jobs_paused_for_migrations).await?;
    }
    let migrated = index_builds::migrate_watched(app, shipped, watch).await;
    if let Some(mut conn) = cron_conn {
        let resumed = cron::resume(&mut conn, &report.jobs_paused_for_migrations).await;
        let _ = conn.close().await;
        resumed.map_err(|e| {
            anyhow!(
                "resuming poolside's pg_cron jobs after the migrations (the next deploy resumes them): {}",
                migrations::database_message(&e)
            )
        })?;
    }
    report.migrations_applied = migrated?;
    Ok(())
}

/// Waits, up to [`cron::RUNS_UNDER_WAY_TIMEOUT`], for the runs of `paused` jobs
/// that started before the pause; returns the jobs still running then.
async fn runs_under_way(
    cron_conn: &mut PgConnection,
    paused: &[String],
) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    loop {
        let running = cron::running(cron_conn, paused).await?;
        if running.is_empty() || started.elapsed() >= cron::RUNS_UNDER_WAY_TIMEOUT {
            return Ok(running);
        }
        tracing::info!(
            ?running,
            "waiting for pg_cron runs under way before migrating"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Regenerates the planner's statistics when this run upgraded the major:
/// pg_upgrade does not carry them over, and until then the planner guesses.
async fn analyze_after_upgrade(cx: &Context, app: &mut PgConnection) -> anyhow::Result<bool> {
    let instance = ResourceId::new(Kind::DbInstance, "main");
    if cx
        .attribute(&instance, rds::upgrade::MAJOR_UPGRADED)
        .as_deref()
        != Some("true")
    {
        return Ok(false);
    }
    sqlx::query("ANALYZE").execute(app).await.map_err(|e| {
        anyhow!(
            "regenerating the statistics after the upgrade (ANALYZE): {}",
            migrations::database_message(&e)
        )
    })?;
    Ok(true)
}

/// pgvector and pg_cron, where installed in the connected database,
/// brought to the version the server offers (after an engine upgrade).
async fn update_extensions(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    let updated = async {
        let outdated = extensions::outdated(&mut *conn).await?;
        extensions::update(&mut *conn, &outdated).await?;
        Ok::<_, sqlx::Error>(outdated.iter().map(ToString::to_string).collect())
    };
    updated.await.map_err(|e| {
        anyhow!(
            "updating the extensions to the server's version: {}",
            migrations::database_message(&e)
        )
    })
}

pub use cron::JOBS_PAUSED_FOR_UPGRADE;

/// Pauses poolside's pg_cron jobs before a major upgrade (see
/// [`JOBS_PAUSED_FOR_UPGRADE`]), from here or, with `schema_runner =
/// "ecs-task"`, by the schema task; none when it has no jobs yet.
pub async fn pause_jobs_for_upgrade(
    cx: &Context,
    config: &Config,
    desired: &[Desired],
    waits: &Waits<'_>,
) -> anyhow::Result<Vec<String>> {
    if config.database.schema_runner == SchemaRunner::EcsTask {
        let task = ResourceId::new(Kind::TaskDefinition, in_vpc::CONTAINER_NAME);
        if cx.physical_id(&task).is_none() {
            bail!("the major upgrade pauses poolside's pg_cron jobs first, with a run of the schema task, and {task} is not registered yet: deploy once with database.engine_version unchanged, then upgrade");
        }
        let placement = in_vpc::Placement::from_blueprint(cx, desired)?;
        return in_vpc::pause_jobs_for_upgrade(cx, &placement, &config.database.name, waits).await;
    }
    let instance = ResourceId::new(Kind::DbInstance, "main");
    let (server, master) = server_and_master(cx, config, &instance).await?;
    let app_database = config.database.name.as_str();
    let mut app = server.connect(&master, app_database).await?;
    let Some(mut cron_conn) = cron_session(&server, &master, &mut app, Patience::Retry).await?
    else {
        return Ok(vec![]);
    };
    let paused = cron::pause_owned(&mut cron_conn, &mut app, app_database).await;
    let _ = cron_conn.close().await;
    let _ = app.close().await;
    paused.map_err(|e| {
        anyhow!(
            "pausing poolside's pg_cron jobs before the major upgrade: {}",
            migrations::database_message(&e)
        )
    })
}

/// The privilege matrix: recorded as the migrations leave it, restored
/// when someone changed it by hand since; returns what was put back.
async fn keep_privileges(
    app: &mut PgConnection,
    report: &DataTierReport,
) -> anyhow::Result<Vec<String>> {
    let privileges = async {
        match privileges::recorded(&mut *app).await? {
            Some(recorded) if report.migrations_applied.is_empty() => {
                let current = privileges::current(&mut *app).await?;
                let (extra, missing) = privileges::compare(&recorded, &current);
                privileges::restore(&mut *app, &extra, &missing).await
            }
            _ => privileges::record(&mut *app).await.map(|()| vec![]),
        }
    };
    privileges.await.map_err(|e| {
        anyhow!(
            "checking the privileges of the api and platform schemas: {}",
            migrations::database_message(&e)
        )
    })
}

/// pg_cron's jobs made as `sql/jobs.toml` declares them, in the database
/// that holds pg_cron (the app database on RDS, or another one).
async fn reconcile_jobs(
    server: &Server,
    master: &Login,
    (app, app_database): (&mut PgConnection, &str),
    (history_days, paused_for_upgrade): (u32, Option<String>),
    report: &mut DataTierReport,
) -> anyhow::Result<()> {
    let cron_database: Option<String> =
        sqlx::query_scalar("SELECT current_setting('cron.database_name', true)")
            .fetch_one(&mut *app)
            .await?;
    let Some(cron_database) = cron_database.filter(|d| !d.is_empty()) else {
        if report.reboot_deferred_to_window.is_some() {
            // pg_cron loads at the reboot this deploy did not make: the jobs
            // wait for it rather than fail the deploy that chose to wait.
            report.jobs_wait_for_reboot = true;
            return Ok(());
        }
        bail!("pg_cron is not loaded on {}: shared_preload_libraries must include pg_cron (the parameter group sets it; it takes effect after a reboot)", report.endpoint);
    };
    report.cron_database = cron_database.clone();
    let jobs = cron::owned_jobs(history_days);
    report.jobs_total = jobs.len();
    // pg_cron's own database may be the app database (RDS) or another one.
    let mut cron_conn = server.connect(master, &cron_database).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_cron")
        .execute(&mut cron_conn)
        .await?;
    if cron_database != app_database {
        let updated = update_extensions(&mut cron_conn).await?;
        report.extensions_updated.extend(updated);
    }
    if let Some(paused) = paused_for_upgrade.filter(|p| !p.is_empty()) {
        let names: Vec<String> = paused.split(',').map(str::to_string).collect();
        cron::resume(&mut cron_conn, &names).await?;
        report.jobs_resumed_after_upgrade = names;
    }
    let changes = cron::reconcile(&mut cron_conn, app, app_database, &jobs).await;
    report.jobs_scheduler_running = cron::launcher_running(&mut cron_conn).await.ok();
    let _ = cron_conn.close().await;
    report.jobs_changed = changes.map_err(|e| {
        anyhow!(
            "reconciling the pg_cron jobs: {}",
            migrations::database_message(&e)
        )
    })?;
    Ok(())
}

/// What the database holds compared with this build, read-only: the
/// migrations' ledger, the pg_cron jobs, the extensions and the roles.
#[derive(Debug, Serialize)]
pub struct Inspection {
    pub database_exists: bool,
    pub migrations: migrations::Status,
    pub jobs: Vec<JobDifference>,
    pub extensions_missing: Vec<String>,
    pub roles_missing: Vec<String>,
    /// Privileges granted by hand since the migrations' matrix was recorded.
    pub privileges_extra: Vec<privileges::Grant>,
    /// Privileges revoked by hand since.
    pub privileges_missing: Vec<privileges::Grant>,
    /// How poolside's pg_cron jobs last ran.
    pub jobs_health: Vec<cron::JobHealth>,
    /// pg_cron's launcher runs (false also when pg_cron is not there).
    pub cron_scheduler_running: bool,
    /// The installed versions of pgvector (`vector`) and pg_cron.
    pub extension_versions: std::collections::BTreeMap<String, String>,
    /// Those older than the server offers: deploy updates them.
    pub extensions_outdated: Vec<extensions::Outdated>,
}

/// One job that differs from `sql/jobs.toml`, and how.
#[derive(Debug, Serialize)]
pub struct JobDifference {
    pub name: String,
    pub action: cron::JobAction,
    pub expected: Option<serde_json::Value>,
    pub actual: Option<serde_json::Value>,
}

/// Why the database side was not inspected (plan and drift say so and go on).
#[derive(Debug, thiserror::Error)]
pub enum NotInspected {
    #[error("the RDS instance does not exist yet")]
    NoInstance,
    #[error("database.schema_runner is \"ecs-task\": this machine has no way in to the database (the schema task inside the VPC runs the migrations); run from a VPN or a tunnel to compare the database")]
    NoWayIn,
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

impl NotInspected {
    /// The database should have been read and could not be: what it holds
    /// is unknown, not in order (an emulator's instance or the VPC runner
    /// are not read by design).
    pub fn is_failure(&self) -> bool {
        matches!(self, NotInspected::Failed(_))
    }
}

/// Reads what `converge` would change, without changing anything. One
/// connection attempt (10 s at most), no retries: a plan must not stall.
pub async fn inspect(cx: &Context, config: &Config) -> Result<Inspection, NotInspected> {
    if config.database.schema_runner == SchemaRunner::EcsTask {
        return Err(NotInspected::NoWayIn);
    }
    let instance = ResourceId::new(Kind::DbInstance, "main");
    if cx.physical_id(&instance).is_none() {
        return Err(NotInspected::NoInstance);
    }
    inspect_reachable(cx, config, &instance)
        .await
        .map_err(NotInspected::Failed)
}

/// The pending migrations marked as contracting (expand, then contract);
/// none when the database cannot be inspected from here (`inspect`).
pub async fn pending_contracts(cx: &Context, config: &Config) -> Vec<String> {
    match inspect(cx, config).await {
        Ok(inspection) => {
            migrations::contracting_pending(&inspection.migrations.pending, &migrations::shipped())
        }
        Err(_) => Vec::new(),
    }
}

async fn inspect_reachable(
    cx: &Context,
    config: &Config,
    instance: &ResourceId,
) -> anyhow::Result<Inspection> {
    let (server, master) = server_and_master(cx, config, instance).await?;
    let shipped = migrations::shipped();
    let declared = cron::owned_jobs(config.database.cron_history_days);
    let app_database = config.database.name.as_str();
    let unreached = |u: Unreached| {
        anyhow!(
            "cannot connect to PostgreSQL at {}: {}",
            server.describe(),
            u.cause()
        )
    };
    let mut admin = server
        .try_connect(&master, "postgres")
        .await
        .map_err(unreached)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(app_database)
            .fetch_one(&mut admin)
            .await?;
    let _ = admin.close().await;
    if !exists {
        return Ok(not_created(&shipped, &declared));
    }
    let mut app = server
        .try_connect(&master, app_database)
        .await
        .map_err(unreached)?;
    let migrations = migrations::status(&mut app, &shipped).await?;
    let extensions_missing: Vec<String> = sqlx::query_scalar(
        "SELECT e FROM unnest(ARRAY['vector', 'pg_cron']) AS e
         WHERE NOT EXISTS (SELECT FROM pg_extension WHERE extname = e)",
    )
    .fetch_all(&mut app)
    .await?;
    let extension_versions = sqlx::query_as::<_, (String, String)>(
        "SELECT extname::text, extversion FROM pg_extension WHERE extname IN ('vector', 'pg_cron')",
    )
    .fetch_all(&mut app)
    .await?
    .into_iter()
    .collect();
    let extensions_outdated = extensions::outdated(&mut app).await?;
    let roles_missing: Vec<String> = sqlx::query_scalar(
        "SELECT r FROM unnest(ARRAY['authenticator', 'web_anon', 'api_user']) AS r
         WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)",
    )
    .fetch_all(&mut app)
    .await?;
    let mut live = live_jobs(&server, &master, &mut app).await?;
    let jobs = job_differences(&live, &declared, app_database);
    let jobs_health = std::mem::take(&mut live.health);
    let cron_scheduler_running = live.scheduler_running;
    let (privileges_extra, privileges_missing) = match privileges::recorded(&mut app).await? {
        Some(recorded) => privileges::compare(&recorded, &privileges::current(&mut app).await?),
        None => (vec![], vec![]),
    };
    let _ = app.close().await;
    Ok(Inspection {
        database_exists: true,
        migrations,
        jobs,
        extensions_missing,
        roles_missing,
        privileges_extra,
        privileges_missing,
        jobs_health,
        cron_scheduler_running,
        extension_versions,
        extensions_outdated,
    })
}

/// A database not created yet: everything is to do.
fn not_created(shipped: &[migrations::Shipped], declared: &[cron::Job]) -> Inspection {
    Inspection {
        database_exists: false,
        migrations: migrations::Status {
            pending: shipped.iter().map(|s| s.file.clone()).collect(),
            ..Default::default()
        },
        jobs: declared
            .iter()
            .map(|j| JobDifference {
                name: j.name.clone(),
                action: cron::JobAction::Scheduled,
                expected: Some(serde_json::json!({"schedule": j.schedule, "command": j.command})),
                actual: None,
            })
            .collect(),
        extensions_missing: vec!["vector".into(), "pg_cron".into()],
        roles_missing: vec![],
        privileges_extra: vec![],
        privileges_missing: vec![],
        jobs_health: vec![],
        cron_scheduler_running: false,
        extension_versions: Default::default(),
        extensions_outdated: vec![],
    }
}

/// The pg_cron jobs as they are, read in the database that holds pg_cron
/// (none before pg_cron or poolside's ownership table exist).
async fn live_jobs(
    server: &Server,
    master: &Login,
    app: &mut PgConnection,
) -> anyhow::Result<cron::Live> {
    let live = match cron_session(server, master, app, Patience::Once).await? {
        Some(mut cron_conn) => {
            let live = cron::read(&mut cron_conn, app).await;
            let _ = cron_conn.close().await;
            Some(live?)
        }
        None => None,
    };
    Ok(live.unwrap_or(cron::Live {
        cron_database: String::new(),
        jobs: vec![],
        owned: Default::default(),
        health: vec![],
        scheduler_running: false,
    }))
}

/// A connection to the database that holds pg_cron's jobs, when pg_cron is
/// loaded and installed there and poolside's ownership table exists in the
/// app database; `None` otherwise (before the first deploy, say).
async fn cron_session(
    server: &Server,
    master: &Login,
    app: &mut PgConnection,
    patience: Patience,
) -> anyhow::Result<Option<PgConnection>> {
    let cron_database: Option<String> =
        sqlx::query_scalar("SELECT current_setting('cron.database_name', true)")
            .fetch_one(&mut *app)
            .await?;
    let has_ownership: bool =
        sqlx::query_scalar("SELECT to_regclass('platform.scheduled_jobs') IS NOT NULL")
            .fetch_one(&mut *app)
            .await?;
    let Some(cron_database) = cron_database.filter(|d| !d.is_empty() && has_ownership) else {
        return Ok(None);
    };
    let mut cron_conn = match patience {
        Patience::Retry => server.connect(master, &cron_database).await?,
        Patience::Once => server
            .try_connect(master, &cron_database)
            .await
            .map_err(|u| {
                anyhow!(
                    "cannot connect to PostgreSQL at {}: {}",
                    server.describe(),
                    u.cause()
                )
            })?,
    };
    let has_cron: bool = sqlx::query_scalar("SELECT to_regclass('cron.job') IS NOT NULL")
        .fetch_one(&mut cron_conn)
        .await?;
    if !has_cron {
        let _ = cron_conn.close().await;
        return Ok(None);
    }
    Ok(Some(cron_conn))
}

/// What the schema step would change of the jobs.
fn job_differences(
    live: &cron::Live,
    declared: &[cron::Job],
    app_database: &str,
) -> Vec<JobDifference> {
    cron::plan(live, declared, app_database)
        .into_iter()
        .map(|p| JobDifference {
            name: p.name,
            action: p.action,
            expected: p
                .declared
                .map(|j| serde_json::json!({"schedule": j.schedule, "command": j.command, "database": live.database_of(&j, app_database), "active": true})),
            actual: p.live.map(|l| serde_json::json!({"schedule": l.schedule, "command": l.command, "database": l.database, "active": l.active})),
        })
        .collect()
}

/// Where the instance answers, and its master login from the secret RDS manages.
async fn server_and_master(
    cx: &Context,
    config: &Config,
    instance: &ResourceId,
) -> anyhow::Result<(Server, Login)> {
    let attribute = |key: &str| {
        cx.attribute(instance, key)
            .ok_or_else(|| anyhow!("the RDS instance reports no {key}"))
    };
    let master_secret = attribute("master_secret_arn")
        .context("the master password must be managed by RDS (ManageMasterUserPassword)")?;
    let port = attribute("port")?
        .parse()
        .context("the instance reports a port that is not a number")?;
    let server = Server::new(config, attribute("address")?, port)?;
    let master = read_login(cx, &master_secret, "RDS master").await?;
    Ok((server, master))
}

/// Creates the app database when the server lacks it (RDS creates it with the
/// instance; a stand-in server may not have it yet). Returns whether it did.
async fn ensure_database(server: &Server, master: &Login, name: &str) -> anyhow::Result<bool> {
    let mut conn = server.connect(master, "postgres").await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // The name was checked to be a plain lower-case identifier.
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .map_err(|e| {
                anyhow!(
                    "creating database {name}: {}",
                    migrations::database_message(&e)
                )
            })?;
    }
    let _ = conn.close().await;
    Ok(!exists)
}

/// Gives `authenticator` the password from its secret, unless it already logs
/// in with it. Returns whether it set it.
async fn ensure_password(
    server: &Server,
    app: &mut PgConnection,
    login: &Login,
    database: &str,
) -> anyhow::Result<bool> {
    if let Ok(conn) = server.try_connect(login, database).await {
        let _ = conn.close().await;
        return Ok(false);
    }
    let plain_identifier = login.username.starts_with(|c: char| c.is_ascii_lowercase())
        && login
            .username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain_identifier {
        bail!("the authenticator secret names the role {:?}, which is not a plain lower-case identifier", login.username);
    }
    let salt: [u8; 16] = rand::random();
    let verifier = password::scram_verifier(&login.password, &salt);
    // DDL takes no bind parameters; the verifier is base64, digits, '$' and ':'.
    sqlx::query(&format!(
        "ALTER ROLE \"{}\" WITH LOGIN PASSWORD '{verifier}'",
        login.username
    ))
    .execute(&mut *app)
    .await
    .map_err(|e| {
        anyhow!(
            "setting the password of role {}: {}",
            login.username,
            migrations::database_message(&e)
        )
    })?;
    Ok(true)
}
