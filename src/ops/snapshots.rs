//! `poolside snapshots`: the database's snapshots, read-only. It works after
//! `destroy` too, when the instance is gone and its final snapshot is what
//! is left of the data, so it does not need the environment deployed.

use super::{exit, RunOptions, Session};
use crate::config::Config;
use crate::output::{self, Format};
use crate::resources::rds::snapshots::{self, RetainedBackup, Snapshot};
use std::process::ExitCode;

pub async fn snapshots(run: &RunOptions, config: Config) -> anyhow::Result<ExitCode> {
    let identifier = crate::names::database_identifier(&config);
    let session = Session::open(config).await?;
    let (found, retained) = tokio::join!(
        snapshots::list(&session.cx, &identifier),
        snapshots::retained_backups(&session.cx, &identifier),
    );
    let found = found?;
    // The snapshots stand without them (a policy older than this version
    // may not allow the call).
    let retained = retained.unwrap_or_else(|err| {
        eprintln!("warning: the automated backups RDS retained of {identifier} could not be listed: {err:#}. `poolside iam-policy --env {}` prints the policy this version needs", session.config.name);
        Vec::new()
    });
    match run.output {
        Format::Json => {
            for snapshot in &found {
                output::json_line("snapshot", snapshot);
            }
            for backup in &retained {
                output::json_line("retained_backup", backup);
            }
        }
        Format::Human => {
            print(&identifier, &found);
            print_retained(&identifier, &retained);
        }
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

/// The deleted instance's automated backups, which RDS keeps (and bills)
/// until their retention ends.
fn print_retained(identifier: &str, retained: &[RetainedBackup]) {
    for b in retained {
        let window = match (&b.restorable_from, &b.restorable_until) {
            (Some(from), Some(until)) => {
                format!(", restorable to any point from {from} to {until}")
            }
            _ => String::new(),
        };
        // What RDS does not say (an emulator gives the status alone) is left out.
        let kept = b
            .retention_days
            .map(|d| format!("; it keeps them as long as their last system snapshot would have been kept (a retention of {d} days), then deletes them"))
            .unwrap_or_default();
        println!(
            "RDS retains the automated backups of the deleted {identifier}{window}{kept}{}",
            b.arn
                .as_deref()
                .map(|a| format!(" ({a}: `aws rds restore-db-instance-to-point-in-time --source-db-instance-automated-backups-arn {a} ...` restores it, `aws rds delete-db-instance-automated-backup` deletes them now)"))
                .unwrap_or_default()
        );
    }
}
