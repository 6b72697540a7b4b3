//! What a deployed environment is, for a user: its outputs (the ids and
//! endpoints discovery and apply recorded) and whether it exists at all.

use super::Session;
use crate::blueprint::INTERFACE_ENDPOINTS;
use crate::config::Layout;
use crate::model::{Kind, ResourceId};
use crate::names::{AUTHENTICATOR_SECRET, JWT_SECRET};
use serde::Serialize;
use std::collections::BTreeMap;

impl Session {
    /// Whether discovery found the environment at all: its VPC or its
    /// bucket. `status`, `outputs` and `drift` say "not deployed" alike.
    pub fn ensure_deployed(&self) -> anyhow::Result<()> {
        let outputs = self.outputs();
        if outputs.vpc_id.is_none() && outputs.bucket_name.is_none() {
            anyhow::bail!(
                "environment `{}` is not deployed: nothing of it was found (`poolside deploy --env {}` creates it)",
                self.config.name,
                self.config.name
            );
        }
        Ok(())
    }

    /// The VPC, public and private subnets and NAT gateways the environment
    /// runs in: those discovery found, or the customer's once poolside has
    /// made its groups in their VPC (`deployed`).
    fn network_outputs(
        &self,
        deployed: bool,
    ) -> (Option<String>, Vec<String>, Vec<String>, Vec<String>) {
        let id = |kind: Kind, name: &str| self.cx.physical_id(&ResourceId::new(kind, name));
        match &self.config.network.layout {
            Layout::Owned(net) => {
                let azs = &net.availability_zones;
                let subnets = |tier: &str| -> Vec<String> {
                    azs.iter()
                        .filter_map(|az| id(Kind::Subnet, &format!("{tier}-{az}")))
                        .collect()
                };
                (
                    id(Kind::Vpc, "main"),
                    subnets("public"),
                    subnets("private"),
                    azs.iter()
                        .filter_map(|az| id(Kind::NatGateway, az))
                        .collect(),
                )
            }
            Layout::Existing(net) if deployed => (
                Some(net.vpc_id.clone()),
                net.public_subnet_ids.clone(),
                net.private_subnet_ids.clone(),
                vec![],
            ),
            Layout::Existing(_) => (None, vec![], vec![], vec![]),
        }
    }

    pub fn outputs(&self) -> Outputs {
        let id = |kind: Kind, name: &str| self.cx.physical_id(&ResourceId::new(kind, name));
        let security_groups: BTreeMap<String, String> =
            ["load-balancer", "api", "database", "endpoints"]
                .into_iter()
                .filter_map(|name| Some((name.to_string(), id(Kind::SecurityGroup, name)?)))
                .collect();
        let network = self.network_outputs(!security_groups.is_empty());
        let mut vpc_endpoints: BTreeMap<String, String> = BTreeMap::new();
        for name in std::iter::once("s3").chain(INTERFACE_ENDPOINTS.iter().map(|(n, _)| *n)) {
            if let Some(endpoint) = id(Kind::VpcEndpoint, name) {
                vpc_endpoints.insert(name.to_string(), endpoint);
            }
        }
        Outputs {
            environment: self.config.name.clone(),
            region: self.config.region.clone(),
            vpc_id: network.0,
            public_subnet_ids: network.1,
            private_subnet_ids: network.2,
            nat_gateway_ids: network.3,
            security_group_ids: security_groups,
            vpc_endpoint_ids: vpc_endpoints,
            bucket_name: self
                .cx
                .attribute(&ResourceId::new(Kind::Bucket, "artifacts"), "name"),
            repository_uri: self
                .cx
                .attribute(&ResourceId::new(Kind::Repository, "postgrest"), "uri"),
            database_endpoint: {
                let db = ResourceId::new(Kind::DbInstance, "main");
                match (
                    self.cx.attribute(&db, "address"),
                    self.cx.attribute(&db, "port"),
                ) {
                    (Some(address), Some(port)) => Some(format!("{address}:{port}")),
                    _ => None,
                }
            },
            database_master_secret_arn: self.cx.attribute(
                &ResourceId::new(Kind::DbInstance, "main"),
                "master_secret_arn",
            ),
            authenticator_secret_arn: id(Kind::Secret, AUTHENTICATOR_SECRET),
            jwt_secret_arn: id(Kind::Secret, JWT_SECRET),
            load_balancer_dns: self
                .cx
                .attribute(&ResourceId::new(Kind::LoadBalancer, "api"), "dns_name"),
            api_url: self.api_url(),
            ecs_cluster: id(Kind::Cluster, "main"),
            ecs_service: id(Kind::Service, "api"),
            task_definition_arn: id(Kind::TaskDefinition, "api"),
            log_group: id(Kind::LogGroup, "api"),
            dashboard: id(Kind::Dashboard, "main"),
        }
    }

    /// Where the API answers: the local stand-in on an emulator target; on
    /// AWS the domain name with a certificate, the load balancer without.
    pub fn api_url(&self) -> Option<String> {
        if self.config.endpoint_url.is_some() {
            return Some(format!("http://127.0.0.1:{}", self.config.api.local_port));
        }
        match (self.config.api.https(), &self.config.api.domain_name) {
            (true, Some(domain)) => Some(format!("https://{domain}")),
            (false, Some(domain)) => Some(format!("http://{domain}")),
            _ => Some(format!("http://{}", self.load_balancer_dns()?)),
        }
    }

    /// On AWS, the load balancer whose addresses the API's domain name is
    /// pinned to for verification, so the check needs no DNS record yet.
    pub fn verify_through(&self) -> Option<String> {
        if self.config.endpoint_url.is_some() || self.config.api.domain_name.is_none() {
            return None;
        }
        self.load_balancer_dns()
    }

    fn load_balancer_dns(&self) -> Option<String> {
        self.cx
            .attribute(&ResourceId::new(Kind::LoadBalancer, "api"), "dns_name")
    }
}

/// What a user needs after a deploy, read from what discovery and apply recorded.
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
    pub database_endpoint: Option<String>,
    /// Secrets are referred to by ARN only; their values are never printed.
    pub database_master_secret_arn: Option<String>,
    pub authenticator_secret_arn: Option<String>,
    pub jwt_secret_arn: Option<String>,
    pub load_balancer_dns: Option<String>,
    pub api_url: Option<String>,
    pub ecs_cluster: Option<String>,
    pub ecs_service: Option<String>,
    pub task_definition_arn: Option<String>,
    pub log_group: Option<String>,
    pub dashboard: Option<String>,
}
