//! STS: whose credentials the deployer runs with. The account it answers
//! is what every ARN of a stage needs ([`crate::names::Names`]).

use super::errors::{AwsError, ErrorKind, aws_error};
use super::permissions::{Declared, needs_nothing};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// GetCallerIdentity needs no permission: "No permissions are required to
// perform this operation" (GetCallerIdentity, STS API reference).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[needs_nothing("GetCallerIdentity")],
};

/// The account of the caller's credentials.
pub async fn caller_account(sts: &aws_sdk_sts::Client) -> Result<String, AwsError> {
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| aws_error("GetCallerIdentity", "caller", e))?;
    identity
        .account()
        .map(str::to_string)
        .ok_or_else(|| AwsError {
            operation: "GetCallerIdentity",
            resource: "caller".into(),
            message: "the answer holds no account".into(),
            kind: ErrorKind::Other,
        })
}
