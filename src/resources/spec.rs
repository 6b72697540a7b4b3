//! Every kind of resource in one list: the [`Spec`] enum over the families'
//! spec types, and what the engine holds of a resource, desired ([`Desired`])
//! or found ([`Live`]).
//!
//! Adding a kind of resource: a `Kind` in `model` (its id prefix), its spec
//! type and its `Properties` and `Resource` impls in its family's module, and
//! one line in [`with_every_kind`]. Everything that matches over kinds (this
//! enum, its properties, create, update and delete) is generated from that
//! list.
//!
//! Contract: data only; no AWS call.

pub use super::alarms::spec::*;
pub use super::domain::spec::*;
pub use super::ecs::spec::*;
pub use super::iam::spec::*;
pub use super::load_balancer::spec::*;
pub use super::logs::spec::*;
pub use super::network::spec::*;
pub use super::rds::spec::*;
pub use super::registry::spec::*;
pub use super::scaling::spec::*;
pub use super::secrets::spec::*;
pub use super::storage::spec::*;

use crate::model::refs::{self, Reference};
use crate::model::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// Calls `$then!` with every kind: its `Spec` variant and its spec type.
/// The one list of kinds.
macro_rules! with_every_kind {
    ($then:ident) => {
        $then! {
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
    };
}
pub(crate) use with_every_kind;

macro_rules! define_spec {
    ($($variant:ident($spec:ty)),* $(,)?) => {
        /// The properties of one resource, desired or observed.
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Spec {
            $($variant($spec),)*
        }

        $(impl From<$spec> for Spec {
            fn from(spec: $spec) -> Spec {
                Spec::$variant(spec)
            }
        })*

        impl Spec {
            /// Properties that AWS cannot change in place: a change to one
            /// replaces the resource.
            pub fn immutable_properties(&self) -> &'static [&'static str] {
                match self {
                    $(Spec::$variant(_) => <$spec as Properties>::IMMUTABLE,)*
                }
            }

            /// See [`Properties::logical_references`]; AWS ids are left out.
            pub fn logical_references(&self) -> Vec<ResourceId> {
                let mut refs = match self {
                    $(Spec::$variant(s) => s.logical_references(),)*
                };
                refs.retain(|r| r.kind().is_some());
                refs.sort();
                refs.dedup();
                refs
            }

            fn ordering(&self) -> Vec<ResourceId> {
                match self {
                    $(Spec::$variant(s) => s.ordering(),)*
                }
            }

            /// The spec with its `${...}` references filled in where
            /// `resolve` knows them.
            pub fn substitute(
                &self,
                resolve: &mut dyn FnMut(&Reference) -> Option<String>,
            ) -> Spec {
                match self {
                    $(Spec::$variant(s) => Spec::$variant(s.substitute(resolve)),)*
                }
            }

            /// The live spec with what AWS did not report taken from the
            /// desired one, so a setting the emulator never echoes is not a
            /// change.
            pub fn with_unreported_from(&self, desired: &Spec) -> Spec {
                match (self, desired) {
                    $((Spec::$variant(live), Spec::$variant(wanted)) => {
                        Spec::$variant(live.with_unreported_from(wanted))
                    })*
                    _ => self.clone(),
                }
            }
        }
    };
}
with_every_kind!(define_spec);

impl Spec {
    /// Every poolside resource this one refers to: its dependencies.
    pub fn references(&self) -> Vec<ResourceId> {
        let mut refs = self.logical_references();
        refs.extend(self.ordering());
        let value = serde_json::to_value(self).expect("specs serialize");
        refs.extend(refs::references_in_json(&value).into_iter().map(|r| r.id));
        refs.retain(|r| r.kind().is_some());
        refs.sort();
        refs.dedup();
        refs
    }
}

/// A resource that exists in AWS and carries this environment's tags.
#[derive(Clone, Debug, Serialize)]
pub struct Live {
    pub id: ResourceId,
    pub physical_id: String,
    pub spec: Spec,
    /// Values worth reporting that are not desired state (a repository URI, say).
    pub attributes: BTreeMap<String, String>,
}

impl Live {
    /// The resource's ARN where discovery read one, else its AWS id (which
    /// is the ARN for the kinds named by ARN).
    pub fn arn(&self) -> &str {
        self.attributes
            .get("arn")
            .map(String::as_str)
            .unwrap_or(&self.physical_id)
    }
}

/// A resource the blueprint wants.
#[derive(Clone, Debug, Serialize)]
pub struct Desired {
    pub id: ResourceId,
    pub spec: Spec,
    /// What must be done first although the spec does not name it: AWS
    /// refuses a NAT gateway or an internet-facing load balancer until the
    /// VPC's internet gateway is attached, say.
    pub after: Vec<ResourceId>,
}

impl Desired {
    /// The same resource, made only once `first` is done.
    pub fn after(mut self, first: &ResourceId) -> Self {
        self.after.push(first.clone());
        self
    }

    /// Everything that must be done before this resource.
    pub fn dependencies(&self) -> Vec<ResourceId> {
        let mut all = self.spec.references();
        all.extend(self.after.iter().cloned());
        all.sort();
        all.dedup();
        all
    }
}

impl Spec {
    /// The name the resource gets, where the file decides it before AWS
    /// makes the resource (what a plan shows for one it creates).
    pub fn chosen_name(&self) -> Option<&str> {
        match self {
            Spec::DbParameterGroup(s) => Some(&s.name),
            Spec::DbSubnetGroup(s) => Some(&s.name),
            _ => None,
        }
    }
}
