//! What poolside keeps about its own runs, in a state bucket of the account
//! and region (`poolside-state-<account>-<region>`, made on first use:
//! versioned, encrypted, public access blocked, TLS only):
//!
//! - **the lock** of each environment, `locks/<env>.json`, taken by every
//!   mutating command with a conditional create (`If-None-Match: *`), so two
//!   operators on two machines cannot both hold it. The holder renews its
//!   lease while it runs (a conditional overwrite on its own ETag); a lease
//!   that expired (its holder crashed) may be taken over, by a conditional
//!   overwrite on the ETag that was read, and the takeover is recorded;
//! - **the history** of each environment, `history/<env>/<key>.json`, one
//!   record per deploy, destroy or unlock, keyed so that S3 lists the newest
//!   first.
//!
//! S3 has offered conditional writes since 2024 and conditional deletes
//! since 2025; moto implements them both (tested here). A lease is judged by
//! the clock of the machine that reads it: machines whose clocks are minutes
//! apart could take over a live lock early, so the lease is generous.

use crate::aws::Clients;
use crate::resources::{error_code, AwsResultExt as _};
use anyhow::{anyhow, bail, Context as _};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a lock holds without renewal, unless `POOLSIDE_LOCK_LEASE`
/// (e.g. `30s`) says otherwise: the tests shorten it to see a takeover.
pub fn lease() -> Duration {
    std::env::var("POOLSIDE_LOCK_LEASE")
        .ok()
        .and_then(|text| humantime::parse_duration(&text).ok())
        .filter(|d| *d >= Duration::from_secs(2))
        .unwrap_or(Duration::from_secs(120))
}

/// The holder renews its lease four times per lease.
fn renew_every() -> Duration {
    lease() / 4
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The state bucket of one account and region.
#[derive(Clone)]
pub struct Store {
    s3: aws_sdk_s3::Client,
    pub bucket: String,
    /// The account that must own the bucket: every call says so
    /// (`ExpectedBucketOwner`), so a bucket of this name in another account
    /// is refused by S3 rather than read or written.
    owner: String,
    /// An emulator speaks plain HTTP: its bucket gets no TLS-only policy.
    emulator: bool,
}

impl Store {
    pub fn bucket_name(account_id: &str, region: &str) -> String {
        format!("poolside-state-{account_id}-{region}")
    }

    /// The store, creating its bucket when this account and region have none.
    pub async fn open(
        clients: &Clients,
        account_id: &str,
        region: &str,
        partition: &str,
        emulator: bool,
    ) -> anyhow::Result<Store> {
        let store = Store {
            s3: clients.s3.clone(),
            bucket: Store::bucket_name(account_id, region),
            owner: account_id.to_string(),
            emulator,
        };
        if store.head().await? {
            return Ok(store);
        }
        store.create(region, partition).await?;
        Ok(store)
    }

    /// The store if its bucket exists; never creates it (read-only commands).
    pub async fn existing(
        clients: &Clients,
        account_id: &str,
        region: &str,
    ) -> anyhow::Result<Option<Store>> {
        let store = Store {
            s3: clients.s3.clone(),
            bucket: Store::bucket_name(account_id, region),
            owner: account_id.to_string(),
            emulator: false,
        };
        Ok(store.head().await?.then_some(store))
    }

    /// Whether the bucket exists in this account. S3 answers 403 both when
    /// the name belongs to another account (bucket names are global) and
    /// when the caller may not list it: the error says both.
    async fn head(&self) -> anyhow::Result<bool> {
        let head = self
            .s3
            .head_bucket()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .send()
            .await;
        match head {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(error_code(&err), Some("NotFound" | "NoSuchBucket"))
                    || status_of(&err) == Some(404) =>
            {
                Ok(false)
            }
            Err(err) if status_of(&err) == Some(403) => Err(self.not_ours("HeadBucket")),
            Err(err) => Err(err)
                .aws("HeadBucket")
                .context("the poolside state bucket"),
        }
    }

    fn not_ours(&self, operation: &str) -> anyhow::Error {
        anyhow!(
            "the poolside state bucket `{}` answered 403 to {operation}: either it belongs to another AWS account (bucket names are global; poolside asks S3 to check that account {} owns it), or these credentials lack s3:ListBucket on it (see `poolside iam-policy`). poolside keeps the lock and history there and cannot go on without it",
            self.bucket, self.owner
        )
    }

    async fn create(&self, region: &str, partition: &str) -> anyhow::Result<()> {
        use aws_sdk_s3::types::*;
        let s3 = &self.s3;
        let mut create = s3.create_bucket().bucket(&self.bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => {}
            // Another poolside made it a moment ago.
            Err(err) if error_code(&err) == Some("BucketAlreadyOwnedByYou") => {}
            Err(err) if error_code(&err) == Some("BucketAlreadyExists") => {
                return Err(self.not_ours("CreateBucket (BucketAlreadyExists)"))
            }
            Err(err) => {
                return Err(err)
                    .aws("CreateBucket")
                    .context("creating the poolside state bucket")
            }
        }
        self.protect().await?;
        self.expire_old_versions().await?;
        self.require_tls(partition).await
    }

    /// No public access, versions kept, encrypted at rest.
    async fn protect(&self) -> anyhow::Result<()> {
        use aws_sdk_s3::types::*;
        let s3 = &self.s3;
        s3.put_public_access_block()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .aws("PutPublicAccessBlock")?;
        s3.put_bucket_versioning()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .aws("PutBucketVersioning")?;
        s3.put_bucket_encryption()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(ServerSideEncryption::Aes256)
                                    .build()?,
                            )
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await
            .aws("PutBucketEncryption")?;
        Ok(())
    }

    async fn expire_old_versions(&self) -> anyhow::Result<()> {
        use aws_sdk_s3::types::*;
        let s3 = &self.s3;
        // Every lease renewal writes a new version of the lock object: keep
        // the old ones a day, not forever. The history's records are written
        // once; their old versions (none, unless edited by hand) go after 90.
        let expire_old_versions = |id: &str, prefix: &str, days: i32| {
            LifecycleRule::builder()
                .id(id)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(days)
                        .build(),
                )
                .expiration(
                    LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                )
                .build()
        };
        s3.put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(expire_old_versions("lock-renewals", "locks/", 1)?)
                    .rules(expire_old_versions("history-edits", "history/", 90)?)
                    .build()?,
            )
            .send()
            .await
            .aws("PutBucketLifecycleConfiguration")?;
        Ok(())
    }

    async fn require_tls(&self, partition: &str) -> anyhow::Result<()> {
        let s3 = &self.s3;
        let arn = format!("arn:{partition}:s3:::{}", self.bucket);
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, format!("{arn}/*")],
                "Condition": { "Bool": { "aws:SecureTransport": "false" } }
            }]
        });
        // On an emulator (plain HTTP) a TLS-only policy would lock poolside out.
        if !self.emulator {
            s3.put_bucket_policy()
                .bucket(&self.bucket)
                .expected_bucket_owner(&self.owner)
                .policy(policy.to_string())
                .send()
                .await
                .aws("PutBucketPolicy")?;
        }
        Ok(())
    }

    /// The object's body and ETag; `None` when there is none.
    async fn read(&self, key: &str) -> anyhow::Result<Option<(Vec<u8>, String)>> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                let body = out
                    .body
                    .collect()
                    .await
                    .context("reading from the state bucket")?;
                Ok(Some((body.into_bytes().to_vec(), etag)))
            }
            Err(err) if error_code(&err) == Some("NoSuchKey") => Ok(None),
            Err(err) => Err(err).aws("GetObject"),
        }
    }

    /// Writes `body` under a precondition; `Ok(None)` when it did not hold.
    async fn write(
        &self,
        key: &str,
        body: Vec<u8>,
        precondition: Precondition<'_>,
    ) -> anyhow::Result<Option<String>> {
        Ok(match self.put(key, body, precondition).await? {
            Put::Written(etag) => Some(etag),
            Put::Refused(_) => None,
        })
    }

    /// Writes `body` under a precondition, saying why S3 refused it.
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        precondition: Precondition<'_>,
    ) -> anyhow::Result<Put> {
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        put = match precondition {
            Precondition::Absent => put.if_none_match("*"),
            Precondition::Is(etag) => put.if_match(etag),
            Precondition::None => put,
        };
        match put.send().await {
            Ok(out) => Ok(Put::Written(out.e_tag().unwrap_or_default().to_string())),
            Err(err) => match error_code(&err) {
                Some("PreconditionFailed") => Ok(Put::Refused(Refusal::PreconditionFailed)),
                Some("ConditionalRequestConflict") => Ok(Put::Refused(Refusal::Conflict)),
                // If-Match on a key that no longer exists.
                Some("NoSuchKey") => Ok(Put::Refused(Refusal::Missing)),
                _ if status_of(&err) == Some(404) => Ok(Put::Refused(Refusal::Missing)),
                _ if status_of(&err) == Some(403) => Err(self.not_ours("PutObject")),
                _ => Err(err).aws("PutObject"),
            },
        }
    }

    async fn delete_if(&self, key: &str, etag: &str) -> anyhow::Result<bool> {
        match self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    error_code(&err),
                    Some("PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey")
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(err).aws("DeleteObject"),
        }
    }
}

/// What a conditional write did.
enum Put {
    Written(String),
    Refused(Refusal),
}

/// Why S3 refused a conditional write.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// 412: the object is not the one the condition named.
    PreconditionFailed,
    /// 409: another conditional write to the key was in flight; S3 says to
    /// read the object again and retry.
    Conflict,
    /// 404: `If-Match` on an object that no longer exists.
    Missing,
}

fn status_of<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

enum Precondition<'a> {
    Absent,
    Is(&'a str),
    None,
}

/// Who holds an environment's lock, as the lock object says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    pub lock_id: String,
    pub environment: String,
    pub who: String,
    pub host: String,
    pub command: String,
    pub pid: u32,
    pub started_at: u64,
    pub renewed_at: u64,
    pub lease_seconds: u64,
    /// The lock this one took over after its lease expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over: Option<Box<LockInfo>>,
    /// The boot and pid namespace the holder's pid belongs to, and when that
    /// process started: with them a command on the same machine can tell
    /// the holder has gone (`process::pid_scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
}

impl LockInfo {
    fn expired(&self, now: u64) -> bool {
        now > self.renewed_at + self.lease_seconds
    }

    /// Its holder ran in this boot of this machine and pid namespace, and
    /// its process is gone (or its pid now belongs to a process started
    /// since): the lock is dead now, not when its lease runs out. Anywhere
    /// a pid cannot be checked (another machine or container, another OS,
    /// /proc hiding processes, a lock from an older poolside), the lease
    /// decides.
    pub fn holder_gone_from_this_host(&self) -> bool {
        let Some(scope) = &self.pid_scope else {
            return false;
        };
        self.host == hostname()
            && crate::process::pid_scope().as_ref() == Some(scope)
            && crate::process::start_time(self.pid) != self.process_start
    }

    /// "arn:... on host (deploy, pid 123) since 2026-11-26T16:50:00Z".
    pub fn describe(&self) -> String {
        format!(
            "{} on {} ({}, pid {}) since {}, lease renewed {} s ago; lock id {}",
            self.who,
            self.host,
            self.command,
            self.pid,
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.started_at)),
            now_s().saturating_sub(self.renewed_at),
            self.lock_id
        )
    }
}

fn lock_key(environment: &str) -> String {
    format!("locks/{environment}.json")
}

/// The other party, when the lock is held.
#[derive(Debug, thiserror::Error)]
#[error("environment `{environment}` is locked by {}: another poolside command is running on it. Wait for it to finish, pass --lock-timeout 10m to wait here, or, if its holder died, run `poolside unlock --env {environment} --lock-id {}` (a lock whose lease of {} s expired is taken over by the next command anyway)", holder.describe(), holder.lock_id, holder.lease_seconds)]
pub struct Locked {
    pub environment: String,
    pub holder: LockInfo,
}

/// A held lock, renewed in the background until released.
pub struct Lock {
    store: Store,
    key: String,
    pub info: LockInfo,
    etag: Arc<Mutex<String>>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Lock {
    /// Takes the environment's lock, waiting up to `timeout` for its holder.
    pub async fn acquire(
        store: &Store,
        environment: &str,
        command: &str,
        who: &str,
        timeout: Duration,
    ) -> anyhow::Result<Lock> {
        let key = lock_key(environment);
        let started = tokio::time::Instant::now();
        let mut info = LockInfo {
            lock_id: format!("{:016x}", rand::random::<u64>()),
            environment: environment.to_string(),
            who: who.to_string(),
            host: hostname(),
            command: command.to_string(),
            pid: std::process::id(),
            started_at: now_s(),
            renewed_at: now_s(),
            lease_seconds: lease().as_secs(),
            took_over: None,
            pid_scope: crate::process::pid_scope(),
            process_start: crate::process::start_time(std::process::id()),
        };
        loop {
            info.renewed_at = now_s();
            let body = serde_json::to_vec(&info)?;
            if let Some(etag) = store.write(&key, body, Precondition::Absent).await? {
                return Ok(Lock::held(store, key, info, etag));
            }
            let Some((held, etag)) = store.read(&key).await? else {
                continue; // released between the two calls
            };
            let holder: LockInfo = serde_json::from_slice(&held).map_err(|e| {
                anyhow!(
                    "the lock object s3://{}/{key} is not a poolside lock ({e}): remove it by hand",
                    store.bucket
                )
            })?;
            if holder.expired(now_s()) || holder.holder_gone_from_this_host() {
                info.took_over = Some(Box::new(holder.clone()));
                info.renewed_at = now_s();
                let body = serde_json::to_vec(&info)?;
                if let Some(etag) = store.write(&key, body, Precondition::Is(&etag)).await? {
                    tracing::warn!(previous = %holder.describe(), "took over a dead holder's lock");
                    return Ok(Lock::held(store, key, info, etag));
                }
                info.took_over = None;
                continue; // someone else took it over first
            }
            if started.elapsed() >= timeout {
                return Err(Locked {
                    environment: environment.to_string(),
                    holder,
                }
                .into());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = crate::interrupt::wait() => return Err(crate::interrupt::Interrupted.into()),
            }
        }
    }

    fn held(store: &Store, key: String, info: LockInfo, etag: String) -> Lock {
        let etag = Arc::new(Mutex::new(etag));
        let renewal = tokio::spawn(renew(
            store.clone(),
            key.clone(),
            info.clone(),
            etag.clone(),
        ));
        Lock {
            store: store.clone(),
            key,
            info,
            etag,
            renewal,
        }
    }

    /// Releases the lock, unless someone took it over (then it says so).
    pub async fn release(self) -> anyhow::Result<()> {
        self.renewal.abort();
        let etag = self.etag.lock().unwrap().clone();
        if !self.store.delete_if(&self.key, &etag).await? {
            tracing::warn!(
                "the lock of `{}` was no longer ours when released (taken over after an expired lease?)",
                self.info.environment
            );
        }
        Ok(())
    }
}

async fn renew(store: Store, key: String, mut info: LockInfo, etag: Arc<Mutex<String>>) {
    let mut wait = renew_every();
    loop {
        tokio::time::sleep(wait).await;
        wait = renew_every();
        match renew_once(&store, &key, &mut info, &etag).await {
            Renewal::Renewed => {}
            Renewal::Again => wait = Duration::from_secs(1),
            Renewal::Lost(why) => {
                // Nothing more may change under a lock this run no longer
                // holds: stop as Ctrl-C does, before the next step.
                tracing::error!(
                    "the lock of `{}` {why}: stopping before the next change. Run the command again once nobody else is changing the environment",
                    info.environment
                );
                crate::interrupt::request_stop();
                return;
            }
        }
    }
}

/// What one renewal of the lease found.
#[derive(Debug, PartialEq)]
enum Renewal {
    Renewed,
    /// Not renewed this time (a passing error, or a concurrent write that S3
    /// asks to retry): try again soon, with the ETag read now.
    Again,
    /// The lock is no longer this run's; says why.
    Lost(String),
}

async fn renew_once(
    store: &Store,
    key: &str,
    info: &mut LockInfo,
    etag: &Mutex<String>,
) -> Renewal {
    info.renewed_at = now_s();
    let Ok(body) = serde_json::to_vec(&*info) else {
        return Renewal::Again;
    };
    let current = etag.lock().unwrap().clone();
    match store.put(key, body, Precondition::Is(&current)).await {
        Ok(Put::Written(new)) => {
            *etag.lock().unwrap() = new;
            Renewal::Renewed
        }
        Ok(Put::Refused(Refusal::Missing)) => {
            Renewal::Lost("was removed (`poolside unlock`?) while this run held it".into())
        }
        // 409, or 412 after a write of ours whose answer was lost: the
        // object may still be this run's lock under another ETag.
        Ok(Put::Refused(Refusal::Conflict | Refusal::PreconditionFailed)) => {
            match store.read(key).await {
                Ok(Some((body, fresh))) => {
                    let holder: Option<LockInfo> = serde_json::from_slice(&body).ok();
                    match holder {
                        Some(holder) if holder.lock_id == info.lock_id => {
                            *etag.lock().unwrap() = fresh;
                            Renewal::Again
                        }
                        Some(holder) => {
                            Renewal::Lost(format!("was taken over by {}", holder.describe()))
                        }
                        None => Renewal::Lost(
                            "was replaced by an object that is not a poolside lock".into(),
                        ),
                    }
                }
                Ok(None) => {
                    Renewal::Lost("was removed (`poolside unlock`?) while this run held it".into())
                }
                Err(err) => {
                    tracing::warn!(%err, "could not read the lock back; retrying");
                    Renewal::Again
                }
            }
        }
        Err(err) => {
            tracing::warn!(%err, "could not renew the lock; retrying");
            Renewal::Again
        }
    }
}

/// Removes a lock by hand, only if it is the one named.
pub async fn unlock(store: &Store, environment: &str, lock_id: &str) -> anyhow::Result<LockInfo> {
    let key = lock_key(environment);
    let Some((body, etag)) = store.read(&key).await? else {
        bail!("environment `{environment}` is not locked");
    };
    let holder: LockInfo = serde_json::from_slice(&body).map_err(|e| {
        anyhow!(
            "the lock object s3://{}/{key} is not a poolside lock ({e})",
            store.bucket
        )
    })?;
    if holder.lock_id != lock_id {
        bail!(
            "environment `{environment}` is locked by {}, not by lock id {lock_id}: nothing was removed",
            holder.describe()
        );
    }
    if !store.delete_if(&key, &etag).await? {
        bail!("the lock of `{environment}` changed while it was being removed: run unlock again after checking who holds it");
    }
    Ok(holder)
}

/// Who holds the environment's lock, if anyone.
pub async fn lock_holder(store: &Store, environment: &str) -> anyhow::Result<Option<LockInfo>> {
    match store.read(&lock_key(environment)).await? {
        Some((body, _)) => Ok(serde_json::from_slice(&body).ok()),
        None => Ok(None),
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

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

fn domain_key(environment: &str) -> String {
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
    pub who: String,
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

/// Keys that sort newest first: S3 lists keys in ascending order.
fn history_key(environment: &str, started_at_ms: u64, lock_id: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(renewed_at: u64) -> LockInfo {
        LockInfo {
            lock_id: "0123456789abcdef".into(),
            environment: "pilot".into(),
            who: "arn:aws:iam::111122223333:user/alice".into(),
            host: "laptop".into(),
            command: "deploy".into(),
            pid: 4242,
            started_at: renewed_at,
            renewed_at,
            lease_seconds: 120,
            took_over: None,
            pid_scope: None,
            process_start: None,
        }
    }

    fn s3_error(status: u16, code: &str) -> aws_smithy_runtime_api::http::Response {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::from(format!(
                "<Error><Code>{code}</Code><Message>{code}</Message><RequestId>r</RequestId></Error>"
            )),
        )
    }

    fn store(rules: &[&aws_smithy_mocks::Rule]) -> Store {
        Store {
            s3: crate::mocked!(aws_sdk_s3, rules.iter().copied()),
            bucket: "poolside-state-111122223333-eu-west-1".into(),
            owner: "111122223333".into(),
            emulator: false,
        }
    }

    /// S3 answers 409 when a concurrent conditional write to the key won:
    /// that is another holder, named in the error, not a failure.
    #[tokio::test]
    async fn a_concurrent_writer_that_won_is_named_as_the_holder() {
        use aws_sdk_s3::operation::get_object::GetObjectOutput;
        use aws_smithy_mocks::mock;
        let lost = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| r.if_none_match() == Some("*"))
            .then_http_response(|| s3_error(409, "ConditionalRequestConflict"));
        let read = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .e_tag("\"abc\"")
                .body(ByteStream::from(
                    serde_json::to_vec(&holder(now_s())).unwrap(),
                ))
                .build()
        });
        let err = Lock::acquire(
            &store(&[&lost, &read]),
            "pilot",
            "deploy",
            "arn:me",
            Duration::ZERO,
        )
        .await
        .err()
        .expect("the lock is held");
        let text = err.to_string();
        assert!(
            text.contains(
                "is locked by arn:aws:iam::111122223333:user/alice on laptop (deploy, pid 4242)"
            ),
            "{text}"
        );
        assert!(text.contains("--lock-id 0123456789abcdef"), "{text}");
    }

    /// An expired lease is taken over with a write conditional on the ETag
    /// that was read, so two takers cannot both win.
    #[tokio::test]
    async fn an_expired_lease_is_taken_over_on_the_etag_that_was_read() {
        use aws_sdk_s3::operation::get_object::GetObjectOutput;
        use aws_sdk_s3::operation::put_object::PutObjectOutput;
        use aws_smithy_mocks::mock;
        let held = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| r.if_none_match() == Some("*"))
            .then_http_response(|| s3_error(412, "PreconditionFailed"));
        let read = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .e_tag("\"old\"")
                .body(ByteStream::from(
                    serde_json::to_vec(&holder(1_000)).unwrap(),
                ))
                .build()
        });
        let taken = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| r.if_match() == Some("\"old\""))
            .then_output(|| PutObjectOutput::builder().e_tag("\"new\"").build());
        let lock = Lock::acquire(
            &store(&[&held, &read, &taken]),
            "pilot",
            "deploy",
            "arn:me",
            Duration::ZERO,
        )
        .await
        .unwrap();
        assert_eq!(
            lock.info.took_over.as_ref().unwrap().lock_id,
            "0123456789abcdef"
        );
        assert_eq!(taken.num_calls(), 1);
        lock.renewal.abort();
    }

    /// S3's 409 on a renewal means "another conditional write was in
    /// flight: read and retry", not "lost": the lock is still this run's, so
    /// it keeps its lease with the ETag read back.
    #[tokio::test]
    async fn a_409_on_renewal_is_retried_with_a_fresh_etag() {
        use aws_sdk_s3::operation::get_object::GetObjectOutput;
        use aws_sdk_s3::operation::put_object::PutObjectOutput;
        use aws_smithy_mocks::mock;
        let conflict = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| r.if_match() == Some("\"mine\""))
            .then_http_response(|| s3_error(409, "ConditionalRequestConflict"));
        let read = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .e_tag("\"fresh\"")
                .body(ByteStream::from(
                    serde_json::to_vec(&holder(now_s())).unwrap(),
                ))
                .build()
        });
        let renewed = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| {
                r.if_match() == Some("\"fresh\"")
                    && r.expected_bucket_owner() == Some("111122223333")
            })
            .then_output(|| PutObjectOutput::builder().e_tag("\"next\"").build());
        let store = store(&[&conflict, &read, &renewed]);
        let etag = Mutex::new("\"mine\"".to_string());
        let mut info = holder(now_s());
        let key = lock_key("pilot");
        assert_eq!(
            renew_once(&store, &key, &mut info, &etag).await,
            Renewal::Again
        );
        assert_eq!(*etag.lock().unwrap(), "\"fresh\"");
        assert_eq!(
            renew_once(&store, &key, &mut info, &etag).await,
            Renewal::Renewed
        );
        assert_eq!(*etag.lock().unwrap(), "\"next\"");
    }

    /// After `poolside unlock`, S3 answers the renewal's If-Match with 404:
    /// the lock is gone, and the run must stop, not renew forever.
    #[tokio::test]
    async fn a_404_on_renewal_means_the_lock_was_removed() {
        use aws_smithy_mocks::mock;
        let gone =
            mock!(aws_sdk_s3::Client::put_object).then_http_response(|| s3_error(404, "NoSuchKey"));
        let store = store(&[&gone]);
        let etag = Mutex::new("\"mine\"".to_string());
        let outcome = renew_once(&store, &lock_key("pilot"), &mut holder(now_s()), &etag).await;
        let Renewal::Lost(why) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(why.contains("was removed"), "{why}");
    }

    /// A renewal refused because another holder took the lock over names it.
    #[tokio::test]
    async fn a_lock_taken_over_is_lost_and_names_the_new_holder() {
        use aws_sdk_s3::operation::get_object::GetObjectOutput;
        use aws_smithy_mocks::mock;
        let refused = mock!(aws_sdk_s3::Client::put_object)
            .then_http_response(|| s3_error(412, "PreconditionFailed"));
        let read = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
            let mut other = holder(now_s());
            other.lock_id = "fedcba9876543210".into();
            other.host = "ci-runner".into();
            GetObjectOutput::builder()
                .e_tag("\"theirs\"")
                .body(ByteStream::from(serde_json::to_vec(&other).unwrap()))
                .build()
        });
        let store = store(&[&refused, &read]);
        let etag = Mutex::new("\"mine\"".to_string());
        let outcome = renew_once(&store, &lock_key("pilot"), &mut holder(now_s()), &etag).await;
        let Renewal::Lost(why) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            why.contains("taken over") && why.contains("ci-runner"),
            "{why}"
        );
    }

    /// A state bucket name owned by another account answers 403: the error
    /// says so instead of a bare AccessDenied.
    #[tokio::test]
    async fn a_state_bucket_of_another_account_is_named_as_such() {
        use aws_smithy_mocks::mock;
        let forbidden = mock!(aws_sdk_s3::Client::head_bucket)
            .match_requests(|r| r.expected_bucket_owner() == Some("111122223333"))
            .then_http_response(|| {
                aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
                    aws_smithy_types::body::SdkBody::empty(),
                )
            });
        let err = store(&[&forbidden]).head().await.unwrap_err().to_string();
        assert!(err.contains("belongs to another AWS account"), "{err}");
        assert!(
            err.contains("poolside-state-111122223333-eu-west-1"),
            "{err}"
        );
    }

    #[test]
    fn history_keys_sort_newest_first() {
        let older = history_key("p", 1_700_000_000_000, "a");
        let newer = history_key("p", 1_800_000_000_000, "b");
        assert!(newer < older, "{newer} should sort before {older}");
    }

    #[test]
    fn a_lease_expires_after_its_seconds_without_renewal() {
        let info = LockInfo {
            lock_id: "1".into(),
            environment: "p".into(),
            who: "arn:aws:iam::1:user/a".into(),
            host: "h".into(),
            command: "deploy".into(),
            pid: 1,
            started_at: 1000,
            renewed_at: 1000,
            lease_seconds: 120,
            took_over: None,
            pid_scope: None,
            process_start: None,
        };
        assert!(!info.expired(1120));
        assert!(info.expired(1121));
    }

    #[test]
    fn a_holder_is_gone_at_once_only_where_its_pid_can_be_checked() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut info = holder(now_s());
        info.host = hostname();
        info.pid = child.id();
        info.pid_scope = crate::process::pid_scope();
        info.process_start = crate::process::start_time(child.id());
        assert!(!info.holder_gone_from_this_host(), "it runs");
        // Another machine, container or an older poolside: the lease decides.
        for unknowable in [
            LockInfo {
                host: "another-host".into(),
                ..info.clone()
            },
            LockInfo {
                pid_scope: Some("another-boot/pid:[1]".into()),
                ..info.clone()
            },
            LockInfo {
                pid_scope: None,
                ..info.clone()
            },
        ] {
            child.kill().unwrap_or(());
            assert!(!unknowable.holder_gone_from_this_host(), "{unknowable:?}");
        }
        child.wait().unwrap();
        assert!(info.holder_gone_from_this_host(), "its process is gone");
        // Its pid runs a process that started at another time: gone too.
        info.pid = std::process::id();
        info.process_start = crate::process::start_time(info.pid).map(|t| t + 1);
        assert!(info.holder_gone_from_this_host(), "the pid was reused");
        info.process_start = crate::process::start_time(info.pid);
        assert!(
            !info.holder_gone_from_this_host(),
            "the pid is its holder's"
        );
    }
}
