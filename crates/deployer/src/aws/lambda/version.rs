//! Published versions: listed, the newest compared with `$LATEST`, and a
//! new one published.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("PublishVersion", "lambda:PublishVersion", Scope::Function),
        call(
            "ListVersionsByFunction",
            "lambda:ListVersionsByFunction",
            Scope::Function,
        ),
    ],
};

/// A published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: String,
    pub arn: String,
    pub description: String,
    pub last_modified: String,
}

/// Publishes `$LATEST` as a new version when `changed` (the function was
/// just created or updated) or when no published version has what
/// `$LATEST` has; otherwise returns that version. The outcome is `Created`
/// when a version was published.
pub async fn publish_version(
    client: &Client,
    name: &str,
    changed: bool,
) -> Result<(Outcome, String), AwsError> {
    if !changed && let Some(version) = version_matching_latest(client, name).await? {
        return Ok((Outcome::Unchanged, version));
    }
    Ok((Outcome::Created, publish(client, name).await?))
}

/// Publishes `$LATEST` as a new version; returns its number. Whether one
/// is needed is the plan's decision, not this call's.
pub async fn publish(client: &Client, name: &str) -> Result<String, AwsError> {
    let published = retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
        client
            .publish_version()
            .function_name(name)
            .send()
            .await
            .map_err(|err| aws_error("PublishVersion", name, err))
    })
    .await?;
    let version = published
        .version()
        .filter(|v| *v != "$LATEST")
        .ok_or_else(|| {
            AwsError::invalid_answer("PublishVersion", name, "the answer has no version number")
        })?;
    Ok(version.to_string())
}

/// The newest published version, if its image and configuration are
/// those of `$LATEST`.
pub async fn version_matching_latest(
    client: &Client,
    name: &str,
) -> Result<Option<String>, AwsError> {
    let (latest, newest) = tokio::try_join!(
        read_function(client, name, None),
        read_newest_version(client, name),
    )?;
    Ok(match (latest, newest) {
        (Some(latest), Some(newest)) if same_code_and_configuration(&latest, &newest) => {
            Some(newest.version)
        }
        _ => None,
    })
}

/// The newest published version as Lambda has it; `None` when there is
/// none (or no function).
pub async fn read_newest_version(
    client: &Client,
    name: &str,
) -> Result<Option<ActualFunction>, AwsError> {
    let Some(newest) = list_versions(client, name).await?.pop() else {
        return Ok(None);
    };
    read_function(client, name, Some(&newest.version)).await
}

/// Whether a published version runs what `$LATEST` runs, as it is
/// configured: publishing `$LATEST` again would add nothing.
pub fn same_code_and_configuration(latest: &ActualFunction, published: &ActualFunction) -> bool {
    latest.image_uri == published.image_uri
        && latest.architecture == published.architecture
        && latest.memory_mb == published.memory_mb
        && latest.timeout_s == published.timeout_s
        && latest.environment == published.environment
        && latest.tracing == published.tracing
        && latest.role_arn == published.role_arn
}

/// The published versions (not `$LATEST`), oldest first; a function that
/// does not exist has none (Lambda answers ListVersionsByFunction of a
/// missing function with 404 ResourceNotFoundException, API reference).
pub async fn list_versions(client: &Client, name: &str) -> Result<Vec<VersionInfo>, AwsError> {
    let answer = client
        .list_versions_by_function()
        .function_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    let Some(answer) = none_if(ErrorKind::NotFound, "ListVersionsByFunction", name, answer)? else {
        return Ok(Vec::new());
    };
    let mut versions: Vec<VersionInfo> = answer
        .iter()
        .filter(|v| v.version().is_some_and(|n| n != "$LATEST"))
        .map(|v| VersionInfo {
            version: v.version().unwrap_or_default().to_string(),
            arn: v.function_arn().unwrap_or_default().to_string(),
            description: v.description().unwrap_or_default().to_string(),
            last_modified: v.last_modified().unwrap_or_default().to_string(),
        })
        .collect();
    versions.sort_by_key(|v| v.version.parse::<u64>().unwrap_or(0));
    Ok(versions)
}
