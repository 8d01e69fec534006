//! `deployer up --watch` through the real binary against the local AWS:
//! after the first `up`, a model change publishes exactly one new version
//! and moves the alias to it; two changes within the debounce window are
//! one more `up`, not two; and a `protected` stage is refused.

use deployer::aws::lambda;

use crate::util::fixture::Fixture;
use crate::util::running::Running;
use crate::util::*;

#[tokio::test(flavor = "multi_thread")]
async fn up_watch_publishes_one_version_per_change_and_moves_the_alias() {
    let fx = Fixture::new("wat");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let client = aws_sdk_lambda::Client::new(&config);
    let function = fx.function("local");
    // Long enough that the two writes of a change, and two changes made
    // back to back, fall in one window.
    let mut watch = Running::start(fx.command(&[
        "up",
        "--stage",
        "local",
        "--watch",
        "--debounce-ms",
        "2000",
        "--json",
        "--yes",
    ]));
    let first = watch.next_json();
    assert_eq!(first["changed"], serde_json::json!([]), "{first}");
    let v1 = first["version"].as_str().unwrap().to_string();

    // One change: one `up`, one new version, the alias on it.
    fx.change_models();
    let second = watch.next_json();
    let changed: Vec<&str> = second["changed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        changed,
        ["models/manifest.json", "models/models.postcard"],
        "{second}"
    );
    let v2 = second["version"].as_str().unwrap().to_string();
    assert_ne!(v2, v1, "{second}");
    assert_eq!(alias_version(&client, &function, "local").await, v2);

    // Two changes within the window: one more `up`.
    fx.change_models();
    fx.change_models();
    let third = watch.next_json();
    let v3 = third["version"].as_str().unwrap().to_string();
    assert_ne!(v3, v2, "{third}");
    // Had the second change made an `up` of its own, it would come next;
    // what comes next is this edit of deploy.toml (nothing to deploy).
    fx.edit_config(|text| format!("{text}\n# saved again\n"));
    let fourth = watch.next_json();
    assert_eq!(
        fourth["changed"],
        serde_json::json!(["deploy.toml"]),
        "{fourth}"
    );
    assert_eq!(fourth["version"], v3.as_str(), "{fourth}");
    assert_eq!(fourth["changes"], serde_json::json!([]), "{fourth}");
    assert!(watch.interrupt().success(), "stderr:\n{}", watch.stderr());

    let versions: Vec<String> = lambda::list_versions(&client, &function)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(
        versions,
        [v1, v2, v3.clone()],
        "stderr:\n{}",
        watch.stderr()
    );
    assert_eq!(alias_version(&client, &function, "local").await, v3);
}

#[test]
fn up_watch_refuses_a_protected_stage() {
    let fx = Fixture::new("watp");
    // The repository's deploy.toml marks prod protected.
    let out = fx.deployer(&["up", "--stage", "prod", "--watch"]);
    let (stdout, stderr) = crate::util::fixture::texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("protected = true") && stderr.contains("[stages.prod]"),
        "{stderr}"
    );
}
