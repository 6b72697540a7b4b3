//! `poolside snapshots`: its arguments; the work is `ops::snapshots`.

use super::globals::Globals;
use crate::ops::snapshots::snapshots;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
}

pub async fn exec(
    globals: &Globals,
    args: Args,
    started: std::time::Instant,
) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    snapshots(&globals.run(started), config).await
}
