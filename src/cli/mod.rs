//! Command-line parsing and dispatch. Each command is a small file: its
//! arguments, then `exec`, which returns the process exit code.

mod completions;
mod deploy;
mod destroy;
mod drift;
mod envs;
mod fleet;
mod forget;
mod globals;
mod graph;
mod history;
mod iam_policy;
mod image;
mod onboarding;
mod outputs;
mod plan;
mod promote;
mod snapshots;
mod status;
mod token;
mod unlock;
mod validate;

use crate::output::{self, Format};
use clap::CommandFactory;
use clap::{Parser, Subcommand};
pub use globals::exit;
use globals::Globals;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(
    name = "poolside",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("POOLSIDE_GIT_COMMIT"), ")"),
    about = "Deploys the poolside AI code-assistant backend into an AWS account"
)]
pub struct Cli {
    /// Where environment files (<name>.toml) live.
    #[arg(
        long,
        global = true,
        default_value = "environments",
        env = "POOLSIDE_ENVIRONMENTS_DIR"
    )]
    pub environments_dir: PathBuf,
    /// human: for people; json: one JSON object per line on stdout, for CI.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub output: Format,
    /// Colour: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: output::ColorWhen,
    /// More logging (-v: info, -vv: debug, -vvv: trace, including AWS SDK internals).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Report every AWS API call made: per service and operation, calls, mutating, retries, time.
    #[arg(long, global = true)]
    pub stats: bool,
    /// Plans list what they create by id alone, without its properties.
    #[arg(long, global = true)]
    pub compact: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the changes a deploy would make.
    #[command(
        after_help = "Example:\n  poolside plan --env acme-pilot --detailed-exitcode --out plan.json"
    )]
    Plan(plan::Args),
    /// Show the plan, confirm, and apply it.
    #[command(
        after_help = "Example:\n  poolside deploy --env acme-pilot            (shows the plan, asks)\n  poolside deploy --env acme-pilot --plan plan.json"
    )]
    Deploy(deploy::Args),
    /// Delete everything of the environment (asks for its name; keeps data unless told).
    #[command(
        after_help = "Example:\n  poolside destroy --env acme-pilot           (asks for the name; keeps data)"
    )]
    Destroy(destroy::Args),
    /// Report every difference from the file and sql/; change nothing (exit 2 on drift).
    #[command(after_help = "Example:\n  poolside drift --env acme-pilot --output json")]
    Drift(drift::Args),
    /// Grow the environment to its next phase, gated on its health.
    #[command(
        after_help = "Gates: drift (none), jobs (pg_cron's last runs succeeded), alarms (none in ALARM), history (no alarm during the bake), api (answers), bake (the release ran --bake), alerting (full only).\n\nExample:\n  poolside promote --env acme-pilot --to limited --dry-run\n  poolside promote --from staging --to acme-prod"
    )]
    Promote(promote::Args),
    /// Show what the environment is and runs now: release, tasks, alarms, the
    /// PostgreSQL version with RDS's pending maintenance, pg_cron jobs' health,
    /// last run, lock.
    #[command(after_help = "Example:\n  poolside status --env acme-pilot")]
    Status(status::Args),
    /// Remove an environment's lock left by a command that died.
    #[command(
        after_help = "Example:\n  poolside unlock --env acme-pilot --lock-id 3f2a9c1b5d7e4a60"
    )]
    Unlock(unlock::Args),
    /// Leave one of two live copies of a resource out of the environment (untag it; nothing is deleted).
    #[command(
        after_help = "Example:\n  poolside forget --env acme-pilot --id vpc/main --aws-id vpc-0a1b2c3d"
    )]
    Forget(forget::Args),
    /// List the environment's deploys, destroys, promotions and unlocks, newest first.
    #[command(after_help = "Example:\n  poolside history --env acme-pilot --limit 10")]
    History(history::Args),
    /// Check an environment file; no AWS call.
    #[command(after_help = "Example:\n  poolside validate --env acme-pilot")]
    Validate(validate::Args),
    /// Print an API token (JWT) for the environment, signed with its secret.
    #[command(
        after_help = "Example:\n  poolside token --env acme-pilot --role api_user --ttl 30d --subject alice"
    )]
    Token(token::Args),
    /// Print the IAM policy an operator needs for the environment.
    #[command(
        after_help = "Example:\n  poolside iam-policy --env acme-pilot > operator-policy.json"
    )]
    IamPolicy(iam_policy::Args),
    /// Print the CloudFormation template a customer's administrator deploys once: the role poolside assumes (target.role_arn).
    #[command(
        after_help = "Example:\n  poolside onboarding --env acme-pilot > onboarding-acme-pilot.json\n  poolside onboarding --env acme-pilot --trusted-account 444455556666 --format json"
    )]
    Onboarding(onboarding::Args),
    /// The images in the environment's ECR repository (PostgREST, and the schema task's psql).
    #[command(
        subcommand,
        after_help = "Example:\n  poolside image push --env acme-pilot"
    )]
    Image(image::Command),
    /// Status, drift or plan of every environment (or those selected) at once, one row each.
    #[command(
        after_help = "Exit: 0 all clean, 2 a change or drift somewhere, 1 an environment could not be read.\n\nExample:\n  poolside fleet status\n  poolside fleet drift --select 'acme-*' --output json\n  poolside fleet plan --phase full"
    )]
    Fleet(fleet::Args),
    /// Draw the environment as discovery finds it (or its plan), in Mermaid or DOT.
    #[command(
        after_help = "Example:\n  poolside graph --env acme-pilot > env.mmd\n  poolside graph --env acme-pilot --format dot --plan | dot -Tsvg > plan.svg"
    )]
    Graph(graph::Args),
    /// List the database's snapshots (automated, and the one destroy kept).
    #[command(after_help = "Example:\n  poolside snapshots --env acme-pilot")]
    Snapshots(snapshots::Args),
    /// Print a deployed environment's outputs (or one of them, alone).
    #[command(after_help = "Example:\n  poolside outputs --env acme-pilot api_url")]
    Outputs(outputs::Args),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  poolside completions bash > /etc/bash_completion.d/poolside"
    )]
    Completions(completions::CompletionsArgs),
    /// List the environment files: name, phase, region, account or endpoint.
    #[command(
        after_help = "Example:\n  poolside envs\n  poolside envs --names      (one name a line, for scripts and completion)"
    )]
    Envs(envs::Args),
    /// Print the manual page (roff).
    #[command(after_help = "Example:\n  poolside man > poolside.1 && man ./poolside.1")]
    Man,
}

impl Command {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Plan(_) => "plan",
            Command::Deploy(_) => "deploy",
            Command::Destroy(_) => "destroy",
            Command::Drift(_) => "drift",
            Command::Promote(_) => "promote",
            Command::Status(_) => "status",
            Command::Unlock(_) => "unlock",
            Command::Forget(_) => "forget",
            Command::History(_) => "history",
            Command::Validate(_) => "validate",
            Command::Token(_) => "token",
            Command::IamPolicy(_) => "iam-policy",
            Command::Onboarding(_) => "onboarding",
            Command::Image(_) => "image",
            Command::Outputs(_) => "outputs",
            Command::Snapshots(_) => "snapshots",
            Command::Graph(_) => "graph",
            Command::Fleet(_) => "fleet",
            Command::Completions(_) => "completions",
            Command::Envs(_) => "envs",
            Command::Man => "man",
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let globals = Globals {
        environments_dir: cli.environments_dir,
        output: cli.output,
        stats: cli.stats,
        compact: cli.compact,
    };
    match cli.command {
        Command::Plan(args) => plan::exec(&globals, args, started).await,
        Command::Deploy(args) => deploy::exec(&globals, args, started).await,
        Command::Destroy(args) => destroy::exec(&globals, args, started).await,
        Command::Drift(args) => drift::exec(&globals, args, started).await,
        Command::Promote(args) => promote::exec(&globals, args, started).await,
        Command::Status(args) => status::exec(&globals, args, started).await,
        Command::Unlock(args) => unlock::exec(&globals, args).await,
        Command::Forget(args) => forget::exec(&globals, args, started).await,
        Command::History(args) => history::exec(&globals, args).await,
        Command::Validate(args) => validate::exec(&globals, args),
        Command::Token(args) => token::exec(&globals, args).await,
        Command::IamPolicy(args) => iam_policy::exec(&globals, args).await,
        Command::Onboarding(args) => onboarding::exec(&globals, args).await,
        Command::Image(command) => image::exec(&globals, command).await,
        Command::Outputs(args) => outputs::exec(&globals, args).await,
        Command::Snapshots(args) => snapshots::exec(&globals, args, started).await,
        Command::Graph(args) => graph::exec(&globals, args, started).await,
        Command::Fleet(args) => fleet::exec(&globals, args, started).await,
        Command::Completions(args) => completions::completions(args, Cli::command()),
        Command::Envs(args) => envs::exec(&globals, args),
        Command::Man => completions::man(Cli::command()),
    }
}
