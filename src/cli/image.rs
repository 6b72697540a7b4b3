//! `poolside image push`: its arguments; the work is `ops::image`.

use super::globals::Globals;
use crate::ops::image::push;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Copy the pinned PostgREST image (and, for database.schema_runner =
    /// "ecs-task", the psql image of the schema task) into the environment's
    /// ECR repository, with the RDS certificate authorities added (creating
    /// the repository if deploy has not yet); no Docker engine needed.
    Push(PushArgs),
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The environment (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
}

pub async fn exec(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let Command::Push(args) = command;
    let config = globals.load(&args.env)?;
    push(&globals.run(std::time::Instant::now()), config).await
}
