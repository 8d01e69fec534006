//! Protected stages and the plan an operator judges them by (issue 27,
//! items 4, 6, 7), end to end: the real binary against the strict local
//! AWS, what it left checked through the SDK. A protected stage is not
//! destroyed without its name typed or `--force-protected`, `up` asks
//! before applying to it (and refuses without a terminal and `--yes`), the
//! plan shows old and new values but never a secret, `plan
//! --detailed-exitcode` gates a pipeline, `logs` keeps a caller's escape
//! sequences off the terminal, the public-path check follows `[api]`, and
//! an untagged REST API with the stage's name is left alone.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::ops_logs_destroy::{create_log_stream, put_events};
use crate::util::fixture::{Fixture, set_in_table, texts};
use crate::util::*;

/// The secret the function's environment carries: never printed.
const SECRET: &str = "s3cr3t-before";
const NEW_SECRET: &str = "s3cr3t-after";

/// A fixture whose local stage has `protected = true` and a secret in its
/// environment.
fn protected_fixture(prefix: &str) -> Fixture {
    let fx = Fixture::new(prefix);
    fx.edit_config(|text| set_in_table(text, "stages.local", "protected", "true"));
    fx.set_local(
        "function.environment",
        "API_TOKEN",
        &format!("\"{SECRET}\""),
    );
    fx
}

async fn memory_of(lambda: &aws_sdk_lambda::Client, function: &str) -> Option<i32> {
    match lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
    {
        Ok(config) => config.memory_size(),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(err) => panic!("GetFunctionConfiguration {function}: {err:?}"),
    }
}

/// The REST APIs named `name`: (id, tags).
async fn rest_apis(
    apigw: &aws_sdk_apigateway::Client,
    name: &str,
) -> Vec<(String, std::collections::HashMap<String, String>)> {
    let apis = apigw.get_rest_apis().limit(500).send().await.unwrap();
    apis.items()
        .iter()
        .filter(|api| api.name() == Some(name))
        .map(|api| {
            (
                api.id().unwrap().to_string(),
                api.tags().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// `deployer ARGS` under a pseudo-terminal (util-linux `script`), with
/// `answer` typed at its prompt, as an operator at a terminal runs it.
fn at_terminal(fx: &Fixture, args: &[&str], answer: &str) -> Output {
    let line = std::iter::once(env!("CARGO_BIN_EXE_deployer"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    // The environment of a CI run (credentials, target dir), but a
    // terminal and no `CI`.
    let ci = fx.command(&[]);
    let mut command = Command::new("script");
    command
        .args(["-qec", &line, "/dev/null"])
        .current_dir(fx.path(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("TERM", "xterm");
    for (name, value) in ci.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command.env_remove("CI");
    let mut child = command.spawn().expect("util-linux `script` runs");
    // Typed before the question shows: the terminal keeps it until read.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protected_stage_asks_before_up_and_is_not_destroyed_without_its_name() {
    require_strict_local_aws();
    let fx = protected_fixture("protect");
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = fx.function("local");

    // Without a terminal and without --yes, even the first up is refused,
    // before anything exists.
    let refused = fx.deployer(&["up", "--stage", "local"]);
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--yes") && stderr.contains("[stages.local] protected = true"),
        "{stderr}"
    );
    assert_eq!(
        memory_of(&lambda, &function).await,
        None,
        "up changed something"
    );

    fx.stdout(&["up", "--stage", "local", "--yes"]);
    let memory = memory_of(&lambda, &function).await.unwrap();
    let out = fx.deployer(&["plan", "--stage", "local", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));

    // A change: its old and new values in the plan, the secret's never.
    let bigger = memory + 128;
    fx.set_local("function", "memory", &bigger.to_string());
    fx.set_local(
        "function.environment",
        "API_TOKEN",
        &format!("\"{NEW_SECRET}\""),
    );
    let args = ["plan", "--stage", "local", "--detailed-exitcode", "--json"];
    let out = fx.deployer(&args);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let change = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "lambda function")
        .unwrap();
    let values = change["values"].as_array().unwrap();
    let memory_value = values.iter().find(|v| v["field"] == "memory").unwrap();
    assert_eq!(memory_value["old"], format!("{memory} MB"), "{change}");
    assert_eq!(memory_value["new"], format!("{bigger} MB"), "{change}");
    let environment = values.iter().find(|v| v["field"] == "environment").unwrap();
    assert_eq!(environment["sensitive"], true, "{change}");
    assert!(
        environment["detail"]
            .as_str()
            .unwrap()
            .contains("API_TOKEN")
    );
    let text = fx.deployer(&["plan", "--stage", "local"]);
    let (text_out, text_err) = texts(&text);
    assert!(
        text_out.contains(&format!("memory: {memory} MB -> {bigger} MB")),
        "{text_out}"
    );
    for shown in [&stdout, &stderr, &text_out, &text_err] {
        assert!(
            !shown.contains(SECRET) && !shown.contains(NEW_SECRET),
            "a secret was printed:\n{shown}"
        );
    }

    // up with a change and no --yes: exit 2, nothing applied.
    let refused = fx.deployer(&["up", "--stage", "local"]);
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--yes") && stderr.contains("protected"),
        "{stderr}"
    );
    assert_eq!(memory_of(&lambda, &function).await, Some(memory));

    // At a terminal: the plan and the question; "n" applies nothing, "y"
    // applies it.
    let no = at_terminal(&fx, &["up", "--stage", "local"], "n");
    let (no_out, no_err) = texts(&no);
    assert!(!no.status.success(), "{no_out}\n{no_err}");
    assert!(
        no_out.contains("apply these") && no_out.contains(&format!("{bigger} MB")),
        "the question and the plan were not shown:\n{no_out}"
    );
    assert_eq!(memory_of(&lambda, &function).await, Some(memory));
    let yes = at_terminal(&fx, &["up", "--stage", "local"], "y");
    assert!(yes.status.success(), "{:?}", texts(&yes));
    assert_eq!(memory_of(&lambda, &function).await, Some(bigger));
    let out = fx.deployer(&["plan", "--stage", "local", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));

    // destroy --yes is not enough: exit 2, the setting and its line named,
    // nothing deleted.
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let refused = fx.deployer(&["destroy", "--stage", "local", "--yes"]);
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("[stages.local] protected = true")
            && stderr.contains("deploy.toml:")
            && stderr.contains("--force-protected"),
        "{stderr}"
    );
    assert_eq!(memory_of(&lambda, &function).await, Some(bigger));
    assert_eq!(rest_apis(&apigw, &function).await.len(), 1);
    // At a terminal, a wrong name is a refusal too.
    let wrong = at_terminal(&fx, &["destroy", "--stage", "local"], "yes");
    assert_eq!(wrong.status.code(), Some(2), "{:?}", texts(&wrong));
    assert_eq!(memory_of(&lambda, &function).await, Some(bigger));

    let gone = fx.json(&[
        "destroy",
        "--stage",
        "local",
        "--force-protected",
        "--yes",
        "--json",
    ]);
    assert!(!gone["removed"].as_array().unwrap().is_empty(), "{gone}");
    assert_eq!(memory_of(&lambda, &function).await, None);
    assert!(rest_apis(&apigw, &function).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_escape_a_callers_control_characters() {
    let fx = Fixture::new("logsesc");
    let config = sdk_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = fx.log_group("local");
    let stream = "2026/01/01/[$LATEST]e";
    create_log_stream(&logs, &group, stream).await;
    // A raw line (another program's) and the function's request line with
    // a path that clears the screen and retitles the terminal.
    let now = chrono::Utc::now().timestamp_millis() - 1000;
    let raw = "panic: \u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m done";
    let request = serde_json::json!({
        "request_id": "r1", "method": "GET", "path": "/\u{1b}[2Jx",
        "status": 404, "duration_us": 10, "cold_start": false,
        "error": "no such path: /\u{1b}[2Jx"
    })
    .to_string();
    put_events(
        &logs,
        &group,
        stream,
        &[(now, raw), (now + 1, request.as_str())],
    )
    .await;

    for args in [
        &["logs", "--stage", "local", "--since", "5m"][..],
        &["logs", "--stage", "local", "--since", "5m", "--json"][..],
    ] {
        let out = fx.deployer(args);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stdout.lines().count(), 2, "{stdout}");
        let raw_controls: Vec<char> = stdout
            .chars()
            .filter(|c| c.is_control() && !matches!(c, '\n' | '\t'))
            .collect();
        assert!(raw_controls.is_empty(), "{args:?} printed {raw_controls:?}");
        assert!(stdout.contains("\\u001b"), "{stdout}");
    }
    let text = fx.stdout(&["logs", "--stage", "local", "--since", "5m"]);
    assert!(
        text.contains("panic: \\u001b[2J\\u001b]0;owned\\u0007\\u009b31m done"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_public_path_check_follows_the_stages_api_path_and_methods() {
    require_strict_local_aws();
    let fx = Fixture::new("apipath");
    fx.set_local("api", "path", "\"forecast\"");
    fx.set_local("api", "methods", "[\"POST\"]");
    let answer = fx.json(&["up", "--stage", "local", "--json"]);
    let url = answer["url"].as_str().unwrap();
    assert!(url.ends_with("/forecast"), "{answer}");
    let steps = answer["steps"].as_array().unwrap();
    let public = steps.iter().find(|s| s["step"] == "public path").unwrap();
    assert!(
        !public["outcome"].as_str().unwrap().contains("did not"),
        "{public}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untagged_rest_api_with_the_stages_name_stops_up_and_is_left_alone() {
    let fx = Fixture::new("foreignapi");
    let config = sdk_config().await;
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let name = fx.function("local");
    let theirs = apigw.create_rest_api().name(&name).send().await.unwrap();
    let id = theirs.id().unwrap().to_string();
    let resources_before = apigw.get_resources().rest_api_id(&id).send().await.unwrap();

    for args in [
        &["plan", "--stage", "local"][..],
        &["up", "--stage", "local"][..],
    ] {
        let out = fx.deployer(args);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&id)
                && stderr.contains("tag-resource")
                && stderr.contains("deployer:stage"),
            "{args:?}: {stderr}"
        );
    }
    // Still one API of that name, untagged, with the resources it had.
    let apis = rest_apis(&apigw, &name).await;
    assert_eq!(apis.len(), 1, "{apis:?}");
    assert_eq!(apis[0].0, id);
    assert!(
        !apis[0].1.keys().any(|k| k.starts_with("deployer:")),
        "{apis:?}"
    );
    let resources_after = apigw.get_resources().rest_api_id(&id).send().await.unwrap();
    assert_eq!(
        resources_before.items().len(),
        resources_after.items().len()
    );
    let deployments = apigw
        .get_deployments()
        .rest_api_id(&id)
        .send()
        .await
        .unwrap();
    assert!(deployments.items().is_empty());
    // Nothing else of the stage was made either.
    let lambda = aws_sdk_lambda::Client::new(&config);
    assert_eq!(memory_of(&lambda, &name).await, None);
}
