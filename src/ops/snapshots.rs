//! `poolside snapshots`: the database's snapshots, read-only. It works after
//! `destroy` too, when the instance is gone and its final snapshot is what
//! is left of the data, so it does not need the environment deployed.

use super::{exit, RunOptions, Session};
use crate::config::Config;
use crate::output::{self, Format};
use crate::resources::rds::snapshots::{self, Snapshot};
use std::process::ExitCode;

pub async fn snapshots(run: &RunOptions, config: Config) -> anyhow::Result<ExitCode> {
    let identifier = crate::names::database_identifier(&config);
    let session = Session::open(config).await?;
    let found = snapshots::list(&session.cx, &identifier).await?;
    match run.output {
        Format::Json => {
            for snapshot in &found {
                output::json_line("snapshot", snapshot);
            }
        }
        Format::Human => print(&identifier, &found),
    }
    run.print_stats(&session);
    Ok(ExitCode::from(exit::OK))
}

fn print(identifier: &str, found: &[Snapshot]) {
    if found.is_empty() {
        println!("RDS keeps no snapshot of {identifier}.");
        return;
    }
    println!("Snapshots of {identifier}, newest first:");
    for s in found {
        println!(
            "  {}  {:<9} {:<10} {:>5} GB  PostgreSQL {}{}",
            s.created.as_deref().unwrap_or("(being created)"),
            s.kind,
            s.status,
            s.allocated_storage_gb,
            s.engine_version.as_deref().unwrap_or("-"),
            match (&s.taken_before, s.kept_by_destroy) {
                (_, true) => "  kept by destroy".to_string(),
                (Some(change), _) => format!("  taken before the {change} change"),
                (None, false) => String::new(),
            }
        );
        println!("    {}", s.identifier);
    }
}
