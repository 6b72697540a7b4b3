//! What poolside prints: the plan, progress, outputs and stats, for people
//! (human) or for CI (one JSON object per line on stdout).

use crate::database::cron::JobAction;
use crate::database::DataTierReport;
use crate::engine::events::{Event, EventSink};
use crate::engine::plan::{Action, Plan};
use crate::engine::timeline::{StepTime, Timeline};
use crate::model::ResourceId;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// Prints one JSON line on stdout: `{"type": kind, ...fields}`.
pub fn json_line(kind: &str, fields: impl serde::Serialize) {
    let mut value = serde_json::to_value(fields).expect("output serializes");
    if let Value::Object(map) = &mut value {
        map.insert("type".into(), Value::String(kind.into()));
    } else {
        value = json!({ "type": kind, "value": value });
    }
    println!("{value}");
}

/// Terraform's colours: create green, update yellow, replace and delete red.
fn action_style(action: Action) -> anstyle::Style {
    let colour = match action {
        Action::Create => anstyle::AnsiColor::Green,
        Action::Update => anstyle::AnsiColor::Yellow,
        Action::Replace | Action::Delete => anstyle::AnsiColor::Red,
    };
    anstyle::Style::new().fg_color(Some(colour.into())).bold()
}

/// `--color`: `auto` colours a terminal unless NO_COLOR is set; `always`
/// and `never` say what they mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Sets the choice for everything printed through `anstream`, and says
    /// whether logs on stderr get colour.
    pub fn apply(self) -> bool {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let choice = match self {
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
            ColorWhen::Auto if no_color => anstream::ColorChoice::Never,
            ColorWhen::Auto => anstream::ColorChoice::Auto,
        };
        choice.write_global();
        match choice {
            anstream::ColorChoice::Always | anstream::ColorChoice::AlwaysAnsi => true,
            anstream::ColorChoice::Never => false,
            anstream::ColorChoice::Auto => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

/// `compact`: creates as one line each, without their properties.
pub fn print_plan(plan: &Plan, format: Format, compact: bool) {
    if format == Format::Json {
        let mut value = serde_json::to_value(plan).expect("a plan serializes");
        value["data_losses"] = serde_json::json!(plan.data_losses());
        json_line("plan", &value);
        return;
    }
    // Diagnostics go to stderr, so stdout stays the plan alone.
    for warning in &plan.warnings {
        eprintln!("warning: {warning}");
    }
    for duplicate in &plan.duplicates {
        let loud = anstyle::AnsiColor::Red.on_default().bold();
        anstream::eprintln!(
            "{loud}duplicate:{loud:#} {} live resources claim {}: {}. poolside will not guess which is real; deploy refuses until one remains: `poolside forget --env {} --id {} --aws-id <the copy to leave out>` (README: \"Duplicates\")",
            duplicate.physical_ids.len(),
            duplicate.id,
            duplicate.physical_ids.join(", "),
            plan.environment,
            duplicate.id,
        );
    }
    for problem in &plan.customer_network {
        let loud = anstyle::AnsiColor::Red.on_default().bold();
        anstream::eprintln!(
            "{loud}customer network:{loud:#} {}: {}",
            problem.resource,
            problem.problem
        );
    }
    for refused in &plan.refused {
        let loud = anstyle::AnsiColor::Red.on_default().bold();
        anstream::eprintln!("{loud}refused:{loud:#} {}", refused.why);
    }
    if let Some(why) = plan.database.as_ref().and_then(|d| d.why_not.as_ref()) {
        eprintln!("note: the database side was not planned: {why}");
    }
    if !plan.changes_anything() && !plan.customer_network.is_empty() {
        println!(
            "No changes to make, but the customer's network is not ready for environment `{}`: {} above. Deploy refuses until it is fixed.",
            plan.environment,
            count(plan.customer_network.len(), "problem", "problems")
        );
        return;
    }
    if !plan.changes_anything() {
        match plan.database.as_ref() {
            Some(d) if !d.checked => println!(
                "No changes to the AWS resources of environment `{}`; its database was not planned (note above).",
                plan.environment
            ),
            Some(_) => println!(
                "No changes. Environment `{}` matches its file and sql/.",
                plan.environment
            ),
            None => println!(
                "No changes. Environment `{}` matches its file.",
                plan.environment
            ),
        }
        return;
    }
    println!("Environment `{}` needs these changes:\n", plan.environment);
    print_changes(plan, compact);
    print_database_changes(plan);
    print_summary(plan);
}

/// The schema step's part of a plan, in the plan's format.
fn print_database_changes(plan: &Plan) {
    let Some(database) = plan.database.as_ref().filter(|d| !d.changes.is_empty()) else {
        return;
    };
    let gap = if plan.changes.is_empty() { "" } else { "\n" };
    println!("{gap}  In the database (deploy applies the migrations, corrects the jobs and restores privileges; it refuses unknown or edited migrations):");
    for f in &database.changes {
        let show = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!(
            "    {} {}: {} -> {}",
            f.resource,
            f.attribute,
            show(&f.actual),
            show(&f.expected)
        );
    }
}

fn print_summary(plan: &Plan) {
    let s = &plan.summary;
    let database = match &plan.database {
        Some(d) if d.checked => format!("; {} in the database", s.database),
        Some(_) => "; the database not planned".to_string(),
        None => String::new(),
    };
    println!(
        "\nPlan: {} to create, {} to update, {} to replace, {} to delete{database}.",
        s.create, s.update, s.replace, s.delete
    );
}

/// What `destroy` will delete, in the plan's format (every line a `-`).
pub fn print_destroy_plan(plan: &Plan, format: Format) {
    if format == Format::Json {
        json_line("plan", plan);
        return;
    }
    println!(
        "Destroying environment `{}` deletes these resources:\n",
        plan.environment
    );
    print_changes(plan, false);
    print_summary(plan);
}

/// Whose advice a change that deletes data gets: deploy's data guard, or
/// none in a destroy (which asked for its own consent).
fn data_advice(plan: &Plan, change: &crate::engine::plan::Change) -> String {
    if plan.changes.iter().all(|c| c.action == Action::Delete) && plan.database.is_none() {
        "! deletes the data it holds".to_string()
    } else {
        format!(
            "! deletes the data it holds: deploy needs --allow-replace {}",
            change.id
        )
    }
}

fn print_changes(plan: &Plan, creates_alone: bool) {
    for change in &plan.changes {
        let reason = if change.action == Action::Replace {
            let forced: BTreeSet<&str> = change
                .properties
                .iter()
                .filter(|p| p.forces_replacement)
                .map(|p| p.property.as_str())
                .collect();
            let why = match &change.replaced_because {
                Some(cause) => format!(" (replaced because {cause} is replaced)"),
                None => format!(
                    " ({} forces replacement)",
                    forced.into_iter().collect::<Vec<_>>().join(", ")
                ),
            };
            let order = if change.create_before_destroy {
                " [the new one is made first, the old one deleted last]"
            } else {
                ""
            };
            format!("{why}{order}")
        } else if change.action == Action::Delete {
            // What is deleted is named by its AWS id too: it is about to go.
            change
                .live
                .as_ref()
                .map(|l| format!(" ({})", l.physical_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let style = action_style(change.action);
        anstream::println!(
            "  {style}{:>3} {}{style:#}{reason}",
            change.action.symbol(),
            change.id
        );
        if change.destroys_data() {
            let loud = anstyle::AnsiColor::Red.on_default().bold();
            anstream::println!("      {loud}{}{loud:#}", data_advice(plan, change));
        }
        if creates_alone && change.action == Action::Create {
            continue;
        }
        for property in &change.properties {
            let show = |v: &Option<Value>| v.as_ref().map(compact).unwrap_or_default();
            match (&property.before, &property.after) {
                (None, Some(_)) if change.action == Action::Create => {
                    println!("        {}: {}", property.property, show(&property.after))
                }
                (None, Some(_)) => {
                    println!("      + {}: {}", property.property, show(&property.after))
                }
                (Some(_), None) => {
                    println!("      - {}: {}", property.property, show(&property.before))
                }
                (Some(before), Some(after)) => match document_diff(before, after) {
                    // A policy or a task definition: the lines that change.
                    Some(lines) => {
                        println!("      ~ {}:", property.property);
                        for line in lines {
                            let style = match line.chars().next() {
                                Some('+') => action_style(Action::Create),
                                Some('-') => action_style(Action::Delete),
                                _ => anstyle::Style::new(),
                            };
                            anstream::println!("          {style}{line}{style:#}");
                        }
                    }
                    None => println!(
                        "      ~ {}: {} -> {}",
                        property.property,
                        compact(before),
                        compact(after)
                    ),
                },
                (None, None) => {}
            }
        }
    }
}

/// A JSON document (an object or array, or a string holding one, as IAM
/// policies are) as its pretty-printed lines.
fn document_lines(value: &Value) -> Option<Vec<String>> {
    let document = match value {
        Value::Object(_) | Value::Array(_) => value.clone(),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ (Value::Object(_) | Value::Array(_))) => parsed,
            _ => return None,
        },
        _ => return None,
    };
    let text = serde_json::to_string_pretty(&document).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

/// How many unchanged lines are kept around each change.
const DIFF_CONTEXT: usize = 2;

/// Two JSON documents as a diff of their lines, as Terraform shows one:
/// `-` and `+` lines with a little context, `...` for what is left out.
/// `None` when they are not both documents, or are short enough to read
/// on one line.
fn document_diff(before: &Value, after: &Value) -> Option<Vec<String>> {
    let (old, new) = (document_lines(before)?, document_lines(after)?);
    if old.len() + new.len() <= 4 {
        return None;
    }
    let (old, new) = (old.join("\n"), new.join("\n"));
    let rows: Vec<(char, &str)> = diff::lines(&old, &new)
        .into_iter()
        .map(|row| match row {
            diff::Result::Left(line) => ('-', line),
            diff::Result::Right(line) => ('+', line),
            diff::Result::Both(line, _) => (' ', line),
        })
        .collect();
    let near_change = |i: usize| {
        let from = i.saturating_sub(DIFF_CONTEXT);
        let to = (i + DIFF_CONTEXT + 1).min(rows.len());
        rows[from..to].iter().any(|(mark, _)| *mark != ' ')
    };
    let mut lines = Vec::new();
    let mut skipped = false;
    for (i, (mark, line)) in rows.iter().enumerate() {
        if *mark != ' ' || near_change(i) {
            if skipped {
                lines.push("  ...".to_string());
                skipped = false;
            }
            lines.push(format!("{mark} {line}"));
        } else {
            skipped = true;
        }
    }
    if skipped {
        lines.push("  ...".to_string());
    }
    Some(lines)
}

/// Longer strings (the schema script, a shell command) are shown by size and
/// digest: a plan says that they change, `--output json` says how.
const LONGEST_SHOWN: usize = 200;

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) if s.len() > LONGEST_SHOWN => {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(s.as_bytes());
            let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "({} lines, {} bytes, sha256 {hex}…)",
                s.lines().count(),
                s.len()
            )
        }
        Value::String(s) => format!("{s:?}"),
        Value::Object(map) if map.contains_key("protocol") && map.contains_key("peer") => {
            // A security group rule, the way people read them.
            let port = if map["from_port"] == map["to_port"] {
                map["from_port"].to_string()
            } else {
                format!("{}-{}", map["from_port"], map["to_port"])
            };
            format!(
                "{} {} {} ({})",
                map["protocol"].as_str().unwrap_or_default(),
                port,
                map["peer"].as_str().unwrap_or_default(),
                map["description"].as_str().unwrap_or_default()
            )
        }
        other => other.to_string(),
    }
}

/// The environment's outputs (`ops::Outputs`), one `key = value` a line.
pub fn print_outputs(outputs: &impl serde::Serialize, format: Format) {
    if format == Format::Json {
        json_line("outputs", outputs);
        return;
    }
    println!("\nOutputs:");
    let value = serde_json::to_value(outputs).expect("outputs serialize");
    if let Value::Object(map) = value {
        for (key, value) in map {
            let shown = match value {
                Value::String(s) => s,
                Value::Null => "(none)".into(),
                other => other.to_string(),
            };
            println!("  {key} = {shown}");
        }
    }
}

/// What the data tier did inside PostgreSQL.
pub fn print_data_tier(report: &DataTierReport, format: Format) {
    if format == Format::Json {
        json_line("data_tier", report);
        return;
    }
    eprintln!("\nDatabase {} at {}:", report.database, report.endpoint);
    if report.rebooted_for_parameters {
        eprintln!("  rebooted to apply the parameter group");
    }
    if let Some(window) = &report.reboot_deferred_to_window {
        eprintln!("  parameters wait for a reboot, not made now (a reboot is downtime): they take effect at the next reboot; deploy makes it with --reboot-now, or when run inside the maintenance window {window} UTC");
    }
    if report.jobs_wait_for_reboot {
        eprintln!(
            "  pg_cron is not loaded until that reboot: the scheduled jobs were not reconciled"
        );
    }
    if report.database_created {
        eprintln!("  created the database {}", report.database);
    }
    if let Some(snapshot) = &report.snapshot_before_migrations {
        eprintln!(
            "  took the snapshot {snapshot} before migrations that contract the schema (kept)"
        );
    }
    if !report.jobs_paused_for_migrations.is_empty() {
        eprintln!(
            "  paused pg_cron jobs {} while the migrations ran; resumed after",
            report.jobs_paused_for_migrations.join(", ")
        );
    }
    if !report.jobs_running_at_migration.is_empty() {
        eprintln!(
            "  a run of {} was still under way after 2 minutes: the migrations started anyway (their changes wait for its locks)",
            report.jobs_running_at_migration.join(", ")
        );
    }
    for m in &report.migrations_applied {
        eprintln!("  applied {} in {} ms", m.file, m.elapsed_ms);
    }
    eprintln!(
        "  migrations: {} applied now, {} in all",
        report.migrations_applied.len(),
        report.migrations_total
    );
    if report.analyzed_after_upgrade {
        eprintln!("  regenerated the planner's statistics after the major upgrade (ANALYZE)");
    }
    for extension in &report.extensions_updated {
        eprintln!("  updated the extension {extension} (the server's version)");
    }
    if report.authenticator_password_set {
        eprintln!("  set the authenticator role's password from Secrets Manager");
    }
    for statement in &report.privileges_restored {
        eprintln!("  privilege changed by hand, put back: {statement}");
    }
    if report.schema_reloaded {
        eprintln!("  told PostgREST to reload its schema cache (NOTIFY pgrst)");
    }
    print_jobs(report);
}

/// The pg_cron part of the data tier's report.
fn print_jobs(report: &DataTierReport) {
    if !report.jobs_resumed_after_upgrade.is_empty() {
        eprintln!(
            "  resumed pg_cron jobs {} (paused for the major upgrade)",
            report.jobs_resumed_after_upgrade.join(", ")
        );
    }
    for job in &report.jobs_changed {
        let action = match job.action {
            JobAction::Scheduled => "scheduled",
            JobAction::Corrected => "corrected to match sql/jobs.toml",
            JobAction::Unscheduled => "unscheduled (no longer declared)",
        };
        eprintln!("  pg_cron job {}: {action}", job.name);
    }
    eprintln!(
        "  pg_cron jobs: {} declared, {} changed (kept in database {})",
        report.jobs_total,
        report.jobs_changed.len(),
        report.cron_database
    );
    if report.jobs_scheduler_running == Some(false) {
        eprintln!("  warning: pg_cron's launcher is not running on this server, so no job runs: it stops for good when the database it serves is dropped (a local destroy does that); restart PostgreSQL (./localstack/postgres.sh stop, then start; on RDS, reboot the instance)");
    }
}

pub fn print_local_api(local: &crate::local_plane::LocalApi, format: Format) {
    if format == Format::Json {
        json_line("local_api", local);
        return;
    }
    eprintln!(
        "\nLocal PostgREST (standing in for the ECS tasks) {} at {}, pid {}, from {}",
        local.action, local.url, local.pid, local.task_definition
    );
}

pub fn print_verification(verification: &crate::verify::Verification, format: Format) {
    if format == Format::Json {
        json_line("verification", verification);
        return;
    }
    eprintln!("\nVerification:");
    for check in &verification.checks {
        let mark = match check.outcome {
            crate::verify::Outcome::Passed => "ok  ",
            crate::verify::Outcome::Failed => "FAIL",
            crate::verify::Outcome::Skipped => "skip",
        };
        eprintln!("  {mark} {:<8} {}", check.name, check.detail);
    }
}

/// Shows apply's progress: a live bar on a terminal, status lines otherwise,
/// JSON events with `--output json`. A bar lives from an apply's start to its
/// end, so nothing stays on screen between the two stages of a deploy.
pub struct Progress {
    format: Format,
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
    in_flight: Mutex<BTreeSet<String>>,
    /// What each running step waited for, until it ends and joins the timeline.
    waited_for: Mutex<BTreeMap<ResourceId, Vec<ResourceId>>>,
    pub timeline: Timeline,
}

impl Progress {
    pub fn new(format: Format) -> Self {
        Progress {
            format,
            terminal: format == Format::Human && std::io::stderr().is_terminal(),
            bar: Mutex::default(),
            in_flight: Mutex::default(),
            waited_for: Mutex::default(),
            timeline: Timeline::default(),
        }
    }

    fn record(&self, event: &Event) {
        match event {
            Event::StepStarted { id, after, .. } => {
                self.waited_for
                    .lock()
                    .unwrap()
                    .insert(id.clone(), after.clone());
            }
            Event::StepSucceeded {
                id,
                started_ms,
                finished_ms,
                ..
            }
            | Event::StepFailed {
                id,
                started_ms,
                finished_ms,
                ..
            } => {
                let after = self.waited_for.lock().unwrap().remove(id);
                self.timeline.record(StepTime {
                    id: id.clone(),
                    after: after.unwrap_or_default(),
                    started_ms: *started_ms,
                    finished_ms: *finished_ms,
                });
            }
            _ => {}
        }
    }

    /// Ends a command that applied something with where its time went: the
    /// critical path, or a `critical_path` line in JSON.
    pub fn print_critical_path(&self) {
        let Some(path) = self.timeline.critical_path() else {
            return;
        };
        match self.format {
            Format::Json => json_line("critical_path", &path),
            Format::Human => println!("{path}"),
        }
    }

    fn line(&self, text: String) {
        match &*self.bar.lock().unwrap() {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = &*self.bar.lock().unwrap() {
            f(bar);
        }
    }

    fn refresh(&self) {
        let in_flight = self
            .in_flight
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>();
        self.with_bar(|bar| bar.set_message(in_flight.join(", ")));
    }
}

/// A spinner on stderr while something slow and silent runs (discovery: a
/// few seconds on AWS), when stderr is a terminal; cleared when dropped.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub fn start(message: String) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

impl EventSink for Progress {
    fn emit(&self, event: Event) {
        self.record(&event);
        if self.format == Format::Json {
            json_line("event", &event);
            return;
        }
        match event {
            Event::ApplyStarted { total } => {
                if self.terminal && total > 0 {
                    let bar = ProgressBar::new(total as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
                        )
                        .expect("valid template"),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                    *self.bar.lock().unwrap() = Some(bar);
                }
            }
            Event::StepStarted { id, .. } => {
                self.in_flight.lock().unwrap().insert(id.0);
                self.refresh();
            }
            Event::StepSucceeded {
                id,
                action,
                physical_id,
                elapsed_ms,
                ..
            } => {
                self.in_flight.lock().unwrap().remove(&id.0);
                let verb = match action {
                    Action::Create => "Created",
                    Action::Update => "Updated",
                    Action::Replace => "Replaced",
                    Action::Delete => "Deleted",
                };
                self.line(format!(
                    "{verb:>10} {id} ({physical_id}) in {:.1}s",
                    elapsed_ms as f64 / 1000.0
                ));
                self.with_bar(|bar| bar.inc(1));
                self.refresh();
            }
            Event::StepWaiting {
                id,
                until,
                elapsed_s,
                limit_s: 0,
            } => {
                // Progress of a step without a limit of its own (an index build).
                self.line(format!(
                    "{:>10} {id}: {until}, {} so far",
                    "Running",
                    minutes(elapsed_s)
                ));
            }
            Event::StepWaiting {
                id,
                until,
                elapsed_s,
                limit_s,
            } => {
                self.line(format!(
                    "{:>10} {id}: waiting until {until}, {} so far (gives up after {})",
                    "Waiting",
                    minutes(elapsed_s),
                    minutes(limit_s)
                ));
            }
            Event::StepFailed {
                id, action, error, ..
            } => {
                self.in_flight.lock().unwrap().remove(&id.0);
                self.line(format!(
                    "{:>10} {id}: could not {}: {error}",
                    "Failed",
                    action.verb()
                ));
                self.with_bar(|bar| bar.inc(1));
                self.refresh();
            }
            Event::StepSkipped { id, reason } => {
                // After Ctrl-C the run's summary counts what never started,
                // in one line; a line each would bury what happened.
                if !crate::interrupt::requested() {
                    self.line(format!("{:>10} {id}: {reason}", "Skipped"));
                }
                self.with_bar(|bar| bar.inc(1));
            }
            Event::StepLeftToAws {
                id,
                action,
                physical_id,
                ..
            } => {
                self.in_flight.lock().unwrap().remove(&id.0);
                let verb = match action {
                    Action::Replace => "Replaced",
                    _ => "Created",
                };
                self.line(format!(
                    "{verb:>10} {id} ({physical_id}); not waited for (Ctrl-C): AWS goes on with it, and the next run adopts it"
                ));
                self.with_bar(|bar| bar.inc(1));
                self.refresh();
            }
            Event::ApplyFinished { .. } => {
                if let Some(bar) = self.bar.lock().unwrap().take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}

fn minutes(seconds: u64) -> String {
    format!("{}m{:02}s", seconds / 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::compact;
    use serde_json::json;

    #[test]
    fn a_changed_policy_is_shown_as_the_lines_that_change() {
        let before = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "*"},
            ]
        });
        let mut after = before.clone();
        after["Statement"][0]["Action"] = json!(["s3:GetObject", "s3:PutObject"]);
        // IAM answers with the document as a string: read alike.
        let lines = super::document_diff(&json!(before.to_string()), &after).unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("+ ") && l.ends_with("\"s3:PutObject\"")),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.starts_with("- ")), "{lines:#?}");
        assert!(lines.contains(&"  ...".to_string()), "{lines:#?}");
        assert!(
            !lines.iter().any(|l| l.contains("logs:PutLogEvents")),
            "{lines:#?}"
        );
        assert_eq!(super::document_diff(&json!("a"), &json!("b")), None);
    }

    #[test]
    fn long_strings_are_shown_by_size_and_digest_and_short_ones_whole() {
        assert_eq!(compact(&json!("verify-full")), "\"verify-full\"");
        let script = "SELECT 1;\n".repeat(50);
        let shown = compact(&json!(script));
        assert!(
            shown.starts_with("(50 lines, 500 bytes, sha256 "),
            "{shown}"
        );
        assert_ne!(shown, compact(&json!("SELECT 2;\n".repeat(50))));
    }
}

/// `n` and the noun, plural unless one: "1 image", "2 images".
pub fn count(n: impl std::fmt::Display, singular: &str, plural: &str) -> String {
    let text = n.to_string();
    if text == "1" {
        format!("1 {singular}")
    } else {
        format!("{text} {plural}")
    }
}

/// A duration as people write it: "1 day 2 h", "5 min 3 s", "45 s".
pub fn duration(d: std::time::Duration) -> String {
    let mut left = d.as_secs();
    let mut parts = Vec::new();
    for (unit, seconds) in [("day", 86_400), ("h", 3600), ("min", 60), ("s", 1)] {
        let n = left / seconds;
        left %= seconds;
        if n > 0 {
            parts.push(match unit {
                "day" => count(n, "day", "days"),
                _ => format!("{n} {unit}"),
            });
        }
    }
    if parts.is_empty() {
        "0 s".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod wording_tests {
    use super::{count, duration};
    use std::time::Duration;

    #[test]
    fn counts_and_durations_read_as_english() {
        assert_eq!(count(1, "image", "images"), "1 image");
        assert_eq!(count(3, "image", "images"), "3 images");
        assert_eq!(count("10 or more", "image", "images"), "10 or more images");
        assert_eq!(duration(Duration::from_secs(86_400)), "1 day");
        assert_eq!(
            duration(Duration::from_secs(2 * 86_400 + 7200 + 5)),
            "2 days 2 h 5 s"
        );
        assert_eq!(duration(Duration::from_secs(0)), "0 s");
    }
}
