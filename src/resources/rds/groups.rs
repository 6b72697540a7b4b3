//! The database's subnet group and parameter group (pg_cron preloaded, TLS
//! forced): found by name, changed in place.

use crate::model::*;
use crate::resources::aws_error::{error_code, AwsResultExt};
use crate::resources::context::Context;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::tags::Names;
use crate::resources::tags::{check_owner, rds_tags, rds_tags_of, sync_rds_tags};
use crate::resources::waits::Waits;
use anyhow::bail;
use aws_sdk_rds::types::{ApplyMethod, Parameter};
use std::collections::BTreeMap;
use std::time::Duration;

/// Set on the instance when its parameter group changed in this run: its
/// reboot check must not trust what discovery read.
pub(super) const PARAMETER_GROUP_CHANGED: &str = "parameter_group_changed";

/// ModifyDBParameterGroup is eventually consistent: AWS asks for a wait
/// before a new instance uses the group. How long to wait for the values to show.
const PARAMETERS_SHOW_WITHIN: Duration = Duration::from_secs(5 * 60);
/// Parameters PostgreSQL reads only at start: changing one needs a reboot.
pub(super) const STATIC_PARAMETERS: [&str; 2] = ["shared_preload_libraries", "cron.database_name"];
pub(super) const POLL_EVERY: Duration = Duration::from_secs(5);

/// A subnet group as RDS describes it, with its tags.
pub(super) struct FoundSubnetGroup {
    group: aws_sdk_rds::types::DbSubnetGroup,
    tags: Tags,
}

pub(super) async fn describe_subnet_group(
    cx: &Context,
    name: &str,
) -> anyhow::Result<Option<FoundSubnetGroup>> {
    let found = match cx
        .clients
        .rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await
    {
        Ok(out) => out.db_subnet_groups().first().cloned(),
        Err(err) if error_code(&err) == Some("DBSubnetGroupNotFoundFault") => None,
        Err(err) => return Err(err).aws("DescribeDBSubnetGroups"),
    };
    let Some(group) = found else { return Ok(None) };
    let tags = rds_tags_of(cx, group.db_subnet_group_arn().unwrap_or_default()).await?;
    check_owner(cx, "DB subnet group", name, &tags)?;
    Ok(Some(FoundSubnetGroup { group, tags }))
}

/// The subnet group, its subnets named as the blueprint names them.
pub(super) fn observe_subnet_group(found: FoundSubnetGroup, name: &str, network: &Names) -> Live {
    let FoundSubnetGroup { group, tags } = found;
    let arn = group.db_subnet_group_arn().unwrap_or_default().to_string();
    Live {
        id: ResourceId::new(Kind::DbSubnetGroup, "main"),
        physical_id: name.to_string(),
        spec: Spec::DbSubnetGroup(DbSubnetGroupSpec {
            name: name.to_string(),
            description: group
                .db_subnet_group_description()
                .unwrap_or_default()
                .to_string(),
            subnets: group
                .subnets()
                .iter()
                .filter_map(|s| s.subnet_identifier())
                .map(|id| network.logical(id))
                .collect(),
            tags,
        }),
        attributes: BTreeMap::from([("arn".to_string(), arn)]),
    }
}

/// A parameter group by name; `None` when RDS has none of that name.
async fn describe_parameter_group(
    cx: &Context,
    name: &str,
) -> anyhow::Result<Option<aws_sdk_rds::types::DbParameterGroup>> {
    match cx
        .clients
        .rds
        .describe_db_parameter_groups()
        .db_parameter_group_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_parameter_groups().first().cloned()),
        Err(err) if error_code(&err) == Some("DBParameterGroupNotFound") => Ok(None),
        Err(err) => Err(err).aws("DescribeDBParameterGroups"),
    }
}

pub(super) async fn discover_parameter_group(
    cx: &Context,
    name: &str,
) -> anyhow::Result<Option<Live>> {
    let Some(group) = describe_parameter_group(cx, name).await? else {
        return Ok(None);
    };
    let arn = group
        .db_parameter_group_arn()
        .unwrap_or_default()
        .to_string();
    let (tags, parameters) = tokio::try_join!(rds_tags_of(cx, &arn), user_parameters(cx, name))?;
    check_owner(cx, "DB parameter group", name, &tags)?;
    Ok(Some(Live {
        id: ResourceId::new(Kind::DbParameterGroup, "main"),
        physical_id: name.to_string(),
        spec: Spec::DbParameterGroup(DbParameterGroupSpec {
            name: name.to_string(),
            family: group
                .db_parameter_group_family()
                .unwrap_or_default()
                .to_string(),
            description: group.description().unwrap_or_default().to_string(),
            parameters,
            tags,
        }),
        attributes: BTreeMap::from([("arn".to_string(), arn)]),
    }))
}

/// Whether `name` is named as our group `ours` of another major
/// (`poolside-acme-postgres16` beside `poolside-acme-postgres17`).
pub(super) fn is_previous_group(ours: &str, name: &str) -> bool {
    let prefix = ours.trim_end_matches(|c: char| c.is_ascii_digit());
    name != ours
        && name
            .strip_prefix(prefix)
            .is_some_and(|major| !major.is_empty() && major.chars().all(|c| c.is_ascii_digit()))
}

/// The groups of the majors before ours that poolside supports
/// (`...postgres14` to `...postgres16` for `...postgres17`), newest first:
/// a major upgrade may jump over one, and leaves the old group behind.
pub(super) fn groups_of_majors_before(ours: &str) -> Vec<String> {
    let prefix = ours.trim_end_matches(|c: char| c.is_ascii_digit());
    let Ok(major) = ours[prefix.len()..].parse::<u32>() else {
        return vec![];
    };
    (*crate::config::SUPPORTED_MAJORS.start()..major)
        .rev()
        .map(|m| format!("{prefix}{m}"))
        .collect()
}

/// A parameter group poolside made for this environment's earlier major,
/// read by name: a major upgrade leaves it until the instance has moved off
/// it, and the plan deletes it then. One not tagged as this environment's
/// is not ours, and is left alone.
pub(super) async fn previous_parameter_group(
    cx: &Context,
    name: &str,
) -> anyhow::Result<Option<Live>> {
    let Some(group) = describe_parameter_group(cx, name).await? else {
        return Ok(None);
    };
    let arn = group.db_parameter_group_arn().unwrap_or_default();
    let tags = rds_tags_of(cx, arn).await?;
    if tags.get(TAG_ENV) != Some(&cx.environment) {
        return Ok(None);
    }
    let family = group.db_parameter_group_family().unwrap_or_default();
    Ok(Some(Live {
        id: ResourceId::new(Kind::DbParameterGroup, family),
        physical_id: name.to_string(),
        spec: Spec::DbParameterGroup(DbParameterGroupSpec {
            name: name.to_string(),
            family: family.to_string(),
            description: group.description().unwrap_or_default().to_string(),
            parameters: BTreeMap::new(),
            tags,
        }),
        attributes: BTreeMap::from([("arn".to_string(), arn.to_string())]),
    }))
}

pub async fn create_subnet_group(cx: &Context, spec: &DbSubnetGroupSpec) -> anyhow::Result<String> {
    let subnets = resolve_all(cx, &spec.subnets)?;
    cx.clients
        .rds
        .create_db_subnet_group()
        .db_subnet_group_name(&spec.name)
        .db_subnet_group_description(&spec.description)
        .set_subnet_ids(Some(subnets))
        .set_tags(Some(rds_tags(&spec.tags)))
        .send()
        .await
        .aws("CreateDBSubnetGroup")?;
    Ok(spec.name.clone())
}

pub async fn update_subnet_group(
    cx: &Context,
    arn: &str,
    old: &DbSubnetGroupSpec,
    new: &DbSubnetGroupSpec,
) -> anyhow::Result<()> {
    if old.subnets != new.subnets || old.description != new.description {
        cx.clients
            .rds
            .modify_db_subnet_group()
            .db_subnet_group_name(&new.name)
            .db_subnet_group_description(&new.description)
            .set_subnet_ids(Some(resolve_all(cx, &new.subnets)?))
            .send()
            .await
            .aws("ModifyDBSubnetGroup")?;
    }
    sync_rds_tags(cx, arn, &old.tags, &new.tags).await
}

pub async fn delete_subnet_group(cx: &Context, name: &str) -> anyhow::Result<()> {
    crate::resources::aws_error::ignore_not_found(
        cx.clients
            .rds
            .delete_db_subnet_group()
            .db_subnet_group_name(name)
            .send()
            .await,
        "DeleteDBSubnetGroup",
    )
}

pub async fn create_parameter_group(
    cx: &Context,
    spec: &DbParameterGroupSpec,
) -> anyhow::Result<String> {
    cx.clients
        .rds
        .create_db_parameter_group()
        .db_parameter_group_name(&spec.name)
        .db_parameter_group_family(&spec.family)
        .description(&spec.description)
        .set_tags(Some(rds_tags(&spec.tags)))
        .send()
        .await
        .aws("CreateDBParameterGroup")?;
    set_parameters(cx, &spec.name, &BTreeMap::new(), &spec.parameters).await?;
    wait_parameters_visible(cx, &spec.name, &spec.parameters).await?;
    Ok(spec.name.clone())
}

/// The user-set parameters of a group, as DescribeDBParameters reports them.
async fn user_parameters(cx: &Context, group: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut parameters = BTreeMap::new();
    let mut pages = cx
        .clients
        .rds
        .describe_db_parameters()
        .db_parameter_group_name(group)
        .source("user")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for p in page.aws("DescribeDBParameters")?.parameters() {
            if let (Some(k), Some(v)) = (p.parameter_name(), p.parameter_value()) {
                parameters.insert(k.to_string(), v.to_string());
            }
        }
    }
    Ok(parameters)
}

/// Polls until every parameter poolside set shows with its value, so the
/// instance that the next step creates starts with them.
async fn wait_parameters_visible(
    cx: &Context,
    group: &str,
    wanted: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        let shown = user_parameters(cx, group).await?;
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|(k, v)| shown.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= PARAMETERS_SHOW_WITHIN {
            bail!(
                "DB parameter group {group} still does not show {} {}s after it was modified; run deploy again",
                missing.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
                PARAMETERS_SHOW_WITHIN.as_secs()
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

pub async fn update_parameter_group(
    cx: &Context,
    arn: &str,
    old: &DbParameterGroupSpec,
    new: &DbParameterGroupSpec,
) -> anyhow::Result<()> {
    set_parameters(cx, &new.name, &old.parameters, &new.parameters).await?;
    if old.parameters != new.parameters {
        // What discovery saw of the instance's parameters is stale now.
        let instance = ResourceId::new(Kind::DbInstance, "main");
        cx.record_attribute(&instance, PARAMETER_GROUP_CHANGED, "true");
    }
    if old.description != new.description {
        bail!(
            "the description of DB parameter group {} cannot be changed in place",
            new.name
        );
    }
    sync_rds_tags(cx, arn, &old.tags, &new.tags).await
}

/// Sets the changed parameters and resets the ones poolside no longer sets.
/// A static parameter waits for a reboot, which the data tier does after apply.
async fn set_parameters(
    cx: &Context,
    group: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let method = |name: &str| {
        if STATIC_PARAMETERS.contains(&name) {
            ApplyMethod::PendingReboot
        } else {
            ApplyMethod::Immediate
        }
    };
    let changed: Vec<Parameter> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_name(k)
                .parameter_value(v)
                .apply_method(method(k))
                .build()
        })
        .collect();
    // ModifyDBParameterGroup takes at most 20 parameters per call.
    for batch in changed.chunks(20) {
        cx.clients
            .rds
            .modify_db_parameter_group()
            .db_parameter_group_name(group)
            .set_parameters(Some(batch.to_vec()))
            .send()
            .await
            .aws("ModifyDBParameterGroup")?;
    }
    let removed: Vec<Parameter> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| {
            Parameter::builder()
                .parameter_name(k)
                .apply_method(method(k))
                .build()
        })
        .collect();
    for batch in removed.chunks(20) {
        cx.clients
            .rds
            .reset_db_parameter_group()
            .db_parameter_group_name(group)
            .set_parameters(Some(batch.to_vec()))
            .send()
            .await
            .aws("ResetDBParameterGroup")?;
    }
    Ok(())
}

pub async fn delete_parameter_group(cx: &Context, name: &str) -> anyhow::Result<()> {
    crate::resources::aws_error::ignore_not_found(
        cx.clients
            .rds
            .delete_db_parameter_group()
            .db_parameter_group_name(name)
            .send()
            .await,
        "DeleteDBParameterGroup",
    )
}

pub(super) fn resolve_all<'a>(
    cx: &Context,
    refs: impl IntoIterator<Item = &'a ResourceId>,
) -> anyhow::Result<Vec<String>> {
    refs.into_iter().map(|r| cx.resolve(r)).collect()
}

impl Resource for DbSubnetGroupSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_subnet_group(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_subnet_group(cx, live.arn(), old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_subnet_group(cx, &live.physical_id).await
    }
}

impl Resource for DbParameterGroupSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_parameter_group(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_parameter_group(cx, live.arn(), old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        if live.id == ResourceId::new(Kind::DbParameterGroup, "main") {
            return delete_parameter_group(cx, &live.physical_id).await;
        }
        delete_previous_group(cx, &live.physical_id).await
    }
}

/// The group of an earlier major, after an upgrade. RDS may refuse it for a
/// while after the instance moved off it (InvalidDBParameterGroupState),
/// or keep the instance on it when the upgrade was refused: then it is left
/// for the next deploy, whose plan finds it again, rather than failing a
/// deploy whose upgrade is done.
async fn delete_previous_group(cx: &Context, name: &str) -> anyhow::Result<()> {
    let deleted = cx
        .clients
        .rds
        .delete_db_parameter_group()
        .db_parameter_group_name(name)
        .send()
        .await;
    match deleted {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("DBParameterGroupNotFound") => Ok(()),
        Err(err) if error_code(&err) == Some("InvalidDBParameterGroupState") => {
            tracing::warn!(
                group = name,
                "RDS does not let the parameter group of the old major go yet (still in use); the next deploy deletes it"
            );
            Ok(())
        }
        Err(err) => Err(err).aws("DeleteDBParameterGroup"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_group_is_ours_with_another_major() {
        let ours = "poolside-acme-postgres17";
        assert!(is_previous_group(ours, "poolside-acme-postgres16"));
        assert!(is_previous_group(ours, "poolside-acme-postgres9"));
        assert!(!is_previous_group(ours, ours));
        assert!(!is_previous_group(ours, "poolside-acme-postgres"));
        assert!(!is_previous_group(ours, "poolside-acme-postgres16-copy"));
        assert!(!is_previous_group(ours, "default.postgres16"));
        assert_eq!(
            groups_of_majors_before(ours),
            [
                "poolside-acme-postgres16",
                "poolside-acme-postgres15",
                "poolside-acme-postgres14"
            ]
        );
        assert_eq!(
            groups_of_majors_before("poolside-acme-postgres14"),
            Vec::<String>::new()
        );
    }
}
