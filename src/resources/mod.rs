//! One module per resource family. Each answers four questions: what exists
//! (discover, one describe per resource type), and how to create, update and
//! delete one resource, idempotently.

pub mod alarms;
pub mod domain;
pub mod ecs;
mod endpoints;
mod iam;
pub mod load_balancer;
mod logs;
mod network;
pub mod rds;
pub mod registry;
pub mod rollout;
mod scaling;
pub mod secrets;
mod security;
pub mod storage;

use crate::aws::Clients;
use crate::engine::events::{Event, EventSink};
use crate::model::*;
use anyhow::{anyhow, Context as _};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// What deleting a stateful resource may do. The default keeps data: a
/// bucket or repository that holds anything is not deleted, and an instance
/// leaves a final snapshot.
#[derive(Clone, Copy, Debug)]
pub struct DeletionPolicy {
    /// Empty a bucket (every version and delete marker) and a repository
    /// (every image) before deleting it.
    pub delete_data: bool,
    pub final_snapshot: bool,
}

impl Default for DeletionPolicy {
    fn default() -> Self {
        DeletionPolicy {
            delete_data: false,
            final_snapshot: true,
        }
    }
}

/// What every step needs: the clients, the environment, and the map from
/// logical ids to AWS ids, seeded by discovery and grown by creates.
pub struct Context {
    pub clients: Clients,
    pub environment: String,
    pub region: String,
    /// The target is an emulator (moto, LocalStack): no image pulls, no tasks.
    pub emulator: bool,
    /// What a delete may take with it; `destroy` sets it from its flags.
    pub deletion: DeletionPolicy,
    physical_ids: Mutex<BTreeMap<ResourceId, String>>,
    attributes: Mutex<BTreeMap<ResourceId, BTreeMap<String, String>>>,
    /// Secret values read in this run, by ARN: poolside never changes a
    /// value after creating it, so one read serves the schema step and the
    /// local PostgREST. Kept in memory only; never printed.
    secret_values: Mutex<BTreeMap<String, String>>,
}

impl Context {
    pub fn new(clients: Clients, environment: &str, region: &str) -> Self {
        Context {
            clients,
            environment: environment.to_string(),
            region: region.to_string(),
            emulator: false,
            deletion: DeletionPolicy::default(),
            physical_ids: Mutex::default(),
            attributes: Mutex::default(),
            secret_values: Mutex::default(),
        }
    }

    pub fn cached_secret_value(&self, arn: &str) -> Option<String> {
        self.secret_values.lock().unwrap().get(arn).cloned()
    }

    pub fn cache_secret_value(&self, arn: &str, value: &str) {
        self.secret_values
            .lock()
            .unwrap()
            .insert(arn.to_string(), value.to_string());
    }

    /// Remembers what discovery found, so later steps can refer to it.
    pub fn remember(&self, live: &[Live]) {
        for l in live {
            self.record(&l.id, &l.physical_id);
            for (k, v) in &l.attributes {
                self.record_attribute(&l.id, k, v);
            }
        }
    }

    pub fn record(&self, id: &ResourceId, physical_id: &str) {
        self.physical_ids
            .lock()
            .unwrap()
            .insert(id.clone(), physical_id.to_string());
    }

    pub fn record_attribute(&self, id: &ResourceId, key: &str, value: &str) {
        self.attributes
            .lock()
            .unwrap()
            .entry(id.clone())
            .or_default()
            .insert(key.to_string(), value.to_string());
    }

    pub fn physical_id(&self, id: &ResourceId) -> Option<String> {
        self.physical_ids.lock().unwrap().get(id).cloned()
    }

    /// The AWS ids of every resource of one kind that discovery found or this run made.
    pub fn physical_ids_of(&self, kind: Kind) -> Vec<String> {
        self.physical_ids
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id.kind() == Some(kind))
            .map(|(_, physical)| physical.clone())
            .collect()
    }

    /// One attribute of every resource of a kind, by AWS id.
    pub fn attributes_of(&self, kind: Kind, key: &str) -> Vec<(String, String)> {
        let attributes = self.attributes.lock().unwrap();
        self.physical_ids
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id.kind() == Some(kind))
            .filter_map(|(id, physical)| {
                Some((physical.clone(), attributes.get(id)?.get(key)?.clone()))
            })
            .collect()
    }

    pub fn attribute(&self, id: &ResourceId, key: &str) -> Option<String> {
        self.attributes.lock().unwrap().get(id)?.get(key).cloned()
    }

    /// The spec with every `${...}` reference filled in from what discovery
    /// found and this run created; an error names what does not exist yet.
    pub fn fill_references(&self, spec: &Spec) -> anyhow::Result<Spec> {
        let mut missing = Vec::new();
        let filled = spec.substitute(&mut |r| {
            let value = match &r.attribute {
                None => self.physical_id(&r.id),
                Some(attribute) => self.attribute(&r.id, attribute),
            };
            if value.is_none() {
                missing.push(r.to_string());
            }
            value
        });
        if !missing.is_empty() {
            return Err(anyhow!(
                "{} does not exist yet (it failed or was skipped earlier in this run)",
                missing.join(", ")
            ));
        }
        Ok(filled)
    }

    /// The AWS id behind a reference: ours from the map, anything else as written.
    pub fn resolve(&self, reference: &ResourceId) -> anyhow::Result<String> {
        if reference.kind().is_none() {
            return Ok(reference.0.clone());
        }
        self.physical_id(reference).ok_or_else(|| {
            anyhow!("{reference} does not exist yet (it failed or was skipped earlier in this run)")
        })
    }
}

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
    let tasks = async {
        let found = futures::future::try_join_all(
            names
                .task_families
                .iter()
                .map(|(id, family)| ecs::discover_task_definition(cx, id, family)),
        )
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
    ecs::read_running_task_definition(cx, &mut live).await?;
    Ok(live)
}

/// Long waits (an RDS instance becoming available) report how long they have
/// been waiting, so that ten quiet minutes do not look like a hang.
pub struct Waits<'a> {
    events: &'a dyn EventSink,
}

/// How often a long wait says it is still waiting.
const WAIT_REPORT_EVERY: Duration = Duration::from_secs(15);

impl<'a> Waits<'a> {
    pub fn new(events: &'a dyn EventSink) -> Self {
        Waits { events }
    }

    /// Waits for `wait`, reporting every 15 s; gives up with [`Interrupted`]
    /// on Ctrl-C (the resource goes on changing in AWS; the next run finds it).
    ///
    /// [`Interrupted`]: crate::interrupt::Interrupted
    /// Says at once what is being waited for now (a deployment's new stage).
    pub fn note(&self, id: &ResourceId, until: &str, elapsed: Duration, limit: Duration) {
        self.events.emit(Event::StepWaiting {
            id: id.clone(),
            until: until.to_string(),
            elapsed_s: elapsed.as_secs(),
            limit_s: limit.as_secs(),
        });
    }

    pub async fn report<T>(
        &self,
        id: &ResourceId,
        until: &str,
        limit: Duration,
        wait: impl std::future::Future<Output = T>,
    ) -> Result<T, crate::interrupt::Interrupted> {
        let started = tokio::time::Instant::now();
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + WAIT_REPORT_EVERY,
            WAIT_REPORT_EVERY,
        );
        tokio::pin!(wait);
        loop {
            tokio::select! {
                done = &mut wait => return Ok(done),
                _ = crate::interrupt::wait() => return Err(crate::interrupt::Interrupted),
                _ = ticks.tick() => self.events.emit(Event::StepWaiting {
                    id: id.clone(),
                    until: until.to_string(),
                    elapsed_s: started.elapsed().as_secs(),
                    limit_s: limit.as_secs(),
                }),
            }
        }
    }
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
        Spec::RouteTable(s) => network::create_route_table(cx, s).await,
        Spec::SecurityGroup(s) => security::create_group(cx, s).await,
        Spec::SecurityGroupRules(s) => security::reconcile_rules(cx, s).await,
        Spec::VpcEndpoint(s) => endpoints::create(cx, s).await,
        Spec::Bucket(s) => storage::create(cx, id, s).await,
        Spec::Repository(s) => registry::create(cx, id, s).await,
        Spec::Secret(s) => secrets::create(cx, id, s).await,
        Spec::DbSubnetGroup(s) => rds::create_subnet_group(cx, s).await,
        Spec::DbParameterGroup(s) => rds::create_parameter_group(cx, s).await,
        Spec::DbInstance(s) => rds::create_instance(cx, id, s, waits).await,
        Spec::LogGroup(s) => logs::create(cx, id, s).await,
        Spec::Role(s) => iam::create(cx, id, s).await,
        Spec::Cluster(s) => ecs::create_cluster(cx, s).await,
        Spec::TaskDefinition(s) => ecs::register_task_definition(cx, id, s).await,
        Spec::LoadBalancer(s) => load_balancer::create_load_balancer(cx, id, s).await,
        Spec::TargetGroup(s) => load_balancer::create_target_group(cx, id, s).await,
        Spec::Listener(s) => load_balancer::create_listener(cx, s).await,
        Spec::ListenerRule(s) => load_balancer::create_rule(cx, s).await,
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
            network::update_route_table(cx, id, old, new).await
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
            rds::update_subnet_group(cx, arn, old, new).await
        }
        (Spec::DbParameterGroup(old), Spec::DbParameterGroup(new)) => {
            rds::update_parameter_group(cx, arn, old, new).await
        }
        (Spec::DbInstance(old), Spec::DbInstance(new)) => {
            rds::update_instance(cx, &live.id, arn, old, new, waits).await
        }
        (Spec::LogGroup(old), Spec::LogGroup(new)) => logs::update(cx, arn, old, new).await,
        (Spec::Role(old), Spec::Role(new)) => iam::update(cx, old, new).await,
        (Spec::Cluster(old), Spec::Cluster(new)) => ecs::update_cluster(cx, id, old, new).await,
        (Spec::TaskDefinition(_), Spec::TaskDefinition(new)) => {
            ecs::register_task_definition(cx, &live.id, new)
                .await
                .map(drop)
        }
        (Spec::LoadBalancer(old), Spec::LoadBalancer(new)) => {
            load_balancer::update_load_balancer(cx, id, old, new).await
        }
        (Spec::TargetGroup(old), Spec::TargetGroup(new)) => {
            load_balancer::update_target_group(cx, id, old, new).await
        }
        (Spec::Listener(_), Spec::Listener(new)) => {
            load_balancer::update_listener(cx, id, new).await
        }
        (Spec::ListenerRule(old), Spec::ListenerRule(new)) => {
            load_balancer::update_rule(cx, id, old, new).await
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
        Spec::RouteTable(_) => network::delete_route_table(cx, id).await,
        Spec::SecurityGroup(_) => security::delete_group(cx, id).await,
        Spec::SecurityGroupRules(_) => security::revoke_all_rules(cx, id).await,
        Spec::VpcEndpoint(_) => endpoints::delete(cx, id).await,
        Spec::Bucket(s) => storage::delete(cx, &s.name).await,
        Spec::Repository(s) => registry::delete(cx, &s.name).await,
        Spec::Secret(_) => secrets::delete(cx, id).await,
        Spec::DbSubnetGroup(_) => rds::delete_subnet_group(cx, id).await,
        Spec::DbParameterGroup(_) => rds::delete_parameter_group(cx, id).await,
        Spec::DbInstance(_) => rds::delete_instance(cx, &live.id, id, waits).await,
        Spec::LogGroup(s) => logs::delete(cx, &s.name).await,
        Spec::Role(s) => iam::delete(cx, s).await,
        Spec::Cluster(_) => ecs::delete_cluster(cx, id).await,
        Spec::TaskDefinition(s) => ecs::delete_task_definition(cx, &s.family).await,
        Spec::LoadBalancer(_) => load_balancer::delete_load_balancer(cx, id).await,
        Spec::TargetGroup(_) => load_balancer::delete_target_group(cx, id).await,
        Spec::Listener(_) => load_balancer::delete_listener(cx, id).await,
        Spec::ListenerRule(_) => load_balancer::delete_rule(cx, id).await,
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

/// Turns an SDK error into one that says which call failed and what AWS said.
pub(crate) trait AwsResultExt<T> {
    fn aws(self, operation: &str) -> anyhow::Result<T>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn aws(self, operation: &str) -> anyhow::Result<T> {
        self.map_err(|e| {
            // The whole chain (HTTP bodies included) only in the debug log.
            tracing::debug!(operation, error = %DisplayErrorContext(&e), "AWS call failed");
            anyhow!("{operation}: {}", describe_sdk_error(&e))
        })
    }
}

impl<T, O, E> AwsResultExt<T>
    for Result<T, aws_smithy_runtime_api::client::waiters::error::WaiterError<O, E>>
where
    O: std::fmt::Debug + Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    fn aws(self, operation: &str) -> anyhow::Result<T> {
        self.map_err(|e| {
            tracing::debug!(operation, error = %DisplayErrorContext(&e), "AWS wait failed");
            anyhow!("{operation}: {}", innermost(&e))
        })
    }
}

/// What a user needs from an SDK error: AWS's code and message when AWS
/// answered; the cause, in a few words, when the call never reached it.
pub(crate) fn describe_sdk_error<E, R>(err: &SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => format!(
                    "AWS answered with an error it did not name ({})",
                    innermost(e)
                ),
            }
        }
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            format!("no answer in time ({})", innermost(err))
        }
        SdkError::DispatchFailure(_) => {
            format!("could not reach the endpoint ({})", innermost(err))
        }
        SdkError::TimeoutError(_) => "no answer in time".to_string(),
        SdkError::ResponseError(_) => format!(
            "the answer could not be read ({}); is the endpoint an AWS API?",
            innermost(err)
        ),
        _ => innermost(err),
    }
}

/// The last error in a chain: the root cause, without the layers that wrap it.
pub(crate) fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    let text = current.to_string();
    // An unparsable body can be a whole HTML page: keep the first line, short.
    let first = text.lines().next().unwrap_or_default();
    match first.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &first[..cut]),
        None => first.to_string(),
    }
}

/// How long, in all, a call is retried while AWS catches up with itself.
pub(crate) const EVENTUAL_CONSISTENCY_LIMIT: Duration = Duration::from_secs(120);

/// Calls `call` again, with exponential backoff (2 s, 4 s, ... 16 s), while
/// its error is one that `settling` says AWS clears by itself, such as a role
/// made seconds ago that a service cannot assume yet. Gives up after
/// [`EVENTUAL_CONSISTENCY_LIMIT`] and returns the last error.
pub(crate) async fn retry_while_settling<T, E, R, F, Fut>(
    what: &str,
    settling: impl Fn(&aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool,
    mut call: F,
) -> Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<
        Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    >,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_secs(2);
    loop {
        match call().await {
            Err(err)
                if settling(&err) && started.elapsed() + pause <= EVENTUAL_CONSISTENCY_LIMIT =>
            {
                tracing::info!(
                    what,
                    pause_s = pause.as_secs(),
                    "AWS is still settling; retrying"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(16));
            }
            other => return other,
        }
    }
}

/// The error message AWS returned, if the call reached AWS and failed there.
pub(crate) fn error_message<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<&str>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.message())
}

/// The error code AWS returned, if the call reached AWS and failed there.
pub(crate) fn error_code<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<&str>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code())
}

pub(crate) fn is_not_found_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.contains("NotFound") || c.starts_with("NoSuch"))
}

/// A delete of something already gone has done its job: deletes stay idempotent.
pub(crate) fn ignore_not_found<T, E, R>(
    result: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    operation: &str,
) -> anyhow::Result<()>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_not_found_code(error_code(&err)) => Ok(()),
        Err(err) => Err(err).aws(operation),
    }
}

/// Refuses to manage a resource found by name that another environment (or
/// nobody) tagged: a name clash must not become a takeover.
pub(crate) fn check_owner(cx: &Context, what: &str, name: &str, tags: &Tags) -> anyhow::Result<()> {
    match tags.get(TAG_ENV) {
        Some(owner) if *owner == cx.environment => Ok(()),
        Some(owner) => Err(anyhow!(
            "the {what} {name:?} belongs to the poolside environment {owner:?}"
        )),
        None => Err(anyhow!("a {what} named {name:?} exists but was not made by poolside (no {TAG_ENV} tag); rename or remove it")),
    }
}

/// AWS-reserved tags (`aws:*`) are neither ours nor removable.
pub(crate) fn user_visible_tags(tags: impl IntoIterator<Item = (String, String)>) -> Tags {
    tags.into_iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect()
}

pub(crate) fn ec2_tags(tags: &Tags) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn from_ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    user_visible_tags(tags.iter().filter_map(|t| {
        Some((
            t.key()?.to_string(),
            t.value().unwrap_or_default().to_string(),
        ))
    }))
}

pub(crate) fn tag_spec(
    resource_type: aws_sdk_ec2::types::ResourceType,
    tags: &Tags,
) -> aws_sdk_ec2::types::TagSpecification {
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

pub(crate) fn env_filter(environment: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{TAG_ENV}"))
        .values(environment)
        .build()
}

/// Makes the tags of an EC2 resource exactly `new`.
pub(crate) async fn sync_ec2_tags(
    cx: &Context,
    physical_id: &str,
    old: &Tags,
    new: &Tags,
) -> anyhow::Result<()> {
    let (changed, removed) = tag_changes(old, new);
    if !changed.is_empty() {
        cx.clients
            .ec2
            .create_tags()
            .resources(physical_id)
            .set_tags(Some(ec2_tags(&changed)))
            .send()
            .await
            .aws("CreateTags")?;
    }
    if !removed.is_empty() {
        let keys = removed
            .iter()
            .map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build())
            .collect();
        cx.clients
            .ec2
            .delete_tags()
            .resources(physical_id)
            .set_tags(Some(keys))
            .send()
            .await
            .aws("DeleteTags")?;
    }
    Ok(())
}

/// What turns `old` tags into `new`: tags to set (new or changed) and keys to remove.
pub(crate) fn tag_changes(old: &Tags, new: &Tags) -> (Tags, Vec<String>) {
    let set = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    (set, removed)
}

/// Maps AWS ids back to logical ids while discovery converts what it found.
#[derive(Default)]
pub(crate) struct Names(BTreeMap<String, ResourceId>);

impl Names {
    pub fn insert(&mut self, physical: &str, id: &ResourceId) {
        self.0.insert(physical.to_string(), id.clone());
    }

    /// The logical id of an AWS id, or the AWS id itself for what poolside does not manage.
    pub fn logical(&self, physical: &str) -> ResourceId {
        self.0
            .get(physical)
            .cloned()
            .unwrap_or_else(|| ResourceId(physical.to_string()))
    }
}

/// The logical id in a resource's tags, if it belongs to this environment.
/// Extra copies of one id (which tag-on-create should prevent) get a unique
/// id of their own, so the plan deletes them instead of hiding them.
pub(crate) fn identify(
    environment: &str,
    tags: &Tags,
    physical_id: &str,
    seen: &mut std::collections::BTreeSet<ResourceId>,
) -> Option<ResourceId> {
    if tags.get(TAG_ENV).map(String::as_str) != Some(environment) {
        return None;
    }
    let id = ResourceId(tags.get(TAG_ID)?.clone());
    if seen.insert(id.clone()) {
        Some(id)
    } else {
        Some(ResourceId(format!("{}#{physical_id}", id.0)))
    }
}

/// What unit tests of AWS error paths share: a context whose clients they
/// replace with mocked ones.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

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
