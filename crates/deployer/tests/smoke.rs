//! The smoke test of `deployer up` against moto: a version that answers
//! 200 gets the alias; one that answers 500 does not, `up` exits 5 showing
//! the function's answer, and a later `up` does not move the alias to that
//! version untested either.
//!
//! moto's simple Lambda backend answers an invoke with a queued payload
//! (or, with none queued, echoes the event back). Its queue is one per
//! region and shared with every other test; the image push only works in
//! us-east-1, so these tests queue there, right before an `up` that has no
//! image to build, and retry a scenario once when another test's invoke
//! took the answer they queued.

mod util;

use std::process::Output;

use util::fixture::{Fixture, json_of, texts};
use util::*;

const GOOD: &str = r#"{"statusCode":200,"headers":{"content-type":"application/json"},"body":"{\"predictions\":[]}"}"#;

fn bad_answer(marker: &str) -> String {
    serde_json::json!({
        "statusCode": 500,
        "headers": {"content-type": "application/json"},
        "body": format!("{{\"error\":\"{marker}\"}}"),
    })
    .to_string()
}

/// Queues `answer` in moto and runs `up` right after.
async fn up_answering(fx: &Fixture, lambda: &aws_sdk_lambda::Client, answer: &str) -> Output {
    drain_lambda_answers(lambda, &fx.function("local")).await;
    queue_lambda_response_in("us-east-1", answer);
    fx.deployer(&["up", "--stage", "local", "--json", "--yes"])
}

/// Whether the smoke test saw moto's echo of its own event rather than the
/// answer this test queued (another test's invoke consumed it).
fn answer_was_taken(out: &Output) -> bool {
    let (stdout, stderr) = texts(out);
    out.status.code() == Some(5) && format!("{stdout}{stderr}").contains("queryStringParameters")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_smoke_test_keeps_the_alias_and_exits_5() {
    let fx = Fixture::new("smoke");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config_in("us-east-1").await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = fx.function("local");

    // Build and push with the smoke test off, so that every `up` below is
    // short and the queued answer waits only seconds.
    let first = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let v1 = first["version"].as_str().unwrap().to_string();
    assert_eq!(alias_version(&lambda, &function, "local").await, v1);

    // Smoke test on, memory changed: a new version, which answers 200.
    fx.set_local("smoke-test", "enabled", "true");
    fx.set_local("function", "memory", "1024");
    let mut out = up_answering(&fx, &lambda, GOOD).await;
    if answer_was_taken(&out) {
        eprintln!("another test took the queued good answer; trying again");
        out = up_answering(&fx, &lambda, GOOD).await;
    }
    let good = json_of(&out, &["up (good answer)"]);
    let v2 = good["version"].as_str().unwrap().to_string();
    assert_ne!(v1, v2, "the memory change published no version");
    assert_eq!(alias_version(&lambda, &function, "local").await, v2);
    let steps = good["steps"].to_string();
    assert!(
        steps.contains("smoke test"),
        "no smoke test step in {steps}"
    );

    // Memory changed again: the new version answers 500.
    fx.set_local("function", "memory", "512");
    let marker = format!("model exploded {}", fx.app);
    let mut out = up_answering(&fx, &lambda, &bad_answer(&marker)).await;
    if answer_was_taken(&out) {
        eprintln!("another test took the queued bad answer; trying again");
        out = up_answering(&fx, &lambda, &bad_answer(&marker)).await;
    }
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(5),
        "a failed smoke test must exit 5\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&marker) && stderr.contains("status 500"),
        "the function's answer is not shown:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        alias_version(&lambda, &function, "local").await,
        v2,
        "the alias moved to the version that failed its smoke test"
    );
    let conf = lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(
        conf.memory_size(),
        Some(512),
        "the function was not updated"
    );

    // Nothing changed since: the failed version still matches `$LATEST`,
    // and `up` must smoke-test it again rather than move the alias to it.
    let again = up_answering(&fx, &lambda, &bad_answer(&marker)).await;
    let (stdout, stderr) = texts(&again);
    assert_eq!(
        again.status.code(),
        Some(5),
        "a rerun moved on without a passing smoke test\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(alias_version(&lambda, &function, "local").await, v2);
}
