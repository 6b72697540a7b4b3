//! `poolside promote`: its arguments; the work is `ops::promote` (a phase,
//! `--env`) or `ops::release` (a release, `--from`).

use super::globals::Globals;
use crate::config::Phase;
use crate::ops::guarded;
use crate::ops::promote::{promote_phase, PromoteOptions};
use crate::ops::release::promote_release;
use anyhow::bail;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["env", "from"])))]
pub struct Args {
    /// The environment to grow to its next phase (its name, or its file in --environments-dir).
    #[arg(long, conflicts_with = "from", value_parser = super::globals::environment_name)]
    pub env: Option<String>,
    /// The environment whose release (image and schema) to promote to `--to`.
    #[arg(long, value_parser = super::globals::environment_name)]
    pub from: Option<String>,
    /// With --env: the next phase, limited (after pilot) or full (after
    /// limited). With --from: the environment that gets the release.
    #[arg(long, value_parser = super::globals::environment_name)]
    pub to: String,
    /// Check the gates and show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// How long the environment must have run its current release, without
    /// an alarm, before it grows (e.g. 24h, 30m, 10s).
    #[arg(long, default_value = "24h", value_parser = guarded::parse_timeout)]
    pub bake: Duration,
    /// How long to wait for another command's lock on the environment.
    #[arg(long, default_value = "0s", value_parser = guarded::parse_timeout)]
    pub lock_timeout: Duration,
}

impl From<&Args> for PromoteOptions {
    fn from(args: &Args) -> Self {
        PromoteOptions {
            to: args.to.clone(),
            dry_run: args.dry_run,
            yes: args.yes,
            bake: args.bake,
            lock_timeout: args.lock_timeout,
        }
    }
}

pub async fn exec(globals: &Globals, args: Args, started: Instant) -> anyhow::Result<ExitCode> {
    let run = globals.run(started);
    let options = PromoteOptions::from(&args);
    if let Some(from) = &args.from {
        let to = args.to.as_str();
        if from == to {
            bail!("--from and --to both name `{from}`: a release moves between two environments");
        }
        let (source, target) = (globals.load(from)?, globals.load(to)?);
        return promote_release(&run, source, target, &options).await;
    }
    let env = args.env.unwrap_or_default();
    let target = match args.to.as_str() {
        "limited" => Phase::Limited,
        "full" => Phase::Full,
        other => bail!(
            "--to {other:?}: with --env, --to is the next phase (limited or full); to promote a release to environment {other:?}, name its source with --from"
        ),
    };
    let current = globals.load(&env)?;
    promote_phase(&run, &env, current, target, &options).await
}
