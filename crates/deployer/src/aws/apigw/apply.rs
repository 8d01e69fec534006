//! Carrying out an [`ApiPlan`] in its order.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[call("DeleteResource", "apigateway:DELETE", Scope::ApiOwned)],
};

/// Carries out `plan` on the API `actual` was read as, in its order:
/// changes only what the plan names and redeploys only when it says so.
/// `Created` when the REST API was created, `Updated` when anything else
/// changed.
pub async fn apply_api(
    client: &Client,
    desired: &DesiredApi,
    actual: Option<&ActualApi>,
    plan: &ApiPlan,
) -> Result<(Outcome, ApiInfo), AwsError> {
    let (api_id, root_id) = match (&plan.rest_api, actual) {
        (Action::Update(fields), Some(api)) => {
            update_rest_api(client, desired, api, fields).await?;
            (api.id.clone(), api.root_id.clone())
        }
        (Action::Unchanged | Action::Delete, Some(api)) => (api.id.clone(), api.root_id.clone()),
        (Action::Create | Action::Update(_) | Action::Unchanged | Action::Delete, _) => {
            create_rest_api(client, desired).await?
        }
    };

    for stale in &plan.stale_resources {
        delete_ignoring_missing(
            client
                .delete_resource()
                .rest_api_id(&api_id)
                .resource_id(&stale.id)
                .send()
                .await,
            "DeleteResource",
            &stale.path,
        )?;
    }
    let existing = actual.and_then(|a| a.resource.as_ref());
    let resource_id = match (&plan.resource, existing) {
        (Action::Unchanged | Action::Update(_) | Action::Delete, Some(r)) => r.id.clone(),
        (Action::Create | Action::Unchanged | Action::Update(_) | Action::Delete, _) => {
            create_resource(client, &api_id, &root_id, &desired.path).await?
        }
    };

    for (name, action) in &plan.methods {
        match (action, desired.methods.get(name)) {
            (Action::Unchanged, _) => {}
            (Action::Delete, _) | (Action::Create | Action::Update(_), None) => {
                delete_method(client, &api_id, &resource_id, name).await?
            }
            (Action::Create, Some(shape)) => {
                put_method(client, &api_id, &resource_id, name, shape).await?
            }
            (Action::Update(fields), Some(shape)) => {
                for field in fields {
                    match field {
                        // Replacing the whole method is the one way that
                        // works for every part of it (PutMethod and
                        // PutMethodResponse refuse to overwrite); callers
                        // see nothing until the redeploy.
                        MethodField::Authorization
                        | MethodField::ApiKeyRequired
                        | MethodField::IntegrationType
                        | MethodField::IntegrationHttpMethod
                        | MethodField::IntegrationUri
                        | MethodField::RequestTemplate
                        | MethodField::ResponseStatus
                        | MethodField::CorsHeaders
                        | MethodField::MethodResponseHeaders => {}
                    }
                }
                delete_method(client, &api_id, &resource_id, name).await?;
                put_method(client, &api_id, &resource_id, name, shape).await?;
            }
        }
    }
    for (kind, action) in &plan.gateway_responses {
        let headers = desired.gateway_responses.get(kind);
        match (action, headers) {
            (Action::Unchanged, _) | (_, None) => {}
            (Action::Update(fields), Some(headers)) => {
                for field in fields {
                    match field {
                        GatewayResponseField::CorsHeaders => {}
                    }
                }
                put_gateway_response(client, &api_id, kind, headers).await?
            }
            (Action::Create, Some(headers)) => {
                put_gateway_response(client, &api_id, kind, headers).await?
            }
            (Action::Delete, Some(_)) => delete_gateway_response(client, &api_id, kind).await?,
        }
    }

    let stage_exists = actual.and_then(|a| a.stage.as_ref()).is_some();
    let deployment_id = match plan.deployment {
        Action::Create => Some(
            deploy(
                client,
                &api_id,
                desired,
                stage_exists,
                &desired.fingerprint(),
            )
            .await?,
        ),
        Action::Unchanged | Action::Update(_) | Action::Delete => None,
    };
    match &plan.stage {
        Action::Unchanged => {}
        // The stage was created by the deployment, with API Gateway's
        // default settings (its tags set on create).
        Action::Create => {
            let fields = BTreeSet::from([StageField::Throttling, StageField::Tracing]);
            update_stage_settings(client, &api_id, desired, &fields).await?
        }
        Action::Update(fields) => update_stage_settings(client, &api_id, desired, fields).await?,
        Action::Delete => delete_stage(client, &api_id, &desired.stage_name).await?,
    }

    // A usage plan goes before its key, and the key before a new plan.
    if let (Action::Delete, Some(usage_plan)) =
        (&plan.usage_plan, actual.and_then(|a| a.usage_plan.as_ref()))
    {
        delete_usage_plan(client, usage_plan).await?;
    }
    let key = actual.and_then(|a| a.api_key.clone());
    let key = match (&plan.api_key, &desired.api_key_name, key) {
        (Action::Delete, _, Some(key)) => {
            delete_api_key(client, &key.id).await?;
            None
        }
        (Action::Create, Some(name), _) | (Action::Update(_), Some(name), None) => {
            Some(create_api_key(client, name, desired).await?)
        }
        (_, _, key) => key,
    };
    if let (Action::Create | Action::Update(_), Some(name), Some(key)) =
        (&plan.usage_plan, &desired.api_key_name, &key)
    {
        let usage_plan = actual.and_then(|a| a.usage_plan.as_ref());
        apply_usage_plan(
            client,
            desired,
            name,
            &api_id,
            usage_plan,
            key,
            &plan.usage_plan,
        )
        .await?;
    }

    let outcome = if plan.rest_api == Action::Create || actual.is_none() {
        Outcome::Created
    } else if plan.is_change() {
        Outcome::Updated
    } else {
        Outcome::Unchanged
    };
    Ok((
        outcome,
        ApiInfo {
            url: desired.names.invoke_url(&api_id),
            api_id,
            deployment_id,
            duplicates: actual.map(|a| a.duplicates.clone()).unwrap_or_default(),
            api_key_id: key.map(|k| k.id),
        },
    ))
}
