//! The one place that builds AWS clients: region, endpoint override (LocalStack
//! or moto), retries, timeouts, and the interceptor that counts every call.

use crate::config::Config;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use std::sync::Arc;
use std::time::Duration;

pub(crate) mod error_text;
pub mod role;
mod stats;
use stats::CallCounter;
pub use stats::CallStats;

#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub s3: aws_sdk_s3::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub rds: aws_sdk_rds::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sts: aws_sdk_sts::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
    /// The Resource Groups Tagging API: one read for the tags of every
    /// alarm (CloudWatch itself lists them one alarm at a time).
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub stats: Arc<CallStats>,
    /// Who assumed the environment's role (`target.role_arn`), when it has one.
    pub operator: Option<role::Operator>,
}

/// The HTTPS client every AWS client shares: the SDK's own default, built
/// with ring instead of aws-lc-rs so that the binary carries one crypto
/// provider (sqlx, reqwest and jsonwebtoken use ring). Proxies are taken from
/// the environment (`HTTPS_PROXY`, `NO_PROXY`) as the SDK's default does.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, runtime_components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

impl Clients {
    /// Clients for the environment: with the operator's own credentials, or
    /// as the environment's role, assumed here before any other call.
    pub async fn connect(config: &Config) -> Result<Clients, role::RoleError> {
        let own = operator_config(config).await;
        let stats = Arc::new(CallStats::default());
        let Some(assumed) = config.role() else {
            return Ok(Clients::with_config(config, &own, (stats, None)));
        };
        // Counted as well: `--stats` shows the two calls made as the operator.
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&own)
                .interceptor(CallCounter(stats.clone()))
                .build(),
        );
        let operator = role::operator(&sts, Some(&assumed.arn)).await?;
        let credentials =
            role::RoleCredentials::assume(sts, assumed, operator.clone(), &config.name).await?;
        let as_role = own
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            // The cache asks for new credentials this long before the
            // session ends (its default is 10 s): a call signed just before
            // is not refused as expired on its way.
            .identity_cache(
                aws_config::identity::IdentityCache::lazy()
                    .buffer_time(role::RENEW_BEFORE_EXPIRY)
                    .build(),
            )
            .build();
        Ok(Clients::with_config(
            config,
            &as_role,
            (stats, Some(operator)),
        ))
    }

    fn with_config(
        config: &Config,
        shared: &aws_config::SdkConfig,
        (stats, operator): (Arc<CallStats>, Option<role::Operator>),
    ) -> Clients {
        let counter = CallCounter(stats.clone());
        // Every client counts its calls (`--stats`, the benchmark).
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(shared)
                        .interceptor(counter.clone())
                        .build(),
                )
            };
        }
        // Emulators serve S3 on one host, so buckets go in the path, not the host name.
        let s3 = aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(config.endpoint_url.is_some())
            .interceptor(counter.clone())
            .build();
        Clients {
            ec2: client!(aws_sdk_ec2),
            s3: aws_sdk_s3::Client::from_conf(s3),
            ecr: client!(aws_sdk_ecr),
            rds: client!(aws_sdk_rds),
            secrets: client!(aws_sdk_secretsmanager),
            sts: client!(aws_sdk_sts),
            iam: client!(aws_sdk_iam),
            logs: client!(aws_sdk_cloudwatchlogs),
            ecs: client!(aws_sdk_ecs),
            elb: client!(aws_sdk_elasticloadbalancingv2),
            cloudwatch: client!(aws_sdk_cloudwatch),
            autoscaling: client!(aws_sdk_applicationautoscaling),
            acm: client!(aws_sdk_acm),
            // Route 53 is global; its endpoint rules pick the global endpoint.
            route53: client!(aws_sdk_route53),
            tagging: client!(aws_sdk_resourcegroupstagging),
            stats,
            operator,
        }
    }
}

#[cfg(test)]
impl Clients {
    /// Clients that reach nothing, for unit tests that swap in the ones they
    /// mock (aws-smithy-mocks); a call to any other fails at once.
    pub fn offline() -> Clients {
        let shared = aws_types::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http_client())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("test", "test", None, None, "unit-test"),
                ),
            )
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(RetryConfig::disabled())
            .build();
        Clients {
            ec2: aws_sdk_ec2::Client::new(&shared),
            s3: aws_sdk_s3::Client::new(&shared),
            ecr: aws_sdk_ecr::Client::new(&shared),
            rds: aws_sdk_rds::Client::new(&shared),
            secrets: aws_sdk_secretsmanager::Client::new(&shared),
            sts: aws_sdk_sts::Client::new(&shared),
            iam: aws_sdk_iam::Client::new(&shared),
            logs: aws_sdk_cloudwatchlogs::Client::new(&shared),
            ecs: aws_sdk_ecs::Client::new(&shared),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&shared),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&shared),
            autoscaling: aws_sdk_applicationautoscaling::Client::new(&shared),
            acm: aws_sdk_acm::Client::new(&shared),
            route53: aws_sdk_route53::Client::new(&shared),
            tagging: aws_sdk_resourcegroupstagging::Client::new(&shared),
            stats: Arc::default(),
            operator: None,
        }
    }
}

/// Builds a client of one AWS crate that answers with aws-smithy-mocks rules,
/// in order, like `aws_smithy_mocks::mock_client!` but without the crates'
/// `test-util` feature (which would make the test build compile the SDK again).
#[cfg(test)]
#[macro_export]
macro_rules! mocked {
    ($aws_crate:ident, $rules:expr) => {
        $crate::mocked!($aws_crate, $rules, Sequential)
    };
    // `MatchAny`: each call takes the first rule that matches it, so a rule
    // that answers repeatedly can stand next to others.
    ($aws_crate:ident, $rules:expr, $mode:ident) => {{
        let mut interceptor = aws_smithy_mocks::MockResponseInterceptor::new()
            .rule_mode(aws_smithy_mocks::RuleMode::$mode);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        $aws_crate::Client::from_conf(
            $aws_crate::Config::builder()
                .behavior_version($crate::aws::latest_behavior())
                .region(aws_config::Region::new("eu-west-1"))
                .credentials_provider(aws_credential_types::Credentials::new(
                    "test",
                    "test",
                    None,
                    None,
                    "unit-test",
                ))
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }};
}

#[cfg(test)]
pub fn latest_behavior() -> BehaviorVersion {
    BehaviorVersion::latest()
}

/// The operator's own identity, without assuming the environment's role
/// (`poolside onboarding`, before the role exists).
pub async fn operator_identity(config: &Config) -> Result<role::Operator, role::RoleError> {
    let own = operator_config(config).await;
    role::operator(&aws_sdk_sts::Client::new(&own), None).await
}

/// The SDK configuration every client starts from, with the operator's own
/// credentials: the region, the one HTTP client, retries, timeouts, the
/// profile (`target.profile`), and on an emulator its endpoint and test key.
async fn operator_config(config: &Config) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .region(aws_config::Region::new(config.region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url);
        // Emulators accept any key, and a profile exported for real AWS
        // (SSO, say) must not stand between a user and the local stack:
        // an emulator target always uses the emulator's test key.
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            "test",
            "test",
            None,
            None,
            "poolside-emulator",
        ));
    }
    loader.load().await
}
