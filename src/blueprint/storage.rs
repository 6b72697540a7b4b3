//! The storage and registry tier: the bucket for model artifacts and the
//! ECR repository the API's image is pulled from.

use super::builder::{AccountFacts, Builder};
use crate::config::Config;
use crate::model::*;
use crate::resources::spec::*;
use crate::templates::render_json;
use serde_json::json;

/// The artifacts bucket: the configured name, or one unique to the account
/// and region (bucket names are global).
pub fn bucket_name(config: &Config, account: &AccountFacts) -> String {
    config.storage.bucket_name.clone().unwrap_or_else(|| {
        format!(
            "poolside-{}-{}-{}",
            config.name, account.account_id, config.region
        )
    })
}

pub(super) fn storage_and_registry(
    b: &Builder,
    config: &Config,
    account: &AccountFacts,
) -> anyhow::Result<Vec<Desired>> {
    let bucket = bucket_name(config, account);
    let policy = render_json(
        "bucket-policy.json.j2",
        json!({ "bucket": bucket, "partition": account.partition }),
    )?;
    let artifacts = b.desired(
        &ResourceId::new(Kind::Bucket, "artifacts"),
        "artifacts",
        |tags| {
            Spec::Bucket(BucketSpec {
                name: bucket.clone(),
                versioning: true,
                encryption: "AES256".into(),
                block_public_access: true,
                policy: Some(policy),
                noncurrent_version_expiration_days: Some(
                    config.storage.noncurrent_version_expiration_days,
                ),
                tags,
            })
        },
    );
    let lifecycle = render_json(
        "ecr-lifecycle-policy.json.j2",
        json!({ "untagged_days": config.registry.untagged_image_days }),
    )?;
    let repository = b.desired(
        &ResourceId::new(Kind::Repository, "postgrest"),
        "postgrest",
        |tags| {
            Spec::Repository(RepositorySpec {
                name: config.registry.repository_name.clone(),
                scan_on_push: true,
                immutable_tags: true,
                lifecycle_policy: Some(lifecycle),
                tags,
            })
        },
    );
    Ok(vec![artifacts, repository])
}
