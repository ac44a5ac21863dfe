//! Verdicts: valid, invalid or unknown, with the smallest evidence found, as text and JSON.

use crate::ops::Operation;
use detsim_core::history::Value;
use serde::Serialize;
use serde_json::json;
use std::fmt;

/// Whether a history satisfied a checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    Valid,
    Invalid,
    /// The checker ran out of its time or memory budget before deciding.
    Unknown,
}

impl Validity {
    /// `true`, `false` or `"unknown"`, as the JSON reports spell it.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Validity::Valid => json!(true),
            Validity::Invalid => json!(false),
            Validity::Unknown => json!("unknown"),
        }
    }

    /// The `detsim check` exit code: 0 valid, 1 invalid, 3 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 3,
        }
    }

    /// Combines the verdicts of independent parts: any invalid part makes the whole invalid.
    pub fn and(self, other: Validity) -> Validity {
        match (self, other) {
            (Validity::Invalid, _) | (_, Validity::Invalid) => Validity::Invalid,
            (Validity::Unknown, _) | (_, Validity::Unknown) => Validity::Unknown,
            _ => Validity::Valid,
        }
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Validity::Valid => "valid",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "unknown",
        })
    }
}

/// One placed operation of a linearization prefix, with the model state after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlacedOp {
    pub op: Operation,
    pub state_after: String,
}

/// Why a history is not linearizable (or not sequentially consistent): the longest order found
/// that explains a prefix, and the operation that cannot be placed after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counterexample {
    /// The key (partition) the evidence is about, when the history was partitioned by key.
    pub key: Option<Value>,
    /// The longest linearizable prefix found, in its order.
    pub prefix: Vec<PlacedOp>,
    /// The model state at the end of the prefix.
    pub state: String,
    /// The operation that must come next (its deadline has passed) but cannot be placed.
    pub unplaceable: Operation,
    /// The operations involved: the unplaceable one and those it overlaps in time.
    pub involved: Vec<Operation>,
}

/// A named anomaly with the operations that make it up (a cycle, a bad pattern, a stale read, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// G0, G1a, G1b, G1c, G-single, G2-item, read-your-writes, not-converged, ...
    pub name: String,
    /// One sentence: what goes wrong, with the ops by number.
    pub explanation: String,
    pub ops: Vec<Operation>,
    /// The steps of a cycle or causal path, one sentence each (empty when the explanation says all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
}

impl Anomaly {
    pub fn new(name: &str, explanation: String, ops: Vec<Operation>) -> Self {
        Anomaly { name: name.to_string(), explanation, ops, steps: Vec::new() }
    }
}

/// A checker's verdict on one history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Which checker: `linearizable`, `sequential`, `causal`, `read-your-writes`, `serializable`, ...
    pub checker: String,
    /// The model, when the checker uses one.
    pub model: Option<String>,
    pub valid: Validity,
    /// How many operations the history has.
    pub ops: usize,
    /// Why the verdict is unknown, or other notes.
    pub reason: Option<String>,
    pub counterexample: Option<Counterexample>,
    pub anomalies: Vec<Anomaly>,
}

impl Verdict {
    pub fn new(checker: &str, model: Option<String>, ops: usize) -> Self {
        Verdict {
            checker: checker.to_string(),
            model,
            valid: Validity::Valid,
            ops,
            reason: None,
            counterexample: None,
            anomalies: Vec::new(),
        }
    }

    /// Builds a verdict from a list of anomalies: invalid when there is any.
    pub fn from_anomalies(checker: &str, ops: usize, anomalies: Vec<Anomaly>) -> Self {
        let mut verdict = Verdict::new(checker, None, ops);
        verdict.valid = if anomalies.is_empty() { Validity::Valid } else { Validity::Invalid };
        verdict.anomalies = anomalies;
        verdict
    }

    pub fn is_valid(&self) -> bool {
        self.valid == Validity::Valid
    }

    /// The verdict as a JSON object: checker, model, valid (true / false / "unknown"), ops, reason,
    /// counterexample, anomalies.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("checker".into(), json!(self.checker));
        if let Some(model) = &self.model {
            object.insert("model".into(), json!(model));
        }
        object.insert("valid".into(), self.valid.to_json());
        object.insert("ops".into(), json!(self.ops));
        if let Some(reason) = &self.reason {
            object.insert("reason".into(), json!(reason));
        }
        if let Some(counterexample) = &self.counterexample {
            object.insert(
                "counterexample".into(),
                serde_json::to_value(counterexample).expect("counterexamples serialise to JSON"),
            );
        }
        if !self.anomalies.is_empty() {
            object.insert(
                "anomalies".into(),
                serde_json::to_value(&self.anomalies).expect("anomalies serialise to JSON"),
            );
        }
        serde_json::Value::Object(object)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.checker)?;
        if let Some(model) = &self.model {
            write!(f, " ({model})")?;
        }
        writeln!(f, ": {} ({} operations)", self.valid, self.ops)?;
        if let Some(reason) = &self.reason {
            writeln!(f, "  {reason}")?;
        }
        if let Some(counterexample) = &self.counterexample {
            if let Some(key) = &counterexample.key {
                writeln!(f, "  key {key}:")?;
            }
            writeln!(f, "  longest linearizable prefix ({} ops):", counterexample.prefix.len())?;
            for placed in &counterexample.prefix {
                writeln!(f, "    {}    => {}", placed.op, placed.state_after)?;
            }
            writeln!(f, "  state after the prefix: {}", counterexample.state)?;
            writeln!(f, "  cannot place: {}", counterexample.unplaceable)?;
            writeln!(f, "  operations involved:")?;
            for op in &counterexample.involved {
                writeln!(f, "    {op}")?;
            }
        }
        for anomaly in &self.anomalies {
            writeln!(f, "  {}: {}", anomaly.name, anomaly.explanation)?;
            for step in &anomaly.steps {
                writeln!(f, "    - {step}")?;
            }
            for op in &anomaly.ops {
                writeln!(f, "    {op}")?;
            }
        }
        Ok(())
    }
}
