//! The Application Load Balancer and the API's two target groups (its
//! listeners and rules are `listeners.rs`). Both are found by name.

pub mod listeners;
pub mod spec;

use super::aws_error::{error_code, AwsResultExt};
use super::context::Context;
use super::tags::{check_owner, describe_elb_tags, elb_tags, sync_elb_tags};
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::waits::Waits;
use anyhow::anyhow;
use aws_sdk_elasticloadbalancingv2::types::{
    LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum, TargetTypeEnum,
};
use std::collections::BTreeMap;

pub struct LoadBalancerNames {
    pub load_balancer: String,
    /// The service's target group and its alternate (for traffic shifts).
    pub target_groups: Vec<(ResourceId, String)>,
}

/// `app/<name>/<id>`: how CloudWatch names a load balancer.
fn load_balancer_dimension(arn: &str) -> String {
    arn.split_once(":loadbalancer/")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
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
    let lb_arn = lb.as_ref().and_then(|l| l.load_balancer_arn());
    let arns: Vec<String> = lb_arn
        .into_iter()
        .chain(
            target_groups
                .iter()
                .filter_map(|(_, _, t)| t.target_group_arn()),
        )
        .map(str::to_string)
        .collect();
    // Everything that needs an ARN found above is asked for at once: the
    // tags, the listeners (and their rules), each group's attributes.
    let listeners = async {
        match lb_arn {
            Some(arn) => listeners::discover_listeners(cx, arn).await,
            None => Ok(vec![]),
        }
    };
    let delays = futures::future::try_join_all(
        target_groups
            .iter()
            .map(|(_, _, tg)| deregistration_delay(cx, tg.target_group_arn().unwrap_or_default())),
    );
    let (tags_by_arn, listeners, delays) =
        tokio::try_join!(describe_elb_tags(cx, arns), listeners, delays)?;
    let mut live = Vec::new();
    if let Some(lb) = &lb {
        let arn = lb.load_balancer_arn().unwrap_or_default();
        let tags = tags_by_arn.get(arn).cloned().unwrap_or_default();
        check_owner(cx, "load balancer", &names.load_balancer, &tags)?;
        live.push(load_balancer_live(lb, &names.load_balancer, tags));
        live.extend(listeners);
    }
    for ((id, name, tg), deregistration_delay_s) in target_groups.into_iter().zip(delays) {
        let arn = tg.target_group_arn().unwrap_or_default();
        let tags = tags_by_arn.get(arn).cloned().unwrap_or_default();
        check_owner(cx, "target group", &name, &tags)?;
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
        attributes: BTreeMap::from([(
            "dimension".to_string(),
            listeners::target_group_dimension(&arn),
        )]),
    }
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
    sync_elb_tags(cx, arn, &old.tags, &new.tags).await
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
    cx.record_attribute(id, "dimension", &listeners::target_group_dimension(&arn));
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
    sync_elb_tags(cx, arn, &old.tags, &new.tags).await
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

impl Resource for LoadBalancerSpec {
    async fn create(
        &self,
        cx: &Context,
        id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_load_balancer(cx, id, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_load_balancer(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_load_balancer(cx, &live.physical_id).await
    }
}

impl Resource for TargetGroupSpec {
    async fn create(
        &self,
        cx: &Context,
        id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_target_group(cx, id, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_target_group(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_target_group(cx, &live.physical_id).await
    }
}
