//! Fault injection: `deployer up --stage local` SIGKILLed at seeded random
//! moments spread over a whole run, with no cleanup between kills, then let
//! finish. The result must equal an uninterrupted run's (compared as
//! [`Snapshot`]s read with the SDK), a further `up` must have nothing to
//! change, and no stage lock may be left. Each killed run leaves its lock
//! behind; the next run breaks it (same host, dead pid), so this also tests
//! the lock's stale-lock rule.
//!
//! `FAULT_SEED` picks another seed (the default is fixed, so a failure
//! repeats). `destroy` is not covered: the command is not on main yet.

#[path = "lock_fixture/mod.rs"]
mod fixture;
mod util;

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fixture::*;
use util::*;

/// Independent series, each from nothing in its own app.
const SERIES: u64 = 5;
/// Kill moments per series, at increasing delays over one run's duration.
const MOMENTS: usize = 12;

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

fn up_args() -> [&'static str; 4] {
    ["up", "--stage", "local", "--yes"]
}

/// The seconds a run's JSON answer says its compile step took (0 when the
/// binary cache had it).
fn compile_seconds(answer: &serde_json::Value) -> f64 {
    answer["steps"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["step"] == "compile")
        .filter_map(|s| s["seconds"].as_f64())
        .sum()
}

/// Runs `up` once per moment of `delays` in `fx`, killing it with SIGKILL
/// at that moment unless it has ended by then.
async fn kill_at(fx: &Fixture, delays: &[Duration], tally: &mut Tally) {
    let log = fx.path("killed-run.log");
    for delay in delays {
        let out = File::create(&log).unwrap();
        let mut child = fx
            .command(&up_args())
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

    // The uninterrupted run: what every series must end as, and how long a
    // run takes (without the compile, which the binary cache then skips).
    let reference = Fixture::new("fltref");
    let _dump_ref = DumpOnFailure::new(&reference.app);
    let started = Instant::now();
    let answer = reference.json(&["up", "--stage", "local", "--json", "--yes"]);
    let wall = started.elapsed().as_secs_f64();
    let run = (wall - compile_seconds(&answer)).max(0.5);
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

    // Kill moments over the run plus a margin for the process's start.
    let span = run * 1.3;
    let mut rng = Rng(seed);
    let mut total = Tally::default();
    let mut converged = 0;
    for series in 0..SERIES {
        let fx = Fixture::new(&format!("fault{series}"));
        let _dump = DumpOnFailure::new(&fx.app);
        let delays: Vec<Duration> = (0..MOMENTS)
            .map(|i| Duration::from_secs_f64(span * (i as f64 + rng.unit()) / MOMENTS as f64))
            .collect();
        let mut tally = Tally::default();
        kill_at(&fx, &delays, &mut tally).await;

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
            "series {series} (seed {seed}, delays {delays:?}) ended unlike an uninterrupted run"
        );
        converged += 1;
        eprintln!(
            "series {series}: {} moments, {} killed mid-run, {} finished first, {} failed first",
            tally.tried,
            tally.killed,
            tally.finished_first,
            tally.failed_first.len()
        );
        total.tried += tally.tried;
        total.killed += tally.killed;
        total.finished_first += tally.finished_first;
        total.failed_first.extend(tally.failed_first);
    }

    eprintln!(
        "fault injection (seed {seed}, run {run:.2} s): {} kill moments tried, {} killed \
         mid-run, {} runs finished before their kill, {} failed before it; {converged}/{SERIES} \
         series converged to the uninterrupted result",
        total.tried,
        total.killed,
        total.finished_first,
        total.failed_first.len()
    );
    assert!(
        total.tried >= 20,
        "only {} kill moments were tried",
        total.tried
    );
    assert!(
        total.killed >= 20,
        "only {} of {} moments killed a running deployer; the runs ended too soon",
        total.killed,
        total.tried
    );
    // A run that was not killed must not fail either: a killed run's
    // leftovers (its lock, a half-made resource) are the next run's to
    // finish, never an error.
    assert!(
        total.failed_first.is_empty(),
        "runs failed on their own after earlier kills:\n{}",
        total.failed_first.join("\n---\n")
    );
}
