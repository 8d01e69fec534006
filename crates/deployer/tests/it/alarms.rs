//! `[alarms]` end to end: the real binary against the local AWS, whose
//! CloudWatch evaluates the alarms against the metrics its API Gateway and
//! Lambda publish and whose SNS delivers to HTTP subscribers on loopback
//! (scripts/moto_ext: cloudwatch_alarms, sns_http). A subscriber in the
//! test (a thread on a `TcpListener`) confirms its subscription through
//! `SubscribeURL` and records what it is sent; the stage is broken on
//! purpose (the API's permission on the alias removed: every request is a
//! 500), the subscriber gets the ALARM notification of the 5XX-rate alarm,
//! `up` repairs the stage and OK follows. Windows are one minute, which
//! the local AWS runs in 6 s at `LOCAL_AWS_TIME_SCALE=0.1`.
//!
//! The policy `deployer policy` prints is proven to cover the alarms' and
//! the topic's calls under the local AWS's IAM enforcement.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::fixture::{Fixture, changes, json_of, set_in_table, texts};
use crate::util::iam_moto::IamMoto;
use crate::util::*;

/// An HTTP endpoint on loopback that confirms SNS subscriptions and keeps
/// every message it is sent (the JSON bodies, in arrival order).
struct Subscriber {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Subscriber {
    fn start() -> Subscriber {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/alarms", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let mut stream = reader.into_inner();
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                drop(stream);
                let Ok(message) = serde_json::from_slice::<Value>(&body) else {
                    continue;
                };
                // As a subscriber's code does: visit the link to confirm.
                if message["Type"] == "SubscriptionConfirmation"
                    && let Some(link) = message["SubscribeURL"].as_str()
                {
                    let answer = call_url("GET", link, &[]);
                    assert_eq!(answer.status, 200, "confirming: {answer:?}");
                }
                kept.lock().unwrap().push(message);
            }
        });
        Subscriber { url, received }
    }

    /// The notifications received so far: (subject, the alarm's message).
    fn notifications(&self) -> Vec<(String, Value)> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["Type"] == "Notification")
            .map(|m| {
                let message = m["Message"].as_str().unwrap_or_default();
                (
                    m["Subject"].as_str().unwrap_or_default().to_string(),
                    serde_json::from_str(message).unwrap_or(Value::Null),
                )
            })
            .collect()
    }

    fn confirmations(&self) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["Type"] == "SubscriptionConfirmation")
            .count()
    }

    /// Waits (sending `traffic` between looks) for a notification, past the
    /// first `seen` ones, that `alarm` went to `state`; fails after `limit`.
    fn wait_for(
        &self,
        alarm: &str,
        state: &str,
        seen: usize,
        limit: Duration,
        traffic: impl Fn(),
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .notifications()
                .into_iter()
                .skip(seen)
                .find(|(_, m)| m["AlarmName"] == alarm && m["NewStateValue"] == state);
            if let Some((subject, message)) = found {
                assert!(
                    subject.starts_with(&format!("{state}: \"{alarm}\"")),
                    "{subject}"
                );
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "no {state} notification for {alarm} within {limit:?}; received: {:#?}",
                self.received.lock().unwrap()
            );
            traffic();
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Sets the local stage's `[stages.local.alarms]` keys (values as TOML).
fn set_alarms(fx: &Fixture, stage: &str, settings: &[(&str, &str)]) {
    let table = format!("stages.{stage}.alarms");
    fx.edit_config(|text| {
        settings
            .iter()
            .fold(text.to_string(), |text, (key, value)| {
                set_in_table(&text, &table, key, value)
            })
    });
}

/// Alarms on the local stage that judge one period of one minute (6 s
/// here), telling `notify`.
fn quick_alarms(fx: &Fixture, stage: &str, notify: &str) {
    set_alarms(
        fx,
        stage,
        &[
            ("enabled", "true"),
            ("notify", &format!("[\"{notify}\"]")),
            ("period", "60"),
            ("evaluation-periods", "1"),
            ("datapoints-to-alarm", "1"),
            ("treat-missing-data", "\"notBreaching\""),
            ("server-error-rate", "0.5"),
        ],
    );
}

fn alarm_states(status: &Value) -> Vec<(String, String)> {
    status["alarms"]
        .as_array()
        .unwrap_or_else(|| panic!("no alarms in {status}"))
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_stage_pages_the_subscriber_and_its_repair_says_ok() {
    let fx = Fixture::new("alarms");
    let _dump = DumpOnFailure::new(&fx.app);
    let subscriber = Subscriber::start();
    quick_alarms(&fx, "local", &subscriber.url);
    let rate_alarm = format!("{}-local-5xx-rate", fx.app);

    let up = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let made = changes(&up);
    for expected in [
        format!("sns topic {}-local-alarms create", fx.app),
        format!(
            "sns subscription {}-local-alarms/http:{} create",
            fx.app, subscriber.url
        ),
        format!("cloudwatch alarm {rate_alarm} create"),
        format!("cloudwatch alarm {}-local-errors create", fx.app),
        format!("cloudwatch alarm {}-local-throttles create", fx.app),
        format!("cloudwatch alarm {}-local-latency-p99 create", fx.app),
    ] {
        assert!(made.contains(&expected), "{expected} not in {made:#?}");
    }
    // No provisioned concurrency on the local stage: no spillover alarm.
    assert!(!made.iter().any(|c| c.contains("spillover")), "{made:#?}");
    let url = up["url"].as_str().unwrap().to_string();
    let get = || call_url("GET", &format!("{url}?date=2025-10-20"), &[]);

    // SNS asked the endpoint to confirm, and it did.
    eventually("the subscription's confirmation", || async {
        (subscriber.confirmations() > 0).then_some(())
    })
    .await;
    let config = sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = format!(
        "arn:aws:sns:{}:123456789012:{}-local-alarms",
        region(),
        fx.app
    );
    eventually("the confirmed subscription", || async {
        let listed = sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic)
            .send()
            .await
            .unwrap();
        listed
            .subscriptions()
            .iter()
            .any(|s| s.subscription_arn().is_some_and(|a| a.starts_with("arn:")))
            .then_some(())
    })
    .await;
    assert_eq!(get().status, 200);

    // Break it: API Gateway may no longer call the alias, every request is
    // a 500.
    let lambda = aws_sdk_lambda::Client::new(&config);
    lambda
        .remove_permission()
        .function_name(fx.function("local"))
        .qualifier("local")
        .statement_id(deployer::stage::desired::PERMISSION_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(get().status, 500);
    let started = Instant::now();
    let seen = subscriber.notifications().len();
    let alarm = subscriber.wait_for(&rate_alarm, "ALARM", seen, Duration::from_secs(60), || {
        get();
    });
    eprintln!("ALARM after {:?}", started.elapsed());
    assert_eq!(alarm["Trigger"]["MetricName"], "5XXError");
    assert_eq!(alarm["Trigger"]["Namespace"], "AWS/ApiGateway");
    assert_eq!(alarm["OldStateValue"], "OK");
    // Only the API's alarm: the function was never reached.
    assert!(
        !subscriber
            .notifications()
            .iter()
            .any(|(_, m)| m["NewStateValue"] == "ALARM" && m["AlarmName"] != rate_alarm.as_str()),
        "{:#?}",
        subscriber.notifications()
    );
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert!(
        alarm_states(&status).contains(&(rate_alarm.clone(), "ALARM".into())),
        "{status}"
    );
    let reason = status["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == rate_alarm.as_str())
        .unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.starts_with("Threshold Crossed"), "{reason}");
    let text = fx.stdout(&["status", "--stage", "local"]);
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with(&rate_alarm) && l.trim_end().ends_with("ALARM")),
        "{text}"
    );

    // Repair it: `up` puts the permission back; good requests bring OK.
    let repaired = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert!(
        changes(&repaired)
            .iter()
            .any(|c| c.starts_with("lambda permission")),
        "{repaired}"
    );
    let started = Instant::now();
    let seen = subscriber.notifications().len();
    subscriber.wait_for(&rate_alarm, "OK", seen, Duration::from_secs(60), || {
        get();
    });
    eprintln!("OK after {:?}", started.elapsed());
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert!(
        alarm_states(&status).contains(&(rate_alarm.clone(), "OK".into())),
        "{status}"
    );
    let metrics = fx.json(&["metrics", "--stage", "local", "--json", "--since", "10m"]);
    assert_eq!(alarm_states(&metrics).len(), 4, "{metrics}");

    // A threshold is an update of that field, never a new alarm, and
    // nothing else of the stage differs from what `up` made.
    set_alarms(&fx, "local", &[("server-error-rate", "0.25")]);
    let plan = fx.json(&["plan", "--stage", "local", "--json"]);
    assert_eq!(
        changes(&plan),
        [format!(
            "cloudwatch alarm {rate_alarm} update [\"threshold\"]"
        )],
        "{plan}"
    );

    // Off: `up` removes the alarms, the subscription and the topic.
    set_alarms(&fx, "local", &[("enabled", "false")]);
    fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let left = cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("{}-local-", fx.app))
        .send()
        .await
        .unwrap();
    assert!(left.metric_alarms().is_empty(), "{left:?}");
    let gone = sns.get_topic_attributes().topic_arn(&topic).send().await;
    assert!(gone.is_err(), "the topic is still there: {gone:?}");
    fx.stdout(&["destroy", "--stage", "local", "--yes"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_policy_covers_the_stages_alarms_only_and_destroy_removes_them() {
    let fx = Fixture::new("alarmiam");
    fx.add_local_stage("pager");
    fx.edit_config(|text| set_in_table(text, "stages.pager", "dummy-credentials", "false"));
    set_alarms(
        &fx,
        "pager",
        &[
            ("enabled", "true"),
            ("notify", "[\"ops@example.com\"]"),
            ("latency-p99-ms", "2000"),
        ],
    );
    let printed = fx.stdout(&["policy", "--stage", "pager", "--account", "123456789012"]);
    // The stage's AWS is the IAM-enforcing moto at `url`.
    let aim = |url: &str| {
        fx.edit_config(|text| {
            set_in_table(text, "stages.pager", "endpoint-url", &format!("\"{url}\""))
        })
    };
    let moto = IamMoto::start(&printed).await;
    aim(&moto.moto.url);
    let run = |args: &[&str]| {
        let out = moto.deployer(&fx, args);
        let (stdout, stderr) = texts(&out);
        assert!(
            out.status.success(),
            "{args:?} failed under the printed policy\nstdout:\n{stdout}\nstderr:\n{stderr}\n\
             denied: {:#?}",
            moto.decisions().1
        );
        json_of(&out, args)
    };
    let up = run(&["up", "--stage", "pager", "--json", "--yes"]);
    assert!(
        changes(&up)
            .iter()
            .any(|c| c.ends_with("-pager-latency-p99 create")),
        "{up}"
    );
    let status = run(&["status", "--stage", "pager", "--json"]);
    assert_eq!(alarm_states(&status).len(), 4, "{status}");
    let destroyed = run(&["destroy", "--stage", "pager", "--yes", "--json"]);
    let removed = destroyed.to_string();
    for kind in ["cloudwatch alarm", "sns topic", "sns subscription"] {
        assert!(removed.contains(kind), "{kind} not removed: {removed}");
    }
    let (used, denied) = moto.decisions();
    assert!(denied.is_empty(), "moto denied: {denied:#?}");
    for action in [
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:DeleteAlarms",
        "sns:CreateTopic",
        "sns:Subscribe",
        "sns:DeleteTopic",
    ] {
        assert!(used.contains(action), "{action} was never used: {used:?}");
    }
    drop(moto);

    // Scoped to the stage: with the alarms or the topic of another stage in
    // their place, the same plan is refused (exit 3) and says what.
    let alarms = format!("alarm:{}-pager-*", fx.app);
    let topic = format!(":{}-pager-alarms", fx.app);
    for (mine, action) in [
        (&alarms, "cloudwatch:DescribeAlarms"),
        (&topic, "sns:GetTopicAttributes"),
    ] {
        let elsewhere = printed.replace(mine.as_str(), &mine.replace("-pager-", "-other-"));
        assert_ne!(elsewhere, printed, "{mine} is not in the policy");
        let narrowed = IamMoto::start(&elsewhere).await;
        aim(&narrowed.moto.url);
        let out = narrowed.deployer(&fx, &["plan", "--stage", "pager"]);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(action), "{action} not named: {stderr}");
    }

    // The policy names its alarms and its topic only.
    let policy: Value = serde_json::from_str(&printed).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let resources_of = |sid: &str| {
        statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no {sid} in {policy}"))["Resource"]
            .clone()
    };
    assert_eq!(
        resources_of("CloudWatchStageAlarms"),
        serde_json::json!([format!(
            "arn:aws:cloudwatch:{}:123456789012:alarm:{}-pager-*",
            region(),
            fx.app
        )])
    );
    assert_eq!(
        resources_of("SnsAlarmTopic"),
        serde_json::json!([format!(
            "arn:aws:sns:{}:123456789012:{}-pager-alarms",
            region(),
            fx.app
        )])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_of_the_stages_name_without_its_tags_is_left_alone() {
    let fx = Fixture::new("alarmforeign");
    quick_alarms(&fx, "local", "ops@example.com");
    let name = format!("{}-local-errors", fx.app);
    // Someone else's alarm of that name (no tags), made before the stage.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk_config().await);
    cloudwatch
        .put_metric_alarm()
        .alarm_name(&name)
        .namespace("Team/Other")
        .metric_name("Orders")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .unwrap();
    let out = fx.deployer(&["up", "--stage", "local", "--yes"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&name) && stderr.contains("aws cloudwatch tag-resource"),
        "{stderr}"
    );
    // Untouched, and nothing of the stage was made.
    let theirs = cloudwatch
        .describe_alarms()
        .alarm_names(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.metric_alarms()[0].namespace(), Some("Team/Other"));
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(status["deployed"], false, "{status}");
    cloudwatch
        .delete_alarms()
        .alarm_names(&name)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_that_fails_at_init_pages_through_the_alias_errors_alarm() {
    let fx = Fixture::new("alarmfail");
    let _dump = DumpOnFailure::new(&fx.app);
    let subscriber = Subscriber::start();
    quick_alarms(&fx, "local", &subscriber.url);
    // No check before callers meet the version, and one that cannot load
    // its models: every invocation through the alias fails at init.
    fx.set_local("smoke-test", "enabled", "false");
    fx.set_local("smoke-test", "public-path", "false");
    fx.set_local(
        "function.environment",
        "PREDICTION_MODELS_DIR",
        "\"/nonexistent\"",
    );
    let up = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let url = up["url"].as_str().unwrap().to_string();
    let get = || call_url("GET", &format!("{url}?date=2025-10-20"), &[]);
    eventually("the subscription's confirmation", || async {
        (subscriber.confirmations() > 0).then_some(())
    })
    .await;
    let errors_alarm = format!("{}-local-errors", fx.app);
    let seen = subscriber.notifications().len();
    assert_eq!(get().status, 502);
    let alarm = subscriber.wait_for(
        &errors_alarm,
        "ALARM",
        seen,
        Duration::from_secs(60),
        || {
            get();
        },
    );
    // Lambda's Errors of the alias, as the function's callers meet it.
    assert_eq!(alarm["Trigger"]["MetricName"], "Errors");
    let dimensions = alarm["Trigger"]["Dimensions"].to_string();
    assert!(
        dimensions.contains(&format!("{}:local", fx.function("local"))),
        "{dimensions}"
    );

    // The next release loads its models: OK follows.
    fx.set_local(
        "function.environment",
        "PREDICTION_MODELS_DIR",
        "\"/var/task/models\"",
    );
    let seen = subscriber.notifications().len();
    fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(get().status, 200);
    subscriber.wait_for(&errors_alarm, "OK", seen, Duration::from_secs(60), || {
        get();
    });
    fx.stdout(&["destroy", "--stage", "local", "--yes"]);
}
