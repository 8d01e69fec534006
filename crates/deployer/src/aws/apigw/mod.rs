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
use crate::aws::permissions::{Declared, Scope, call};
use crate::names::Names;
use crate::plan::{Action, Field, NoField};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// API Gateway authorizes its control plane by HTTP method on the resource's
// path ("Control access for managing an API", API Gateway Developer
// Guide).
pub(crate) const MOD_PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[call("TagResource", "apigateway:PUT", Scope::ApiOwned)],
};

mod apply;
mod deployment;
mod diff;
mod domain;
mod gateway_responses;
mod methods;
mod rest_api;
mod usage_plan;

pub use apply::*;
use deployment::*;
pub use diff::*;
pub use domain::*;
use gateway_responses::*;
use methods::*;
pub use rest_api::*;
pub use usage_plan::api_key_value;
use usage_plan::*;

/// The IAM permissions of the calls in this module's files.
pub(crate) const PERMISSIONS: &[Declared] = &[
    MOD_PERMISSIONS,
    apply::PERMISSIONS,
    deployment::PERMISSIONS,
    domain::PERMISSIONS,
    gateway_responses::PERMISSIONS,
    methods::PERMISSIONS,
    rest_api::PERMISSIONS,
    usage_plan::PERMISSIONS,
];

/// The status code of the CORS preflight answer.
pub const PREFLIGHT_STATUS: &str = "204";

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
pub const GATEWAY_RESPONSES: [&str; 2] = ["DEFAULT_4XX", "DEFAULT_5XX"];

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

/// The CORS header that names the allowed origin.
pub const ALLOW_ORIGIN: &str = "Access-Control-Allow-Origin";

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

/// What [`apply_api`] left behind.
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
