//! The scheduled jobs: declared in `sql/jobs.toml`, reconciled into pg_cron.
//!
//! pg_cron keeps its jobs in one database (the `cron.database_name` server
//! setting); each job names the database it runs in. Poolside owns the jobs it
//! scheduled, recorded in `platform.scheduled_jobs` of the app database: it
//! creates or corrects the declared ones, unschedules the ones it owns that are
//! no longer declared, and never touches any other job.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};
use std::collections::BTreeSet;

const DECLARED: &str = include_str!("../../sql/jobs.toml");

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub name: String,
    pub schedule: String,
    pub command: String,
    /// Where it runs: the jobs of `sql/jobs.toml` in the app database.
    #[serde(skip)]
    pub runs_in: RunsIn,
}

/// The database a job runs in.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum RunsIn {
    /// The application database (`database.name`).
    #[default]
    App,
    /// The database pg_cron keeps its jobs and their history in
    /// (`cron.database_name`: the app database on RDS, not always locally).
    Scheduler,
}

/// The job of poolside's that keeps `cron.job_run_details` to
/// `database.cron_history_days` (pg_cron never deletes from it).
pub const HISTORY_JOB: &str = "purge-cron-history";

/// The jobs poolside owns: `sql/jobs.toml`'s, and the one that keeps
/// pg_cron's run history to `history_days`, daily after the default
/// backup window.
pub fn owned_jobs(history_days: u32) -> Vec<Job> {
    let mut jobs = declared();
    jobs.push(Job {
        name: HISTORY_JOB.to_string(),
        schedule: "30 4 * * *".to_string(),
        command: format!(
            "DELETE FROM cron.job_run_details WHERE end_time < now() - interval '{history_days} days'"
        ),
        runs_in: RunsIn::Scheduler,
    });
    jobs
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsFile {
    job: Vec<Job>,
}

/// The jobs this build declares. The file is embedded and checked by a unit
/// test, so a bad edit fails the build's tests, not a deploy.
pub fn declared() -> Vec<Job> {
    toml::from_str::<JobsFile>(DECLARED)
        .expect("sql/jobs.toml is valid (checked by tests)")
        .job
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    Scheduled,
    Corrected,
    Unscheduled,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobChange {
    pub name: String,
    pub action: JobAction,
}

/// A job as pg_cron has it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveJob {
    #[serde(skip)]
    id: i64,
    pub name: String,
    pub schedule: String,
    pub command: String,
    pub database: String,
    pub active: bool,
}

/// What pg_cron has: the jobs of the connected user, and the names poolside
/// owns (recorded in `platform.scheduled_jobs` of the app database).
pub struct Live {
    /// The database pg_cron keeps its jobs in.
    pub cron_database: String,
    pub jobs: Vec<LiveJob>,
    pub owned: BTreeSet<String>,
    /// How poolside's jobs last ran (`cron.job_run_details`).
    pub health: Vec<JobHealth>,
    /// pg_cron's launcher runs: without it no job runs at all (it stops when
    /// the database named by `cron.database_name` is dropped).
    pub scheduler_running: bool,
}

/// How one of poolside's jobs has been running, from pg_cron's own record
/// of its runs (`cron.job_run_details`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobHealth {
    pub name: String,
    /// When it runs (cron syntax, GMT): when a failed job next gets a chance.
    pub schedule: String,
    /// pg_cron's status of the newest run (`succeeded`, `failed`,
    /// `running`, ...); `None` when it never ran.
    pub last_status: Option<String>,
    /// When that run started (UTC).
    pub last_started: Option<String>,
    /// What it returned (the error, for a failed run), cut to 200 characters.
    pub last_message: Option<String>,
    /// Failed runs in the last 24 hours.
    pub failed_last_day: i64,
    /// pg_cron schedules it (`false`: paused, by a deploy cut off mid-way
    /// or by hand).
    pub active: bool,
    /// The newest run ran a command the job no longer has: a deploy has
    /// corrected the job since, so its failure says nothing of the job now.
    pub last_run_superseded: bool,
}

impl JobHealth {
    /// Its newest run, of the command it has now, failed.
    pub fn failed(&self) -> bool {
        self.last_status.as_deref() == Some("failed") && !self.last_run_superseded
    }
}

/// The newest run and the day's failures of each job of the connected user.
const HEALTH: &str = "SELECT j.jobname, j.schedule, j.active,
        last.status AS last_status,
        coalesce(last.command <> j.command, false) AS last_run_superseded,
        to_char(last.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS last_started,
        left(regexp_replace(last.return_message, '\\s*\\n\\s*', ' / ', 'g'), 200) AS last_message,
        (SELECT count(*) FROM cron.job_run_details f
          WHERE f.jobid = j.jobid AND f.status = 'failed'
            AND f.start_time > now() - interval '24 hours') AS failed_last_day
   FROM cron.job j
   LEFT JOIN LATERAL (SELECT status, start_time, return_message, command FROM cron.job_run_details r
                       WHERE r.jobid = j.jobid ORDER BY r.start_time DESC NULLS LAST LIMIT 1) last ON true
  WHERE j.username = current_user AND j.jobname IS NOT NULL
  ORDER BY j.jobname";

pub async fn read(cron: &mut PgConnection, app: &mut PgConnection) -> Result<Live, sqlx::Error> {
    let jobs: Vec<LiveJob> = sqlx::query(
        "SELECT jobid, jobname, schedule, command, database, active
         FROM cron.job WHERE username = current_user AND jobname IS NOT NULL",
    )
    .fetch_all(&mut *cron)
    .await?
    .into_iter()
    .map(|row| LiveJob {
        id: row.get("jobid"),
        name: row.get("jobname"),
        schedule: row.get("schedule"),
        command: row.get("command"),
        database: row.get("database"),
        active: row.get("active"),
    })
    .collect();
    let owned: BTreeSet<String> = sqlx::query_scalar("SELECT name FROM platform.scheduled_jobs")
        .fetch_all(&mut *app)
        .await?
        .into_iter()
        .collect();
    let health = sqlx::query(HEALTH)
        .fetch_all(&mut *cron)
        .await?
        .into_iter()
        .map(|row| JobHealth {
            name: row.get("jobname"),
            schedule: row.get("schedule"),
            last_status: row.get("last_status"),
            last_started: row.get("last_started"),
            last_message: row.get("last_message"),
            failed_last_day: row.get("failed_last_day"),
            active: row.get("active"),
            last_run_superseded: row.get("last_run_superseded"),
        })
        .filter(|h| owned.contains(&h.name))
        .collect();
    let scheduler_running: bool = sqlx::query_scalar(LAUNCHER_RUNNING)
        .fetch_one(&mut *cron)
        .await?;
    let cron_database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *cron)
        .await?;
    Ok(Live {
        cron_database,
        jobs,
        owned,
        health,
        scheduler_running,
    })
}

/// How long deploy waits for a job run under way to end before migrating
/// anyway (the report names it): a run is one transaction with its own
/// snapshot, and the migrations' DDL waits for the locks it holds.
pub const RUNS_UNDER_WAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Whether pg_cron's launcher runs: without it no job runs at all (it
/// stops for good when the database `cron.database_name` names is dropped).
pub const LAUNCHER_RUNNING: &str =
    "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher')";

/// Whether pg_cron's launcher runs, allowing it a few seconds: on a server
/// started before its database existed, the launcher exits and PostgreSQL
/// starts it again a moment later, so one look right after the database is
/// made can find it gone for no lasting reason.
pub async fn launcher_running(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    for _ in 0..10 {
        if sqlx::query_scalar(LAUNCHER_RUNNING)
            .fetch_one(&mut *conn)
            .await?
        {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Ok(false)
}

/// pg_cron's statuses of a run that has not ended.
const UNFINISHED: &str = "('starting', 'connecting', 'sending', 'running')";

/// Instance attribute: the jobs deploy paused before a major upgrade,
/// comma-separated, for the schema step to resume.
pub const JOBS_PAUSED_FOR_UPGRADE: &str = "jobs_paused_for_upgrade";

/// Pauses poolside's active jobs in `app_database` so that none starts while
/// migrations run (a job must not run against a half-migrated schema), and
/// returns their names for [`resume`]. A run cut off before `resume` leaves
/// them paused; the next deploy's [`reconcile`] makes them active again.
pub async fn pause_owned(
    cron: &mut PgConnection,
    app: &mut PgConnection,
    app_database: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let live = read(cron, app).await?;
    let mut paused = Vec::new();
    for job in live
        .jobs
        .iter()
        .filter(|j| j.active && live.owned.contains(&j.name) && j.database == app_database)
    {
        sqlx::query("SELECT cron.alter_job(job_id => $1, active => false)")
            .bind(job.id)
            .execute(&mut *cron)
            .await?;
        paused.push(job.name.clone());
    }
    Ok(paused)
}

/// Makes the jobs [`pause_owned`] paused active again.
pub async fn resume(cron: &mut PgConnection, names: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT cron.alter_job(job_id => jobid, active => true) FROM cron.job
          WHERE username = current_user AND jobname = ANY($1)",
    )
    .bind(names)
    .execute(&mut *cron)
    .await?;
    Ok(())
}

/// The jobs among `names` with a run that started before they were paused
/// and has not ended: pausing stops new runs, not one under way. A run
/// pg_cron still lists as unfinished but whose backend is gone (a server
/// restart) does not count.
pub async fn running(
    cron: &mut PgConnection,
    names: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT DISTINCT j.jobname FROM cron.job j JOIN cron.job_run_details r USING (jobid)
          WHERE j.username = current_user AND j.jobname = ANY($1)
            AND r.status IN {UNFINISHED}
            AND EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = r.job_pid)
          ORDER BY 1"
    ))
    .bind(names)
    .fetch_all(&mut *cron)
    .await
}

impl Live {
    /// The database `job` must run in.
    pub fn database_of<'a>(&'a self, job: &Job, app_database: &'a str) -> &'a str {
        match job.runs_in {
            RunsIn::App => app_database,
            RunsIn::Scheduler => &self.cron_database,
        }
    }
}

/// One job that differs from what is declared, and what reconciling does.
#[derive(Debug, Clone)]
pub struct Planned {
    pub name: String,
    pub action: JobAction,
    pub declared: Option<Job>,
    pub live: Option<LiveJob>,
}

/// What reconciling would change: declared jobs missing or different
/// (schedule, command, database, paused), and jobs poolside owns that are no
/// longer declared and still run in the app database. Other jobs are left alone.
pub fn plan(live: &Live, jobs: &[Job], app_database: &str) -> Vec<Planned> {
    let mut planned = Vec::new();
    for job in jobs {
        let current = live.jobs.iter().find(|l| l.name == job.name);
        let action = match current {
            None => JobAction::Scheduled,
            Some(l)
                if l.schedule != job.schedule
                    || l.command != job.command
                    || l.database != live.database_of(job, app_database)
                    || !l.active =>
            {
                JobAction::Corrected
            }
            Some(_) => continue,
        };
        planned.push(Planned {
            name: job.name.clone(),
            action,
            declared: Some(job.clone()),
            live: current.cloned(),
        });
    }
    let declared: BTreeSet<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    for name in live.owned.iter().filter(|n| !declared.contains(n.as_str())) {
        if let Some(l) = live.jobs.iter().find(|l| {
            &l.name == name && (l.database == app_database || l.database == live.cron_database)
        }) {
            planned.push(Planned {
                name: name.clone(),
                action: JobAction::Unscheduled,
                declared: None,
                live: Some(l.clone()),
            });
        }
    }
    planned
}

/// Makes pg_cron's jobs for `app_database` match `jobs`. `cron` is connected
/// to pg_cron's database, `app` to the application database (they may be one).
pub async fn reconcile(
    cron: &mut PgConnection,
    app: &mut PgConnection,
    app_database: &str,
    jobs: &[Job],
) -> Result<Vec<JobChange>, sqlx::Error> {
    let live = read(cron, app).await?;
    let planned = plan(&live, jobs, app_database);
    let mut changes = Vec::new();
    for p in &planned {
        match (&p.action, &p.declared, &p.live) {
            (JobAction::Scheduled, Some(job), _) => {
                sqlx::query("SELECT cron.schedule_in_database($1, $2, $3, $4)")
                    .bind(&job.name)
                    .bind(&job.schedule)
                    .bind(&job.command)
                    .bind(live.database_of(job, app_database))
                    .execute(&mut *cron)
                    .await?;
            }
            (JobAction::Corrected, Some(job), Some(l)) => {
                sqlx::query(
                    "SELECT cron.alter_job(job_id => $1, schedule => $2, command => $3,
                                           database => $4, active => true)",
                )
                .bind(l.id)
                .bind(&job.schedule)
                .bind(&job.command)
                .bind(live.database_of(job, app_database))
                .execute(&mut *cron)
                .await?;
            }
            (JobAction::Unscheduled, _, Some(l)) => {
                sqlx::query("SELECT cron.unschedule($1::bigint)")
                    .bind(l.id)
                    .execute(&mut *cron)
                    .await?;
            }
            _ => continue,
        }
        tracing::info!(job = %p.name, action = ?p.action, "cron job");
        changes.push(JobChange {
            name: p.name.clone(),
            action: p.action.clone(),
        });
    }
    // Ownership: every declared job is ours; no undeclared one is any more.
    for job in jobs.iter().filter(|j| !live.owned.contains(&j.name)) {
        sqlx::query(
            "INSERT INTO platform.scheduled_jobs (name) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(&job.name)
        .execute(&mut *app)
        .await?;
    }
    let declared: BTreeSet<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    for name in live.owned.iter().filter(|n| !declared.contains(n.as_str())) {
        sqlx::query("DELETE FROM platform.scheduled_jobs WHERE name = $1")
            .bind(name)
            .execute(&mut *app)
            .await?;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schedule pg_cron would refuse fails here, not at deploy time.
    #[test]
    fn every_declared_schedule_is_a_five_field_cron_expression() {
        for job in declared() {
            let fields = job.schedule.split_whitespace().count();
            assert_eq!(
                fields, 5,
                "{}: {:?} must have 5 fields (pg_cron has no seconds field)",
                job.name, job.schedule
            );
            let parsed = job.schedule.parse::<croner::Cron>();
            assert!(
                parsed.is_ok(),
                "{}: {:?} is not a cron expression: {parsed:?}",
                job.name,
                job.schedule
            );
        }
        for bad in ["0 25 * * *", "*/0 * * * *", "0 * * *", "every hour"] {
            let refused =
                bad.split_whitespace().count() != 5 || bad.parse::<croner::Cron>().is_err();
            assert!(refused, "{bad:?} should be refused");
        }
    }

    /// The retention job runs where pg_cron keeps its record, which on the
    /// local stack is not the app database; the others run in the app's.
    #[test]
    fn each_job_is_expected_in_its_own_database() {
        let jobs = owned_jobs(7);
        let live_job = |job: &Job, database: &str| LiveJob {
            id: 1,
            name: job.name.clone(),
            schedule: job.schedule.clone(),
            command: job.command.clone(),
            database: database.into(),
            active: true,
        };
        let live = |database_of_history: &str| Live {
            cron_database: "postgres".into(),
            jobs: jobs
                .iter()
                .map(|j| match j.runs_in {
                    RunsIn::App => live_job(j, "poolside"),
                    RunsIn::Scheduler => live_job(j, database_of_history),
                })
                .collect(),
            owned: jobs.iter().map(|j| j.name.clone()).collect(),
            health: vec![],
            scheduler_running: true,
        };
        assert!(plan(&live("postgres"), &jobs, "poolside").is_empty());
        let moved = plan(&live("poolside"), &jobs, "poolside");
        assert_eq!(moved.len(), 1);
        assert_eq!(
            (moved[0].name.as_str(), &moved[0].action),
            (HISTORY_JOB, &JobAction::Corrected)
        );
        // Another number of days changes the command.
        let kept_longer = plan(&live("postgres"), &owned_jobs(30), "poolside");
        assert_eq!(kept_longer.len(), 1);
        assert!(kept_longer[0]
            .declared
            .as_ref()
            .unwrap()
            .command
            .contains("'30 days'"));
    }

    #[test]
    fn the_four_jobs_are_declared_with_their_schedules() {
        let jobs = declared();
        let pairs: Vec<(&str, &str)> = jobs
            .iter()
            .map(|j| (j.name.as_str(), j.schedule.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("process-training-jobs", "0 * * * *"),
                ("generate-embeddings", "*/30 * * * *"),
                ("cleanup-metrics", "0 2 * * *"),
                ("weekly-fine-tune", "0 3 * * 0"),
            ]
        );
    }
}
