//! `poolside graph`: its arguments; the work is `ops::graph`.

use super::globals::Globals;
use crate::ops::graph::{graph, GraphFormat};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
    /// Mermaid (renders in GitHub and most wikis) or Graphviz DOT.
    #[arg(long, value_enum, default_value = "mermaid")]
    pub format: GraphFormat,
    /// Draw the plan instead: what deploy would create, change, replace or
    /// delete, in Terraform's colours.
    #[arg(long)]
    pub plan: bool,
}

pub async fn exec(
    globals: &Globals,
    args: Args,
    started: std::time::Instant,
) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    graph(&globals.run(started), config, args.format, args.plan).await
}
