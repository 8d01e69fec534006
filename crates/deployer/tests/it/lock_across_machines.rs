//! The stage lock across machines, end to end against the strict local AWS
//! (issue 27, item 1): deployers that really run with clocks an hour apart
//! (libfaketime), "hosts" that share one host name in their own UTS and pid
//! namespaces (`unshare`), a holder stopped by SIGTERM, and a holder whose
//! lock is broken while it applies.
//!
//! Each run talks to the local AWS through a recording proxy of its own, so
//! the test holds each run's AWS write log with times; the assertion that
//! matters is on those logs: the writes of two runs of one stage never
//! interleave (exit codes alone would not show it). Then the stage must
//! have converged: the last run leaves nothing for `plan` to change.
//!
//! The runs keep to a short staleness bound (`DEPLOYER_LOCK_STALE_AFTER`,
//! the documented setting), so a dead holder is broken in seconds.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::fixture::*;
use crate::util::proxy::{Call, FaultProxy};
use crate::util::snapshot::lock_exists;
use crate::util::*;

/// The runs' staleness bound, in seconds: long enough that a loaded
/// machine's slow heartbeat is not taken for a lost lock, short enough to
/// wait out.
const BOUND: &str = "8";

/// Where and how one deployer runs.
#[derive(Clone, Copy)]
struct Host {
    /// Its own UTS and pid namespace with this host name (`unshare`).
    name: Option<&'static str>,
    /// As its pid namespace's first process (pid 1), or as a child of a
    /// shell (pid 2 or more: a pid that no process of a fresh namespace
    /// has).
    pid1: bool,
    /// Its clock moved by libfaketime (`-1h`, `+1h`).
    skew: Option<&'static str>,
}

const HERE: Host = Host {
    name: None,
    pid1: false,
    skew: None,
};

/// A CI runner whose clock is an hour behind.
const BEHIND: Host = Host {
    name: Some("ci-behind"),
    pid1: false,
    skew: Some("-1h"),
};

/// A CI runner whose clock is an hour ahead.
const AHEAD: Host = Host {
    name: Some("ci-ahead"),
    pid1: false,
    skew: Some("+1h"),
};

/// One deployer run of the `local` stage through its own recording proxy.
struct Run {
    name: &'static str,
    child: Child,
    proxy: FaultProxy,
    started: Instant,
}

impl Run {
    fn start(fx: &Fixture, name: &'static str, host: Host, args: &[&str]) -> Run {
        let upstream = endpoint_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let proxy = FaultProxy::start(&upstream, 0.0, 1);
        let config = format!("deploy-{name}.toml");
        let text = std::fs::read_to_string(fx.path("deploy.toml")).unwrap();
        let text = set_in_table(
            &text,
            "stages.local",
            "endpoint-url",
            &format!("{:?}", proxy.url()),
        );
        std::fs::write(fx.path(&config), text).unwrap();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        let child = wrapped(fx, host, &all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Run {
            name,
            child,
            proxy,
            started: Instant::now(),
        }
    }

    /// Waits for it to end (a hang guard, not a measurement).
    fn finish(self) -> Finished {
        let Run {
            name,
            child,
            proxy,
            started,
        } = self;
        let output = child.wait_with_output().unwrap();
        Finished {
            name,
            took: started.elapsed(),
            writes: writes(proxy.counts.take_calls()),
            output,
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid, with a valid signal.
        unsafe { libc::kill(pid, signal) };
    }
}

struct Finished {
    name: &'static str,
    took: Duration,
    /// Its AWS writes, the stage lock's own calls aside.
    writes: Vec<Call>,
    output: Output,
}

impl Finished {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        json_of(&self.output, &[self.name])
    }

    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
}

/// The requests that change something, the stage lock's own aside (they
/// all name its log group, or a marker below it).
fn writes(calls: Vec<Call>) -> Vec<Call> {
    calls
        .into_iter()
        .filter(|c| !c.is_read() && !c.request.contains("/deployer/locks/"))
        .collect()
}

/// The writes of `a` all come before those of `b`, or all after: two
/// applies of one stage never interleave. Fails with both timelines.
fn assert_apart(a: &Finished, b: &Finished) {
    let (Some(a_first), Some(b_first)) = (a.writes.first(), b.writes.first()) else {
        return;
    };
    let a_last = a.writes.last().unwrap();
    let b_last = b.writes.last().unwrap();
    let apart = a_last.at < b_first.at || b_last.at < a_first.at;
    if !apart {
        let zero = a_first.at.min(b_first.at);
        let mut timeline: Vec<(Duration, &str, &str)> = a
            .writes
            .iter()
            .map(|c| (c.at - zero, a.name, c.operation.as_str()))
            .chain(
                b.writes
                    .iter()
                    .map(|c| (c.at - zero, b.name, c.operation.as_str())),
            )
            .collect();
        timeline.sort();
        let lines: Vec<String> = timeline
            .iter()
            .map(|(t, who, op)| format!("{:>8.3} s  {who}  {op}", t.as_secs_f64()))
            .collect();
        panic!(
            "the writes of {} and {} interleave:\n{}\n--- {} stderr ---\n{}\n--- {} stderr ---\n{}",
            a.name,
            b.name,
            lines.join("\n"),
            a.name,
            a.stderr(),
            b.name,
            b.stderr()
        );
    }
}

/// `deployer ARGS` in the fixture as `host` runs it.
fn wrapped(fx: &Fixture, host: Host, args: &[&str]) -> Command {
    let base = fx.command(args);
    let deployer = base.get_program().to_string_lossy().into_owned();
    let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    argv.insert(0, deployer);
    if let Some(skew) = host.skew {
        // libfaketime preloaded as `faketime -f SKEW` does, without its
        // wrapper, whose semaphore is named by its pid (two wrappers of
        // one pid in two namespaces collide). It hangs rustc and rustup's
        // proxies, which `up` calls for the image hash: the wrappers first
        // on PATH drop it for them.
        argv.splice(
            0..0,
            [
                "env".to_string(),
                format!("LD_PRELOAD={}", libfaketime().display()),
                format!("FAKETIME={skew}"),
            ],
        );
    }
    if let Some(name) = host.name {
        let run = if host.pid1 {
            "hostname \"$0\" && exec \"$@\""
        } else {
            // A child of the shell after 200 others: its pid is one no
            // process or thread of another fresh namespace has (a waiter's
            // own threads hold the small ones there).
            "hostname \"$0\" || exit 1; i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done; \"$@\"; exit $?"
        };
        let mut outer: Vec<String> = [
            // --kill-child: a SIGKILL of unshare ends the namespace's
            // processes too, as a runner that dies takes its jobs along.
            "unshare",
            "--uts",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "sh",
            "-c",
            run,
            name,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        outer.extend(argv);
        argv = outer;
    }
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).stdin(Stdio::null());
    if let Some(dir) = base.get_current_dir() {
        command.current_dir(dir);
    }
    for (key, value) in base.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let path = std::env::var("PATH").unwrap_or_default();
    command
        .env("PATH", format!("{}:{path}", tool_wrappers().display()))
        .env("DEPLOYER_LOCK_STALE_AFTER", BOUND);
    command
}

/// A directory with `rustc` and `cargo` that run the real ones without
/// libfaketime ("Testing with a skewed clock", docs/design local-cloud).
fn tool_wrappers() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("deployer-unfaked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for tool in ["rustc", "cargo"] {
            let real = find_on_path(tool).unwrap_or_else(|| panic!("no {tool} on PATH"));
            let script = dir.join(tool);
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\nexec env -u LD_PRELOAD -u FAKETIME {} \"$@\"\n",
                    real.display()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    })
    .clone()
}

/// Debian's libfaketime (package `faketime`).
pub(crate) fn libfaketime() -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .map(|dir| PathBuf::from(dir).join("faketime/libfaketime.so.1"))
    .find(|path| path.is_file())
    .expect("libfaketime.so.1 is missing: run scripts/local-cloud up, which installs faketime")
}

fn find_on_path(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
    })
}

/// Fails the test, naming what to install, when `faketime` or `unshare`
/// is missing (scripts/local-cloud installs them).
fn require_tools() {
    for tool in ["faketime", "unshare"] {
        assert!(
            find_on_path(tool).is_some(),
            "`{tool}` is missing: run scripts/local-cloud up, which installs it"
        );
    }
}

/// A fixture whose function is compiled and whose image is built, so that
/// each `up` spends its time on AWS, not on a compile.
fn built_fixture(prefix: &str) -> Fixture {
    require_strict_local_aws();
    require_tools();
    let fx = Fixture::new(prefix);
    fx.stdout(&["build", "--stage", "local"]);
    fx
}

/// Waits until the run holds the stage's lock (its group exists).
async fn until_locked(fx: &Fixture, run: &mut Run) {
    let group = fx.lock_group("local");
    let give_up = Instant::now() + Duration::from_secs(120);
    while !lock_exists(&group).await {
        if let Ok(Some(status)) = run.child.try_wait() {
            panic!("{} ended ({status}) before it held the lock", run.name);
        }
        assert!(Instant::now() < give_up, "{} never took the lock", run.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the run has written something to the stage (past its lock).
async fn until_writing(run: &mut Run) {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = run.child.try_wait() {
            let mut stderr = String::new();
            if let Some(pipe) = run.child.stderr.as_mut() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("{} ended ({status}) before it wrote:\n{stderr}", run.name);
        }
        let wrote = run
            .proxy
            .counts
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| !c.is_read() && !c.request.contains("/deployer/locks/"));
        if wrote {
            return;
        }
        assert!(Instant::now() < give_up, "{} never wrote", run.name);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const UP: [&str; 5] = ["up", "--stage", "local", "--json", "--yes"];

/// The stage converged: `plan` finds nothing to change, and no lock is
/// left behind.
async fn assert_converged(fx: &Fixture) {
    let plan = fx.json(&["plan", "--stage", "local", "--json"]);
    assert_eq!(changes(&plan), Vec::<String>::new(), "{plan}");
    assert!(
        !lock_exists(&fx.lock_group("local")).await,
        "a run left its lock"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_holder_an_hour_behind_is_not_broken_by_a_waiter_an_hour_ahead() {
    let fx = built_fixture("lockskew");
    let _dump = DumpOnFailure::new(&fx.app);
    let mut a = Run::start(&fx, "behind", BEHIND, &UP);
    until_locked(&fx, &mut a).await;
    let b = Run::start(&fx, "ahead", AHEAD, &UP);
    let (a, b) = (a.finish(), b.finish());
    assert_apart(&a, &b);
    assert_eq!(a.code(), Some(0), "{}", a.stderr());
    assert_eq!(b.code(), Some(0), "{}", b.stderr());
    assert!(!b.stderr().contains("breaking"), "{}", b.stderr());
    assert!(
        b.stderr()
            .contains("waiting for the lock held by ci-behind/"),
        "{}",
        b.stderr()
    );
    // The holder's clock really was an hour behind: the time it says it
    // took the lock, as the waiter shows it.
    let stderr = b.stderr();
    let since = stderr
        .split("waiting for the lock held by ci-behind/")
        .nth(1)
        .and_then(|rest| rest.split(" since ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("no holder's time in:\n{stderr}"));
    let behind = chrono::Utc::now().signed_duration_since(since);
    assert!(
        (behind - chrono::Duration::hours(1)).num_minutes().abs() < 5,
        "the holder's clock was {behind} behind, not an hour"
    );
    // The waiter came after the holder had finished: nothing left to do.
    assert_eq!(changes(&b.json()), Vec::<String>::new());
    assert_converged(&fx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_holder_an_hour_ahead_is_broken_after_the_bound_by_a_waiter_an_hour_behind() {
    let fx = built_fixture("lockdead");
    let _dump = DumpOnFailure::new(&fx.app);
    let mut a = Run::start(&fx, "ahead", AHEAD, &UP);
    until_locked(&fx, &mut a).await;
    until_writing(&mut a).await;
    // Dead as a runner that lost its machine: no release, no last word.
    a.signal(libc::SIGKILL);
    let a = a.finish();
    assert!(lock_exists(&fx.lock_group("local")).await, "no lock left");
    let b = Run::start(&fx, "behind", BEHIND, &UP).finish();
    assert_eq!(b.code(), Some(0), "{}", b.stderr());
    assert!(
        b.stderr()
            .contains("breaking the stale stage lock held by ci-ahead/")
            && b.stderr().contains("by CloudWatch's clock"),
        "{}",
        b.stderr()
    );
    // Broken after the bound (8 s), not after the whole wait: a waiter
    // that broke the lock only when its 60 s wait ran out would take that
    // plus its whole `up`. The run itself takes 25-30 s on an idle machine
    // and was seen at 46 s beside a busy compile, so the line is the
    // wait's own length, not a guess at the run's.
    assert!(b.took < deployer::aws::lock::WAIT, "took {:?}", b.took);
    assert_apart(&a, &b);
    assert_converged(&fx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_sharing_a_host_name_do_not_judge_each_other_by_pid() {
    let fx = built_fixture("locktwin");
    let _dump = DumpOnFailure::new(&fx.app);
    // Same name, same kernel, each its own pid namespace: the holder's pid
    // (above 200) is no process at all in the waiter's namespace.
    let holder = Host {
        name: Some("twin"),
        ..HERE
    };
    let waiter = Host {
        name: Some("twin"),
        pid1: true,
        ..HERE
    };
    let mut a = Run::start(&fx, "twin-a", holder, &UP);
    until_locked(&fx, &mut a).await;
    let b = Run::start(&fx, "twin-b", waiter, &UP);
    let (a, b) = (a.finish(), b.finish());
    assert_apart(&a, &b);
    assert_eq!(a.code(), Some(0), "{}", a.stderr());
    assert_eq!(b.code(), Some(0), "{}", b.stderr());
    assert!(!b.stderr().contains("breaking"), "{}", b.stderr());
    assert_eq!(changes(&b.json()), Vec::<String>::new());
    assert_converged(&fx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_stopped_by_sigterm_releases_the_lock_and_exits_143() {
    let fx = built_fixture("lockterm");
    let _dump = DumpOnFailure::new(&fx.app);
    let mut a = Run::start(&fx, "cancelled", HERE, &UP);
    until_locked(&fx, &mut a).await;
    until_writing(&mut a).await;
    a.signal(libc::SIGTERM);
    let a = a.finish();
    assert_eq!(a.code(), Some(143), "{}", a.stderr());
    assert!(
        a.stderr().contains("terminated (SIGTERM)")
            && a.stderr().contains("the stage lock is released"),
        "{}",
        a.stderr()
    );
    assert!(!lock_exists(&fx.lock_group("local")).await, "lock left");
    let b = Run::start(&fx, "next", HERE, &UP).finish();
    assert_eq!(b.code(), Some(0), "{}", b.stderr());
    assert!(
        !b.stderr().contains("waiting for the lock"),
        "{}",
        b.stderr()
    );
    assert_apart(&a, &b);
    assert_converged(&fx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_whose_lock_is_broken_mid_run_stops_before_its_next_write_with_exit_6() {
    let fx = built_fixture("lockbroken");
    let _dump = DumpOnFailure::new(&fx.app);
    let mut a = Run::start(&fx, "broken", HERE, &UP);
    until_locked(&fx, &mut a).await;
    until_writing(&mut a).await;
    // Someone sure the run is dead removes its lock, and another run
    // takes the stage at once.
    let unlocked = fx.deployer(&["unlock", "--stage", "local", "--yes"]);
    let (stdout, stderr) = texts(&unlocked);
    assert!(unlocked.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("removed the lock of stage local held by"),
        "{stdout}"
    );
    let b = Run::start(&fx, "next", HERE, &UP);
    let (a, b) = (a.finish(), b.finish());
    assert_eq!(a.code(), Some(6), "{}", a.stderr());
    assert!(a.stderr().contains("is no longer ours"), "{}", a.stderr());
    assert_eq!(b.code(), Some(0), "{}", b.stderr());
    assert_apart(&a, &b);
    assert_converged(&fx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unlock_names_the_holder_asks_first_and_nothing_to_unlock_is_no_error() {
    require_strict_local_aws();
    let fx = Fixture::new("lockunlock");
    let group = fx.lock_group("local");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config().await);
    let create = logs
        .create_log_group()
        .log_group_name(&group)
        .tags("deployer:host", "ci-gone")
        .tags("deployer:pid", "4242")
        .tags("deployer:command", "deployer up --stage local");
    once_ready("CreateLogGroup", || create.clone().send()).await;
    // A lock is found through DescribeLogGroups, which lists a new group
    // a moment late.
    eventually("the lock listed", || async {
        lock_exists(&group).await.then_some(())
    })
    .await;

    // No terminal, no --yes: refused, and the lock stays.
    let refused = fx.deployer(&["unlock", "--stage", "local"]);
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ci-gone/4242") && stderr.contains("--yes"),
        "{stderr}"
    );
    assert!(
        lock_exists(&group).await,
        "the refused unlock removed the lock"
    );

    let removed = fx.json(&["unlock", "--stage", "local", "--yes", "--json"]);
    assert_eq!(removed["removed"], true, "{removed}");
    assert!(
        removed["holder"]
            .as_str()
            .unwrap()
            .starts_with("ci-gone/4242"),
        "{removed}"
    );
    assert!(!lock_exists(&group).await);

    let again = fx.deployer(&["unlock", "--stage", "local", "--yes"]);
    let (stdout, stderr) = texts(&again);
    assert!(again.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("is not locked: nothing to unlock"),
        "{stdout}"
    );
}
