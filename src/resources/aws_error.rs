//! AWS's errors as a user needs them: which call failed and what AWS said,
//! the codes that mean "not found" or "still settling", and the retry of
//! calls AWS refuses only until it catches up with itself.
//!
//! Contract: no resource knowledge; used by every family and by the state
//! store.

pub(crate) use crate::aws::error_text::{describe_sdk_error, innermost};
use anyhow::anyhow;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use std::time::Duration;

/// Turns an SDK error into one that says which call failed and what AWS said.
pub(crate) trait AwsResultExt<T> {
    fn aws(self, operation: &str) -> anyhow::Result<T>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn aws(self, operation: &str) -> anyhow::Result<T> {
        self.map_err(|e| {
            // The whole chain (HTTP bodies included) only in the debug log.
            tracing::debug!(operation, error = %DisplayErrorContext(&e), "AWS call failed");
            anyhow!("{operation}: {}", describe_sdk_error(&e))
        })
    }
}

impl<T, O, E> AwsResultExt<T>
    for Result<T, aws_smithy_runtime_api::client::waiters::error::WaiterError<O, E>>
where
    O: std::fmt::Debug + Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    fn aws(self, operation: &str) -> anyhow::Result<T> {
        self.map_err(|e| {
            tracing::debug!(operation, error = %DisplayErrorContext(&e), "AWS wait failed");
            anyhow!("{operation}: {}", innermost(&e))
        })
    }
}

/// How long, in all, a call is retried while AWS catches up with itself.
pub(crate) const EVENTUAL_CONSISTENCY_LIMIT: Duration = Duration::from_secs(120);

/// Calls `call` again, with exponential backoff (2 s, 4 s, ... 16 s), while
/// its error is one that `settling` says AWS clears by itself, such as a role
/// made seconds ago that a service cannot assume yet. Gives up after
/// [`EVENTUAL_CONSISTENCY_LIMIT`] and returns the last error.
pub(crate) async fn retry_while_settling<T, E, R, F, Fut>(
    what: &str,
    settling: impl Fn(&aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool,
    mut call: F,
) -> Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<
        Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    >,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_secs(2);
    loop {
        match call().await {
            Err(err)
                if settling(&err) && started.elapsed() + pause <= EVENTUAL_CONSISTENCY_LIMIT =>
            {
                tracing::info!(
                    what,
                    pause_s = pause.as_secs(),
                    "AWS is still settling; retrying"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(16));
            }
            other => return other,
        }
    }
}

/// The error message AWS returned, if the call reached AWS and failed there.
pub(crate) fn error_message<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<&str>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.message())
}

/// The error code AWS returned, if the call reached AWS and failed there.
pub(crate) fn error_code<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<&str>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code())
}

pub(crate) fn is_not_found_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.contains("NotFound") || c.starts_with("NoSuch"))
}

/// A delete of something already gone has done its job: deletes stay idempotent.
pub(crate) fn ignore_not_found<T, E, R>(
    result: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    operation: &str,
) -> anyhow::Result<()>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_not_found_code(error_code(&err)) => Ok(()),
        Err(err) => Err(err).aws(operation),
    }
}
