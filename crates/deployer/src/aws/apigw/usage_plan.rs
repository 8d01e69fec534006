//! With `api_key` auth: the API key callers send and the usage plan that
//! binds it to the stage with its throttle.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetApiKeys", "apigateway:GET", Scope::ApiCollections),
        call("CreateApiKey", "apigateway:POST", Scope::ApiCreation),
        call("DeleteApiKey", "apigateway:DELETE", Scope::ApiOwned),
        call("GetUsagePlans", "apigateway:GET", Scope::ApiCollections),
        call("CreateUsagePlan", "apigateway:POST", Scope::ApiCreation),
        call("UpdateUsagePlan", "apigateway:PATCH", Scope::ApiOwned),
        call("DeleteUsagePlan", "apigateway:DELETE", Scope::ApiOwned),
        call("GetUsagePlanKeys", "apigateway:GET", Scope::ApiOwned),
        call("CreateUsagePlanKey", "apigateway:POST", Scope::ApiOwned),
        // `up`'s public path check reads the key's value to call the URL.
        call("GetApiKey", "apigateway:GET", Scope::ApiOwned),
    ],
};

pub(super) async fn read_api_key(
    client: &Client,
    name: &str,
) -> Result<Option<ActualApiKey>, AwsError> {
    let mut keys = client
        .get_api_keys()
        .name_query(name)
        .limit(500)
        .into_paginator()
        .items()
        .send();
    while let Some(key) = keys
        .try_next()
        .await
        .map_err(|e| aws_error("GetApiKeys", name, e))?
    {
        // The name query matches prefixes; only the exact name is ours.
        if key.name() == Some(name) {
            return Ok(key.id().map(|id| ActualApiKey { id: id.to_string() }));
        }
    }
    Ok(None)
}

pub(super) async fn read_usage_plan(
    client: &Client,
    name: &str,
) -> Result<Option<ActualUsagePlan>, AwsError> {
    let mut plans = client
        .get_usage_plans()
        .limit(500)
        .into_paginator()
        .items()
        .send();
    let plan: UsagePlan = loop {
        match plans
            .try_next()
            .await
            .map_err(|e| aws_error("GetUsagePlans", name, e))?
        {
            Some(plan) if plan.name() == Some(name) => break plan,
            Some(_) => {}
            None => return Ok(None),
        }
    };
    let id = required(plan.id(), "GetUsagePlans", name)?;
    let keys = client
        .get_usage_plan_keys()
        .usage_plan_id(&id)
        .limit(500)
        .send()
        .await
        .map_err(|e| aws_error("GetUsagePlanKeys", name, e))?;
    Ok(Some(ActualUsagePlan {
        api_stages: plan
            .api_stages()
            .iter()
            .map(|s| {
                (
                    s.api_id().unwrap_or_default().to_string(),
                    s.stage().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        rate_limit: plan.throttle().map(|t| t.rate_limit()),
        burst_limit: plan.throttle().map(|t| t.burst_limit()),
        key_ids: keys
            .items()
            .iter()
            .filter_map(|k| k.id().map(str::to_string))
            .collect(),
        id,
    }))
}

pub(super) async fn create_api_key(
    client: &Client,
    name: &str,
    desired: &DesiredApi,
) -> Result<ActualApiKey, AwsError> {
    let out = client
        .create_api_key()
        .name(name)
        .enabled(true)
        .set_tags(Some(desired.tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| aws_error("CreateApiKey", name, e))?;
    Ok(ActualApiKey {
        id: required(out.id(), "CreateApiKey", name)?,
    })
}

pub(super) fn throttle(desired: &DesiredApi) -> ThrottleSettings {
    ThrottleSettings::builder()
        .rate_limit(desired.rate_limit)
        .burst_limit(desired.burst_limit)
        .build()
}

/// Creates the usage plan (covering the stage, with the key bound) or
/// makes the updates `action` names.
pub(super) async fn apply_usage_plan(
    client: &Client,
    desired: &DesiredApi,
    name: &str,
    api_id: &str,
    actual: Option<&ActualUsagePlan>,
    key: &ActualApiKey,
    action: &Action<UsagePlanField>,
) -> Result<(), AwsError> {
    let fields = match action {
        Action::Unchanged | Action::Delete => return Ok(()),
        Action::Create => BTreeSet::from([UsagePlanField::ApiKey]),
        Action::Update(fields) => fields.clone(),
    };
    let plan_id = match actual {
        Some(plan) => {
            let mut update = client.update_usage_plan().usage_plan_id(&plan.id);
            let mut patched = false;
            for field in &fields {
                match field {
                    UsagePlanField::ApiStages => {
                        patched = true;
                        update = update.patch_operations(patch(
                            Op::Add,
                            "/apiStages",
                            &format!("{api_id}:{}", desired.stage_name),
                        ));
                    }
                    UsagePlanField::Throttle => {
                        patched = true;
                        update = update
                            .patch_operations(patch(
                                Op::Replace,
                                "/throttle/rateLimit",
                                &desired.rate_limit.to_string(),
                            ))
                            .patch_operations(patch(
                                Op::Replace,
                                "/throttle/burstLimit",
                                &desired.burst_limit.to_string(),
                            ));
                    }
                    // Bound below, after the plan exists either way.
                    UsagePlanField::ApiKey => {}
                }
            }
            if patched {
                retry_while(&[ErrorKind::Throttled], QUOTA_RETRY, || async {
                    update
                        .clone()
                        .send()
                        .await
                        .map_err(|e| aws_error("UpdateUsagePlan", name, e))
                })
                .await?;
            }
            plan.id.clone()
        }
        None => {
            let out = client
                .create_usage_plan()
                .name(name)
                .api_stages(
                    ApiStage::builder()
                        .api_id(api_id)
                        .stage(&desired.stage_name)
                        .build(),
                )
                .throttle(throttle(desired))
                .set_tags(Some(desired.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| aws_error("CreateUsagePlan", name, e))?;
            required(out.id(), "CreateUsagePlan", name)?
        }
    };
    if fields.contains(&UsagePlanField::ApiKey) {
        let bound = client
            .create_usage_plan_key()
            .usage_plan_id(&plan_id)
            .key_id(&key.id)
            .key_type("API_KEY")
            .send()
            .await;
        if let Err(e) = bound {
            let e = aws_error("CreateUsagePlanKey", name, e);
            // Already bound (a concurrent run) is what we wanted.
            if !matches!(e.kind, ErrorKind::Conflict | ErrorKind::AlreadyExists) {
                return Err(e);
            }
        }
    }
    Ok(())
}

pub(super) async fn delete_usage_plan(
    client: &Client,
    plan: &ActualUsagePlan,
) -> Result<(), AwsError> {
    // A plan still bound to stages cannot be deleted.
    if !plan.api_stages.is_empty() {
        let mut update = client.update_usage_plan().usage_plan_id(&plan.id);
        for (api, stage) in &plan.api_stages {
            update =
                update.patch_operations(patch(Op::Remove, "/apiStages", &format!("{api}:{stage}")));
        }
        retry_while(&[ErrorKind::Throttled], QUOTA_RETRY, || async {
            delete_ignoring_missing(update.clone().send().await, "UpdateUsagePlan", &plan.id)
        })
        .await?;
    }
    delete_ignoring_missing(
        client
            .delete_usage_plan()
            .usage_plan_id(&plan.id)
            .send()
            .await,
        "DeleteUsagePlan",
        &plan.id,
    )
}

pub(super) async fn delete_api_key(client: &Client, id: &str) -> Result<(), AwsError> {
    delete_ignoring_missing(
        client.delete_api_key().api_key(id).send().await,
        "DeleteApiKey",
        id,
    )
}

/// The value of the API key named `name`, for a stage whose methods
/// require one: found by name (`GetApiKeys`, without values), then read
/// with its value (`GetApiKey`). `includeValues` on the collection would
/// read every key of the region, which no tag condition can narrow; the key
/// itself is readable only while it carries the stage's tags
/// (docs/iam-policy.md).
pub async fn api_key_value(client: &Client, name: &str) -> Result<Option<String>, AwsError> {
    let keys = client
        .get_api_keys()
        .name_query(name)
        .send()
        .await
        .map_err(|e| aws_error("GetApiKeys", name, e))?;
    let Some(id) = keys
        .items()
        .iter()
        .find(|k| k.name() == Some(name))
        .and_then(|k| k.id())
    else {
        return Ok(None);
    };
    let key = client
        .get_api_key()
        .api_key(id)
        .include_value(true)
        .send()
        .await
        .map_err(|e| aws_error("GetApiKey", name, e))?;
    Ok(key.value().map(str::to_string))
}
