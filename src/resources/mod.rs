//! One module per resource family. Each answers four questions: what exists
//! (discover, one describe per resource type), and how to create, update and
//! delete one resource, idempotently.

pub mod alarms;
mod aws_error;
mod context;
mod db_groups;
pub mod domain;
pub mod ecs;
mod endpoints;
mod iam;
pub mod listeners;
pub mod load_balancer;
mod logs;
mod network;
pub mod rds;
pub mod registry;
pub mod rollout;
mod route_tables;
mod scaling;
pub mod secrets;
mod security;
pub mod storage;
mod tags;
pub mod task_definitions;
mod waits;

pub(crate) use aws_error::*;
pub use context::{Context, DeletionPolicy};
use tags::{sync_ec2_tags, Names};
pub use waits::{Unwatched, WaitObserver, Waits};

use crate::model::*;
use anyhow::{anyhow, Context as _};
use std::time::Duration;

/// Names that discovery cannot learn from tags alone: S3, ECR, RDS and
/// Secrets Manager resources are looked up by name.
pub struct Lookup {
    pub bucket_name: String,
    pub repository_name: String,
    pub database: rds::DatabaseNames,
    pub secrets: Vec<(ResourceId, String)>,
    pub service: ServiceNames,
}

/// The service tier's names, all derived from the environment's name.
pub struct ServiceNames {
    pub log_group: String,
    pub roles: Vec<(ResourceId, String)>,
    pub cluster: String,
    /// The API's task definition family, and the schema task's.
    pub task_families: Vec<(ResourceId, String)>,
    pub service: String,
    pub load_balancer: load_balancer::LoadBalancerNames,
    pub alarm_prefix: String,
    pub dashboard: String,
    /// The API's name, when poolside manages it in a Route 53 zone.
    pub domain: Option<domain::DomainNames>,
}

impl ServiceNames {
    /// Application Auto Scaling's name for the service.
    pub fn scaling_resource_id(&self) -> String {
        format!("service/{}/{}", self.cluster, self.service)
    }
}

/// Every resource of this environment, found by its tags or names.
pub async fn discover(cx: &Context, lookup: &Lookup) -> anyhow::Result<Vec<Live>> {
    let (mut live, bucket, repository, secrets, service_tier) = tokio::try_join!(
        network::discover(cx),
        storage::discover(cx, &lookup.bucket_name),
        registry::discover(cx, &lookup.repository_name),
        secrets::discover(cx, &lookup.secrets),
        discover_service_tier(cx, &lookup.service),
    )?;
    // The database refers to subnets and groups by AWS id: name them first.
    let mut names = Names::default();
    // A rule set shares its group's AWS id; the group is what is referred to.
    for l in live
        .iter()
        .filter(|l| l.id.kind() != Some(Kind::SecurityGroupRules))
    {
        names.insert(&l.physical_id, &l.id);
    }
    let database = rds::discover(cx, &lookup.database, &names).await?;
    live.extend(bucket);
    live.extend(repository);
    live.extend(secrets);
    live.extend(database);
    live.extend(service_tier);
    Ok(live)
}

async fn discover_service_tier(cx: &Context, names: &ServiceNames) -> anyhow::Result<Vec<Live>> {
    let scaling_id = names.scaling_resource_id();
    let service = async {
        // While an autoscaler owns the service's count, the count is not drift.
        let scaling = scaling::discover(cx, &scaling_id).await?;
        let service = ecs::discover_service(
            cx,
            &ResourceId::new(Kind::Service, "api"),
            &names.cluster,
            &names.service,
            !scaling.is_empty(),
        )
        .await?;
        anyhow::Ok([scaling, service].concat())
    };
    let log_group_id = ResourceId::new(Kind::LogGroup, "api");
    let cluster_id = ResourceId::new(Kind::Cluster, "main");
    let tasks =
        async {
            let found =
                futures::future::try_join_all(names.task_families.iter().map(|(id, family)| {
                    task_definitions::discover_task_definition(cx, id, family)
                }))
                .await?;
            anyhow::Ok(found.concat())
        };
    let domain = async {
        match &names.domain {
            Some(names) => domain::discover(cx, names).await,
            None => Ok(vec![]),
        }
    };
    let (roles, log_group, cluster, task, load_balancer, alarms, dashboard, service, domain) = tokio::try_join!(
        iam::discover(cx, &names.roles),
        logs::discover(cx, &log_group_id, &names.log_group),
        ecs::discover_cluster(cx, &cluster_id, &names.cluster),
        tasks,
        load_balancer::discover(cx, &names.load_balancer),
        alarms::discover(cx, &names.alarm_prefix),
        alarms::discover_dashboard(cx, &names.dashboard),
        service,
        domain,
    )?;
    let mut live = [
        roles,
        log_group,
        cluster,
        task,
        load_balancer,
        alarms,
        dashboard,
        service,
        domain,
    ]
    .concat();
    ecs::orient_target_groups(&mut live);
    task_definitions::read_running_task_definition(cx, &mut live).await?;
    Ok(live)
}

pub async fn create(
    cx: &Context,
    id: &ResourceId,
    spec: &Spec,
    waits: &Waits<'_>,
) -> anyhow::Result<String> {
    let spec = &cx
        .fill_references(spec)
        .with_context(|| format!("creating {id}"))?;
    let physical_id = match spec {
        Spec::Vpc(s) => network::create_vpc(cx, s).await,
        Spec::Subnet(s) => network::create_subnet(cx, s).await,
        Spec::InternetGateway(s) => network::create_internet_gateway(cx, s).await,
        Spec::ElasticIp(s) => network::create_elastic_ip(cx, s).await,
        Spec::NatGateway(s) => network::create_nat_gateway(cx, s).await,
        Spec::RouteTable(s) => route_tables::create_route_table(cx, s).await,
        Spec::SecurityGroup(s) => security::create_group(cx, s).await,
        Spec::SecurityGroupRules(s) => security::reconcile_rules(cx, s).await,
        Spec::VpcEndpoint(s) => endpoints::create(cx, s).await,
        Spec::Bucket(s) => storage::create(cx, id, s).await,
        Spec::Repository(s) => registry::create(cx, id, s).await,
        Spec::Secret(s) => secrets::create(cx, id, s).await,
        Spec::DbSubnetGroup(s) => db_groups::create_subnet_group(cx, s).await,
        Spec::DbParameterGroup(s) => db_groups::create_parameter_group(cx, s).await,
        Spec::DbInstance(s) => rds::create_instance(cx, id, s, waits).await,
        Spec::LogGroup(s) => logs::create(cx, id, s).await,
        Spec::Role(s) => iam::create(cx, id, s).await,
        Spec::Cluster(s) => ecs::create_cluster(cx, s).await,
        Spec::TaskDefinition(s) => task_definitions::register_task_definition(cx, id, s).await,
        Spec::LoadBalancer(s) => load_balancer::create_load_balancer(cx, id, s).await,
        Spec::TargetGroup(s) => load_balancer::create_target_group(cx, id, s).await,
        Spec::Listener(s) => listeners::create_listener(cx, s).await,
        Spec::ListenerRule(s) => listeners::create_rule(cx, s).await,
        Spec::Service(s) => ecs::create_service(cx, s).await,
        Spec::Scaling(s) => scaling::put(cx, s).await,
        Spec::Alarm(s) => alarms::put(cx, s, Some(id)).await,
        Spec::Dashboard(s) => alarms::put_dashboard(cx, s).await,
        Spec::Certificate(s) => domain::create_certificate(cx, id, s, waits).await,
        Spec::DnsRecord(s) => domain::put_record(cx, s, waits).await,
    }
    .with_context(|| format!("creating {id}"))?;
    cx.record(id, &physical_id);
    Ok(physical_id)
}

pub async fn update(
    cx: &Context,
    live: &Live,
    desired: &Spec,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    let id = &live.physical_id;
    let arn = live.attributes.get("arn").map(String::as_str).unwrap_or(id);
    let desired = &cx
        .fill_references(desired)
        .with_context(|| format!("updating {} ({id})", live.id))?;
    match (&live.spec, desired) {
        (Spec::Vpc(old), Spec::Vpc(new)) => network::update_vpc(cx, id, old, new).await,
        (Spec::Subnet(old), Spec::Subnet(new)) => sync_ec2_tags(cx, id, &old.tags, &new.tags).await,
        (Spec::InternetGateway(old), Spec::InternetGateway(new)) => {
            network::update_internet_gateway(cx, id, old, new).await
        }
        (Spec::ElasticIp(old), Spec::ElasticIp(new)) => {
            sync_ec2_tags(cx, id, &old.tags, &new.tags).await
        }
        (Spec::NatGateway(old), Spec::NatGateway(new)) => {
            sync_ec2_tags(cx, id, &old.tags, &new.tags).await
        }
        (Spec::RouteTable(old), Spec::RouteTable(new)) => {
            route_tables::update_route_table(cx, id, old, new).await
        }
        (Spec::SecurityGroup(old), Spec::SecurityGroup(new)) => {
            sync_ec2_tags(cx, id, &old.tags, &new.tags).await
        }
        (Spec::SecurityGroupRules(_), Spec::SecurityGroupRules(new)) => {
            security::reconcile_rules(cx, new).await.map(drop)
        }
        (Spec::VpcEndpoint(old), Spec::VpcEndpoint(new)) => {
            endpoints::update(cx, id, old, new).await
        }
        (Spec::Bucket(old), Spec::Bucket(new)) => storage::update(cx, old, new).await,
        (Spec::Repository(old), Spec::Repository(new)) => registry::update(cx, id, old, new).await,
        (Spec::Secret(old), Spec::Secret(new)) => secrets::update(cx, arn, old, new).await,
        (Spec::DbSubnetGroup(old), Spec::DbSubnetGroup(new)) => {
            db_groups::update_subnet_group(cx, arn, old, new).await
        }
        (Spec::DbParameterGroup(old), Spec::DbParameterGroup(new)) => {
            db_groups::update_parameter_group(cx, arn, old, new).await
        }
        (Spec::DbInstance(old), Spec::DbInstance(new)) => {
            rds::update_instance(cx, &live.id, arn, old, new, waits).await
        }
        (Spec::LogGroup(old), Spec::LogGroup(new)) => logs::update(cx, arn, old, new).await,
        (Spec::Role(old), Spec::Role(new)) => iam::update(cx, old, new).await,
        (Spec::Cluster(old), Spec::Cluster(new)) => ecs::update_cluster(cx, id, old, new).await,
        (Spec::TaskDefinition(_), Spec::TaskDefinition(new)) => {
            task_definitions::register_task_definition(cx, &live.id, new)
                .await
                .map(drop)
        }
        (Spec::LoadBalancer(old), Spec::LoadBalancer(new)) => {
            load_balancer::update_load_balancer(cx, id, old, new).await
        }
        (Spec::TargetGroup(old), Spec::TargetGroup(new)) => {
            load_balancer::update_target_group(cx, id, old, new).await
        }
        (Spec::Listener(_), Spec::Listener(new)) => listeners::update_listener(cx, id, new).await,
        (Spec::ListenerRule(old), Spec::ListenerRule(new)) => {
            listeners::update_rule(cx, id, old, new).await
        }
        (Spec::Service(old), Spec::Service(new)) => {
            let swapped = live.attributes.contains_key(ecs::TARGET_GROUPS_SWAPPED);
            ecs::update_service(cx, id, old, new, swapped, waits).await
        }
        (Spec::Scaling(_), Spec::Scaling(new)) => scaling::put(cx, new).await.map(drop),
        (Spec::Alarm(_), Spec::Alarm(new)) => alarms::put(cx, new, None).await.map(drop),
        (Spec::Dashboard(_), Spec::Dashboard(new)) => {
            alarms::put_dashboard(cx, new).await.map(drop)
        }
        (Spec::Certificate(old), Spec::Certificate(new)) => {
            domain::update_certificate(cx, id, old, new).await
        }
        (Spec::DnsRecord(_), Spec::DnsRecord(new)) => {
            domain::put_record(cx, new, waits).await.map(drop)
        }
        _ => Err(anyhow!(
            "the live resource is of another kind than the desired one"
        )),
    }
    .with_context(|| format!("updating {} ({id})", live.id))
}

/// How long a delete retries while AWS says something still uses the
/// resource: the ENIs of a deleted load balancer or task linger for minutes.
const IN_USE_LIMIT: Duration = Duration::from_secs(15 * 60);

/// What AWS answers while something being deleted still holds the resource:
/// EC2's DependencyViolation (subnets, groups, gateways, the VPC), an Elastic
/// IP still mapped, a target group still attached, a cluster still draining.
const IN_USE_CODES: [&str; 7] = [
    "DependencyViolation",
    "InvalidIPAddress.InUse",
    "ResourceInUse",
    "ClusterContainsServicesException",
    "ClusterContainsTasksException",
    // An RDS instance still `deleting` holds its groups.
    "InvalidDBSubnetGroupStateFault",
    "InvalidDBParameterGroupState",
];

fn still_in_use(err: &anyhow::Error) -> bool {
    let text = format!("{err:#}");
    IN_USE_CODES.iter().any(|code| text.contains(code))
}

/// Deletes one resource, retrying with bounded backoff while AWS says it is
/// still in use; on giving up, names what still uses it where EC2 can say.
pub async fn delete(cx: &Context, live: &Live, waits: &Waits<'_>) -> anyhow::Result<()> {
    let retrying = async {
        let mut pause = Duration::from_secs(5);
        let started = tokio::time::Instant::now();
        loop {
            match delete_once(cx, live, waits).await {
                Err(err) if still_in_use(&err) && started.elapsed() + pause <= IN_USE_LIMIT => {
                    tracing::info!(id = %live.id, error = %format!("{err:#}"), "still in use; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
                Err(err) if still_in_use(&err) => {
                    let users = network::interfaces_using(cx, &live.spec, &live.physical_id).await;
                    let named = if users.is_empty() {
                        String::new()
                    } else {
                        format!("; network interfaces still in it: {}", users.join(", "))
                    };
                    return Err(err.context(format!(
                        "{} is still in use after {} minutes{named}",
                        live.id,
                        IN_USE_LIMIT.as_secs() / 60
                    )));
                }
                other => return other,
            }
        }
    };
    waits
        .report(&live.id, "nothing uses it any more", IN_USE_LIMIT, retrying)
        .await?
}

async fn delete_once(cx: &Context, live: &Live, waits: &Waits<'_>) -> anyhow::Result<()> {
    let id = &live.physical_id;
    match &live.spec {
        Spec::Vpc(_) => network::delete_vpc(cx, id).await,
        Spec::Subnet(_) => network::delete_subnet(cx, id).await,
        Spec::InternetGateway(s) => network::delete_internet_gateway(cx, id, s).await,
        Spec::ElasticIp(_) => network::release_elastic_ip(cx, id).await,
        Spec::NatGateway(_) => network::delete_nat_gateway(cx, id).await,
        Spec::RouteTable(_) => route_tables::delete_route_table(cx, id).await,
        Spec::SecurityGroup(_) => security::delete_group(cx, id).await,
        Spec::SecurityGroupRules(_) => security::revoke_all_rules(cx, id).await,
        Spec::VpcEndpoint(_) => endpoints::delete(cx, id).await,
        Spec::Bucket(s) => storage::delete(cx, &s.name).await,
        Spec::Repository(s) => registry::delete(cx, &s.name).await,
        Spec::Secret(_) => secrets::delete(cx, id).await,
        Spec::DbSubnetGroup(_) => db_groups::delete_subnet_group(cx, id).await,
        Spec::DbParameterGroup(_) => db_groups::delete_parameter_group(cx, id).await,
        Spec::DbInstance(_) => rds::delete_instance(cx, &live.id, id, waits).await,
        Spec::LogGroup(s) => logs::delete(cx, &s.name).await,
        Spec::Role(s) => iam::delete(cx, s).await,
        Spec::Cluster(_) => ecs::delete_cluster(cx, id).await,
        Spec::TaskDefinition(s) => task_definitions::delete_task_definition(cx, &s.family).await,
        Spec::LoadBalancer(_) => load_balancer::delete_load_balancer(cx, id).await,
        Spec::TargetGroup(_) => load_balancer::delete_target_group(cx, id).await,
        Spec::Listener(_) => listeners::delete_listener(cx, id).await,
        Spec::ListenerRule(_) => listeners::delete_rule(cx, id).await,
        Spec::Service(s) => ecs::delete_service(cx, &live.id, s, waits).await,
        Spec::Scaling(_) => scaling::delete(cx, id).await,
        Spec::Alarm(_) => alarms::delete(cx, id).await,
        Spec::Dashboard(_) => alarms::delete_dashboard(cx, id).await,
        Spec::Certificate(s) => domain::delete_certificate(cx, id, s).await,
        Spec::DnsRecord(s) => domain::delete_record(cx, s).await,
    }
    .with_context(|| format!("deleting {} ({id})", live.id))
}

/// poolside's own tags: what makes a resource part of an environment.
const OWN_TAGS: [&str; 3] = [TAG_ENV, TAG_ID, "poolside:tier"];

/// Leaves one live copy of a duplicated resource out of the environment by
/// removing poolside's tags from it; nothing else about it changes. Only
/// kinds found by tag can be duplicated (those found by name cannot).
pub async fn forget(cx: &Context, id: &ResourceId, aws_id: &str) -> anyhow::Result<()> {
    let keys: Vec<String> = OWN_TAGS.iter().map(|k| k.to_string()).collect();
    match id.kind() {
        Some(Kind::ListenerRule) => cx
            .clients
            .elb
            .remove_tags()
            .resource_arns(aws_id)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .aws("RemoveTags")
            .map(drop),
        Some(kind) if kind.service() == crate::model::AwsService::Ec2 => cx
            .clients
            .ec2
            .delete_tags()
            .resources(aws_id)
            .set_tags(Some(
                keys.iter()
                    .map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build())
                    .collect(),
            ))
            .send()
            .await
            .aws("DeleteTags")
            .map(drop),
        _ => Err(anyhow!(
            "{id} is found by its name, which AWS keeps unique: it cannot have two copies"
        )),
    }
    .with_context(|| format!("forgetting {aws_id} ({id})"))
}

/// What unit tests of AWS error paths share: a context whose clients they
/// replace with mocked ones.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::aws::Clients;

    pub fn context(with: impl FnOnce(&mut Clients)) -> Context {
        let mut clients = Clients::offline();
        with(&mut clients);
        let mut cx = Context::new(clients, "pilot", "eu-west-1");
        cx.emulator = false;
        cx
    }

    /// The XML error body of the Query-protocol services (IAM, RDS, EC2, ELB).
    pub fn query_error(code: &str, message: &str) -> String {
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>test</RequestId></ErrorResponse>"
        )
    }

    /// The JSON error body of the JSON-protocol services (ECS, ECR).
    pub fn json_error(code: &str, message: &str) -> String {
        serde_json::json!({ "__type": code, "message": message }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Clients;
    use crate::engine::events::{Event, EventSink};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    struct Recorded(Mutex<Vec<Event>>);

    impl EventSink for Recorded {
        fn emit(&self, event: Event) {
            self.0.lock().unwrap().push(event);
        }
    }

    fn ec2_error(code: &str, message: &str) -> String {
        format!("<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>r</RequestID></Response>")
    }

    fn subnet() -> Live {
        Live {
            id: ResourceId::new(Kind::Subnet, "private-eu-west-1a"),
            physical_id: "subnet-0123".into(),
            spec: Spec::Subnet(SubnetSpec {
                vpc: ResourceId::new(Kind::Vpc, "main"),
                cidr: "10.0.16.0/20".into(),
                availability_zone: "eu-west-1a".into(),
                tags: Tags::new(),
            }),
            attributes: BTreeMap::new(),
        }
    }

    /// A load balancer's network interfaces outlive it by minutes: the
    /// subnet's delete is retried until AWS lets it go.
    #[tokio::test(start_paused = true)]
    async fn a_subnet_still_in_use_is_deleted_once_aws_releases_it() {
        use aws_smithy_mocks::mock;
        let busy = mock!(aws_sdk_ec2::Client::delete_subnet)
            .sequence()
            .http_status(
                400,
                Some(ec2_error(
                    "DependencyViolation",
                    "The subnet 'subnet-0123' has dependencies and cannot be deleted.",
                )),
            )
            .times(3)
            .output(|| aws_sdk_ec2::operation::delete_subnet::DeleteSubnetOutput::builder().build())
            .build();
        let cx = testing::context(|c| c.ec2 = crate::mocked!(aws_sdk_ec2, [&busy]));
        let sink = Recorded(Mutex::default());
        delete(&cx, &subnet(), &Waits::new(&sink)).await.unwrap();
        assert_eq!(busy.num_calls(), 4);
    }

    /// When AWS never lets go, the error names what still holds the subnet.
    #[tokio::test(start_paused = true)]
    async fn giving_up_on_a_subnet_names_the_interfaces_still_in_it() {
        use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
        use aws_sdk_ec2::types::NetworkInterface;
        use aws_smithy_mocks::mock;
        let busy = mock!(aws_sdk_ec2::Client::delete_subnet)
            .sequence()
            .http_status(
                400,
                Some(ec2_error(
                    "DependencyViolation",
                    "The subnet 'subnet-0123' has dependencies and cannot be deleted.",
                )),
            )
            .repeatedly()
            .build();
        let interfaces = mock!(aws_sdk_ec2::Client::describe_network_interfaces)
            .match_requests(|r| {
                r.filters()
                    .iter()
                    .any(|f| f.name() == Some("subnet-id") && f.values() == ["subnet-0123"])
            })
            .then_output(|| {
                DescribeNetworkInterfacesOutput::builder()
                    .network_interfaces(
                        NetworkInterface::builder()
                            .network_interface_id("eni-0abc")
                            .description("ELB app/poolside-pilot/50dc6c495c0c9188")
                            .build(),
                    )
                    .build()
            });
        let cx = testing::context(|c| {
            c.ec2 = crate::mocked!(aws_sdk_ec2, [&busy, &interfaces], MatchAny)
        });
        let sink = Recorded(Mutex::default());
        let err = delete(&cx, &subnet(), &Waits::new(&sink))
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("is still in use after 15 minutes"), "{text}");
        assert!(
            text.contains("eni-0abc (ELB app/poolside-pilot/50dc6c495c0c9188)"),
            "{text}"
        );
        assert!(text.contains("DependencyViolation"), "{text}");
        // It said what it waited for while it waited.
        assert!(sink
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::StepWaiting { .. })));
    }

    /// AWS's code and message, not the SDK's debug dump of the response.
    #[tokio::test]
    async fn an_aws_error_reads_as_its_code_and_message() {
        use aws_smithy_mocks::mock;
        let refused = mock!(aws_sdk_ec2::Client::describe_vpcs)
            .sequence()
            .http_status(
                403,
                Some("<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>r</RequestID></Response>".into()),
            )
            .build();
        let ec2 = crate::mocked!(aws_sdk_ec2, [&refused]);
        let err = ec2
            .describe_vpcs()
            .send()
            .await
            .aws("DescribeVpcs")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "DescribeVpcs: UnauthorizedOperation: You are not authorized to perform this operation."
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_reads_as_its_cause() {
        let ec2 = Clients::offline().ec2;
        let err = ec2
            .describe_vpcs()
            .send()
            .await
            .aws("DescribeVpcs")
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("DescribeVpcs: could not reach the endpoint ("),
            "{text}"
        );
        assert!(text.contains("onnection refused"), "{text}");
        assert!(
            !text.contains("SdkBody") && !text.contains("DispatchFailure"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_reports_every_fifteen_seconds_and_returns_what_it_waited_for() {
        let events = Recorded(Mutex::default());
        let waits = Waits::new(&events);
        let id = ResourceId::new(Kind::DbInstance, "main");
        let limit = Duration::from_secs(3600);
        let done = waits
            .report(&id, "available", limit, async {
                tokio::time::sleep(Duration::from_secs(40)).await;
                "ready"
            })
            .await
            .unwrap();
        assert_eq!(done, "ready");
        let elapsed: Vec<u64> = events
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                Event::StepWaiting { elapsed_s, .. } => *elapsed_s,
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        assert_eq!(elapsed, [15, 30]);
    }
}
