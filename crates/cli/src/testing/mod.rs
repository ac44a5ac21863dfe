//! Property-based testing of your own protocol from `cargo test`: proptest strategies for fault
//! schedules, network conditions and workloads; a runner that simulates your [`Node`](detsim_core::Node)
//! servers with harness clients; and assertions (linearizability, liveness after heal) whose failure
//! message gives the seed, the minimal fault schedule, a one-line replay command and the run folder
//! of the counterexample with its report.html ([`write_report`]).
//!
//! ```no_run
//! use detsim::testing::{check, CaseSpace, Cluster};
//! # use detsim::testing::{ClientReply, ClientRequest, Service};
//! # use detsim::{Ctx, Node, NodeId};
//! # #[derive(Clone, Debug, Hash)] enum Msg { Req(ClientRequest), Rep(ClientReply) }
//! # impl detsim::Message for Msg {}
//! # struct MyServer;
//! # impl Node for MyServer { type Msg = Msg; fn on_message(&mut self, _: &mut Ctx<'_, Msg>, _: NodeId, _: Msg) {} }
//! # impl Service for MyServer {
//! #     fn request(r: ClientRequest) -> Msg { Msg::Req(r) }
//! #     fn reply(m: &Msg) -> Option<ClientReply> { match m { Msg::Rep(r) => Some(r.clone()), _ => None } }
//! # }
//! let cluster = Cluster::new(3, |_id, _storage| MyServer);
//! check(&cluster, &CaseSpace::default(), |report| {
//!     report.assert_linearizable(detsim::Model::Register)?;
//!     report.assert_live_after_heal()
//! });
//! ```
//!
//! See docs/testing-your-protocol.md for the tutorial.

pub mod case;
pub mod harness;
pub mod runner;
pub mod schedule;

pub use case::{
    fault_schedule, network_conditions, test_cases, window_fault, window_fault_with_sides, workload, CaseSpace,
    NetworkConditions, OpMix, PlannedOp, TestCase, WorkloadPlan,
};
pub use harness::{Actor, Client, ClientReply, ClientRequest, ClientSettings, Service};
pub use runner::{
    check, proptest_config, replay_command, report_folder, run, search, write_report, Cluster, Counterexample,
    Liveness, OpCounts, Report, REPLAY_ENV, REPORTS_ENV, SEARCH_SEED_ENV,
};
pub use schedule::{FaultKinds, FaultWindow, TimedFault, WindowFault};
