//! detsim-core: the deterministic simulation core (virtual time, seeded RNG streams, the `Node` trait,
//! network, clocks, faults, trace and history). No I/O of its own, no wall clock, no threads.

pub mod history;
