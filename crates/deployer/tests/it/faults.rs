//! Fault injection: `deployer up --stage local` SIGKILLed at seeded random
//! moments spread over a whole run (a few milliseconds after its k-th step
//! began: steps, not seconds, so the moments land inside runs however long
//! the local AWS's windows or the machine's load make them), with no cleanup
//! between kills, then let finish. The result must equal an uninterrupted run's (compared as
//! [`Snapshot`]s read with the SDK), a further `up` must have nothing to
//! change, and no stage lock may be left. Each killed run leaves its lock
//! behind; the next run breaks it (same host, dead pid), so this also tests
//! the lock's stale-lock rule.
//!
//! The same for `destroy --stage local --yes` after an `up`: killed at
//! seeded, increasing moments a thirtieth of an uninterrupted destroy
//! apart, with no cleanup between, until one run ends on its own. Nothing
//! of the stage may remain (read with the SDK: function, permission, role,
//! REST API, log group, repository, stage lock and its break markers) and
//! a second `destroy` has nothing to remove.
//!
//! `FAULT_SEED` picks another seed (the default is fixed, so a failure
//! repeats).

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::fixture::*;
use crate::util::snapshot::*;
use crate::util::*;

/// Independent series, each from nothing in its own app.
const SERIES: u64 = 5;
/// Kill moments per series, at increasing delays over one run's duration.
/// A run resumed after a kill skips what is done, so about two thirds of
/// the moments come after it has finished (18 steps a run since the version
/// and image clean-ups and the passed-version record): 16 a series give
/// `assert_enough` its 20 kills mid-run with room to spare.
const MOMENTS: usize = 16;

/// splitmix64: a seeded generator small enough to keep here.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What happened at one kill moment.
#[derive(Debug, Default)]
struct Tally {
    tried: usize,
    killed: usize,
    finished_first: usize,
    /// Runs that ended on their own with an error before the kill.
    failed_first: Vec<String>,
}

impl Tally {
    fn add(&mut self, series: Tally) {
        self.tried += series.tried;
        self.killed += series.killed;
        self.finished_first += series.finished_first;
        self.failed_first.extend(series.failed_first);
    }

    /// Enough kill moments landed mid-run, and no run that was not killed
    /// failed: a killed run's leftovers (its lock, a half-made or
    /// half-deleted resource) are the next run's to finish, never an error.
    fn assert_enough(&self, command: &str) {
        assert!(
            self.tried >= 20,
            "only {} kill moments were tried",
            self.tried
        );
        assert!(
            self.killed >= 20,
            "only {} of {} moments killed a running {command}; the runs ended too soon",
            self.killed,
            self.tried
        );
        assert!(
            self.failed_first.is_empty(),
            "{command} runs failed on their own after earlier kills:\n{}",
            self.failed_first.join("\n---\n")
        );
    }
}

fn up_args() -> [&'static str; 4] {
    ["up", "--stage", "local", "--yes"]
}

/// How many steps a run's progress lines began (`[up] push ...`).
fn steps_begun(stderr: &str) -> usize {
    stderr.lines().filter(|l| is_step_start(l)).count()
}

fn is_step_start(line: &str) -> bool {
    line.starts_with('[') && line.ends_with(" ...")
}

/// A kill moment: `jitter` after the run began its `step`-th step.
#[derive(Debug, Clone, Copy)]
struct Moment {
    step: usize,
    jitter: Duration,
}

/// Runs `deployer args` once per moment in `fx`, killing it with SIGKILL
/// at that moment unless it has ended by then.
fn kill_at_steps(fx: &Fixture, args: &[&str], moments: &[Moment], tally: &mut Tally) {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    for moment in moments {
        let mut child = fx
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (began, steps) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if is_step_start(&line) {
                    // The receiver may be gone once the kill is decided.
                    let _ = began.send(());
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        // Until the step begins, or the run ends (the sender drops with EOF).
        let mut seen = 0;
        while seen < moment.step && steps.recv().is_ok() {
            seen += 1;
        }
        std::thread::sleep(moment.jitter);
        tally.tried += 1;
        match child.try_wait().unwrap() {
            Some(status) if status.success() => tally.finished_first += 1,
            Some(status) => {
                let stderr = reader.join().unwrap_or_default();
                tally
                    .failed_first
                    .push(format!("at {moment:?}: {status}\n{stderr}"));
                continue;
            }
            None => {
                // Child::kill sends SIGKILL; wait reaps it, so its pid is
                // dead (not a zombie) when the next run judges the lock.
                child.kill().unwrap();
                child.wait().unwrap();
                tally.killed += 1;
            }
        }
        drop(steps);
        let _ = reader.join();
    }
}

/// Runs `deployer args` once per moment of `delays` in `fx`, killing it
/// with SIGKILL at that moment unless it has ended by then.
async fn kill_at(fx: &Fixture, args: &[&str], delays: &[Duration], tally: &mut Tally) {
    let log = fx.path("killed-run.log");
    for delay in delays {
        let out = File::create(&log).unwrap();
        let mut child = fx
            .command(args)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        tokio::time::sleep(*delay).await;
        tally.tried += 1;
        match child.try_wait().unwrap() {
            Some(status) if status.success() => tally.finished_first += 1,
            Some(status) => {
                let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                tally
                    .failed_first
                    .push(format!("at {delay:?}: {status}\n{stderr}"));
            }
            None => {
                // Child::kill sends SIGKILL; wait reaps it, so its pid is
                // dead (not a zombie) when the next run judges the lock.
                child.kill().unwrap();
                child.wait().unwrap();
                tally.killed += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_killed_at_seeded_moments_ends_equal_to_an_uninterrupted_run() {
    let seed: u64 = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);

    // The uninterrupted run: what every series must end as, and how many
    // steps a run from nothing takes.
    let reference = Fixture::new("fltref");
    let _dump_ref = DumpOnFailure::new(&reference.app);
    let out = reference.deployer(&["up", "--stage", "local", "--json", "--yes"]);
    let answer = json_of(&out, &["up"]);
    let steps = steps_begun(&texts(&out).1);
    assert!(steps >= 8, "a run from nothing began only {steps} steps");
    let tag = answer["image"]["tag"].as_str().unwrap().to_string();
    let expected = snapshot(&reference.app, &tag).await;
    assert_eq!(expected.rest_apis, 1, "{expected:?}");
    assert_eq!(expected.roles, 1, "{expected:?}");
    assert_eq!(expected.repositories, 1, "{expected:?}");
    assert!(expected.image_by_served_digest, "{expected:?}");
    assert!(expected.alias_on_current_version, "{expected:?}");
    assert!(expected.permission_scoped_to_the_api, "{expected:?}");
    assert!(
        !expected.lock_held,
        "a normal run left its lock: {expected:?}"
    );

    // Increasing steps over a run from nothing, each a seeded few
    // milliseconds (up to 300) after its step began: a run resumed after a
    // kill skips what is done, so later moments reach further into it.
    let mut rng = Rng(seed);
    let mut total = Tally::default();
    let mut converged = 0;
    for series in 0..SERIES {
        let fx = Fixture::new(&format!("fault{series}"));
        let _dump = DumpOnFailure::new(&fx.app);
        let moments: Vec<Moment> = (0..MOMENTS)
            .map(|i| Moment {
                step: 1 + ((steps as f64) * (i as f64 + rng.unit()) / MOMENTS as f64) as usize,
                jitter: Duration::from_secs_f64(0.3 * rng.unit()),
            })
            .collect();
        let mut tally = Tally::default();
        kill_at_steps(&fx, &up_args(), &moments, &mut tally);

        // Then let it finish, and once more: nothing left to change.
        let finished = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
        let again = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
        assert_eq!(
            changes(&again),
            Vec::<String>::new(),
            "series {series}: an up after the finishing one still changes things"
        );
        assert_eq!(again["image"]["built"], false);
        assert_eq!(finished["image"]["tag"], tag.as_str());
        let got = snapshot(&fx.app, &tag).await;
        assert_eq!(
            got, expected,
            "series {series} (seed {seed}, moments {moments:?}) ended unlike an uninterrupted run"
        );
        converged += 1;
        eprintln!(
            "series {series}: {} moments, {} killed mid-run, {} finished first, {} failed first",
            tally.tried,
            tally.killed,
            tally.finished_first,
            tally.failed_first.len()
        );
        total.add(tally);
    }

    eprintln!(
        "fault injection (seed {seed}, {steps} steps a run): {} kill moments tried, {} killed \
         mid-run, {} runs finished before their kill, {} failed before it; {converged}/{SERIES} \
         series converged to the uninterrupted result",
        total.tried,
        total.killed,
        total.finished_first,
        total.failed_first.len()
    );
    total.assert_enough("up");
}

/// Destroy series, each from a fresh `up` in its own app.
const DESTROY_SERIES: u64 = 2;
/// Kill moments per uninterrupted destroy's duration: 30 gave 19 and 20
/// kills mid-run on 2 cores once every survey also read the alarms and the
/// domain names (the runs after a kill are shorter than the timed one).
const STEPS_PER_RUN: f64 = 40.0;

/// What of `app`'s local stage is still in the local AWS, read with the
/// SDK by name: everything `up` makes, and the stage lock with any break
/// marker below it.
async fn leftovers(app: &str) -> Vec<String> {
    let config = sdk_config().await;
    let function = format!("{app}-local");
    let mut left = Vec::new();

    // Only "not found" is absence; any other failure fails the test, so
    // an unreachable AWS never reads as an empty stage.
    let lambda = aws_sdk_lambda::Client::new(&config);
    match lambda.get_function().function_name(&function).send().await {
        Ok(_) => left.push(format!("function {function}")),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => panic!("GetFunction {function}: {e:?}"),
    }
    // The first thing destroy removes: it tells a run killed early in the
    // deletions from one killed before them.
    let policy = lambda
        .get_policy()
        .function_name(&function)
        .qualifier("local")
        .send()
        .await;
    match policy {
        Ok(_) => left.push(format!("permission on {function}:local")),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => panic!("GetPolicy {function}:local: {e:?}"),
    }
    let iam = aws_sdk_iam::Client::new(&config);
    let role = format!("{function}-exec");
    match iam.get_role().role_name(&role).send().await {
        Ok(_) => left.push(format!("role {role}")),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) => {}
        Err(e) => panic!("GetRole {role}: {e:?}"),
    }
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let apis = apigw.get_rest_apis().limit(500).send().await.unwrap();
    for api in apis.items() {
        if api.name() == Some(function.as_str()) {
            left.push(format!("rest api {function} ({})", api.id().unwrap_or("?")));
        }
    }
    let ecr = aws_sdk_ecr::Client::new(&config);
    let repos = ecr
        .describe_repositories()
        .max_results(1000)
        .send()
        .await
        .unwrap();
    if repos
        .repositories()
        .iter()
        .any(|r| r.repository_name() == Some(app))
    {
        left.push(format!("repository {app}"));
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let lock = lock_group(app, "local");
    for group in [format!("/aws/lambda/{function}"), lock] {
        let found = logs
            .describe_log_groups()
            .log_group_name_prefix(&group)
            .send()
            .await
            .unwrap();
        for name in found.log_groups().iter().filter_map(|g| g.log_group_name()) {
            // The prefix also matches longer names; a break marker below
            // the lock is the lock's.
            if name == group || name.starts_with(&format!("{group}/")) {
                left.push(format!("log group {name}"));
            }
        }
    }
    left
}

/// Runs `destroy --json` in `fx` to the end: its answer, and the seconds
/// from its start to its first deletion (when its survey step ended) and
/// to its end.
fn timed_destroy(fx: &Fixture) -> (serde_json::Value, f64, f64) {
    use std::io::{BufRead, BufReader};
    let args = ["destroy", "--stage", "local", "--json", "--yes"];
    let started = Instant::now();
    let mut child = fx
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut deleting = None;
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if deleting.is_none() && line.contains("survey:") {
            deleting = Some(started.elapsed().as_secs_f64());
        }
        lines.push(line);
    }
    let out = child.wait_with_output().unwrap();
    let run = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "destroy failed: {:?}\n{}",
        out.status,
        lines.join("\n")
    );
    let deleting = deleting.unwrap_or_else(|| panic!("no survey step in:\n{}", lines.join("\n")));
    let answer = serde_json::from_slice(&out.stdout).unwrap();
    (answer, deleting, run)
}

fn destroy_args() -> [&'static str; 4] {
    ["destroy", "--stage", "local", "--yes"]
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_killed_at_seeded_moments_leaves_nothing_and_a_second_run_has_nothing_to_remove() {
    let seed: u64 = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);

    // An uninterrupted destroy, timed, on its own app: how long the kill
    // moments are spread over.
    let reference = Fixture::new("dfltref");
    let _dump_ref = DumpOnFailure::new(&reference.app);
    reference.json(&["up", "--stage", "local", "--json", "--yes"]);
    let (answer, deleting, run) = timed_destroy(&reference);
    assert!(deleting < run, "deletions from {deleting} s of {run} s");
    let removed = answer["removed"].as_array().unwrap();
    assert!(!removed.is_empty(), "{answer}");
    assert!(
        !answer.to_string().contains("/deployer/locks/"),
        "destroy counted its own lock as a resource of the stage: {answer}"
    );
    assert_eq!(leftovers(&reference.app).await, Vec::<String>::new());

    // Increasing delays, a small step apart (seeded jitter within each
    // step), until a run ends on its own: the moments cover a whole run
    // however loaded the machine is, and the deletions (a short part at
    // the end, after the start, the lock and the survey) get a few.
    let step = run.min(5.0) / STEPS_PER_RUN;
    let mut rng = Rng(seed);
    let mut total = Tally::default();
    // Kills after which the stage was part-way gone: the deletions, not
    // only the survey before them, were interrupted.
    let mut mid_deletion = 0;
    let mut converged = 0;
    for series in 0..DESTROY_SERIES {
        let fx = Fixture::new(&format!("dfault{series}"));
        let _dump = DumpOnFailure::new(&fx.app);
        fx.json(&["up", "--stage", "local", "--json", "--yes"]);
        let before = leftovers(&fx.app).await.len();
        assert!(before >= 4, "up left too little to destroy: {before}");
        let mut tally = Tally::default();
        let mut left_after = Vec::new();
        let mut delays = Vec::new();
        // A bound on the moments: a destroy that made no progress from
        // one kill to the next would otherwise be killed for ever.
        for i in 0..4 * STEPS_PER_RUN as usize {
            let delay = Duration::from_secs_f64(step * (i as f64 + rng.unit()));
            delays.push(delay);
            let killed = tally.killed;
            kill_at(
                &fx,
                &destroy_args(),
                std::slice::from_ref(&delay),
                &mut tally,
            )
            .await;
            let left = leftovers(&fx.app).await;
            // The killed run's lock is not the stage's.
            let stage_left = left
                .iter()
                .filter(|l| !l.contains("/deployer/locks/"))
                .count();
            if tally.killed > killed && stage_left > 0 && stage_left < before {
                mid_deletion += 1;
            }
            left_after.push(stage_left);
            if tally.killed == killed {
                break;
            }
        }

        // Then let it finish, and once more: nothing left to remove.
        let finished = fx.json(&["destroy", "--stage", "local", "--json", "--yes"]);
        assert!(
            !finished.to_string().contains("/deployer/locks/"),
            "series {series}: destroy counted the lock as a resource: {finished}"
        );
        let left = leftovers(&fx.app).await;
        assert_eq!(
            left,
            Vec::<String>::new(),
            "series {series} (seed {seed}, delays {delays:?}): the stage is not gone"
        );
        let again = fx.deployer(&destroy_args());
        let stdout = String::from_utf8_lossy(&again.stdout);
        assert!(
            again.status.success() && stdout.contains("Nothing to remove"),
            "series {series}: a second destroy: {:?}\n{stdout}\n{}",
            again.status,
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(leftovers(&fx.app).await, Vec::<String>::new());
        converged += 1;
        eprintln!(
            "destroy series {series}: {} moments, {} killed mid-run, {} finished first, \
             {} failed first; stage resources left after each: {left_after:?} of {before}",
            tally.tried,
            tally.killed,
            tally.finished_first,
            tally.failed_first.len()
        );
        total.add(tally);
    }

    eprintln!(
        "destroy fault injection (seed {seed}, run {run:.2} s, deletions from {deleting:.2} s): \
         {} kill moments tried, {} \
         killed mid-run ({mid_deletion} with the stage part-way gone), {} runs finished \
         before their kill, {} failed before it; {converged}/{DESTROY_SERIES} series \
         converged to an empty stage",
        total.tried,
        total.killed,
        total.finished_first,
        total.failed_first.len()
    );
    total.assert_enough("destroy");
}
