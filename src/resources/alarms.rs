//! CloudWatch alarms (found by the environment's name prefix) and the dashboard.

use super::{error_code, AwsResultExt, Context};
use crate::model::*;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
use std::collections::BTreeMap;

pub async fn discover(cx: &Context, prefix: &str) -> anyhow::Result<Vec<Live>> {
    let mut live = Vec::new();
    let mut next = None;
    loop {
        let out = cx
            .clients
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .set_next_token(next)
            .send()
            .await
            .aws("DescribeAlarms")?;
        for alarm in out.metric_alarms() {
            let name = alarm.alarm_name().unwrap_or_default();
            let Some(short) = name.strip_prefix(prefix) else {
                continue;
            };
            let statistic = alarm
                .extended_statistic()
                .map(str::to_string)
                .or_else(|| alarm.statistic().map(|s| s.as_str().to_string()))
                .unwrap_or_default();
            live.push(Live {
                id: ResourceId::new(Kind::Alarm, short),
                physical_id: name.to_string(),
                spec: Spec::Alarm(AlarmSpec {
                    name: name.to_string(),
                    description: alarm.alarm_description().unwrap_or_default().to_string(),
                    namespace: alarm.namespace().unwrap_or_default().to_string(),
                    metric_name: alarm.metric_name().unwrap_or_default().to_string(),
                    statistic,
                    dimensions: alarm
                        .dimensions()
                        .iter()
                        .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
                        .collect(),
                    period_s: alarm.period().unwrap_or_default(),
                    evaluation_periods: alarm.evaluation_periods().unwrap_or_default(),
                    threshold: alarm.threshold().unwrap_or_default(),
                    comparison: alarm
                        .comparison_operator()
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default(),
                    treat_missing_data: alarm.treat_missing_data().unwrap_or("missing").to_string(),
                    actions: alarm.alarm_actions().iter().cloned().collect(),
                }),
                attributes: BTreeMap::new(),
            });
        }
        next = out.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(live);
        }
    }
}

/// Create and update are one call: PutMetricAlarm replaces the whole alarm.
/// `created_as`: the alarm's id when it is new, to tag it as poolside's.
pub async fn put(
    cx: &Context,
    spec: &AlarmSpec,
    created_as: Option<&ResourceId>,
) -> anyhow::Result<String> {
    let mut call = cx
        .clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&spec.name)
        .alarm_description(&spec.description)
        .namespace(&spec.namespace)
        .metric_name(&spec.metric_name)
        .set_dimensions(Some(
            spec.dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                .collect(),
        ))
        .period(spec.period_s)
        .evaluation_periods(spec.evaluation_periods)
        .threshold(spec.threshold)
        .comparison_operator(ComparisonOperator::from(spec.comparison.as_str()))
        .treat_missing_data(&spec.treat_missing_data)
        .set_alarm_actions(Some(spec.actions.iter().cloned().collect()))
        .set_ok_actions(Some(spec.actions.iter().cloned().collect()));
    call = if spec.statistic.starts_with('p') {
        call.extended_statistic(&spec.statistic)
    } else {
        call.statistic(Statistic::from(spec.statistic.as_str()))
    };
    // Tags go on at create; PutMetricAlarm ignores them for an existing alarm.
    if let Some(id) = created_as {
        let tag = |k: &str, v: &str| {
            aws_sdk_cloudwatch::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        };
        call = call
            .tags(tag(TAG_ENV, &cx.environment))
            .tags(tag(TAG_ID, &id.0));
    }
    call.send().await.aws("PutMetricAlarm")?;
    Ok(spec.name.clone())
}

pub async fn delete(cx: &Context, name: &str) -> anyhow::Result<()> {
    cx.clients
        .cloudwatch
        .delete_alarms()
        .alarm_names(name)
        .send()
        .await
        .aws("DeleteAlarms")
        .map(drop)
}

/// The environment's alarms now in ALARM: (name, reason).
pub async fn firing(cx: &Context, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
    let out = cx
        .clients
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .state_value(StateValue::Alarm)
        .send()
        .await
        .aws("DescribeAlarms")?;
    // moto ignores the StateValue filter and returns every alarm: check again here.
    Ok(out
        .metric_alarms()
        .iter()
        .filter(|a| a.state_value() == Some(&StateValue::Alarm))
        .map(|a| {
            (
                a.alarm_name().unwrap_or_default().to_string(),
                a.state_reason().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

pub async fn discover_dashboard(cx: &Context, name: &str) -> anyhow::Result<Vec<Live>> {
    let out = match cx
        .clients
        .cloudwatch
        .get_dashboard()
        .dashboard_name(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(err) if super::is_not_found_code(error_code(&err)) => return Ok(vec![]),
        Err(err) => return Err(err).aws("GetDashboard"),
    };
    let body = serde_json::from_str(out.dashboard_body().unwrap_or("null"))
        .unwrap_or(serde_json::Value::Null);
    Ok(vec![Live {
        id: ResourceId::new(Kind::Dashboard, "main"),
        physical_id: name.to_string(),
        spec: Spec::Dashboard(DashboardSpec {
            name: name.to_string(),
            body,
        }),
        attributes: BTreeMap::new(),
    }])
}

pub async fn put_dashboard(cx: &Context, spec: &DashboardSpec) -> anyhow::Result<String> {
    cx.clients
        .cloudwatch
        .put_dashboard()
        .dashboard_name(&spec.name)
        .dashboard_body(spec.body.to_string())
        .send()
        .await
        .aws("PutDashboard")?;
    Ok(spec.name.clone())
}

pub async fn delete_dashboard(cx: &Context, name: &str) -> anyhow::Result<()> {
    super::ignore_not_found(
        cx.clients
            .cloudwatch
            .delete_dashboards()
            .dashboard_names(name)
            .send()
            .await,
        "DeleteDashboards",
    )
}
