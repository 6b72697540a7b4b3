//! Deploying into a network the customer already has (`[network] vpc_id`):
//! poolside makes only what it owns inside it, reports what breaks the
//! environment there without repairing it, and leaves the network exactly
//! as it found it.

use crate::support::*;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, Tag, TagSpecification};
use serde_json::{json, Value};

/// A VPC as a customer has it: DNS on, two public subnets routed to an
/// internet gateway, two private ones routed to a NAT gateway, all tagged
/// by the customer.
pub struct CustomerVpc {
    pub vpc_id: String,
    pub public: Vec<String>,
    pub private: Vec<String>,
    pub private_table: String,
    pub nat: String,
}

fn tagged(kind: aws_sdk_ec2::types::ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key("Name").value(name).build())
        .tags(
            Tag::builder()
                .key("owner")
                .value("customer-network-team")
                .build(),
        )
        .build()
}

pub async fn make_customer_vpc(aws: &Aws, second_octet: u8) -> CustomerVpc {
    use aws_sdk_ec2::types::ResourceType as R;
    let ec2 = &aws.ec2;
    let vpc_id = ec2
        .create_vpc()
        .cidr_block(format!("10.{second_octet}.0.0/16"))
        .tag_specifications(tagged(R::Vpc, "customer-main"))
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    for attribute in ["support", "hostnames"] {
        let on = AttributeBooleanValue::builder().value(true).build();
        let call = ec2.modify_vpc_attribute().vpc_id(&vpc_id);
        let call = match attribute {
            "support" => call.enable_dns_support(on),
            _ => call.enable_dns_hostnames(on),
        };
        call.send().await.unwrap();
    }
    let igw = ec2
        .create_internet_gateway()
        .tag_specifications(tagged(R::InternetGateway, "customer-igw"))
        .send()
        .await
        .unwrap()
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_string();
    ec2.attach_internet_gateway()
        .vpc_id(&vpc_id)
        .internet_gateway_id(&igw)
        .send()
        .await
        .unwrap();
    let mut subnets = Vec::new();
    for (i, (tier, zone)) in [
        ("public", "us-east-1a"),
        ("public", "us-east-1b"),
        ("private", "us-east-1a"),
        ("private", "us-east-1b"),
    ]
    .iter()
    .enumerate()
    {
        let id = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.{second_octet}.{}.0/24", i + 1))
            .availability_zone(*zone)
            .tag_specifications(tagged(R::Subnet, &format!("customer-{tier}-{zone}")))
            .send()
            .await
            .unwrap()
            .subnet()
            .unwrap()
            .subnet_id()
            .unwrap()
            .to_string();
        subnets.push(id);
    }
    let vpc = vpc_id.as_str();
    let table = |name: &'static str| async move {
        ec2.create_route_table()
            .vpc_id(vpc)
            .tag_specifications(tagged(R::RouteTable, name))
            .send()
            .await
            .unwrap()
            .route_table()
            .unwrap()
            .route_table_id()
            .unwrap()
            .to_string()
    };
    let public_table = table("customer-public").await;
    let private_table = table("customer-private").await;
    ec2.create_route()
        .route_table_id(&public_table)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    let eip = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .unwrap()
        .allocation_id()
        .unwrap()
        .to_string();
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(&subnets[0])
        .allocation_id(eip)
        .tag_specifications(tagged(R::Natgateway, "customer-nat"))
        .send()
        .await
        .unwrap()
        .nat_gateway()
        .unwrap()
        .nat_gateway_id()
        .unwrap()
        .to_string();
    ec2.create_route()
        .route_table_id(&private_table)
        .destination_cidr_block("0.0.0.0/0")
        .nat_gateway_id(&nat)
        .send()
        .await
        .unwrap();
    for (i, subnet) in subnets.iter().enumerate() {
        let table = if i < 2 { &public_table } else { &private_table };
        ec2.associate_route_table()
            .route_table_id(table)
            .subnet_id(subnet)
            .send()
            .await
            .unwrap();
    }
    CustomerVpc {
        vpc_id,
        public: subnets[..2].to_vec(),
        private: subnets[2..].to_vec(),
        private_table,
        nat,
    }
}

impl CustomerVpc {
    /// The owner deletes the private subnets' route to the NAT gateway.
    pub async fn cut_the_private_default_route(&self, aws: &Aws) {
        aws.ec2
            .delete_route()
            .route_table_id(&self.private_table)
            .destination_cidr_block("0.0.0.0/0")
            .send()
            .await
            .unwrap();
    }

    pub async fn restore_the_route_to_the_nat_gateway(&self, aws: &Aws) {
        aws.ec2
            .create_route()
            .route_table_id(&self.private_table)
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id(&self.nat)
            .send()
            .await
            .unwrap();
    }

    pub fn network_lines(&self) -> String {
        let list = |ids: &[String]| {
            ids.iter()
                .map(|id| format!("{id:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "vpc_id = \"{}\"\npublic_subnet_ids = [{}]\nprivate_subnet_ids = [{}]",
            self.vpc_id,
            list(&self.public),
            list(&self.private)
        )
    }
}

fn tags(tags: &[Tag]) -> Value {
    let mut pairs: Vec<(String, String)> = tags
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    pairs.sort();
    json!(pairs)
}

/// Everything in the VPC, tags included, in a stable order.
async fn inventory(aws: &Aws, vpc_id: &str) -> Value {
    let ec2 = &aws.ec2;
    let in_vpc = || Filter::builder().name("vpc-id").values(vpc_id).build();
    let vpc = ec2.describe_vpcs().vpc_ids(vpc_id).send().await.unwrap();
    let vpc = &vpc.vpcs()[0];
    let mut attributes = Vec::new();
    for name in [
        aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport,
        aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames,
    ] {
        let out = ec2
            .describe_vpc_attribute()
            .vpc_id(vpc_id)
            .attribute(name)
            .send()
            .await
            .unwrap();
        attributes.push(format!(
            "{:?}/{:?}",
            out.enable_dns_support().and_then(|v| v.value()),
            out.enable_dns_hostnames().and_then(|v| v.value())
        ));
    }
    let mut subnets: Vec<Value> = ec2
        .describe_subnets()
        .filters(in_vpc())
        .send()
        .await
        .unwrap()
        .subnets()
        .iter()
        .map(|s| {
            json!([
                s.subnet_id(),
                s.cidr_block(),
                s.availability_zone(),
                tags(s.tags())
            ])
        })
        .collect();
    subnets.sort_by_key(|v| v.to_string());
    let mut tables: Vec<Value> = ec2
        .describe_route_tables()
        .filters(in_vpc())
        .send()
        .await
        .unwrap()
        .route_tables()
        .iter()
        .map(|t| {
            let mut routes: Vec<String> = t
                .routes()
                .iter()
                .map(|r| {
                    format!(
                        "{:?} {:?} {:?} {:?} {:?}",
                        r.destination_cidr_block(),
                        r.destination_prefix_list_id(),
                        r.gateway_id(),
                        r.nat_gateway_id(),
                        r.state()
                    )
                })
                .collect();
            routes.sort();
            let mut associations: Vec<String> = t
                .associations()
                .iter()
                .map(|a| format!("{:?} {:?}", a.subnet_id(), a.main()))
                .collect();
            associations.sort();
            json!([t.route_table_id(), routes, associations, tags(t.tags())])
        })
        .collect();
    tables.sort_by_key(|v| v.to_string());
    let igws: Vec<Value> = ec2
        .describe_internet_gateways()
        .filters(
            Filter::builder()
                .name("attachment.vpc-id")
                .values(vpc_id)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .internet_gateways()
        .iter()
        .map(|g| json!([g.internet_gateway_id(), tags(g.tags())]))
        .collect();
    let nats: Vec<Value> = ec2
        .describe_nat_gateways()
        .filter(in_vpc())
        .send()
        .await
        .unwrap()
        .nat_gateways()
        .iter()
        .map(|n| {
            json!([
                n.nat_gateway_id(),
                n.subnet_id(),
                n.state().map(|s| s.as_str().to_string()),
                tags(n.tags())
            ])
        })
        .collect();
    let mut groups: Vec<Value> = ec2
        .describe_security_groups()
        .filters(in_vpc())
        .send()
        .await
        .unwrap()
        .security_groups()
        .iter()
        .map(|g| json!([g.group_id(), g.group_name(), tags(g.tags())]))
        .collect();
    groups.sort_by_key(|v| v.to_string());
    let endpoints: Vec<Value> = ec2
        .describe_vpc_endpoints()
        .filters(in_vpc())
        .send()
        .await
        .unwrap()
        .vpc_endpoints()
        .iter()
        .filter(|e| {
            let state = e.state().map(|s| s.as_str().to_ascii_lowercase());
            !matches!(state.as_deref(), Some("deleted" | "deleting"))
        })
        .map(|e| json!([e.vpc_endpoint_id(), e.service_name(), tags(e.tags())]))
        .collect();
    json!({
        "vpc": [vpc.vpc_id(), vpc.cidr_block(), tags(vpc.tags()), attributes],
        "subnets": subnets,
        "route_tables": tables,
        "internet_gateways": igws,
        "nat_gateways": nats,
        "security_groups": groups,
        "vpc_endpoints": endpoints,
    })
}

/// Deploy into the customer's VPC, drift when its owner breaks a route,
/// destroy: poolside made its groups and endpoints there and nothing else,
/// reported the broken route without repairing it, and left the VPC as it
/// was, tags included.
#[tokio::test]
async fn an_environment_in_the_customers_vpc_leaves_it_as_it_found_it() {
    let aws = aws().await;
    let customer = make_customer_vpc(&aws, 71).await;
    let before = inventory(&aws, &customer.vpc_id).await;
    // Through the realistic layer, which records what IAM would authorize.
    let proxy = crate::real_aws::Proxy::start();
    let mut env = Env::new("cvpc");
    env.endpoint = proxy.url.clone();
    env.network = Some(customer.network_lines());
    env.write();

    let plan = env.poolside(&["plan", "--env", &env.name, "--output", "json"]);
    plan.assert_code(0);
    let planned: Vec<String> = plan.one("plan")["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    for theirs in [
        "vpc/",
        "subnet/",
        "internet-gateway/",
        "nat-gateway/",
        "route-table/",
        "elastic-ip/",
    ] {
        assert!(
            !planned.iter().any(|id| id.starts_with(theirs)),
            "poolside plans a {theirs} of its own in the customer's VPC: {planned:?}"
        );
    }
    assert!(planned.iter().any(|id| id == "sg/api"), "{planned:?}");
    assert!(
        !planned.iter().any(|id| id == "endpoint/s3"),
        "a gateway endpoint would change the customer's route tables: {planned:?}"
    );

    env.deploy();
    let lb = aws
        .elb
        .describe_load_balancers()
        .names(format!("poolside-{}", env.name))
        .send()
        .await
        .unwrap();
    let lb = &lb.load_balancers()[0];
    assert_eq!(lb.vpc_id(), Some(customer.vpc_id.as_str()));
    let mut lb_subnets: Vec<String> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id().map(str::to_string))
        .collect();
    lb_subnets.sort();
    let mut public = customer.public.clone();
    public.sort();
    assert_eq!(
        lb_subnets, public,
        "the load balancer is in the customer's public subnets"
    );
    env.plan().assert_code(0);
    let outputs = env.poolside(&["outputs", "--env", &env.name, "--output", "json"]);
    outputs.assert_code(0);
    assert_eq!(
        outputs.one("outputs")["vpc_id"],
        customer.vpc_id.as_str(),
        "{}",
        outputs.stdout()
    );

    // The customer's owner removes the private subnets' route to the NAT gateway.
    customer.cut_the_private_default_route(&aws).await;
    let drift = env.poolside(&["drift", "--env", &env.name, "--output", "json"]);
    drift.assert_code(2);
    let text = drift.stdout();
    assert!(text.contains(&customer.private[0]), "{text}");
    assert!(text.contains("has no route to a NAT gateway"), "{text}");
    assert!(
        text.contains("poolside does not change the customer's network"),
        "{text}"
    );
    let refused = env.poolside(&[
        "deploy", "--env", &env.name, "--yes", "--stats", "--output", "json",
    ]);
    refused.assert_code(1);
    assert!(
        refused
            .stderr()
            .contains("the customer's network is not ready"),
        "{}",
        refused.stderr()
    );
    assert_eq!(refused.mutating_calls(), 0, "{}", refused.stderr());
    customer.restore_the_route_to_the_nat_gateway(&aws).await;

    env.poolside(&["destroy", "--env", &env.name, "--yes", "--delete-data"])
        .assert_code(0);
    let after = inventory(&aws, &customer.vpc_id).await;
    assert_eq!(after, before, "the customer's VPC changed");

    // The policy of an environment in the customer's VPC, which cannot
    // change their network, allows every call all of this made.
    let generated = env.poolside(&["iam-policy", "--env", &env.name, "--output", "json"]);
    generated.assert_code(0);
    let policy = generated.one("iam_policy")["policy"].clone();
    assert!(!policy.to_string().contains("ec2:DeleteVpc\""), "{policy}");
    let seen = proxy.authorizations().await;
    assert!(seen.len() > 100, "too few calls seen: {}", seen.len());
    crate::iam_policy::assert_every_call_allowed(&seen, &[policy]);
}

/// What the customer gave is checked before any change: a subnet of
/// another VPC and a private subnet with no way out are each named.
#[tokio::test]
async fn a_customer_network_that_cannot_serve_is_refused_before_any_change() {
    let aws = aws().await;
    let customer = make_customer_vpc(&aws, 72).await;
    let other = make_customer_vpc(&aws, 73).await;
    customer.cut_the_private_default_route(&aws).await;
    let mut env = Env::new("cvpcbad");
    env.network = Some(format!(
        "vpc_id = \"{}\"\npublic_subnet_ids = [\"{}\", \"{}\"]\nprivate_subnet_ids = [\"{}\", \"{}\"]",
        customer.vpc_id, customer.public[0], other.public[1], customer.private[0], customer.private[1]
    ));
    env.write();
    let plan = env.poolside(&["plan", "--env", &env.name]);
    plan.assert_code(1);
    let err = plan.stderr();
    assert!(
        err.contains(&format!(
            "{} (network.public_subnet_ids) is in {}",
            other.public[1], other.vpc_id
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{} (network.private_subnet_ids) has no route to a NAT gateway",
            customer.private[0]
        )),
        "{err}"
    );
    assert!(
        err.contains("deploy refuses until its owner fixes them"),
        "{err}"
    );
    let deploy = env.poolside(&[
        "deploy", "--env", &env.name, "--yes", "--stats", "--output", "json",
    ]);
    deploy.assert_code(1);
    assert_eq!(deploy.mutating_calls(), 0, "{}", deploy.stderr());
}
