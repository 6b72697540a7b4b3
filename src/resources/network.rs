//! VPC, subnets, internet gateway, Elastic IPs, NAT gateways and route tables;
//! also the batched EC2 discovery shared with security groups and endpoints.

use super::aws_error::{error_code, ignore_not_found, AwsResultExt};
use super::context::Context;
use super::tags::{env_filter, from_ec2_tags, identify, sync_ec2_tags, tag_spec, Names};
use super::{endpoints, route_tables, security};
use crate::model::*;
use anyhow::{anyhow, bail};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, ResourceType, VpcAttributeName,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long to wait for a NAT gateway to become available or go away (AWS: 1–5 minutes).
const NAT_WAIT: Duration = Duration::from_secs(15 * 60);

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

pub async fn create_vpc(cx: &Context, spec: &VpcSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_vpc()
        .cidr_block(&spec.cidr)
        .tag_specifications(tag_spec(ResourceType::Vpc, &spec.tags))
        .send()
        .await
        .aws("CreateVpc")?;
    let vpc_id = out
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or_else(|| anyhow!("CreateVpc returned no id"))?
        .to_string();
    let created = VpcSpec {
        dns_support: true,
        dns_hostnames: false,
        ..spec.clone()
    };
    update_vpc(cx, &vpc_id, &created, spec).await?;
    Ok(vpc_id)
}

pub async fn update_vpc(
    cx: &Context,
    vpc_id: &str,
    old: &VpcSpec,
    new: &VpcSpec,
) -> anyhow::Result<()> {
    let flag = |value: bool| AttributeBooleanValue::builder().value(value).build();
    // One attribute per call: the API refuses both at once.
    if old.dns_support != new.dns_support {
        cx.clients
            .ec2
            .modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_support(flag(new.dns_support))
            .send()
            .await
            .aws("ModifyVpcAttribute")?;
    }
    if old.dns_hostnames != new.dns_hostnames {
        cx.clients
            .ec2
            .modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_hostnames(flag(new.dns_hostnames))
            .send()
            .await
            .aws("ModifyVpcAttribute")?;
    }
    sync_ec2_tags(cx, vpc_id, &old.tags, &new.tags).await
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

pub async fn delete_vpc(cx: &Context, vpc_id: &str) -> anyhow::Result<()> {
    let result = cx.clients.ec2.delete_vpc().vpc_id(vpc_id).send().await;
    ignore_not_found(result, "DeleteVpc")
}

pub async fn create_subnet(cx: &Context, spec: &SubnetSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_subnet()
        .vpc_id(cx.resolve(&spec.vpc)?)
        .cidr_block(&spec.cidr)
        .availability_zone(&spec.availability_zone)
        .tag_specifications(tag_spec(ResourceType::Subnet, &spec.tags))
        .send()
        .await
        .aws("CreateSubnet")?;
    out.subnet()
        .and_then(|s| s.subnet_id())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("CreateSubnet returned no id"))
}

pub async fn delete_subnet(cx: &Context, subnet_id: &str) -> anyhow::Result<()> {
    let result = cx
        .clients
        .ec2
        .delete_subnet()
        .subnet_id(subnet_id)
        .send()
        .await;
    ignore_not_found(result, "DeleteSubnet")
}

pub async fn create_internet_gateway(
    cx: &Context,
    spec: &InternetGatewaySpec,
) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_internet_gateway()
        .tag_specifications(tag_spec(ResourceType::InternetGateway, &spec.tags))
        .send()
        .await
        .aws("CreateInternetGateway")?;
    let igw_id = out
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .ok_or_else(|| anyhow!("CreateInternetGateway returned no id"))?
        .to_string();
    let detached = InternetGatewaySpec {
        vpc: None,
        ..spec.clone()
    };
    update_internet_gateway(cx, &igw_id, &detached, spec).await?;
    Ok(igw_id)
}

pub async fn update_internet_gateway(
    cx: &Context,
    igw_id: &str,
    old: &InternetGatewaySpec,
    new: &InternetGatewaySpec,
) -> anyhow::Result<()> {
    if old.vpc != new.vpc {
        if let Some(previous) = &old.vpc {
            cx.clients
                .ec2
                .detach_internet_gateway()
                .internet_gateway_id(igw_id)
                .vpc_id(cx.resolve(previous)?)
                .send()
                .await
                .aws("DetachInternetGateway")?;
        }
        if let Some(vpc) = &new.vpc {
            cx.clients
                .ec2
                .attach_internet_gateway()
                .internet_gateway_id(igw_id)
                .vpc_id(cx.resolve(vpc)?)
                .send()
                .await
                .aws("AttachInternetGateway")?;
        }
    }
    sync_ec2_tags(cx, igw_id, &old.tags, &new.tags).await
}

pub async fn delete_internet_gateway(
    cx: &Context,
    igw_id: &str,
    spec: &InternetGatewaySpec,
) -> anyhow::Result<()> {
    if let Some(vpc) = &spec.vpc {
        let result = cx
            .clients
            .ec2
            .detach_internet_gateway()
            .internet_gateway_id(igw_id)
            .vpc_id(cx.resolve(vpc)?)
            .send()
            .await;
        ignore_not_found(result, "DetachInternetGateway")?;
    }
    let result = cx
        .clients
        .ec2
        .delete_internet_gateway()
        .internet_gateway_id(igw_id)
        .send()
        .await;
    ignore_not_found(result, "DeleteInternetGateway")
}

pub async fn create_elastic_ip(cx: &Context, spec: &ElasticIpSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tag_spec(ResourceType::ElasticIp, &spec.tags))
        .send()
        .await
        .aws("AllocateAddress")?;
    out.allocation_id()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("AllocateAddress returned no allocation id"))
}

pub async fn release_elastic_ip(cx: &Context, allocation_id: &str) -> anyhow::Result<()> {
    let result = cx
        .clients
        .ec2
        .release_address()
        .allocation_id(allocation_id)
        .send()
        .await;
    ignore_not_found(result, "ReleaseAddress")
}

pub async fn create_nat_gateway(cx: &Context, spec: &NatGatewaySpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_nat_gateway()
        .subnet_id(cx.resolve(&spec.subnet)?)
        .allocation_id(cx.resolve(&spec.elastic_ip)?)
        .tag_specifications(tag_spec(ResourceType::Natgateway, &spec.tags))
        .send()
        .await
        .aws("CreateNatGateway")?;
    let nat_id = out
        .nat_gateway()
        .and_then(|n| n.nat_gateway_id())
        .ok_or_else(|| anyhow!("CreateNatGateway returned no id"))?
        .to_string();
    use aws_sdk_ec2::client::Waiters;
    cx.clients
        .ec2
        .wait_until_nat_gateway_available()
        .nat_gateway_ids(&nat_id)
        .wait(NAT_WAIT)
        .await
        .aws("waiting for the NAT gateway to become available")?;
    Ok(nat_id)
}

pub async fn delete_nat_gateway(cx: &Context, nat_id: &str) -> anyhow::Result<()> {
    let addresses: Vec<String> = cx
        .clients
        .ec2
        .describe_nat_gateways()
        .nat_gateway_ids(nat_id)
        .send()
        .await
        .map(|out| {
            out.nat_gateways()
                .iter()
                .flat_map(|n| n.nat_gateway_addresses())
                .filter_map(|a| a.allocation_id().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let result = cx
        .clients
        .ec2
        .delete_nat_gateway()
        .nat_gateway_id(nat_id)
        .send()
        .await;
    ignore_not_found(result, "DeleteNatGateway")?;
    // Its Elastic IP and subnet cannot go before it has gone: AWS keeps it
    // `deleting` for a minute or two. A steady poll notices within seconds
    // (the SDK's waiter waits 15 s and more between looks).
    let every = if cx.emulator {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let started = tokio::time::Instant::now();
    loop {
        let out = cx
            .clients
            .ec2
            .describe_nat_gateways()
            .nat_gateway_ids(nat_id)
            .send()
            .await;
        let state = match out {
            Ok(out) => out
                .nat_gateways()
                .first()
                .and_then(|n| n.state())
                .map(|s| s.as_str().to_string()),
            Err(err) if error_code(&err) == Some("NatGatewayNotFound") => None,
            Err(err) => return Err(err).aws("DescribeNatGateways"),
        };
        match state.as_deref() {
            None | Some("deleted") => break,
            Some("failed") => bail!("NAT gateway {nat_id} failed while being deleted"),
            _ if started.elapsed() >= NAT_WAIT => bail!(
                "NAT gateway {nat_id} is still {} after {} minutes",
                state.unwrap_or_default(),
                NAT_WAIT.as_secs() / 60
            ),
            _ => tokio::time::sleep(every).await,
        }
    }
    release_association(cx, &addresses).await
}

/// AWS takes a deleted NAT gateway's Elastic IP off it; moto leaves it
/// associated, and a new NAT gateway with that address (a replacement) is
/// then refused with Resource.AlreadyAssociated. Free what is still held.
async fn release_association(cx: &Context, allocation_ids: &[String]) -> anyhow::Result<()> {
    if allocation_ids.is_empty() {
        return Ok(());
    }
    let out = cx
        .clients
        .ec2
        .describe_addresses()
        .set_allocation_ids(Some(allocation_ids.to_vec()))
        .send()
        .await
        .aws("DescribeAddresses")?;
    for association in out.addresses().iter().filter_map(|a| a.association_id()) {
        let result = cx
            .clients
            .ec2
            .disassociate_address()
            .association_id(association)
            .send()
            .await;
        match result {
            Err(err) if error_code(&err) == Some("InvalidAssociationID.NotFound") => {}
            other => {
                other.aws("DisassociateAddress")?;
            }
        }
    }
    Ok(())
}
