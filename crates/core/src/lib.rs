//! detsim-core: the deterministic simulation core (virtual time, seeded RNG streams, the `Node` trait,
//! network, clocks, faults, trace and history). No I/O of its own, no wall clock, no threads.

pub mod clock;
pub mod codec;
pub mod fault;
pub mod history;
pub mod net;
pub mod node;
mod prefetch;
mod queue;
pub mod rng;
pub mod sim;
pub mod time;
pub mod trace;

pub use clock::LocalClock;
pub use fault::Fault;
pub use history::{EventType, History, HistoryEvent, Op, ProcessId, Value};
pub use net::{DropReason, LatencyDist, LinkConfig, NetworkConfig, Topology};
pub use node::{Ctx, Message, Node, NodeId, Storage, TimerId};
pub use rng::SimRng;
pub use sim::{AnySimulation, Limits, NodeStatus, RunStats, SimConfig, SimError, Simulation};
pub use time::{LocalTime, SimTime};
pub use trace::{JsonlTraceWriter, MemoryTrace, TraceEvent, TraceHasher, TraceKind, TraceRecord, TraceSink};
