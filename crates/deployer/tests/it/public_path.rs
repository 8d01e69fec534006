//! Through the URL `deployer up` prints, end to end: the local AWS runs the
//! deployed image behind API Gateway's data plane (moto_ext), so these
//! tests call the stage as a browser or curl would — the prediction, the
//! CORS preflight, the function's own 400, the gateway's 403 and 500 — and
//! check `up`'s public path check: it repairs a missing permission, it
//! sends the API key, and when the URL fails it puts the alias back (or
//! removes it) and exits 5.

use chrono::NaiveDate;
use prediction::{Predictor, Settings};
use serde_json::{Value, json};

use crate::util::fixture::{Fixture, changes, texts};
use crate::util::*;

const DATE: &str = "2025-10-20";
const ORIGIN: &str = "https://app.example";

fn forecast(date: &str) -> Value {
    let root = workspace_root();
    let predictor = Predictor::load(&Settings {
        models_dir: root.join("models"),
        data_dir: root.join("data"),
        sla: prediction::parse_sla(None).unwrap(),
    })
    .unwrap();
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    serde_json::to_value(predictor.predict_all(day)).unwrap()
}

fn get(url: &str, date: &str, extra: &[(&str, &str)]) -> HttpAnswer {
    let mut headers = vec![("Origin", ORIGIN)];
    headers.extend_from_slice(extra);
    call_url("GET", &format!("{url}?date={date}"), &headers)
}

/// The URL answers the library's forecast for [`DATE`], as callers see it.
fn assert_serves_the_forecast(url: &str) {
    let served = get(url, DATE, &[]);
    assert_eq!(served.status, 200, "{served:?}");
    assert_eq!(served.json(), forecast(DATE));
}

fn up(fx: &Fixture) -> Value {
    fx.json(&["up", "--stage", "local", "--json", "--yes"])
}

/// An `up` that must fail its checks (exit 5); its stderr.
fn up_exiting_5(fx: &Fixture) -> String {
    let out = fx.deployer(&["up", "--stage", "local", "--yes"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(5),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stderr
}

fn steps(answer: &Value) -> String {
    answer["steps"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_url_serves_the_real_prediction_with_cors() {
    let fx = Fixture::new("ppserve");
    let _dump = DumpOnFailure::new(&fx.app);
    let answer = up(&fx);
    let url = answer["url"].as_str().unwrap();
    assert!(
        steps(&answer).contains("public path"),
        "no public path check in {}",
        steps(&answer)
    );

    let prediction = get(url, DATE, &[]);
    assert_eq!(prediction.status, 200, "{prediction:?}");
    assert_eq!(prediction.json(), forecast(DATE));
    assert_eq!(
        prediction.header("access-control-allow-origin"),
        Some("*"),
        "{prediction:?}"
    );
    assert!(prediction.header("x-amzn-requestid").is_some());

    assert_default_preflight(url, ORIGIN);

    // The function's own refusal, passed through by API Gateway.
    let invalid = get(url, "2025-13-01", &[]);
    assert_eq!(invalid.status, 400, "{invalid:?}");
    assert_eq!(invalid.json()["field"], "date", "{invalid:?}");
    assert!(
        invalid.json()["error"]
            .as_str()
            .unwrap()
            .contains("2025-13-01"),
        "{invalid:?}"
    );

    // A POST of a range, as the browser's JSON request.
    let range = call_url(
        "POST",
        url,
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", "0"),
        ],
    );
    assert_eq!(range.status, 400, "an empty POST body: {range:?}");

    // What the API has no resource for: API Gateway's own 403.
    let elsewhere = call_url("GET", &url.replace("/predict", "/nothing"), &[]);
    assert_eq!(elsewhere.status, 403);
    assert_eq!(
        elsewhere.json(),
        json!({"message": "Missing Authentication Token"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_permission_is_500_and_up_repairs_it() {
    let fx = Fixture::new("ppperm");
    let _dump = DumpOnFailure::new(&fx.app);
    let url = up(&fx)["url"].as_str().unwrap().to_string();
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    lambda
        .remove_permission()
        .function_name(fx.function("local"))
        .qualifier("local")
        .statement_id(deployer::stage::desired::PERMISSION_ID)
        .send()
        .await
        .unwrap();

    let refused = get(&url, DATE, &[]);
    assert_eq!(refused.status, 500, "{refused:?}");
    assert_eq!(refused.json(), json!({"message": "Internal server error"}));

    let repaired = up(&fx);
    assert!(
        changes(&repaired)
            .iter()
            .any(|c| c.starts_with("lambda permission")),
        "{:?}",
        changes(&repaired)
    );
    assert!(
        steps(&repaired).contains("public path"),
        "{}",
        steps(&repaired)
    );
    assert_serves_the_forecast(&url);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_key_auth_refuses_a_call_without_the_key() {
    let fx = Fixture::new("ppkey");
    let _dump = DumpOnFailure::new(&fx.app);
    fx.set_local("api", "auth", "\"api_key\"");
    // The public path check itself calls with the key, and passes.
    let answer = up(&fx);
    assert!(steps(&answer).contains("public path"), "{}", steps(&answer));
    let url = answer["url"].as_str().unwrap();

    let without = get(url, DATE, &[]);
    assert_eq!(without.status, 403, "{without:?}");
    assert_eq!(without.json(), json!({"message": "Forbidden"}));
    let wrong = get(url, DATE, &[("x-api-key", "not-the-key")]);
    assert_eq!(wrong.status, 403, "{wrong:?}");

    let config = sdk_config().await;
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let keys = apigw
        .get_api_keys()
        .name_query(fx.function("local"))
        .include_values(true)
        .send()
        .await
        .unwrap();
    let key = keys.items()[0].value().unwrap().to_string();
    let with = get(url, DATE, &[("x-api-key", &key)]);
    assert_eq!(with.status, 200, "{with:?}");
    assert_eq!(with.json(), forecast(DATE));
    // The browser's preflight carries no key and needs none.
    let preflight = call_url(
        "OPTIONS",
        url,
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "POST"),
        ],
    );
    assert_eq!(preflight.status, 204, "{preflight:?}");
}

/// The smoke test off, so that the public path check is what meets a
/// function that cannot start (its models directory does not exist).
fn break_the_function(fx: &Fixture) -> String {
    let missing = format!("/nonexistent-{}", fx.app);
    fx.set_local("smoke-test", "enabled", "false");
    fx.set_local(
        "function.environment",
        "PREDICTION_MODELS_DIR",
        &format!("\"{missing}\""),
    );
    missing
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_that_crashes_at_init_fails_the_check_and_the_alias_goes_back() {
    let fx = Fixture::new("ppcrash");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = fx.function("local");
    let first = up(&fx);
    let v1 = first["version"].as_str().unwrap().to_string();
    let url = first["url"].as_str().unwrap().to_string();

    break_the_function(&fx);
    let stderr = up_exiting_5(&fx);
    assert!(
        stderr.contains("the public path check failed: GET ")
            && stderr.contains(&format!("?date={DATE} answered status 502")),
        "which check failed is not said:\n{stderr}"
    );
    assert!(
        stderr.contains("{\"message\":\"Internal server error\"}"),
        "what came back is not shown:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("back at version {v1}")),
        "{stderr}"
    );
    assert_eq!(alias_version(&lambda, &function, "local").await, v1);
    // Callers are served by the version they had.
    assert_serves_the_forecast(&url);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_up_whose_url_fails_leaves_no_alias_and_the_next_up_tries_again() {
    let fx = Fixture::new("ppfirst");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = fx.function("local");
    let missing = break_the_function(&fx);

    let stderr = up_exiting_5(&fx);
    assert!(stderr.contains("was removed"), "{stderr}");
    let alias = lambda
        .get_alias()
        .function_name(&function)
        .name("local")
        .send()
        .await;
    assert!(alias.is_err(), "the alias is still there: {alias:?}");

    // Still broken: the rerun does not find "nothing to do", it fails again.
    up_exiting_5(&fx);

    // Repaired: the next up moves the alias and passes.
    fx.edit_config(|text| text.replace(&format!("PREDICTION_MODELS_DIR = \"{missing}\"\n"), ""));
    let fixed = up(&fx);
    assert!(steps(&fixed).contains("public path"), "{}", steps(&fixed));
    assert_serves_the_forecast(fixed["url"].as_str().unwrap());
}
