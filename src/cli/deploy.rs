//! `poolside deploy`: its arguments; the work is `ops::deploy`.

use super::globals::Globals;
use crate::ops::deploy::{deploy, DeployOptions};
use crate::ops::guarded;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to deploy (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
    /// Apply without asking for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Allow this plan to delete or replace a resource that holds data (the
    /// DB instance, the bucket, the repository, a secret), e.g.
    /// `--allow-replace db-instance/main`; repeat for each.
    #[arg(long = "allow-replace", value_name = "ID")]
    pub allow_replace: Vec<String>,
    /// How long to wait for another command's lock on the environment (e.g. 5m).
    #[arg(long, default_value = "0s", value_parser = guarded::parse_timeout)]
    pub lock_timeout: std::time::Duration,
    /// Apply a plan saved by `poolside plan --out FILE`, without asking, and
    /// only if the environment and its file are as they were when it was made.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<std::path::PathBuf>,
    /// Reboot the database now if its parameter group has changes that wait
    /// for a reboot (downtime of a minute or more). Without it, deploy
    /// reboots only when run inside `database.maintenance_window`.
    #[arg(long)]
    pub reboot_now: bool,
    /// Make a major upgrade of PostgreSQL that the plan holds
    /// (`database.engine_version` of a newer major): minutes of downtime,
    /// and no way back but a snapshot.
    #[arg(long)]
    pub allow_major_upgrade: bool,
}

impl From<Args> for DeployOptions {
    fn from(args: Args) -> Self {
        DeployOptions {
            env: args.env,
            yes: args.yes,
            allow_replace: args.allow_replace,
            lock_timeout: args.lock_timeout,
            plan: args.plan,
            reboot_now: args.reboot_now,
            allow_major_upgrade: args.allow_major_upgrade,
        }
    }
}

pub async fn exec(globals: &Globals, args: Args, started: Instant) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    deploy(&globals.run(started), config, &args.into()).await
}
