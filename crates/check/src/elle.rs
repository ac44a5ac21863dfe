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
use rustc_hash::{FxHashMap, FxHashSet};
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

/// The interned id of nil (the initial value of an rw-register key).
const NIL: u32 = 0;

/// What a read saw, as interned value ids.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Observed {
    /// List-append: the list (a nil read is the empty list).
    List(Vec<u32>),
    /// Rw-register: the value (`NIL` when never written).
    Value(u32),
}

/// One micro-op, with its key and value interned.
#[derive(Clone, Debug)]
enum Micro {
    Append(u32, u32),
    Write(u32, u32),
    /// A read; `None` when its result is unknown.
    Read(u32, Option<Observed>),
}

/// A transaction: the op it came from and its micro-ops.
struct Txn {
    position: usize,
    micro: Vec<Micro>,
}

/// The parsed history: transactions with interned keys and values.
struct Data<'a> {
    ops: &'a [Operation],
    model: TxnModel,
    keys: Vec<Value>,
    values: Vec<Value>,
    /// Ok and unknown-outcome transactions: the graph's nodes, in history order.
    txns: Vec<Txn>,
    /// Failed transactions (never nodes).
    failed: Vec<Txn>,
}

/// Why an edge exists, per dependency kind: the key and the (interned) values involved.
#[derive(Clone, Copy, Debug, Default)]
struct EdgeInfo {
    mask: u8,
    ww: Option<(u32, u32, u32)>,
    wr: Option<(u32, u32)>,
    rw: Option<(u32, u32, u32)>,
}

/// What the analysis found: dependency edges and anomalies.
#[derive(Default)]
struct Findings {
    edges: FxHashMap<(u32, u32), EdgeInfo>,
    anomalies: BTreeMap<&'static str, Vec<Anomaly>>,
    anomaly_counts: BTreeMap<&'static str, usize>,
}

impl Findings {
    fn report(&mut self, name: &'static str, explanation: String, ops: Vec<Operation>, steps: Vec<String>) {
        *self.anomaly_counts.entry(name).or_default() += 1;
        let list = self.anomalies.entry(name).or_default();
        if list.len() < ANOMALY_LIMIT {
            list.push(Anomaly { name: name.into(), explanation, ops, steps });
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
}

/// Who wrote each (key, value).
#[derive(Default)]
struct WriterIndex {
    /// By ok and unknown-outcome txns: (txn number, whether it is that txn's last write to the key).
    ok: FxHashMap<(u32, u32), (usize, bool)>,
    /// By failed txns: the failed txn's number.
    failed: FxHashMap<(u32, u32), usize>,
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
    let data = Data::new(ops, options)?;
    let mut findings = Findings::default();
    let writers = data.writers()?;
    match data.model {
        TxnModel::ListAppend => data.list_append(&writers, &mut findings)?,
        TxnModel::RwRegister => data.rw_register(&writers, &mut findings),
    }
    if options.process_order {
        data.process_edges(&mut findings);
    }
    if options.realtime_order {
        data.realtime_edges(&mut findings);
    }
    data.cycles(options, &mut findings);
    let mut verdict = Verdict::new(options.checker_name(), Some(data.model.to_string()), ops.len());
    let mut notes = Vec::new();
    for (name, anomalies) in std::mem::take(&mut findings.anomalies) {
        let count = findings.anomaly_counts[name];
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

/// Interns keys and values as small integers.
struct Interner {
    keys: Vec<Value>,
    key_ids: FxHashMap<Value, u32>,
    values: Vec<Value>,
    value_ids: FxHashMap<Value, u32>,
}

impl Interner {
    fn new() -> Self {
        let mut interner = Interner {
            keys: Vec::new(),
            key_ids: FxHashMap::default(),
            values: Vec::new(),
            value_ids: FxHashMap::default(),
        };
        assert_eq!(interner.value(&Value::Nil), NIL, "nil is value 0");
        interner
    }

    fn key(&mut self, key: &Value) -> u32 {
        if let Some(&id) = self.key_ids.get(key) {
            return id;
        }
        let id = u32::try_from(self.keys.len()).expect("fewer than 2^32 keys");
        self.keys.push(key.clone());
        self.key_ids.insert(key.clone(), id);
        id
    }

    fn value(&mut self, value: &Value) -> u32 {
        if let Some(&id) = self.value_ids.get(value) {
            return id;
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 values");
        self.values.push(value.clone());
        self.value_ids.insert(value.clone(), id);
        id
    }

    /// Parses a txn's micro-ops. `known`: whether read results are known (an ok completion).
    fn micro_ops(
        &mut self,
        op: &Operation,
        value: &Value,
        model: TxnModel,
        known: bool,
    ) -> Result<Vec<Micro>, HistoryError> {
        let Some(items) = value.as_list() else {
            return Err(bad(op, format!("a txn's value is a list of micro-ops, found {value}")));
        };
        let mut micro = Vec::with_capacity(items.len());
        for item in items {
            let Some([Value::Str(f), key, value]) = item.as_list() else {
                return Err(bad(op, format!("a micro-op is [f key value], found {item}")));
            };
            let key = self.key(key);
            micro.push(match f.as_str() {
                "append" => Micro::Append(key, self.value(value)),
                "w" | "write" => Micro::Write(key, self.value(value)),
                "r" | "read" if !known => Micro::Read(key, None),
                "r" | "read" => {
                    let list_read = model == TxnModel::ListAppend;
                    match value {
                        Value::List(items) if list_read => {
                            Micro::Read(key, Some(Observed::List(items.iter().map(|v| self.value(v)).collect())))
                        }
                        Value::Nil if list_read => Micro::Read(key, Some(Observed::List(Vec::new()))),
                        other if list_read => {
                            return Err(bad(op, format!("a list-append read returns a list, found {other}")))
                        }
                        other => Micro::Read(key, Some(Observed::Value(self.value(other)))),
                    }
                }
                other => return Err(bad(op, format!("unknown micro-op {other:?} (expected append, r or w)"))),
            });
        }
        Ok(micro)
    }
}

/// True when the invoked micro-ops have the shape of the completed ones (same kinds and keys).
fn same_shape(invoked: &Value, completed: &[Micro], interner: &Interner) -> bool {
    let Some(items) = invoked.as_list() else { return false };
    items.len() == completed.len()
        && items.iter().zip(completed).all(|(item, micro)| {
            let Some([Value::Str(f), key, _]) = item.as_list() else { return false };
            let (kind_matches, key_id) = match micro {
                Micro::Append(k, _) => (f == "append", *k),
                Micro::Write(k, _) => (f == "w" || f == "write", *k),
                Micro::Read(k, _) => (f == "r" || f == "read", *k),
            };
            kind_matches && interner.key_ids.get(key) == Some(&key_id)
        })
}

impl<'a> Data<'a> {
    fn new(ops: &'a [Operation], options: &TxnOptions) -> Result<Self, HistoryError> {
        // The model first (reads of nil look alike in both), from the micro-ops' kinds.
        let (mut appends, mut writes) = (false, false);
        for op in ops {
            if op.f != "txn" {
                return Err(bad(op, format!("transaction histories hold only txn ops, found {}", op.f)));
            }
            for item in op.input.as_list().unwrap_or(&[]) {
                match item.as_list().and_then(|micro| micro.first()).and_then(Value::as_str) {
                    Some("append") => appends = true,
                    Some("w" | "write") => writes = true,
                    _ => {}
                }
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
        let mut interner = Interner::new();
        let mut txns = Vec::new();
        let mut failed = Vec::new();
        for (position, op) in ops.iter().enumerate() {
            let micro = if op.outcome == Outcome::Ok && op.output.as_list().is_some() {
                let micro = interner.micro_ops(op, &op.output, model, true)?;
                if !same_shape(&op.input, &micro, &interner) {
                    return Err(bad(op, "a txn completed with different micro-ops than it was invoked with".into()));
                }
                micro
            } else {
                interner.micro_ops(op, &op.input, model, false)?
            };
            let txn = Txn { position, micro };
            if op.outcome == Outcome::Fail {
                failed.push(txn);
            } else {
                txns.push(txn);
            }
        }
        let wrong = |m: &Micro| match model {
            TxnModel::ListAppend => matches!(m, Micro::Write(..) | Micro::Read(_, Some(Observed::Value(_)))),
            TxnModel::RwRegister => matches!(m, Micro::Append(..) | Micro::Read(_, Some(Observed::List(_)))),
        };
        if let Some(txn) = txns.iter().chain(&failed).find(|txn| txn.micro.iter().any(wrong)) {
            return Err(bad(&ops[txn.position], format!("a {model} history cannot hold this micro-op")));
        }
        Ok(Data { ops, model, keys: interner.keys, values: interner.values, txns, failed })
    }

    fn op(&self, txn: usize) -> &'a Operation {
        &self.ops[self.txns[txn].position]
    }

    fn key(&self, key: u32) -> &Value {
        &self.keys[key as usize]
    }

    fn value(&self, value: u32) -> &Value {
        &self.values[value as usize]
    }

    fn list(&self, items: &[u32]) -> Value {
        Value::List(items.iter().map(|&v| self.value(v).clone()).collect())
    }

    /// Writers of each (key, value), ok/unknown and failed.
    fn writers(&self) -> Result<WriterIndex, HistoryError> {
        let mut index = WriterIndex::default();
        let mut last_write: FxHashMap<u32, usize> = FxHashMap::default();
        for (txn_number, txn) in self.txns.iter().enumerate() {
            last_write.clear();
            for (i, micro) in txn.micro.iter().enumerate() {
                if let Micro::Append(key, _) | Micro::Write(key, _) = micro {
                    last_write.insert(*key, i);
                }
            }
            for (i, micro) in txn.micro.iter().enumerate() {
                if let Micro::Append(key, value) | Micro::Write(key, value) = micro {
                    let is_final = last_write[key] == i;
                    if *value == NIL && self.model == TxnModel::RwRegister {
                        return Err(bad(
                            &self.ops[txn.position],
                            "a w micro-op cannot write nil (the initial value)".into(),
                        ));
                    }
                    if index.ok.insert((*key, *value), (txn_number, is_final)).is_some() {
                        return Err(bad(
                            &self.ops[txn.position],
                            format!(
                                "values written to a key must be unique: {} is written to key {} twice",
                                self.value(*value),
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
                    index.failed.entry((*key, *value)).or_insert(txn_number);
                }
            }
        }
        Ok(index)
    }

    /// A read of `value` by `reader` that no committed write explains: G1a when a failed txn wrote
    /// it, garbage otherwise. True when the value has a committed writer.
    fn check_written(
        &self,
        writers: &WriterIndex,
        findings: &mut Findings,
        reader: usize,
        key: u32,
        value: u32,
    ) -> bool {
        if writers.ok.contains_key(&(key, value)) {
            return true;
        }
        let reader_op = self.op(reader).clone();
        let (key_value, shown) = (self.key(key), self.value(value));
        match writers.failed.get(&(key, value)) {
            Some(&failed) => {
                let failed_op = self.ops[self.failed[failed].position].clone();
                let explanation = format!(
                    "aborted read: #{} read {shown} from key {key_value}, written by #{}, which failed",
                    reader_op.id, failed_op.id
                );
                findings.report("G1a", explanation, vec![failed_op, reader_op], Vec::new());
            }
            None => {
                let explanation =
                    format!("#{} read {shown} from key {key_value}, which no transaction wrote", reader_op.id);
                findings.report("garbage-read", explanation, vec![reader_op], Vec::new());
            }
        }
        false
    }

    fn intermediate_read(&self, writers: &WriterIndex, findings: &mut Findings, reader: usize, key: u32, value: u32) {
        let Some(&(writer, is_final)) = writers.ok.get(&(key, value)) else { return };
        if !is_final && writer != reader {
            let (writer_op, reader_op) = (self.op(writer).clone(), self.op(reader).clone());
            let explanation = format!(
                "intermediate read: #{} read {} from key {}, which #{} overwrote within its own transaction",
                reader_op.id,
                self.value(value),
                self.key(key),
                writer_op.id
            );
            findings.report("G1b", explanation, vec![writer_op, reader_op], Vec::new());
        }
    }

    fn internal(&self, findings: &mut Findings, txn: usize, key: u32, expected: String, seen: Value) {
        let op = self.op(txn).clone();
        let explanation = format!(
            "#{} read {seen} from key {}, but its own earlier micro-ops imply {expected}",
            op.id,
            self.key(key)
        );
        findings.report("internal", explanation, vec![op], Vec::new());
    }

    fn list_append(&self, writers: &WriterIndex, findings: &mut Findings) -> Result<(), HistoryError> {
        // Every committed read of each key (txn, micro-op index), and the external ones (before the
        // txn's own appends or reads of the key).
        let mut reads_of_key: FxHashMap<u32, Vec<(usize, usize)>> = FxHashMap::default();
        let mut external: Vec<(usize, usize)> = Vec::new();
        // Per key: what the txn knows of the list (the micro-op index of its last read) and what it
        // appended since.
        let mut known: FxHashMap<u32, (Option<usize>, Vec<u32>)> = FxHashMap::default();
        for (txn, transaction) in self.txns.iter().enumerate() {
            if self.op(txn).outcome != Outcome::Ok {
                continue;
            }
            known.clear();
            for (index, micro) in transaction.micro.iter().enumerate() {
                match micro {
                    Micro::Append(key, value) => known.entry(*key).or_default().1.push(*value),
                    Micro::Read(key, Some(Observed::List(list))) => {
                        let entry = known.entry(*key).or_default();
                        match entry.0 {
                            Some(previous) => {
                                let Micro::Read(_, Some(Observed::List(prefix))) = &transaction.micro[previous] else {
                                    unreachable!("a known read is a list read")
                                };
                                let consistent = list.len() == prefix.len() + entry.1.len()
                                    && list.starts_with(prefix)
                                    && list.ends_with(&entry.1);
                                if !consistent {
                                    let expected: Vec<u32> = prefix.iter().chain(&entry.1).copied().collect();
                                    self.internal(
                                        findings,
                                        txn,
                                        *key,
                                        self.list(&expected).to_string(),
                                        self.list(list),
                                    );
                                }
                            }
                            None if !entry.1.is_empty() => {
                                if !list.ends_with(&entry.1) {
                                    let expected = format!("a list ending in {}", self.list(&entry.1));
                                    self.internal(findings, txn, *key, expected, self.list(list));
                                }
                            }
                            None => external.push((txn, index)),
                        }
                        // From here on the txn knows the list as it read it.
                        entry.0 = Some(index);
                        entry.1.clear();
                        reads_of_key.entry(*key).or_default().push((txn, index));
                    }
                    Micro::Read(_, _) | Micro::Write(..) => {}
                }
            }
        }
        let list_of = |(txn, index): (usize, usize)| -> &[u32] {
            match &self.txns[txn].micro[index] {
                Micro::Read(_, Some(Observed::List(list))) => list,
                _ => unreachable!("reads_of_key holds list reads"),
            }
        };
        // Version order per key: the longest read; every read must be a prefix of it.
        let mut keys: Vec<u32> = reads_of_key.keys().copied().collect();
        keys.sort_unstable();
        let mut order_of_key: FxHashMap<u32, (usize, usize)> = FxHashMap::default();
        for key in keys {
            let reads = &reads_of_key[&key];
            let longest_read = *reads
                .iter()
                .max_by_key(|&&(txn, index)| (list_of((txn, index)).len(), std::cmp::Reverse(txn)))
                .expect("a key with reads has one");
            let longest = list_of(longest_read);
            // The elements of the longest read: written by someone, once each. Reads that are its
            // prefixes hold nothing else; the others are checked on their own.
            let check_elements = |reader: usize, list: &[u32], findings: &mut Findings| {
                let mut seen: FxHashSet<u32> = FxHashSet::default();
                let mut duplicate_reported = false;
                for &value in list {
                    if !seen.insert(value) && !duplicate_reported {
                        duplicate_reported = true;
                        let op = self.op(reader).clone();
                        let explanation = format!(
                            "#{} read {} from key {}, holding {} twice",
                            op.id,
                            self.list(list),
                            self.key(key),
                            self.value(value)
                        );
                        findings.report("duplicate-elements", explanation, vec![op], Vec::new());
                    }
                    self.check_written(writers, findings, reader, key, value);
                }
            };
            check_elements(longest_read.0, longest, findings);
            let mut reported_incompatible = false;
            for &read in reads {
                let list = list_of(read);
                if !longest.starts_with(list) {
                    check_elements(read.0, list, findings);
                    if !reported_incompatible {
                        reported_incompatible = true;
                        let (a, b) = (self.op(read.0).clone(), self.op(longest_read.0).clone());
                        let explanation = format!(
                            "key {}: #{} read {} and #{} read {}; neither is a prefix of the other",
                            self.key(key),
                            a.id,
                            self.list(list),
                            b.id,
                            self.list(longest)
                        );
                        findings.report("incompatible-order", explanation, vec![a, b], Vec::new());
                    }
                }
                if let Some(&last) = list.last() {
                    self.intermediate_read(writers, findings, read.0, key, last);
                }
            }
            // ww: consecutive elements of the order.
            for pair in longest.windows(2) {
                let (Some(&(a, _)), Some(&(b, _))) = (writers.ok.get(&(key, pair[0])), writers.ok.get(&(key, pair[1])))
                else {
                    continue;
                };
                if let Some(info) = findings.edge(a, b, WW) {
                    info.ww.get_or_insert((key, pair[0], pair[1]));
                }
            }
            order_of_key.insert(key, longest_read);
        }
        // wr and rw from external reads.
        for (txn, index) in external {
            let Micro::Read(key, Some(Observed::List(list))) = &self.txns[txn].micro[index] else {
                unreachable!("external reads are list reads")
            };
            let order = list_of(order_of_key[key]);
            if let Some(&last) = list.last() {
                if let Some(&(writer, _)) = writers.ok.get(&(*key, last)) {
                    if let Some(info) = findings.edge(writer, txn, WR) {
                        info.wr.get_or_insert((*key, last));
                    }
                }
            }
            if list.len() < order.len() && order.starts_with(list) {
                let next = order[list.len()];
                if let Some(&(writer, _)) = writers.ok.get(&(*key, next)) {
                    let last = list.last().copied().unwrap_or(NIL);
                    if let Some(info) = findings.edge(txn, writer, RW) {
                        info.rw.get_or_insert((*key, last, next));
                    }
                }
            }
        }
        Ok(())
    }

    fn rw_register(&self, writers: &WriterIndex, findings: &mut Findings) {
        // External reads (the key's first access in the txn is a read) and the version edges a txn
        // shows by reading a key and then writing it.
        let mut readers: FxHashMap<(u32, u32), Vec<usize>> = FxHashMap::default();
        let mut version_edges: BTreeSet<(u32, u32, u32)> = BTreeSet::new();
        // Per key: the value the txn knows (last read or own write), whether it wrote, and the
        // external read.
        let mut known: FxHashMap<u32, (u32, bool, Option<u32>)> = FxHashMap::default();
        for (txn, transaction) in self.txns.iter().enumerate() {
            known.clear();
            for micro in &transaction.micro {
                match micro {
                    Micro::Write(key, value) => {
                        let external = known.get(key).and_then(|k| k.2);
                        if let Some((_, false, Some(read))) = known.get(key) {
                            version_edges.insert((*key, *read, *value));
                        }
                        known.insert(*key, (*value, true, external));
                    }
                    Micro::Read(key, Some(Observed::Value(seen))) => match known.get(key) {
                        Some(&(expected, wrote, _)) => {
                            if *seen != expected {
                                let what = if wrote { "its own write" } else { "its earlier read" };
                                let expected = format!("{} ({what})", self.value(expected));
                                self.internal(findings, txn, *key, expected, self.value(*seen).clone());
                            }
                        }
                        None => {
                            known.insert(*key, (*seen, false, Some(*seen)));
                            readers.entry((*key, *seen)).or_default().push(txn);
                            if *seen != NIL && self.check_written(writers, findings, txn, *key, *seen) {
                                self.intermediate_read(writers, findings, txn, *key, *seen);
                            }
                        }
                    },
                    _ => {}
                }
            }
        }
        // wr: the writer of a value to each of its external readers.
        let mut slots: Vec<(u32, u32)> = readers.keys().copied().collect();
        slots.sort_unstable();
        for slot in &slots {
            let Some(&(writer, _)) = writers.ok.get(slot) else { continue };
            for &reader in &readers[slot] {
                if let Some(info) = findings.edge(writer, reader, WR) {
                    info.wr.get_or_insert(*slot);
                }
            }
        }
        // The initial value precedes every write of its key (when someone read the initial value).
        let mut written: Vec<(u32, u32)> = writers.ok.keys().copied().collect();
        written.sort_unstable();
        for &(key, value) in &written {
            if readers.contains_key(&(key, NIL)) {
                version_edges.insert((key, NIL, value));
            }
        }
        // ww and rw from version edges.
        for (key, before, after) in version_edges {
            let Some(&(later, _)) = writers.ok.get(&(key, after)) else { continue };
            if let Some(&(earlier, _)) = writers.ok.get(&(key, before)) {
                if let Some(info) = findings.edge(earlier, later, WW) {
                    info.ww.get_or_insert((key, before, after));
                }
            }
            for &reader in readers.get(&(key, before)).map_or(&[][..], Vec::as_slice) {
                if let Some(info) = findings.edge(reader, later, RW) {
                    info.rw.get_or_insert((key, before, after));
                }
            }
        }
    }

    /// Each process's transactions in order.
    fn process_edges(&self, findings: &mut Findings) {
        let mut last: BTreeMap<ProcessId, usize> = BTreeMap::new();
        for txn in 0..self.txns.len() {
            if let Some(previous) = last.insert(self.op(txn).process, txn) {
                findings.edge(previous, txn, PROCESS);
            }
        }
    }

    /// Real-time order, transitively reduced: an edge from each txn completed before another began,
    /// unless a third txn lies between them.
    fn realtime_edges(&self, findings: &mut Findings) {
        let mut events: Vec<(usize, bool, usize)> = Vec::with_capacity(2 * self.txns.len());
        for txn in 0..self.txns.len() {
            let op = self.op(txn);
            events.push((op.invoke_index, false, txn));
            if op.outcome == Outcome::Ok {
                events.push((op.return_position(), true, txn));
            }
        }
        events.sort_unstable();
        // The completed txns no later completion supersedes, and what each running txn saw of them.
        let mut frontier: Vec<usize> = Vec::new();
        let mut before: FxHashMap<usize, Vec<usize>> = FxHashMap::default();
        for (_, completes, txn) in events {
            if completes {
                let preceding = before.remove(&txn).unwrap_or_default();
                frontier.retain(|f| !preceding.contains(f));
                frontier.push(txn);
            } else {
                for &earlier in &frontier {
                    findings.edge(earlier, txn, REALTIME);
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
                let (key, x, y) = info.ww.expect("a ww edge has its evidence");
                let (x, y) = (self.value(x), self.value(y));
                format!("#{a} {verb} {x} to key {} before #{b} {verb} {y}", self.key(key))
            }
            WR => {
                let (key, x) = info.wr.expect("a wr edge has its evidence");
                let x = self.value(x);
                if self.model == TxnModel::ListAppend {
                    format!("#{b} read key {} up to {x}, which #{a} appended", self.key(key))
                } else {
                    format!("#{b} read {x} from key {}, which #{a} wrote", self.key(key))
                }
            }
            RW => {
                let (key, x, y) = info.rw.expect("an rw edge has its evidence");
                let (key, x, y) = (&key, self.value(x), self.value(y));
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

    fn cycles(&self, options: &TxnOptions, findings: &mut Findings) {
        let node_count = self.txns.len();
        let mut edge_list: Vec<((u32, u32), u8)> = findings.edges.iter().map(|(&k, info)| (k, info.mask)).collect();
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
        // Each level's graph is a subgraph of the last one's: when that one has no cycle, none has.
        let top_mask = WW | WR | RW | levels.last().copied().unwrap_or(0);
        let top = EdgeFiltered::from_fn(&graph, |e: petgraph::graph::EdgeReference<'_, u8>| e.weight() & top_mask != 0);
        if !petgraph::algo::is_cyclic_directed(&top) {
            return;
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
                self.report_cycle(&graph, &cycle, first_bit, extra, findings);
            }
        }
    }

    fn report_cycle(
        &self,
        graph: &DiGraph<usize, u8>,
        cycle: &[EdgeIndex],
        first_bit: u8,
        extra: u8,
        findings: &mut Findings,
    ) {
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
            let info = &findings.edges[&(from as u32, to as u32)];
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
        findings.report(name, explanation, ops, steps);
    }
}
