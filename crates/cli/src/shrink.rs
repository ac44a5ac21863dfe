//! `detsim shrink FILE --seed N`: minimises a failing seed's fault schedule and workload (drop
//! faults, shorten the run, drop clients) while the same checks stay violated, and writes the
//! minimal scenario as a TOML file that fails on its own.

use crate::common::{Exit, ScenarioSeed};
use clap::Args;
use detsim_scenario::{shrink, ShrinkError, ShrinkOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `detsim shrink`.
#[derive(Args, Debug)]
pub struct ShrinkArgs {
    #[command(flatten)]
    pub scenario: ScenarioSeed,
    /// Write the minimal scenario here (default: <name>-seed-<N>-shrunk.toml).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Most candidate runs to try.
    #[arg(long, value_name = "N", default_value_t = ShrinkOptions::default().max_runs)]
    pub max_runs: usize,
}

/// Runs `detsim shrink`: exit 0 when the minimal scenario is written, 2 when the seed does not fail.
pub fn run(args: &ShrinkArgs) -> anyhow::Result<ExitCode> {
    let (loaded, seed) = args.scenario.load()?;
    let registry = detsim_protocols::registry();
    let options = ShrinkOptions { max_runs: args.max_runs.max(1) };
    let shrunk =
        shrink(&loaded, seed, &registry, &options, |step| eprintln!("shrink: {step}")).map_err(|e| match e {
            ShrinkError::Run(run) => crate::common::run_error(run),
            other => Exit::bad_input(other),
        })?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("{}-seed-{seed}-shrunk.toml", loaded.name)));
    std::fs::write(&out, &shrunk.text).map_err(|e| Exit::bad_input(format!("{}: {e}", out.display())))?;
    println!(
        "shrunk seed {seed} of {} in {} runs: faults {} -> {}, clients {} -> {}, duration {} -> {}",
        loaded.file,
        shrunk.runs,
        shrunk.faults_before,
        shrunk.faults_after,
        shrunk.clients_before,
        shrunk.clients_after,
        shrunk.duration_before,
        shrunk.duration_after
    );
    println!("still violates {}", shrunk.violations.join(", "));
    println!("wrote {}", out.display());
    println!("replay: {}", detsim_scenario::replay_command(&out.display().to_string(), seed));
    Ok(ExitCode::SUCCESS)
}
