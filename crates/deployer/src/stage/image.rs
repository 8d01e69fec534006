//! The function's image as the commands need it: found in the registry,
//! built locally with progress on a [`Step`], pushed with a fresh login.
//! `image` does the work and reports events; this shows them.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, Clients, ecr};
use crate::config::Stage;
use crate::image::{self, ContentHash, ImageEvent, ImageRef, Recipe, Runner};
use crate::stage::desired;
use crate::ui::{Step, Ui};

/// What `deployer build` (and `invoke --local`) found or built.
#[derive(Debug, Serialize)]
pub struct BuildReport {
    /// The local image reference, for `docker run` or `invoke --local`.
    pub image: String,
    pub tag: String,
    pub content_hash: String,
    /// Whether this run built it (false: the engine had it already).
    pub built: bool,
}

impl fmt::Display for BuildReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "image {} ({})",
            self.image,
            if self.built { "built" } else { "already built" }
        )
    }
}

/// The local image of the stage's current inputs: `{app}:{tag}`, with the
/// recipe its binary is compiled by.
pub fn local_image(stage: &Stage) -> Result<(ImageRef, ContentHash, Recipe)> {
    let recipe = Recipe::for_stage(stage)?;
    let hash = image::content_hash(stage, &recipe)?;
    Ok((ImageRef::new(&stage.app, &hash.tag()), hash, recipe))
}

/// Compiles the function by `recipe` and builds `image` from it, showing
/// progress.
pub async fn build(stage: &Stage, ui: &Ui, recipe: &Recipe, image: &ImageRef) -> Result<()> {
    let docker = image::connect_docker().await?;
    let step = ui.step("compile");
    let binary = image::compile(stage, recipe, &|e| show_event(&step, e)).await?;
    step.finish(binary.display().to_string());
    let step = ui.step("image build");
    let context = image::build_context(stage, &binary)?;
    image::build_image(&docker, stage, context, image, &|e| show_event(&step, e)).await?;
    step.finish(image.by_tag());
    Ok(())
}

/// Builds the local image unless the engine already has it.
pub async fn ensure_local_image(stage: &Stage, ui: &Ui) -> Result<BuildReport> {
    let (image, hash, recipe) = local_image(stage)?;
    let docker = image::connect_docker().await?;
    let built = !image::image_exists(&docker, &image).await;
    if built {
        build(stage, ui, &recipe, &image).await?;
    }
    Ok(BuildReport {
        image: image.by_tag(),
        tag: image.tag,
        content_hash: hash.hex().to_string(),
        built,
    })
}

/// The function as `invoke --local` and `dev` run it, with the
/// environment `up` gives it in AWS: the stage's local image (built if the
/// engine lacks it), or with `docker == false` the static binary with the
/// workspace's `models/` and `data/` where the image has them under
/// `/var/task`.
pub async fn local_runner(
    stage: &Stage,
    ui: &Ui,
    docker: bool,
) -> Result<(Runner, BTreeMap<String, String>)> {
    let mut environment = desired::desired_function(stage, "", "").environment;
    if docker {
        let built = ensure_local_image(stage, ui).await?;
        return Ok((Runner::Image(built.image), environment));
    }
    let step = ui.step("compile");
    let recipe = Recipe::for_stage(stage)?;
    let binary = image::compile(stage, &recipe, &|e| show_event(&step, e)).await?;
    step.finish(binary.display().to_string());
    for (variable, dir) in [
        ("PREDICTION_MODELS_DIR", "models"),
        ("PREDICTION_DATA_DIR", "data"),
    ] {
        environment.insert(
            variable.into(),
            stage.root.join(dir).to_string_lossy().into_owned(),
        );
    }
    Ok((Runner::Binary(binary), environment))
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

/// Pushes with a fresh registry login (tokens expire; none is kept).
pub async fn push(ui: &Ui, clients: &Clients, image: &ImageRef) -> Result<ImageRef> {
    let step = ui.step("push");
    let docker = image::connect_docker().await?;
    let credentials = registry_credentials(clients).await?;
    let pushed = image::push_image(&docker, image, &credentials, &|e| show_event(&step, e)).await?;
    step.finish(pushed.digest.clone().unwrap_or_default());
    Ok(pushed)
}

/// The digest of the image's tag, from ECR's API (which lists what the
/// registry holds); `None` when ECR has no such image or no repository yet.
pub async fn find_image(
    clients: &Clients,
    repository: &str,
    image: &ImageRef,
) -> Result<Option<String>, aws::AwsError> {
    ecr::find_image(&clients.ecr, repository, &image.tag).await
}

/// The digest the registry holds under the image's tag, when the stage
/// can tell it is its own build: the stage's function already runs it
/// (only the stage's `up` sets its code, and only to what it built or
/// verified), or this machine's engine pushed it. Otherwise `None`, and
/// `up` builds the image itself rather than deploy what someone else put
/// under a tag anyone with the source can compute (see
/// `image::push_image` for the push that then finds the tag taken).
pub async fn own_digest(image: &ImageRef, digest: String, running: &[&str]) -> Option<String> {
    let uri = ecr::image_uri_by_digest(&image.repository_uri, &digest);
    if running.contains(&uri.as_str()) {
        return Some(digest);
    }
    let docker = image::connect_docker().await.ok()?;
    image::pushed_by_this_engine(&docker, image, &digest)
        .await
        .then_some(digest)
}

/// A fresh registry login from ECR's GetAuthorizationToken (tokens expire:
/// one is asked for right before use and never kept).
pub async fn registry_credentials(
    clients: &Clients,
) -> Result<image::RegistryCredentials, aws::AwsError> {
    let auth = ecr::registry_auth(&clients.ecr).await?;
    Ok(image::RegistryCredentials {
        username: auth.username,
        password: auth.password,
        server_address: auth.server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_digest_the_stage_runs_or_this_engine_pushed_is_its_own() {
        let image = ImageRef::new(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop-prod",
            "h1",
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let running = ecr::image_uri_by_digest(&image.repository_uri, &digest);
        assert_eq!(
            own_digest(&image, digest.clone(), &[running.as_str()]).await,
            Some(digest.clone())
        );
        // Another digest runs, and no engine here has pushed `shop-prod:h1`.
        let other = ecr::image_uri_by_digest(&image.repository_uri, "sha256:b");
        assert_eq!(own_digest(&image, digest, &[other.as_str()]).await, None);
    }
}
