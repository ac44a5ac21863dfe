//! `detsim list`: what a scenario can name — protocols, workloads, checks, faults and nemesis
//! faults — one line each.

use crate::common::Style;
use clap::{Args, ValueEnum};
use detsim_scenario::checks::CHECKS;
use detsim_scenario::format::{NemesisFault, WorkloadKind};
use detsim_scenario::FaultKind;
use std::process::ExitCode;

/// What `detsim list` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Section {
    Protocols,
    Workloads,
    Checks,
    Faults,
    Nemesis,
}

/// Arguments of `detsim list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Show only this section (default: all of them).
    #[arg(value_name = "WHAT")]
    pub section: Option<Section>,
}

/// The lines of `detsim list` (without colours), by section.
pub fn sections(only: Option<Section>) -> Vec<(&'static str, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let wanted = |section: Section| only.is_none_or(|o| o == section);
    if wanted(Section::Protocols) {
        let lines = detsim_protocols::registry()
            .iter()
            .map(|entry| {
                let workloads: Vec<&str> =
                    entry.workloads.iter().map(|k| WorkloadKind::from_protocol(*k).as_str()).collect();
                (entry.name.to_string(), format!("{} [workloads: {}]", entry.description, workloads.join(", ")))
            })
            .collect();
        out.push(("protocols ([cluster] protocol)", lines));
    }
    if wanted(Section::Workloads) {
        let lines = WorkloadKind::ALL.iter().map(|k| (k.as_str().to_string(), k.description().to_string())).collect();
        out.push(("workloads ([workload] kind)", lines));
    }
    if wanted(Section::Checks) {
        let lines = CHECKS.iter().map(|c| (c.name.to_string(), c.description.to_string())).collect();
        out.push(("checks (checks = [...])", lines));
    }
    if wanted(Section::Faults) {
        let lines = FaultKind::ALL.iter().map(|k| (k.as_str().to_string(), k.description().to_string())).collect();
        out.push(("faults ([[faults]] kind)", lines));
    }
    if wanted(Section::Nemesis) {
        let lines = NemesisFault::ALL.iter().map(|k| (k.as_str().to_string(), k.description().to_string())).collect();
        out.push(("nemesis faults ([nemesis] faults = [...])", lines));
    }
    out
}

/// Runs `detsim list`.
pub fn run(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let style = Style::stdout();
    let sections = sections(args.section);
    for (index, (title, lines)) in sections.iter().enumerate() {
        if index > 0 {
            println!();
        }
        println!("{}", style.bold(title));
        let width = lines.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        for (name, description) in lines {
            println!("  {name:<width$}  {description}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
