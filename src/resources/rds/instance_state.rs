//! What RDS says of the instance and the waits on it: its description,
//! the attributes the rest of a run reads from it, and the polls for a
//! change to start and for `available`.

use super::groups::POLL_EVERY;
use super::upgrade;
use crate::model::*;
use crate::resources::aws_error::{error_code, AwsResultExt};
use crate::resources::context::Context;
use crate::resources::waits::Waits;
use anyhow::{anyhow, bail, Context as _};
use aws_sdk_rds::types::{DbInstance, PendingModifiedValues};
use std::collections::BTreeMap;
use std::time::Duration;

/// A real create takes about ten minutes, a multi-AZ conversion longer.
pub(super) const AVAILABLE_WITHIN: Duration = Duration::from_secs(60 * 60);
/// Right after ModifyDBInstance or RebootDBInstance, DescribeDBInstances may
/// still read `available` for a while: a wait that trusts it returns before
/// the change has started. How long to look for the change to start.
pub(super) const CHANGE_STARTS_WITHIN: Duration = Duration::from_secs(5 * 60);

pub(super) async fn describe_instance(
    cx: &Context,
    identifier: &str,
) -> anyhow::Result<Option<DbInstance>> {
    match cx
        .clients
        .rds
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(err) if error_code(&err) == Some("DBInstanceNotFound") => Ok(None),
        Err(err) => Err(err).aws("DescribeDBInstances"),
    }
}

/// What the data tier and tag updates read: the endpoint, the master secret, the ARN.
pub(super) fn instance_attributes(db: &DbInstance) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    if let Some(endpoint) = db.endpoint() {
        let address = endpoint.address().unwrap_or_default().to_string();
        attributes.insert("address".to_string(), address);
        let port = endpoint.port().unwrap_or(5432).to_string();
        attributes.insert("port".to_string(), port);
    }
    if let Some(secret) = db.master_user_secret().and_then(|s| s.secret_arn()) {
        attributes.insert("master_secret_arn".to_string(), secret.to_string());
    }
    if let Some(arn) = db.db_instance_arn() {
        attributes.insert("arn".to_string(), arn.to_string());
    }
    // The version that runs: the spec reads a newer minor as the file's.
    if let Some(version) = db.engine_version() {
        attributes.insert(RUNNING_ENGINE_VERSION.to_string(), version.to_string());
    }
    attributes.insert(
        PARAMETERS_PENDING_REBOOT.to_string(),
        parameters_pending_reboot(db).to_string(),
    );
    attributes
}

/// Instance attributes: whether the last look saw parameters waiting for a
/// reboot, and whether this run changed the parameter group since.
pub const PARAMETERS_PENDING_REBOOT: &str = "parameters_pending_reboot";
/// Instance attribute: the engine version RDS reports, minor included.
pub const RUNNING_ENGINE_VERSION: &str = "engine_version";

pub(super) fn parameters_pending_reboot(db: &DbInstance) -> bool {
    db.db_parameter_groups()
        .iter()
        .any(|g| g.parameter_apply_status() == Some("pending-reboot"))
}

/// The states from which an instance does not become available by itself
/// (the SDK's DBInstanceAvailable waiter fails on the same ones).
pub(super) const NEVER_AVAILABLE: [&str; 10] = [
    "deleted",
    "deleting",
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "inaccessible-encryption-credentials",
    "restore-error",
    "storage-full",
    "stopped",
];

/// Polls until the instance is `available` (or serving while RDS optimizes
/// its storage), at [`Context::poll_interval`], reporting the time spent.
/// The SDK's waiter backs off from 30 s to 30 minutes between looks.
pub(super) async fn wait_available(
    cx: &Context,
    id: &ResourceId,
    identifier: &str,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    wait_available_within(cx, id, identifier, AVAILABLE_WITHIN, waits).await
}

pub(super) async fn wait_available_within(
    cx: &Context,
    id: &ResourceId,
    identifier: &str,
    within: Duration,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    let available = crate::resources::waits::poll(cx.poll_interval(), || async {
        let Some(db) = describe_instance(cx, identifier).await? else {
            bail!("RDS instance {identifier} does not exist");
        };
        match db.db_instance_status().unwrap_or_default() {
            // After a storage change RDS optimizes the volume for hours (up
            // to a day) while the instance serves normally.
            "available" | "storage-optimization" => Ok(Some(db)),
            status if NEVER_AVAILABLE.contains(&status) => {
                bail!("RDS instance {identifier} is {status}: it will not become available")
            }
            _ => Ok(None),
        }
    });
    let db = waits
        .report(
            id,
            "available",
            within,
            tokio::time::timeout(within, available),
        )
        .await?
        .map_err(|_| {
            anyhow!(
                "RDS instance {identifier} did not become available within {} minutes",
                within.as_secs() / 60
            )
        })?
        .with_context(|| format!("waiting for RDS instance {identifier} to become available"))?;
    // The last describe has the endpoint and secret the data tier needs.
    for (key, value) in instance_attributes(&db) {
        cx.record_attribute(id, &key, &value);
    }
    Ok(())
}

/// Whether the instance lists modifications not yet applied.
pub(super) fn has_pending(db: &DbInstance) -> bool {
    db.pending_modified_values()
        .is_some_and(|p| *p != PendingModifiedValues::builder().build())
}

/// Polls until the instance is seen to leave `available` (or its pending
/// changes to clear, if RDS applied them between two looks). Gives up
/// quietly after [`CHANGE_STARTS_WITHIN`]: the change may have been quicker
/// than the polling, and the wait for `available` that follows still holds.
pub(super) async fn wait_change_started(
    cx: &Context,
    id: &ResourceId,
    identifier: &str,
    upgrading_to: Option<&str>,
    waits: &Waits<'_>,
) -> anyhow::Result<()> {
    let poll = async {
        let started = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            let Some(db) = describe_instance(cx, identifier).await? else {
                bail!("RDS instance {identifier} disappeared while it was being changed");
            };
            let status = db.db_instance_status().unwrap_or_default();
            if started_yet(&db, upgrading_to) {
                tracing::debug!(identifier, status, "RDS change started");
                return Ok(());
            }
            if let Some(target) =
                upgrading_to.filter(|_| started.elapsed() >= UPGRADE_STARTS_WITHIN)
            {
                bail!("RDS accepted the upgrade of {identifier} to {target} but has not started it within {} minutes (it may apply pending maintenance first): the next deploy waits for it again", UPGRADE_STARTS_WITHIN.as_secs() / 60);
            }
            if upgrading_to.is_none() && started.elapsed() >= CHANGE_STARTS_WITHIN {
                tracing::warn!(identifier, "RDS still reports `available` with changes pending; waiting for `available` anyway");
                return Ok(());
            }
        }
    };
    let limit = match upgrading_to {
        Some(_) => UPGRADE_STARTS_WITHIN,
        None => CHANGE_STARTS_WITHIN,
    };
    waits.report(id, "the change to start", limit, poll).await?
}

/// Whether the change has started. An upgrade has once the instance
/// leaves `available` or runs the new major, and not while RDS still lists
/// the new version as pending; any other change once the instance leaves
/// `available` or nothing is pending any more.
fn started_yet(db: &DbInstance, upgrading_to: Option<&str>) -> bool {
    let status = db.db_instance_status().unwrap_or_default();
    match upgrading_to {
        Some(target) => {
            let queued = db
                .pending_modified_values()
                .is_some_and(|p| p.engine_version().is_some());
            let runs_target = db
                .engine_version()
                .is_some_and(|v| upgrade::major(v) == upgrade::major(target));
            !queued && (status != "available" || runs_target)
        }
        None => {
            let rebooting_for_parameters = db
                .db_parameter_groups()
                .iter()
                .any(|g| g.parameter_apply_status() == Some("pending-reboot"));
            status != "available" || (!has_pending(db) && !rebooting_for_parameters)
        }
    }
}

/// An upgrade RDS accepted may wait for pending maintenance before it starts.
const UPGRADE_STARTS_WITHIN: Duration = Duration::from_secs(30 * 60);
