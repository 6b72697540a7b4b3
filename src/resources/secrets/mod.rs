//! Secrets Manager secrets whose values poolside generates: the PostgREST
//! database login and the JWT signing key. A value is made once, when the
//! secret is created, and is never regenerated, compared, logged or printed.
//! Found by name, so a secret left by an interrupted run is adopted as it is.

pub mod spec;

use super::aws_error::{error_code, AwsResultExt};
use super::context::Context;
use super::tags::{check_owner, tag_changes, user_visible_tags};
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::waits::Waits;
use anyhow::anyhow;
use aws_sdk_secretsmanager::types::Tag;
use rand::distributions::{Alphanumeric, DistString};
use std::collections::BTreeMap;

/// Long enough for PostgREST's JWT secret (at least 32 characters) and for a password.
const GENERATED_LENGTH: usize = 64;
/// A deleted secret can be restored for this long.
pub const RECOVERY_WINDOW_DAYS: i64 = 7;

pub async fn discover(cx: &Context, names: &[(ResourceId, String)]) -> anyhow::Result<Vec<Live>> {
    let found =
        futures::future::try_join_all(names.iter().map(|(id, name)| describe(cx, id, name)))
            .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The secret as Secrets Manager describes it, scheduled for deletion or not.
async fn describe_raw(
    cx: &Context,
    name: &str,
) -> anyhow::Result<Option<aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput>>
{
    match cx
        .clients
        .secrets
        .describe_secret()
        .secret_id(name)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out)),
        Err(err) if error_code(&err) == Some("ResourceNotFoundException") => Ok(None),
        Err(err) => Err(err).aws("DescribeSecret"),
    }
}

async fn describe(cx: &Context, id: &ResourceId, name: &str) -> anyhow::Result<Option<Live>> {
    let Some(secret) = describe_raw(cx, name).await? else {
        return Ok(None);
    };
    if secret.deleted_date().is_some() {
        // Scheduled for deletion: absent for the plan; a create restores it.
        return Ok(None);
    }
    let tags = user_visible_tags(secret.tags().iter().filter_map(|t| {
        Some((
            t.key()?.to_string(),
            t.value().unwrap_or_default().to_string(),
        ))
    }));
    check_owner(cx, "secret", name, &tags)?;
    let arn = secret.arn().unwrap_or_default().to_string();
    Ok(Some(Live {
        id: id.clone(),
        physical_id: arn.clone(),
        spec: Spec::Secret(SecretSpec {
            name: name.to_string(),
            description: secret.description().unwrap_or_default().to_string(),
            value: GeneratedSecret::default(),
            tags,
        }),
        attributes: BTreeMap::from([("arn".to_string(), arn)]),
    }))
}

fn generate(value: &GeneratedSecret) -> String {
    let random = Alphanumeric.sample_string(&mut rand::rngs::OsRng, GENERATED_LENGTH);
    match value {
        GeneratedSecret::Random => random,
        GeneratedSecret::Login { username } => {
            serde_json::json!({ "username": username, "password": random }).to_string()
        }
    }
}

fn secret_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub async fn create(cx: &Context, id: &ResourceId, spec: &SecretSpec) -> anyhow::Result<String> {
    let sm = &cx.clients.secrets;
    let created = sm
        .create_secret()
        .name(&spec.name)
        .description(&spec.description)
        .secret_string(generate(&spec.value))
        .set_tags(Some(secret_tags(&spec.tags)))
        .send()
        .await;
    let err = match created {
        Ok(out) => {
            let arn = out.arn().unwrap_or_default().to_string();
            cx.record_attribute(id, "arn", &arn);
            return Ok(arn);
        }
        Err(err) => err,
    };
    let code = error_code(&err).map(str::to_string);
    let message = err
        .as_service_error()
        .and_then(|e| aws_smithy_types::error::metadata::ProvideErrorMetadata::message(e))
        .unwrap_or_default()
        .to_string();
    match code.as_deref() {
        // Deleted by a teardown but still recoverable: restore it with
        // its value rather than wait out the recovery window.
        Some("InvalidRequestException") if message.contains("scheduled for deletion") => {
            sm.restore_secret()
                .secret_id(&spec.name)
                .send()
                .await
                .aws("RestoreSecret")?;
        }
        // Made by a run that did not finish: keep its value. An emulator
        // (moto) answers this for a name scheduled for deletion too, where
        // AWS answers the InvalidRequestException above: restore it the same.
        Some("ResourceExistsException") => {
            let scheduled = describe_raw(cx, &spec.name).await?;
            if scheduled.is_some_and(|s| s.deleted_date().is_some()) {
                sm.restore_secret()
                    .secret_id(&spec.name)
                    .send()
                    .await
                    .aws("RestoreSecret")?;
            }
        }
        _ => return Err(err).aws("CreateSecret"),
    }
    // Adopted or restored: converge on the description and tags, keep the value.
    let live = describe(cx, id, &spec.name)
        .await?
        .ok_or_else(|| anyhow!("secret {} exists but cannot be described", spec.name))?;
    if let Spec::Secret(current) = &live.spec {
        update(cx, &live.physical_id, current, spec).await?;
    }
    cx.record_attribute(id, "arn", &live.physical_id);
    Ok(live.physical_id)
}

pub async fn update(
    cx: &Context,
    arn: &str,
    old: &SecretSpec,
    new: &SecretSpec,
) -> anyhow::Result<()> {
    let sm = &cx.clients.secrets;
    if old.description != new.description {
        sm.update_secret()
            .secret_id(arn)
            .description(&new.description)
            .send()
            .await
            .aws("UpdateSecret")?;
    }
    let (changed, removed) = tag_changes(&old.tags, &new.tags);
    if !changed.is_empty() {
        sm.tag_resource()
            .secret_id(arn)
            .set_tags(Some(secret_tags(&changed)))
            .send()
            .await
            .aws("TagResource")?;
    }
    if !removed.is_empty() {
        sm.untag_resource()
            .secret_id(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .aws("UntagResource")?;
    }
    Ok(())
}

/// Schedules the deletion with a recovery window: a mistaken teardown can be undone.
pub async fn delete(cx: &Context, arn: &str) -> anyhow::Result<()> {
    super::aws_error::ignore_not_found(
        cx.clients
            .secrets
            .delete_secret()
            .secret_id(arn)
            .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
            .send()
            .await,
        "DeleteSecret",
    )
}

/// The current value of a secret, for the data tier. Never log what this returns.
pub async fn read_value(cx: &Context, arn: &str) -> anyhow::Result<String> {
    if let Some(value) = cx.cached_secret_value(arn) {
        return Ok(value);
    }
    let out = cx
        .clients
        .secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .aws("GetSecretValue")?;
    let value = out
        .secret_string()
        .ok_or_else(|| anyhow!("secret {arn} has no string value"))?;
    cx.cache_secret_value(arn, value);
    Ok(value.to_string())
}

impl Resource for SecretSpec {
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
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update(cx, live.arn(), old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete(cx, &live.physical_id).await
    }
}
