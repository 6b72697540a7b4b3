//! Deploy, re-deploy, change, drift and isolation, checked through the SDK.

use crate::support::*;
use aws_sdk_ec2::types::{IpPermission, IpRange, VpcAttributeName};
use serde_json::Value;

fn changes(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The step events of a deploy line up: each step starts after what it says
/// it waited for ended, no AWS service has more steps in flight than its cap
/// (CloudWatch's 3 is the one a deploy reaches), and the critical path is a
/// chain of those waits no longer than the whole apply.
fn check_timeline(run: &Run) {
    let events = run.json("event");
    let ended: std::collections::BTreeMap<String, (u64, u64)> = events
        .iter()
        .filter(|e| e["event"] == "step_succeeded")
        .map(|e| {
            let (started, finished) = (
                e["started_ms"].as_u64().unwrap(),
                e["finished_ms"].as_u64().unwrap(),
            );
            assert!(started <= finished, "{e}");
            (e["id"].as_str().unwrap().to_string(), (started, finished))
        })
        .collect();
    assert!(ended.len() > 40, "{} steps", ended.len());
    let mut waited_for = std::collections::BTreeMap::new();
    for started in events.iter().filter(|e| e["event"] == "step_started") {
        let at = started["at_ms"].as_u64().unwrap();
        let after: Vec<String> = started["after"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        for before in &after {
            if let Some((_, finished)) = ended.get(before) {
                assert!(
                    *finished <= at,
                    "{} started at {at} ms before {before} ended ({finished} ms)",
                    started["id"]
                );
            }
        }
        waited_for.insert(started["id"].as_str().unwrap().to_string(), after);
    }
    let alarms: Vec<(u64, u64)> = ended
        .iter()
        .filter(|(id, _)| id.starts_with("alarm/") || id.starts_with("dashboard/"))
        .map(|(_, times)| *times)
        .collect();
    let most_at_once = alarms
        .iter()
        .map(|(start, _)| {
            alarms
                .iter()
                .filter(|(s, f)| s <= start && start < f)
                .count()
        })
        .max()
        .unwrap();
    assert!(
        most_at_once <= 3,
        "{most_at_once} CloudWatch steps in flight at once"
    );

    let path = run.one("critical_path");
    let steps: Vec<&str> = path["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(steps.len() >= 3, "{path}");
    assert!(steps.contains(&"database/schema"), "{path}");
    for pair in steps.windows(2) {
        let after = waited_for.get(pair[1]).cloned().unwrap_or_default();
        let schema_after = pair[1] == "database/schema";
        assert!(
            schema_after || after.iter().any(|a| a == pair[0]),
            "{} did not wait for {}: {path}",
            pair[1],
            pair[0]
        );
    }
    assert!(
        path["critical_path_ms"].as_u64().unwrap() <= path["makespan_ms"].as_u64().unwrap(),
        "{path}"
    );
}

#[tokio::test]
async fn deploy_from_empty_creates_every_resource_with_its_properties() {
    let env = Env::new("full");
    env.write();
    let run = env.deploy();
    check_timeline(&run);
    let outputs = run.one("outputs");
    let aws = aws().await;
    let vpc_id = outputs["vpc_id"].as_str().unwrap().to_string();

    // VPC with DNS support and hostnames.
    let vpcs = aws
        .ec2
        .describe_vpcs()
        .filters(env_filter(&env.name))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.20.0.0/16"));
    for attribute in [
        VpcAttributeName::EnableDnsSupport,
        VpcAttributeName::EnableDnsHostnames,
    ] {
        let out = aws
            .ec2
            .describe_vpc_attribute()
            .vpc_id(&vpc_id)
            .attribute(attribute.clone())
            .send()
            .await
            .unwrap();
        let value = out
            .enable_dns_support()
            .or(out.enable_dns_hostnames())
            .and_then(|v| v.value());
        assert_eq!(value, Some(true), "{attribute:?}");
    }

    // One public and one private subnet per AZ, user tags included.
    let subnets = aws
        .ec2
        .describe_subnets()
        .filters(env_filter(&env.name))
        .send()
        .await
        .unwrap();
    let mut placement: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                tag(s.tags(), "poolside:tier").unwrap().to_string(),
                s.availability_zone().unwrap().to_string(),
            )
        })
        .collect();
    placement.sort();
    assert_eq!(
        placement,
        [
            ("private", "us-east-1a"),
            ("private", "us-east-1b"),
            ("public", "us-east-1a"),
            ("public", "us-east-1b")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(subnets
        .subnets()
        .iter()
        .all(|s| tag(s.tags(), "suite") == Some("integration")));
    let public_ids: Vec<String> =
        serde_json::from_value(outputs["public_subnet_ids"].clone()).unwrap();
    let private_ids: Vec<String> =
        serde_json::from_value(outputs["private_subnet_ids"].clone()).unwrap();

    // Internet gateway attached; one NAT gateway (pilot) in a public subnet with an EIP.
    let igws = aws
        .ec2
        .describe_internet_gateways()
        .filters(env_filter(&env.name))
        .send()
        .await
        .unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    let igw = &igws.internet_gateways()[0];
    assert_eq!(igw.attachments()[0].vpc_id(), Some(vpc_id.as_str()));
    let nats = aws
        .ec2
        .describe_nat_gateways()
        .filter(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&vpc_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(nats.nat_gateways().len(), 1);
    let nat = &nats.nat_gateways()[0];
    assert!(public_ids.contains(&nat.subnet_id().unwrap().to_string()));
    assert!(nat.nat_gateway_addresses()[0].allocation_id().is_some());

    // Routes: public → IGW, each private subnet → the NAT gateway.
    let tables = aws
        .ec2
        .describe_route_tables()
        .filters(env_filter(&env.name))
        .send()
        .await
        .unwrap();
    assert_eq!(tables.route_tables().len(), 3);
    for table in tables.route_tables() {
        let default = table
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .unwrap();
        let associated: Vec<String> = table
            .associations()
            .iter()
            .filter_map(|a| a.subnet_id().map(str::to_string))
            .collect();
        if tag(table.tags(), "poolside:id") == Some("route-table/public") {
            assert_eq!(default.gateway_id(), igw.internet_gateway_id());
            assert_eq!(associated.len(), 2);
            assert!(associated.iter().all(|s| public_ids.contains(s)));
        } else {
            assert_eq!(default.nat_gateway_id(), nat.nat_gateway_id());
            assert_eq!(associated.len(), 1);
            assert!(private_ids.contains(&associated[0]));
        }
    }

    // Security groups: each tier reachable only from the one in front of it.
    let groups = &outputs["security_group_ids"];
    let group = |name: &str| groups[name].as_str().unwrap().to_string();
    // The API tasks reach the database, the interface endpoints and S3 (by its
    // prefix list), and nothing on the internet.
    let api = aws
        .ec2
        .describe_security_groups()
        .group_ids(group("api"))
        .send()
        .await
        .unwrap();
    let egress = api.security_groups()[0].ip_permissions_egress();
    let mut peers: Vec<String> = egress
        .iter()
        .flat_map(|p| {
            let port = p.from_port().unwrap();
            p.ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip().map(str::to_string))
                .chain(
                    p.user_id_group_pairs()
                        .iter()
                        .filter_map(|g| g.group_id().map(str::to_string)),
                )
                .chain(
                    p.prefix_list_ids()
                        .iter()
                        .filter_map(|l| l.prefix_list_id().map(str::to_string)),
                )
                .map(move |peer| format!("{port} {peer}"))
        })
        .collect();
    peers.sort();
    let s3_list = aws
        .ec2
        .describe_prefix_lists()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("prefix-list-name")
                .values("com.amazonaws.us-east-1.s3")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .prefix_lists()[0]
        .prefix_list_id()
        .unwrap()
        .to_string();
    let mut expected = vec![
        format!("443 {}", group("endpoints")),
        format!("443 {s3_list}"),
        format!("5432 {}", group("database")),
    ];
    expected.sort();
    assert_eq!(peers, expected);
    let described = aws
        .ec2
        .describe_security_groups()
        .group_ids(group("database"))
        .group_ids(group("load-balancer"))
        .send()
        .await
        .unwrap();
    for sg in described.security_groups() {
        if sg.group_id() == Some(group("database").as_str()) {
            assert_eq!(sg.ip_permissions().len(), 1);
            let p = &sg.ip_permissions()[0];
            assert_eq!((p.from_port(), p.to_port()), (Some(5432), Some(5432)));
            assert!(p.ip_ranges().is_empty());
            assert_eq!(
                p.user_id_group_pairs()[0].group_id(),
                Some(group("api").as_str())
            );
            assert!(
                sg.ip_permissions_egress().is_empty(),
                "the database group has no egress"
            );
        } else {
            let mut ports: Vec<(i32, String)> = sg
                .ip_permissions()
                .iter()
                .flat_map(|p| {
                    p.ip_ranges()
                        .iter()
                        .map(move |r| (p.from_port().unwrap(), r.cidr_ip().unwrap().to_string()))
                })
                .collect();
            ports.sort();
            assert_eq!(
                ports,
                [
                    (80, "198.51.100.0/24".to_string()),
                    (443, "198.51.100.0/24".to_string())
                ]
            );
        }
    }

    // Endpoints: S3 gateway on the private route tables; interface endpoints in the private subnets.
    let endpoints = aws
        .ec2
        .describe_vpc_endpoints()
        .filters(env_filter(&env.name))
        .send()
        .await
        .unwrap();
    let mut services: Vec<String> = endpoints
        .vpc_endpoints()
        .iter()
        .map(|e| e.service_name().unwrap().to_string())
        .collect();
    services.sort();
    assert_eq!(
        services,
        ["ecr.api", "ecr.dkr", "logs", "s3", "secretsmanager"]
            .map(|s| format!("com.amazonaws.us-east-1.{s}"))
    );
    for endpoint in endpoints.vpc_endpoints() {
        if endpoint.service_name().unwrap().ends_with(".s3") {
            assert_eq!(endpoint.vpc_endpoint_type().unwrap().as_str(), "Gateway");
            assert_eq!(endpoint.route_table_ids().len(), 2);
        } else {
            let mut subnets = endpoint.subnet_ids().to_vec();
            subnets.sort();
            let mut expected = private_ids.clone();
            expected.sort();
            assert_eq!(subnets, expected);
            assert_eq!(
                endpoint.groups()[0].group_id(),
                Some(group("endpoints").as_str())
            );
        }
    }

    // Bucket: versioned, encrypted, private, TLS only, old versions expire.
    let bucket = outputs["bucket_name"].as_str().unwrap();
    let encryption = aws
        .s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let rule = &encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let block = aws
        .s3
        .get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        [
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ],
        [Some(true); 4]
    );
    let policy = aws
        .s3
        .get_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Effect"], "Deny");
    assert_eq!(
        policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
        "false"
    );
    let tagging = aws
        .s3
        .get_bucket_tagging()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert!(tagging
        .tag_set()
        .iter()
        .any(|t| t.key() == "poolside:env" && t.value() == env.name));
    // Versioning and lifecycle: moto's XML for these two trips the SDK parser
    // (see resources/storage.rs), so fall back to the raw response the SDK kept.
    let versioning = match aws.s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(out) => format!("<Status>{}</Status>", out.status().unwrap().as_str()),
        Err(err) => raw_body(&err),
    };
    assert!(
        versioning.contains("<Status>Enabled</Status>"),
        "{versioning}"
    );
    let lifecycle = match aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => format!("{:?}", out.rules()),
        Err(err) => raw_body(&err),
    };
    assert!(
        lifecycle.contains("poolside-noncurrent-versions"),
        "{lifecycle}"
    );
    assert!(
        lifecycle.contains("<NoncurrentDays>30</NoncurrentDays>")
            || lifecycle.contains("noncurrent_days: Some(30)"),
        "{lifecycle}"
    );

    // Repository: immutable tags, scan on push, and a lifecycle that expires
    // untagged images only (no release a task definition names, nor the
    // schema runner, can expire).
    let repos = aws
        .ecr
        .describe_repositories()
        .repository_names(format!("poolside/{}/postgrest", env.name))
        .send()
        .await
        .unwrap();
    let repo = &repos.repositories()[0];
    assert_eq!(repo.image_tag_mutability().unwrap().as_str(), "IMMUTABLE");
    assert!(repo.image_scanning_configuration().unwrap().scan_on_push());
    assert_eq!(outputs["repository_uri"].as_str(), repo.repository_uri());
    let lifecycle = aws
        .ecr
        .get_lifecycle_policy()
        .repository_name(repo.repository_name().unwrap())
        .send()
        .await
        .unwrap();
    let lifecycle: Value =
        serde_json::from_str(lifecycle.lifecycle_policy_text().unwrap()).unwrap();
    let selection = &lifecycle["rules"][0]["selection"];
    assert_eq!(selection["tagStatus"], "untagged");
    assert_eq!(selection["countType"], "sinceImagePushed");
    assert_eq!(selection["countNumber"], 14);

    // A second deploy: nothing to change, and not a single mutating call.
    let again = env.deploy();
    assert!(changes(&again.one("plan")).is_empty(), "{}", again.stdout());
    assert_eq!(again.mutating_calls(), 0);
    let plan = env.plan();
    plan.assert_code(0);
}

#[tokio::test]
async fn a_new_allowed_cidr_is_exactly_one_update_and_then_exists() {
    let mut env = Env::new("cidr");
    env.write();
    env.deploy();
    env.allowed_cidrs.push("203.0.113.0/24".into());
    env.write();

    let plan = env.plan();
    plan.assert_code(2);
    let plan = plan.one("plan");
    assert_eq!(
        changes(&plan),
        [("sg-rules/load-balancer".to_string(), "update".to_string())]
    );
    let added: Vec<&Value> = plan["changes"][0]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(added.len(), 2, "80 and 443 from the new CIDR: {added:?}");
    assert!(added
        .iter()
        .all(|p| p["after"]["peer"] == "203.0.113.0/24" && p["before"].is_null()));

    let run = env.deploy();
    let group = run.one("outputs")["security_group_ids"]["load-balancer"]
        .as_str()
        .unwrap()
        .to_string();
    let aws = aws().await;
    let sg = aws
        .ec2
        .describe_security_groups()
        .group_ids(&group)
        .send()
        .await
        .unwrap();
    let https: Vec<String> = sg.security_groups()[0]
        .ip_permissions()
        .iter()
        .filter(|p| p.from_port() == Some(443))
        .flat_map(|p| {
            p.ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip().map(str::to_string))
        })
        .collect();
    assert!(https.contains(&"203.0.113.0/24".to_string()), "{https:?}");
    env.plan().assert_code(0);
}

#[tokio::test]
async fn a_rule_added_by_hand_is_planned_for_removal_and_removed() {
    let env = Env::new("drift");
    env.write();
    let outputs = env.deploy().one("outputs");
    let database = outputs["security_group_ids"]["database"]
        .as_str()
        .unwrap()
        .to_string();
    let aws = aws().await;
    aws.ec2
        .authorize_security_group_ingress()
        .group_id(&database)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(
                    IpRange::builder()
                        .cidr_ip("0.0.0.0/0")
                        .description("opened by hand")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let plan = env.plan();
    plan.assert_code(2);
    let plan = plan.one("plan");
    assert_eq!(
        changes(&plan),
        [("sg-rules/database".to_string(), "update".to_string())]
    );
    let property = &plan["changes"][0]["properties"][0];
    assert_eq!(property["property"], "ingress");
    assert_eq!(property["before"]["from_port"], 22);
    assert!(property["after"].is_null());

    env.deploy();
    let sg = aws
        .ec2
        .describe_security_groups()
        .group_ids(&database)
        .send()
        .await
        .unwrap();
    let ports: Vec<Option<i32>> = sg.security_groups()[0]
        .ip_permissions()
        .iter()
        .map(|p| p.from_port())
        .collect();
    assert_eq!(
        ports,
        [Some(5432)],
        "only PostgreSQL from the API group remains"
    );
    env.plan().assert_code(0);
}

#[tokio::test]
async fn a_run_that_stopped_after_creating_the_vpc_is_finished_not_duplicated() {
    let env = Env::new("crash");
    env.write();
    // What a crash right after CreateVpc leaves: a tagged VPC whose DNS hostnames were never turned on.
    let aws = aws().await;
    let tags = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("poolside:env")
                .value(&env.name)
                .build(),
        )
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("poolside:id")
                .value("vpc/main")
                .build(),
        )
        .build();
    let created = aws
        .ec2
        .create_vpc()
        .cidr_block("10.20.0.0/16")
        .tag_specifications(tags)
        .send()
        .await
        .unwrap();
    let orphan = created.vpc().unwrap().vpc_id().unwrap().to_string();

    let plan = env.plan();
    plan.assert_code(2);
    let plan = plan.one("plan");
    let vpc_change = changes(&plan)
        .into_iter()
        .find(|(id, _)| id == "vpc/main")
        .unwrap();
    assert_eq!(
        vpc_change.1, "update",
        "the VPC is adopted, not created again"
    );

    let outputs = env.deploy().one("outputs");
    assert_eq!(outputs["vpc_id"], orphan.as_str());
    let vpcs = aws
        .ec2
        .describe_vpcs()
        .filters(env_filter(&env.name))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let hostnames = aws
        .ec2
        .describe_vpc_attribute()
        .vpc_id(&orphan)
        .attribute(VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    assert_eq!(
        hostnames.enable_dns_hostnames().and_then(|v| v.value()),
        Some(true)
    );
    env.plan().assert_code(0);
}

#[tokio::test]
async fn two_environments_side_by_side_do_not_see_each_other() {
    let first = Env::new("side");
    // A name that begins with the other's: its alarm names begin with the
    // other's alarm prefix (`poolside-<first>-`), and must still not be taken.
    let mut second = Env::new("side");
    second.name = format!("{}-eu", first.name);
    first.write();
    second.write();
    let first_outputs = first.deploy().one("outputs");
    let second_outputs = second.deploy().one("outputs");
    assert_ne!(first_outputs["vpc_id"], second_outputs["vpc_id"]);
    assert_ne!(first_outputs["bucket_name"], second_outputs["bucket_name"]);
    assert_ne!(
        first_outputs["repository_uri"],
        second_outputs["repository_uri"]
    );
    // Each still matches its own file exactly: nothing of the other shows up as drift or deletes.
    first.plan().assert_code(0);
    second.plan().assert_code(0);
    let aws = aws().await;
    for env in [&first, &second] {
        let vpcs = aws
            .ec2
            .describe_vpcs()
            .filters(env_filter(&env.name))
            .send()
            .await
            .unwrap();
        assert_eq!(vpcs.vpcs().len(), 1);
    }
    let alarms = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("poolside-{}-", first.name))
        .send()
        .await
        .unwrap();
    assert_eq!(
        alarms.metric_alarms().len(),
        20,
        "both environments' 10 alarms remain"
    );
}

/// Onboarding engineers keep a profile for the customer's account exported
/// (SSO, say); the local stack must still answer with its own test key.
#[tokio::test]
async fn an_exported_profile_does_not_break_the_emulator_target() {
    let env = Env::new("profile");
    env.write();
    let config = env.dir().join("aws-config");
    std::fs::write(
        &config,
        "[profile customer-sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = us-east-1\n",
    )
    .unwrap();
    let run = poolside_with(
        env.dir(),
        &["plan", "--env", &env.name, "--output", "json"],
        &[
            ("AWS_PROFILE", "customer-sso"),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ],
    );
    run.assert_code(0);
    assert!(run.one("plan")["summary"]["create"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn deploy_refuses_to_prompt_without_a_terminal() {
    let env = Env::new("prompt");
    env.write();
    let run = env.poolside(&["deploy", "--env", &env.name]);
    run.assert_code(1);
    assert!(
        run.stderr().contains("standard input is not a terminal"),
        "{}",
        run.stderr()
    );
    let aws = aws().await;
    let vpcs = aws
        .ec2
        .describe_vpcs()
        .filters(env_filter(&env.name))
        .send()
        .await
        .unwrap();
    assert!(vpcs.vpcs().is_empty(), "nothing was created");
}

fn raw_body<E: std::fmt::Debug>(
    err: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::http::Response,
    >,
) -> String {
    let raw = err
        .raw_response()
        .unwrap_or_else(|| panic!("no response: {err:?}"));
    assert_eq!(raw.status().as_u16(), 200, "{err:?}");
    String::from_utf8_lossy(raw.body().bytes().unwrap()).into_owned()
}

/// Changing the master user name replaces the instance: deploy refuses,
/// `--yes` or not, until the user names it.
#[tokio::test]
async fn a_plan_that_replaces_the_database_is_refused_until_named() {
    let mut env = Env::new("guard");
    env.write();
    env.deploy();
    env.database_extra = "master_username = \"other_admin\"\n".into();
    env.write();

    let plan = env.plan();
    plan.assert_code(2);
    let plan = plan.one("plan");
    assert_eq!(plan["data_losses"], serde_json::json!(["db-instance/main"]));
    let human = env.poolside(&["plan", "--env", &env.name]);
    assert!(
        human
            .stdout()
            .contains("deletes the data it holds: deploy needs --allow-replace db-instance/main"),
        "{}",
        human.stdout()
    );

    let refused = env.poolside(&[
        "deploy", "--env", &env.name, "--yes", "--output", "json", "--stats",
    ]);
    refused.assert_code(1);
    assert!(
        refused
            .stderr()
            .contains("refused: the plan deletes or replaces db-instance/main")
            && refused
                .stderr()
                .contains("--allow-replace db-instance/main"),
        "{}",
        refused.stderr()
    );
    assert_eq!(refused.mutating_calls(), 0);

    // moto names the automated snapshot of a new instance `rds:<id>-<minute>`
    // and keeps the old instance's: the replacement's create would collide
    // with it within the same minute (AWS keeps retained backups apart).
    let aws = aws().await;
    let automated = aws
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(format!("poolside-{}", env.name))
        .snapshot_type("automated")
        .send()
        .await
        .unwrap();
    for snapshot in automated.db_snapshots() {
        aws.rds
            .delete_db_snapshot()
            .db_snapshot_identifier(snapshot.db_snapshot_identifier().unwrap())
            .send()
            .await
            .unwrap();
    }
    let allowed = env.poolside(&[
        "deploy",
        "--env",
        &env.name,
        "--yes",
        "--allow-replace",
        "db-instance/main",
        "--output",
        "json",
    ]);
    allowed.assert_code(0);
    env.plan().assert_code(0);
}

/// `plan --out` then `deploy --plan`: the saved plan applies when nothing
/// changed since, and is refused when the environment or its file changed.
#[tokio::test]
async fn a_saved_plan_applies_and_a_stale_one_is_refused() {
    let mut env = Env::new("saved");
    env.write();
    env.deploy();
    let file = env.dir().join("cidr.plan.json");
    let file = file.to_str().unwrap();

    env.allowed_cidrs.push("203.0.113.0/24".into());
    env.write();
    env.poolside(&["plan", "--env", &env.name, "--out", file])
        .assert_code(0);
    let applied = env.poolside(&[
        "deploy", "--env", &env.name, "--plan", file, "--output", "json",
    ]);
    applied.assert_code(0);
    assert_eq!(applied.one("plan")["summary"]["update"], 1);
    env.plan().assert_code(0);

    // The environment changed after the plan was made: a rule added by hand.
    env.allowed_cidrs.push("192.0.2.0/24".into());
    env.write();
    env.poolside(&["plan", "--env", &env.name, "--out", file])
        .assert_code(0);
    let aws = aws().await;
    let group = applied.one("outputs")["security_group_ids"]["api"]
        .as_str()
        .unwrap()
        .to_string();
    aws.ec2
        .authorize_security_group_ingress()
        .group_id(&group)
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    let stale = env.poolside(&[
        "deploy", "--env", &env.name, "--plan", file, "--output", "json", "--stats",
    ]);
    stale.assert_code(1);
    assert!(
        stale.stderr().contains("changed since it was made")
            && stale.stderr().contains("Nothing was changed"),
        "{}",
        stale.stderr()
    );
    assert_eq!(stale.mutating_calls(), 0);

    // The file changed after the plan was made.
    env.poolside(&["plan", "--env", &env.name, "--out", file])
        .assert_code(0);
    env.allowed_cidrs.pop();
    env.write();
    let edited = env.poolside(&["deploy", "--env", &env.name, "--plan", file]);
    edited.assert_code(1);
    assert!(
        edited.stderr().contains("differs from it"),
        "{}",
        edited.stderr()
    );
}

/// The database side is part of every plan: before the first deploy it
/// lists the migrations and jobs to apply; a difference made by hand is in
/// the plan's summary and exit code, in `status` (counted as `drift` counts
/// it), and a saved plan is refused once the database changed after it.
#[tokio::test]
async fn the_database_side_is_part_of_plan_status_and_saved_plans() {
    let env = Env::new("dbplan");
    env.write();
    let first = env.plan();
    first.assert_code(2);
    let database = &first.one("plan")["database"];
    let attributes: Vec<&str> = database["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["attribute"].as_str().unwrap())
        .collect();
    assert!(
        attributes.contains(&"sql/migrations/0001_extensions_and_roles.sql"),
        "{database}"
    );
    assert_eq!(
        first.one("plan")["summary"]["database"].as_u64().unwrap() as usize,
        attributes.len()
    );

    env.deploy();
    let clean = env.plan();
    clean.assert_code(0);
    assert_eq!(clean.one("plan")["database"]["checked"], true);
    let human = env.poolside(&["plan", "--env", &env.name]);
    assert!(human.stdout().contains("No changes"), "{}", human.stdout());

    let mut db = env.postgres.master().await;
    sqlx::query("GRANT INSERT ON api.training_jobs TO api_user")
        .execute(&mut db)
        .await
        .unwrap();
    let granted = env.plan();
    granted.assert_code(2);
    assert_eq!(granted.one("plan")["summary"]["database"], 1);
    let human = env.poolside(&["plan", "--env", &env.name]);
    assert!(!human.stdout().contains("No changes"), "{}", human.stdout());
    assert!(
        human.stdout().contains("In the database") && human.stdout().contains("1 in the database"),
        "{}",
        human.stdout()
    );
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    status.assert_code(0);
    let drift = env.poolside(&["drift", "--env", &env.name, "--output", "json"]);
    drift.assert_code(2);
    assert_eq!(status.one("status")["in_sync"], false);
    assert_eq!(
        status.one("status")["differences"].as_u64().unwrap() as usize,
        drift.json("finding").len()
    );

    let file = env.dir().join("db.plan.json");
    let file = file.to_str().unwrap();
    env.poolside(&["plan", "--env", &env.name, "--out", file])
        .assert_code(0);
    sqlx::query(
        "SELECT cron.alter_job(jobid, schedule => '5 5 * * *') FROM cron.job WHERE jobname = 'cleanup-metrics'",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let stale = env.poolside(&[
        "deploy", "--env", &env.name, "--plan", file, "--output", "json", "--stats",
    ]);
    stale.assert_code(1);
    assert!(
        stale.stderr().contains("the database of"),
        "{}",
        stale.stderr()
    );
    assert_eq!(stale.mutating_calls(), 0);

    let repaired = env.deploy();
    let corrected = repaired.one("plan")["summary"]["database"].clone();
    assert!(corrected.as_u64().unwrap() > 0, "{corrected}");
    env.plan().assert_code(0);
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    assert_eq!(status.one("status")["in_sync"], true);
    // moto lists no pending maintenance: status says so rather than "none".
    let engine = &status.one("status")["database_engine"];
    assert_eq!(
        engine["maintenance_unchecked"], "the emulator does not list pending maintenance",
        "{engine}"
    );
    assert!(
        engine["version"].as_str().unwrap().starts_with("16"),
        "{engine}"
    );
    // The history counts what the run corrected in the database.
    let history = env.poolside(&[
        "history", "--env", &env.name, "--output", "json", "--limit", "1",
    ]);
    assert_eq!(history.one("run")["plan"]["summary"]["database"], corrected);
}

/// Two live resources claiming one logical id: plan and drift report both,
/// deploy refuses without touching either, nothing is deleted on a guess,
/// and `forget` settles it by leaving the named copy out.
#[tokio::test]
async fn two_live_copies_of_one_id_are_reported_and_deploy_refuses_to_guess() {
    let env = Env::new("dup");
    env.write();
    let deployed = env.deploy();
    let original = deployed.one("outputs")["vpc_id"]
        .as_str()
        .unwrap()
        .to_string();
    let aws = aws().await;
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let copy = aws
        .ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                .tags(tag("poolside:env", &env.name))
                .tags(tag("poolside:id", "vpc/main"))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();

    let plan = env.plan();
    plan.assert_code(2);
    let plan = plan.one("plan");
    let duplicates = &plan["duplicates"];
    assert_eq!(duplicates[0]["id"], "vpc/main", "{plan}");
    let copies: std::collections::BTreeSet<&str> = duplicates[0]["physical_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        copies,
        std::collections::BTreeSet::from([original.as_str(), copy.as_str()])
    );
    assert!(
        !plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["action"] == "delete" && c["id"].as_str().unwrap().starts_with("vpc/")),
        "a copy is planned for deletion: {plan}"
    );

    let refused = env.poolside(&[
        "deploy", "--env", &env.name, "--yes", "--output", "json", "--stats",
    ]);
    refused.assert_code(1);
    assert!(
        refused
            .stderr()
            .contains("more than one live resource claims vpc/main")
            && refused.stderr().contains(&copy),
        "{}",
        refused.stderr()
    );
    assert_eq!(refused.mutating_calls(), 0);
    let drift = env.poolside(&["drift", "--env", &env.name, "--output", "json"]);
    drift.assert_code(2);
    assert!(drift
        .json("finding")
        .iter()
        .any(|f| f["resource"] == "vpc/main" && f["attribute"] == "live copies"));

    // The way out: forget the copy that should not be there. It stays,
    // without poolside's tags, and the environment is whole again.
    let wrong = env.poolside(&[
        "forget",
        "--env",
        &env.name,
        "--id",
        "vpc/main",
        "--aws-id",
        "vpc-00000000",
    ]);
    wrong.assert_code(1);
    assert!(
        wrong.stderr().contains("not one of the copies"),
        "{}",
        wrong.stderr()
    );
    let not_duplicated = env.poolside(&[
        "forget", "--env", &env.name, "--id", "igw/main", "--aws-id", &copy,
    ]);
    not_duplicated.assert_code(1);
    let forgotten = env.poolside(&[
        "forget", "--env", &env.name, "--id", "vpc/main", "--aws-id", &copy,
    ]);
    forgotten.assert_code(0);
    let left = aws.ec2.describe_vpcs().vpc_ids(&copy).send().await.unwrap();
    let tags = left.vpcs()[0].tags();
    assert!(
        tags.iter()
            .all(|t| !t.key().unwrap().starts_with("poolside:")),
        "{tags:?}"
    );
    env.plan().assert_code(0);
    let history = env.poolside(&[
        "history", "--env", &env.name, "--output", "json", "--limit", "1",
    ]);
    assert_eq!(history.one("run")["command"], "forget");
    aws.ec2.delete_vpc().vpc_id(&copy).send().await.unwrap();
}
