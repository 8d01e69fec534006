//! A stage per pull request, end to end on the local AWS: a deploy.toml
//! with nothing but `[app]` and stage patterns (the local stage's
//! settings in the pattern's table), `up` of `pr-1`, `pr-2` and `pr-x`
//! from the patterns alone, `stages --json` listing them from the tags,
//! `destroy` of `pr-1` after the pattern is gone (from the tags alone),
//! `prune` removing only `pr-2` once its ttl has passed (the clock moved
//! with libfaketime), and `stages` listing none of them at the end.

use std::process::Command;

use serde_json::Value;

use crate::lock_across_machines::libfaketime;
use crate::util::fixture::{Fixture, json_of, texts};
use crate::util::iam_moto::IamMoto;
use crate::util::*;

/// deploy.toml: `[app]` and two patterns; `pr-x*` is more specific than
/// `pr-*`, so `pr-x` lives 7 days where `pr-1` and `pr-2` live an hour.
fn previews_toml(app: &str, with_patterns: bool) -> String {
    let mut text = format!("[app]\nname = \"{app}\"\nregion = \"us-east-1\"\n");
    if with_patterns {
        let local = format!(
            "endpoint-url = \"{}\"\ndummy-credentials = true\n",
            endpoint_url()
        );
        text.push_str(&format!(
            "\n[stages.\"pr-*\"]\n{local}ttl = \"1h\"\n\n[stages.\"pr-*\".function]\nmemory = 512\n\
             \n[stages.\"pr-x*\"]\n{local}ttl = \"7d\"\n"
        ));
    }
    text
}

/// `deployer ARGS` reaching the local AWS through the standard chain
/// (`AWS_ENDPOINT_URL`), as CI would with no stage table to say where.
fn by_environment(fx: &Fixture, args: &[&str]) -> Command {
    let mut command = fx.command(args);
    command.env("AWS_ENDPOINT_URL", endpoint_url());
    command
}

/// The same, with the clock 90 minutes ahead (libfaketime, Debian's
/// `faketime`, which scripts/local-cloud installs): past a 1h ttl, and
/// within the 2 hours CloudWatch Logs accepts an event ahead of its own
/// clock (the stage lock writes events).
fn later(fx: &Fixture, args: &[&str]) -> Command {
    let mut command = by_environment(fx, args);
    command
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", "+90m");
    command
}

fn run_json(mut command: Command, what: &[&str]) -> Value {
    json_of(&command.output().unwrap(), what)
}

fn listed(stages: &Value) -> Vec<String> {
    stages["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn preview_stages_come_from_a_pattern_and_go_by_their_tags_and_ttl() {
    let fx = Fixture::new("prev");
    let _dump = DumpOnFailure::new(&fx.app);
    std::fs::write(fx.path("deploy.toml"), previews_toml(&fx.app, true)).unwrap();

    // Before anything reaches AWS: the pattern itself is no stage, and a
    // name it matches must still fit every name it becomes.
    for (stage, says) in [
        ("pr-*", "is a stage pattern"),
        (
            "pr-12345678901234",
            "matches the pattern `pr-*`, but a stage name is 1 to 16",
        ),
    ] {
        let out = fx.deployer(&["up", "--stage", stage, "--yes"]);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }

    let mut urls = Vec::new();
    for stage in ["pr-1", "pr-2", "pr-x"] {
        let up = fx.json(&["up", "--stage", stage, "--json", "--yes"]);
        urls.push(up["url"].as_str().unwrap().to_string());
    }

    // The pattern serves every command, and its ttl tag is part of the
    // stage: a plan right after `up` changes nothing (so a no-op `up`
    // extends no expiry).
    let plan = fx.deployer(&["plan", "--stage", "pr-2", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{:?}", texts(&plan));
    let status = fx.json(&["status", "--stage", "pr-2", "--json"]);
    assert_eq!(status["url"].as_str(), Some(urls[1].as_str()), "{status}");
    let reads: [&[&str]; 2] = [
        &["invoke", "--stage", "pr-2", "--json"],
        &["logs", "--stage", "pr-2", "--since", "10m"],
    ];
    for args in reads {
        let out = fx.deployer(args);
        assert!(out.status.success(), "{args:?}: {:?}", texts(&out));
    }

    let stages = run_json(
        by_environment(&fx, &["stages", "--json"]),
        &["stages", "--json"],
    );
    assert_eq!(listed(&stages), ["pr-1", "pr-2", "pr-x"], "{stages}");
    for (entry, url) in stages["stages"].as_array().unwrap().iter().zip(&urls) {
        assert_eq!(entry["url"].as_str(), Some(url.as_str()), "{entry}");
        assert_eq!(entry["version"], "1", "{entry}");
        assert!(entry["last_deployed"].is_string(), "{entry}");
        assert!(entry["expires"].is_string(), "{entry}");
        assert_eq!(entry["expired"], false, "{entry}");
    }
    assert_eq!(stages["stages"][0]["ttl"], "1h", "{stages}");
    assert_eq!(stages["stages"][2]["ttl"], "7d", "{stages}");

    // The patterns are gone: pr-1 is destroyed from its tags alone.
    std::fs::write(fx.path("deploy.toml"), previews_toml(&fx.app, false)).unwrap();
    let out = by_environment(&fx, &["destroy", "--stage", "pr-1", "--yes", "--json"])
        .output()
        .unwrap();
    let destroyed = json_of(&out, &["destroy", "pr-1"]);
    let removed = destroyed["removed"].as_array().unwrap();
    assert!(
        removed.iter().any(|r| r["kind"] == "lambda function"),
        "{destroyed}"
    );
    // Without the pattern no `up` can name it.
    let (_, stderr) = texts(&fx.deployer(&["up", "--stage", "pr-1"]));
    assert!(stderr.contains("unknown stage `pr-1`"), "{stderr}");

    // Nothing has expired yet: prune removes nothing, even with --yes.
    let now = run_json(
        by_environment(&fx, &["prune", "--yes", "--json"]),
        &["prune"],
    );
    assert_eq!(now["expired"], serde_json::json!([]), "{now}");

    // 90 minutes later pr-2 (1h) has expired, pr-x (7d) has not. Without
    // --yes prune only says so.
    let dry = run_json(later(&fx, &["prune", "--json"]), &["prune"]);
    assert_eq!(dry["dry_run"], true, "{dry}");
    let expired: Vec<&str> = dry["expired"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert_eq!(expired, ["pr-2"], "{dry}");
    let still = run_json(by_environment(&fx, &["stages", "--json"]), &["stages"]);
    assert_eq!(listed(&still), ["pr-2", "pr-x"], "{still}");

    let pruned = run_json(
        later(&fx, &["prune", "--yes", "--json"]),
        &["prune", "--yes"],
    );
    assert_eq!(pruned["removed"], serde_json::json!(["pr-2"]), "{pruned}");
    let after = run_json(by_environment(&fx, &["stages", "--json"]), &["stages"]);
    assert_eq!(listed(&after), ["pr-x"], "{after}");

    // A table that now gives pr-x no ttl keeps it, whatever its tag says.
    std::fs::write(
        fx.path("deploy.toml"),
        format!(
            "{}\n[stages.pr-x]\nendpoint-url = \"{}\"\ndummy-credentials = true\n",
            previews_toml(&fx.app, true),
            endpoint_url()
        ),
    )
    .unwrap();
    let mut later = by_environment(&fx, &["prune", "--yes", "--json"]);
    later
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", "+8d");
    let kept = run_json(later, &["prune", "8 days later"]);
    assert_eq!(kept["expired"], serde_json::json!([]), "{kept}");

    // With the patterns back, pr-x goes as any stage does.
    std::fs::write(fx.path("deploy.toml"), previews_toml(&fx.app, true)).unwrap();
    fx.stdout(&["destroy", "--stage", "pr-x", "--yes"]);
    let none = run_json(by_environment(&fx, &["stages", "--json"]), &["stages"]);
    assert_eq!(listed(&none), Vec::<String>::new(), "{none}");
}

/// A stage deployed protected is still protected when deploy.toml no
/// longer names it: its function's `deployer:protected` tag says so, and
/// `destroy` from the tags alone refuses it without `--force-protected`,
/// then removes it with its own repository.
#[test]
fn a_stage_deployed_protected_is_refused_from_its_tags_alone() {
    let fx = Fixture::new("prevkeep");
    let _dump = DumpOnFailure::new(&fx.app);
    let app = &fx.app;
    let bare = format!("[app]\nname = \"{app}\"\nregion = \"us-east-1\"\n");
    std::fs::write(
        fx.path("deploy.toml"),
        format!(
            "{bare}\n[stages.keep]\nprotected = true\nendpoint-url = \"{}\"\ndummy-credentials = true\n",
            endpoint_url()
        ),
    )
    .unwrap();
    fx.stdout(&["up", "--stage", "keep", "--yes"]);
    std::fs::write(fx.path("deploy.toml"), &bare).unwrap();

    let out = by_environment(&fx, &["destroy", "--stage", "keep", "--yes"])
        .output()
        .unwrap();
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("deployer:protected=true") && stderr.contains("nothing was deleted"),
        "{stderr}"
    );
    let stages = run_json(by_environment(&fx, &["stages", "--json"]), &["stages"]);
    assert_eq!(listed(&stages), ["keep"], "{stages}");
    assert_eq!(stages["stages"][0]["protected"], true, "{stages}");
    assert_eq!(stages["stages"][0]["expires"], Value::Null, "{stages}");
    // Never pruned, even past any time.
    let pruned = run_json(later(&fx, &["prune", "--yes", "--json"]), &["prune"]);
    assert_eq!(pruned["expired"], serde_json::json!([]), "{pruned}");

    let destroyed = run_json(
        by_environment(
            &fx,
            &[
                "destroy",
                "--stage",
                "keep",
                "--yes",
                "--force-protected",
                "--json",
            ],
        ),
        &["destroy", "--force-protected"],
    );
    let removed: Vec<(&str, &str)> = destroyed["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    let own_repository = format!("{app}-keep");
    assert!(
        removed.contains(&("lambda function", own_repository.as_str()))
            && removed.contains(&("ecr repository", own_repository.as_str())),
        "{destroyed}"
    );
    let none = run_json(by_environment(&fx, &["stages", "--json"]), &["stages"]);
    assert_eq!(listed(&none), Vec::<String>::new(), "{none}");
}

/// The CI role of previews holds `deployer policy --stage 'pr-*'`: with it
/// alone (moto enforcing IAM), `up`, `stages`, `prune` and `destroy` of
/// previews succeed and moto denies nothing; its writes are scoped to the
/// pattern's names (`{app}-pr-*`).
#[tokio::test(flavor = "multi_thread")]
async fn the_pattern_s_policy_is_enough_for_previews() {
    let fx = Fixture::new("previam");
    let _dump = DumpOnFailure::new(&fx.app);
    let app = &fx.app;
    std::fs::write(
        fx.path("deploy.toml"),
        format!(
            "[app]\nname = \"{app}\"\nregion = \"us-east-1\"\n\n[stages.\"pr-*\"]\nttl = \"1h\"\n"
        ),
    )
    .unwrap();
    let printed = fx.stdout(&["policy", "--stage", "pr-*", "--account", "123456789012"]);
    // A stage of the pattern gets the pattern's policy.
    assert_eq!(
        fx.stdout(&["policy", "--stage", "pr-7", "--account", "123456789012"]),
        printed
    );
    let policy: Value = serde_json::from_str(&printed).unwrap();
    let function = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "LambdaFunction")
        .unwrap();
    assert_eq!(
        function["Resource"][0],
        format!("arn:aws:lambda:us-east-1:123456789012:function:{app}-pr-*"),
        "{printed}"
    );

    let moto = IamMoto::start(&printed).await;
    // Aimed at it (the stage's URL is served there; the policy does not
    // depend on the endpoint).
    fx.edit_config(|text| {
        text.replace(
            "ttl = ",
            &format!("endpoint-url = \"{}\"\nttl = ", moto.moto.url),
        )
    });
    let run = |command: &mut Command, what: &str| {
        let out = command.output().unwrap();
        let (stdout, stderr) = texts(&out);
        assert!(
            out.status.success(),
            "`{what}` failed with only the pattern's policy\nstdout:\n{stdout}\nstderr:\n{stderr}\npolicy: {printed}"
        );
        serde_json::from_str::<Value>(&stdout).unwrap_or(Value::Null)
    };
    for stage in ["pr-1", "pr-2"] {
        run(
            &mut moto.command(&fx, &["up", "--stage", stage, "--yes", "--json"]),
            "up",
        );
    }
    let stages = run(&mut moto.command(&fx, &["stages", "--json"]), "stages");
    assert_eq!(listed(&stages), ["pr-1", "pr-2"], "{stages}");
    run(
        &mut moto.command(&fx, &["destroy", "--stage", "pr-1", "--yes", "--json"]),
        "destroy",
    );
    let pruned = run(
        moto.command(&fx, &["prune", "--yes", "--json"])
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", "+90m"),
        "prune",
    );
    assert_eq!(pruned["removed"], serde_json::json!(["pr-2"]), "{pruned}");
    let none = run(&mut moto.command(&fx, &["stages", "--json"]), "stages");
    assert_eq!(listed(&none), Vec::<String>::new(), "{none}");
    let (_, denied) = moto.decisions();
    assert!(denied.is_empty(), "moto denied: {denied:#?}");

    // Scoped: a stage outside the pattern is out of the role's reach.
    fx.edit_config(|text| {
        format!(
            "{text}\n[stages.qa]\nendpoint-url = \"{}\"\n",
            moto.moto.url
        )
    });
    let out = moto.deployer(&fx, &["up", "--stage", "qa", "--yes"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("AccessDenied"), "{stderr}");
}
