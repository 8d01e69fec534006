//! API Gateway: the stage's regional REST API `{app}-{stage}`, its
//! `/{path}` resource with the Lambda proxy methods and a CORS `OPTIONS`,
//! the deployment and stage (throttling, tags), and, with `api_key` auth,
//! an API key and a usage plan; the gateway's own error answers
//! (`DEFAULT_4XX`, `DEFAULT_5XX`) carry the CORS headers too.
//!
//! CORS ("CORS for REST APIs in API Gateway", API Gateway Developer Guide):
//! with a Lambda proxy integration the function writes the headers of its
//! own answers. The preflight is a MOCK integration whose answer is static
//! (one value per integration response), so it can name one origin or `*`;
//! with several allowed origins, `OPTIONS` is proxied to the function
//! instead, which echoes the caller's origin when it is allowed (with
//! `Vary: Origin`). Gateway responses may map a header from the request
//! ("Parameter mapping source reference for REST APIs"): with several
//! origins they echo the caller's `Origin`, whatever it is — they are
//! API Gateway's own error answers (403, 429, 502, 504), which carry no
//! data, and a browser that cannot read them reports a CORS error instead
//! of the real one.
//!
//! API Gateway serves a snapshot (a deployment), not the API as edited, so
//! every change to the API is followed by a new deployment. Each deployment
//! carries a fingerprint of the API definition it snapshots in its
//! description; a stage whose deployment has another fingerprint (e.g. an
//! earlier run died between editing and deploying) is redeployed too, and
//! nothing else is.
//!
//! Some control-plane calls have fixed quotas per account and Region
//! ("Amazon API Gateway quotas",
//! https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html):
//! DeleteRestApi 1 request every 30 s, CreateDeployment 1 every 5 s,
//! UpdateUsagePlan 1 every 20 s; beyond them AWS answers 429
//! TooManyRequests. Another stage's teardown or deploy in the same account
//! shares them, so these calls retry for [`QUOTA_RETRY`], well beyond the
//! SDK's few attempts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::types::{
    ApiStage, EndpointConfiguration, EndpointType, IntegrationType, Method, Op, PatchOperation,
    RestApi, ThrottleSettings, UsagePlan,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::errors::{aws_error, none_if};
use super::retry::retry_while;
use super::{AwsError, ErrorKind, Outcome, missing_tags};
use crate::config::{Auth, CorsSpec, Stage};
use crate::names::Names;
use crate::plan::{Action, Field, NoField};

/// The status code of the CORS preflight answer.
const PREFLIGHT_STATUS: &str = "204";
/// The key of the stage-wide method settings (every resource, every method).
const ALL_METHODS: &str = "*/*";
/// Prefix of a deployment description written by the deployer.
const FINGERPRINT_PREFIX: &str = "deployer:";
/// How long a call under a control-plane quota retries TooManyRequests:
/// several quota periods (DeleteRestApi's is 30 s), since other clients of
/// the account may take the next slots first.
const QUOTA_RETRY: Duration = Duration::from_secs(150);
/// The gateway responses the deployer sets: every 4xx and 5xx API Gateway
/// answers itself (missing key 403, throttled 429, integration 502/504)
/// falls back to one of these unless a more specific one is customised
/// ("Gateway response types for API Gateway").
const GATEWAY_RESPONSES: [&str; 2] = ["DEFAULT_4XX", "DEFAULT_5XX"];
/// The prefix of a gateway response's header parameters.
const GATEWAY_HEADER: &str = "gatewayresponse.header.";

/// Everything the stage's API should be.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredApi {
    pub name: String,
    /// The stage's ARNs and URLs (tag ARNs, integration URI, invoke URL).
    pub names: Names,
    pub tags: BTreeMap<String, String>,
    /// The resource under the root, without slashes.
    pub path: String,
    /// By HTTP method (`GET`, `POST`, `OPTIONS`).
    pub methods: BTreeMap<String, MethodShape>,
    pub stage_name: String,
    pub rate_limit: f64,
    pub burst_limit: i32,
    /// X-Ray tracing on the stage, with the function's own tracing.
    pub tracing: bool,
    /// `DEFAULT_4XX`/`DEFAULT_5XX` → header → mapping expression (a
    /// quoted static value, or `method.request.header.Origin`).
    pub gateway_responses: BTreeMap<String, BTreeMap<String, String>>,
    /// `Some(name)` when auth is `api_key`: the API key and usage plan name.
    pub api_key_name: Option<String>,
}

/// A method and its integration, reduced to what the deployer sets; built
/// from the configuration and read back from API Gateway alike, so that
/// comparing the two is `==`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodShape {
    pub authorization_type: String,
    pub api_key_required: bool,
    /// `AWS_PROXY` or `MOCK`.
    pub integration_type: String,
    /// The integration's own method (`POST` for Lambda), proxy only.
    pub integration_http_method: Option<String>,
    /// The Lambda invocation URI, proxy only.
    pub uri: Option<String>,
    /// The MOCK's `application/json` request template (its status code).
    pub request_template: Option<String>,
    /// The MOCK's answer status.
    pub response_status: Option<String>,
    /// The MOCK's answer headers, name → value (unquoted).
    pub response_headers: BTreeMap<String, String>,
    /// The headers the method response declares.
    pub declared_headers: BTreeSet<String>,
}

/// What of a method (with its integration) can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodField {
    Authorization,
    ApiKeyRequired,
    IntegrationType,
    IntegrationHttpMethod,
    IntegrationUri,
    RequestTemplate,
    ResponseStatus,
    CorsHeaders,
    MethodResponseHeaders,
}

impl Field for MethodField {}

impl MethodShape {
    /// The fields that differ from `actual`.
    pub fn differences(&self, actual: &MethodShape) -> BTreeSet<MethodField> {
        [
            (
                MethodField::Authorization,
                self.authorization_type != actual.authorization_type,
            ),
            (
                MethodField::ApiKeyRequired,
                self.api_key_required != actual.api_key_required,
            ),
            (
                MethodField::IntegrationType,
                self.integration_type != actual.integration_type,
            ),
            (
                MethodField::IntegrationHttpMethod,
                self.integration_http_method != actual.integration_http_method,
            ),
            (MethodField::IntegrationUri, self.uri != actual.uri),
            (
                MethodField::RequestTemplate,
                self.request_template != actual.request_template,
            ),
            (
                MethodField::ResponseStatus,
                self.response_status != actual.response_status,
            ),
            (
                MethodField::CorsHeaders,
                self.response_headers != actual.response_headers,
            ),
            (
                MethodField::MethodResponseHeaders,
                self.declared_headers != actual.declared_headers,
            ),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(field, _)| field)
        .collect()
    }
}

impl DesiredApi {
    /// The API of `stage`, whose methods call the stage's Lambda alias.
    pub fn from_stage(stage: &Stage, names: &Names) -> DesiredApi {
        let api = &stage.api;
        let api_key_required = api.auth == Auth::ApiKey;
        let proxy = |api_key_required: bool| MethodShape {
            authorization_type: "NONE".into(),
            api_key_required,
            integration_type: "AWS_PROXY".into(),
            integration_http_method: Some("POST".into()),
            uri: Some(names.integration_uri()),
            request_template: None,
            response_status: None,
            response_headers: BTreeMap::new(),
            declared_headers: BTreeSet::new(),
        };
        let mut methods: BTreeMap<String, MethodShape> = api
            .methods
            .iter()
            .map(|method| (method.to_ascii_uppercase(), proxy(api_key_required)))
            .collect();
        let mut allowed: Vec<String> = methods.keys().cloned().collect();
        allowed.push("OPTIONS".into());
        let allowed = allowed.join(",");
        // The browser's preflight carries no API key, so OPTIONS never
        // requires one.
        let preflight = match api.cors.static_origin() {
            Some(origin) => {
                let response_headers = cors_headers(&api.cors, origin, &allowed);
                MethodShape {
                    authorization_type: "NONE".into(),
                    api_key_required: false,
                    integration_type: "MOCK".into(),
                    integration_http_method: None,
                    uri: None,
                    request_template: Some(format!("{{\"statusCode\": {PREFLIGHT_STATUS}}}")),
                    response_status: Some(PREFLIGHT_STATUS.into()),
                    declared_headers: response_headers.keys().cloned().collect(),
                    response_headers,
                }
            }
            // Several origins: a static answer cannot pick the caller's, so
            // the function answers the preflight itself.
            None => proxy(false),
        };
        methods.insert("OPTIONS".into(), preflight);
        let mut gateway_headers: BTreeMap<String, String> = cors_headers(
            &api.cors,
            api.cors.static_origin().unwrap_or_default(),
            &allowed,
        )
        .into_iter()
        .map(|(header, value)| (header, format!("'{value}'")))
        .collect();
        if api.cors.static_origin().is_none() {
            gateway_headers.insert(
                ALLOW_ORIGIN.to_string(),
                "method.request.header.Origin".to_string(),
            );
            // Caches must not serve one origin's answer to another.
            gateway_headers.insert("Vary".to_string(), "'Origin'".to_string());
        }
        DesiredApi {
            name: stage.api_name(),
            names: names.clone(),
            tags: stage.tags(),
            path: api.path.trim_matches('/').to_string(),
            methods,
            stage_name: stage.name.clone(),
            rate_limit: api.throttling.rate_limit,
            burst_limit: api.throttling.burst_limit,
            tracing: stage.function.tracing,
            gateway_responses: GATEWAY_RESPONSES
                .iter()
                .map(|kind| (kind.to_string(), gateway_headers.clone()))
                .collect(),
            api_key_name: api_key_required.then(|| stage.api_name()),
        }
    }

    /// A fingerprint of what a deployment snapshots (resource, methods,
    /// integrations, gateway responses), kept in the deployment's
    /// description.
    pub fn fingerprint(&self) -> String {
        let definition = serde_json::json!({
            "path": self.path,
            "methods": self.methods,
            "gateway_responses": self.gateway_responses,
        });
        let digest = Sha256::digest(definition.to_string().as_bytes());
        format!("{FINGERPRINT_PREFIX}{}", &hex::encode(digest)[..16])
    }
}

const ALLOW_ORIGIN: &str = "Access-Control-Allow-Origin";

/// The CORS headers API Gateway answers with itself (the MOCK preflight,
/// the gateway responses), by name, unquoted; `origin` is the allowed one.
/// The function's own answers carry the same list of headers: it gets it
/// through its environment (see `commands::state::desired_function`).
fn cors_headers(cors: &CorsSpec, origin: &str, methods: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (ALLOW_ORIGIN.to_string(), origin.to_string()),
        (
            "Access-Control-Allow-Methods".to_string(),
            methods.to_string(),
        ),
        (
            "Access-Control-Allow-Headers".to_string(),
            cors.allow_headers.join(","),
        ),
    ])
}

/// What API Gateway holds for the stage.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualApi {
    pub id: String,
    pub regional: bool,
    pub tags: BTreeMap<String, String>,
    /// Other REST APIs with the same name (left by an old crash); the
    /// deployer uses `id` and leaves these alone.
    pub duplicates: Vec<String>,
    pub root_id: String,
    /// The `/{path}` resource, if it exists.
    pub resource: Option<ActualResource>,
    /// Other resources directly under the root (an old path).
    pub stale_resources: Vec<ActualResource>,
    pub stage: Option<ActualStage>,
    /// The customised gateway responses the deployer manages, by type:
    /// header → mapping expression. A type left at API Gateway's default
    /// is absent.
    pub gateway_responses: BTreeMap<String, BTreeMap<String, String>>,
    pub api_key: Option<ActualApiKey>,
    pub usage_plan: Option<ActualUsagePlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActualResource {
    pub id: String,
    pub path: String,
    pub methods: BTreeMap<String, MethodShape>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActualStage {
    pub deployment_id: Option<String>,
    /// The description of the stage's deployment (its fingerprint).
    pub deployment_fingerprint: Option<String>,
    pub rate_limit: Option<f64>,
    pub burst_limit: Option<i32>,
    /// X-Ray tracing (`tracingEnabled`).
    pub tracing: bool,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActualApiKey {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActualUsagePlan {
    pub id: String,
    /// `(api id, stage)` pairs the plan covers.
    pub api_stages: Vec<(String, String)>,
    pub rate_limit: Option<f64>,
    pub burst_limit: Option<i32>,
    /// The API keys bound to the plan.
    pub key_ids: Vec<String>,
}

/// What `ensure_api` left behind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiInfo {
    pub api_id: String,
    pub url: String,
    /// The new deployment, when one was made.
    pub deployment_id: Option<String>,
    /// Other REST APIs with the stage's name, left alone.
    pub duplicates: Vec<String>,
    pub api_key_id: Option<String>,
}

/// The account of the caller's credentials (for [`Names`]).
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

// ---------------------------------------------------------------- read

/// Reads everything of the stage's API; `None` when there is no REST API
/// of that name.
pub async fn read_api(
    client: &Client,
    desired: &DesiredApi,
) -> Result<Option<ActualApi>, AwsError> {
    let found = find_rest_apis(client, &desired.name, &desired.tags).await?;
    let Some((chosen, duplicates)) = found.split_first() else {
        return Ok(None);
    };
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

/// The deployer's gateway response types as API Gateway has them. API
/// Gateway answers GetGatewayResponse for a type nobody customised with
/// its default (`defaultResponse: true`); that, and not found, is absent.
async fn read_gateway_responses(
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

/// Every REST API named `name`, best first: carrying our tags, then oldest.
async fn find_rest_apis(
    client: &Client,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<RestApi>, AwsError> {
    let mut found: Vec<RestApi> = client
        .get_rest_apis()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error("GetRestApis", name, e))?;
    found.retain(|api| api.name() == Some(name));
    found.sort_by_key(|api| {
        let ours = has_tags(api.tags(), tags);
        let created = api.created_date().map(|d| (d.secs(), d.subsec_nanos()));
        (!ours, created)
    });
    Ok(found)
}

fn has_tags(actual: Option<&HashMap<String, String>>, wanted: &BTreeMap<String, String>) -> bool {
    wanted
        .iter()
        .all(|(k, v)| actual.and_then(|a| a.get(k)) == Some(v))
}

fn to_btree(map: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// The root's id, the `/{path}` resource and the other resources under
/// the root.
async fn read_resources(
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

async fn read_method(
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
fn shape_of(method: &Method) -> MethodShape {
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

async fn read_stage(
    client: &Client,
    api_id: &str,
    stage: &str,
) -> Result<Option<ActualStage>, AwsError> {
    let answer = client
        .get_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .send()
        .await;
    let resource = format!("{api_id}/{stage}");
    let Some(out) = none_if(ErrorKind::NotFound, "GetStage", resource, answer)? else {
        return Ok(None);
    };
    let deployment_id = out.deployment_id().map(str::to_string);
    let deployment_fingerprint = match &deployment_id {
        Some(id) => {
            let answer = client
                .get_deployment()
                .rest_api_id(api_id)
                .deployment_id(id)
                .send()
                .await;
            none_if(ErrorKind::NotFound, "GetDeployment", id, answer)?
                .and_then(|d| d.description().map(str::to_string))
        }
        None => None,
    };
    let settings = out.method_settings().and_then(|m| m.get(ALL_METHODS));
    Ok(Some(ActualStage {
        deployment_id,
        deployment_fingerprint,
        rate_limit: settings.map(|s| s.throttling_rate_limit()),
        burst_limit: settings.map(|s| s.throttling_burst_limit()),
        tracing: out.tracing_enabled(),
        tags: to_btree(out.tags()),
    }))
}

async fn read_api_key(client: &Client, name: &str) -> Result<Option<ActualApiKey>, AwsError> {
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

async fn read_usage_plan(client: &Client, name: &str) -> Result<Option<ActualUsagePlan>, AwsError> {
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

// ---------------------------------------------------------------- diff

/// What of the REST API itself can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestApiField {
    EndpointType,
    Tags,
}

impl Field for RestApiField {}

/// What of a gateway response can differ: its CORS headers, put whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayResponseField {
    CorsHeaders,
}

impl Field for GatewayResponseField {}

/// What of the stage's settings can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageField {
    Throttling,
    Tracing,
    Tags,
}

impl Field for StageField {}

/// What of the usage plan can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsagePlanField {
    /// The plan does not cover the stage.
    ApiStages,
    Throttle,
    /// The stage's API key is not bound to the plan.
    ApiKey,
}

impl Field for UsagePlanField {}

/// Every action on the stage's API, in the order [`apply_api`] takes them:
/// rest api, resource (stale ones deleted), methods (with their
/// integrations), gateway responses, deployment, stage, api key, usage
/// plan. The redeploy decision is made here, once.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiPlan {
    pub rest_api: Action<RestApiField>,
    pub resource: Action<NoField>,
    /// Other resources under the root (an old path): each is deleted.
    pub stale_resources: Vec<ActualResource>,
    /// By HTTP method: the desired ones, then those to delete.
    pub methods: Vec<(String, Action<MethodField>)>,
    /// By gateway response type.
    pub gateway_responses: Vec<(String, Action<GatewayResponseField>)>,
    /// `Create`: a new deployment (after any change above, or when the
    /// stage serves another definition than the desired one).
    pub deployment: Action<NoField>,
    pub stage: Action<StageField>,
    pub api_key: Action<NoField>,
    pub usage_plan: Action<UsagePlanField>,
}

impl ApiPlan {
    pub fn is_change(&self) -> bool {
        self.rest_api.is_change()
            || self.resource.is_change()
            || !self.stale_resources.is_empty()
            || self.methods.iter().any(|(_, a)| a.is_change())
            || self.gateway_responses.iter().any(|(_, a)| a.is_change())
            || self.deployment.is_change()
            || self.stage.is_change()
            || self.api_key.is_change()
            || self.usage_plan.is_change()
    }
}

fn diff_rest_api(desired: &DesiredApi, actual: Option<&ActualApi>) -> Action<RestApiField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if !actual.regional {
        fields.insert(RestApiField::EndpointType);
    }
    if missing_tags(&desired.tags, &actual.tags).next().is_some() {
        fields.insert(RestApiField::Tags);
    }
    Action::update_if(fields)
}

/// Per desired method its action, then the methods to delete.
fn diff_methods(
    desired: &DesiredApi,
    actual: Option<&ActualResource>,
) -> Vec<(String, Action<MethodField>)> {
    let empty = BTreeMap::new();
    let actual_methods = actual.map(|r| &r.methods).unwrap_or(&empty);
    let wanted = desired.methods.iter().map(|(name, shape)| {
        let action = match actual_methods.get(name) {
            None => Action::Create,
            Some(current) => Action::update_if(shape.differences(current)),
        };
        (name.clone(), action)
    });
    let removed = actual_methods
        .keys()
        .filter(|name| !desired.methods.contains_key(*name))
        .map(|name| (name.clone(), Action::Delete));
    wanted.chain(removed).collect()
}

/// Per gateway response type the deployer sets, its action: `Create`
/// when the type is at API Gateway's default, an update of its
/// `cors_headers` when they differ. Headers someone else added count as a
/// difference: the response is put whole.
fn diff_gateway_responses(
    desired: &DesiredApi,
    actual: Option<&ActualApi>,
) -> Vec<(String, Action<GatewayResponseField>)> {
    desired
        .gateway_responses
        .iter()
        .map(|(kind, headers)| {
            let action = match actual.and_then(|a| a.gateway_responses.get(kind)) {
                None => Action::Create,
                Some(current) if current == headers => Action::Unchanged,
                Some(_) => Action::Update(BTreeSet::from([GatewayResponseField::CorsHeaders])),
            };
            (kind.clone(), action)
        })
        .collect()
}

fn diff_stage_settings(desired: &DesiredApi, actual: Option<&ActualStage>) -> Action<StageField> {
    let Some(stage) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if stage.rate_limit != Some(desired.rate_limit)
        || stage.burst_limit != Some(desired.burst_limit)
    {
        fields.insert(StageField::Throttling);
    }
    if stage.tracing != desired.tracing {
        fields.insert(StageField::Tracing);
    }
    if missing_tags(&desired.tags, &stage.tags).next().is_some() {
        fields.insert(StageField::Tags);
    }
    Action::update_if(fields)
}

fn diff_usage_plan(
    desired: &DesiredApi,
    api_id: Option<&str>,
    actual: Option<&ActualUsagePlan>,
    key: Option<&ActualApiKey>,
) -> Action<UsagePlanField> {
    let Some(plan) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    let bound = api_id.is_some_and(|id| {
        plan.api_stages
            .iter()
            .any(|(a, s)| a == id && *s == desired.stage_name)
    });
    if !bound {
        fields.insert(UsagePlanField::ApiStages);
    }
    if plan.rate_limit != Some(desired.rate_limit) || plan.burst_limit != Some(desired.burst_limit)
    {
        fields.insert(UsagePlanField::Throttle);
    }
    if !key.is_some_and(|k| plan.key_ids.contains(&k.id)) {
        fields.insert(UsagePlanField::ApiKey);
    }
    Action::update_if(fields)
}

/// Everything [`apply_api`] has to do to make `actual` the desired API.
pub fn diff_api(desired: &DesiredApi, actual: Option<&ActualApi>) -> ApiPlan {
    let rest_api = diff_rest_api(desired, actual);
    let resource = actual.and_then(|a| a.resource.as_ref());
    let stale_resources = actual
        .map(|a| a.stale_resources.clone())
        .unwrap_or_default();
    let methods = diff_methods(desired, resource);
    let gateway_responses = diff_gateway_responses(desired, actual);
    let resource = Action::create_if(resource.is_none());
    let api_changed = rest_api.is_change()
        || resource.is_change()
        || !stale_resources.is_empty()
        || methods.iter().any(|(_, a)| a.is_change())
        || gateway_responses.iter().any(|(_, a)| a.is_change());
    let stage = actual.and_then(|a| a.stage.as_ref());
    let deployment = Action::create_if(
        api_changed
            || stage.and_then(|s| s.deployment_fingerprint.as_deref())
                != Some(desired.fingerprint().as_str()),
    );
    let key = actual.and_then(|a| a.api_key.as_ref());
    let plan = actual.and_then(|a| a.usage_plan.as_ref());
    let (api_key, usage_plan) = match &desired.api_key_name {
        Some(_) => (
            Action::create_if(key.is_none()),
            diff_usage_plan(desired, actual.map(|a| a.id.as_str()), plan, key),
        ),
        None => (
            if key.is_some() {
                Action::Delete
            } else {
                Action::Unchanged
            },
            if plan.is_some() {
                Action::Delete
            } else {
                Action::Unchanged
            },
        ),
    };
    ApiPlan {
        rest_api,
        resource,
        stale_resources,
        methods,
        gateway_responses,
        deployment,
        stage: diff_stage_settings(desired, stage),
        api_key,
        usage_plan,
    }
}

// ---------------------------------------------------------------- apply

/// Brings the stage's API to `desired`: read, diff, apply.
pub async fn ensure_api(
    client: &Client,
    desired: &DesiredApi,
) -> Result<(Outcome, ApiInfo), AwsError> {
    let actual = read_api(client, desired).await?;
    let plan = diff_api(desired, actual.as_ref());
    apply_api(client, desired, actual.as_ref(), &plan).await
}

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

/// Creates the REST API; returns its id and its root resource's id.
async fn create_rest_api(
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

async fn update_rest_api(
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
async fn make_regional(
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

async fn tag(client: &Client, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
    client
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| aws_error("TagResource", arn, e))?;
    Ok(())
}

fn patch(op: Op, path: &str, value: &str) -> PatchOperation {
    PatchOperation::builder()
        .op(op)
        .path(path)
        .value(value)
        .build()
}

async fn create_resource(
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
async fn put_method(
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

/// Puts a gateway response with these headers (name → mapping
/// expression), replacing the whole customisation of that type.
/// Puts a gateway response type back to API Gateway's default.
async fn delete_gateway_response(
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

async fn put_gateway_response(
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

async fn delete_method(
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

/// A new deployment carrying `fingerprint`, pointed at by the stage (which
/// is created with its tags when missing). Returns the deployment's id.
async fn deploy(
    client: &Client,
    api_id: &str,
    desired: &DesiredApi,
    stage_exists: bool,
    fingerprint: &str,
) -> Result<String, AwsError> {
    let stage = format!("{api_id}/{}", desired.stage_name);
    // Deploying without a stage and then pointing the stage at it keeps
    // the stage's own settings and tags untouched.
    let deployment = retry_while(&[ErrorKind::Throttled], QUOTA_RETRY, || async {
        client
            .create_deployment()
            .rest_api_id(api_id)
            .description(fingerprint)
            .send()
            .await
            .map_err(|e| aws_error("CreateDeployment", &stage, e))
    })
    .await?;
    let deployment_id = required(deployment.id(), "CreateDeployment", &stage)?;
    if stage_exists {
        client
            .update_stage()
            .rest_api_id(api_id)
            .stage_name(&desired.stage_name)
            .patch_operations(patch(Op::Replace, "/deploymentId", &deployment_id))
            .send()
            .await
            .map_err(|e| aws_error("UpdateStage", &stage, e))?;
    } else {
        client
            .create_stage()
            .rest_api_id(api_id)
            .stage_name(&desired.stage_name)
            .deployment_id(&deployment_id)
            .set_tags(Some(desired.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| aws_error("CreateStage", &stage, e))?;
    }
    Ok(deployment_id)
}

async fn update_stage_settings(
    client: &Client,
    api_id: &str,
    desired: &DesiredApi,
    fields: &BTreeSet<StageField>,
) -> Result<(), AwsError> {
    let stage = format!("{api_id}/{}", desired.stage_name);
    let mut settings = Vec::new();
    let mut tags = false;
    for field in fields {
        match field {
            StageField::Throttling => {
                settings.push(patch(
                    Op::Replace,
                    &format!("/{ALL_METHODS}/throttling/rateLimit"),
                    &desired.rate_limit.to_string(),
                ));
                settings.push(patch(
                    Op::Replace,
                    &format!("/{ALL_METHODS}/throttling/burstLimit"),
                    &desired.burst_limit.to_string(),
                ));
            }
            // X-Ray on the stage as on the function, so a trace starts at
            // the gateway ("Setting up X-Ray tracing for API Gateway REST
            // APIs").
            StageField::Tracing => settings.push(patch(
                Op::Replace,
                "/tracingEnabled",
                if desired.tracing { "true" } else { "false" },
            )),
            StageField::Tags => tags = true,
        }
    }
    if !settings.is_empty() {
        client
            .update_stage()
            .rest_api_id(api_id)
            .stage_name(&desired.stage_name)
            .set_patch_operations(Some(settings))
            .send()
            .await
            .map_err(|e| aws_error("UpdateStage", &stage, e))?;
    }
    if tags {
        tag(client, &desired.names.api_stage_arn(api_id), &desired.tags).await?;
    }
    Ok(())
}

async fn delete_stage(client: &Client, api_id: &str, stage: &str) -> Result<(), AwsError> {
    delete_ignoring_missing(
        client
            .delete_stage()
            .rest_api_id(api_id)
            .stage_name(stage)
            .send()
            .await,
        "DeleteStage",
        &format!("{api_id}/{stage}"),
    )
}

async fn create_api_key(
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

fn throttle(desired: &DesiredApi) -> ThrottleSettings {
    ThrottleSettings::builder()
        .rate_limit(desired.rate_limit)
        .burst_limit(desired.burst_limit)
        .build()
}

/// Creates the usage plan (covering the stage, with the key bound) or
/// makes the updates `action` names.
async fn apply_usage_plan(
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

async fn delete_usage_plan(client: &Client, plan: &ActualUsagePlan) -> Result<(), AwsError> {
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

async fn delete_api_key(client: &Client, id: &str) -> Result<(), AwsError> {
    delete_ignoring_missing(
        client.delete_api_key().api_key(id).send().await,
        "DeleteApiKey",
        id,
    )
}

// ---------------------------------------------------------------- delete

/// Removes the stage's REST API (every one of that name carrying the
/// stage's tags), its API key and its usage plan. Missing parts are
/// already gone, so a second run is fine.
pub async fn delete_api(client: &Client, stage: &Stage) -> Result<(), AwsError> {
    let name = stage.api_name();
    let tags = stage.tags();
    if let Some(plan) = read_usage_plan(client, &name).await? {
        delete_usage_plan(client, &plan).await?;
    }
    if let Some(key) = read_api_key(client, &name).await? {
        delete_api_key(client, &key.id).await?;
    }
    for api in find_rest_apis(client, &name, &tags).await? {
        if !has_tags(api.tags(), &tags) {
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

// ---------------------------------------------------------------- errors

/// An id the answer must hold; its absence is an error, not an empty id.
fn required(id: Option<&str>, operation: &'static str, resource: &str) -> Result<String, AwsError> {
    id.map(str::to_string)
        .ok_or_else(|| AwsError::invalid_answer(operation, resource, "the answer holds no id"))
}

/// `Ok` for a call that succeeded or found nothing to delete.
fn delete_ignoring_missing<T, E, R>(
    answer: Result<T, SdkError<E, R>>,
    operation: &'static str,
    resource: &str,
) -> Result<(), AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    none_if(ErrorKind::NotFound, operation, resource, answer).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Change, ChangeAction};

    /// The plan's changes, as `deployer plan` shows them.
    fn diff(desired: &DesiredApi, actual: Option<&ActualApi>) -> Vec<Change> {
        crate::stage::plan::api_changes(desired, &diff_api(desired, actual))
    }

    fn desired_of(stage: &Stage) -> DesiredApi {
        DesiredApi::from_stage(stage, &Names::new(stage, "123456789012"))
    }

    fn desired() -> DesiredApi {
        desired_of(&Stage::defaults("shop", "dev", "us-east-1"))
    }

    fn actual_from(desired: &DesiredApi) -> ActualApi {
        ActualApi {
            id: "abc123".into(),
            regional: true,
            tags: desired.tags.clone(),
            duplicates: vec![],
            root_id: "root".into(),
            resource: Some(ActualResource {
                id: "res".into(),
                path: format!("/{}", desired.path),
                methods: desired.methods.clone(),
            }),
            stale_resources: vec![],
            stage: Some(ActualStage {
                deployment_id: Some("dep".into()),
                deployment_fingerprint: Some(desired.fingerprint()),
                rate_limit: Some(desired.rate_limit),
                burst_limit: Some(desired.burst_limit),
                tracing: desired.tracing,
                tags: desired.tags.clone(),
            }),
            gateway_responses: desired.gateway_responses.clone(),
            api_key: None,
            usage_plan: None,
        }
    }

    fn changed(changes: &[Change]) -> Vec<(String, String)> {
        changes
            .iter()
            .filter(|c| c.action.is_change())
            .map(|c| (c.kind.to_string(), c.name.clone()))
            .collect()
    }

    #[test]
    fn nothing_exists_means_everything_is_created() {
        let desired = desired();
        let changes = diff(&desired, None);
        assert!(
            changes.iter().all(|c| c.action == ChangeAction::Create),
            "{changes:?}"
        );
        let methods: Vec<_> = changes
            .iter()
            .filter(|c| c.kind == "api method")
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            methods,
            [
                "GET shop-dev/predict",
                "OPTIONS shop-dev/predict",
                "POST shop-dev/predict"
            ]
        );
    }

    #[test]
    fn matching_state_is_unchanged_and_not_redeployed() {
        let desired = desired();
        let changes = diff(&desired, Some(&actual_from(&desired)));
        assert_eq!(changed(&changes), Vec::<(String, String)>::new());
    }

    #[test]
    fn a_cors_change_updates_options_and_redeploys() {
        let desired = desired();
        let actual = actual_from(&desired);
        let mut stage = Stage::defaults("shop", "dev", "us-east-1");
        stage.api.cors.allow_origins = vec!["https://example.com".into()];
        let new = desired_of(&stage);
        let changes = diff(&new, Some(&actual));
        let options = changes
            .iter()
            .find(|c| c.name.starts_with("OPTIONS"))
            .unwrap();
        assert_eq!(
            options.action,
            ChangeAction::Update(vec!["cors_headers".into()])
        );
        let deployment = changes.iter().find(|c| c.kind == "api deployment").unwrap();
        assert_eq!(deployment.action, ChangeAction::Create);
    }

    #[test]
    fn throttling_change_updates_the_stage_only() {
        let desired = desired();
        let mut actual = actual_from(&desired);
        actual.stage.as_mut().unwrap().rate_limit = Some(5.0);
        let changes = diff(&desired, Some(&actual));
        assert_eq!(
            changed(&changes),
            [("api stage".to_string(), "shop-dev/dev".to_string())]
        );
    }

    #[test]
    fn an_undeployed_edit_is_redeployed() {
        let desired = desired();
        let mut actual = actual_from(&desired);
        actual.stage.as_mut().unwrap().deployment_fingerprint = Some("deployer:old".into());
        let changes = diff(&desired, Some(&actual));
        assert_eq!(
            changed(&changes),
            [("api deployment".to_string(), "shop-dev/dev".to_string())]
        );
    }

    #[test]
    fn a_method_no_longer_configured_is_removed() {
        let desired = desired();
        let mut actual = actual_from(&desired);
        let get = actual.resource.as_ref().unwrap().methods["GET"].clone();
        actual
            .resource
            .as_mut()
            .unwrap()
            .methods
            .insert("DELETE".into(), get);
        let changes = diff(&desired, Some(&actual));
        let delete = changes
            .iter()
            .find(|c| c.name.starts_with("DELETE"))
            .unwrap();
        assert_eq!(delete.action, ChangeAction::Delete);
    }

    #[test]
    fn api_key_auth_plans_key_and_usage_plan_and_requires_the_key() {
        let mut stage = Stage::defaults("shop", "dev", "us-east-1");
        stage.api.auth = Auth::ApiKey;
        let desired = desired_of(&stage);
        assert!(desired.methods["GET"].api_key_required);
        assert!(!desired.methods["OPTIONS"].api_key_required);
        let plain = super::tests::desired();
        let changes = diff(&desired, Some(&actual_from(&plain)));
        let kinds: Vec<_> = changed(&changes).into_iter().map(|(k, _)| k).collect();
        assert!(
            kinds.contains(&"api key".to_string()) && kinds.contains(&"api usage plan".to_string()),
            "{kinds:?}"
        );
        assert!(kinds.contains(&"api deployment".to_string()), "{kinds:?}");
    }

    #[test]
    fn the_integration_calls_the_alias_in_the_stage_partition() {
        let china = desired_of(&Stage::defaults("shop", "dev", "cn-north-1"));
        let uri = china.methods["GET"].uri.clone().unwrap();
        assert!(
            uri.starts_with("arn:aws-cn:apigateway:cn-north-1:lambda:path/2015-03-31/functions/arn:aws-cn:lambda:cn-north-1:123456789012:function:shop-dev:dev"),
            "{uri}"
        );
    }

    #[test]
    fn one_origin_is_a_static_preflight_and_static_gateway_responses() {
        let mut stage = Stage::defaults("shop", "dev", "us-east-1");
        stage.api.cors.allow_origins = vec!["https://a.example".into()];
        let desired = desired_of(&stage);
        let options = &desired.methods["OPTIONS"];
        assert_eq!(options.integration_type, "MOCK");
        assert_eq!(
            options.response_headers["Access-Control-Allow-Origin"],
            "https://a.example"
        );
        // The preflight allows what deploy.toml lists, the same list the
        // function is given.
        assert_eq!(
            options.response_headers["Access-Control-Allow-Headers"],
            stage.api.cors.allow_headers.join(",")
        );
        assert_eq!(
            options.response_headers["Access-Control-Allow-Methods"],
            "GET,POST,OPTIONS"
        );
        for kind in ["DEFAULT_4XX", "DEFAULT_5XX"] {
            let headers = &desired.gateway_responses[kind];
            assert_eq!(
                headers["Access-Control-Allow-Origin"],
                "'https://a.example'"
            );
            assert_eq!(
                headers["Access-Control-Allow-Headers"],
                format!("'{}'", stage.api.cors.allow_headers.join(","))
            );
            assert!(!headers.contains_key("Vary"), "{headers:?}");
        }
    }

    #[test]
    fn several_origins_proxy_the_preflight_and_echo_in_gateway_responses() {
        let mut stage = Stage::defaults("shop", "dev", "us-east-1");
        stage.api.cors.allow_origins = vec!["https://a.example".into(), "https://b.example".into()];
        let desired = desired_of(&stage);
        let options = &desired.methods["OPTIONS"];
        assert_eq!(options.integration_type, "AWS_PROXY");
        assert_eq!(options.uri, desired.methods["GET"].uri);
        assert!(!options.api_key_required);
        let headers = &desired.gateway_responses["DEFAULT_4XX"];
        assert_eq!(
            headers["Access-Control-Allow-Origin"],
            "method.request.header.Origin"
        );
        assert_eq!(headers["Vary"], "'Origin'");
        // From MOCK to proxy is a change of the OPTIONS method.
        let actual = actual_from(&desired_of(&Stage::defaults("shop", "dev", "us-east-1")));
        let changes = diff(&desired, Some(&actual));
        let options = changes
            .iter()
            .find(|c| c.name.starts_with("OPTIONS"))
            .unwrap();
        assert!(options.action.is_change(), "{options:?}");
    }

    #[test]
    fn missing_gateway_responses_are_created_and_redeployed() {
        let desired = desired();
        let mut actual = actual_from(&desired);
        actual.gateway_responses.clear();
        let changes = diff(&desired, Some(&actual));
        assert_eq!(
            changed(&changes),
            [
                (
                    "api gateway response".to_string(),
                    "shop-dev/DEFAULT_4XX".to_string()
                ),
                (
                    "api gateway response".to_string(),
                    "shop-dev/DEFAULT_5XX".to_string()
                ),
                ("api deployment".to_string(), "shop-dev/dev".to_string()),
            ]
        );
    }

    #[test]
    fn stage_tracing_follows_the_function() {
        let desired = desired();
        assert!(desired.tracing);
        let mut actual = actual_from(&desired);
        actual.stage.as_mut().unwrap().tracing = false;
        let changes = diff(&desired, Some(&actual));
        let stage = changes.iter().find(|c| c.kind == "api stage").unwrap();
        assert_eq!(stage.action, ChangeAction::Update(vec!["tracing".into()]));
    }
}
