//! `poolside fleet status|drift|plan`: its arguments; the work is `ops::fleet`.

use super::globals::Globals;
use crate::config::{self, Phase};
use crate::ops::fleet::{fleet, FleetOptions, View};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PhaseArg {
    Pilot,
    Limited,
    Full,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// status (what each runs), drift (differences from its file and
    /// sql/), or plan (what a deploy of each would change).
    #[arg(value_enum)]
    pub view: View,
    /// Only the environments whose name matches (`acme-*`); repeat for more.
    #[arg(long = "select", value_name = "PATTERN")]
    pub select: Vec<String>,
    /// Only the environments in this phase.
    #[arg(long, value_enum)]
    pub phase: Option<PhaseArg>,
    /// How many environments are read at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

pub async fn exec(
    globals: &Globals,
    args: Args,
    started: std::time::Instant,
) -> anyhow::Result<ExitCode> {
    let names = config::list_environments(&globals.environments_dir);
    let loaded = names
        .into_iter()
        .map(|name| {
            let config = globals.load(&name);
            (name, config)
        })
        .collect();
    let options = FleetOptions {
        view: args.view,
        select: args.select,
        phase: args.phase.map(|p| match p {
            PhaseArg::Pilot => Phase::Pilot,
            PhaseArg::Limited => Phase::Limited,
            PhaseArg::Full => Phase::Full,
        }),
        concurrency: args.concurrency,
    };
    fleet(&globals.run(started), &options, loaded).await
}
