//! Security groups and their rules. Rules are reconciled exactly: a rule
//! added by hand shows up in the plan and is revoked by deploy.

use crate::model::*;
use crate::resources::aws_error::{ignore_not_found, AwsResultExt};
use crate::resources::context::Context;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::tags::{from_ec2_tags, sync_ec2_tags, tag_spec, Names};
use crate::resources::waits::Waits;
use anyhow::anyhow;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, SecurityGroup,
    SecurityGroupRule, UserIdGroupPair,
};
use std::collections::{BTreeMap, BTreeSet};

pub async fn describe_rules(
    cx: &Context,
    group_ids: &[String],
) -> anyhow::Result<Vec<SecurityGroupRule>> {
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut rules = Vec::new();
    let mut pages = cx
        .clients
        .ec2
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .set_values(Some(group_ids.to_vec()))
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        rules.extend(
            page.aws("DescribeSecurityGroupRules")?
                .security_group_rules()
                .iter()
                .cloned(),
        );
    }
    Ok(rules)
}

/// Live groups, and for each a `sg-rules/...` resource holding its rules.
pub fn convert(
    groups: &[(ResourceId, &SecurityGroup)],
    rules: &[SecurityGroupRule],
    names: &Names,
) -> Vec<Live> {
    let mut live = Vec::new();
    for (id, group) in groups {
        let group_id = group.group_id().unwrap_or_default();
        live.push(Live {
            id: id.clone(),
            physical_id: group_id.to_string(),
            spec: Spec::SecurityGroup(SecurityGroupSpec {
                vpc: names.logical(group.vpc_id().unwrap_or_default()),
                group_name: group.group_name().unwrap_or_default().to_string(),
                description: group.description().unwrap_or_default().to_string(),
                tags: from_ec2_tags(group.tags()),
            }),
            attributes: BTreeMap::new(),
        });
        let Some(name) = id.0.strip_prefix("sg/") else {
            continue;
        };
        let (mut ingress, mut egress) = (BTreeSet::new(), BTreeSet::new());
        for observed in observed_rules(rules, group) {
            let rule = Rule {
                peer: names.logical(&observed.rule.peer).0,
                ..observed.rule
            };
            if observed.egress {
                egress.insert(rule);
            } else {
                ingress.insert(rule);
            }
        }
        live.push(Live {
            id: ResourceId::new(Kind::SecurityGroupRules, name),
            physical_id: group_id.to_string(),
            spec: Spec::SecurityGroupRules(SecurityGroupRulesSpec {
                group: id.clone(),
                ingress,
                egress,
            }),
            attributes: BTreeMap::new(),
        });
    }
    live
}

/// One rule of a group as AWS has it, with its peer as an AWS id.
struct ObservedRule {
    rule: Rule,
    egress: bool,
    rule_id: Option<String>,
}

/// The rules of `group`, from DescribeSecurityGroupRules. moto leaves the
/// description of group-to-group rules out of that call (AWS includes it), so
/// a missing one is taken from the group's own IpPermissions, which both fill.
fn observed_rules(rules: &[SecurityGroupRule], group: &SecurityGroup) -> Vec<ObservedRule> {
    let group_id = group.group_id().unwrap_or_default();
    rules
        .iter()
        .filter(|r| r.group_id() == Some(group_id))
        .map(|r| {
            let egress = r.is_egress().unwrap_or(false);
            let mut rule = Rule {
                protocol: r.ip_protocol().unwrap_or("-1").to_string(),
                from_port: r.from_port().unwrap_or(-1),
                to_port: r.to_port().unwrap_or(-1),
                peer: peer_of(r).unwrap_or_default().to_string(),
                description: r.description().unwrap_or_default().to_string(),
            };
            if rule.description.is_empty() && r.referenced_group_info().is_some() {
                rule.description = pair_description(group, egress, &rule).unwrap_or_default();
            }
            ObservedRule {
                rule,
                egress,
                rule_id: r.security_group_rule_id().map(str::to_string),
            }
        })
        .collect()
}

fn pair_description(group: &SecurityGroup, egress: bool, rule: &Rule) -> Option<String> {
    let permissions = if egress {
        group.ip_permissions_egress()
    } else {
        group.ip_permissions()
    };
    permissions
        .iter()
        .filter(|p| {
            p.ip_protocol() == Some(rule.protocol.as_str())
                && p.from_port().unwrap_or(-1) == rule.from_port
                && p.to_port().unwrap_or(-1) == rule.to_port
        })
        .flat_map(|p| p.user_id_group_pairs())
        .find(|pair| pair.group_id() == Some(rule.peer.as_str()))
        .and_then(|pair| pair.description())
        .map(str::to_string)
}

fn peer_of(rule: &SecurityGroupRule) -> Option<&str> {
    rule.cidr_ipv4()
        .or(rule.cidr_ipv6())
        .or(rule.prefix_list_id())
        .or(rule.referenced_group_info().and_then(|g| g.group_id()))
}

pub async fn create_group(cx: &Context, spec: &SecurityGroupSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_security_group()
        .group_name(&spec.group_name)
        .description(&spec.description)
        .vpc_id(cx.resolve(&spec.vpc)?)
        .tag_specifications(tag_spec(ResourceType::SecurityGroup, &spec.tags))
        .send()
        .await
        .aws("CreateSecurityGroup")?;
    out.group_id()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("CreateSecurityGroup returned no id"))
}

pub async fn delete_group(cx: &Context, group_id: &str) -> anyhow::Result<()> {
    let result = cx
        .clients
        .ec2
        .delete_security_group()
        .group_id(group_id)
        .send()
        .await;
    ignore_not_found(result, "DeleteSecurityGroup")
}

/// Makes the group's rules exactly the desired ones, against a fresh read of
/// what the group has now (a new group comes with an allow-all egress rule).
pub async fn reconcile_rules(
    cx: &Context,
    spec: &SecurityGroupRulesSpec,
) -> anyhow::Result<String> {
    let group_id = cx.resolve(&spec.group)?;
    let (rules, groups) =
        tokio::try_join!(describe_rules(cx, std::slice::from_ref(&group_id)), async {
            cx.clients
                .ec2
                .describe_security_groups()
                .group_ids(&group_id)
                .send()
                .await
                .aws("DescribeSecurityGroups")
        })?;
    let group = groups
        .security_groups()
        .first()
        .ok_or_else(|| anyhow!("security group {group_id} does not exist"))?;
    let current = observed_rules(&rules, group);
    for (egress, wanted) in [(false, &spec.ingress), (true, &spec.egress)] {
        let wanted: BTreeSet<Rule> = wanted
            .iter()
            .map(|r| to_physical(cx, r))
            .collect::<Result<_, _>>()?;
        let mut present = BTreeSet::new();
        let mut extra_ids = Vec::new();
        for observed in current.iter().filter(|o| o.egress == egress) {
            if wanted.contains(&observed.rule) {
                present.insert(observed.rule.clone());
            } else if let Some(rule_id) = &observed.rule_id {
                extra_ids.push(rule_id.clone());
            }
        }
        // Revoke first: a rule whose description changed is revoked, then added back.
        revoke(cx, &group_id, egress, extra_ids).await?;
        let missing: Vec<IpPermission> = wanted.difference(&present).map(permission).collect();
        if !missing.is_empty() {
            let ec2 = &cx.clients.ec2;
            if egress {
                ec2.authorize_security_group_egress()
                    .group_id(&group_id)
                    .set_ip_permissions(Some(missing))
                    .send()
                    .await
                    .aws("AuthorizeSecurityGroupEgress")?;
            } else {
                ec2.authorize_security_group_ingress()
                    .group_id(&group_id)
                    .set_ip_permissions(Some(missing))
                    .send()
                    .await
                    .aws("AuthorizeSecurityGroupIngress")?;
            }
        }
    }
    Ok(group_id)
}

/// Revokes every rule of the group, so that groups referring to each other can be deleted.
pub async fn revoke_all_rules(cx: &Context, group_id: &str) -> anyhow::Result<()> {
    let current = describe_rules(cx, &[group_id.to_string()]).await?;
    for egress in [false, true] {
        let ids = current
            .iter()
            .filter(|r| r.is_egress() == Some(egress))
            .filter_map(|r| r.security_group_rule_id().map(str::to_string))
            .collect();
        revoke(cx, group_id, egress, ids).await?;
    }
    Ok(())
}

/// Revokes by rule id: revoking by permission fails on emulators for rules with a description.
async fn revoke(
    cx: &Context,
    group_id: &str,
    egress: bool,
    rule_ids: Vec<String>,
) -> anyhow::Result<()> {
    if rule_ids.is_empty() {
        return Ok(());
    }
    let ec2 = &cx.clients.ec2;
    if egress {
        let result = ec2
            .revoke_security_group_egress()
            .group_id(group_id)
            .set_security_group_rule_ids(Some(rule_ids))
            .send()
            .await;
        ignore_not_found(result, "RevokeSecurityGroupEgress")
    } else {
        let result = ec2
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_security_group_rule_ids(Some(rule_ids))
            .send()
            .await;
        ignore_not_found(result, "RevokeSecurityGroupIngress")
    }
}

fn to_physical(cx: &Context, rule: &Rule) -> anyhow::Result<Rule> {
    Ok(Rule {
        peer: cx.resolve(&ResourceId(rule.peer.clone()))?,
        ..rule.clone()
    })
}

fn permission(rule: &Rule) -> IpPermission {
    let builder = IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .from_port(rule.from_port)
        .to_port(rule.to_port);
    let peer = rule.peer.as_str();
    let description = rule.description.as_str();
    if peer.starts_with("pl-") {
        builder
            .prefix_list_ids(
                PrefixListId::builder()
                    .prefix_list_id(peer)
                    .description(description)
                    .build(),
            )
            .build()
    } else if peer.contains(':') {
        builder
            .ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(peer)
                    .description(description)
                    .build(),
            )
            .build()
    } else if peer.contains('/') {
        builder
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip(peer)
                    .description(description)
                    .build(),
            )
            .build()
    } else {
        builder
            .user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(peer)
                    .description(description)
                    .build(),
            )
            .build()
    }
}

impl Resource for SecurityGroupSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_group(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        sync_ec2_tags(cx, &live.physical_id, &old.tags, &self.tags).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_group(cx, &live.physical_id).await
    }
}

impl Resource for SecurityGroupRulesSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        reconcile_rules(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        _live: &Live,
        _old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        reconcile_rules(cx, self).await.map(drop)
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        revoke_all_rules(cx, &live.physical_id).await
    }
}
