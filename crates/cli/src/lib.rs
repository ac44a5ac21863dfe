//! The `detsim` library: what a user needs to simulate and test a protocol (the core types, the
//! checkers, proptest) re-exported in one place, the [`testing`] module for property-based tests of
//! your own `Node`s, and the teaching labs behind `detsim lab` ([`labs`]).

pub use detsim_check as check;
pub use detsim_check::{check_linearizable, LinearizabilityOptions, Model, Validity, Verdict};
pub use detsim_core as sim;
pub use detsim_core::{
    AnySimulation, Ctx, EventType, Fault, History, HistoryEvent, LatencyDist, LinkConfig, LocalClock, LocalTime,
    Message, NetworkConfig, Node, NodeId, NodeStatus, Op, ProcessId, RunStats, SimConfig, SimError, SimRng, SimTime,
    Simulation, Storage, TimerId, Value,
};
/// proptest, re-exported so that a test crate needs only `detsim` as a dev-dependency.
pub use proptest;

pub mod labs;
pub mod testing;
