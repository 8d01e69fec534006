//! The real `deployer` binary: its help, completions, exit codes, and the
//! corpus of bad configurations in `tests/bad-configs/`, each of which must
//! exit 2 with an error naming the line and the key.
//!
//! A corpus file starts with `# expect: <text stderr must contain>` and
//! `# args: <extra flags>`; it is copied into a fresh directory as
//! `deploy.toml`, beside the directories the defaults name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn deployer(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .current_dir(dir)
        // Plain output whatever runs the tests.
        .env("CI", "true")
        .output()
        .expect("the deployer binary runs")
}

/// An output's exit code, stdout and stderr, for a failure message.
pub fn describe(output: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A directory that can hold a deploy.toml: with the Dockerfile directory
/// and the included paths the defaults name.
fn workspace(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["lambda-image", "models", "data"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join("deploy.toml"), config).unwrap();
    dir
}

const GOOD: &str = "[app]\nname = \"app\"\nregion = \"us-east-1\"\n[stages.dev]\n[stages.prod]\n";

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn header<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("# {name}:");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(str::trim)
        .collect()
}

#[test]
fn every_bad_config_exits_2_naming_the_line_and_the_key() {
    let files = corpus();
    assert!(
        files.len() >= 15,
        "only {} files in the corpus",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expected = header(&text, "expect");
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
        let dir = workspace(&text);
        let mut args: Vec<&str> = header(&text, "args")
            .iter()
            .flat_map(|a| a.split_whitespace())
            .collect();
        args.push("plan");
        let output = deployer(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let ok = output.status.code() == Some(2)
            && expected.iter().all(|e| stderr.contains(e))
            && stderr.starts_with("error: ");
        if !ok {
            failures.push(format!(
                "{}\nexpected: {expected:?}\n{}",
                file.display(),
                describe(&output)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn an_unknown_stage_lists_the_stages() {
    let dir = workspace(GOOD);
    let output = deployer(dir.path(), &["--stage", "nope", "status"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown stage `nope`; the stages are: dev, prod"),
        "{}",
        describe(&output)
    );
}

#[test]
fn the_config_is_found_from_a_subdirectory() {
    let dir = workspace(&GOOD.replace(
        "[stages.prod]\n",
        "[stages.prod]\n[stages.prod.function]\nmemory = 99\n",
    ));
    let nested = dir.path().join("crates/x");
    std::fs::create_dir_all(&nested).unwrap();
    let output = deployer(&nested, &["plan"]);
    // The file was found (its error is reported) although the cwd has none.
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("deploy.toml:7: [stages.prod.function] memory"),
        "{}",
        describe(&output)
    );
}

#[test]
fn no_config_anywhere_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = deployer(dir.path(), &["--config", "missing.toml", "status"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("missing.toml"),
        "{}",
        describe(&output)
    );
}

#[test]
fn help_lists_every_command_and_global_flag() {
    let dir = tempfile::tempdir().unwrap();
    let output = deployer(dir.path(), &["--help"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let help = String::from_utf8_lossy(&output.stdout);
    for word in [
        "up",
        "plan",
        "build",
        "invoke",
        "logs",
        "status",
        "metrics",
        "rollback",
        "destroy",
        "completions",
        "--stage",
        "--config",
        "--profile",
        "--region",
        "--json",
        "--yes",
        "--verbose",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    assert!(
        help.contains("5 smoke test failed"),
        "--help lacks the exit codes:\n{help}"
    );
    let output = deployer(dir.path(), &["logs", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("--follow") && help.contains("--since") && help.contains("--filter"),
        "{help}"
    );
}

#[test]
fn completions_need_no_config() {
    let dir = tempfile::tempdir().unwrap();
    let output = deployer(dir.path(), &["completions", "bash"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(
        script.contains("complete") && script.contains("deployer"),
        "{script}"
    );
    assert!(
        script.contains("rollback") && script.contains("--stage"),
        "{script}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["frobnicate"][..],
        &["logs", "--since", "ten minutes"],
        &["invoke", "--date", "2025-02-30"],
        &["completions", "tcsh"],
        &[],
    ] {
        let output = deployer(dir.path(), args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
    }
}

#[test]
fn json_mode_puts_an_error_object_on_stdout() {
    let dir = workspace(GOOD);
    let output = deployer(dir.path(), &["--json", "--stage", "nope", "status"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let object: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", describe(&output)));
    assert_eq!(object["exit_code"], 2);
    assert!(
        object["error"].as_str().unwrap().contains("unknown stage"),
        "{object}"
    );
}
