//! Session guarantees (Terry et al., 1994): read-your-writes, monotonic reads, monotonic writes and
//! writes-follow-reads, per key, for sets, append-only lists and registers with unique written values.

use crate::eventual::{describe_key, effective_initial, final_reads};
use crate::graph::{shortest_path, Components};
use crate::model::Model;
use crate::objects::{
    access, by_key, cap_anomalies, elements, register_value, Access, Elements, KeyOps, ObjectKind, Tokens,
};
use crate::ops::{Operation, Outcome};
use crate::verdict::{Anomaly, Validity, Verdict};
use detsim_core::history::{ProcessId, Value};
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashSet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// One session guarantee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SessionGuarantee {
    /// A process's read reflects every write it made before (to that key).
    ReadYourWrites,
    /// A process's successive reads of a key never go back to an older version.
    MonotonicReads,
    /// A process's writes to a key take effect in the order it made them.
    MonotonicWrites,
    /// A write a process makes after a read is ordered after the writes that read saw.
    WritesFollowReads,
}

impl SessionGuarantee {
    pub const ALL: [SessionGuarantee; 4] = [
        SessionGuarantee::ReadYourWrites,
        SessionGuarantee::MonotonicReads,
        SessionGuarantee::MonotonicWrites,
        SessionGuarantee::WritesFollowReads,
    ];

    /// The checker's name, as verdicts and the CLI spell it (`read-your-writes`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SessionGuarantee::ReadYourWrites => "read-your-writes",
            SessionGuarantee::MonotonicReads => "monotonic-reads",
            SessionGuarantee::MonotonicWrites => "monotonic-writes",
            SessionGuarantee::WritesFollowReads => "writes-follow-reads",
        }
    }
}

impl fmt::Display for SessionGuarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SessionGuarantee {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SessionGuarantee::ALL.into_iter().find(|g| g.name() == text).ok_or_else(|| {
            format!(
                "unknown session guarantee {text:?} (expected read-your-writes, monotonic-reads, monotonic-writes or writes-follow-reads)"
            )
        })
    }
}

/// Options of [`check_session`].
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// The object the history works on; `None` infers it per key.
    pub model: Option<Model>,
    /// The value of a register before any write (nil; "" for a key-value store).
    pub initial: Value,
}

const ANOMALY_LIMIT: usize = 16;

/// The most ordering constraints a register key may have (memory bound); past it the key is not
/// judged.
const MAX_VERSION_EDGES: usize = 4_000_000;

/// Checks one session guarantee. A *session* is a client process; only acknowledged (`ok`) writes
/// and `ok` reads count.
///
/// - Sets and append-only lists (strings made of appended strings included) show their history in
///   every read, so each guarantee is checked directly: read-your-writes, a read holds the process's
///   earlier appends; monotonic reads, a read extends (a list) or includes (a set) the process's
///   previous read; monotonic writes, any read holding a process's append also holds its previous
///   append, before it; writes-follow-reads, any read holding an append also holds what the
///   appending process had read before it, before it.
/// - Registers need unique written values. The guarantee holds when some order of each key's
///   versions (the initial value first) agrees with every constraint the guarantee draws from the
///   sessions: a write before a read of the same process (read-your-writes), two reads
///   (monotonic reads), two writes (monotonic writes), a read before a write (writes-follow-reads);
///   a successful cas orders its `from` before its `to`; and when the final reads agree, the final
///   value comes after every acknowledged write (how a lost or reordered write shows). A cycle is a
///   violation, reported with the operations behind each of its edges.
/// - Counters (non-negative increments): a read never shows less than the process's acknowledged
///   increments (read-your-writes) or than its previous read (monotonic reads).
///
/// Keys it cannot judge (puts mixed with appends, queues, registers with repeated values) are named
/// in the verdict's reason; when no key can be judged, the verdict is "unknown".
pub fn check_session(ops: &[Operation], guarantee: SessionGuarantee, options: &SessionOptions) -> Verdict {
    let mut anomalies = Vec::new();
    let mut unjudged = Vec::new();
    let mut judged = 0usize;
    for key_ops in by_key(ops, options.model) {
        let outcome = match key_ops.kind {
            ObjectKind::Set | ObjectKind::List => {
                check_collection(ops, &key_ops, guarantee, &mut anomalies);
                Ok(())
            }
            ObjectKind::Register => check_register(ops, &key_ops, guarantee, options, &mut anomalies),
            ObjectKind::Counter => check_counter(ops, &key_ops, guarantee, &mut anomalies),
            ObjectKind::Mixed => Err("it mixes puts and appends (or is a queue)".to_string()),
        };
        match outcome {
            Ok(()) => judged += 1,
            Err(why) => unjudged.push(format!("key {}: {why}", describe_key(&key_ops.key))),
        }
    }
    let (anomalies, capped) = cap_anomalies(anomalies, ANOMALY_LIMIT);
    let mut verdict = Verdict::from_anomalies(guarantee.name(), ops.len(), anomalies);
    verdict.model = options.model.map(|model| model.to_string());
    let mut notes: Vec<String> = capped.into_iter().collect();
    if !unjudged.is_empty() {
        notes.push(format!("not judged: {}", unjudged.join("; ")));
        if judged == 0 && verdict.valid == Validity::Valid {
            verdict.valid = Validity::Unknown;
        }
    }
    if !notes.is_empty() {
        verdict.reason = Some(notes.join("; "));
    }
    verdict
}

/// The key's operations of each process, in process order.
fn sessions<'a>(ops: &'a [Operation], key_ops: &KeyOps) -> BTreeMap<ProcessId, Vec<&'a Operation>> {
    let mut sessions: BTreeMap<ProcessId, Vec<&Operation>> = BTreeMap::new();
    for &index in &key_ops.ops {
        sessions.entry(ops[index].process).or_default().push(&ops[index]);
    }
    sessions
}

fn anomaly(guarantee: SessionGuarantee, explanation: String, ops: &[&Operation]) -> Anomaly {
    Anomaly::new(guarantee.name(), explanation, ops.iter().map(|&op| op.clone()).collect())
}

fn check_collection(ops: &[Operation], key_ops: &KeyOps, guarantee: SessionGuarantee, anomalies: &mut Vec<Anomaly>) {
    let kind = key_ops.kind;
    let ordered = kind == ObjectKind::List;
    let key = describe_key(&key_ops.key);
    let tokens = Tokens::new(key_ops.ops.iter().map(|&i| &ops[i]).filter(|op| op.f == "append").map(|op| &op.input));
    let element_of = |op: &Operation| match access(op, kind) {
        Access::Append(value) | Access::Add(value) if op.outcome == Outcome::Ok => Some(value),
        _ => None,
    };
    // Every ok read that parses, by op id.
    let reads: BTreeMap<usize, (&Operation, Elements)> = key_ops
        .ops
        .iter()
        .map(|&i| &ops[i])
        .filter(|op| op.outcome == Outcome::Ok && access(op, kind).is_read())
        .filter_map(|op| elements(&op.output, kind, &tokens).map(|seen| (op.id, (op, seen))))
        .collect();
    let sessions = sessions(ops, key_ops);
    match guarantee {
        SessionGuarantee::ReadYourWrites => {
            for session in sessions.values() {
                let mut own: Vec<(Value, &Operation)> = Vec::new();
                for &op in session {
                    if let Some(element) = element_of(op) {
                        own.push((element, op));
                    } else if let Some((_, seen)) = reads.get(&op.id) {
                        if let Some((element, write)) = own.iter().find(|(element, _)| !seen.contains(element)) {
                            anomalies.push(anomaly(
                                guarantee,
                                format!(
                                    "key {key}: p{} added {element} (#{}) but its later read #{} saw {} without it",
                                    op.process, write.id, op.id, op.output
                                ),
                                &[write, op],
                            ));
                        }
                    }
                }
            }
        }
        SessionGuarantee::MonotonicReads => {
            for session in sessions.values() {
                let mut previous: Option<(&Operation, &Elements)> = None;
                for &op in session {
                    let Some((_, seen)) = reads.get(&op.id) else { continue };
                    if let Some((before, before_seen)) = previous {
                        let fine = if ordered { seen.extends(before_seen) } else { seen.includes(before_seen) };
                        if !fine {
                            anomalies.push(anomaly(
                                guarantee,
                                format!(
                                    "key {key}: p{} read {} (#{}) and then {} (#{}), which does not {} it",
                                    op.process,
                                    before.output,
                                    before.id,
                                    op.output,
                                    op.id,
                                    if ordered { "extend" } else { "include" }
                                ),
                                &[before, op],
                            ));
                        }
                    }
                    previous = Some((op, seen));
                }
            }
        }
        SessionGuarantee::MonotonicWrites | SessionGuarantee::WritesFollowReads => {
            // For each acknowledged append: what must be visible with it, and the ops that say so.
            type Needs<'o> = Vec<(Vec<Value>, Vec<&'o Operation>)>;
            let mut required: BTreeMap<Value, Needs> = BTreeMap::new();
            for session in sessions.values() {
                let mut previous_write: Option<(Value, &Operation)> = None;
                let mut previous_read: Option<&Operation> = None;
                for &op in session {
                    if let Some(element) = element_of(op) {
                        if guarantee == SessionGuarantee::MonotonicWrites {
                            if let Some((before, before_op)) = &previous_write {
                                required
                                    .entry(element.clone())
                                    .or_default()
                                    .push((vec![before.clone()], vec![before_op, op]));
                            }
                        } else if let Some(read) = previous_read {
                            let seen = reads[&read.id].1.items.clone();
                            if !seen.is_empty() {
                                required.entry(element.clone()).or_default().push((seen, vec![read, op]));
                            }
                        }
                        previous_write = Some((element, op));
                    } else if reads.contains_key(&op.id) {
                        previous_read = Some(op);
                    }
                }
            }
            for (&id, (reader, seen)) in &reads {
                let reader: &Operation = reader;
                let violation = seen.items.iter().find_map(|element| {
                    let position = seen.position(element).expect("the element is in the read");
                    required.get(element)?.iter().find_map(|(needed, why)| {
                        let missing = needed.iter().find(|n| match seen.position(n) {
                            None => true,
                            Some(p) => ordered && p > position,
                        })?;
                        Some((element, missing, why))
                    })
                });
                if let Some((element, missing, why)) = violation {
                    let explanation = if guarantee == SessionGuarantee::MonotonicWrites {
                        format!(
                            "key {key}: p{} added {missing} (#{}) and then {element} (#{}), but read #{} saw {} with {element} and {}",
                            why[0].process,
                            why[0].id,
                            why[1].id,
                            id,
                            reader.output,
                            if seen.contains(missing) { format!("{missing} after it") } else { format!("without {missing}") }
                        )
                    } else {
                        format!(
                            "key {key}: p{} read {} (#{}) and then added {element} (#{}), but read #{} saw {} with {element} and {}",
                            why[0].process,
                            why[0].output,
                            why[0].id,
                            why[1].id,
                            id,
                            reader.output,
                            if seen.contains(missing) { format!("{missing} after it") } else { format!("without {missing}") }
                        )
                    };
                    let mut involved = why.clone();
                    involved.push(reader);
                    anomalies.push(anomaly(guarantee, explanation, &involved));
                }
            }
        }
    }
}

fn check_counter(
    ops: &[Operation],
    key_ops: &KeyOps,
    guarantee: SessionGuarantee,
    anomalies: &mut Vec<Anomaly>,
) -> Result<(), String> {
    let key = describe_key(&key_ops.key);
    let increments = key_ops.ops.iter().filter_map(|&i| match access(&ops[i], ObjectKind::Counter) {
        Access::Increment(amount) => Some(amount),
        _ => None,
    });
    if increments.clone().any(|amount| amount < 0) {
        return Err("a counter with negative increments".into());
    }
    if matches!(guarantee, SessionGuarantee::MonotonicWrites | SessionGuarantee::WritesFollowReads) {
        return Err(format!("{guarantee} cannot be observed on a counter"));
    }
    for session in sessions(ops, key_ops).values() {
        let mut own = 0i64;
        let mut previous: Option<(&Operation, i64)> = None;
        for &op in session {
            match access(op, ObjectKind::Counter) {
                Access::Increment(amount) if op.outcome == Outcome::Ok => own = own.saturating_add(amount),
                Access::Read(_) if op.outcome == Outcome::Ok => {
                    let Some(count) = register_value(&op.output, &Value::Int(0)).as_int() else { continue };
                    if guarantee == SessionGuarantee::ReadYourWrites && count < own {
                        anomalies.push(anomaly(
                            guarantee,
                            format!(
                                "key {key}: p{} had {own} acknowledged increments, but its read #{} saw {count}",
                                op.process, op.id
                            ),
                            &[op],
                        ));
                    }
                    if guarantee == SessionGuarantee::MonotonicReads {
                        if let Some((before, before_count)) = previous {
                            if count < before_count {
                                anomalies.push(anomaly(
                                    guarantee,
                                    format!(
                                        "key {key}: p{} read {before_count} (#{}) and then {count} (#{})",
                                        op.process, before.id, op.id
                                    ),
                                    &[before, op],
                                ));
                            }
                        }
                    }
                    previous = Some((op, count));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Why one version must come before another: the ops that say so and a few words.
#[derive(Clone, Debug)]
struct Reason<'a> {
    ops: Vec<&'a Operation>,
    why: String,
}

fn check_register<'a>(
    ops: &'a [Operation],
    key_ops: &KeyOps,
    guarantee: SessionGuarantee,
    options: &SessionOptions,
    anomalies: &mut Vec<Anomaly>,
) -> Result<(), String> {
    let key = describe_key(&key_ops.key);
    let initial = effective_initial(options.model, &options.initial);
    let written = |op: &Operation| match access(op, ObjectKind::Register) {
        Access::Write(value) | Access::Cas { to: value, .. } => Some(value),
        _ => None,
    };
    let mut seen_values = BTreeSet::new();
    for &index in &key_ops.ops {
        let op = &ops[index];
        if op.outcome == Outcome::Fail {
            continue;
        }
        if let Some(value) = written(op) {
            if value == initial || !seen_values.insert(value.clone()) {
                return Err(format!("the value {value} is written more than once (or is the initial value)"));
            }
        }
    }
    let mut graph: DiGraph<Value, Reason<'a>> = DiGraph::new();
    let mut nodes: BTreeMap<Value, NodeIndex> = BTreeMap::new();
    let mut node = |graph: &mut DiGraph<Value, Reason<'a>>, value: &Value| -> NodeIndex {
        *nodes.entry(value.clone()).or_insert_with(|| graph.add_node(value.clone()))
    };
    let initial_node = node(&mut graph, &initial);
    // One edge per ordered pair of versions (the first reason found), and a bound on them all.
    let mut pairs: FxHashSet<(NodeIndex, NodeIndex)> = FxHashSet::default();
    let mut edge = |graph: &mut DiGraph<Value, Reason<'a>>, from: &Value, to: &Value, reason: Reason<'a>| {
        if from != to && graph.edge_count() < MAX_VERSION_EDGES {
            let (a, b) = (node(graph, from), node(graph, to));
            if pairs.insert((a, b)) {
                graph.add_edge(a, b, reason);
            }
        }
    };
    let read_value = |op: &Operation| match access(op, ObjectKind::Register) {
        Access::Read(value) if op.outcome == Outcome::Ok => Some(register_value(&value, &initial)),
        _ => None,
    };
    for &index in &key_ops.ops {
        let op = &ops[index];
        if let (Access::Cas { from, to }, Outcome::Ok) = (access(op, ObjectKind::Register), op.outcome) {
            let from = register_value(&from, &initial);
            edge(
                &mut graph,
                &from,
                &to,
                Reason { ops: vec![op], why: format!("cas #{} replaced {from} with {to}", op.id) },
            );
        }
    }
    for session in sessions(ops, key_ops).values() {
        let mut own_writes: Vec<(&Operation, Value)> = Vec::new();
        let mut last_read: Option<(&Operation, Value)> = None;
        for &op in session {
            if let Some(value) = read_value(op) {
                match guarantee {
                    SessionGuarantee::ReadYourWrites => {
                        for (write, written) in &own_writes {
                            let why = format!(
                                "p{} wrote {written} (#{}) and later read {value} (#{})",
                                op.process, write.id, op.id
                            );
                            edge(&mut graph, written, &value, Reason { ops: vec![write, op], why });
                        }
                    }
                    SessionGuarantee::MonotonicReads => {
                        if let Some((before, before_value)) = &last_read {
                            let why = format!(
                                "p{} read {before_value} (#{}) and then {value} (#{})",
                                op.process, before.id, op.id
                            );
                            edge(&mut graph, before_value, &value, Reason { ops: vec![before, op], why });
                        }
                    }
                    _ => {}
                }
                last_read = Some((op, value));
            } else if let (Some(value), Outcome::Ok) = (written(op), op.outcome) {
                match guarantee {
                    SessionGuarantee::MonotonicWrites => {
                        if let Some((before, before_value)) = own_writes.last() {
                            let why = format!(
                                "p{} wrote {before_value} (#{}) and then {value} (#{})",
                                op.process, before.id, op.id
                            );
                            edge(&mut graph, before_value, &value, Reason { ops: vec![before, op], why });
                        }
                    }
                    SessionGuarantee::WritesFollowReads => {
                        if let Some((read, read_value)) = &last_read {
                            let why = format!(
                                "p{} read {read_value} (#{}) and then wrote {value} (#{})",
                                op.process, read.id, op.id
                            );
                            edge(&mut graph, read_value, &value, Reason { ops: vec![read, op], why });
                        }
                    }
                    _ => {}
                }
                own_writes.push((op, value));
            }
        }
    }
    if matches!(guarantee, SessionGuarantee::MonotonicWrites | SessionGuarantee::WritesFollowReads) {
        // Converged final reads show the last version: every acknowledged write comes before it.
        let finals = final_reads(ops, key_ops, 0);
        let values: BTreeSet<Value> = finals.iter().filter_map(|&i| read_value(&ops[i])).collect();
        if let (Some(final_value), 1) = (values.first(), values.len()) {
            let reader = &ops[finals[0]];
            for &index in &key_ops.ops {
                let op = &ops[index];
                if let (Some(value), Outcome::Ok) = (written(op), op.outcome) {
                    let why = format!(
                        "#{} wrote {value}, and the final reads (#{}) agree on {final_value}",
                        op.id, reader.id
                    );
                    edge(&mut graph, &value, final_value, Reason { ops: vec![op, reader], why });
                }
            }
        }
    }
    if graph.edge_count() >= MAX_VERSION_EDGES {
        return Err(format!("more than {MAX_VERSION_EDGES} ordering constraints between its versions"));
    }
    // The initial value precedes every version.
    let versions: Vec<NodeIndex> = graph.node_indices().filter(|&n| n != initial_node).collect();
    for version in versions {
        graph.add_edge(
            initial_node,
            version,
            Reason { ops: Vec::new(), why: format!("{initial} is the initial value") },
        );
    }
    let components = Components::new(&graph);
    let mut visited = Vec::new();
    let mut reported = BTreeSet::new();
    for edge_index in graph.edge_indices() {
        let (from, to) = graph.edge_endpoints(edge_index).expect("an edge has endpoints");
        let component = components.of_node[from.index()];
        if !components.on_cycle(from, to) || !reported.insert(component) {
            continue;
        }
        let generation = u32::try_from(reported.len()).expect("fewer than 2^32 components");
        let path = shortest_path(&graph, Some(&components), to, from, |_| true, &mut visited, generation)
            .expect("an edge inside a strongly connected component closes a cycle");
        let mut cycle = vec![edge_index];
        cycle.extend(path);
        let mut steps = Vec::new();
        let mut involved: Vec<&Operation> = Vec::new();
        for &e in &cycle {
            let reason = &graph[e];
            steps.push(reason.why.clone());
            for &op in &reason.ops {
                if !involved.iter().any(|known| known.id == op.id) {
                    involved.push(op);
                }
            }
        }
        let order: Vec<String> = cycle
            .iter()
            .map(|&e| graph[graph.edge_endpoints(e).expect("an edge has endpoints").0].to_string())
            .chain(std::iter::once(graph[from].to_string()))
            .collect();
        anomalies.push(Anomaly {
            name: guarantee.name().into(),
            explanation: format!(
                "key {key}: no order of versions satisfies {guarantee}; it would need {}",
                order.join(" < ")
            ),
            ops: involved.into_iter().cloned().collect(),
            steps,
        });
    }
    Ok(())
}
