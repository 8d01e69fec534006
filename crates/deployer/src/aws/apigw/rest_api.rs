//! The REST API itself: found by name and tags (read), created regional
//! with its tags, switched to regional, tagged, and deleted with its key
//! and usage plan.
//!
//! A name proves nothing: API Gateway lets any number of REST APIs share
//! one, and another team's may carry ours. Only an API with the stage's
//! tags is the stage's. One with the name and without the tags is read (so
//! that [`ActualApi::is_ours`] can stop `up` and `plan`, naming it) but
//! never changed, adopted or deleted.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetRestApis", "apigateway:GET", Scope::ApiCollections),
        call("CreateRestApi", "apigateway:POST", Scope::ApiCreation),
        call("GetRestApi", "apigateway:GET", Scope::ApiOwned),
        call("UpdateRestApi", "apigateway:PATCH", Scope::ApiOwned),
        call("DeleteRestApi", "apigateway:DELETE", Scope::ApiOwned),
    ],
};

/// Reads everything of the stage's API; `None` when there is no REST API
/// of that name.
pub async fn read_api(
    client: &Client,
    desired: &DesiredApi,
) -> Result<Option<ActualApi>, AwsError> {
    let found = find_rest_apis(client, &desired.name, &desired.tags).await?;
    let Some((chosen, others)) = found.split_first() else {
        return Ok(None);
    };
    // Sorted ours first: when `chosen` is not ours, none is, and the plan
    // check stops on it. Other untagged ones are not duplicates of ours.
    let duplicates: Vec<&RestApi> = others
        .iter()
        .filter(|api| has_tags(api.tags(), &desired.tags))
        .collect();
    let id = required(chosen.id(), "GetRestApis", &desired.name)?;
    let regional = chosen
        .endpoint_configuration()
        .is_some_and(|c| c.types() == [EndpointType::Regional]);

    let (root_id, resource, stale_resources) = read_resources(client, &id, &desired.path).await?;
    let stage = read_stage(client, &id, &desired.stage_name).await?;
    let gateway_responses = read_gateway_responses(client, &id).await?;
    // Read whatever the auth: with auth none, a key or plan left from
    // api_key auth is found this way so that it can be removed.
    let api_key = read_api_key(client, &desired.name).await?;
    let usage_plan = read_usage_plan(client, &desired.name).await?;
    Ok(Some(ActualApi {
        id,
        regional,
        tags: to_btree(chosen.tags()),
        duplicates: duplicates
            .iter()
            .filter_map(|api| api.id().map(str::to_string))
            .collect(),
        root_id,
        resource,
        stale_resources,
        stage,
        gateway_responses,
        api_key,
        usage_plan,
    }))
}

impl ActualApi {
    /// Whether the API carries every tag of the stage (`deployer:app`,
    /// `deployer:stage`): only then is it the stage's to change.
    pub fn is_ours(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.iter().all(|(k, v)| self.tags.get(k) == Some(v))
    }
}

/// Every REST API named `name`, best first: carrying our tags, then oldest.
pub(super) async fn find_rest_apis(
    client: &Client,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<RestApi>, AwsError> {
    let mut found = all_rest_apis(client, name).await?;
    found.retain(|api| api.name() == Some(name));
    found.sort_by_key(|api| {
        let ours = has_tags(api.tags(), tags);
        let created = api.created_date().map(|d| (d.secs(), d.subsec_nanos()));
        (!ours, created)
    });
    Ok(found)
}

pub(super) fn has_tags(
    actual: Option<&HashMap<String, String>>,
    wanted: &BTreeMap<String, String>,
) -> bool {
    wanted
        .iter()
        .all(|(k, v)| actual.and_then(|a| a.get(k)) == Some(v))
}

pub(super) fn to_btree(map: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Creates the REST API; returns its id and its root resource's id.
pub(super) async fn create_rest_api(
    client: &Client,
    desired: &DesiredApi,
) -> Result<(String, String), AwsError> {
    let out = client
        .create_rest_api()
        .name(&desired.name)
        .endpoint_configuration(
            EndpointConfiguration::builder()
                .types(EndpointType::Regional)
                .build(),
        )
        .set_tags(Some(desired.tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| aws_error("CreateRestApi", &desired.name, e))?;
    let id = required(out.id(), "CreateRestApi", &desired.name)?;
    let root_id = match out.root_resource_id() {
        Some(root) => root.to_string(),
        None => read_resources(client, &id, &desired.path).await?.0,
    };
    Ok((id, root_id))
}

pub(super) async fn update_rest_api(
    client: &Client,
    desired: &DesiredApi,
    actual: &ActualApi,
    fields: &BTreeSet<RestApiField>,
) -> Result<(), AwsError> {
    for field in fields {
        match field {
            RestApiField::EndpointType => make_regional(client, desired, actual).await?,
            RestApiField::Tags => {
                tag(
                    client,
                    &desired.names.rest_api_arn(&actual.id),
                    &desired.tags,
                )
                .await?
            }
        }
    }
    Ok(())
}

/// Switches an edge-optimized (or private) REST API to regional.
pub(super) async fn make_regional(
    client: &Client,
    desired: &DesiredApi,
    actual: &ActualApi,
) -> Result<(), AwsError> {
    {
        let current = client
            .get_rest_api()
            .rest_api_id(&actual.id)
            .send()
            .await
            .map_err(|e| aws_error("GetRestApi", &desired.name, e))?;
        let from = current
            .endpoint_configuration()
            .and_then(|c| c.types().first())
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "EDGE".into());
        client
            .update_rest_api()
            .rest_api_id(&actual.id)
            .patch_operations(patch(
                Op::Replace,
                &format!("/endpointConfiguration/types/{from}"),
                "REGIONAL",
            ))
            .send()
            .await
            .map_err(|e| aws_error("UpdateRestApi", &desired.name, e))?;
    }
    Ok(())
}

/// Removes the stage's REST API (every one of that name carrying the
/// stage's tags), its API key and its usage plan. Missing parts are
/// already gone, so a second run is fine.
pub async fn delete_api(
    client: &Client,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    if let Some(plan) = read_usage_plan(client, name).await? {
        delete_usage_plan(client, &plan).await?;
    }
    if let Some(key) = read_api_key(client, name).await? {
        delete_api_key(client, &key.id).await?;
    }
    for api in find_rest_apis(client, name, tags).await? {
        if !has_tags(api.tags(), tags) {
            continue;
        }
        let Some(id) = api.id() else { continue };
        retry_while(&[ErrorKind::Throttled], QUOTA_RETRY, || async {
            delete_ignoring_missing(
                client.delete_rest_api().rest_api_id(id).send().await,
                "DeleteRestApi",
                id,
            )
        })
        .await?;
    }
    Ok(())
}

/// The REST APIs tagged as `app`'s, by their `deployer:stage` tag (the
/// oldest of a stage's, as [`find_rest_apis`] prefers): `deployer stages`
/// finds every stage's URL with this one listing, which needs no access
/// to the APIs themselves.
pub async fn app_apis(client: &Client, app: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut apis = all_rest_apis(client, app).await?;
    apis.sort_by_key(|api| api.created_date().map(|d| (d.secs(), d.subsec_nanos())));
    let mut by_stage = BTreeMap::new();
    for api in apis {
        let tags = to_btree(api.tags());
        if let (Some(tag_app), Some(stage), Some(id)) = (
            tags.get(crate::names::TAG_APP),
            tags.get(crate::names::TAG_STAGE),
            api.id(),
        ) && tag_app == app
        {
            by_stage
                .entry(stage.clone())
                .or_insert_with(|| id.to_string());
        }
    }
    Ok(by_stage)
}

/// Every REST API of the account in the region (GetRestApis, every page);
/// `what` names what they are read for, in an error.
async fn all_rest_apis(client: &Client, what: &str) -> Result<Vec<RestApi>, AwsError> {
    client
        .get_rest_apis()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error("GetRestApis", what, e))
}
