//! `deployer up`: survey the stage, then carry out the plan — the
//! repository, the role and the image concurrently, then the function, a
//! version, its smoke test, the alias, the API and the permission, and
//! last the public path check through the stage's URL. Every step the plan
//! leaves unchanged is skipped, so an `up` with nothing to do only reads.
//! The survey and the apply run under the stage lock ([`lock`]), so two
//! `up` of one stage never interleave.

use std::fmt;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::state::{self, ApiKeyReport, PERMISSION_ID, Survey};
use crate::aws::public_check::{self, PublicPath};
use crate::aws::{self, Clients, Outcome, apigw, ecr, iam, lambda};
use crate::cli::UpArgs;
use crate::config::{Auth, Stage};
use crate::image::{self, ImageEvent, ImageRef};
use crate::names::Names;
use crate::plan::Change;
use crate::ui::{Step, Summary, Ui};

/// The smoke test's answer was not a 200: the alias stays where it was.
#[derive(Debug, thiserror::Error)]
#[error(
    "the smoke test of version {version} failed: it answered {status} for {date}; the alias still points at {previous}\n--- answer ---\n{answer}{log}"
)]
pub struct SmokeTestFailed {
    pub version: String,
    pub date: String,
    pub status: String,
    pub previous: String,
    pub answer: String,
    pub log: String,
}

/// The stage's URL did not answer as a browser needs: the alias went back
/// to where it was (see [`public_path_check`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "the public path check failed: {check} answered {got} (expected {expected}); {alias}\n--- answer ---\n{answer}\n(the function's log: deployer logs --stage {stage} --since 10m)"
)]
pub struct PublicPathFailed {
    pub stage: String,
    pub check: String,
    pub expected: String,
    pub got: String,
    /// What happened to the alias.
    pub alias: String,
    pub answer: String,
}

/// How long the public path check retries answers that a new deployment
/// or permission still propagating explains.
const PUBLIC_PATH_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

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
    let clients = Clients::new(&aws::sdk_config(stage).await);
    // The survey is taken under the lock too: one taken before another
    // run's apply would plan from a state that is gone. On Ctrl-C the apply
    // stops where it is (every step is idempotent, the next `up` finishes
    // it) and the lock is still released.
    let work = async {
        tokio::select! {
            result = survey_and_apply(stage, ui, &clients, started) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
                "interrupted; the stage lock is released and the next `up` finishes the work"
            )),
        }
    };
    let report = super::stage_lock::locked(stage, ui, &clients, "deployed", work).await?;
    ui.result(&report)
}

async fn survey_and_apply(
    stage: &Stage,
    ui: &Ui,
    clients: &Clients,
    started: Instant,
) -> Result<UpReport> {
    let step = ui.step("survey");
    let survey = state::survey(stage, clients).await?;
    let changes = survey
        .plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .count();
    step.finish(format!("{changes} to change"));
    if !ui.json() && changes > 0 {
        ui.info(super::plan::render_changes(&survey.plan.changes));
    }
    for warning in &survey.warnings {
        ui.warn(warning);
    }
    apply(stage, ui, clients, survey, started).await
}

/// Carries out a survey's plan.
async fn apply(
    stage: &Stage,
    ui: &Ui,
    clients: &Clients,
    survey: Survey,
    started: Instant,
) -> Result<UpReport> {
    let names = survey.names.clone();
    let built = !survey.image_exists();

    // The repository, the role and the image need nothing from each other,
    // except that the push needs the repository: compile and build run
    // beside the AWS work, the push after it.
    let (_, role_arn, local_image) = tokio::try_join!(
        ensure_repository(stage, ui, clients, &survey),
        ensure_role(stage, ui, clients, &survey),
        build_image(stage, ui, &survey),
    )?;
    let image = match local_image {
        Some(image) => push(ui, clients, &image).await?,
        None => survey.image.clone(),
    };
    let digest = image
        .digest
        .clone()
        .context("the image has no digest after the push")?;
    let image_uri = ecr::image_uri_by_digest(&names.repository_uri, &digest);

    let function_name = stage.function_name();
    let alias_name = stage.alias_name();
    if survey.function.is_change() {
        let step = ui.step("lambda function");
        let desired = state::desired_function(stage, &image_uri, &role_arn);
        let (outcome, _) = lambda::ensure_function(&clients.lambda, &desired).await?;
        step.finish(outcome_text(outcome));
    }
    // The alias the stage had before this run, when this run moves it: the
    // public path check puts it back there if the URL fails.
    let alias_moved_from = survey
        .alias
        .is_change()
        .then(|| survey.alias_version.clone());
    let version = if survey.publish {
        let step = ui.step("lambda version");
        let (_, version) =
            lambda::publish_version(&clients.lambda, &function_name, survey.function.is_change())
                .await?;
        step.finish(format!("published {version}"));
        version
    } else {
        survey
            .current_version
            .clone()
            .context("no published version matches the function")?
    };
    if survey.alias.is_change() {
        // A new version is `Pending` until Lambda has it ready, and an
        // invoke of it before then fails (a run killed right after its
        // publish leaves one too): neither the smoke test nor callers
        // through the alias may meet it before it is `Active`.
        let step = ui.step("lambda version ready");
        lambda::wait_until_ready(&clients.lambda, &function_name, Some(&version)).await?;
        step.finish(format!("{version} active"));
        // Whenever the alias moves, not only after a publish: a version whose
        // smoke test failed still matches `$LATEST`, and the next `up` must
        // not move the alias to it untested.
        smoke_test(
            stage,
            ui,
            clients,
            &version,
            survey.alias_version.as_deref(),
        )
        .await?;
        let step = ui.step("lambda alias");
        lambda::ensure_alias(&clients.lambda, &function_name, &alias_name, &version).await?;
        step.finish(format!("{alias_name} → {version}"));
    }

    let api_changed = survey.api_changes() || survey.api_id.is_none();
    let (api_id, api_key_id) = if api_changed {
        let step = ui.step("api gateway");
        let desired = apigw::DesiredApi::from_stage(stage, &names);
        let (outcome, info) = apigw::ensure_api(&clients.apigw, &desired).await?;
        let deployed = if info.deployment_id.is_some() {
            ", deployed"
        } else {
            ""
        };
        step.finish(format!("{}{deployed}", outcome_text(outcome)));
        (info.api_id, info.api_key_id)
    } else {
        (
            survey
                .api_id
                .clone()
                .context("the survey found no REST API")?,
            survey.api_key_id.clone(),
        )
    };
    if survey.permission.is_change() {
        let step = ui.step("lambda permission");
        let source = names.api_source_arn(&api_id);
        let outcome = lambda::ensure_permission(
            &clients.lambda,
            &function_name,
            &alias_name,
            PERMISSION_ID,
            &source,
        )
        .await?;
        step.finish(outcome_text(outcome));
    }

    let url = names.stage_url(&api_id);
    if alias_moved_from.is_some() || api_changed || survey.permission.is_change() {
        public_path_check(stage, ui, clients, &url, alias_moved_from).await?;
    }
    // After the stage is known to answer: only then are old images safe to
    // judge by what the versions use.
    let images_deleted = if built {
        delete_old_images(stage, ui, clients, &names).await
    } else {
        0
    };

    Ok(UpReport {
        stage: stage.name.clone(),
        url,
        function_arn: names.function_arn.clone(),
        role_arn,
        version,
        image: ImageReport {
            uri: names.repository_uri.clone(),
            tag: image.tag.clone(),
            digest,
            built,
        },
        api_key: match (stage.api.auth, api_key_id) {
            (Auth::ApiKey, Some(id)) => Some(ApiKeyReport::new(stage, &id)),
            _ => None,
        },
        changes: survey.plan.changes,
        warnings: survey.warnings,
        images_deleted,
        steps: ui.summary(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged",
    }
}

async fn ensure_repository(
    stage: &Stage,
    ui: &Ui,
    clients: &Clients,
    survey: &Survey,
) -> Result<()> {
    if !survey.repository.is_change()
        && !survey.lifecycle.is_change()
        && !survey.repository_policy.is_change()
    {
        return Ok(());
    }
    let step = ui.step("ecr repository");
    let desired = ecr::DesiredRepository::for_stage(stage);
    let (outcome, _) = ecr::ensure_repository(&clients.ecr, &desired).await?;
    let policy = ecr::lifecycle_policy_text(&stage.ecr);
    let policy_outcome = ecr::ensure_lifecycle_policy(&clients.ecr, &desired.name, &policy).await?;
    // Before the function is created or updated: Lambda checks that it may
    // pull the image when the function's code is set.
    let statement = ecr::lambda_pull_statement(&survey.names.app_functions_arn());
    let pull_outcome =
        ecr::ensure_repository_policy(&clients.ecr, &desired.name, &statement).await?;
    step.finish(format!(
        "{}, lifecycle policy {}, lambda pull permission {}",
        outcome_text(outcome),
        outcome_text(policy_outcome),
        outcome_text(pull_outcome)
    ));
    Ok(())
}

/// Deletes the repository's images beyond the newest `keep-tagged` that no
/// version of any of the app's functions uses (see `aws::ecr`: the
/// lifecycle policy cannot tell). Runs after a push, when the count grew.
/// The stage is deployed by now, so a failure here is a warning.
async fn delete_old_images(stage: &Stage, ui: &Ui, clients: &Clients, names: &Names) -> usize {
    let step = ui.step("ecr images");
    let repository = stage.repository_name();
    let work = async {
        let images = ecr::list_images(&clients.ecr, &repository).await?;
        if images.iter().filter(|i| !i.tags.is_empty()).count()
            <= usize::try_from(stage.ecr.keep_tagged).unwrap_or(usize::MAX)
        {
            return Ok::<_, aws::AwsError>(0);
        }
        let in_use = lambda::images_in_use(
            &clients.lambda,
            &names.app_function_prefix(),
            &names.repository_uri,
        )
        .await?;
        let old = ecr::images_to_delete(&images, stage.ecr.keep_tagged, &in_use);
        ecr::delete_images(&clients.ecr, &repository, &old).await
    };
    match work.await {
        Ok(deleted) => {
            step.finish(format!("{deleted} old images deleted"));
            deleted
        }
        Err(err) => {
            step.finish("not cleaned up");
            ui.warn(format!(
                "old images were not deleted ({err}); the next `up` that pushes tries again"
            ));
            0
        }
    }
}

async fn ensure_role(stage: &Stage, ui: &Ui, clients: &Clients, survey: &Survey) -> Result<String> {
    if !survey.role.is_change() {
        return Ok(survey.names.role_arn.clone());
    }
    let step = ui.step("iam role");
    let desired = iam::DesiredRole::for_stage(stage);
    let (outcome, arn) = iam::ensure_role(&clients.iam, &desired).await?;
    step.finish(outcome_text(outcome));
    Ok(arn)
}

/// Shows an image event on a step: compile and build lines as its message,
/// push progress as its bar.
pub fn show_event(step: &Step, event: ImageEvent) {
    match event {
        ImageEvent::Compile(line) | ImageEvent::BuildLog(line) => step.message(line.trim()),
        ImageEvent::Layer {
            id,
            status,
            current,
            total,
        } => {
            if let (Some(done), Some(total)) = (current, total) {
                step.progress(
                    u64::try_from(done).unwrap_or(0),
                    u64::try_from(total).unwrap_or(0),
                );
            }
            step.message(format!("{id} {status}").trim());
        }
    }
}

/// Compiles the function and builds its image, unless the registry holds
/// it already. Returns the local image to push.
async fn build_image(stage: &Stage, ui: &Ui, survey: &Survey) -> Result<Option<ImageRef>> {
    if survey.image_exists() {
        return Ok(None);
    }
    let image = ImageRef::new(&survey.names.repository_uri, &survey.image.tag);
    super::build::build(stage, ui, &survey.recipe, &image).await?;
    Ok(Some(image))
}

/// Pushes with a fresh registry login (tokens expire; none is kept).
async fn push(ui: &Ui, clients: &Clients, image: &ImageRef) -> Result<ImageRef> {
    let step = ui.step("push");
    let docker = image::connect_docker().await?;
    let credentials = state::registry_credentials(clients).await?;
    let pushed = image::push_image(&docker, image, &credentials, &|e| show_event(&step, e)).await?;
    step.finish(pushed.digest.clone().unwrap_or_default());
    Ok(pushed)
}

/// The proxy event of a GET for one date, as API Gateway would send it.
pub fn get_event(date: &str) -> String {
    serde_json::json!({
        "resource": "/predict",
        "path": "/predict",
        "httpMethod": "GET",
        "headers": {"accept": "application/json"},
        "queryStringParameters": {"date": date},
        "body": null,
        "isBase64Encoded": false,
    })
    .to_string()
}

/// Calls the new version with a real request; anything but a 200 stops
/// the release before the alias moves.
async fn smoke_test(
    stage: &Stage,
    ui: &Ui,
    clients: &Clients,
    version: &str,
    previous: Option<&str>,
) -> Result<()> {
    if !stage.smoke_test.enabled {
        return Ok(());
    }
    let step = ui.step("smoke test");
    let date = &stage.smoke_test.date;
    let answer = lambda::invoke(
        &clients.lambda,
        &stage.function_name(),
        Some(version),
        get_event(date).as_bytes(),
    )
    .await?;
    let status = serde_json::from_str::<serde_json::Value>(&answer.payload)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(serde_json::Value::as_i64));
    if answer.function_error.is_none() && status == Some(200) {
        step.finish(format!("version {version} answered 200 for {date}"));
        return Ok(());
    }
    step.finish("failed");
    Err(SmokeTestFailed {
        version: version.to_string(),
        date: date.clone(),
        status: match (&answer.function_error, status) {
            (Some(error), _) => format!("a function error ({error})"),
            (None, Some(code)) => format!("status {code}"),
            (None, None) => "no status code".into(),
        },
        previous: previous.unwrap_or("nothing (no alias yet)").to_string(),
        answer: answer.payload,
        log: answer
            .log_tail
            .map(|log| format!("\n--- log ---\n{log}"))
            .unwrap_or_default(),
    }
    .into())
}

/// Calls the stage's URL as a browser would, once something on the way to
/// the function changed (the alias, the API, the permission). On failure
/// the alias goes back to the version it had (`alias_moved_from`), or is
/// removed if the stage had none — API Gateway calls the alias, so callers
/// then get what they got before, and the next `up` tests the version
/// again instead of finding nothing to do.
async fn public_path_check(
    stage: &Stage,
    ui: &Ui,
    clients: &Clients,
    url: &str,
    alias_moved_from: Option<Option<String>>,
) -> Result<()> {
    if !stage.smoke_test.public_path {
        return Ok(());
    }
    let step = ui.step("public path");
    let api_key = match stage.api.auth {
        crate::config::Auth::ApiKey => {
            public_check::api_key_value(&clients.apigw, &stage.api_name()).await?
        }
        crate::config::Auth::None => None,
    };
    let path = PublicPath {
        url: url.to_string(),
        origin: check_origin(&stage.api.cors.allow_origins),
        date: stage.smoke_test.date.clone(),
        api_key,
    };
    let failed = match public_check::check(&path, PUBLIC_PATH_WAIT).await {
        Ok(passed) => {
            step.finish(format!(
                "preflight and GET ?date={} answered as a browser needs{}",
                path.date,
                if passed.attempts > 1 {
                    format!(" (after {} tries)", passed.attempts)
                } else {
                    String::new()
                }
            ));
            return Ok(());
        }
        Err(failed) => failed,
    };
    step.finish("failed");
    let function = stage.function_name();
    let alias = stage.alias_name();
    // A failure to put the alias back is reported with the check's, which
    // stays the reason `up` failed.
    let restored = match alias_moved_from {
        Some(Some(previous)) => {
            match lambda::ensure_alias(&clients.lambda, &function, &alias, &previous).await {
                Ok(_) => format!("the alias {alias} is back at version {previous}"),
                Err(err) => format!(
                    "moving the alias {alias} back to version {previous} failed too ({err}); run `deployer rollback --to {previous}`"
                ),
            }
        }
        Some(None) => match lambda::delete_alias(&clients.lambda, &function, &alias).await {
            Ok(()) => format!("the alias {alias} was removed (the stage had none before)"),
            Err(err) => format!("removing the alias {alias} failed too ({err})"),
        },
        None => format!("the alias {alias} did not move in this run"),
    };
    Err(PublicPathFailed {
        stage: stage.name.clone(),
        check: failed.check,
        expected: failed.expected,
        got: failed.got,
        alias: restored,
        answer: failed
            .answer
            .map(|a| a.render())
            .unwrap_or_else(|| "(none)".into()),
    }
    .into())
}

/// The origin the check's requests carry: the first allowed one, or any
/// when every origin is.
fn check_origin(allowed: &[String]) -> String {
    allowed
        .iter()
        .find(|o| o.as_str() != "*")
        .cloned()
        .unwrap_or_else(|| "https://example.com".into())
}
