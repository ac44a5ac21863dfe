//! Operations: a history's invoke records paired with their completions, per client process.

use detsim_core::history::{EventType, History, ProcessId, Value};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened, with a known result.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown: it may have happened at any time after its invocation (also: never completed).
    Info,
}

/// One client operation: an invocation and its completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// Position among the history's operations, in invocation order, from 0.
    pub id: usize,
    pub process: ProcessId,
    pub f: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// The value given at invocation (what to write, `[from to]` of a cas, a transaction's micro-ops).
    pub input: Value,
    /// The value given at completion when it is `ok` (what a read saw); `Nil` otherwise.
    pub output: Value,
    pub outcome: Outcome,
    /// Index of the invoke record in the history.
    pub invoke_index: usize,
    /// Index of the completion record, if any (an `info` or never-completed op has none that counts).
    pub complete_index: Option<usize>,
    pub invoke_ns: u64,
    pub complete_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Operation {
    /// The history position before which this operation certainly took effect: its `ok` or `fail`
    /// record; `usize::MAX` for an unknown outcome.
    pub fn return_position(&self) -> usize {
        match self.outcome {
            Outcome::Info => usize::MAX,
            _ => self.complete_index.unwrap_or(usize::MAX),
        }
    }

    /// True when `self` completed before `other` was invoked (real-time order).
    pub fn precedes(&self, other: &Operation) -> bool {
        self.return_position() < other.invoke_index
    }
}

impl fmt::Display for Operation {
    /// `#4 p3 cas [1 4] -> ok` style, with the key and the result when they exist.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} p{} {}", self.id, self.process, self.f)?;
        if let Some(key) = &self.key {
            write!(f, " {key}")?;
        }
        if !self.input.is_nil() {
            write!(f, " {}", self.input)?;
        }
        match self.outcome {
            Outcome::Ok => {
                let is_read = matches!(self.f.as_str(), "read" | "get" | "txn");
                if is_read || !self.output.is_nil() && self.output != self.input {
                    write!(f, " -> {}", self.output)
                } else {
                    write!(f, " -> ok")
                }
            }
            Outcome::Fail => write!(f, " -> fail"),
            Outcome::Info => write!(f, " -> unknown"),
        }
    }
}

/// A history that does not describe a run of sequential client processes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {event_index}: {message}")]
pub struct HistoryError {
    /// Index of the offending record in the history.
    pub event_index: usize,
    pub message: String,
}

/// Pairs invocations with completions. Operations left pending at the end count as `info`.
pub fn operations(history: &History) -> Result<Vec<Operation>, HistoryError> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut pending: BTreeMap<ProcessId, usize> = BTreeMap::new();
    let mut crashed: BTreeMap<ProcessId, usize> = BTreeMap::new();
    for (event_index, event) in history.events.iter().enumerate() {
        let error = |message: String| HistoryError { event_index, message };
        match event.kind {
            EventType::Invoke => {
                if let Some(&open) = pending.get(&event.process) {
                    return Err(error(format!(
                        "process {} invokes {} while its {} (event {}) has not completed",
                        event.process, event.f, ops[open].f, ops[open].invoke_index
                    )));
                }
                if let Some(&info) = crashed.get(&event.process) {
                    return Err(error(format!(
                        "process {} invokes {} after its unknown-outcome (info) record at event {info}; \
                         a process with an unknown outcome never invokes again",
                        event.process, event.f
                    )));
                }
                pending.insert(event.process, ops.len());
                ops.push(Operation {
                    id: ops.len(),
                    process: event.process,
                    f: event.f.clone(),
                    key: event.key.clone(),
                    input: event.value.clone(),
                    output: Value::Nil,
                    outcome: Outcome::Info,
                    invoke_index: event_index,
                    complete_index: None,
                    invoke_ns: event.time_ns,
                    complete_ns: None,
                    error: None,
                });
            }
            EventType::Ok | EventType::Fail | EventType::Info => {
                let Some(open) = pending.remove(&event.process) else {
                    return Err(error(format!(
                        "process {} completes {} ({}) without a pending invocation",
                        event.process,
                        event.f,
                        event.kind.as_str()
                    )));
                };
                let op = &mut ops[open];
                if op.f != event.f {
                    return Err(error(format!(
                        "process {} completes {} but invoked {} (event {})",
                        event.process, event.f, op.f, op.invoke_index
                    )));
                }
                if event.key.is_some() && op.key.is_some() && event.key != op.key {
                    return Err(error(format!("process {} completes a different key than it invoked", event.process)));
                }
                if event.time_ns < op.invoke_ns {
                    return Err(error(format!(
                        "completion time {} is before invocation time {}",
                        event.time_ns, op.invoke_ns
                    )));
                }
                op.complete_index = Some(event_index);
                op.complete_ns = Some(event.time_ns);
                op.error = event.error.clone();
                match event.kind {
                    EventType::Ok => {
                        op.outcome = Outcome::Ok;
                        op.output = event.value.clone();
                    }
                    EventType::Fail => op.outcome = Outcome::Fail,
                    _ => {
                        op.outcome = Outcome::Info;
                        crashed.insert(event.process, event_index);
                    }
                }
            }
        }
    }
    Ok(ops)
}

/// True when a failed or unknown record says the operation timed out (`:timed-out`).
pub fn timed_out(op: &Operation, history: &History) -> bool {
    let says = |text: &str| text.contains("timed-out") || text.contains("timeout");
    op.error.as_deref().is_some_and(says)
        || op.complete_index.and_then(|i| history.events.get(i)).and_then(|e| e.value.as_str()).is_some_and(says)
}
