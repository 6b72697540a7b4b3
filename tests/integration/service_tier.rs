//! The service tier: ECS, the load balancer, roles, logs, alarms and the
//! dashboard checked through the SDK; plans for one changed setting.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn changes(plan: &Value) -> Vec<(String, String, Vec<String>)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["properties"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["property"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// IAM documents come back URL-encoded.
fn policy(text: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .unwrap();
    serde_json::from_str(&decoded).unwrap()
}

fn as_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => panic!("not a string or list: {other}"),
    }
}

#[tokio::test]
async fn deploy_from_empty_creates_the_service_tier_and_a_second_deploy_changes_nothing() {
    let env = Env::new("svc");
    env.write();
    let run = env.deploy();
    let outputs = run.one("outputs");
    let aws = aws().await;
    let name = &env.name;

    let verification = run.one("verification");
    let outcome = |check: &str| -> String {
        verification["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == check)
            .unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(outcome("api"), "passed", "{verification}");
    assert_eq!(outcome("schema"), "passed", "{verification}");
    assert_eq!(outcome("alarms"), "passed", "{verification}");
    assert_eq!(outcome("targets"), "skipped", "{verification}");
    let warnings = run.one("plan")["warnings"].to_string();
    assert!(warnings.contains("api.certificate_arn"), "{warnings}");

    let secret_arn = |key: &str| outputs[key].as_str().unwrap().to_string();
    let authenticator_arn = secret_arn("authenticator_secret_arn");
    let jwt_arn = secret_arn("jwt_secret_arn");
    let repository_uri = outputs["repository_uri"].as_str().unwrap();

    // The cluster, without Container Insights in the pilot phase.
    let clusters = aws
        .ecs
        .describe_clusters()
        .clusters(format!("poolside-{name}"))
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .send()
        .await
        .unwrap();
    assert_eq!(clusters.clusters()[0].status(), Some("ACTIVE"));

    // The task definition: image from our repository, PostgREST's settings,
    // secrets by ARN only, awslogs to our group, the phase's size.
    let task = aws
        .ecs
        .describe_task_definition()
        .task_definition(format!("poolside-{name}-api"))
        .send()
        .await
        .unwrap();
    let task = task.task_definition().unwrap();
    assert_eq!((task.cpu(), task.memory()), (Some("256"), Some("512")));
    assert_eq!(
        task.network_mode(),
        Some(&aws_sdk_ecs::types::NetworkMode::Awsvpc)
    );
    assert_eq!(
        task.requires_compatibilities(),
        [aws_sdk_ecs::types::Compatibility::Fargate]
    );
    let container = &task.container_definitions()[0];
    // The published tag with the RDS certificate authorities added, which
    // the tasks verify the database's certificate with.
    assert_eq!(
        container.image(),
        Some(format!("{repository_uri}:v12.0.2-rds-ca").as_str())
    );
    let ports: BTreeSet<i32> = container
        .port_mappings()
        .iter()
        .filter_map(|p| p.container_port())
        .collect();
    assert_eq!(ports, BTreeSet::from([3000, 3001]));
    let env_var = |key: &str| {
        container
            .environment()
            .iter()
            .find(|kv| kv.name() == Some(key))
            .and_then(|kv| kv.value())
            .map(str::to_string)
    };
    assert_eq!(env_var("PGSSLMODE").as_deref(), Some("verify-full"));
    assert_eq!(
        env_var("PGSSLROOTCERT").as_deref(),
        Some("/etc/poolside/rds-ca-bundle.pem")
    );
    assert_eq!(env_var("PGRST_DB_SCHEMAS").as_deref(), Some("api"));
    assert_eq!(env_var("PGRST_DB_ANON_ROLE").as_deref(), Some("web_anon"));
    assert_eq!(env_var("PGRST_ADMIN_SERVER_PORT").as_deref(), Some("3001"));
    assert_eq!(env_var("PGPASSWORD"), None);
    assert_eq!(env_var("PGRST_JWT_SECRET"), None);
    let secrets: BTreeSet<(String, String)> = container
        .secrets()
        .iter()
        .map(|s| (s.name().to_string(), s.value_from().to_string()))
        .collect();
    assert_eq!(
        secrets,
        BTreeSet::from([
            (
                "PGPASSWORD".to_string(),
                format!("{authenticator_arn}:password::")
            ),
            ("PGRST_JWT_SECRET".to_string(), jwt_arn.clone()),
        ])
    );
    let log = container.log_configuration().unwrap();
    assert_eq!(log.log_driver().as_str(), "awslogs");
    assert_eq!(
        log.options()
            .unwrap()
            .get("awslogs-group")
            .map(String::as_str),
        Some(format!("/poolside/{name}/api").as_str())
    );
    // No secret value anywhere in the registered task definition.
    let registered = format!("{task:?}");
    for arn in [&authenticator_arn, &jwt_arn] {
        let value = aws
            .secrets
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_string();
        let secret_part = match serde_json::from_str::<Value>(&value) {
            Ok(doc) => doc["password"].as_str().unwrap().to_string(),
            Err(_) => value,
        };
        assert!(
            !registered.contains(&secret_part),
            "a secret value is in the task definition"
        );
    }

    // The execution role names only our repository, log group and two secrets.
    let execution_role = format!("poolside-{name}-task-execution");
    let inline = aws
        .iam
        .list_role_policies()
        .role_name(&execution_role)
        .send()
        .await
        .unwrap();
    assert_eq!(inline.policy_names(), ["poolside-task-execution"]);
    let document = aws
        .iam
        .get_role_policy()
        .role_name(&execution_role)
        .policy_name("poolside-task-execution")
        .send()
        .await
        .unwrap();
    let document = policy(document.policy_document());
    let repository_arn = aws
        .ecr
        .describe_repositories()
        .repository_names(format!("poolside/{name}/postgrest"))
        .send()
        .await
        .unwrap()
        .repositories()[0]
        .repository_arn()
        .unwrap()
        .to_string();
    let log_streams =
        format!("arn:aws:logs:us-east-1:123456789012:log-group:/poolside/{name}/api:log-stream:*");
    let mut secret_resources = BTreeSet::new();
    for statement in document["Statement"].as_array().unwrap() {
        let actions = as_list(&statement["Action"]);
        let resources = as_list(&statement["Resource"]);
        for resource in &resources {
            if resource == "*" {
                // The only action AWS cannot scope to a resource.
                assert_eq!(actions, ["ecr:GetAuthorizationToken"], "{statement}");
            } else if resource.contains(":secretsmanager:") {
                assert_eq!(actions, ["secretsmanager:GetSecretValue"]);
                secret_resources.insert(resource.clone());
            } else {
                assert!(
                    *resource == repository_arn || *resource == log_streams,
                    "{resource} is not ours"
                );
            }
        }
    }
    assert_eq!(
        secret_resources,
        BTreeSet::from([authenticator_arn.clone(), jwt_arn.clone()])
    );
    let attached = aws
        .iam
        .list_attached_role_policies()
        .role_name(&execution_role)
        .send()
        .await
        .unwrap();
    assert!(attached.attached_policies().is_empty());
    let task_role = format!("poolside-{name}-task");
    let task_policies = aws
        .iam
        .list_role_policies()
        .role_name(&task_role)
        .send()
        .await
        .unwrap();
    assert!(
        task_policies.policy_names().is_empty(),
        "the task role needs nothing"
    );
    let trust = aws
        .iam
        .get_role()
        .role_name(&task_role)
        .send()
        .await
        .unwrap();
    let trust = policy(trust.role().unwrap().assume_role_policy_document().unwrap());
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        "ecs-tasks.amazonaws.com"
    );

    // The log group keeps the phase's retention.
    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/poolside/{name}/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));

    // The load balancer in the public subnets; the service in the private ones.
    let public: BTreeSet<String> = as_list(&outputs["public_subnet_ids"]).into_iter().collect();
    let private: BTreeSet<String> = as_list(&outputs["private_subnet_ids"])
        .into_iter()
        .collect();
    let sg = |group: &str| {
        outputs["security_group_ids"][group]
            .as_str()
            .unwrap()
            .to_string()
    };
    let lbs = aws
        .elb
        .describe_load_balancers()
        .names(format!("poolside-{name}"))
        .send()
        .await
        .unwrap();
    let lb = &lbs.load_balancers()[0];
    assert_eq!(lb.scheme().unwrap().as_str(), "internet-facing");
    let lb_subnets: BTreeSet<String> = lb
        .availability_zones()
        .iter()
        .map(|az| az.subnet_id().unwrap().to_string())
        .collect();
    assert_eq!(lb_subnets, public);
    assert_eq!(lb.security_groups(), [sg("load-balancer")]);
    let tgs = aws
        .elb
        .describe_target_groups()
        .names(format!("poolside-{name}"))
        .send()
        .await
        .unwrap();
    let tg = &tgs.target_groups()[0];
    assert_eq!(tg.target_type().unwrap().as_str(), "ip");
    assert_eq!(tg.port(), Some(3000));
    assert_eq!(tg.health_check_path(), Some("/ready"));
    assert_eq!(tg.health_check_port(), Some("3001"));
    let attributes = aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(tg.target_group_arn().unwrap())
        .send()
        .await
        .unwrap();
    let delay = attributes
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value());
    assert_eq!(
        delay,
        Some("30"),
        "a replaced task drains for 30 s, not AWS's 300"
    );
    let listeners = aws
        .elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    let [listener] = listeners.listeners() else {
        panic!("without a certificate, one HTTP listener")
    };
    assert_eq!(listener.port(), Some(80));
    assert_eq!(
        listener.default_actions()[0].target_group_arn(),
        tg.target_group_arn()
    );

    let services = aws
        .ecs
        .describe_services()
        .cluster(format!("poolside-{name}"))
        .services(format!("poolside-{name}-api"))
        .send()
        .await
        .unwrap();
    let service = &services.services()[0];
    assert_eq!(service.desired_count(), 1);
    assert_eq!(
        service.launch_type(),
        Some(&aws_sdk_ecs::types::LaunchType::Fargate)
    );
    let network = service
        .network_configuration()
        .unwrap()
        .awsvpc_configuration()
        .unwrap();
    let service_subnets: BTreeSet<String> = network.subnets().iter().cloned().collect();
    assert_eq!(service_subnets, private);
    assert_eq!(network.security_groups(), [sg("api")]);
    assert_eq!(
        network.assign_public_ip(),
        Some(&aws_sdk_ecs::types::AssignPublicIp::Disabled)
    );
    let registration = &service.load_balancers()[0];
    assert_eq!(registration.target_group_arn(), tg.target_group_arn());
    assert_eq!(registration.container_port(), Some(3000));

    // The alarms, with the pilot's thresholds and the right dimensions.
    let alarms = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("poolside-{name}-"))
        .send()
        .await
        .unwrap();
    let names: BTreeSet<String> = alarms
        .metric_alarms()
        .iter()
        .map(|a| {
            a.alarm_name()
                .unwrap()
                .trim_start_matches(&format!("poolside-{name}-"))
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "api-cpu",
            "api-latency-p95",
            "api-latency-p99",
            "api-memory",
            "api-target-5xx",
            "api-unhealthy-targets",
            "api-unhealthy-targets-alternate",
            "db-connections",
            "db-cpu",
            "db-free-storage",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    let p95 = alarms
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name().unwrap().ends_with("api-latency-p95"))
        .unwrap();
    assert_eq!(p95.extended_statistic(), Some("p95"));
    assert_eq!(p95.threshold(), Some(1.0));
    let lb_dimension = lb
        .load_balancer_arn()
        .unwrap()
        .split_once(":loadbalancer/")
        .unwrap()
        .1;
    assert_eq!(p95.dimensions()[0].value(), Some(lb_dimension));

    let dashboard = aws
        .cloudwatch
        .get_dashboard()
        .dashboard_name(format!("poolside-{name}"))
        .send()
        .await
        .unwrap();
    let body = dashboard.dashboard_body().unwrap();
    assert!(
        body.contains(lb_dimension),
        "the dashboard shows our load balancer"
    );

    // A second deploy finds nothing to do.
    let again = env.deploy();
    assert_eq!(
        again.one("plan")["changes"].as_array().unwrap().len(),
        0,
        "{}",
        again.stdout()
    );
    assert_eq!(again.mutating_calls(), 0);
    assert_eq!(again.one("local_api")["action"], "unchanged");
}

/// PostgREST serves from a schema cache. One that missed a change (here a
/// function dropped, reloaded, and made again by hand without a reload)
/// fails the deploy's verification, naming what is not served; a reload
/// mends it.
#[tokio::test]
async fn verification_fails_while_postgrest_serves_a_stale_schema_cache() {
    let env = Env::new("stale");
    env.write();
    env.deploy();
    let mut db = env.postgres.master().await;
    let (definition,): (String,) = sqlx::query_as(
        "SELECT pg_get_functiondef('api.schedule_training(text, real)'::regprocedure)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    for sql in [
        "DROP FUNCTION api.schedule_training(text, real)",
        "NOTIFY pgrst, 'reload schema'",
    ] {
        sqlx::query(sql).execute(&mut db).await.unwrap();
    }
    // The reload is asynchronous: let PostgREST forget the function.
    std::thread::sleep(std::time::Duration::from_secs(2));
    for sql in [
        definition.as_str(),
        "GRANT EXECUTE ON FUNCTION api.schedule_training(text, real) TO api_user",
    ] {
        sqlx::query(sql).execute(&mut db).await.unwrap();
    }

    let stale = env.poolside(&["deploy", "--env", &env.name, "--yes", "--output", "json"]);
    stale.assert_code(1);
    let schema = stale.one("verification")["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "schema")
        .unwrap()
        .clone();
    assert_eq!(schema["outcome"], "failed", "{schema}");
    let detail = schema["detail"].as_str().unwrap();
    assert!(detail.contains("/rpc/schedule_training"), "{detail}");
    assert!(detail.contains("schema cache"), "{detail}");
    assert!(!detail.contains("/messages"), "{detail}");

    sqlx::query("NOTIFY pgrst, 'reload schema'")
        .execute(&mut db)
        .await
        .unwrap();
    env.deploy();
}

#[tokio::test]
async fn a_changed_desired_count_or_alarm_threshold_plans_exactly_that_update() {
    let mut env = Env::new("one");
    env.write();
    env.deploy();

    env.api_extra = "desired_count = 2\n".into();
    env.write();
    let plan = env.plan();
    plan.assert_code(2);
    assert_eq!(
        changes(&plan.one("plan")),
        [(
            "service/api".to_string(),
            "update".to_string(),
            vec!["desired_count".to_string()]
        )]
    );

    env.api_extra = String::new();
    env.alarms_extra = "p95_latency_ms = 700\n".into();
    env.write();
    let plan = env.plan();
    plan.assert_code(2);
    let plan = plan.one("plan");
    assert_eq!(
        changes(&plan),
        [(
            "alarm/api-latency-p95".to_string(),
            "update".to_string(),
            vec!["threshold".to_string(), "description".to_string()]
        )]
        .into_iter()
        .map(|(id, action, mut props)| {
            props.sort();
            (id, action, props)
        })
        .collect::<Vec<_>>()
    );
    let threshold = plan["changes"][0]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["property"] == "threshold")
        .unwrap()
        .clone();
    assert_eq!(
        (threshold["before"].as_f64(), threshold["after"].as_f64()),
        (Some(1.0), Some(0.7))
    );

    // Applied, the environment is back to no changes.
    env.deploy();
    env.plan().assert_code(0);
}

#[tokio::test]
async fn a_new_image_tag_registers_a_revision_and_moves_the_service_to_it() {
    let mut env = Env::new("rev");
    env.write();
    let first = env.deploy();
    let first_arn = first.one("outputs")["task_definition_arn"]
        .as_str()
        .unwrap()
        .to_string();

    env.api_extra = "image_tag = \"v12.0.3\"\n".into();
    env.write();
    let plan = env.plan();
    plan.assert_code(2);
    let ids: Vec<(String, String, Vec<String>)> = changes(&plan.one("plan"));
    assert_eq!(
        ids.iter()
            .map(|(id, action, _)| (id.as_str(), action.as_str()))
            .collect::<Vec<_>>(),
        [("task-definition/api", "update"), ("service/api", "update")]
    );
    let run = env.deploy();
    let second_arn = run.one("outputs")["task_definition_arn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first_arn, second_arn);
    assert!(second_arn.ends_with(":2"), "{second_arn}");
    let aws = aws().await;
    let services = aws
        .ecs
        .describe_services()
        .cluster(format!("poolside-{}", env.name))
        .services(format!("poolside-{}-api", env.name))
        .send()
        .await
        .unwrap();
    assert_eq!(
        services.services()[0].task_definition(),
        Some(second_arn.as_str())
    );
    // The local PostgREST follows the service to the new revision.
    let local = run.one("local_api");
    assert_eq!(local["action"], "restarted");
    assert_eq!(local["task_definition"], second_arn.as_str());
    env.plan().assert_code(0);
}

#[tokio::test]
async fn a_limited_environment_gets_https_with_tls13_autoscaling_and_container_insights() {
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let aws = aws().await;
    let certificate = aws
        .acm
        .request_certificate()
        .domain_name("api.poolside.example")
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();
    let mut env = Env::new("ltd");
    env.phase = "limited";
    env.api_extra =
        format!("certificate_arn = \"{certificate}\"\ndomain_name = \"api.poolside.example\"\n");
    env.write();
    let run = env.deploy();
    let name = env.name.clone();
    assert!(
        !run.one("plan")["warnings"]
            .to_string()
            .contains("certificate_arn"),
        "a certificate means no plain-HTTP warning"
    );

    // Port 80 redirects to 443; 443 terminates TLS 1.3 with our certificate.
    let lb = aws
        .elb
        .describe_load_balancers()
        .names(format!("poolside-{name}"))
        .send()
        .await
        .unwrap();
    let listeners = aws
        .elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancers()[0].load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    let by_port = |port: i32| {
        listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(port))
            .unwrap_or_else(|| panic!("a listener on {port}"))
    };
    let redirect = by_port(80).default_actions()[0].redirect_config().unwrap();
    assert_eq!(
        (
            redirect.protocol(),
            redirect.port(),
            redirect.status_code().map(|c| c.as_str())
        ),
        (Some("HTTPS"), Some("443"), Some("HTTP_301"))
    );
    let https = by_port(443);
    assert_eq!(https.protocol().map(|p| p.as_str()), Some("HTTPS"));
    assert_eq!(
        https.ssl_policy(),
        Some("ELBSecurityPolicy-TLS13-1-2-2021-06")
    );
    assert_eq!(
        https.certificates()[0].certificate_arn(),
        Some(certificate.as_str())
    );

    // The phase's sizing, Container Insights and log retention.
    let task = aws
        .ecs
        .describe_task_definition()
        .task_definition(format!("poolside-{name}-api"))
        .send()
        .await
        .unwrap();
    let task = task.task_definition().unwrap();
    assert_eq!((task.cpu(), task.memory()), (Some("512"), Some("1024")));
    let clusters = aws
        .ecs
        .describe_clusters()
        .clusters(format!("poolside-{name}"))
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .send()
        .await
        .unwrap();
    let insights = clusters.clusters()[0]
        .settings()
        .iter()
        .find(|s| s.name() == Some(&aws_sdk_ecs::types::ClusterSettingName::ContainerInsights))
        .and_then(|s| s.value())
        .map(str::to_string);
    assert_eq!(insights.as_deref(), Some("enabled"));
    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/poolside/{name}/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));

    // Autoscaling between 2 and 6 tasks on CPU and on requests per target.
    let resource_id = format!("service/poolside-{name}/poolside-{name}-api");
    let targets = aws
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&resource_id)
        .send()
        .await
        .unwrap();
    let target = &targets.scalable_targets()[0];
    assert_eq!((target.min_capacity(), target.max_capacity()), (2, 6));
    let policies = aws
        .autoscaling
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&resource_id)
        .send()
        .await
        .unwrap();
    let mut tracked: Vec<(String, f64)> = policies
        .scaling_policies()
        .iter()
        .map(|p| {
            let configuration = p.target_tracking_scaling_policy_configuration().unwrap();
            let metric = configuration.predefined_metric_specification().unwrap();
            if metric.predefined_metric_type().as_str() == "ALBRequestCountPerTarget" {
                let label = metric.resource_label().unwrap();
                assert!(
                    label.starts_with("app/") && label.contains("/targetgroup/"),
                    "{label}"
                );
            }
            (
                metric.predefined_metric_type().as_str().to_string(),
                configuration.target_value(),
            )
        })
        .collect();
    tracked.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        tracked,
        [
            ("ALBRequestCountPerTarget".to_string(), 1000.0),
            ("ECSServiceAverageCPUUtilization".to_string(), 60.0)
        ]
    );
    let services = aws
        .ecs
        .describe_services()
        .cluster(format!("poolside-{name}"))
        .services(format!("poolside-{name}-api"))
        .send()
        .await
        .unwrap();
    assert_eq!(services.services()[0].desired_count(), 2);

    // Limited rolls out by canary: ECS shifts traffic from the target group
    // to the alternate one through the production rule on 443, with a role
    // of ours (the strategy itself moto does not echo: README).
    let target_group_arn = |name: String| {
        let elb = aws.elb.clone();
        async move {
            elb.describe_target_groups()
                .names(name)
                .send()
                .await
                .unwrap()
                .target_groups()[0]
                .target_group_arn()
                .unwrap()
                .to_string()
        }
    };
    let primary = target_group_arn(format!("poolside-{name}")).await;
    let alternate = target_group_arn(format!("poolside-{name}-a")).await;
    let registration = &services.services()[0].load_balancers()[0];
    assert_eq!(registration.target_group_arn(), Some(primary.as_str()));
    let advanced = registration
        .advanced_configuration()
        .expect("a canary service names its alternate target group");
    assert_eq!(
        advanced.alternate_target_group_arn(),
        Some(alternate.as_str())
    );
    assert!(advanced
        .role_arn()
        .unwrap()
        .ends_with(&format!("role/poolside-{name}-ecs-load-balancers")));
    let rules = aws
        .elb
        .describe_rules()
        .listener_arn(https.listener_arn().unwrap())
        .send()
        .await
        .unwrap();
    let production = rules
        .rules()
        .iter()
        .find(|r| r.rule_arn() == advanced.production_listener_rule())
        .expect("the production rule is on the HTTPS listener");
    let weights: Vec<(String, i32)> = production.actions()[0]
        .forward_config()
        .unwrap()
        .target_groups()
        .iter()
        .map(|t| {
            (
                t.target_group_arn().unwrap().to_string(),
                t.weight().unwrap(),
            )
        })
        .collect();
    assert_eq!(weights, [(primary, 100), (alternate, 0)]);

    env.plan().assert_code(0);
    // The autoscaler owns the count: a new floor changes the scaling target only.
    env.api_extra = format!(
        "certificate_arn = \"{certificate}\"\ndomain_name = \"api.poolside.example\"\ndesired_count = 3\n"
    );
    env.write();
    let plan = env.plan();
    plan.assert_code(2);
    assert_eq!(
        changes(&plan.one("plan")),
        [(
            "scaling/api".to_string(),
            "update".to_string(),
            vec!["min_capacity".to_string()]
        )]
    );
}

/// With database.schema_runner = "deploy-host" (the emulator's), a schema
/// task definition left by an earlier "ecs-task" deploy is found next to the
/// API's and deleted: both families are discovered, neither hides the other.
#[tokio::test]
async fn a_schema_task_left_from_the_ecs_task_runner_is_found_and_deleted() {
    let env = Env::new("leftover");
    env.write();
    env.deploy();
    let aws = aws().await;
    let family = format!("poolside-{}-schema", env.name);
    let tag = |k: &str, v: &str| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build();
    aws.ecs
        .register_task_definition()
        .family(&family)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("schema")
                .image("psql")
                .command("sh")
                .build(),
        )
        .tags(tag("poolside:env", &env.name))
        .tags(tag("poolside:id", "task-definition/schema"))
        .send()
        .await
        .unwrap();

    let plan = env.plan();
    plan.assert_code(2);
    let planned: Vec<(String, String)> = changes(&plan.one("plan"))
        .into_iter()
        .map(|(id, action, _)| (id, action))
        .collect();
    assert_eq!(
        planned,
        [("task-definition/schema".to_string(), "delete".to_string())]
    );
    env.deploy();
    let active = aws
        .ecs
        .list_task_definitions()
        .family_prefix(&family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    assert_eq!(active.task_definition_arns(), [] as [String; 0]);
    env.plan().assert_code(0);
}
