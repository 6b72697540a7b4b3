//! The instance's snapshots, as `poolside snapshots` lists them: RDS's
//! automated ones and the manual ones poolside made (destroy's final
//! snapshot). Read-only; they outlive the instance, so they are found by the
//! instance's identifier, not through discovery.

use super::super::aws_error::AwsResultExt;
use super::super::context::Context;
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
}

/// Every snapshot RDS keeps of the instance `identifier` (existing or
/// deleted), newest first.
pub async fn list(cx: &Context, identifier: &str) -> anyhow::Result<Vec<Snapshot>> {
    let mut pages = cx
        .clients
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(identifier)
        .into_paginator()
        .send();
    let final_prefix = format!("{identifier}-final-");
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.aws("DescribeDBSnapshots")?;
        for s in page.db_snapshots() {
            let name = s.db_snapshot_identifier().unwrap_or_default().to_string();
            found.push(Snapshot {
                kept_by_destroy: name.starts_with(&final_prefix),
                identifier: name,
                kind: s.snapshot_type().unwrap_or("unknown").to_string(),
                created: s
                    .snapshot_create_time()
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
                status: s.status().unwrap_or("unknown").to_string(),
                allocated_storage_gb: s.allocated_storage().unwrap_or_default(),
                engine_version: s.engine_version().map(str::to_string),
            });
        }
    }
    // RFC 3339 in UTC sorts as text; one still being created comes first.
    found.sort_by(|a, b| {
        b.created
            .as_deref()
            .unwrap_or("~")
            .cmp(a.created.as_deref().unwrap_or("~"))
    });
    Ok(found)
}
