//! `deployer`: builds the prediction function's image and deploys it to
//! AWS Lambda behind API Gateway, with no CloudFormation.
//!
//! Thin on purpose: parse the command line, make the [`Ui`], resolve the
//! stage, hand over to `commands`, and turn an error into its exit code.

use std::process::ExitCode;

use deployer::cli::{Cli, Command};
use deployer::commands;
use deployer::config::{self, Overrides, StageSource};
use deployer::exit::{self, ExitStatus};
use deployer::ui::Ui;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => {
            // Help and --version exit 0; usage errors exit 2 (clap's own
            // code for them, the same as ExitStatus::Usage).
            let _ = err.print();
            return ExitCode::from(
                u8::try_from(err.exit_code()).unwrap_or(ExitStatus::Usage.code()),
            );
        }
    };
    let ui = Ui::new(
        cli.command.name(),
        cli.global.json,
        cli.global.yes,
        cli.global.verbose,
    );
    match run(&cli, &ui).await {
        Ok(status) => status.into(),
        Err(err) => {
            let status = exit::classify(&err);
            ui.error(&err, status);
            status.into()
        }
    }
}

async fn run(cli: &Cli, ui: &Ui) -> anyhow::Result<ExitStatus> {
    if let Command::Completions(args) = &cli.command {
        return commands::completions::run(args).map(|()| ExitStatus::Success);
    }
    let source = StageSource {
        config: cli.global.config.clone(),
        stage: cli.global.stage.clone(),
        overrides: Overrides {
            region: cli.global.region.clone(),
            profile: cli.global.profile.clone(),
        },
    };
    // Every stage of the file, not the one of --stage.
    if let Command::Policy(args) = &cli.command
        && args.all_stages
    {
        let stages = config::load_all(&source.config, &source.overrides)?;
        return commands::policy::run(&stages, ui, args)
            .await
            .map(|()| ExitStatus::Success);
    }
    let stage = match &cli.command {
        // From the tags alone when deploy.toml no longer names the stage;
        // `stages` and `prune` act on the app in --stage's account.
        Command::Destroy(_) | Command::Stages(_) | Command::Prune(_) => {
            source.load_or_untracked()?
        }
        _ => source.load()?,
    };
    // A pattern's own key (`pr-*`) is a stage only to `policy`, which
    // scopes to the names its matches share.
    if stage.name.contains('*') && !matches!(cli.command, Command::Policy(_)) {
        return Err(config::ConfigError::Flag {
            flag: "--stage",
            message: format!(
                "`{}` is a stage pattern: name one stage it matches (only `policy` takes the \
                 pattern itself)",
                stage.name
            ),
        }
        .into());
    }
    commands::run(&cli.command, &source, &stage, ui).await
}
