//! `poolside history`: the environment's deploys, destroys and unlocks,
//! newest first, from the state bucket.

use super::globals::{exit, Globals};
use crate::ops::Session;
use crate::output::{self, Format};
use crate::state;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment whose history to list.
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
    /// How many runs to list (1 to 1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
}

pub async fn exec(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let session = Session::open(config).await?;
    let store = session.state().await?;
    let records = state::list(&store, &args.env, usize::from(args.limit)).await?;
    match globals.output {
        Format::Json => {
            for record in &records {
                output::json_line("run", record);
            }
        }
        Format::Human if records.is_empty() => {
            println!("No recorded runs of `{}`.", args.env)
        }
        Format::Human => {
            print_table(&records);
            print_reasons(&records);
        }
    }
    Ok(ExitCode::from(exit::OK))
}

/// Why the listed runs that did not succeed stopped (the table has no
/// room for it; JSON has it as `error`).
fn print_reasons(records: &[state::Record]) {
    let stopped: Vec<&state::Record> = records.iter().filter(|r| r.error.is_some()).collect();
    if stopped.is_empty() {
        return;
    }
    println!("\nWhy the runs above that did not succeed stopped:");
    for r in stopped {
        let error = r.error.as_deref().unwrap_or_default();
        let first = error.lines().next().unwrap_or_default();
        let cut: String = first.chars().take(240).collect();
        let more = if cut.len() < error.len() { "…" } else { "" };
        println!(
            "  {} {} {}: {cut}{more}",
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(r.started_at)),
            r.command,
            r.result
        );
    }
}

fn print_table(records: &[state::Record]) {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "started (UTC)",
        "command",
        "result",
        "changes",
        "took",
        "who",
        "host",
    ]);
    for r in records {
        let changes = r
            .plan
            .as_ref()
            .and_then(|p| p["summary"].as_object().cloned())
            .map(|s| {
                let database = match s.get("database").and_then(|d| d.as_u64()) {
                    Some(n) if n > 0 => format!(" db {n}"),
                    _ => String::new(),
                };
                format!(
                    "+{} ~{} -/+{} -{}{database}",
                    s["create"], s["update"], s["replace"], s["delete"]
                )
            })
            .unwrap_or_default();
        table.add_row([
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(r.started_at))
                .to_string(),
            r.command.clone(),
            r.result.clone(),
            changes,
            format!("{:.1}s", r.duration_ms as f64 / 1000.0),
            r.by(),
            r.host.clone(),
        ]);
    }
    println!("{table}");
}
