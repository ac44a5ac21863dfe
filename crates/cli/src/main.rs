//! The `detsim` binary: one clap subcommand per module; `main` calls `try_main` and turns an error
//! into one message and an exit code (0: as expected, 1: not as expected, 2: bad input).

mod check;
mod common;
mod completions;
mod lab;
mod list;
mod merge;
mod plot;
mod replay;
mod run;
mod shrink;
mod sweep;

use clap::{Parser, Subcommand};
use common::{Exit, EXIT_BAD_INPUT};
use std::process::ExitCode;

/// detsim: a deterministic distributed-systems simulator. Same scenario + same seed = the same
/// trace, bit for bit.
///
/// Exit codes: 0 when the outcome is what the scenario expects, 1 when it is not, 2 for bad input.
#[derive(Parser)]
#[command(name = "detsim", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed of a scenario: summary, run folder (history, trace, report.html), exit 0/1/2.
    Run(run::RunArgs),
    /// Run many seeds in parallel (sharded, resumable); JSON Lines results and the failing seeds.
    Sweep(sweep::SweepArgs),
    /// Merge the results files of a sharded sweep into one.
    Merge(merge::MergeArgs),
    /// Run one seed again, optionally printing its trace filtered by node and message type.
    Replay(replay::ReplayArgs),
    /// Minimise a failing seed's faults and workload into a scenario that fails on its own.
    Shrink(shrink::ShrinkArgs),
    /// Check histories for consistency and availability.
    Check(check::CheckArgs),
    /// Re-render a run folder's charts and report.html; CAP comparisons; sweep charts.
    Plot(plot::PlotArgs),
    /// List protocols, workloads, checks and faults, one line each.
    List(list::ListArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Teaching labs: list them, write a skeleton crate, grade an implementation.
    Lab(lab::LabArgs),
}

fn main() -> ExitCode {
    match try_main() {
        Ok(code) => code,
        Err(error) => match error.downcast_ref::<Exit>() {
            Some(exit) => {
                eprintln!("detsim: {}", exit.message);
                ExitCode::from(exit.code)
            }
            None => {
                eprintln!("detsim: {error:#}");
                ExitCode::from(EXIT_BAD_INPUT)
            }
        },
    }
}

fn try_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Shrink(args) => shrink::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Plot(args) => plot::run(&args),
        Command::List(args) => list::run(&args),
        Command::Completions(args) => completions::run(&args),
        Command::Lab(args) => lab::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
