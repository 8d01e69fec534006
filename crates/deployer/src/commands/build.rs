//! `deployer build`: compile the function and build its image, locally
//! and with no AWS. The image is tagged `{app}:{content hash}`; `up` tags
//! its own build with the repository's URI instead.

use anyhow::Result;

use crate::cli::BuildArgs;
use crate::config::Stage;
use crate::stage::image;
use crate::ui::Ui;

pub async fn run(stage: &Stage, ui: &Ui, _args: &BuildArgs) -> Result<()> {
    ui.result(&image::ensure_local_image(stage, ui).await?)
}
