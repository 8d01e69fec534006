//! What a pipeline relies on: the GitHub Actions workflow
//! (`.github/workflows/deploy.yml`) and the exit-code table
//! (`docs/exit-codes.md`).
//!
//! The workflow passes GitHub's schema (`check-jsonschema`) and `zizmor`'s
//! audit with nothing above low, and each of its `run:` scripts that calls
//! `deployer` is run as GitHub's runner would run it (the shell the
//! workflow's defaults name, with GitHub's flags for it) with the real
//! binary against an endpoint that refuses every connection: the step must
//! fail with the deployer's exit code. A `deployer … | tee` under plain
//! `bash -e` (GitHub's choice when no shell is named) would succeed.
//!
//! Both tools and PyYAML (which reads the workflow here; moto[server]
//! brings it) live in the checkout's `.venv`, installed by
//! `scripts/local-cloud up`. No local AWS is needed.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::cli::describe;
use crate::util::workspace_root;

const WORKFLOW: &str = ".github/workflows/deploy.yml";

/// A tool of the checkout's virtualenv, or a failure naming what installs it.
fn venv_tool(name: &str) -> PathBuf {
    let tool = workspace_root().join(".venv/bin").join(name);
    assert!(
        tool.exists(),
        "{} is missing: run scripts/local-cloud up (it installs the test tools)",
        tool.display()
    );
    tool
}

/// `tool ARGS WORKFLOW` from the checkout's root.
fn check_workflow(tool: &str, args: &[&str]) -> Output {
    Command::new(venv_tool(tool))
        .args(args)
        .arg(WORKFLOW)
        .current_dir(workspace_root())
        .output()
        .unwrap()
}

#[test]
fn the_workflow_passes_githubs_schema() {
    let output = check_workflow(
        "check-jsonschema",
        &["--builtin-schema", "vendor.github-workflows"],
    );
    assert!(
        output.status.success(),
        "{WORKFLOW} fails GitHub's workflow schema:\n{}",
        describe(&output)
    );
}

#[test]
fn zizmor_finds_nothing_above_low_in_the_workflow() {
    // The auditor persona reports what the default one hides as likely
    // false positives; --min-severity keeps low and informational out.
    let output = check_workflow(
        "zizmor",
        &[
            "--offline",
            "--persona",
            "auditor",
            "--min-severity",
            "medium",
            "--format",
            "plain",
        ],
    );
    assert!(
        output.status.success(),
        "zizmor finds something above low in {WORKFLOW}:\n{}",
        describe(&output)
    );
}

#[test]
fn every_action_is_pinned_to_a_commit_with_its_release_named() {
    // zizmor's unpinned-uses wants the SHA; the comment is what a reader
    // (and Dependabot, which rewrites both) goes by.
    let text = std::fs::read_to_string(workspace_root().join(WORKFLOW)).unwrap();
    let uses: Vec<&str> = text
        .lines()
        .map(|line| line.trim_start().trim_start_matches("- "))
        .filter(|line| line.starts_with("uses:"))
        .collect();
    assert!(!uses.is_empty(), "no `uses:` in {WORKFLOW}");
    for line in uses {
        let pinned = line
            .split_once('@')
            .and_then(|(_, rest)| rest.split_once(" # v"))
            .is_some_and(|(sha, version)| {
                sha.len() == 40
                    && sha.bytes().all(|b| b.is_ascii_hexdigit())
                    && version.starts_with(|c: char| c.is_ascii_digit())
            });
        assert!(
            pinned,
            "`{line}`: pin a 40-hex commit SHA and name its release (`@<sha> # vX.Y.Z`)"
        );
    }
}

/// One `run:` step of the workflow as the runner sees it.
#[derive(Debug)]
struct RunStep {
    job: String,
    name: String,
    script: String,
    /// `shell:` of the step, else of the job's defaults, else of the
    /// workflow's; `None` when none names one.
    shell: Option<String>,
    /// The workflow's, the job's and the step's `env:`, later ones winning.
    env: BTreeMap<String, String>,
}

/// Every `run:` step of `workflow`, read with PyYAML.
fn run_steps(workflow: &Path) -> Vec<RunStep> {
    const READ: &str = r#"
import json, re, sys, yaml
wf = yaml.safe_load(open(sys.argv[1]))
def shell(d):
    return ((d or {}).get("defaults") or {}).get("run", {}).get("shell")
steps = []
for job_id, job in wf["jobs"].items():
    for i, step in enumerate(job.get("steps", [])):
        if "run" not in step:
            continue
        env = {}
        for scope in (wf, job, step):
            env.update({k: str(v) for k, v in (scope.get("env") or {}).items()})
        # The runner fills in an env value's expression (a pull request's
        # number) before the script starts; a number stands in for it here.
        env = {k: re.sub(r"\$\{\{.*?\}\}", "1", v) for k, v in env.items()}
        steps.append({
            "job": job_id,
            "name": step.get("name", f"step {i + 1}"),
            "script": step["run"],
            "shell": step.get("shell") or shell(job) or shell(wf),
            "env": env,
        })
json.dump(steps, sys.stdout)
"#;
    let output = Command::new(venv_tool("python"))
        .args(["-c", READ])
        .arg(workflow)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "reading {}:\n{}",
        workflow.display(),
        describe(&output)
    );
    let steps: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    steps
        .iter()
        .map(|step| RunStep {
            job: step["job"].as_str().unwrap().to_string(),
            name: step["name"].as_str().unwrap().to_string(),
            script: step["script"].as_str().unwrap().to_string(),
            shell: step["shell"].as_str().map(str::to_string),
            env: serde_json::from_value(step["env"].clone()).unwrap(),
        })
        .collect()
}

/// The command line GitHub's Linux runner runs a script `file` with, for
/// `shell` ("jobs.<job_id>.steps[*].shell" in GitHub's workflow syntax
/// reference): unnamed, `bash -e {0}`; `bash`, `bash --noprofile --norc -eo
/// pipefail {0}`; `sh`, `sh -e {0}`; anything else is a command template in
/// which `{0}` stands for the file.
fn runner_command(shell: Option<&str>, file: &Path) -> Vec<String> {
    let template = match shell {
        None => "bash -e {0}",
        Some("bash") => "bash --noprofile --norc -eo pipefail {0}",
        Some("sh") => "sh -e {0}",
        Some(custom) => {
            assert!(
                custom.contains("{0}"),
                "shell `{custom}`: only bash, sh or a template with {{0}} run here"
            );
            custom
        }
    };
    let file = file.to_str().unwrap();
    template
        .split_whitespace()
        .map(|word| word.replace("{0}", file))
        .collect()
}

/// Whether `script` runs `deployer` as a command (not `cargo build -p deployer`).
fn calls_deployer(script: &str) -> bool {
    script.lines().any(|line| {
        line.split(['|', ';', '&', '('])
            .any(|command| command.split_whitespace().next() == Some("deployer"))
    })
}

/// A checkout as the runner has it: the workspace's files, linked into a
/// directory of its own so the steps' `tee plan.json` write there.
fn checkout() -> tempfile::TempDir {
    let root = workspace_root().canonicalize().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "Cargo.toml",
        "Cargo.lock",
        "crates",
        "deploy.toml",
        "models",
        "data",
        "lambda-image",
    ] {
        std::os::unix::fs::symlink(root.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// A local address nothing listens on: the port was just free.
fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Runs `step` as the runner would, with `path` and AWS at `endpoint`;
/// what went wrong, unless it failed with the deployer's exit code 3 (an
/// AWS call failed). Anything else means the step did not reach AWS (a
/// refused question: 2) or hid the failure (0).
fn run_as_github(step: &RunStep, path: &str, endpoint: &str) -> Option<String> {
    // The runner substitutes expressions before the shell starts; a script
    // with one would not run here as it does there.
    if step.script.contains("${{") {
        return Some(format!(
            "step `{}` has an expression in its script; pass it through `env:`",
            step.name
        ));
    }
    let dir = checkout();
    let file = dir.path().join("step.sh");
    std::fs::write(&file, &step.script).unwrap();
    let argv = runner_command(step.shell.as_deref(), &file);
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .envs(&step.env)
        .env("CI", "true")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_PATH", dir.path().join("github_path"))
        // Where configure-aws-credentials' variables would be: dummy keys,
        // and every AWS call to a port that refuses it.
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .unwrap();
    (output.status.code() != Some(3)).then(|| {
        format!(
            "job `{}`, step `{}`, run as {argv:?}:\n{}",
            step.job,
            step.name,
            describe(&output)
        )
    })
}

#[test]
fn every_step_that_calls_the_deployer_fails_when_it_fails() {
    let steps = run_steps(&workspace_root().join(WORKFLOW));
    let deploying: Vec<&RunStep> = steps.iter().filter(|s| calls_deployer(&s.script)).collect();
    // Plan, up, invoke and the logs on failure, at least: a reading of the
    // file that finds none must not pass.
    assert!(
        deploying.len() >= 3,
        "expected the deploy's plan, up and invoke steps, found {:?}",
        deploying.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    // The directory `deployer` is found in, as the build step's
    // `>> "$GITHUB_PATH"` makes it on the runner.
    let bin = Path::new(env!("CARGO_BIN_EXE_deployer")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let endpoint = dead_endpoint();
    // Side by side: each one sits out the deployer's retries (seconds).
    let (path, endpoint) = (path.as_str(), endpoint.as_str());
    let wrong: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = deploying
            .iter()
            .map(|&step| scope.spawn(move || run_as_github(step, path, endpoint)))
            .collect();
        runs.into_iter()
            .filter_map(|run| run.join().unwrap())
            .collect()
    });
    assert!(
        wrong.is_empty(),
        "steps that did not fail with the deployer's exit code 3 when AWS did not answer:\n\n{}",
        wrong.join("\n\n")
    );
}

#[test]
fn github_runs_an_unnamed_shell_without_pipefail() {
    // What the test above tells apart: a failing command piped into tee.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("step.sh");
    std::fs::write(&file, "false | tee out.txt\n").unwrap();
    let exit = |shell: Option<&str>| {
        let argv = runner_command(shell, &file);
        Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(dir.path())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(exit(None), Some(0));
    assert_eq!(exit(Some("bash")), Some(1));
}

/// The `ExitStatus` variants and their codes, read from `exit.rs`'s enum.
fn exit_statuses() -> Vec<(String, u8)> {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/exit.rs")).unwrap();
    // The arms of `ExitStatus::code`, `ExitStatus::Aws => 3,`.
    let body = source
        .split_once("pub fn code(self) -> u8 {")
        .and_then(|(_, rest)| rest.split_once("\n    }\n"))
        .expect("exit.rs has `pub fn code(self) -> u8 { match self { … } }`")
        .0;
    body.lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("ExitStatus::"))
        .filter_map(|line| line.trim_end_matches(',').split_once(" => "))
        .map(|(name, code)| (name.trim().to_string(), code.trim().parse().unwrap()))
        .collect()
}

/// The rows of the exit-code table: (variant, code), from
/// `| 3 | `Aws` | …`.
fn documented_statuses(table: &str) -> Vec<(String, u8)> {
    table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.parse().ok()?;
            let name = cells.get(2)?.trim_matches('`').to_string();
            Some((name, code))
        })
        .collect()
}

#[test]
fn the_exit_code_table_lists_every_status_with_its_code() {
    let root = workspace_root();
    let mut statuses = exit_statuses();
    assert!(
        statuses.len() >= 8,
        "read too few variants from exit.rs: {statuses:?}"
    );
    let table = std::fs::read_to_string(root.join("docs/exit-codes.md")).unwrap();
    let mut documented = documented_statuses(&table);
    statuses.sort();
    documented.sort();
    assert_eq!(
        documented, statuses,
        "docs/exit-codes.md's rows (code, `ExitStatus`) differ from exit.rs's enum"
    );
    // The one table: the other documents link to it instead of copying it.
    for doc in ["README.md", "docs/ci.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        assert!(
            text.contains("exit-codes.md"),
            "{doc} does not link to docs/exit-codes.md"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.replace(' ', "").starts_with("|code|")),
            "{doc} has an exit-code table of its own; link to docs/exit-codes.md"
        );
        // And the workflow is the file, not a copy that drifts from it.
        assert!(
            !text.contains("\njobs:\n"),
            "{doc} holds a copy of a workflow; point to {WORKFLOW}"
        );
    }
}
