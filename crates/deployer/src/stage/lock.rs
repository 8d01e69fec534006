//! The stage lock around a command's work: taken before it (waiting for
//! another run, breaking a stale lock), released after it whatever the
//! outcome. `up` and `destroy` share it, so they never interleave.
//!
//! While the work runs, three things stop it where it is (every step is
//! idempotent, so the next run finishes it) and still release the lock:
//! the lock lost (a heartbeat found it broken or taken again, or none
//! succeeded for half the staleness bound: exit 6), SIGINT and SIGTERM (exit 130 and 143). The work also
//! asks [`still_held`] before each write, which confirms with AWS that
//! the lock is still ours, so a run whose lock was broken since its last
//! heartbeat stops before its next write, not at that heartbeat.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::aws::{Clients, lock};
use crate::config::Stage;
use crate::exit::{ExitStatus, Failure};
use crate::names::Names;
use crate::signals::{Interrupted, Signals};
use crate::ui::{Step, Ui};

/// The setting (seconds) after which a silent holder is taken for dead:
/// short for a test, long for a runner that may pause. The holder records
/// it in the lock, and others judge it by the holder's own bound.
pub const STALE_AFTER_ENV: &str = "DEPLOYER_LOCK_STALE_AFTER";

/// How the work under the lock ended.
enum Ended<T> {
    Done(Result<T>),
    Lost(lock::LockLost),
    Stopped(Interrupted),
}

/// Runs `work` holding the stage's lock. `done` says what the stage is
/// after a successful `work` ("deployed"), for the message when only the
/// release failed.
pub async fn locked<T>(
    stage: &Stage,
    names: &Names,
    ui: &Ui,
    clients: &Clients,
    done: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let mut signals = Signals::listen().context("cannot listen for SIGINT and SIGTERM")?;
    // A signal while waiting ends the wait; one in the instant the create
    // succeeds leaves a lock that goes stale after its bound.
    let lock = tokio::select! {
        taken = take_lock(stage, names, ui, clients) => taken?,
        stopped = signals.next() => return Err(stopped.into()),
    };
    let guard = lock.guard();
    // On the heap: `up`'s whole apply is one large future, and moving it
    // into the select and the scope by value overflows the main thread's
    // stack in a debug build.
    let work = Box::pin(work);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let watchdog = tokio::spawn(watchdog(signals, guard.clone(), stop_tx));
    let ended = lock::HELD
        .scope(guard.clone(), async {
            tokio::select! {
                result = work => Ended::Done(result),
                lost = guard.lost_at_last() => Ended::Lost(lost),
                Ok(stopped) = stop_rx => Ended::Stopped(stopped),
            }
        })
        .await;
    watchdog.abort();
    let released = lock.release().await;
    let failed = match ended {
        Ended::Done(Ok(value)) => {
            return match released {
                Ok(true) => Ok(value),
                // Finished, but the lock was not ours at the end: another
                // run may have written meanwhile, so this is no success.
                Ok(false) => Err(lock::LockLost {
                    group: guard.group().to_string(),
                    why: "it was broken or taken again before this run ended".into(),
                }
                .into()),
                Err(e) => Err(anyhow::Error::new(e).context(format!(
                    "the stage is {done}, but its lock could not be released \
                     (another run breaks it once it has been silent for {} s; \
                     `deployer unlock --stage {}` removes it now)",
                    guard.stale_after().as_secs(),
                    stage.name
                ))),
            };
        }
        // A step that failed because the lock was lost (a retry refused,
        // a heartbeat that found it gone) says so, with exit 6.
        Ended::Done(Err(e)) => match guard.check() {
            Err(lost) => lost.into(),
            Ok(()) => e,
        },
        Ended::Lost(lost) => lost.into(),
        Ended::Stopped(stopped) => stopped.into(),
    };
    if let Err(release) = released {
        ui.warn(format!(
            "could not release the stage lock ({release}); another run breaks it once it is stale, \
             or run `deployer unlock --stage {}`",
            stage.name
        ));
    }
    Err(failed)
}

/// How long the work has to stop after a signal before the watchdog
/// releases the lock and ends the process itself.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Hands the first SIGINT or SIGTERM to [`locked`], which stops the work
/// and releases the lock. Work blocked in a question on the terminal (a
/// blocking read no signal ends while it is caught) cannot be stopped
/// that way: after [`STOP_GRACE`] the watchdog releases the lock and ends
/// the process with the signal's status, as the default action would have
/// ended it, but without leaving the lock behind.
async fn watchdog(
    mut signals: Signals,
    guard: Arc<lock::LockGuard>,
    stop: tokio::sync::oneshot::Sender<Interrupted>,
) {
    let stopped = signals.next().await;
    let status = crate::exit::classify(&anyhow::Error::new(Interrupted {
        signal: stopped.signal,
    }));
    let _ = stop.send(stopped);
    tokio::time::sleep(STOP_GRACE).await;
    let _ = guard.release().await;
    std::process::exit(i32::from(status.code()));
}

/// Confirms, before a write, that the work still holds its stage lock:
/// a heartbeat now, which fails if the lock was broken or taken again.
/// Work not under a lock (a test calling `apply` itself) always may.
pub async fn still_held() -> Result<()> {
    lock::still_held().await.map_err(Into::into)
}

/// The staleness bound this run keeps to: [`STALE_AFTER_ENV`] if set,
/// else [`lock::STALE_AFTER`].
pub fn stale_after() -> Result<Duration> {
    let Ok(text) = std::env::var(STALE_AFTER_ENV) else {
        return Ok(lock::STALE_AFTER);
    };
    let seconds: u64 = text.trim().parse().map_err(|_| {
        Failure::tag(
            ExitStatus::Usage,
            anyhow::anyhow!(
                "{STALE_AFTER_ENV}={text:?} is not a whole number of seconds (e.g. 900 for 15 min)"
            ),
        )
    })?;
    let bound = Duration::from_secs(seconds);
    if bound < lock::MIN_STALE_AFTER {
        return Err(Failure::tag(
            ExitStatus::Usage,
            anyhow::anyhow!(
                "{STALE_AFTER_ENV}={seconds} is too short: at least {} s (the holder beats four times per bound)",
                lock::MIN_STALE_AFTER.as_secs()
            ),
        ));
    }
    Ok(bound)
}

/// Shows the wait for the stage lock on a step, and a broken stale lock
/// as a warning.
struct LockProgress<'a> {
    ui: &'a Ui,
    step: &'a Step,
    /// The holder last announced on its own line.
    announced: std::cell::RefCell<Option<String>>,
}

impl lock::LockEvents for LockProgress<'_> {
    fn waiting(&self, holder: &lock::Holder) {
        let line = format!("waiting for the lock held by {}", holder.describe());
        // A line per holder, so a CI log shows why the run stands still;
        // the spinner (or -v) shows every poll.
        if self.announced.borrow().as_deref() != Some(line.as_str()) {
            self.ui.info(&line);
            self.announced.replace(Some(line.clone()));
        }
        self.step.message(line);
    }

    fn breaking(&self, holder: &lock::Holder, why: &str) {
        self.ui.warn(format!(
            "breaking the stale stage lock held by {} (`{}`): {why}",
            holder.describe(),
            holder.command
        ));
    }
}

/// Takes the stage's lock, waiting up to [`lock::WAIT`] for another run.
async fn take_lock(
    stage: &Stage,
    names: &Names,
    ui: &Ui,
    clients: &Clients,
) -> Result<lock::StageLock> {
    let me = lock::Holder {
        stale_after: stale_after()?,
        ..lock::Holder::this_process()
    };
    let step = ui.step("stage lock");
    let group = names.lock_group.clone();
    let arn = names.log_group_arn(&group);
    let progress = LockProgress {
        ui,
        step: &step,
        announced: Default::default(),
    };
    let taken = lock::acquire(
        &clients.logs,
        &group,
        &arn,
        &stage.name,
        &me,
        lock::WAIT,
        &progress,
    )
    .await?;
    step.finish(format!("taken ({})", taken.group()));
    Ok(taken)
}
