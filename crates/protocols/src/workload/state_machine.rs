//! The deterministic in-memory object store every replicated protocol applies client operations to,
//! so that Raft, Paxos, primary-backup, chain replication... all give an operation the same meaning
//! (the meaning the checkers' models give it), plus at-most-once execution per client request.

use super::{ClientRequest, ReplyResult};
use crate::spec::WorkloadKind;
use detsim_core::history::{Op, ProcessId, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every object of every workload kind, by key: registers and kv strings, counters (`Int`), sets
/// (sorted `List`), lists for list-append transactions (`List`), registers of rw transactions.
///
/// One store serves any workload, because the operation's `f` says how to read the object under its
/// key; a workload only ever uses one kind of object per key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    /// Decides what `add` means: an element into a set (set workload) or an amount onto a counter.
    kind: WorkloadKind,
    /// Objects by key (`Value::Nil` is the key of key-less operations). Absent means never written.
    /// Stored as a list of pairs: JSON map keys are strings, so `Int(0)` would come back `Str("0")`.
    #[serde(with = "pairs")]
    objects: BTreeMap<Value, Value>,
    /// Transaction objects live in their own name space, so a txn key never aliases a register key.
    #[serde(with = "pairs")]
    txn_objects: BTreeMap<Value, Value>,
    /// Per client process: the last request sequence number applied and its result. Processes are
    /// sequential, so one entry per process is enough to make retried or duplicated requests
    /// idempotent (the "client sessions" of the Raft paper, §6.3).
    sessions: BTreeMap<ProcessId, (u64, ReplyResult)>,
    /// Operations applied (not counting duplicates), for figures and tests.
    applied: u64,
}

/// Serde for maps keyed by [`Value`]: a list of `[key, value]` pairs, which round-trips through JSON
/// (durable storage, snapshots) where a JSON object would turn every key into a string.
mod pairs {
    use detsim_core::history::Value;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(map: &BTreeMap<Value, Value>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<Value, Value>, D::Error> {
        Ok(Vec::<(Value, Value)>::deserialize(deserializer)?.into_iter().collect())
    }
}

/// Whether an operation only reads (protocols may serve it without a log write, e.g. by read index).
pub fn is_read_only(op: &Op) -> bool {
    match op.f.as_str() {
        "read" | "get" => true,
        "txn" => op.value.as_list().is_some_and(|micro_ops| {
            micro_ops.iter().all(|m| m.as_list().and_then(|m| m.first()).and_then(Value::as_str) == Some("r"))
        }),
        _ => false,
    }
}

impl std::hash::Hash for StateMachine {
    // By hand because `WorkloadKind` (spec.rs) does not derive `Hash`; snapshots travel in messages.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.kind as u8).hash(state);
        self.objects.hash(state);
        self.txn_objects.hash(state);
        self.sessions.hash(state);
        self.applied.hash(state);
    }
}

impl Default for StateMachine {
    fn default() -> Self {
        StateMachine::new(WorkloadKind::Register)
    }
}

impl StateMachine {
    /// An empty store for clients running `kind`.
    pub fn new(kind: WorkloadKind) -> Self {
        StateMachine {
            kind,
            objects: BTreeMap::new(),
            txn_objects: BTreeMap::new(),
            sessions: BTreeMap::new(),
            applied: 0,
        }
    }

    /// How many distinct operations were applied.
    pub fn applied_count(&self) -> u64 {
        self.applied
    }

    /// The object under `key` (`None`: never written). For tests and debugging.
    pub fn object(&self, key: &Value) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Applies a client request at most once: a request whose (process, seq) was applied already
    /// gets the recorded result again instead of running twice. A request older than the process's
    /// last applied one can no longer be waited for; it gets an unknown-outcome reply and no effect.
    pub fn apply_request(&mut self, request: &ClientRequest) -> ReplyResult {
        if let Some((last_seq, last_result)) = self.sessions.get(&request.process) {
            if *last_seq == request.seq {
                return last_result.clone();
            }
            if *last_seq > request.seq {
                return ReplyResult::Unknown("stale-request".into());
            }
        }
        let result = self.apply(&request.op);
        // Reads are not remembered: re-running a read is harmless and keeps the table small.
        if !is_read_only(&request.op) {
            self.sessions.insert(request.process, (request.seq, result.clone()));
        }
        result
    }

    /// Applies `op` and returns its result: `Ok(value)` where `value` is what the history's `ok`
    /// record carries, or `Fail` when the operation certainly had no effect (a cas whose `from` did
    /// not match). Unknown functions fail without effect.
    pub fn apply(&mut self, op: &Op) -> ReplyResult {
        let key = op.key.clone().unwrap_or(Value::Nil);
        let result = match op.f.as_str() {
            "read" if self.kind == WorkloadKind::Set => {
                ReplyResult::Ok(self.objects.get(&key).cloned().unwrap_or(Value::List(Vec::new())))
            }
            "read" if self.kind == WorkloadKind::Counter => {
                ReplyResult::Ok(Value::Int(self.objects.get(&key).and_then(Value::as_int).unwrap_or(0)))
            }
            "read" | "get" => ReplyResult::Ok(self.objects.get(&key).cloned().unwrap_or(Value::Nil)),
            "write" | "put" => {
                self.objects.insert(key, op.value.clone());
                ReplyResult::Ok(op.value.clone())
            }
            "cas" => match op.value.as_list() {
                Some([from, to]) => {
                    let current = self.objects.get(&key).cloned().unwrap_or(Value::Nil);
                    if &current == from {
                        self.objects.insert(key, to.clone());
                        ReplyResult::Ok(op.value.clone())
                    } else {
                        ReplyResult::Fail("cas-mismatch".into())
                    }
                }
                _ => ReplyResult::Fail("cas needs [from to]".into()),
            },
            "append" => {
                let current = self.objects.remove(&key).unwrap_or(Value::Nil);
                // Same rule as the checker's kv model: strings concatenate, lists grow.
                let next = match (current, &op.value) {
                    (Value::Nil, Value::Str(suffix)) => Value::Str(suffix.clone()),
                    (Value::Str(prefix), Value::Str(suffix)) => Value::Str(format!("{prefix}{suffix}")),
                    (Value::List(mut items), element) => {
                        items.push(element.clone());
                        Value::List(items)
                    }
                    (Value::Nil, element) => Value::List(vec![element.clone()]),
                    (other, _) => {
                        self.objects.insert(key, other);
                        return ReplyResult::Fail("append to a non-list value".into());
                    }
                };
                self.objects.insert(key, next);
                ReplyResult::Ok(op.value.clone())
            }
            "add" if self.kind == WorkloadKind::Set => {
                let entry = self.objects.entry(key).or_insert(Value::List(Vec::new()));
                let Value::List(items) = entry else {
                    return ReplyResult::Fail("add to a non-set value".into());
                };
                // Kept sorted so reads are canonical (the set checker compares as sets anyway).
                if let Err(position) = items.binary_search(&op.value) {
                    items.insert(position, op.value.clone());
                }
                ReplyResult::Ok(op.value.clone())
            }
            "add" | "inc" | "increment" => {
                // Counter: an integer amount (nil = 1).
                let Some(amount) = (match &op.value {
                    Value::Nil => Some(1),
                    v => v.as_int(),
                }) else {
                    return ReplyResult::Fail("a counter add takes an integer".into());
                };
                let current = self.objects.get(&key).and_then(Value::as_int).unwrap_or(0);
                self.objects.insert(key, Value::Int(current.saturating_add(amount)));
                ReplyResult::Ok(op.value.clone())
            }
            "txn" => self.apply_txn(op),
            other => ReplyResult::Fail(format!("unknown operation {other:?}")),
        };
        if !matches!(result, ReplyResult::Fail(_)) && !is_read_only(op) {
            self.applied += 1;
        }
        result
    }

    /// Runs a transaction's micro-ops in order, atomically (nothing can interleave: the caller applies
    /// whole operations one at a time). Reads are filled in.
    fn apply_txn(&mut self, op: &Op) -> ReplyResult {
        let Some(micro_ops) = op.value.as_list() else {
            return ReplyResult::Fail("txn needs a list of micro-ops".into());
        };
        let mut out = Vec::with_capacity(micro_ops.len());
        for micro in micro_ops {
            let Some([Value::Str(kind), key, value]) = micro.as_list() else {
                return ReplyResult::Fail(format!("bad micro-op {micro}"));
            };
            let filled = match kind.as_str() {
                "r" => self.txn_objects.get(key).cloned().unwrap_or(Value::Nil),
                "w" => {
                    self.txn_objects.insert(key.clone(), value.clone());
                    value.clone()
                }
                "append" => {
                    let entry = self.txn_objects.entry(key.clone()).or_insert(Value::List(Vec::new()));
                    match entry {
                        Value::List(items) => items.push(value.clone()),
                        _ => *entry = Value::List(vec![value.clone()]),
                    }
                    value.clone()
                }
                _ => return ReplyResult::Fail(format!("bad micro-op {micro}")),
            };
            out.push(Value::List(vec![Value::Str(kind.clone()), key.clone(), filled]));
        }
        ReplyResult::Ok(Value::List(out))
    }
}
