//! The gateway's own error answers (`DEFAULT_4XX`, `DEFAULT_5XX`) and the
//! CORS headers they carry.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetGatewayResponse", "apigateway:GET", Scope::ApiOwned),
        call("PutGatewayResponse", "apigateway:PUT", Scope::ApiOwned),
        call(
            "DeleteGatewayResponse",
            "apigateway:DELETE",
            Scope::ApiOwned,
        ),
    ],
};

/// The deployer's gateway response types as API Gateway has them. API
/// Gateway answers GetGatewayResponse for a type nobody customised with
/// its default (`defaultResponse: true`); that, and not found, is absent.
pub(super) async fn read_gateway_responses(
    client: &Client,
    api_id: &str,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsError> {
    let mut found = BTreeMap::new();
    for kind in GATEWAY_RESPONSES {
        let answer = client
            .get_gateway_response()
            .rest_api_id(api_id)
            .response_type(kind.into())
            .send()
            .await;
        let resource = format!("{api_id} {kind}");
        let Some(response) = none_if(ErrorKind::NotFound, "GetGatewayResponse", resource, answer)?
        else {
            continue;
        };
        if response.default_response() {
            continue;
        }
        let headers = response
            .response_parameters()
            .map(|params| {
                params
                    .iter()
                    .filter_map(|(key, value)| {
                        let header = key.strip_prefix(GATEWAY_HEADER)?;
                        Some((header.to_string(), value.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.insert(kind.to_string(), headers);
    }
    Ok(found)
}

/// Puts a gateway response with these headers (name → mapping
/// expression), replacing the whole customisation of that type.
/// Puts a gateway response type back to API Gateway's default.
pub(super) async fn delete_gateway_response(
    client: &Client,
    api_id: &str,
    kind: &str,
) -> Result<(), AwsError> {
    delete_ignoring_missing(
        client
            .delete_gateway_response()
            .rest_api_id(api_id)
            .response_type(kind.into())
            .send()
            .await,
        "DeleteGatewayResponse",
        &format!("{api_id}/{kind}"),
    )
}

pub(super) async fn put_gateway_response(
    client: &Client,
    api_id: &str,
    kind: &str,
    headers: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    client
        .put_gateway_response()
        .rest_api_id(api_id)
        .response_type(kind.into())
        .set_response_parameters(Some(
            headers
                .iter()
                .map(|(header, value)| (format!("{GATEWAY_HEADER}{header}"), value.clone()))
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| aws_error("PutGatewayResponse", format!("{api_id} {kind}"), e))?;
    Ok(())
}
