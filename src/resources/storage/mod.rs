//! The S3 bucket for model artifacts: versioned, encrypted, private, TLS-only,
//! with old versions expiring. Found by its (deterministic) name.

pub mod spec;

use super::aws_error::{error_code, AwsResultExt};
use super::context::Context;
use super::tags::user_visible_tags;
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::waits::Waits;
use anyhow::{anyhow, bail};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use std::collections::BTreeMap;

/// The id of the one lifecycle rule poolside owns.
const LIFECYCLE_RULE_ID: &str = "poolside-noncurrent-versions";

/// Reads an optional sub-resource: the named error code means "not configured".
macro_rules! optional {
    ($call:expr, $absent:literal, $op:literal) => {
        async {
            match $call.send().await {
                Ok(out) => Ok(Some(out)),
                Err(err) if error_code(&err) == Some($absent) => Ok(None),
                Err(err) => Err(err).aws($op),
            }
        }
    };
}

pub async fn discover(cx: &Context, name: &str) -> anyhow::Result<Vec<Live>> {
    let s3 = &cx.clients.s3;
    match s3.head_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => return Ok(vec![]),
        Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 403) => bail!(
            "the bucket name {name:?} is taken by another AWS account; set storage.bucket_name in the environment file"
        ),
        Err(err) => return Err(err).aws("HeadBucket"),
    }
    let (tagging, versioning, encryption, public_access, policy, lifecycle) = tokio::try_join!(
        optional!(
            s3.get_bucket_tagging().bucket(name),
            "NoSuchTagSet",
            "GetBucketTagging"
        ),
        versioning_enabled(cx, name),
        optional!(
            s3.get_bucket_encryption().bucket(name),
            "ServerSideEncryptionConfigurationNotFoundError",
            "GetBucketEncryption"
        ),
        optional!(
            s3.get_public_access_block().bucket(name),
            "NoSuchPublicAccessBlockConfiguration",
            "GetPublicAccessBlock"
        ),
        optional!(
            s3.get_bucket_policy().bucket(name),
            "NoSuchBucketPolicy",
            "GetBucketPolicy"
        ),
        noncurrent_days(cx, name),
    )?;
    let tags = user_visible_tags(
        tagging
            .iter()
            .flat_map(|t| t.tag_set())
            .map(|t| (t.key().to_string(), t.value().to_string())),
    );
    // An untagged bucket of this name is one we created and crashed before tagging.
    if let Some(owner) = tags.get(TAG_ENV).filter(|owner| **owner != cx.environment) {
        bail!("the bucket {name:?} belongs to the poolside environment {owner:?}; set storage.bucket_name");
    }
    let encryption = default_encryption(encryption.as_ref());
    let block_public_access = blocks_public_access(public_access.as_ref());
    let policy = match policy.as_ref().and_then(|p| p.policy()) {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|e| anyhow!("the policy of bucket {name} is not JSON: {e}"))?,
        ),
        None => None,
    };
    Ok(vec![Live {
        id: ResourceId::new(Kind::Bucket, "artifacts"),
        physical_id: name.to_string(),
        spec: Spec::Bucket(BucketSpec {
            name: name.to_string(),
            versioning,
            encryption,
            block_public_access,
            policy,
            noncurrent_version_expiration_days: lifecycle,
            tags,
        }),
        attributes: BTreeMap::from([("name".to_string(), name.to_string())]),
    }])
}

/// The algorithm of the bucket's default encryption ("" for none).
fn default_encryption(
    out: Option<&aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput>,
) -> String {
    out.and_then(|e| e.server_side_encryption_configuration())
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().as_str().to_string())
        .unwrap_or_default()
}

/// Whether all four of S3's public access blocks are on.
fn blocks_public_access(
    out: Option<&aws_sdk_s3::operation::get_public_access_block::GetPublicAccessBlockOutput>,
) -> bool {
    out.and_then(|p| p.public_access_block_configuration())
        .is_some_and(|c| {
            [
                c.block_public_acls(),
                c.ignore_public_acls(),
                c.block_public_policy(),
                c.restrict_public_buckets(),
            ]
            .iter()
            .all(|flag| *flag == Some(true))
        })
}

async fn versioning_enabled(cx: &Context, name: &str) -> anyhow::Result<bool> {
    match cx
        .clients
        .s3
        .get_bucket_versioning()
        .bucket(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.status() == Some(&BucketVersioningStatus::Enabled)),
        Err(err) => match emulator_xml(&err) {
            Some(xml) => Ok(xml_text(&xml, "Status").as_deref() == Some("Enabled")),
            None => Err(err).aws("GetBucketVersioning"),
        },
    }
}

/// The noncurrent-version expiry of poolside's lifecycle rule, if the bucket has it.
async fn noncurrent_days(cx: &Context, name: &str) -> anyhow::Result<Option<u32>> {
    match cx
        .clients
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .rules()
            .iter()
            .find(|r| r.id() == Some(LIFECYCLE_RULE_ID))
            .and_then(|r| r.noncurrent_version_expiration())
            .and_then(|n| n.noncurrent_days())
            .map(|d| d.max(0) as u32)),
        Err(err) if error_code(&err) == Some("NoSuchLifecycleConfiguration") => Ok(None),
        Err(err) => match emulator_xml(&err) {
            Some(xml) => Ok(xml
                .split("<Rule>")
                .find(|rule| xml_text(rule, "ID").as_deref() == Some(LIFECYCLE_RULE_ID))
                .and_then(|rule| xml_text(rule, "NoncurrentDays"))
                .and_then(|days| days.parse().ok())),
            None => Err(err).aws("GetBucketLifecycleConfiguration"),
        },
    }
}

/// moto 5.x names the XML root of some S3 responses after the operation
/// (`GetBucketVersioningResponse`) where S3 uses the shape's name
/// (`VersioningConfiguration`), and the Rust SDK refuses the document. For a
/// successful response that failed to parse, hand back its body so the caller
/// can read the one value it needs. Real S3 never takes this path.
fn emulator_xml<E>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>,
) -> Option<String> {
    let raw = err.raw_response()?;
    if raw.status().as_u16() != 200 {
        return None;
    }
    let body = std::str::from_utf8(raw.body().bytes()?).ok()?;
    body.contains("Response xmlns=").then(|| body.to_string())
}

fn xml_text(xml: &str, element: &str) -> Option<String> {
    let start = xml.find(&format!("<{element}>"))? + element.len() + 2;
    let end = start + xml[start..].find(&format!("</{element}>"))?;
    Some(xml[start..end].trim().to_string())
}

pub async fn create(cx: &Context, id: &ResourceId, spec: &BucketSpec) -> anyhow::Result<String> {
    let mut call = cx.clients.s3.create_bucket().bucket(&spec.name);
    // us-east-1 is the one region that refuses an explicit location constraint.
    if cx.region != "us-east-1" {
        call = call.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(cx.region.as_str()))
                .build(),
        );
    }
    match call.send().await {
        Ok(_) => {}
        Err(err) if error_code(&err) == Some("BucketAlreadyOwnedByYou") => {}
        Err(err) => return Err(err).aws("CreateBucket"),
    }
    let blank = BucketSpec {
        versioning: false,
        encryption: String::new(),
        block_public_access: false,
        policy: None,
        noncurrent_version_expiration_days: None,
        tags: Tags::new(),
        ..spec.clone()
    };
    update(cx, &blank, spec).await?;
    cx.record_attribute(id, "name", &spec.name);
    Ok(spec.name.clone())
}

pub async fn update(cx: &Context, old: &BucketSpec, new: &BucketSpec) -> anyhow::Result<()> {
    let bucket = new.name.as_str();
    // Tags first: after a crash, the bucket is already known as ours.
    if old.tags != new.tags {
        put_tags(cx, bucket, new).await?;
    }
    if old.block_public_access != new.block_public_access {
        put_public_access_block(cx, bucket, new).await?;
    }
    if old.encryption != new.encryption {
        put_encryption(cx, bucket, new).await?;
    }
    if old.versioning != new.versioning {
        put_versioning(cx, bucket, new).await?;
    }
    if old.policy != new.policy {
        put_policy(cx, bucket, new).await?;
    }
    if old.noncurrent_version_expiration_days != new.noncurrent_version_expiration_days {
        put_lifecycle(cx, bucket, new).await?;
    }
    Ok(())
}

/// The bucket's tags, exactly `new`'s.
async fn put_tags(cx: &Context, bucket: &str, new: &BucketSpec) -> anyhow::Result<()> {
    let s3 = &cx.clients.s3;
    let tags = new
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()?;
    let tagging = Tagging::builder().set_tag_set(Some(tags)).build()?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .aws("PutBucketTagging")?;
    Ok(())
}

async fn put_public_access_block(
    cx: &Context,
    bucket: &str,
    new: &BucketSpec,
) -> anyhow::Result<()> {
    let s3 = &cx.clients.s3;
    let flag = new.block_public_access;
    let config = PublicAccessBlockConfiguration::builder()
        .block_public_acls(flag)
        .ignore_public_acls(flag)
        .block_public_policy(flag)
        .restrict_public_buckets(flag)
        .build();
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(config)
        .send()
        .await
        .aws("PutPublicAccessBlock")?;
    Ok(())
}

async fn put_encryption(cx: &Context, bucket: &str, new: &BucketSpec) -> anyhow::Result<()> {
    let s3 = &cx.clients.s3;
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::from(new.encryption.as_str()))
        .build()?;
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .build(),
        )
        .build()?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .aws("PutBucketEncryption")?;
    Ok(())
}

async fn put_versioning(cx: &Context, bucket: &str, new: &BucketSpec) -> anyhow::Result<()> {
    let s3 = &cx.clients.s3;
    let status = if new.versioning {
        BucketVersioningStatus::Enabled
    } else {
        BucketVersioningStatus::Suspended
    };
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .aws("PutBucketVersioning")?;
    Ok(())
}

/// The bucket policy, or none.
async fn put_policy(cx: &Context, bucket: &str, new: &BucketSpec) -> anyhow::Result<()> {
    let s3 = &cx.clients.s3;
    match &new.policy {
        Some(policy) => {
            s3.put_bucket_policy()
                .bucket(bucket)
                .policy(policy.to_string())
                .send()
                .await
                .aws("PutBucketPolicy")?;
        }
        None => {
            s3.delete_bucket_policy()
                .bucket(bucket)
                .send()
                .await
                .aws("DeleteBucketPolicy")?;
        }
    }
    Ok(())
}

/// The expiry of old versions, or none.
async fn put_lifecycle(cx: &Context, bucket: &str, new: &BucketSpec) -> anyhow::Result<()> {
    let s3 = &cx.clients.s3;
    match new.noncurrent_version_expiration_days {
        Some(days) => {
            let rule = LifecycleRule::builder()
                .id(LIFECYCLE_RULE_ID)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("").build())
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(days as i32)
                        .build(),
                )
                .build()?;
            let config = BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()?;
            s3.put_bucket_lifecycle_configuration()
                .bucket(bucket)
                .lifecycle_configuration(config)
                .send()
                .await
                .aws("PutBucketLifecycleConfiguration")?;
        }
        None => {
            s3.delete_bucket_lifecycle()
                .bucket(bucket)
                .send()
                .await
                .aws("DeleteBucketLifecycle")?;
        }
    }
    Ok(())
}

/// Deletes an empty bucket. A bucket that holds anything is deleted only
/// when the run may delete data (`destroy --delete-data`), after emptying it:
/// model artifacts are data, and losing them is not a deploy's call to make.
pub async fn delete(cx: &Context, name: &str) -> anyhow::Result<()> {
    if cx.deletion.delete_data {
        if cx.emulator {
            // The policy admits TLS only, and an emulator speaks plain HTTP;
            // on AWS the policy stays, and HTTPS satisfies it.
            let result = cx
                .clients
                .s3
                .delete_bucket_policy()
                .bucket(name)
                .send()
                .await;
            if let Err(err) = result {
                if error_code(&err) != Some("NoSuchBucket") {
                    return Err(err).aws("DeleteBucketPolicy");
                }
            }
        }
        empty(cx, name).await?;
    }
    match cx.clients.s3.delete_bucket().bucket(name).send().await {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("NoSuchBucket") => Ok(()),
        Err(err) if error_code(&err) == Some("BucketNotEmpty") => {
            bail!("bucket {name} still holds objects (model artifacts); poolside does not delete data unless told to: `poolside destroy --delete-data` empties it first")
        }
        Err(err) => Err(err).aws("DeleteBucket"),
    }
}

/// How many versions and delete markers the bucket holds, counting up to
/// `limit`: in a versioned bucket a deleted object is still data.
pub async fn count_versions(cx: &Context, name: &str, limit: i32) -> anyhow::Result<usize> {
    let out = cx
        .clients
        .s3
        .list_object_versions()
        .bucket(name)
        .max_keys(limit)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.versions().len() + out.delete_markers().len()),
        Err(err) if error_code(&err) == Some("NoSuchBucket") => Ok(0),
        Err(err) => Err(err).aws("ListObjectVersions"),
    }
}

/// Deletes every object version and delete marker, a page (at most 1000,
/// DeleteObjects' limit) at a time.
async fn empty(cx: &Context, name: &str) -> anyhow::Result<()> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    loop {
        let out = match cx
            .clients
            .s3
            .list_object_versions()
            .bucket(name)
            .max_keys(1000)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if error_code(&err) == Some("NoSuchBucket") => return Ok(()),
            Err(err) => return Err(err).aws("ListObjectVersions"),
        };
        let identifiers: Vec<ObjectIdentifier> = out
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                out.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .set_key(key.map(str::to_string))
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if identifiers.is_empty() {
            return Ok(());
        }
        let deleted = cx
            .clients
            .s3
            .delete_objects()
            .bucket(name)
            .delete(
                Delete::builder()
                    .set_objects(Some(identifiers))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await
            .aws("DeleteObjects")?;
        if let Some(error) = deleted.errors().first() {
            bail!(
                "emptying bucket {name}: {} of its objects could not be deleted, e.g. {:?}: {} {}",
                deleted.errors().len(),
                error.key().unwrap_or_default(),
                error.code().unwrap_or_default(),
                error.message().unwrap_or_default()
            );
        }
    }
}

impl Resource for BucketSpec {
    async fn create(
        &self,
        cx: &Context,
        id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create(cx, id, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        _live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update(cx, old, self).await
    }

    async fn delete(&self, cx: &Context, _live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete(cx, &self.name).await
    }
}
