//! Old published versions deleted, so that the images only they use can be
//! deleted too: every `up` publishes a version, Lambda keeps each one until
//! it is deleted, and the image clean-up keeps every image a version uses.
//!
//! Which versions go is a pure choice ([`versions_to_prune`]) over the
//! versions, how many to keep and the versions never to prune; the AWS
//! calls only gather that set and delete. Never pruned: a version an alias
//! points at (DeleteFunction refuses it: "Lambda function aliases"), one
//! with provisioned concurrency ("Configuring provisioned concurrency"),
//! and whatever the caller adds (the last version that passed its checks).
//! `$LATEST` is not a published version and is never deleted here.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call(
            "ListVersionsByFunction",
            "lambda:ListVersionsByFunction",
            Scope::Function,
        ),
        call("ListAliases", "lambda:ListAliases", Scope::Function),
        call(
            "ListProvisionedConcurrencyConfigs",
            "lambda:ListProvisionedConcurrencyConfigs",
            Scope::Function,
        ),
        call("DeleteFunction", "lambda:DeleteFunction", Scope::Function),
    ],
};

/// The published versions to delete: all but the `keep` newest (by
/// number), and of those none in `never`. A version that is not a number is
/// kept: it cannot be ordered.
pub fn versions_to_prune(versions: &[String], keep: u32, never: &BTreeSet<String>) -> Vec<String> {
    let mut numbered: Vec<(u64, &String)> = versions
        .iter()
        .filter_map(|v| v.parse::<u64>().ok().map(|n| (n, v)))
        .collect();
    numbered.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    numbered
        .into_iter()
        .skip(usize::try_from(keep).unwrap_or(usize::MAX))
        .map(|(_, v)| v)
        .filter(|v| !never.contains(*v))
        .cloned()
        .collect()
}

/// Deletes the function's published versions beyond the newest `keep`,
/// never one in `never`, one an alias points at or one with provisioned
/// concurrency. Returns the versions deleted. Any error while finding what
/// must be kept stops before anything is deleted.
pub async fn prune_versions(
    client: &Client,
    function: &str,
    keep: u32,
    never: &BTreeSet<String>,
) -> Result<Vec<String>, AwsError> {
    let versions: Vec<String> = list_versions(client, function)
        .await?
        .into_iter()
        .map(|v| v.version)
        .collect();
    if versions.len() <= usize::try_from(keep).unwrap_or(usize::MAX) {
        return Ok(Vec::new());
    }
    let mut kept = never.clone();
    kept.extend(alias_versions(client, function).await?);
    kept.extend(provisioned_versions(client, function).await?);
    // `rollback`'s default target: the newest version that passed its checks.
    if let Some(last) = super::function::passed_versions(client, function)
        .await?
        .last()
    {
        kept.insert(last.to_string());
    }
    let mut deleted = Vec::new();
    for version in versions_to_prune(&versions, keep, &kept) {
        let answer = client
            .delete_function()
            .function_name(function)
            .qualifier(&version)
            .send()
            .await;
        let resource = format!("{function}:{version}");
        // Gone already (another run pruned it) is what was wanted.
        if none_if(ErrorKind::NotFound, "DeleteFunction", resource, answer)?.is_some() {
            deleted.push(version);
        }
    }
    Ok(deleted)
}

/// The versions the function's aliases point at (each alias's main
/// version and any weighted second one).
async fn alias_versions(client: &Client, function: &str) -> Result<BTreeSet<String>, AwsError> {
    let aliases: Vec<_> = client
        .list_aliases()
        .function_name(function)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|err| aws_error("ListAliases", function, err))?;
    let mut versions = BTreeSet::new();
    for alias in &aliases {
        versions.extend(alias.function_version().map(str::to_string));
        if let Some(weights) = alias
            .routing_config()
            .and_then(|r| r.additional_version_weights())
        {
            versions.extend(weights.keys().cloned());
        }
    }
    Ok(versions)
}

/// The versions with provisioned concurrency allocated on the version
/// itself; one allocated on an alias is on the alias's version, which
/// [`alias_versions`] keeps.
async fn provisioned_versions(
    client: &Client,
    function: &str,
) -> Result<BTreeSet<String>, AwsError> {
    let configs: Vec<_> = client
        .list_provisioned_concurrency_configs()
        .function_name(function)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|err| aws_error("ListProvisionedConcurrencyConfigs", function, err))?;
    // The qualifier is the ARN's last part: a version number or an alias.
    Ok(configs
        .iter()
        .filter_map(|config| config.function_arn()?.rsplit(':').next())
        .filter(|qualifier| qualifier.parse::<u64>().is_ok())
        .map(str::to_string)
        .collect())
}
