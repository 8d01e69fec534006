//! `deployer invoke` through the real binary: against moto (whose simple
//! Lambda backend answers what the test queued) in a region of its own,
//! and `--local` against the function built from this workspace, compared
//! with the prediction library called directly.

mod util;

use std::path::Path;
use std::process::Output;

use chrono::NaiveDate;
use prediction::{Predictor, Settings};
use serde_json::{Value, json};
use util::fixture::Fixture;
use util::*;

/// moto keeps one queue of canned answers per region: this file's own.
const REGION: &str = "eu-west-3";
const DATE: &str = "2025-10-20";

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// The library's own answer, loaded from the workspace's models and data
/// as the function loads them in its image.
fn predictor() -> Predictor {
    let root = workspace_root();
    Predictor::load(&Settings {
        models_dir: root.join("models"),
        data_dir: root.join("data"),
        sla: prediction::parse_sla(None).unwrap(),
    })
    .unwrap()
}

/// `deployer ARGS` in `dir`; the remote test runs it in its fixture instead.
fn deployer(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .current_dir(dir)
        .env("CI", "true")
        .output()
        .unwrap()
}

fn stdout_json(out: &Output, what: &str) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"))
}

/// A fixture whose deploy.toml has a stage `inv` in [`REGION`] at moto.
fn remote_fixture() -> Fixture {
    let fx = Fixture::new("inv");
    fx.edit_config(|text| {
        format!(
            "{text}\n[stages.inv]\nregion = \"{REGION}\"\nendpoint-url = \"{}\"\n\
             [stages.inv.smoke-test]\nenabled = false\n",
            endpoint_url()
        )
    });
    fx
}

/// The stage's function, version and alias, made with the SDK: `up` pushes
/// images only to us-east-1's registry (the only one the local AWS
/// serves), and moto does not run the image anyway.
async fn create_function(app: &str) {
    let config = sdk_config_in(REGION).await;
    let iam = aws_sdk_iam::Client::new(&config);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let role = iam
        .create_role()
        .role_name(format!("{app}-inv-exec"))
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let role_arn = role.role().unwrap().arn().to_string();
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = format!("{app}-inv");
    let create = lambda
        .create_function()
        .function_name(&function)
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri(format!(
                    "{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{app}@sha256:{}",
                    "ab".repeat(32)
                ))
                .build(),
        )
        .role(role_arn);
    // A client waits for the new role, and for the new function to leave
    // Pending before publishing it, as AWS requires.
    once_ready("CreateFunction", || create.clone().send()).await;
    let publish = lambda.publish_version().function_name(&function);
    let version = once_ready("PublishVersion", || publish.clone().send()).await;
    lambda
        .create_alias()
        .function_name(&function)
        .name("inv")
        .function_version(version.version().unwrap())
        .send()
        .await
        .unwrap();
    // Invoked through the alias: only once the version is Active.
    deployer::aws::lambda::wait_until_ready(&lambda, &function, version.version())
        .await
        .unwrap();
    drain_lambda_answers(&lambda, &function).await;
}

/// A proxy response as the function would give it.
fn proxy(status: u16, body: &str) -> String {
    json!({
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": body,
        "isBase64Encoded": false,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_shows_the_alias_answer_and_fails_on_an_error_answer() {
    let fx = remote_fixture();
    let app = &fx.app;
    let _dump = DumpOnFailure::new(app);
    create_function(app).await;
    let forecast = predictor().predict_all(day(DATE));
    let body = serde_json::to_string(&forecast).unwrap();

    // The readable table: the date, every job with its predicted times,
    // the pipeline line.
    queue_lambda_response_in(REGION, &proxy(200, &body));
    let out = fx.deployer(&["invoke", "--stage", "inv", "--date", DATE, "-v"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with(DATE), "{stdout}");
    for job in &forecast.jobs {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(&job.job))
            .unwrap_or_else(|| panic!("no row for {} in\n{stdout}", job.job));
        assert!(
            row.contains(&job.predicted_start) && row.contains(&job.predicted_end),
            "{row}"
        );
    }
    let pipeline = format!(
        "pipeline {} → {}",
        forecast.pipeline.predicted_start, forecast.pipeline.predicted_end
    );
    assert!(stdout.contains(&pipeline), "{stdout}");
    assert!(
        stderr.contains(&format!("invoke {app}-inv:inv")),
        "{stderr}"
    );

    // --json: exactly the answer's body.
    queue_lambda_response_in(REGION, &proxy(200, &body));
    let out = fx.deployer(&["invoke", "--stage", "inv", "--date", DATE, "--json"]);
    let answer = stdout_json(&out, "invoke --json");
    assert_eq!(answer, serde_json::to_value(&forecast).unwrap());

    // A 400 is shown and the exit is non-zero (1).
    let error = json!({"error": "date: `2025-13-01` is not a date", "field": "date"}).to_string();
    queue_lambda_response_in(REGION, &proxy(400, &error));
    let out = fx.deployer(&["invoke", "--stage", "inv", "--date", DATE]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("status 400"), "{stderr}");
    assert!(stderr.contains("is not a date"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn invoke_local_no_docker_answers_what_the_library_answers() {
    let root = workspace_root();
    let out = deployer(
        &root,
        &["invoke", "--local", "--no-docker", "--date", DATE, "--json"],
    );
    let answer = stdout_json(&out, "invoke --local --no-docker");
    let expected = serde_json::to_value(predictor().predict_all(day(DATE))).unwrap();
    assert_eq!(answer, expected);

    // A range through POST, with the timings of --repeat.
    let out = deployer(
        &root,
        &[
            "invoke",
            "--local",
            "--no-docker",
            "--from",
            "2025-10-24",
            "--to",
            "2025-10-27",
            "--repeat",
            "20",
            "--json",
        ],
    );
    let timings = stdout_json(&out, "invoke --local --no-docker --repeat");
    let expected = predictor().predict_range(day("2025-10-24"), day("2025-10-27"));
    assert_eq!(
        timings["answer"]["predictions"],
        serde_json::to_value(&expected).unwrap()
    );
    assert_eq!(timings["invocations"], 20);
    let p50 = timings["invoke_p50_ms"].as_f64().unwrap();
    let p99 = timings["invoke_p99_ms"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99, "{timings}");
    assert!(timings["init_ms"].as_f64().unwrap() > 0.0, "{timings}");
    assert!(
        timings["first_answer_ms"].as_f64().unwrap() > timings["init_ms"].as_f64().unwrap(),
        "{timings}"
    );
    assert!(timings["peak_rss_kb"].as_u64().unwrap() > 0, "{timings}");
}

#[test]
fn invoke_local_runs_the_image_and_answers_what_the_library_answers() {
    require_local_cloud();
    let root = workspace_root();
    let out = deployer(&root, &["invoke", "--local", "--date", DATE, "--json"]);
    let answer = stdout_json(&out, "invoke --local");
    let expected = serde_json::to_value(predictor().predict_all(day(DATE))).unwrap();
    assert_eq!(answer, expected);

    // The readable form adds the local durations.
    let out = deployer(&root, &["invoke", "--local", "--date", DATE]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("local: init "), "{stdout}");
}

#[test]
fn a_bad_date_is_a_usage_error() {
    let out = deployer(
        &workspace_root(),
        &["invoke", "--local", "--date", "2025-13-01"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM-DD"));
}
