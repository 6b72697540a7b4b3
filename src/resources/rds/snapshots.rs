//! The instance's snapshots: the manual one deploy takes before a change
//! that is hard to undo, and the list `poolside snapshots` prints (RDS's
//! automated ones, those taken before a change, destroy's final one). They
//! outlive the instance, so they are found by the instance's identifier,
//! not through discovery. Nothing here deletes a snapshot.

use crate::resources::aws_error::{error_code, AwsResultExt};
use crate::resources::context::Context;
use anyhow::Context as _;
use aws_sdk_rds::types::DbSnapshot;
use serde::Serialize;

/// One snapshot of the instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub identifier: String,
    /// `manual` or `automated`.
    pub kind: String,
    /// RFC 3339; missing while RDS is still creating it.
    pub created: Option<String>,
    /// `creating`, `available`, ...
    pub status: String,
    pub allocated_storage_gb: i32,
    pub engine_version: Option<String>,
    /// The snapshot `destroy` kept when it deleted the instance.
    pub kept_by_destroy: bool,
    /// The change deploy took it before (`instance-class`, `storage-type`,
    /// `major-upgrade`), for a snapshot taken before a change.
    pub taken_before: Option<String>,
}

/// The automated backups RDS retained of a deleted instance (destroy
/// deletes it with `DeleteAutomatedBackups=false`): the instance can be
/// restored from them to a point in their window until their retention
/// ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetainedBackup {
    /// `retained` (the instance is gone).
    pub status: String,
    /// The window a point-in-time restore can choose from (RFC 3339).
    pub restorable_from: Option<String>,
    pub restorable_until: Option<String>,
    /// The instance's backup retention: RDS keeps them as long as their last
    /// system snapshot would have been kept.
    pub retention_days: Option<i32>,
    pub allocated_storage_gb: Option<i32>,
    pub engine_version: Option<String>,
    /// What a restore names (`RestoreDBInstanceToPointInTime`'s
    /// `SourceDBInstanceAutomatedBackupsArn`).
    pub arn: Option<String>,
}

/// The retained automated backups of the deleted instance `identifier`.
/// DescribeDBInstanceAutomatedBackups' `DBInstanceIdentifier` must name an
/// existing instance, so the region's retained ones are read and matched
/// by the identifier they were taken of.
pub async fn retained_backups(
    cx: &Context,
    identifier: &str,
) -> anyhow::Result<Vec<RetainedBackup>> {
    let mut pages = cx
        .clients
        .rds
        .describe_db_instance_automated_backups()
        .filters(
            aws_sdk_rds::types::Filter::builder()
                .name("status")
                .values("retained")
                .build(),
        )
        .into_paginator()
        .send();
    let mut found = Vec::new();
    let time = |t: Option<&aws_smithy_types::DateTime>| {
        t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
    };
    while let Some(page) = pages.next().await {
        let page = page.aws("DescribeDBInstanceAutomatedBackups")?;
        for backup in page.db_instance_automated_backups() {
            // An emulator may not filter: the status is checked here too.
            if backup.db_instance_identifier() != Some(identifier)
                || backup.status() != Some("retained")
            {
                continue;
            }
            let window = backup.restore_window();
            found.push(RetainedBackup {
                status: backup.status().unwrap_or_default().to_string(),
                restorable_from: time(window.and_then(|w| w.earliest_time())),
                restorable_until: time(window.and_then(|w| w.latest_time())),
                retention_days: backup.backup_retention_period(),
                allocated_storage_gb: backup.allocated_storage(),
                engine_version: backup.engine_version().map(str::to_string),
                arn: backup
                    .db_instance_automated_backups_arn()
                    .map(str::to_string),
            });
        }
    }
    Ok(found)
}

/// Every snapshot RDS keeps of the instance `identifier` (existing or
/// deleted), newest first: the manual ones, from the region's manual
/// snapshots by the instance they were taken of (DescribeDBSnapshots'
/// `DBInstanceIdentifier` must name an existing instance, and after
/// `destroy` none exists), and the automated ones while the instance exists.
pub async fn list(cx: &Context, identifier: &str) -> anyhow::Result<Vec<Snapshot>> {
    let mut raw: Vec<DbSnapshot> = Vec::new();
    let mut manual = cx
        .clients
        .rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .send();
    while let Some(page) = manual.next().await {
        raw.extend_from_slice(page.aws("DescribeDBSnapshots")?.db_snapshots());
    }
    let mut automated = cx
        .clients
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(identifier)
        .snapshot_type("automated")
        .into_paginator()
        .send();
    while let Some(page) = automated.next().await {
        match page {
            Ok(page) => raw.extend_from_slice(page.db_snapshots()),
            // The instance is gone: its automated backups are retained
            // ones ([`retained_backups`]).
            Err(err) if error_code(&err) == Some("DBInstanceNotFound") => break,
            Err(err) => return Err(err).aws("DescribeDBSnapshots"),
        }
    }
    let mut found: Vec<Snapshot> = raw
        .iter()
        .filter(|s| s.db_instance_identifier() == Some(identifier))
        .map(|s| snapshot(s, identifier))
        .collect();
    // RFC 3339 in UTC sorts as text; one still being created comes first.
    found.sort_by(|a, b| {
        b.created
            .as_deref()
            .unwrap_or("~")
            .cmp(a.created.as_deref().unwrap_or("~"))
    });
    Ok(found)
}

fn snapshot(s: &DbSnapshot, identifier: &str) -> Snapshot {
    let name = s.db_snapshot_identifier().unwrap_or_default().to_string();
    let taken_before = name
        .strip_prefix(&format!("{identifier}-before-"))
        .and_then(|rest| rest.rsplit_once('-').map(|(change, _)| change.to_string()));
    Snapshot {
        taken_before,
        kept_by_destroy: name.starts_with(&format!("{identifier}-final-")),
        identifier: name,
        kind: s.snapshot_type().unwrap_or("unknown").to_string(),
        created: s
            .snapshot_create_time()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        status: s.status().unwrap_or("unknown").to_string(),
        allocated_storage_gb: s.allocated_storage().unwrap_or_default(),
        engine_version: s.engine_version().map(str::to_string),
    }
}

/// A change of the instance that is hard to undo, by the name its snapshot
/// gets: `instance-class` (a new class can behave differently under the same
/// load, and going back is another outage), `storage-type`, `major-upgrade`.
pub fn risky_change(
    old: &crate::resources::spec::DbInstanceSpec,
    new: &crate::resources::spec::DbInstanceSpec,
) -> Option<&'static str> {
    let major = |v: &str| v.split('.').next().map(str::to_string);
    if major(&old.engine_version) != major(&new.engine_version) {
        Some("major-upgrade")
    } else if old.instance_class != new.instance_class {
        Some("instance-class")
    } else if old.storage_type != new.storage_type {
        Some("storage-type")
    } else {
        None
    }
}

/// The snapshot's identifier: `<instance>-before-<change>-<unix seconds>`.
pub fn before_name(identifier: &str, change: &str, at: std::time::SystemTime) -> String {
    let seconds = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("{identifier}-before-{change}-{seconds}")
}

/// How long a manual snapshot may take (a large instance's first one is slow).
const AVAILABLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(4 * 60 * 60);

/// Takes a manual snapshot of the instance before `change` and waits until
/// RDS reports it `available`: the change does not start without it (a
/// snapshot that fails stops the change). The snapshot is kept: nothing
/// poolside does deletes it.
pub async fn take_before(
    cx: &Context,
    id: &crate::model::ResourceId,
    identifier: &str,
    change: &str,
    waits: &crate::resources::waits::Waits<'_>,
) -> anyhow::Result<String> {
    // RDS snapshots an instance only while it is `available` (not during
    // its own backup, say), and changes it only once it is again.
    super::instance_state::wait_available(cx, id, identifier, waits).await?;
    let name = before_name(identifier, change, std::time::SystemTime::now());
    let created = cx
        .clients
        .rds
        .create_db_snapshot()
        .db_instance_identifier(identifier)
        .db_snapshot_identifier(&name)
        .send()
        .await;
    if let Err(err) = &created {
        if error_code(err) == Some("SnapshotQuotaExceeded") {
            anyhow::bail!(
                "RDS refuses the snapshot before the {change} change: the region's quota of manual snapshots is used up (poolside keeps the ones it takes; `poolside snapshots --env` lists them, and old ones can be deleted with aws rds delete-db-snapshot). The {change} change was not made"
            );
        }
    }
    created
        .aws("CreateDBSnapshot")
        .with_context(|| format!("the snapshot before the {change} change"))?;
    cx.record_attribute(id, "snapshot_before_change", &name);
    let every = cx.poll_interval();
    let available = async {
        loop {
            let described = cx
                .clients
                .rds
                .describe_db_snapshots()
                .db_snapshot_identifier(&name)
                .send()
                .await;
            // Just created, it may not be listed yet (eventual consistency).
            let out = match described {
                Err(err) if error_code(&err) == Some("DBSnapshotNotFound") => {
                    tokio::time::sleep(every).await;
                    continue;
                }
                other => other.aws("DescribeDBSnapshots")?,
            };
            match out.db_snapshots().first().and_then(|s| s.status()) {
                Some("available") => return anyhow::Ok(()),
                Some(status @ ("failed" | "deleted" | "deleting")) => anyhow::bail!(
                    "RDS reports snapshot {name} `{status}`: the {change} change was not made"
                ),
                _ => tokio::time::sleep(every).await,
            }
        }
    };
    waits
        .report(
            id,
            &format!("snapshot {name} before the {change} change"),
            AVAILABLE_WITHIN,
            async {
                tokio::time::timeout(AVAILABLE_WITHIN, available)
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "snapshot {name} is still not available after {} hours: the {change} change was not made",
                            AVAILABLE_WITHIN.as_secs() / 3600
                        )
                    })?
            },
        )
        .await??;
    super::instance_state::wait_available(cx, id, identifier, waits).await?;
    Ok(name)
}
