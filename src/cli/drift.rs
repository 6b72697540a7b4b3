//! `poolside drift`: changes nothing; reports every difference between the
//! environment file (and `sql/`) and what exists, and exits 2 when there is one.

use super::globals::{exit, Globals};
use crate::database::NotInspected;
use crate::drift::{self, Finding};
use crate::ops::Session;
use crate::output::{self, Format};
use anyhow::bail;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to check (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
}

pub async fn exec(globals: &Globals, args: Args, started: Instant) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let session = Session::open(config).await?;
    let plan = session.plan().await?;
    session.ensure_deployed()?;
    let drift::Drift { findings, database } =
        drift::collect(&session.cx, &session.config, &plan).await?;
    let mut database_error = None;
    match &database {
        Ok(_) | Err(NotInspected::NoInstance) => {}
        Err(NotInspected::NoWayIn) => {
            eprintln!(
                "note: the database side was not checked: {}",
                NotInspected::NoWayIn
            )
        }
        Err(NotInspected::Failed(err)) => database_error = Some(format!("{err:#}")),
    }
    // The deploy that repairs a major upgrade's drift must say it means it.
    let deploy = match (plan.refused.is_empty(), plan.major_upgrade()) {
        (false, _) => String::new(),
        (true, Some(_)) => format!("poolside deploy --env {} --allow-major-upgrade", args.env),
        (true, None) => format!("poolside deploy --env {}", args.env),
    };
    let shown = (args.env.as_str(), deploy.as_str());
    print(globals.output, shown, &findings, database_error.is_none());
    globals.print_stats(&session, started);
    if let Some(error) = database_error {
        bail!(
            "drift of `{}`: the database side could not be checked: {error}",
            args.env
        );
    }
    Ok(ExitCode::from(if findings.is_empty() {
        exit::OK
    } else {
        exit::CHANGES
    }))
}

/// `database_read`: false when the database side could not be read (the
/// error follows), so no drift is claimed of it.
fn print(format: Format, (env, deploy): (&str, &str), findings: &[Finding], database_read: bool) {
    match format {
        Format::Json => {
            for f in findings {
                output::json_line("finding", f);
            }
        }
        Format::Human if findings.is_empty() && !database_read => {
            println!("No drift on the AWS side of environment `{env}`; its database could not be read (below).")
        }
        Format::Human if findings.is_empty() => {
            println!("No drift: environment `{env}` matches its file and sql/.")
        }
        Format::Human => {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["resource", "attribute", "expected", "actual"]);
            let show = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) if s.len() > 60 => format!(
                    "{}…",
                    &s[..s.char_indices().nth(59).map(|(i, _)| i).unwrap_or(s.len())]
                ),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".into(),
                other => other.to_string(),
            };
            for f in findings {
                table.add_row([
                    f.resource.clone(),
                    f.attribute.clone(),
                    show(&f.expected),
                    show(&f.actual),
                ]);
            }
            println!(
                "Environment `{env}` has drifted ({}):\n{table}",
                output::count(findings.len(), "finding", "findings")
            );
            let network_broken = findings.iter().any(|f| f.attribute == "customer network");
            if network_broken {
                println!("\nThe customer's network is not ready (below): deploy refuses, and repairs nothing else, until its owner fixes it.");
            } else if deploy.is_empty() {
                println!("\nThe file asks for what AWS cannot do (below): deploy refuses, and repairs nothing else, until it is corrected.");
            } else {
                println!("\n`{deploy}` repairs what poolside manages; unmanaged resources are only reported.");
            }
            for f in findings {
                if let Some(remedy) = &f.remedy {
                    // The table cuts long values; the reason is said whole here.
                    let what = match &f.actual {
                        serde_json::Value::String(text) if f.attribute == "customer network" => {
                            text.clone()
                        }
                        _ => f.attribute.clone(),
                    };
                    println!(
                        "{} {what}: deploy does not repair this; {remedy}.",
                        f.resource
                    );
                }
            }
        }
    }
}
