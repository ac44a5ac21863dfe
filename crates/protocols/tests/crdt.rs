//! CRDT replication under a seeded nemesis: the G-counter, the PN-counter and the OR-set answer
//! every operation that reaches a replica and converge on every seed — replicas end in the same
//! state, and that state holds every acknowledged update (the eventual-convergence checker judges
//! the counters; an add-wins check judges the set); each bug switch is caught within 1,000 seeds.

mod support;

use detsim_check::{check_eventual, operations, EventualOptions, Model, Operation, Outcome, Validity};
use detsim_core::{EventType, History, NodeId, SimTime, Simulation, Value};
use detsim_protocols::crdt::{self, Crdt, CrdtNode};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Instant;
use support::{seeds, FINAL_READ_PROCESS};

const HEAL_AT_MS: u64 = 2_500;
/// Clients stop here; the rest of the run is quiet so that gossip can converge.
const STOP_AT_MS: u64 = 3_500;
const END_MS: u64 = 5_000;
const KEYS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    GCounter,
    PnCounter,
    OrSet,
}

impl Kind {
    fn param(self) -> &'static str {
        match self {
            Kind::GCounter => "g-counter",
            Kind::PnCounter => "pn-counter",
            Kind::OrSet => "or-set",
        }
    }
    fn workload(self) -> WorkloadKind {
        if self == Kind::OrSet {
            WorkloadKind::Set
        } else {
            WorkloadKind::Counter
        }
    }
}

struct Run {
    /// The clients' history, then one final read of every key at every replica.
    history: History,
    description: Vec<String>,
    servers: usize,
    /// Why replicas disagree at the end (empty: they hold identical states).
    divergence: Vec<String>,
    trace_hash: u64,
}

fn run(seed: u64, kind: Kind, mutant: Option<&str>) -> Run {
    let servers = if seed.is_multiple_of(2) { 3 } else { 5 };
    let workload = WorkloadSpec {
        kind: kind.workload(),
        clients: 3,
        keys: KEYS,
        timeout_ns: 500_000_000,
        think_time_ns: 20_000_000,
        stop_at_ns: Some(STOP_AT_MS * 1_000_000),
        ..WorkloadSpec::default()
    };
    let mut params = json!({ "kind": kind.param() });
    if let Some(mutant) = mutant {
        params[mutant] = json!(true);
    }
    let options = support::nemesis_options(HEAL_AT_MS);
    let (spec, plan) = support::spec_under_nemesis(seed, servers, workload, params, &options);
    let mut sim = crdt::build_simulation(&spec).expect("valid spec");
    plan.run(&mut sim, SimTime::from_millis(END_MS), |_| None).expect("run completes");
    let divergence = divergence(&sim, servers, kind);
    let mut history = sim.take_history();
    append_final_reads(&sim, servers, kind, &mut history);
    Run { history, description: plan.description.clone(), servers, divergence, trace_hash: sim.trace_hash() }
}

fn empty(kind: Kind) -> Crdt {
    match kind {
        Kind::GCounter => Crdt::GCounter(Default::default()),
        Kind::PnCounter => Crdt::PnCounter(Default::default()),
        Kind::OrSet => Crdt::OrSet(Default::default()),
    }
}

fn replicas(sim: &Simulation<CrdtNode>, servers: usize) -> Vec<Option<&crdt::CrdtReplica>> {
    (0..servers as u32).map(|i| sim.node(NodeId(i)).and_then(CrdtNode::replica)).collect()
}

/// Replicas hold identical states for every key (a key a replica never saw counts as empty).
fn divergence(sim: &Simulation<CrdtNode>, servers: usize, kind: Kind) -> Vec<String> {
    let replicas = replicas(sim, servers);
    let mut problems: Vec<String> =
        replicas.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| format!("n{} is down", i + 1)).collect();
    let up: Vec<_> = replicas.iter().enumerate().filter_map(|(i, r)| r.map(|r| (i, r))).collect();
    let keys: BTreeSet<Value> = up.iter().flat_map(|(_, r)| r.keys().cloned()).collect();
    let blank = empty(kind);
    for key in keys {
        let states: Vec<(usize, &Crdt)> = up.iter().map(|(i, r)| (*i, r.object(&key).unwrap_or(&blank))).collect();
        if states.windows(2).any(|pair| pair[0].1 != pair[1].1) {
            let reads: Vec<String> = states.iter().map(|(i, s)| format!("n{}: {}", i + 1, s.read())).collect();
            problems.push(format!("key {key}: replicas differ ({})", reads.join(", ")));
        }
    }
    problems
}

/// The test reads every key at every replica directly once the run is over (each read its own
/// process), so the eventual-convergence checker has final reads after the quiet point.
fn append_final_reads(sim: &Simulation<CrdtNode>, servers: usize, kind: Kind, history: &mut History) {
    let mut at_ns = END_MS * 1_000_000;
    for (i, replica) in replicas(sim, servers).into_iter().enumerate() {
        let Some(replica) = replica else { continue };
        for key in 0..KEYS as i64 {
            let process = FINAL_READ_PROCESS + (i * KEYS) as u64 + key as u64;
            let key = Value::Int(key);
            let value = replica.object(&key).map_or_else(|| empty(kind).read(), Crdt::read);
            support::push_final_read(history, at_ns, process, i, &key, value);
            at_ns += 2;
        }
    }
}

/// Counters: the eventual-convergence checker (final reads agree and lie between the acknowledged
/// sum and the acknowledged plus unknown updates).
fn counter_verdict(history: &History) -> Result<(), String> {
    let ops = operations(history).expect("well-formed history");
    // Gossip gets the quiet stretch after the clients stop to converge: only the final reads
    // taken at the end count (a client's read just after the last update may legitimately lag).
    let options = EventualOptions {
        heal_ns: Some(HEAL_AT_MS * 1_000_000),
        settle_ns: (END_MS - HEAL_AT_MS) * 1_000_000,
        model: Some(Model::Counter),
        initial: Value::Int(0),
    };
    let verdict = check_eventual(&ops, &options);
    match verdict.valid {
        Validity::Valid => Ok(()),
        _ => Err(format!(
            "{:?}: {:?} {:#?}",
            verdict.valid,
            verdict.reason,
            verdict.anomalies.iter().map(|a| &a.explanation).collect::<Vec<_>>()
        )),
    }
}

/// OR-set (add wins): final reads agree; every element in them was added; and an element whose
/// acknowledged add no remove could have seen — every remove of it ended before the add began —
/// is there. (The eventual checker's set model has no removes.)
fn or_set_verdict(history: &History) -> Result<(), String> {
    let ops: Vec<Operation> = operations(history).expect("well-formed history");
    let finals: Vec<&Operation> = ops.iter().filter(|op| op.process >= FINAL_READ_PROCESS).collect();
    let mut problems = Vec::new();
    for key in 0..KEYS as i64 {
        let key = Some(Value::Int(key));
        let reads: Vec<&Value> = finals.iter().filter(|op| op.key == key).map(|op| &op.output).collect();
        let Some(agreed) = reads.first().copied() else { continue };
        if reads.iter().any(|r| *r != agreed) {
            problems.push(format!("key {key:?}: final reads disagree: {reads:?}"));
            continue;
        }
        let elements: BTreeSet<Value> = agreed.as_list().unwrap_or_default().iter().cloned().collect();
        let key_ref = &key;
        let of_key = |f: &'static str| ops.iter().filter(move |op| op.key == *key_ref && op.f == f);
        for element in &elements {
            if !of_key("add").any(|a| a.input == *element && a.outcome != Outcome::Fail) {
                problems.push(format!("key {key:?}: {element} is in the set but was never added"));
            }
        }
        for add in of_key("add").filter(|a| a.outcome == Outcome::Ok) {
            let unseen_by_every_remove = of_key("remove").filter(|r| r.input == add.input).all(|r| {
                r.outcome == Outcome::Fail
                    || r.outcome == Outcome::Ok && r.complete_ns.is_some_and(|c| c < add.invoke_ns)
            });
            if unseen_by_every_remove && !elements.contains(&add.input) {
                problems.push(format!(
                    "key {key:?}: add of {} (op {}) was acknowledged and no remove saw it, but it is gone",
                    add.input, add.id
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn verdict(run: &Run, kind: Kind) -> Result<(), String> {
    if !run.divergence.is_empty() {
        return Err(format!("not converged: {:?}", run.divergence));
    }
    match kind {
        Kind::OrSet => or_set_verdict(&run.history),
        _ => counter_verdict(&run.history),
    }
}

fn converges_on_every_seed(test: &str, kind: Kind) {
    let started = Instant::now();
    let (mut ok, mut total) = (0usize, 0usize);
    support::for_each_seed(test, |seed| {
        let run = run(seed, kind, None);
        if let Err(why) = verdict(&run, kind) {
            panic!("{kind:?} seed {seed} ({} replicas): {why}; faults: {:#?}", run.servers, run.description);
        }
        let client_ops: Vec<_> = run.history.events.iter().filter(|e| e.process < FINAL_READ_PROCESS).collect();
        // Always available: a replica never refuses; only an unreachable one leaves a client without
        // an answer.
        let refused: Vec<_> = client_ops.iter().filter(|e| e.kind == EventType::Fail).collect();
        assert!(refused.is_empty(), "{kind:?} seed {seed}: a replica refused {refused:?}");
        ok += client_ops.iter().filter(|e| e.kind == EventType::Ok).count();
        total += client_ops.iter().filter(|e| e.kind != EventType::Invoke).count();
    });
    let share = ok as f64 / total.max(1) as f64;
    eprintln!(
        "crdt {kind:?}: {} seeds converged ({:?}); {ok} of {total} operations ok ({:.1}%)",
        seeds().count(),
        started.elapsed(),
        share * 100.0
    );
    assert!(share > 0.9, "{kind:?}: only {:.1}% of operations were answered", share * 100.0);
}

#[test]
fn g_counter_converges_on_200_seeds() {
    converges_on_every_seed("g_counter_converges_on_200_seeds", Kind::GCounter);
}

#[test]
fn pn_counter_converges_on_200_seeds() {
    converges_on_every_seed("pn_counter_converges_on_200_seeds", Kind::PnCounter);
}

#[test]
fn or_set_converges_on_200_seeds() {
    converges_on_every_seed("or_set_converges_on_200_seeds", Kind::OrSet);
}

fn smallest_failing_seed(test: &str, kind: Kind, mutant: &str) -> u64 {
    support::smallest_failing_seed(test, &format!("crdt mutant {mutant} ({kind:?})"), |seed| {
        verdict(&run(seed, kind, Some(mutant)), kind).err().map(|why| format!(": {why}"))
    })
}

#[test]
fn mutant_merge_sum_is_caught() {
    smallest_failing_seed("mutant_merge_sum_is_caught", Kind::GCounter, "mutant_merge_sum");
}

#[test]
fn mutant_merge_totals_is_caught() {
    smallest_failing_seed("mutant_merge_totals_is_caught", Kind::GCounter, "mutant_merge_totals");
}

#[test]
fn mutant_decrement_own_entry_is_caught() {
    smallest_failing_seed("mutant_decrement_own_entry_is_caught", Kind::PnCounter, "mutant_decrement_own_entry");
}

#[test]
fn mutant_remove_by_element_is_caught() {
    smallest_failing_seed("mutant_remove_by_element_is_caught", Kind::OrSet, "mutant_remove_by_element");
}

#[test]
fn mutant_merge_drops_tombstones_is_caught() {
    smallest_failing_seed("mutant_merge_drops_tombstones_is_caught", Kind::OrSet, "mutant_merge_drops_tombstones");
}

#[test]
fn same_seed_same_trace() {
    for kind in [Kind::GCounter, Kind::PnCounter, Kind::OrSet] {
        let (a, b) = (run(5, kind, None), run(5, kind, None));
        assert_eq!(a.trace_hash, b.trace_hash, "{kind:?}");
        assert_eq!(a.history, b.history, "{kind:?}");
    }
}

#[test]
fn workloads_carry_decrements_and_removes() {
    let pn = run(2, Kind::PnCounter, None);
    assert!(pn.history.events.iter().any(|e| e.f == "add" && e.value.as_int().is_some_and(|v| v < 0)));
    let set = run(2, Kind::OrSet, None);
    assert!(set.history.events.iter().any(|e| e.f == "remove" && e.kind == EventType::Ok));
    // An element is added, removed and added again somewhere in the run.
    let adds = set.history.events.iter().filter(|e| e.f == "add" && e.kind == EventType::Ok).count();
    let distinct: BTreeSet<_> =
        set.history.events.iter().filter(|e| e.f == "add").map(|e| (e.key.clone(), e.value.clone())).collect();
    assert!(adds > distinct.len(), "elements are added more than once");
}

#[test]
fn registry_entries_pick_the_object_and_refuse_a_mismatch() {
    let counter = WorkloadSpec { kind: WorkloadKind::Counter, ..WorkloadSpec::default() };
    let set = WorkloadSpec { kind: WorkloadKind::Set, ..WorkloadSpec::default() };
    let g = detsim_protocols::find("crdt-gcounter").expect("registered");
    let pn = detsim_protocols::find("crdt-pncounter").expect("registered");
    let or = detsim_protocols::find("crdt-orset").expect("registered");
    assert!((g.build)(&ClusterSpec::new(1, 3, counter.clone())).is_ok());
    assert!((pn.build)(&ClusterSpec::new(1, 3, counter.clone())).is_ok());
    assert!((or.build)(&ClusterSpec::new(1, 3, set.clone())).is_ok());
    assert!((or.build)(&ClusterSpec::new(1, 3, counter.clone())).is_err(), "an OR-set does not count");
    let mut spec = ClusterSpec::new(1, 3, counter);
    spec.params = json!({ "kind": "or-set" });
    assert!((g.build)(&spec).is_err(), "the entry's kind wins over a different parameter");
    spec.params = json!({ "gossip_every_ms": 5 });
    assert!(crdt::build_simulation(&spec).is_err(), "unknown parameter");
}
