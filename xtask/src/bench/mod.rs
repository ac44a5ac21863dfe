//! The benchmark registry behind `cargo xtask bench`: each benchmark measures one thing on a named
//! input and reports what it measured as one JSON object a line.

pub mod check;
pub mod core;
pub mod raft;
pub mod sweep;

use std::time::Instant;

/// What one benchmark measured.
pub struct BenchResult {
    /// The benchmark's name, as given on the command line.
    pub name: String,
    /// How many operations were done (what an operation is, each benchmark says in `unit`).
    pub ops: u64,
    /// Wall-clock seconds the measured part took.
    pub wall_s: f64,
    /// Extra figures (simulated time, peak memory, target, ...), merged into the JSON object.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BenchResult {
    pub fn new(name: &str, ops: u64, wall_s: f64) -> Self {
        BenchResult { name: name.to_string(), ops, wall_s, extra: serde_json::Map::new() }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("name".into(), self.name.clone().into());
        object.insert("ops".into(), self.ops.into());
        object.insert("wall_s".into(), self.wall_s.into());
        let per_s = if self.wall_s > 0.0 { self.ops as f64 / self.wall_s } else { 0.0 };
        object.insert("per_s".into(), per_s.into());
        for (key, value) in &self.extra {
            object.insert(key.clone(), value.clone());
        }
        serde_json::Value::Object(object)
    }
}

/// A benchmark: a name and the function that runs it.
pub struct Bench {
    pub name: &'static str,
    pub run: fn() -> Vec<BenchResult>,
}

/// Every benchmark, in the order `cargo xtask bench` runs them.
pub fn all() -> Vec<Bench> {
    let mut benches = Vec::new();
    benches.extend(core::benches());
    benches.extend(sweep::benches());
    benches.extend(check::benches());
    benches.extend(raft::benches());
    benches
}

/// The median of some figures (the upper one of the middle two for an even count).
pub fn median(mut figures: Vec<f64>) -> f64 {
    assert!(!figures.is_empty(), "the median of no figures");
    figures.sort_by(f64::total_cmp);
    figures[figures.len() / 2]
}

/// Times `work` and returns its result with the wall seconds it took.
pub fn timed<T>(work: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let value = work();
    (value, start.elapsed().as_secs_f64())
}
