//! Causal consistency for histories with unique written values: the bad patterns of Bouajjani,
//! Enea, Guerraoui and Hamza ("On verifying causal consistency", POPL 2017) over the causal order
//! (process order and reads-from, transitively closed), found with petgraph.

use crate::eventual::{describe_key, effective_initial};
use crate::graph::{shortest_path, Components};
use crate::model::Model;
use crate::objects::{access, cap_anomalies, register_value, Access, ObjectKind};
use crate::ops::{Operation, Outcome};
use crate::verdict::{Anomaly, Validity, Verdict};
use detsim_core::history::{ProcessId, Value};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use std::collections::BTreeMap;

/// Options of [`check_causal`].
#[derive(Clone, Debug)]
pub struct CausalOptions {
    /// The object the history works on (registers: read/get, write/put, cas); `None` infers it.
    pub model: Option<Model>,
    /// The value of every register before any write (nil; "" for a key-value store).
    pub initial: Value,
    /// Give up with "unknown" when the causal-past table would need more bytes than this.
    pub max_memory_bytes: usize,
}

impl Default for CausalOptions {
    fn default() -> Self {
        CausalOptions { model: None, initial: Value::Nil, max_memory_bytes: 1 << 30 }
    }
}

const ANOMALY_LIMIT: usize = 16;

/// Why one op is causally before another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edge {
    /// Process order: the same process did the first before the second.
    Process,
    /// Reads-from: the second read the value the first wrote.
    ReadsFrom,
}

/// Checks causal consistency (CC in Bouajjani et al.): there is no
///
/// - `ThinAirRead`: a read of a value no (non-failed) write wrote;
/// - `CyclicCO`: a cycle in the causal order (e.g. a process reads a value written later by its own
///   causal future);
/// - `WriteCOInitRead`: a read of the initial value although a write to that key is in its causal past;
/// - `WriteCORead`: a read of `v` from write `w1` although another write `w2` of the key is causally
///   after `w1` and before the read.
///
/// The causal order is process order plus reads-from, transitively closed. Only registers are
/// judged (read/get, write/put, cas as a read and a write), and every written value must be unique
/// per key, so that each read has one writer; otherwise the verdict is "unknown". Failed ops did not
/// happen; an op with an unknown outcome counts when someone read what it wrote.
pub fn check_causal(ops: &[Operation], options: &CausalOptions) -> Verdict {
    let mut verdict = Verdict::new("causal", options.model.map(|m| m.to_string()), ops.len());
    match causal_anomalies(ops, options) {
        Ok(anomalies) => {
            let (anomalies, capped) = cap_anomalies(anomalies, ANOMALY_LIMIT);
            verdict.valid = if anomalies.is_empty() { Validity::Valid } else { Validity::Invalid };
            verdict.anomalies = anomalies;
            verdict.reason = capped;
        }
        Err(reason) => {
            verdict.valid = Validity::Unknown;
            verdict.reason = Some(reason);
        }
    }
    verdict
}

fn causal_anomalies(ops: &[Operation], options: &CausalOptions) -> Result<Vec<Anomaly>, String> {
    let initial = effective_initial(options.model, &options.initial);
    let kind = ObjectKind::Register;
    for op in ops {
        if !matches!(op.f.as_str(), "read" | "get" | "write" | "put" | "cas") {
            return Err(format!("causal consistency is checked on registers only; #{} is a {}", op.id, op.f));
        }
    }
    // Writers of each (key, value), among ops that did not fail.
    let mut writers: BTreeMap<(Option<Value>, Value), usize> = BTreeMap::new();
    let mut failed_writers: BTreeMap<(Option<Value>, Value), usize> = BTreeMap::new();
    for (position, op) in ops.iter().enumerate() {
        let written = match access(op, kind) {
            Access::Write(value) | Access::Cas { to: value, .. } => value,
            _ => continue,
        };
        let slot = (op.key.clone(), written.clone());
        if op.outcome == Outcome::Fail {
            failed_writers.entry(slot).or_insert(position);
            continue;
        }
        if written == initial || writers.insert(slot, position).is_some() {
            return Err(format!(
                "written values must be unique per key: {written} is written to key {} more than once (or is the initial value)",
                describe_key(&op.key)
            ));
        }
    }
    // What each ok read (and ok cas) read from: Some(writer), or None for the initial value.
    let mut anomalies = Vec::new();
    let mut reads_from: Vec<Option<Option<usize>>> = vec![None; ops.len()];
    for (position, op) in ops.iter().enumerate() {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let seen = match access(op, kind) {
            Access::Read(value) => register_value(&value, &initial),
            Access::Cas { from, .. } => register_value(&from, &initial),
            _ => continue,
        };
        if seen == initial {
            reads_from[position] = Some(None);
            continue;
        }
        let slot = (op.key.clone(), seen.clone());
        match writers.get(&slot) {
            Some(&writer) => reads_from[position] = Some(Some(writer)),
            None => {
                let mut involved = vec![op.clone()];
                let why = match failed_writers.get(&slot) {
                    Some(&failed) => {
                        involved.insert(0, ops[failed].clone());
                        format!("written only by #{}, which failed", ops[failed].id)
                    }
                    None => "which nothing wrote".to_string(),
                };
                anomalies.push(Anomaly {
                    name: "ThinAirRead".into(),
                    explanation: format!("#{} read {seen} from key {}, {why}", op.id, describe_key(&op.key)),
                    ops: involved,
                    steps: Vec::new(),
                });
            }
        }
    }
    // The ops that took part: ok ops, and unknown writes someone read from.
    let mut included = vec![false; ops.len()];
    for (position, op) in ops.iter().enumerate() {
        included[position] |= op.outcome == Outcome::Ok;
        if let Some(Some(writer)) = reads_from[position] {
            included[writer] = true;
        }
    }
    let mut graph: DiGraph<usize, Edge> = DiGraph::new();
    let mut node_of: Vec<Option<NodeIndex>> = vec![None; ops.len()];
    let mut last_of_process: BTreeMap<ProcessId, NodeIndex> = BTreeMap::new();
    for (position, op) in ops.iter().enumerate() {
        if !included[position] {
            continue;
        }
        let node = graph.add_node(position);
        node_of[position] = Some(node);
        if let Some(previous) = last_of_process.insert(op.process, node) {
            graph.add_edge(previous, node, Edge::Process);
        }
    }
    for (position, source) in reads_from.iter().enumerate() {
        if let (Some(Some(writer)), Some(reader)) = (source, node_of[position]) {
            let writer = node_of[*writer].expect("a writer someone read from is included");
            if !graph.edges_connecting(writer, reader).any(|e| *e.weight() == Edge::ReadsFrom) {
                graph.add_edge(writer, reader, Edge::ReadsFrom);
            }
        }
    }
    let spell = |graph: &DiGraph<usize, Edge>, path: &[EdgeIndex]| -> String {
        let mut text = String::new();
        for (i, &edge) in path.iter().enumerate() {
            let (from, to) = graph.edge_endpoints(edge).expect("an edge has endpoints");
            if i == 0 {
                text.push_str(&format!("#{}", ops[graph[from]].id));
            }
            let label = match graph[edge] {
                Edge::Process => "po",
                Edge::ReadsFrom => "rf",
            };
            text.push_str(&format!(" -{label}-> #{}", ops[graph[to]].id));
        }
        text
    };
    let ops_on = |graph: &DiGraph<usize, Edge>, paths: &[&[EdgeIndex]]| -> Vec<Operation> {
        let mut positions: Vec<usize> = Vec::new();
        for path in paths {
            for &edge in path.iter() {
                let (from, to) = graph.edge_endpoints(edge).expect("an edge has endpoints");
                for node in [from, to] {
                    if !positions.contains(&graph[node]) {
                        positions.push(graph[node]);
                    }
                }
            }
        }
        positions.iter().map(|&p| ops[p].clone()).collect()
    };
    // CyclicCO: a strongly connected component of two or more ops.
    let components = Components::new(&graph);
    let mut visited = Vec::new();
    let mut generation = 0u32;
    let mut cyclic = false;
    let mut reported = std::collections::BTreeSet::new();
    for edge in graph.edge_indices() {
        let (from, to) = graph.edge_endpoints(edge).expect("an edge has endpoints");
        if !components.on_cycle(from, to) || !reported.insert(components.of_node[from.index()]) {
            continue;
        }
        cyclic = true;
        generation += 1;
        let back = shortest_path(&graph, Some(&components), to, from, |_| true, &mut visited, generation)
            .expect("an edge inside a component closes a cycle");
        let mut cycle = vec![edge];
        cycle.extend(back);
        anomalies.push(Anomaly {
            name: "CyclicCO".into(),
            explanation: format!("the causal order has a cycle: {}", spell(&graph, &cycle)),
            ops: ops_on(&graph, &[&cycle]),
            steps: Vec::new(),
        });
    }
    if cyclic {
        return Ok(anomalies);
    }
    // The causal past of every op, restricted to writes, as bitsets (in topological order).
    let write_positions: Vec<usize> = (0..ops.len())
        .filter(|&p| node_of[p].is_some() && matches!(access(&ops[p], kind), Access::Write(_) | Access::Cas { .. }))
        .collect();
    let mut write_number = vec![usize::MAX; ops.len()];
    for (number, &position) in write_positions.iter().enumerate() {
        write_number[position] = number;
    }
    let words = write_positions.len().div_ceil(64);
    let bytes = graph.node_count().saturating_mul(words).saturating_mul(8);
    if bytes > options.max_memory_bytes {
        return Err(format!(
            "memory budget spent: the causal past of {} ops would take {bytes} bytes",
            graph.node_count()
        ));
    }
    let order = petgraph::algo::toposort(&graph, None).map_err(|_| "the causal order is cyclic".to_string())?;
    let mut past = vec![0u64; graph.node_count() * words];
    for &node in &order {
        let row = node.index() * words;
        let predecessors: Vec<NodeIndex> = graph.neighbors_directed(node, petgraph::Direction::Incoming).collect();
        for predecessor in predecessors {
            let other = predecessor.index() * words;
            for word in 0..words {
                past[row + word] |= past[other + word];
            }
            let number = write_number[graph[predecessor]];
            if number != usize::MAX {
                past[row + number / 64] |= 1 << (number % 64);
            }
        }
    }
    let in_past = |node: NodeIndex, write: usize| {
        let number = write_number[write];
        past[node.index() * words + number / 64] & (1 << (number % 64)) != 0
    };
    let writes_by_key: BTreeMap<Option<Value>, Vec<usize>> =
        write_positions.iter().fold(BTreeMap::new(), |mut map, &p| {
            map.entry(ops[p].key.clone()).or_default().push(p);
            map
        });
    for (position, source) in reads_from.iter().enumerate() {
        let (Some(source), Some(reader)) = (source, node_of[position]) else { continue };
        let op = &ops[position];
        let key = describe_key(&op.key);
        let same_key: &[usize] = writes_by_key.get(&op.key).map_or(&[], Vec::as_slice);
        match source {
            None => {
                let Some(&write) = same_key.iter().find(|&&w| w != position && in_past(reader, w)) else { continue };
                generation += 1;
                let path = shortest_path(
                    &graph,
                    None,
                    node_of[write].expect("included"),
                    reader,
                    |_| true,
                    &mut visited,
                    generation,
                )
                .expect("a write in the causal past has a path to the read");
                anomalies.push(Anomaly {
                    name: "WriteCOInitRead".into(),
                    explanation: format!(
                        "#{} read the initial value {initial} of key {key}, but write #{} is in its causal past: {}",
                        op.id,
                        ops[write].id,
                        spell(&graph, &path)
                    ),
                    ops: ops_on(&graph, &[&path]),
                    steps: Vec::new(),
                });
            }
            Some(first) => {
                let first_node = node_of[*first].expect("included");
                let overwritten = same_key.iter().copied().find(|&w| {
                    w != *first && w != position && in_past(reader, w) && in_past(node_of[w].expect("included"), *first)
                });
                let Some(second) = overwritten else { continue };
                let second_node = node_of[second].expect("included");
                generation += 1;
                let before = shortest_path(&graph, None, first_node, second_node, |_| true, &mut visited, generation)
                    .expect("w1 is in the causal past of w2");
                generation += 1;
                let after = shortest_path(&graph, None, second_node, reader, |_| true, &mut visited, generation)
                    .expect("w2 is in the causal past of the read");
                anomalies.push(Anomaly {
                    name: "WriteCORead".into(),
                    explanation: format!(
                        "#{} read {} of key {key} from #{}, but #{} overwrote it in between, causally: {}; {}",
                        op.id,
                        match access(op, kind) {
                            Access::Cas { from, .. } => from,
                            _ => op.output.clone(),
                        },
                        ops[*first].id,
                        ops[second].id,
                        spell(&graph, &before),
                        spell(&graph, &after)
                    ),
                    ops: ops_on(&graph, &[&before, &after]),
                    steps: Vec::new(),
                });
            }
        }
    }
    Ok(anomalies)
}
