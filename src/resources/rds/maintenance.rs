//! What RDS will do to the instance by itself: its pending maintenance
//! actions (engine upgrades, CA certificate rotation, OS and hardware
//! updates), read for `status`. Read-only; applying or deferring an action is
//! the customer's decision and is not made here.

use crate::resources::aws_error::AwsResultExt;
use crate::resources::context::Context;
use aws_sdk_rds::types::{Filter, PendingMaintenanceAction};
use serde::Serialize;

/// One action RDS has scheduled or offers for the instance, with RDS's dates
/// (RFC 3339) as API_PendingMaintenanceAction defines them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    /// RDS's name for it: `db-upgrade`, `ca-certificate-rotation`,
    /// `os-upgrade`, `system-update`, `hardware-maintenance`.
    pub action: String,
    pub description: Option<String>,
    /// When it takes effect, given opt-ins and the two dates below.
    pub current_apply_date: Option<String>,
    /// Applied on this date whatever the maintenance window.
    pub forced_apply_date: Option<String>,
    /// Applied in the first maintenance window after this date.
    pub auto_applied_after_date: Option<String>,
}

/// The instance's pending maintenance actions
/// (DescribePendingMaintenanceActions, filtered to its ARN: the filter
/// `db-instance-id` takes identifiers or ARNs, and one instance has a
/// handful of actions at most, within the default page of 100). Empty when
/// RDS has none.
pub async fn pending(cx: &Context, instance_arn: &str) -> anyhow::Result<Vec<Maintenance>> {
    let call = cx
        .clients
        .rds
        .describe_pending_maintenance_actions()
        .filters(
            Filter::builder()
                .name("db-instance-id")
                .values(instance_arn)
                .build(),
        );
    let answer = if cx.emulator {
        // moto does not implement the call: its HTTP 500 must not cost the
        // SDK's retries on every status.
        call.customize()
            .config_override(
                aws_sdk_rds::config::Builder::default()
                    .retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
    } else {
        call.send().await
    };
    let answer = answer.aws("DescribePendingMaintenanceActions")?;
    Ok(answer
        .pending_maintenance_actions()
        .iter()
        .flat_map(|r| r.pending_maintenance_action_details())
        .map(from_aws)
        .collect())
}

fn from_aws(action: &PendingMaintenanceAction) -> Maintenance {
    let date = |d: Option<&aws_smithy_types::DateTime>| {
        d.and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
    };
    Maintenance {
        action: action.action().unwrap_or("unknown").to_string(),
        description: action.description().map(str::to_string),
        current_apply_date: date(action.current_apply_date()),
        forced_apply_date: date(action.forced_apply_date()),
        auto_applied_after_date: date(action.auto_applied_after_date()),
    }
}

impl std::fmt::Display for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.action)?;
        if let Some(description) = &self.description {
            write!(f, " ({description})")?;
        }
        match (&self.current_apply_date, &self.auto_applied_after_date) {
            (Some(date), _) => write!(f, ", applies {date}")?,
            (None, Some(after)) => write!(f, ", in the first maintenance window after {after}")?,
            (None, None) if self.forced_apply_date.is_none() => {
                write!(f, ", applied only on request")?
            }
            (None, None) => {}
        }
        if let Some(forced) = &self.forced_apply_date {
            write!(f, ", on {forced} at the latest, whatever the window")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{context, query_error};
    use aws_sdk_rds::operation::describe_pending_maintenance_actions::DescribePendingMaintenanceActionsOutput;
    use aws_sdk_rds::types::ResourcePendingMaintenanceActions;
    use aws_smithy_mocks::mock;
    use aws_smithy_types::DateTime;

    const ARN: &str = "arn:aws:rds:us-east-1:123456789012:db:poolside-pilot";

    /// RDS's answer for an instance with a CA rotation scheduled in a window
    /// (and forced a month later), and a minor upgrade offered only on request.
    #[tokio::test]
    async fn pending_actions_are_read_with_when_rds_applies_them() {
        let listed = mock!(aws_sdk_rds::Client::describe_pending_maintenance_actions)
            .match_requests(|r| {
                r.filters()
                    .iter()
                    .any(|f| f.name() == Some("db-instance-id") && f.values() == [ARN])
            })
            .then_output(|| {
                DescribePendingMaintenanceActionsOutput::builder()
                    .pending_maintenance_actions(
                        ResourcePendingMaintenanceActions::builder()
                            .resource_identifier(ARN)
                            .pending_maintenance_action_details(
                                PendingMaintenanceAction::builder()
                                    .action("ca-certificate-rotation")
                                    .description("Certificate rotation")
                                    .auto_applied_after_date(DateTime::from_secs(1_798_761_600))
                                    .current_apply_date(DateTime::from_secs(1_799_038_800))
                                    .forced_apply_date(DateTime::from_secs(1_801_440_000))
                                    .build(),
                            )
                            .pending_maintenance_action_details(
                                PendingMaintenanceAction::builder()
                                    .action("db-upgrade")
                                    .description("Upgrade to PostgreSQL 16.9")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let cx = context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&listed]));
        let found = pending(&cx, ARN).await.unwrap();
        assert_eq!(
            found.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "ca-certificate-rotation (Certificate rotation), applies 2027-01-04T05:00:00Z, on 2027-02-01T00:00:00Z at the latest, whatever the window",
                "db-upgrade (Upgrade to PostgreSQL 16.9), applied only on request",
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_read_names_the_call() {
        let denied = mock!(aws_sdk_rds::Client::describe_pending_maintenance_actions)
            .sequence()
            .http_status(
                403,
                Some(query_error(
                    "AccessDenied",
                    "not authorized to perform: rds:DescribePendingMaintenanceActions",
                )),
            )
            .build();
        let cx = context(|c| c.rds = crate::mocked!(aws_sdk_rds, [&denied]));
        let err = format!("{:#}", pending(&cx, ARN).await.unwrap_err());
        assert!(err.contains("DescribePendingMaintenanceActions"), "{err}");
        assert!(err.contains("AccessDenied"), "{err}");
    }
}
