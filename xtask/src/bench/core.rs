//! Benchmarks of the simulation core (filled in with the core).

use super::Bench;

pub fn benches() -> Vec<Bench> {
    Vec::new()
}
