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
