//! CloudWatch alarms (found by the environment's tags) and the dashboard
//! (by its exact name: dashboards take no tags).

pub mod spec;

use super::aws_error::{error_code, AwsResultExt};
use super::context::Context;
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::waits::Waits;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricAlarm, StateValue, Statistic,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::BTreeMap;

/// How many ListTagsForResource calls discovery keeps in flight.
const TAG_READS_IN_FLIGHT: usize = 8;

/// The environment's alarms. The name prefix only narrows the search: the
/// prefix of environment `pilot` also matches `pilot-eu`'s alarms, so an alarm
/// is ours only when its `poolside:env` tag says so.
pub async fn discover(cx: &Context, prefix: &str) -> anyhow::Result<Vec<Live>> {
    // One read for the environment's alarms and their tags, made alongside
    // the describe. The tagging API is eventually consistent (an alarm made
    // seconds ago may be missing), and another environment's alarms can
    // share the prefix: those it does not list are read one by one, as
    // CloudWatch lists tags.
    let (candidates, listed) =
        tokio::join!(describe_by_prefix(cx, prefix), tagged_by_environment(cx));
    let candidates = candidates?;
    // Without the tagging API's answer (throttled, denied), each alarm's
    // tags are read by themselves, as CloudWatch lists them.
    let listed = listed.unwrap_or_else(|err| {
        tracing::debug!(error = %format!("{err:#}"), "the tagging API listed no alarm");
        Default::default()
    });
    let tagged: Vec<(MetricAlarm, Tags)> = stream::iter(candidates)
        .map(|alarm| {
            let listed = listed.get(alarm.alarm_arn().unwrap_or_default()).cloned();
            async move {
                let tags = match listed {
                    Some(tags) => tags,
                    None => alarm_tags(cx, alarm.alarm_arn().unwrap_or_default()).await?,
                };
                anyhow::Ok((alarm, tags))
            }
        })
        .buffered(TAG_READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut seen = std::collections::BTreeSet::new();
    let mut live = Vec::new();
    for (alarm, tags) in tagged {
        let name = alarm.alarm_name().unwrap_or_default();
        let Some(id) = super::tags::identify(&cx.environment, &tags, name, &mut seen) else {
            continue;
        };
        live.push(observe(&alarm, id));
    }
    Ok(live)
}

/// The tags of every CloudWatch alarm tagged with this environment, by ARN.
async fn tagged_by_environment(
    cx: &Context,
) -> anyhow::Result<std::collections::BTreeMap<String, Tags>> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let mut found = std::collections::BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = cx
            .clients
            .tagging
            .get_resources()
            .resource_type_filters("cloudwatch:alarm")
            .tag_filters(
                TagFilter::builder()
                    .key(crate::model::TAG_ENV)
                    .values(&cx.environment)
                    .build(),
            )
            .set_pagination_token(token.take())
            .send()
            .await
            .aws("GetResources")?;
        for mapping in out.resource_tag_mapping_list() {
            let tags = super::tags::user_visible_tags(
                mapping
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string())),
            );
            found.insert(mapping.resource_arn().unwrap_or_default().to_string(), tags);
        }
        token = out
            .pagination_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return Ok(found);
        }
    }
}

async fn alarm_tags(cx: &Context, arn: &str) -> anyhow::Result<Tags> {
    let out = cx
        .clients
        .cloudwatch
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .aws("ListTagsForResource")?;
    Ok(super::tags::user_visible_tags(
        out.tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))),
    ))
}

async fn describe_by_prefix(cx: &Context, prefix: &str) -> anyhow::Result<Vec<MetricAlarm>> {
    let mut alarms = Vec::new();
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
        alarms.extend(
            out.metric_alarms()
                .iter()
                .filter(|a| a.alarm_name().is_some_and(|n| n.starts_with(prefix)))
                .cloned(),
        );
        next = out.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(alarms);
        }
    }
}

fn observe(alarm: &MetricAlarm, id: ResourceId) -> Live {
    let name = alarm.alarm_name().unwrap_or_default();
    let statistic = alarm
        .extended_statistic()
        .map(str::to_string)
        .or_else(|| alarm.statistic().map(|s| s.as_str().to_string()))
        .unwrap_or_default();
    Live {
        id,
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
        // Live state, for status; not desired state.
        attributes: alarm
            .state_value()
            .map(|s| BTreeMap::from([("state".to_string(), s.as_str().to_string())]))
            .unwrap_or_default(),
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

/// Which of the named alarms (the environment's own, by exact name, never by
/// prefix) are in ALARM now: (name, reason).
pub async fn firing(cx: &Context, names: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut alarms = Vec::new();
    // DescribeAlarms takes at most 100 names a call.
    for batch in names.chunks(100) {
        let out = cx
            .clients
            .cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(batch.to_vec()))
            .state_value(StateValue::Alarm)
            .send()
            .await
            .aws("DescribeAlarms")?;
        alarms.extend(out.metric_alarms().iter().cloned());
    }
    // moto ignores the StateValue filter and returns every alarm: check again here.
    Ok(alarms
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
        Err(err) if super::aws_error::is_not_found_code(error_code(&err)) => return Ok(vec![]),
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
    super::aws_error::ignore_not_found(
        cx.clients
            .cloudwatch
            .delete_dashboards()
            .dashboard_names(name)
            .send()
            .await,
        "DeleteDashboards",
    )
}

impl Resource for AlarmSpec {
    async fn create(
        &self,
        cx: &Context,
        id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        put(cx, self, Some(id)).await
    }

    async fn update(
        &self,
        cx: &Context,
        _live: &Live,
        _old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        put(cx, self, None).await.map(drop)
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete(cx, &live.physical_id).await
    }
}

impl Resource for DashboardSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        put_dashboard(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        _live: &Live,
        _old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        put_dashboard(cx, self).await.map(drop)
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_dashboard(cx, &live.physical_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::context;
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput;
    use aws_sdk_resourcegroupstagging::types::{ResourceTagMapping, Tag as TaggingTag};
    use aws_smithy_mocks::mock;

    fn arn(name: &str) -> String {
        format!("arn:aws:cloudwatch:eu-west-1:1:alarm:{name}")
    }

    /// The tagging API lists the environment's alarms in one read; an alarm
    /// it does not list yet (made seconds ago) is read by itself, and one of
    /// another environment sharing the prefix is left out.
    #[tokio::test]
    async fn alarm_tags_come_in_one_read_with_the_unlisted_read_one_by_one() {
        let alarms = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| {
            let alarm = |name: &str| {
                MetricAlarm::builder()
                    .alarm_name(name)
                    .alarm_arn(arn(name))
                    .build()
            };
            DescribeAlarmsOutput::builder()
                .metric_alarms(alarm("poolside-pilot-api-cpu"))
                .metric_alarms(alarm("poolside-pilot-db-cpu"))
                .metric_alarms(alarm("poolside-pilot-b-api-cpu"))
                .build()
        });
        let tag = |k: &str, v: &str| TaggingTag::builder().key(k).value(v).build().unwrap();
        let listed =
            mock!(aws_sdk_resourcegroupstagging::Client::get_resources).then_output(move || {
                GetResourcesOutput::builder()
                    .resource_tag_mapping_list(
                        ResourceTagMapping::builder()
                            .resource_arn(arn("poolside-pilot-api-cpu"))
                            .tags(tag("poolside:env", "pilot"))
                            .tags(tag("poolside:id", "alarm/api-cpu"))
                            .build(),
                    )
                    .build()
            });
        let cw_tag = |k: &str, v: &str| {
            aws_sdk_cloudwatch::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        };
        let new_one = mock!(aws_sdk_cloudwatch::Client::list_tags_for_resource)
            .match_requests(|r| r.resource_arn() == Some(arn("poolside-pilot-db-cpu").as_str()))
            .then_output(move || {
                ListTagsForResourceOutput::builder()
                    .tags(cw_tag("poolside:env", "pilot"))
                    .tags(cw_tag("poolside:id", "alarm/db-cpu"))
                    .build()
            });
        let other_environment = mock!(aws_sdk_cloudwatch::Client::list_tags_for_resource)
            .match_requests(|r| r.resource_arn() == Some(arn("poolside-pilot-b-api-cpu").as_str()))
            .then_output(move || {
                ListTagsForResourceOutput::builder()
                    .tags(cw_tag("poolside:env", "pilot-b"))
                    .tags(cw_tag("poolside:id", "alarm/api-cpu"))
                    .build()
            });
        let cx = context(|c| {
            c.cloudwatch = crate::mocked!(
                aws_sdk_cloudwatch,
                [&alarms, &new_one, &other_environment],
                MatchAny
            );
            c.tagging = crate::mocked!(aws_sdk_resourcegroupstagging, [&listed]);
        });
        let found: Vec<String> = discover(&cx, "poolside-pilot-")
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.id.0)
            .collect();
        assert_eq!(found, ["alarm/api-cpu", "alarm/db-cpu"]);
        assert_eq!(listed.num_calls(), 1);
        assert_eq!((new_one.num_calls(), other_environment.num_calls()), (1, 1));
    }
}
