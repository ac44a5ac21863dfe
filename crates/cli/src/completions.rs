//! `detsim completions SHELL`: shell completion scripts generated from the clap definitions.

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::process::ExitCode;

/// Arguments of `detsim completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write completions for (bash, zsh, fish, elvish, powershell).
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// Writes the completion script to stdout, e.g. `detsim completions bash > /etc/bash_completion.d/detsim`.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = crate::Cli::command();
    clap_complete::generate(args.shell, &mut command, "detsim", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
