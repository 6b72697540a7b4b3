//! IAM roles of the API tasks, with their permissions as inline policies
//! (rendered from `templates/`). Found by name; a role of the same name that
//! another environment or a person made is refused, not adopted.

pub mod spec;

use super::aws_error::{error_code, AwsResultExt};
use super::context::Context;
use super::tags::{check_owner, tag_changes, user_visible_tags};
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::waits::Waits;
use anyhow::anyhow;
use aws_sdk_iam::types::Tag;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub async fn discover(cx: &Context, names: &[(ResourceId, String)]) -> anyhow::Result<Vec<Live>> {
    let found =
        futures::future::try_join_all(names.iter().map(|(id, name)| describe(cx, id, name)))
            .await?;
    Ok(found.into_iter().flatten().collect())
}

/// IAM returns policy documents URL-encoded.
fn document(text: &str, what: &str) -> anyhow::Result<Value> {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8()?;
    serde_json::from_str(&decoded).map_err(|e| anyhow!("{what} is not JSON: {e}"))
}

async fn describe(cx: &Context, id: &ResourceId, name: &str) -> anyhow::Result<Option<Live>> {
    let iam = &cx.clients.iam;
    // The role and its two policy lists are asked for at once (all by the
    // role's name): discovery waits one round trip for them, not three.
    let (role, inline_names, attached) = tokio::join!(
        iam.get_role().role_name(name).send(),
        iam.list_role_policies().role_name(name).send(),
        iam.list_attached_role_policies().role_name(name).send(),
    );
    let role = match role {
        Ok(out) => out.role,
        Err(err) if error_code(&err) == Some("NoSuchEntity") => return Ok(None),
        Err(err) => return Err(err).aws("GetRole"),
    };
    let Some(role) = role else { return Ok(None) };
    let tags = user_visible_tags(
        role.tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string())),
    );
    check_owner(cx, "IAM role", name, &tags)?;
    let inline_names = inline_names.aws("ListRolePolicies")?;
    let attached: BTreeSet<String> = attached
        .aws("ListAttachedRolePolicies")?
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    let documents = futures::future::try_join_all(inline_names.policy_names().iter().map(
        |policy| async move {
            let out = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .aws("GetRolePolicy")?;
            let what = format!("inline policy {policy} of role {name}");
            anyhow::Ok((policy.clone(), document(out.policy_document(), &what)?))
        },
    ))
    .await?;
    let inline: BTreeMap<String, Value> = documents.into_iter().collect();
    let trust = role
        .assume_role_policy_document()
        .map(|d| document(d, &format!("trust policy of role {name}")))
        .transpose()?
        .unwrap_or(Value::Null);
    Ok(Some(Live {
        id: id.clone(),
        physical_id: name.to_string(),
        spec: Spec::Role(RoleSpec {
            name: name.to_string(),
            description: role.description().unwrap_or_default().to_string(),
            trust_policy: trust,
            inline_policies: inline,
            managed_policies: attached,
            permissions_boundary: role
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map(str::to_string),
            tags,
        }),
        attributes: BTreeMap::from([("arn".to_string(), role.arn().to_string())]),
    }))
}

fn iam_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value set")
        })
        .collect()
}

pub async fn create(cx: &Context, id: &ResourceId, spec: &RoleSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .iam
        .create_role()
        .role_name(&spec.name)
        .description(&spec.description)
        .assume_role_policy_document(spec.trust_policy.to_string())
        .set_permissions_boundary(spec.permissions_boundary.clone())
        .set_tags(Some(iam_tags(&spec.tags)))
        .send()
        .await
        .aws("CreateRole")?;
    let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
    cx.record_attribute(id, "arn", &arn);
    for (name, policy) in &spec.inline_policies {
        put_policy(cx, &spec.name, name, policy).await?;
    }
    for arn in &spec.managed_policies {
        cx.clients
            .iam
            .attach_role_policy()
            .role_name(&spec.name)
            .policy_arn(arn)
            .send()
            .await
            .aws("AttachRolePolicy")?;
    }
    Ok(spec.name.clone())
}

async fn put_policy(cx: &Context, role: &str, name: &str, policy: &Value) -> anyhow::Result<()> {
    cx.clients
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(policy.to_string())
        .send()
        .await
        .aws("PutRolePolicy")
        .map(drop)
}

pub async fn update(cx: &Context, old: &RoleSpec, new: &RoleSpec) -> anyhow::Result<()> {
    let iam = &cx.clients.iam;
    let role = &new.name;
    // First: the operator policy lets poolside change a role's policies
    // only once the role carries the boundary.
    update_boundary(cx, role, old, new).await?;
    if old.trust_policy != new.trust_policy {
        iam.update_assume_role_policy()
            .role_name(role)
            .policy_document(new.trust_policy.to_string())
            .send()
            .await
            .aws("UpdateAssumeRolePolicy")?;
    }
    if old.description != new.description {
        iam.update_role()
            .role_name(role)
            .description(&new.description)
            .send()
            .await
            .aws("UpdateRole")?;
    }
    for (name, policy) in &new.inline_policies {
        if old.inline_policies.get(name) != Some(policy) {
            put_policy(cx, role, name, policy).await?;
        }
    }
    for name in old.inline_policies.keys() {
        if !new.inline_policies.contains_key(name) {
            iam.delete_role_policy()
                .role_name(role)
                .policy_name(name)
                .send()
                .await
                .aws("DeleteRolePolicy")?;
        }
    }
    for arn in new.managed_policies.difference(&old.managed_policies) {
        iam.attach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .aws("AttachRolePolicy")?;
    }
    for arn in old.managed_policies.difference(&new.managed_policies) {
        iam.detach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .aws("DetachRolePolicy")?;
    }
    let (changed, removed) = tag_changes(&old.tags, &new.tags);
    if !changed.is_empty() {
        iam.tag_role()
            .role_name(role)
            .set_tags(Some(iam_tags(&changed)))
            .send()
            .await
            .aws("TagRole")?;
    }
    if !removed.is_empty() {
        iam.untag_role()
            .role_name(role)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .aws("UntagRole")?;
    }
    Ok(())
}

async fn update_boundary(
    cx: &Context,
    role: &str,
    old: &RoleSpec,
    new: &RoleSpec,
) -> anyhow::Result<()> {
    if old.permissions_boundary == new.permissions_boundary {
        return Ok(());
    }
    let iam = &cx.clients.iam;
    match &new.permissions_boundary {
        Some(boundary) => iam
            .put_role_permissions_boundary()
            .role_name(role)
            .permissions_boundary(boundary)
            .send()
            .await
            .aws("PutRolePermissionsBoundary")
            .map(drop),
        None => iam
            .delete_role_permissions_boundary()
            .role_name(role)
            .send()
            .await
            .aws("DeleteRolePermissionsBoundary")
            .map(drop),
    }
}

/// A role goes only once nothing is attached or inlined in it.
pub async fn delete(cx: &Context, spec: &RoleSpec) -> anyhow::Result<()> {
    let iam = &cx.clients.iam;
    for name in spec.inline_policies.keys() {
        super::aws_error::ignore_not_found(
            iam.delete_role_policy()
                .role_name(&spec.name)
                .policy_name(name)
                .send()
                .await,
            "DeleteRolePolicy",
        )?;
    }
    for arn in &spec.managed_policies {
        super::aws_error::ignore_not_found(
            iam.detach_role_policy()
                .role_name(&spec.name)
                .policy_arn(arn)
                .send()
                .await,
            "DetachRolePolicy",
        )?;
    }
    super::aws_error::ignore_not_found(
        iam.delete_role().role_name(&spec.name).send().await,
        "DeleteRole",
    )
}

impl Resource for RoleSpec {
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
        delete(cx, self).await
    }
}
