//! Concurrency and the stage lock, end to end against the local AWS.
//!
//! The documented behaviour: two `up` of one stage at once serialise on
//! the stage lock. The second waits (up to 60 s) while the first applies,
//! then surveys the state the first left and finds nothing to change: both
//! exit 0, and the stage holds one of everything. A lock held longer than
//! the wait makes the second fail with exit code 6 and a message naming
//! the holder; a stale lock (its process gone from this machine and pid
//! namespace, or silent for its bound by CloudWatch's clock) is broken
//! with a warning. Clocks, host names and signals across machines:
//! `lock_across_machines`. `plan` takes no lock; `destroy`
//! takes the same lock as `up`, so the two never interleave.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use crate::util::fixture::*;
use crate::util::snapshot::*;
use crate::util::*;

const UP: [&str; 5] = ["up", "--stage", "local", "--json", "--yes"];

/// Takes the lock `group` as another deployer would: the log group, tagged
/// with its holder (`machine` as `aws::lock::this_machine` says it, empty
/// for another machine), keeping to `stale_after` seconds. It never beats:
/// by CloudWatch's clock it is silent from its creation on.
async fn hold_lock(group: &str, host: &str, pid: u32, machine: &str, stale_after: u64) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config().await);
    let since = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let tags = HashMap::from([
        ("deployer:host".to_string(), host.to_string()),
        ("deployer:pid".to_string(), pid.to_string()),
        ("deployer:machine".to_string(), machine.to_string()),
        (
            "deployer:command".to_string(),
            "deployer up --stage local".to_string(),
        ),
        ("deployer:since".to_string(), since),
        (
            "deployer:stale-after-seconds".to_string(),
            stale_after.to_string(),
        ),
    ]);
    // A release still in flight races this create (OperationAborted): a
    // client asks again.
    let create = logs
        .create_log_group()
        .log_group_name(group)
        .set_tags(Some(tags));
    once_ready("CreateLogGroup", || create.clone().send()).await;
}

/// The default bound: a lock held by hand stays live for any wait here.
const LIVE: u64 = 900;

async fn drop_lock(group: &str) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config().await);
    deployer::aws::logs::delete_log_group(&logs, group)
        .await
        .unwrap();
}

/// A pid of this host that no process has: a child that has exited and
/// been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ups_at_once_serialise_on_the_lock_and_leave_one_of_everything() {
    let fx = Fixture::new("conc");
    let _dump = DumpOnFailure::new(&fx.app);
    // The function compiled and its image built first (locally, no AWS): a
    // run waits 60 s for the lock, and the first compile of the function
    // on a cold cache and a loaded machine can take longer by itself, so
    // the second run would give up for a reason this test is not about.
    fx.stdout(&["build", "--stage", "local"]);
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| fx.deployer(&UP));
        let b = scope.spawn(|| fx.deployer(&UP));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (a_json, b_json) = (json_of(&a, &UP), json_of(&b, &UP));

    // One applied the plan; the other surveyed after it and found nothing.
    let mut answers = [(&a, &a_json), (&b, &b_json)];
    answers.sort_by_key(|(_, json)| changes(json).is_empty());
    let [(_, first), (second_out, second)] = answers;
    assert!(
        !changes(first).is_empty(),
        "neither run changed anything: {first}"
    );
    assert_eq!(
        changes(second),
        Vec::<String>::new(),
        "both runs planned changes: their surveys interleaved"
    );
    assert_eq!(second["image"]["built"], false);
    assert_eq!(first["version"], second["version"]);
    assert_eq!(first["url"], second["url"]);
    let waited =
        String::from_utf8_lossy(&second_out.stderr).contains("waiting for the lock held by");
    eprintln!("the second run waited for the lock: {waited}");

    let tag = first["image"]["tag"].as_str().unwrap();
    let got = snapshot(&fx.app, tag).await;
    assert_eq!(got.rest_apis, 1, "{got:?}");
    assert_eq!(got.roles, 1, "{got:?}");
    assert_eq!(got.repositories, 1, "{got:?}");
    assert_eq!(got.published_versions, 1, "{got:?}");
    assert!(got.image_by_served_digest, "{got:?}");
    assert!(got.alias_on_current_version, "{got:?}");
    assert!(got.permission_scoped_to_the_api, "{got:?}");
    assert!(!got.lock_held, "a run left its lock: {got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_lock_makes_up_wait_then_fail_with_exit_6_and_plan_not_wait() {
    let fx = Fixture::new("lockheld");
    let _dump = DumpOnFailure::new(&fx.app);
    let group = fx.lock_group("local");
    hold_lock(&group, "ci-elsewhere", 4242, "", LIVE).await;

    // `plan` only reads: it does not wait for the lock.
    let started = Instant::now();
    let plan = fx.json(&["plan", "--stage", "local", "--json"]);
    assert!(!changes(&plan).is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "plan took {:?}: did it wait for the lock?",
        started.elapsed()
    );

    let started = Instant::now();
    let out = fx.deployer(&["up", "--stage", "local", "--yes"]);
    let waited = started.elapsed();
    drop_lock(&group).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("waiting for the lock held by ci-elsewhere/4242 since"),
        "{stderr}"
    );
    assert!(
        stderr.contains("locked by another deployer (ci-elsewhere/4242") && stderr.contains(&group),
        "{stderr}"
    );
    assert!(
        waited >= Duration::from_secs(55) && waited < Duration::from_secs(120),
        "up gave up after {waited:?}, not after about 60 s"
    );
    // It changed nothing while it waited.
    let lambda = aws_sdk_lambda::Client::new(&sdk_config().await);
    let function = lambda
        .get_function()
        .function_name(fx.function("local"))
        .send()
        .await;
    assert!(
        function.is_err(),
        "the function was created without the lock"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_locks_are_broken_with_a_warning_and_not_left_behind() {
    let fx = Fixture::new("lockstale");
    let _dump = DumpOnFailure::new(&fx.app);
    let group = fx.lock_group("local");

    // Silent for its bound of 4 s, on another machine.
    hold_lock(&group, "ci-elsewhere", 4242, "", 4).await;
    let out = fx.deployer(&UP);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let answer = json_of(&out, &UP);
    assert!(!changes(&answer).is_empty());
    assert!(
        stderr.contains("breaking the stale stage lock held by ci-elsewhere/4242")
            && stderr.contains("no sign of life")
            && stderr.contains("by CloudWatch's clock"),
        "{stderr}"
    );
    assert!(!lock_exists(&group).await, "up left its lock");

    // Its process gone from this machine and pid namespace, however fresh.
    let pid = dead_pid();
    let host = deployer::aws::lock::this_host();
    let machine = deployer::aws::lock::this_machine();
    hold_lock(&group, &host, pid, &machine, LIVE).await;
    let out = fx.deployer(&UP);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let answer = json_of(&out, &UP);
    assert_eq!(changes(&answer), Vec::<String>::new());
    assert!(
        stderr.contains(&format!(
            "its process {pid} on this machine ({host}) is gone"
        )),
        "{stderr}"
    );
    assert!(!lock_exists(&group).await, "up left its lock");
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_waits_for_the_stage_lock_and_leaves_no_lock_or_marker() {
    let fx = Fixture::new("lockdestroy");
    let _dump = DumpOnFailure::new(&fx.app);
    let group = fx.lock_group("local");
    hold_lock(&group, "ci-elsewhere", 4242, "", LIVE).await;
    // What a breaker killed half-way through breaking an earlier stale lock
    // leaves: a marker that nothing else would ever delete.
    let marker = format!("{group}/break-1");
    hold_lock(&marker, "ci-elsewhere", 4243, "", LIVE).await;

    let mut child = fx
        .command(&["destroy", "--stage", "local", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "destroy did not wait for the live lock"
    );
    drop_lock(&group).await;
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("waiting for the lock held by ci-elsewhere/4242 since"),
        "{stderr}"
    );
    assert!(stdout.contains("Nothing to remove"), "{stdout}");
    assert!(!lock_exists(&group).await, "destroy left its lock");
    assert!(!lock_exists(&marker).await, "destroy left a break marker");
}
