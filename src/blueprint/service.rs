//! The service tier: PostgREST on ECS Fargate behind the load balancer, its
//! roles and logs, autoscaling, alarms and the dashboard.

use super::{AccountFacts, Builder, AUTHENTICATOR_SECRET, JWT_SECRET};
use crate::config::{Config, RolloutStrategy, SchemaRunner};
use crate::model::*;
use crate::refs::Reference;
use crate::templates::render_json;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// PostgREST's admin server (`/live`, `/ready`) listens next to the API port.
pub fn admin_port(config: &Config) -> u16 {
    config.network.api_port + 1
}

pub const CONTAINER_NAME: &str = "postgrest";
/// The target group ECS shifts the API's traffic to during a rollout.
pub const ALTERNATE_TARGET_GROUP: &str = "api-alternate";
/// The alarms whose firing during a rollout makes ECS roll it back: errors,
/// slowness, and tasks failing health checks in either target group.
const ROLLBACK_ALARMS: [&str; 4] = [
    "api-target-5xx",
    "api-latency-p99",
    "api-unhealthy-targets",
    "api-unhealthy-targets-alternate",
];
/// The TLS policy of the HTTPS listener: TLS 1.3, with 1.2 for older clients.
pub const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

fn log_group_name(config: &Config) -> String {
    format!("/poolside/{}/api", config.name)
}

pub fn cluster_name(config: &Config) -> String {
    format!("poolside-{}", config.name)
}

pub fn service_name(config: &Config) -> String {
    format!("poolside-{}-api", config.name)
}

/// Alarm names start with this, so discovery finds the environment's alarms.
pub fn alarm_prefix(config: &Config) -> String {
    format!("poolside-{}-", config.name)
}

fn id(kind: Kind, name: &str) -> ResourceId {
    ResourceId::new(kind, name)
}

fn arn_of(kind: Kind, name: &str) -> String {
    Reference::to_attribute(&id(kind, name), "arn")
}

pub(super) fn service_tier(
    b: &Builder,
    config: &Config,
    account: &AccountFacts,
    public_subnets: &[ResourceId],
    private_subnets: &[ResourceId],
) -> anyhow::Result<Vec<Desired>> {
    let api = &config.api;
    let env = &config.name;
    let mut out = Vec::new();

    let log_group = log_group_name(config);
    out.push(b.desired(&id(Kind::LogGroup, "api"), "api", |tags| {
        Spec::LogGroup(LogGroupSpec {
            name: log_group.clone(),
            retention_days: api.log_retention_days as i32,
            tags,
        })
    }));

    // Roles: the agent's (pull, log, read the two secrets) and the task's own (nothing).
    let trust = render_json(
        "ecs-tasks-trust-policy.json.j2",
        json!({ "account_id": account.account_id }),
    )?;
    let ecs_trust = render_json("ecs-infrastructure-trust-policy.json.j2", json!({}))?;
    let execution_policy = execution_policy(
        config,
        account,
        &log_group,
        &[
            Reference::to(&id(Kind::Secret, AUTHENTICATOR_SECRET)),
            Reference::to(&id(Kind::Secret, JWT_SECRET)),
        ],
    )?;
    let roles = [
        (
            "task-execution",
            "ECS agent for the API tasks: pull the image, write logs, read the API's two secrets",
            BTreeMap::from([("poolside-task-execution".to_string(), execution_policy)]),
        ),
        (
            "task",
            "the API tasks themselves: PostgREST calls no AWS API, so no permissions",
            BTreeMap::new(),
        ),
    ];
    for (name, purpose, inline_policies) in roles {
        out.push(b.desired(&id(Kind::Role, name), name, |tags| {
            Spec::Role(RoleSpec {
                name: format!("poolside-{env}-{name}"),
                description: format!("poolside {env}: {purpose}"),
                trust_policy: trust.clone(),
                inline_policies,
                managed_policies: BTreeSet::new(),
                tags,
            })
        }));
    }

    out.push(b.desired(&id(Kind::Cluster, "main"), "cluster", |tags| {
        Spec::Cluster(ClusterSpec {
            name: cluster_name(config),
            container_insights: api.container_insights,
            tags,
        })
    }));

    let mut task_definition = render_json(
        "task-definition.json.j2",
        json!({
            "family": format!("poolside-{env}-api"),
            "cpu": api.cpu,
            "memory": api.memory,
            "db_pool": api.db_pool,
            "execution_role_arn": arn_of(Kind::Role, "task-execution"),
            "task_role_arn": arn_of(Kind::Role, "task"),
            "container_name": CONTAINER_NAME,
            "image": format!(
                "{}{}",
                Reference::to_attribute(&id(Kind::Repository, "postgrest"), "uri"),
                api.repository_suffix
            ),
            "api_port": config.network.api_port,
            "admin_port": admin_port(config),
            "database_host": Reference::to_attribute(&id(Kind::DbInstance, "main"), "address"),
            "database_port": Reference::to_attribute(&id(Kind::DbInstance, "main"), "port"),
            "database_name": config.database.name,
            "authenticator_secret_arn": Reference::to(&id(Kind::Secret, AUTHENTICATOR_SECRET)),
            "jwt_secret_arn": Reference::to(&id(Kind::Secret, JWT_SECRET)),
            "log_group": log_group,
            "region": config.region,
        }),
    )?;
    let task_definition_id = id(Kind::TaskDefinition, "api");
    task_definition["tags"] = json!(b.tags(&task_definition_id, "api"));
    let task_definition: TaskDefinitionSpec =
        serde_json::from_value(task_definition).map_err(|e| {
            anyhow::anyhow!(
                "templates/task-definition.json.j2 does not render a task definition: {e}"
            )
        })?;
    out.push(Desired {
        id: task_definition_id.clone(),
        spec: Spec::TaskDefinition(task_definition),
        after: vec![],
    });

    if config.database.schema_runner == SchemaRunner::EcsTask {
        out.extend(schema_task(b, config, account, &trust, &log_group)?);
    }

    let load_balancer = id(Kind::LoadBalancer, "api");
    let internet_facing = b.desired(&load_balancer, "api", |tags| {
        Spec::LoadBalancer(LoadBalancerSpec {
            name: format!("poolside-{env}"),
            scheme: "internet-facing".into(),
            subnets: public_subnets.iter().map(Reference::to).collect(),
            security_groups: [Reference::to(&id(Kind::SecurityGroup, "load-balancer"))].into(),
            tags,
        })
    });
    // AWS: `InvalidSubnet` for an internet-facing load balancer until the
    // VPC's internet gateway is attached.
    out.push(internet_facing.after(&id(Kind::InternetGateway, "main")));
    let target_group = id(Kind::TargetGroup, "api");
    let alternate_target_group = id(Kind::TargetGroup, ALTERNATE_TARGET_GROUP);
    // Two target groups: ECS moves traffic from the serving one to the
    // other during a canary or linear rollout. Both exist in every phase,
    // so changing the strategy (a phase promotion) makes nothing new.
    for (group, name, suffix) in [
        (&target_group, "api", ""),
        (&alternate_target_group, ALTERNATE_TARGET_GROUP, "-a"),
    ] {
        out.push(b.desired(group, name, |tags| {
            Spec::TargetGroup(TargetGroupSpec {
                // Target group names share the 32-character limit (env names
                // are at most 20): a short suffix.
                name: format!("poolside-{env}{suffix}"),
                port: config.network.api_port.into(),
                protocol: "HTTP".into(),
                target_type: "ip".into(),
                vpc: Reference::to(&id(Kind::Vpc, "main")),
                health_check_path: "/ready".into(),
                health_check_port: admin_port(config).to_string(),
                health_check_interval_s: 15,
                healthy_threshold: 2,
                unhealthy_threshold: 3,
                matcher: "200".into(),
                // PostgREST answers in well under a second; AWS's default of 300 s
                // would hold every rolling deployment up for five minutes.
                deregistration_delay_s: 30,
                tags,
            })
        }));
    }
    let forward = ListenerAction::Forward {
        target_group: Reference::to(&target_group),
    };
    // The certificate: the one given, or one poolside makes in the zone.
    let certificate = match (&api.certificate_arn, &api.hosted_zone_id, &api.domain_name) {
        (Some(arn), _, _) => Some(arn.clone()),
        (None, Some(zone), Some(domain)) => {
            let certificate = id(Kind::Certificate, "api");
            out.push(b.desired(&certificate, "api", |tags| {
                Spec::Certificate(CertificateSpec {
                    domain_name: domain.clone(),
                    zone_id: zone.clone(),
                    tags,
                })
            }));
            Some(Reference::to(&certificate))
        }
        _ => None,
    };
    if let (Some(zone), Some(domain)) = (&api.hosted_zone_id, &api.domain_name) {
        out.push(Desired {
            id: id(Kind::DnsRecord, "api"),
            spec: Spec::DnsRecord(DnsRecordSpec {
                zone_id: zone.clone(),
                name: domain.clone(),
                alias_target: Reference::to_attribute(&load_balancer, "dns_name"),
                alias_zone: Reference::to_attribute(&load_balancer, "canonical_zone"),
                owner: format!("poolside:env={env}"),
            }),
            after: vec![],
        });
    }
    let serving_listener = match &certificate {
        Some(certificate) => {
            out.push(listener(
                &load_balancer,
                "http",
                80,
                "HTTP",
                None,
                ListenerAction::Redirect {
                    port: "443".into(),
                    protocol: "HTTPS".into(),
                    status_code: "HTTP_301".into(),
                },
            ));
            out.push(listener(
                &load_balancer,
                "https",
                443,
                "HTTPS",
                Some(certificate),
                forward,
            ));
            id(Kind::Listener, "https")
        }
        // No certificate (the local environment): plain HTTP, and plan warns.
        None => {
            out.push(listener(&load_balancer, "http", 80, "HTTP", None, forward));
            id(Kind::Listener, "http")
        }
    };

    // The production rule: all paths, by weight between the two groups.
    // ECS names it in the service and changes its weights while it shifts.
    let production_rule = id(Kind::ListenerRule, "api");
    out.push(b.desired(&production_rule, "api", |tags| {
        Spec::ListenerRule(ListenerRuleSpec {
            listener: Reference::to(&serving_listener),
            priority: 1,
            path_pattern: "/*".into(),
            target_groups: vec![
                Reference::to(&target_group),
                Reference::to(&alternate_target_group),
            ],
            tags,
        })
    }));
    let traffic_role = id(Kind::Role, "ecs-load-balancers");
    out.push(b.desired(&traffic_role, "ecs-load-balancers", |tags| {
        Spec::Role(RoleSpec {
            name: format!("poolside-{env}-ecs-load-balancers"),
            description: format!(
                "poolside {env}: ECS shifts the API's traffic between its two target groups"
            ),
            trust_policy: ecs_trust.clone(),
            inline_policies: BTreeMap::new(),
            managed_policies: [format!(
                "arn:{}:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers",
                account.partition
            )]
            .into(),
            tags,
        })
    }));
    let rollout = &api.rollout;
    let shifts = rollout.shifts_traffic();
    let deployment = DeploymentSpec {
        strategy: match rollout.strategy {
            RolloutStrategy::Rolling => "ROLLING",
            RolloutStrategy::Canary => "CANARY",
            RolloutStrategy::Linear => "LINEAR",
        }
        .into(),
        percent: shifts.then_some(rollout.percent),
        step_minutes: shifts.then_some(rollout.step_minutes as i32),
        bake_minutes: shifts.then_some(rollout.bake_minutes as i32),
        rollback_alarms: ROLLBACK_ALARMS
            .iter()
            .map(|name| format!("{}{name}", alarm_prefix(config)))
            .collect(),
        traffic: shifts.then(|| TrafficRouting {
            alternate_target_group: Reference::to(&alternate_target_group),
            production_rule: Reference::to(&production_rule),
            role: arn_of(Kind::Role, "ecs-load-balancers"),
        }),
    };

    let service = id(Kind::Service, "api");
    let service_desired = b.desired(&service, "api", |tags| {
        Spec::Service(ServiceSpec {
            name: service_name(config),
            cluster: Reference::to(&id(Kind::Cluster, "main")),
            task_definition: Reference::to(&task_definition_id),
            desired_count: match api.autoscaling {
                Some(_) => None,
                None => Some(api.desired_count as i32),
            },
            initial_count: api.desired_count as i32,
            subnets: private_subnets.iter().map(Reference::to).collect(),
            security_groups: [Reference::to(&id(Kind::SecurityGroup, "api"))].into(),
            assign_public_ip: false,
            target_group: Reference::to(&target_group),
            container_name: CONTAINER_NAME.into(),
            container_port: config.network.api_port.into(),
            // ECS's circuit breaker is for rolling deployments only; canary
            // and linear roll back on the alarms instead.
            circuit_breaker_rollback: !shifts,
            deployment: Some(deployment),
            last_deployment_failed: false,
            // ECS refuses a target group that no listener uses yet.
            depends_on: vec![serving_listener, production_rule],
            tags,
        })
    });
    // ECS watches the rollback alarms from the first deployment on.
    let service_desired = ROLLBACK_ALARMS
        .iter()
        .fold(service_desired, |d, name| d.after(&id(Kind::Alarm, name)));
    out.push(service_desired);
    if let Some(scaling) = &api.autoscaling {
        out.push(Desired {
            id: id(Kind::Scaling, "api"),
            spec: Spec::Scaling(ScalingSpec {
                resource_id: format!("service/{}/{}", cluster_name(config), service_name(config)),
                min_capacity: api.desired_count as i32,
                max_capacity: scaling.max_count as i32,
                cpu_target_percent: scaling.cpu_target_percent as i32,
                requests_per_target: scaling.requests_per_target as i32,
                request_label: format!(
                    "{}/{}",
                    Reference::to_attribute(&load_balancer, "dimension"),
                    Reference::to_attribute(&target_group, "dimension")
                ),
                depends_on: vec![service.clone()],
            }),
            after: vec![],
        });
    }

    out.extend(alarms(config));
    let dashboard = render_json(
        "dashboard.json.j2",
        json!({
            "region": config.region,
            "load_balancer": Reference::to_attribute(&load_balancer, "dimension"),
            "target_group": Reference::to_attribute(&target_group, "dimension"),
            "cluster": cluster_name(config),
            "service": service_name(config),
            // No thresholds here: an alarm change must not change the dashboard too.
            "database": super::database_identifier(config),
        }),
    )?;
    out.push(Desired {
        id: id(Kind::Dashboard, "main"),
        spec: Spec::Dashboard(DashboardSpec {
            name: format!("poolside-{env}"),
            body: dashboard,
        }),
        after: vec![],
    });
    Ok(out)
}

/// What an ECS agent of this environment may do: pull from its repository,
/// write to its log group, and read exactly the secrets its tasks name.
fn execution_policy(
    config: &Config,
    account: &AccountFacts,
    log_group: &str,
    secret_arns: &[String],
) -> anyhow::Result<serde_json::Value> {
    let partition = &account.partition;
    render_json(
        "task-execution-policy.json.j2",
        json!({
            "repository_arn": format!(
                "arn:{partition}:ecr:{}:{}:repository/{}",
                config.region, account.account_id, config.registry.repository_name
            ),
            "log_group_arn": format!(
                "arn:{partition}:logs:{}:{}:log-group:{log_group}",
                config.region, account.account_id
            ),
            "secret_arns": secret_arns,
        }),
    )
}

/// The one-off task that runs the schema step inside the VPC
/// (`database::in_vpc`), and the role its agent uses: the API's pull and log
/// rights, and the two logins it needs (RDS's master secret, authenticator's).
fn schema_task(
    b: &Builder,
    config: &Config,
    account: &AccountFacts,
    trust: &serde_json::Value,
    log_group: &str,
) -> anyhow::Result<Vec<Desired>> {
    use crate::database::in_vpc;
    let env = &config.name;
    let master_secret = Reference::to_attribute(&id(Kind::DbInstance, "main"), "master_secret_arn");
    let execution_policy = execution_policy(
        config,
        account,
        log_group,
        &[
            master_secret.clone(),
            Reference::to(&id(Kind::Secret, AUTHENTICATOR_SECRET)),
        ],
    )?;
    let role = id(Kind::Role, "schema-execution");
    let mut out = vec![b.desired(&role, "schema-execution", |tags| {
        Spec::Role(RoleSpec {
            name: format!("poolside-{env}-schema-execution"),
            description: format!(
                "poolside {env}: ECS agent for the schema task: pull its image, write logs, read the master and authenticator logins"
            ),
            trust_policy: trust.clone(),
            inline_policies: BTreeMap::from([(
                "poolside-schema-execution".to_string(),
                execution_policy,
            )]),
            managed_policies: BTreeSet::new(),
            tags,
        })
    })];
    let script = in_vpc::script(
        &config.database.name,
        &crate::database::migrations::shipped(),
        &crate::database::cron::declared(),
    )?;
    let mut definition = render_json(
        "schema-task-definition.json.j2",
        json!({
            "family": format!("poolside-{env}-schema"),
            "execution_role_arn": arn_of(Kind::Role, "schema-execution"),
            "task_role_arn": arn_of(Kind::Role, "task"),
            "container_name": in_vpc::CONTAINER_NAME,
            "image": format!(
                "{}:{}",
                Reference::to_attribute(&id(Kind::Repository, "postgrest"), "uri"),
                in_vpc::RUNNER_REPOSITORY_TAG
            ),
            "bootstrap": in_vpc::BOOTSTRAP,
            "database_host": Reference::to_attribute(&id(Kind::DbInstance, "main"), "address"),
            "database_port": Reference::to_attribute(&id(Kind::DbInstance, "main"), "port"),
            "database_name": config.database.name,
            "ca_file": in_vpc::CA_FILE,
            "script_variable": in_vpc::SCRIPT_VARIABLE,
            "script": script,
            "master_secret_arn": master_secret,
            "authenticator_secret_arn": Reference::to(&id(Kind::Secret, AUTHENTICATOR_SECRET)),
            "log_group": log_group,
            "region": config.region,
        }),
    )?;
    let definition_id = id(Kind::TaskDefinition, in_vpc::CONTAINER_NAME);
    definition["tags"] = json!(b.tags(&definition_id, in_vpc::CONTAINER_NAME));
    let definition: TaskDefinitionSpec = serde_json::from_value(definition).map_err(|e| {
        anyhow::anyhow!(
            "templates/schema-task-definition.json.j2 does not render a task definition: {e}"
        )
    })?;
    out.push(Desired {
        id: definition_id,
        spec: Spec::TaskDefinition(definition),
        after: vec![],
    });
    Ok(out)
}

fn listener(
    load_balancer: &ResourceId,
    name: &str,
    port: i32,
    protocol: &str,
    certificate: Option<&String>,
    action: ListenerAction,
) -> Desired {
    Desired {
        id: id(Kind::Listener, name),
        spec: Spec::Listener(ListenerSpec {
            load_balancer: Reference::to(load_balancer),
            port,
            protocol: protocol.into(),
            certificate: certificate.cloned(),
            ssl_policy: certificate.map(|_| TLS_POLICY.to_string()),
            action,
        }),
        after: vec![],
    }
}

/// One alarm per observability point of the design; thresholds from `[alarms]`.
fn alarms(config: &Config) -> Vec<Desired> {
    let a = &config.alarms;
    let load_balancer = Reference::to_attribute(&id(Kind::LoadBalancer, "api"), "dimension");
    let target_group = Reference::to_attribute(&id(Kind::TargetGroup, "api"), "dimension");
    let alternate_group =
        Reference::to_attribute(&id(Kind::TargetGroup, ALTERNATE_TARGET_GROUP), "dimension");
    let alb = BTreeMap::from([("LoadBalancer".to_string(), load_balancer.clone())]);
    let targets = BTreeMap::from([
        ("LoadBalancer".to_string(), load_balancer.clone()),
        ("TargetGroup".to_string(), target_group),
    ]);
    let alternate_targets = BTreeMap::from([
        ("LoadBalancer".to_string(), load_balancer),
        ("TargetGroup".to_string(), alternate_group),
    ]);
    let database = BTreeMap::from([(
        "DBInstanceIdentifier".to_string(),
        super::database_identifier(config),
    )]);
    let service = BTreeMap::from([
        ("ClusterName".to_string(), cluster_name(config)),
        ("ServiceName".to_string(), service_name(config)),
    ]);
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let above = "GreaterThanThreshold";
    // (name, what it means, namespace, metric, statistic, dimensions, period, periods, threshold, comparison)
    let table = [
        (
            "api-latency-p95",
            format!("API p95 response time above {} ms", a.p95_latency_ms),
            "AWS/ApplicationELB",
            "TargetResponseTime",
            "p95",
            &alb,
            60,
            5,
            a.p95_latency_ms as f64 / 1000.0,
            above,
        ),
        (
            "api-latency-p99",
            format!("API p99 response time above {} ms", a.p99_latency_ms),
            "AWS/ApplicationELB",
            "TargetResponseTime",
            "p99",
            &alb,
            60,
            5,
            a.p99_latency_ms as f64 / 1000.0,
            above,
        ),
        (
            "api-target-5xx",
            format!(
                "more than {} 5xx answers from the API in 5 minutes",
                a.target_5xx_count
            ),
            "AWS/ApplicationELB",
            "HTTPCode_Target_5XX_Count",
            "Sum",
            &alb,
            300,
            1,
            a.target_5xx_count as f64,
            above,
        ),
        (
            "api-unhealthy-targets",
            "an API task failed its health check for 3 minutes".to_string(),
            "AWS/ApplicationELB",
            "UnHealthyHostCount",
            "Maximum",
            &targets,
            60,
            3,
            0.0,
            above,
        ),
        (
            "api-unhealthy-targets-alternate",
            "an API task in the alternate target group (a rollout's) failed its health check for 3 minutes".to_string(),
            "AWS/ApplicationELB",
            "UnHealthyHostCount",
            "Maximum",
            &alternate_targets,
            60,
            3,
            0.0,
            above,
        ),
        (
            "api-cpu",
            format!("API tasks above {}% CPU", a.ecs_cpu_percent),
            "AWS/ECS",
            "CPUUtilization",
            "Average",
            &service,
            300,
            3,
            a.ecs_cpu_percent as f64,
            above,
        ),
        (
            "api-memory",
            format!("API tasks above {}% memory", a.ecs_memory_percent),
            "AWS/ECS",
            "MemoryUtilization",
            "Average",
            &service,
            300,
            3,
            a.ecs_memory_percent as f64,
            above,
        ),
        (
            "db-cpu",
            format!("database above {}% CPU", a.rds_cpu_percent),
            "AWS/RDS",
            "CPUUtilization",
            "Average",
            &database,
            300,
            3,
            a.rds_cpu_percent as f64,
            above,
        ),
        (
            "db-free-storage",
            format!("database free storage below {} GiB", a.rds_free_storage_gb),
            "AWS/RDS",
            "FreeStorageSpace",
            "Minimum",
            &database,
            300,
            1,
            a.rds_free_storage_gb as f64 * GIB,
            "LessThanThreshold",
        ),
        (
            "db-connections",
            format!("more than {} database connections", a.rds_connections),
            "AWS/RDS",
            "DatabaseConnections",
            "Maximum",
            &database,
            300,
            3,
            a.rds_connections as f64,
            above,
        ),
    ];
    table
        .into_iter()
        .map(
            |(
                name,
                meaning,
                namespace,
                metric,
                statistic,
                dimensions,
                period_s,
                evaluation_periods,
                threshold,
                comparison,
            )| Desired {
                id: id(Kind::Alarm, name),
                spec: Spec::Alarm(AlarmSpec {
                    name: format!("{}{name}", alarm_prefix(config)),
                    description: format!("poolside {}: {meaning}", config.name),
                    namespace: namespace.into(),
                    metric_name: metric.into(),
                    statistic: statistic.into(),
                    dimensions: dimensions.clone(),
                    period_s,
                    evaluation_periods,
                    threshold,
                    comparison: comparison.into(),
                    // No traffic is not an outage: an idle pilot stays OK.
                    treat_missing_data: "notBreaching".into(),
                    actions: a.action_arn.iter().cloned().collect(),
                }),
                after: vec![],
            },
        )
        .collect()
}
