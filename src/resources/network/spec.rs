//! The specs of the VPC, its subnets, gateways, route tables, security groups and endpoints: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    pub destination: String,
    /// `igw/...`, `nat/...`, or the AWS id of a target poolside does not manage.
    pub target: ResourceId,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// A CIDR block, a group (`sg/...` or an AWS group id) or a prefix list id.
    pub peer: String,
    pub description: String,
}

impl Rule {
    pub fn tcp(port: u16, peer: impl Into<String>, description: &str) -> Self {
        Rule {
            protocol: "tcp".into(),
            from_port: port.into(),
            to_port: port.into(),
            peer: peer.into(),
            description: description.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VpcSpec {
    pub cidr: String,
    pub dns_support: bool,
    pub dns_hostnames: bool,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubnetSpec {
    pub vpc: ResourceId,
    pub cidr: String,
    pub availability_zone: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InternetGatewaySpec {
    /// The VPC it is attached to.
    pub vpc: Option<ResourceId>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ElasticIpSpec {
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NatGatewaySpec {
    pub subnet: ResourceId,
    pub elastic_ip: ResourceId,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteTableSpec {
    pub vpc: ResourceId,
    pub routes: BTreeSet<Route>,
    pub subnets: BTreeSet<ResourceId>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecurityGroupSpec {
    pub vpc: ResourceId,
    pub group_name: String,
    pub description: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecurityGroupRulesSpec {
    pub group: ResourceId,
    pub ingress: BTreeSet<Rule>,
    pub egress: BTreeSet<Rule>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VpcEndpointSpec {
    pub vpc: ResourceId,
    pub service_name: String,
    pub endpoint_type: String,
    pub route_tables: BTreeSet<ResourceId>,
    pub subnets: BTreeSet<ResourceId>,
    pub security_groups: BTreeSet<ResourceId>,
    pub private_dns: bool,
    pub tags: Tags,
}

impl Properties for VpcSpec {
    const IMMUTABLE: &'static [&'static str] = &["cidr"];
}

impl Properties for SubnetSpec {
    const IMMUTABLE: &'static [&'static str] = &["vpc", "cidr", "availability_zone"];

    fn logical_references(&self) -> Vec<ResourceId> {
        vec![self.vpc.clone()]
    }
}

impl Properties for InternetGatewaySpec {
    const IMMUTABLE: &'static [&'static str] = &[];

    fn logical_references(&self) -> Vec<ResourceId> {
        self.vpc.iter().cloned().collect()
    }
}

impl Properties for ElasticIpSpec {
    const IMMUTABLE: &'static [&'static str] = &[];
}

impl Properties for NatGatewaySpec {
    const IMMUTABLE: &'static [&'static str] = &["subnet", "elastic_ip"];

    fn logical_references(&self) -> Vec<ResourceId> {
        vec![self.subnet.clone(), self.elastic_ip.clone()]
    }
}

impl Properties for RouteTableSpec {
    const IMMUTABLE: &'static [&'static str] = &["vpc"];

    fn logical_references(&self) -> Vec<ResourceId> {
        let mut refs = vec![self.vpc.clone()];
        refs.extend(self.routes.iter().map(|r| r.target.clone()));
        refs.extend(self.subnets.iter().cloned());
        refs
    }
}

impl Properties for SecurityGroupSpec {
    const IMMUTABLE: &'static [&'static str] = &["vpc", "group_name", "description"];

    fn logical_references(&self) -> Vec<ResourceId> {
        vec![self.vpc.clone()]
    }
}

impl Properties for SecurityGroupRulesSpec {
    const IMMUTABLE: &'static [&'static str] = &["group"];

    fn logical_references(&self) -> Vec<ResourceId> {
        let peers = self.ingress.iter().chain(&self.egress);
        let mut refs = vec![self.group.clone()];
        refs.extend(peers.map(|r| ResourceId(r.peer.clone())));
        refs
    }
}

impl Properties for VpcEndpointSpec {
    const IMMUTABLE: &'static [&'static str] = &["vpc", "service_name", "endpoint_type"];

    fn logical_references(&self) -> Vec<ResourceId> {
        let mut refs = vec![self.vpc.clone()];
        refs.extend(self.route_tables.iter().cloned());
        refs.extend(self.subnets.iter().cloned());
        refs.extend(self.security_groups.iter().cloned());
        refs
    }
}
