//! How the checkers without a sequential model (eventual, session, causal, staleness) see plain
//! operations: per key, each operation reads or updates a register, a set, a list (append-only,
//! strings included) or a counter.

use crate::model::Model;
use crate::ops::{Operation, Outcome};
use detsim_core::history::Value;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What kind of object a key holds, as far as the model-free checkers can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    /// write / put / cas and read / get: the value is the last write's.
    Register,
    /// add and read (the read returns every element).
    Set,
    /// append and read; the read returns the elements in order: a list, or a string that is the
    /// concatenation of the appended strings.
    List,
    /// add / inc and read (the read returns the count).
    Counter,
    /// puts and appends on one key, or a queue: only convergence of the final reads is checked.
    Mixed,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Register => "register",
            ObjectKind::Set => "set",
            ObjectKind::List => "list",
            ObjectKind::Counter => "counter",
            ObjectKind::Mixed => "mixed",
        })
    }
}

/// What one operation does to its key's object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// A read; the value is what it saw (meaningful when the op is ok).
    Read(Value),
    Write(Value),
    /// A compare-and-set `[from to]`: a read of `from` and a write of `to`.
    Cas {
        from: Value,
        to: Value,
    },
    Append(Value),
    Add(Value),
    Increment(i64),
    /// Anything else (a dequeue, a transaction, an unknown function).
    Other,
}

impl Access {
    pub fn is_read(&self) -> bool {
        matches!(self, Access::Read(_))
    }

    pub fn is_update(&self) -> bool {
        !matches!(self, Access::Read(_) | Access::Other)
    }
}

fn is_read_function(f: &str) -> bool {
    matches!(f, "read" | "get")
}

/// The access `op` makes, given the kind of its key's object.
pub(crate) fn access(op: &Operation, kind: ObjectKind) -> Access {
    match op.f.as_str() {
        f if is_read_function(f) => Access::Read(op.output.clone()),
        "write" | "put" => Access::Write(op.input.clone()),
        "cas" => match op.input.as_list() {
            Some([from, to]) => Access::Cas { from: from.clone(), to: to.clone() },
            _ => Access::Other,
        },
        "append" => Access::Append(op.input.clone()),
        "add" if kind != ObjectKind::Counter => Access::Add(op.input.clone()),
        "add" | "inc" | "increment" => match &op.input {
            Value::Nil => Access::Increment(1),
            Value::Int(amount) => Access::Increment(*amount),
            _ => Access::Other,
        },
        _ => Access::Other,
    }
}

/// The operations of one key, in invocation order, with the kind of its object.
pub(crate) struct KeyOps {
    pub key: Option<Value>,
    pub kind: ObjectKind,
    /// Indices into the history's operations.
    pub ops: Vec<usize>,
}

/// Groups operations by key (in key order) and tells each key's kind. `model`, when given, decides
/// the kind; otherwise it is inferred from the functions used and the values read.
pub(crate) fn by_key(ops: &[Operation], model: Option<Model>) -> Vec<KeyOps> {
    let mut groups: BTreeMap<Option<Value>, Vec<usize>> = BTreeMap::new();
    for (index, op) in ops.iter().enumerate() {
        if op.f == "txn" {
            continue;
        }
        groups.entry(op.key.clone()).or_default().push(index);
    }
    groups
        .into_iter()
        .map(|(key, indices)| {
            let kind = infer_kind(indices.iter().map(|&i| &ops[i]), model);
            KeyOps { key, kind, ops: indices }
        })
        .collect()
}

fn infer_kind<'a>(ops: impl Iterator<Item = &'a Operation> + Clone, model: Option<Model>) -> ObjectKind {
    let has = |name: &[&str]| ops.clone().any(|op| name.contains(&op.f.as_str()));
    let has_write = has(&["write", "put", "cas"]);
    let has_append = has(&["append"]);
    match model {
        Some(Model::Register | Model::CasRegister) => return ObjectKind::Register,
        Some(Model::Set) => return ObjectKind::Set,
        Some(Model::Counter) => return ObjectKind::Counter,
        Some(Model::Queue) => return ObjectKind::Mixed,
        Some(Model::KeyValue) | None => {}
    }
    if has_write && has_append || has(&["enqueue", "dequeue"]) {
        return ObjectKind::Mixed;
    }
    if has_append {
        return ObjectKind::List;
    }
    let int_read =
        ops.clone().any(|op| is_read_function(&op.f) && op.outcome == Outcome::Ok && op.output.as_int().is_some());
    if has(&["inc", "increment"]) || has(&["add"]) && int_read {
        return ObjectKind::Counter;
    }
    if has(&["add"]) {
        return ObjectKind::Set;
    }
    ObjectKind::Register
}

/// What a read of a collection saw: its elements, in order for a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Elements {
    pub items: Vec<Value>,
    /// Position of each element (the first, when an element appears twice).
    positions: FxHashMap<Value, usize>,
    /// Elements that appear more than once.
    pub duplicates: Vec<Value>,
}

impl Elements {
    pub fn new(items: Vec<Value>) -> Self {
        let mut positions = FxHashMap::default();
        let mut duplicates = Vec::new();
        for (position, item) in items.iter().enumerate() {
            if positions.insert(item.clone(), position).is_some() {
                duplicates.push(item.clone());
            }
        }
        for (position, item) in items.iter().enumerate().rev() {
            positions.insert(item.clone(), position);
        }
        Elements { items, positions, duplicates }
    }

    pub fn contains(&self, element: &Value) -> bool {
        self.positions.contains_key(element)
    }

    pub fn position(&self, element: &Value) -> Option<usize> {
        self.positions.get(element).copied()
    }

    /// True when every element of `other` is here (as sets).
    pub fn includes(&self, other: &Elements) -> bool {
        other.items.iter().all(|item| self.contains(item))
    }

    /// True when `other` is a prefix of this list.
    pub fn extends(&self, other: &Elements) -> bool {
        self.items.starts_with(&other.items)
    }

    pub fn as_set(&self) -> BTreeSet<&Value> {
        self.items.iter().collect()
    }
}

/// Reads a collection value as its elements. A list string (the concatenation of appended strings)
/// is split into the appended strings it is made of, by `tokens`; `None` when it cannot be split
/// (it holds something never appended) or the value has the wrong shape.
pub(crate) fn elements(value: &Value, kind: ObjectKind, tokens: &Tokens) -> Option<Elements> {
    match (value, kind) {
        (Value::Nil, _) => Some(Elements::new(Vec::new())),
        (Value::List(items), ObjectKind::Set | ObjectKind::List) => Some(Elements::new(items.clone())),
        (Value::Str(text), ObjectKind::List) => tokens.split(text).map(Elements::new),
        _ => None,
    }
}

/// The strings appended to one key, for splitting a string read back into its appends.
#[derive(Default)]
pub(crate) struct Tokens {
    strings: BTreeSet<String>,
    lengths: BTreeSet<usize>,
}

impl Tokens {
    pub fn new<'a>(appended: impl Iterator<Item = &'a Value>) -> Self {
        let mut tokens = Tokens::default();
        for value in appended {
            if let Value::Str(text) = value {
                if !text.is_empty() {
                    tokens.lengths.insert(text.len());
                    tokens.strings.insert(text.clone());
                }
            }
        }
        tokens
    }

    /// Splits `text` into appended strings (dynamic programming over byte positions, preferring the
    /// longest token at each step from the end), or `None` when no split exists.
    pub fn split(&self, text: &str) -> Option<Vec<Value>> {
        let bytes = text.len();
        // best[i]: the length of a token ending at i from which position 0 is reachable.
        let mut reachable_from_start = vec![None::<usize>; bytes + 1];
        reachable_from_start[0] = Some(0);
        for end in 1..=bytes {
            if !text.is_char_boundary(end) {
                continue;
            }
            for &length in self.lengths.iter().rev() {
                if length > end {
                    continue;
                }
                let start = end - length;
                if reachable_from_start[start].is_some()
                    && text.is_char_boundary(start)
                    && self.strings.contains(&text[start..end])
                {
                    reachable_from_start[end] = Some(length);
                    break;
                }
            }
        }
        reachable_from_start[bytes]?;
        let mut pieces = Vec::new();
        let mut end = bytes;
        while end > 0 {
            let length = reachable_from_start[end].expect("a reachable position has a token ending there");
            pieces.push(Value::Str(text[end - length..end].to_string()));
            end -= length;
        }
        pieces.reverse();
        Some(pieces)
    }
}

/// The normalised value of a register read: a key-value store's never-written key reads as "".
pub(crate) fn register_value(value: &Value, initial: &Value) -> Value {
    if value.is_nil() {
        initial.clone()
    } else {
        value.clone()
    }
}

/// Caps a list of anomalies for a report and says how many there were.
pub(crate) fn cap_anomalies<T>(mut anomalies: Vec<T>, limit: usize) -> (Vec<T>, Option<String>) {
    let total = anomalies.len();
    if total > limit {
        anomalies.truncate(limit);
        (anomalies, Some(format!("{total} anomalies found; the first {limit} are shown")))
    } else {
        (anomalies, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_split_into_their_appends() {
        let appended = [Value::from(",1"), Value::from(",12"), Value::from(",2")];
        let tokens = Tokens::new(appended.iter());
        assert_eq!(tokens.split(",12,1"), Some(vec![Value::from(",12"), Value::from(",1")]));
        assert_eq!(tokens.split(",1,2"), Some(vec![Value::from(",1"), Value::from(",2")]));
        assert_eq!(tokens.split(""), Some(vec![]));
        assert_eq!(tokens.split(",3"), None);
        assert_eq!(tokens.split(",1,"), None);
    }

    #[test]
    fn elements_know_order_and_duplicates() {
        let elements = Elements::new(vec![Value::Int(3), Value::Int(1), Value::Int(3)]);
        assert_eq!(elements.position(&Value::Int(3)), Some(0));
        assert_eq!(elements.duplicates, vec![Value::Int(3)]);
        assert!(elements.extends(&Elements::new(vec![Value::Int(3)])));
        assert!(!elements.extends(&Elements::new(vec![Value::Int(1)])));
        assert!(elements.includes(&Elements::new(vec![Value::Int(1)])));
    }
}
