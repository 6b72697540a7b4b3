//! poolside's tags: how a resource is known to belong to an environment
//! (and under which logical id), and how tags are kept exactly as desired.

use super::aws_error::AwsResultExt;
use super::context::Context;
use crate::model::*;
use anyhow::anyhow;
use std::collections::BTreeMap;

/// Refuses to manage a resource found by name that another environment (or
/// nobody) tagged: a name clash must not become a takeover.
pub(crate) fn check_owner(cx: &Context, what: &str, name: &str, tags: &Tags) -> anyhow::Result<()> {
    match tags.get(TAG_ENV) {
        Some(owner) if *owner == cx.environment => Ok(()),
        Some(owner) => Err(anyhow!(
            "the {what} {name:?} belongs to the poolside environment {owner:?}"
        )),
        None => Err(anyhow!("a {what} named {name:?} exists but was not made by poolside (no {TAG_ENV} tag); rename or remove it")),
    }
}

/// AWS-reserved tags (`aws:*`) are neither ours nor removable.
pub(crate) fn user_visible_tags(tags: impl IntoIterator<Item = (String, String)>) -> Tags {
    tags.into_iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect()
}

pub(crate) fn ec2_tags(tags: &Tags) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn from_ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    user_visible_tags(tags.iter().filter_map(|t| {
        Some((
            t.key()?.to_string(),
            t.value().unwrap_or_default().to_string(),
        ))
    }))
}

pub(crate) fn tag_spec(
    resource_type: aws_sdk_ec2::types::ResourceType,
    tags: &Tags,
) -> aws_sdk_ec2::types::TagSpecification {
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

pub(crate) fn env_filter(environment: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{TAG_ENV}"))
        .values(environment)
        .build()
}

/// Makes the tags of an EC2 resource exactly `new`.
pub(crate) async fn sync_ec2_tags(
    cx: &Context,
    physical_id: &str,
    old: &Tags,
    new: &Tags,
) -> anyhow::Result<()> {
    let (changed, removed) = tag_changes(old, new);
    if !changed.is_empty() {
        cx.clients
            .ec2
            .create_tags()
            .resources(physical_id)
            .set_tags(Some(ec2_tags(&changed)))
            .send()
            .await
            .aws("CreateTags")?;
    }
    if !removed.is_empty() {
        let keys = removed
            .iter()
            .map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build())
            .collect();
        cx.clients
            .ec2
            .delete_tags()
            .resources(physical_id)
            .set_tags(Some(keys))
            .send()
            .await
            .aws("DeleteTags")?;
    }
    Ok(())
}

/// What turns `old` tags into `new`: tags to set (new or changed) and keys to remove.
pub(crate) fn tag_changes(old: &Tags, new: &Tags) -> (Tags, Vec<String>) {
    let set = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    (set, removed)
}

/// Maps AWS ids back to logical ids while discovery converts what it found.
#[derive(Default)]
pub(crate) struct Names(BTreeMap<String, ResourceId>);

impl Names {
    pub fn insert(&mut self, physical: &str, id: &ResourceId) {
        self.0.insert(physical.to_string(), id.clone());
    }

    /// The logical id of an AWS id, or the AWS id itself for what poolside does not manage.
    pub fn logical(&self, physical: &str) -> ResourceId {
        self.0
            .get(physical)
            .cloned()
            .unwrap_or_else(|| ResourceId(physical.to_string()))
    }
}

/// The logical id in a resource's tags, if it belongs to this environment.
/// Extra copies of one id (which tag-on-create should prevent) get a unique
/// id of their own, so the plan deletes them instead of hiding them.
pub(crate) fn identify(
    environment: &str,
    tags: &Tags,
    physical_id: &str,
    seen: &mut std::collections::BTreeSet<ResourceId>,
) -> Option<ResourceId> {
    if tags.get(TAG_ENV).map(String::as_str) != Some(environment) {
        return None;
    }
    let id = ResourceId(tags.get(TAG_ID)?.clone());
    if seen.insert(id.clone()) {
        Some(id)
    } else {
        Some(ResourceId(format!("{}#{physical_id}", id.0)))
    }
}

/// ECS's tags, as the API takes them.
pub(crate) fn ecs_tags(tags: &Tags) -> Vec<aws_sdk_ecs::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn from_ecs_tags(tags: &[aws_sdk_ecs::types::Tag]) -> Tags {
    user_visible_tags(tags.iter().filter_map(|t| {
        Some((
            t.key()?.to_string(),
            t.value().unwrap_or_default().to_string(),
        ))
    }))
}

pub(crate) async fn sync_ecs_tags(
    cx: &Context,
    arn: &str,
    old: &Tags,
    new: &Tags,
) -> anyhow::Result<()> {
    let (changed, removed) = tag_changes(old, new);
    if !changed.is_empty() {
        cx.clients
            .ecs
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(ecs_tags(&changed)))
            .send()
            .await
            .aws("TagResource")?;
    }
    if !removed.is_empty() {
        cx.clients
            .ecs
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .aws("UntagResource")?;
    }
    Ok(())
}

/// The load balancer's tags (ELB), as its API takes them.
pub(crate) fn elb_tags(tags: &Tags) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect()
}

/// Tags by ARN, AWS's reserved ones left out; at most 20 ARNs a call.
pub(crate) async fn describe_elb_tags(
    cx: &Context,
    arns: Vec<String>,
) -> anyhow::Result<BTreeMap<String, Tags>> {
    let mut tags_by_arn = BTreeMap::new();
    for chunk in arns.chunks(20) {
        let out = cx
            .clients
            .elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .aws("DescribeTags")?;
        for description in out.tag_descriptions() {
            let tags = user_visible_tags(description.tags().iter().filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            }));
            tags_by_arn.insert(
                description.resource_arn().unwrap_or_default().to_string(),
                tags,
            );
        }
    }
    Ok(tags_by_arn)
}

pub(crate) async fn sync_elb_tags(
    cx: &Context,
    arn: &str,
    old: &Tags,
    new: &Tags,
) -> anyhow::Result<()> {
    let (changed, removed) = tag_changes(old, new);
    if !changed.is_empty() {
        cx.clients
            .elb
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(elb_tags(&changed)))
            .send()
            .await
            .aws("AddTags")?;
    }
    if !removed.is_empty() {
        cx.clients
            .elb
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .aws("RemoveTags")?;
    }
    Ok(())
}

/// RDS's tags, as its API takes them.
pub(crate) async fn rds_tags_of(cx: &Context, arn: &str) -> anyhow::Result<Tags> {
    let out = cx
        .clients
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .aws("ListTagsForResource")?;
    Ok(from_rds_tags(out.tag_list()))
}

pub(crate) fn from_rds_tags(tags: &[aws_sdk_rds::types::Tag]) -> Tags {
    user_visible_tags(tags.iter().filter_map(|t| {
        Some((
            t.key()?.to_string(),
            t.value().unwrap_or_default().to_string(),
        ))
    }))
}

pub(crate) fn rds_tags(tags: &Tags) -> Vec<aws_sdk_rds::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) async fn sync_rds_tags(
    cx: &Context,
    arn: &str,
    old: &Tags,
    new: &Tags,
) -> anyhow::Result<()> {
    let (changed, removed) = tag_changes(old, new);
    if !changed.is_empty() {
        cx.clients
            .rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(rds_tags(&changed)))
            .send()
            .await
            .aws("AddTagsToResource")?;
    }
    if !removed.is_empty() {
        cx.clients
            .rds
            .remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .aws("RemoveTagsFromResource")?;
    }
    Ok(())
}
