//! `poolside iam-policy`: prints the operator policy (`crate::iam_policy`)
//! an environment needs.

use super::globals::{exit, Globals};
use crate::blueprint::AccountFacts;
use crate::output::{self, Format};
use crate::{iam_policy, ops};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment whose resources the policy names (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
}

/// Prints the IAM policy an operator needs to plan, deploy and verify the
/// environment. With `target.account_id` in the file it makes no AWS call.
pub async fn exec(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let account = match &config.expected_account_id {
        Some(account_id) => AccountFacts {
            account_id: account_id.clone(),
            partition: partition_of(&config.region).into(),
            s3_prefix_list: None,
        },
        None => ops::account(&config).await?,
    };
    let sources = promotion_sources(globals, &config, &account.account_id);
    let generated = iam_policy::generate(&config, &account, &sources);
    match globals.output {
        Format::Json => output::json_line("iam_policy", &generated),
        Format::Human => println!("{}", serde_json::to_string_pretty(&generated.policy)?),
    }
    Ok(ExitCode::from(exit::OK))
}

/// The repositories a release may be promoted from into `config`: those of
/// the other environment files in this account and region (a promotion
/// copies within one registry). A file that does not load is left out.
pub(super) fn promotion_sources(
    globals: &Globals,
    config: &crate::config::Config,
    account_id: &str,
) -> Vec<String> {
    let mut names: Vec<String> = crate::config::list_environments(&globals.environments_dir)
        .into_iter()
        .filter(|name| *name != config.name)
        .filter_map(|name| globals.load(&name).ok())
        .filter(|other| {
            other.region == config.region
                && other.expected_account_id.as_deref().unwrap_or(account_id) == account_id
                && other.endpoint_url == config.endpoint_url
        })
        .map(|other| other.registry.repository_name)
        .filter(|name| *name != config.registry.repository_name)
        .collect();
    names.sort();
    names.dedup();
    names
}

pub(super) fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}
