//! `aws::apigw` against moto: the whole API created then left alone, CORS
//! and throttling changes, what API Gateway holds read back with the SDK,
//! `api_key` auth, duplicates from an old crash, and delete — also while
//! another client of the account holds the strict local AWS's DeleteRestApi
//! quota (1 per 30 s per account and Region on AWS).

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::operation::get_stage::GetStageOutput;
use aws_sdk_apigateway::types::{ApiKey, EndpointConfiguration, EndpointType, UsagePlan};
use deployer::aws::Outcome;
use deployer::aws::apigw::{self, DesiredApi};
use deployer::aws::sts;
use deployer::config::{Auth, Stage};
use deployer::names::Names;
use deployer::plan::ChangeAction;
use deployer::stage::plan::api_changes;
use std::collections::HashMap;

use crate::util;
use crate::util::up_path;

const REGION: &str = "us-east-1";

/// The SDK aimed at the local AWS in [`REGION`], which the ARNs below name.
async fn sdk_config() -> aws_config::SdkConfig {
    util::require_local_cloud();
    util::sdk_config_in(REGION).await
}

async fn client() -> Client {
    Client::new(&sdk_config().await)
}

fn stage(prefix: &str) -> Stage {
    let mut stage = Stage::defaults(&util::unique_name(prefix), "dev", REGION);
    stage.smoke_test.enabled = false;
    stage
}

fn alias_arn(stage: &Stage) -> String {
    format!(
        "arn:aws:lambda:{REGION}:123456789012:function:{}:{}",
        stage.function_name(),
        stage.alias_name()
    )
}

fn desired(stage: &Stage) -> DesiredApi {
    DesiredApi::from_stage(stage, &Names::new(stage, util::ACCOUNT))
}

/// What the plan would change to reach `desired` from what API Gateway
/// holds: each change's kind and action, in the plan's order.
async fn planned(client: &Client, desired: &DesiredApi) -> Vec<(&'static str, ChangeAction)> {
    let actual = apigw::read_api(client, desired).await.unwrap();
    api_changes(desired, &apigw::diff_api(desired, actual.as_ref()))
        .into_iter()
        .filter(|c| c.action.is_change())
        .map(|c| (c.kind.as_str(), c.action))
        .collect()
}

/// The CORS headers of a gateway response type, as API Gateway holds them
/// (header → mapping expression).
async fn gateway_response_headers(
    client: &Client,
    api_id: &str,
    kind: &str,
) -> HashMap<String, String> {
    let response = client
        .get_gateway_response()
        .rest_api_id(api_id)
        .response_type(kind.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("no {kind} gateway response: {e:?}"));
    response
        .response_parameters()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("gatewayresponse.header.")?.to_string(),
                v.clone(),
            ))
        })
        .collect()
}

/// The `dev` stage as API Gateway holds it.
async fn dev_stage(client: &Client, api_id: &str) -> GetStageOutput {
    client
        .get_stage()
        .rest_api_id(api_id)
        .stage_name("dev")
        .send()
        .await
        .unwrap()
}

/// The API keys whose names start with `name` (API Gateway's name query).
async fn api_keys_like(client: &Client, name: &str) -> Vec<ApiKey> {
    client
        .get_api_keys()
        .name_query(name)
        .send()
        .await
        .unwrap()
        .items()
        .to_vec()
}

async fn usage_plans_named(client: &Client, name: &str) -> Vec<UsagePlan> {
    let plans = client.get_usage_plans().send().await.unwrap();
    plans
        .items()
        .iter()
        .filter(|p| p.name() == Some(name))
        .cloned()
        .collect()
}

pub(crate) async fn apis_named(client: &Client, name: &str) -> Vec<String> {
    client
        .get_rest_apis()
        .limit(500)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter(|a| a.name() == Some(name))
        .filter_map(|a| a.id().map(str::to_string))
        .collect()
}

async fn resource_id(client: &Client, api_id: &str, path: &str) -> String {
    let resources = client
        .get_resources()
        .rest_api_id(api_id)
        .send()
        .await
        .unwrap();
    resources
        .items()
        .iter()
        .find(|r| r.path() == Some(path))
        .and_then(|r| r.id())
        .unwrap_or_else(|| panic!("no resource {path} in {resources:?}"))
        .to_string()
}

/// The OPTIONS answer's headers, as the integration response holds them.
async fn preflight_headers(
    client: &Client,
    api_id: &str,
    resource: &str,
) -> HashMap<String, String> {
    let method = client
        .get_method()
        .rest_api_id(api_id)
        .resource_id(resource)
        .http_method("OPTIONS")
        .send()
        .await
        .unwrap();
    let integration = method.method_integration().unwrap();
    assert_eq!(integration.r#type().unwrap().as_str(), "MOCK");
    let response = integration
        .integration_responses()
        .unwrap()
        .get("204")
        .unwrap();
    response.response_parameters().unwrap().clone()
}

#[tokio::test]
async fn whole_api_is_created_then_unchanged_without_a_new_deployment() {
    let client = client().await;
    let stage = stage("apigw-idem");
    let desired = desired(&stage);

    let (outcome, info) = up_path::api(&client, &desired).await.unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert!(info.deployment_id.is_some());
    assert_eq!(
        info.url,
        format!(
            "https://{}.execute-api.{REGION}.amazonaws.com/dev/predict",
            info.api_id
        )
    );

    let started = std::time::Instant::now();
    let (outcome, again) = up_path::api(&client, &desired).await.unwrap();
    eprintln!(
        "an unchanged read, diff and apply of the API took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome, Outcome::Unchanged);
    assert_eq!(again.api_id, info.api_id);
    assert_eq!(again.deployment_id, None);
    assert_eq!(util::deployment_count(&client, &info.api_id).await, 1);
    assert_eq!(
        apis_named(&client, &stage.api_name()).await,
        std::slice::from_ref(&info.api_id)
    );

    // The plan after it is empty.
    let changes = planned(&client, &desired).await;
    assert!(changes.is_empty(), "{changes:#?}");

    // What API Gateway holds, read back with the SDK.
    let api = client
        .get_rest_api()
        .rest_api_id(&info.api_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.endpoint_configuration().unwrap().types(),
        [EndpointType::Regional]
    );
    assert_eq!(
        api.tags()
            .unwrap()
            .get("deployer:stage")
            .map(String::as_str),
        Some("dev")
    );
    let resource = resource_id(&client, &info.api_id, "/predict").await;
    for http_method in ["GET", "POST"] {
        let method = client
            .get_method()
            .rest_api_id(&info.api_id)
            .resource_id(&resource)
            .http_method(http_method)
            .send()
            .await
            .unwrap();
        assert_eq!(method.authorization_type(), Some("NONE"));
        assert_eq!(method.api_key_required(), Some(false));
        let integration = method.method_integration().unwrap();
        assert_eq!(integration.r#type().unwrap().as_str(), "AWS_PROXY");
        assert_eq!(integration.http_method(), Some("POST"));
        assert_eq!(
            integration.uri(),
            Some(
                format!(
                    "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{}/invocations",
                    alias_arn(&stage)
                )
                .as_str()
            )
        );
    }
    let headers = preflight_headers(&client, &info.api_id, &resource).await;
    assert_eq!(
        headers["method.response.header.Access-Control-Allow-Origin"],
        "'*'"
    );
    assert_eq!(
        headers["method.response.header.Access-Control-Allow-Methods"],
        "'GET,POST,OPTIONS'"
    );
    // What AWS CDK's Cors.DEFAULT_HEADERS allows, deploy.toml's default.
    assert_eq!(
        headers["method.response.header.Access-Control-Allow-Headers"],
        "'Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,X-Amz-User-Agent'"
    );
    // API Gateway's own 4xx and 5xx answers carry the same CORS headers.
    for kind in ["DEFAULT_4XX", "DEFAULT_5XX"] {
        let gateway = gateway_response_headers(&client, &info.api_id, kind).await;
        assert_eq!(gateway["Access-Control-Allow-Origin"], "'*'", "{kind}");
        assert_eq!(
            gateway["Access-Control-Allow-Headers"],
            headers["method.response.header.Access-Control-Allow-Headers"],
            "{kind}"
        );
    }

    let api_stage = dev_stage(&client, &info.api_id).await;
    assert_eq!(api_stage.deployment_id(), info.deployment_id.as_deref());
    // X-Ray on the stage, with the function's `tracing = true`.
    assert!(api_stage.tracing_enabled());
    let settings = &api_stage.method_settings().unwrap()["*/*"];
    assert_eq!(settings.throttling_rate_limit(), 100.0);
    assert_eq!(settings.throttling_burst_limit(), 200);
    assert_eq!(
        api_stage.tags().unwrap().get("deployer:app"),
        Some(&stage.app)
    );

    apigw::delete_api(&client, &stage.api_name(), &stage.tags())
        .await
        .unwrap();
}

#[tokio::test]
async fn cors_change_redeploys_and_throttling_change_updates_the_stage() {
    let client = client().await;
    let mut stage = stage("apigw-change");
    let (_, info) = up_path::api(&client, &desired(&stage)).await.unwrap();

    stage.api.cors.allow_origins = vec!["https://example.com".into()];
    stage.api.cors.allow_headers = vec!["Content-Type".into()];
    let changed = desired(&stage);
    let plan = planned(&client, &changed).await;
    let kinds: Vec<_> = plan.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(
        kinds,
        [
            "api method",
            "api gateway response",
            "api gateway response",
            "api deployment"
        ],
        "{plan:#?}"
    );

    let (outcome, after_cors) = up_path::api(&client, &changed).await.unwrap();
    assert_eq!(outcome, Outcome::Updated);
    let new_deployment = after_cors.deployment_id.clone().unwrap();
    assert_ne!(Some(&new_deployment), info.deployment_id.as_ref());
    assert_eq!(util::deployment_count(&client, &info.api_id).await, 2);
    let api_stage = dev_stage(&client, &info.api_id).await;
    assert_eq!(api_stage.deployment_id(), Some(new_deployment.as_str()));
    let resource = resource_id(&client, &info.api_id, "/predict").await;
    let headers = preflight_headers(&client, &info.api_id, &resource).await;
    assert_eq!(
        headers["method.response.header.Access-Control-Allow-Origin"],
        "'https://example.com'"
    );
    assert_eq!(
        headers["method.response.header.Access-Control-Allow-Headers"],
        "'Content-Type'"
    );
    let gateway = gateway_response_headers(&client, &info.api_id, "DEFAULT_4XX").await;
    assert_eq!(
        gateway["Access-Control-Allow-Origin"],
        "'https://example.com'"
    );

    // Throttling is a stage setting: it applies without a redeploy.
    stage.api.throttling.rate_limit = 7.0;
    stage.api.throttling.burst_limit = 9;
    let (outcome, after_throttle) = up_path::api(&client, &desired(&stage)).await.unwrap();
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(after_throttle.deployment_id, None);
    let api_stage = dev_stage(&client, &info.api_id).await;
    let settings = &api_stage.method_settings().unwrap()["*/*"];
    assert_eq!(settings.throttling_rate_limit(), 7.0);
    assert_eq!(settings.throttling_burst_limit(), 9);

    // Dropping GET removes the method and redeploys.
    stage.api.methods = vec!["POST".into()];
    let (outcome, after_drop) = up_path::api(&client, &desired(&stage)).await.unwrap();
    assert_eq!(outcome, Outcome::Updated);
    assert!(after_drop.deployment_id.is_some());
    let gone = client
        .get_method()
        .rest_api_id(&info.api_id)
        .resource_id(&resource)
        .http_method("GET")
        .send()
        .await;
    assert!(gone.is_err(), "GET still there: {gone:?}");
    let (outcome, _) = up_path::api(&client, &desired(&stage)).await.unwrap();
    assert_eq!(outcome, Outcome::Unchanged);

    apigw::delete_api(&client, &stage.api_name(), &stage.tags())
        .await
        .unwrap();
}

#[tokio::test]
async fn api_key_auth_creates_key_and_usage_plan_and_removes_them_again() {
    let client = client().await;
    let mut stage = stage("apigw-key");
    stage.api.auth = Auth::ApiKey;
    let (outcome, info) = up_path::api(&client, &desired(&stage)).await.unwrap();
    assert_eq!(outcome, Outcome::Created);
    let key_id = info.api_key_id.clone().unwrap();

    let keys = api_keys_like(&client, &stage.api_name()).await;
    let key = keys
        .iter()
        .find(|k| k.name() == Some(stage.api_name().as_str()))
        .unwrap();
    assert_eq!(key.id(), Some(key_id.as_str()));
    let plans = usage_plans_named(&client, &stage.api_name()).await;
    let plan = plans.first().expect("no usage plan of that name");
    let bound: Vec<_> = plan
        .api_stages()
        .iter()
        .map(|s| (s.api_id().unwrap(), s.stage().unwrap()))
        .collect();
    assert_eq!(bound, [(info.api_id.as_str(), "dev")]);
    assert_eq!(plan.throttle().unwrap().burst_limit(), 200);
    let plan_keys = client
        .get_usage_plan_keys()
        .usage_plan_id(plan.id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        plan_keys
            .items()
            .iter()
            .filter_map(|k| k.id())
            .collect::<Vec<_>>(),
        [key_id.as_str()]
    );
    let resource = resource_id(&client, &info.api_id, "/predict").await;
    let get = client
        .get_method()
        .rest_api_id(&info.api_id)
        .resource_id(&resource)
        .http_method("GET")
        .send()
        .await
        .unwrap();
    assert_eq!(get.api_key_required(), Some(true));

    let (outcome, _) = up_path::api(&client, &desired(&stage)).await.unwrap();
    assert_eq!(outcome, Outcome::Unchanged);

    stage.api.auth = Auth::None;
    let (outcome, info) = up_path::api(&client, &desired(&stage)).await.unwrap();
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(info.api_key_id, None);
    let keys = api_keys_like(&client, &stage.api_name()).await;
    assert!(keys.is_empty(), "{keys:?}");
    let plans = usage_plans_named(&client, &stage.api_name()).await;
    assert!(plans.is_empty(), "{plans:?}");

    apigw::delete_api(&client, &stage.api_name(), &stage.tags())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_duplicate_from_an_old_crash_is_reported_and_left_alone() {
    let client = client().await;
    let stage = stage("apigw-dup");
    let (_, first) = up_path::api(&client, &desired(&stage)).await.unwrap();
    // moto's creation dates are in whole seconds: make the second younger.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = client
        .create_rest_api()
        .name(stage.api_name())
        .endpoint_configuration(
            EndpointConfiguration::builder()
                .types(EndpointType::Regional)
                .build(),
        )
        .set_tags(Some(stage.tags().into_iter().collect()))
        .send()
        .await
        .unwrap();
    let second_id = second.id().unwrap().to_string();

    let (outcome, info) = up_path::api(&client, &desired(&stage)).await.unwrap();
    assert_eq!(outcome, Outcome::Unchanged);
    assert_eq!(info.api_id, first.api_id);
    assert_eq!(info.duplicates, [second_id]);
    assert_eq!(apis_named(&client, &stage.api_name()).await.len(), 2);

    apigw::delete_api(&client, &stage.api_name(), &stage.tags())
        .await
        .unwrap();
    assert!(apis_named(&client, &stage.api_name()).await.is_empty());
}

#[tokio::test]
async fn delete_twice_is_fine() {
    let client = client().await;
    let mut stage = stage("apigw-delete");
    stage.api.auth = Auth::ApiKey;
    up_path::api(&client, &desired(&stage)).await.unwrap();
    apigw::delete_api(&client, &stage.api_name(), &stage.tags())
        .await
        .unwrap();
    apigw::delete_api(&client, &stage.api_name(), &stage.tags())
        .await
        .unwrap();
    assert!(apis_named(&client, &stage.api_name()).await.is_empty());
    assert!(api_keys_like(&client, &stage.api_name()).await.is_empty());
    assert!(
        apigw::read_api(&client, &desired(&stage))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn caller_account_and_source_arn() {
    let config = sdk_config().await;
    let account = sts::caller_account(&aws_sdk_sts::Client::new(&config))
        .await
        .unwrap();
    assert_eq!(account, "123456789012");
    assert_eq!(
        Names::new(&stage("apigw-names"), &account).api_source_arn("abc"),
        "arn:aws:execute-api:us-east-1:123456789012:abc/*/*/predict"
    );
}

#[tokio::test]
async fn several_origins_send_the_preflight_to_the_function_and_tracing_follows_it() {
    let client = client().await;
    let mut stage = stage("apigw-origins");
    stage.api.cors.allow_origins = vec!["https://a.example".into(), "https://b.example".into()];
    stage.function.tracing = false;
    let (_, info) = up_path::api(&client, &desired(&stage)).await.unwrap();
    assert!(!dev_stage(&client, &info.api_id).await.tracing_enabled());

    // A MOCK answer is static: with two origins OPTIONS goes to the
    // function (which echoes the allowed caller), without an API key.
    let resource = resource_id(&client, &info.api_id, "/predict").await;
    let options = client
        .get_method()
        .rest_api_id(&info.api_id)
        .resource_id(&resource)
        .http_method("OPTIONS")
        .send()
        .await
        .unwrap();
    assert_eq!(options.api_key_required(), Some(false));
    let integration = options.method_integration().unwrap();
    assert_eq!(integration.r#type().unwrap().as_str(), "AWS_PROXY");
    assert!(
        integration.uri().unwrap().ends_with(&format!(
            "function:{}:dev/invocations",
            stage.function_name()
        )),
        "{integration:?}"
    );
    // The gateway's own errors echo the caller's origin.
    let gateway = gateway_response_headers(&client, &info.api_id, "DEFAULT_5XX").await;
    assert_eq!(
        gateway["Access-Control-Allow-Origin"],
        "method.request.header.Origin"
    );
    assert_eq!(gateway["Vary"], "'Origin'");

    // Tracing on: the stage follows, without a redeploy.
    stage.function.tracing = true;
    let changed = desired(&stage);
    assert_eq!(
        planned(&client, &changed).await,
        [("api stage", ChangeAction::Update(vec!["tracing".into()]))]
    );
    let (outcome, after) = up_path::api(&client, &changed).await.unwrap();
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(after.deployment_id, None);
    assert!(dev_stage(&client, &info.api_id).await.tracing_enabled());

    apigw::delete_api(&client, &stage.api_name(), &stage.tags())
        .await
        .unwrap();
}
