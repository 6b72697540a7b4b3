//! `[target]`: where the AWS calls go and as whom. An emulator's endpoint,
//! the account the environment is pinned to, the operator's own profile,
//! and the role the customer grants (`role_arn`, `external_id`,
//! `session_duration`), checked before any call is made.

use super::file::EnvironmentFile;
use super::validator::{Checked, Validator};
use std::time::Duration;

/// The role every command assumes before its first other call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRole {
    pub arn: String,
    /// The role's account, read from its ARN.
    pub account_id: String,
    pub external_id: Option<String>,
    /// How long one session lasts; longer runs assume the role again.
    pub session_duration: Duration,
}

/// `target.role_arn`, `external_id` and `session_duration`, checked.
#[derive(Debug, Clone, Default)]
pub struct RoleSettings {
    pub external_id: Option<String>,
    pub session_duration: Duration,
    /// Set when the file names a role.
    pub role: Option<AssumedRole>,
}

/// The permissions boundary of the roles poolside makes in an environment
/// that acts as `role_arn`: the managed policy `poolside onboarding`'s
/// template makes beside the role (same path, the role's name and
/// `-boundary`).
pub fn boundary_of(role_arn: &str) -> String {
    format!("{}-boundary", role_arn.replacen(":role/", ":policy/", 1))
}

/// AssumeRole's DurationSeconds: 15 minutes to 12 hours (and no more than
/// the role's MaxSessionDuration, which only AWS knows).
const SESSION_MIN: Duration = Duration::from_secs(15 * 60);
const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
/// AssumeRole's own default.
pub const SESSION_DEFAULT: Duration = Duration::from_secs(3600);
/// The most a role session assumed from an assumed role may last.
pub const SESSION_CHAINED_MAX: Duration = Duration::from_secs(3600);

/// The parts of an IAM role ARN (`arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`):
/// the account, or what is wrong.
pub fn role_account(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let wrong = || {
        format!("{arn:?} is not an IAM role ARN such as \"arn:aws:iam::111122223333:role/poolside-operator/poolside-pilot\"")
    };
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return Err(wrong());
    };
    let name_ok = resource
        .strip_prefix("role/")
        .and_then(|path| path.rsplit('/').next())
        .is_some_and(|name| {
            (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        });
    if scheme != "arn"
        || !partition.starts_with("aws")
        || service != "iam"
        || !region.is_empty()
        || account.len() != 12
        || !account.chars().all(|c| c.is_ascii_digit())
        || !name_ok
    {
        return Err(wrong());
    }
    Ok(account.to_string())
}

impl Validator<'_> {
    pub(super) fn check_target(&self, raw: &EnvironmentFile) -> Checked<RoleSettings> {
        let target = &raw.target;
        if let Some(url) = &target.endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return self.fail(
                    "target.endpoint_url",
                    format!("{url:?} is not an http:// or https:// URL"),
                );
            }
        }
        if target.emulator_runs_tasks && target.endpoint_url.is_none() {
            return self.fail(
                "target.emulator_runs_tasks",
                "only applies to an emulator (target.endpoint_url): on AWS, ECS runs the tasks",
            );
        }
        if let Some(seconds) = target.poll_interval_seconds {
            if !(1..=60).contains(&seconds) {
                return self.fail(
                    "target.poll_interval_seconds",
                    format!("{seconds} is not between 1 and 60: a wait looks at least once a minute, and at most once a second (AWS's describe rate limits)"),
                );
            }
        }
        if let Some(account) = &target.account_id {
            if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
                return self.fail(
                    "target.account_id",
                    format!("{account:?} is not a 12-digit AWS account id"),
                );
            }
        }
        if let Some(profile) = &target.profile {
            if profile.trim().is_empty() {
                return self.fail("target.profile", "is empty: name a profile of ~/.aws/config, or leave the key out for the default credential chain");
            }
            if target.endpoint_url.is_some() {
                return self.fail("target.profile", "does not apply to an emulator (target.endpoint_url), which is always called with its test key");
            }
        }
        self.check_role(raw)
    }

    fn check_role(&self, raw: &EnvironmentFile) -> Checked<RoleSettings> {
        let target = &raw.target;
        // The external id and the session's length are also read without a
        // role: `poolside onboarding` writes them into the role it makes.
        if let Some(id) = &target.external_id {
            self.check_external_id(id)?;
        }
        let session_duration = match &target.session_duration {
            None => SESSION_DEFAULT,
            Some(text) => self.check_session_duration(text)?,
        };
        let settings = RoleSettings {
            external_id: target.external_id.clone(),
            session_duration,
            role: None,
        };
        let Some(arn) = &target.role_arn else {
            return Ok(settings);
        };
        let account_id = match role_account(arn) {
            Ok(account) => account,
            Err(message) => return self.fail("target.role_arn", message),
        };
        // The operator policy manages `role/poolside-<env>-*`: a role named
        // so could rewrite its own permissions.
        let managed = format!(":role/poolside-{}-", raw.name);
        if arn.contains(&managed) {
            return self.fail(
                "target.role_arn",
                format!("the role's name starts with poolside-{}-, which names the roles poolside manages in this environment, so the role could change its own permissions: use the role `poolside onboarding` makes (path /poolside-operator/)", raw.name),
            );
        }
        if let Some(pinned) = &target.account_id {
            if *pinned != account_id {
                return self.fail(
                    "target.role_arn",
                    format!("the role is in account {account_id}, but the environment is pinned to account {pinned} (target.account_id): the role must be in the account poolside deploys to"),
                );
            }
        }
        Ok(RoleSettings {
            role: Some(AssumedRole {
                arn: arn.clone(),
                account_id,
                external_id: target.external_id.clone(),
                session_duration,
            }),
            ..settings
        })
    }

    /// AssumeRole's ExternalId: 2 to 1,224 characters of `[\w+=,.@:/-]`.
    pub(super) fn check_external_id(&self, id: &str) -> Checked<()> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
        if !(2..=1224).contains(&id.len()) || !id.chars().all(allowed) {
            return self.fail(
                "target.external_id",
                "must be 2 to 1224 characters of letters, digits and _+=,.@:/- (AssumeRole's ExternalId)",
            );
        }
        Ok(())
    }

    fn check_session_duration(&self, text: &str) -> Checked<Duration> {
        let Ok(duration) = humantime::parse_duration(text) else {
            return self.fail(
                "target.session_duration",
                format!("{text:?} is not a duration such as \"1h\" or \"90m\""),
            );
        };
        if !(SESSION_MIN..=SESSION_MAX).contains(&duration) {
            return self.fail(
                "target.session_duration",
                format!("{text} is not between 15m and 12h (AssumeRole's limits; a run longer than one session assumes the role again)"),
            );
        }
        Ok(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_arn_gives_its_account_or_says_what_is_wrong() {
        assert_eq!(
            role_account("arn:aws:iam::111122223333:role/poolside-operator/poolside-pilot"),
            Ok("111122223333".into())
        );
        assert_eq!(
            role_account("arn:aws-cn:iam::111122223333:role/x"),
            Ok("111122223333".into())
        );
        for wrong in [
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::1111:role/x",
            "arn:aws:sts::111122223333:assumed-role/x/y",
            "arn:aws:iam:eu-west-1:111122223333:role/x",
            "arn:aws:iam::111122223333:role/",
            "role/x",
        ] {
            let err = role_account(wrong).unwrap_err();
            assert!(err.contains("is not an IAM role ARN"), "{wrong}: {err}");
        }
    }
}
