//! The customer's network (`[network] vpc_id`): read as it is, and checked
//! for what the environment needs from it, before any change and by every
//! drift check. poolside never changes, tags or deletes any of it, so what
//! is wrong here is a finding for the network's owner, named exactly.
//!
//! Contract: reads only (DescribeVpcs, DescribeVpcAttribute,
//! DescribeSubnets, DescribeRouteTables, DescribeVpcEndpoints); the checks
//! are pure.

use crate::config::ExistingNetwork;
use crate::resources::aws_error::{error_code, is_not_found_code, AwsResultExt};
use crate::resources::context::Context;
use aws_sdk_ec2::types::{Filter, RouteTable, Subnet, VpcAttributeName, VpcEndpoint};
use std::collections::BTreeSet;

/// The interface endpoints the API tasks reach AWS through without a NAT
/// gateway (and the S3 gateway endpoint for ECR's image layers).
pub const NEEDED_SERVICES: [&str; 4] = ["ecr.api", "ecr.dkr", "logs", "secretsmanager"];
/// A load balancer's subnets each need this many free addresses (ELB docs:
/// "at least 8 free IP addresses").
const LOAD_BALANCER_ADDRESSES: i32 = 8;

/// The customer's network as EC2 describes it.
#[derive(Debug, Default)]
pub struct CustomerNetwork {
    /// `None`: no such VPC.
    pub vpc_cidr: Option<String>,
    pub dns_support: bool,
    pub dns_hostnames: bool,
    /// An internet gateway is attached to the VPC.
    pub internet_gateway: bool,
    pub subnets: Vec<Subnet>,
    pub route_tables: Vec<RouteTable>,
    /// Endpoints in the VPC that are not this environment's own.
    pub endpoints: Vec<VpcEndpoint>,
}

/// One thing wrong with the customer's network, for its owner.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    /// The customer's resource (`subnet-0abc`, `vpc-0abc`).
    pub resource: String,
    pub problem: String,
    /// Deploy refuses while it is so; otherwise a path poolside cannot
    /// verify from routes alone (egress through a transit gateway or a
    /// firewall), which plan warns of.
    pub blocking: bool,
}

fn in_vpc(vpc_id: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc_id).build()
}

/// One of the VPC's DNS attributes; off when the VPC does not exist.
async fn dns_attribute(cx: &Context, vpc_id: &str, name: VpcAttributeName) -> anyhow::Result<bool> {
    let answer = cx
        .clients
        .ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(name)
        .send()
        .await;
    match answer {
        Ok(out) => Ok(out
            .enable_dns_support()
            .or(out.enable_dns_hostnames())
            .and_then(|v| v.value())
            .unwrap_or(false)),
        Err(err) if is_not_found_code(error_code(&err)) => Ok(false),
        Err(err) => Err(err).aws("DescribeVpcAttribute"),
    }
}

async fn route_tables(cx: &Context, vpc_id: &str) -> anyhow::Result<Vec<RouteTable>> {
    cx.clients
        .ec2
        .describe_route_tables()
        .filters(in_vpc(vpc_id))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("DescribeRouteTables")
}

/// The VPC's endpoints that are not this environment's, in service.
async fn others_endpoints(cx: &Context, vpc_id: &str) -> anyhow::Result<Vec<VpcEndpoint>> {
    let all = cx
        .clients
        .ec2
        .describe_vpc_endpoints()
        .filters(in_vpc(vpc_id))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("DescribeVpcEndpoints")?;
    let ours = |e: &VpcEndpoint| {
        e.tags().iter().any(|t| {
            t.key() == Some(crate::model::TAG_ENV) && t.value() == Some(cx.environment.as_str())
        })
    };
    Ok(all
        .into_iter()
        .filter(|e| !ours(e))
        .filter(|e| {
            let state = e.state().map(|s| s.as_str().to_ascii_lowercase());
            matches!(state.as_deref(), Some("available" | "pending"))
        })
        .collect())
}

/// Reads the customer's VPC, subnets, route tables and endpoints at once.
pub async fn read(cx: &Context, network: &ExistingNetwork) -> anyhow::Result<CustomerNetwork> {
    let ec2 = &cx.clients.ec2;
    let vpc_id = network.vpc_id.as_str();
    let ids: Vec<String> = network
        .public_subnet_ids
        .iter()
        .chain(&network.private_subnet_ids)
        .cloned()
        .collect();
    let vpcs = async {
        match ec2.describe_vpcs().vpc_ids(vpc_id).send().await {
            Ok(out) => Ok(out
                .vpcs()
                .first()
                .and_then(|v| v.cidr_block().map(str::to_string))),
            Err(err) if is_not_found_code(error_code(&err)) => Ok(None),
            Err(err) => Err(err).aws("DescribeVpcs"),
        }
    };
    // By filter, not by id: a subnet that no longer exists is left out
    // (and named by the checks) instead of failing the whole read.
    let subnets = ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("subnet-id")
                .set_values(Some(ids))
                .build(),
        )
        .send();
    let gateways = async {
        ec2.describe_internet_gateways()
            .filters(
                Filter::builder()
                    .name("attachment.vpc-id")
                    .values(vpc_id)
                    .build(),
            )
            .send()
            .await
            .aws("DescribeInternetGateways")
    };
    let (vpc_cidr, dns_support, dns_hostnames, subnets, tables, endpoints, gateways) = tokio::try_join!(
        vpcs,
        dns_attribute(cx, vpc_id, VpcAttributeName::EnableDnsSupport),
        dns_attribute(cx, vpc_id, VpcAttributeName::EnableDnsHostnames),
        async { subnets.await.aws("DescribeSubnets") },
        route_tables(cx, vpc_id),
        others_endpoints(cx, vpc_id),
        gateways,
    )?;
    Ok(CustomerNetwork {
        vpc_cidr,
        dns_support,
        dns_hostnames,
        internet_gateway: !gateways.internet_gateways().is_empty(),
        subnets: subnets.subnets().to_vec(),
        route_tables: tables,
        endpoints,
    })
}

/// The route table a subnet uses: its own association, or the VPC's main table.
fn table_of<'a>(net: &'a CustomerNetwork, subnet_id: &str) -> Option<&'a RouteTable> {
    let associated = |table: &&RouteTable| {
        table
            .associations()
            .iter()
            .any(|a| a.subnet_id() == Some(subnet_id))
    };
    let main = |table: &&RouteTable| table.associations().iter().any(|a| a.main() == Some(true));
    net.route_tables
        .iter()
        .find(associated)
        .or_else(|| net.route_tables.iter().find(main))
}

/// Where a table sends `0.0.0.0/0`, if anywhere that works.
#[derive(Debug, PartialEq)]
enum Egress {
    InternetGateway,
    NatGateway,
    /// A transit gateway, a NAT instance, a firewall or Gateway Load
    /// Balancer endpoint, Cloud WAN: a path of the customer's that routes
    /// alone do not show to reach the internet.
    Other(String),
    None,
}

fn default_route(table: Option<&RouteTable>) -> Egress {
    let Some(route) = table.into_iter().flat_map(|t| t.routes()).find(|r| {
        r.destination_cidr_block() == Some("0.0.0.0/0")
            && r.state().map(|s| s.as_str()) != Some("blackhole")
    }) else {
        return Egress::None;
    };
    match (route.gateway_id(), route.nat_gateway_id()) {
        (Some(g), _) if g.starts_with("igw-") => Egress::InternetGateway,
        (_, Some(_)) => Egress::NatGateway,
        _ => {
            let target = [
                route.transit_gateway_id(),
                route.network_interface_id(),
                route.instance_id(),
                route.gateway_id(),
                route.core_network_arn(),
                route.vpc_peering_connection_id(),
            ]
            .into_iter()
            .flatten()
            .next();
            match target {
                // Peered VPCs do not lend each other their gateways.
                Some(t) if !t.starts_with("pcx-") => Egress::Other(t.to_string()),
                _ => Egress::None,
            }
        }
    }
}

/// The customer's endpoints for `service` in the region (`ecr.api`, `s3`).
fn has_endpoint(
    net: &CustomerNetwork,
    region: &str,
    service: &str,
    route_table: Option<&str>,
) -> bool {
    let name = format!("com.amazonaws.{region}.{service}");
    net.endpoints.iter().any(|e| {
        e.service_name() == Some(name.as_str())
            && match route_table {
                // A gateway endpoint serves only the tables it is in.
                Some(table) => e.route_table_ids().iter().any(|t| t == table),
                None => e.private_dns_enabled() == Some(true),
            }
    })
}

fn blocking(resource: &str, problem: String) -> Problem {
    Problem {
        resource: resource.to_string(),
        problem,
        blocking: true,
    }
}

fn unverified(resource: &str, problem: String) -> Problem {
    Problem {
        resource: resource.to_string(),
        problem,
        blocking: false,
    }
}

/// What the environment needs from the customer's network and does not
/// get. `addresses_needed`: free addresses the private subnets must have in
/// all (before the first deploy: tasks twice over, the schema task, the
/// database, the endpoints; after it, what a deployment adds).
pub fn problems(
    net: &CustomerNetwork,
    network: &ExistingNetwork,
    region: &str,
    addresses_needed: i32,
) -> Vec<Problem> {
    let vpc_id = &network.vpc_id;
    if net.vpc_cidr.is_none() {
        return vec![blocking(
            vpc_id,
            format!("VPC {vpc_id} does not exist in {region} (network.vpc_id)"),
        )];
    }
    let mut found = Vec::new();
    for (attribute, on) in [
        ("enableDnsSupport", net.dns_support),
        ("enableDnsHostnames", net.dns_hostnames),
    ] {
        if !on {
            found.push(blocking(vpc_id, format!("{attribute} is off: the tasks resolve the database and the endpoints by DNS. Its owner turns it on (ModifyVpcAttribute)")));
        }
    }
    if !net.internet_gateway {
        found.push(blocking(vpc_id, format!("{vpc_id} has no internet gateway attached: AWS refuses an internet-facing load balancer in it")));
    }
    let public = Tier::Public.check(net, network, region, &mut found);
    let private = Tier::Private.check(net, network, region, &mut found);
    let unserved: Vec<&String> = match (&public, &private) {
        (Some(public), Some(private)) => private.difference(public).collect(),
        _ => vec![],
    };
    if !unserved.is_empty() {
        found.push(blocking(vpc_id, format!("the private subnets are in {} where no public subnet is: the load balancer sends no traffic to tasks in a zone it is not in (list a public subnet there, or leave the private one out)", unserved.iter().map(|z| z.as_str()).collect::<Vec<_>>().join(", "))));
    }
    let private_subnets = net.subnets.iter().filter(|s| {
        network
            .private_subnet_ids
            .iter()
            .any(|id| Some(id.as_str()) == s.subnet_id())
    });
    let free: i32 = private_subnets
        .filter_map(|s| s.available_ip_address_count())
        .sum();
    if free < addresses_needed {
        found.push(blocking(vpc_id, format!("the private subnets have {free} free addresses in all, and the environment needs {addresses_needed} more (its tasks during a deployment, the schema task, the database, the endpoints)")));
    }
    if network.create_endpoints {
        for service in NEEDED_SERVICES {
            if has_endpoint(net, region, service, None) {
                found.push(blocking(vpc_id, format!("the VPC already has an endpoint for com.amazonaws.{region}.{service} with private DNS, so a second one cannot be made: set network.create_endpoints = false to use the customer's")));
            }
        }
    }
    found
}

#[derive(Clone, Copy, PartialEq)]
enum Tier {
    Public,
    Private,
}

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Tier::Public => "public",
            Tier::Private => "private",
        }
    }

    /// Checks the tier's subnets and returns the zones they are in (none
    /// when the file names a subnet that is not the VPC's): each
    /// subnet in the VPC, two zones or more, one subnet per zone where
    /// poolside puts one thing per zone (the load balancer; the endpoints),
    /// and a way out (see [`Tier::check_route`]).
    fn check(
        self,
        net: &CustomerNetwork,
        network: &ExistingNetwork,
        region: &str,
        found: &mut Vec<Problem>,
    ) -> Option<BTreeSet<String>> {
        let key = format!("network.{}_subnet_ids", self.name());
        let ids = match self {
            Tier::Public => &network.public_subnet_ids,
            Tier::Private => &network.private_subnet_ids,
        };
        let one_per_zone = self == Tier::Public || network.create_endpoints;
        let mut zones = BTreeSet::new();
        let mut misnamed = false;
        for id in ids {
            let Some(subnet) = net
                .subnets
                .iter()
                .find(|s| s.subnet_id() == Some(id.as_str()))
            else {
                found.push(blocking(
                    id,
                    format!("{id} ({key}) does not exist in {region}: check the id in the file"),
                ));
                misnamed = true;
                continue;
            };
            if subnet.vpc_id() != Some(network.vpc_id.as_str()) {
                misnamed = true;
                found.push(blocking(id, format!("{id} ({key}) is in {}, not in {} (network.vpc_id): check the ids in the file", subnet.vpc_id().unwrap_or("another VPC"), network.vpc_id)));
                continue;
            }
            let zone = subnet.availability_zone().unwrap_or_default().to_string();
            if !zones.insert(zone.clone()) && one_per_zone {
                let takes = match self {
                    Tier::Public => "the load balancer takes one subnet per zone",
                    Tier::Private => "poolside's interface endpoints take one subnet per zone (or set network.create_endpoints = false)",
                };
                found.push(blocking(
                    id,
                    format!(
                        "{id} ({key}) is a second {} subnet in {zone}: {takes}",
                        self.name()
                    ),
                ));
            }
            self.check_route(net, network, region, subnet, &key, found);
        }
        // A misnamed subnet is the problem to report, not the zones it leaves.
        if zones.len() < 2 && !ids.is_empty() && !misnamed {
            found.push(blocking(&network.vpc_id, format!("the {} subnets ({key}) are all in {}: the environment needs two or more availability zones", self.name(), zones.iter().next().cloned().unwrap_or_default())));
        }
        (!misnamed).then_some(zones)
    }

    /// Public: a route to the internet gateway and the load balancer's 8
    /// free addresses. Private: a route to a NAT gateway, or the endpoints
    /// the tasks need instead. A route through another of the customer's
    /// paths is warned of, not refused.
    fn check_route(
        self,
        net: &CustomerNetwork,
        network: &ExistingNetwork,
        region: &str,
        subnet: &Subnet,
        key: &str,
        found: &mut Vec<Problem>,
    ) {
        let id = subnet.subnet_id().unwrap_or_default();
        let table = table_of(net, id);
        let table_id = table
            .and_then(|t| t.route_table_id())
            .unwrap_or("its route table");
        let egress = default_route(table);
        if self == Tier::Public {
            match egress {
                Egress::InternetGateway => {}
                Egress::Other(target) => found.push(unverified(id, format!("{id} ({key}) sends 0.0.0.0/0 to {target}, not to the internet gateway: whether the load balancer is reachable through it is not checked"))),
                _ => found.push(blocking(id, format!("{id} ({key}) has no route to an internet gateway (0.0.0.0/0 in {table_id}): the load balancer would not be reachable"))),
            }
            let free = subnet.available_ip_address_count().unwrap_or(0);
            if free < LOAD_BALANCER_ADDRESSES {
                found.push(blocking(id, format!("{id} ({key}) has {free} free addresses; the load balancer needs {LOAD_BALANCER_ADDRESSES} in each of its subnets")));
            }
            return;
        }
        let s3 = has_endpoint(net, region, "s3", table.and_then(|t| t.route_table_id()));
        let interfaces = network.create_endpoints
            || NEEDED_SERVICES
                .iter()
                .all(|s| has_endpoint(net, region, s, None));
        match egress {
            Egress::NatGateway => {}
            _ if s3 && interfaces => {}
            Egress::Other(target) => found.push(unverified(id, format!("{id} ({key}) sends 0.0.0.0/0 to {target}: that the tasks reach ECR, S3, Logs and Secrets Manager through it is not checked"))),
            _ => found.push(blocking(id, format!("{id} ({key}) has no route to a NAT gateway (0.0.0.0/0 in {table_id}) and not the endpoints the tasks need instead (an S3 gateway endpoint in {table_id}{}): the tasks could not pull their image or write their logs", if network.create_endpoints { "" } else { ", and interface endpoints with private DNS for ECR, ECR's registry, Logs and Secrets Manager" }))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{Route, RouteTableAssociation};

    const VPC: &str = "vpc-0a1b2c3d4e5f67890";

    fn network(create_endpoints: bool) -> ExistingNetwork {
        ExistingNetwork {
            vpc_id: VPC.into(),
            public_subnet_ids: vec!["subnet-00000001".into(), "subnet-00000002".into()],
            private_subnet_ids: vec!["subnet-00000003".into(), "subnet-00000004".into()],
            create_endpoints,
        }
    }

    fn subnet(id: &str, zone: &str) -> Subnet {
        Subnet::builder()
            .subnet_id(id)
            .vpc_id(VPC)
            .availability_zone(zone)
            .available_ip_address_count(200)
            .build()
    }

    fn table(id: &str, subnets: &[&str], target: &str) -> RouteTable {
        let route = Route::builder().destination_cidr_block("0.0.0.0/0");
        let route = if target.starts_with("nat-") {
            route.nat_gateway_id(target)
        } else {
            route.gateway_id(target)
        };
        table_routing(id, subnets, Some(route.build()))
    }

    /// A table of `subnets` with `route` as its default route, or none.
    fn table_routing(id: &str, subnets: &[&str], route: Option<Route>) -> RouteTable {
        let mut table = RouteTable::builder()
            .route_table_id(id)
            .set_routes(route.map(|r| vec![r]));
        for s in subnets {
            table = table.associations(RouteTableAssociation::builder().subnet_id(*s).build());
        }
        table.build()
    }

    /// Two public subnets routed to the internet gateway, two private ones
    /// to a NAT gateway, DNS on: as a customer's network usually is.
    fn sound() -> CustomerNetwork {
        CustomerNetwork {
            vpc_cidr: Some("10.70.0.0/16".into()),
            dns_support: true,
            dns_hostnames: true,
            internet_gateway: true,
            subnets: vec![
                subnet("subnet-00000001", "eu-west-1a"),
                subnet("subnet-00000002", "eu-west-1b"),
                subnet("subnet-00000003", "eu-west-1a"),
                subnet("subnet-00000004", "eu-west-1b"),
            ],
            route_tables: vec![
                table(
                    "rtb-public",
                    &["subnet-00000001", "subnet-00000002"],
                    "igw-1",
                ),
                table(
                    "rtb-private",
                    &["subnet-00000003", "subnet-00000004"],
                    "nat-1",
                ),
            ],
            endpoints: vec![],
        }
    }

    #[test]
    fn a_sound_network_has_no_problem() {
        assert_eq!(problems(&sound(), &network(true), "eu-west-1", 20), []);
    }

    #[test]
    fn each_problem_names_the_customers_resource_and_what_is_wrong() {
        let mut net = sound();
        net.route_tables[1] = table(
            "rtb-private",
            &["subnet-00000003", "subnet-00000004"],
            "igw-1",
        );
        net.subnets.remove(1);
        net.subnets[0] = Subnet::builder()
            .subnet_id("subnet-00000001")
            .vpc_id("vpc-0other000")
            .availability_zone("eu-west-1a")
            .build();
        net.dns_hostnames = false;
        let found = problems(&net, &network(true), "eu-west-1", 20);
        let text: Vec<String> = found
            .iter()
            .map(|p| format!("{}: {}", p.resource, p.problem))
            .collect();
        let expect = [
            "vpc-0a1b2c3d4e5f67890: enableDnsHostnames is off",
            "subnet-00000001: subnet-00000001 (network.public_subnet_ids) is in vpc-0other000, not in vpc-0a1b2c3d4e5f67890",
            "subnet-00000002: subnet-00000002 (network.public_subnet_ids) does not exist in eu-west-1",
            "subnet-00000003: subnet-00000003 (network.private_subnet_ids) has no route to a NAT gateway (0.0.0.0/0 in rtb-private)",
        ];
        for e in expect {
            assert!(
                text.iter().any(|t| t.starts_with(e)),
                "{e:?} not in {text:#?}"
            );
        }
    }

    #[test]
    fn private_subnets_without_nat_need_the_endpoints() {
        let mut net = sound();
        net.route_tables[1] =
            table_routing("rtb-private", &["subnet-00000003", "subnet-00000004"], None);
        assert_eq!(problems(&net, &network(true), "eu-west-1", 20).len(), 2);
        net.endpoints.push(
            VpcEndpoint::builder()
                .service_name("com.amazonaws.eu-west-1.s3")
                .route_table_ids("rtb-private")
                .build(),
        );
        // poolside makes the interface endpoints; S3's is the customer's.
        assert_eq!(problems(&net, &network(true), "eu-west-1", 20), []);
        // Without poolside's, the customer's interface endpoints are needed.
        assert_eq!(problems(&net, &network(false), "eu-west-1", 20).len(), 2);
        for service in NEEDED_SERVICES {
            net.endpoints.push(
                VpcEndpoint::builder()
                    .service_name(format!("com.amazonaws.eu-west-1.{service}"))
                    .private_dns_enabled(true)
                    .build(),
            );
        }
        assert_eq!(problems(&net, &network(false), "eu-west-1", 20), []);
        // ...and poolside cannot make a second one with private DNS.
        let clash = problems(&net, &network(true), "eu-west-1", 20);
        assert_eq!(clash.len(), 4, "{clash:?}");
        assert!(clash[0]
            .problem
            .contains("set network.create_endpoints = false"));
    }

    #[test]
    fn address_space_and_zones_are_checked() {
        let mut net = sound();
        net.subnets[3] = subnet("subnet-00000004", "eu-west-1a");
        let found = problems(&net, &network(true), "eu-west-1", 1000);
        assert!(
            found.iter().any(|p| p
                .problem
                .contains("400 free addresses in all, and the environment needs 1000")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.problem.contains(
                "the private subnets (network.private_subnet_ids) are all in eu-west-1a"
            )),
            "{found:?}"
        );
        assert_eq!(
            problems(&CustomerNetwork::default(), &network(true), "eu-west-1", 1)[0].problem,
            "VPC vpc-0a1b2c3d4e5f67890 does not exist in eu-west-1 (network.vpc_id)"
        );
    }

    /// Egress through a transit gateway or a firewall is the customer's
    /// design: warned of as not verified, never refused.
    #[test]
    fn other_egress_paths_are_warned_of_not_refused() {
        let mut net = sound();
        let via_transit = Route::builder()
            .destination_cidr_block("0.0.0.0/0")
            .transit_gateway_id("tgw-1")
            .build();
        net.route_tables[1] = table_routing(
            "rtb-private",
            &["subnet-00000003", "subnet-00000004"],
            Some(via_transit),
        );
        let found = problems(&net, &network(true), "eu-west-1", 20);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .all(|p| !p.blocking && p.problem.contains("sends 0.0.0.0/0 to tgw-1")),
            "{found:?}"
        );
        // A route through a peering connection is no way out.
        net.route_tables[1] = table(
            "rtb-private",
            &["subnet-00000003", "subnet-00000004"],
            "pcx-1",
        );
        let found = problems(&net, &network(true), "eu-west-1", 20);
        assert!(
            !found.is_empty() && found.iter().all(|p| p.blocking),
            "{found:?}"
        );
    }

    #[test]
    fn zones_the_load_balancer_and_the_endpoints_cannot_serve_are_refused() {
        let mut net = sound();
        net.subnets[3] = subnet("subnet-00000004", "eu-west-1c");
        net.subnets.push(subnet("subnet-00000005", "eu-west-1a"));
        let mut three = network(true);
        three.private_subnet_ids.push("subnet-00000005".into());
        net.route_tables[1] = table(
            "rtb-private",
            &["subnet-00000003", "subnet-00000004", "subnet-00000005"],
            "nat-1",
        );
        let text = |n: &ExistingNetwork| -> Vec<String> {
            problems(&net, n, "eu-west-1", 20)
                .into_iter()
                .map(|p| p.problem)
                .collect()
        };
        let found = text(&three);
        assert!(
            found
                .iter()
                .any(|t| t
                    .contains("the private subnets are in eu-west-1c where no public subnet is")),
            "{found:#?}"
        );
        assert!(found.iter().any(|t| t.contains("subnet-00000005 (network.private_subnet_ids) is a second private subnet in eu-west-1a")), "{found:#?}");
        // With the customer's endpoints, two private subnets may share a zone.
        three.create_endpoints = false;
        let found = text(&three);
        assert!(
            !found
                .iter()
                .any(|t| t.contains("is a second private subnet")),
            "{found:#?}"
        );
        let without_gateway = CustomerNetwork {
            internet_gateway: false,
            ..sound()
        };
        let found = problems(&without_gateway, &network(true), "eu-west-1", 20);
        assert!(
            found[0]
                .problem
                .contains("has no internet gateway attached"),
            "{found:?}"
        );
    }

    /// A subnet id mistyped in the file is named once, as the file's mistake.
    #[test]
    fn a_misnamed_subnet_is_the_files_mistake_and_nothing_else() {
        let mut net = sound();
        net.subnets.remove(1);
        let found = problems(&net, &network(true), "eu-west-1", 20);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .problem
                .ends_with("does not exist in eu-west-1: check the id in the file"),
            "{found:?}"
        );
    }
}
