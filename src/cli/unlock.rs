//! `poolside unlock`: removes an environment's lock by hand, when its holder
//! died and the next command should not wait for the lease to expire. Only
//! the lock named by its id is removed, and the removal is recorded.

use super::globals::{exit, Globals};
use crate::ops::Session;
use crate::output::{self, Format};
use crate::state::{self, Record};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment whose lock to remove.
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
    /// The lock's id, as the "is locked by" error names it.
    #[arg(long)]
    pub lock_id: String,
}

pub async fn exec(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let session = Session::open(config).await?;
    let store = session.state().await?;
    let removed = state::unlock(&store, &args.env, &args.lock_id).await?;
    let record = Record {
        command: "unlock".into(),
        environment: args.env.clone(),
        who: session.caller.clone(),
        acting_as: session.acting_as.clone(),
        host: state::hostname(),
        poolside_version: env!("CARGO_PKG_VERSION").into(),
        started_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        duration_ms: 0,
        result: "ok".into(),
        error: None,
        plan: None,
        release: None,
        api_calls: session.cx.clients.stats.snapshot().total_calls,
        lock_id: args.lock_id.clone(),
        took_over_lock: Some(removed.lock_id.clone()),
    };
    state::append(&store, &record).await?;
    match globals.output {
        Format::Json => output::json_line("unlocked", &removed),
        Format::Human => println!(
            "Removed the lock of `{}` held by {}.",
            args.env,
            removed.describe()
        ),
    }
    Ok(ExitCode::from(exit::OK))
}
