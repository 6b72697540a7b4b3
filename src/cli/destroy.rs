//! `poolside destroy`: its arguments; the work is `ops::destroy`.

use super::globals::Globals;
use crate::ops::destroy::{destroy, DestroyOptions};
use crate::ops::guarded;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to destroy (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
    /// Do not ask for the environment's name.
    #[arg(short, long)]
    pub yes: bool,
    /// Empty the bucket (every object version) and the repository (every
    /// image) and delete them; without it, either one holding data is refused.
    #[arg(long)]
    pub delete_data: bool,
    /// Delete the instance without a final snapshot (refused in phase full).
    #[arg(long)]
    pub skip_final_snapshot: bool,
    /// How long to wait for another command's lock on the environment (e.g. 5m).
    #[arg(long, default_value = "0s", value_parser = guarded::parse_timeout)]
    pub lock_timeout: std::time::Duration,
}

impl From<Args> for DestroyOptions {
    fn from(args: Args) -> Self {
        DestroyOptions {
            env: args.env,
            yes: args.yes,
            delete_data: args.delete_data,
            skip_final_snapshot: args.skip_final_snapshot,
            lock_timeout: args.lock_timeout,
        }
    }
}

pub async fn exec(globals: &Globals, args: Args, started: Instant) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    destroy(&globals.run(started), config, &args.into()).await
}
