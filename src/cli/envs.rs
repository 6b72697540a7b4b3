//! `poolside envs`: the environment files of the directory, each with what
//! tells them apart (phase, region, which account or emulator), read from
//! the files alone: no AWS call.

use super::globals::{exit, Globals};
use crate::config;
use crate::output::{self, Format};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the names, one a line (for scripts and shell completion).
    #[arg(long)]
    pub names: bool,
}

#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    phase: Option<String>,
    region: Option<String>,
    /// `target.account_id`, or the emulator's endpoint.
    target: Option<String>,
    /// The file's first problem, when it does not load.
    invalid: Option<String>,
}

pub fn exec(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let dir = &globals.environments_dir;
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a directory (--environments-dir or POOLSIDE_ENVIRONMENTS_DIR names another)",
            dir.display()
        );
    }
    let names = config::list_environments(dir);
    if args.names {
        for name in &names {
            println!("{name}");
        }
        return Ok(ExitCode::from(exit::OK));
    }
    let listed: Vec<Listed> = names
        .into_iter()
        .map(|name| match globals.load(&name) {
            Ok(config) => Listed {
                phase: Some(format!("{:?}", config.phase).to_lowercase()),
                region: Some(config.region.clone()),
                target: Some(match (&config.endpoint_url, &config.expected_account_id) {
                    (Some(endpoint), _) => format!("emulator at {endpoint}"),
                    (None, Some(account)) => match config.role() {
                        Some(role) => format!(
                            "account {account} as role {}",
                            role.arn.rsplit('/').next().unwrap_or_default()
                        ),
                        None => format!("account {account}"),
                    },
                    (None, None) => "AWS (the credentials' account)".into(),
                }),
                invalid: None,
                name,
            },
            Err(err) => Listed {
                name,
                phase: None,
                region: None,
                target: None,
                invalid: Some(err.to_string()),
            },
        })
        .collect();
    match globals.output {
        Format::Json => {
            for l in &listed {
                output::json_line("environment", l);
            }
        }
        Format::Human if listed.is_empty() => {
            println!("No environment files (*.toml) in {}.", dir.display())
        }
        Format::Human => {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["name", "phase", "region", "target"]);
            for l in &listed {
                let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                let target = match &l.invalid {
                    Some(problem) => {
                        format!("invalid: {}", problem.lines().next().unwrap_or_default())
                    }
                    None => dash(&l.target),
                };
                table.add_row([l.name.clone(), dash(&l.phase), dash(&l.region), target]);
            }
            println!("{table}");
        }
    }
    Ok(ExitCode::from(exit::OK))
}
