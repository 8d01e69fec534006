//! `deployer dev` through the real binary, with no AWS: the first line is
//! the URL, which answers the forecast; a model change is picked up by a
//! rebuilt function while requests keep being answered (none fails); a
//! rebuild that fails leaves the previous function answering; and
//! the gateway's part (the preflight, the API key check, unknown paths)
//! answers as the deployed stage does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::util::fixture::Fixture;
use crate::util::running::Running;
use crate::util::{HttpAnswer, assert_default_preflight, call_url, docker};

const DATE: &str = "2025-10-20";

/// `deployer dev` on the fixture's local stage, on any free port, and the
/// URL it printed first.
fn start_dev(fx: &Fixture, extra: &[&str]) -> (Running, String) {
    let mut args = vec![
        "dev",
        "--stage",
        "local",
        "--port",
        "0",
        "--debounce-ms",
        "300",
    ];
    args.extend_from_slice(extra);
    let mut dev = Running::start(fx.command(&args));
    let url = dev.next_line();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with(&format!("/predict?date={DATE}")),
        "the first line is not the URL: {url}\nstderr:\n{}",
        dev.stderr()
    );
    // The first build may compile the function for minutes (longer than a
    // request's read timeout); a change's rebuild reuses it.
    dev.wait_stderr("[dev] ready:");
    (dev, url)
}

/// A request through `dev` that must answer 200.
fn get_ok(dev: &Running, url: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    let answer = call_url("GET", url, headers);
    assert_eq!(
        answer.status,
        200,
        "{}\nstderr:\n{}",
        answer.body,
        dev.stderr()
    );
    answer
}

fn model_version(answer: &HttpAnswer) -> String {
    answer.json()["model_version"]
        .as_str()
        .unwrap_or_else(|| panic!("no model_version in {}", answer.body))
        .to_string()
}

#[test]
fn dev_serves_the_forecast_and_a_model_change_without_a_failed_request() {
    let fx = Fixture::new("dev");
    let (mut dev, url) = start_dev(&fx, &[]);

    let first = get_ok(&dev, &url, &[]);
    assert_eq!(first.json()["date"], DATE);
    let before = model_version(&first);

    // Callers keep asking through the rebuild; every answer must be a 200.
    let stop = Arc::new(AtomicBool::new(false));
    let caller = {
        let (url, stop) = (url.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let answer = call_url("GET", &url, &[]);
                answers.push((answer.status, answer.body));
            }
            answers
        })
    };
    let expected = fx.change_models();
    assert_ne!(expected, before);
    let mut after = before.clone();
    // A hang guard, not a measurement.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while after == before {
        assert!(
            std::time::Instant::now() < give_up,
            "the new models never answered\nstderr:\n{}",
            dev.stderr()
        );
        let answer = get_ok(&dev, &url, &[]);
        after = model_version(&answer);
    }
    stop.store(true, Ordering::Relaxed);
    let answers = caller.join().unwrap();
    // The next answer comes from the rebuilt function with the new models.
    assert_eq!(after, expected, "stderr:\n{}", dev.stderr());
    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests during the rebuild failed: {failed:?}\nstderr:\n{}",
        failed.len(),
        answers.len(),
        dev.stderr()
    );
    assert!(
        dev.stderr().contains("changed: models/"),
        "{}",
        dev.stderr()
    );
    assert!(dev.interrupt().success(), "stderr:\n{}", dev.stderr());
}

#[test]
fn a_failed_rebuild_leaves_the_previous_function_serving_until_a_change_fixes_it() {
    let fx = Fixture::new("devfail");
    let (mut dev, url) = start_dev(&fx, &[]);
    let before = model_version(&get_ok(&dev, &url, &[]));

    // Models the function cannot load: its new process fails at init.
    let models = fx.path("models/models.postcard");
    let good = std::fs::read(&models).unwrap();
    std::fs::write(&models, b"not a model set").unwrap();
    dev.wait_stderr("the rebuild failed (the previous build still serves)");
    assert_eq!(
        model_version(&get_ok(&dev, &url, &[])),
        before,
        "stderr:\n{}",
        dev.stderr()
    );

    // Good models again, and a new version of them: served once rebuilt.
    std::fs::write(&models, &good).unwrap();
    let expected = fx.change_models();
    // A hang guard, not a measurement.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while model_version(&get_ok(&dev, &url, &[])) != expected {
        assert!(
            std::time::Instant::now() < give_up,
            "the fixed models never answered\nstderr:\n{}",
            dev.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(dev.interrupt().success(), "stderr:\n{}", dev.stderr());
}

#[test]
fn dev_answers_the_preflight_the_key_check_and_unknown_paths_as_the_gateway() {
    let fx = Fixture::new("devk");
    fx.set_local("api", "auth", "\"api_key\"");
    let (mut dev, url) = start_dev(&fx, &["--api-key", "s3cret"]);
    assert_eq!(
        dev.next_line(),
        "api key: s3cret (send it as the x-api-key header)"
    );

    // No key, or a wrong one: API Gateway's 403, with the CORS headers of
    // the gateway responses.
    for headers in [vec![], vec![("x-api-key", "wrong")]] {
        let refused = call_url("GET", &url, &headers);
        assert_eq!(refused.status, 403, "{headers:?}: {}", refused.body);
        assert_eq!(refused.json()["message"], "Forbidden");
        assert_eq!(refused.header("access-control-allow-origin"), Some("*"));
    }
    let answer = get_ok(&dev, &url, &[("x-api-key", "s3cret")]);
    assert_eq!(answer.json()["date"], DATE);
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));

    // The preflight needs no key: the deployed MOCK answer.
    assert_default_preflight(&url, "https://app.example");

    let base = url.split("/predict").next().unwrap();
    for (method, target) in [("GET", format!("{base}/other")), ("DELETE", url.clone())] {
        let answer = call_url(method, &target, &[("x-api-key", "s3cret")]);
        assert_eq!(answer.status, 403, "{method} {target}");
        assert_eq!(answer.json()["message"], "Missing Authentication Token");
    }
    // A bad date is the function's own 400, passed through.
    let bad = call_url(
        "GET",
        &format!("{base}/predict?date=2025-02-30"),
        &[("x-api-key", "s3cret")],
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(dev.interrupt().success(), "stderr:\n{}", dev.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_docker_serves_from_the_image_and_leaves_no_container() {
    let fx = Fixture::new("devd");
    let (mut dev, url) = start_dev(&fx, &["--docker"]);
    let answer = get_ok(&dev, &url, &[]);
    assert_eq!(answer.json()["date"], DATE);
    assert!(dev.stderr().contains("image build"), "{}", dev.stderr());
    let ours = || async {
        let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
            .all(true)
            .build();
        docker()
            .list_containers(Some(options))
            .await
            .unwrap()
            .into_iter()
            .filter(|c| {
                c.image
                    .as_deref()
                    .is_some_and(|i| i.starts_with(&format!("{}:", fx.app)))
            })
            .count()
    };
    assert_eq!(ours().await, 1, "the function's container is not running");
    assert!(dev.interrupt().success(), "stderr:\n{}", dev.stderr());
    assert_eq!(ours().await, 0, "a container outlived dev");
}
