//! `deployer metrics` through the real binary against the local stage: the
//! local AWS publishes Lambda's and API Gateway's metrics from the real
//! invocations of the deployed image (moto_ext), the deployer reads them
//! with the current CloudWatch SDK (Smithy RPC v2 CBOR, which the extension
//! translates for moto), and the counts, percentiles and sparklines follow
//! the requests this test makes through the stage's URL.

use serde_json::Value;

use crate::util::fixture::{Fixture, texts};
use crate::util::*;

const DATE: &str = "2025-10-20";

/// The eight heights of a bar, and the mark of a period with no data.
const BARS: &str = "▁▂▃▄▅▆▇█·";

fn metrics(fx: &Fixture, since: &str) -> Value {
    fx.json(&["metrics", "--stage", "local", "--since", since, "--json"])
}

fn total(report: &Value, group: &str, series: &str) -> u64 {
    report[group][series]["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("no {group}.{series}.total in {report}"))
}

/// The sparklines of the text form: every run of bar characters.
fn sparklines(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|line| line.split_whitespace())
        .filter(|word| word.chars().all(|c| BARS.contains(c)))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_requests_through_the_url_and_draw_a_bar_per_period() {
    let fx = Fixture::new("metrics");
    let _dump = DumpOnFailure::new(&fx.app);
    let up = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let url = up["url"].as_str().unwrap().to_string();

    // What `up` itself sent through the URL (its public path check) counts
    // too; the requests of this test come on top of it.
    let before = metrics(&fx, "10m");
    assert_eq!(before["deployed"], true, "{before}");
    let count_before = |group: &str, series: &str| total(&before, group, series);

    const N: u64 = 7;
    for _ in 0..N {
        let answer = call_url("GET", &format!("{url}?date={DATE}"), &[]);
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    // One the function refuses (400: a 4xx that still invoked it).
    let refused = call_url("GET", &format!("{url}?date=2025-13-01"), &[]);
    assert_eq!(refused.status, 400, "{refused:?}");

    // Lambda and API Gateway count an invocation before they answer it;
    // the REPORT lines (cold starts, memory) are written by the log
    // stream's own thread, so those are waited for.
    let report = eventually("the REPORT lines of the requests", || async {
        let report = metrics(&fx, "10m");
        report["memory"]["max_used_mb"]
            .as_u64()
            .is_some()
            .then_some(report)
    })
    .await;
    let added =
        |group: &str, series: &str| total(&report, group, series) - count_before(group, series);
    assert_eq!(added("lambda", "invocations"), N + 1, "{report}");
    assert_eq!(added("api_gateway", "requests"), N + 1, "{report}");
    assert_eq!(added("api_gateway", "errors_4xx"), 1, "{report}");
    assert_eq!(added("api_gateway", "errors_5xx"), 0, "{report}");
    assert_eq!(added("lambda", "errors"), 0, "{report}");
    assert_eq!(added("lambda", "throttles"), 0, "{report}");

    let duration = &report["lambda"]["duration_ms"];
    let p = |name: &str| {
        duration[name]
            .as_f64()
            .unwrap_or_else(|| panic!("no duration {name} in {report}"))
    };
    assert!(
        0.0 < p("p50") && p("p50") <= p("p90") && p("p90") <= p("p99"),
        "{duration}"
    );
    let latency = &report["api_gateway"]["latency_ms"];
    let integration = &report["api_gateway"]["integration_latency_ms"];
    assert!(
        latency["p99"].as_f64().unwrap() >= integration["p50"].as_f64().unwrap(),
        "{latency} {integration}"
    );
    assert!(
        report["lambda"]["concurrent_executions"]["max"]
            .as_f64()
            .is_some_and(|m| m >= 1.0),
        "{report}"
    );
    // The first request to a new version started its environment.
    assert!(total(&report, "lambda", "cold_starts") >= 1, "{report}");
    let used = report["memory"]["max_used_mb"].as_u64().unwrap();
    let configured = report["memory"]["configured_mb"].as_u64().unwrap();
    assert!(0 < used && used < configured, "{report}");

    // Ten minutes are ten bars of a minute; the series add up to the totals.
    assert_eq!(report["periods"], 10, "{report}");
    assert_eq!(report["period_seconds"], 60, "{report}");
    let series: Vec<u64> = report["lambda"]["invocations"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(series.len(), 10);
    assert_eq!(
        series.iter().sum::<u64>(),
        total(&report, "lambda", "invocations")
    );

    // The text: a sparkline of exactly ten bars per series (five of the
    // function, cold starts, five of the API), and the figures.
    let out = fx.deployer(&["metrics", "--stage", "local", "--since", "10m"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines = sparklines(&stdout);
    assert_eq!(lines.len(), 11, "{stdout}");
    assert!(
        lines.iter().all(|line| line.chars().count() == 10),
        "{lines:?}\n{stdout}"
    );
    let invocations_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("invocations"))
        .unwrap_or_else(|| panic!("no invocations row in\n{stdout}"));
    assert!(
        invocations_line.ends_with(&total(&report, "lambda", "invocations").to_string())
            && invocations_line.contains('█'),
        "{invocations_line}"
    );
    assert!(stdout.contains("memory    max "), "{stdout}");

    // Two hours are sixty bars of two minutes.
    let out = fx.deployer(&["metrics", "--stage", "local", "--since", "2h"]);
    let (stdout, _) = texts(&out);
    let lines = sparklines(&stdout);
    assert!(
        lines.len() == 11 && lines.iter().all(|line| line.chars().count() == 60),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_of_a_stage_never_deployed_say_so() {
    let fx = Fixture::new("metricsnone");
    let out = fx.deployer(&["metrics", "--stage", "local"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Nothing is deployed on stage local"),
        "{stdout}"
    );
    let report = metrics(&fx, "1h");
    assert_eq!(report["deployed"], false, "{report}");
    assert_eq!(report["lambda"], Value::Null, "{report}");

    // A window CloudWatch does not keep is a usage error (exit 2).
    let out = fx.deployer(&["metrics", "--stage", "local", "--since", "500d"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("455 days"), "{stderr}");
}

/// What the old line-by-line reading took from one `REPORT` line.
#[derive(Debug, Clone, PartialEq)]
struct ReportLine {
    timestamp_ms: i64,
    stream: String,
    max_memory_mb: Option<u64>,
    init_ms: Option<f64>,
}

/// The number after `label` in a `REPORT` line when `unit` follows it, as
/// the deployer parsed every line before it asked Logs Insights.
fn report_field(line: &str, label: &str, unit: &str) -> Option<f64> {
    if !line.trim_start().starts_with("REPORT") {
        return None;
    }
    let after = line.split(label).nth(1)?.trim_start();
    let (number, rest) = after.split_once(char::is_whitespace)?;
    rest.trim_start()
        .starts_with(unit)
        .then(|| number.parse().ok())
        .flatten()
}

/// Every `REPORT` line of the group from `since_ms` on, through all pages
/// of FilterLogEvents.
async fn report_lines(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    since_ms: i64,
) -> Vec<ReportLine> {
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = logs
            .filter_log_events()
            .log_group_name(group)
            .start_time(since_ms)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        for event in page.events() {
            let message = event.message().unwrap_or_default();
            if !message.trim_start().starts_with("REPORT") {
                continue;
            }
            lines.push(ReportLine {
                timestamp_ms: event.timestamp().unwrap_or_default(),
                stream: event.log_stream_name().unwrap_or_default().to_string(),
                max_memory_mb: report_field(message, "Max Memory Used:", "MB").map(|mb| mb as u64),
                init_ms: report_field(message, "Init Duration:", "ms"),
            });
        }
        match page.next_token() {
            Some(next) if Some(next) != token.as_deref() => token = Some(next.to_string()),
            _ => break,
        }
    }
    lines
}

fn epoch_s(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap())
        .unwrap()
        .timestamp()
}

/// Three hundred known `REPORT` lines, cold and warm, in two streams of the
/// served version and one of another, over the last 100 minutes (many
/// periods of `--since 2h`): the figures `status` and `metrics` print from
/// Logs Insights' aggregates are those a reading of every line gives.
#[tokio::test(flavor = "multi_thread")]
async fn status_and_metrics_figures_equal_a_reading_of_every_report_line() {
    let fx = Fixture::new("metricsparity");
    let _dump = DumpOnFailure::new(&fx.app);
    fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    let version = status["version"].as_str().unwrap().to_string();
    let other = if version == "1" { "2" } else { "1" };

    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config().await);
    let group = fx.log_group("local");
    let streams = [
        format!("2026/12/06/[{version}]parity-a"),
        format!("2026/12/06/[{version}]parity-b"),
        format!("2026/12/06/[{other}]parity-c"),
    ];
    for stream in &streams {
        logs.create_log_stream()
            .log_group_name(&group)
            .log_stream_name(stream)
            .send()
            .await
            .unwrap();
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let first_ms = now_ms - 100 * 60_000;
    for (s, stream) in streams.iter().enumerate() {
        let mut events = Vec::new();
        for i in (s..300).step_by(3) {
            let memory = 30 + (i * 37) % 200;
            let init = (i % 7 == 0).then(|| 20.0 + ((i * 13) % 400) as f64 / 4.0);
            let mut line = format!(
                "REPORT RequestId: parity-{i}\tDuration: 1.{i:02} ms\tBilled Duration: 2 ms\t\
                 Memory Size: 2048 MB\tMax Memory Used: {memory} MB\t"
            );
            if let Some(init) = init {
                line += &format!("Init Duration: {init:.2} ms\t");
            }
            let at = first_ms + i as i64 * 20_000;
            events.push(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(at)
                    .message(line)
                    .build()
                    .unwrap(),
            );
        }
        logs.put_log_events()
            .log_group_name(&group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
            .unwrap();
    }

    // The function's own REPORT lines (up's smoke test) may still be on
    // their way: the figures are compared once the lines stay the same
    // across both reads.
    let day_ago_ms = now_ms - 86_400_000;
    let (lines, metrics, status) = eventually("a steady set of REPORT lines", || async {
        let before = report_lines(&logs, &group, day_ago_ms).await;
        let metrics = metrics(&fx, "2h");
        let status = fx.json(&["status", "--stage", "local", "--json"]);
        let after = report_lines(&logs, &group, day_ago_ms).await;
        (before == after).then_some((after, metrics, status))
    })
    .await;
    assert!(lines.len() >= 300, "{} REPORT lines", lines.len());

    // status: the peak over the last day, every stream.
    let peak = lines.iter().filter_map(|l| l.max_memory_mb).max();
    assert_eq!(status["memory"]["max_used_mb"].as_u64(), peak, "{status}");
    assert_eq!(peak, Some(229));

    // metrics: the served version's streams, by period of the window.
    let (start_s, end_s) = (epoch_s(&metrics["start"]), epoch_s(&metrics["end"]));
    let period_s = metrics["period_seconds"].as_i64().unwrap();
    let served = format!("[{version}]");
    let in_window: Vec<&ReportLine> = lines
        .iter()
        .filter(|l| l.stream.contains(&served))
        .filter(|l| (start_s..end_s).contains(&l.timestamp_ms.div_euclid(1000)))
        .collect();
    let mut cold_series = vec![0u64; metrics["periods"].as_u64().unwrap() as usize];
    for line in in_window.iter().filter(|l| l.init_ms.is_some()) {
        cold_series[((line.timestamp_ms.div_euclid(1000) - start_s) / period_s) as usize] += 1;
    }
    let max_init = in_window.iter().filter_map(|l| l.init_ms).reduce(f64::max);
    let max_memory = in_window.iter().filter_map(|l| l.max_memory_mb).max();
    let cold = &metrics["lambda"]["cold_starts"];
    let series: Vec<u64> = cold["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(series, cold_series, "{cold}");
    assert_eq!(
        cold["total"].as_u64(),
        Some(cold_series.iter().sum()),
        "{cold}"
    );
    assert_eq!(cold["max_init_ms"].as_f64(), max_init, "{cold}");
    assert_eq!(cold["unknown"], Value::Null, "{cold}");
    assert_eq!(
        metrics["memory"]["max_used_mb"].as_u64(),
        max_memory,
        "{metrics}"
    );
    // The other version's stream counts for status only: its lines are
    // in the window but not in these figures.
    assert!(
        cold_series.iter().filter(|c| **c > 0).count() > 5 && cold_series.iter().sum::<u64>() >= 20,
        "{cold_series:?}"
    );
}
