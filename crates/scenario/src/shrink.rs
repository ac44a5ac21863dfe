//! Shrinking a failing seed: start from the seed's run written out as a plain scenario (swarm knobs
//! applied, the nemesis' faults scripted), then drop faults, shorten the run and drop clients while
//! the same checks still find a violation. The result is a scenario file that fails on its own.
//!
//! Every candidate goes through the TOML text and the loader, so what shrinking accepts is exactly
//! what `detsim run` will read back; removing a fault or a trailing client leaves every other random
//! draw alone (streams are derived per purpose and node), so a candidate differs from its parent only
//! by what was removed.

use crate::format::Scenario;
use crate::load::{load_str, LoadedScenario};
use crate::plan::Plan;
use crate::run::{run_seed, RunOptions};
use crate::units::Duration;
use detsim_protocols::ProtocolEntry;

/// Limits of a shrink.
#[derive(Clone, Debug)]
pub struct ShrinkOptions {
    /// Most candidate runs (each is one run of the scenario).
    pub max_runs: usize,
}

impl Default for ShrinkOptions {
    fn default() -> Self {
        ShrinkOptions { max_runs: 300 }
    }
}

/// Why a seed could not be shrunk.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    #[error("{0}")]
    Run(#[from] crate::run::RunError),
    #[error("{file}: seed {seed} violates no check, so there is nothing to shrink (checks: {checks})")]
    NoViolation { file: String, seed: u64, checks: String },
    #[error("{0}")]
    Plan(String),
}

/// The minimal scenario found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub scenario: Scenario,
    /// The TOML text to write (a comment header, then the scenario).
    pub text: String,
    pub seed: u64,
    /// The checks that stay violated.
    pub violations: Vec<String>,
    /// Candidate runs made.
    pub runs: usize,
    /// Faults, clients and duration before and after.
    pub faults_before: usize,
    pub faults_after: usize,
    pub clients_before: usize,
    pub clients_after: usize,
    pub duration_before: Duration,
    pub duration_after: Duration,
}

struct Search<'a> {
    file: String,
    default_name: String,
    registry: &'a [ProtocolEntry],
    seed: u64,
    target: Vec<String>,
    runs: usize,
    max_runs: usize,
}

impl Search<'_> {
    /// Whether `candidate` is a valid scenario whose seed still violates every target check.
    fn still_fails(&mut self, candidate: &Scenario) -> bool {
        if self.runs >= self.max_runs {
            return false;
        }
        let Ok(text) = candidate.to_toml() else {
            return false;
        };
        let Ok(loaded) = load_str(&text, &self.file, &self.default_name, self.registry) else {
            return false;
        };
        self.runs += 1;
        match run_seed(&loaded, self.seed, RunOptions::default()) {
            Ok(outcome) => {
                let violated = outcome.violated_checks();
                self.target.iter().all(|check| violated.contains(check))
            }
            Err(_) => false,
        }
    }

    /// Drops faults: halves of the list first, then quarters, ... then one at a time (ddmin's
    /// complement step), keeping every removal after which the violation persists.
    fn drop_faults(&mut self, current: &mut Scenario) -> bool {
        let mut changed = false;
        let mut chunk = current.faults.len().div_ceil(2).max(1);
        while !current.faults.is_empty() {
            let mut start = 0;
            while start < current.faults.len() {
                let end = (start + chunk).min(current.faults.len());
                let mut candidate = current.clone();
                candidate.faults.drain(start..end);
                if self.still_fails(&candidate) {
                    *current = candidate;
                    changed = true;
                } else {
                    start = end;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        changed
    }

    /// Shortens the run: the shortest of 1/8, 1/4, 1/2 and 3/4 of the duration that still fails
    /// (whole milliseconds), dropping what would then lie after the end; repeated while it helps.
    fn shorten(&mut self, current: &mut Scenario) -> bool {
        let mut changed = false;
        loop {
            let duration_ms = current.duration.as_ns() / 1_000_000;
            let mut improved = false;
            for (numerator, denominator) in [(1, 8), (1, 4), (1, 2), (3, 4)] {
                let shorter_ms = duration_ms * numerator / denominator;
                if shorter_ms == 0 || shorter_ms >= duration_ms {
                    continue;
                }
                let candidate = with_duration(current, Duration::from_millis(shorter_ms));
                if self.still_fails(&candidate) {
                    *current = candidate;
                    improved = true;
                    changed = true;
                    break;
                }
            }
            if !improved {
                return changed;
            }
        }
    }

    /// Drops clients from the end (c3 before c2): the fewest that still fail.
    fn drop_clients(&mut self, current: &mut Scenario, clients: usize) -> bool {
        for fewer in 1..clients {
            let mut candidate = current.clone();
            candidate.workload.clients = Some(fewer);
            if self.still_fails(&candidate) {
                *current = candidate;
                return true;
            }
        }
        false
    }
}

/// A copy of `scenario` that ends at `duration`, without the faults and stop times after it.
fn with_duration(scenario: &Scenario, duration: Duration) -> Scenario {
    let mut shorter = scenario.clone();
    shorter.duration = duration;
    shorter.faults.retain(|fault| fault.at <= duration);
    if shorter.workload.stop_at.is_some_and(|stop| stop > duration) {
        shorter.workload.stop_at = None;
    }
    shorter
}

/// Shrinks seed `seed` of `loaded` (see the module docs). `on_step` hears about each accepted step.
pub fn shrink(
    loaded: &LoadedScenario,
    seed: u64,
    registry: &[ProtocolEntry],
    options: &ShrinkOptions,
    mut on_step: impl FnMut(&str),
) -> Result<Shrunk, ShrinkError> {
    let original = run_seed(loaded, seed, RunOptions::default())?;
    let target = original.violated_checks();
    if target.is_empty() {
        return Err(ShrinkError::NoViolation {
            file: loaded.file.clone(),
            seed,
            checks: if loaded.scenario.checks.is_empty() { "none".into() } else { loaded.scenario.checks.join(", ") },
        });
    }
    let plan = Plan::new(loaded, seed).map_err(|error| ShrinkError::Plan(error.to_string()))?;
    let mut current = plan.materialized();
    current.swarm = None;
    current.workload.clients = Some(plan.clients);
    let faults_before = current.faults.len();
    let clients_before = plan.clients;
    let duration_before = current.duration;
    let mut search = Search {
        file: loaded.file.clone(),
        default_name: loaded.name.clone(),
        registry,
        seed,
        target: target.clone(),
        runs: 0,
        max_runs: options.max_runs,
    };
    if !search.still_fails(&current) {
        return Err(ShrinkError::Plan(format!(
            "seed {seed} written out as a plain scenario no longer violates {} (please report this: it is a bug)",
            target.join(", ")
        )));
    }
    on_step(&format!(
        "seed {seed} violates {}: {} faults, {} clients, {}",
        target.join(", "),
        faults_before,
        clients_before,
        duration_before
    ));
    for _round in 0..4 {
        let mut changed = false;
        if search.drop_faults(&mut current) {
            changed = true;
            on_step(&format!("dropped faults: {} left", current.faults.len()));
        }
        if search.shorten(&mut current) {
            changed = true;
            on_step(&format!("shortened the run to {}", current.duration));
        }
        let clients = current.workload.clients.unwrap_or(0);
        if clients > 1 && search.drop_clients(&mut current, clients) {
            changed = true;
            on_step(&format!("dropped clients: {} left", current.workload.clients.unwrap_or(0)));
        }
        if !changed || search.runs >= search.max_runs {
            break;
        }
    }

    let name = format!("{}-shrunk", loaded.name);
    current.name = Some(name);
    let how = format!("Shrunk by `detsim shrink {} --seed {seed}`", loaded.file);
    current.description = if loaded.scenario.description.trim().is_empty() {
        format!("{how}: seed {seed} violates {}.", target.join(", "))
    } else {
        format!("{how}: seed {seed} violates {}.\n\n{}", target.join(", "), loaded.scenario.description.trim())
    };
    let body = current.to_toml().map_err(ShrinkError::Plan)?;
    let text = format!(
        "# {how} after {} runs: {} of {} faults, {} of {} clients, {} of {}.\n# It fails on its own: `detsim run` of this file reproduces the violation of {}.\n\n{body}",
        search.runs,
        current.faults.len(),
        faults_before,
        current.workload.clients.unwrap_or(0),
        clients_before,
        current.duration,
        duration_before,
        target.join(", "),
    );
    Ok(Shrunk {
        faults_after: current.faults.len(),
        clients_after: current.workload.clients.unwrap_or(0),
        duration_after: current.duration,
        scenario: current,
        text,
        seed,
        violations: target,
        runs: search.runs,
        faults_before,
        clients_before,
        duration_before,
    })
}
