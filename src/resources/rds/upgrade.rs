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

/// The major of a PostgreSQL version: `"16"` of `"16.8"` and of `"16"`.
pub fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// `true` when `from` and `to` name different majors.
pub fn is_major_upgrade(from: &str, to: &str) -> bool {
    major(from) != major(to)
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
    if numeric(major(desired)) < numeric(major(running)) {
        return Err(UpgradeRefused::Downgrade {
            running: running.into(),
            desired: desired.into(),
        });
    }
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

/// The major upgrades RDS offers from `running` (ValidUpgradeTarget with
/// IsMajorVersionUpgrade), oldest first.
pub async fn offered_targets(cx: &Context, running: &str) -> anyhow::Result<Vec<String>> {
    let out = cx
        .clients
        .rds
        .describe_db_engine_versions()
        .engine("postgres")
        .engine_version(running)
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
    Ok(offered)
}

/// What an error says when the instance came back on its old major: RDS
/// refused the upgrade in its pre-check and says why in a log of the
/// instance's.
pub fn not_upgraded(identifier: &str, running: &str, target: &str) -> String {
    format!(
        "RDS did not upgrade {identifier} to {target}: it still runs {running}. RDS's pre-check writes why in the instance's log pg_upgrade_precheck.log: \
         aws rds describe-db-log-files --db-instance-identifier {identifier} --filename-contains pg_upgrade, then \
         aws rds download-db-log-file-portion --db-instance-identifier {identifier} --log-file-name <that file> --output text. \
         A snapshot taken before the upgrade is listed by `poolside snapshots`"
    )
}

/// After a major upgrade RDS reports `available` whether it upgraded or
/// its pre-check refused: the version it runs tells which.
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
        .unwrap_or_default();
    if major(running) != major(target) {
        bail!("{}", not_upgraded(identifier, running, target));
    }
    Ok(())
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
    }

    #[test]
    fn majors_are_compared_as_numbers() {
        assert!(is_major_upgrade("9.6.20", "16"));
        assert!(!is_major_upgrade("16.8", "16"));
        assert!(matches!(
            pick_target("9.6", "10", &["10.21".into()]),
            Ok(v) if v == "10.21"
        ));
    }
}
