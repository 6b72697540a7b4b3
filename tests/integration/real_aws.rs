//! What AWS refuses or reports that moto does not: a first deploy through
//! `tests/realistic_aws.py`, a proxy in front of moto that plays those
//! behaviours, must converge in one run, and a plan right after must be empty.

use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The proxy, on a port of its own, in front of the test emulator.
pub struct Proxy(ProxyProcess);

impl std::ops::Deref for Proxy {
    type Target = ProxyProcess;
    fn deref(&self) -> &ProxyProcess {
        &self.0
    }
}

impl Proxy {
    pub fn start() -> Proxy {
        require_emulator();
        Proxy(ProxyProcess::start(
            "tests/realistic_aws.py",
            &endpoint(),
            &[],
            false,
        ))
    }

    /// What the proxy played, in order, with what it recorded of each.
    pub async fn events(&self) -> Vec<Value> {
        reqwest::get(format!("{}/__proxy/events", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The kinds of AWS behaviour the proxy played, in order.
    pub async fn played(&self) -> Vec<String> {
        self.events()
            .await
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    }

    /// How many times the proxy played `kind`.
    async fn count(&self, kind: &str) -> usize {
        self.played().await.iter().filter(|p| *p == kind).count()
    }

    /// What IAM would authorize for each call the proxy saw, in order:
    /// `{call, action, resource, context}` (tests/aws_authorization.py).
    pub async fn authorizations(&self) -> Vec<Value> {
        reqwest::get(format!("{}/__proxy/authorizations", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Makes the service's targets fail their health checks, or pass again.
    async fn targets(&self, settings: Value) {
        self.post("targets", settings).await
    }

    async fn post(&self, what: &str, settings: Value) {
        reqwest::Client::new()
            .post(format!("{}/__proxy/{what}", self.url))
            .json(&settings)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// Tells the proxy where the tasks it runs find the database, and which
    /// failures to play (`POST /__proxy/tasks`).
    pub async fn tasks(&self, settings: Value) {
        self.post("tasks", settings).await
    }

    /// SDK clients that talk to AWS through the proxy.
    async fn aws(&self) -> Aws {
        aws_at(&self.url).await
    }
}

/// The proxy is test equipment: it must refuse what AWS refuses, or the
/// deploy test below proves nothing.
#[tokio::test]
async fn the_proxy_refuses_what_aws_refuses() {
    let proxy = Proxy::start();
    let aws = proxy.aws().await;
    let group = unique_name("proxy");
    aws.rds
        .create_db_parameter_group()
        .db_parameter_group_name(&group)
        .db_parameter_group_family("postgres16")
        .description("proxy test")
        .send()
        .await
        .unwrap();
    let refused = aws
        .rds
        .modify_db_parameter_group()
        .db_parameter_group_name(&group)
        .parameters(
            aws_sdk_rds::types::Parameter::builder()
                .parameter_name("cron.use_background_workers")
                .parameter_value("1")
                .apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    let refused = refused.into_service_error();
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&refused),
        Some("InvalidParameterValue")
    );

    let vpc = aws
        .ec2
        .create_vpc()
        .cidr_block("10.77.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet = aws
        .ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.77.1.0/24")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();
    let eip = aws
        .ec2
        .allocate_address()
        .send()
        .await
        .unwrap()
        .allocation_id()
        .unwrap()
        .to_string();
    let nat = aws
        .ec2
        .create_nat_gateway()
        .subnet_id(&subnet)
        .allocation_id(&eip)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&nat),
        Some("Gateway.NotAttached")
    );
    // A subnet with a load balancer in it cannot be deleted.
    let balancer = aws
        .elb
        .create_load_balancer()
        .name(unique_name("proxy"))
        .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
        .subnets(&subnet)
        .send()
        .await
        .unwrap()
        .load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let in_use = aws
        .ec2
        .delete_subnet()
        .subnet_id(&subnet)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&in_use),
        Some("DependencyViolation")
    );
    let played = proxy.played().await;
    assert_eq!(
        played,
        [
            "parameter_refused",
            "nat_refused_without_igw",
            "subnet_in_use"
        ],
        "{played:?}"
    );
    let _ = aws
        .elb
        .delete_load_balancer()
        .load_balancer_arn(balancer)
        .send()
        .await;
    let _ = aws.ec2.release_address().allocation_id(eip).send().await;
    let _ = aws.ec2.delete_subnet().subnet_id(subnet).send().await;
    let _ = aws.ec2.delete_vpc().vpc_id(vpc).send().await;
    let _ = aws
        .rds
        .delete_db_parameter_group()
        .db_parameter_group_name(group)
        .send()
        .await;
}

/// A first deploy converges in one run through the layer; then day two:
/// RDS's own minor upgrade and maintenance, and a parameter change that
/// waits for a reboot until deploy is told it may make one.
#[tokio::test]
async fn a_first_deploy_converges_in_one_run_and_day_two_is_planned_where_aws_is_slower_than_moto()
{
    let proxy = Proxy::start();
    let mut env = Env::new("real");
    env.endpoint = proxy.url.clone();
    // A maintenance window three days from now, so that no deploy below
    // runs inside it.
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][((days + 3 + 3) % 7) as usize];
    let window = format!("{day}:01:00-{day}:02:00");
    env.database_extra = format!("maintenance_window = \"{window}\"\n");
    env.write();

    let run = env.deploy();
    let result: Vec<Value> = run.json("event");
    let failed: Vec<&Value> = result
        .iter()
        .filter(|e| e["event"] == "step_failed" || e["event"] == "step_skipped")
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    env.plan().assert_code(0);

    let played = proxy.played().await;
    for expected in [
        "engine_versions_listed",
        "parameters_not_visible_yet",
        "instance_creating",
        "nat_pending",
        "ecs_role_not_assumable",
        // CreateService's own deployment, which the deploy followed to its
        // end (plan follows none).
        "deployment_started",
        "deployment_succeeded",
    ] {
        assert!(
            played.iter().any(|p| p == expected),
            "the proxy never played {expected}: {played:?}"
        );
    }
    assert!(
        run.stdout().contains("ECS has rolled the release out"),
        "{}",
        run.stdout()
    );
    for refusal in [
        "parameter_refused",
        "engine_version_refused",
        "nat_refused_without_igw",
        "load_balancer_refused_without_igw",
    ] {
        assert!(
            !played.iter().any(|p| p == refusal),
            "AWS would have refused: {refusal} in {played:?}"
        );
    }

    // The major version was pinned to the minor RDS lists as the default.
    let aws = aws().await;
    let db = aws
        .rds
        .describe_db_instances()
        .db_instance_identifier(format!("poolside-{}", env.name))
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .clone();
    assert_eq!(db.engine_version(), Some("16.8"));

    // The schema step finished before the API service was created: its
    // tasks log in as the role the migrations create.
    let lines: Vec<Value> = run
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let schema = lines
        .iter()
        .position(|l| l["type"] == "data_tier")
        .expect("a data_tier line");
    let service = lines
        .iter()
        .position(|l| l["event"] == "step_started" && l["id"] == "service/api")
        .expect("the service was created");
    assert!(
        schema < service,
        "the service started before the schema step"
    );

    // Day two: RDS applied a minor upgrade by itself and plans a CA
    // rotation. A newer minor is not a change (plan proposes no downgrade);
    // status shows what runs and what RDS will do, with its date.
    proxy
        .post(
            "maintenance",
            serde_json::json!({
                "running_minor": "16.9",
                // RDS fills CurrentApplyDate from the auto-apply date (the
                // next window after it) when there is no opt-in.
                "actions": [{
                    "action": "ca-certificate-rotation",
                    "description": "Certificate rotation",
                    "auto_applied_after": "2027-01-01T00:00:00Z",
                    "current_apply": "2027-01-03T05:00:00Z",
                }],
            }),
        )
        .await;
    env.plan().assert_code(0);
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    status.assert_code(0);
    let status = status.one("status");
    assert_eq!(status["in_sync"], true, "{status}");
    let engine = &status["database_engine"];
    assert_eq!(engine["version"], "16.9", "{engine}");
    assert!(engine["maintenance_unchecked"].is_null(), "{engine}");
    assert_eq!(
        engine["pending_maintenance"],
        serde_json::json!([{
            "action": "ca-certificate-rotation",
            "description": "Certificate rotation",
            "current_apply_date": "2027-01-03T05:00:00Z",
            "forced_apply_date": null,
            "auto_applied_after_date": "2027-01-01T00:00:00Z",
        }]),
        "{engine}"
    );
    let human = env.poolside(&["status", "--env", &env.name]);
    assert!(
        human.stdout().contains(
            "ca-certificate-rotation (Certificate rotation), applies 2027-01-03T05:00:00Z"
        ),
        "{}",
        human.stdout()
    );

    // A static parameter changed by hand: RDS holds it `pending-reboot`.
    // Deploy restores the group but does not reboot (downtime) outside the
    // window; plan, the deploy and status say so. --reboot-now reboots.
    let group = format!("poolside-{}-postgres16", env.name);
    proxy
        .aws()
        .await
        .rds
        .modify_db_parameter_group()
        .db_parameter_group_name(&group)
        .parameters(
            aws_sdk_rds::types::Parameter::builder()
                .parameter_name("shared_preload_libraries")
                .parameter_value("pg_cron")
                .apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let planned = env.plan();
    planned.assert_code(2);
    let warnings = planned.one("plan")["warnings"].to_string();
    assert!(
        warnings.contains("its parameters wait for a reboot (pending-reboot)")
            && warnings.contains(&window),
        "{warnings}"
    );
    let deployed = env.deploy();
    let report = deployed.one("data_tier");
    assert_eq!(
        report["reboot_deferred_to_window"],
        window.as_str(),
        "{report}"
    );
    assert_eq!(report["rebooted_for_parameters"], false, "{report}");
    assert!(!proxy
        .played()
        .await
        .iter()
        .any(|p| p == "instance_rebooted"));
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    assert_eq!(
        status.one("status")["database_engine"]["parameters_pending_reboot"],
        true
    );
    // drift says the same, as a finding deploy makes only with --reboot-now.
    let drifted = env.poolside(&["drift", "--env", &env.name, "--output", "json"]);
    drifted.assert_code(2);
    let findings = drifted.json("finding");
    let waiting = findings
        .iter()
        .find(|f| f["resource"] == "db-instance/main" && f["attribute"] == "parameters")
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert_eq!(waiting["actual"], "pending-reboot", "{waiting}");
    assert!(
        waiting["remedy"].as_str().unwrap().contains("--reboot-now"),
        "{waiting}"
    );
    let rebooted = env.poolside(&[
        "deploy",
        "--env",
        &env.name,
        "--yes",
        "--reboot-now",
        "--output",
        "json",
    ]);
    rebooted.assert_code(0);
    assert_eq!(rebooted.one("data_tier")["rebooted_for_parameters"], true);
    assert_eq!(proxy.count("instance_rebooted").await, 1);
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    assert_eq!(
        status.one("status")["database_engine"]["parameters_pending_reboot"],
        false
    );
    env.plan().assert_code(0);
    env.poolside(&["drift", "--env", &env.name]).assert_code(0);
}

/// On AWS the schema step runs as a one-off Fargate task (the default
/// runner there). Through the layer, which runs the task's command here as
/// ECS would, a deploy from empty meets what ECS answers: no capacity to
/// place the task, then an image the task cannot pull, each named in the
/// error with nothing of the service started; the next run converges, with
/// what the task did read back from its log stream.
#[tokio::test]
async fn the_schema_task_runs_through_its_lifecycle_and_what_ecs_refuses_is_named() {
    let proxy = Proxy::start();
    let mut env = Env::new("task");
    env.endpoint = proxy.url.clone();
    env.target_extra = "emulator_runs_tasks = true\n".into();
    env.database_extra = "schema_runner = \"ecs-task\"\n".into();
    env.write();
    let database = format!("127.0.0.1:{}", env.postgres.port);
    proxy
        .tasks(serde_json::json!({ "database": database, "refuse_placement": 1, "fail_pull": 1 }))
        .await;
    // As on AWS: the task pulls psql from the environment's repository.
    env.poolside(&["image", "push", "--env", &env.name])
        .assert_code(0);

    let unplaced = env.poolside(&["deploy", "--env", &env.name, "--yes"]);
    unplaced.assert_code(1);
    assert!(
        unplaced
            .stderr()
            .contains("ECS did not start the schema task (Capacity is unavailable at this time."),
        "{}",
        unplaced.stderr()
    );
    let unpulled = env.poolside(&["deploy", "--env", &env.name, "--yes"]);
    unpulled.assert_code(1);
    assert!(
        unpulled
            .stderr()
            .contains("the task stopped before its container ran: CannotPullContainerError"),
        "{}",
        unpulled.stderr()
    );

    let run = env.deploy();
    let report = run.one("data_tier");
    let applied = report["migrations_applied"].as_array().unwrap().len();
    assert!(applied > 0, "{report}");
    assert_eq!(applied as u64, report["migrations_total"].as_u64().unwrap());
    assert_eq!(report["authenticator_password_set"], true, "{report}");
    let played = proxy.played().await;
    for expected in [
        "task_placement_refused",
        "task_not_listed_yet",
        "task_pending",
        "task_container_started",
        "task_running",
        "task_stopped",
        "task_logs_written",
    ] {
        assert!(
            played.iter().any(|p| p == expected),
            "the proxy never played {expected}: {played:?}"
        );
    }
    // The task really ran here, in the stand-in database.
    let mut master = env.postgres.master().await;
    let ledger: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut master)
        .await
        .unwrap();
    assert_eq!(ledger as usize, applied);
    // The tasks run too: verification waits for the service to settle and
    // checks its targets, as on AWS.
    let targets = check(&run, "targets");
    assert_eq!(targets["outcome"], "passed", "{targets}");
    assert!(
        targets["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 of 1 targets healthy in"),
        "{targets}"
    );

    // Nothing left to do, and the next task applies nothing; targets that
    // fail their health checks fail verification, naming ELB's reason.
    env.plan().assert_code(0);
    proxy
        .targets(serde_json::json!({ "unhealthy": true }))
        .await;
    let again = env.poolside(&["deploy", "--env", &env.name, "--yes", "--output", "json"]);
    again.assert_code(1);
    let report = again.one("data_tier");
    assert_eq!(
        report["migrations_applied"].as_array().unwrap().len(),
        0,
        "{report}"
    );
    let targets = check(&again, "targets");
    assert_eq!(targets["outcome"], "failed", "{targets}");
    assert!(
        targets["detail"]
            .as_str()
            .unwrap()
            .contains("unhealthy (Health checks failed with these codes: [503])"),
        "{targets}"
    );

    // A release whose tasks cannot pull their image: ECS's circuit breaker
    // rolls the deployment back, deploy exits 1 saying so with the previous
    // release serving, and the next run (the image there) rolls it out.
    proxy
        .targets(serde_json::json!({ "unhealthy": false }))
        .await;
    proxy
        .tasks(serde_json::json!({ "fail_service_pull": 1 }))
        .await;
    let before = check_service_revision(&proxy, &env).await;
    env.api_extra = "image_tag = \"v12.0.3\"\n".into();
    env.write();
    let broken = env.poolside(&["deploy", "--env", &env.name, "--yes", "--output", "json"]);
    broken.assert_code(1);
    let stderr = broken.stderr();
    assert!(
        stderr.contains("rolled the new release") && stderr.contains("circuit breaker"),
        "{stderr}"
    );
    assert_eq!(check_service_revision(&proxy, &env).await, before);
    assert!(proxy
        .played()
        .await
        .iter()
        .any(|p| p == "deployment_circuit_breaker"));
    let fixed = env.deploy();
    assert_eq!(check(&fixed, "targets")["outcome"], "passed");
    assert_ne!(check_service_revision(&proxy, &env).await, before);
}

/// The task definition the environment's service runs, as ECS says.
async fn check_service_revision(proxy: &Proxy, env: &Env) -> String {
    let out = proxy
        .aws()
        .await
        .ecs
        .describe_services()
        .cluster(format!("poolside-{}", env.name))
        .services(format!("poolside-{}-api", env.name))
        .send()
        .await
        .unwrap();
    out.services()[0].task_definition().unwrap().to_string()
}

/// The defaults on AWS, in the order an onboarding takes them: a pilot whose
/// schema step runs as a task, promoted to limited (a canary rollout) and
/// then to full (linear). Each promotion runs the schema task again, follows
/// the deployments its service update starts (the move to a traffic-shifting
/// strategy changes the load balancer's configuration, the phase's larger
/// tasks the task definition) through ECS's stages while the production
/// traffic moves to the other target group, and verifies the targets where
/// the traffic now goes; the plan after each is empty.
#[tokio::test]
async fn a_pilot_grows_to_limited_and_full_with_the_aws_defaults() {
    let proxy = Proxy::start();
    let mut env = Env::new("grow");
    env.endpoint = proxy.url.clone();
    env.target_extra = "emulator_runs_tasks = true\n".into();
    env.database_extra = "schema_runner = \"ecs-task\"\n".into();
    env.alarms_extra = "action_arn = \"arn:aws:sns:us-east-1:123456789012:oncall\"\n".into();
    env.write();
    let database = format!("127.0.0.1:{}", env.postgres.port);
    proxy
        .tasks(serde_json::json!({ "database": database }))
        .await;
    env.poolside(&["image", "push", "--env", &env.name])
        .assert_code(0);
    env.deploy();

    let mut served_before = None;
    for (phase, strategy) in [("limited", "CANARY"), ("full", "LINEAR")] {
        // The bake gate counts from the release's first deploy.
        std::thread::sleep(std::time::Duration::from_secs(2));
        let run = env.poolside(&[
            "promote", "--env", &env.name, "--to", phase, "--bake", "1s", "--yes", "--output",
            "json",
        ]);
        run.assert_code(0);
        assert_eq!(run.json("data_tier").len(), 1, "{}", run.stdout());
        let targets = check(&run, "targets");
        assert_eq!(targets["outcome"], "passed", "{phase}: {targets}");
        // The release rolled out by the phase's strategy (moto does not echo
        // it; the proxy saw what UpdateService asked for).
        let events: Vec<Value> = reqwest::get(format!("{}/__proxy/events", proxy.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let last = events
            .iter()
            .rfind(|e| e["kind"] == "deployment_started")
            .unwrap_or_else(|| panic!("{phase}: no deployment started: {events:?}"));
        assert_eq!(last["strategy"], strategy, "{phase}: {last}");
        // ECS moved the production traffic to the group that did not serve,
        // and verification checked the tasks there.
        let moved = events
            .iter()
            .rfind(|e| e["kind"] == "traffic_shifted")
            .unwrap_or_else(|| panic!("{phase}: no traffic shifted: {events:?}"));
        assert_eq!(moved["stage"], "POST_PRODUCTION_TRAFFIC_SHIFT", "{moved}");
        // The shares the new release's group got while ECS shifted: the
        // canary's 10 %, or the linear rollout's steps of 20 % (the phases'
        // defaults), one step at a time.
        let new_group = moved["weights"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, weight)| **weight == 100)
            .map(|(arn, _)| arn.clone())
            .unwrap();
        let since = events.iter().rposition(|e| e == last).unwrap();
        let shares: Vec<u64> = events[since..]
            .iter()
            .filter(|e| e["kind"] == "traffic_shifted" && e["stage"] == "PRODUCTION_TRAFFIC_SHIFT")
            .map(|e| e["weights"][&new_group].as_u64().unwrap())
            .collect();
        let steps: &[u64] = if strategy == "CANARY" {
            &[10]
        } else {
            &[20, 40, 60, 80, 100]
        };
        assert_eq!(shares, steps, "{phase}: {events:?}");
        let serving = new_group
            .split(":targetgroup/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        assert!(
            targets["detail"]
                .as_str()
                .unwrap()
                .ends_with(&format!("healthy in {serving}")),
            "{phase}: {targets} after {moved}"
        );
        assert_ne!(
            Some(serving.clone()),
            served_before,
            "{phase}: the traffic did not move"
        );
        served_before = Some(serving);
    }
    let events: Vec<Value> = reqwest::get(format!("{}/__proxy/events", proxy.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let started: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "deployment_started")
        .collect();
    let changed = |what: &str| {
        started
            .iter()
            .any(|e| e["changed"].as_array().unwrap().iter().any(|c| c == what))
    };
    assert!(changed("loadBalancers"), "{started:?}");
    assert!(changed("taskDefinition"), "{started:?}");
    let succeeded = events
        .iter()
        .filter(|e| e["kind"] == "deployment_succeeded")
        .count();
    assert_eq!(
        succeeded,
        started.len(),
        "every deployment was followed to its end: {events:?}"
    );
    env.plan().assert_code(0);
}

/// One check of a deploy's verification.
fn check(run: &Run, name: &str) -> Value {
    run.one("verification")["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {}", run.stdout()))
        .clone()
}

/// Measured before: a changed subnet CIDR planned one replace; on AWS the
/// old subnet's delete fails while the NAT gateway and the load balancer are
/// in it (moto deletes it anyway). Now what names the subnet is replaced with
/// it, the load balancer moves to the new subnet, and the old one goes last.
#[tokio::test]
async fn a_subnet_whose_cidr_changed_is_replaced_with_what_is_in_it() {
    let proxy = Proxy::start();
    let mut env = Env::new("cidr");
    env.endpoint = proxy.url.clone();
    let cidrs = |first: &str| {
        format!(
            "public_subnet_cidrs = [\"{first}\", \"10.20.1.0/24\"]\nprivate_subnet_cidrs = [\"10.20.10.0/24\", \"10.20.11.0/24\"]\n"
        )
    };
    env.extra = cidrs("10.20.0.0/24");
    env.write();
    env.deploy();
    let aws = aws().await;
    let subnet_of = |id: &str| {
        let aws = &aws;
        let env = &env.name;
        let id = id.to_string();
        async move {
            let out = aws
                .ec2
                .describe_subnets()
                .filters(env_filter(env))
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("tag:poolside:id")
                        .values(id)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            out.subnets()
                .iter()
                .map(|s| {
                    (
                        s.subnet_id().unwrap().to_string(),
                        s.cidr_block().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let [(old_subnet, _)] = &subnet_of("subnet/public-us-east-1a").await[..] else {
        panic!("one public subnet in us-east-1a");
    };

    env.extra = cidrs("10.20.2.0/24");
    env.write();
    let plan = env.plan();
    plan.assert_code(2);
    let planned = plan.one("plan");
    let change = |id: &str| {
        planned["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} is not in the plan: {planned}"))
    };
    assert_eq!(change("subnet/public-us-east-1a")["action"], "replace");
    assert_eq!(
        change("subnet/public-us-east-1a")["create_before_destroy"],
        true
    );
    assert_eq!(
        change("nat/us-east-1a")["replaced_because"],
        "subnet/public-us-east-1a"
    );
    assert_eq!(change("load-balancer/api")["action"], "update");

    let run = env.deploy();
    let events = run.json("event");
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "step_failed" || e["event"] == "step_skipped")
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let played = proxy.played().await;
    assert!(
        !played.iter().any(|p| p == "subnet_in_use"),
        "AWS would have refused a delete: {played:?}"
    );
    // The old subnet's delete came after every other step.
    let last = events
        .iter()
        .rfind(|e| e["event"] == "step_succeeded")
        .unwrap();
    assert_eq!(
        last["id"],
        format!("subnet/public-us-east-1a#{old_subnet}"),
        "{last}"
    );

    let [(new_subnet, cidr)] = &subnet_of("subnet/public-us-east-1a").await[..] else {
        panic!("exactly one public subnet in us-east-1a");
    };
    assert_eq!(cidr, "10.20.2.0/24");
    let nats = aws
        .ec2
        .describe_nat_gateways()
        .filter(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(run.one("outputs")["vpc_id"].as_str().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let live_nats: Vec<_> = nats
        .nat_gateways()
        .iter()
        .filter(|n| n.state() != Some(&aws_sdk_ec2::types::NatGatewayState::Deleted))
        .collect();
    assert_eq!(live_nats.len(), 1, "{live_nats:?}");
    assert_eq!(live_nats[0].subnet_id(), Some(new_subnet.as_str()));
    let balancer = aws
        .elb
        .describe_load_balancers()
        .names(format!("poolside-{}", env.name))
        .send()
        .await
        .unwrap();
    let zones: Vec<&str> = balancer.load_balancers()[0]
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id())
        .collect();
    assert!(zones.contains(&new_subnet.as_str()), "{zones:?}");
    assert!(!zones.contains(&old_subnet.as_str()), "{zones:?}");
    // The private subnets route through the new NAT gateway.
    let routes = aws
        .ec2
        .describe_route_tables()
        .filters(env_filter(&env.name))
        .send()
        .await
        .unwrap();
    let nat_id = live_nats[0].nat_gateway_id().unwrap();
    let through_nat = routes
        .route_tables()
        .iter()
        .filter(|t| {
            t.routes()
                .iter()
                .any(|r| r.nat_gateway_id() == Some(nat_id))
        })
        .count();
    assert_eq!(
        through_nat, 2,
        "both private route tables use the new NAT gateway"
    );
    env.plan().assert_code(0);
}

/// A CA and a server certificate for `name`, as files the `postgres` user
/// can read (the server runs as postgres); returns (ca, cert, key).
fn certificates(dir: &Path, name: &str) -> (String, String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test RDS CA",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        &path("server.key"),
        "-out",
        &path("server.csr"),
    ]);
    std::fs::write(
        path("san.ext"),
        format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("server.csr"),
        "-CA",
        &path("ca.pem"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &path("san.ext"),
        "-out",
        &path("server.pem"),
    ]);
    for args in [
        vec!["755", dir.to_str().unwrap()],
        vec!["600", &path("server.key")],
    ] {
        assert!(Command::new("chmod")
            .args(&args)
            .status()
            .unwrap()
            .success());
    }
    assert!(Command::new("chown")
        .args(["postgres", &path("server.key"), &path("server.pem")])
        .status()
        .unwrap()
        .success());
    (path("ca.pem"), path("server.pem"), path("server.key"))
}

async fn serve_tls(env: &Env, cert: &str, key: &str) {
    let mut master = env.postgres.master().await;
    for setting in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{cert}'"),
        format!("ALTER SYSTEM SET ssl_key_file = '{key}'"),
        "ALTER SYSTEM SET ssl = on".to_string(),
    ] {
        sqlx::query(&setting).execute(&mut master).await.unwrap();
    }
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut master)
        .await
        .unwrap();
}

/// Through a tunnel that ends on 127.0.0.1, `verify-full` still checks the
/// certificate against the instance's own name, and refuses another name.
#[tokio::test]
async fn tls_through_a_tunnel_verifies_the_instance_name() {
    let mut env = Env::new("tls");
    env.write();
    let outputs = env.deploy().one("outputs");
    let endpoint = outputs["database_endpoint"].as_str().unwrap();
    let (address, _) = endpoint.rsplit_once(':').unwrap();
    let certs = std::env::temp_dir().join(format!("poolside-certs-{}", env.name));

    let (ca, cert, key) = certificates(&certs.join("right"), address);
    serve_tls(&env, &cert, &key).await;
    env.database_tls = "verify-full";
    env.database_extra = format!("ca_bundle = {ca:?}\n");
    env.write();
    let run = env.deploy();
    let report = run.one("data_tier");
    assert!(
        report["endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{address}:5432 through the tunnel at 127.0.0.1:")),
        "{report}"
    );

    // A server whose certificate names something else is refused, although
    // the same CA signed it: that is what verify-ca would have accepted.
    let (_, wrong_cert, wrong_key) = certificates(&certs.join("wrong"), "db.example.org");
    // Same CA for both: sign the wrong one with the right CA.
    let sign = Command::new("openssl")
        .args([
            "x509",
            "-req",
            "-in",
            &certs.join("wrong/server.csr").to_string_lossy(),
            "-CA",
            &ca,
            "-CAkey",
            &certs.join("right/ca.key").to_string_lossy(),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &certs.join("wrong/san.ext").to_string_lossy(),
            "-out",
            &wrong_cert,
        ])
        .output()
        .unwrap();
    assert!(sign.status.success());
    serve_tls(&env, &wrong_cert, &wrong_key).await;
    let refused = env.poolside(&["deploy", "--env", &env.name, "--yes"]);
    refused.assert_code(1);
    let stderr = refused.stderr();
    assert!(
        stderr.contains(&format!("certificate not valid for name \"{address}\"")),
        "{stderr}"
    );
    assert!(
        stderr.contains("The server's certificate must name the instance"),
        "{stderr}"
    );

    // Without database.ca_bundle, the RDS certificate authorities poolside
    // ships are the only ones trusted: the test CA's certificate is refused.
    serve_tls(&env, &cert, &key).await;
    env.database_extra = String::new();
    env.write();
    let untrusted = env.poolside(&["deploy", "--env", &env.name, "--yes"]);
    untrusted.assert_code(1);
    assert!(
        untrusted
            .stderr()
            .contains("not signed by an RDS certificate authority poolside knows"),
        "{}",
        untrusted.stderr()
    );
    let _ = std::fs::remove_dir_all(certs);
}

/// A server that accepts the connection and never answers (a security group
/// that drops packets looks the same from outside) fails in bounded time,
/// with what to do.
#[tokio::test]
async fn a_database_that_never_answers_fails_in_bounded_time_saying_what_to_do() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let env = Env::new("silent");
    env.write();
    let text = std::fs::read_to_string(env.file()).unwrap().replace(
        &format!("connect_port = {}", env.postgres.port),
        &format!("connect_port = {port}"),
    );
    std::fs::write(env.file(), text).unwrap();
    let run = env.poolside(&["deploy", "--env", &env.name, "--yes"]);
    run.assert_code(1);
    let stderr = run.stderr();
    assert!(stderr.contains("no answer within 10s"), "{stderr}");
    assert!(stderr.contains("is the tunnel open"), "{stderr}");
    assert!(stderr.contains("held back until it succeeds"), "{stderr}");
    drop(silent);
}

/// Ctrl-C during a long wait (the proxy keeps the new instance `creating`
/// for the SDK waiter's first 30 s): no new step starts, the wait is
/// abandoned, the run ends with 130 and a summary, and a second deploy
/// finishes the job.
#[tokio::test]
async fn ctrl_c_stops_new_steps_abandons_the_wait_and_a_rerun_finishes() {
    use std::io::BufRead;
    let proxy = Proxy::start();
    let mut env = Env::new("sigint");
    env.endpoint = proxy.url.clone();
    env.write();
    let mut child = spawn(
        &env,
        &["deploy", "--env", &env.name, "--yes", "--output", "json"],
        &[],
    );
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("deploy ended before the instance was created: {seen:?}");
        }
        let waiting_on_instance =
            line.contains("\"step_started\"") && line.contains("\"db-instance/main\"");
        seen.push(line);
        if waiting_on_instance {
            break;
        }
    }
    // The waiter has made its first look (`creating`) and sleeps.
    std::thread::sleep(std::time::Duration::from_secs(2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Interrupted: "), "{stderr}");
    assert!(stderr.contains("Run deploy again to finish"), "{stderr}");
    let last = rest.lines().last().unwrap_or_default();
    assert!(last.contains("\"status\":\"interrupted\""), "{last}");
    let service_started = rest
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|l| l["event"] == "step_started" && l["id"] == "service/api");
    assert!(!service_started, "the service must not start after Ctrl-C");
    // The instance was made before its wait was abandoned: reported so, not
    // as a failure.
    let events: Vec<Value> = rest
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    assert!(
        events
            .iter()
            .any(|l| l["event"] == "step_left_to_aws" && l["id"] == "db-instance/main"),
        "{rest}"
    );
    assert!(
        !events
            .iter()
            .any(|l| l["event"] == "step_failed" && l["id"] == "db-instance/main"),
        "{rest}"
    );
    assert!(stderr.contains("1 made and left to AWS"), "{stderr}");
    // The history records what the run did, beside the plan it meant.
    let history = env.poolside(&[
        "history", "--env", &env.name, "--output", "json", "--limit", "1",
    ]);
    let run = history.one("run");
    assert_eq!(run["result"], "interrupted", "{run}");
    let made = run["plan"]["summary"]["create"].as_u64().unwrap();
    let planned = run["plan"]["planned"]["create"].as_u64().unwrap();
    assert!(made > 0 && made < planned, "{run}");
    assert!(
        run["plan"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "+ db-instance/main"),
        "{run}"
    );

    env.deploy();
    env.plan().assert_code(0);
}

/// Ctrl-C while discovery reads (slowed to 2 s a read by the latency
/// proxy): the run stops there, says nothing was changed and lists no step
/// it never started (it used to read on, then skip 54 steps a line each).
#[test]
fn ctrl_c_during_discovery_stops_at_once_and_lists_no_step() {
    let slow = LatencyProxy::start(0, 2000);
    let mut env = Env::new("discint");
    env.endpoint = slow.url.clone();
    env.write();
    let child = spawn(&env, &["deploy", "--env", &env.name, "--yes"], &[]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let signalled = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    drop(slow);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("while discovering"), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert!(!stderr.contains("Skipped"), "{stderr}");
    eprintln!("stopped {took:?} after Ctrl-C");
}

/// A canary rollout, with the proxy playing ECS's service deployment: an
/// alarm that fires while production traffic shifts makes ECS roll back,
/// and deploy exits 1 naming it with the previous release serving; a deploy
/// cut off (SIGKILL) while ECS shifts is followed to its end by the next run.
#[tokio::test]
async fn an_alarm_during_a_canary_shift_rolls_back_and_a_cut_off_rollout_is_followed_to_its_end() {
    use std::io::BufRead;
    let proxy = Proxy::start();
    let mut env = Env::new("canary");
    env.endpoint = proxy.url.clone();
    env.api_extra = "rollout = \"canary\"\nrollout_percent = 10\nrollout_step_minutes = 0\nrollout_bake_minutes = 0\n".into();
    env.write();
    let first = env.deploy();
    let first_revision = first.one("outputs")["task_definition_arn"]
        .as_str()
        .unwrap()
        .to_string();
    let name = env.name.clone();
    let service_runs = || {
        let (cluster, service) = (format!("poolside-{name}"), format!("poolside-{name}-api"));
        async move {
            let aws = aws().await;
            let out = aws
                .ecs
                .describe_services()
                .cluster(cluster)
                .services(service)
                .send()
                .await
                .unwrap();
            out.services()[0].task_definition().unwrap().to_string()
        }
    };

    // The 5xx alarm fires once production traffic starts to move.
    let alarm = format!("poolside-{name}-api-target-5xx");
    reqwest::Client::new()
        .post(format!("{}/__proxy/raise-during-shift", proxy.url))
        .body(serde_json::json!({ "alarm": alarm }).to_string())
        .send()
        .await
        .unwrap();
    env.api_extra.push_str("image_tag = \"v12.0.3\"\n");
    env.write();
    let rolled_back = env.poolside(&["deploy", "--env", &name, "--yes", "--output", "json"]);
    rolled_back.assert_code(1);
    let stderr = rolled_back.stderr();
    assert!(stderr.contains("rolled the new release"), "{stderr}");
    assert!(stderr.contains(&alarm), "{stderr}");
    assert_eq!(service_runs().await, first_revision);
    let played = proxy.played().await;
    for expected in [
        "deployment_started",
        "alarm_raised_during_shift",
        "deployment_rolled_back",
    ] {
        assert!(played.iter().any(|p| p == expected), "{played:?}");
    }
    let events: Vec<Value> = reqwest::get(format!("{}/__proxy/events", proxy.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let started = events
        .iter()
        .find(|e| {
            e["kind"] == "deployment_started" && e["changed"] != serde_json::json!(["created"])
        })
        .unwrap();
    assert_eq!(started["strategy"], "CANARY");
    assert!(started["alarms"]
        .as_array()
        .unwrap()
        .contains(&Value::from(alarm.clone())));
    let history = env.poolside(&[
        "history", "--env", &name, "--output", "json", "--limit", "1",
    ]);
    let last = history.one("run");
    assert_eq!(last["result"], "error");
    assert!(last["error"].as_str().unwrap().contains(&alarm), "{last}");

    // The alarm clears; the next deploy starts the rollout again and is
    // killed while ECS shifts traffic. ECS goes on; the run after follows it.
    let aws = aws().await;
    aws.cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("cleared by the test")
        .send()
        .await
        .unwrap();
    let mut child = spawn(
        &env,
        &["deploy", "--env", &name, "--yes", "--output", "json"],
        &[("POOLSIDE_LOCK_LEASE", "2s")],
    );
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("deploy ended before ECS started shifting");
        }
        if line.contains("\"step_waiting\"") && line.contains("ECS has rolled the release out") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let second_revision = service_runs().await;
    assert_ne!(
        second_revision, first_revision,
        "ECS went on with the rollout"
    );
    assert_eq!(
        proxy.count("deployment_succeeded").await,
        1,
        "only the first deploy's rollout ended; this one was cut off"
    );
    // The killed run still holds the lock until its (shortened) lease ends.
    let resumed = env.poolside(&[
        "deploy",
        "--env",
        &name,
        "--yes",
        "--output",
        "json",
        "--lock-timeout",
        "30s",
    ]);
    resumed.assert_code(0);
    assert!(
        resumed.one("plan")["changes"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{}",
        resumed.stdout()
    );
    assert!(
        resumed.stdout().contains("ECS has rolled the release out"),
        "the rerun follows the rollout: {}",
        resumed.stdout()
    );
    assert_eq!(proxy.count("deployment_succeeded").await, 2);
    assert_eq!(service_runs().await, second_revision);
}

/// A release promotion whose traffic shift trips an alarm of the target:
/// ECS (played by the proxy) rolls it back; promote exits 1 naming the
/// alarm, the target runs its previous release, its file names that release
/// again, and its history records the failed promotion with the alarm.
/// Once the alarm clears, the next promotion's canary completes: all the
/// traffic moves to the release, which the target then runs.
#[tokio::test]
async fn a_promotion_rolled_back_by_an_alarm_leaves_the_target_on_its_previous_release_and_the_next_one_completes(
) {
    let proxy = Proxy::start();
    // One registry for both (a release moves within one): both go through
    // the proxy.
    let mut staging = Env::new("rbs");
    staging.endpoint = proxy.url.clone();
    staging.write();
    let mut prod = Env::new("rbp");
    prod.endpoint = proxy.url.clone();
    prod.api_extra = "image_tag = \"v12.0.1\"\nrollout = \"canary\"\nrollout_percent = 10\nrollout_step_minutes = 0\nrollout_bake_minutes = 0\n".into();
    prod.write();
    let staged = staging.deploy();
    prod.deploy();
    let aws = aws().await;
    crate::promote::push_stand_in_image(&aws, &staged, 'b').await;
    std::fs::copy(
        staging.file(),
        prod.dir().join(format!("{}.toml", staging.name)),
    )
    .unwrap();
    let before = crate::promote::running_image(&aws, &prod).await;
    assert!(before.ends_with(":v12.0.1-rds-ca"), "{before}");

    let alarm = format!("poolside-{}-api-latency-p99", prod.name);
    reqwest::Client::new()
        .post(format!("{}/__proxy/raise-during-shift", proxy.url))
        .body(serde_json::json!({ "alarm": alarm }).to_string())
        .send()
        .await
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let promoted = prod.poolside(&[
        "promote",
        "--from",
        &staging.name,
        "--to",
        &prod.name,
        "--bake",
        "1s",
        "--yes",
    ]);
    promoted.assert_code(1);
    let stderr = promoted.stderr();
    assert!(stderr.contains(&alarm), "{stderr}");
    assert!(
        stderr.contains("still runs its previous release"),
        "{stderr}"
    );
    assert_eq!(crate::promote::running_image(&aws, &prod).await, before);
    let text = std::fs::read_to_string(prod.file()).unwrap();
    assert!(text.contains("image_tag = \"v12.0.1\""), "{text}");
    let history = prod.poolside(&[
        "history", "--env", &prod.name, "--output", "json", "--limit", "1",
    ]);
    let last = history.one("run");
    assert_eq!(
        (last["command"].as_str(), last["result"].as_str()),
        (Some("promote"), Some("error"))
    );
    assert!(last["error"].as_str().unwrap().contains(&alarm), "{last}");
    let events: Vec<Value> = reqwest::get(format!("{}/__proxy/events", proxy.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(events.iter().any(|e| e["kind"] == "deployment_started"
        && e["strategy"] == "CANARY"
        && e["changed"] == serde_json::json!(["taskDefinition"])));
    assert!(events.iter().any(|e| e["kind"] == "deployment_rolled_back"));
    // The file and the service agree again: nothing to deploy.
    prod.plan().assert_code(0);

    // The alarm clears; the next promotion's canary shifts all the traffic
    // to the release, and it stays.
    aws.cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("the latency is back to normal")
        .send()
        .await
        .unwrap();
    let completed = prod.poolside(&[
        "promote",
        "--from",
        &staging.name,
        "--to",
        &prod.name,
        "--bake",
        "1s",
        "--yes",
    ]);
    completed.assert_code(0);
    let after = crate::promote::running_image(&aws, &prod).await;
    assert!(after.ends_with(":v12.0.2-rds-ca"), "{after}");
    let text = std::fs::read_to_string(prod.file()).unwrap();
    assert!(!text.contains("image_tag = \"v12.0.1\""), "{text}");
    let last = prod
        .poolside(&[
            "history", "--env", &prod.name, "--output", "json", "--limit", "1",
        ])
        .one("run");
    assert_eq!(
        (last["command"].as_str(), last["result"].as_str()),
        (Some("promote"), Some("ok")),
        "{last}"
    );
    let events: Vec<Value> = reqwest::get(format!("{}/__proxy/events", proxy.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last_shift = events
        .iter()
        .rfind(|e| e["kind"] == "traffic_shifted")
        .unwrap();
    assert_eq!(
        last_shift["stage"], "POST_PRODUCTION_TRAFFIC_SHIFT",
        "{last_shift}"
    );
    assert_eq!(
        events
            .iter()
            .rfind(|e| e["kind"].as_str().unwrap().starts_with("deployment_")
                && e["kind"] != "deployment_stage")
            .unwrap()["kind"],
        "deployment_succeeded"
    );
    prod.plan().assert_code(0);
}

/// A second life on AWS: destroy, deploy the same environment again, and
/// destroy again, each in one run, through a proxy that plays how slowly AWS
/// releases what a delete frees: an RDS instance `deleting` and holding its
/// groups, subnets and security groups; a NAT gateway `deleting` and holding
/// its address; a load balancer's and the endpoints' interfaces lingering; a
/// service draining; a secret kept in its recovery window; an ACM
/// idempotency token that still names the deleted certificate.
#[tokio::test]
async fn destroy_deploy_again_and_destroy_again_each_finish_in_one_run() {
    let proxy = Proxy::start();
    let aws = aws().await;
    let mut env = Env::new("again");
    env.endpoint = proxy.url.clone();
    let zone = hosted_zone(&aws, &format!("{}.poolside.test", env.name)).await;
    env.api_extra = format!(
        "domain_name = \"api.{}.poolside.test\"\nhosted_zone_id = \"{zone}\"\n",
        env.name
    );
    env.write();
    let destroy = |env: &Env| {
        let run = env.poolside(&[
            "destroy",
            "--env",
            &env.name,
            "--yes",
            "--delete-data",
            "--output",
            "json",
        ]);
        run.assert_code(0);
        run
    };
    env.deploy();
    destroy(&env);
    let left = crate::destroy::remaining(&aws, &env.name).await;
    assert!(left.is_empty(), "left after the first destroy: {left:?}");

    // Deployed again at once: the secrets come back from their recovery
    // window, the certificate is asked for anew.
    env.deploy();
    env.plan().assert_code(0);
    destroy(&env);
    let left = crate::destroy::remaining(&aws, &env.name).await;
    assert!(left.is_empty(), "left after the second destroy: {left:?}");

    // The proxy did play each of those (or the test proves nothing).
    let played = proxy.played().await;
    for kind in [
        "instance_deleting",
        "db_group_still_used",
        "nat_deleting",
        "address_still_held",
        "interfaces_linger",
        "service_draining",
        "secret_scheduled_for_deletion",
        "certificate_token_reused",
    ] {
        assert!(
            played.iter().any(|p| p == kind),
            "the proxy never played {kind}: {played:?}"
        );
    }
}
