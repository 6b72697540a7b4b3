use super::{exit, Globals};
use crate::database::{self, NotInspected};
use crate::drift;
use crate::ops::Session;
use crate::output::{self, Format};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to plan (environments/<env>.toml).
    #[arg(long)]
    pub env: String,
    /// Exit 0 when there is nothing to change, 2 when there is, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan (with a fingerprint of what it was made from) for
    /// `poolside deploy --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

pub async fn exec(globals: &Globals, args: Args, started: Instant) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let session = Session::open(config).await?;
    let plan = session.plan().await;
    let mut database_changes = 0;
    if let Ok(plan) = &plan {
        output::print_plan(plan, globals.output);
        // The database side: the migrations and jobs deploy would apply.
        let inspected = database::inspect(&session.cx, &session.config).await;
        let findings = match &inspected {
            Ok(inspection) => drift::from_database(inspection),
            Err(_) => vec![],
        };
        database_changes = findings.len();
        print_database(globals.output, &inspected, &findings);
    }
    // After the plan, as deploy prints them after what it did.
    globals.print_stats(&session, started);
    let plan = plan?;
    if let Some(path) = &args.out {
        let text = serde_json::to_string_pretty(&plan)?;
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("writing the plan to {}: {e}", path.display()))?;
        eprintln!(
            "Saved the plan to {}. Apply exactly it with: poolside deploy --env {} --plan {}",
            path.display(),
            args.env,
            path.display()
        );
    }
    let attention = !plan.is_empty() || !plan.duplicates.is_empty() || database_changes > 0;
    let code = if args.detailed_exitcode && attention {
        exit::CHANGES
    } else {
        exit::OK
    };
    Ok(ExitCode::from(code))
}

fn print_database(
    format: Format,
    inspected: &Result<database::Inspection, NotInspected>,
    findings: &[drift::Finding],
) {
    match (format, inspected) {
        (Format::Json, Ok(_)) => output::json_line(
            "database_plan",
            serde_json::json!({ "checked": true, "changes": findings }),
        ),
        (Format::Json, Err(why)) => output::json_line(
            "database_plan",
            serde_json::json!({ "checked": false, "why": why.to_string() }),
        ),
        (Format::Human, Err(NotInspected::NoInstance)) => {}
        (Format::Human, Err(why)) => eprintln!("note: the database side was not planned: {why}"),
        (Format::Human, Ok(_)) if findings.is_empty() => {
            println!("\nDatabase: no migration to apply, the pg_cron jobs match sql/jobs.toml.")
        }
        (Format::Human, Ok(_)) => {
            println!("\nDatabase: differs from sql/ (deploy applies the migrations and corrects the jobs; it refuses unknown or edited migrations):");
            for f in findings {
                println!(
                    "  {} {}: {} -> {}",
                    f.resource, f.attribute, f.actual, f.expected
                );
            }
        }
    }
}
