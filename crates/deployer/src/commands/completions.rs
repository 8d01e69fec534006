//! `deployer completions SHELL`: a completion script for the shell, on
//! stdout (e.g. `deployer completions bash > /etc/bash_completion.d/deployer`).

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "deployer", &mut out);
    Ok(())
}
