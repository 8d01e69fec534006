//! `deployer up`: under the stage lock, read the stage, plan, and carry
//! the plan out (`stage::apply`): lock(read → plan → apply). Every step the
//! plan leaves unchanged is skipped, so an `up` with nothing to do only
//! reads. The read and the apply run under the lock, so two `up` of one
//! stage never interleave.

use std::fmt;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, Clients};
use crate::cli::UpArgs;
use crate::config::{Auth, Stage};
use crate::names::Names;
use crate::plan::{Change, render_changes};
use crate::stage::release::ApiKeyReport;
use crate::stage::{actual, apply, desired, lock, plan};
use crate::ui::{Summary, Ui};

/// What `up` did and where the stage now is.
#[derive(Debug, Serialize)]
pub struct UpReport {
    pub stage: String,
    pub url: String,
    pub function_arn: String,
    pub role_arn: String,
    pub version: String,
    pub image: ImageReport,
    /// With `auth = "api_key"`: the key callers send, by id, and the
    /// command that reads its value (never the value itself).
    pub api_key: Option<ApiKeyReport>,
    /// The plan `up` carried out (unchanged resources included).
    pub changes: Vec<Change>,
    /// What the configuration asks that AWS will not do as written.
    pub warnings: Vec<String>,
    /// Old images deleted from the repository (none used by any stage).
    pub images_deleted: usize,
    pub steps: Summary,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct ImageReport {
    pub uri: String,
    pub tag: String,
    pub digest: String,
    /// Whether this run compiled, built and pushed it.
    pub built: bool,
}

impl fmt::Display for UpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The plan itself was shown before the work started; here only its count.
        let changed = self.changes.iter().filter(|c| c.action.is_change()).count();
        if changed == 0 {
            writeln!(f, "Nothing to change.")?;
        } else {
            writeln!(
                f,
                "{changed} of {} resources created or updated.",
                self.changes.len()
            )?;
        }
        if !self.steps.steps.is_empty() {
            writeln!(f, "{}", self.steps)?;
        }
        writeln!(f, "stage     {}", self.stage)?;
        writeln!(f, "url       {}", self.url)?;
        writeln!(f, "function  {}", self.function_arn)?;
        writeln!(f, "version   {}", self.version)?;
        writeln!(f, "image     {}@{}", self.image.uri, self.image.digest)?;
        if let Some(key) = &self.api_key {
            writeln!(f, "api key   {key}")?;
        }
        // The warnings were shown (on stderr) before the work started.
        write!(f, "done in {:.1} s", self.seconds)
    }
}

pub async fn run(stage: &Stage, ui: &Ui, _args: &UpArgs) -> Result<()> {
    let started = Instant::now();
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let names = desired::names(stage, &clients).await?;
    // The read is taken under the lock too: one taken before another run's
    // apply would plan from a state that is gone. On Ctrl-C the apply stops
    // where it is (every step is idempotent, the next `up` finishes it) and
    // the lock is still released.
    let work = async {
        tokio::select! {
            result = read_plan_apply(stage, &names, ui, &clients, started) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
                "interrupted; the stage lock is released and the next `up` finishes the work"
            )),
        }
    };
    let report = lock::locked(stage, &names, ui, &clients, "deployed", work).await?;
    ui.result(&report)
}

async fn read_plan_apply(
    stage: &Stage,
    names: &Names,
    ui: &Ui,
    clients: &Clients,
    started: Instant,
) -> Result<UpReport> {
    let step = ui.step("survey");
    let (desired, wanted) = desired::resolve(stage, names).await?;
    let actual = actual::read(&desired, Some(&wanted.image), clients).await?;
    let plan = plan::plan(&desired, &wanted.image, &actual);
    let changes = plan.changes(&desired).changes;
    let count = changes.iter().filter(|c| c.action.is_change()).count();
    step.finish(format!("{count} to change"));
    if !ui.json() && count > 0 {
        ui.block("the plan:", render_changes(&changes));
    }
    for warning in &desired.warnings {
        ui.warn(warning);
    }
    let applied = apply::apply(ui, clients, &desired, &wanted.recipe, &actual, &plan).await?;
    Ok(UpReport {
        stage: stage.name.clone(),
        url: applied.url,
        function_arn: desired.names.function_arn.clone(),
        role_arn: applied.role_arn,
        version: applied.version,
        image: ImageReport {
            uri: desired.names.repository_uri.clone(),
            tag: applied.image.tag.clone(),
            digest: applied.digest,
            built: applied.built,
        },
        api_key: match (stage.api.auth, applied.api_key_id) {
            (Auth::ApiKey, Some(id)) => Some(ApiKeyReport::new(stage, &id)),
            _ => None,
        },
        changes,
        warnings: desired.warnings.clone(),
        images_deleted: applied.images_deleted,
        steps: ui.summary(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
