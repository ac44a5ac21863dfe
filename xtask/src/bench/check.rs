//! Benchmarks of the checkers: every porcupine-kv history checked key by key ("check-porcupine-*",
//! target < 50 ms each), every c10 and c50 file as one partition ("check-nopartition-*"; c10's target
//! is < 1 s, where Porcupine v1.3.0 takes 4.7 s and 7.2 s), 100,000 list-append transactions through the Elle
//! checker ("check-elle-100k", target < 2 s), and beside them the simplest baselines: the same
//! Wing & Gong search without memoisation on the small files, and pairing the 100,000 transactions
//! without analysing them.

use super::{median, timed, Bench, BenchResult};
use detsim_check::{
    check_linearizable, check_transactions, operations, parse_history, LinearizabilityOptions, Model, Operation,
    Outcome, TxnOptions, Validity,
};
use detsim_core::history::{EventType, History, Op, Value};
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn benches() -> Vec<Bench> {
    vec![
        Bench { name: "check-porcupine", run: porcupine },
        Bench { name: "check-nopartition", run: no_partition },
        Bench { name: "check-elle", run: elle },
        Bench { name: "check-baseline", run: baseline },
    ]
}

const FILES: [&str; 6] = ["c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad"];

/// The porcupine-kv data set: `shared/data/` beside the checkout (or one level further up from a
/// worktree).
fn data(file: &str) -> String {
    let candidates = [
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/porcupine-kv"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/porcupine-kv"),
    ];
    let dir = candidates.iter().map(PathBuf::from).find(|dir| dir.join("c01-ok.txt").is_file());
    let dir = dir.unwrap_or_else(|| panic!("the porcupine-kv data set is missing; looked in {candidates:?}"));
    std::fs::read_to_string(dir.join(format!("{file}.txt"))).expect("the data set is readable")
}

fn expected(file: &str) -> Validity {
    if file.ends_with("-ok") {
        Validity::Valid
    } else {
        Validity::Invalid
    }
}

/// CPU seconds this thread has run (from /proc/thread-self/schedstat; 0 where that is missing).
/// On a shared machine it moves much less than wall time with the load.
fn thread_cpu_s() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    text.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()).map_or(0.0, |ns| ns / 1e9)
}

/// Times `work` in wall and thread CPU seconds.
fn timed_both<T>(work: impl FnOnce() -> T) -> (T, f64, f64) {
    let cpu_before = thread_cpu_s();
    let (value, wall_s) = timed(work);
    (value, wall_s, thread_cpu_s() - cpu_before)
}

/// Checks `history` `runs` times: the verdict, the operations, the median wall and CPU seconds.
fn median_check(history: &History, options: &LinearizabilityOptions, runs: usize) -> (Validity, usize, f64, f64) {
    let (mut walls, mut cpus) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let mut outcome = (Validity::Unknown, 0);
    for _ in 0..runs {
        let (verdict, wall_s, cpu_s) =
            timed_both(|| check_linearizable(history, Model::KeyValue, options).expect("the data set is well formed"));
        outcome = (verdict.valid, verdict.ops);
        walls.push(wall_s);
        cpus.push(cpu_s);
    }
    (outcome.0, outcome.1, median(walls), median(cpus))
}

fn porcupine() -> Vec<BenchResult> {
    FILES
        .iter()
        .map(|file| {
            let history = parse_history(&data(file), None).expect("the data set parses");
            let (valid, ops, wall_s, cpu_s) = median_check(&history, &LinearizabilityOptions::default(), 5);
            assert_eq!(valid, expected(file), "{file} gives its expected verdict");
            BenchResult::new(&format!("check-porcupine-{file}"), ops as u64, wall_s)
                .with("unit", "operations checked for linearizability (kv model, partitioned by key; median of 5)")
                .with("valid", valid.to_json())
                .with("cpu_s", cpu_s)
                .with("target_wall_s", 0.05)
        })
        .collect()
}

fn no_partition() -> Vec<BenchResult> {
    // c10 is decided by the whole-history search; c50 runs past its 500,000 steps and is settled key
    // by key, then checked whole (Porcupine's own suite does not check c50 unpartitioned).
    [("c10-ok", Some(4.7)), ("c10-bad", Some(7.2)), ("c50-ok", None), ("c50-bad", None)]
        .iter()
        .map(|&(file, porcupine_s)| {
            let history = parse_history(&data(file), None).expect("the data set parses");
            let options = LinearizabilityOptions { partition: false, ..LinearizabilityOptions::default() };
            let (valid, ops, wall_s, cpu_s) = median_check(&history, &options, 3);
            assert_eq!(valid, expected(file), "{file} gives its expected verdict");
            let result = BenchResult::new(&format!("check-nopartition-{file}"), ops as u64, wall_s)
                .with("unit", "operations checked for linearizability as one partition (kv model; median of 3)")
                .with("valid", valid.to_json())
                .with("cpu_s", cpu_s);
            match porcupine_s {
                Some(porcupine_s) => result.with("target_wall_s", 1.0).with("porcupine_v1_3_0_wall_s", porcupine_s),
                None => result,
            }
        })
        .collect()
}

/// A strictly serializable list-append history: `clients` processes run transactions of one to four
/// micro-ops; each takes effect atomically at a random moment between its invocation and its
/// completion. Keys retire after 32 appends (as Elle's generator does), so lists stay short.
pub fn list_append_history(transactions: usize, clients: usize, seed: u64) -> History {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut lists: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    let (mut first_key, mut next_value) = (0i64, 1i64);
    let active_keys = 8i64;
    // Per client: the invoked txn waiting to take effect, or taken effect and waiting to complete.
    let mut running: Vec<Option<(Op, Option<Value>)>> = vec![None; clients];
    let mut history = History::new();
    let (mut invoked, mut time) = (0usize, 0u64);
    while invoked < transactions || running.iter().any(Option::is_some) {
        time += 1;
        let client = rng.random_range(0..clients);
        match running[client].take() {
            None if invoked < transactions => {
                let micro_ops: Vec<Value> = (0..rng.random_range(1..=4))
                    .map(|_| {
                        let key = Value::Int(first_key + rng.random_range(0..active_keys));
                        if rng.random_bool(0.5) {
                            Value::List(vec![Value::from("r"), key, Value::Nil])
                        } else {
                            next_value += 1;
                            Value::List(vec![Value::from("append"), key, Value::Int(next_value)])
                        }
                    })
                    .collect();
                let op = Op::new("txn", None, Value::List(micro_ops));
                history.push(time, client as u64, EventType::Invoke, op.clone(), None, None);
                running[client] = Some((op, None));
                invoked += 1;
            }
            None => {}
            Some((op, None)) => {
                // Take effect now.
                let micro_ops = op.value.as_list().expect("a txn holds micro-ops");
                let mut filled = Vec::with_capacity(micro_ops.len());
                for micro in micro_ops {
                    let [f, key, value] = micro.as_list().expect("[f k v]") else { unreachable!("[f k v]") };
                    let k = key.as_int().expect("integer keys");
                    let list = lists.entry(k).or_default();
                    if f.as_str() == Some("append") {
                        list.push(value.clone());
                        if list.len() >= 32 && k == first_key {
                            first_key += 1;
                        }
                        filled.push(micro.clone());
                    } else {
                        filled.push(Value::List(vec![f.clone(), key.clone(), Value::List(list.clone())]));
                    }
                }
                running[client] = Some((op, Some(Value::List(filled))));
            }
            Some((_, Some(result))) => {
                history.push(time, client as u64, EventType::Ok, Op::new("txn", None, result), None, None);
            }
        }
    }
    history
}

fn elle() -> Vec<BenchResult> {
    let history = list_append_history(100_000, 10, 7);
    let ops = operations(&history).expect("a generated history is well formed");
    let mut results = Vec::new();
    for (consistency, label) in [("strict-serializable", "strict"), ("serializable", "serializable")] {
        let options = TxnOptions::for_consistency(consistency).expect("a known consistency model");
        let (mut walls, mut cpus) = (Vec::new(), Vec::new());
        let mut valid = Validity::Unknown;
        for _ in 0..3 {
            let (verdict, wall_s, cpu_s) = timed_both(|| check_transactions(&ops, &options).expect("well formed"));
            assert_eq!(verdict.valid, Validity::Valid, "the generated history is strictly serializable:\n{verdict}");
            valid = verdict.valid;
            walls.push(wall_s);
            cpus.push(cpu_s);
        }
        results.push(
            BenchResult::new(&format!("check-elle-100k-{label}"), ops.len() as u64, median(walls))
                .with("unit", format!("list-append transactions analysed for {consistency} (10 clients; median of 3)"))
                .with("valid", valid.to_json())
                .with("cpu_s", median(cpus))
                .with("target_wall_s", 2.0),
        );
    }
    results
}

// ---- baselines ------------------------------------------------------------------------------------------

/// Wing & Gong's search without memoisation on the kv model written out plainly: the simplest
/// correct checker. Key by key when `partition`, else all keys at once. Gives up after
/// `step_limit` steps (`None`).
fn unmemoised(ops: &[Operation], partition: bool, step_limit: u64) -> (Option<bool>, u64) {
    let mut groups: BTreeMap<Option<Value>, Vec<&Operation>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.outcome == Outcome::Ok) {
        groups.entry(if partition { op.key.clone() } else { None }).or_default().push(op);
    }
    let mut steps = 0u64;
    for ops in groups.values() {
        let mut placed = vec![false; ops.len()];
        match search(ops, &mut placed, &mut BTreeMap::new(), &mut steps, step_limit) {
            Some(true) => {}
            other => return (other, steps),
        }
    }
    (Some(true), steps)
}

fn search(
    ops: &[&Operation],
    placed: &mut [bool],
    state: &mut BTreeMap<Option<Value>, String>,
    steps: &mut u64,
    limit: u64,
) -> Option<bool> {
    if placed.iter().all(|&p| p) {
        return Some(true);
    }
    for i in 0..ops.len() {
        *steps += 1;
        if *steps > limit {
            return None;
        }
        if placed[i] || (0..ops.len()).any(|j| !placed[j] && j != i && ops[j].precedes(ops[i])) {
            continue;
        }
        let op = ops[i];
        let current = state.get(&op.key).cloned().unwrap_or_default();
        let next = match op.f.as_str() {
            "get" if op.output.as_str().unwrap_or("") == current => current.clone(),
            "get" => continue,
            "put" => op.input.as_str().unwrap_or("").to_string(),
            _ => format!("{current}{}", op.input.as_str().unwrap_or("")),
        };
        placed[i] = true;
        state.insert(op.key.clone(), next);
        let found = search(ops, placed, state, steps, limit);
        state.insert(op.key.clone(), current);
        placed[i] = false;
        if found != Some(false) {
            return found;
        }
    }
    Some(false)
}

fn baseline() -> Vec<BenchResult> {
    let mut results = Vec::new();
    for (file, partition, limit) in [
        ("c01-ok", true, 20_000_000),
        ("c01-bad", true, 20_000_000),
        ("c10-ok", true, 20_000_000),
        ("c50-ok", true, 20_000_000),
        ("c10-ok", false, 20_000_000),
    ] {
        let history = parse_history(&data(file), None).expect("the data set parses");
        let ops = operations(&history).expect("well formed");
        let ((verdict, steps), wall_s, cpu_s) = timed_both(|| unmemoised(&ops, partition, limit));
        if let Some(valid) = verdict {
            assert_eq!(valid, expected(file) == Validity::Valid, "{file}: the baseline agrees");
        }
        let name = if partition {
            format!("check-baseline-unmemoised-{file}")
        } else {
            format!("check-baseline-unmemoised-nopartition-{file}")
        };
        results.push(
            BenchResult::new(&name, ops.len() as u64, wall_s)
                .with("unit", "operations checked by the plain Wing & Gong search (no memo)")
                .with("partitioned", partition)
                .with("search_steps", steps)
                .with("cpu_s", cpu_s)
                .with("gave_up_after_steps", if verdict.is_none() { Some(limit) } else { None }),
        );
    }
    let history = list_append_history(100_000, 10, 7);
    let (ops, wall_s, cpu_s) = timed_both(|| operations(&history).expect("well formed"));
    results.push(
        BenchResult::new("check-baseline-elle-pairing", ops.len() as u64, wall_s).with("cpu_s", cpu_s).with(
            "unit",
            "transactions paired into operations only (the part of check-elle-100k that is not analysis)",
        ),
    );
    results
}
