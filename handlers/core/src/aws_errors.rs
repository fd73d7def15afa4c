//! How AWS SDK failures are told apart.
//!
//! A dependency that is **unavailable** (throttling, a 5xx answer, an attempt or operation
//! timeout, a connection that cannot be made) is answered with 503 `SERVICE_UNAVAILABLE` and
//! `retryAfter`: the request was fine and a retry may succeed. Anything else (a request the
//! service refused, a response the SDK could not read on a 4xx) is the service's own fault
//! and an `INTERNAL_ERROR`. DynamoDB, Kinesis and `@connections` errors are all classified
//! here, so the three answer alike.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Error codes AWS services use for "slow down" (the SDKs' own throttling list, for the
/// services this code calls).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "KMSThrottlingException",
];

/// Error codes AWS services use for their own failures.
const SERVER_CODES: &[&str] =
    &["InternalServerError", "InternalFailure", "ServiceUnavailable", "InternalFailureException"];

/// Whether `error` means the service is throttling, failing or unreachable, rather than that
/// the request was wrong.
pub fn is_unavailable<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ResponseError(response) => {
            let status = response.raw().status();
            status.is_server_error() || status.as_u16() == 429
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status();
            status.is_server_error()
                || status.as_u16() == 429
                || service
                    .err()
                    .code()
                    .is_some_and(|code| THROTTLING_CODES.contains(&code) || SERVER_CODES.contains(&code))
        }
        _ => false,
    }
}

/// Whether `error` is the service asking the caller to slow down (throttling or 429), the one
/// kind of unavailability that a short jittered wait is most likely to cure.
pub fn is_throttling<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::ServiceError(service) => {
            service.raw().status().as_u16() == 429
                || service.err().code().is_some_and(|code| THROTTLING_CODES.contains(&code))
        }
        _ => false,
    }
}

/// Whether `error` certainly happened before the request reached the service: the connection
/// could not be made in time (the clients set a connect timeout and no read timeout, so a
/// timeout in dispatch is the connect's). Such a request can be sent again even when it must
/// not be applied twice.
pub fn was_not_sent<E>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::DispatchFailure(failure) => failure.is_timeout(),
        _ => false,
    }
}
