//! The network family: the VPC, its subnets, gateways, route tables,
//! security groups and endpoints. This file discovers all of them in one
//! batch of EC2 describes; each submodule creates, updates and deletes its
//! kinds.

pub mod customer;
mod endpoints;
mod route_tables;
mod security;
pub mod spec;
mod vpc;

use super::aws_error::AwsResultExt;
use super::context::Context;
use super::tags::{env_filter, from_ec2_tags, identify, Names};
use crate::model::*;
use crate::resources::spec::*;
use aws_sdk_ec2::types::{Filter, VpcAttributeName};
use std::collections::{BTreeMap, BTreeSet};

/// Every EC2 resource of the environment: one describe per resource type, run concurrently.
pub async fn discover(cx: &Context) -> anyhow::Result<Vec<Live>> {
    let (vpcs, subnets, igws, addresses, nats, route_tables, groups, vpc_endpoints) =
        describe_all(cx).await?;
    let mut ours = Identifier::new(&cx.environment);
    let vpcs = ours.keep(vpcs.vpcs(), |v| v.tags(), |v| v.vpc_id());
    let subnets = ours.keep(subnets.subnets(), |s| s.tags(), |s| s.subnet_id());
    let igws = ours.keep(
        igws.internet_gateways(),
        |g| g.tags(),
        |g| g.internet_gateway_id(),
    );
    let addresses = ours.keep(addresses.addresses(), |a| a.tags(), |a| a.allocation_id());
    let nats = ours.keep(
        nats.nat_gateways().iter().filter(|n| {
            use aws_sdk_ec2::types::NatGatewayState as S;
            matches!(n.state(), Some(S::Pending | S::Available))
        }),
        |n| n.tags(),
        |n| n.nat_gateway_id(),
    );
    let route_tables = ours.keep(
        route_tables.route_tables(),
        |r| r.tags(),
        |r| r.route_table_id(),
    );
    let groups = ours.keep(groups.security_groups(), |g| g.tags(), |g| g.group_id());
    let vpc_endpoints = ours.keep(
        vpc_endpoints.vpc_endpoints().iter().filter(|e| {
            // EC2 answers `deleted` where the SDK's enum spells `Deleted`:
            // compare the text, or a deleted endpoint is found for hours.
            let state = e.state().map(|s| s.as_str().to_ascii_lowercase());
            !matches!(
                state.as_deref(),
                Some("deleted" | "deleting" | "failed" | "rejected" | "expired")
            )
        }),
        |e| e.tags(),
        |e| e.vpc_endpoint_id(),
    );
    let names = ours.names;

    // Second round: what needs the ids found in the first.
    let group_ids: Vec<String> = groups
        .iter()
        .filter_map(|(_, g)| g.group_id().map(str::to_string))
        .collect();
    let vpc_attributes = futures::future::try_join_all(
        vpcs.iter()
            .map(|(_, v)| vpc_dns_attributes(cx, v.vpc_id().unwrap_or_default())),
    );
    let (vpc_attributes, rules) =
        tokio::try_join!(vpc_attributes, security::describe_rules(cx, &group_ids))?;

    let mut live = Vec::new();
    live.extend(
        vpcs.iter()
            .zip(vpc_attributes)
            .map(|((id, v), dns)| vpc_live(id, v, dns)),
    );
    live.extend(subnets.iter().map(|(id, s)| subnet_live(id, s, &names)));
    live.extend(
        igws.iter()
            .map(|(id, g)| internet_gateway_live(id, g, &names)),
    );
    live.extend(addresses.iter().map(|(id, a)| elastic_ip_live(id, a)));
    live.extend(nats.iter().map(|(id, n)| nat_gateway_live(id, n, &names)));
    live.extend(
        route_tables
            .iter()
            .map(|(id, r)| route_tables::route_table_live(id, r, &names)),
    );
    live.extend(security::convert(&groups, &rules, &names));
    live.extend(endpoints::convert(&vpc_endpoints, &names));
    Ok(live)
}

type Described = (
    aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput,
    aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput,
    aws_sdk_ec2::operation::describe_internet_gateways::DescribeInternetGatewaysOutput,
    aws_sdk_ec2::operation::describe_addresses::DescribeAddressesOutput,
    aws_sdk_ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput,
    aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput,
    aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput,
    aws_sdk_ec2::operation::describe_vpc_endpoints::DescribeVpcEndpointsOutput,
);

/// The first round: every type's describe, filtered by the environment's tag.
async fn describe_all(cx: &Context) -> anyhow::Result<Described> {
    let ec2 = &cx.clients.ec2;
    let env = || env_filter(&cx.environment);
    tokio::try_join!(
        async {
            ec2.describe_vpcs()
                .filters(env())
                .send()
                .await
                .aws("DescribeVpcs")
        },
        async {
            ec2.describe_subnets()
                .filters(env())
                .send()
                .await
                .aws("DescribeSubnets")
        },
        async {
            ec2.describe_internet_gateways()
                .filters(env())
                .send()
                .await
                .aws("DescribeInternetGateways")
        },
        async {
            ec2.describe_addresses()
                .filters(env())
                .send()
                .await
                .aws("DescribeAddresses")
        },
        // moto ignores tag filters here; identify() checks the tags again below.
        async {
            ec2.describe_nat_gateways()
                .filter(env())
                .send()
                .await
                .aws("DescribeNatGateways")
        },
        async {
            ec2.describe_route_tables()
                .filters(env())
                .send()
                .await
                .aws("DescribeRouteTables")
        },
        async {
            ec2.describe_security_groups()
                .filters(env())
                .send()
                .await
                .aws("DescribeSecurityGroups")
        },
        async {
            ec2.describe_vpc_endpoints()
                .filters(env())
                .send()
                .await
                .aws("DescribeVpcEndpoints")
        },
    )
}

fn vpc_live(
    id: &ResourceId,
    v: &aws_sdk_ec2::types::Vpc,
    (dns_support, dns_hostnames): (bool, bool),
) -> Live {
    Live {
        id: id.clone(),
        physical_id: v.vpc_id().unwrap_or_default().to_string(),
        spec: Spec::Vpc(VpcSpec {
            cidr: v.cidr_block().unwrap_or_default().to_string(),
            dns_support,
            dns_hostnames,
            tags: from_ec2_tags(v.tags()),
        }),
        attributes: BTreeMap::new(),
    }
}

fn subnet_live(id: &ResourceId, s: &aws_sdk_ec2::types::Subnet, names: &Names) -> Live {
    Live {
        id: id.clone(),
        physical_id: s.subnet_id().unwrap_or_default().to_string(),
        spec: Spec::Subnet(SubnetSpec {
            vpc: names.logical(s.vpc_id().unwrap_or_default()),
            cidr: s.cidr_block().unwrap_or_default().to_string(),
            availability_zone: s.availability_zone().unwrap_or_default().to_string(),
            tags: from_ec2_tags(s.tags()),
        }),
        attributes: BTreeMap::new(),
    }
}

fn internet_gateway_live(
    id: &ResourceId,
    g: &aws_sdk_ec2::types::InternetGateway,
    names: &Names,
) -> Live {
    let attached = g
        .attachments()
        .iter()
        .find_map(|a| a.vpc_id())
        .map(|v| names.logical(v));
    Live {
        id: id.clone(),
        physical_id: g.internet_gateway_id().unwrap_or_default().to_string(),
        spec: Spec::InternetGateway(InternetGatewaySpec {
            vpc: attached,
            tags: from_ec2_tags(g.tags()),
        }),
        attributes: BTreeMap::new(),
    }
}

fn elastic_ip_live(id: &ResourceId, a: &aws_sdk_ec2::types::Address) -> Live {
    Live {
        id: id.clone(),
        physical_id: a.allocation_id().unwrap_or_default().to_string(),
        spec: Spec::ElasticIp(ElasticIpSpec {
            tags: from_ec2_tags(a.tags()),
        }),
        attributes: [(
            "public_ip".to_string(),
            a.public_ip().unwrap_or_default().to_string(),
        )]
        .into(),
    }
}

fn nat_gateway_live(id: &ResourceId, n: &aws_sdk_ec2::types::NatGateway, names: &Names) -> Live {
    let allocation = n
        .nat_gateway_addresses()
        .iter()
        .find_map(|a| a.allocation_id())
        .unwrap_or_default();
    Live {
        id: id.clone(),
        physical_id: n.nat_gateway_id().unwrap_or_default().to_string(),
        spec: Spec::NatGateway(NatGatewaySpec {
            subnet: names.logical(n.subnet_id().unwrap_or_default()),
            elastic_ip: names.logical(allocation),
            tags: from_ec2_tags(n.tags()),
        }),
        attributes: BTreeMap::new(),
    }
}

/// Keeps the resources of this environment and learns their logical names.
struct Identifier<'e> {
    environment: &'e str,
    seen: BTreeSet<ResourceId>,
    names: Names,
}

impl<'e> Identifier<'e> {
    fn new(environment: &'e str) -> Self {
        Identifier {
            environment,
            seen: BTreeSet::new(),
            names: Names::default(),
        }
    }

    fn keep<'a, T: 'a>(
        &mut self,
        items: impl IntoIterator<Item = &'a T>,
        tags: impl Fn(&T) -> &[aws_sdk_ec2::types::Tag],
        physical_id: impl Fn(&T) -> Option<&str>,
    ) -> Vec<(ResourceId, &'a T)> {
        items
            .into_iter()
            .filter_map(|item| {
                let physical = physical_id(item)?;
                let id = identify(
                    self.environment,
                    &from_ec2_tags(tags(item)),
                    physical,
                    &mut self.seen,
                )?;
                self.names.insert(physical, &id);
                Some((id, item))
            })
            .collect()
    }
}

async fn vpc_dns_attributes(cx: &Context, vpc_id: &str) -> anyhow::Result<(bool, bool)> {
    let get = |attribute: VpcAttributeName| async move {
        cx.clients
            .ec2
            .describe_vpc_attribute()
            .vpc_id(vpc_id)
            .attribute(attribute)
            .send()
            .await
            .aws("DescribeVpcAttribute")
    };
    let (support, hostnames) = tokio::try_join!(
        get(VpcAttributeName::EnableDnsSupport),
        get(VpcAttributeName::EnableDnsHostnames)
    )?;
    Ok((
        support
            .enable_dns_support()
            .and_then(|v| v.value())
            .unwrap_or(false),
        hostnames
            .enable_dns_hostnames()
            .and_then(|v| v.value())
            .unwrap_or(false),
    ))
}

/// The network interfaces in a subnet, security group or VPC, as
/// `eni-… (description)`: what keeps it from being deleted. Empty for other
/// kinds, or when EC2 cannot be asked.
pub async fn interfaces_using(cx: &Context, spec: &Spec, id: &str) -> Vec<String> {
    let filter = match spec {
        Spec::Subnet(_) => "subnet-id",
        Spec::SecurityGroup(_) => "group-id",
        Spec::Vpc(_) => "vpc-id",
        _ => return vec![],
    };
    let out = cx
        .clients
        .ec2
        .describe_network_interfaces()
        .filters(Filter::builder().name(filter).values(id).build())
        .send()
        .await;
    let Ok(out) = out else {
        return vec![];
    };
    out.network_interfaces()
        .iter()
        .map(|eni| {
            format!(
                "{} ({})",
                eni.network_interface_id().unwrap_or("?"),
                eni.description().unwrap_or("no description")
            )
        })
        .collect()
}
