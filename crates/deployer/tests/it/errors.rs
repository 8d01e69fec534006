//! Faults and bad input, through the real `deployer` binary: transient AWS
//! errors injected by a proxy (the deploy still converges), missing
//! credentials, an unreachable Docker engine and a Dockerfile that fails —
//! each a clear message, its own exit code and never a panic.

use std::process::Output;
use std::sync::atomic::Ordering;

use crate::util::fixture::{Fixture, set_in_table, texts};
use crate::util::proxy::FaultProxy;
use crate::util::*;

/// The proxy fails this share of the requests (429, 500 or 503).
const FAULT_FRACTION: f64 = 0.2;
const FAULT_SEED: u64 = 6;

fn assert_no_panic(out: &Output) {
    let (stdout, stderr) = texts(out);
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
            "the deployer panicked:\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}

/// Runs `args`, expecting exit code `code` and every one of `needles` in
/// its output; returns stdout + stderr.
fn expect_failure(out: &Output, code: i32, needles: &[&str]) -> String {
    assert_no_panic(out);
    let (stdout, stderr) = texts(out);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for needle in needles {
        assert!(
            all.contains(needle),
            "the output does not mention {needle:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    // The message, for whoever reads the test log.
    for line in stderr.lines().filter(|l| l.starts_with("error")) {
        eprintln!("exit {code}: {line}");
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn up_converges_through_throttling_and_server_errors() {
    let fx = Fixture::new("flaky");
    let _dump = DumpOnFailure::new(&fx.app);
    let proxy = FaultProxy::for_local_stage(&fx, FAULT_FRACTION, FAULT_SEED);

    let first = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let again = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let counts = &proxy.counts;
    eprintln!(
        "fault proxy: {} requests, {} forwarded, {} injected ({} throttled, {} 5xx); \
         first up {} s, second {} s",
        counts.requests.load(Ordering::Relaxed),
        counts.forwarded.load(Ordering::Relaxed),
        counts.injected(),
        counts.throttled.load(Ordering::Relaxed),
        counts.server_errors.load(Ordering::Relaxed),
        first["seconds"],
        again["seconds"],
    );
    assert!(
        counts.throttled.load(Ordering::Relaxed) > 0
            && counts.server_errors.load(Ordering::Relaxed) > 0,
        "the proxy injected no throttling or no server error: the test proves nothing"
    );
    // Bounded: backoff slows `up` down (with the SDK's adaptive mode the
    // client-side rate limiter does most of that) but not without end.
    let seconds = first["seconds"].as_f64().unwrap();
    assert!(seconds < 300.0, "up through the faults took {seconds} s");
    // Converged: the second run finds nothing to do.
    let changed: Vec<_> = again["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "unchanged")
        .collect();
    assert!(
        changed.is_empty(),
        "the second up still changed {changed:?}"
    );
    assert_eq!(first["version"], again["version"]);

    // And straight from moto: one function, its alias on the version `up`
    // reported, one REST API.
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = fx.function("local");
    assert_eq!(
        alias_version(&lambda, &function, "local").await,
        first["version"].as_str().unwrap()
    );
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let apis = apigw.get_rest_apis().limit(500).send().await.unwrap();
    let ours = apis
        .items()
        .iter()
        .filter(|a| a.name() == Some(function.as_str()))
        .count();
    assert_eq!(ours, 1, "expected one REST API named {function}");
}

#[test]
fn missing_credentials_are_an_aws_error_that_says_so() {
    let fx = Fixture::new("nocreds");
    // The standard chain, as against real AWS: not the local stage's
    // fixed dummy credentials.
    fx.edit_config(|text| set_in_table(text, "stages.local", "dummy-credentials", "false"));
    let empty = fx.path("empty-aws-file");
    std::fs::write(&empty, "").unwrap();
    for args in [
        &["up", "--stage", "local", "--yes"][..],
        &["plan", "--stage", "local"][..],
    ] {
        let out = fx
            .command(args)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env("AWS_PROFILE", "no-such-profile-w-faults")
            .env("AWS_CONFIG_FILE", &empty)
            .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
            .output()
            .unwrap();
        let all = expect_failure(&out, 3, &["no AWS credentials found", "AWS_PROFILE"]);
        assert!(
            !all.contains("ProviderAttempt {"),
            "{args:?}: the error dumps the SDK's debug output:\n{all}"
        );
    }
}

#[test]
fn an_unreachable_docker_engine_is_a_build_error() {
    let fx = Fixture::new("nodocker");
    for args in [
        &["build", "--stage", "local"][..],
        &["up", "--stage", "local", "--yes"][..],
    ] {
        let out = fx
            .command(args)
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .output()
            .unwrap();
        expect_failure(
            &out,
            4,
            &["cannot reach the Docker engine", "/nonexistent.sock"],
        );
    }
}

#[test]
fn a_failing_dockerfile_is_a_build_error_with_its_log() {
    let fx = Fixture::new("baddocker");
    let dockerfile = fx.path("lambda-image/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    // A step that cannot work, after steps that do: the log of both shows.
    let broken = text.replacen(
        "COPY data/ /var/task/data/",
        "COPY data/ /var/task/data/\nCOPY no-such-file-w-faults /var/task/missing",
        1,
    );
    assert_ne!(
        broken, text,
        "the Dockerfile has no `COPY data/` line to follow"
    );
    std::fs::write(&dockerfile, broken).unwrap();
    let out = fx.deployer(&["build", "--stage", "local"]);
    let all = expect_failure(&out, 4, &["no-such-file-w-faults"]);
    assert!(
        all.contains("COPY data/"),
        "the build log before the failing step is not shown:\n{all}"
    );
}
