//! Client histories: invoke / ok / fail / info records per client process, in the form Jepsen and
//! Porcupine use, so that the checkers can judge detsim runs and foreign histories alike.
//!
//! A history is a sequence of [`HistoryEvent`]s in real-time order (the simulator's true time, never a
//! node's drifting local clock). Each client *process* is sequential: it invokes one operation, then
//! completes it with `ok` (it happened, with this result), `fail` (it certainly did not happen) or
//! `info` (unknown: it may or may not have happened, at any time after the invocation). A process that
//! got an `info` never invokes again, exactly as in Jepsen.
//!
//! On disk a history is JSON Lines, one [`HistoryEvent`] per line.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{self, BufRead, Write};

/// A client process. Jepsen numbers processes; detsim does the same.
pub type ProcessId = u64;

/// A value carried by an operation: small and dynamically typed, like EDN's scalars and vectors.
///
/// Keywords from EDN (`:timed-out`) are kept as [`Value::Str`] without the colon.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(untagged)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Nil, Into::into)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for Value {
    /// EDN-like rendering: `nil`, `3`, `"x"`, `[1 2]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, " ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
        }
    }
}

/// What a history record says about an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The client started the operation.
    Invoke,
    /// The operation happened, with the value in this record as its result.
    Ok,
    /// The operation certainly did not happen.
    Fail,
    /// Unknown outcome (for example a timeout): it may have happened, at any time after invoke.
    Info,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// An operation as a client sees it: a function name, an optional key, and a value.
///
/// Function names follow Jepsen: `read`, `write`, `cas` (value `[from to]`), `get`, `put`, `append`,
/// `add`, `inc`, `enqueue`, `dequeue`, `txn` (value: a list of micro-ops such as `["append" 3 7]`,
/// `["r" 3 [1 7]]`, `["w" 3 7]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    #[serde(default)]
    pub value: Value,
}

impl Op {
    pub fn new(f: &str, key: Option<Value>, value: Value) -> Self {
        Op { f: f.to_string(), key, value }
    }
}

/// One record of a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Position in the history, from 0.
    pub index: u64,
    /// True (simulated) time in nanoseconds. Foreign histories without times get their index.
    pub time_ns: u64,
    pub process: ProcessId,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    #[serde(default)]
    pub value: Value,
    /// Why an operation failed or has an unknown outcome (`"timed-out"`, `"not-leader"`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node that recorded it (its name), when the history came from a simulation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl HistoryEvent {
    pub fn op(&self) -> Op {
        Op { f: self.f.clone(), key: self.key.clone(), value: self.value.clone() }
    }
}

/// A whole history, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub events: Vec<HistoryEvent>,
}

/// An error reading a JSON Lines history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryReadError {
    #[error("line {line}, column {column}: {message}")]
    Syntax { line: usize, column: usize, message: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl History {
    pub fn new() -> Self {
        History::default()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends a record, giving it the next index. Times must not go backwards.
    pub fn push(
        &mut self,
        time_ns: u64,
        process: ProcessId,
        kind: EventType,
        op: Op,
        error: Option<String>,
        node: Option<String>,
    ) {
        if let Some(last) = self.events.last() {
            assert!(last.time_ns <= time_ns, "history times must not go backwards");
        }
        let index = self.events.len() as u64;
        self.events.push(HistoryEvent {
            index,
            time_ns,
            process,
            kind,
            f: op.f,
            key: op.key,
            value: op.value,
            error,
            node,
        });
    }

    /// Writes the history as JSON Lines.
    pub fn write_jsonl<W: Write>(&self, mut out: W) -> io::Result<()> {
        for event in &self.events {
            serde_json::to_writer(&mut out, event)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Reads a JSON Lines history. Blank lines are skipped; errors carry line and column.
    pub fn read_jsonl<R: BufRead>(input: R) -> Result<History, HistoryReadError> {
        let mut history = History::new();
        for (line_index, line) in input.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let event: HistoryEvent = serde_json::from_str(&line).map_err(|e| HistoryReadError::Syntax {
                line: line_index + 1,
                column: e.column(),
                message: e.to_string(),
            })?;
            history.events.push(event);
        }
        Ok(history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_round_trip_keeps_every_field() {
        let mut history = History::new();
        history.push(5, 0, EventType::Invoke, Op::new("cas", None, Value::from(vec![1, 2])), None, Some("c1".into()));
        history.push(
            9,
            0,
            EventType::Info,
            Op::new("cas", None, Value::from(vec![1, 2])),
            Some("timed-out".into()),
            None,
        );
        history.push(10, 1, EventType::Ok, Op::new("get", Some("k".into()), Value::Nil), None, None);
        let mut bytes = Vec::new();
        history.write_jsonl(&mut bytes).expect("write to a Vec");
        let back = History::read_jsonl(&bytes[..]).expect("read back");
        assert_eq!(back, history);
    }

    #[test]
    fn malformed_line_reports_line_and_column() {
        let text = "{\"index\":0,\"time_ns\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"index\": oops}\n";
        let error = History::read_jsonl(text.as_bytes()).expect_err("second line is malformed");
        match error {
            HistoryReadError::Syntax { line, column, .. } => {
                assert_eq!(line, 2);
                assert!(column > 1);
            }
            other => panic!("expected a syntax error, got {other}"),
        }
    }

    #[test]
    fn value_displays_like_edn() {
        let value = Value::List(vec![Value::Int(1), Value::Nil, Value::Str("x".into())]);
        assert_eq!(value.to_string(), "[1 nil \"x\"]");
    }
}
