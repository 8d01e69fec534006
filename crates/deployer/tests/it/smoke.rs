//! The smoke test of `deployer up` against the local AWS, which runs the
//! real image: a version that answers 200 gets the alias; one whose function
//! cannot start (its models directory does not exist) does not, `up` exits 5
//! showing Lambda's answer and the function's log, and a later `up` does not
//! move the alias to that version untested either.

use crate::util::fixture::{Fixture, texts};
use crate::util::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_smoke_test_keeps_the_alias_and_exits_5() {
    let fx = Fixture::new("smoke");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = fx.function("local");

    let first = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let v1 = first["version"].as_str().unwrap().to_string();
    assert_eq!(alias_version(&lambda, &function, "local").await, v1);
    let steps = first["steps"].to_string();
    assert!(
        steps.contains("smoke test") && steps.contains(&format!("version {v1} answered 200")),
        "no passing smoke test step in {steps}"
    );

    // A configuration the function cannot start with: a new version, whose
    // init fails (the function names the missing directory and exits).
    let missing = format!("/nonexistent-{}", fx.app);
    fx.set_local(
        "function.environment",
        "PREDICTION_MODELS_DIR",
        &format!("\"{missing}\""),
    );
    let out = fx.deployer(&["up", "--stage", "local", "--json", "--yes"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(5),
        "a failed smoke test must exit 5\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("a function error (Unhandled)") && stderr.contains("Runtime.ExitError"),
        "Lambda's answer is not shown:\n{stderr}"
    );
    assert!(
        stderr.contains(&missing) && stderr.contains("init failed"),
        "the function's log is not shown:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        alias_version(&lambda, &function, "local").await,
        v1,
        "the alias moved to the version that failed its smoke test"
    );
    let conf = lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(
        conf.environment()
            .and_then(|e| e.variables())
            .and_then(|v| v.get("PREDICTION_MODELS_DIR"))
            .map(String::as_str),
        Some(missing.as_str()),
        "the function was not updated"
    );

    // Nothing changed since: the failed version still matches `$LATEST`,
    // and `up` must smoke-test it again rather than move the alias to it.
    let again = fx.deployer(&["up", "--stage", "local", "--json", "--yes"]);
    let (stdout, stderr) = texts(&again);
    assert_eq!(
        again.status.code(),
        Some(5),
        "a rerun moved on without a passing smoke test\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(alias_version(&lambda, &function, "local").await, v1);
}
