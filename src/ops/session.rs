//! The work behind the commands: connect, learn the account, build the
//! blueprint, discover, plan, apply, and collect outputs.

use crate::aws::Clients;
use crate::blueprint::{self, AccountFacts};
use crate::config::{Config, SchemaRunner};
use crate::engine::plan::{self, Plan};
use crate::model::{Kind, ResourceId};
use crate::resources::domain::DomainNames;
use crate::resources::load_balancer::LoadBalancerNames;
use crate::resources::rds::DatabaseNames;
use crate::resources::spec::{Desired, Spec};
use crate::resources::AwsResultExt;
use crate::resources::{self, Context, Lookup, ServiceNames};
use anyhow::{bail, Context as _};

/// One run against one environment.
pub struct Session {
    pub config: Config,
    pub cx: Context,
    pub desired: Vec<Desired>,
    account: AccountFacts,
    /// The caller's ARN, as STS names it (who holds the lock, who ran what):
    /// the operator's own when the environment has a role.
    pub caller: String,
    /// The role session the run acts as (`target.role_arn`), as STS names it.
    pub acting_as: Option<String>,
    remembered_domains: std::sync::OnceLock<Vec<crate::state::RememberedDomain>>,
    /// The state bucket once found or made: discovery (the remembered
    /// domains) and status ask for it at once, and S3 is asked once.
    known_state: tokio::sync::Mutex<Option<crate::state::Store>>,
}

/// Where discovery looks for a domain's record and certificate.
fn domain_names(domain: &crate::state::RememberedDomain) -> DomainNames {
    DomainNames {
        domain_name: domain.domain_name.clone(),
        zone_id: domain.zone_id.clone(),
    }
}

/// For the commands that plan or apply the schema step (plan, deploy,
/// promote): a migration that breaks the lint rules is refused before any
/// AWS call, as bad input is, not when the schema step starts.
pub fn refuse_unsafe_migrations() -> anyhow::Result<()> {
    let shipped = crate::database::migrations::shipped();
    Ok(crate::database::migrations::refuse_unsafe(&shipped)?)
}

impl Session {
    pub async fn open(config: Config) -> anyhow::Result<Session> {
        if let Some(url) = &config.endpoint_url {
            probe_emulator(url).await?;
        }
        let clients = Clients::connect(&config).await?;
        let (account, identity) = account_facts(&clients, &config).await?;
        // Acting as a role, the lock and history name the operator and the role.
        let (caller, acting_as) = match &clients.operator {
            Some(operator) => (operator.arn.clone(), Some(identity)),
            None => (identity, None),
        };
        let desired = blueprint::build(&config, &account)?;
        let mut cx = Context::new(clients, &config.name, &config.region);
        cx.emulator = config.endpoint_url.is_some();
        cx.snapshot_before_risk = config.database.snapshot_before_changes;
        cx.poll_every = config.poll_interval;
        Ok(Session {
            config,
            cx,
            desired,
            account,
            caller,
            acting_as,
            remembered_domains: std::sync::OnceLock::new(),
            known_state: tokio::sync::Mutex::new(None),
        })
    }

    /// The AWS account the credentials are for.
    pub fn account_id(&self) -> &str {
        &self.account.account_id
    }

    /// The state bucket of this account and region (made on first use).
    pub async fn state(&self) -> anyhow::Result<crate::state::Store> {
        let store = crate::state::Store::open(
            &self.cx.clients,
            &self.account.account_id,
            &self.config.region,
            &self.account.partition,
            self.cx.emulator,
        )
        .await?;
        *self.known_state.lock().await = Some(store.clone());
        Ok(store)
    }

    /// The state bucket if it exists (read-only commands never create it).
    /// A bucket found is remembered; a missing one is asked for again, as a
    /// later step of the run may make it.
    pub async fn existing_state(&self) -> anyhow::Result<Option<crate::state::Store>> {
        let mut known = self.known_state.lock().await;
        if known.is_none() {
            *known = crate::state::Store::existing(
                &self.cx.clients,
                &self.account.account_id,
                &self.config.region,
            )
            .await?;
        }
        Ok(known.clone())
    }

    /// The domains earlier deploys made records in (`state::RememberedDomain`),
    /// read once per run; none without a state bucket.
    pub async fn remembered_domains(&self) -> anyhow::Result<Vec<crate::state::RememberedDomain>> {
        if let Some(known) = self.remembered_domains.get() {
            return Ok(known.clone());
        }
        let found = match self.existing_state().await? {
            Some(store) => crate::state::remembered_domains(&store, &self.config.name).await?,
            None => vec![],
        };
        let _ = self.remembered_domains.set(found.clone());
        Ok(found)
    }

    /// The domain the file names, as the state bucket remembers it.
    pub fn configured_domain(&self) -> Option<crate::state::RememberedDomain> {
        match (
            &self.config.api.domain_name,
            &self.config.api.hosted_zone_id,
        ) {
            (Some(domain_name), Some(zone_id)) => Some(crate::state::RememberedDomain {
                domain_name: domain_name.clone(),
                zone_id: zone_id.clone(),
            }),
            _ => None,
        }
    }

    /// Everything of the environment that exists, remembered for later steps.
    async fn discover(
        &self,
        logs_in_to_database: bool,
    ) -> anyhow::Result<Vec<crate::resources::spec::Live>> {
        let _spinner = crate::output::Spinner::start(format!(
            "Discovering environment `{}` in {}",
            self.config.name, self.config.region
        ));
        let lookup = self.lookup(logs_in_to_database);
        // The state bucket's remembered domains are read alongside.
        let found = async {
            tokio::join!(
                resources::discover(&self.cx, &lookup),
                self.remembered_domains()
            )
        };
        // Discovery changes nothing: Ctrl-C ends it at once.
        let (mut live, previous) = tokio::select! {
            (found, previous) = found => {
                (found.context("discovering the environment")?, previous?)
            }
            _ = crate::interrupt::wait() => {
                return Err(anyhow::Error::new(crate::interrupt::Interrupted)
                    .context("interrupted while discovering the environment: nothing was changed"));
            }
        };
        // Domains the file no longer names: what poolside made there is
        // found under ids of its own (`dns-record/previous-1`, ...), which
        // nothing wants, so the plan deletes it.
        let configured = self.configured_domain();
        let previous = previous.iter().filter(|d| Some(*d) != configured.as_ref());
        for (n, domain) in previous.enumerate() {
            let found = resources::domain::discover(&self.cx, &domain_names(domain))
                .await
                .with_context(|| format!("looking for what was made in {}", domain.domain_name))?;
            for mut resource in found {
                if let Some(kind) = resource.id.kind() {
                    resource.id = ResourceId::new(kind, &format!("previous-{}", n + 1));
                }
                live.push(resource);
            }
        }
        tracing::info!(environment = %self.config.name, found = live.len(), wanted = self.desired.len(), "discovered");
        self.cx.remember(&live);
        Ok(live)
    }

    /// Discovers what exists and plans the changes to reach the blueprint;
    /// the run goes on to the plan's database side (read from here by a
    /// deploy host), so the master secret is read as soon as it is found.
    pub async fn plan(&self) -> anyhow::Result<Plan> {
        self.plan_reading(self.config.database.schema_runner == SchemaRunner::DeployHost)
            .await
    }

    /// [`Session::plan`] for a command that never logs in to the database
    /// (`forget`): no secret is read.
    pub async fn plan_without_login(&self) -> anyhow::Result<Plan> {
        self.plan_reading(false).await
    }

    /// Discovery alone, for what reads only what exists (`outputs`): the
    /// file is not planned, so a change it asks for that cannot be made
    /// (an older engine version) does not stop the reading.
    pub async fn discover_only(&self) -> anyhow::Result<()> {
        self.discover(false).await.map(drop)
    }

    async fn plan_reading(&self, logs_in_to_database: bool) -> anyhow::Result<Plan> {
        Ok(self.plan_and_live(logs_in_to_database).await?.0)
    }

    /// The plan and everything discovery found: `poolside graph` draws
    /// either. Never logs in to the database.
    pub async fn plan_with_live(
        &self,
    ) -> anyhow::Result<(Plan, Vec<crate::resources::spec::Live>)> {
        self.plan_and_live(false).await
    }

    async fn plan_and_live(
        &self,
        logs_in_to_database: bool,
    ) -> anyhow::Result<(Plan, Vec<crate::resources::spec::Live>)> {
        // Boxed: joined, the two futures would not fit a worker thread's
        // stack in a debug build (fleet runs sessions on them).
        let (live, customer_network) = tokio::join!(
            Box::pin(self.discover(logs_in_to_database)),
            Box::pin(self.read_customer_network())
        );
        let live = live?;
        let mut plan = plan::plan(&self.config.name, &self.desired, &live, self.warnings());
        if let Some((network, read)) = customer_network? {
            let deployed = live
                .iter()
                .any(|l| l.id == ResourceId::new(Kind::SecurityGroup, "api"));
            let needed = self.addresses_needed(network, deployed);
            let problems =
                resources::network::customer::problems(&read, network, &self.config.region, needed);
            for problem in problems {
                if problem.blocking {
                    plan.customer_network.push(problem);
                } else {
                    plan.warnings.push(format!(
                        "the customer's network: {}: {}",
                        problem.resource, problem.problem
                    ));
                }
            }
        }
        self.pin_engine_version(&mut plan).await;
        if let Err(err) = self.pin_upgrade_target(&mut plan).await {
            // What the file asks of the instance that RDS cannot do: plan
            // and deploy refuse it; status, drift and outputs read on.
            let refused = err.downcast_ref::<resources::rds::upgrade::UpgradeRefused>();
            let Some(refused) = refused else {
                return Err(err);
            };
            plan.refused.push(plan::Refused {
                resource: ResourceId::new(Kind::DbInstance, "main").0,
                property: "engine_version".into(),
                why: refused.to_string(),
            });
        }
        // Pinning diffed the instance again.
        plan::name_what_is_created(&mut plan.changes);
        if let Some(warning) = self.reboot_warning(&plan) {
            plan.warnings.push(warning);
        }
        if let Some(warning) = self.snapshot_warning(&plan) {
            plan.warnings.push(warning);
        }
        if let Some(warning) = window_warning(&plan, std::time::SystemTime::now()) {
            plan.warnings.push(warning);
        }
        plan.fingerprint = Some(fingerprint(&live));
        Ok((plan, live))
    }

    /// The customer's network as it is, when the environment lives in one
    /// (`[network] vpc_id`).
    async fn read_customer_network(
        &self,
    ) -> anyhow::Result<
        Option<(
            &crate::config::ExistingNetwork,
            resources::network::customer::CustomerNetwork,
        )>,
    > {
        let crate::config::Layout::Existing(network) = &self.config.network.layout else {
            return Ok(None);
        };
        let read = resources::network::customer::read(&self.cx, network)
            .await
            .context("reading the customer's network (network.vpc_id)")?;
        Ok(Some((network, read)))
    }

    /// Free addresses the private subnets must still have. Before the first
    /// deploy: the tasks twice over (a rolling deployment doubles them), the
    /// schema task, the database (two with multi_az), one per endpoint and
    /// subnet. After it, what is in place holds its addresses already: what
    /// a deployment adds.
    fn addresses_needed(&self, network: &crate::config::ExistingNetwork, deployed: bool) -> i32 {
        let api = &self.config.api;
        let tasks = api
            .autoscaling
            .as_ref()
            .map_or(api.desired_count, |a| a.max_count) as usize;
        if deployed {
            return (tasks + 1) as i32;
        }
        let endpoints = if network.create_endpoints {
            resources::network::customer::NEEDED_SERVICES.len() * network.private_subnet_ids.len()
        } else {
            0
        };
        (2 * tasks + 1 + 2 + endpoints) as i32
    }

    /// What the plan says about the snapshot deploy takes first, when it
    /// changes the instance in a way that is hard to undo, and about the
    /// downtime of such a change (applied at once, not in the window).
    fn snapshot_warning(&self, plan: &Plan) -> Option<String> {
        // A change the plan refuses is not made: nothing to warn of.
        if plan
            .refused
            .iter()
            .any(|r| r.resource == "db-instance/main")
        {
            return None;
        }
        let change = plan
            .changes
            .iter()
            .find(|c| c.action == plan::Action::Update && c.id.kind() == Some(Kind::DbInstance))?;
        let (Some(Spec::DbInstance(new)), Some(live)) = (&change.desired, &change.live) else {
            return None;
        };
        let Spec::DbInstance(old) = &live.spec else {
            return None;
        };
        let risky = resources::rds::snapshots::risky_change(old, new)?;
        let effect = if risky == "storage-type" {
            "is applied at once, online, while RDS converts the storage"
        } else {
            "is applied at once and restarts the instance (minutes of downtime; a failover with multi_az)"
        };
        let mut downtime = format!("{}: the {risky} change {effect}", change.id);
        if resources::rds::upgrade::is_major_upgrade(&old.engine_version, &new.engine_version) {
            downtime = format!(
                "{}: a major upgrade, {} -> {}, which cannot be undone: deploy makes it only with --allow-major-upgrade, alone in its call, with the new parameter group of the postgres{} family, and deletes the old group after; it is applied at once, and the database is down until pg_upgrade is done (minutes to hours with its size; with multi_az both copies upgrade at once, there is no failover); poolside's pg_cron jobs are paused before it{} and resumed by the schema step after ANALYZE",
                change.id, old.engine_version, new.engine_version, resources::rds::upgrade::major(&new.engine_version),
                match self.config.database.schema_runner {
                    crate::config::SchemaRunner::EcsTask => " (by a run of the schema task)",
                    crate::config::SchemaRunner::DeployHost => "",
                }
            );
        }
        if !self.cx.snapshot_before_risk {
            return Some(format!(
                "{downtime}; no snapshot is taken first (database.snapshot_before_changes is off)"
            ));
        }
        Some(format!(
            "{downtime}; deploy first takes a manual snapshot ({}-before-{risky}-<time>) and waits until it is available (database.snapshot_before_changes); the snapshot is kept",
            new.identifier
        ))
    }

    /// What the plan says about a reboot of the database: parameters already
    /// waiting for one (`pending-reboot`), or a change of the parameter group
    /// whose static parameters will. A reboot is downtime: deploy makes it
    /// only when asked or inside the maintenance window.
    fn reboot_warning(&self, plan: &Plan) -> Option<String> {
        let instance = ResourceId::new(Kind::DbInstance, "main");
        let waiting = self
            .cx
            .attribute(&instance, resources::rds::PARAMETERS_PENDING_REBOOT)
            .as_deref()
            == Some("true");
        let changing: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| c.action == plan::Action::Update)
            .filter_map(|c| match (&c.desired, c.live.as_ref().map(|l| &l.spec)) {
                (Some(Spec::DbParameterGroup(new)), Some(Spec::DbParameterGroup(old))) => {
                    Some(resources::rds::static_parameters_changed(old, new))
                }
                _ => None,
            })
            .flatten()
            .collect();
        let why = match (waiting, changing.as_slice()) {
            (true, _) => "its parameters wait for a reboot (pending-reboot)".to_string(),
            (false, []) => return None,
            (false, names) => format!(
                "the parameter group changes {}, which take effect only at a reboot",
                names.join(", ")
            ),
        };
        let window = &self.config.database.maintenance_window;
        if crate::config::windows::includes(window, std::time::SystemTime::now()) {
            return Some(format!(
                "{instance}: {why}. It is inside database.maintenance_window ({window} UTC) now: a deploy now reboots the instance (a minute or more of downtime)"
            ));
        }
        Some(format!(
            "{instance}: {why}. Deploy reboots the instance (a minute or more of downtime) only with --reboot-now, or when run inside database.maintenance_window ({window} UTC); otherwise the change takes effect at the next reboot"
        ))
    }

    /// Discovers what exists and plans deleting all of it, in the order
    /// apply deletes (by kind, dependents first).
    pub async fn destroy_plan(&self) -> anyhow::Result<Plan> {
        // Only the local stand-in for a final snapshot logs in before a destroy.
        let live = self.discover(self.cx.emulator).await?;
        let mut plan = plan::plan(&self.config.name, &[], &live, Vec::new());
        // Every copy of a duplicated id is the environment's too: all go.
        for copy in live.iter().filter(|l| l.id.copy_of().is_some()) {
            plan.changes.push(plan::Change {
                id: copy.id.clone(),
                action: plan::Action::Delete,
                properties: Vec::new(),
                desired: None,
                live: Some(copy.clone()),
                dependencies: Vec::new(),
                replaced_because: None,
                create_before_destroy: false,
            });
            plan.summary.delete += 1;
        }
        plan.duplicates.clear();
        plan.changes.sort_by_key(|c| {
            (
                c.id.kind().map(|k| k.delete_rank()).unwrap_or_default(),
                c.id.clone(),
            )
        });
        Ok(plan)
    }

    /// A new instance asked for by major version (`"16"`) gets the minor RDS
    /// would choose for it, so the plan shows what will be created.
    async fn pin_engine_version(&self, plan: &mut Plan) {
        let Some(change) = plan
            .changes
            .iter_mut()
            .find(|c| c.action == plan::Action::Create && c.id.kind() == Some(Kind::DbInstance))
        else {
            return;
        };
        let Some(Spec::DbInstance(spec)) = change.desired.as_mut() else {
            return;
        };
        if spec.engine_version.contains('.') {
            return;
        }
        match resources::rds::upgrade::default_minor(&self.cx, &spec.engine_version).await {
            Ok(Some(minor)) => {
                spec.engine_version = minor;
                change.properties = plan::diff(None, change.desired.as_ref().expect("set above"));
            }
            Ok(None) => plan.warnings.push(format!(
                "RDS lists no PostgreSQL {} version in {}: the instance is created with engine version {:?} as written",
                spec.engine_version, self.config.region, spec.engine_version
            )),
            Err(_) if self.cx.emulator => plan.warnings.push(format!(
                "the emulator does not list RDS engine versions: the instance is created with engine version {:?} as written",
                spec.engine_version
            )),
            Err(err) => plan.warnings.push(format!(
                "cannot list RDS engine versions ({err:#}); the instance is created with engine version {:?}, and RDS picks the minor",
                spec.engine_version
            )),
        }
    }

    /// A major upgrade (`engine_version = "17"` on a 16 instance) planned
    /// as the exact version RDS offers as an upgrade target of the running
    /// one; one RDS does not offer fails the plan, naming what it offers.
    async fn pin_upgrade_target(&self, plan: &mut Plan) -> anyhow::Result<()> {
        let Some(change) = plan
            .changes
            .iter_mut()
            .find(|c| c.action == plan::Action::Update && c.id.kind() == Some(Kind::DbInstance))
        else {
            return Ok(());
        };
        let (Some(Spec::DbInstance(new)), Some(live)) = (change.desired.as_mut(), &change.live)
        else {
            return Ok(());
        };
        let Spec::DbInstance(old) = &live.spec else {
            return Ok(());
        };
        // An older major is refused whether or not RDS's list can be read.
        resources::rds::upgrade::refuse_downgrade(&old.engine_version, &new.engine_version)?;
        let upgrade = resources::rds::upgrade::is_major_upgrade;
        if !upgrade(&old.engine_version, &new.engine_version) {
            return Ok(());
        }
        match resources::rds::upgrade::offered_targets(&self.cx, &old.engine_version).await {
            Ok(None) => plan.warnings.push(format!(
                "RDS does not list the {} the instance runs: the upgrade to {:?} is sent as written, and RDS checks it",
                old.engine_version, new.engine_version
            )),
            Ok(Some(offered)) => {
                new.engine_version = resources::rds::upgrade::pick_target(
                    &old.engine_version,
                    &new.engine_version,
                    &offered,
                )?;
                let target = new.engine_version.clone();
                change.properties =
                    plan::diff(Some(&live.spec), change.desired.as_ref().expect("set above"));
                self.check_target_extensions(&target, &mut plan.warnings).await?;
            }
            Err(_) if self.cx.emulator => plan.warnings.push(format!(
                "the emulator does not list RDS upgrade targets: the major upgrade to {:?} is not checked against what RDS offers",
                new.engine_version
            )),
            Err(err) => plan.warnings.push(format!(
                "cannot list the upgrade targets RDS offers for {} ({err:#}): the upgrade to {:?} is sent as written, and RDS checks it",
                old.engine_version, new.engine_version
            )),
        }
        Ok(())
    }

    /// Refuses a major upgrade to a version whose family does not offer
    /// pgvector or pg_cron (its `rds.extensions`); warns when that cannot
    /// be read.
    async fn check_target_extensions(
        &self,
        target: &str,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        use resources::rds::upgrade;
        let major = upgrade::major(target).to_string();
        match upgrade::extensions_offered(&self.cx, &format!("postgres{major}")).await {
            Ok(Some(offered)) => {
                let missing = upgrade::missing_extensions(&offered);
                if !missing.is_empty() {
                    return Err(upgrade::UpgradeRefused::ExtensionsMissing {
                        desired: self.config.database.engine_version.clone(),
                        major,
                        missing: missing.into_iter().map(str::to_string).collect(),
                    }
                    .into());
                }
            }
            Ok(None) => warnings.push(format!(
                "RDS does not list the extensions of postgres{major} (rds.extensions): that it offers pgvector and pg_cron is not checked"
            )),
            Err(err) => warnings.push(format!(
                "cannot read the extensions RDS offers in postgres{major} ({err:#}): that it offers pgvector and pg_cron is not checked"
            )),
        }
        Ok(())
    }

    /// The names of the resources found by name rather than by tag, from the blueprint.
    fn lookup(&self, logs_in_to_database: bool) -> Lookup {
        let mut bucket_name = None;
        let mut repository_name = None;
        let mut subnet_group = None;
        let mut parameter_group = None;
        let mut instance = None;
        let mut secrets = Vec::new();
        let mut roles = Vec::new();
        let (mut log_group, mut cluster, mut service) = (None, None, None);
        let mut task_families = Vec::new();
        let (mut load_balancer, mut dashboard) = (None, None);
        let mut target_groups = Vec::new();
        for d in &self.desired {
            match &d.spec {
                Spec::Bucket(b) => bucket_name = Some(b.name.clone()),
                Spec::Repository(r) => repository_name = Some(r.name.clone()),
                Spec::DbSubnetGroup(g) => subnet_group = Some(g.name.clone()),
                Spec::DbParameterGroup(g) => parameter_group = Some(g.name.clone()),
                Spec::DbInstance(i) => instance = Some(i.identifier.clone()),
                Spec::Secret(s) => secrets.push((d.id.clone(), s.name.clone())),
                Spec::Role(r) => roles.push((d.id.clone(), r.name.clone())),
                Spec::LogGroup(g) => log_group = Some(g.name.clone()),
                Spec::Cluster(c) => cluster = Some(c.name.clone()),
                Spec::TaskDefinition(t) => task_families.push((d.id.clone(), t.family.clone())),
                Spec::Service(s) => service = Some(s.name.clone()),
                Spec::LoadBalancer(l) => load_balancer = Some(l.name.clone()),
                Spec::TargetGroup(t) => target_groups.push((d.id.clone(), t.name.clone())),
                Spec::Dashboard(b) => dashboard = Some(b.name.clone()),
                _ => {}
            }
        }
        // The schema task's role and family are looked for even when the
        // blueprint has them not (database.schema_runner = "deploy-host"), so
        // a change of runner deletes them and destroy finds them.
        let env = &self.config.name;
        let schema_role = ResourceId::new(Kind::Role, "schema-execution");
        if !roles.iter().any(|(id, _)| id == &schema_role) {
            roles.push((schema_role, format!("poolside-{env}-schema-execution")));
        }
        let schema_task = ResourceId::new(Kind::TaskDefinition, "schema");
        if !task_families.iter().any(|(id, _)| id == &schema_task) {
            task_families.push((schema_task, format!("poolside-{env}-schema")));
        }
        let expect =
            |name: Option<String>| name.expect("the blueprint always has each named resource");
        Lookup {
            bucket_name: expect(bucket_name),
            repository_name: expect(repository_name),
            database: DatabaseNames {
                subnet_group: expect(subnet_group),
                parameter_group: expect(parameter_group),
                instance: expect(instance),
                engine_version: self.config.database.engine_version.clone(),
                read_master_secret: logs_in_to_database,
            },
            secrets,
            service: ServiceNames {
                log_group: expect(log_group),
                roles,
                cluster: expect(cluster),
                task_families,
                service: expect(service),
                load_balancer: LoadBalancerNames {
                    load_balancer: expect(load_balancer),
                    target_groups,
                },
                // Alarms are found by prefix: an alarm no longer wanted still is.
                alarm_prefix: crate::names::alarm_prefix(&self.config),
                dashboard: expect(dashboard),
                domain: self.configured_domain().as_ref().map(domain_names),
            },
        }
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self
            .config
            .network
            .allowed_ingress_cidrs
            .iter()
            .any(|c| c.prefix_len() == 0)
        {
            warnings.push("network.allowed_ingress_cidrs contains 0.0.0.0/0: the load balancer is open to the whole internet".into());
        }
        if self.account.s3_prefix_list.is_none() {
            warnings.push(format!("no S3 prefix list found in {}: the API tasks' HTTPS egress stays open to 0.0.0.0/0 instead of S3 and the VPC endpoints only", self.config.region));
        }
        if !self.config.api.https() {
            warnings.push("api.certificate_arn is not set: the load balancer serves plain HTTP on port 80, and API tokens cross the network unencrypted".into());
        }
        warnings
    }
}

/// An emulator that is not running fails in a second, not after the SDK's
/// retries of a refused connection (seconds of backoff for nothing).
async fn probe_emulator(url: &str) -> anyhow::Result<()> {
    let parsed =
        reqwest::Url::parse(url).with_context(|| format!("target.endpoint_url {url:?}"))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    // A refused connection answers at once; 3 s is for one that hangs
    // (an emulator busy with a fleet's concurrent runs answers late).
    match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => bail!("cannot reach the AWS endpoint {url} ({err}): is the local stack running? ./start.sh starts it"),
        Err(_) => bail!("cannot reach the AWS endpoint {url} (no answer within 3s): is the local stack running? ./start.sh starts it"),
    }
}

/// The account the credentials reach, for commands that need no session.
pub async fn account(config: &Config) -> anyhow::Result<AccountFacts> {
    let clients = Clients::connect(config).await?;
    account_facts(&clients, config)
        .await
        .map(|(account, _)| account)
}

/// A digest of what discovery found (ids and specs, in a stable order; not
/// live state such as an alarm's or a task count, which move on their own).
fn fingerprint(live: &[crate::resources::spec::Live]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<(&ResourceId, &str, &Spec)> = live
        .iter()
        .map(|l| (&l.id, l.physical_id.as_str(), &l.spec))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(b.1)));
    let bytes = serde_json::to_vec(&sorted).expect("live resources serialize");
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn account_facts(
    clients: &Clients,
    config: &Config,
) -> anyhow::Result<(AccountFacts, String)> {
    // The region's S3 prefix list does not depend on who is asking: both
    // reads go at once, and STS's answer (the clearer error) is looked at first.
    let (identity, s3_prefix_list) = tokio::join!(
        clients.sts.get_caller_identity().send(),
        s3_prefix_list(clients, &config.region)
    );
    let identity = identity
        .aws("GetCallerIdentity")
        .with_context(|| match &config.endpoint_url {
            Some(url) => format!("cannot reach the AWS endpoint {url} (is the local stack running? ./start.sh starts it)"),
            None => "cannot call AWS STS: check your credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO login)".into(),
        })?;
    let account_id = identity.account().unwrap_or_default().to_string();
    tracing::info!(account = %account_id, caller = identity.arn().unwrap_or_default(), "connected");
    if let Some(expected) = &config.expected_account_id {
        if *expected != account_id {
            bail!(
                "these credentials are for account {account_id}, but environment {} is pinned to account {expected} (target.account_id)",
                config.name
            );
        }
    }
    let partition = identity
        .arn()
        .and_then(|arn| arn.split(':').nth(1))
        .unwrap_or("aws")
        .to_string();
    let s3_prefix_list = s3_prefix_list?;
    let caller = identity.arn().unwrap_or("unknown caller").to_string();
    Ok((
        AccountFacts {
            account_id,
            partition,
            s3_prefix_list,
        },
        caller,
    ))
}

/// The AWS-managed prefix list of S3 in the region: the API tasks reach S3
/// (ECR's image layers) through the gateway endpoint, and their egress rule
/// names this list instead of the whole internet.
async fn s3_prefix_list(clients: &Clients, region: &str) -> anyhow::Result<Option<String>> {
    let out = clients
        .ec2
        .describe_prefix_lists()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("prefix-list-name")
                .values(format!("com.amazonaws.{region}.s3"))
                .build(),
        )
        .send()
        .await
        .aws("DescribePrefixLists")?;
    Ok(out
        .prefix_lists()
        .first()
        .and_then(|p| p.prefix_list_id())
        .map(str::to_string))
}

/// A new maintenance window that includes the moment of the plan: RDS then
/// applies at once the actions pending on the instance that need a reboot
/// (ModifyDBInstance's PreferredMaintenanceWindow), rather than in a window.
fn window_warning(plan: &Plan, now: std::time::SystemTime) -> Option<String> {
    plan.changes
        .iter()
        .filter(|c| c.action == plan::Action::Update)
        .find_map(|c| match (&c.desired, c.live.as_ref().map(|l| &l.spec)) {
            (Some(Spec::DbInstance(new)), Some(Spec::DbInstance(old)))
                if new.maintenance_window != old.maintenance_window
                    && crate::config::windows::includes(&new.maintenance_window, now) =>
            {
                Some(format!(
                    "{}: the new maintenance window ({} UTC) includes the current time: RDS applies at once whatever it has pending for the instance that needs a reboot (a minute or more of downtime), and wants 30 minutes left in the window to apply it; deploy outside it, or pick a window that starts later",
                    c.id, new.maintenance_window
                ))
            }
            _ => None,
        })
}
