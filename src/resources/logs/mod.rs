//! The CloudWatch Logs group the API tasks write to, with its retention.

pub mod spec;

use super::aws_error::AwsResultExt;
use super::context::Context;
use super::tags::{check_owner, tag_changes};
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::waits::Waits;
use std::collections::{BTreeMap, HashMap};

pub async fn discover(cx: &Context, id: &ResourceId, name: &str) -> anyhow::Result<Vec<Live>> {
    let logs = &cx.clients.logs;
    let out = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .aws("DescribeLogGroups")?;
    let Some(group) = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
    else {
        return Ok(vec![]);
    };
    let arn = tagging_arn(group.arn().unwrap_or_default());
    let tags: Tags = logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .aws("ListTagsForResource")?
        .tags()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    check_owner(cx, "log group", name, &tags)?;
    Ok(vec![Live {
        id: id.clone(),
        physical_id: name.to_string(),
        spec: Spec::LogGroup(LogGroupSpec {
            name: name.to_string(),
            retention_days: group.retention_in_days().unwrap_or(0),
            tags,
        }),
        attributes: BTreeMap::from([("arn".to_string(), arn)]),
    }])
}

/// DescribeLogGroups gives `...:log-group:NAME:*`; tagging wants it without `:*`.
fn tagging_arn(arn: &str) -> String {
    arn.strip_suffix(":*").unwrap_or(arn).to_string()
}

pub async fn create(cx: &Context, id: &ResourceId, spec: &LogGroupSpec) -> anyhow::Result<String> {
    let logs = &cx.clients.logs;
    logs.create_log_group()
        .log_group_name(&spec.name)
        .set_tags(Some(
            spec.tags.clone().into_iter().collect::<HashMap<_, _>>(),
        ))
        .send()
        .await
        .aws("CreateLogGroup")?;
    set_retention(cx, spec).await?;
    let found = logs
        .describe_log_groups()
        .log_group_name_prefix(&spec.name)
        .send()
        .await
        .aws("DescribeLogGroups")?;
    if let Some(arn) = found
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(spec.name.as_str()))
        .and_then(|g| g.arn())
    {
        cx.record_attribute(id, "arn", &tagging_arn(arn));
    }
    Ok(spec.name.clone())
}

async fn set_retention(cx: &Context, spec: &LogGroupSpec) -> anyhow::Result<()> {
    cx.clients
        .logs
        .put_retention_policy()
        .log_group_name(&spec.name)
        .retention_in_days(spec.retention_days)
        .send()
        .await
        .aws("PutRetentionPolicy")
        .map(drop)
}

pub async fn update(
    cx: &Context,
    arn: &str,
    old: &LogGroupSpec,
    new: &LogGroupSpec,
) -> anyhow::Result<()> {
    if old.retention_days != new.retention_days {
        set_retention(cx, new).await?;
    }
    let logs = &cx.clients.logs;
    let (changed, removed) = tag_changes(&old.tags, &new.tags);
    if !changed.is_empty() {
        logs.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(changed.into_iter().collect()))
            .send()
            .await
            .aws("TagResource")?;
    }
    if !removed.is_empty() {
        logs.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .aws("UntagResource")?;
    }
    Ok(())
}

pub async fn delete(cx: &Context, name: &str) -> anyhow::Result<()> {
    super::aws_error::ignore_not_found(
        cx.clients
            .logs
            .delete_log_group()
            .log_group_name(name)
            .send()
            .await,
        "DeleteLogGroup",
    )
}

impl Resource for LogGroupSpec {
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

    async fn delete(&self, cx: &Context, _live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete(cx, &self.name).await
    }
}
