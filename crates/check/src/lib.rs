//! detsim-check: histories in, verdicts out. The checkers read histories only; they never see protocol code.
//!
//! A malformed history is an error ([`HistoryError`], [`ParseError`]); an inconsistent one is a
//! [`Verdict`]. The two are never confused.

pub mod availability;
pub mod causal;
pub mod elle;
pub mod eventual;
mod graph;
pub mod linear;
pub mod model;
mod objects;
pub mod ops;
pub mod parse;
pub mod sequential;
pub mod session;
pub mod verdict;

pub use availability::{
    availability, availability_with_model, AvailabilityReport, FaultWindow, LatencyQuantiles, OutcomeCounts, StaleRead,
};
pub use causal::{check_causal, CausalOptions};
pub use elle::{check_transactions, TxnModel, TxnOptions};
pub use eventual::{check_eventual, EventualOptions};
pub use linear::{check_linearizable, LinearizabilityOptions};
pub use model::Model;
pub use ops::{operations, HistoryError, Operation, Outcome};
pub use parse::{detect_format, parse_history, parse_history_with_lines, Format, ParseError, ParsedHistory};
pub use sequential::check_sequential;
pub use session::{check_session, SessionGuarantee, SessionOptions};
pub use verdict::{Anomaly, Counterexample, PlacedOp, Validity, Verdict};
