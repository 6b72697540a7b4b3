//! The work behind the commands: connect, learn the account, build the
//! blueprint, discover, plan, apply, and collect outputs.

use crate::aws::Clients;
use crate::blueprint::{self, AccountFacts, INTERFACE_ENDPOINTS};
use crate::config::Config;
use crate::engine::plan::{self, Plan};
use crate::model::{Desired, Kind, ResourceId, Spec};
use crate::resources::{self, Context, Lookup};
use anyhow::{bail, Context as _};
use serde::Serialize;
use std::collections::BTreeMap;

/// One run against one environment.
pub struct Session {
    pub config: Config,
    pub cx: Context,
    pub desired: Vec<Desired>,
}

impl Session {
    pub async fn open(config: Config) -> anyhow::Result<Session> {
        let clients = Clients::connect(&config).await;
        let account = account_facts(&clients, &config).await?;
        let desired = blueprint::build(&config, &account)?;
        let cx = Context::new(clients, &config.name, &config.region);
        Ok(Session {
            config,
            cx,
            desired,
        })
    }

    /// Discovers what exists and plans the changes to reach the blueprint.
    pub async fn plan(&self) -> anyhow::Result<Plan> {
        let lookup = Lookup {
            bucket_name: self.spec_name(Kind::Bucket),
            repository_name: self.spec_name(Kind::Repository),
        };
        let live = resources::discover(&self.cx, &lookup)
            .await
            .context("discovering the environment")?;
        tracing::info!(environment = %self.config.name, found = live.len(), wanted = self.desired.len(), "discovered");
        self.cx.remember(&live);
        Ok(plan::plan(
            &self.config.name,
            &self.desired,
            &live,
            self.warnings(),
        ))
    }

    fn spec_name(&self, kind: Kind) -> String {
        self.desired
            .iter()
            .find_map(|d| match (&d.spec, kind) {
                (Spec::Bucket(b), Kind::Bucket) => Some(b.name.clone()),
                (Spec::Repository(r), Kind::Repository) => Some(r.name.clone()),
                _ => None,
            })
            .expect("the blueprint always has a bucket and a repository")
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self
            .config
            .network
            .allowed_ingress_cidrs
            .iter()
            .any(|c| c.prefix_len() == 0)
        {
            warnings.push("network.allowed_ingress_cidrs contains 0.0.0.0/0: the load balancer is open to the whole internet".into());
        }
        warnings
    }

    /// What a user needs after a deploy, read from what discovery and apply recorded.
    pub fn outputs(&self) -> Outputs {
        let id = |kind: Kind, name: &str| self.cx.physical_id(&ResourceId::new(kind, name));
        let azs = &self.config.network.availability_zones;
        let subnets = |tier: &str| -> Vec<String> {
            azs.iter()
                .filter_map(|az| id(Kind::Subnet, &format!("{tier}-{az}")))
                .collect()
        };
        let security_groups = ["load-balancer", "api", "database", "endpoints"]
            .into_iter()
            .filter_map(|name| Some((name.to_string(), id(Kind::SecurityGroup, name)?)))
            .collect();
        let mut vpc_endpoints: BTreeMap<String, String> = BTreeMap::new();
        for name in std::iter::once("s3").chain(INTERFACE_ENDPOINTS.iter().map(|(n, _)| *n)) {
            if let Some(endpoint) = id(Kind::VpcEndpoint, name) {
                vpc_endpoints.insert(name.to_string(), endpoint);
            }
        }
        Outputs {
            environment: self.config.name.clone(),
            region: self.config.region.clone(),
            vpc_id: id(Kind::Vpc, "main"),
            public_subnet_ids: subnets("public"),
            private_subnet_ids: subnets("private"),
            nat_gateway_ids: azs
                .iter()
                .filter_map(|az| id(Kind::NatGateway, az))
                .collect(),
            security_group_ids: security_groups,
            vpc_endpoint_ids: vpc_endpoints,
            bucket_name: self
                .cx
                .attribute(&ResourceId::new(Kind::Bucket, "artifacts"), "name"),
            repository_uri: self
                .cx
                .attribute(&ResourceId::new(Kind::Repository, "postgrest"), "uri"),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Outputs {
    pub environment: String,
    pub region: String,
    pub vpc_id: Option<String>,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
    pub nat_gateway_ids: Vec<String>,
    pub security_group_ids: BTreeMap<String, String>,
    pub vpc_endpoint_ids: BTreeMap<String, String>,
    pub bucket_name: Option<String>,
    pub repository_uri: Option<String>,
}

async fn account_facts(clients: &Clients, config: &Config) -> anyhow::Result<AccountFacts> {
    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_smithy_types::error::display::DisplayErrorContext(&e)))
        .with_context(|| match &config.endpoint_url {
            Some(url) => format!("cannot reach the AWS endpoint {url} (is the local stack running? ./start.sh starts it)"),
            None => "cannot call AWS STS: check your credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO login)".into(),
        })?;
    let account_id = identity.account().unwrap_or_default().to_string();
    tracing::info!(account = %account_id, caller = identity.arn().unwrap_or_default(), "connected");
    if let Some(expected) = &config.expected_account_id {
        if *expected != account_id {
            bail!(
                "these credentials are for account {account_id}, but environment {} is pinned to account {expected} (target.account_id)",
                config.name
            );
        }
    }
    let partition = identity
        .arn()
        .and_then(|arn| arn.split(':').nth(1))
        .unwrap_or("aws")
        .to_string();
    Ok(AccountFacts {
        account_id,
        partition,
    })
}
