//! A synchronous invocation with the tail of the function's log.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// The Invoke operation's action is lambda:InvokeFunction.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[call("Invoke", "lambda:InvokeFunction", Scope::Function)],
};

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

/// Invokes the function synchronously with the tail of its log.
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
    let answer = client
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .log_type(LogType::Tail)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|err| aws_error("Invoke", resource, err))?;
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
