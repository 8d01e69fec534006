//! A rollback that heals, an idle version met as AWS has it, a recreated
//! role repaired (issue 27): the real binary against the strict local AWS
//! with `lambda-inactive` and `lambda-role-grant` on. The idle tests run on
//! a moto of their own whose idle window is seconds (the shared one's is
//! days, so nothing else there goes idle), each through its stage's URL.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::fixture::{Fixture, json_of, set_in_table, texts};
use crate::util::own_moto::OwnMoto;
use crate::util::*;

const DATE: &str = "2025-10-20";

/// The stage's URL answers the prediction (a 200).
fn assert_serves(url: &str) {
    let served = call_url("GET", &format!("{url}?date={DATE}"), &[]);
    assert_eq!(served.status, 200, "{served:?}");
}

/// The models directory that does not exist: the function fails at init,
/// so its smoke test fails (and its version stays published).
fn break_the_function(fx: &Fixture) -> String {
    let missing = format!("\"/nonexistent-{}\"", fx.app);
    fx.set_local("function.environment", "PREDICTION_MODELS_DIR", &missing);
    missing
}

fn repair_the_function(fx: &Fixture, missing: &str) {
    fx.edit_config(|text| text.replace(&format!("PREDICTION_MODELS_DIR = {missing}\n"), ""));
}

fn version(answer: &Value) -> String {
    answer["version"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_skips_a_version_that_failed_its_checks() {
    let fx = Fixture::new("rbskip");
    let _dump = DumpOnFailure::new(&fx.app);
    let lambda = aws_sdk_lambda::Client::new(&sdk_config().await);
    let function = fx.function("local");
    let v1 = version(&fx.json(&["up", "--stage", "local", "--json", "--yes"]));

    // Version 2 is published and fails its smoke test: the alias stays.
    let missing = break_the_function(&fx);
    let out = fx.deployer(&["up", "--stage", "local", "--yes"]);
    assert_eq!(out.status.code(), Some(5), "{:?}", texts(&out));
    assert_eq!(alias_version(&lambda, &function, "local").await, v1);

    repair_the_function(&fx, &missing);
    let third = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let v3 = version(&third);
    let published = lambda
        .list_versions_by_function()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(published.versions().len(), 4, "$LATEST and 3 versions");

    // The default target is the newest version that passed, not 2.
    let back = fx.json(&["rollback", "--stage", "local", "--json"]);
    assert_eq!(back["from"].as_str(), Some(v3.as_str()), "{back}");
    assert_eq!(back["to"].as_str(), Some(v1.as_str()), "{back}");
    assert_eq!(alias_version(&lambda, &function, "local").await, v1);
    assert_serves(third["url"].as_str().unwrap());
    // The record survives on the function, where any machine finds it.
    let passed = deployer::aws::lambda::passed_versions(&lambda, &function)
        .await
        .unwrap();
    assert_eq!(
        passed,
        vec![v1.parse::<u64>().unwrap(), v3.parse().unwrap()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_public_path_check_after_the_move_moves_the_alias_back() {
    let fx = Fixture::new("rbback");
    let _dump = DumpOnFailure::new(&fx.app);
    let lambda = aws_sdk_lambda::Client::new(&sdk_config().await);
    let function = fx.function("local");
    fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    fx.set_local("function", "memory", "1024");
    let second = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let v2 = version(&second);

    // API Gateway may no longer call the alias: whatever version it points
    // at, the URL answers 500; the smoke test (a direct invoke) passes.
    lambda
        .remove_permission()
        .function_name(&function)
        .qualifier("local")
        .statement_id(deployer::stage::desired::PERMISSION_ID)
        .send()
        .await
        .unwrap();
    let out = fx.deployer(&["rollback", "--stage", "local"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the public path check failed")
            && stderr.contains(&format!("back at version {v2}")),
        "{stderr}"
    );
    assert_eq!(alias_version(&lambda, &function, "local").await, v2);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_deleted_and_recreated_role_up_leaves_a_stage_that_answers() {
    require_strict_local_aws();
    let fx = Fixture::new("rbrole");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let function = fx.function("local");
    let first = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let url = first["url"].as_str().unwrap().to_string();
    assert_serves(&url);

    // An "unused roles" clean-up: the role goes, its policies first.
    let role = format!("{function}-exec");
    assert!(deployer::aws::iam::delete_role(&iam, &role).await.unwrap());

    // up recreates it; the function's grant was for the old principal.
    let repaired = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_ne!(version(&repaired), version(&first), "{repaired}");
    assert_eq!(
        alias_version(&lambda, &function, "local").await,
        version(&repaired)
    );
    assert_serves(&url);
}

/// A moto of the test's own whose versions go `Inactive` after 20 s idle
/// (scaled by `LOCAL_AWS_TIME_SCALE`), and `deployer` aimed at it.
struct IdleCloud {
    moto: OwnMoto,
    fx: Fixture,
}

impl IdleCloud {
    fn new(prefix: &str) -> IdleCloud {
        let moto = OwnMoto::start(prefix, &[("LOCAL_AWS_LAMBDA_INACTIVE_SECONDS", "200")]);
        let fx = Fixture::new(prefix);
        let url = format!("\"{}\"", moto.url);
        fx.edit_config(|text| set_in_table(text, "stages.local", "endpoint-url", &url));
        IdleCloud { moto, fx }
    }

    fn deployer(&self, args: &[&str]) -> Output {
        self.fx
            .command(args)
            .env("AWS_ENDPOINT_URL", &self.moto.url)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        json_of(&self.deployer(args), args)
    }

    async fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.moto.sdk_config().await)
    }

    /// Waits until `version` of the stage's function reports `Inactive`.
    async fn until_inactive(&self, version: &str) {
        let lambda = self.lambda().await;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let config = lambda
                .get_function_configuration()
                .function_name(self.fx.function("local"))
                .qualifier(version)
                .send()
                .await
                .unwrap();
            if config.state().map(|s| s.as_str()) == Some("Inactive") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "version {version} is still {:?}; see {}",
                config.state(),
                self.moto.log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_to_an_idle_version_wakes_it_and_succeeds() {
    let cloud = IdleCloud::new("rbidle");
    let up = ["up", "--stage", "local", "--json", "--yes"];
    let v1 = version(&cloud.json(&up));
    cloud.fx.set_local("function", "memory", "1024");
    let second = cloud.json(&up);
    let url = second["url"].as_str().unwrap().to_string();
    cloud.until_inactive(&v1).await;

    let back = cloud.json(&["rollback", "--stage", "local", "--json"]);
    assert_eq!(back["to"].as_str(), Some(v1.as_str()), "{back}");
    let lambda = cloud.lambda().await;
    assert_eq!(
        alias_version(&lambda, &cloud.fx.function("local"), "local").await,
        v1
    );
    assert_serves(&url);
}

#[tokio::test(flavor = "multi_thread")]
async fn ups_smoke_test_survives_an_inactive_version() {
    let cloud = IdleCloud::new("rbupidle");
    let up = ["up", "--stage", "local", "--json", "--yes"];
    let v1 = version(&cloud.json(&up));
    cloud.fx.set_local("function", "memory", "1024");
    let v2 = version(&cloud.json(&up));
    // The alias back on 1; version 2 (what deploy.toml describes) idles.
    let to = v1.clone();
    let out = cloud.deployer(&["rollback", "--stage", "local", "--to", &to]);
    assert!(out.status.success(), "{:?}", texts(&out));
    cloud.until_inactive(&v2).await;

    // up moves the alias to 2 again: it smoke-tests an Inactive version.
    let again = cloud.json(&up);
    assert_eq!(version(&again), v2, "{again}");
    assert_serves(again["url"].as_str().unwrap());
}
