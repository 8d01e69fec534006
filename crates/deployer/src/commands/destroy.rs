//! `deployer destroy`: removes every resource of one stage, and the app's
//! ECR repository once no function uses an image of it any more (stages
//! share it). It surveys the stage (`stage::survey`), asks (a terminal) or
//! needs `--yes` (anything else), then deletes what the survey found,
//! callers first (`stage::teardown`), so an interrupted run leaves nothing
//! that points at what is gone; a second run finds nothing and says so.
//!
//! A stage with `protected = true` (production: its URL would change for
//! good) is destroyed only when the operator types its name at the prompt
//! or passes `--force-protected`; `--yes` alone does not do it, so a
//! script written for `dev` cannot remove `prod`.
//!
//! The survey, the question and the deletions run under the stage lock
//! that `up` takes ([`lock`](crate::aws::lock)), so an `up` and a `destroy` of one stage
//! never interleave (an `up` half-way through would otherwise recreate
//! what was just deleted, or plan from resources that are gone). The lock
//! is its own log group, never one of the stage's resources: the survey
//! does not see it, and releasing it at the end leaves nothing behind. A
//! killed `destroy` leaves its lock; the next run breaks it (its pid is
//! dead on this host) and finishes the work.

use std::fmt;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, Clients};
use crate::cli::DestroyArgs;
use crate::config::Stage;
use crate::exit::{ExitStatus, Failure};
use crate::names::Names;
use crate::stage::actual::Found;
use crate::stage::teardown::{self, Kept};
use crate::stage::{desired, lock};
use crate::ui::Ui;

/// What `destroy` removed and what it left.
#[derive(Debug, Serialize)]
pub struct DestroyReport {
    pub stage: String,
    pub removed: Vec<Found>,
    pub kept: Vec<Kept>,
    pub seconds: f64,
}

impl fmt::Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.removed.is_empty() {
            writeln!(
                f,
                "Nothing to remove: stage {} has no resources.",
                self.stage
            )?;
        } else {
            writeln!(f, "Removed from stage {}:", self.stage)?;
            writeln!(f, "{}", render(&self.removed))?;
        }
        for k in &self.kept {
            writeln!(f, "Kept {} {}: {}", k.kind, k.name, k.reason)?;
        }
        write!(f, "done in {:.1} s", self.seconds)
    }
}

/// One aligned `kind  name` line per resource.
fn render(resources: &[Found]) -> String {
    let width = resources
        .iter()
        .map(|r| r.kind.as_str().len())
        .max()
        .unwrap_or(0);
    resources
        .iter()
        .map(|r| format!("  {:<width$}  {}", r.kind, r.name))
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn run(stage: &Stage, ui: &Ui, args: &DestroyArgs) -> Result<()> {
    let started = Instant::now();
    // A protected stage with nobody to type its name: refused before any
    // AWS call, so nothing is read, locked or deleted.
    let typed = stage.protected && !args.force_protected;
    if typed && !ui.can_ask() {
        return Err(refused_protected(stage));
    }
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let names = desired::names(stage, &clients).await?;
    // Taken before the survey: one taken before an `up`'s apply would ask
    // about, and delete from, a state that is gone. At a terminal the lock
    // is held while the question waits for its answer; another run waits
    // (up to a minute) and then says who holds it.
    let work = survey_and_remove(
        stage,
        &names,
        ui,
        &clients,
        started,
        typed,
        args.force_protected,
    );
    let report = lock::locked(stage, &names, ui, &clients, "destroyed", work).await?;
    ui.result(&report)
}

/// The refusal to destroy a protected stage: exit 2, naming the setting
/// and the two ways past it.
fn refused_protected(stage: &Stage) -> anyhow::Error {
    Failure::tag(
        ExitStatus::Usage,
        anyhow::anyhow!(
            "stage `{}` is protected by {}: not destroyed, nothing was deleted; \
             type the stage's name at the prompt on a terminal, or pass --force-protected \
             (and --yes without a terminal)",
            stage.name,
            stage.protected_setting()
        ),
    )
}

/// The refusal to destroy a stage whose function's tags say it is
/// protected (deploy.toml no longer names it, or no longer protects it):
/// exit 2, nothing deleted.
fn refused_tagged(stage: &Stage) -> anyhow::Error {
    Failure::tag(
        ExitStatus::Usage,
        anyhow::anyhow!(
            "stage `{}` is protected by its function's tag `{}=true` (it was deployed \
             protected): not destroyed, nothing was deleted; type the stage's name at the \
             prompt on a terminal, or pass --force-protected (and --yes without a terminal)",
            stage.name,
            crate::names::TAG_PROTECTED
        ),
    )
}

/// Surveys the stage, asks (on a protected stage, for its name typed), and
/// deletes what it found. A signal stops the deletions where they are
/// (`lock::locked`); the next `destroy` finishes them.
async fn survey_and_remove(
    stage: &Stage,
    names: &Names,
    ui: &Ui,
    clients: &Clients,
    started: Instant,
    typed: bool,
    force_protected: bool,
) -> Result<DestroyReport> {
    let step = ui.step("survey");
    let (survey, tagged) = teardown::survey_tagged(stage, names, clients).await?;
    // A stage deploy.toml no longer protects (or no longer names) is still
    // protected when its function's tag says so.
    let tagged = tagged && !force_protected;
    if tagged && !ui.can_ask() {
        return Err(refused_tagged(stage));
    }
    let typed = typed || tagged;
    let teardown = teardown::plan(&survey);
    let removed = &teardown.remove;
    step.finish(format!("{} to remove", removed.len()));

    if !removed.is_empty() {
        if !ui.json() {
            ui.info(format!("will remove:\n{}", render(removed)));
        }
        let question = format!(
            "destroy stage {} of {} in {} ({} resources)?",
            stage.name,
            stage.app,
            stage.region,
            removed.len()
        );
        if typed {
            let question = format!("stage {} is protected: {question}", stage.name);
            if !ui.confirm_typed(&question, &stage.name, "--force-protected")? {
                return Err(if tagged {
                    refused_tagged(stage)
                } else {
                    refused_protected(stage)
                });
            }
        } else if !ui.confirm(&question)? {
            anyhow::bail!("not destroyed: the answer was not yes");
        }
        teardown::carry_out(ui, clients, &survey, &teardown).await?;
    }

    Ok(DestroyReport {
        stage: stage.name.clone(),
        removed: teardown.remove,
        kept: teardown.kept,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Kind;

    #[test]
    fn nothing_removed_says_so_and_a_kept_repository_says_why() {
        let report = DestroyReport {
            stage: "dev".into(),
            removed: Vec::new(),
            kept: vec![Kept {
                kind: Kind::EcrRepository,
                name: "shop".into(),
                reason: "still used by shop-prod".into(),
            }],
            seconds: 0.1,
        };
        let text = report.to_string();
        assert!(text.starts_with("Nothing to remove"), "{text}");
        assert!(
            text.contains("Kept ecr repository shop: still used by shop-prod"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["kept"][0]["kind"], "ecr repository");
    }
}
