//! The state bucket: made on first use (versioned, encrypted, public access
//! blocked, TLS only), and conditional reads, writes and deletes of its
//! objects.

use crate::aws::Clients;
use crate::resources::{error_code, AwsResultExt as _};
use anyhow::{anyhow, Context as _};
use aws_sdk_s3::primitives::ByteStream;
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The state bucket of one account and region.
#[derive(Clone)]
pub struct Store {
    pub(super) s3: aws_sdk_s3::Client,
    pub bucket: String,
    /// The account that must own the bucket: every call says so
    /// (`ExpectedBucketOwner`), so a bucket of this name in another account
    /// is refused by S3 rather than read or written.
    pub(super) owner: String,
    /// An emulator speaks plain HTTP: its bucket gets no TLS-only policy.
    pub(super) emulator: bool,
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
    pub(super) async fn head(&self) -> anyhow::Result<bool> {
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

    pub(super) fn not_ours(&self, operation: &str) -> anyhow::Error {
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
    pub(super) async fn read(&self, key: &str) -> anyhow::Result<Option<(Vec<u8>, String)>> {
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
    pub(super) async fn write(
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
    pub(super) async fn put(
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

    pub(super) async fn delete_if(&self, key: &str, etag: &str) -> anyhow::Result<bool> {
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
pub(super) enum Put {
    Written(String),
    Refused(Refusal),
}

/// Why S3 refused a conditional write.
#[derive(Debug, PartialEq)]
pub(super) enum Refusal {
    /// 412: the object is not the one the condition named.
    PreconditionFailed,
    /// 409: another conditional write to the key was in flight; S3 says to
    /// read the object again and retry.
    Conflict,
    /// 404: `If-Match` on an object that no longer exists.
    Missing,
}

pub(super) fn status_of<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

pub(super) enum Precondition<'a> {
    Absent,
    Is(&'a str),
    None,
}
