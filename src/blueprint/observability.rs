//! The observability tier: one CloudWatch alarm per observability point of
//! the design (thresholds from `[alarms]`), and the dashboard.

use super::load_balancer::Front;
use crate::config::Config;
use crate::model::refs::Reference;
use crate::model::*;
use crate::names::{
    alarm_prefix, cluster_name, database_identifier, service_name, ALTERNATE_TARGET_GROUP,
};
use crate::resources::spec::*;
use crate::templates::render_json;
use serde_json::json;
use std::collections::BTreeMap;

/// The alarms whose firing during a rollout makes ECS roll it back: errors,
/// slowness, and tasks failing health checks in either target group.
pub(super) const ROLLBACK_ALARMS: [&str; 4] = [
    "api-target-5xx",
    "api-latency-p99",
    "api-unhealthy-targets",
    "api-unhealthy-targets-alternate",
];

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const ABOVE: &str = "GreaterThanThreshold";

type Dimensions = BTreeMap<String, String>;

/// What one alarm watches: (namespace, metric, statistic).
type Metric = (&'static str, &'static str, &'static str);

/// An alarm of the environment; `periods` is (seconds, how many in a row).
fn alarm(
    config: &Config,
    name: &str,
    meaning: String,
    (namespace, metric, statistic): Metric,
    dimensions: &Dimensions,
    (period_s, evaluation_periods): (i32, i32),
    (threshold, comparison): (f64, &str),
) -> Desired {
    Desired {
        id: ResourceId::new(Kind::Alarm, name),
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
            actions: config.alarms.action_arn.iter().cloned().collect(),
        }),
        after: vec![],
    }
}

fn dimension_of(kind: Kind, name: &str) -> String {
    Reference::to_attribute(&ResourceId::new(kind, name), "dimension")
}

/// The load balancer's alarms: latency, errors, unhealthy targets in
/// either group.
fn load_balancer_alarms(config: &Config) -> Vec<Desired> {
    let a = &config.alarms;
    let load_balancer = dimension_of(Kind::LoadBalancer, "api");
    let alb = Dimensions::from([("LoadBalancer".to_string(), load_balancer.clone())]);
    let targets_of = |group: &str| {
        Dimensions::from([
            ("LoadBalancer".to_string(), load_balancer.clone()),
            (
                "TargetGroup".to_string(),
                dimension_of(Kind::TargetGroup, group),
            ),
        ])
    };
    let elb = |metric, statistic| ("AWS/ApplicationELB", metric, statistic);
    let latency = |percentile: &'static str, ms: u32| {
        alarm(
            config,
            &format!("api-latency-{percentile}"),
            format!("API {percentile} response time above {ms} ms"),
            elb("TargetResponseTime", percentile),
            &alb,
            (60, 5),
            (ms as f64 / 1000.0, ABOVE),
        )
    };
    let unhealthy = |name: &str, group: &str, which: &str| {
        alarm(
            config,
            name,
            format!("an API task{which} failed its health check for 3 minutes"),
            elb("UnHealthyHostCount", "Maximum"),
            &targets_of(group),
            (60, 3),
            (0.0, ABOVE),
        )
    };
    vec![
        latency("p95", a.p95_latency_ms),
        latency("p99", a.p99_latency_ms),
        alarm(
            config,
            "api-target-5xx",
            format!(
                "more than {} 5xx answers from the API in 5 minutes",
                a.target_5xx_count
            ),
            elb("HTTPCode_Target_5XX_Count", "Sum"),
            &alb,
            (300, 1),
            (a.target_5xx_count as f64, ABOVE),
        ),
        unhealthy("api-unhealthy-targets", "api", ""),
        unhealthy(
            "api-unhealthy-targets-alternate",
            ALTERNATE_TARGET_GROUP,
            " in the alternate target group (a rollout's)",
        ),
    ]
}

/// The service's and the database's alarms: CPU, memory, storage,
/// connections.
fn service_and_database_alarms(config: &Config) -> Vec<Desired> {
    let a = &config.alarms;
    let service = Dimensions::from([
        ("ClusterName".to_string(), cluster_name(config)),
        ("ServiceName".to_string(), service_name(config)),
    ]);
    let database = Dimensions::from([(
        "DBInstanceIdentifier".to_string(),
        database_identifier(config),
    )]);
    let above = |name: &str, meaning: String, metric: Metric, dimensions, limit: f64| {
        alarm(
            config,
            name,
            meaning,
            metric,
            dimensions,
            (300, 3),
            (limit, ABOVE),
        )
    };
    vec![
        above(
            "api-cpu",
            format!("API tasks above {}% CPU", a.ecs_cpu_percent),
            ("AWS/ECS", "CPUUtilization", "Average"),
            &service,
            a.ecs_cpu_percent as f64,
        ),
        above(
            "api-memory",
            format!("API tasks above {}% memory", a.ecs_memory_percent),
            ("AWS/ECS", "MemoryUtilization", "Average"),
            &service,
            a.ecs_memory_percent as f64,
        ),
        above(
            "db-cpu",
            format!("database above {}% CPU", a.rds_cpu_percent),
            ("AWS/RDS", "CPUUtilization", "Average"),
            &database,
            a.rds_cpu_percent as f64,
        ),
        alarm(
            config,
            "db-free-storage",
            format!("database free storage below {} GiB", a.rds_free_storage_gb),
            ("AWS/RDS", "FreeStorageSpace", "Minimum"),
            &database,
            (300, 1),
            (a.rds_free_storage_gb as f64 * GIB, "LessThanThreshold"),
        ),
        above(
            "db-connections",
            format!("more than {} database connections", a.rds_connections),
            ("AWS/RDS", "DatabaseConnections", "Maximum"),
            &database,
            a.rds_connections as f64,
        ),
    ]
}

pub(super) fn observability(config: &Config, front: &Front) -> anyhow::Result<Vec<Desired>> {
    let mut out = load_balancer_alarms(config);
    out.extend(service_and_database_alarms(config));
    let dashboard = render_json(
        "dashboard.json.j2",
        json!({
            "region": config.region,
            "load_balancer": Reference::to_attribute(&front.load_balancer, "dimension"),
            "target_group": Reference::to_attribute(&front.target_group, "dimension"),
            "cluster": cluster_name(config),
            "service": service_name(config),
            // No thresholds here: an alarm change must not change the dashboard too.
            "database": database_identifier(config),
        }),
    )?;
    out.push(Desired {
        id: ResourceId::new(Kind::Dashboard, "main"),
        spec: Spec::Dashboard(DashboardSpec {
            name: format!("poolside-{}", config.name),
            body: dashboard,
        }),
        after: vec![],
    });
    Ok(out)
}
