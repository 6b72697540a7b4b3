//! What poolside knows of each kind of resource: its spec, compared between
//! desired and live, and the references between specs.

use super::id::*;
use super::refs;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    pub destination: String,
    /// `igw/...`, `nat/...`, or the AWS id of a target poolside does not manage.
    pub target: ResourceId,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// A CIDR block, a group (`sg/...` or an AWS group id) or a prefix list id.
    pub peer: String,
    pub description: String,
}

impl Rule {
    pub fn tcp(port: u16, peer: impl Into<String>, description: &str) -> Self {
        Rule {
            protocol: "tcp".into(),
            from_port: port.into(),
            to_port: port.into(),
            peer: peer.into(),
            description: description.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VpcSpec {
    pub cidr: String,
    pub dns_support: bool,
    pub dns_hostnames: bool,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubnetSpec {
    pub vpc: ResourceId,
    pub cidr: String,
    pub availability_zone: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InternetGatewaySpec {
    /// The VPC it is attached to.
    pub vpc: Option<ResourceId>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ElasticIpSpec {
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NatGatewaySpec {
    pub subnet: ResourceId,
    pub elastic_ip: ResourceId,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteTableSpec {
    pub vpc: ResourceId,
    pub routes: BTreeSet<Route>,
    pub subnets: BTreeSet<ResourceId>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecurityGroupSpec {
    pub vpc: ResourceId,
    pub group_name: String,
    pub description: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecurityGroupRulesSpec {
    pub group: ResourceId,
    pub ingress: BTreeSet<Rule>,
    pub egress: BTreeSet<Rule>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VpcEndpointSpec {
    pub vpc: ResourceId,
    pub service_name: String,
    pub endpoint_type: String,
    pub route_tables: BTreeSet<ResourceId>,
    pub subnets: BTreeSet<ResourceId>,
    pub security_groups: BTreeSet<ResourceId>,
    pub private_dns: bool,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BucketSpec {
    pub name: String,
    pub versioning: bool,
    pub encryption: String,
    pub block_public_access: bool,
    pub policy: Option<Value>,
    pub noncurrent_version_expiration_days: Option<u32>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RepositorySpec {
    pub name: String,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    pub lifecycle_policy: Option<Value>,
    pub tags: Tags,
}

/// A Secrets Manager secret whose value poolside generates once, at create,
/// and never regenerates, prints or compares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecretSpec {
    pub name: String,
    pub description: String,
    /// How the value is made at create; not a property of the live secret.
    #[serde(skip)]
    pub value: GeneratedSecret,
    pub tags: Tags,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub enum GeneratedSecret {
    /// `{"username": ..., "password": <random>}`: a database login.
    Login { username: String },
    /// A random string of this many alphanumeric characters.
    #[default]
    Random,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbSubnetGroupSpec {
    pub name: String,
    pub description: String,
    pub subnets: BTreeSet<ResourceId>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbParameterGroupSpec {
    pub name: String,
    pub family: String,
    pub description: String,
    /// The parameters set by poolside; the rest keep the family's defaults.
    pub parameters: BTreeMap<String, String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbInstanceSpec {
    pub identifier: String,
    pub engine: String,
    pub engine_version: String,
    pub instance_class: String,
    pub allocated_storage_gb: i32,
    pub storage_type: String,
    pub storage_encrypted: bool,
    pub multi_az: bool,
    pub publicly_accessible: bool,
    pub backup_retention_days: i32,
    pub deletion_protection: bool,
    pub db_name: String,
    pub master_username: String,
    /// The master password lives in a secret RDS manages; poolside never sees it set.
    pub manage_master_password: bool,
    pub subnet_group: ResourceId,
    pub parameter_group: ResourceId,
    pub security_groups: BTreeSet<ResourceId>,
    pub tags: Tags,
}

// The service tier. References to other resources are `${...}` strings
// (see `refs`), filled in at plan and apply time.

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogGroupSpec {
    pub name: String,
    pub retention_days: i32,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleSpec {
    pub name: String,
    pub description: String,
    pub trust_policy: Value,
    /// Inline policies by name. Managed policies are not used: every
    /// permission is written here, scoped to this environment's resources.
    pub inline_policies: BTreeMap<String, Value>,
    pub managed_policies: BTreeSet<String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub name: String,
    pub container_insights: bool,
    pub tags: Tags,
}

/// A Fargate task definition with one container. An update registers a new
/// revision; the service then moves to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinitionSpec {
    pub family: String,
    pub cpu: String,
    pub memory: String,
    pub execution_role: String,
    pub task_role: String,
    pub container: ContainerSpec,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Overrides the image's command; empty keeps it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    pub ports: BTreeSet<i32>,
    pub environment: BTreeMap<String, String>,
    /// Variable name → Secrets Manager ARN (with an optional `:json-key::`).
    pub secrets: BTreeMap<String, String>,
    pub log_driver: String,
    pub log_options: BTreeMap<String, String>,
    pub readonly_root_filesystem: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    pub name: String,
    pub scheme: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupSpec {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub target_type: String,
    pub vpc: String,
    pub health_check_path: String,
    pub health_check_port: String,
    pub health_check_interval_s: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub matcher: String,
    /// How long a task being replaced keeps its in-flight requests.
    pub deregistration_delay_s: i32,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerSpec {
    pub load_balancer: String,
    pub port: i32,
    pub protocol: String,
    pub certificate: Option<String>,
    pub ssl_policy: Option<String>,
    pub action: ListenerAction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ListenerAction {
    Redirect {
        port: String,
        protocol: String,
        status_code: String,
    },
    Forward {
        target_group: String,
    },
}

/// A rule of a listener that forwards to target groups by weight. ECS owns
/// the weights while it shifts traffic between a service's two target
/// groups, so they are live state (attributes), never desired state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerRuleSpec {
    pub listener: String,
    pub priority: i32,
    pub path_pattern: String,
    /// The first gets all traffic when the rule is made.
    pub target_groups: Vec<String>,
    pub tags: Tags,
}

/// How ECS rolls out a new task definition. Traffic-shifting strategies
/// (canary, linear) move traffic from the service's target group to its
/// alternate one through the production listener rule, and roll back when
/// one of the alarms fires, without poolside running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    /// ROLLING, CANARY or LINEAR, as ECS names them.
    pub strategy: String,
    /// Canary: the first share; linear: each step's share.
    pub percent: Option<f64>,
    pub step_minutes: Option<i32>,
    pub bake_minutes: Option<i32>,
    pub rollback_alarms: BTreeSet<String>,
    /// The alternate target group, the production listener rule and the
    /// role ECS uses to change the rule; set for traffic-shifting strategies.
    pub traffic: Option<TrafficRouting>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficRouting {
    pub alternate_target_group: String,
    pub production_rule: String,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    pub cluster: String,
    pub task_definition: String,
    /// `None` while an autoscaler owns the count: then it is not drift.
    pub desired_count: Option<i32>,
    /// The count at create when the autoscaler owns it afterwards.
    #[serde(skip)]
    pub initial_count: i32,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub assign_public_ip: bool,
    pub target_group: String,
    pub container_name: String,
    pub container_port: i32,
    pub circuit_breaker_rollback: bool,
    /// `None` when the service reports no deployment configuration (moto
    /// after CreateService): then it is not drift.
    pub deployment: Option<DeploymentSpec>,
    /// The service's newest deployment failed (its circuit breaker tripped
    /// with nothing to roll back to, say). Never desired: a deploy that finds
    /// it starts a new deployment, even when nothing else changed.
    pub last_deployment_failed: bool,
    pub tags: Tags,
    /// What must exist first that the spec does not name (the listener).
    #[serde(skip)]
    pub depends_on: Vec<ResourceId>,
}

/// Application Auto Scaling of the service: its bounds and target-tracking policies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingSpec {
    /// `service/<cluster>/<service>`.
    pub resource_id: String,
    pub min_capacity: i32,
    pub max_capacity: i32,
    pub cpu_target_percent: i32,
    pub requests_per_target: i32,
    /// `app/<lb>/<id>/targetgroup/<tg>/<id>` for the requests metric.
    pub request_label: String,
    #[serde(skip)]
    pub depends_on: Vec<ResourceId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmSpec {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub metric_name: String,
    /// `Sum`, `Average`, `Maximum`... or a percentile such as `p95`.
    pub statistic: String,
    pub dimensions: BTreeMap<String, String>,
    pub period_s: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    pub actions: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardSpec {
    pub name: String,
    pub body: Value,
}

/// An ACM certificate for the API's domain, validated through DNS in a
/// Route 53 zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateSpec {
    pub domain_name: String,
    /// Where the validation record goes; ACM does not report it back.
    #[serde(skip)]
    pub zone_id: String,
    pub tags: Tags,
}

/// The API's name in a Route 53 zone: an alias to the load balancer, with a
/// TXT record beside it that says which environment owns the name (Route 53
/// records take no tags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DnsRecordSpec {
    pub zone_id: String,
    pub name: String,
    /// The load balancer's DNS name and its canonical hosted zone.
    pub alias_target: String,
    pub alias_zone: String,
    /// `poolside:env=<env>`, the TXT record's text.
    pub owner: String,
}

/// The properties of one resource, desired or observed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Spec {
    Vpc(VpcSpec),
    Subnet(SubnetSpec),
    InternetGateway(InternetGatewaySpec),
    ElasticIp(ElasticIpSpec),
    NatGateway(NatGatewaySpec),
    RouteTable(RouteTableSpec),
    SecurityGroup(SecurityGroupSpec),
    SecurityGroupRules(SecurityGroupRulesSpec),
    VpcEndpoint(VpcEndpointSpec),
    Bucket(BucketSpec),
    Repository(RepositorySpec),
    Secret(SecretSpec),
    DbSubnetGroup(DbSubnetGroupSpec),
    DbParameterGroup(DbParameterGroupSpec),
    DbInstance(DbInstanceSpec),
    LogGroup(LogGroupSpec),
    Role(RoleSpec),
    Cluster(ClusterSpec),
    TaskDefinition(TaskDefinitionSpec),
    LoadBalancer(LoadBalancerSpec),
    TargetGroup(TargetGroupSpec),
    Listener(ListenerSpec),
    ListenerRule(ListenerRuleSpec),
    Service(ServiceSpec),
    Scaling(ScalingSpec),
    Alarm(AlarmSpec),
    Dashboard(DashboardSpec),
    Certificate(CertificateSpec),
    DnsRecord(DnsRecordSpec),
}

impl Spec {
    /// Properties that AWS cannot change in place: a change to one replaces the resource.
    pub fn immutable_properties(&self) -> &'static [&'static str] {
        match self {
            Spec::Vpc(_) => &["cidr"],
            Spec::Subnet(_) => &["vpc", "cidr", "availability_zone"],
            Spec::NatGateway(_) => &["subnet", "elastic_ip"],
            Spec::RouteTable(_) => &["vpc"],
            Spec::SecurityGroup(_) => &["vpc", "group_name", "description"],
            Spec::SecurityGroupRules(_) => &["group"],
            Spec::VpcEndpoint(_) => &["vpc", "service_name", "endpoint_type"],
            Spec::Bucket(_) => &["name"],
            Spec::Repository(_) => &["name"],
            Spec::Secret(_) => &["name"],
            Spec::DbSubnetGroup(_) => &["name"],
            Spec::DbParameterGroup(_) => &["name", "family"],
            Spec::DbInstance(_) => &[
                "identifier",
                "engine",
                "storage_encrypted",
                "db_name",
                "master_username",
            ],
            Spec::LogGroup(_) | Spec::Role(_) | Spec::Cluster(_) => &["name"],
            Spec::TaskDefinition(_) => &["family"],
            Spec::LoadBalancer(_) => &["name", "scheme"],
            Spec::TargetGroup(_) => &["name", "port", "protocol", "target_type", "vpc"],
            Spec::Listener(_) => &["load_balancer", "port"],
            Spec::ListenerRule(_) => &["listener"],
            Spec::Service(_) => &["name", "cluster"],
            Spec::Scaling(_) => &["resource_id"],
            Spec::Alarm(_) | Spec::Dashboard(_) => &["name"],
            Spec::Certificate(_) => &["domain_name"],
            Spec::DnsRecord(_) => &["zone_id", "name"],
            Spec::InternetGateway(_) | Spec::ElasticIp(_) => &[],
        }
    }

    /// Every poolside resource this one refers to: its dependencies.
    pub fn references(&self) -> Vec<ResourceId> {
        let mut refs = self.logical_references();
        if let Spec::Service(s) = self {
            refs.extend(s.depends_on.iter().cloned());
        }
        if let Spec::Scaling(s) = self {
            refs.extend(s.depends_on.iter().cloned());
        }
        let value = serde_json::to_value(self).expect("specs serialize");
        refs.extend(refs::references_in_json(&value).into_iter().map(|r| r.id));
        refs.retain(|r| r.kind().is_some());
        refs.sort();
        refs.dedup();
        refs
    }

    /// The resources this one names by logical id (the network and data
    /// tiers), as opposed to `${...}` references, which plan fills in with
    /// AWS ids. A logical reference says nothing of which AWS resource it
    /// meant, so when that one is replaced, this one is replaced too.
    pub fn logical_references(&self) -> Vec<ResourceId> {
        let mut refs: Vec<ResourceId> = match self {
            Spec::Vpc(_)
            | Spec::ElasticIp(_)
            | Spec::Bucket(_)
            | Spec::Repository(_)
            | Spec::Secret(_)
            | Spec::DbParameterGroup(_) => vec![],
            // The service tier refers by `${...}` strings (`depends_on` only orders).
            Spec::Service(_)
            | Spec::Scaling(_)
            | Spec::LogGroup(_)
            | Spec::Role(_)
            | Spec::Cluster(_)
            | Spec::TaskDefinition(_)
            | Spec::LoadBalancer(_)
            | Spec::TargetGroup(_)
            | Spec::Listener(_)
            | Spec::ListenerRule(_)
            | Spec::Alarm(_)
            | Spec::Dashboard(_)
            | Spec::Certificate(_)
            | Spec::DnsRecord(_) => vec![],
            Spec::DbSubnetGroup(s) => s.subnets.iter().cloned().collect(),
            Spec::DbInstance(s) => {
                let mut refs = vec![s.subnet_group.clone(), s.parameter_group.clone()];
                refs.extend(s.security_groups.iter().cloned());
                refs
            }
            Spec::Subnet(s) => vec![s.vpc.clone()],
            Spec::InternetGateway(s) => s.vpc.iter().cloned().collect(),
            Spec::NatGateway(s) => vec![s.subnet.clone(), s.elastic_ip.clone()],
            Spec::RouteTable(s) => {
                let mut refs = vec![s.vpc.clone()];
                refs.extend(s.routes.iter().map(|r| r.target.clone()));
                refs.extend(s.subnets.iter().cloned());
                refs
            }
            Spec::SecurityGroup(s) => vec![s.vpc.clone()],
            Spec::SecurityGroupRules(s) => {
                let mut refs = vec![s.group.clone()];
                let peers = s
                    .ingress
                    .iter()
                    .chain(&s.egress)
                    .map(|r| ResourceId(r.peer.clone()));
                refs.extend(peers);
                refs
            }
            Spec::VpcEndpoint(s) => {
                let mut refs = vec![s.vpc.clone()];
                refs.extend(s.route_tables.iter().cloned());
                refs.extend(s.subnets.iter().cloned());
                refs.extend(s.security_groups.iter().cloned());
                refs
            }
        };
        refs.retain(|r| r.kind().is_some());
        refs.sort();
        refs.dedup();
        refs
    }
}

impl Spec {
    /// The spec with its `${...}` references filled in where `resolve` knows
    /// them. Only the service tier's specs hold references.
    pub fn substitute(&self, resolve: &mut dyn FnMut(&refs::Reference) -> Option<String>) -> Spec {
        fn roundtrip<T: Serialize + serde::de::DeserializeOwned>(
            spec: &T,
            resolve: &mut dyn FnMut(&refs::Reference) -> Option<String>,
        ) -> T {
            let value = serde_json::to_value(spec).expect("specs serialize");
            let filled = refs::substitute_json(&value, resolve);
            serde_json::from_value(filled).expect("filling in references keeps a spec's shape")
        }
        match self {
            Spec::LogGroup(s) => Spec::LogGroup(roundtrip(s, resolve)),
            Spec::Role(s) => Spec::Role(roundtrip(s, resolve)),
            Spec::Cluster(s) => Spec::Cluster(roundtrip(s, resolve)),
            Spec::TaskDefinition(s) => Spec::TaskDefinition(roundtrip(s, resolve)),
            Spec::LoadBalancer(s) => Spec::LoadBalancer(roundtrip(s, resolve)),
            Spec::TargetGroup(s) => Spec::TargetGroup(roundtrip(s, resolve)),
            Spec::Listener(s) => Spec::Listener(roundtrip(s, resolve)),
            Spec::ListenerRule(s) => Spec::ListenerRule(roundtrip(s, resolve)),
            Spec::Service(s) => Spec::Service(ServiceSpec {
                initial_count: s.initial_count,
                depends_on: s.depends_on.clone(),
                ..roundtrip(s, resolve)
            }),
            Spec::Scaling(s) => Spec::Scaling(ScalingSpec {
                depends_on: s.depends_on.clone(),
                ..roundtrip(s, resolve)
            }),
            Spec::Alarm(s) => Spec::Alarm(roundtrip(s, resolve)),
            Spec::Dashboard(s) => Spec::Dashboard(roundtrip(s, resolve)),
            Spec::DnsRecord(s) => Spec::DnsRecord(roundtrip(s, resolve)),
            other => other.clone(),
        }
    }
}

impl Spec {
    /// The live spec with what AWS did not report taken from the desired
    /// one, so a setting the emulator never echoes is not a change.
    pub fn with_unreported_from(&self, desired: &Spec) -> Spec {
        match (self, desired) {
            (Spec::Service(live), Spec::Service(wanted)) if live.deployment.is_none() => {
                // The breaker is part of the same unreported configuration.
                Spec::Service(ServiceSpec {
                    deployment: wanted.deployment.clone(),
                    circuit_breaker_rollback: wanted.circuit_breaker_rollback,
                    ..live.clone()
                })
            }
            _ => self.clone(),
        }
    }
}
