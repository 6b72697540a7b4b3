//! One module per resource family. Each answers four questions: what exists
//! (discover, one describe per resource type), and how to create, update and
//! delete one resource, idempotently.

pub mod alarms;
mod aws_error;
mod context;
pub mod domain;
pub mod ecs;
mod iam;
pub mod load_balancer;
mod logs;
pub mod network;
pub mod rds;
pub mod registry;
mod resource;
mod scaling;
pub mod secrets;
pub mod spec;
pub mod storage;
mod tags;
mod waits;

pub(crate) use aws_error::*;
pub use context::{Context, DeletionPolicy};
use tags::Names;
pub use waits::{poll, Unwatched, WaitObserver, Waits};

use crate::model::*;
use anyhow::{anyhow, Context as _};
use resource::Resource;
use spec::*;
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
    // Each family's reads are boxed: joined, the SDK's futures would not
    // fit on the main thread's stack of a debug build.
    let (mut live, database, bucket, repository, secrets, service_tier) = tokio::try_join!(
        Box::pin(network::discover(cx)),
        Box::pin(rds::describe(cx, &lookup.database)),
        Box::pin(storage::discover(cx, &lookup.bucket_name)),
        Box::pin(registry::discover(cx, &lookup.repository_name)),
        Box::pin(secrets::discover(cx, &lookup.secrets)),
        Box::pin(discover_service_tier(cx, &lookup.service)),
    )?;
    // The database refers to subnets and groups by AWS id: name them.
    let mut names = Names::default();
    // A rule set shares its group's AWS id; the group is what is referred to.
    for l in live
        .iter()
        .filter(|l| l.id.kind() != Some(Kind::SecurityGroupRules))
    {
        names.insert(&l.physical_id, &l.id);
    }
    let database = database.observe(&lookup.database, &names);
    live.extend(bucket);
    live.extend(repository);
    live.extend(secrets);
    live.extend(database);
    live.extend(service_tier);
    Ok(live)
}

async fn discover_service_tier(cx: &Context, names: &ServiceNames) -> anyhow::Result<Vec<Live>> {
    let scaling_id = names.scaling_resource_id();
    let tasks = async {
        let found =
            futures::future::try_join_all(names.task_families.iter().map(|(id, family)| {
                ecs::task_definitions::discover_task_definition(cx, id, family)
            }))
            .await?;
        anyhow::Ok(found.concat())
    };
    // The service, its scaling and its task definitions are asked for at
    // once; the revision the service runs, when not the family's latest, is
    // read as soon as both are known.
    let service_and_tasks = async {
        let (scaling, service, tasks) = tokio::try_join!(
            scaling::discover(cx, &scaling_id),
            ecs::describe_service(cx, &names.cluster, &names.service),
            tasks,
        )?;
        // While an autoscaler owns the service's count, the count is not drift.
        let service = ecs::observe_service(
            cx,
            &ResourceId::new(Kind::Service, "api"),
            &names.service,
            service,
            !scaling.is_empty(),
        )?;
        let mut live = [scaling, service, tasks].concat();
        ecs::task_definitions::read_running_task_definition(cx, &mut live).await?;
        anyhow::Ok(live)
    };
    let log_group_id = ResourceId::new(Kind::LogGroup, "api");
    let cluster_id = ResourceId::new(Kind::Cluster, "main");
    let domain = async {
        match &names.domain {
            Some(names) => domain::discover(cx, names).await,
            None => Ok(vec![]),
        }
    };
    let (roles, log_group, cluster, load_balancer, alarms, dashboard, service_and_tasks, domain) =
        tokio::try_join!(
            Box::pin(iam::discover(cx, &names.roles)),
            Box::pin(logs::discover(cx, &log_group_id, &names.log_group)),
            Box::pin(ecs::discover_cluster(cx, &cluster_id, &names.cluster)),
            Box::pin(load_balancer::discover(cx, &names.load_balancer)),
            Box::pin(alarms::discover(cx, &names.alarm_prefix)),
            Box::pin(alarms::discover_dashboard(cx, &names.dashboard)),
            Box::pin(service_and_tasks),
            Box::pin(domain),
        )?;
    let mut live = [
        roles,
        log_group,
        cluster,
        load_balancer,
        alarms,
        dashboard,
        service_and_tasks,
        domain,
    ]
    .concat();
    ecs::orient_target_groups(&mut live);
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
    let physical_id = create_spec(spec, cx, id, waits)
        .await
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
    let desired = &cx
        .fill_references(desired)
        .with_context(|| format!("updating {} ({id})", live.id))?;
    update_spec(desired, cx, live, waits)
        .await
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
                    pause = (pause * 2).min(Duration::from_secs(15));
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
    delete_spec(cx, live, waits)
        .await
        .with_context(|| format!("deleting {} ({})", live.id, live.physical_id))
}

/// Sends each kind to its family's [`Resource`] impl.
macro_rules! dispatch_to_families {
    ($($variant:ident($spec:ty)),* $(,)?) => {
        async fn create_spec(
            spec: &Spec,
            cx: &Context,
            id: &ResourceId,
            waits: &Waits<'_>,
        ) -> anyhow::Result<String> {
            match spec {
                $(Spec::$variant(s) => s.create(cx, id, waits).await,)*
            }
        }

        async fn update_spec(
            desired: &Spec,
            cx: &Context,
            live: &Live,
            waits: &Waits<'_>,
        ) -> anyhow::Result<()> {
            match (&live.spec, desired) {
                $((Spec::$variant(old), Spec::$variant(new)) => {
                    new.update(cx, live, old, waits).await
                })*
                _ => Err(anyhow!(
                    "the live resource is of another kind than the desired one"
                )),
            }
        }

        async fn delete_spec(cx: &Context, live: &Live, waits: &Waits<'_>) -> anyhow::Result<()> {
            match &live.spec {
                $(Spec::$variant(s) => s.delete(cx, live, waits).await,)*
            }
        }
    };
}
with_every_kind!(dispatch_to_families);

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
