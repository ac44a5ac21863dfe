//! Vector clocks (Fidge 1988, "Timestamps in Message-Passing Systems That Preserve the Partial
//! Ordering"; Mattern 1988, "Virtual Time and Global States of Distributed Systems"): one counter per
//! process, so that `a → b` *if and only if* `V(a) < V(b)`. Unlike a Lamport timestamp, two vectors
//! can be incomparable, and that is exactly concurrency.
//!
//! Stored sparsely (a `BTreeMap` of non-zero entries) so that a clock of a large cluster where few
//! processes have acted stays small, and iteration order is deterministic.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How two vector timestamps relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causality {
    Equal,
    /// The left happened before the right.
    Before,
    /// The left happened after the right.
    After,
    /// Neither happened before the other.
    Concurrent,
}

/// A vector clock: per process, how many of its events are known to precede this point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VectorClock {
    entries: BTreeMap<u32, u64>,
}

impl VectorClock {
    pub fn new() -> Self {
        VectorClock::default()
    }

    /// The entry of `process` (0 when it never ticked).
    pub fn get(&self, process: u32) -> u64 {
        self.entries.get(&process).copied().unwrap_or(0)
    }

    /// A local event or send at `process`.
    pub fn tick(&mut self, process: u32) {
        let entry = self.entries.entry(process).or_insert(0);
        *entry = entry.checked_add(1).expect("a vector clock entry does not reach 2^64");
    }

    /// Entry-wise maximum with `other` (what a receiver learns from a message).
    pub fn merge(&mut self, other: &VectorClock) {
        for (process, count) in &other.entries {
            let entry = self.entries.entry(*process).or_insert(0);
            *entry = (*entry).max(*count);
        }
    }

    /// A receive at `process`: merge the sender's clock, then count the receive.
    pub fn receive(&mut self, process: u32, remote: &VectorClock) {
        self.merge(remote);
        self.tick(process);
    }

    /// Compares entry-wise: `Before` iff every entry is ≤ and one is <.
    pub fn compare(&self, other: &VectorClock) -> Causality {
        let mut less = false;
        let mut greater = false;
        let processes = self.entries.keys().chain(other.entries.keys());
        for process in processes {
            let (a, b) = (self.get(*process), other.get(*process));
            less |= a < b;
            greater |= a > b;
        }
        match (less, greater) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (true, true) => Causality::Concurrent,
        }
    }

    pub fn happened_before(&self, other: &VectorClock) -> bool {
        self.compare(other) == Causality::Before
    }

    pub fn concurrent_with(&self, other: &VectorClock) -> bool {
        self.compare(other) == Causality::Concurrent
    }

    /// The sum of the entries: the number of events this point has seen (a Lamport-compatible scalar).
    pub fn total(&self) -> u64 {
        self.entries.values().sum()
    }

    /// `(process, count)` pairs with a non-zero count, in process order.
    pub fn entries(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.entries.iter().map(|(p, c)| (*p, *c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_is_the_happened_before_partial_order() {
        let mut a = VectorClock::new();
        a.tick(0);
        let mut b = a.clone();
        b.receive(1, &a);
        assert_eq!(a.compare(&b), Causality::Before);
        assert_eq!(b.compare(&a), Causality::After);
        assert_eq!(a.compare(&a.clone()), Causality::Equal);
        let mut c = VectorClock::new();
        c.tick(2);
        assert!(c.concurrent_with(&b));
        assert!(b.concurrent_with(&c));
        b.merge(&c);
        assert!(c.happened_before(&b));
        assert_eq!(b.total(), 3);
    }
}
