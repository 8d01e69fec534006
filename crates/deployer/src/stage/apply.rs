//! Carrying out a [`StagePlan`]: each resource's action as the plan gives
//! it, in an explicit order, handing on what later steps need (the role's
//! ARN, the image's digest, the version, the API's id). Nothing is decided
//! again here: what is built, published, moved and redeployed is what the
//! plan says. The only reads are those that converge after a race ("already
//! exists") inside the `aws` adapters, and the waits AWS needs.
//!
//! The order: the repository (with its policies), the role, the function's
//! log group and the image build need nothing from each other and run side
//! by side; the push needs the repository; the function needs the role and
//! the image, and comes after its log group so that its first log line
//! lands in a group that expires; then a
//! version, its smoke test, the alias, the API, the permission, and last
//! the public path check through the stage's URL. The function's reserved
//! concurrency is set once the function exists; the alias's provisioned
//! concurrency once the alias points at its version (Lambda refuses it on
//! `$LATEST`; it is lowered before the reservation instead when the
//! reservation shrinks below it), and `up` waits until Lambda has
//! allocated it.

use std::collections::BTreeSet;

use anyhow::{Context, Result};

use super::actual::ActualStage;
use super::desired::{DesiredStage, PERMISSION_ID};
use super::image;
use super::lock;
use super::parts;
use super::plan::StagePlan;
use super::release;
use crate::aws::{self, Clients, Outcome, apigw, ecr, iam, lambda, logs};
use crate::image::{ImageRef, Recipe};
use crate::plan::{Action, Kind};
use crate::ui::Ui;

/// Where the stage is after the apply.
#[derive(Debug, Clone)]
pub struct Applied {
    pub role_arn: String,
    pub image: ImageRef,
    pub digest: String,
    /// Whether this run compiled, built and pushed the image.
    pub built: bool,
    /// The version the alias points at.
    pub version: String,
    pub api_id: String,
    pub api_key_id: Option<String>,
    pub url: String,
    /// Old images deleted from the repository (none used by any stage).
    pub images_deleted: usize,
    /// Old published versions of the stage's function deleted.
    pub versions_deleted: Vec<String>,
}

/// Carries out `plan`, made from `actual`, towards `desired`.
pub async fn apply(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredStage,
    recipe: &Recipe,
    actual: &ActualStage,
    plan: &StagePlan,
) -> Result<Applied> {
    let stage = &desired.stage;
    let names = &desired.names;
    let built = plan.image == Action::Create;
    let image_ref = plan
        .image_ref
        .as_ref()
        .context("the plan was made without the image's content hash, so it cannot be applied")?;

    // Before each write: the stage lock is still ours (`lock::still_held`).
    lock::still_held().await?;
    // The push needs the repository: compile and build run beside the AWS
    // work, the push after it.
    // The parts' slow work (ACM takes its time to issue a certificate) runs
    // beside the build too.
    let (_, role_arn, (), local_image, prepared) = tokio::try_join!(
        apply_repository(ui, clients, desired, actual, plan),
        apply_role(ui, clients, desired, actual, plan),
        apply_log_group(ui, clients, desired, plan),
        build_image(ui, desired, recipe, image_ref, plan),
        parts::apply_beside_build(ui, clients, &desired.parts, &actual.parts, &plan.parts),
    )?;
    let image = match local_image {
        Some(local) => {
            lock::still_held().await?;
            image::push(ui, clients, &local).await?
        }
        None => ImageRef {
            digest: actual.image_digest.clone(),
            ..image_ref.clone()
        },
    };
    let digest = image
        .digest
        .clone()
        .context("the image has no digest after the push")?;
    let image_uri = ecr::image_uri_by_digest(&names.repository_uri, &digest);

    let function = &desired.function_name;
    let alias = &desired.alias_name;
    if plan.function.is_change() {
        lock::still_held().await?;
        let step = ui.step(Kind::LambdaFunction);
        let mut wanted = desired.function(&image_uri);
        wanted.role_arn = role_arn.clone();
        let outcome = lambda::apply_function(
            &clients.lambda,
            &wanted,
            actual.function.as_ref(),
            &plan.function,
        )
        .await?;
        step.finish(outcome_text(outcome));
    }
    if plan.provisioned_first {
        apply_provisioned(ui, clients, desired, plan).await?;
    }
    apply_reserved(ui, clients, desired, plan).await?;
    let version = match (&plan.version, &plan.current_version) {
        (Action::Unchanged, Some(version)) => version.clone(),
        _ => {
            lock::still_held().await?;
            let step = ui.step(Kind::LambdaVersion);
            let version = lambda::publish(&clients.lambda, function).await?;
            step.finish(format!("published {version}"));
            version
        }
    };
    // The alias the stage had before this run, when this run moves it: the
    // public path check puts it back there if the URL fails.
    let previous = actual.alias.as_ref().map(|a| a.version.clone());
    let alias_moved_from = plan.alias.is_change().then(|| previous.clone());
    if plan.alias.is_change() {
        // A new version is `Pending` until Lambda has it ready, and an
        // invoke of it before then fails (a run killed right after its
        // publish leaves one too): neither the smoke test nor callers
        // through the alias may meet it before it is `Active`.
        let step = ui.step(format!("{} ready", Kind::LambdaVersion));
        lambda::wait_until_ready(&clients.lambda, function, Some(&version)).await?;
        step.finish(format!("{version} active"));
        // Whenever the alias moves, not only after a publish: a version whose
        // smoke test failed still matches `$LATEST`, and the next `up` must
        // not move the alias to it untested.
        release::smoke_test(stage, ui, clients, &version, previous.as_deref()).await?;
        lock::still_held().await?;
        let step = ui.step(Kind::LambdaAlias);
        lambda::apply_alias(&clients.lambda, function, alias, &version, &plan.alias).await?;
        step.finish(format!("{alias} → {version}"));
    }
    if !plan.provisioned_first {
        apply_provisioned(ui, clients, desired, plan).await?;
    }
    if plan.wait_provisioned {
        release::wait_provisioned(ui, clients, function, alias).await?;
    }

    let api_changed = plan.api.is_change();
    let (api_id, api_key_id) = match &actual.api {
        Some(api) if !api_changed => (api.id.clone(), api.api_key.as_ref().map(|k| k.id.clone())),
        _ => {
            lock::still_held().await?;
            let step = ui.step("api gateway");
            let (outcome, info) =
                apigw::apply_api(&clients.apigw, &desired.api, actual.api.as_ref(), &plan.api)
                    .await?;
            let deployed = if info.deployment_id.is_some() {
                ", deployed"
            } else {
                ""
            };
            step.finish(format!("{}{deployed}", outcome_text(outcome)));
            (info.api_id, info.api_key_id)
        }
    };
    parts::apply_with_api(ui, clients, &desired.parts, &actual.parts, &plan.parts).await?;
    if plan.permission.is_change() {
        lock::still_held().await?;
        let step = ui.step(Kind::LambdaPermission);
        let outcome = lambda::apply_permission(
            &clients.lambda,
            function,
            alias,
            PERMISSION_ID,
            &desired.permission_source(&api_id),
            &plan.permission,
        )
        .await?;
        step.finish(outcome_text(outcome));
    }

    parts::apply_after_permission(
        ui,
        clients,
        &desired.parts,
        &actual.parts,
        &plan.parts,
        &prepared,
        &api_id,
    )
    .await?;

    let url = desired.url(&api_id);
    let moved = alias_moved_from.is_some();
    if moved || api_changed || plan.permission.is_change() || plan.parts.changes_public_path() {
        release::public_path_check(stage, ui, clients, &url, alias_moved_from).await?;
    }
    if moved {
        lock::still_held().await?;
        release::record_passed(ui, clients, function, &version).await;
    }
    // After the stage is known to answer: only then are old versions and
    // images safe to judge by what the alias and the versions use. Old
    // versions go first, so that the images only they used go too.
    let published = !matches!(
        (&plan.version, &plan.current_version),
        (Action::Unchanged, Some(_))
    );
    let versions_deleted = if published {
        lock::still_held().await?;
        prune_versions(ui, clients, desired, &version).await
    } else {
        Vec::new()
    };
    let images_deleted = if built || !versions_deleted.is_empty() {
        lock::still_held().await?;
        delete_old_images(ui, clients, desired).await
    } else {
        0
    };
    Ok(Applied {
        role_arn,
        image,
        digest,
        built,
        version,
        api_id,
        api_key_id,
        url,
        images_deleted,
        versions_deleted,
    })
}

pub fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged",
        Outcome::Deleted => "deleted",
    }
}

/// The repository, then its lifecycle policy and the statement that lets
/// Lambda pull: before the function is created or updated, since Lambda
/// checks that it may pull the image when the function's code is set.
async fn apply_repository(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredStage,
    actual: &ActualStage,
    plan: &StagePlan,
) -> Result<()> {
    if !plan.repository.is_change()
        && !plan.lifecycle_policy.is_change()
        && !plan.repository_policy.is_change()
    {
        return Ok(());
    }
    let step = ui.step(Kind::EcrRepository);
    let name = desired.repository.name.as_str();
    let outcome = ecr::apply_repository(
        &clients.ecr,
        &desired.repository,
        actual.repository.as_ref(),
        &plan.repository,
    )
    .await?;
    let policy = ecr::apply_lifecycle_policy(
        &clients.ecr,
        name,
        &desired.lifecycle_policy,
        &plan.lifecycle_policy,
    )
    .await?;
    let pull = ecr::apply_repository_policy(
        &clients.ecr,
        name,
        &desired.pull_statement,
        actual.repository_policy.as_deref(),
        &plan.repository_policy,
    )
    .await?;
    step.finish(format!(
        "{}, lifecycle policy {}, lambda pull permission {}",
        outcome_text(outcome),
        outcome_text(policy),
        outcome_text(pull)
    ));
    Ok(())
}

/// The role; returns its ARN.
async fn apply_role(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredStage,
    actual: &ActualStage,
    plan: &StagePlan,
) -> Result<String> {
    if !plan.role.is_change() {
        return Ok(desired.names.role_arn.clone());
    }
    let step = ui.step(Kind::IamRole);
    let (outcome, arn) = iam::apply_role(
        &clients.iam,
        &desired.role,
        actual.role.as_ref(),
        &plan.role,
    )
    .await?;
    step.finish(outcome_text(outcome));
    Ok(arn.unwrap_or_else(|| desired.names.role_arn.clone()))
}

/// The function's log group, with its retention and tags.
async fn apply_log_group(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredStage,
    plan: &StagePlan,
) -> Result<()> {
    if !plan.log_group.is_change() {
        return Ok(());
    }
    let step = ui.step(Kind::LogGroup);
    let outcome = logs::apply_log_group(&clients.logs, &desired.log_group, &plan.log_group).await?;
    step.finish(format!(
        "{}, events kept {} days",
        outcome_text(outcome),
        desired.log_group.retention_days
    ));
    Ok(())
}

/// The function's reserved concurrency (the function exists by now).
async fn apply_reserved(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredStage,
    plan: &StagePlan,
) -> Result<()> {
    if !plan.reserved.is_change() {
        return Ok(());
    }
    let step = ui.step(Kind::LambdaReservedConcurrency);
    let amount = desired.concurrency.reserved.unwrap_or_default();
    let outcome = lambda::apply_reserved(
        &clients.lambda,
        &desired.function_name,
        amount,
        &plan.reserved,
    )
    .await?;
    step.finish(match outcome {
        Outcome::Deleted => "removed: the function shares the account's unreserved pool".into(),
        _ => format!("{}, {amount} executions", outcome_text(outcome)),
    });
    Ok(())
}

/// The alias's provisioned concurrency: put (Lambda then allocates it in
/// the background, see [`wait_provisioned`]) or deleted.
async fn apply_provisioned(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredStage,
    plan: &StagePlan,
) -> Result<()> {
    if !plan.provisioned.is_change() {
        return Ok(());
    }
    let step = ui.step(Kind::LambdaProvisionedConcurrency);
    let amount = desired.concurrency.provisioned.unwrap_or_default();
    let outcome = lambda::apply_provisioned(
        &clients.lambda,
        &desired.function_name,
        &desired.alias_name,
        amount,
        &plan.provisioned,
    )
    .await?;
    step.finish(match outcome {
        Outcome::Deleted => "removed".into(),
        _ => format!("{}, {amount} requested", outcome_text(outcome)),
    });
    Ok(())
}

/// Compiles the function and builds its image when the plan says the
/// registry lacks it. Returns the local image to push.
async fn build_image(
    ui: &Ui,
    desired: &DesiredStage,
    recipe: &Recipe,
    image_ref: &ImageRef,
    plan: &StagePlan,
) -> Result<Option<ImageRef>> {
    if plan.image != Action::Create {
        return Ok(None);
    }
    let local = ImageRef::new(&desired.names.repository_uri, &image_ref.tag);
    image::build(&desired.stage, ui, recipe, &local).await?;
    Ok(Some(local))
}

/// The versions no clean-up may delete: the one the alias now points at
/// (the aliases', the provisioned ones and the last one that passed its
/// checks are found by `prune_versions` itself).
fn versions_never_pruned(version: &str) -> BTreeSet<String> {
    BTreeSet::from([version.to_string()])
}

/// Deletes the function's published versions beyond `keep-versions` (see
/// `aws::lambda::prune`). The stage is deployed by now, so a failure here
/// is a warning, and nothing was deleted before it.
async fn prune_versions(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredStage,
    version: &str,
) -> Vec<String> {
    let step = ui.step("lambda versions");
    let pruned = lambda::prune_versions(
        &clients.lambda,
        &desired.function_name,
        desired.stage.function.keep_versions,
        &versions_never_pruned(version),
    )
    .await;
    match pruned {
        Ok(deleted) => {
            step.finish(format!("{} old versions deleted", deleted.len()));
            deleted
        }
        Err(err) => {
            step.finish("not cleaned up");
            ui.warn(format!(
                "old versions were not deleted ({err}); the next `up` that publishes tries again"
            ));
            Vec::new()
        }
    }
}

/// Deletes the repository's images beyond the newest `keep-tagged` that no
/// version of any of the app's functions uses (see `aws::ecr`: the
/// lifecycle policy cannot tell). Runs after a push, when the count grew,
/// or after versions were pruned, when fewer images are in use.
/// The stage is deployed by now, so a failure here is a warning.
async fn delete_old_images(ui: &Ui, clients: &Clients, desired: &DesiredStage) -> usize {
    let step = ui.step("ecr images");
    let stage = &desired.stage;
    let names = &desired.names;
    let repository = desired.repository.name.as_str();
    let work = async {
        let images = ecr::list_images(&clients.ecr, repository).await?;
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
        ecr::delete_images(&clients.ecr, repository, &old).await
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
