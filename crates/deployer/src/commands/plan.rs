//! `deployer plan`: what the next `up` would create, update (and which
//! fields, from which value to which), delete or leave alone. Reads only:
//! read → plan → print. With `--detailed-exitcode` it exits 2 when
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
use crate::stage::{actual, desired, plan};
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
    let (desired, wanted) = desired::resolve(stage, &names).await?;
    let actual = actual::read(&desired, Some(&wanted.image), &clients).await?;
    let plan = plan::plan(&desired, &wanted.image, &actual);
    plan::check_account_room(stage, &desired, &actual)?;
    plan::check_api_is_ours(&desired, &actual)?;
    step.finish("read");
    let report = PlanReport {
        stage: stage.name.clone(),
        image_tag: wanted.image.tag.clone(),
        changes: plan.changes(&desired).changes,
        warnings: desired.warnings.clone(),
    };
    ui.result(&report)?;
    let changes = report.changes.iter().any(|c| c.action.is_change());
    Ok(if args.detailed_exitcode && changes {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
