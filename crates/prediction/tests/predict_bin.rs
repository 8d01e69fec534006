//! The `predict` binary, run for real: a table or the API's JSON, and a
//! clear error with a non-zero exit (never a panic) on bad input.

use std::process::{Command, Output};

fn predict(args: &[&str]) -> Output {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new(env!("CARGO_BIN_EXE_predict"))
        .args(args)
        .env("PREDICTION_MODELS_DIR", root.join("models"))
        .env("PREDICTION_DATA_DIR", root.join("data"))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn prints_a_table_for_a_date() {
    let out = predict(&["--date", "2025-10-20"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    for word in [
        "2025-10-20",
        "Monday",
        "claims",
        "plan",
        "pde_ingest",
        "pde_report",
        "pipeline",
        "SLA 06:00",
    ] {
        assert!(stdout.contains(word), "no `{word}` in:\n{stdout}");
    }
}

/// The repository's data holds a few malformed rows on purpose: they are
/// noted once, on stderr, so the table or JSON on stdout stays clean.
#[test]
fn notes_skipped_data_once_on_stderr() {
    let out = predict(&["--date", "2025-10-20"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert_eq!(stderr.matches("note: data:").count(), 1, "{stderr}");
    assert!(stderr.contains("malformed rows skipped"), "{stderr}");
    assert!(!text(&out.stdout).contains("note:"), "a note on stdout");
}

#[test]
fn prints_the_api_json() {
    let out = predict(&["--date", "2025-10-20", "--json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["date"], "2025-10-20");
    assert_eq!(value["jobs"].as_array().unwrap().len(), 5);

    let out = predict(&["--from", "2025-10-01", "--to", "2025-10-31", "--json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["predictions"].as_array().unwrap().len(), 31);
}

#[test]
fn bad_input_is_a_clear_error() {
    let cases: [(&[&str], &str); 6] = [
        (&["--date", "2025-02-30"], "2025-02-30"),
        (&["--date", "20251020"], "YYYY-MM-DD"),
        (&["--date"], "--date"),
        (&["--from", "2025-10-31", "--to", "2025-10-01"], "before"),
        (
            &["--from", "2025-01-01", "--to", "2025-03-01"],
            "at most 31",
        ),
        (&["--bogus"], "--bogus"),
    ];
    for (args, expected) in cases {
        let out = predict(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: no `{expected}` in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn missing_models_name_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_predict"))
        .args(["--date", "2025-10-20"])
        .env("PREDICTION_MODELS_DIR", dir.path())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("manifest.json"), "{stderr}");
}
