//! detsim-check: histories in, verdicts out. The checkers read histories only; they never see protocol code.
//!
//! A malformed history is an error ([`HistoryError`], [`ParseError`]); an inconsistent one is a
//! [`Verdict`] (valid, invalid with evidence, or unknown when a budget ran out). The two are never
//! confused.
//!
//! - Read a history: [`parse_history`] (native JSON Lines, Jepsen EDN, Jepsen logs), then
//!   [`operations`] to pair invocations with completions.
//! - Single-object models ([`Model`]): [`check_linearizable`], [`check_sequential`].
//! - Weaker models: [`check_causal`], [`check_eventual`], [`check_session`] (one
//!   [`SessionGuarantee`] at a time).
//! - Transactions: [`check_transactions`] (Elle's anomalies for list-append and rw-register).
//! - Metrics: [`availability`] (success fractions inside and outside [`FaultWindow`]s, stale reads,
//!   unknown outcomes, latency quantiles).
//! - Any of them by name: [`check_history`] with a [`Consistency`].
//!
//! ```
//! use detsim_check::{availability, check_eventual, check_linearizable, operations, parse_history,
//!                    EventualOptions, LinearizabilityOptions, Model, Validity};
//!
//! let text = "{:process 0, :type :invoke, :f :write, :value 1}\n\
//!             {:process 0, :type :ok, :f :write, :value 1}\n\
//!             {:process 1, :type :invoke, :f :read, :value nil}\n\
//!             {:process 1, :type :ok, :f :read, :value nil}\n";
//! let history = parse_history(text, None).expect("valid EDN");
//! let verdict = check_linearizable(&history, Model::Register, &LinearizabilityOptions::default())
//!     .expect("a well-formed history");
//! assert_eq!(verdict.valid, Validity::Invalid); // the read began after the write was acknowledged
//! let ops = operations(&history).expect("a well-formed history");
//! assert_eq!(check_eventual(&ops, &EventualOptions::default()).valid, Validity::Invalid);
//! assert_eq!(availability(&ops, &[]).stale_reads, 1);
//! ```

pub mod availability;
pub mod causal;
pub mod consistency;
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
pub use consistency::{check_history, CheckOptions, Consistency};
pub use elle::{check_transactions, TxnModel, TxnOptions};
pub use eventual::{check_eventual, EventualOptions};
pub use linear::{check_linearizable, LinearizabilityOptions};
pub use model::Model;
pub use ops::{operations, HistoryError, Operation, Outcome};
pub use parse::{detect_format, parse_history, parse_history_with_lines, Format, ParseError, ParsedHistory};
pub use sequential::check_sequential;
pub use session::{check_session, SessionGuarantee, SessionOptions};
pub use verdict::{Anomaly, Counterexample, PlacedOp, Validity, Verdict};
