//! Config → the resources an environment should have, by tier: network,
//! storage and registry, data, service (its front, the load balancer, and its
//! tasks), observability. `build` composes them in that order.
//!
//! Contract: a pure function. No AWS call and no I/O beyond the templates
//! compiled into the binary, so it is tested without an emulator. It may
//! refer to other resources only through [`Reference`]s that apply fills in
//! (`crate::refs`); names shared with the commands live in `crate::names`.
//!
//! [`Reference`]: crate::model::refs::Reference

mod boundary;
mod builder;
mod data;
mod load_balancer;
mod network;
mod observability;
mod service;
mod storage;

pub use storage::bucket_name;

use crate::config::{Config, SchemaRunner};
use crate::resources::spec::*;
pub use boundary::roles_boundary;
use builder::Builder;
pub use builder::{AccountFacts, INTERFACE_ENDPOINTS};

/// Every resource the environment should have, in the order the tiers are
/// built (apply orders them by their references, not by this order).
pub fn build(config: &Config, account: &AccountFacts) -> anyhow::Result<Vec<Desired>> {
    let b = Builder { config };
    let (mut out, network) = network::network(&b, config, account);
    out.extend(storage::storage_and_registry(&b, config, account)?);
    out.extend(data::data_tier(&b, config, &network.private_subnets));
    out.extend(service::tasks(&b, config, account)?);
    if config.database.schema_runner == SchemaRunner::EcsTask {
        out.extend(data::schema_task(&b, config, account)?);
    }
    let (front_resources, front) = load_balancer::front(&b, config, account, &network)?;
    out.extend(front_resources);
    out.extend(service::service(
        &b,
        config,
        &front,
        &network.private_subnets,
    ));
    out.extend(observability::observability(config, &front)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use std::collections::BTreeSet;

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
        let parameters = data::database_parameters(&config(""));
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
