//! detsim-scenario: the scenario file format (TOML), validation with `file:line:column` errors,
//! building a simulation from a scenario (swarm knobs, random nemesis, scripted faults), running
//! seeds, writing run folders, sweeps (sharded, resumable, merged) and shrinking a failing seed.

pub mod checks;
pub mod format;
pub mod load;
pub mod measured;
pub mod plan;
pub mod run;
pub mod schema;
pub mod shrink;
pub mod sweep;
pub mod toy;
pub mod units;
pub mod validate;

pub use format::{Expect, FaultKind, FaultSpec, Scenario};
pub use load::{load_file, load_str, text_digest, Diagnostic, LoadedScenario, ScenarioError};
pub use plan::Plan;
pub use run::{replay_command, run_seed, RunError, RunOptions, RunOutcome, TraceTo};
pub use shrink::{shrink, ShrinkError, ShrinkOptions, Shrunk};
pub use sweep::{merge_results, sweep, SeedRange, SeedRecord, Shard, SweepError, SweepOptions, SweepSummary};
