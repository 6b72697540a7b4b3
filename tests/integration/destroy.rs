//! `poolside destroy`: everything of one environment goes, checked through
//! the SDK type by type; data is kept unless the user says otherwise; a
//! destroy killed half-way finishes on the next run; the neighbour stays.

use crate::support::*;
use aws_sdk_iam::error::ProvideErrorMetadata;
use std::io::{BufRead, BufReader};

/// Collects every page of a paginated list call.
macro_rules! all_pages {
    ($request:expr, $items:ident) => {{
        let pages: Vec<_> = $request
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|page| page.unwrap())
            .collect();
        pages
            .iter()
            .flat_map(|page| page.$items().to_vec())
            .collect::<Vec<_>>()
    }};
}

/// The answer of a read about one listed resource, or None when the resource
/// went between the listing and the read: the emulator is shared, and another
/// test's destroy can delete its role or alarm in that gap (a CI run met a
/// role's NoSuchEntity there). Any other error still fails the test.
fn unless_gone<T, E, R>(answer: Result<T, aws_sdk_iam::error::SdkError<E, R>>) -> Option<T>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match answer {
        Ok(found) => Some(found),
        Err(e) => match e.code() {
            Some(code) if code.contains("NotFound") || code == "NoSuchEntity" => None,
            _ => panic!("{e:?}"),
        },
    }
}

/// Every resource tagged with (or, where AWS has no tags, named for) the
/// environment that still exists, as `kind id`, asked of each service with
/// every page read: the emulator holds every test's resources at once.
pub(crate) async fn remaining(aws: &Aws, env: &str) -> Vec<String> {
    let mut left = Vec::new();
    let filter = || env_filter(env);
    let ec2 = &aws.ec2;
    for vpc in all_pages!(ec2.describe_vpcs().filters(filter()), vpcs) {
        left.push(format!("vpc {}", vpc.vpc_id().unwrap()));
    }
    for s in all_pages!(ec2.describe_subnets().filters(filter()), subnets) {
        left.push(format!("subnet {}", s.subnet_id().unwrap()));
    }
    for g in all_pages!(
        ec2.describe_internet_gateways().filters(filter()),
        internet_gateways
    ) {
        left.push(format!(
            "internet-gateway {}",
            g.internet_gateway_id().unwrap()
        ));
    }
    for r in all_pages!(ec2.describe_route_tables().filters(filter()), route_tables) {
        left.push(format!("route-table {}", r.route_table_id().unwrap()));
    }
    for g in all_pages!(
        ec2.describe_security_groups().filters(filter()),
        security_groups
    ) {
        left.push(format!("security-group {}", g.group_id().unwrap()));
    }
    // moto ignores tag filters on NAT gateways: the tags are checked here.
    for n in all_pages!(ec2.describe_nat_gateways(), nat_gateways) {
        let ours = n
            .tags()
            .iter()
            .any(|t| t.key() == Some("poolside:env") && t.value() == Some(env));
        if ours && n.state().map(|s| s.as_str()) != Some("deleted") {
            left.push(format!("nat-gateway {}", n.nat_gateway_id().unwrap()));
        }
    }
    let addresses = ec2
        .describe_addresses()
        .filters(filter())
        .send()
        .await
        .unwrap();
    for a in addresses.addresses() {
        left.push(format!("elastic-ip {}", a.allocation_id().unwrap()));
    }
    for e in all_pages!(
        ec2.describe_vpc_endpoints().filters(filter()),
        vpc_endpoints
    ) {
        if e.state().map(|s| s.as_str()) != Some("deleted") {
            left.push(format!("vpc-endpoint {}", e.vpc_endpoint_id().unwrap()));
        }
    }
    let ours = |pairs: Vec<(Option<String>, Option<String>)>| {
        pairs
            .iter()
            .any(|(k, v)| k.as_deref() == Some("poolside:env") && v.as_deref() == Some(env))
    };

    for bucket in aws.s3.list_buckets().send().await.unwrap().buckets() {
        let name = bucket.name().unwrap();
        if let Ok(t) = aws.s3.get_bucket_tagging().bucket(name).send().await {
            if ours(
                t.tag_set()
                    .iter()
                    .map(|t| (Some(t.key().into()), Some(t.value().into())))
                    .collect(),
            ) {
                left.push(format!("bucket {name}"));
            }
        }
    }
    for repo in all_pages!(aws.ecr.describe_repositories(), repositories) {
        let Some(t) = unless_gone(
            aws.ecr
                .list_tags_for_resource()
                .resource_arn(repo.repository_arn().unwrap())
                .send()
                .await,
        ) else {
            continue;
        };
        if ours(
            t.tags()
                .iter()
                .map(|t| (Some(t.key().into()), Some(t.value().into())))
                .collect(),
        ) {
            left.push(format!("repository {}", repo.repository_name().unwrap()));
        }
    }
    let rds = &aws.rds;
    let rds_ours = |arn: String| async move {
        let Some(t) = unless_gone(rds.list_tags_for_resource().resource_name(arn).send().await)
        else {
            return false;
        };
        ours(
            t.tag_list()
                .iter()
                .map(|t| (t.key().map(str::to_string), t.value().map(str::to_string)))
                .collect(),
        )
    };
    for db in all_pages!(rds.describe_db_instances(), db_instances) {
        if rds_ours(db.db_instance_arn().unwrap().into()).await {
            left.push(format!(
                "db-instance {}",
                db.db_instance_identifier().unwrap()
            ));
        }
    }
    for g in all_pages!(rds.describe_db_parameter_groups(), db_parameter_groups) {
        if rds_ours(g.db_parameter_group_arn().unwrap().into()).await {
            left.push(format!(
                "db-parameter-group {}",
                g.db_parameter_group_name().unwrap()
            ));
        }
    }
    for g in all_pages!(rds.describe_db_subnet_groups(), db_subnet_groups) {
        if rds_ours(g.db_subnet_group_arn().unwrap().into()).await {
            left.push(format!(
                "db-subnet-group {}",
                g.db_subnet_group_name().unwrap()
            ));
        }
    }
    for s in all_pages!(aws.secrets.list_secrets(), secret_list) {
        if ours(
            s.tags()
                .iter()
                .map(|t| (t.key().map(str::to_string), t.value().map(str::to_string)))
                .collect(),
        ) {
            left.push(format!("secret {}", s.name().unwrap()));
        }
    }
    for g in all_pages!(
        aws.logs
            .describe_log_groups()
            .log_group_name_prefix(format!("/poolside/{env}/")),
        log_groups
    ) {
        left.push(format!("log-group {}", g.log_group_name().unwrap()));
    }
    for role in all_pages!(aws.iam.list_roles(), roles) {
        let Some(t) = unless_gone(
            aws.iam
                .list_role_tags()
                .role_name(role.role_name())
                .send()
                .await,
        ) else {
            continue;
        };
        if ours(
            t.tags()
                .iter()
                .map(|t| (Some(t.key().into()), Some(t.value().into())))
                .collect(),
        ) {
            left.push(format!("role {}", role.role_name()));
        }
    }
    for arn in all_pages!(aws.ecs.list_clusters(), cluster_arns) {
        let Some(t) = unless_gone(
            aws.ecs
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await,
        ) else {
            continue;
        };
        if ours(
            t.tags()
                .iter()
                .map(|t| (t.key().map(str::to_string), t.value().map(str::to_string)))
                .collect(),
        ) {
            let found = aws
                .ecs
                .describe_clusters()
                .clusters(&arn)
                .send()
                .await
                .unwrap();
            if found
                .clusters()
                .iter()
                .any(|c| c.status() == Some("ACTIVE"))
            {
                left.push(format!("cluster {arn}"));
            }
        }
    }
    // ListTaskDefinitions' familyPrefix is a whole family name, not a prefix.
    for family in ["api", "schema"] {
        let request = aws
            .ecs
            .list_task_definitions()
            .family_prefix(format!("poolside-{env}-{family}"))
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active);
        for arn in all_pages!(request, task_definition_arns) {
            left.push(format!("task-definition {arn}"));
        }
    }
    let elb = &aws.elb;
    let mut arns: Vec<String> = all_pages!(elb.describe_load_balancers(), load_balancers)
        .iter()
        .map(|l| l.load_balancer_arn().unwrap().to_string())
        .collect();
    arns.extend(
        all_pages!(elb.describe_target_groups(), target_groups)
            .iter()
            .map(|g| g.target_group_arn().unwrap().to_string()),
    );
    for arn in arns {
        let Some(t) = unless_gone(elb.describe_tags().resource_arns(&arn).send().await) else {
            continue;
        };
        let tags = t
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .map(|t| (t.key().map(str::to_string), t.value().map(str::to_string)))
            .collect();
        if ours(tags) {
            left.push(format!("load-balancing {arn}"));
        }
    }
    for alarm in all_pages!(aws.cloudwatch.describe_alarms(), metric_alarms) {
        let Some(t) = unless_gone(
            aws.cloudwatch
                .list_tags_for_resource()
                .resource_arn(alarm.alarm_arn().unwrap())
                .send()
                .await,
        ) else {
            continue;
        };
        if ours(
            t.tags()
                .iter()
                .map(|t| (t.key().map(str::to_string), t.value().map(str::to_string)))
                .collect(),
        ) {
            left.push(format!("alarm {}", alarm.alarm_name().unwrap()));
        }
    }
    let dashboards = aws
        .cloudwatch
        .list_dashboards()
        .dashboard_name_prefix(format!("poolside-{env}"))
        .send()
        .await
        .unwrap();
    for d in dashboards.dashboard_entries() {
        if d.dashboard_name() == Some(&format!("poolside-{env}")) {
            left.push(format!("dashboard {}", d.dashboard_name().unwrap()));
        }
    }
    left
}

fn destroy(env: &Env, extra: &[&str]) -> Run {
    let mut args = vec!["destroy", "--env", &env.name, "--yes", "--output", "json"];
    args.extend_from_slice(extra);
    env.poolside(&args)
}

fn bucket_of(deployed: &Run) -> String {
    let outputs = deployed.one("outputs");
    outputs["bucket_name"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn destroy_removes_everything_of_the_environment_keeps_data_until_told_and_spares_the_neighbour(
) {
    let env = Env::new("gone");
    env.write();
    let deployed = env.deploy();
    let neighbour = Env::new("stays");
    neighbour.write();
    neighbour.deploy();
    let aws = aws().await;
    let before = remaining(&aws, &env.name).await;
    // The checker sees every kind it asks about, or its empty answer later proves nothing.
    let kinds: std::collections::BTreeSet<&str> = before
        .iter()
        .map(|r| r.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "alarm",
            "bucket",
            "cluster",
            "dashboard",
            "db-instance",
            "db-parameter-group",
            "db-subnet-group",
            "elastic-ip",
            "internet-gateway",
            "load-balancing",
            "log-group",
            "nat-gateway",
            "repository",
            "role",
            "route-table",
            "secret",
            "security-group",
            "subnet",
            "task-definition",
            "vpc",
            "vpc-endpoint"
        ]
    );

    // A model artifact: data, which destroy keeps unless told.
    let bucket = bucket_of(&deployed);
    // The bucket's policy refuses plain HTTP, which is what the emulator
    // speaks: lift it for the upload (a TLS client would not need to).
    let policy = aws
        .s3
        .get_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    aws.s3
        .delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("models/adapter.bin")
        .body(b"weights".to_vec().into())
        .send()
        .await
        .unwrap();
    aws.s3
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(policy.policy().unwrap())
        .send()
        .await
        .unwrap();
    let refused = destroy(&env, &["--stats"]);
    refused.assert_code(1);
    assert!(
        refused.stderr().contains(&format!(
            "bucket {bucket} holds 1 object version or delete marker ("
        )) && refused.stderr().contains("--delete-data"),
        "{}",
        refused.stderr()
    );
    assert_eq!(refused.mutating_calls(), 0);
    env.plan().assert_code(0);

    let done = destroy(&env, &["--delete-data", "--stats"]);
    done.assert_code(0);
    let report = done.one("destroy");
    let planned = done.one("plan")["changes"].as_array().unwrap().len();
    assert_eq!(report["deleted"].as_u64(), Some(planned as u64), "{report}");
    let snapshot = report["final_snapshot"]
        .as_str()
        .expect("a final snapshot by default");
    let snapshots = aws
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(snapshots.db_snapshots().len(), 1);
    // What is left of the data, listed by poolside after the instance went.
    let listed = env.poolside(&["snapshots", "--env", &env.name, "--output", "json"]);
    listed.assert_code(0);
    let kept: Vec<serde_json::Value> = listed
        .json("snapshot")
        .into_iter()
        .filter(|s| s["kept_by_destroy"] == true)
        .collect();
    assert_eq!(kept.len(), 1, "{}", listed.stdout());
    assert_eq!(kept[0]["identifier"], snapshot);
    assert_eq!(kept[0]["kind"], "manual");
    // destroy keeps the automated backups too: RDS retains them, and
    // they are listed as what a point-in-time restore starts from.
    let retained = listed.json("retained_backup");
    assert_eq!(retained.len(), 1, "{}", listed.stdout());
    assert_eq!(retained[0]["status"], "retained");
    let human = env.poolside(&["snapshots", "--env", &env.name]);
    assert!(
        human.stdout().contains(snapshot)
            && human.stdout().contains("kept by destroy")
            && human
                .stdout()
                .contains("RDS retains the automated backups of the deleted"),
        "{}",
        human.stdout()
    );
    let dump = report["local_dump"]
        .as_str()
        .expect("the local database is dumped");
    assert!(std::fs::metadata(dump).unwrap().len() > 1000, "{dump}");
    assert!(report["local_api_stopped"].as_u64().is_some(), "{report}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", env.api_port)).is_err(),
        "the environment's PostgREST still answers"
    );
    let mut master = sqlx::Connection::connect_with(&env.postgres.options(
        MASTER_USER,
        MASTER_PASSWORD,
        "postgres",
    ))
    .await
    .map(|c: sqlx::PgConnection| c)
    .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(&env.postgres.database)
            .fetch_one(&mut master)
            .await
            .unwrap();
    assert!(!exists, "the local database was not dropped");

    assert_eq!(remaining(&aws, &env.name).await, [] as [String; 0]);
    neighbour.plan().assert_code(0);

    let again = destroy(&env, &["--stats"]);
    again.assert_code(0);
    assert_eq!(again.one("plan")["changes"], serde_json::json!([]));
    assert_eq!(again.mutating_calls(), 0, "{}", again.stdout());
}

/// The local stack's second life: destroy, deploy again and destroy again
/// within a minute, each in one run (moto names an instance's automated
/// snapshots by the minute, and keeps a deleted secret's name).
#[tokio::test]
async fn destroy_deploy_again_and_destroy_again_within_a_minute_on_the_emulator() {
    let env = Env::new("again");
    env.write();
    env.deploy();
    destroy(&env, &[]).assert_code(0);
    env.deploy();
    destroy(&env, &[]).assert_code(0);
    env.deploy();
}

#[tokio::test]
async fn a_destroy_killed_half_way_finishes_on_the_next_run() {
    let env = Env::new("halfway");
    env.write();
    env.deploy();
    let aws = aws().await;
    let mut child = spawn(
        &env,
        &[
            "destroy",
            "--env",
            &env.name,
            "--yes",
            "--output",
            "json",
            "--skip-final-snapshot",
        ],
        &[("POOLSIDE_LOCK_LEASE", "2s")],
    );
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().contains("\"step_succeeded\"") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = remaining(&aws, &env.name).await;
    assert!(!left.is_empty(), "the kill came too late to test anything");

    // The killed run still holds the lock: the next one waits for its lease
    // (shortened here) and takes over.
    destroy(&env, &["--skip-final-snapshot", "--lock-timeout", "30s"]).assert_code(0);
    assert_eq!(remaining(&aws, &env.name).await, [] as [String; 0]);
}

#[tokio::test]
async fn deletion_protection_and_phase_full_keep_the_database() {
    let mut env = Env::new("kept");
    env.database_extra = "deletion_protection = true\n".into();
    env.write();
    env.deploy();
    let refused = destroy(&env, &["--stats"]);
    refused.assert_code(1);
    assert!(
        refused.stderr().contains("has deletion protection on")
            && refused
                .stderr()
                .contains("database.deletion_protection = false"),
        "{}",
        refused.stderr()
    );
    assert_eq!(refused.mutating_calls(), 0);

    let mut full = Env::new("fullsnap");
    full.phase = "full";
    full.write();
    let refused = destroy(&full, &["--skip-final-snapshot"]);
    refused.assert_code(1);
    assert!(
        refused.stderr().contains("refusing --skip-final-snapshot")
            && refused.stderr().contains("phase full"),
        "{}",
        refused.stderr()
    );
}
