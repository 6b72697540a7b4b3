//! Config → the resources an environment should have. A pure function: no AWS
//! call, so it is tested without an emulator.

mod service;

pub use service::{alarm_prefix, cluster_name, service_name, ALTERNATE_TARGET_GROUP};

use crate::config::{Config, NatGateways};
use crate::model::*;
use crate::templates::render_json;
use serde_json::json;
use std::collections::BTreeSet;

/// Facts about the account that the blueprint needs (learned once per run).
#[derive(Clone, Debug)]
pub struct AccountFacts {
    pub account_id: String,
    pub partition: String,
    /// `pl-...`: the region's S3 prefix list, if EC2 lists one.
    pub s3_prefix_list: Option<String>,
}

pub const DATABASE_PORT: u16 = 5432;
pub const HTTPS_PORT: u16 = 443;
pub const HTTP_PORT: u16 = 80;

/// The AWS services tasks reach through interface endpoints in the private subnets.
pub const INTERFACE_ENDPOINTS: [(&str, &str); 4] = [
    ("ecr-api", "ecr.api"),
    ("ecr-dkr", "ecr.dkr"),
    ("logs", "logs"),
    ("secretsmanager", "secretsmanager"),
];

pub fn bucket_name(config: &Config, account: &AccountFacts) -> String {
    config.storage.bucket_name.clone().unwrap_or_else(|| {
        format!(
            "poolside-{}-{}-{}",
            config.name, account.account_id, config.region
        )
    })
}

pub fn build(config: &Config, account: &AccountFacts) -> anyhow::Result<Vec<Desired>> {
    let b = Builder { config };
    let mut out = Vec::new();
    let net = &config.network;
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

    // NAT gateways: one in the first AZ shared by all, or one per AZ.
    let nat_azs: Vec<usize> = match net.nat_gateways {
        NatGateways::Shared => vec![0],
        NatGateways::PerAz => (0..net.availability_zones.len()).collect(),
    };
    let mut nat_for_az = Vec::new();
    for i in 0..net.availability_zones.len() {
        let serving = if nat_azs.contains(&i) { i } else { nat_azs[0] };
        nat_for_az.push(ResourceId::new(
            Kind::NatGateway,
            &net.availability_zones[serving],
        ));
    }
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
        out.push(nat_gateway.after(&igw));
    }

    let public_rt = ResourceId::new(Kind::RouteTable, "public");
    out.push(b.desired(&public_rt, "public", |tags| {
        Spec::RouteTable(RouteTableSpec {
            vpc: vpc.clone(),
            routes: [Route {
                destination: "0.0.0.0/0".into(),
                target: igw.clone(),
            }]
            .into(),
            subnets: public_subnets.iter().cloned().collect(),
            tags,
        })
    }));
    let mut private_rts = BTreeSet::new();
    for (i, az) in net.availability_zones.iter().enumerate() {
        let rt = ResourceId::new(Kind::RouteTable, &format!("private-{az}"));
        out.push(b.desired(&rt, &format!("private-{az}"), |tags| {
            Spec::RouteTable(RouteTableSpec {
                vpc: vpc.clone(),
                routes: [Route {
                    destination: "0.0.0.0/0".into(),
                    target: nat_for_az[i].clone(),
                }]
                .into(),
                subnets: [private_subnets[i].clone()].into(),
                tags,
            })
        }));
        private_rts.insert(rt);
    }

    // Security groups: each tier accepts traffic only from the tier in front of it.
    let sg = |name: &str| ResourceId::new(Kind::SecurityGroup, name);
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
    for (name, description) in groups {
        out.push(b.desired(&sg(name), name, |tags| {
            Spec::SecurityGroup(SecurityGroupSpec {
                vpc: vpc.clone(),
                group_name: format!("poolside-{}-{name}", config.name),
                description: description.into(),
                tags,
            })
        }));
    }
    let api_port = net.api_port;
    let mut lb_ingress = BTreeSet::new();
    for cidr in &net.allowed_ingress_cidrs {
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
    let rules = [
        (
            "load-balancer",
            lb_ingress,
            BTreeSet::from([
                Rule::tcp(api_port, sg("api").0, "to the API tasks"),
                Rule::tcp(
                    api_port + 1,
                    sg("api").0,
                    "health checks of the API tasks (PostgREST admin server)",
                ),
            ]),
        ),
        (
            "api",
            BTreeSet::from([
                Rule::tcp(api_port, sg("load-balancer").0, "from the load balancer"),
                Rule::tcp(
                    api_port + 1,
                    sg("load-balancer").0,
                    "health checks from the load balancer",
                ),
            ]),
            api_egress(account, &sg),
        ),
        (
            "database",
            std::iter::once(Rule::tcp(DATABASE_PORT, sg("api").0, "from the API tasks"))
                .chain(config.database.admin_ingress_cidrs.iter().map(|cidr| {
                    Rule::tcp(
                        DATABASE_PORT,
                        cidr.to_string(),
                        "from an operator network (database.admin_ingress_cidrs)",
                    )
                }))
                .collect(),
            BTreeSet::new(),
        ),
        (
            "endpoints",
            BTreeSet::from([Rule::tcp(HTTPS_PORT, sg("api").0, "from the API tasks")]),
            BTreeSet::new(),
        ),
    ];
    for (name, ingress, egress) in rules {
        out.push(Desired {
            id: ResourceId::new(Kind::SecurityGroupRules, name),
            spec: Spec::SecurityGroupRules(SecurityGroupRulesSpec {
                group: sg(name),
                ingress,
                egress,
            }),
            after: vec![],
        });
    }

    // VPC endpoints: private subnets reach S3, ECR, Logs and Secrets Manager without the internet.
    let s3_endpoint = ResourceId::new(Kind::VpcEndpoint, "s3");
    out.push(b.desired(&s3_endpoint, "s3", |tags| {
        Spec::VpcEndpoint(VpcEndpointSpec {
            vpc: vpc.clone(),
            service_name: format!("com.amazonaws.{}.s3", config.region),
            endpoint_type: "Gateway".into(),
            route_tables: private_rts.clone(),
            subnets: BTreeSet::new(),
            security_groups: BTreeSet::new(),
            private_dns: false,
            tags,
        })
    }));
    for (name, service) in INTERFACE_ENDPOINTS {
        let id = ResourceId::new(Kind::VpcEndpoint, name);
        out.push(b.desired(&id, name, |tags| {
            Spec::VpcEndpoint(VpcEndpointSpec {
                vpc: vpc.clone(),
                service_name: format!("com.amazonaws.{}.{service}", config.region),
                endpoint_type: "Interface".into(),
                route_tables: BTreeSet::new(),
                subnets: private_subnets.iter().cloned().collect(),
                security_groups: [sg("endpoints")].into(),
                private_dns: true,
                tags,
            })
        }));
    }

    let bucket = bucket_name(config, account);
    let policy = render_json(
        "bucket-policy.json.j2",
        json!({ "bucket": bucket, "partition": account.partition }),
    )?;
    out.push(b.desired(
        &ResourceId::new(Kind::Bucket, "artifacts"),
        "artifacts",
        |tags| {
            Spec::Bucket(BucketSpec {
                name: bucket.clone(),
                versioning: true,
                encryption: "AES256".into(),
                block_public_access: true,
                policy: Some(policy),
                noncurrent_version_expiration_days: Some(
                    config.storage.noncurrent_version_expiration_days,
                ),
                tags,
            })
        },
    ));

    let lifecycle = render_json(
        "ecr-lifecycle-policy.json.j2",
        json!({ "untagged_days": config.registry.untagged_image_days }),
    )?;
    out.push(b.desired(
        &ResourceId::new(Kind::Repository, "postgrest"),
        "postgrest",
        |tags| {
            Spec::Repository(RepositorySpec {
                name: config.registry.repository_name.clone(),
                scan_on_push: true,
                immutable_tags: true,
                lifecycle_policy: Some(lifecycle),
                tags,
            })
        },
    ));

    out.extend(data_tier(&b, config, &private_subnets));
    out.extend(service::service_tier(
        &b,
        config,
        account,
        &public_subnets,
        &private_subnets,
    )?);
    Ok(out)
}

pub const AUTHENTICATOR_SECRET: &str = "authenticator";
pub const JWT_SECRET: &str = "jwt";

/// The name of one of the environment's generated secrets.
pub fn secret_name(config: &Config, which: &str) -> String {
    format!("poolside/{}/{which}", config.name)
}

/// The RDS instance's identifier (also its groups' base name and the alarms' dimension).
pub fn database_identifier(config: &Config) -> String {
    format!("poolside-{}", config.name)
}

/// RDS PostgreSQL and the secrets the API connects and signs with.
fn data_tier(b: &Builder, config: &Config, private_subnets: &[ResourceId]) -> Vec<Desired> {
    let db = &config.database;
    let base = database_identifier(config);
    let subnet_group = ResourceId::new(Kind::DbSubnetGroup, "main");
    let parameter_group = ResourceId::new(Kind::DbParameterGroup, "main");
    let mut out = vec![
        b.desired(&subnet_group, "db", |tags| {
            Spec::DbSubnetGroup(DbSubnetGroupSpec {
                name: base.clone(),
                description: format!("poolside {}: private subnets of the database", config.name),
                subnets: private_subnets.iter().cloned().collect(),
                tags,
            })
        }),
        b.desired(&parameter_group, "db", |tags| {
            Spec::DbParameterGroup(DbParameterGroupSpec {
                // The family is in the name: a major upgrade needs a new group.
                name: format!("{base}-postgres{}", db.engine_major),
                family: format!("postgres{}", db.engine_major),
                description: format!("poolside {}: pg_cron, TLS only", config.name),
                parameters: database_parameters(config),
                tags,
            })
        }),
        b.desired(&ResourceId::new(Kind::DbInstance, "main"), "db", |tags| {
            Spec::DbInstance(DbInstanceSpec {
                identifier: base.clone(),
                engine: "postgres".into(),
                engine_version: db.engine_version.clone(),
                instance_class: db.instance_class.clone(),
                allocated_storage_gb: db.allocated_storage_gb as i32,
                storage_type: "gp3".into(),
                storage_encrypted: true,
                multi_az: db.multi_az,
                publicly_accessible: false,
                backup_retention_days: db.backup_retention_days as i32,
                deletion_protection: db.deletion_protection,
                db_name: db.name.clone(),
                master_username: db.master_username.clone(),
                manage_master_password: true,
                subnet_group: subnet_group.clone(),
                parameter_group: parameter_group.clone(),
                security_groups: [ResourceId::new(Kind::SecurityGroup, "database")].into(),
                tags,
            })
        }),
    ];
    let secrets = [
        (
            AUTHENTICATOR_SECRET,
            "the PostgreSQL login PostgREST connects with",
            GeneratedSecret::Login {
                username: "authenticator".into(),
            },
        ),
        (
            JWT_SECRET,
            "the key PostgREST checks API tokens with (HS256)",
            GeneratedSecret::Random,
        ),
    ];
    for (which, purpose, value) in secrets {
        let id = ResourceId::new(Kind::Secret, which);
        out.push(b.desired(&id, which, |tags| {
            Spec::Secret(SecretSpec {
                name: secret_name(config, which),
                description: format!("poolside {}: {purpose}", config.name),
                value,
                tags,
            })
        }));
    }
    out
}

/// Where the API tasks may connect: the database, and AWS over HTTPS only
/// through the VPC endpoints (ECR, Logs and Secrets Manager through the
/// interface endpoints' group, ECR's image layers from S3 through the gateway
/// endpoint, named by the region's prefix list). Not the internet.
fn api_egress(account: &AccountFacts, sg: &dyn Fn(&str) -> ResourceId) -> BTreeSet<Rule> {
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
    BTreeSet::from([
        Rule::tcp(DATABASE_PORT, sg("database").0, "to the database"),
        Rule::tcp(
            HTTPS_PORT,
            sg("endpoints").0,
            "HTTPS to the interface endpoints (ECR, Logs, Secrets Manager)",
        ),
        s3,
    ])
}

/// The parameters poolside sets in the group. pg_cron must be preloaded and
/// told which database holds its jobs. RDS preloads `pg_stat_statements` by
/// default; setting the list replaces it, so it is kept. Only parameters RDS
/// lets a customer modify belong here: `cron.use_background_workers`, for one,
/// is refused by ModifyDBParameterGroup on RDS (moto accepts it).
pub fn database_parameters(config: &Config) -> std::collections::BTreeMap<String, String> {
    [
        ("shared_preload_libraries", "pg_stat_statements,pg_cron"),
        ("cron.database_name", config.database.name.as_str()),
        ("rds.force_ssl", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

struct Builder<'a> {
    config: &'a Config,
}

impl Builder<'_> {
    /// A resource with poolside's tags, the user's tags and a readable Name.
    fn desired(
        &self,
        id: &ResourceId,
        name_suffix: &str,
        spec: impl FnOnce(Tags) -> Spec,
    ) -> Desired {
        Desired {
            id: id.clone(),
            spec: spec(self.tags(id, name_suffix)),
            after: vec![],
        }
    }

    fn tags(&self, id: &ResourceId, name_suffix: &str) -> Tags {
        let mut tags = self.config.tags.clone();
        tags.insert(TAG_ENV.into(), self.config.name.clone());
        tags.insert(TAG_ID.into(), id.0.clone());
        tags.insert(
            "Name".into(),
            format!("poolside-{}-{name_suffix}", self.config.name),
        );
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra_network: &str) -> Config {
        let text = format!(
            "name = \"t\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
             availability_zones = [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]\n\
             allowed_ingress_cidrs = [\"203.0.113.0/24\"]\n{extra_network}"
        );
        crate::config::parse("t.toml", "t", text).unwrap()
    }

    fn account() -> AccountFacts {
        AccountFacts {
            account_id: "111122223333".into(),
            partition: "aws".into(),
            s3_prefix_list: Some("pl-6da54004".into()),
        }
    }

    /// The ingress or egress rules of one group, as (port, peer).
    fn rules_of(resources: &[Desired], group: &str, egress: bool) -> Vec<(i32, String)> {
        let Some(Spec::SecurityGroupRules(rules)) = resources
            .iter()
            .find(|d| d.id.0 == format!("sg-rules/{group}"))
            .map(|d| &d.spec)
        else {
            panic!("no sg-rules/{group}")
        };
        let chosen = if egress {
            &rules.egress
        } else {
            &rules.ingress
        };
        chosen
            .iter()
            .map(|r| (r.from_port, r.peer.clone()))
            .collect()
    }

    fn ids(resources: &[Desired], kind: Kind) -> Vec<String> {
        resources
            .iter()
            .filter(|d| d.id.kind() == Some(kind))
            .map(|d| d.id.0.clone())
            .collect()
    }

    #[test]
    fn pilot_shares_one_nat_gateway() {
        let resources = build(&config(""), &account()).unwrap();
        assert_eq!(ids(&resources, Kind::NatGateway), ["nat/eu-west-1a"]);
        let private_c = resources
            .iter()
            .find(|d| d.id.0 == "route-table/private-eu-west-1c")
            .unwrap();
        let Spec::RouteTable(rt) = &private_c.spec else {
            panic!()
        };
        assert_eq!(rt.routes.first().unwrap().target.0, "nat/eu-west-1a");
    }

    #[test]
    fn per_az_nat_gives_each_zone_its_own() {
        let resources = build(&config("nat_gateways = \"per_az\"\n"), &account()).unwrap();
        assert_eq!(ids(&resources, Kind::NatGateway).len(), 3);
        assert_eq!(ids(&resources, Kind::ElasticIp).len(), 3);
    }

    #[test]
    fn every_reference_points_at_a_resource_in_the_blueprint() {
        let resources = build(&config(""), &account()).unwrap();
        let known: BTreeSet<_> = resources.iter().map(|d| d.id.clone()).collect();
        for d in &resources {
            for r in d.spec.references() {
                assert!(known.contains(&r), "{} refers to missing {}", d.id, r);
            }
        }
    }

    #[test]
    fn database_accepts_postgres_only_from_the_api_group() {
        let resources = build(&config(""), &account()).unwrap();
        let rules = resources
            .iter()
            .find(|d| d.id.0 == "sg-rules/database")
            .unwrap();
        let Spec::SecurityGroupRules(rules) = &rules.spec else {
            panic!()
        };
        assert_eq!(rules.ingress.len(), 1);
        let only = rules.ingress.first().unwrap();
        assert_eq!((only.from_port, only.peer.as_str()), (5432, "sg/api"));
        assert!(rules.egress.is_empty());
    }

    #[test]
    fn nat_gateways_and_the_load_balancer_wait_for_the_internet_gateway() {
        let resources = build(&config("nat_gateways = \"per_az\"\n"), &account()).unwrap();
        let igw = ResourceId::new(Kind::InternetGateway, "main");
        let waiting: Vec<&str> = resources
            .iter()
            .filter(|d| d.dependencies().contains(&igw))
            .filter_map(|d| d.id.kind().map(|k| k.prefix()))
            .collect();
        // Three NAT gateways, the load balancer, and the public route table's route.
        assert_eq!(
            waiting.iter().filter(|k| **k == "nat").count(),
            3,
            "{waiting:?}"
        );
        assert!(waiting.contains(&"load-balancer"), "{waiting:?}");
    }

    #[test]
    fn api_tasks_reach_aws_only_through_the_endpoints() {
        let resources = build(&config(""), &account()).unwrap();
        assert_eq!(
            rules_of(&resources, "api", true),
            [
                (443, "pl-6da54004".to_string()),
                (443, "sg/endpoints".to_string()),
                (5432, "sg/database".to_string())
            ]
        );
    }

    #[test]
    fn the_parameter_group_sets_only_what_rds_lets_customers_modify() {
        let parameters = database_parameters(&config(""));
        assert_eq!(
            parameters["shared_preload_libraries"],
            "pg_stat_statements,pg_cron"
        );
        assert!(!parameters.contains_key("cron.use_background_workers"));
    }

    #[test]
    fn operator_networks_reach_postgres_only_when_listed() {
        let text = "name = \"t\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
             availability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n\
             [database]\nadmin_ingress_cidrs = [\"172.16.0.0/12\"]\n";
        let config = crate::config::parse("t.toml", "t", text.to_string()).unwrap();
        let resources = build(&config, &account()).unwrap();
        assert_eq!(
            rules_of(&resources, "database", false),
            [
                (5432, "172.16.0.0/12".to_string()),
                (5432, "sg/api".to_string())
            ]
        );
    }

    #[test]
    fn bucket_policy_denies_plain_http() {
        let resources = build(&config(""), &account()).unwrap();
        let bucket = resources
            .iter()
            .find(|d| d.id.0 == "bucket/artifacts")
            .unwrap();
        let Spec::Bucket(bucket) = &bucket.spec else {
            panic!()
        };
        assert_eq!(bucket.name, "poolside-t-111122223333-eu-west-1");
        let statement = &bucket.policy.as_ref().unwrap()["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(
            statement["Condition"]["Bool"]["aws:SecureTransport"],
            "false"
        );
    }

    /// The role ECS shifts traffic with trusts ECS exactly as AWS documents
    /// it ("Amazon ECS infrastructure IAM role"): ECS does not send
    /// `aws:SourceAccount` when it assumes this role, so a condition on it
    /// would make every canary or linear deployment fail to assume it.
    #[test]
    fn the_traffic_role_trusts_ecs_as_aws_documents_it() {
        let resources = build(&config(""), &account()).unwrap();
        let role = resources
            .iter()
            .find(|d| d.id.0 == "role/ecs-load-balancers")
            .unwrap();
        let Spec::Role(role) = &role.spec else {
            panic!()
        };
        assert_eq!(
            role.trust_policy,
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "AllowAccessToECSForInfrastructureManagement",
                    "Effect": "Allow",
                    "Principal": { "Service": "ecs.amazonaws.com" },
                    "Action": "sts:AssumeRole"
                }]
            })
        );
    }

    /// The repository's lifecycle policy may expire only untagged images:
    /// a rule counting tagged ones ("keep the last N, any tag") expires the
    /// schema runner's image (pushed once, so always the oldest) and
    /// releases that task definitions still name.
    #[test]
    fn the_lifecycle_policy_never_expires_a_tagged_image() {
        let resources = build(&config(""), &account()).unwrap();
        let repository = resources
            .iter()
            .find(|d| d.id.0 == "repository/postgrest")
            .unwrap();
        let Spec::Repository(repository) = &repository.spec else {
            panic!()
        };
        let policy = repository.lifecycle_policy.as_ref().unwrap();
        let rules = policy["rules"].as_array().unwrap();
        assert!(!rules.is_empty());
        for rule in rules {
            assert_eq!(rule["selection"]["tagStatus"], "untagged", "{rule}");
            assert_eq!(rule["selection"]["countType"], "sinceImagePushed", "{rule}");
        }
    }

    #[test]
    fn the_removed_keep_last_images_key_is_refused_with_its_reason() {
        let text = "name = \"t\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
             availability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n\
             [registry]\nkeep_last_images = 30\n";
        let err = crate::config::parse("t.toml", "t", text.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("registry.keep_last_images"), "{err}");
        assert!(err.contains("untagged_image_days"), "{err}");
    }
}
