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
//! environments instead (`release.rs`). Not done yet (issue "Phased
//! rollout"): canary traffic and rollback on alarms during the shift.

use super::globals::{exit, Globals};
use super::{deploy, guarded};
use crate::config::{self, Phase};
use crate::database;
use crate::drift;
use crate::ops::Session;
use crate::output::{self, Format};
use crate::resources::AwsResultExt as _;
use crate::state;
use crate::verify::{self, Check, Outcome, Verification};
use anyhow::{anyhow, bail, Context as _};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["env", "from"])))]
pub struct Args {
    /// The environment to grow to its next phase (its name, or its file in --environments-dir).
    #[arg(long, conflicts_with = "from", value_parser = super::globals::environment_name)]
    pub env: Option<String>,
    /// The environment whose release (image and schema) to promote to `--to`.
    #[arg(long, value_parser = super::globals::environment_name)]
    pub from: Option<String>,
    /// With --env: the next phase, limited (after pilot) or full (after
    /// limited). With --from: the environment that gets the release.
    #[arg(long, value_parser = super::globals::environment_name)]
    pub to: String,
    /// Check the gates and show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// How long the environment must have run its current release, without
    /// an alarm, before it grows (e.g. 24h, 30m, 10s).
    #[arg(long, default_value = "24h", value_parser = guarded::parse_timeout)]
    pub bake: Duration,
    /// How long to wait for another command's lock on the environment.
    #[arg(long, default_value = "0s", value_parser = guarded::parse_timeout)]
    pub lock_timeout: Duration,
}

impl Args {
    /// The environment a phase promotion grows (`--env`).
    fn env_name(&self) -> &str {
        self.env.as_deref().unwrap_or_default()
    }
}

/// A phase promotion (`--env`); `cli/mod.rs` sends `--from` to
/// `release::exec`.
pub async fn exec(globals: &Globals, args: Args, started: Instant) -> anyhow::Result<ExitCode> {
    let env = args.env_name().to_string();
    let target = match args.to.as_str() {
        "limited" => Phase::Limited,
        "full" => Phase::Full,
        other => bail!(
            "--to {other:?}: with --env, --to is the next phase (limited or full); to promote a release to environment {other:?}, name its source with --from"
        ),
    };
    let current = globals.load(&env)?;
    let next = match current.phase {
        Phase::Pilot => Phase::Limited,
        Phase::Limited => Phase::Full,
        Phase::Full => bail!(
            "`{}` is already in phase full: there is no next phase",
            args.env_name()
        ),
    };
    if target != next {
        bail!(
            "`{}` is in phase {}: promotion goes one phase at a time, to {} next",
            args.env_name(),
            phase_name(current.phase),
            phase_name(next)
        );
    }
    let path = globals
        .environments_dir
        .join(format!("{}.toml", args.env_name()));
    let promoted_text = with_phase(&path, target)?;
    // The file as it will be, checked before anything else happens.
    let promoted = config::parse(
        &path.display().to_string(),
        args.env_name(),
        promoted_text.clone(),
    )
    .map_err(|invalid| anyhow!(config::ConfigError::Invalid(invalid)))
    .with_context(|| {
        format!(
            "`{}` in phase {} would not be valid",
            args.env_name(),
            args.to
        )
    })?;

    let session = Session::open(current).await?;
    let guard = guarded::begin(&session, "promote", args.lock_timeout).await?;
    let outcome = promote_locked(
        globals,
        &session,
        &guard,
        &args,
        promoted,
        &path,
        &promoted_text,
        started,
    )
    .await;
    guard.finish(&session, &outcome).await;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn promote_locked(
    globals: &Globals,
    session: &Session,
    guard: &guarded::Guarded,
    args: &Args,
    promoted: config::Config,
    path: &std::path::Path,
    promoted_text: &str,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let gates = gates(session, args.env_name(), args.bake, &promoted).await?;
    print_gates(&gates, globals.output);
    let failed: Vec<&str> = gates.failed().iter().map(|c| c.name).collect();
    if !failed.is_empty() {
        globals.print_stats(session, started);
        bail!(
            "promotion of `{}` to {} refused: gates failed ({}); nothing was changed",
            args.env_name(),
            args.to,
            failed.join(", ")
        );
    }
    let next = Session::open(promoted).await?;
    let plan = next.plan().await?;
    let database = crate::drift::database_plan(&next.cx, &next.config).await;
    let plan = plan.with_database(database);
    guard.note_plan(&plan);
    if args.dry_run {
        guard.note_dry_run();
        output::print_plan(&plan, globals.output, globals.compact);
        globals.print_stats(session, started);
        eprintln!("Dry run: the gates pass; nothing was changed.");
        return Ok(ExitCode::from(exit::OK));
    }
    // The file first: it is the source of truth, and a deploy interrupted
    // after this point is finished by the next `poolside deploy`.
    let original = std::fs::read_to_string(path)?;
    std::fs::write(path, promoted_text)
        .with_context(|| format!("writing phase {} into {}", args.to, path.display()))?;
    let deploy_args = deploy::Args {
        env: args.env_name().to_string(),
        yes: args.yes,
        allow_replace: vec![],
        lock_timeout: args.lock_timeout,
        plan: None,
    };
    let deployed = deploy::deploy_locked(globals, &next, guard, &deploy_args, started).await;
    if deployed.is_err() && next.cx.clients.stats.snapshot().mutating_calls == 0 {
        // Refused or cancelled before any change: the file goes back too.
        std::fs::write(path, original)?;
    } else if deployed.is_err() {
        eprintln!(
            "{} now says phase = \"{}\"; run `poolside deploy --env {}` to finish the promotion.",
            path.display(),
            args.to,
            args.env_name()
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

    let plan = session.plan().await?;
    let mut findings = drift::from_plan(&plan);
    let database_note = match database::inspect(cx, &session.config).await {
        Ok(inspection) => {
            findings.extend(drift::from_database(&inspection));
            String::new()
        }
        Err(why) => format!(" (database side not checked: {why})"),
    };
    checks.push(Check {
        name: "drift",
        outcome: if findings.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        detail: if findings.is_empty() {
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
    });

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
