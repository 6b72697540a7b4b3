//! Application Auto Scaling of the API service: bounds and two
//! target-tracking policies (CPU, and requests per target from the ALB).

pub mod spec;

use super::aws_error::AwsResultExt;
use super::context::Context;
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::waits::Waits;
use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use std::collections::BTreeMap;

const CPU_POLICY: &str = "poolside-cpu";
const REQUESTS_POLICY: &str = "poolside-requests";

pub async fn discover(cx: &Context, resource_id: &str) -> anyhow::Result<Vec<Live>> {
    let aas = &cx.clients.autoscaling;
    let (targets, policies) = tokio::try_join!(
        async {
            aas.describe_scalable_targets()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_ids(resource_id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .send()
                .await
                .aws("DescribeScalableTargets")
        },
        async {
            aas.describe_scaling_policies()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(resource_id)
                .send()
                .await
                .aws("DescribeScalingPolicies")
        },
    )?;
    let Some(target) = targets.scalable_targets().first() else {
        return Ok(vec![]);
    };
    let policy = |name: &str| {
        policies
            .scaling_policies()
            .iter()
            .find(|p| p.policy_name() == name)
            .and_then(|p| p.target_tracking_scaling_policy_configuration())
    };
    let requests = policy(REQUESTS_POLICY);
    Ok(vec![Live {
        id: ResourceId::new(Kind::Scaling, "api"),
        physical_id: resource_id.to_string(),
        spec: Spec::Scaling(ScalingSpec {
            resource_id: resource_id.to_string(),
            min_capacity: target.min_capacity(),
            max_capacity: target.max_capacity(),
            cpu_target_percent: policy(CPU_POLICY).map_or(0, |p| p.target_value() as i32),
            requests_per_target: requests.map_or(0, |p| p.target_value() as i32),
            request_label: requests
                .and_then(|p| p.predefined_metric_specification())
                .and_then(|m| m.resource_label())
                .unwrap_or_default()
                .to_string(),
            depends_on: vec![],
        }),
        attributes: BTreeMap::new(),
    }])
}

/// Registering the target and putting the policies are upserts: one path
/// serves create and update.
pub async fn put(cx: &Context, spec: &ScalingSpec) -> anyhow::Result<String> {
    let aas = &cx.clients.autoscaling;
    aas.register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&spec.resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(spec.min_capacity)
        .max_capacity(spec.max_capacity)
        .send()
        .await
        .aws("RegisterScalableTarget")?;
    let policies = [
        (
            CPU_POLICY,
            MetricType::EcsServiceAverageCpuUtilization,
            spec.cpu_target_percent,
            None,
        ),
        (
            REQUESTS_POLICY,
            MetricType::AlbRequestCountPerTarget,
            spec.requests_per_target,
            Some(spec.request_label.clone()),
        ),
    ];
    for (name, metric, target, label) in policies {
        let configuration = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(target as f64)
            .predefined_metric_specification(
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(metric)
                    .set_resource_label(label)
                    .build()?,
            )
            // Out quickly, in slowly: a burst of IDE traffic should not flap.
            .scale_out_cooldown(60)
            .scale_in_cooldown(300)
            .build()?;
        aas.put_scaling_policy()
            .policy_name(name)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&spec.resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(configuration)
            .send()
            .await
            .aws("PutScalingPolicy")?;
    }
    Ok(spec.resource_id.clone())
}

/// Deregistering the target removes its policies with it.
pub async fn delete(cx: &Context, resource_id: &str) -> anyhow::Result<()> {
    super::aws_error::ignore_not_found(
        cx.clients
            .autoscaling
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await,
        "DeregisterScalableTarget",
    )
}

impl Resource for ScalingSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        put(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        _live: &Live,
        _old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        put(cx, self).await.map(drop)
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete(cx, &live.physical_id).await
    }
}
