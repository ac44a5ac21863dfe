//! One entry point for every checker by name (`linearizable`, `causal`, `read-your-writes`,
//! `strict-serializable`, ...), as `detsim check --consistency` and scenario files name them.

use crate::causal::{check_causal, CausalOptions};
use crate::elle::{check_transactions, TxnModel, TxnOptions};
use crate::eventual::{check_eventual, EventualOptions};
use crate::linear::{check_linearizable, LinearizabilityOptions};
use crate::model::Model;
use crate::ops::{operations, HistoryError};
use crate::sequential::check_sequential;
use crate::session::{check_session, SessionGuarantee, SessionOptions};
use crate::verdict::Verdict;
use detsim_core::history::History;
use std::fmt;
use std::str::FromStr;

/// A consistency model a history can be checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Consistency {
    Linearizable,
    Sequential,
    Causal,
    Eventual,
    Session(SessionGuarantee),
    /// Transactions: ww, wr and rw dependencies only.
    Serializable,
    /// Transactions: plus each process's order.
    StrongSessionSerializable,
    /// Transactions: plus real-time order.
    StrictSerializable,
}

impl Consistency {
    /// Every consistency model, in the order `--help` lists them.
    pub const ALL: [Consistency; 11] = [
        Consistency::Linearizable,
        Consistency::Sequential,
        Consistency::Causal,
        Consistency::Eventual,
        Consistency::Session(SessionGuarantee::ReadYourWrites),
        Consistency::Session(SessionGuarantee::MonotonicReads),
        Consistency::Session(SessionGuarantee::MonotonicWrites),
        Consistency::Session(SessionGuarantee::WritesFollowReads),
        Consistency::Serializable,
        Consistency::StrongSessionSerializable,
        Consistency::StrictSerializable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Sequential => "sequential",
            Consistency::Causal => "causal",
            Consistency::Eventual => "eventual",
            Consistency::Session(guarantee) => guarantee.name(),
            Consistency::Serializable => "serializable",
            Consistency::StrongSessionSerializable => "strong-session-serializable",
            Consistency::StrictSerializable => "strict-serializable",
        }
    }

    /// True for the models of transaction histories (list-append, rw-register).
    pub fn is_transactional(self) -> bool {
        matches!(
            self,
            Consistency::Serializable | Consistency::StrongSessionSerializable | Consistency::StrictSerializable
        )
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Consistency {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = if text == "strict-serializability" { "strict-serializable" } else { text };
        Consistency::ALL.into_iter().find(|c| c.name() == text).ok_or_else(|| {
            let names: Vec<&str> = Consistency::ALL.iter().map(|c| c.name()).collect();
            format!("unknown consistency model {text:?} (expected one of {})", names.join(", "))
        })
    }
}

/// What the checkers need besides the history.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// The object model of single-object histories (needed for linearizable and sequential).
    pub model: Option<Model>,
    /// The transaction model of transaction histories (inferred when `None`).
    pub txn_model: Option<TxnModel>,
    /// Partitioning, strict cas, budgets and the initial value (linearizable, sequential; the
    /// initial value also for the others).
    pub linear: LinearizabilityOptions,
    /// When the last fault healed and how long to wait after it (eventual).
    pub heal_ns: Option<u64>,
    pub settle_ns: u64,
}

/// Checks `history` for `consistency`. A malformed history is an error; so is a request that
/// cannot be judged at all (linearizability without a model).
pub fn check_history(
    history: &History,
    consistency: Consistency,
    options: &CheckOptions,
) -> Result<Verdict, HistoryError> {
    let need_model = || {
        options.model.ok_or_else(|| HistoryError {
            event_index: 0,
            message: format!("{consistency} needs an object model (register, cas-register, kv, set, counter, queue)"),
        })
    };
    let initial = options.linear.initial.clone();
    match consistency {
        Consistency::Linearizable => check_linearizable(history, need_model()?, &options.linear),
        Consistency::Sequential => check_sequential(history, need_model()?, &options.linear),
        Consistency::Causal => {
            let ops = operations(history)?;
            Ok(check_causal(&ops, &CausalOptions { model: options.model, initial, ..CausalOptions::default() }))
        }
        Consistency::Eventual => {
            let ops = operations(history)?;
            let eventual = EventualOptions {
                heal_ns: options.heal_ns,
                settle_ns: options.settle_ns,
                model: options.model,
                initial,
            };
            Ok(check_eventual(&ops, &eventual))
        }
        Consistency::Session(guarantee) => {
            let ops = operations(history)?;
            Ok(check_session(&ops, guarantee, &SessionOptions { model: options.model, initial }))
        }
        Consistency::Serializable | Consistency::StrongSessionSerializable | Consistency::StrictSerializable => {
            let ops = operations(history)?;
            let mut txn = TxnOptions::for_consistency(consistency.name()).expect("transactional models have options");
            txn.model = options.txn_model;
            check_transactions(&ops, &txn)
        }
    }
}
