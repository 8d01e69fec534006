//! `deployer build`: compile the function and build its image, locally
//! and with no AWS. The image is tagged `{app}:{content hash}`; `up` tags
//! its own build with the repository's URI instead.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use crate::cli::BuildArgs;
use crate::config::Stage;
use crate::image::{self, ContentHash, ImageRef, Recipe};
use crate::ui::Ui;

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
    let binary = image::compile(stage, recipe, &|e| super::up::show_event(&step, e)).await?;
    step.finish(binary.display().to_string());
    let step = ui.step("image build");
    let context = image::build_context(stage, &binary)?;
    image::build_image(&docker, stage, context, image, &|e| {
        super::up::show_event(&step, e)
    })
    .await?;
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

pub async fn run(stage: &Stage, ui: &Ui, _args: &BuildArgs) -> Result<()> {
    ui.result(&ensure_local_image(stage, ui).await?)
}
