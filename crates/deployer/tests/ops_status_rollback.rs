//! `deployer status` and `deployer rollback` end to end: the real binary
//! against the local AWS, the alias checked with SDK calls. Each test
//! deploys its own app (a unique name) from its own copy of the
//! workspace's deployable parts, as `tests/up.rs` does.

mod util;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::Value;
use util::*;

/// A workspace to deploy from (the pattern of `tests/up.rs`): the real
/// crates and lockfile symlinked, copies of models, data, the image and
/// deploy.toml with a unique app name.
struct Fixture {
    dir: tempfile::TempDir,
    app: String,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl Fixture {
    fn new(prefix: &str) -> Fixture {
        require_local_cloud();
        let root = workspace_root().canonicalize().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for name in ["Cargo.toml", "Cargo.lock", "crates"] {
            std::os::unix::fs::symlink(root.join(name), dir.path().join(name)).unwrap();
        }
        for name in ["models", "data", "lambda-image"] {
            copy_dir(&root.join(name), &dir.path().join(name));
        }
        let app = unique_name(prefix);
        let config = std::fs::read_to_string(root.join("deploy.toml")).unwrap();
        let config = config.replacen("name = \"pde-predict\"", &format!("name = \"{app}\""), 1);
        assert!(
            config.contains(&app),
            "deploy.toml has no `name = \"pde-predict\"` line to replace"
        );
        std::fs::write(dir.path().join("deploy.toml"), config).unwrap();
        Fixture { dir, app }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `deployer ARGS` in the fixture, as CI would: no terminal.
    fn deployer(&self, args: &[&str]) -> Output {
        std::process::Command::new(binary())
            .args(args)
            .current_dir(self.dir.path())
            .env("CI", "true")
            // The same binary cache as tests/up.rs: the function compiles once.
            .env("CARGO_TARGET_DIR", lambda_target_dir())
            .output()
            .unwrap()
    }

    /// Runs it and parses its `--json` answer, failing with its stderr.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.deployer(args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "deployer {args:?} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"))
    }

    fn function(&self, stage: &str) -> String {
        format!("{}-{stage}", self.app)
    }
}

/// The binary under test: cargo's, unless `DEPLOYER_BIN` names another
/// build of the same sources (a target directory shared by several
/// checkouts overwrites cargo's `target/debug/deployer`).
fn binary() -> PathBuf {
    std::env::var_os("DEPLOYER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(deployer_bin)
}

fn lambda_target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deployer-tests")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn alias_version(lambda: &aws_sdk_lambda::Client, function: &str, stage: &str) -> String {
    lambda
        .get_alias()
        .function_name(function)
        .name(stage)
        .send()
        .await
        .unwrap()
        .function_version()
        .unwrap()
        .to_string()
}

/// deploy.toml with `memory = N` in the local stage's function table.
fn with_local_memory(text: &str, memory: i32) -> String {
    let header = "[stages.local.function]";
    if text.contains(header) {
        text.replacen(header, &format!("{header}\nmemory = {memory}"), 1)
    } else {
        format!("{text}\n{header}\nmemory = {memory}\n")
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_moves_the_alias_and_status_reports_what_it_serves() {
    let fx = Fixture::new("opsrb");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = fx.function("local");

    // Two versions: a first up, then a memory change and a second up.
    let first = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let path = fx.path("deploy.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, with_local_memory(&toml, 1024)).unwrap();
    let second = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let (v1, v2) = (
        first["version"].as_str().unwrap().to_string(),
        second["version"].as_str().unwrap().to_string(),
    );
    assert_ne!(v1, v2);
    assert_eq!(alias_version(&lambda, &function, "local").await, v2);

    // Status: the alias's version, its image digest and the URL that up reported.
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(status["deployed"], true, "{status}");
    assert_eq!(status["version"].as_str(), Some(v2.as_str()), "{status}");
    assert_eq!(status["digest"], second["image"]["digest"], "{status}");
    assert_eq!(status["url"], second["url"], "{status}");
    assert_eq!(status["versions"], serde_json::json!([v1, v2]), "{status}");
    assert!(status["deployed_at"].is_string(), "{status}");
    let missing: Vec<&Value> = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["exists"] != true)
        .collect();
    assert!(missing.is_empty(), "missing after up: {missing:?}");
    assert_eq!(status["memory"]["configured_mb"], 1024, "{status}");
    assert_eq!(status["memory"]["max_used_mb"], Value::Null, "{status}");

    // The default rollback goes to the version below.
    let back = fx.json(&["rollback", "--stage", "local", "--json"]);
    assert_eq!(back["from"].as_str(), Some(v2.as_str()), "{back}");
    assert_eq!(back["to"].as_str(), Some(v1.as_str()), "{back}");
    assert_eq!(alias_version(&lambda, &function, "local").await, v1);
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(status["version"].as_str(), Some(v1.as_str()), "{status}");
    assert_eq!(status["memory"]["configured_mb"], 2048, "{status}");

    // Below the first version there is nothing: a usage error, alias unmoved.
    let out = fx.deployer(&["rollback", "--stage", "local"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing to roll back to"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(alias_version(&lambda, &function, "local").await, v1);

    // --to moves it forward again, and prints from → to.
    let out = fx.deployer(&["rollback", "--stage", "local", "--to", &v2]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("from version {v1} to version {v2}")),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(alias_version(&lambda, &function, "local").await, v2);

    // A version that does not exist: exit 2, a message naming it, alias unmoved.
    let out = fx.deployer(&["rollback", "--stage", "local", "--to", "99", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("version 99") && stderr.contains("does not exist"),
        "{stderr}"
    );
    let error: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(error["exit_code"], 2);
    assert_eq!(alias_version(&lambda, &function, "local").await, v2);

    // REPORT lines in the function's log group feed the memory advice.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = format!("/aws/lambda/{function}");
    let stream = "2026/01/01/[2]ops-test";
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let t = now_ms();
    let report = |id: u32, used: u32| {
        InputLogEvent::builder()
            .timestamp(t + i64::from(id))
            .message(format!(
                "REPORT RequestId: {id}\tDuration: 2.10 ms\tBilled Duration: 3 ms\t\
                 Memory Size: 1024 MB\tMax Memory Used: {used} MB\t"
            ))
            .build()
            .unwrap()
    };
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name(stream)
        .log_events(report(1, 19))
        .log_events(report(2, 23))
        .log_events(report(3, 21))
        .send()
        .await
        .unwrap();
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(status["memory"]["max_used_mb"], 23, "{status}");
    assert_eq!(status["memory"]["suggested_mb"], 128, "{status}");
    let out = fx.deployer(&["status", "--stage", "local"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("max 23 MB of 1024 MB") && shown.contains("128 MB would do"),
        "{shown}"
    );
    assert!(shown.contains(&format!("version {v2}")), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_never_deployed_has_no_status_and_nothing_to_roll_back() {
    let fx = Fixture::new("opsnone");
    let _dump = DumpOnFailure::new(&fx.app);

    let out = fx.deployer(&["status", "--stage", "local"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Nothing is deployed on stage local"),
        "{}",
        text(&out.stdout)
    );
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(status["deployed"], false, "{status}");
    assert_eq!(status["version"], Value::Null, "{status}");
    assert!(
        status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["exists"] == false),
        "{status}"
    );

    let out = fx.deployer(&["rollback", "--stage", "local"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing is deployed on stage local"),
        "{}",
        text(&out.stderr)
    );
}
