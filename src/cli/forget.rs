//! `poolside forget`: resolves a duplicate (two live resources claiming one
//! logical id, which deploy refuses to guess between) by leaving one copy
//! out of the environment. The copy keeps everything but poolside's tags:
//! nothing is deleted, and `drift` lists it afterwards as a resource in the
//! VPC that poolside does not manage, for its owner to keep or delete.
//! Adopting one copy is forgetting the others.

use super::globals::{exit, Globals};
use crate::model::ResourceId;
use crate::ops::guarded;
use crate::ops::Session;
use crate::output::{self, Format};
use anyhow::bail;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment the duplicate belongs to.
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
    /// The logical id both copies claim, as plan names it (e.g. vpc/main).
    #[arg(long = "id", value_name = "ID")]
    pub id: String,
    /// The AWS id of the copy to leave out (one of those plan lists).
    #[arg(long = "aws-id", value_name = "AWS_ID")]
    pub aws_id: String,
    /// How long to wait for another command's lock on the environment (e.g. 5m).
    #[arg(long, default_value = "0s", value_parser = guarded::parse_timeout)]
    pub lock_timeout: std::time::Duration,
}

pub async fn exec(
    globals: &Globals,
    args: Args,
    started: std::time::Instant,
) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let session = Session::open(config).await?;
    guarded::run(&session, "forget", args.lock_timeout, async |_guard| {
        forget_locked(globals, &session, &args, started).await
    })
    .await
}

async fn forget_locked(
    globals: &Globals,
    session: &Session,
    args: &Args,
    started: std::time::Instant,
) -> anyhow::Result<ExitCode> {
    let plan = session.plan_without_login().await?;
    let id = ResourceId(args.id.clone());
    let Some(duplicate) = plan.duplicates.iter().find(|d| d.id == id) else {
        let known: Vec<String> = plan
            .duplicates
            .iter()
            .map(|d| format!("{} ({})", d.id, d.physical_ids.join(", ")))
            .collect();
        bail!(
            "forget refused: no two live resources claim {} in `{}` ({}). forget only settles duplicates; deploy manages everything else. Nothing was changed",
            args.id,
            args.env,
            if known.is_empty() {
                "the environment has no duplicates".to_string()
            } else {
                format!("duplicates: {}", known.join("; "))
            }
        );
    };
    if !duplicate.physical_ids.contains(&args.aws_id) {
        bail!(
            "forget refused: {} is not one of the copies of {} ({}). Nothing was changed",
            args.aws_id,
            args.id,
            duplicate.physical_ids.join(", ")
        );
    }
    crate::resources::forget(&session.cx, &id, &args.aws_id).await?;
    globals.print_stats(session, started);
    let left: Vec<&String> = duplicate
        .physical_ids
        .iter()
        .filter(|p| **p != args.aws_id)
        .collect();
    match globals.output {
        Format::Json => output::json_line(
            "forgotten",
            serde_json::json!({ "id": args.id, "aws_id": args.aws_id }),
        ),
        Format::Human => println!(
            "{} is no longer part of `{}`: its poolside tags are removed, nothing was deleted. {} is {} now.",
            args.aws_id,
            args.env,
            args.id,
            left.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" and ")
        ),
    }
    Ok(ExitCode::from(exit::OK))
}
