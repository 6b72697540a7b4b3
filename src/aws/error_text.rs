//! An SDK error in the words a user needs: AWS's code and message when AWS
//! answered, the root cause in a few words when the call never reached it.

use aws_smithy_runtime_api::client::result::SdkError;

/// What a user needs from an SDK error: AWS's code and message when AWS
/// answered; the cause, in a few words, when the call never reached it.
pub(crate) fn describe_sdk_error<E, R>(err: &SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => format!(
                    "AWS answered with an error it did not name ({})",
                    innermost(e)
                ),
            }
        }
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            format!("no answer in time ({})", innermost(err))
        }
        SdkError::DispatchFailure(_) => {
            format!("could not reach the endpoint ({})", innermost(err))
        }
        SdkError::TimeoutError(_) => "no answer in time".to_string(),
        SdkError::ResponseError(_) => format!(
            "the answer could not be read ({}); is the endpoint an AWS API?",
            innermost(err)
        ),
        _ => innermost(err),
    }
}

/// The last error in a chain: the root cause, without the layers that wrap it.
pub(crate) fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    let text = current.to_string();
    // An unparsable body can be a whole HTML page: keep the first line, short.
    let first = text.lines().next().unwrap_or_default();
    match first.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &first[..cut]),
        None => first.to_string(),
    }
}
