//! `deployer logs` and `deployer destroy` end to end: the real binary
//! against the local AWS (`scripts/local-cloud up`), with log events put and
//! resources checked through the SDK. Each test has its own app name.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::Value;

use crate::util::fixture::Fixture;
use crate::util::*;

fn now_ms() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_millis()).unwrap()
}

/// Creates the group and a stream in it, as Lambda would on first call.
pub(crate) async fn create_log_stream(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) {
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
}

pub(crate) async fn put_events(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    events: &[(i64, &str)],
) {
    let events: Vec<InputLogEvent> = events
        .iter()
        .map(|(timestamp, message)| {
            InputLogEvent::builder()
                .timestamp(*timestamp)
                .message(*message)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
}

/// The `message` of each NDJSON line.
fn messages(ndjson: &str) -> Vec<String> {
    ndjson
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line:?}"));
            event["message"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_come_out_once_each_oldest_first_and_requests_readably() {
    let fx = Fixture::new("logsorder");
    let config = sdk_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = fx.log_group("local");
    create_log_stream(&logs, &group, "2026/01/01/[$LATEST]a").await;
    let t = now_ms() - 60_000;
    let request = format!(
        r#"{{"request_id":"req-{}","method":"GET","path":"/predict","date":"2025-10-20","status":200,"duration_us":412,"cold_start":true}}"#,
        fx.app
    );
    // Two share a timestamp: both must come out, once each.
    let put = [
        (t, "START RequestId: r1 Version: 1"),
        (t + 10, request.as_str()),
        (t + 10, "same millisecond, second"),
        (t + 20, "REPORT RequestId: r1 Duration: 1.00 ms"),
    ];
    put_events(&logs, &group, "2026/01/01/[$LATEST]a", &put).await;

    let json = fx.stdout(&["logs", "--stage", "local", "--since", "5m", "--json"]);
    let wanted: Vec<String> = put.iter().map(|(_, m)| m.to_string()).collect();
    assert_eq!(messages(&json), wanted, "NDJSON:\n{json}");
    let first: Value = serde_json::from_str(json.lines().nth(1).unwrap()).unwrap();
    assert_eq!(first["request"]["status"], 200, "{first}");
    assert_eq!(first["timestamp"], t + 10);

    let text = fx.stdout(&["logs", "--stage", "local", "--since", "5m"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].ends_with(&format!("200 GET 2025-10-20 0.4 ms cold req-{}", fx.app)),
        "{text}"
    );
    assert!(
        lines[0].ends_with("START RequestId: r1 Version: 1"),
        "{text}"
    );
    assert!(lines[2].ends_with("same millisecond, second"), "{text}");

    // --since leaves out what is older; --filter what does not match.
    let recent = fx.stdout(&["logs", "--stage", "local", "--since", "30s", "--json"]);
    assert_eq!(messages(&recent), Vec::<String>::new(), "{recent}");
    let filtered = fx.stdout(&[
        "logs", "--stage", "local", "--since", "5m", "--json", "--filter", "START",
    ]);
    assert_eq!(messages(&filtered), [put[0].1], "{filtered}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_of_a_function_never_called_are_no_events() {
    let fx = Fixture::new("logsnone");
    let out = fx.deployer(&["logs", "--stage", "local"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("no events"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_shows_an_event_put_after_it_started_and_stops_on_ctrl_c() {
    let fx = Fixture::new("logsfollow");
    let config = sdk_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = fx.log_group("local");
    let stream = "2026/01/01/[$LATEST]f";
    create_log_stream(&logs, &group, stream).await;
    put_events(
        &logs,
        &group,
        stream,
        &[(now_ms() - 5_000, "before follow")],
    )
    .await;

    let mut child = fx
        .command(&[
            "logs", "--stage", "local", "--follow", "--json", "--since", "1m",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text += &line;
            text.push('\n');
        }
        text
    });

    // The backlog first: it is following once it has printed that.
    let first = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("logs --follow printed nothing within 30 s");
    assert_eq!(messages(&first), ["before follow"]);

    put_events(&logs, &group, stream, &[(now_ms(), "after follow")]).await;
    let put_at = Instant::now();
    let next = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("the event put while following did not show within 10 s");
    let waited = put_at.elapsed();
    eprintln!("a new event showed {waited:?} after it was put");
    assert_eq!(messages(&next), ["after follow"]);
    assert!(
        waited < Duration::from_secs(4),
        "it took {waited:?} to show a new event"
    );

    // Ctrl-C: a clean stop, exit 0.
    let pid = child.id().to_string();
    let signal = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(signal.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("logs --follow did not stop within 10 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = stderr_reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    // Nothing was shown twice.
    assert!(lines.try_recv().is_err());
}

/// Whether each kind of resource of the stage still exists.
async fn stage_resources(config: &aws_config::SdkConfig, fx: &Fixture, stage: &str) -> Vec<String> {
    let function = fx.function(stage);
    let mut left = Vec::new();
    let lambda = aws_sdk_lambda::Client::new(config);
    if lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .is_ok()
    {
        left.push(format!("function {function}"));
    }
    let iam = aws_sdk_iam::Client::new(config);
    let role = format!("{function}-exec");
    if iam.get_role().role_name(&role).send().await.is_ok() {
        left.push(format!("role {role}"));
    }
    let apigw = aws_sdk_apigateway::Client::new(config);
    let apis = apigw.get_rest_apis().limit(500).send().await.unwrap();
    for api in apis.items() {
        if api.name() == Some(function.as_str()) {
            left.push(format!("rest api {function} {:?}", api.id()));
        }
    }
    let keys = apigw.get_api_keys().limit(500).send().await.unwrap();
    for key in keys.items() {
        if key.name().is_some_and(|n| n.starts_with(&function)) {
            left.push(format!("api key {:?}", key.name()));
        }
    }
    let plans = apigw.get_usage_plans().limit(500).send().await.unwrap();
    for plan in plans.items() {
        if plan.name().is_some_and(|n| n.starts_with(&function)) {
            left.push(format!("usage plan {:?}", plan.name()));
        }
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    let group = fx.log_group(stage);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .unwrap();
    if groups
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(group.as_str()))
    {
        left.push(format!("log group {group}"));
    }
    left
}

async fn repository_exists(config: &aws_config::SdkConfig, name: &str) -> bool {
    aws_sdk_ecr::Client::new(config)
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .is_ok()
}

/// `up` a stage, whose smoke test and public path check call the function
/// (the local AWS runs it), so that its log group exists as after any
/// first call; returns what there is to remove.
async fn up_with_logs(fx: &Fixture, config: &aws_config::SdkConfig, stage: &str) -> Vec<String> {
    fx.json(&["up", "--stage", stage, "--json", "--yes"]);
    // DescribeLogGroups lists a new group only once it has propagated.
    let there = eventually("the new log group", || async {
        let there = stage_resources(config, fx, stage).await;
        there
            .iter()
            .any(|r| r.starts_with("log group"))
            .then_some(there)
    })
    .await;
    for kind in ["function", "role", "rest api", "log group"] {
        assert!(
            there.iter().any(|r| r.starts_with(kind)),
            "up made no {kind}: {there:?}"
        );
    }
    there
}

fn kinds(answer: &Value) -> Vec<String> {
    answer["removed"]
        .as_array()
        .unwrap_or_else(|| panic!("no removed array in {answer}"))
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_removes_every_resource_of_the_stage_and_a_second_run_is_fine() {
    let fx = Fixture::new("destroy");
    let _dump = DumpOnFailure::new(&fx.app);
    // Behind an API key, so destroy has a key and a usage plan to remove.
    fx.set_local("api", "auth", "\"api_key\"");
    let config = sdk_config().await;
    let there = up_with_logs(&fx, &config, "local").await;
    assert_eq!(there.len(), 6, "no API key or usage plan: {there:?}");

    // No terminal and no --yes: refused, with the way out, nothing touched.
    let refused = fx.deployer(&["destroy", "--stage", "local"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(stage_resources(&config, &fx, "local").await, there);

    let answer = fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
    let removed = kinds(&answer);
    for kind in [
        "lambda permission",
        "api rest api",
        "api key",
        "api usage plan",
        "lambda alias",
        "lambda version",
        "lambda function",
        "iam role",
        "log group",
        "ecr repository",
    ] {
        assert!(removed.iter().any(|k| k == kind), "{kind} not in {answer}");
    }
    assert_eq!(
        stage_resources(&config, &fx, "local").await,
        Vec::<String>::new()
    );
    assert!(!repository_exists(&config, &fx.app).await);

    // Again: nothing left, still a success.
    let again = fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
    assert_eq!(kinds(&again), Vec::<String>::new(), "{again}");
    let text = fx.stdout(&["destroy", "--stage", "local"]);
    assert!(text.contains("Nothing to remove"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_repository_goes_with_the_last_stage_that_uses_it() {
    let fx = Fixture::new("destroytwo");
    let _dump = DumpOnFailure::new(&fx.app);
    fx.add_local_stage("local2");
    let config = sdk_config().await;
    up_with_logs(&fx, &config, "local").await;
    let second = up_with_logs(&fx, &config, "local2").await;

    let first = fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
    assert!(
        !kinds(&first).iter().any(|k| k == "ecr repository"),
        "{first}"
    );
    let kept = first["kept"].to_string();
    assert!(kept.contains(&fx.function("local2")), "{first}");
    assert_eq!(
        stage_resources(&config, &fx, "local").await,
        Vec::<String>::new()
    );
    assert!(repository_exists(&config, &fx.app).await);
    assert_eq!(stage_resources(&config, &fx, "local2").await, second);

    let last = fx.json(&["destroy", "--stage", "local2", "--yes", "--json"]);
    assert!(kinds(&last).iter().any(|k| k == "ecr repository"), "{last}");
    assert_eq!(
        stage_resources(&config, &fx, "local2").await,
        Vec::<String>::new()
    );
    assert!(!repository_exists(&config, &fx.app).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_while_deleting_stops_destroy_with_130_and_the_next_run_finishes() {
    let fx = Fixture::new("destroyint");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    up_with_logs(&fx, &config, "local").await;

    // SIGINT the moment the first deletion begins (its progress line), so
    // that the deletions after it are still to come.
    let mut child = fx
        .command(&["destroy", "--stage", "local", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("lambda permission") && line.ends_with(" ...") {
                sent = Command::new("kill")
                    .args(["-INT", &pid])
                    .status()
                    .unwrap()
                    .success();
            }
            text += &line;
            text.push('\n');
        }
        (sent, text)
    });
    let status = child.wait().unwrap();
    let (sent, stderr) = reader.join().unwrap();
    assert!(sent, "no deletion began:\n{stderr}");
    // 128 + SIGINT, as a shell reports it; the lock is not left behind.
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted (SIGINT)") && stderr.contains("the stage lock is released"),
        "{stderr}"
    );
    assert!(
        !crate::util::snapshot::lock_exists(&fx.lock_group("local")).await,
        "lock left"
    );

    // The next run removes what is left; nothing of the stage remains.
    fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
    assert_eq!(
        stage_resources(&config, &fx, "local").await,
        Vec::<String>::new()
    );
}
