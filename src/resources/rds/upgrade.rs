//! Major version upgrades: the version RDS offers as an upgrade target of
//! the one the instance runs (DescribeDBEngineVersions' ValidUpgradeTarget),
//! checked before a plan proposes it, and what deploy checks after.
//!
//! A major upgrade is downtime and cannot be undone: plan names it, and
//! deploy makes it only with `--allow-major-upgrade`, after a snapshot
//! (`database.snapshot_before_changes`), with a parameter group of the new
//! family (the blueprint names the group by major, so the new one is created
//! beside the old, and the old one is deleted once the instance left it).

use crate::resources::aws_error::AwsResultExt;
use crate::resources::context::Context;
use anyhow::bail;

/// Set on the instance when this run upgraded its major: the schema step
/// then regenerates the planner's statistics, which pg_upgrade does not carry.
pub const MAJOR_UPGRADED: &str = "major_upgraded";

/// pg_upgrade's time grows with the database (and RDS applies pending OS
/// maintenance first): longer than any other change of the instance.
pub const UPGRADED_WITHIN: std::time::Duration = std::time::Duration::from_secs(4 * 60 * 60);

/// The major of a PostgreSQL version: `"16"` of `"16.8"` and of `"16"`.
pub fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// `true` when `to` names a later major than `from` (an older one is a
/// downgrade, which RDS refuses and the plan refuses first).
pub fn is_major_upgrade(from: &str, to: &str) -> bool {
    let number = |v: &str| major(v).parse::<u32>().ok();
    match (number(from), number(to)) {
        (Some(from), Some(to)) => to > from,
        _ => major(from) != major(to),
    }
}

/// Why a major upgrade cannot be planned.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UpgradeRefused {
    #[error("database.engine_version = {desired:?}: RDS does not offer PostgreSQL {desired} as an upgrade of the {running} the instance runs; it offers {}. Pick one of those (an upgrade across several majors may take more than one step)", offered_majors(.offered))]
    NotOffered {
        running: String,
        desired: String,
        offered: Vec<String>,
    },
    #[error("database.engine_version = {desired:?} is older than the {running} the instance runs: RDS cannot downgrade; restore a snapshot into a new instance instead")]
    Downgrade { running: String, desired: String },
    #[error("database.engine_version = {desired:?}: RDS's postgres{major} does not offer the extension{} {} that poolside installs (its rds.extensions lists what it offers); the upgrade would leave the database without {}", if .missing.len() == 1 { "" } else { "s" }, .missing.join(", "), if .missing.len() == 1 { "it" } else { "them" })]
    ExtensionsMissing {
        desired: String,
        major: String,
        missing: Vec<String>,
    },
}

/// The extensions poolside installs, which the target major must offer.
const EXTENSIONS: [&str; 2] = ["vector", "pg_cron"];

/// Of poolside's extensions, those `offered` (the family's `rds.extensions`)
/// lacks.
pub fn missing_extensions(offered: &std::collections::BTreeSet<String>) -> Vec<&'static str> {
    EXTENSIONS
        .into_iter()
        .filter(|e| !offered.contains(*e))
        .collect()
}

/// The extensions RDS offers in a parameter group family: the value of its
/// default `rds.extensions` parameter (DescribeEngineDefaultParameters);
/// `None` when the family does not list it.
pub async fn extensions_offered(
    cx: &Context,
    family: &str,
) -> anyhow::Result<Option<std::collections::BTreeSet<String>>> {
    let mut pages = cx
        .clients
        .rds
        .describe_engine_default_parameters()
        .db_parameter_group_family(family)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws("DescribeEngineDefaultParameters")?;
        let listed = page
            .engine_defaults()
            .into_iter()
            .flat_map(|d| d.parameters())
            .find(|p| p.parameter_name() == Some("rds.extensions"));
        if let Some(parameter) = listed {
            let value = parameter
                .parameter_value()
                .or(parameter.allowed_values())
                .unwrap_or_default();
            let offered: std::collections::BTreeSet<String> = value
                .split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect();
            // An empty list says nothing: it is not a family without extensions.
            return Ok((!offered.is_empty()).then_some(offered));
        }
    }
    Ok(None)
}

fn offered_majors(offered: &[String]) -> String {
    let mut majors: Vec<&str> = offered.iter().map(|v| major(v)).collect();
    majors.dedup();
    match majors.as_slice() {
        [] => "no major upgrade at all".to_string(),
        _ => format!("majors {}", majors.join(", ")),
    }
}

/// The version to send to ModifyDBInstance for `desired` (a major such as
/// `"17"`, or an exact `"17.4"`), from the targets RDS offers for `running`:
/// the newest minor of that major, or exactly the one asked for.
pub fn pick_target(
    running: &str,
    desired: &str,
    offered: &[String],
) -> Result<String, UpgradeRefused> {
    let numeric = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    refuse_downgrade(running, desired)?;
    let candidates = offered.iter().filter(|v| match desired.contains('.') {
        true => v.as_str() == desired,
        false => major(v) == desired,
    });
    candidates
        .max_by_key(|v| numeric(v))
        .cloned()
        .ok_or_else(|| UpgradeRefused::NotOffered {
            running: running.into(),
            desired: desired.into(),
            offered: offered.to_vec(),
        })
}

/// RDS cannot move an instance to an older major.
pub fn refuse_downgrade(running: &str, desired: &str) -> Result<(), UpgradeRefused> {
    let numeric = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    if numeric(major(desired)) < numeric(major(running)) {
        return Err(UpgradeRefused::Downgrade {
            running: running.into(),
            desired: desired.into(),
        });
    }
    Ok(())
}

/// The major upgrades RDS offers from `running` (ValidUpgradeTarget with
/// IsMajorVersionUpgrade), oldest first; `None` when RDS does not list the
/// running version at all.
pub async fn offered_targets(cx: &Context, running: &str) -> anyhow::Result<Option<Vec<String>>> {
    let out = cx
        .clients
        .rds
        .describe_db_engine_versions()
        .engine("postgres")
        .engine_version(running)
        // A retired minor is listed only with include_all: without it an
        // instance still on one would seem to have no upgrade at all.
        .include_all(true)
        .customize()
        // moto answers this call with HTTP 500: the emulator's plan must
        // not pay the SDK's retries for it.
        .config_override(
            aws_sdk_rds::config::Builder::default()
                .retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .aws("DescribeDBEngineVersions")?;
    if !out
        .db_engine_versions()
        .iter()
        .any(|v| v.engine_version() == Some(running))
    {
        return Ok(None);
    }
    let mut offered: Vec<String> = out
        .db_engine_versions()
        .iter()
        .filter(|v| v.engine_version() == Some(running))
        .flat_map(|v| v.valid_upgrade_target())
        .filter(|t| t.is_major_version_upgrade() == Some(true))
        .filter_map(|t| t.engine_version().map(str::to_string))
        .collect();
    let numeric =
        |v: &String| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    offered.sort_by_key(numeric);
    offered.dedup();
    Ok(Some(offered))
}

/// What an error says when the instance came back on its old major: RDS
/// refused the upgrade in its pre-check; its event says why, and the logs
/// of the instance hold the details.
pub fn not_upgraded(identifier: &str, running: &str, target: &str, event: Option<&str>) -> String {
    let why = event.map_or(String::new(), |e| format!(" RDS says: {e}."));
    format!(
        "RDS did not upgrade {identifier} to {target}: it still runs {running}.{why} \
         The pre-check's details are in the instance's logs (pg_upgrade_precheck.log, or error/pg_upgrade_internal.log and the check's .txt files): \
         aws rds describe-db-log-files --db-instance-identifier {identifier} --filename-contains pg_upgrade, then \
         aws rds download-db-log-file-portion --db-instance-identifier {identifier} --log-file-name <that file> --starting-token 0 --output text \
         (rds:DescribeDBLogFiles and rds:DownloadDBLogFilePortion, which poolside's own policy does not need). \
         A snapshot taken before the upgrade is listed by `poolside snapshots`"
    )
}

/// After a major upgrade RDS reports `available` whether it upgraded or
/// its pre-check refused: the version it runs tells which, and the
/// instance's latest event about an upgrade says why.
pub async fn check_upgraded(cx: &Context, identifier: &str, target: &str) -> anyhow::Result<()> {
    let out = cx
        .clients
        .rds
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
        .aws("DescribeDBInstances")?;
    let running = out
        .db_instances()
        .first()
        .and_then(|db| db.engine_version())
        .unwrap_or_default()
        .to_string();
    if major(&running) == major(target) {
        return Ok(());
    }
    let event = upgrade_event(cx, identifier).await;
    bail!(
        "{}",
        not_upgraded(identifier, &running, target, event.as_deref())
    )
}

/// The instance's latest event of the last twelve hours that speaks of an
/// upgrade; none when there is none or it cannot be read.
async fn upgrade_event(cx: &Context, identifier: &str) -> Option<String> {
    // The snapshot before and the upgrade may each take hours: twelve
    // hours of events hold the pre-check's (RDS keeps 14 days).
    let mut pages = cx
        .clients
        .rds
        .describe_events()
        .source_type(aws_sdk_rds::types::SourceType::DbInstance)
        .source_identifier(identifier)
        .duration(12 * 60)
        .into_paginator()
        .send();
    let mut latest = None;
    while let Some(page) = pages.next().await {
        let page = page
            .aws("DescribeEvents")
            .inspect_err(
                |err| tracing::warn!(error = %format!("{err:#}"), "reading the upgrade's events"),
            )
            .ok()?;
        let found = page
            .events()
            .iter()
            .filter_map(|e| e.message())
            .rfind(|m| m.to_lowercase().contains("upgrade"));
        latest = found.map(str::to_string).or(latest);
    }
    latest
}

/// The minor version RDS creates for a major (`"16"`): the family's default.
/// `None` when RDS lists none. moto answers this call with HTTP 500.
pub async fn default_minor(cx: &Context, major: &str) -> anyhow::Result<Option<String>> {
    let out = cx
        .clients
        .rds
        .describe_db_engine_versions()
        .engine("postgres")
        .db_parameter_group_family(format!("postgres{major}"))
        .default_only(true)
        // Informational: a failure is a plan warning, and moto's HTTP 500
        // must not cost the SDK's retries (8 s measured) on every plan.
        .customize()
        .config_override(
            aws_sdk_rds::config::Builder::default()
                .retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .aws("DescribeDBEngineVersions")?;
    Ok(out
        .db_engine_versions()
        .iter()
        .filter_map(|v| v.engine_version())
        .find(|v| v.split('.').next() == Some(major))
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered() -> Vec<String> {
        ["17.2", "17.4", "17.5", "18.1"].map(String::from).to_vec()
    }

    #[test]
    fn a_major_picks_its_newest_offered_minor_and_an_exact_version_itself() {
        assert_eq!(pick_target("16.8", "17", &offered()), Ok("17.5".into()));
        assert_eq!(pick_target("16.8", "17.4", &offered()), Ok("17.4".into()));
        assert_eq!(pick_target("16.8", "18", &offered()), Ok("18.1".into()));
    }

    #[test]
    fn a_version_rds_does_not_offer_is_refused_naming_what_it_offers() {
        let refused = pick_target("16.8", "17.9", &offered()).unwrap_err();
        assert!(matches!(refused, UpgradeRefused::NotOffered { .. }));
        let refused = pick_target("14.10", "17", &["15.5".into(), "16.1".into()]).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains("does not offer PostgreSQL 17 as an upgrade of the 14.10")
                && message.contains("majors 15, 16")
                && message.contains("database.engine_version"),
            "{message}"
        );
        assert!(matches!(
            pick_target("16.8", "15", &offered()),
            Err(UpgradeRefused::Downgrade { .. })
        ));
        // Also when RDS's list cannot be read (the emulator).
        let refused = refuse_downgrade("17", "16").unwrap_err().to_string();
        assert!(
            refused.contains("older than the 17 the instance runs"),
            "{refused}"
        );
        assert_eq!(refuse_downgrade("16.8", "17"), Ok(()));
    }

    #[test]
    fn a_family_without_an_extension_poolside_installs_is_named() {
        let offered = |list: &[&str]| list.iter().map(|e| e.to_string()).collect();
        assert!(missing_extensions(&offered(&["pg_cron", "postgis", "vector"])).is_empty());
        assert_eq!(
            missing_extensions(&offered(&["postgis", "vector"])),
            ["pg_cron"]
        );
        let refused = UpgradeRefused::ExtensionsMissing {
            desired: "17".into(),
            major: "17".into(),
            missing: vec!["pg_cron".into()],
        };
        assert!(
            refused
                .to_string()
                .contains("postgres17 does not offer the extension pg_cron"),
            "{refused}"
        );
    }

    #[test]
    fn majors_are_compared_as_numbers() {
        assert!(is_major_upgrade("9.6.20", "16"));
        assert!(!is_major_upgrade("16.8", "16"));
        assert!(!is_major_upgrade("17.4", "16"), "a downgrade is no upgrade");
        assert!(matches!(
            pick_target("9.6", "10", &["10.21".into()]),
            Ok(v) if v == "10.21"
        ));
    }
}
