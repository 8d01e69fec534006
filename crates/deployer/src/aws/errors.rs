//! One place that classifies SDK errors, so callers ask "is this not
//! found?" rather than matching strings.

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

/// What kind of failure an AWS call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    /// The resource is busy (e.g. a Lambda update in progress).
    Conflict,
    /// A new IAM role Lambda cannot assume yet.
    RoleNotAssumable,
    Throttled,
    AccessDenied,
    /// No credentials, or expired ones.
    Credentials,
    Other,
}

/// An AWS call that failed, with what was being done to which resource.
#[derive(Debug, thiserror::Error)]
#[error("{operation} {resource}: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub resource: String,
    pub message: String,
    pub kind: ErrorKind,
}

/// The service error code of an SDK error, if the service answered.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}
