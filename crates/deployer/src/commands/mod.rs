//! One module per `deployer` subcommand, and the dispatch from the parsed
//! command line to them. Commands are thin and none imports another: they
//! compose `stage` (read, plan, apply, lock), `aws` and `image`, and print
//! only through [`Ui`].

pub(crate) mod build;
pub mod completions;
pub(crate) mod destroy;
pub(crate) mod dev;
pub(crate) mod invoke;
pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod plan;
pub mod policy;
pub(crate) mod prune;
pub(crate) mod rollback;
pub(crate) mod stages;
pub(crate) mod status;
pub(crate) mod unlock;
pub(crate) mod up;

use crate::cli::Command;
use crate::config::{Stage, StageSource};
use crate::exit::ExitStatus;
use crate::ui::Ui;

/// Runs a command that acts on a stage (every command but `completions`,
/// which [`completions::run`] handles without a deploy.toml). `source`
/// resolves the stage again for the commands that run on and follow
/// deploy.toml (`dev`, `up --watch`). A command that succeeds exits 0, but
/// for `plan --detailed-exitcode`, whose status says whether it would
/// change something.
pub async fn run(
    command: &Command,
    source: &StageSource,
    stage: &Stage,
    ui: &Ui,
) -> anyhow::Result<ExitStatus> {
    ui.detail(format!(
        "stage {} of {} in {}{}",
        stage.name,
        stage.app,
        stage.region,
        stage
            .endpoint_url
            .as_ref()
            .map(|url| format!(" at {url}"))
            .unwrap_or_default()
    ));
    match command {
        Command::Completions(args) => completions::run(args),
        Command::Up(args) => up::run(source, stage, ui, args).await,
        Command::Dev(args) => dev::run(source, stage, ui, args).await,
        Command::Plan(args) => return plan::run(stage, ui, args).await,
        Command::Build(args) => build::run(stage, ui, args).await,
        Command::Status(args) => status::run(stage, ui, args).await,
        Command::Rollback(args) => rollback::run(stage, ui, args).await,
        Command::Logs(args) => logs::run(stage, ui, args).await,
        Command::Metrics(args) => metrics::run(stage, ui, args).await,
        Command::Destroy(args) => destroy::run(stage, ui, args).await,
        Command::Invoke(args) => invoke::run(stage, ui, args).await,
        Command::Policy(args) => policy::run(std::slice::from_ref(stage), ui, args).await,
        Command::Unlock(args) => unlock::run(stage, ui, args).await,
        Command::Stages(args) => stages::run(source, stage, ui, args).await,
        Command::Prune(args) => prune::run(source, stage, ui, args).await,
    }
    .map(|()| ExitStatus::Success)
}
