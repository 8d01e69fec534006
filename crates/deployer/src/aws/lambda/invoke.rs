//! A synchronous invocation with the tail of the function's log, retried
//! (bounded) while Lambda says the function is not ready to run yet.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_smithy_runtime_api::client::result::SdkError;

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// The Invoke operation's action is lambda:InvokeFunction.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[call("Invoke", "lambda:InvokeFunction", Scope::Function)],
};

/// How many times an invoke is made when Lambda answers "not ready".
const INVOKE_ATTEMPTS: u32 = 5;

/// What an invocation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeResult {
    pub status_code: i32,
    /// `Unhandled` or `Handled` when the function failed.
    pub function_error: Option<String>,
    pub payload: String,
    /// The last 4 KB of the function's log, decoded.
    pub log_tail: Option<String>,
    pub executed_version: Option<String>,
}

/// Invokes the function synchronously with the tail of its log. When
/// Lambda answers that the function is not ready (see [`not_ready`]), waits
/// until it is `Active` and invokes again, at most [`INVOKE_ATTEMPTS`] times.
pub async fn invoke(
    client: &Client,
    function: &str,
    qualifier: Option<&str>,
    payload: &[u8],
) -> Result<InvokeResult, AwsError> {
    let resource = match qualifier {
        Some(q) => format!("{function}:{q}"),
        None => function.to_string(),
    };
    let mut attempt = 1;
    loop {
        match invoke_once(client, function, qualifier, payload).await {
            Ok(answer) => return Ok(answer),
            Err(err) if attempt < INVOKE_ATTEMPTS && not_ready(&err) => {
                attempt += 1;
                // The failed invoke started the restore of an Inactive
                // function; a Pending one becomes Active by itself.
                wait_until_ready(client, function, qualifier).await?;
                // `Active` may show a moment before invokes are served.
                tokio::time::sleep(Duration::from_millis(200) * attempt).await;
            }
            Err(err) => return Err(aws_error("Invoke", resource, err)),
        }
    }
}

/// Invokes an `Inactive` function (or version) once so that Lambda starts
/// restoring it: that invoke fails ("Lambda function states"), and while
/// the function is `Inactive` its code does not run, so the payload is
/// only what a race with the restore would see. Its "not ready" answer is
/// the expected one; any other failure is the caller's.
pub(super) async fn wake(
    client: &Client,
    function: &str,
    qualifier: Option<&str>,
) -> Result<(), AwsError> {
    match invoke_once(client, function, qualifier, b"{}").await {
        Ok(_) => Ok(()),
        Err(err) if not_ready(&err) => Ok(()),
        Err(err) => Err(aws_error(
            "Invoke",
            format!("{function}:{}", qualifier.unwrap_or("$LATEST")),
            err,
        )),
    }
}

/// Whether Invoke's error says "the function cannot run yet, wait for
/// `Active` and ask again" (Invoke API reference, Errors,
/// https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html):
/// `CodeArtifactUserPendingException` (409: an image function being
/// restored after it was `Inactive`, "Wait for the function's State to
/// become Active and try the request again"), `ResourceNotReadyException`
/// (502: "The function is inactive and its VPC connection is no longer
/// available. Wait for the VPC connection to reestablish and try again"),
/// and `ResourceConflictException` or any other 409 (a function or version
/// still `Pending`).
fn not_ready(err: &SdkError<InvokeError, HttpResponse>) -> bool {
    if let Some(service) = err.as_service_error()
        && (service.is_code_artifact_user_pending_exception()
            || service.is_resource_not_ready_exception()
            || service.is_resource_conflict_exception())
    {
        return true;
    }
    err.raw_response()
        .is_some_and(|raw| raw.status().as_u16() == 409)
}

type HttpResponse = aws_smithy_runtime_api::http::Response;

async fn invoke_once(
    client: &Client,
    function: &str,
    qualifier: Option<&str>,
    payload: &[u8],
) -> Result<InvokeResult, SdkError<InvokeError, HttpResponse>> {
    let answer = client
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .log_type(LogType::Tail)
        .payload(Blob::new(payload))
        .send()
        .await?;
    let log_tail = answer.log_result().and_then(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    });
    Ok(InvokeResult {
        status_code: answer.status_code(),
        function_error: answer.function_error().map(str::to_string),
        payload: answer
            .payload()
            .map(|blob| String::from_utf8_lossy(blob.as_ref()).into_owned())
            .unwrap_or_default(),
        log_tail,
        executed_version: answer.executed_version().map(str::to_string),
    })
}
