//! `deployer plan`: what the next `up` would create, update (and which
//! fields, from which value to which), delete or leave alone. Reads only:
//! survey (`stage::survey`, as `up` starts) → print. With `--detailed-exitcode` it exits 2 when
//! something would change and 0 when nothing would, so a pipeline can gate
//! a deploy on it.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, Clients};
use crate::cli::PlanArgs;
use crate::config::Stage;
use crate::exit::ExitStatus;
use crate::plan::{Change, render_changes};
use crate::stage::{Purpose, desired, survey};
use crate::ui::Ui;

#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub stage: String,
    pub image_tag: String,
    pub changes: Vec<Change>,
    /// What the configuration asks that AWS will not do as written.
    pub warnings: Vec<String>,
}

impl fmt::Display for PlanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stage {} (image {})", self.stage, self.image_tag)?;
        write!(f, "{}", render_changes(&self.changes))?;
        for warning in &self.warnings {
            write!(f, "\nwarning: {warning}")?;
        }
        Ok(())
    }
}

/// Prints the plan; with `--detailed-exitcode` its status says whether it
/// would change something.
pub async fn run(stage: &Stage, ui: &Ui, args: &PlanArgs) -> Result<ExitStatus> {
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let step = ui.step("survey");
    let names = desired::names(stage, &clients).await?;
    let survey = survey(stage, &names, &clients, Purpose::Deploy).await?;
    step.finish("read");
    let report = PlanReport {
        stage: stage.name.clone(),
        image_tag: survey
            .image
            .as_ref()
            .map(|i| i.image.tag.clone())
            .unwrap_or_default(),
        changes: survey.plan.changes(&survey.desired).changes,
        warnings: survey.desired.warnings.clone(),
    };
    ui.result(&report)?;
    let changes = report.changes.iter().any(|c| c.action.is_change());
    Ok(if args.detailed_exitcode && changes {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
