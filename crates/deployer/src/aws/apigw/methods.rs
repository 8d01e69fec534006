//! The `/{path}` resource and its methods with their integrations: read
//! back into a [`MethodShape`], put, and replaced whole.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetResources", "apigateway:GET", Scope::ApiOwned),
        call("CreateResource", "apigateway:POST", Scope::ApiOwned),
        call("GetMethod", "apigateway:GET", Scope::ApiOwned),
        call("PutMethod", "apigateway:PUT", Scope::ApiOwned),
        call("PutMethodResponse", "apigateway:PUT", Scope::ApiOwned),
        call("PutIntegration", "apigateway:PUT", Scope::ApiOwned),
        call("PutIntegrationResponse", "apigateway:PUT", Scope::ApiOwned),
        call("DeleteMethod", "apigateway:DELETE", Scope::ApiOwned),
    ],
};

/// The root's id, the `/{path}` resource and the other resources under
/// the root.
pub(super) async fn read_resources(
    client: &Client,
    api_id: &str,
    path: &str,
) -> Result<(String, Option<ActualResource>, Vec<ActualResource>), AwsError> {
    let resources = client
        .get_resources()
        .rest_api_id(api_id)
        .embed("methods")
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error("GetResources", api_id, e))?;
    let root_id = resources
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id())
        .map(str::to_string)
        .ok_or_else(|| AwsError {
            operation: "GetResources",
            resource: api_id.to_string(),
            message: "the REST API has no root resource".into(),
            kind: ErrorKind::Other,
        })?;
    let wanted = format!("/{path}");
    let mut ours = None;
    let mut stale = Vec::new();
    for resource in resources
        .iter()
        .filter(|r| r.parent_id() == Some(root_id.as_str()))
    {
        let id = required(resource.id(), "GetResources", api_id)?;
        let resource_path = resource.path().unwrap_or_default().to_string();
        let mut methods = BTreeMap::new();
        if resource_path == wanted {
            let names: Vec<String> = resource
                .resource_methods()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for name in names {
                if let Some(method) = read_method(client, api_id, &id, &name).await? {
                    methods.insert(name, shape_of(&method));
                }
            }
        }
        let actual = ActualResource {
            id,
            path: resource_path,
            methods,
        };
        if actual.path == wanted {
            ours = Some(actual);
        } else {
            stale.push(actual);
        }
    }
    Ok((root_id, ours, stale))
}

pub(super) async fn read_method(
    client: &Client,
    api_id: &str,
    resource_id: &str,
    http_method: &str,
) -> Result<Option<Method>, AwsError> {
    let answer = client
        .get_method()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method(http_method)
        .send()
        .await;
    let resource = format!("{api_id} {http_method}");
    Ok(
        none_if(ErrorKind::NotFound, "GetMethod", resource, answer)?.map(|out| {
            Method::builder()
                .set_http_method(out.http_method().map(str::to_string))
                .set_authorization_type(out.authorization_type().map(str::to_string))
                .set_api_key_required(out.api_key_required())
                .set_method_integration(out.method_integration().cloned())
                .set_method_responses(out.method_responses().cloned())
                .build()
        }),
    )
}

/// The shape of a method as API Gateway holds it.
pub(super) fn shape_of(method: &Method) -> MethodShape {
    let integration = method.method_integration();
    let integration_type = integration
        .and_then(|i| i.r#type())
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let proxy = integration_type == IntegrationType::AwsProxy.as_str();
    let mock = integration_type == IntegrationType::Mock.as_str();
    let mut shape = MethodShape {
        authorization_type: method.authorization_type().unwrap_or("NONE").to_string(),
        api_key_required: method.api_key_required().unwrap_or(false),
        integration_type,
        integration_http_method: None,
        uri: None,
        request_template: None,
        response_status: None,
        response_headers: BTreeMap::new(),
        declared_headers: BTreeSet::new(),
    };
    if proxy {
        shape.integration_http_method = integration
            .and_then(|i| i.http_method())
            .map(str::to_string);
        shape.uri = integration.and_then(|i| i.uri()).map(str::to_string);
    }
    if mock {
        shape.request_template = integration
            .and_then(|i| i.request_templates())
            .and_then(|t| t.get("application/json"))
            .cloned();
        // The deployer writes one integration response; take the lowest
        // status if someone added more.
        let responses: BTreeMap<_, _> = integration
            .and_then(|i| i.integration_responses())
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        if let Some((status, response)) = responses.into_iter().next() {
            shape.response_status = Some(status.clone());
            shape.response_headers = response
                .response_parameters()
                .map(|params| {
                    params
                        .iter()
                        .filter_map(|(k, v)| {
                            let name = k.strip_prefix("method.response.header.")?;
                            Some((name.to_string(), v.trim_matches('\'').to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            shape.declared_headers = method
                .method_responses()
                .and_then(|m| m.get(status))
                .and_then(|r| r.response_parameters())
                .map(|params| {
                    params
                        .keys()
                        .filter_map(|k| k.strip_prefix("method.response.header."))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
        }
    }
    shape
}

pub(super) async fn create_resource(
    client: &Client,
    api_id: &str,
    root_id: &str,
    path: &str,
) -> Result<String, AwsError> {
    let out = client
        .create_resource()
        .rest_api_id(api_id)
        .parent_id(root_id)
        .path_part(path)
        .send()
        .await
        .map_err(|e| aws_error("CreateResource", format!("{api_id} /{path}"), e))?;
    required(out.id(), "CreateResource", &format!("{api_id} /{path}"))
}

/// Creates a method with its integration and, for a MOCK, its answer.
pub(super) async fn put_method(
    client: &Client,
    api_id: &str,
    resource_id: &str,
    name: &str,
    shape: &MethodShape,
) -> Result<(), AwsError> {
    let what = format!("{api_id} {name}");
    client
        .put_method()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method(name)
        .authorization_type(&shape.authorization_type)
        .api_key_required(shape.api_key_required)
        .send()
        .await
        .map_err(|e| aws_error("PutMethod", &what, e))?;
    let mut integration = client
        .put_integration()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method(name)
        .r#type(IntegrationType::from(shape.integration_type.as_str()))
        .set_integration_http_method(shape.integration_http_method.clone())
        .set_uri(shape.uri.clone());
    if let Some(template) = &shape.request_template {
        integration = integration.request_templates("application/json", template);
    }
    integration
        .send()
        .await
        .map_err(|e| aws_error("PutIntegration", &what, e))?;
    let Some(status) = &shape.response_status else {
        return Ok(());
    };
    let mut method_response = client
        .put_method_response()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method(name)
        .status_code(status);
    for header in &shape.declared_headers {
        method_response =
            method_response.response_parameters(format!("method.response.header.{header}"), false);
    }
    method_response
        .send()
        .await
        .map_err(|e| aws_error("PutMethodResponse", &what, e))?;
    let mut integration_response = client
        .put_integration_response()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method(name)
        .status_code(status);
    for (header, value) in &shape.response_headers {
        integration_response = integration_response.response_parameters(
            format!("method.response.header.{header}"),
            format!("'{value}'"),
        );
    }
    integration_response
        .send()
        .await
        .map_err(|e| aws_error("PutIntegrationResponse", &what, e))?;
    Ok(())
}

pub(super) async fn delete_method(
    client: &Client,
    api_id: &str,
    resource_id: &str,
    name: &str,
) -> Result<(), AwsError> {
    delete_ignoring_missing(
        client
            .delete_method()
            .rest_api_id(api_id)
            .resource_id(resource_id)
            .http_method(name)
            .send()
            .await,
        "DeleteMethod",
        &format!("{api_id} {name}"),
    )
}
