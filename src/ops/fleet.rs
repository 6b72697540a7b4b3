//! `poolside fleet status|drift|plan`: every environment file (or those
//! selected) read at once, each with its own credentials and session, each
//! read-only, one row per environment. An environment that fails shows its
//! error in its row; the others go on.
//!
//! Contract: no AWS call of its own; each environment costs what its own
//! `status` costs (status reads the plan and the drift findings too).

use super::status::{self, Status};
use super::{exit, RunOptions, Session};
use crate::config::{self, Config, ConfigError};
use crate::output::{self, Format};
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Which of the three views: they read the same, and differ in what they
/// call a change (drift's findings, or plan's changes) and what they print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    Status,
    Drift,
    Plan,
}

/// Which environments, and how many at once.
#[derive(Debug)]
pub struct FleetOptions {
    pub view: View,
    /// Shell-style patterns (`acme-*`); none selects every file.
    pub select: Vec<String>,
    pub phase: Option<config::Phase>,
    pub concurrency: usize,
}

/// One environment's row.
#[derive(Serialize)]
struct Row {
    environment: String,
    phase: Option<String>,
    region: Option<String>,
    account: Option<String>,
    /// What `status` reads, when the environment could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    /// Its release differs from the newest one running in phase full.
    skew: bool,
    error: Option<String>,
}

impl Row {
    fn new(environment: String) -> Row {
        Row {
            environment,
            phase: None,
            region: None,
            account: None,
            status: None,
            skew: false,
            error: None,
        }
    }

    fn failed(environment: String, error: String) -> Row {
        Row {
            error: Some(error),
            ..Row::new(environment)
        }
    }

    fn changes(&self, view: View) -> usize {
        match (&self.status, view) {
            (Some(s), View::Plan) => s.planned_changes,
            (Some(s), _) => s.differences,
            (None, _) => 0,
        }
    }

    fn image(&self) -> Option<&str> {
        self.status.as_ref()?.image.as_deref()
    }
}

pub async fn fleet(
    run: &RunOptions,
    options: &FleetOptions,
    loaded: Vec<(String, Result<Config, ConfigError>)>,
) -> anyhow::Result<ExitCode> {
    let chosen: Vec<(String, Result<Config, ConfigError>)> = loaded
        .into_iter()
        .filter(|(name, _)| selected(name, &options.select))
        .filter(|(_, config)| match (&options.phase, config) {
            (Some(phase), Ok(config)) => config.phase == *phase,
            _ => true,
        })
        .collect();
    if chosen.is_empty() {
        anyhow::bail!("no environment file matches the selection");
    }
    // Each environment in a task of its own: the runtime's threads share
    // the parsing, where futures polled by one task would take turns.
    let mut rows: Vec<Row> = futures::stream::iter(chosen)
        .map(|(name, config)| {
            let fallback = name.clone();
            async move {
                tokio::spawn(one(name, config))
                    .await
                    .unwrap_or_else(|panicked| Row::failed(fallback, panicked.to_string()))
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    rows.sort_by(|a, b| a.environment.cmp(&b.environment));
    let newest = mark_skew(&mut rows);
    let summary = summary(&rows, options.view, newest);
    match run.output {
        Format::Json => {
            for row in &rows {
                output::json_line("environment", row);
            }
            output::json_line("fleet", &summary);
        }
        Format::Human => print(&rows, options.view, &summary),
    }
    // An environment that could not be read fails the run (exit 1, and a
    // JSON result that says so); changes alone are exit 2.
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.environment.as_str())
        .collect();
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} environments could not be read: {} (each row says why)",
            failed.len(),
            rows.len(),
            failed.join(", ")
        );
    }
    Ok(ExitCode::from(if summary.changed == 0 {
        exit::OK
    } else {
        exit::CHANGES
    }))
}

/// One environment read as `status` reads it; its failure is its row's.
async fn one(name: String, config: Result<Config, ConfigError>) -> Row {
    let mut row = Row::new(name);
    let config = match config {
        Ok(config) => config,
        Err(err) => {
            row.error = Some(err.to_string());
            return row;
        }
    };
    row.phase = Some(format!("{:?}", config.phase).to_lowercase());
    row.region = Some(config.region.clone());
    let read = async {
        let session = Session::open(config).await?;
        let account = session.account_id().to_string();
        anyhow::Ok((account, status::read(&session).await?))
    };
    match read.await {
        Ok((account, status)) => {
            row.account = Some(account);
            // Not known to be in sync, or not deployable as its file says:
            // counted with the environments not read, as plan fails for both.
            if status.database_unreadable {
                row.error = Some(format!(
                    "its database could not be read: {}",
                    status
                        .database_unchecked
                        .as_deref()
                        .unwrap_or("no reason given")
                ));
            } else if !status.plan_refused.is_empty() {
                row.error = Some(format!(
                    "its plan refuses the file: {}",
                    status.plan_refused.join("; ")
                ));
            }
            row.status = Some(status);
        }
        Err(err) => row.error = Some(format!("{err:#}")),
    }
    row
}

/// Marks the rows whose release (the image they run) differs from the
/// newest release running in phase full: the full environment deployed
/// last. Returns that release.
fn mark_skew(rows: &mut [Row]) -> Option<String> {
    let newest = newest_full_release(rows.iter().filter_map(|r| {
        let status = r.status.as_ref()?;
        let when = status.last_run.as_ref().map_or(0, |l| l.started_at);
        Some((r.phase.as_deref()?, when, status.image.as_deref()?))
    }))?;
    for row in rows.iter_mut() {
        row.skew = row.image().is_some_and(|image| image != newest);
    }
    Some(newest)
}

/// Of (phase, last run's start, image), the image of the full environment
/// that ran last.
fn newest_full_release<'a>(
    environments: impl Iterator<Item = (&'a str, u64, &'a str)>,
) -> Option<String> {
    environments
        .filter(|(phase, _, _)| *phase == "full")
        .max_by_key(|(_, when, _)| *when)
        .map(|(_, _, image)| image.to_string())
}

#[derive(Serialize)]
struct Summary {
    environments: usize,
    errors: usize,
    /// Environments with a change (plan) or a difference (status, drift).
    changed: usize,
    skewed: usize,
    newest_full_release: Option<String>,
    /// How many environments run each release.
    releases: BTreeMap<String, usize>,
}

fn summary(rows: &[Row], view: View, newest: Option<String>) -> Summary {
    let mut releases = BTreeMap::new();
    for image in rows.iter().filter_map(Row::image) {
        *releases.entry(image.to_string()).or_insert(0) += 1;
    }
    Summary {
        environments: rows.len(),
        errors: rows.iter().filter(|r| r.error.is_some()).count(),
        changed: rows.iter().filter(|r| r.changes(view) > 0).count(),
        skewed: rows.iter().filter(|r| r.skew).count(),
        newest_full_release: newest,
        releases,
    }
}

/// `acme-*`, `*-pilot`, `a?me`: `*` any run of characters, `?` one.
fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    go(&p, &n)
}

fn selected(name: &str, patterns: &[String]) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| matches(p, name))
}

fn print(rows: &[Row], view: View, summary: &Summary) {
    let what = match view {
        View::Plan => "changes",
        _ => "drift",
    };
    println!(
        "{:<18} {:<8} {:<11} {:<58} {:<7} {:<9} {:<9} {:<8} {:<8} last run / lock",
        "environment", "phase", "region", "release", "schema", "postgres", what, "alarms", "maint."
    );
    for row in rows {
        let Some(s) = &row.status else {
            println!(
                "{:<18} {:<8} {:<11} error: {}",
                row.environment,
                row.phase.as_deref().unwrap_or("-"),
                row.region.as_deref().unwrap_or("-"),
                row.error.as_deref().unwrap_or("unknown")
            );
            continue;
        };
        let changes = row.changes(view);
        let in_alarm = s
            .alarms
            .iter()
            .filter(|(_, state)| state == "ALARM")
            .count();
        let maintenance = s
            .database_engine
            .as_ref()
            .and_then(|e| e.pending_maintenance.as_ref())
            .map_or("?".to_string(), |m| m.len().to_string());
        let last = s.last_run.as_ref().map_or("none".to_string(), |r| {
            let when = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.started_at),
            );
            format!("{} {} {} by {}", when, r.command, r.result, r.by())
        });
        let lock = s
            .lock
            .as_ref()
            .map_or(String::new(), |l| format!(" / locked by {}", l.describe()));
        println!(
            "{:<18} {:<8} {:<11} {:<58} {:<7} {:<9} {:<9} {:<8} {:<8} {last}{lock}",
            row.environment,
            row.phase.as_deref().unwrap_or("-"),
            row.region.as_deref().unwrap_or("-"),
            release_cell(s, row.skew),
            s.schema_version.map_or("-".to_string(), |v| v.to_string()),
            s.database_engine
                .as_ref()
                .and_then(|e| e.version.as_deref())
                .unwrap_or("-"),
            match (&row.error, changes) {
                (Some(_), _) => "?".to_string(),
                (None, 0) => "in sync".to_string(),
                (None, n) => n.to_string(),
            },
            in_alarm,
            maintenance,
        );
        // Read, but not wholly: its database, or a plan that refuses the file.
        if let Some(error) = &row.error {
            println!("{:<18} error: {error}", "");
        }
    }
    println!(
        "\n{}: {} with {}, {} failed to read, {} on another release than the newest in full{}",
        output::count(summary.environments, "environment", "environments"),
        summary.changed,
        what,
        summary.errors,
        summary.skewed,
        summary
            .newest_full_release
            .as_deref()
            .map_or(String::new(), |r| format!(" ({})", short_image(r)))
    );
}

/// The release column: the image, its digest, and whether it is skewed.
fn release_cell(s: &Status, skew: bool) -> String {
    format!(
        "{}{}{}",
        s.image.as_deref().map_or("-", short_image),
        s.image_digest
            .as_deref()
            .map_or(String::new(), |d| format!(" {}", status::short_digest(d))),
        if skew { " (skew)" } else { "" }
    )
}

/// The repository's last path segment and the tag (or digest).
fn short_image(image: &str) -> &str {
    image.rsplit('/').next().unwrap_or(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_patterns_match_as_a_shell_does() {
        assert!(matches("acme-*", "acme-pilot"));
        assert!(matches("*-pilot", "acme-pilot"));
        assert!(matches("a?me-*", "acme-full"));
        assert!(!matches("acme-*", "globex-pilot"));
        assert!(!matches("acme", "acme-pilot"));
        assert!(selected("anything", &[]));
        assert!(selected(
            "globex-pilot",
            &["acme-*".into(), "globex-*".into()]
        ));
    }

    #[test]
    fn the_newest_release_is_the_one_the_last_deployed_full_environment_runs() {
        let fleet = [
            ("full", 100, "repo:v12.0.1"),
            ("full", 300, "repo:v12.0.2"),
            ("limited", 400, "repo:v12.0.3"),
            ("full", 200, "repo:v12.0.1"),
        ];
        assert_eq!(
            newest_full_release(fleet.into_iter()).as_deref(),
            Some("repo:v12.0.2")
        );
        assert_eq!(
            newest_full_release(fleet.into_iter().filter(|f| f.0 != "full")),
            None
        );
    }
}
