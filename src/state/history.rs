//! What tags cannot find (the domains the API's records were made in) and
//! the history of each environment's runs.

use super::store::{Precondition, Store};
use crate::resources::{error_code, AwsResultExt as _};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

// ---- what tags cannot find ----

/// A domain the API's records were made in. Route 53 records take no tags
/// and the certificate is found by its name, so once an environment file
/// drops or changes `api.domain_name`, the state bucket is how plan, deploy
/// and destroy still find the record and certificate poolside made there,
/// to delete them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RememberedDomain {
    pub domain_name: String,
    pub zone_id: String,
}

pub(super) fn domain_key(environment: &str) -> String {
    format!("domains/{environment}.json")
}

/// Every domain the environment may still have records in.
pub async fn remembered_domains(
    store: &Store,
    environment: &str,
) -> anyhow::Result<Vec<RememberedDomain>> {
    let Some((body, _)) = store.read(&domain_key(environment)).await? else {
        return Ok(vec![]);
    };
    Ok(serde_json::from_slice(&body).unwrap_or_default())
}

/// Remembers these domains (before anything is made in a new one), or
/// forgets them all (an empty list, once nothing is left in any).
pub async fn remember_domains(
    store: &Store,
    environment: &str,
    domains: &[RememberedDomain],
) -> anyhow::Result<()> {
    let key = domain_key(environment);
    if domains.is_empty() {
        store
            .s3
            .delete_object()
            .bucket(&store.bucket)
            .expected_bucket_owner(&store.owner)
            .key(&key)
            .send()
            .await
            .aws("DeleteObject")?;
    } else {
        store
            .write(&key, serde_json::to_vec(domains)?, Precondition::None)
            .await?;
    }
    Ok(())
}

// ---- history ----

/// One run of a mutating command, as `poolside history` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub command: String,
    pub environment: String,
    /// The operator's own ARN.
    pub who: String,
    /// The role session the run acted as (`target.role_arn`), as STS names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_as: Option<String>,
    pub host: String,
    pub poolside_version: String,
    pub started_at: u64,
    pub duration_ms: u64,
    /// ok, error, refused, interrupted, cancelled, dry_run.
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<serde_json::Value>,
    pub api_calls: u64,
    pub lock_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over_lock: Option<String>,
}

impl Record {
    /// Who ran it, for a table: the operator, and the role they acted as.
    pub fn by(&self) -> String {
        match &self.acting_as {
            // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
            Some(session) => {
                let role = session.split('/').nth(1).unwrap_or(session);
                format!("{} as role {role}", self.who)
            }
            None => self.who.clone(),
        }
    }
}

/// Keys that sort newest first: S3 lists keys in ascending order.
pub(super) fn history_key(environment: &str, started_at_ms: u64, lock_id: &str) -> String {
    format!(
        "history/{environment}/{:020}-{lock_id}.json",
        u64::MAX / 2 - started_at_ms
    )
}

/// Appends a record, keyed by when it is written (its run's end).
pub async fn append(store: &Store, record: &Record) -> anyhow::Result<()> {
    let written_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let key = history_key(&record.environment, written_ms, &record.lock_id);
    store
        .write(&key, serde_json::to_vec(record)?, Precondition::None)
        .await?;
    Ok(())
}

/// The newest `limit` records, newest first.
pub async fn list(store: &Store, environment: &str, limit: usize) -> anyhow::Result<Vec<Record>> {
    let out = match store
        .s3
        .list_objects_v2()
        .bucket(&store.bucket)
        .prefix(format!("history/{environment}/"))
        .max_keys(limit as i32)
        .send()
        .await
    {
        Ok(out) => out,
        Err(err) if error_code(&err) == Some("NoSuchBucket") => return Ok(vec![]),
        Err(err) => return Err(err).aws("ListObjectsV2"),
    };
    let mut records = Vec::new();
    for object in out.contents() {
        let Some(key) = object.key() else { continue };
        if let Some((body, _)) = store.read(key).await? {
            match serde_json::from_slice(&body) {
                Ok(record) => records.push(record),
                Err(err) => {
                    tracing::warn!(%key, %err, "skipping a history record poolside cannot read")
                }
            }
        }
    }
    Ok(records)
}
