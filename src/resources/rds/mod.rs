//! RDS PostgreSQL: the DB subnet group, the parameter group (pg_cron, TLS
//! only) and the instance, with its master password managed by RDS in
//! Secrets Manager. All three are found by name, then checked for our tags.

mod groups;
mod instance_state;
pub mod maintenance;
pub mod snapshots;
pub mod spec;
pub mod upgrade;

use super::aws_error::{error_code, AwsResultExt};
use super::context::Context;
use super::tags::{check_owner, Names};
use super::tags::{from_rds_tags, rds_tags, sync_rds_tags};
use super::waits::Waits;
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use anyhow::{anyhow, bail, Context as _};
use aws_sdk_rds::types::DbInstance;
use groups::{resolve_all, PARAMETER_GROUP_CHANGED};
use instance_state::{
    describe_instance, has_pending, instance_attributes, parameters_pending_reboot, wait_available,
    wait_available_within, wait_change_started, AVAILABLE_WITHIN, CHANGE_STARTS_WITHIN,
};
pub use instance_state::{PARAMETERS_PENDING_REBOOT, RUNNING_ENGINE_VERSION};
use std::time::Duration;

const DELETED_WITHIN: Duration = Duration::from_secs(30 * 60);

/// What discovery needs to know to find the database resources.
pub struct DatabaseNames {
    pub subnet_group: String,
    pub parameter_group: String,
    pub instance: String,
    /// RDS applies minor upgrades by itself; a newer minor of the same major
    /// than the one asked for is not drift.
    pub engine_version: String,
    /// The run logs in to the database (its plan's database side, the
    /// schema step): the master secret is read as soon as the instance is
    /// found, while the rest of the environment is still being discovered.
    pub read_master_secret: bool,
}

/// The database's resources as RDS describes them. Nothing here needs the
/// network's answer, so discovery asks for them alongside it; [`Found::observe`]
/// then names the subnets and groups they refer to.
pub struct Found {
    subnet_group: Option<groups::FoundSubnetGroup>,
    parameter_group: Option<Live>,
    /// Groups of earlier majors, left by a major upgrade.
    previous_parameter_groups: Vec<Live>,
    instance: Option<(DbInstance, Tags)>,
}

pub async fn describe(cx: &Context, names: &DatabaseNames) -> anyhow::Result<Found> {
    let instance = async {
        let instance = describe_ours(cx, names).await?;
        let secret = instance
            .as_ref()
            .and_then(|(db, _)| db.master_user_secret())
            .and_then(|s| s.secret_arn());
        if let Some(arn) = secret.filter(|_| names.read_master_secret) {
            // Read ahead into the run's cache; the login that needs it reports a failure.
            if let Err(err) = super::secrets::read_value(cx, arn).await {
                tracing::debug!(error = %format!("{err:#}"), "reading the master secret ahead");
            }
        }
        anyhow::Ok(instance)
    };
    // The groups of the majors before ours, read with the rest: what a
    // major upgrade leaves behind once the instance has moved off it.
    let majors_before = groups::groups_of_majors_before(&names.parameter_group);
    let before = futures::future::try_join_all(
        majors_before
            .iter()
            .map(|name| groups::previous_parameter_group(cx, name)),
    );
    let (subnet_group, parameter_group, before, instance) = tokio::try_join!(
        groups::describe_subnet_group(cx, &names.subnet_group),
        groups::discover_parameter_group(cx, &names.parameter_group),
        before,
        instance,
    )?;
    let mut previous_parameter_groups: Vec<Live> = before.into_iter().flatten().collect();
    // An instance still on a group of a major poolside no longer supports.
    let instance_group = instance
        .as_ref()
        .and_then(|(db, _)| db.db_parameter_groups().first())
        .and_then(|g| g.db_parameter_group_name())
        .filter(|name| groups::is_previous_group(&names.parameter_group, name))
        .filter(|name| !majors_before.iter().any(|m| m == name));
    if let Some(name) = instance_group {
        previous_parameter_groups.extend(groups::previous_parameter_group(cx, name).await?);
    }
    Ok(Found {
        subnet_group,
        parameter_group,
        previous_parameter_groups,
        instance,
    })
}

impl Found {
    pub fn observe(self, names: &DatabaseNames, network: &Names) -> Vec<Live> {
        let subnet_group = self
            .subnet_group
            .map(|group| groups::observe_subnet_group(group, &names.subnet_group, network));
        let instance = self
            .instance
            .map(|(db, tags)| observe_instance(&db, tags, names, network));
        subnet_group
            .into_iter()
            .chain(self.parameter_group)
            .chain(self.previous_parameter_groups)
            .chain(instance)
            .collect()
    }
}

/// The instance, when it is ours and not being deleted.
async fn describe_ours(
    cx: &Context,
    names: &DatabaseNames,
) -> anyhow::Result<Option<(DbInstance, Tags)>> {
    let Some(db) = describe_instance(cx, &names.instance).await? else {
        return Ok(None);
    };
    let tags = from_rds_tags(db.tag_list());
    check_owner(cx, "RDS instance", &names.instance, &tags)?;
    if db.db_instance_status() == Some("deleting") {
        // Gone for planning purposes; a create waits for the name to free up.
        return Ok(None);
    }
    Ok(Some((db, tags)))
}

fn observe_instance(db: &DbInstance, tags: Tags, names: &DatabaseNames, network: &Names) -> Live {
    let identifier = db.db_instance_identifier().unwrap_or_default().to_string();
    let engine_version = match db.engine_version() {
        Some(live) if same_major_not_older(live, &names.engine_version) => {
            names.engine_version.clone()
        }
        other => other.unwrap_or_default().to_string(),
    };
    let attributes = instance_attributes(db);
    Live {
        id: ResourceId::new(Kind::DbInstance, "main"),
        physical_id: identifier.clone(),
        spec: Spec::DbInstance(DbInstanceSpec {
            identifier,
            engine: db.engine().unwrap_or_default().to_string(),
            engine_version,
            instance_class: db.db_instance_class().unwrap_or_default().to_string(),
            allocated_storage_gb: db.allocated_storage().unwrap_or_default(),
            storage_type: db.storage_type().unwrap_or_default().to_string(),
            storage_encrypted: db.storage_encrypted().unwrap_or_default(),
            multi_az: db.multi_az().unwrap_or_default(),
            publicly_accessible: db.publicly_accessible().unwrap_or_default(),
            backup_retention_days: db.backup_retention_period().unwrap_or_default(),
            // The file's is lowercased; RDS's answer is compared the same way.
            maintenance_window: db
                .preferred_maintenance_window()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            backup_window: db.preferred_backup_window().unwrap_or_default().to_string(),
            deletion_protection: db.deletion_protection().unwrap_or_default(),
            db_name: db.db_name().unwrap_or_default().to_string(),
            master_username: db.master_username().unwrap_or_default().to_string(),
            manage_master_password: db.master_user_secret().is_some(),
            subnet_group: logical_or_name(
                db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
                &names.subnet_group,
                Kind::DbSubnetGroup,
            ),
            parameter_group: logical_or_name(
                db.db_parameter_groups()
                    .first()
                    .and_then(|g| g.db_parameter_group_name()),
                &names.parameter_group,
                Kind::DbParameterGroup,
            ),
            security_groups: db
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id())
                .map(|id| network.logical(id))
                .collect(),
            tags,
        }),
        attributes,
    }
}

/// The static parameters (applied only at a reboot) whose value differs
/// between `old` and `new`, set or reset.
pub fn static_parameters_changed(
    old: &DbParameterGroupSpec,
    new: &DbParameterGroupSpec,
) -> Vec<String> {
    groups::STATIC_PARAMETERS
        .iter()
        .filter(|p| old.parameters.get(**p) != new.parameters.get(**p))
        .map(|p| p.to_string())
        .collect()
}

/// Our group by its logical id; any other (a default group, say) by its name.
fn logical_or_name(name: Option<&str>, ours: &str, kind: Kind) -> ResourceId {
    match name.unwrap_or_default() {
        name if name == ours => ResourceId::new(kind, "main"),
        other => ResourceId(other.to_string()),
    }
}

/// `16.6` satisfies a request for `16.4`; `16.2` and `17.1` do not.
fn same_major_not_older(live: &str, desired: &str) -> bool {
    let parse = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    let (live, desired) = (parse(live), parse(desired));
    live.first() == desired.first() && live >= desired
}

pub async fn create_instance(
    cx: &Context,
    id: &ResourceId,
    spec: &DbInstanceSpec,
    waits: &Waits<'_>,
) -> anyhow::Result<String> {
    let mut created = send_create_instance(cx, spec).await?;
    // moto snapshots a new instance at once, named by the minute
    // (`rds:<id>-YYYY-MM-DD-HH-MM`), and keeps the one of an instance of the
    // same name deleted within that minute: the next minute's name is free.
    // AWS takes its first automated snapshot later, under its own name.
    if cx.emulator
        && created
            .as_ref()
            .is_err_and(|err| error_code(err) == Some("DBSnapshotAlreadyExists"))
    {
        let into_minute = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() % 60)
            .unwrap_or_default();
        let next_minute = Duration::from_secs(61 - into_minute);
        waits
            .report(
                id,
                "the next minute (the emulator's snapshot of an instance of this name deleted this minute holds the name)",
                next_minute,
                tokio::time::sleep(next_minute),
            )
            .await?;
        created = send_create_instance(cx, spec).await?;
    }
    match created {
        Ok(_) => {}
        // Created by a run that did not finish: wait for it like a new one.
        Err(err) if error_code(&err) == Some("DBInstanceAlreadyExists") => {}
        Err(err) => return Err(err).aws("CreateDBInstance"),
    }
    // It exists from here on: a wait abandoned for Ctrl-C reports it made.
    cx.record(id, &spec.identifier);
    wait_available(cx, id, &spec.identifier, waits).await?;
    Ok(spec.identifier.clone())
}

type CreateInstanceResult = Result<
    aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput,
    aws_sdk_rds::error::SdkError<aws_sdk_rds::operation::create_db_instance::CreateDBInstanceError>,
>;

async fn send_create_instance(
    cx: &Context,
    spec: &DbInstanceSpec,
) -> anyhow::Result<CreateInstanceResult> {
    Ok(cx
        .clients
        .rds
        .create_db_instance()
        .db_instance_identifier(&spec.identifier)
        .engine(&spec.engine)
        .engine_version(&spec.engine_version)
        .db_instance_class(&spec.instance_class)
        .allocated_storage(spec.allocated_storage_gb)
        .storage_type(&spec.storage_type)
        .storage_encrypted(spec.storage_encrypted)
        .multi_az(spec.multi_az)
        .publicly_accessible(spec.publicly_accessible)
        .backup_retention_period(spec.backup_retention_days)
        .preferred_maintenance_window(&spec.maintenance_window)
        .preferred_backup_window(&spec.backup_window)
        .deletion_protection(spec.deletion_protection)
        .db_name(&spec.db_name)
        .master_username(&spec.master_username)
        .manage_master_user_password(spec.manage_master_password)
        .db_subnet_group_name(cx.resolve(&spec.subnet_group)?)
        .db_parameter_group_name(cx.resolve(&spec.parameter_group)?)
        .set_vpc_security_group_ids(Some(resolve_all(cx, &spec.security_groups)?))
        .copy_tags_to_snapshot(true)
        .auto_minor_version_upgrade(true)
        .set_tags(Some(rds_tags(&spec.tags)))
        .send()
        .await)
}

pub async fn update_instance(
    cx: &Context,
    id: &ResourceId,
    arn: &str,
    old: &DbInstanceSpec,
    new: &DbInstanceSpec,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    if upgrade::is_major_upgrade(&old.engine_version, &new.engine_version) {
        // RDS asks for the engine upgrade alone: with another change (a new
        // class, say), the running version must suit it as well
        // (ModifyDBInstance, EngineVersion). The rest follows once it is done.
        let upgraded = DbInstanceSpec {
            engine_version: new.engine_version.clone(),
            parameter_group: new.parameter_group.clone(),
            ..old.clone()
        };
        modify_and_wait(cx, id, old, &upgraded, waits).await?;
        upgrade::check_upgraded(cx, &new.identifier, &new.engine_version).await?;
        cx.record_attribute(id, upgrade::MAJOR_UPGRADED, "true");
        modify_and_wait(cx, id, &upgraded, new, waits).await?;
    } else {
        modify_and_wait(cx, id, old, new, waits).await?;
    }
    if old.tags != new.tags {
        sync_rds_tags(cx, arn, &old.tags, &new.tags).await?;
    }
    Ok(())
}

/// Sends the ModifyDBInstance that makes `old` into `new`, if any setting
/// differs, after the snapshot a risky change needs, and waits for it.
async fn modify_and_wait(
    cx: &Context,
    id: &ResourceId,
    old: &DbInstanceSpec,
    new: &DbInstanceSpec,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    let Some(modify) = modification(cx, old, new)? else {
        return Ok(());
    };
    if let Some(change) = snapshots::risky_change(old, new).filter(|_| cx.snapshot_before_risk) {
        snapshots::take_before(cx, id, &new.identifier, change, waits).await?;
    }
    let out = modify.send().await.aws("ModifyDBInstance")?;
    let upgrading_to = upgrade::is_major_upgrade(&old.engine_version, &new.engine_version)
        .then_some(new.engine_version.as_str());
    // A change RDS makes at once (deletion protection, say) leaves the
    // instance `available` with nothing pending: then there is nothing to
    // wait for. Anything else must be seen to start before a wait for
    // `available` means anything; an upgrade always is.
    let starts_a_change = upgrading_to.is_some()
        || out
            .db_instance()
            .is_some_and(|db| db.db_instance_status() != Some("available") || has_pending(db));
    if starts_a_change {
        wait_change_started(cx, id, &new.identifier, upgrading_to, waits).await?;
    }
    let within = match upgrading_to {
        Some(_) => upgrade::UPGRADED_WITHIN,
        None => AVAILABLE_WITHIN,
    };
    wait_available_within(cx, id, &new.identifier, within, waits).await
}

/// The ModifyDBInstance call that makes `old` into `new`; `None` when no
/// setting it changes differs.
fn modification(
    cx: &Context,
    old: &DbInstanceSpec,
    new: &DbInstanceSpec,
) -> anyhow::Result<
    Option<aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder>,
> {
    let rds = &cx.clients.rds;
    let mut modify = rds
        .modify_db_instance()
        .db_instance_identifier(&new.identifier)
        .apply_immediately(true);
    let mut changed = false;
    if old.engine_version != new.engine_version {
        let major = |v: &str| v.split('.').next().map(str::to_string);
        modify = modify
            .engine_version(&new.engine_version)
            .allow_major_version_upgrade(major(&old.engine_version) != major(&new.engine_version));
        changed = true;
    }
    if old.instance_class != new.instance_class {
        modify = modify.db_instance_class(&new.instance_class);
        changed = true;
    }
    if old.allocated_storage_gb != new.allocated_storage_gb {
        if new.allocated_storage_gb < old.allocated_storage_gb {
            bail!(
                "RDS storage cannot shrink ({} GB to {} GB); restore a snapshot into a new instance instead",
                old.allocated_storage_gb,
                new.allocated_storage_gb
            );
        }
        modify = modify.allocated_storage(new.allocated_storage_gb);
        changed = true;
    }
    if old.storage_type != new.storage_type {
        modify = modify.storage_type(&new.storage_type);
        changed = true;
    }
    if old.multi_az != new.multi_az {
        modify = modify.multi_az(new.multi_az);
        changed = true;
    }
    if old.publicly_accessible != new.publicly_accessible {
        modify = modify.publicly_accessible(new.publicly_accessible);
        changed = true;
    }
    modify = backups_and_windows(modify, old, new);
    changed |= old.backup_retention_days != new.backup_retention_days
        || old.maintenance_window != new.maintenance_window
        || old.backup_window != new.backup_window;
    if old.deletion_protection != new.deletion_protection {
        modify = modify.deletion_protection(new.deletion_protection);
        changed = true;
    }
    if old.manage_master_password != new.manage_master_password {
        modify = modify.manage_master_user_password(new.manage_master_password);
        changed = true;
    }
    if old.subnet_group != new.subnet_group {
        modify = modify.db_subnet_group_name(cx.resolve(&new.subnet_group)?);
        changed = true;
    }
    if old.parameter_group != new.parameter_group {
        modify = modify.db_parameter_group_name(cx.resolve(&new.parameter_group)?);
        changed = true;
    }
    if old.security_groups != new.security_groups {
        modify = modify.set_vpc_security_group_ids(Some(resolve_all(cx, &new.security_groups)?));
        changed = true;
    }
    Ok(changed.then_some(modify))
}

/// The backups' retention and the two windows, each sent only when it changed.
fn backups_and_windows(
    modify: aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder,
    old: &DbInstanceSpec,
    new: &DbInstanceSpec,
) -> aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder {
    fn changed<T: PartialEq + Clone>(old: &T, new: &T) -> Option<T> {
        (old != new).then(|| new.clone())
    }
    modify
        .set_backup_retention_period(changed(
            &old.backup_retention_days,
            &new.backup_retention_days,
        ))
        .set_preferred_maintenance_window(changed(&old.maintenance_window, &new.maintenance_window))
        .set_preferred_backup_window(changed(&old.backup_window, &new.backup_window))
}

/// Deletes the instance, keeping a final snapshot and the automated backups:
/// a teardown must not lose data. Deletion protection is AWS's to enforce.
pub async fn delete_instance(
    cx: &Context,
    id: &ResourceId,
    identifier: &str,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    let snapshot = format!(
        "{identifier}-final-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    );
    let keep = cx.deletion.final_snapshot;
    let deleted = cx
        .clients
        .rds
        .delete_db_instance()
        .db_instance_identifier(identifier)
        .skip_final_snapshot(!keep)
        .set_final_db_snapshot_identifier(keep.then(|| snapshot.clone()))
        .delete_automated_backups(false)
        .send()
        .await;
    match deleted {
        Ok(_) if keep => cx.record_attribute(id, "final_snapshot", &snapshot),
        Ok(_) => {}
        Err(err) if error_code(&err) == Some("DBInstanceNotFound") => return Ok(()),
        Err(err) if error_code(&err) == Some("InvalidDBInstanceState") => {
            let text = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
            if text.contains("eletion protection") {
                bail!("RDS instance {identifier} has deletion protection on: set database.deletion_protection = false and deploy first, if you mean to delete it");
            }
            // An earlier run's delete still going (it was cut off): wait for it.
            if !text.contains("already being deleted") {
                return Err(err).aws("DeleteDBInstance");
            }
        }
        Err(err) => return Err(err).aws("DeleteDBInstance"),
    }
    // RDS keeps the instance `deleting` for minutes, holding its subnet
    // group, parameter group and network interfaces: what depends on it goes
    // only once it has gone. A steady poll notices within seconds (the SDK's
    // waiter backs off to two minutes between looks).
    let every = cx.poll_interval();
    let gone = async {
        loop {
            if describe_instance(cx, identifier).await?.is_none() {
                return anyhow::Ok(());
            }
            tokio::time::sleep(every).await;
        }
    };
    waits
        .report(
            id,
            "deleted (RDS keeps it `deleting` for minutes)",
            DELETED_WITHIN,
            async {
                tokio::time::timeout(DELETED_WITHIN, gone)
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "RDS instance {identifier} is still not deleted after {} minutes",
                            DELETED_WITHIN.as_secs() / 60
                        )
                    })?
            },
        )
        .await?
        .with_context(|| format!("waiting for RDS instance {identifier} to be deleted"))?;
    Ok(())
}

/// When deploy may reboot the instance for parameters that wait for one: a
/// reboot is downtime, so only when asked or inside the maintenance window.
pub struct RebootPolicy {
    /// `deploy --reboot-now`.
    pub now: bool,
    /// `database.maintenance_window` (weekly, UTC).
    pub window: String,
    /// The moment the decision is made.
    pub at: std::time::SystemTime,
}

/// What the reboot check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reboot {
    /// Nothing waited for a reboot.
    NotNeeded,
    Done,
    /// Parameters wait, and the policy does not allow a reboot now.
    Deferred,
}

/// Reboots the instance when its parameter group has changes that wait for
/// one and the policy allows it, and waits until it is back.
pub async fn reboot_if_parameters_pending(
    cx: &Context,
    id: &ResourceId,
    identifier: &str,
    policy: &RebootPolicy,
    waits: &Waits<'_>,
) -> anyhow::Result<Reboot> {
    // Discovery's look (or the create's or modify's last one) holds unless
    // this run changed the parameter group since.
    let settled = cx.attribute(id, PARAMETERS_PENDING_REBOOT).as_deref() == Some("false")
        && cx.attribute(id, PARAMETER_GROUP_CHANGED).is_none();
    if settled {
        return Ok(Reboot::NotNeeded);
    }
    let db = parameters_settled(cx, identifier).await?;
    if !parameters_pending_reboot(&db) {
        return Ok(Reboot::NotNeeded);
    }
    if !policy.now && !crate::config::windows::includes(&policy.window, policy.at) {
        return Ok(Reboot::Deferred);
    }
    cx.clients
        .rds
        .reboot_db_instance()
        .db_instance_identifier(identifier)
        .send()
        .await
        .aws("RebootDBInstance")?;
    wait_change_started(cx, id, identifier, None, waits).await?;
    wait_available(cx, id, identifier, waits).await?;
    Ok(Reboot::Done)
}

/// The instance once RDS has finished applying its parameter group: right
/// after ModifyDBParameterGroup it can read `applying` (DBParameterGroupStatus),
/// which is neither in sync nor waiting for a reboot yet.
async fn parameters_settled(cx: &Context, identifier: &str) -> anyhow::Result<DbInstance> {
    let started = tokio::time::Instant::now();
    loop {
        let Some(db) = describe_instance(cx, identifier).await? else {
            bail!("RDS instance {identifier} does not exist");
        };
        let status = |wanted: &str| {
            db.db_parameter_groups()
                .iter()
                .any(|g| g.parameter_apply_status() == Some(wanted))
        };
        if status("failed-to-apply") {
            bail!("RDS could not apply the parameter group of {identifier} (failed-to-apply): see the instance's events in the RDS console");
        }
        if !status("applying") || started.elapsed() > CHANGE_STARTS_WITHIN {
            return Ok(db);
        }
        tokio::time::sleep(cx.poll_interval()).await;
    }
}

impl Resource for DbInstanceSpec {
    async fn create(
        &self,
        cx: &Context,
        id: &ResourceId,
        waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_instance(cx, id, self, waits).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_instance(cx, &live.id, live.arn(), old, self, waits).await
    }

    async fn delete(&self, cx: &Context, live: &Live, waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_instance(cx, &live.id, &live.physical_id, waits).await
    }
}

#[cfg(test)]
mod tests {
    use super::groups::create_parameter_group;
    use super::*;
    use crate::resources::testing::context;
    use crate::resources::Unwatched;
    use aws_sdk_rds::operation::create_db_parameter_group::CreateDbParameterGroupOutput;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::describe_db_parameters::DescribeDbParametersOutput;
    use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
    use aws_sdk_rds::operation::modify_db_parameter_group::ModifyDbParameterGroupOutput;
    use aws_sdk_rds::types::Parameter;
    use aws_sdk_rds::types::PendingModifiedValues;
    use aws_sdk_rds::Client;
    use aws_smithy_mocks::mock;
    use std::collections::BTreeMap;

    /// DescribeDBInstances' answer: the instance in `status`.
    fn reading(status: &'static str) -> impl Fn() -> DescribeDbInstancesOutput + Send + Sync {
        move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(instance(status, None))
                .build()
        }
    }

    fn instance(status: &str, pending_class: Option<&str>) -> DbInstance {
        let mut db = DbInstance::builder()
            .db_instance_identifier("poolside-pilot")
            .db_instance_status(status);
        if let Some(class) = pending_class {
            db = db.pending_modified_values(
                PendingModifiedValues::builder()
                    .db_instance_class(class)
                    .build(),
            );
        }
        db.build()
    }

    /// DescribeDBInstances answering `status`, its parameter group `apply`
    /// (`pending-reboot`, `applying`, `in-sync`).
    fn with_parameters(status: &'static str, apply: &'static str) -> aws_smithy_mocks::Rule {
        mock!(Client::describe_db_instances).then_output(move || {
            let mut db = instance(status, None);
            db.db_parameter_groups =
                Some(vec![aws_sdk_rds::types::DbParameterGroupStatus::builder()
                    .db_parameter_group_name("poolside-pilot")
                    .parameter_apply_status(apply)
                    .build()]);
            DescribeDbInstancesOutput::builder()
                .db_instances(db)
                .build()
        })
    }

    fn reboot_accepted() -> aws_smithy_mocks::Rule {
        mock!(Client::reboot_db_instance).then_output(|| {
            aws_sdk_rds::operation::reboot_db_instance::RebootDbInstanceOutput::builder().build()
        })
    }

    fn spec(class: &str) -> DbInstanceSpec {
        DbInstanceSpec {
            identifier: "poolside-pilot".into(),
            engine: "postgres".into(),
            engine_version: "16".into(),
            instance_class: class.into(),
            allocated_storage_gb: 20,
            storage_type: "gp3".into(),
            storage_encrypted: true,
            multi_az: false,
            publicly_accessible: false,
            backup_retention_days: 7,
            maintenance_window: "sun:05:00-sun:06:00".into(),
            backup_window: "03:00-04:00".into(),
            deletion_protection: false,
            db_name: "poolside".into(),
            master_username: "poolside_admin".into(),
            manage_master_password: true,
            subnet_group: ResourceId::new(Kind::DbSubnetGroup, "main"),
            parameter_group: ResourceId::new(Kind::DbParameterGroup, "main"),
            security_groups: Default::default(),
            tags: Default::default(),
        }
    }

    /// A 10-minute create is noticed within one steady interval (10 s), not
    /// after the SDK waiter's backoff (30 s growing to 30 minutes).
    #[tokio::test(start_paused = true)]
    async fn the_wait_for_available_polls_at_a_steady_interval() {
        let statuses = mock!(Client::describe_db_instances)
            .sequence()
            .output(reading("creating"))
            .times(60)
            .output(reading("available"))
            .build();
        let cx = context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&statuses]));
        let id = ResourceId::new(Kind::DbInstance, "main");
        let started = tokio::time::Instant::now();
        wait_available(&cx, &id, "poolside-pilot", &Waits::new(&Unwatched))
            .await
            .unwrap();
        assert_eq!(statuses.num_calls(), 61);
        assert_eq!(started.elapsed(), Duration::from_secs(600));
    }

    /// A state the instance does not come back from ends the wait at once.
    #[tokio::test(start_paused = true)]
    async fn the_wait_for_available_stops_on_a_state_that_never_becomes_it() {
        let statuses = mock!(Client::describe_db_instances)
            .sequence()
            .output(reading("creating"))
            .output(reading("incompatible-parameters"))
            .build();
        let cx = context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&statuses]));
        let id = ResourceId::new(Kind::DbInstance, "main");
        let err = wait_available(&cx, &id, "poolside-pilot", &Waits::new(&Unwatched))
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("is incompatible-parameters: it will not become available"),
            "{text}"
        );
        assert_eq!(statuses.num_calls(), 2);
    }

    /// After a storage change the instance serves while RDS optimizes the
    /// volume, which can take a day: that ends the wait.
    #[tokio::test(start_paused = true)]
    async fn an_instance_optimizing_its_storage_is_ready() {
        let statuses = mock!(Client::describe_db_instances)
            .sequence()
            .output(reading("modifying"))
            .output(reading("storage-optimization"))
            .build();
        let cx = context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&statuses]));
        let id = ResourceId::new(Kind::DbInstance, "main");
        wait_available(&cx, &id, "poolside-pilot", &Waits::new(&Unwatched))
            .await
            .unwrap();
        assert_eq!(statuses.num_calls(), 2);
    }

    /// AWS reads `available` for a while after ModifyDBInstance: a wait that
    /// trusts the first look returns before the class change has started.
    #[tokio::test(start_paused = true)]
    async fn a_modify_waits_for_the_change_to_start_before_waiting_for_available() {
        let describe = |status: &'static str, pending: Option<&'static str>| {
            mock!(Client::describe_db_instances).then_output(move || {
                DescribeDbInstancesOutput::builder()
                    .db_instances(instance(status, pending))
                    .build()
            })
        };
        let modify = mock!(Client::modify_db_instance).then_output(|| {
            ModifyDbInstanceOutput::builder()
                .db_instance(instance("available", Some("db.t4g.large")))
                .build()
        });
        let stale = describe("available", Some("db.t4g.large"));
        let modifying = describe("modifying", None);
        let done = describe("available", None);
        let cx =
            context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&modify, &stale, &modifying, &done]));
        let id = ResourceId::new(Kind::DbInstance, "main");
        update_instance(
            &cx,
            &id,
            "arn:aws:rds:eu-west-1:123456789012:db:poolside-pilot",
            &spec("db.t4g.medium"),
            &spec("db.t4g.large"),
            &Waits::new(&Unwatched),
        )
        .await
        .unwrap();
        for (rule, what) in [
            (&stale, "stale"),
            (&modifying, "modifying"),
            (&done, "done"),
        ] {
            assert_eq!(rule.num_calls(), 1, "the {what} describe was not read");
        }
    }

    /// The data tier's reboot check reuses discovery's look at the instance
    /// (no call), unless this run changed the parameter group: then it reads
    /// again, and a static parameter waiting for a reboot gets one.
    #[tokio::test(start_paused = true)]
    async fn the_reboot_check_reads_the_instance_again_only_after_a_parameter_change() {
        let id = ResourceId::new(Kind::DbInstance, "main");
        let settled =
            context(|c| c.rds = crate::mocked!(aws_sdk_rds, Vec::<&aws_smithy_mocks::Rule>::new()));
        settled.record_attribute(&id, PARAMETERS_PENDING_REBOOT, "false");
        let asked = RebootPolicy {
            now: true,
            window: "sun:05:00-sun:06:00".into(),
            at: std::time::UNIX_EPOCH,
        };
        let rebooted = reboot_if_parameters_pending(
            &settled,
            &id,
            "poolside-pilot",
            &asked,
            &Waits::new(&Unwatched),
        )
        .await
        .unwrap();
        assert_eq!(
            rebooted,
            Reboot::NotNeeded,
            "nothing was pending when discovery looked"
        );

        let waiting = with_parameters("available", "pending-reboot");
        let reboot = reboot_accepted();
        let rebooting = with_parameters("rebooting", "applying");
        let done = with_parameters("available", "in-sync");
        let changed = context(|c| {
            c.rds = crate::mocked!(aws_sdk_rds, [&waiting, &reboot, &rebooting, &done])
        });
        changed.record_attribute(&id, PARAMETERS_PENDING_REBOOT, "false");
        changed.record_attribute(&id, PARAMETER_GROUP_CHANGED, "true");
        let rebooted = reboot_if_parameters_pending(
            &changed,
            &id,
            "poolside-pilot",
            &asked,
            &Waits::new(&Unwatched),
        )
        .await
        .unwrap();
        assert_eq!(rebooted, Reboot::Done);
        assert_eq!((waiting.num_calls(), reboot.num_calls()), (1, 1));
        assert_eq!(done.num_calls(), 1);
    }

    /// A reboot is downtime: without --reboot-now and outside the
    /// maintenance window, the parameters stay pending and RDS is not asked
    /// to reboot (no RebootDBInstance rule: a call would fail the test);
    /// inside the window, deploy reboots.
    #[tokio::test(start_paused = true)]
    async fn a_pending_reboot_waits_for_the_window_or_reboot_now() {
        let id = ResourceId::new(Kind::DbInstance, "main");
        // Right after the group changed, RDS may still read `applying`.
        let applying = with_parameters("available", "applying");
        // A rule answers once: each context gets its own.
        let looked = with_parameters("available", "pending-reboot");
        let cx = context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&applying, &looked]));
        cx.record_attribute(&id, PARAMETERS_PENDING_REBOOT, "true");
        // Sunday 2027-01-03 05:30 UTC.
        let sunday_0530 = std::time::UNIX_EPOCH + Duration::from_secs(1_798_954_200);
        let outside = RebootPolicy {
            now: false,
            window: "sat:05:00-sat:06:00".into(),
            at: sunday_0530,
        };
        let decided = reboot_if_parameters_pending(
            &cx,
            &id,
            "poolside-pilot",
            &outside,
            &Waits::new(&Unwatched),
        )
        .await
        .unwrap();
        assert_eq!(decided, Reboot::Deferred);
        assert_eq!((applying.num_calls(), looked.num_calls()), (1, 1));

        let reboot = reboot_accepted();
        let rebooting = with_parameters("rebooting", "applying");
        let done = with_parameters("available", "in-sync");
        let looked = with_parameters("available", "pending-reboot");
        let cx =
            context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&looked, &reboot, &rebooting, &done]));
        cx.record_attribute(&id, PARAMETERS_PENDING_REBOOT, "true");
        let inside = RebootPolicy {
            window: "sun:05:00-sun:06:00".into(),
            ..outside
        };
        let decided = reboot_if_parameters_pending(
            &cx,
            &id,
            "poolside-pilot",
            &inside,
            &Waits::new(&Unwatched),
        )
        .await
        .unwrap();
        assert_eq!(decided, Reboot::Done);
        assert_eq!(reboot.num_calls(), 1);
    }

    /// A change RDS makes at once (nothing pending) is not waited for twice.
    #[tokio::test(start_paused = true)]
    async fn a_modify_with_nothing_pending_waits_only_for_available() {
        let modify = mock!(Client::modify_db_instance).then_output(|| {
            ModifyDbInstanceOutput::builder()
                .db_instance(instance("available", None))
                .build()
        });
        let done = mock!(Client::describe_db_instances).then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(instance("available", None))
                .build()
        });
        let cx = context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&modify, &done]));
        let mut protected = spec("db.t4g.medium");
        protected.deletion_protection = true;
        update_instance(
            &cx,
            &ResourceId::new(Kind::DbInstance, "main"),
            "arn",
            &spec("db.t4g.medium"),
            &protected,
            &Waits::new(&Unwatched),
        )
        .await
        .unwrap();
        assert_eq!(done.num_calls(), 1);
    }

    /// With snapshot_before_changes, a class change waits for its snapshot:
    /// CreateDBSnapshot, `creating`, `available`, and only then
    /// ModifyDBInstance (the rules are matched in order). A failed snapshot
    /// stops the change: no ModifyDBInstance rule, so a call would fail.
    #[tokio::test(start_paused = true)]
    async fn a_class_change_waits_for_its_snapshot_and_a_failed_one_stops_it() {
        use aws_sdk_rds::operation::create_db_snapshot::CreateDbSnapshotOutput;
        use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
        let snapshot = |status: &'static str| {
            mock!(Client::describe_db_snapshots).then_output(move || {
                DescribeDbSnapshotsOutput::builder()
                    .db_snapshots(
                        aws_sdk_rds::types::DbSnapshot::builder()
                            .status(status)
                            .build(),
                    )
                    .build()
            })
        };
        let create = || {
            mock!(Client::create_db_snapshot)
                .match_requests(|r| {
                    r.db_snapshot_identifier()
                        .is_some_and(|n| n.starts_with("poolside-pilot-before-instance-class-"))
                })
                .then_output(|| CreateDbSnapshotOutput::builder().build())
        };
        let (created, creating, available) =
            (create(), snapshot("creating"), snapshot("available"));
        let modify = mock!(Client::modify_db_instance).then_output(|| {
            ModifyDbInstanceOutput::builder()
                .db_instance(instance("available", None))
                .build()
        });
        let reads = |status: &'static str| {
            mock!(Client::describe_db_instances).then_output(move || {
                DescribeDbInstancesOutput::builder()
                    .db_instances(instance(status, None))
                    .build()
            })
        };
        // RDS snapshots only an `available` instance: its own backup is
        // waited out first, and the instance is ready again before the change.
        let (backing_up, ready, ready_again, done) = (
            reads("backing-up"),
            reads("available"),
            reads("available"),
            reads("available"),
        );
        let mut cx = context(|c| {
            c.rds = crate::mocked!(
                aws_sdk_rds,
                [
                    &backing_up,
                    &ready,
                    &created,
                    &creating,
                    &available,
                    &ready_again,
                    &modify,
                    &done
                ]
            )
        });
        cx.snapshot_before_risk = true;
        let id = ResourceId::new(Kind::DbInstance, "main");
        let (old, new) = (spec("db.t4g.medium"), spec("db.t4g.large"));
        update_instance(&cx, &id, "arn", &old, &new, &Waits::new(&Unwatched))
            .await
            .unwrap();
        assert_eq!((backing_up.num_calls(), ready.num_calls()), (1, 1));
        assert_eq!((creating.num_calls(), available.num_calls()), (1, 1));
        assert_eq!((ready_again.num_calls(), modify.num_calls()), (1, 1));
        assert!(cx
            .attribute(&id, "snapshot_before_change")
            .is_some_and(|n| n.starts_with("poolside-pilot-before-instance-class-")));

        let (ready, created, failed) = (reads("available"), create(), snapshot("failed"));
        let mut cx = context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&ready, &created, &failed]));
        cx.snapshot_before_risk = true;
        let err = update_instance(&cx, &id, "arn", &old, &new, &Waits::new(&Unwatched))
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("the instance-class change was not made"),
            "{err:#}"
        );
    }

    /// AWS: wait until a parameter group's changes show before an instance
    /// uses it. The group is done only when DescribeDBParameters shows them.
    #[tokio::test(start_paused = true)]
    async fn a_new_parameter_group_is_done_when_its_values_show() {
        let wanted: BTreeMap<String, String> = [
            ("shared_preload_libraries", "pg_stat_statements,pg_cron"),
            ("cron.database_name", "poolside"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let create = mock!(Client::create_db_parameter_group)
            .then_output(|| CreateDbParameterGroupOutput::builder().build());
        let modify = mock!(Client::modify_db_parameter_group)
            .then_output(|| ModifyDbParameterGroupOutput::builder().build());
        let not_yet = mock!(Client::describe_db_parameters)
            .then_output(|| DescribeDbParametersOutput::builder().build());
        let shown_values = wanted.clone();
        let shown = mock!(Client::describe_db_parameters).then_output(move || {
            DescribeDbParametersOutput::builder()
                .set_parameters(Some(
                    shown_values
                        .iter()
                        .map(|(k, v)| {
                            Parameter::builder()
                                .parameter_name(k)
                                .parameter_value(v)
                                .build()
                        })
                        .collect(),
                ))
                .build()
        });
        let cx =
            context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&create, &modify, &not_yet, &shown]));
        let spec = DbParameterGroupSpec {
            name: "poolside-pilot-postgres16".into(),
            family: "postgres16".into(),
            description: "test".into(),
            parameters: wanted,
            tags: Default::default(),
        };
        create_parameter_group(&cx, &spec).await.unwrap();
        assert_eq!(not_yet.num_calls(), 1);
        assert_eq!(shown.num_calls(), 1);
    }

    #[test]
    fn a_newer_minor_of_the_same_major_is_not_drift() {
        assert!(same_major_not_older("16.6", "16.4"));
        assert!(same_major_not_older("16.4", "16.4"));
        assert!(!same_major_not_older("16.2", "16.4"));
        assert!(!same_major_not_older("17.1", "16.4"));
    }
}
