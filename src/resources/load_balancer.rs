//! The Application Load Balancer, the API's target group and the listeners.
//! Found by name (the load balancer, the target group) and by port (listeners).

use super::aws_error::{error_code, AwsResultExt};
use super::context::Context;
use super::tags::{check_owner, tag_changes};
use crate::model::*;
use anyhow::anyhow;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, ForwardActionConfig, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum, Matcher, PathPatternConditionConfig, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition, Tag, TargetGroupTuple, TargetTypeEnum,
};
use std::collections::BTreeMap;

pub struct LoadBalancerNames {
    pub load_balancer: String,
    /// The service's target group and its alternate (for traffic shifts).
    pub target_groups: Vec<(ResourceId, String)>,
}

fn elb_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// `app/<name>/<id>`: how CloudWatch names a load balancer.
fn load_balancer_dimension(arn: &str) -> String {
    arn.split_once(":loadbalancer/")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

/// `targetgroup/<name>/<id>`: how CloudWatch names a target group.
fn target_group_dimension(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or_default().to_string()
}

pub async fn discover(cx: &Context, names: &LoadBalancerNames) -> anyhow::Result<Vec<Live>> {
    let elb = &cx.clients.elb;
    // One name per call: AWS fails the whole call when one name is unknown.
    let target_groups =
        futures::future::try_join_all(names.target_groups.iter().map(|(id, name)| async move {
            match elb.describe_target_groups().names(name).send().await {
                Ok(out) => Ok(out
                    .target_groups()
                    .first()
                    .cloned()
                    .map(|tg| (id.clone(), name.clone(), tg))),
                Err(err) if error_code(&err) == Some("TargetGroupNotFound") => Ok(None),
                Err(err) => Err(err).aws("DescribeTargetGroups"),
            }
        }));
    let (lbs, target_groups) = tokio::join!(
        elb.describe_load_balancers()
            .names(&names.load_balancer)
            .send(),
        target_groups,
    );
    let lb = match lbs {
        Ok(out) => out.load_balancers().first().cloned(),
        Err(err) if error_code(&err) == Some("LoadBalancerNotFound") => None,
        Err(err) => return Err(err).aws("DescribeLoadBalancers"),
    };
    let target_groups: Vec<_> = target_groups?.into_iter().flatten().collect();
    let arns: Vec<String> = lb
        .iter()
        .filter_map(|l| l.load_balancer_arn())
        .chain(
            target_groups
                .iter()
                .filter_map(|(_, _, t)| t.target_group_arn()),
        )
        .map(str::to_string)
        .collect();
    let tags_by_arn = describe_tags(cx, arns).await?;
    let mut live = Vec::new();
    if let Some(lb) = lb {
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let tags = tags_by_arn.get(&arn).cloned().unwrap_or_default();
        check_owner(cx, "load balancer", &names.load_balancer, &tags)?;
        live.push(load_balancer_live(&lb, &names.load_balancer, tags));
        live.extend(discover_listeners(cx, &arn).await?);
    }
    for (id, name, tg) in target_groups {
        let arn = tg.target_group_arn().unwrap_or_default().to_string();
        let tags = tags_by_arn.get(&arn).cloned().unwrap_or_default();
        check_owner(cx, "target group", &name, &tags)?;
        let deregistration_delay_s = deregistration_delay(cx, &arn).await?;
        live.push(target_group_live(
            id,
            name,
            &tg,
            tags,
            deregistration_delay_s,
        ));
    }
    Ok(live)
}

fn load_balancer_live(
    lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer,
    name: &str,
    tags: Tags,
) -> Live {
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let id = ResourceId::new(Kind::LoadBalancer, "api");
    Live {
        id: id.clone(),
        physical_id: arn.clone(),
        spec: Spec::LoadBalancer(LoadBalancerSpec {
            name: name.to_string(),
            scheme: lb
                .scheme()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            subnets: lb
                .availability_zones()
                .iter()
                .filter_map(|az| az.subnet_id().map(str::to_string))
                .collect(),
            security_groups: lb.security_groups().iter().cloned().collect(),
            tags,
        }),
        attributes: BTreeMap::from([
            (
                "dns_name".to_string(),
                lb.dns_name().unwrap_or_default().to_string(),
            ),
            (
                "canonical_zone".to_string(),
                lb.canonical_hosted_zone_id()
                    .unwrap_or_default()
                    .to_string(),
            ),
            ("dimension".to_string(), load_balancer_dimension(&arn)),
        ]),
    }
}

fn target_group_live(
    id: ResourceId,
    name: String,
    tg: &aws_sdk_elasticloadbalancingv2::types::TargetGroup,
    tags: Tags,
    deregistration_delay_s: i32,
) -> Live {
    let arn = tg.target_group_arn().unwrap_or_default().to_string();
    Live {
        id,
        physical_id: arn.clone(),
        spec: Spec::TargetGroup(TargetGroupSpec {
            name,
            port: tg.port().unwrap_or_default(),
            protocol: tg
                .protocol()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            target_type: tg
                .target_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            vpc: tg.vpc_id().unwrap_or_default().to_string(),
            health_check_path: tg.health_check_path().unwrap_or_default().to_string(),
            health_check_port: tg.health_check_port().unwrap_or_default().to_string(),
            health_check_interval_s: tg.health_check_interval_seconds().unwrap_or_default(),
            healthy_threshold: tg.healthy_threshold_count().unwrap_or_default(),
            unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or_default(),
            matcher: tg
                .matcher()
                .and_then(|m| m.http_code())
                .unwrap_or_default()
                .to_string(),
            deregistration_delay_s,
            tags,
        }),
        attributes: BTreeMap::from([("dimension".to_string(), target_group_dimension(&arn))]),
    }
}

/// Tags by ARN, AWS's reserved ones left out; at most 20 ARNs a call.
async fn describe_tags(cx: &Context, arns: Vec<String>) -> anyhow::Result<BTreeMap<String, Tags>> {
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
            let tags = super::tags::user_visible_tags(description.tags().iter().filter_map(|t| {
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

/// Listeners are named by port: `listener/http` (80), `listener/https` (443).
async fn discover_listeners(cx: &Context, load_balancer: &str) -> anyhow::Result<Vec<Live>> {
    let out = cx
        .clients
        .elb
        .describe_listeners()
        .load_balancer_arn(load_balancer)
        .send()
        .await
        .aws("DescribeListeners")?;
    let mut live = Vec::new();
    for listener in out.listeners() {
        let port = listener.port().unwrap_or_default();
        let name = match port {
            80 => "http".to_string(),
            443 => "https".to_string(),
            other => format!("port-{other}"),
        };
        let action = listener
            .default_actions()
            .first()
            .map(|a| match a.r#type() {
                Some(ActionTypeEnum::Redirect) => {
                    let r = a.redirect_config();
                    ListenerAction::Redirect {
                        port: r.and_then(|r| r.port()).unwrap_or_default().to_string(),
                        protocol: r.and_then(|r| r.protocol()).unwrap_or_default().to_string(),
                        status_code: r
                            .and_then(|r| r.status_code())
                            .map(|c| c.as_str().to_string())
                            .unwrap_or_default(),
                    }
                }
                _ => ListenerAction::Forward {
                    target_group: a.target_group_arn().unwrap_or_default().to_string(),
                },
            })
            .unwrap_or(ListenerAction::Forward {
                target_group: String::new(),
            });
        let protocol = listener
            .protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        // Certificates and TLS policies belong to HTTPS listeners; moto
        // reports a default policy on plain HTTP ones too.
        let tls = protocol == "HTTPS";
        live.push(Live {
            id: ResourceId::new(Kind::Listener, &name),
            physical_id: listener.listener_arn().unwrap_or_default().to_string(),
            spec: Spec::Listener(ListenerSpec {
                load_balancer: load_balancer.to_string(),
                port,
                certificate: listener
                    .certificates()
                    .first()
                    .and_then(|c| c.certificate_arn())
                    .filter(|_| tls)
                    .map(str::to_string),
                ssl_policy: listener.ssl_policy().filter(|_| tls).map(str::to_string),
                protocol,
                action,
            }),
            attributes: BTreeMap::new(),
        });
    }
    let listeners: Vec<String> = live.iter().map(|l| l.physical_id.clone()).collect();
    live.extend(discover_rules(cx, &listeners).await?);
    Ok(live)
}

/// The listeners' own rules (not their default actions), known by their
/// `poolside:id` tag; rules of anyone else are left alone.
async fn discover_rules(cx: &Context, listeners: &[String]) -> anyhow::Result<Vec<Live>> {
    let rules = futures::future::try_join_all(listeners.iter().map(|listener| async move {
        let out = cx
            .clients
            .elb
            .describe_rules()
            .listener_arn(listener)
            .send()
            .await
            .aws("DescribeRules")?;
        anyhow::Ok(
            out.rules()
                .iter()
                .filter(|r| r.is_default() != Some(true))
                .map(|r| (listener.clone(), r.clone()))
                .collect::<Vec<_>>(),
        )
    }))
    .await?
    .concat();
    let arns = rules
        .iter()
        .filter_map(|(_, r)| r.rule_arn().map(str::to_string))
        .collect();
    let tags_by_arn = describe_tags(cx, arns).await?;
    let mut live = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (listener, rule) in rules {
        let arn = rule.rule_arn().unwrap_or_default().to_string();
        let tags = tags_by_arn.get(&arn).cloned().unwrap_or_default();
        // A second rule claiming one id is a duplicate, as for EC2's kinds.
        let Some(id) = super::tags::identify(&cx.environment, &tags, &arn, &mut seen) else {
            continue;
        };
        let weighted = forward_weights(&rule);
        let path_pattern = rule
            .conditions()
            .iter()
            .find(|c| c.field() == Some("path-pattern"))
            .and_then(|c| {
                c.path_pattern_config()
                    .and_then(|p| p.values().first())
                    .or_else(|| c.values().first())
            })
            .cloned()
            .unwrap_or_default();
        live.push(Live {
            id,
            physical_id: arn,
            spec: Spec::ListenerRule(ListenerRuleSpec {
                listener,
                priority: rule
                    .priority()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_default(),
                path_pattern,
                target_groups: weighted.iter().map(|(arn, _)| arn.clone()).collect(),
                tags,
            }),
            // ECS's to change while it shifts traffic; shown by status.
            attributes: BTreeMap::from([(
                "weights".to_string(),
                weighted
                    .iter()
                    .map(|(arn, weight)| format!("{}={weight}", target_group_dimension(arn)))
                    .collect::<Vec<_>>()
                    .join(","),
            )]),
        });
    }
    Ok(live)
}

/// The target groups a rule forwards to, with their weights (a plain
/// forward to one group weighs 1).
fn forward_weights(rule: &aws_sdk_elasticloadbalancingv2::types::Rule) -> Vec<(String, i32)> {
    let forward = rule
        .actions()
        .iter()
        .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward));
    forward
        .and_then(|a| a.forward_config())
        .map(|f| {
            f.target_groups()
                .iter()
                .filter_map(|t| Some((t.target_group_arn()?.to_string(), t.weight().unwrap_or(1))))
                .collect()
        })
        .unwrap_or_else(|| {
            forward
                .and_then(|a| a.target_group_arn())
                .map(|arn| vec![(arn.to_string(), 1)])
                .unwrap_or_default()
        })
}

/// The target groups that serve production traffic now: those the rule
/// forwards to with a weight above zero, read at this moment. ECS moves the
/// weights during a canary or linear shift, so what discovery read before a
/// deploy says nothing about which group serves after it.
pub async fn serving_target_groups(cx: &Context, rule_arn: &str) -> anyhow::Result<Vec<String>> {
    let out = cx
        .clients
        .elb
        .describe_rules()
        .rule_arns(rule_arn)
        .send()
        .await
        .aws("DescribeRules")?;
    Ok(out
        .rules()
        .iter()
        .flat_map(forward_weights)
        .filter(|(_, weight)| *weight > 0)
        .map(|(arn, _)| arn)
        .collect())
}

fn forward_by_weight(target_groups: &[String]) -> Action {
    let groups = target_groups
        .iter()
        .enumerate()
        .map(|(i, arn)| {
            TargetGroupTuple::builder()
                .target_group_arn(arn)
                .weight(if i == 0 { 100 } else { 0 })
                .build()
        })
        .collect();
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .set_target_groups(Some(groups))
                .build(),
        )
        .build()
}

fn path_condition(pattern: &str) -> RuleCondition {
    RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(
            PathPatternConditionConfig::builder()
                .values(pattern)
                .build(),
        )
        .build()
}

pub async fn create_rule(cx: &Context, spec: &ListenerRuleSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .elb
        .create_rule()
        .listener_arn(&spec.listener)
        .priority(spec.priority)
        .conditions(path_condition(&spec.path_pattern))
        .actions(forward_by_weight(&spec.target_groups))
        .set_tags(Some(elb_tags(&spec.tags)))
        .send()
        .await
        .aws("CreateRule")?;
    out.rules()
        .first()
        .and_then(|r| r.rule_arn())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("CreateRule returned no rule"))
}

/// Changes the rule's condition, priority or target groups. Only when the
/// target groups changed are the weights set again (all to the first):
/// otherwise they are ECS's, mid-shift or after one.
pub async fn update_rule(
    cx: &Context,
    arn: &str,
    old: &ListenerRuleSpec,
    new: &ListenerRuleSpec,
) -> anyhow::Result<()> {
    let same_groups = old
        .target_groups
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        == new.target_groups.iter().collect();
    if old.path_pattern != new.path_pattern || !same_groups {
        cx.clients
            .elb
            .modify_rule()
            .rule_arn(arn)
            .conditions(path_condition(&new.path_pattern))
            .set_actions((!same_groups).then(|| vec![forward_by_weight(&new.target_groups)]))
            .send()
            .await
            .aws("ModifyRule")?;
    }
    if old.priority != new.priority {
        cx.clients
            .elb
            .set_rule_priorities()
            .rule_priorities(
                aws_sdk_elasticloadbalancingv2::types::RulePriorityPair::builder()
                    .rule_arn(arn)
                    .priority(new.priority)
                    .build(),
            )
            .send()
            .await
            .aws("SetRulePriorities")?;
    }
    sync_tags(cx, arn, &old.tags, &new.tags).await
}

pub async fn delete_rule(cx: &Context, arn: &str) -> anyhow::Result<()> {
    super::aws_error::ignore_not_found(
        cx.clients.elb.delete_rule().rule_arn(arn).send().await,
        "DeleteRule",
    )
}

pub async fn create_load_balancer(
    cx: &Context,
    id: &ResourceId,
    spec: &LoadBalancerSpec,
) -> anyhow::Result<String> {
    let out = cx
        .clients
        .elb
        .create_load_balancer()
        .name(&spec.name)
        .r#type(LoadBalancerTypeEnum::Application)
        .scheme(LoadBalancerSchemeEnum::from(spec.scheme.as_str()))
        .set_subnets(Some(spec.subnets.iter().cloned().collect()))
        .set_security_groups(Some(spec.security_groups.iter().cloned().collect()))
        .set_tags(Some(elb_tags(&spec.tags)))
        .send()
        .await
        .aws("CreateLoadBalancer")?;
    let lb = out
        .load_balancers()
        .first()
        .ok_or_else(|| anyhow!("CreateLoadBalancer returned no load balancer"))?;
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    cx.record_attribute(id, "dns_name", lb.dns_name().unwrap_or_default());
    cx.record_attribute(
        id,
        "canonical_zone",
        lb.canonical_hosted_zone_id().unwrap_or_default(),
    );
    cx.record_attribute(id, "dimension", &load_balancer_dimension(&arn));
    Ok(arn)
}

pub async fn update_load_balancer(
    cx: &Context,
    arn: &str,
    old: &LoadBalancerSpec,
    new: &LoadBalancerSpec,
) -> anyhow::Result<()> {
    let elb = &cx.clients.elb;
    if old.subnets != new.subnets {
        elb.set_subnets()
            .load_balancer_arn(arn)
            .set_subnets(Some(new.subnets.iter().cloned().collect()))
            .send()
            .await
            .aws("SetSubnets")?;
    }
    if old.security_groups != new.security_groups {
        elb.set_security_groups()
            .load_balancer_arn(arn)
            .set_security_groups(Some(new.security_groups.iter().cloned().collect()))
            .send()
            .await
            .aws("SetSecurityGroups")?;
    }
    sync_tags(cx, arn, &old.tags, &new.tags).await
}

async fn sync_tags(cx: &Context, arn: &str, old: &Tags, new: &Tags) -> anyhow::Result<()> {
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

pub async fn delete_load_balancer(cx: &Context, arn: &str) -> anyhow::Result<()> {
    super::aws_error::ignore_not_found(
        cx.clients
            .elb
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await,
        "DeleteLoadBalancer",
    )
}

pub async fn create_target_group(
    cx: &Context,
    id: &ResourceId,
    spec: &TargetGroupSpec,
) -> anyhow::Result<String> {
    let out = cx
        .clients
        .elb
        .create_target_group()
        .name(&spec.name)
        .port(spec.port)
        .protocol(ProtocolEnum::from(spec.protocol.as_str()))
        .target_type(TargetTypeEnum::from(spec.target_type.as_str()))
        .vpc_id(&spec.vpc)
        .health_check_enabled(true)
        .health_check_protocol(ProtocolEnum::Http)
        .health_check_path(&spec.health_check_path)
        .health_check_port(&spec.health_check_port)
        .health_check_interval_seconds(spec.health_check_interval_s)
        .healthy_threshold_count(spec.healthy_threshold)
        .unhealthy_threshold_count(spec.unhealthy_threshold)
        .matcher(Matcher::builder().http_code(&spec.matcher).build())
        .set_tags(Some(elb_tags(&spec.tags)))
        .send()
        .await
        .aws("CreateTargetGroup")?;
    let arn = out
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .ok_or_else(|| anyhow!("CreateTargetGroup returned no target group"))?
        .to_string();
    cx.record_attribute(id, "dimension", &target_group_dimension(&arn));
    set_deregistration_delay(cx, &arn, spec.deregistration_delay_s).await?;
    Ok(arn)
}

const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// The target group's deregistration delay (AWS's default: 300 s).
async fn deregistration_delay(cx: &Context, arn: &str) -> anyhow::Result<i32> {
    let out = cx
        .clients
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .aws("DescribeTargetGroupAttributes")?;
    Ok(out
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
        .and_then(|a| a.value())
        .and_then(|v| v.parse().ok())
        .unwrap_or(300))
}

async fn set_deregistration_delay(cx: &Context, arn: &str, seconds: i32) -> anyhow::Result<()> {
    cx.clients
        .elb
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key(DEREGISTRATION_DELAY)
                .value(seconds.to_string())
                .build(),
        )
        .send()
        .await
        .aws("ModifyTargetGroupAttributes")
        .map(drop)
}

pub async fn update_target_group(
    cx: &Context,
    arn: &str,
    old: &TargetGroupSpec,
    new: &TargetGroupSpec,
) -> anyhow::Result<()> {
    let health_changed = (
        &old.health_check_path,
        &old.health_check_port,
        old.health_check_interval_s,
        old.healthy_threshold,
        old.unhealthy_threshold,
        &old.matcher,
    ) != (
        &new.health_check_path,
        &new.health_check_port,
        new.health_check_interval_s,
        new.healthy_threshold,
        new.unhealthy_threshold,
        &new.matcher,
    );
    if health_changed {
        cx.clients
            .elb
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_path(&new.health_check_path)
            .health_check_port(&new.health_check_port)
            .health_check_interval_seconds(new.health_check_interval_s)
            .healthy_threshold_count(new.healthy_threshold)
            .unhealthy_threshold_count(new.unhealthy_threshold)
            .matcher(Matcher::builder().http_code(&new.matcher).build())
            .send()
            .await
            .aws("ModifyTargetGroup")?;
    }
    if old.deregistration_delay_s != new.deregistration_delay_s {
        set_deregistration_delay(cx, arn, new.deregistration_delay_s).await?;
    }
    sync_tags(cx, arn, &old.tags, &new.tags).await
}

pub async fn delete_target_group(cx: &Context, arn: &str) -> anyhow::Result<()> {
    super::aws_error::ignore_not_found(
        cx.clients
            .elb
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await,
        "DeleteTargetGroup",
    )
}

fn default_action(action: &ListenerAction) -> Action {
    match action {
        ListenerAction::Forward { target_group } => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(target_group)
            .build(),
        ListenerAction::Redirect {
            port,
            protocol,
            status_code,
        } => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .port(port)
                    .protocol(protocol)
                    .status_code(RedirectActionStatusCodeEnum::from(status_code.as_str()))
                    .build(),
            )
            .build(),
    }
}

pub async fn create_listener(cx: &Context, spec: &ListenerSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .elb
        .create_listener()
        .load_balancer_arn(&spec.load_balancer)
        .port(spec.port)
        .protocol(ProtocolEnum::from(spec.protocol.as_str()))
        .set_certificates(
            spec.certificate
                .as_ref()
                .map(|arn| vec![Certificate::builder().certificate_arn(arn).build()]),
        )
        .set_ssl_policy(spec.ssl_policy.clone())
        .default_actions(default_action(&spec.action))
        .send()
        .await
        .aws("CreateListener")?;
    out.listeners()
        .first()
        .and_then(|l| l.listener_arn())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("CreateListener returned no listener"))
}

pub async fn update_listener(cx: &Context, arn: &str, new: &ListenerSpec) -> anyhow::Result<()> {
    cx.clients
        .elb
        .modify_listener()
        .listener_arn(arn)
        .protocol(ProtocolEnum::from(new.protocol.as_str()))
        .set_certificates(
            new.certificate
                .as_ref()
                .map(|arn| vec![Certificate::builder().certificate_arn(arn).build()]),
        )
        .set_ssl_policy(new.ssl_policy.clone())
        .default_actions(default_action(&new.action))
        .send()
        .await
        .aws("ModifyListener")
        .map(drop)
}

pub async fn delete_listener(cx: &Context, arn: &str) -> anyhow::Result<()> {
    super::aws_error::ignore_not_found(
        cx.clients
            .elb
            .delete_listener()
            .listener_arn(arn)
            .send()
            .await,
        "DeleteListener",
    )
}

/// Target health as the load balancer sees it: (target, state, reason).
pub async fn target_health(
    cx: &Context,
    target_group: &str,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let out = cx
        .clients
        .elb
        .describe_target_health()
        .target_group_arn(target_group)
        .send()
        .await
        .aws("DescribeTargetHealth")?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let target = d
                .target()
                .map(|t| {
                    format!(
                        "{}:{}",
                        t.id().unwrap_or_default(),
                        t.port().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            let health = d.target_health();
            (
                target,
                health
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                health
                    .and_then(|h| h.description())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect())
}
