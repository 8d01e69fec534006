//! `deployer prune`: removes the stages whose time to live has passed
//! (`stage::deployed`: the `deployer:ttl` tag after the last deployment),
//! each as `destroy` would, under its stage lock. Never a stage without a
//! ttl, never one tagged protected (checked again under the lock), never one
//! deploy.toml still makes without a ttl or protected. Without
//! `--yes` it prints what it would remove and changes nothing, so a
//! scheduled job can be tried by hand first.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, Clients};
use crate::cli::PruneArgs;
use crate::config::{Config, Stage, StageSource};
use crate::exit::{self, ExitStatus, Failure};
use crate::names::Names;
use crate::stage::deployed::{self, DeployedStage};
use crate::stage::{desired, lock, teardown};
use crate::ui::Ui;

/// What `prune` removed, or would remove.
#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub app: String,
    /// Without `--yes`: nothing was removed, `expired` is what would be.
    pub dry_run: bool,
    /// The stages past their time to live.
    pub expired: Vec<DeployedStage>,
    /// The stages removed (empty on a dry run).
    pub removed: Vec<String>,
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.expired.is_empty() {
            return write!(f, "No stage of {} is past its time to live.", self.app);
        }
        let heading = if self.dry_run {
            "Would remove (pass --yes to remove them):"
        } else {
            "Removed:"
        };
        write!(f, "{heading}")?;
        for s in &self.expired {
            write!(
                f,
                "\n  {}  ttl {}, expired {}",
                s.stage,
                s.ttl.as_deref().unwrap_or("-"),
                s.expires.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

pub async fn run(source: &StageSource, stage: &Stage, ui: &Ui, _args: &PruneArgs) -> Result<()> {
    let config = Config::read(&source.path()?)?;
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let names = desired::names(stage, &clients).await?;
    let stage_of = |name: &str| deployed::stage_of(&config, &source.overrides, stage, name);
    let step = ui.step("stages");
    let found = deployed::list(&names, &clients, &stage_of, chrono::Utc::now()).await?;
    // The tag says what was deployed; deploy.toml, when it still makes the
    // stage, has the last word against removing it: a ttl taken off (an
    // `up` leaves the old tag) or a stage now protected keeps it.
    let expired: Vec<DeployedStage> = found
        .stages
        .into_iter()
        .filter(|s| s.expired && s.ttl.is_some() && !s.protected)
        .filter(|s| match config.stage(&s.stage, &source.overrides) {
            Ok(configured) if configured.ttl.is_none() || configured.protected => {
                ui.warn(format!(
                    "stage {} is past its deployed ttl ({}), but deploy.toml gives it {}: kept",
                    s.stage,
                    s.ttl.as_deref().unwrap_or("-"),
                    if configured.protected {
                        "`protected`"
                    } else {
                        "no ttl"
                    }
                ));
                false
            }
            _ => true,
        })
        .collect();
    step.finish(format!("{} past their time to live", expired.len()));
    for why in &found.unreadable {
        ui.warn(format!("not readable, not pruned: {why}"));
    }
    let dry_run = !ui.answered_yes();
    let mut removed = Vec::new();
    if !dry_run {
        let mut failed = Vec::new();
        for expired in &expired {
            let target = stage_of(&expired.stage);
            let target_names = Names::new(&target, &names.account);
            let work = teardown::remove_stage(&target, &target_names, ui, &clients);
            match lock::locked(&target, &target_names, ui, &clients, "pruned", work).await {
                Ok(_) => removed.push(expired.stage.clone()),
                Err(err) => failed.push((expired.stage.clone(), err)),
            }
        }
        if !failed.is_empty() {
            let status = status_of(failed.iter().map(|(_, err)| err));
            let not_removed: Vec<String> = failed
                .iter()
                .map(|(stage, err)| format!("{stage}: {err:#}"))
                .collect();
            return Err(Failure::tag(
                status,
                anyhow::anyhow!(
                    "prune removed {} of {} expired stages; not removed: {}",
                    removed.len(),
                    expired.len(),
                    not_removed.join("; ")
                ),
            ));
        }
    }
    ui.result(&PruneReport {
        app: stage.app.clone(),
        dry_run,
        expired,
        removed,
    })
}

/// The exit status of a prune some of whose stages were not removed: their
/// failures' own when they agree (a scheduled job can tell "a stage was
/// locked, try later", 6, from an AWS error, 3), the general failure when
/// they do not.
fn status_of<'a>(failures: impl Iterator<Item = &'a anyhow::Error>) -> ExitStatus {
    let mut statuses = failures.map(exit::classify);
    let Some(first) = statuses.next() else {
        return ExitStatus::Failure;
    };
    if statuses.all(|status| status == first) {
        first
    } else {
        ExitStatus::Failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::lock::LockHeld;
    use crate::aws::{AwsError, ErrorKind};

    fn aws() -> anyhow::Error {
        anyhow::Error::new(AwsError {
            operation: "DeleteFunction",
            resource: "app-pr-1".into(),
            message: "boom".into(),
            kind: ErrorKind::Other,
        })
        .context("removing stage pr-1")
    }

    #[test]
    fn a_partial_prune_exits_with_its_failures_status_when_they_agree() {
        let (a, b) = (aws(), aws());
        assert_eq!(status_of([&a, &b].into_iter()), ExitStatus::Aws);
        let locked = anyhow::Error::new(LockHeld {
            stage: "pr-2".into(),
            group: "/deployer/locks/app-pr-2".into(),
            holder: "ci@runner".into(),
            command: "up".into(),
            waited: 60,
            stale: 900,
        });
        assert_eq!(status_of([&locked].into_iter()), ExitStatus::Locked);
        assert_eq!(status_of([&a, &locked].into_iter()), ExitStatus::Failure);
    }
}
