//! The load balancer's listeners (named by port: `listener/http` on 80,
//! `listener/https` on 443) and the production rule ECS shifts traffic with.

use crate::model::*;
use crate::resources::aws_error::AwsResultExt;
use crate::resources::context::Context;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::tags::{describe_elb_tags, elb_tags, sync_elb_tags};
use crate::resources::waits::Waits;
use anyhow::anyhow;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, ForwardActionConfig, PathPatternConditionConfig,
    ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum, RuleCondition,
    TargetGroupTuple,
};
use std::collections::BTreeMap;

/// Listeners are named by port: `listener/http` (80), `listener/https` (443).
pub(super) async fn discover_listeners(
    cx: &Context,
    load_balancer: &str,
) -> anyhow::Result<Vec<Live>> {
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
    let tags_by_arn = describe_elb_tags(cx, arns).await?;
    let mut live = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (listener, rule) in rules {
        let arn = rule.rule_arn().unwrap_or_default().to_string();
        let tags = tags_by_arn.get(&arn).cloned().unwrap_or_default();
        // A second rule claiming one id is a duplicate, as for EC2's kinds.
        let Some(id) = crate::resources::tags::identify(&cx.environment, &tags, &arn, &mut seen)
        else {
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
    sync_elb_tags(cx, arn, &old.tags, &new.tags).await
}

pub async fn delete_rule(cx: &Context, arn: &str) -> anyhow::Result<()> {
    crate::resources::aws_error::ignore_not_found(
        cx.clients.elb.delete_rule().rule_arn(arn).send().await,
        "DeleteRule",
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
    crate::resources::aws_error::ignore_not_found(
        cx.clients
            .elb
            .delete_listener()
            .listener_arn(arn)
            .send()
            .await,
        "DeleteListener",
    )
}

/// `targetgroup/<name>/<id>`: how CloudWatch names a target group.
pub(super) fn target_group_dimension(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or_default().to_string()
}

impl Resource for ListenerSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_listener(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        _old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_listener(cx, &live.physical_id, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_listener(cx, &live.physical_id).await
    }
}

impl Resource for ListenerRuleSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_rule(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_rule(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_rule(cx, &live.physical_id).await
    }
}
