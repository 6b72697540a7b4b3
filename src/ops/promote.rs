//! `poolside promote --env NAME --to limited|full`: grows an environment to
//! its next phase, only when it is healthy, with the lock held.
//!
//! 1. Gates, each reported with its evidence: no drift (AWS and database),
//!    no alarm in ALARM now, none during the bake period (alarm history), the
//!    API answers, the environment has run its current release for the bake
//!    time (from the history), and for `full` an alarm action is configured.
//! 2. The plan of the phase change, as `plan` prints it; the data guard of
//!    deploy applies (a phase change that would replace the database is refused).
//! 3. The environment file's `phase` is rewritten in place (toml_edit keeps
//!    its comments and layout), so the file stays the source of truth, and the
//!    deploy of the new phase runs; the history records a `promote`.
//!
//! `poolside promote --from SRC --to DST` promotes a release between
//! environments instead (`release.rs`).

use super::Session;
use super::{deploy, guarded};
use super::{exit, RunOptions};
use crate::config::{self, Config, Phase};
use crate::database;
use crate::drift;
use crate::output::{self, Format};
use crate::resources::AwsResultExt as _;
use crate::state;
use crate::verify::{self, Check, Outcome, Verification};
use anyhow::{anyhow, bail, Context as _};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What `poolside promote` was asked to do, for a phase or a release.
#[derive(Debug)]
pub struct PromoteOptions {
    /// The next phase (`limited`, `full`), or the environment that gets a release.
    pub to: String,
    /// Check the gates and show the plan; change nothing.
    pub dry_run: bool,
    /// Apply without asking for confirmation.
    pub yes: bool,
    /// How long the source must have run its release without an alarm.
    pub bake: Duration,
    /// How long to wait for another command's lock on the environment.
    pub lock_timeout: Duration,
}

impl PromoteOptions {
    /// The deploy a promotion ends with, into environment `env`.
    pub(super) fn deploy_into(&self, env: &str) -> deploy::DeployOptions {
        deploy::DeployOptions {
            env: env.to_string(),
            yes: self.yes,
            allow_replace: vec![],
            lock_timeout: self.lock_timeout,
            plan: None,
            // A promotion reboots the database only inside its window.
            reboot_now: false,
            // A major upgrade is a deploy of its own, never part of a promotion.
            allow_major_upgrade: false,
        }
    }
}

/// Grows environment `env`, whose file is `current`, to phase `target`:
/// the next one, once its gates pass.
pub async fn promote_phase(
    run: &RunOptions,
    env: &str,
    current: Config,
    target: Phase,
    options: &PromoteOptions,
) -> anyhow::Result<ExitCode> {
    super::session::refuse_unsafe_migrations()?;
    let next = match current.phase {
        Phase::Pilot => Phase::Limited,
        Phase::Limited => Phase::Full,
        Phase::Full => bail!("`{env}` is already in phase full: there is no next phase"),
    };
    if target != next {
        bail!(
            "`{env}` is in phase {}: promotion goes one phase at a time, to {} next",
            phase_name(current.phase),
            phase_name(next)
        );
    }
    let path = run.environment_file(env);
    let promoted_text = with_phase(&path, target)?;
    // The file as it will be, checked before anything else happens.
    let promoted = config::parse(&path.display().to_string(), env, promoted_text.clone())
        .map_err(|invalid| anyhow!(config::ConfigError::Invalid(invalid)))
        .with_context(|| format!("`{env}` in phase {} would not be valid", options.to))?;
    let session = Session::open(current).await?;
    let promotion = Promotion {
        env,
        promoted,
        path: &path,
        promoted_text: &promoted_text,
    };
    guarded::run(&session, "promote", options.lock_timeout, async |guard| {
        promote_locked(run, &session, guard, options, promotion).await
    })
    .await
}

/// The environment a phase promotion grows, and its file as it will be.
struct Promotion<'a> {
    env: &'a str,
    promoted: Config,
    path: &'a std::path::Path,
    promoted_text: &'a str,
}

async fn promote_locked(
    run: &RunOptions,
    session: &Session,
    guard: &guarded::Guarded,
    options: &PromoteOptions,
    promotion: Promotion<'_>,
) -> anyhow::Result<ExitCode> {
    let Promotion {
        env,
        promoted,
        path,
        promoted_text,
    } = promotion;
    if options.dry_run {
        // Recorded as a look, whether or not its gates pass.
        guard.note_dry_run();
    }
    let gates = gates(session, env, options.bake, &promoted).await?;
    print_gates(&gates, run.output);
    let failed: Vec<&str> = gates.failed().iter().map(|c| c.name).collect();
    if !failed.is_empty() {
        run.print_stats(session);
        bail!(
            "promotion of `{}` to {} refused: gates failed ({}); nothing was changed",
            env,
            options.to,
            failed.join(", ")
        );
    }
    let next = Session::open(promoted).await?;
    let plan = next.plan().await?;
    let database = crate::drift::database_plan(&next.cx, &next.config).await;
    let plan = plan.with_database(database);
    guard.note_plan(&plan);
    if options.dry_run {
        output::print_plan(&plan, run.output, run.compact);
        run.print_stats(session);
        eprintln!("Dry run: the gates pass; nothing was changed.");
        return Ok(ExitCode::from(exit::OK));
    }
    // The file first: it is the source of truth, and a deploy interrupted
    // after this point is finished by the next `poolside deploy`.
    let original = std::fs::read_to_string(path)?;
    std::fs::write(path, promoted_text)
        .with_context(|| format!("writing phase {} into {}", options.to, path.display()))?;
    let deployed = deploy::deploy_locked(run, &next, guard, &options.deploy_into(env)).await;
    if deployed.is_err() && next.cx.clients.stats.snapshot().mutating_calls == 0 {
        // Refused or cancelled before any change: the file goes back too.
        std::fs::write(path, original)?;
    } else if deployed.is_err() {
        eprintln!(
            "{} now says phase = \"{}\"; run `poolside deploy --env {}` to finish the promotion.",
            path.display(),
            options.to,
            env
        );
    }
    deployed
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Pilot => "pilot",
        Phase::Limited => "limited",
        Phase::Full => "full",
    }
}

/// The file's text with `phase` set, everything else (comments, layout) kept.
fn with_phase(path: &std::path::Path, phase: Phase) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not TOML", path.display()))?;
    let Some(item) = document.get_mut("phase") else {
        bail!("{} has no top-level `phase` key to promote", path.display());
    };
    let decor = item.as_value().map(|v| v.decor().clone());
    let mut value = toml_edit::Value::from(phase_name(phase));
    if let Some(decor) = decor {
        *value.decor_mut() = decor;
    }
    *item = toml_edit::Item::Value(value);
    Ok(document.to_string())
}

/// The gates an environment passes before it grows or its release moves on:
/// `env` is checked; `alerting_for` is the configuration that is to run
/// (phase full needs an alarm action).
pub(super) async fn gates(
    session: &Session,
    env: &str,
    bake_time: Duration,
    alerting_for: &config::Config,
) -> anyhow::Result<Verification> {
    let cx = &session.cx;
    let mut checks = Vec::new();

    let (drift_check, jobs_check) = drift_and_jobs(session, env).await?;
    checks.push(drift_check);
    checks.push(jobs_check);
    checks.push(verify::check_alarms(cx).await);
    checks.push(alarm_history(session, bake_time).await);

    match session.api_url() {
        Some(url) => {
            let through = session.verify_through();
            checks.push(verify::check_api(&url, through.as_deref(), 3).await)
        }
        None => checks.push(Check {
            name: "api",
            outcome: Outcome::Failed,
            detail: "the environment has no API URL: is it deployed?".into(),
        }),
    }

    checks.push(bake(session, env, bake_time).await?);

    if alerting_for.phase == Phase::Full {
        checks.push(match &alerting_for.alarms.action_arn {
            Some(arn) => Check {
                name: "alerting",
                outcome: Outcome::Passed,
                detail: format!("alarms notify {arn}"),
            },
            None => Check {
                name: "alerting",
                outcome: Outcome::Failed,
                detail: "phase full needs someone told when an alarm fires: set alarms.action_arn (an SNS topic)".into(),
            },
        });
    }
    Ok(Verification { checks })
}

/// The drift gate (AWS and database side) and the jobs gate, from one
/// plan and one look into the database.
async fn drift_and_jobs(session: &Session, env: &str) -> anyhow::Result<(Check, Check)> {
    let cx = &session.cx;
    let plan = session.plan().await?;
    let mut findings = drift::from_plan(&plan);
    let mut jobs_check = Check {
        name: "jobs",
        outcome: Outcome::Skipped,
        detail: String::new(),
    };
    let mut unreadable = None;
    let database_note = match database::inspect(cx, &session.config).await {
        Ok(inspection) => {
            findings.extend(drift::from_database(&inspection));
            jobs_check = jobs_gate(&inspection.jobs_health, inspection.cron_scheduler_running);
            String::new()
        }
        Err(why) => {
            jobs_check.detail = format!("the database side was not read: {why}");
            if why.is_failure() {
                jobs_check.outcome = Outcome::Failed;
                unreadable = Some(why.to_string());
            }
            format!(" (database side not checked: {why})")
        }
    };
    let drift_check = Check {
        name: "drift",
        outcome: if findings.is_empty() && unreadable.is_none() {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        detail: if let Some(why) = unreadable.filter(|_| findings.is_empty()) {
            format!("the database side could not be read, so it is not known to match sql/: {why}")
        } else if findings.is_empty() {
            format!("the environment matches its file and sql/{database_note}")
        } else {
            format!(
                "{}, e.g. {} {}: run `poolside drift --env {}`",
                output::count(findings.len(), "difference", "differences"),
                findings[0].resource,
                findings[0].attribute,
                env
            )
        },
    };
    Ok((drift_check, jobs_check))
}

/// Every pg_cron job of poolside's succeeded the last time it ran: a
/// release or a phase does not move on from a database whose jobs fail.
fn jobs_gate(jobs: &[database::cron::JobHealth], scheduler_running: bool) -> Check {
    let failing = !scheduler_running || jobs.iter().any(|j| j.failed());
    let mut detail = super::status::jobs_line(jobs, scheduler_running);
    if failing && scheduler_running {
        detail.push_str("; the gate clears once each failing job next succeeds");
    }
    Check {
        name: "jobs",
        outcome: if failing {
            Outcome::Failed
        } else {
            Outcome::Passed
        },
        detail,
    }
}

/// No alarm of the environment went to ALARM during the bake period.
async fn alarm_history(session: &Session, bake: Duration) -> Check {
    let cx = &session.cx;
    if cx.emulator {
        return Check {
            name: "history",
            outcome: Outcome::Skipped,
            detail: "the emulator keeps no alarm history (moto has no DescribeAlarmHistory)".into(),
        };
    }
    let since = SystemTime::now() - bake;
    let out = cx
        .clients
        .cloudwatch
        .describe_alarm_history()
        .history_item_type(aws_sdk_cloudwatch::types::HistoryItemType::StateUpdate)
        .start_date(aws_smithy_types::DateTime::from(since))
        .end_date(aws_smithy_types::DateTime::from(SystemTime::now()))
        .max_records(100)
        .send()
        .await
        .aws("DescribeAlarmHistory");
    let prefix = crate::names::alarm_prefix(&session.config);
    match out {
        Ok(out) => {
            let fired: Vec<String> = out
                .alarm_history_items()
                .iter()
                .filter(|i| i.alarm_name().is_some_and(|n| n.starts_with(&prefix)))
                .filter(|i| i.history_summary().is_some_and(|s| s.contains("to ALARM")))
                .map(|i| i.alarm_name().unwrap_or_default().to_string())
                .collect();
            if fired.is_empty() {
                Check {
                    name: "history",
                    outcome: Outcome::Passed,
                    detail: format!(
                        "no alarm went to ALARM in the last {}",
                        output::duration(bake)
                    ),
                }
            } else {
                Check {
                    name: "history",
                    outcome: Outcome::Failed,
                    detail: format!("in ALARM during the bake period: {}", fired.join(", ")),
                }
            }
        }
        Err(err) => Check {
            name: "history",
            outcome: Outcome::Failed,
            detail: format!("{err:#}"),
        },
    }
}

/// The environment has run its current release for the bake time. The
/// release (image and schema version) started serving at the end of the
/// oldest successful deploy or promotion, back from the newest, that left it
/// serving (back to a destroy at most): later runs that kept it (no-op
/// deploys, other changes) do not reset the clock; dry runs, cancelled and
/// failed runs do not count.
async fn bake(session: &Session, env: &str, bake_time: Duration) -> anyhow::Result<Check> {
    let records = match session.existing_state().await? {
        Some(store) => state::list(&store, env, 100).await?,
        None => vec![],
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Ok(match serving_since(&records) {
        None => Check {
            name: "bake",
            outcome: Outcome::Failed,
            detail: "no successful deploy is recorded in the history".into(),
        },
        Some(started) => {
            let finished = started.started_at + started.duration_ms / 1000;
            let running = Duration::from_secs(now.saturating_sub(finished));
            let human = output::duration;
            Check {
                name: "bake",
                outcome: if running >= bake_time {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                },
                detail: format!(
                    "the current release has served for {} since the {} by {} that started it; the bake time is {}",
                    human(running),
                    started.command,
                    started.who,
                    human(bake_time)
                ),
            }
        }
    })
}

/// The run (newest first in `records`) after which the current release
/// started serving.
fn serving_since(records: &[state::Record]) -> Option<&state::Record> {
    let mut finished = records.iter().filter(|r| {
        r.result == "ok" && matches!(r.command.as_str(), "deploy" | "promote" | "destroy")
    });
    let newest = finished.find(|r| r.command != "destroy")?;
    let mut since = newest;
    for record in finished {
        // A destroy ended the release's service; a deploy before it does not count.
        if record.command == "destroy" || record.release != newest.release {
            break;
        }
        since = record;
    }
    Some(since)
}

pub(super) fn print_gates(gates: &Verification, format: Format) {
    if format == Format::Json {
        output::json_line("gates", gates);
        return;
    }
    eprintln!("Gates:");
    for check in &gates.checks {
        let mark = match check.outcome {
            Outcome::Passed => "ok  ",
            Outcome::Failed => "FAIL",
            Outcome::Skipped => "skip",
        };
        eprintln!("  {mark} {:<9} {}", check.name, check.detail);
    }
}

#[cfg(test)]
mod tests {
    use super::serving_since;
    use crate::state::Record;

    fn run(command: &str, result: &str, started_at: u64, image: &str) -> Record {
        Record {
            command: command.into(),
            environment: "pilot".into(),
            who: "someone".into(),
            acting_as: None,
            host: "host".into(),
            poolside_version: "test".into(),
            started_at,
            duration_ms: 1_000,
            result: result.into(),
            error: None,
            plan: None,
            release: Some(serde_json::json!({"image": image, "schema_version": 5})),
            api_calls: 0,
            lock_id: format!("lock-{started_at}"),
            took_over_lock: None,
        }
    }

    #[test]
    fn the_bake_clock_starts_when_the_current_release_started_serving() {
        // Newest first, as the history lists them.
        let records = [
            run("deploy", "ok", 900, "postgrest:v2"),
            run("promote", "dry_run", 800, "postgrest:v2"),
            run("unlock", "ok", 780, "postgrest:v3"),
            run("deploy", "cancelled", 750, "postgrest:v3"),
            run("deploy", "ok", 700, "postgrest:v2"),
            run("destroy", "ok", 650, "postgrest:v2"),
            run("deploy", "error", 600, "postgrest:v3"),
            run("promote", "ok", 500, "postgrest:v2"),
            run("deploy", "ok", 400, "postgrest:v1"),
        ];
        assert_eq!(serving_since(&records).unwrap().started_at, 700);
        assert_eq!(serving_since(&records[6..]).unwrap().started_at, 500);
        assert_eq!(serving_since(&records[8..]).unwrap().started_at, 400);
        assert!(serving_since(&records[1..4]).is_none());
    }
}
