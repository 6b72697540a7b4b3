use super::{exit, Globals};
use crate::ops::Session;
use crate::output;
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
}

pub async fn exec(globals: &Globals, args: Args, started: Instant) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let session = Session::open(config).await?;
    let plan = session.plan().await;
    if let Ok(plan) = &plan {
        output::print_plan(plan, globals.output);
    }
    // After the plan, as deploy prints them after what it did.
    globals.print_stats(&session, started);
    let plan = plan?;
    let code = if args.detailed_exitcode && !plan.is_empty() {
        exit::CHANGES
    } else {
        exit::OK
    };
    Ok(ExitCode::from(code))
}
