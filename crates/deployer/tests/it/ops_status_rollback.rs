//! `deployer status` and `deployer rollback` end to end: the real binary
//! against the local AWS, the alias checked with SDK calls. Each test
//! deploys its own app (a unique name) from its own copy of the
//! workspace's deployable parts, as `tests/it/up.rs` does.

use serde_json::Value;

use crate::util::fixture::Fixture;
use crate::util::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
    fx.set_local("function", "memory", "1024");
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
    // Status spells each kind as the plan does, so a pipeline can join them.
    let planned: Vec<&str> = first["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    for resource in status["resources"].as_array().unwrap() {
        let kind = resource["kind"].as_str().unwrap();
        assert!(
            planned.contains(&kind),
            "status kind {kind} not in the plan's {planned:?}"
        );
    }
    assert_eq!(status["memory"]["configured_mb"], 1024, "{status}");

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

    // The REPORT lines the local AWS wrote for the smoke tests and the
    // public path checks of both `up` feed the memory advice.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = format!("/aws/lambda/{function}");
    let reported: Vec<u64> = logs
        .filter_log_events()
        .log_group_name(&group)
        .filter_pattern("REPORT")
        .send()
        .await
        .unwrap()
        .events()
        .iter()
        .filter_map(|e| e.message())
        .filter_map(|m| m.split("Max Memory Used: ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    assert!(reported.len() >= 4, "REPORT lines: {reported:?}");
    let used = *reported.iter().max().unwrap();
    assert!(0 < used && used < 128, "the function used {used} MB?");
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(status["memory"]["max_used_mb"], used, "{status}");
    assert_eq!(status["memory"]["suggested_mb"], 128, "{status}");
    let out = fx.deployer(&["status", "--stage", "local"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("max {used} MB of 1024 MB")) && shown.contains("128 MB would do"),
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

#[tokio::test(flavor = "multi_thread")]
async fn an_untagged_rest_api_with_the_stages_name_is_not_shown_as_the_stages() {
    let fx = Fixture::new("opsforeign");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let apigw = aws_sdk_apigateway::Client::new(&config);
    // API Gateway names are not unique: this one may be another team's.
    let theirs = apigw
        .create_rest_api()
        .name(fx.function("local"))
        .send()
        .await
        .unwrap();
    let id = theirs.id().unwrap().to_string();

    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(status["deployed"], false, "{status}");
    assert_eq!(status["url"], Value::Null, "{status}");
    let api = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "api rest api")
        .unwrap_or_else(|| panic!("no api rest api row in {status}"));
    assert_eq!(api["exists"], false, "{status}");
    assert!(!api["name"].as_str().unwrap().contains(&id), "{status}");

    // Nor does destroy count it, and it is still there afterwards.
    let destroyed = fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
    assert_eq!(destroyed["removed"], serde_json::json!([]), "{destroyed}");
    apigw.get_rest_api().rest_api_id(&id).send().await.unwrap();
    // Tidy up: DeleteRestApi has an account quota the other tests' teardowns
    // share (429 with Retry-After), so wait for a turn as they do.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match apigw.delete_rest_api().rest_api_id(&id).send().await {
            Ok(_) => break,
            Err(err)
                if std::time::Instant::now() < until
                    && err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 429) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(err) => panic!("DeleteRestApi: {err:?}"),
        }
    }
}
