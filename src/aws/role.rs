//! Acting as the role a customer grants (`[target] role_arn`): the
//! operator's own credentials assume it once before any other call, and
//! again whenever the session nears its end, so a run longer than one
//! session (an RDS create, a major upgrade) keeps going.
//!
//! Contract: every client poolside builds for the environment signs with
//! the role's credentials; the operator's own are used for two STS calls
//! only (GetCallerIdentity, to name the operator, and AssumeRole). Errors
//! say which of the two steps failed and what to check.

use crate::config::AssumedRole;
use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::time::{Duration, SystemTime};

/// Credentials closer than this to their end are renewed before a call.
pub const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Who runs a command that acts as a role.
#[derive(Clone, Debug)]
pub struct Operator {
    /// The operator's own ARN, as STS names it.
    pub arn: String,
    pub account_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("cannot read who you are with your own credentials, before assuming {role}: {cause}. Check them: target.profile, AWS_PROFILE, or `aws sso login`; in a Region you opt in to, STS answers only accounts that enabled it")]
    Operator { role: String, cause: String },
    #[error("cannot assume target.role_arn {role} as {operator}: {cause}. {advice}")]
    Assume {
        role: String,
        operator: String,
        cause: String,
        advice: String,
    },
}

/// The roles this process acts as, by environment, for [`denial_hint`].
static IN_USE: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// The codes AWS's services answer a call that IAM denied with.
const DENIED: [&str; 5] = [
    "AccessDenied",
    "UnauthorizedOperation",
    "AuthorizationError",
    "is not authorized to perform",
    "not authorized to perform",
];

/// What to do about an error that is IAM's denial, when the run acted as
/// one environment's role: the policy a poolside version needs can grow,
/// and only the customer's administrator can change the role.
pub fn denial_hint(error: &str) -> Option<String> {
    if !DENIED.iter().any(|code| error.contains(code)) {
        return None;
    }
    let in_use = IN_USE.lock().unwrap();
    let [(environment, role)] = in_use.as_slice() else {
        return None;
    };
    Some(format!(
        "the role {role} (target.role_arn) lacks the permission AWS names above. `poolside onboarding --env {environment}` prints the template with the policy this poolside version needs: the customer's administrator updates the role's stack with it"
    ))
}

/// The operator's own identity (GetCallerIdentity with their credentials).
pub async fn operator(
    sts: &aws_sdk_sts::Client,
    role: Option<&str>,
) -> Result<Operator, RoleError> {
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| RoleError::Operator {
            role: role.unwrap_or("the role").to_string(),
            cause: super::error_text::describe_sdk_error(&e),
        })?;
    Ok(Operator {
        arn: identity.arn().unwrap_or("unknown caller").to_string(),
        account_id: identity.account().unwrap_or_default().to_string(),
    })
}

/// The session name AssumeRole records in the customer's CloudTrail: the
/// operator's own name (the last part of their ARN), in the characters
/// and length AssumeRole accepts.
pub fn session_name(operator_arn: &str) -> String {
    let own = operator_arn.rsplit(['/', ':']).next().unwrap_or_default();
    let cleaned: String = format!("poolside-{own}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    cleaned
}

/// Credentials of the role, assumed with the operator's own.
#[derive(Debug)]
pub struct RoleCredentials {
    sts: aws_sdk_sts::Client,
    role: AssumedRole,
    operator: Operator,
    environment: String,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

impl RoleCredentials {
    /// Assumes the role once, so that a role that cannot be assumed stops
    /// the command before anything else is asked.
    pub async fn assume(
        sts: aws_sdk_sts::Client,
        role: &AssumedRole,
        operator: Operator,
        environment: &str,
    ) -> Result<RoleCredentials, RoleError> {
        let provider = RoleCredentials {
            sts,
            role: role.clone(),
            operator,
            environment: environment.to_string(),
            current: tokio::sync::Mutex::new(None),
        };
        let first = provider.assume_now().await?;
        *provider.current.lock().await = Some(first);
        let mut in_use = IN_USE.lock().unwrap();
        let entry = (environment.to_string(), role.arn.clone());
        if !in_use.contains(&entry) {
            in_use.push(entry);
        }
        Ok(provider)
    }

    async fn assume_now(&self) -> Result<Credentials, RoleError> {
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role.arn)
            .role_session_name(session_name(&self.operator.arn))
            .set_external_id(self.role.external_id.clone())
            .duration_seconds(self.role.session_duration.as_secs() as i32)
            .send()
            .await
            .map_err(|e| self.refused(&e))?;
        let Some(given) = out.credentials() else {
            return Err(self.assume_error("STS answered without credentials".into(), ""));
        };
        let expiry = SystemTime::try_from(*given.expiration()).ok();
        Ok(Credentials::new(
            given.access_key_id(),
            given.secret_access_key(),
            Some(given.session_token().to_string()),
            expiry,
            "poolside-role",
        ))
    }

    fn refused<R: std::fmt::Debug + 'static>(
        &self,
        err: &aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_sts::operation::assume_role::AssumeRoleError,
            R,
        >,
    ) -> RoleError {
        let cause = super::error_text::describe_sdk_error(err);
        let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("");
        let message = err
            .as_service_error()
            .and_then(|e| e.message())
            .unwrap_or("");
        let advice = if message.contains("DurationSeconds")
            || message.contains("MaxSessionDuration")
        {
            "target.session_duration is longer than the role allows: lower it, or raise the role's MaxSessionDuration. A role assumed from an assumed role (SSO, say) lasts one hour at most".to_string()
        } else if code == "RegionDisabledException" {
            format!("STS is not activated in this Region for the role's account ({}): its administrator activates it (IAM, Account settings)", self.role.account_id)
        } else if matches!(
            code,
            "ExpiredToken" | "ExpiredTokenException" | "InvalidClientTokenId"
        ) {
            "your own credentials expired or are not valid: refresh them (`aws sso login`, a new session), then run the command again".to_string()
        } else {
            format!(
                "Check that the role exists, that its trust policy trusts your account ({}), and that target.external_id is the external id it requires. `poolside onboarding --env {}` prints the template that makes the role",
                self.operator.account_id, self.environment
            )
        };
        self.assume_error(cause, &advice)
    }

    fn assume_error(&self, cause: String, advice: &str) -> RoleError {
        RoleError::Assume {
            role: self.role.arn.clone(),
            operator: self.operator.arn.clone(),
            cause,
            advice: advice.to_string(),
        }
    }

    async fn credentials(&self) -> provider::Result {
        let mut current = self.current.lock().await;
        let fresh = current.as_ref().filter(|c| {
            c.expiry()
                .is_none_or(|end| end > SystemTime::now() + RENEW_BEFORE_EXPIRY)
        });
        if let Some(credentials) = fresh {
            return Ok(credentials.clone());
        }
        tracing::info!(role = %self.role.arn, "the role's session nears its end: assuming it again");
        let renewed = self
            .assume_now()
            .await
            .map_err(CredentialsError::provider_error)?;
        *current = Some(renewed.clone());
        Ok(renewed)
    }
}

impl ProvideCredentials for RoleCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.credentials())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
    use aws_smithy_mocks::mock;

    fn role() -> AssumedRole {
        AssumedRole {
            arn: "arn:aws:iam::111122223333:role/poolside-operator/poolside-pilot".into(),
            account_id: "111122223333".into(),
            external_id: Some("acme-7f3a".into()),
            session_duration: Duration::from_secs(3600),
        }
    }

    fn operator() -> Operator {
        Operator {
            arn: "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Admin/alice@example.com"
                .into(),
            account_id: "444455556666".into(),
        }
    }

    fn granted(key: &str, lasting: Duration) -> AssumeRoleOutput {
        let until = aws_smithy_types::DateTime::from(SystemTime::now() + lasting);
        AssumeRoleOutput::builder()
            .credentials(
                aws_sdk_sts::types::Credentials::builder()
                    .access_key_id(key)
                    .secret_access_key("secret")
                    .session_token("token")
                    .expiration(until)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    /// AssumeRole answering with AWS's error `code` and `message`.
    fn refusing(code: &'static str, message: &'static str) -> aws_smithy_mocks::Rule {
        mock!(aws_sdk_sts::Client::assume_role).then_error(move || {
            AssumeRoleError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code(code)
                    .message(message)
                    .build(),
            )
        })
    }

    #[test]
    fn the_session_is_named_after_the_operator() {
        assert_eq!(session_name(&operator().arn), "poolside-alice@example.com");
        assert_eq!(
            session_name("arn:aws:iam::1:user/ops/bob smith"),
            "poolside-bob-smith"
        );
        assert_eq!(
            session_name(&format!("arn:aws:iam::1:user/{}", "x".repeat(80))).len(),
            64
        );
    }

    /// The first session is asked for with the external id and the
    /// operator's name; a session that nears its end is assumed again.
    #[tokio::test]
    async fn the_role_is_assumed_again_when_its_session_nears_its_end() {
        let first = mock!(aws_sdk_sts::Client::assume_role)
            .match_requests(|r| {
                r.external_id() == Some("acme-7f3a")
                    && r.role_session_name() == Some("poolside-alice@example.com")
                    && r.duration_seconds() == Some(3600)
            })
            .then_output(|| granted("ASIAFIRST", Duration::from_secs(60)));
        let second = mock!(aws_sdk_sts::Client::assume_role)
            .then_output(|| granted("ASIASECOND", Duration::from_secs(3600)));
        let sts = crate::mocked!(aws_sdk_sts, [&first, &second]);
        let provider = RoleCredentials::assume(sts, &role(), operator(), "pilot")
            .await
            .unwrap();
        let used = provider.provide_credentials().await.unwrap();
        assert_eq!(used.access_key_id(), "ASIASECOND");
        let again = provider.provide_credentials().await.unwrap();
        assert_eq!(again.access_key_id(), "ASIASECOND");
        assert_eq!(first.num_calls() + second.num_calls(), 2);
    }

    /// AccessDenied names the role, the operator and what to check.
    #[tokio::test]
    async fn a_role_that_cannot_be_assumed_says_what_to_check() {
        let denied = refusing("AccessDenied", "User: arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Admin/alice@example.com is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/poolside-operator/poolside-pilot");
        let sts = crate::mocked!(aws_sdk_sts, [&denied]);
        let err = RoleCredentials::assume(sts, &role(), operator(), "pilot")
            .await
            .unwrap_err()
            .to_string();
        for expected in [
            "cannot assume target.role_arn arn:aws:iam::111122223333:role/poolside-operator/poolside-pilot",
            "as arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Admin/alice@example.com",
            "AccessDenied",
            "trust policy trusts your account (444455556666)",
            "target.external_id",
            "poolside onboarding --env pilot",
        ] {
            assert!(err.contains(expected), "{expected:?} missing from: {err}");
        }

        let too_long = refusing(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        );
        let sts = crate::mocked!(aws_sdk_sts, [&too_long]);
        let err = RoleCredentials::assume(sts, &role(), operator(), "pilot")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("target.session_duration is longer than the role allows"),
            "{err}"
        );
    }

    /// A denial, once the role was assumed, points at `poolside onboarding`.
    #[tokio::test]
    async fn a_denied_call_as_the_role_says_how_to_update_it() {
        let granted_once = mock!(aws_sdk_sts::Client::assume_role)
            .then_output(|| granted("ASIAONE", Duration::from_secs(3600)));
        let sts = crate::mocked!(aws_sdk_sts, [&granted_once]);
        RoleCredentials::assume(sts, &role(), operator(), "pilot")
            .await
            .unwrap();
        let hint = denial_hint("CreateDBSnapshot: AccessDenied: User: arn:aws:sts::111122223333:assumed-role/poolside-operator-pilot/poolside-alice is not authorized to perform: rds:CreateDBSnapshot").unwrap();
        assert!(
            hint.contains("role arn:aws:iam::111122223333:role/poolside-operator/poolside-pilot"),
            "{hint}"
        );
        assert!(hint.contains("poolside onboarding --env pilot"), "{hint}");
        assert_eq!(
            denial_hint("DescribeVpcs: could not reach the endpoint"),
            None
        );
    }
}
