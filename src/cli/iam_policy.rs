use super::{exit, Globals};
use crate::blueprint::AccountFacts;
use crate::output::{self, Format};
use crate::{iam_policy, ops};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment whose resources the policy names (environments/<env>.toml).
    #[arg(long)]
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
    let generated = iam_policy::generate(&config, &account);
    match globals.output {
        Format::Json => output::json_line("iam_policy", &generated),
        Format::Human => println!("{}", serde_json::to_string_pretty(&generated.policy)?),
    }
    Ok(ExitCode::from(exit::OK))
}

fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}
