//! `poolside outputs`: what a deployed environment exposes, read by
//! discovery; nothing is planned or changed.

use super::globals::{exit, Globals};
use crate::ops::Session;
use crate::output::{self, Format};
use anyhow::{anyhow, bail};
use serde_json::Value;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
    /// One output (e.g. api_url), printed alone for scripts.
    pub name: Option<String>,
}

/// Prints what a deployed environment exposes, read from AWS (discovery
/// only: nothing is planned or changed).
pub async fn exec(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let session = Session::open(config).await?;
    session.discover_only().await?;
    let outputs = session.outputs();
    session.ensure_deployed()?;
    let all = serde_json::to_value(&outputs)?;
    let Some(name) = args.name else {
        output::print_outputs(&outputs, globals.output);
        return Ok(ExitCode::from(exit::OK));
    };
    let value = all.get(&name).ok_or_else(|| {
        let known: Vec<&String> = all
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        anyhow!(
            "there is no output named `{name}`; outputs: {}",
            known
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    match (globals.output, value) {
        (Format::Json, value) => output::json_line(
            "output",
            serde_json::json!({ "name": name, "value": value }),
        ),
        (Format::Human, Value::Null) => {
            bail!("output `{name}` has no value: that resource does not exist")
        }
        (Format::Human, Value::String(text)) => println!("{text}"),
        (Format::Human, other) => println!("{other}"),
    }
    Ok(ExitCode::from(exit::OK))
}
