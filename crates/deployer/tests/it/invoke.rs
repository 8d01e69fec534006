//! `deployer invoke` through the real binary: against the local stage
//! (the local AWS runs the image `up` deployed), with `deployer logs`
//! showing that invocation's real log lines; and `--local` against the
//! function built from this workspace. Both compared with the prediction
//! library called directly.

use std::path::Path;
use std::process::Output;

use chrono::NaiveDate;
use prediction::{Predictor, Settings};
use serde_json::Value;

use crate::util::fixture::Fixture;
use crate::util::*;

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

#[tokio::test(flavor = "multi_thread")]
async fn invoke_shows_the_real_answer_and_logs_its_real_lines() {
    let fx = Fixture::new("inv");
    let app = &fx.app;
    let _dump = DumpOnFailure::new(app);
    fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let forecast = predictor().predict_all(day(DATE));

    // The readable table: the date, every job with its predicted times,
    // the pipeline line.
    let out = fx.deployer(&["invoke", "--stage", "local", "--date", DATE, "-v"]);
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
        stderr.contains(&format!("invoke {app}-local:local")),
        "{stderr}"
    );

    // --json: exactly the function's answer, which is the library's.
    let out = fx.deployer(&["invoke", "--stage", "local", "--date", DATE, "--json"]);
    let answer = stdout_json(&out, "invoke --json");
    assert_eq!(answer, serde_json::to_value(&forecast).unwrap());

    // The function's own 400 (a range over its 31 days) is shown and the
    // exit is non-zero (1).
    let out = fx.deployer(&[
        "invoke",
        "--stage",
        "local",
        "--from",
        "2025-10-01",
        "--to",
        "2025-11-30",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("status 400"), "{stderr}");
    assert!(stderr.contains("at most 31"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // `deployer logs`: the invocations' own request lines and Lambda's
    // REPORT lines, as the function and Lambda wrote them.
    let mut lines = Vec::new();
    for _ in 0..50 {
        let logs = fx.stdout(&["logs", "--stage", "local", "--since", "5m", "--json"]);
        lines = logs
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect();
        if lines.iter().any(|l| l["request"]["status"] == 400) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let requests: Vec<&Value> = lines.iter().filter(|l| l["request"].is_object()).collect();
    assert!(
        requests
            .iter()
            .any(|r| r["request"]["status"] == 200 && r["request"]["date"] == DATE),
        "{lines:#?}"
    );
    assert!(
        requests.iter().any(|r| r["request"]["status"] == 400),
        "{lines:#?}"
    );
    let reports = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("REPORT RequestId: "))
        })
        .count();
    assert!(reports >= 3, "{lines:#?}");
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

    // A range through POST.
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
            "--json",
        ],
    );
    let answer = stdout_json(&out, "invoke --local --no-docker --from --to");
    let expected = predictor().predict_range(day("2025-10-24"), day("2025-10-27"));
    assert_eq!(
        answer["predictions"],
        serde_json::to_value(&expected).unwrap()
    );
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
