//! `poolside plan`: discovery, the diff and the database's side, printed
//! or saved (`--out`) for `deploy --plan`. No mutating call.

use super::globals::{exit, Globals};
use crate::drift;
use crate::ops::Session;
use crate::output;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to plan (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
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
    crate::ops::refuse_unsafe_migrations()?;
    let session = Session::open(config).await?;
    let plan = match session.plan().await {
        Ok(plan) => {
            let database = drift::database_plan(&session.cx, &session.config).await;
            let plan = plan.with_database(database);
            output::print_plan(&plan, globals.output, globals.compact);
            Ok(plan)
        }
        Err(err) => Err(err),
    };
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
    if !plan.refused.is_empty() {
        let why: Vec<&str> = plan.refused.iter().map(|r| r.why.as_str()).collect();
        anyhow::bail!(
            "environment `{}` asks for what AWS cannot do: {}",
            args.env,
            why.join("; ")
        );
    }
    if !plan.customer_network.is_empty() {
        anyhow::bail!(
            "the customer's network is not ready for environment `{}` ({} problem(s) above): deploy refuses until its owner fixes them",
            args.env,
            plan.customer_network.len()
        );
    }
    if let Some(database) = plan.database.as_ref().filter(|d| d.unreadable) {
        anyhow::bail!(
            "plan of `{}`: the database side could not be read, so what the schema step would change is unknown (the plan above covers the AWS side only): {}",
            args.env,
            database.why_not.as_deref().unwrap_or("no reason given")
        );
    }
    let attention = plan.changes_anything() || !plan.duplicates.is_empty();
    let code = if args.detailed_exitcode && attention {
        exit::CHANGES
    } else {
        exit::OK
    };
    Ok(ExitCode::from(code))
}
