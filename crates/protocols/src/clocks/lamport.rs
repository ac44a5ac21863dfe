//! Lamport logical clocks (Lamport 1978, "Time, Clocks, and the Ordering of Events in a Distributed
//! System", CACM 21(7)): a counter per process such that `a → b` (a happened before b) implies
//! `L(a) < L(b)`. The converse does not hold, which is what [`super::vector`] adds.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A Lamport clock: one counter, ticked on every local event and send, and merged on receive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LamportClock {
    counter: u64,
}

/// A Lamport timestamp made total by the process id as tie-breaker (Lamport's rule IR2' for the
/// total order `⇒`), so that two events never compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LamportTimestamp {
    pub counter: u64,
    pub process: u32,
}

impl PartialOrd for LamportTimestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LamportTimestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.counter, self.process).cmp(&(other.counter, other.process))
    }
}

impl LamportClock {
    pub fn new() -> Self {
        LamportClock::default()
    }

    /// The current counter (the timestamp of the last event).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// A local event or a send (IR1): the counter moves past every event this process has seen.
    pub fn tick(&mut self) -> u64 {
        self.counter = self.counter.checked_add(1).expect("a Lamport counter does not reach 2^64");
        self.counter
    }

    /// A receive (IR2): jump past the sender's timestamp, then count the receive itself.
    pub fn receive(&mut self, remote: u64) -> u64 {
        self.counter = self.counter.max(remote);
        self.tick()
    }

    /// Learns of a remote timestamp without counting an event (when only some events are of interest,
    /// e.g. broadcasts, receives merge but do not tick; `a → b` still implies `L(a) < L(b)` for them).
    pub fn observe(&mut self, remote: u64) {
        self.counter = self.counter.max(remote);
    }

    /// The timestamp of the event just ticked, with `process` as tie-breaker.
    pub fn stamp(&self, process: u32) -> LamportTimestamp {
        LamportTimestamp { counter: self.counter, process }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_moves_past_the_sender_and_ticks() {
        let mut a = LamportClock::new();
        let mut b = LamportClock::new();
        let sent = a.tick();
        a.tick();
        assert_eq!(b.receive(sent), 2);
        assert_eq!(b.receive(1), 3, "an older timestamp still counts the receive");
        assert!(b.stamp(1) > a.stamp(0), "(3, 1) follows (2, 0)");
        assert!(LamportTimestamp { counter: 2, process: 0 } < LamportTimestamp { counter: 2, process: 1 });
    }
}
