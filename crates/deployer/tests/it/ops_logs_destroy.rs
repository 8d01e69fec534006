//! `deployer logs` and `deployer destroy` end to end: the real binary
//! against the local AWS (`scripts/local-cloud up`), with log events put and
//! resources checked through the SDK. Each test has its own app name.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::Value;

use crate::util::fixture::{self, Fixture};
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

/// Moves the fixture's local stage to `region`, and answers the SDK
/// configuration there: FilterLogEvents' quota is per account and Region,
/// so a test that counts or times reads keeps to a Region of its own.
async fn in_region(fx: &Fixture, region: &str) -> aws_config::SdkConfig {
    fx.edit_config(|text| {
        fixture::set_in_table(text, "stages.local", "region", &format!("\"{region}\""))
    });
    sdk_config_in(region).await
}

/// A Region of its own for the timed follow below: FilterLogEvents' quota
/// is per account and Region, and other tests read logs in the default
/// one; throttled by them (as a colleague would throttle it on AWS), the
/// follower backs off and its 4 s says nothing.
const FOLLOW_REGION: &str = "eu-north-1";

#[tokio::test(flavor = "multi_thread")]
async fn follow_shows_an_event_put_after_it_started_and_stops_on_ctrl_c() {
    let fx = Fixture::new("logsfollow");
    let config = in_region(&fx, FOLLOW_REGION).await;
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

    let follow = Following::start(&fx, "1m");
    let lines = &follow.lines;

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
    let (status, stderr, rest) = follow.interrupt();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    // Nothing was shown twice.
    assert_eq!(rest, Vec::<String>::new());
}

/// A `deployer logs --follow --json` running in the fixture: its stdout
/// lines as they come, its stderr once it ended.
struct Following {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Following {
    fn start(fx: &Fixture, since: &str) -> Following {
        let mut child = fx
            .command(&[
                "logs", "--stage", "local", "--follow", "--json", "--since", since,
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
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                text += &line;
                text.push('\n');
            }
            text
        });
        Following {
            child,
            lines,
            stderr,
        }
    }

    /// Ctrl-C, and how it ended (within 10 s): its status, its stderr and
    /// the lines it printed that were not taken yet.
    fn interrupt(mut self) -> (std::process::ExitStatus, String, Vec<String>) {
        let pid = self.child.id().to_string();
        let signal = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(signal.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                self.child.kill().unwrap();
                panic!("logs --follow did not stop within 10 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // Its stdout closed with it: the rest of the lines are all there.
        let rest = self.lines.iter().collect();
        (status, self.stderr.join().unwrap(), rest)
    }

    /// Every message it printed until `count` came or `within` passed.
    fn messages(&self, count: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut shown = Vec::new();
        while shown.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => shown.extend(messages(&line)),
                Err(_) => break,
            }
        }
        shown
    }
}

/// A region no other test reads logs in: FilterLogEvents' quota is per
/// account and Region, so the calls it counts are this test's alone.
const QUOTA_REGION: &str = "sa-east-1";

/// More than one FilterLogEvents page (10,000 events) of backlog.
const BACKLOG: usize = 25_000;

/// Two `logs --follow` of one group at once, with a colleague's script
/// reading logs once every 600 ms in the same account and Region, and the
/// local AWS holding FilterLogEvents to 5 calls a second as AWS does: both
/// show the backlog (three pages) and the lines put while they follow,
/// each exactly once and in order, and the colleague is never throttled.
/// Their calls, counted by a proxy in front of the local AWS: at most one
/// a second each, pages included, and fewer while nothing comes.
#[tokio::test(flavor = "multi_thread")]
async fn two_followers_keep_to_their_share_of_the_quota_and_show_each_line_once() {
    let fx = Fixture::new("logsquota");
    let proxy = proxy::FaultProxy::for_local_stage(&fx, 0.0, 22);
    let config = in_region(&fx, QUOTA_REGION).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = fx.log_group("local");
    let stream = "2026/01/01/[1]quota";
    create_log_stream(&logs, &group, stream).await;
    let start = now_ms() - 60_000;
    let mut expected: Vec<String> = (0..BACKLOG).map(|i| format!("backlog {i}")).collect();
    for (c, chunk) in expected.chunks(10_000).enumerate() {
        let events: Vec<(i64, &str)> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| (start + (c * 10_000 + i) as i64, m.as_str()))
            .collect();
        put_events(&logs, &group, stream, &events).await;
    }

    // The colleague: no retries of its own, so every throttling shows.
    let colleague_group = format!("/colleague/{}", fx.app);
    create_log_stream(&logs, &colleague_group, "s").await;
    let colleague = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::config::Builder::from(&config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let (stop_colleague, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let colleague = tokio::spawn(async move {
        let (mut answered, mut throttled) = (0, Vec::new());
        loop {
            match colleague
                .filter_log_events()
                .log_group_name(&colleague_group)
                .send()
                .await
            {
                Ok(_) => answered += 1,
                Err(err) => throttled.push(format!("{:?}", err.code())),
            }
            tokio::select! {
                _ = &mut stopped => return (answered, throttled),
                _ = tokio::time::sleep(Duration::from_millis(600)) => {}
            }
        }
    });

    let followers = [Following::start(&fx, "2m"), Following::start(&fx, "2m")];
    // Lines put while they follow, a few at a time.
    for batch in 0..6 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let lines: Vec<String> = (0..3).map(|i| format!("live {batch}.{i}")).collect();
        let at = now_ms();
        let events: Vec<(i64, &str)> = lines
            .iter()
            .enumerate()
            .map(|(i, m)| (at + i as i64, m.as_str()))
            .collect();
        put_events(&logs, &group, stream, &events).await;
        expected.extend(lines);
    }
    let shown: Vec<Vec<String>> = followers
        .iter()
        .map(|f| f.messages(expected.len(), Duration::from_secs(40)))
        .collect();
    // Idle: a poll or two more show nothing again, and come less often.
    let filter_calls = || -> Vec<Instant> {
        let calls = proxy.counts.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.operation == "FilterLogEvents")
            .map(|c| c.at)
            .collect()
    };
    let busy = filter_calls().len();
    tokio::time::sleep(IDLE).await;
    let calls = filter_calls();
    let idle = calls.len() - busy;
    stop_colleague.send(()).unwrap();
    let (answered, throttled) = colleague.await.unwrap();
    for (follower, shown) in followers.into_iter().zip(&shown) {
        let (status, stderr, again) = follower.interrupt();
        assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
        assert_eq!(shown.len(), expected.len(), "stderr:\n{stderr}");
        let differs = shown.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!(differs, None, "first difference at {differs:?}");
        assert_eq!(again, Vec::<String>::new());
    }
    assert!(answered >= 10, "the colleague's calls answered: {answered}");
    assert_eq!(
        throttled,
        Vec::<String>::new(),
        "the colleague was throttled"
    );
    // A call a second each at most: never three in 0.9 s between the two
    // (a follower reading its backlog's pages back to back would).
    let most = calls
        .iter()
        .map(|at| {
            calls
                .iter()
                .filter(|other| **other >= *at && **other - *at < Duration::from_millis(900))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(busy >= 6, "{busy} FilterLogEvents calls while busy");
    assert!(most <= 2, "{most} FilterLogEvents calls within 0.9 s");
    // Idle, each asks after 1, 2, then every 3 s: at most 5 calls each in
    // the 9 s (a poll a second would be 8 or more each).
    assert!(idle <= 10, "{idle} FilterLogEvents calls in {IDLE:?} idle");
}

/// How long the followers are watched with nothing to show.
const IDLE: Duration = Duration::from_secs(9);

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
