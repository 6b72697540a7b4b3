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
    let tables = ec2.describe_route_tables().filters(in_vpc(vpc_id)).send();
    let endpoints = ec2.describe_vpc_endpoints().filters(in_vpc(vpc_id)).send();
    let (vpc_cidr, dns_support, dns_hostnames, subnets, tables, endpoints) = tokio::try_join!(
        vpcs,
        dns_attribute(cx, vpc_id, VpcAttributeName::EnableDnsSupport),
        dns_attribute(cx, vpc_id, VpcAttributeName::EnableDnsHostnames),
        async { subnets.await.aws("DescribeSubnets") },
        async { tables.await.aws("DescribeRouteTables") },
        async { endpoints.await.aws("DescribeVpcEndpoints") },
    )?;
    let ours = |e: &&VpcEndpoint| {
        e.tags().iter().any(|t| {
            t.key() == Some(crate::model::TAG_ENV) && t.value() == Some(cx.environment.as_str())
        })
    };
    Ok(CustomerNetwork {
        vpc_cidr,
        dns_support,
        dns_hostnames,
        subnets: subnets.subnets().to_vec(),
        route_tables: tables.route_tables().to_vec(),
        endpoints: endpoints
            .vpc_endpoints()
            .iter()
            .filter(|e| !ours(e))
            .filter(|e| {
                let state = e.state().map(|s| s.as_str().to_ascii_lowercase());
                matches!(state.as_deref(), Some("available" | "pending"))
            })
            .cloned()
            .collect(),
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

/// The target of the table's default route (`igw-…`, `nat-…`), if it has one that works.
fn default_route(table: &RouteTable) -> Option<String> {
    table
        .routes()
        .iter()
        .filter(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .filter(|r| r.state().map(|s| s.as_str()) != Some("blackhole"))
        .find_map(|r| {
            r.gateway_id()
                .filter(|g| g.starts_with("igw-"))
                .or(r.nat_gateway_id())
                .map(str::to_string)
        })
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

/// What the environment needs from the customer's network and does not get.
/// `addresses_needed`: free addresses the private subnets must have in all
/// (tasks during a rolling deployment, the schema task, endpoints, RDS).
pub fn problems(
    net: &CustomerNetwork,
    network: &ExistingNetwork,
    region: &str,
    addresses_needed: i32,
) -> Vec<Problem> {
    let vpc_id = &network.vpc_id;
    let problem = |resource: &str, text: String| Problem {
        resource: resource.to_string(),
        problem: text,
    };
    if net.vpc_cidr.is_none() {
        return vec![problem(
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
            found.push(problem(vpc_id, format!("{attribute} is off: the tasks resolve the database and the endpoints by DNS. Its owner turns it on (ModifyVpcAttribute)")));
        }
    }
    found.extend(subnet_problems(
        net,
        network,
        "public",
        &network.public_subnet_ids,
        region,
    ));
    found.extend(subnet_problems(
        net,
        network,
        "private",
        &network.private_subnet_ids,
        region,
    ));
    let free: i32 = net
        .subnets
        .iter()
        .filter(|s| {
            network
                .private_subnet_ids
                .iter()
                .any(|id| Some(id.as_str()) == s.subnet_id())
        })
        .filter_map(|s| s.available_ip_address_count())
        .sum();
    if free < addresses_needed {
        found.push(problem(vpc_id, format!("the private subnets have {free} free addresses in all, and the environment needs {addresses_needed} (its tasks during a deployment, the schema task, the database, the endpoints)")));
    }
    if !network.create_endpoints {
        return found;
    }
    for service in NEEDED_SERVICES {
        if has_endpoint(net, region, service, None) {
            found.push(problem(vpc_id, format!("the VPC already has an endpoint for com.amazonaws.{region}.{service} with private DNS, so a second one cannot be made: set network.create_endpoints = false to use the customer's")));
        }
    }
    found
}

/// One tier's subnets: in the VPC, in two or more zones (the load
/// balancer: one subnet per zone), routed to the internet (public) or to a
/// NAT gateway or the endpoints the tasks need (private).
fn subnet_problems(
    net: &CustomerNetwork,
    network: &ExistingNetwork,
    tier: &str,
    ids: &[String],
    region: &str,
) -> Vec<Problem> {
    let key = format!("network.{tier}_subnet_ids");
    let mut found = Vec::new();
    let mut zones = BTreeSet::new();
    for id in ids {
        let mut say = |text: String| {
            found.push(Problem {
                resource: id.clone(),
                problem: text,
            })
        };
        let Some(subnet) = net
            .subnets
            .iter()
            .find(|s| s.subnet_id() == Some(id.as_str()))
        else {
            say(format!("{id} ({key}) does not exist in {region}"));
            continue;
        };
        if subnet.vpc_id() != Some(network.vpc_id.as_str()) {
            say(format!(
                "{id} ({key}) is in {}, not in {} (network.vpc_id)",
                subnet.vpc_id().unwrap_or("another VPC"),
                network.vpc_id
            ));
            continue;
        }
        let zone = subnet.availability_zone().unwrap_or_default().to_string();
        if !zones.insert(zone.clone()) && tier == "public" {
            say(format!("{id} ({key}) is a second public subnet in {zone}: the load balancer takes one subnet per zone"));
        }
        let table = table_of(net, id);
        let route = table.and_then(default_route);
        let table_id = table
            .and_then(|t| t.route_table_id())
            .unwrap_or("its route table");
        if tier == "public" {
            if !route.as_deref().is_some_and(|r| r.starts_with("igw-")) {
                say(format!("{id} ({key}) has no route to an internet gateway (0.0.0.0/0 in {table_id}): the load balancer would not be reachable"));
            }
            if subnet.available_ip_address_count().unwrap_or(0) < LOAD_BALANCER_ADDRESSES {
                say(format!("{id} ({key}) has {} free addresses; the load balancer needs {LOAD_BALANCER_ADDRESSES} in each of its subnets", subnet.available_ip_address_count().unwrap_or(0)));
            }
            continue;
        }
        let through_nat = route.as_deref().is_some_and(|r| r.starts_with("nat-"));
        if through_nat {
            continue;
        }
        let s3 = has_endpoint(net, region, "s3", table.and_then(|t| t.route_table_id()));
        let interfaces = network.create_endpoints
            || NEEDED_SERVICES
                .iter()
                .all(|s| has_endpoint(net, region, s, None));
        if !(s3 && interfaces) {
            say(format!("{id} ({key}) has no route to a NAT gateway (0.0.0.0/0 in {table_id}) and not the endpoints the tasks need instead (an S3 gateway endpoint in {table_id}{}): the tasks could not pull their image or write their logs", if network.create_endpoints { "" } else { ", and interface endpoints with private DNS for ECR, ECR's registry, Logs and Secrets Manager" }));
        }
    }
    if zones.len() < 2 && !ids.is_empty() {
        found.push(Problem {
            resource: network.vpc_id.clone(),
            problem: format!("the {tier} subnets ({key}) are all in {}: the environment needs two or more availability zones", zones.into_iter().next().unwrap_or_default()),
        });
    }
    found
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
        let mut route = Route::builder().destination_cidr_block("0.0.0.0/0");
        route = if target.starts_with("nat-") {
            route.nat_gateway_id(target)
        } else {
            route.gateway_id(target)
        };
        let mut table = RouteTable::builder()
            .route_table_id(id)
            .routes(route.build());
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
        net.route_tables[1] = RouteTable::builder()
            .route_table_id("rtb-private")
            .associations(
                RouteTableAssociation::builder()
                    .subnet_id("subnet-00000003")
                    .build(),
            )
            .associations(
                RouteTableAssociation::builder()
                    .subnet_id("subnet-00000004")
                    .build(),
            )
            .build();
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
}
