//! What a stage holds in the local AWS, read with the SDK, for the
//! reliability tests (faults, concurrency): a [`Snapshot`] leaves out names
//! and ids, so one run's result compares equal with another's.

use super::*;

/// Whether the stage's lock log group exists.
pub async fn lock_exists(group: &str) -> bool {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config().await);
    logs.describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .unwrap()
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(group))
}

/// What the `local` stage of an app holds, without its names and ids, so
/// that two apps deployed alike give equal snapshots.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub rest_apis: usize,
    pub predict_methods: Vec<String>,
    /// GET and POST call the alias through a proxy integration.
    pub integrations_call_the_alias: bool,
    pub stage_deployed: bool,
    pub roles: usize,
    pub attached_policies: Vec<String>,
    pub inline_policies: usize,
    pub repositories: usize,
    /// The function's image is by digest, the digest the registry serves
    /// for the image's tag.
    pub image_by_served_digest: bool,
    pub published_versions: usize,
    /// The alias points at a published version whose image is the
    /// function's.
    pub alias_on_current_version: bool,
    /// The permission lets exactly this API call the alias.
    pub permission_scoped_to_the_api: bool,
    pub lock_held: bool,
}

/// The snapshot of `app`'s local stage, whose image `up` tagged `tag`.
pub async fn snapshot(app: &str, tag: &str) -> Snapshot {
    let config = sdk_config().await;
    let function = format!("{app}-local");

    let apigw = aws_sdk_apigateway::Client::new(&config);
    let apis = apigw.get_rest_apis().limit(500).send().await.unwrap();
    let ours: Vec<String> = apis
        .items()
        .iter()
        .filter(|a| a.name() == Some(function.as_str()))
        .filter_map(|a| a.id().map(str::to_string))
        .collect();
    let mut predict_methods = Vec::new();
    let mut integrations_call_the_alias = false;
    let mut stage_deployed = false;
    if let [api_id] = ours.as_slice() {
        let resources = apigw
            .get_resources()
            .rest_api_id(api_id)
            .embed("methods")
            .send()
            .await
            .unwrap();
        if let Some(predict) = resources
            .items()
            .iter()
            .find(|r| r.path() == Some("/predict"))
        {
            predict_methods = predict
                .resource_methods()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            predict_methods.sort();
            integrations_call_the_alias = true;
            for method in ["GET", "POST"] {
                let uri = apigw
                    .get_integration()
                    .rest_api_id(api_id)
                    .resource_id(predict.id().unwrap())
                    .http_method(method)
                    .send()
                    .await
                    .ok()
                    .and_then(|i| i.uri().map(str::to_string))
                    .unwrap_or_default();
                integrations_call_the_alias &=
                    uri.ends_with(&format!("function:{function}:local/invocations"));
            }
        }
        stage_deployed = apigw
            .get_stage()
            .rest_api_id(api_id)
            .stage_name("local")
            .send()
            .await
            .ok()
            .and_then(|s| s.deployment_id().map(str::to_string))
            .is_some();
    }

    let iam = aws_sdk_iam::Client::new(&config);
    let roles = iam
        .list_roles()
        .max_items(1000)
        .send()
        .await
        .unwrap()
        .roles()
        .iter()
        .filter(|r| r.role_name().starts_with(app))
        .count();
    let role_name = format!("{function}-exec");
    let mut attached_policies: Vec<String> = iam
        .list_attached_role_policies()
        .role_name(&role_name)
        .send()
        .await
        .map(|a| {
            a.attached_policies()
                .iter()
                .filter_map(|p| p.policy_name().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    attached_policies.sort();
    let inline_policies = iam
        .list_role_policies()
        .role_name(&role_name)
        .send()
        .await
        .map(|p| p.policy_names().len())
        .unwrap_or(0);

    let ecr = aws_sdk_ecr::Client::new(&config);
    let repos = ecr
        .describe_repositories()
        .max_results(1000)
        .send()
        .await
        .unwrap();
    let repositories = repos
        .repositories()
        .iter()
        .filter(|r| r.repository_name() == Some(app))
        .count();

    let lambda = aws_sdk_lambda::Client::new(&config);
    let image_uri = lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .ok()
        .and_then(|f| f.code().and_then(|c| c.image_uri()).map(str::to_string));
    let image_by_served_digest = match image_uri.as_deref().and_then(|u| u.split_once('@')) {
        Some((repo_uri, digest)) => served_digest(repo_uri, tag).await.as_deref() == Some(digest),
        None => false,
    };
    let versions = lambda
        .list_versions_by_function()
        .function_name(&function)
        .send()
        .await
        .map(|v| v.versions().to_vec())
        .unwrap_or_default();
    let published: Vec<_> = versions
        .iter()
        .filter(|v| v.version() != Some("$LATEST"))
        .collect();
    let alias_version = lambda
        .get_alias()
        .function_name(&function)
        .name("local")
        .send()
        .await
        .ok()
        .and_then(|a| a.function_version().map(str::to_string));
    let alias_on_current_version = match &alias_version {
        Some(version) if version != "$LATEST" => {
            let of_version = lambda
                .get_function()
                .function_name(&function)
                .qualifier(version)
                .send()
                .await
                .ok()
                .and_then(|f| f.code().and_then(|c| c.image_uri()).map(str::to_string));
            of_version.is_some() && of_version == image_uri
        }
        _ => false,
    };
    let permission_scoped_to_the_api = match ours.as_slice() {
        [api_id] => lambda
            .get_policy()
            .function_name(&function)
            .qualifier("local")
            .send()
            .await
            .ok()
            .and_then(|p| p.policy().map(str::to_string))
            .is_some_and(|p| p.contains(&format!(":{api_id}/"))),
        _ => false,
    };

    Snapshot {
        rest_apis: ours.len(),
        predict_methods,
        integrations_call_the_alias,
        stage_deployed,
        roles,
        attached_policies,
        inline_policies,
        repositories,
        image_by_served_digest,
        published_versions: published.len(),
        alias_on_current_version,
        permission_scoped_to_the_api,
        lock_held: lock_exists(&lock_group(app, "local")).await,
    }
}

/// The digest the registry serves for `repo_uri:tag`.
async fn served_digest(repo_uri: &str, tag: &str) -> Option<String> {
    docker()
        .inspect_registry_image(&format!("{repo_uri}:{tag}"), None)
        .await
        .ok()
        .and_then(|info| info.descriptor.digest)
}
