//! One place that classifies SDK errors, so callers ask "is this not
//! found?" rather than matching strings.
//!
//! [`aws_error`] turns any `SdkError` into an [`AwsError`] whose
//! [`ErrorKind`] comes from the service's error code (the same codes the
//! generated `is_*_exception()` predicates test), or, when the service never
//! answered, from the kind of SDK failure (no credentials, no connection).
//! The message is the service's own message or the SDK's error chain; it
//! never contains credentials or tokens, because neither ever reaches an
//! error value.

use std::error::Error as _;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;

/// What kind of failure an AWS call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    /// The resource is busy (e.g. a Lambda update in progress).
    Conflict,
    /// An IAM role Lambda cannot use yet: a new role it cannot assume, or
    /// a permission just granted to the role that has not propagated.
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

impl AwsError {
    /// An error the deployer itself finds in an AWS answer (a missing
    /// field, a malformed document), rather than one the SDK returned.
    pub fn invalid_answer(
        operation: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> AwsError {
        AwsError {
            operation,
            resource: resource.into(),
            message: message.into(),
            kind: ErrorKind::Other,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

/// Classifies an SDK error from `operation` on `resource`.
pub fn aws_error<E, R>(
    operation: &'static str,
    resource: impl Into<String>,
    err: SdkError<E, R>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let resource = resource.into();
    let (kind, message) = match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let message = service.err().message().unwrap_or_default();
            let kind = kind_of_code(code, message, operation);
            let text = match kind {
                ErrorKind::Credentials => format!(
                    "{code}: {message}. The AWS credentials were rejected; refresh them \
                     (aws sso login, new keys) or pick another --profile"
                ),
                // AWS's message names the action and resource denied; say
                // where the whole policy comes from.
                ErrorKind::AccessDenied => format!(
                    "{code}: {message}. The identity lacks this permission; \
                     `deployer policy --stage <stage>` prints every permission deploying needs"
                ),
                _ if message.is_empty() => code.to_string(),
                _ => format!("{code}: {message}"),
            };
            (kind, text)
        }
        _ if is_missing_credentials(&err) => (
            ErrorKind::Credentials,
            format!(
                "no AWS credentials found ({}). Set AWS_PROFILE or --profile, \
                 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a web identity token",
                error_chain(&err)
            ),
        ),
        SdkError::TimeoutError(_) => (
            ErrorKind::Other,
            format!("timed out: {}", DisplayErrorContext(&err)),
        ),
        SdkError::DispatchFailure(_) => (
            ErrorKind::Other,
            format!(
                "could not reach the AWS endpoint: {}",
                DisplayErrorContext(&err)
            ),
        ),
        _ => (ErrorKind::Other, DisplayErrorContext(&err).to_string()),
    };
    AwsError {
        operation,
        resource,
        message,
        kind,
    }
}

/// A call's answer, or `None` when it failed with `kind`: a read of
/// something absent, a delete of something already gone, a create of
/// something another run made. Any other failure is classified by
/// [`aws_error`].
pub fn none_if<T, E, R>(
    kind: ErrorKind,
    operation: &'static str,
    resource: impl Into<String>,
    answer: Result<T, SdkError<E, R>>,
) -> Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match answer {
        Ok(answer) => Ok(Some(answer)),
        Err(err) => match aws_error(operation, resource, err) {
            err if err.kind == kind => Ok(None),
            err => Err(err),
        },
    }
}

/// The kind behind a service error code. The codes are those of the
/// generated predicates (`is_resource_not_found_exception()` is
/// `code == "ResourceNotFoundException"`), across the services we call.
pub(crate) fn kind_of_code(code: &str, message: &str, operation: &str) -> ErrorKind {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        // API Gateway's answer to too many calls in a row.
        | "LimitExceededException" => ErrorKind::Throttled,
        // Lambda answers a create of an existing function with a conflict;
        // on any other operation it means "busy, try again".
        "ResourceConflictException" if operation.starts_with("Create") => ErrorKind::AlreadyExists,
        // IAM's DeleteConflict right after a detach is the detach not yet
        // propagated (IAM eventual consistency); CloudWatch Logs'
        // OperationAborted is a concurrent change of the same group.
        "ResourceConflictException"
        | "ConflictException"
        | "OperationAbortedException"
        | "DeleteConflict" => ErrorKind::Conflict,
        "NoSuchEntity"
        | "NoSuchEntityException"
        | "ResourceNotFoundException"
        | "RepositoryNotFoundException"
        | "LifecyclePolicyNotFoundException"
        | "RepositoryPolicyNotFoundException"
        | "ImageNotFoundException"
        // GetProvisionedConcurrencyConfig of a qualifier without one.
        | "ProvisionedConcurrencyConfigNotFoundException"
        | "NotFoundException"
        | "NotFound"
        // Route 53's: a zone or change that does not exist.
        | "NoSuchHostedZone"
        | "NoSuchChange"
        // CloudWatch's (DeleteAlarms, ListTagsForResource of an alarm).
        | "ResourceNotFound" => ErrorKind::NotFound,
        "EntityAlreadyExists"
        | "EntityAlreadyExistsException"
        | "RepositoryAlreadyExistsException"
        | "ImageAlreadyExistsException"
        | "ResourceAlreadyExistsException" => ErrorKind::AlreadyExists,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnauthorizedException" => ErrorKind::AccessDenied,
        "ExpiredToken"
        | "ExpiredTokenException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch" => ErrorKind::Credentials,
        // Lambda has no dedicated code for a role, or a policy attached to
        // it, that IAM has not yet propagated; the message is the only
        // signal (last resort). With tracing Active, Lambda checks the
        // role's X-Ray permission ("Visualize Lambda function invocations
        // using AWS X-Ray", services-xray.html).
        "InvalidParameterValueException"
            if message.contains("cannot be assumed by Lambda")
                || message.contains("does not have permissions to call PutTraceSegments") =>
        {
            ErrorKind::RoleNotAssumable
        }
        _ => ErrorKind::Other,
    }
}

/// The error and its causes, each said once, without the `Debug` dump
/// that `DisplayErrorContext` appends (which, for missing credentials,
/// repeats every provider's answer a second time).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

/// Whether the SDK gave up before sending because it found no credentials.
fn is_missing_credentials<E, R>(err: &SdkError<E, R>) -> bool
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(cause) = source {
        if cause.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        // When no auth scheme has an identity, the orchestrator reports it
        // in its own private types, so their text is the last resort.
        let text = cause.to_string();
        if text.contains("credential") || text.contains("no identity") {
            return true;
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::http::Response as HttpResponse;

    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        let cases = [
            (
                "ThrottlingException",
                "",
                "UpdateFunctionCode",
                ErrorKind::Throttled,
            ),
            (
                "TooManyRequestsException",
                "",
                "Invoke",
                ErrorKind::Throttled,
            ),
            (
                "ResourceConflictException",
                "",
                "UpdateFunctionConfiguration",
                ErrorKind::Conflict,
            ),
            (
                "ResourceConflictException",
                "",
                "CreateFunction",
                ErrorKind::AlreadyExists,
            ),
            ("NoSuchEntity", "", "GetRole", ErrorKind::NotFound),
            (
                "ResourceNotFoundException",
                "",
                "GetFunction",
                ErrorKind::NotFound,
            ),
            (
                "RepositoryNotFoundException",
                "",
                "DescribeRepositories",
                ErrorKind::NotFound,
            ),
            (
                "ProvisionedConcurrencyConfigNotFoundException",
                "",
                "GetProvisionedConcurrencyConfig",
                ErrorKind::NotFound,
            ),
            (
                "EntityAlreadyExists",
                "",
                "CreateRole",
                ErrorKind::AlreadyExists,
            ),
            (
                "RepositoryAlreadyExistsException",
                "",
                "CreateRepository",
                ErrorKind::AlreadyExists,
            ),
            (
                "AccessDeniedException",
                "",
                "GetFunction",
                ErrorKind::AccessDenied,
            ),
            (
                "ExpiredTokenException",
                "",
                "GetRole",
                ErrorKind::Credentials,
            ),
            (
                "UnrecognizedClientException",
                "",
                "GetFunction",
                ErrorKind::Credentials,
            ),
            (
                "InvalidClientTokenId",
                "",
                "GetRole",
                ErrorKind::Credentials,
            ),
            (
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
                "CreateFunction",
                ErrorKind::RoleNotAssumable,
            ),
            (
                "InvalidParameterValueException",
                "The provided execution role does not have permissions to call PutTraceSegments on XRAY",
                "UpdateFunctionConfiguration",
                ErrorKind::RoleNotAssumable,
            ),
            ("DeleteConflict", "", "DeleteRole", ErrorKind::Conflict),
            (
                "InvalidParameterValueException",
                "MemorySize too big",
                "CreateFunction",
                ErrorKind::Other,
            ),
            ("NotFoundException", "", "GetRestApi", ErrorKind::NotFound),
            (
                "LimitExceededException",
                "",
                "CreateDeployment",
                ErrorKind::Throttled,
            ),
            (
                "ResourceAlreadyExistsException",
                "",
                "CreateLogGroup",
                ErrorKind::AlreadyExists,
            ),
            (
                "OperationAbortedException",
                "",
                "DeleteLogGroup",
                ErrorKind::Conflict,
            ),
            (
                "UnauthorizedException",
                "",
                "GetRestApis",
                ErrorKind::AccessDenied,
            ),
            ("SomethingElse", "", "GetFunction", ErrorKind::Other),
        ];
        for (code, message, operation, kind) in cases {
            assert_eq!(
                kind_of_code(code, message, operation),
                kind,
                "{code} on {operation}"
            );
        }
    }

    #[test]
    fn a_provider_without_credentials_is_a_credentials_error() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let cause = CredentialsError::not_loaded("no profile deployer-test");
        let err: SdkError<aws_sdk_lambda::operation::get_function::GetFunctionError, ()> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(cause), None));
        let err = aws_error("GetFunction", "f", err);
        assert_eq!(err.kind, ErrorKind::Credentials);
        assert!(err.message.contains("AWS_PROFILE"), "{}", err.message);
    }

    /// What Lambda answers a GetFunction of a function that is not there.
    fn function_not_found()
    -> SdkError<aws_sdk_lambda::operation::get_function::GetFunctionError, HttpResponse> {
        let service =
            aws_sdk_lambda::operation::get_function::GetFunctionError::ResourceNotFoundException(
                aws_sdk_lambda::types::error::ResourceNotFoundException::builder()
                    .message("Function not found: f")
                    .meta(
                        aws_sdk_lambda::error::ErrorMetadata::builder()
                            .code("ResourceNotFoundException")
                            .message("Function not found: f")
                            .build(),
                    )
                    .build(),
            );
        let raw = HttpResponse::new(
            404.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(service, raw)
    }

    #[test]
    fn a_service_error_keeps_code_message_and_resource() {
        let err = aws_error("GetFunction", "f", function_not_found());
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(err.resource, "f");
        assert!(
            err.message.contains("Function not found: f"),
            "{}",
            err.message
        );
        assert!(err.to_string().starts_with("GetFunction f: "), "{err}");
    }

    #[test]
    fn none_if_turns_only_the_named_kind_into_none() {
        let answer: Result<(), _> = Err(function_not_found());
        assert!(matches!(
            none_if(ErrorKind::NotFound, "GetFunction", "f", answer),
            Ok(None)
        ));
        let answer: Result<(), _> = Err(function_not_found());
        let err = none_if(ErrorKind::AlreadyExists, "GetFunction", "f", answer).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        let answer: Result<
            u8,
            SdkError<aws_sdk_lambda::operation::get_function::GetFunctionError, HttpResponse>,
        > = Ok(7);
        assert!(matches!(
            none_if(ErrorKind::NotFound, "GetFunction", "f", answer),
            Ok(Some(7))
        ));
    }
}
