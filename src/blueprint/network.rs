//! The network tier: the VPC, a public and a private subnet in each zone, the
//! internet and NAT gateways, the route tables, the security groups with
//! their rules (each tier accepts traffic only from the tier in front of it),
//! and the VPC endpoints that keep the tasks' AWS traffic off the internet.
//!
//! Contract: pure, like all of the blueprint; it returns the ids the other
//! tiers refer to in [`Network`].

use super::builder::{
    AccountFacts, Builder, DATABASE_PORT, HTTPS_PORT, HTTP_PORT, INTERFACE_ENDPOINTS,
};
use crate::config::{Config, ExistingNetwork, Layout, NatGateways, OwnedNetwork};
use crate::model::*;
use crate::resources::spec::*;
use std::collections::BTreeSet;

/// What the other tiers refer to.
pub(super) struct Network {
    /// The VPC: poolside's (`vpc/main`) or the customer's, by its AWS id.
    pub vpc: ResourceId,
    pub public_subnets: Vec<ResourceId>,
    pub private_subnets: Vec<ResourceId>,
}

pub(super) fn network(
    b: &Builder,
    config: &Config,
    account: &AccountFacts,
) -> (Vec<Desired>, Network) {
    match &config.network.layout {
        Layout::Owned(owned) => owned_network(b, config, owned, account),
        Layout::Existing(existing) => in_customer_network(b, config, existing, account),
    }
}

fn owned_network(
    b: &Builder,
    config: &Config,
    net: &OwnedNetwork,
    account: &AccountFacts,
) -> (Vec<Desired>, Network) {
    let mut out = Vec::new();
    let vpc = ResourceId::new(Kind::Vpc, "main");
    out.push(b.desired(&vpc, "vpc", |tags| {
        Spec::Vpc(VpcSpec {
            cidr: net.vpc_cidr.to_string(),
            dns_support: true,
            dns_hostnames: true,
            tags,
        })
    }));
    let igw = ResourceId::new(Kind::InternetGateway, "main");
    out.push(b.desired(&igw, "igw", |tags| {
        Spec::InternetGateway(InternetGatewaySpec {
            vpc: Some(vpc.clone()),
            tags,
        })
    }));
    let (subnets, network) = subnets(b, net, &vpc);
    out.extend(subnets);
    let (gateways, nat_for_az) = nat_gateways(b, net, &igw, &network.public_subnets);
    out.extend(gateways);
    let (tables, private_route_tables) = route_tables(b, net, &vpc, &igw, &nat_for_az, &network);
    out.extend(tables);
    out.extend(security_groups(
        b,
        config,
        account,
        &vpc,
        Egress::ToOurEndpoints,
    ));
    out.push(s3_endpoint(b, config, &vpc, &private_route_tables));
    out.extend(interface_endpoints(
        b,
        config,
        &vpc,
        &network.private_subnets,
    ));
    (out, network)
}

/// In the customer's VPC, poolside refers to the VPC and subnets by their
/// AWS ids (resources it does not manage) and makes only its security
/// groups and, unless the customer has them, its interface endpoints. No
/// S3 gateway endpoint: it would add a route to the customer's route
/// tables; the tasks reach S3 through the customer's NAT or endpoint.
fn in_customer_network(
    b: &Builder,
    config: &Config,
    existing: &ExistingNetwork,
    account: &AccountFacts,
) -> (Vec<Desired>, Network) {
    let vpc = ResourceId(existing.vpc_id.clone());
    let by_id = |ids: &[String]| ids.iter().map(|id| ResourceId(id.clone())).collect();
    let network = Network {
        vpc: vpc.clone(),
        public_subnets: by_id(&existing.public_subnet_ids),
        private_subnets: by_id(&existing.private_subnet_ids),
    };
    let egress = if existing.create_endpoints {
        Egress::ToOurEndpoints
    } else {
        Egress::ThroughTheCustomers
    };
    let mut out = security_groups(b, config, account, &vpc, egress);
    if existing.create_endpoints {
        out.extend(interface_endpoints(
            b,
            config,
            &vpc,
            &network.private_subnets,
        ));
    }
    (out, network)
}

fn subnets(b: &Builder, net: &OwnedNetwork, vpc: &ResourceId) -> (Vec<Desired>, Network) {
    let mut out = Vec::new();
    let mut public_subnets = Vec::new();
    let mut private_subnets = Vec::new();
    for (i, az) in net.availability_zones.iter().enumerate() {
        for (tier, cidr, list) in [
            ("public", net.public_subnets[i], &mut public_subnets),
            ("private", net.private_subnets[i], &mut private_subnets),
        ] {
            let id = ResourceId::new(Kind::Subnet, &format!("{tier}-{az}"));
            out.push(b.desired(&id, &format!("{tier}-{az}"), |mut tags| {
                // The tag the AWS load balancer controller and people look for.
                tags.insert("poolside:tier".into(), tier.into());
                Spec::Subnet(SubnetSpec {
                    vpc: vpc.clone(),
                    cidr: cidr.to_string(),
                    availability_zone: az.clone(),
                    tags,
                })
            }));
            list.push(id);
        }
    }
    let network = Network {
        vpc: vpc.clone(),
        public_subnets,
        private_subnets,
    };
    (out, network)
}

/// One NAT gateway in the first zone shared by all, or one per zone; with
/// the gateway that serves each zone, in the zones' order.
fn nat_gateways(
    b: &Builder,
    net: &OwnedNetwork,
    igw: &ResourceId,
    public_subnets: &[ResourceId],
) -> (Vec<Desired>, Vec<ResourceId>) {
    let nat_azs: Vec<usize> = match net.nat_gateways {
        NatGateways::Shared => vec![0],
        NatGateways::PerAz => (0..net.availability_zones.len()).collect(),
    };
    let nat_for_az = (0..net.availability_zones.len())
        .map(|i| {
            let serving = if nat_azs.contains(&i) { i } else { nat_azs[0] };
            ResourceId::new(Kind::NatGateway, &net.availability_zones[serving])
        })
        .collect();
    let mut out = Vec::new();
    for &i in &nat_azs {
        let az = &net.availability_zones[i];
        let eip = ResourceId::new(Kind::ElasticIp, &format!("nat-{az}"));
        out.push(b.desired(&eip, &format!("nat-{az}"), |tags| {
            Spec::ElasticIp(ElasticIpSpec { tags })
        }));
        let nat = ResourceId::new(Kind::NatGateway, az);
        let nat_gateway = b.desired(&nat, &format!("nat-{az}"), |tags| {
            Spec::NatGateway(NatGatewaySpec {
                subnet: public_subnets[i].clone(),
                elastic_ip: eip.clone(),
                tags,
            })
        });
        // AWS: `Gateway.NotAttached` until the VPC has its internet gateway.
        out.push(nat_gateway.after(igw));
    }
    (out, nat_for_az)
}

/// The public subnets' table (to the internet gateway) and one table per
/// private subnet (to its zone's NAT gateway); with the private tables.
fn route_tables(
    b: &Builder,
    net: &OwnedNetwork,
    vpc: &ResourceId,
    igw: &ResourceId,
    nat_for_az: &[ResourceId],
    network: &Network,
) -> (Vec<Desired>, BTreeSet<ResourceId>) {
    let table = |target: &ResourceId, subnets: BTreeSet<ResourceId>, tags| {
        Spec::RouteTable(RouteTableSpec {
            vpc: vpc.clone(),
            routes: [Route {
                destination: "0.0.0.0/0".into(),
                target: target.clone(),
            }]
            .into(),
            subnets,
            tags,
        })
    };
    let public = ResourceId::new(Kind::RouteTable, "public");
    let mut out = vec![b.desired(&public, "public", |tags| {
        table(igw, network.public_subnets.iter().cloned().collect(), tags)
    })];
    let mut private = BTreeSet::new();
    for (i, az) in net.availability_zones.iter().enumerate() {
        let rt = ResourceId::new(Kind::RouteTable, &format!("private-{az}"));
        out.push(b.desired(&rt, &format!("private-{az}"), |tags| {
            table(
                &nat_for_az[i],
                [network.private_subnets[i].clone()].into(),
                tags,
            )
        }));
        private.insert(rt);
    }
    (out, private)
}

fn group(name: &str) -> ResourceId {
    ResourceId::new(Kind::SecurityGroup, name)
}

/// The four groups, then their rules: each tier accepts traffic only from
/// the tier in front of it.
fn security_groups(
    b: &Builder,
    config: &Config,
    account: &AccountFacts,
    vpc: &ResourceId,
    egress: Egress,
) -> Vec<Desired> {
    let groups = [
        (
            "load-balancer",
            "poolside load balancer: HTTP/HTTPS from the allowed CIDRs",
        ),
        (
            "api",
            "poolside API tasks: PostgREST port from the load balancer only",
        ),
        (
            "database",
            "poolside database: PostgreSQL from the API tasks only",
        ),
        (
            "endpoints",
            "poolside VPC interface endpoints: HTTPS from the API tasks only",
        ),
    ];
    let mut out: Vec<Desired> = groups
        .into_iter()
        .map(|(name, description)| {
            b.desired(&group(name), name, |tags| {
                Spec::SecurityGroup(SecurityGroupSpec {
                    vpc: vpc.clone(),
                    group_name: format!("poolside-{}-{name}", config.name),
                    description: description.into(),
                    tags,
                })
            })
        })
        .collect();
    for (name, ingress, egress) in rules(config, account, egress) {
        out.push(Desired {
            id: ResourceId::new(Kind::SecurityGroupRules, name),
            spec: Spec::SecurityGroupRules(SecurityGroupRulesSpec {
                group: group(name),
                ingress,
                egress,
            }),
            after: vec![],
        });
    }
    out
}

/// (group, ingress, egress) of each group.
fn rules(
    config: &Config,
    account: &AccountFacts,
    egress: Egress,
) -> [(&'static str, BTreeSet<Rule>, BTreeSet<Rule>); 4] {
    let api_port = config.network.api_port;
    let mut lb_ingress = BTreeSet::new();
    for cidr in &config.network.allowed_ingress_cidrs {
        lb_ingress.insert(Rule::tcp(
            HTTP_PORT,
            cidr.to_string(),
            "HTTP from an allowed CIDR (redirected to HTTPS)",
        ));
        lb_ingress.insert(Rule::tcp(
            HTTPS_PORT,
            cidr.to_string(),
            "HTTPS from an allowed CIDR",
        ));
    }
    let lb_egress = BTreeSet::from([
        Rule::tcp(api_port, group("api").0, "to the API tasks"),
        Rule::tcp(
            api_port + 1,
            group("api").0,
            "health checks of the API tasks (PostgREST admin server)",
        ),
    ]);
    let api_ingress = BTreeSet::from([
        Rule::tcp(api_port, group("load-balancer").0, "from the load balancer"),
        Rule::tcp(
            api_port + 1,
            group("load-balancer").0,
            "health checks from the load balancer",
        ),
    ]);
    let database_ingress = std::iter::once(Rule::tcp(
        DATABASE_PORT,
        group("api").0,
        "from the API tasks",
    ))
    .chain(config.database.admin_ingress_cidrs.iter().map(|cidr| {
        Rule::tcp(
            DATABASE_PORT,
            cidr.to_string(),
            "from an operator network (database.admin_ingress_cidrs)",
        )
    }))
    .collect();
    let endpoints_ingress =
        BTreeSet::from([Rule::tcp(HTTPS_PORT, group("api").0, "from the API tasks")]);
    [
        ("load-balancer", lb_ingress, lb_egress),
        ("api", api_ingress, api_egress(account, egress)),
        ("database", database_ingress, BTreeSet::new()),
        ("endpoints", endpoints_ingress, BTreeSet::new()),
    ]
}

/// Where the API tasks may connect: the database, and AWS over HTTPS only
/// through the VPC endpoints (ECR, Logs and Secrets Manager through the
/// interface endpoints' group, ECR's image layers from S3 through the gateway
/// endpoint, named by the region's prefix list). Not the internet.
fn api_egress(account: &AccountFacts, egress: Egress) -> BTreeSet<Rule> {
    let s3 = match &account.s3_prefix_list {
        // No description: moto drops the description of prefix-list rules
        // (AWS keeps it), and a rule must compare equal on both.
        Some(prefix_list) => Rule::tcp(HTTPS_PORT, prefix_list.clone(), ""),
        // No list found (ops warns): the tasks must still pull their image.
        None => Rule::tcp(
            HTTPS_PORT,
            "0.0.0.0/0",
            "HTTPS to AWS APIs (no S3 prefix list was found)",
        ),
    };
    let endpoints = match egress {
        Egress::ToOurEndpoints => Rule::tcp(
            HTTPS_PORT,
            group("endpoints").0,
            "HTTPS to the interface endpoints (ECR, Logs, Secrets Manager)",
        ),
        // Their endpoints' groups are not poolside's to name.
        Egress::ThroughTheCustomers => Rule::tcp(
            HTTPS_PORT,
            "0.0.0.0/0",
            "HTTPS to AWS APIs through the customer's endpoints or NAT",
        ),
    };
    BTreeSet::from([
        Rule::tcp(DATABASE_PORT, group("database").0, "to the database"),
        endpoints,
        s3,
    ])
}

/// How the API tasks reach ECR, Logs and Secrets Manager.
#[derive(Clone, Copy)]
enum Egress {
    /// Through the interface endpoints poolside makes (their group).
    ToOurEndpoints,
    /// Through the customer's endpoints or NAT gateway.
    ThroughTheCustomers,
}

/// Private subnets reach S3 through a gateway endpoint in their route tables.
fn s3_endpoint(
    b: &Builder,
    config: &Config,
    vpc: &ResourceId,
    private_route_tables: &BTreeSet<ResourceId>,
) -> Desired {
    let s3_endpoint = ResourceId::new(Kind::VpcEndpoint, "s3");
    b.desired(&s3_endpoint, "s3", |tags| {
        Spec::VpcEndpoint(VpcEndpointSpec {
            vpc: vpc.clone(),
            service_name: format!("com.amazonaws.{}.s3", config.region),
            endpoint_type: "Gateway".into(),
            route_tables: private_route_tables.clone(),
            subnets: BTreeSet::new(),
            security_groups: BTreeSet::new(),
            private_dns: false,
            tags,
        })
    })
}

/// ECR, Logs and Secrets Manager, reached from the private subnets without the internet.
fn interface_endpoints(
    b: &Builder,
    config: &Config,
    vpc: &ResourceId,
    private_subnets: &[ResourceId],
) -> Vec<Desired> {
    let mut out = Vec::new();
    for (name, service) in INTERFACE_ENDPOINTS {
        let id = ResourceId::new(Kind::VpcEndpoint, name);
        out.push(b.desired(&id, name, |tags| {
            Spec::VpcEndpoint(VpcEndpointSpec {
                vpc: vpc.clone(),
                service_name: format!("com.amazonaws.{}.{service}", config.region),
                endpoint_type: "Interface".into(),
                route_tables: BTreeSet::new(),
                subnets: private_subnets.iter().cloned().collect(),
                security_groups: [group("endpoints")].into(),
                private_dns: true,
                tags,
            })
        }));
    }
    out
}
