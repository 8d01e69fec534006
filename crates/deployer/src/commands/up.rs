//! `deployer up`: under the stage lock, survey the stage (`stage::survey`:
//! read and plan, as `deployer plan` does) and carry the plan out
//! (`stage::apply`): lock(survey → apply). Every step the
//! plan leaves unchanged is skipped, so an `up` with nothing to do only
//! reads. The read and the apply run under the lock, so two `up` of one
//! stage never interleave. `up --watch` runs it again on every change of
//! the image's inputs or deploy.toml ([`Watcher`]).
//!
//! On a stage with `protected = true`, a plan that changes something is
//! shown and asked about before it is applied (`terraform apply`'s
//! question): on a terminal the operator answers, elsewhere `--yes` must
//! (exit 2 without it, before anything changed). A plan with no change
//! asks nothing.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use crate::aws::{self, Clients};
use crate::cli::UpArgs;
use crate::config::{Auth, Stage, StageSource};
use crate::exit::{ExitStatus, Failure};
use crate::names::Names;
use crate::plan::{Change, ChangeAction, render_changes};
use crate::signals::Interrupted;
use crate::stage::release::ApiKeyReport;
use crate::stage::{Purpose, apply, desired, lock, survey};
use crate::ui::{Summary, Ui};
use crate::watch::Watcher;

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
    /// Old published versions of the function deleted (`keep-versions`).
    pub versions_deleted: Vec<String>,
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

pub async fn run(source: &StageSource, stage: &Stage, ui: &Ui, args: &UpArgs) -> Result<()> {
    if args.watch {
        return watch(source, stage, ui, Duration::from_millis(args.debounce_ms)).await;
    }
    let report = deploy(stage, ui, false).await?;
    ui.result(&report)
}

/// One `up`: lock(read → plan → apply). `again`: a later round of
/// `--watch`, which shows only what changes (the first showed the rest).
async fn deploy(stage: &Stage, ui: &Ui, again: bool) -> Result<UpReport> {
    let started = Instant::now();
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let names = desired::names(stage, &clients).await?;
    // The read is taken under the lock too: one taken before another run's
    // apply would plan from a state that is gone. On Ctrl-C or SIGTERM the
    // apply stops where it is (every step is idempotent, the next `up`
    // finishes it) and the lock is still released (`lock::locked`).
    let work = read_plan_apply(stage, &names, ui, &clients, started, again);
    lock::locked(stage, &names, ui, &clients, "deployed", work).await
}

/// `up --watch`: an `up`, then another after each change of the image's
/// inputs or deploy.toml, one at a time (changes made during an `up` make
/// the next one). A failed `up` is shown and the watch goes on; Ctrl-C
/// ends it.
async fn watch(source: &StageSource, stage: &Stage, ui: &Ui, debounce: Duration) -> Result<()> {
    if stage.protected {
        return Err(Failure::tag(
            ExitStatus::Usage,
            anyhow::anyhow!(
                "stage `{}` has `protected = true` in [stages.{}] of deploy.toml: \
                 `up --watch` would redeploy it on every save; deploy it with `deployer up --stage {}`",
                stage.name,
                stage.name,
                stage.name
            ),
        ));
    }
    // One stream for the whole watch, made before any work: it keeps a
    // Ctrl-C that comes between two waits, which a new `ctrl_c()` per wait
    // would miss (the process would then never stop).
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C (SIGINT)")?;
    let config_file = source.path()?;
    // Watching starts before the first `up`, so that a save during it counts.
    let mut watcher = Watcher::for_stage(stage, &config_file, debounce)?;
    let mut stage = stage.clone();
    let mut changed = Vec::new();
    loop {
        match deploy(&stage, ui, !changed.is_empty()).await {
            Ok(report) => ui.item(&Redeployed::new(changed, report))?,
            Err(err) if err.is::<Interrupted>() => return Err(err),
            Err(err) => ui.warn(format!(
                "up failed; fix it and save to try again:\n{}",
                crate::ui::error_text(&err)
            )),
        }
        ui.info("watching for changes (Ctrl-C to stop)");
        loop {
            changed = tokio::select! {
                changed = watcher.next_change() => changed,
                _ = interrupt.recv() => return Ok(()),
            };
            ui.info(format!("changed: {}", changed.join(", ")));
            match source.load() {
                Ok(reloaded) => {
                    if reloaded.image != stage.image
                        || reloaded.function.package != stage.function.package
                    {
                        watcher = Watcher::for_stage(&reloaded, &config_file, debounce)?;
                    }
                    stage = reloaded;
                    break;
                }
                Err(err) => ui.warn(format!("{err}; not deployed")),
            }
        }
    }
}

/// One round of `up --watch`: what changed, and what it changed in AWS.
#[derive(Debug, Serialize)]
pub struct Redeployed {
    /// The files that changed (none for the first `up`).
    pub changed: Vec<String>,
    pub version: String,
    pub url: String,
    /// Only the resources this round created, updated or deleted.
    pub changes: Vec<Change>,
    pub seconds: f64,
}

impl Redeployed {
    fn new(changed: Vec<String>, report: UpReport) -> Redeployed {
        Redeployed {
            changed,
            version: report.version,
            url: report.url,
            changes: report
                .changes
                .into_iter()
                .filter(|c| c.action.is_change())
                .collect(),
            seconds: report.seconds,
        }
    }
}

impl fmt::Display for Redeployed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed.is_empty() {
            writeln!(f, "changed   {}", self.changed.join(", "))?;
        }
        for change in &self.changes {
            let what = match &change.action {
                ChangeAction::Create => "created".to_string(),
                ChangeAction::Update(fields) => format!("updated ({})", fields.join(", ")),
                ChangeAction::Delete => "deleted".to_string(),
                ChangeAction::Unchanged => continue,
            };
            writeln!(f, "          {} {} {what}", change.kind, change.name)?;
        }
        write!(
            f,
            "version   {} live at {} ({:.1} s)",
            self.version, self.url, self.seconds
        )
    }
}

async fn read_plan_apply(
    stage: &Stage,
    names: &Names,
    ui: &Ui,
    clients: &Clients,
    started: Instant,
    again: bool,
) -> Result<UpReport> {
    let step = ui.step("survey");
    let survey = survey(stage, names, clients, Purpose::Deploy).await?;
    let (desired, actual, plan) = (&survey.desired, &survey.actual, &survey.plan);
    let recipe = &survey
        .image
        .as_ref()
        .context("a survey for `up` hashes the image's inputs")?
        .recipe;
    let changes = plan.changes(desired).changes;
    let count = changes.iter().filter(|c| c.action.is_change()).count();
    step.finish(format!("{count} to change"));
    // A protected stage's plan is shown even with --json (on stderr): it
    // is what the question is about.
    let ask = stage.protected && count > 0;
    if (!ui.json() || ask) && count > 0 {
        let shown: Vec<Change> = changes
            .iter()
            .filter(|c| !again || c.action.is_change())
            .cloned()
            .collect();
        ui.block("the plan:", render_changes(&shown));
    }
    if !again {
        for warning in &desired.warnings {
            ui.warn(warning);
        }
    }
    if ask {
        let question = format!(
            "stage `{}` is protected by {}: apply these {count} changes?",
            stage.name,
            stage.protected_setting()
        );
        if !ui.confirm(&question)? {
            anyhow::bail!("not applied: the answer was not yes; nothing was changed");
        }
    }
    let applied = apply::apply(ui, clients, desired, recipe, actual, plan).await?;
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
        versions_deleted: applied.versions_deleted,
        steps: ui.summary(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
