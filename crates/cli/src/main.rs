//! The `detsim` binary: one clap subcommand per module; `main` only maps errors to exit codes.

mod check;
mod lab;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// detsim: a deterministic distributed-systems simulator.
#[derive(Parser)]
#[command(name = "detsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check histories for consistency and availability.
    Check(check::CheckArgs),
    /// Teaching labs: list them, write a skeleton crate, grade an implementation.
    Lab(lab::LabArgs),
}

fn main() -> ExitCode {
    match try_main() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("detsim: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn try_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Lab(args) => lab::run(&args),
    }
}
