//! `poolside validate`: loads and checks environment files without any AWS
//! call, and names the files that would share a local port or database.

use super::globals::{exit, Globals};
use crate::config::{Config, Layout};
use crate::output::{self, Format};
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to check (its name, or its file in --environments-dir).
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
}

pub fn exec(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    match globals.output {
        Format::Json => {
            let mut valid = json!({
                "environment": config.name,
                "region": config.region,
                "phase": config.phase,
                "endpoint_url": config.endpoint_url,
                "account_id": config.expected_account_id,
                "role_arn": config.role().map(|r| &r.arn),
            });
            valid
                .as_object_mut()
                .expect("an object")
                .extend(network_json(&config.network.layout));
            output::json_line("valid", valid)
        }
        Format::Human => print_human(globals, &config),
    }
    for warning in shared_local_servers(globals, &config) {
        eprintln!("warning: {warning}");
    }
    for note in role_notes(&config) {
        eprintln!("note: {note}");
    }
    Ok(ExitCode::from(exit::OK))
}

/// What the role settings do not do yet, or may not do with every
/// operator's credentials.
fn role_notes(config: &Config) -> Vec<String> {
    let settings = &config.role_settings;
    let mut notes = Vec::new();
    if config.role().is_none() && settings.external_id.is_some() {
        notes.push(format!("target.external_id is used by `poolside onboarding --env {}` only, until target.role_arn names the role its template makes; commands run with your own credentials meanwhile", config.name));
    }
    if settings.session_duration > crate::config::SESSION_CHAINED_MAX {
        notes.push(format!("target.session_duration is {}: a role assumed from an assumed role (SSO credentials, say) lasts 1 hour at most, and AssumeRole refuses more", humantime::format_duration(settings.session_duration)));
    }
    notes
}

fn network_json(layout: &Layout) -> serde_json::Map<String, serde_json::Value> {
    let text = |nets: &[ipnet::Ipv4Net]| nets.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let value = match layout {
        Layout::Owned(n) => json!({
            "vpc_cidr": n.vpc_cidr.to_string(),
            "public_subnets": text(&n.public_subnets),
            "private_subnets": text(&n.private_subnets),
            "nat_gateways": n.nat_gateways,
        }),
        Layout::Existing(n) => json!({
            "vpc_id": n.vpc_id,
            "public_subnet_ids": n.public_subnet_ids,
            "private_subnet_ids": n.private_subnet_ids,
            "create_endpoints": n.create_endpoints,
        }),
    };
    value.as_object().cloned().unwrap_or_default()
}

fn print_human(globals: &Globals, config: &Config) {
    println!(
        "{}/{}.toml is valid: phase {} in {}{}",
        globals.environments_dir.display(),
        config.name,
        format!("{:?}", config.phase).to_lowercase(),
        config.region,
        config
            .endpoint_url
            .as_deref()
            .map(|u| format!(" via {u}"))
            .unwrap_or_default()
    );
    if let Some(role) = config.role() {
        println!(
            "  as role {} ({}, sessions of {}), assumed with {}",
            role.arn,
            if role.external_id.is_some() {
                "with its external id"
            } else {
                "no external id"
            },
            humantime::format_duration(role.session_duration),
            config
                .profile
                .as_deref()
                .map_or("the default credential chain".to_string(), |p| format!(
                    "profile {p}"
                ))
        );
    }
    match &config.network.layout {
        Layout::Owned(n) => {
            println!(
                "  VPC {} over {}",
                n.vpc_cidr,
                n.availability_zones.join(", ")
            );
            for (i, az) in n.availability_zones.iter().enumerate() {
                println!(
                    "    {az}: public {}, private {}",
                    n.public_subnets[i], n.private_subnets[i]
                );
            }
        }
        Layout::Existing(n) => {
            println!(
                "  the customer's VPC {} (poolside makes only its security groups{} there)",
                n.vpc_id,
                if n.create_endpoints {
                    " and interface endpoints"
                } else {
                    ""
                }
            );
            println!("    public subnets:  {}", n.public_subnet_ids.join(", "));
            println!("    private subnets: {}", n.private_subnet_ids.join(", "));
        }
    }
}

/// Other environment files in the directory whose local PostgREST would
/// listen on the same ports, or whose stand-in PostgreSQL is the same server
/// (emulator targets only).
fn shared_local_servers(globals: &Globals, config: &crate::config::Config) -> Vec<String> {
    if config.endpoint_url.is_none() {
        return Vec::new();
    }
    let ours = config.api.local_port;
    let Ok(entries) = std::fs::read_dir(&globals.environments_dir) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(other) = name.strip_suffix(".toml") else {
            continue;
        };
        if other == config.name {
            continue;
        }
        // A file that does not load has its own errors; it is not this check's.
        let Ok(other_config) = globals.load(other) else {
            continue;
        };
        if other_config.endpoint_url.is_none() {
            continue;
        }
        let theirs = other_config.api.local_port;
        if ours.abs_diff(theirs) <= 1 {
            warnings.push(format!(
                "{name} also runs its local PostgREST on port {theirs} (api.local_port; the admin server takes the next port): the two environments cannot run at once"
            ));
        }
        if let (Some(ours), Some(theirs)) = (
            &config.database.connect_override,
            &other_config.database.connect_override,
        ) {
            if ours == theirs {
                warnings.push(format!(
                    "{name} also uses the PostgreSQL at {}:{} (database.connect_host/connect_port): roles are server-wide, so only one of the two environments can be deployed there (deploy refuses the second)",
                    ours.0, ours.1
                ));
            }
        }
    }
    warnings
}
