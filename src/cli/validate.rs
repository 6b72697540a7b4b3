use super::{exit, Globals};
use crate::output::{self, Format};
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to check (environments/<env>.toml).
    #[arg(long)]
    pub env: String,
}

pub fn exec(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let n = &config.network;
    match globals.output {
        Format::Json => output::json_line(
            "valid",
            json!({
                "environment": config.name,
                "region": config.region,
                "phase": config.phase,
                "vpc_cidr": n.vpc_cidr.to_string(),
                "public_subnets": n.public_subnets.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "private_subnets": n.private_subnets.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "nat_gateways": n.nat_gateways,
                "endpoint_url": config.endpoint_url,
            }),
        ),
        Format::Human => {
            println!(
                "{}/{}.toml is valid: {:?} phase in {}{}",
                globals.environments_dir.display(),
                config.name,
                config.phase,
                config.region,
                config
                    .endpoint_url
                    .as_deref()
                    .map(|u| format!(" via {u}"))
                    .unwrap_or_default()
            );
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
    }
    Ok(ExitCode::from(exit::OK))
}
