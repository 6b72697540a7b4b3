//! `poolside onboarding`: prints what the customer's administrator deploys
//! once in their account (`crate::onboarding`): a role for the engineers
//! who run poolside, with the operator policy `iam-policy` prints.

use super::globals::{exit, Globals};
use super::iam_policy::{partition_of, promotion_sources};
use crate::blueprint::AccountFacts;
use crate::onboarding;
use crate::output::{self, Format};
use anyhow::{anyhow, bail};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment the role is for (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
    /// The account whose principals may assume the role: where the
    /// engineers who run poolside sign in. Default: the account of your
    /// own credentials.
    #[arg(long, value_parser = account_id)]
    pub trusted_account: Option<String>,
    /// `cloudformation`: a template the administrator deploys as a stack;
    /// `json`: the role's trust policy and policies, to make by other means.
    #[arg(long, value_enum, default_value_t = TemplateFormat::Cloudformation)]
    pub format: TemplateFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum TemplateFormat {
    Cloudformation,
    Json,
}

fn account_id(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.chars().all(|c| c.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err(format!("{text:?} is not a 12-digit AWS account id"))
    }
}

pub async fn exec(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let Some(customer) = config.expected_account_id.clone() else {
        bail!("environment {} names no account: set target.account_id in its file to the customer's account, where the role is made", config.name);
    };
    let Some(external_id) = config.role_settings.external_id.clone() else {
        bail!(
            "environment {} has no target.external_id: the role trusts only callers that send it. Set one unique to this customer, for example:\n  external_id = \"{}\"",
            config.name,
            onboarding::propose_external_id()
        );
    };
    let trusted = match args.trusted_account {
        Some(account) => account,
        // The engineers' own account: the role cannot be assumed yet.
        None => crate::aws::operator_identity(&config).await?.account_id,
    };
    let account = AccountFacts {
        account_id: customer.clone(),
        partition: partition_of(&config.region).into(),
        s3_prefix_list: None,
    };
    let sources = promotion_sources(globals, &config, &customer);
    let role = onboarding::operator_role(&config, &account, &trusted, &external_id, &sources)
        .map_err(|e| anyhow!("cannot make the role of environment {}: {e}", config.name))?;
    let printed = match args.format {
        TemplateFormat::Cloudformation => onboarding::cloudformation(&config, &role),
        TemplateFormat::Json => serde_json::to_value(&role)?,
    };
    match globals.output {
        Format::Json => output::json_line(
            "onboarding",
            serde_json::json!({ "role_arn": role.role_arn, "template": printed }),
        ),
        Format::Human => {
            println!("{}", serde_json::to_string_pretty(&printed)?);
            eprintln!(
                "The customer's administrator creates the role in account {customer}, for example:\n  aws cloudformation deploy --stack-name poolside-operator-{env} --template-file onboarding-{env}.json --capabilities CAPABILITY_NAMED_IAM --region {region}\nThen set in {file}, [target]:\n  role_arn = \"{arn}\"\nand check it with `poolside plan --env {env}`.",
                env = config.name,
                region = config.region,
                arn = role.role_arn,
                file = globals
                    .environments_dir
                    .join(format!("{}.toml", config.name))
                    .display(),
            );
        }
    }
    Ok(ExitCode::from(exit::OK))
}
