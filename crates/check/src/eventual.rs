//! Eventual convergence: once the last fault has healed and updates have stopped, every process's
//! final read of a key sees the same value, and that value includes every acknowledged update.

use crate::model::Model;
use crate::objects::{access, by_key, cap_anomalies, elements, register_value, Access, KeyOps, ObjectKind, Tokens};
use crate::ops::{Operation, Outcome};
use crate::verdict::{Anomaly, Validity, Verdict};
use detsim_core::history::{ProcessId, Value};
use std::collections::BTreeMap;

/// Options of [`check_eventual`].
#[derive(Clone, Debug, Default)]
pub struct EventualOptions {
    /// True time (ns) at which the last fault healed; `None` when the run had no faults (or they
    /// are not known). Reads invoked before `heal_ns + settle_ns` are never final.
    pub heal_ns: Option<u64>,
    /// Grace period after the heal before reads count as final (anti-entropy, hinted handoff, ...).
    pub settle_ns: u64,
    /// The object the history works on; `None` infers it per key from the functions and values.
    pub model: Option<Model>,
    /// The value of a register before any write (nil, or "" for a key-value store).
    pub initial: Value,
}

impl EventualOptions {
    /// Options for a run whose faults were `faults`: final reads start after the last one ends.
    pub fn after_faults(faults: &[crate::availability::FaultWindow]) -> Self {
        EventualOptions { heal_ns: faults.iter().map(|window| window.end_ns).max(), ..EventualOptions::default() }
    }
}

/// How many anomalies a verdict lists at most.
const ANOMALY_LIMIT: usize = 16;

/// Checks eventual convergence.
///
/// For each key, the *quiet point* is the later of `heal_ns + settle_ns` and the end of the key's
/// last update (its invocation, for an update whose outcome is unknown). Each process's last `ok`
/// read of the key invoked at or after the quiet point is a *final read*. The history converges when,
/// for every key:
///
/// - all final reads agree (`not-converged` otherwise);
/// - the agreed value includes every acknowledged update (`lost-write`): for a set or list, every
///   element added by an `ok` op; for a counter, at least the sum of the `ok` increments and at most
///   that plus the unknown ones; for a register, the value of a write that no acknowledged write
///   follows in real time;
/// - it holds nothing that was never written (`garbage-read`) or written only by a failed op
///   (`failed-write-visible`).
///
/// Keys with updates but no final read cannot be judged; they are named in the verdict's reason,
/// and when no key could be judged at all the verdict is "unknown". Keys that mix puts and appends
/// (or are queues) are checked for agreement only.
pub fn check_eventual(ops: &[Operation], options: &EventualOptions) -> Verdict {
    let mut anomalies = Vec::new();
    let mut unjudged = Vec::new();
    let mut judged = 0usize;
    for key_ops in by_key(ops, options.model) {
        match check_key(ops, &key_ops, options, &mut anomalies) {
            KeyJudgement::Judged => judged += 1,
            KeyJudgement::NoFinalReads => unjudged.push(describe_key(&key_ops.key)),
            KeyJudgement::NothingToJudge => {}
        }
    }
    let (anomalies, capped) = cap_anomalies(anomalies, ANOMALY_LIMIT);
    let mut verdict = Verdict::from_anomalies("eventual", ops.len(), anomalies);
    verdict.model = options.model.map(|model| model.to_string());
    let mut notes: Vec<String> = capped.into_iter().collect();
    if !unjudged.is_empty() {
        notes.push(format!(
            "no final read (an ok read after the quiet point) of key {}, so it could not be judged",
            unjudged.join(", ")
        ));
        if judged == 0 && verdict.valid == Validity::Valid {
            verdict.valid = Validity::Unknown;
        }
    }
    if !notes.is_empty() {
        verdict.reason = Some(notes.join("; "));
    }
    verdict
}

/// The value of a never-written register: `initial`, or "" for a key-value store.
pub(crate) fn effective_initial(model: Option<Model>, initial: &Value) -> Value {
    if model == Some(Model::KeyValue) && initial.is_nil() {
        Value::Str(String::new())
    } else {
        initial.clone()
    }
}

pub(crate) fn describe_key(key: &Option<Value>) -> String {
    key.as_ref().map_or_else(|| "nil".to_string(), Value::to_string)
}

enum KeyJudgement {
    Judged,
    NoFinalReads,
    NothingToJudge,
}

/// The final reads of a key: each process's last ok read invoked at or after the quiet point, in
/// process order.
pub(crate) fn final_reads(ops: &[Operation], key_ops: &KeyOps, not_before_ns: u64) -> Vec<usize> {
    let quiet_ns = key_ops
        .ops
        .iter()
        .map(|&i| &ops[i])
        .filter(|op| access(op, key_ops.kind).is_update() && op.outcome != Outcome::Fail)
        .map(|op| op.complete_ns.filter(|_| op.outcome == Outcome::Ok).unwrap_or(op.invoke_ns))
        .fold(not_before_ns, u64::max);
    let mut last_by_process: BTreeMap<ProcessId, usize> = BTreeMap::new();
    for &index in &key_ops.ops {
        let op = &ops[index];
        if op.outcome == Outcome::Ok && access(op, key_ops.kind).is_read() && op.invoke_ns >= quiet_ns {
            last_by_process.insert(op.process, index);
        }
    }
    last_by_process.into_values().collect()
}

fn check_key(
    ops: &[Operation],
    key_ops: &KeyOps,
    options: &EventualOptions,
    anomalies: &mut Vec<Anomaly>,
) -> KeyJudgement {
    let kind = key_ops.kind;
    let key = describe_key(&key_ops.key);
    let not_before_ns = options.heal_ns.map_or(0, |heal| heal.saturating_add(options.settle_ns));
    let finals = final_reads(ops, key_ops, not_before_ns);
    let has_updates = key_ops.ops.iter().any(|&i| access(&ops[i], kind).is_update());
    if finals.is_empty() {
        return if has_updates { KeyJudgement::NoFinalReads } else { KeyJudgement::NothingToJudge };
    }
    let updates: Vec<&Operation> =
        key_ops.ops.iter().map(|&i| &ops[i]).filter(|op| access(op, kind).is_update()).collect();
    let tokens = Tokens::new(updates.iter().filter_map(|op| match access(op, kind) {
        Access::Append(value) => Some(&op.input).filter(|_| value.as_str().is_some()),
        _ => None,
    }));
    // Agreement, compared the way the object's kind compares values.
    let initial = effective_initial(options.model, &options.initial);
    let normal = |op: &Operation| -> Value {
        match kind {
            ObjectKind::Set => elements(&op.output, kind, &tokens)
                .map_or_else(|| op.output.clone(), |items| Value::List(items.as_set().into_iter().cloned().collect())),
            ObjectKind::List => {
                elements(&op.output, kind, &tokens).map_or_else(|| op.output.clone(), |items| Value::List(items.items))
            }
            ObjectKind::Counter => register_value(&op.output, &Value::Int(0)),
            ObjectKind::Register | ObjectKind::Mixed => register_value(&op.output, &initial),
        }
    };
    let first = &ops[finals[0]];
    let agreed = normal(first);
    let disagreeing: Vec<&Operation> = finals.iter().map(|&i| &ops[i]).filter(|op| normal(op) != agreed).collect();
    if !disagreeing.is_empty() {
        let mut involved = vec![first.clone()];
        involved.extend(disagreeing.iter().map(|&op| op.clone()));
        anomalies.push(Anomaly {
            name: "not-converged".into(),
            explanation: format!(
                "key {key}: final reads disagree: #{} saw {}, but #{} saw {}",
                first.id, first.output, disagreeing[0].id, disagreeing[0].output
            ),
            ops: involved,
            steps: Vec::new(),
        });
        return KeyJudgement::Judged;
    }
    match kind {
        ObjectKind::Set | ObjectKind::List => check_collection(first, &updates, kind, &tokens, &key, anomalies),
        ObjectKind::Counter => check_counter(first, &updates, &key, anomalies),
        ObjectKind::Register => check_register(first, &agreed, &updates, &initial, &key, anomalies),
        ObjectKind::Mixed => {}
    }
    KeyJudgement::Judged
}

fn element_of(op: &Operation, kind: ObjectKind) -> Option<Value> {
    match access(op, kind) {
        Access::Append(value) | Access::Add(value) => Some(value),
        _ => None,
    }
}

fn check_collection(
    final_read: &Operation,
    updates: &[&Operation],
    kind: ObjectKind,
    tokens: &Tokens,
    key: &str,
    anomalies: &mut Vec<Anomaly>,
) {
    let Some(seen) = elements(&final_read.output, kind, tokens) else {
        anomalies.push(Anomaly {
            name: "garbage-read".into(),
            explanation: format!(
                "key {key}: final read #{} saw {}, which is not made of appended values",
                final_read.id, final_read.output
            ),
            ops: vec![final_read.clone()],
            steps: Vec::new(),
        });
        return;
    };
    let lost: Vec<&Operation> = updates
        .iter()
        .copied()
        .filter(|op| op.outcome == Outcome::Ok && element_of(op, kind).is_some_and(|element| !seen.contains(&element)))
        .collect();
    if !lost.is_empty() {
        let mut involved: Vec<Operation> = lost.iter().map(|&op| op.clone()).collect();
        involved.push(final_read.clone());
        anomalies.push(Anomaly {
            name: "lost-write".into(),
            explanation: format!(
                "key {key}: {} acknowledged update(s) missing from the final value {} (read by #{}), first #{}",
                lost.len(),
                final_read.output,
                final_read.id,
                lost[0].id
            ),
            ops: involved,
            steps: Vec::new(),
        });
    }
    for element in &seen.items {
        let writers: Vec<&Operation> =
            updates.iter().copied().filter(|op| element_of(op, kind).as_ref() == Some(element)).collect();
        if writers.is_empty() {
            anomalies.push(Anomaly {
                name: "garbage-read".into(),
                explanation: format!(
                    "key {key}: final read #{} holds {element}, which no operation added",
                    final_read.id
                ),
                ops: vec![final_read.clone()],
                steps: Vec::new(),
            });
        } else if writers.iter().all(|op| op.outcome == Outcome::Fail) {
            let mut involved: Vec<Operation> = writers.iter().map(|&op| op.clone()).collect();
            involved.push(final_read.clone());
            anomalies.push(Anomaly {
                name: "failed-write-visible".into(),
                explanation: format!(
                    "key {key}: final read #{} holds {element}, added only by failed #{}",
                    final_read.id, writers[0].id
                ),
                ops: involved,
                steps: Vec::new(),
            });
        }
    }
}

fn check_counter(final_read: &Operation, updates: &[&Operation], key: &str, anomalies: &mut Vec<Anomaly>) {
    let Some(count) = register_value(&final_read.output, &Value::Int(0)).as_int() else {
        anomalies.push(Anomaly {
            name: "garbage-read".into(),
            explanation: format!("key {key}: final read #{} of a counter saw {}", final_read.id, final_read.output),
            ops: vec![final_read.clone()],
            steps: Vec::new(),
        });
        return;
    };
    let (mut low, mut high) = (0i64, 0i64);
    for op in updates {
        let Access::Increment(amount) = access(op, ObjectKind::Counter) else { continue };
        match op.outcome {
            Outcome::Ok => {
                low = low.saturating_add(amount);
                high = high.saturating_add(amount);
            }
            Outcome::Info if amount >= 0 => high = high.saturating_add(amount),
            Outcome::Info => low = low.saturating_add(amount),
            Outcome::Fail => {}
        }
    }
    if count < low || count > high {
        let name = if count < low { "lost-write" } else { "failed-write-visible" };
        let mut involved: Vec<Operation> = updates.iter().map(|&op| op.clone()).collect();
        involved.push(final_read.clone());
        anomalies.push(Anomaly {
            name: name.into(),
            explanation: format!(
                "key {key}: final read #{} saw {count}, but the acknowledged and unknown increments allow only {low}..={high}",
                final_read.id
            ),
            ops: involved, steps: Vec::new() });
    }
}

fn check_register(
    final_read: &Operation,
    agreed: &Value,
    updates: &[&Operation],
    initial: &Value,
    key: &str,
    anomalies: &mut Vec<Anomaly>,
) {
    let written = |op: &Operation| -> Option<Value> {
        match access(op, ObjectKind::Register) {
            Access::Write(value) | Access::Cas { to: value, .. } => Some(value),
            _ => None,
        }
    };
    let writers: Vec<&Operation> = updates.iter().copied().filter(|op| written(op).as_ref() == Some(agreed)).collect();
    let acknowledged: Vec<&Operation> = updates.iter().copied().filter(|op| op.outcome == Outcome::Ok).collect();
    if writers.is_empty() {
        if agreed == initial {
            if let Some(first) = acknowledged.first() {
                anomalies.push(Anomaly {
                    name: "lost-write".into(),
                    explanation: format!(
                        "key {key}: final read #{} saw the initial value {agreed}, losing every write (#{} was acknowledged)",
                        final_read.id, first.id
                    ),
                    ops: vec![(*first).clone(), final_read.clone()], steps: Vec::new() });
            }
        } else {
            anomalies.push(Anomaly {
                name: "garbage-read".into(),
                explanation: format!("key {key}: final read #{} saw {agreed}, which nothing wrote", final_read.id),
                ops: vec![final_read.clone()],
                steps: Vec::new(),
            });
        }
        return;
    }
    if writers.iter().all(|op| op.outcome == Outcome::Fail) {
        anomalies.push(Anomaly {
            name: "failed-write-visible".into(),
            explanation: format!(
                "key {key}: final read #{} saw {agreed}, written only by failed #{}",
                final_read.id, writers[0].id
            ),
            ops: vec![writers[0].clone(), final_read.clone()],
            steps: Vec::new(),
        });
        return;
    }
    // The writer of the final value that ended last: a later acknowledged write that began after
    // it ended should have won.
    let writer = writers
        .iter()
        .copied()
        .filter(|op| op.outcome != Outcome::Fail)
        .max_by_key(|op| op.complete_ns.filter(|_| op.outcome == Outcome::Ok).unwrap_or(u64::MAX))
        .expect("some writer did not fail");
    let writer_end_ns = writer.complete_ns.filter(|_| writer.outcome == Outcome::Ok).unwrap_or(u64::MAX);
    if let Some(later) =
        acknowledged.iter().find(|op| op.invoke_ns > writer_end_ns && written(op).as_ref() != Some(agreed))
    {
        anomalies.push(Anomaly {
            name: "lost-write".into(),
            explanation: format!(
                "key {key}: the final value {agreed} (written by #{}) won over #{}, which was acknowledged and began after #{} ended",
                writer.id, later.id, writer.id
            ),
            ops: vec![writer.clone(), (*later).clone(), final_read.clone()], steps: Vec::new() });
    }
}
