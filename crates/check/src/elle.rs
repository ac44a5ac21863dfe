//! Transactional anomalies in the style of Elle (Kingsbury & Alvaro, VLDB 2020) for list-append and
//! read-write-register transactions: infer version orders from the reads, build the dependency graph
//! (ww, wr, rw, plus process and real-time order) with petgraph, find cycles in its strongly
//! connected components and name them (G0, G1c, G-single, G2-item, and -process / -realtime
//! variants), next to the non-cyclic anomalies G1a, G1b, internal, incompatible-order,
//! duplicate-elements and garbage-read.

use crate::graph::{shortest_path, Components};
use crate::ops::{HistoryError, Operation, Outcome};
use crate::verdict::{Anomaly, Validity, Verdict};
use detsim_core::history::{ProcessId, Value};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::{EdgeFiltered, EdgeRef};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// The kind of transactions in a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnModel {
    /// Micro-ops `["append" k v]` and `["r" k list]`: each key holds a list; values appended to a key
    /// are unique.
    ListAppend,
    /// Micro-ops `["w" k v]` and `["r" k v]`: each key holds a register; values written to a key are
    /// unique; a never-written key reads nil.
    RwRegister,
}

impl TxnModel {
    pub fn name(self) -> &'static str {
        match self {
            TxnModel::ListAppend => "list-append",
            TxnModel::RwRegister => "rw-register",
        }
    }
}

impl fmt::Display for TxnModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TxnModel {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "list-append" | "append" => Ok(TxnModel::ListAppend),
            "rw-register" | "wr-register" => Ok(TxnModel::RwRegister),
            other => Err(format!("unknown transaction model {other:?} (expected list-append or rw-register)")),
        }
    }
}

/// Options of [`check_transactions`].
#[derive(Clone, Debug)]
pub struct TxnOptions {
    /// The transactions' kind; `None` infers it from the micro-ops.
    pub model: Option<TxnModel>,
    /// Add process order (strong session serializability).
    pub process_order: bool,
    /// Add real-time order (strict serializability).
    pub realtime_order: bool,
    /// How many graph nodes the search for the most specific cycle (G-single before G2-item) may
    /// visit in all; past it a cycle is still found and named by its edges, just not the most specific.
    pub search_budget_nodes: usize,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions { model: None, process_order: false, realtime_order: false, search_budget_nodes: 50_000_000 }
    }
}

impl TxnOptions {
    /// Options for a named consistency model: `serializable`, `strong-session-serializable`
    /// (adds process order) or `strict-serializable` (adds process and real-time order).
    pub fn for_consistency(name: &str) -> Option<TxnOptions> {
        let (process_order, realtime_order) = match name {
            "serializable" => (false, false),
            "strong-session-serializable" | "session-serializable" => (true, false),
            "strict-serializable" => (true, true),
            _ => return None,
        };
        Some(TxnOptions { process_order, realtime_order, ..TxnOptions::default() })
    }

    fn checker_name(&self) -> &'static str {
        match (self.process_order, self.realtime_order) {
            (_, true) => "strict-serializable",
            (true, false) => "strong-session-serializable",
            (false, false) => "serializable",
        }
    }
}

/// How many anomalies of each kind a verdict lists at most.
const ANOMALY_LIMIT: usize = 16;

// Dependency bits of an edge.
const WW: u8 = 1;
const WR: u8 = 2;
const RW: u8 = 4;
const PROCESS: u8 = 8;
const REALTIME: u8 = 16;

/// One micro-op, with its key interned.
#[derive(Clone, Debug)]
enum Micro {
    Append(u32, Value),
    Write(u32, Value),
    /// A read; `None` when its result is unknown. List-append: a list (nil read as empty);
    /// rw-register: the value (nil = never written).
    Read(u32, Option<Value>),
}

/// A transaction: the op it came from and its micro-ops.
struct Txn {
    position: usize,
    micro: Vec<Micro>,
}

/// Why an edge exists, per dependency kind: the key and the values involved.
#[derive(Clone, Debug, Default)]
struct EdgeInfo {
    mask: u8,
    ww: Option<(u32, Value, Value)>,
    wr: Option<(u32, Value)>,
    rw: Option<(u32, Value, Value)>,
}

struct Analysis<'a> {
    ops: &'a [Operation],
    model: TxnModel,
    keys: Vec<Value>,
    /// Ok and unknown-outcome transactions: the graph's nodes, in history order.
    txns: Vec<Txn>,
    /// Failed transactions (never nodes).
    failed: Vec<Txn>,
    edges: FxHashMap<(u32, u32), EdgeInfo>,
    anomalies: BTreeMap<&'static str, Vec<Anomaly>>,
    anomaly_counts: BTreeMap<&'static str, usize>,
}

/// Checks a history of transactions (`f` = `txn`) for the anomalies of Elle.
///
/// The verdict is invalid when any anomaly is found. Non-cyclic anomalies: `G1a` (aborted read: a
/// read saw a failed transaction's write), `G1b` (intermediate read: a read saw a value its writer
/// later overwrote in the same transaction), `internal` (a read disagrees with the transaction's own
/// earlier reads and writes), `incompatible-order` (two reads of a list that are not prefixes of
/// one another), `duplicate-elements`, `garbage-read` (a value nobody wrote). Cycles of the
/// dependency graph, one per strongly connected component, named by their edges: `G0` (write
/// cycles), `G1c` (ww and wr, at least one wr), `G-single` (exactly one rw), `G2-item` (two or more
/// rw), with `-process` or `-realtime` appended when the cycle needs process or real-time edges.
/// Each is reported with the cycle spelled out, edge by edge.
///
/// Transactions that failed did not happen; those with an unknown outcome may have (their writes
/// count when observed; their reads are ignored). Values written to a key must be unique; a
/// history where they are not, or with a micro-op that is not `[f key value]`, is an error.
pub fn check_transactions(ops: &[Operation], options: &TxnOptions) -> Result<Verdict, HistoryError> {
    let mut analysis = Analysis::new(ops, options)?;
    match analysis.model {
        TxnModel::ListAppend => analysis.list_append()?,
        TxnModel::RwRegister => analysis.rw_register()?,
    }
    if options.process_order {
        analysis.process_edges();
    }
    if options.realtime_order {
        analysis.realtime_edges();
    }
    analysis.cycles(options);
    let mut verdict = Verdict::new(options.checker_name(), Some(analysis.model.to_string()), ops.len());
    let mut notes = Vec::new();
    for (name, anomalies) in std::mem::take(&mut analysis.anomalies) {
        let count = analysis.anomaly_counts[name];
        if count > anomalies.len() {
            notes.push(format!("{count} {name} anomalies, the first {} shown", anomalies.len()));
        }
        verdict.anomalies.extend(anomalies);
    }
    verdict.valid = if verdict.anomalies.is_empty() { Validity::Valid } else { Validity::Invalid };
    if !notes.is_empty() {
        verdict.reason = Some(notes.join("; "));
    }
    Ok(verdict)
}

fn bad(op: &Operation, message: String) -> HistoryError {
    HistoryError { event_index: op.invoke_index, message }
}

impl<'a> Analysis<'a> {
    fn new(ops: &'a [Operation], options: &TxnOptions) -> Result<Self, HistoryError> {
        let mut key_ids: FxHashMap<Value, u32> = FxHashMap::default();
        let mut keys = Vec::new();
        let mut txns = Vec::new();
        let mut failed = Vec::new();
        let (mut appends, mut writes) = (false, false);
        for (position, op) in ops.iter().enumerate() {
            if op.f != "txn" {
                return Err(bad(op, format!("transaction histories hold only txn ops, found {}", op.f)));
            }
            let parse = |value: &Value, key_ids: &mut FxHashMap<Value, u32>, keys: &mut Vec<Value>, known: bool| {
                let Some(items) = value.as_list() else {
                    return Err(bad(op, format!("a txn's value is a list of micro-ops, found {value}")));
                };
                let mut micro = Vec::with_capacity(items.len());
                for item in items {
                    let Some([Value::Str(f), key, value]) = item.as_list() else {
                        return Err(bad(op, format!("a micro-op is [f key value], found {item}")));
                    };
                    let next_id = u32::try_from(keys.len()).expect("fewer than 2^32 keys");
                    let key = *key_ids.entry(key.clone()).or_insert_with(|| {
                        keys.push(key.clone());
                        next_id
                    });
                    micro.push(match f.as_str() {
                        "append" => Micro::Append(key, value.clone()),
                        "w" | "write" => Micro::Write(key, value.clone()),
                        "r" | "read" => Micro::Read(key, known.then(|| value.clone())),
                        other => return Err(bad(op, format!("unknown micro-op {other:?} (expected append, r or w)"))),
                    });
                }
                Ok(micro)
            };
            let micro = if op.outcome == Outcome::Ok && op.output.as_list().is_some() {
                let micro = parse(&op.output, &mut key_ids, &mut keys, true)?;
                let invoked = parse(&op.input, &mut key_ids, &mut keys, false)?;
                let same_shape = micro.len() == invoked.len()
                    && micro.iter().zip(&invoked).all(|(a, b)| std::mem::discriminant(a) == std::mem::discriminant(b));
                if !same_shape {
                    return Err(bad(op, "a txn completed with different micro-ops than it was invoked with".into()));
                }
                micro
            } else {
                parse(&op.input, &mut key_ids, &mut keys, false)?
            };
            appends |= micro.iter().any(|m| matches!(m, Micro::Append(..)));
            writes |= micro.iter().any(|m| matches!(m, Micro::Write(..)));
            let txn = Txn { position, micro };
            if op.outcome == Outcome::Fail {
                failed.push(txn);
            } else {
                txns.push(txn);
            }
        }
        let model = match options.model {
            Some(model) => model,
            None if appends && writes => {
                return Err(HistoryError {
                    event_index: 0,
                    message: "the history mixes append and w micro-ops; choose list-append or rw-register".into(),
                })
            }
            None if writes => TxnModel::RwRegister,
            None => TxnModel::ListAppend,
        };
        let wrong = |m: &Micro| match model {
            TxnModel::ListAppend => matches!(m, Micro::Write(..)),
            TxnModel::RwRegister => matches!(m, Micro::Append(..)),
        };
        if let Some(txn) = txns.iter().chain(&failed).find(|txn| txn.micro.iter().any(wrong)) {
            return Err(bad(&ops[txn.position], format!("a {model} history cannot hold this micro-op")));
        }
        Ok(Analysis {
            ops,
            model,
            keys,
            txns,
            failed,
            edges: FxHashMap::default(),
            anomalies: BTreeMap::new(),
            anomaly_counts: BTreeMap::new(),
        })
    }

    fn op(&self, txn: usize) -> &'a Operation {
        &self.ops[self.txns[txn].position]
    }

    fn key(&self, key: u32) -> &Value {
        &self.keys[key as usize]
    }

    fn report(&mut self, name: &'static str, explanation: String, ops: Vec<Operation>) {
        *self.anomaly_counts.entry(name).or_default() += 1;
        let list = self.anomalies.entry(name).or_default();
        if list.len() < ANOMALY_LIMIT {
            list.push(Anomaly { name: name.into(), explanation, ops, steps: Vec::new() });
        }
    }

    fn edge(&mut self, from: usize, to: usize, bit: u8) -> Option<&mut EdgeInfo> {
        if from == to {
            return None;
        }
        let key =
            (u32::try_from(from).expect("fewer than 2^32 txns"), u32::try_from(to).expect("fewer than 2^32 txns"));
        let info = self.edges.entry(key).or_default();
        info.mask |= bit;
        Some(info)
    }

    /// Writers of each (key, value), ok/unknown and failed: (txn, whether it is the txn's last
    /// write to that key).
    fn writers(&self) -> Result<WriterIndex, HistoryError> {
        let mut index = WriterIndex::default();
        for (txn_number, txn) in self.txns.iter().enumerate() {
            let mut last_write: FxHashMap<u32, usize> = FxHashMap::default();
            for (i, micro) in txn.micro.iter().enumerate() {
                if let Micro::Append(key, _) | Micro::Write(key, _) = micro {
                    last_write.insert(*key, i);
                }
            }
            for (i, micro) in txn.micro.iter().enumerate() {
                if let Micro::Append(key, value) | Micro::Write(key, value) = micro {
                    let is_final = last_write[key] == i;
                    if value.is_nil() && self.model == TxnModel::RwRegister {
                        return Err(bad(
                            &self.ops[txn.position],
                            "a w micro-op cannot write nil (the initial value)".into(),
                        ));
                    }
                    if index.ok.insert((*key, value.clone()), (txn_number, is_final)).is_some() {
                        return Err(bad(
                            &self.ops[txn.position],
                            format!(
                                "values written to a key must be unique: {value} is written to key {} twice",
                                self.key(*key)
                            ),
                        ));
                    }
                }
            }
        }
        for (txn_number, txn) in self.failed.iter().enumerate() {
            for micro in &txn.micro {
                if let Micro::Append(key, value) | Micro::Write(key, value) = micro {
                    index.failed.entry((*key, value.clone())).or_insert(txn_number);
                }
            }
        }
        Ok(index)
    }

    /// A read of `value` (one element of a list, or a register's value) by `reader` that no
    /// committed write explains: G1a when a failed txn wrote it, garbage otherwise. True when the
    /// value has a committed writer.
    fn check_written(&mut self, writers: &WriterIndex, reader: usize, key: u32, value: &Value) -> bool {
        let slot = (key, value.clone());
        if writers.ok.contains_key(&slot) {
            return true;
        }
        let reader_op = self.op(reader).clone();
        let key_value = self.key(key).clone();
        match writers.failed.get(&slot) {
            Some(&failed) => {
                let failed_op = self.ops[self.failed[failed].position].clone();
                self.report(
                    "G1a",
                    format!(
                        "aborted read: #{} read {value} from key {key_value}, written by #{}, which failed",
                        reader_op.id, failed_op.id
                    ),
                    vec![failed_op, reader_op],
                );
            }
            None => self.report(
                "garbage-read",
                format!("#{} read {value} from key {key_value}, which no transaction wrote", reader_op.id),
                vec![reader_op],
            ),
        }
        false
    }

    fn intermediate_read(&mut self, writers: &WriterIndex, reader: usize, key: u32, value: &Value) {
        let Some(&(writer, is_final)) = writers.ok.get(&(key, value.clone())) else { return };
        if !is_final && writer != reader {
            let (writer_op, reader_op) = (self.op(writer).clone(), self.op(reader).clone());
            let key_value = self.key(key).clone();
            self.report(
                "G1b",
                format!(
                    "intermediate read: #{} read {value} from key {key_value}, which #{} overwrote within its own transaction",
                    reader_op.id, writer_op.id
                ),
                vec![writer_op, reader_op],
            );
        }
    }

    fn internal(&mut self, txn: usize, key: u32, expected: &str, seen: &Value) {
        let op = self.op(txn).clone();
        let key_value = self.key(key).clone();
        self.report(
            "internal",
            format!("#{} read {seen} from key {key_value}, but its own earlier micro-ops imply {expected}", op.id),
            vec![op],
        );
    }

    fn list_append(&mut self) -> Result<(), HistoryError> {
        let writers = self.writers()?;
        // Every committed read of each key, and each txn's external reads (before its own appends).
        let mut reads_of_key: BTreeMap<u32, Vec<(usize, Vec<Value>)>> = BTreeMap::new();
        let mut external: Vec<(usize, u32, Vec<Value>)> = Vec::new();
        for txn in 0..self.txns.len() {
            if self.op(txn).outcome != Outcome::Ok {
                continue;
            }
            // Per key: what the txn knows of the list (prefix read, if any) and what it appended.
            let mut known: FxHashMap<u32, (Option<Vec<Value>>, Vec<Value>)> = FxHashMap::default();
            let micro = self.txns[txn].micro.clone();
            for m in &micro {
                match m {
                    Micro::Append(key, value) => known.entry(*key).or_default().1.push(value.clone()),
                    Micro::Read(key, Some(seen)) => {
                        let list = match seen {
                            Value::Nil => Vec::new(),
                            Value::List(items) => items.clone(),
                            other => {
                                return Err(bad(
                                    self.op(txn),
                                    format!("a list-append read returns a list, found {other}"),
                                ))
                            }
                        };
                        let entry = known.entry(*key).or_default();
                        match &entry.0 {
                            Some(prefix) => {
                                let expected: Vec<Value> = prefix.iter().chain(&entry.1).cloned().collect();
                                if list != expected {
                                    let expected = Value::List(expected).to_string();
                                    self.internal(txn, *key, &expected, seen);
                                }
                            }
                            None if !entry.1.is_empty() => {
                                if !list.ends_with(&entry.1) {
                                    let expected = format!("a list ending in {}", Value::List(entry.1.clone()));
                                    self.internal(txn, *key, &expected, seen);
                                }
                            }
                            None => external.push((txn, *key, list.clone())),
                        }
                        // From here on the txn knows the list as it read it.
                        entry.0 = Some(list.clone());
                        entry.1.clear();
                        reads_of_key.entry(*key).or_default().push((txn, list));
                    }
                    Micro::Read(_, None) | Micro::Write(..) => {}
                }
            }
        }
        // Version order per key: the longest read; every read must be a prefix of it.
        let mut order_of_key: FxHashMap<u32, Vec<Value>> = FxHashMap::default();
        for (&key, reads) in &reads_of_key {
            let (longest_txn, longest) = reads
                .iter()
                .max_by_key(|(txn, list)| (list.len(), usize::MAX - txn))
                .expect("a key with reads has one");
            let (longest_txn, longest) = (*longest_txn, longest.clone());
            let mut reported_incompatible = false;
            for (txn, list) in reads {
                if !reported_incompatible && !longest.starts_with(list) {
                    reported_incompatible = true;
                    let (a, b) = (self.op(*txn).clone(), self.op(longest_txn).clone());
                    let key_value = self.key(key).clone();
                    self.report(
                        "incompatible-order",
                        format!(
                            "key {key_value}: #{} read {} and #{} read {}; neither is a prefix of the other",
                            a.id,
                            Value::List(list.clone()),
                            b.id,
                            Value::List(longest.clone())
                        ),
                        vec![a, b],
                    );
                }
                let mut seen = BTreeSet::new();
                if let Some(duplicate) = list.iter().find(|v| !seen.insert(*v)) {
                    let op = self.op(*txn).clone();
                    let key_value = self.key(key).clone();
                    self.report(
                        "duplicate-elements",
                        format!(
                            "#{} read {} from key {key_value}, holding {duplicate} twice",
                            op.id,
                            Value::List(list.clone())
                        ),
                        vec![op],
                    );
                }
                for value in list.iter() {
                    self.check_written(&writers, *txn, key, value);
                }
                if let Some(last) = list.last() {
                    self.intermediate_read(&writers, *txn, key, last);
                }
            }
            // ww: consecutive elements of the order.
            for pair in longest.windows(2) {
                let (Some(&(a, _)), Some(&(b, _))) =
                    (writers.ok.get(&(key, pair[0].clone())), writers.ok.get(&(key, pair[1].clone())))
                else {
                    continue;
                };
                if let Some(info) = self.edge(a, b, WW) {
                    info.ww.get_or_insert((key, pair[0].clone(), pair[1].clone()));
                }
            }
            order_of_key.insert(key, longest);
        }
        // wr and rw from external reads.
        for (txn, key, list) in external {
            let order = &order_of_key[&key];
            if let Some(last) = list.last() {
                if let Some(&(writer, _)) = writers.ok.get(&(key, last.clone())) {
                    if let Some(info) = self.edge(writer, txn, WR) {
                        info.wr.get_or_insert((key, last.clone()));
                    }
                }
            }
            if list.len() < order.len() && order.starts_with(&list) {
                let next = order[list.len()].clone();
                if let Some(&(writer, _)) = writers.ok.get(&(key, next.clone())) {
                    let last = list.last().cloned().unwrap_or(Value::Nil);
                    if let Some(info) = self.edge(txn, writer, RW) {
                        info.rw.get_or_insert((key, last, next));
                    }
                }
            }
        }
        Ok(())
    }

    fn rw_register(&mut self) -> Result<(), HistoryError> {
        let writers = self.writers()?;
        // External reads (key's first access in the txn is a read) and the version edges a txn
        // shows by reading a key and then writing it.
        let mut readers: FxHashMap<(u32, Value), Vec<usize>> = FxHashMap::default();
        let mut version_edges: BTreeSet<(u32, Value, Value)> = BTreeSet::new();
        for txn in 0..self.txns.len() {
            let committed = self.op(txn).outcome == Outcome::Ok;
            let micro = self.txns[txn].micro.clone();
            // Per key: the value the txn knows (last read or own write), whether it wrote, and the
            // external read.
            let mut known: FxHashMap<u32, (Value, bool, Option<Value>)> = FxHashMap::default();
            for m in &micro {
                match m {
                    Micro::Write(key, value) => {
                        if let Some((_, wrote, Some(read))) = known.get(key) {
                            if !wrote {
                                version_edges.insert((*key, read.clone(), value.clone()));
                            }
                        }
                        let external = known.get(key).and_then(|k| k.2.clone());
                        known.insert(*key, (value.clone(), true, external));
                    }
                    Micro::Read(key, Some(seen)) if committed => match known.get(key) {
                        Some((expected, wrote, _)) => {
                            if seen != expected {
                                let (expected, wrote) = (expected.clone(), *wrote);
                                let what = if wrote { "its own write" } else { "its earlier read" };
                                self.internal(txn, *key, &format!("{expected} ({what})"), seen);
                            }
                        }
                        None => {
                            known.insert(*key, (seen.clone(), false, Some(seen.clone())));
                            readers.entry((*key, seen.clone())).or_default().push(txn);
                            if !seen.is_nil() && self.check_written(&writers, txn, *key, seen) {
                                self.intermediate_read(&writers, txn, *key, seen);
                            }
                        }
                    },
                    _ => {}
                }
            }
        }
        // wr: the writer of a value to each of its external readers.
        let mut reader_keys: Vec<(u32, Value)> = readers.keys().cloned().collect();
        reader_keys.sort();
        for slot in &reader_keys {
            let Some(&(writer, _)) = writers.ok.get(slot) else { continue };
            for &reader in &readers[slot] {
                if let Some(info) = self.edge(writer, reader, WR) {
                    info.wr.get_or_insert(slot.clone());
                }
            }
        }
        // The initial value precedes every write of its key.
        let mut writes_of_key: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
        let mut all: Vec<(&(u32, Value), &(usize, bool))> = writers.ok.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        for ((key, value), _) in all {
            writes_of_key.entry(*key).or_default().push(value.clone());
        }
        for (key, values) in &writes_of_key {
            if readers.contains_key(&(*key, Value::Nil)) {
                for value in values {
                    version_edges.insert((*key, Value::Nil, value.clone()));
                }
            }
        }
        // ww and rw from version edges.
        for (key, before, after) in version_edges {
            let Some(&(later, _)) = writers.ok.get(&(key, after.clone())) else { continue };
            if let Some(&(earlier, _)) = writers.ok.get(&(key, before.clone())) {
                if let Some(info) = self.edge(earlier, later, WW) {
                    info.ww.get_or_insert((key, before.clone(), after.clone()));
                }
            }
            let readers_of_before = readers.get(&(key, before.clone())).cloned().unwrap_or_default();
            for reader in readers_of_before {
                if let Some(info) = self.edge(reader, later, RW) {
                    info.rw.get_or_insert((key, before.clone(), after.clone()));
                }
            }
        }
        Ok(())
    }

    /// Each process's transactions in order.
    fn process_edges(&mut self) {
        let mut last: BTreeMap<ProcessId, usize> = BTreeMap::new();
        for txn in 0..self.txns.len() {
            if let Some(previous) = last.insert(self.op(txn).process, txn) {
                self.edge(previous, txn, PROCESS);
            }
        }
    }

    /// Real-time order, transitively reduced: an edge from each txn completed before another began,
    /// unless a third txn lies between them.
    fn realtime_edges(&mut self) {
        let mut events: Vec<(usize, bool, usize)> = Vec::new();
        for txn in 0..self.txns.len() {
            let op = self.op(txn);
            events.push((op.invoke_index, false, txn));
            if op.outcome == Outcome::Ok {
                events.push((op.return_position(), true, txn));
            }
        }
        events.sort_unstable();
        let mut frontier: Vec<usize> = Vec::new();
        let mut before: FxHashMap<usize, Vec<usize>> = FxHashMap::default();
        for (_, completes, txn) in events {
            if completes {
                let preceding = before.remove(&txn).unwrap_or_default();
                frontier.retain(|f| !preceding.contains(f));
                frontier.push(txn);
            } else {
                for &earlier in &frontier.clone() {
                    self.edge(earlier, txn, REALTIME);
                }
                before.insert(txn, frontier.clone());
            }
        }
    }

    fn describe_step(&self, from: usize, to: usize, bit: u8, info: &EdgeInfo) -> String {
        let (a, b) = (self.op(from).id, self.op(to).id);
        let verb = if self.model == TxnModel::ListAppend { "appended" } else { "wrote" };
        match bit {
            WW => {
                let (key, x, y) = info.ww.as_ref().expect("a ww edge has its evidence");
                format!("#{a} {verb} {x} to key {} before #{b} {verb} {y}", self.key(*key))
            }
            WR => {
                let (key, x) = info.wr.as_ref().expect("a wr edge has its evidence");
                if self.model == TxnModel::ListAppend {
                    format!("#{b} read key {} up to {x}, which #{a} appended", self.key(*key))
                } else {
                    format!("#{b} read {x} from key {}, which #{a} wrote", self.key(*key))
                }
            }
            RW => {
                let (key, x, y) = info.rw.as_ref().expect("an rw edge has its evidence");
                if self.model == TxnModel::ListAppend {
                    let seen = if x.is_nil() { "empty".to_string() } else { format!("up to {x}") };
                    format!("#{a} read key {} {seen}, missing {y}, which #{b} appended next", self.key(*key))
                } else {
                    format!("#{a} read {x} from key {}, which #{b} overwrote with {y}", self.key(*key))
                }
            }
            PROCESS => format!("#{a} came before #{b} on process {}", self.op(from).process),
            _ => format!("#{a} completed before #{b} began"),
        }
    }

    fn cycles(&mut self, options: &TxnOptions) {
        let node_count = self.txns.len();
        let mut edge_list: Vec<((u32, u32), u8)> = self.edges.iter().map(|(&k, info)| (k, info.mask)).collect();
        edge_list.sort_unstable();
        let mut graph: DiGraph<usize, u8> = DiGraph::with_capacity(node_count, edge_list.len());
        for txn in 0..node_count {
            graph.add_node(txn);
        }
        for ((from, to), mask) in edge_list {
            graph.add_edge(NodeIndex::new(from as usize), NodeIndex::new(to as usize), mask);
        }
        let mut levels: Vec<u8> = vec![0];
        if options.process_order {
            levels.push(PROCESS);
        }
        if options.realtime_order {
            levels.push(PROCESS | REALTIME);
        }
        let mut explained = vec![false; node_count];
        let mut visited = Vec::new();
        let mut generation = 0u32;
        let mut budget = options.search_budget_nodes;
        for extra in levels {
            let level_mask = WW | WR | RW | extra;
            let level =
                EdgeFiltered::from_fn(&graph, |e: petgraph::graph::EdgeReference<'_, u8>| e.weight() & level_mask != 0);
            let components = Components::from_sccs(petgraph::algo::tarjan_scc(&level), node_count);
            // Nodes of each nontrivial component, in node order.
            let mut members: BTreeMap<usize, Vec<NodeIndex>> = BTreeMap::new();
            for node in graph.node_indices() {
                let component = components.of_node[node.index()];
                if components.sizes[component] > 1 {
                    members.entry(component).or_default().push(node);
                }
            }
            for nodes in members.values() {
                if nodes.iter().any(|n| explained[n.index()]) {
                    continue;
                }
                let inside: Vec<EdgeIndex> = nodes
                    .iter()
                    .flat_map(|&n| graph.edges(n))
                    .filter(|e| {
                        e.weight() & level_mask != 0
                            && components.of_node[e.target().index()] == components.of_node[nodes[0].index()]
                    })
                    .map(|e| e.id())
                    .collect();
                let mut search = |allowed: u8,
                                  first: u8,
                                  generation: &mut u32,
                                  budget: &mut usize|
                 -> Option<(Vec<EdgeIndex>, u8)> {
                    for &edge in &inside {
                        if graph[edge] & first == 0 {
                            continue;
                        }
                        if *budget == 0 {
                            return None;
                        }
                        let (from, to) = graph.edge_endpoints(edge).expect("an edge has endpoints");
                        *generation += 1;
                        let path = shortest_path(
                            &graph,
                            Some(&components),
                            to,
                            from,
                            |&mask| mask & allowed != 0,
                            &mut visited,
                            *generation,
                        );
                        *budget = budget.saturating_sub(nodes.len());
                        if let Some(path) = path {
                            let mut cycle = vec![edge];
                            cycle.extend(path);
                            return Some((cycle, first));
                        }
                    }
                    None
                };
                // Most specific first: G0 (ww), G1c (ww + wr), G-single (one rw), then any cycle.
                // The last two always succeed (the component has a cycle), so they ignore the budget.
                let mut unlimited = usize::MAX;
                let found = search(WW | extra, WW, &mut generation, &mut budget)
                    .or_else(|| search(WW | WR | extra, WR, &mut generation, &mut budget))
                    .or_else(|| search(WW | WR | extra, RW, &mut generation, &mut budget))
                    .or_else(|| search(level_mask, RW, &mut generation, &mut unlimited))
                    .or_else(|| search(level_mask, level_mask, &mut generation, &mut unlimited));
                let (cycle, first_bit) = found.expect("a nontrivial strongly connected component has a cycle");
                for &edge in &cycle {
                    let (from, _) = graph.edge_endpoints(edge).expect("an edge has endpoints");
                    explained[from.index()] = true;
                }
                self.report_cycle(&graph, &cycle, first_bit, extra);
            }
        }
    }

    fn report_cycle(&mut self, graph: &DiGraph<usize, u8>, cycle: &[EdgeIndex], first_bit: u8, extra: u8) {
        // Label each edge with its most telling dependency: the first edge with the kind the search
        // started from, the others preferring ww, wr, process, real time, and rw last.
        let mut labels = Vec::with_capacity(cycle.len());
        for (i, &edge) in cycle.iter().enumerate() {
            let mask = graph[edge] & (WW | WR | RW | extra);
            let preference: &[u8] = if i == 0 && mask & first_bit != 0 && first_bit.count_ones() == 1 {
                &[first_bit]
            } else {
                &[WW, WR, PROCESS, REALTIME, RW]
            };
            let bit =
                preference.iter().copied().find(|&bit| mask & bit != 0).expect("an edge has some allowed dependency");
            labels.push(bit);
        }
        let rw_count = labels.iter().filter(|&&bit| bit == RW).count();
        let base = match rw_count {
            0 if labels.iter().all(|&bit| bit != WR) => "G0",
            0 => "G1c",
            1 => "G-single",
            _ => "G2-item",
        };
        let suffix = if labels.contains(&REALTIME) {
            "-realtime"
        } else if labels.contains(&PROCESS) {
            "-process"
        } else {
            ""
        };
        let name: &'static str = match (base, suffix) {
            ("G0", "") => "G0",
            ("G0", "-process") => "G0-process",
            ("G0", _) => "G0-realtime",
            ("G1c", "") => "G1c",
            ("G1c", "-process") => "G1c-process",
            ("G1c", _) => "G1c-realtime",
            ("G-single", "") => "G-single",
            ("G-single", "-process") => "G-single-process",
            ("G-single", _) => "G-single-realtime",
            (_, "") => "G2-item",
            (_, "-process") => "G2-item-process",
            _ => "G2-item-realtime",
        };
        let mut steps = Vec::new();
        let mut arrows = String::new();
        let mut ops = Vec::new();
        for (&edge, &bit) in cycle.iter().zip(&labels) {
            let (from, to) = graph.edge_endpoints(edge).expect("an edge has endpoints");
            let (from, to) = (graph[from], graph[to]);
            let info = &self.edges[&(from as u32, to as u32)];
            steps.push(self.describe_step(from, to, bit, info));
            let label = match bit {
                WW => "ww",
                WR => "wr",
                RW => "rw",
                PROCESS => "process",
                _ => "realtime",
            };
            if arrows.is_empty() {
                arrows.push_str(&format!("#{}", self.op(from).id));
            }
            arrows.push_str(&format!(" -{label}-> #{}", self.op(to).id));
            ops.push(self.op(from).clone());
        }
        let explanation = format!("cycle {arrows}");
        *self.anomaly_counts.entry(name).or_default() += 1;
        let list = self.anomalies.entry(name).or_default();
        if list.len() < ANOMALY_LIMIT {
            list.push(Anomaly { name: name.into(), explanation, ops, steps });
        }
    }
}

/// Who wrote each (key, value).
#[derive(Default)]
struct WriterIndex {
    /// By ok and unknown-outcome txns: (txn number, whether it is that txn's last write to the key).
    ok: FxHashMap<(u32, Value), (usize, bool)>,
    /// By failed txns: the failed txn's number.
    failed: FxHashMap<(u32, Value), usize>,
}
