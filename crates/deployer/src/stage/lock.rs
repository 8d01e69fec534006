//! The stage lock around a command's work: taken before it (waiting for
//! another run, breaking a stale lock), released after it whatever the
//! outcome. `up` and `destroy` share it, so they never interleave.

use std::future::Future;

use anyhow::Result;

use crate::aws::{Clients, lock};
use crate::config::Stage;
use crate::names::Names;
use crate::ui::{Step, Ui};

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
    let lock = take_lock(stage, names, ui, clients).await?;
    let result = work.await;
    let released = lock.release().await;
    match (result, released) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(anyhow::Error::new(e).context(format!(
            "the stage is {done}, but its lock could not be released \
             (the next run on this host breaks it; elsewhere it waits for it to go stale)"
        ))),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(release)) => {
            ui.warn(format!(
                "could not release the stage lock ({release}); the next run breaks it"
            ));
            Err(e)
        }
    }
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
    let step = ui.step("stage lock");
    let group = lock::lock_group(&stage.app, &stage.name);
    let arn = names.log_group_arn(&group);
    let me = lock::Holder::this_process();
    let progress = LockProgress {
        ui,
        step: &step,
        announced: Default::default(),
    };
    let taken = lock::acquire(&clients.logs, &group, &arn, &me, lock::WAIT, &progress).await?;
    step.finish(format!("taken ({})", taken.group()));
    Ok(taken)
}
