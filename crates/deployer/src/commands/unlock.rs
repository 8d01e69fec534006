//! `deployer unlock`: removes the stage's lock, for the day its holder is
//! known dead and nobody wants to wait out its staleness bound (Terraform's
//! `force-unlock`). It names the holder it removes and asks first on a
//! terminal (`--yes` answers in CI; without a terminal and without it,
//! exit 2). A stage with no lock is not an error: there is nothing to do,
//! and a script that unlocks "just in case" must not fail.
//!
//! A holder that is in fact alive finds its lock gone at its next check
//! (before its next write, or at its next heartbeat) and stops with exit 6
//! without writing again; it never deletes a lock someone took since.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, Clients, lock};
use crate::cli::UnlockArgs;
use crate::config::Stage;
use crate::ui::Ui;

/// What `unlock` found and did.
#[derive(Debug, Serialize)]
pub struct UnlockReport {
    pub stage: String,
    /// The lock's log group.
    pub lock: String,
    /// Who held it (`host/pid since time`), `None` when nobody did.
    pub holder: Option<String>,
    /// The holder's command.
    pub command: Option<String>,
    /// Whether this run deleted it (`false`: there was none, or it was
    /// released or taken again while we asked).
    pub removed: bool,
}

impl fmt::Display for UnlockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.holder, self.removed) {
            (None, _) => write!(f, "stage {} is not locked: nothing to unlock.", self.stage),
            (Some(holder), true) => write!(
                f,
                "removed the lock of stage {} held by {holder}.",
                self.stage
            ),
            (Some(holder), false) => write!(
                f,
                "left the lock of stage {} alone: the lock of {holder} was released or taken again meanwhile.",
                self.stage
            ),
        }
    }
}

pub async fn run(stage: &Stage, ui: &Ui, _args: &UnlockArgs) -> Result<()> {
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let group = stage.lock_group_name();
    let bound = crate::stage::lock::stale_after()?;
    let mut report = UnlockReport {
        stage: stage.name.clone(),
        lock: group.clone(),
        holder: None,
        command: None,
        removed: false,
    };
    let Some(holder) = lock::holder(&clients.logs, &group, bound).await? else {
        return ui.result(&report);
    };
    report.holder = Some(holder.describe());
    report.command = Some(holder.command.clone());
    let question = format!(
        "remove the lock of stage {} held by {} (running `{}`)? Do this only if that run is dead",
        stage.name,
        holder.describe(),
        holder.command
    );
    if !ui.confirm(&question)? {
        anyhow::bail!("not unlocked: the answer was not yes");
    }
    report.removed = lock::unlock(&clients.logs, &group, &holder).await?;
    ui.result(&report)
}
