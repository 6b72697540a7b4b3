//! Logical ids, the kinds of resource poolside manages, and the tags that
//! tie an AWS resource to an environment.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub type Tags = BTreeMap<String, String>;

pub const TAG_ENV: &str = "poolside:env";
pub const TAG_ID: &str = "poolside:id";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceId(pub String);

impl ResourceId {
    pub fn new(kind: Kind, name: &str) -> Self {
        ResourceId(format!("{}/{name}", kind.prefix()))
    }

    /// The kind named by the id's prefix; `None` for an AWS id that poolside does not manage.
    pub fn kind(&self) -> Option<Kind> {
        let (prefix, _) = self.0.split_once('/')?;
        Kind::ALL.into_iter().find(|k| k.prefix() == prefix)
    }

    /// For an extra live copy of a logical id (`<id>#<aws id>`, named so by
    /// discovery), the id it copies.
    pub fn copy_of(&self) -> Option<ResourceId> {
        self.0
            .split_once('#')
            .map(|(original, _)| ResourceId(original.to_string()))
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Vpc,
    Subnet,
    InternetGateway,
    ElasticIp,
    NatGateway,
    RouteTable,
    SecurityGroup,
    SecurityGroupRules,
    VpcEndpoint,
    Bucket,
    Repository,
    Secret,
    DbSubnetGroup,
    DbParameterGroup,
    DbInstance,
    LogGroup,
    Role,
    Cluster,
    TaskDefinition,
    LoadBalancer,
    TargetGroup,
    Listener,
    ListenerRule,
    Service,
    Scaling,
    Alarm,
    Dashboard,
    Certificate,
    DnsRecord,
}

impl Kind {
    pub const ALL: [Kind; 29] = [
        Kind::Vpc,
        Kind::Subnet,
        Kind::InternetGateway,
        Kind::ElasticIp,
        Kind::NatGateway,
        Kind::RouteTable,
        Kind::SecurityGroup,
        Kind::SecurityGroupRules,
        Kind::VpcEndpoint,
        Kind::Bucket,
        Kind::Repository,
        Kind::Secret,
        Kind::DbSubnetGroup,
        Kind::DbParameterGroup,
        Kind::DbInstance,
        Kind::LogGroup,
        Kind::Role,
        Kind::Cluster,
        Kind::TaskDefinition,
        Kind::LoadBalancer,
        Kind::TargetGroup,
        Kind::Listener,
        Kind::ListenerRule,
        Kind::Service,
        Kind::Scaling,
        Kind::Alarm,
        Kind::Dashboard,
        Kind::Certificate,
        Kind::DnsRecord,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::InternetGateway => "igw",
            Kind::ElasticIp => "eip",
            Kind::NatGateway => "nat",
            Kind::RouteTable => "route-table",
            Kind::SecurityGroup => "sg",
            Kind::SecurityGroupRules => "sg-rules",
            Kind::VpcEndpoint => "endpoint",
            Kind::Bucket => "bucket",
            Kind::Repository => "repository",
            Kind::Secret => "secret",
            Kind::DbSubnetGroup => "db-subnet-group",
            Kind::DbParameterGroup => "db-parameter-group",
            Kind::DbInstance => "db-instance",
            Kind::LogGroup => "log-group",
            Kind::Role => "role",
            Kind::Cluster => "cluster",
            Kind::TaskDefinition => "task-definition",
            Kind::LoadBalancer => "load-balancer",
            Kind::TargetGroup => "target-group",
            Kind::Listener => "listener",
            Kind::ListenerRule => "listener-rule",
            Kind::Service => "service",
            Kind::Scaling => "scaling",
            Kind::Alarm => "alarm",
            Kind::Dashboard => "dashboard",
            Kind::Certificate => "certificate",
            Kind::DnsRecord => "dns-record",
        }
    }

    /// Kinds that hold data a delete loses: the database, the model
    /// artifacts, the images (releases), and the logins in the secrets.
    /// Deploy deletes or replaces one only when the user names it.
    pub fn holds_data(self) -> bool {
        matches!(
            self,
            Kind::DbInstance | Kind::Bucket | Kind::Repository | Kind::Secret
        )
    }

    /// Deletes run in waves of increasing rank, so nothing is deleted while
    /// something that depends on it still exists.
    pub fn delete_rank(self) -> u8 {
        match self {
            Kind::DbInstance
            | Kind::Listener
            | Kind::ListenerRule
            | Kind::Service
            | Kind::Scaling
            | Kind::Alarm
            | Kind::Dashboard
            | Kind::DnsRecord => 0,
            Kind::LoadBalancer
            | Kind::TargetGroup
            | Kind::Cluster
            | Kind::TaskDefinition
            | Kind::Role
            | Kind::LogGroup
            | Kind::VpcEndpoint
            | Kind::SecurityGroupRules
            | Kind::Bucket
            | Kind::Repository
            | Kind::Secret
            | Kind::DbSubnetGroup
            | Kind::DbParameterGroup
            | Kind::Certificate => 1,
            Kind::NatGateway | Kind::RouteTable => 2,
            Kind::InternetGateway | Kind::ElasticIp | Kind::Subnet | Kind::SecurityGroup => 3,
            Kind::Vpc => 4,
        }
    }

    /// The AWS service whose API creates, changes and deletes this kind.
    pub fn service(self) -> AwsService {
        match self {
            Kind::Vpc
            | Kind::Subnet
            | Kind::InternetGateway
            | Kind::ElasticIp
            | Kind::NatGateway
            | Kind::RouteTable
            | Kind::SecurityGroup
            | Kind::SecurityGroupRules
            | Kind::VpcEndpoint => AwsService::Ec2,
            Kind::Bucket => AwsService::S3,
            Kind::Repository => AwsService::Ecr,
            Kind::Secret => AwsService::SecretsManager,
            Kind::DbSubnetGroup | Kind::DbParameterGroup | Kind::DbInstance => AwsService::Rds,
            Kind::LogGroup => AwsService::Logs,
            Kind::Role => AwsService::Iam,
            Kind::Cluster | Kind::TaskDefinition | Kind::Service => AwsService::Ecs,
            Kind::LoadBalancer | Kind::TargetGroup | Kind::Listener | Kind::ListenerRule => {
                AwsService::Elb
            }
            Kind::Scaling => AwsService::ApplicationAutoScaling,
            Kind::Alarm | Kind::Dashboard => AwsService::CloudWatch,
            Kind::Certificate => AwsService::Acm,
            Kind::DnsRecord => AwsService::Route53,
        }
    }

    /// AWS refuses to delete one of these while something still refers to
    /// it (a subnet with a NAT gateway's or a load balancer's interfaces in
    /// it, a target group a listener forwards to, a group a rule names), so
    /// what refers to it must go first when it is replaced.
    pub fn referrers_block_deletion(self) -> bool {
        matches!(
            self,
            Kind::Vpc
                | Kind::Subnet
                | Kind::InternetGateway
                | Kind::ElasticIp
                | Kind::SecurityGroup
                | Kind::DbSubnetGroup
                | Kind::DbParameterGroup
                | Kind::TargetGroup
                | Kind::Certificate
                | Kind::Cluster
        )
    }

    /// A replacement of one of these is made next to the old one, which is
    /// deleted at the end, after what refers to it (by AWS id) moved over:
    /// its name is only a tag, so the two can exist at once.
    pub fn created_before_destroyed(self) -> bool {
        self == Kind::Subnet
    }

    /// An update that gives the resource a new AWS id: a task definition
    /// update registers a new revision, so what refers to it must follow.
    pub fn id_changes_on_update(self) -> bool {
        self == Kind::TaskDefinition
    }
}

/// AWS services, for limits that AWS sets per service (request rates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AwsService {
    Ec2,
    S3,
    Ecr,
    SecretsManager,
    Rds,
    Logs,
    Iam,
    Ecs,
    Elb,
    ApplicationAutoScaling,
    CloudWatch,
    Acm,
    Route53,
    /// Steps that are not one AWS resource.
    Other,
}
