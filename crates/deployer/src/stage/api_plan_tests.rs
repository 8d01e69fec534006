//! The API's desired shape (built here, in `stage::desired`) and its plan
//! as `deployer plan` shows it (`stage::plan::api_changes`), without AWS.

use crate::names::Names;

use crate::aws::apigw::*;
use crate::config::{Auth, Stage};
use crate::plan::{Change, ChangeAction, Kind};

/// The plan's changes, as `deployer plan` shows them.
fn diff(desired: &DesiredApi, actual: Option<&ActualApi>) -> Vec<Change> {
    super::plan::api_changes(desired, &diff_api(desired, actual))
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
        .filter(|c| c.kind == Kind::ApiMethod)
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
    let deployment = changes
        .iter()
        .find(|c| c.kind == Kind::ApiDeployment)
        .unwrap();
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
    let plain = self::desired();
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
    let stage = changes.iter().find(|c| c.kind == Kind::ApiStage).unwrap();
    assert_eq!(stage.action, ChangeAction::Update(vec!["tracing".into()]));
}
