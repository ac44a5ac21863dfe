//! Two-phase commit: atomic and strictly serializable across 100 seeds of random faults; the
//! blocking window after a coordinator crash (in availability and in the trace); each deliberate
//! bug caught by the atomicity check, with the same scenario passing without it.

use detsim_check::{check_transactions, operations, Operation, Outcome, TxnOptions};
use detsim_core::{Fault, History, MemoryTrace, NodeId, SimTime, Simulation, Value};
use detsim_protocols::two_phase_commit::msg::coordinator_of;
use detsim_protocols::two_phase_commit::*;
use detsim_protocols::workload::nemesis::{NemesisOptions, NemesisPlan};
use detsim_protocols::workload::ClusterLayout;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use std::collections::{BTreeMap, BTreeSet};

const SEEDS: u64 = 100;
const MS: u64 = 1_000_000;
const COORDINATORS: u32 = 2;
const PARTICIPANTS: u32 = 3;

/// Coordinators `n1 n2`, participants `n3..n5`, four clients with two processes each running
/// list-append transactions of up to four micro-ops over 32 keys.
fn spec(seed: u64) -> ClusterSpec {
    let workload = WorkloadSpec {
        kind: WorkloadKind::ListAppend,
        clients: 4,
        concurrency: 2,
        keys: 32,
        timeout_ns: 500 * MS,
        think_time_ns: 20 * MS,
        stop_at_ns: Some(1_600 * MS),
        read_fraction: 0.5,
        ..WorkloadSpec::default()
    };
    let mut spec = ClusterSpec::new(seed, (COORDINATORS + PARTICIPANTS) as usize, workload);
    // A partition also drops the messages already on the wire to the nodes it cuts off.
    spec.network.partition_drops_in_flight = true;
    spec
}

fn participants() -> impl Iterator<Item = NodeId> {
    (COORDINATORS..COORDINATORS + PARTICIPANTS).map(NodeId)
}

fn run(sim: &mut Simulation<TpcNode>, until_ms: u64) {
    sim.run_until(SimTime::from_millis(until_ms)).expect("the run stays within its limits");
}

fn ops_of(history: &History) -> Vec<Operation> {
    operations(history).expect("the workload client records a well-formed history")
}

/// The appends of a transaction operation, as (key, value).
fn appends(op: &Operation) -> Vec<(i64, Value)> {
    let micro = op.input.as_list().expect("a txn carries micro-ops");
    micro
        .iter()
        .filter_map(|m| match m.as_list() {
            Some([f, k, v]) if f.as_str() == Some("append") => Some((k.as_int().expect("int key"), v.clone())),
            _ => None,
        })
        .collect()
}

/// Every key's final list, gathered from the participants (which must all be up, and decided).
fn final_data(sim: &Simulation<TpcNode>, seed: u64) -> BTreeMap<i64, Vec<Value>> {
    let mut data = BTreeMap::new();
    for p in participants() {
        let participant = sim.node(p).and_then(TpcNode::as_participant).expect("participants are up at the end");
        assert!(
            participant.in_doubt().is_empty(),
            "seed {seed}: {p} still in doubt at the end: {:?}",
            participant.in_doubt()
        );
        assert!(participant.locked_keys().is_empty(), "seed {seed}: {p} still holds locks");
        for (key, list) in participant.data() {
            assert!(data.insert(*key, list.clone()).is_none(), "each key lives on one participant");
        }
    }
    data
}

/// All-or-nothing: a committed transaction's appends are all in the final data, an aborted one's
/// none, an unknown one's all or none; no value twice. Returns one line per violation.
fn atomicity_violations(ops: &[Operation], data: &BTreeMap<i64, Vec<Value>>) -> Vec<String> {
    let mut violations = Vec::new();
    for (key, list) in data {
        let distinct: BTreeSet<&Value> = list.iter().collect();
        if distinct.len() != list.len() {
            violations.push(format!("key {key} holds a value twice: {list:?}"));
        }
    }
    for op in ops.iter().filter(|o| o.f == "txn") {
        let writes = appends(op);
        if writes.is_empty() {
            continue;
        }
        let present = writes.iter().filter(|(k, v)| data.get(k).is_some_and(|l| l.contains(v))).count();
        let atomic = match op.outcome {
            Outcome::Ok => present == writes.len(),
            Outcome::Fail => present == 0,
            Outcome::Info => present == 0 || present == writes.len(),
        };
        if !atomic {
            violations.push(format!(
                "op {} ({:?}) has {present} of its {} appends in the final data: {:?}",
                op.id,
                op.outcome,
                writes.len(),
                writes
            ));
        }
    }
    violations
}

fn strict_serializability(ops: &[Operation]) -> detsim_check::Verdict {
    let options = TxnOptions::for_consistency("strict-serializable").expect("a known model");
    check_transactions(ops, &options).expect("the history is well-formed")
}

#[test]
fn two_phase_commit_is_atomic_and_strictly_serializable_under_random_faults() {
    let options = NemesisOptions {
        start_ms: 200,
        heal_at_ms: 1_400,
        mean_interval_ms: 250,
        min_fault_ms: 50,
        max_fault_ms: 400,
        max_down: Some(2),
        ..NemesisOptions::default()
    };
    let (mut committed, mut aborted, mut unknown, mut in_doubt_max_ns) = (0, 0, 0, 0u64);
    for seed in 0..SEEDS {
        let mut spec = spec(seed);
        let plan = NemesisPlan::random(seed, &ClusterLayout::of(&spec), &options);
        plan.apply_to_spec(&mut spec);
        let mut sim = build_two_phase_commit(&spec, &TpcSetup::default()).expect("builds");
        plan.schedule_all(&mut sim).expect("valid faults");
        run(&mut sim, 3_000);
        let data = final_data(&sim, seed);
        for p in participants() {
            let stats = &sim.node(p).and_then(TpcNode::as_participant).expect("up").stats;
            in_doubt_max_ns = in_doubt_max_ns.max(stats.longest_in_doubt_ns);
        }
        let ops = ops_of(&sim.take_history());
        let violations = atomicity_violations(&ops, &data);
        assert!(violations.is_empty(), "seed {seed}: {violations:#?}\nfaults: {:#?}", plan.description);
        let verdict = strict_serializability(&ops);
        assert!(verdict.is_valid(), "seed {seed}: {:?}\nfaults: {:#?}", verdict.anomalies.first(), plan.description);
        for op in ops.iter().filter(|o| o.f == "txn") {
            match op.outcome {
                Outcome::Ok => committed += 1,
                Outcome::Fail => aborted += 1,
                Outcome::Info => unknown += 1,
            }
        }
    }
    eprintln!(
        "2pc over {SEEDS} seeds of random faults: {committed} committed, {aborted} aborted, {unknown} unknown; longest in doubt {:.0} ms",
        in_doubt_max_ns as f64 / 1e6
    );
    // Aborts come from lock conflicts (no waiting), from votes lost to partitions, and from keys
    // held by participants in doubt while a coordinator is down.
    assert!(committed > aborted, "most transactions commit ({committed} vs {aborted} aborted)");
    assert!(aborted > 0 && unknown > 0, "faults make some abort and leave some unknown");
}

/// Steps `sim` until `trigger` says yes (after `from_ms`), returning the time; panics after `limit_ms`.
fn step_until(
    sim: &mut Simulation<TpcNode>,
    from_ms: u64,
    limit_ms: u64,
    seed: u64,
    mut trigger: impl FnMut(&Simulation<TpcNode>) -> bool,
) -> SimTime {
    run(sim, from_ms);
    while sim.now() < SimTime::from_millis(limit_ms) {
        sim.step().expect("steps");
        if trigger(sim) {
            return sim.now();
        }
    }
    panic!("seed {seed}: the trigger never fired before {limit_ms} ms");
}

/// A participant holds a prepared transaction of coordinator `n1` that `n1` has not decided:
/// (participant, transaction).
fn prepared_undecided_by_n1(sim: &Simulation<TpcNode>) -> Option<(NodeId, u64)> {
    let n1 = sim.node(NodeId(0)).and_then(TpcNode::as_coordinator)?;
    participants().find_map(|p| {
        let participant = sim.node(p).and_then(TpcNode::as_participant)?;
        participant
            .in_doubt()
            .into_iter()
            .find(|&txn| coordinator_of(txn) == 0 && n1.awaiting_votes(txn).is_some())
            .map(|txn| (p, txn))
    })
}

#[test]
fn a_coordinator_crash_after_prepare_blocks_the_keys_its_participants_hold() {
    let (mut blocked, mut blocked_total, mut free, mut free_total) = (0, 0, 0, 0);
    let mut waited_ms = Vec::new();
    for seed in 0..SEEDS {
        let spec = spec(seed);
        let mut sim = build_two_phase_commit(&spec, &TpcSetup::default()).expect("builds");
        let trace = MemoryTrace::new();
        sim.set_trace_sink(Box::new(trace.clone()));
        let mut found = None;
        let crash_at = step_until(&mut sim, 300, 1_000, seed, |sim| {
            found = prepared_undecided_by_n1(sim);
            found.is_some()
        });
        let (participant, txn) = found.expect("the trigger found one");
        // Coordinator n1 crashes having sent prepares and collected some votes; back 400 ms later.
        let restart_at = SimTime(crash_at.0 + 400 * MS);
        sim.schedule_fault(crash_at, Fault::Crash { node: NodeId(0) }).expect("valid");
        sim.schedule_fault(restart_at, Fault::Restart { node: NodeId(0) }).expect("valid");
        let blocked_keys: BTreeSet<i64> = {
            let p = sim.node(participant).and_then(TpcNode::as_participant).expect("up");
            p.prepared_keys(txn).expect("prepared").iter().copied().collect()
        };
        run(&mut sim, 3_000);
        let data = final_data(&sim, seed);
        let ops = ops_of(&sim.take_history());
        let violations = atomicity_violations(&ops, &data);
        assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
        assert!(strict_serializability(&ops).is_valid(), "seed {seed}: not strictly serializable");
        // Transactions through the other coordinator, n2 (clients c2 and c4), while n1 is down:
        // those needing a key the in-doubt participant holds fail, the others go through.
        // (Invoked early enough that its prepare reaches the participant before n1 is back.)
        let window = (crash_at.0 + 20 * MS)..(restart_at.0 - 20 * MS);
        for op in ops.iter().filter(|o| o.f == "txn" && window.contains(&o.invoke_ns)) {
            if client_index_of(op).is_multiple_of(2) {
                continue; // c1 and c3 use n1, which is down
            }
            let keys = txn_keys(op);
            let ok = usize::from(op.outcome == Outcome::Ok);
            if keys.iter().any(|k| blocked_keys.contains(k)) {
                blocked += ok;
                blocked_total += 1;
            } else {
                free += ok;
                free_total += 1;
            }
        }
        // The trace says when the participant started being in doubt and when it stopped.
        let notes: Vec<String> =
            trace.records().into_iter().filter(|r| r.ev == "note").filter_map(|r| r.text).collect();
        let label = format!("transaction {txn:#x}");
        assert!(
            notes.iter().any(|n| n.starts_with(&format!("{label} in doubt"))),
            "seed {seed}: the trace shows the participant in doubt"
        );
        let resolved = notes
            .iter()
            .find(|n| n.starts_with(&format!("{label} no longer in doubt: abort")))
            .unwrap_or_else(|| panic!("seed {seed}: the trace shows the presumed abort: {notes:#?}"));
        let ms: f64 = resolved
            .split(" after ")
            .nth(1)
            .and_then(|t| t.split(" ms").next())
            .and_then(|t| t.parse().ok())
            .expect("a duration");
        assert!(ms >= 390.0, "seed {seed}: in doubt for the whole outage ({ms} ms)");
        waited_ms.push(ms);
    }
    let blocked_availability = blocked as f64 / blocked_total as f64;
    let free_availability = free as f64 / free_total as f64;
    waited_ms.sort_by(f64::total_cmp);
    eprintln!(
        "coordinator n1 down 400 ms after prepare: n2's transactions on blocked keys {blocked}/{blocked_total} ok ({blocked_availability:.3}), \
         on other keys {free}/{free_total} ({free_availability:.3}); in doubt {:.0}..{:.0} ms",
        waited_ms[0],
        waited_ms[waited_ms.len() - 1]
    );
    assert!(blocked_total > 100 && free_total > 100, "both kinds of transaction ran");
    assert_eq!(blocked, 0, "no transaction gets a key an in-doubt participant holds");
    assert!(free_availability > 0.6, "the rest of the data stays available");
}

/// The process ids of client `ci` are `i-1 + clients * n`: the client index of an op.
fn client_index_of(op: &Operation) -> u64 {
    op.process % 4
}

fn txn_keys(op: &Operation) -> BTreeSet<i64> {
    op.input
        .as_list()
        .expect("micro-ops")
        .iter()
        .filter_map(|m| m.as_list().and_then(|l| l.get(1)).and_then(Value::as_int))
        .collect()
}

/// A participant holds a prepared transaction, with appends, whose vote its coordinator has not
/// received.
fn prepared_vote_in_flight(sim: &Simulation<TpcNode>) -> Option<NodeId> {
    participants().find(|&p| {
        let Some(participant) = sim.node(p).and_then(TpcNode::as_participant) else { return false };
        participant.in_doubt().into_iter().any(|txn| {
            if participant.prepared_appends(txn).is_none_or(|appends| appends == 0) {
                return false; // a read-only share: committing it changes nothing
            }
            let coordinator = NodeId(coordinator_of(txn) as u32);
            sim.node(coordinator)
                .and_then(TpcNode::as_coordinator)
                .and_then(|c| c.awaiting_votes(txn))
                .is_some_and(|awaiting| awaiting.contains(&p))
        })
    })
}

/// Isolates a participant whose yes vote is on the way: the coordinator aborts for want of its
/// vote, the participant stays in doubt for 400 ms. Returns the violations found.
fn isolate_in_doubt_participant(seed: u64, setup: &TpcSetup) -> Vec<String> {
    let mut sim = build_two_phase_commit(&spec(seed), setup).expect("builds");
    let mut found = None;
    let at = step_until(&mut sim, 300, 1_000, seed, |sim| {
        found = prepared_vote_in_flight(sim);
        found.is_some()
    });
    let node = found.expect("found");
    sim.schedule_fault(at, Fault::Isolate { node }).expect("valid");
    sim.schedule_fault(SimTime(at.0 + 400 * MS), Fault::Heal).expect("valid");
    run(&mut sim, 3_000);
    let data = final_data(&sim, seed);
    let ops = ops_of(&sim.take_history());
    let mut violations = atomicity_violations(&ops, &data);
    let verdict = strict_serializability(&ops);
    violations.extend(verdict.anomalies.iter().map(|a| format!("{}: {}", a.name, a.explanation)));
    violations
}

#[test]
fn an_in_doubt_participant_that_commits_on_its_own_breaks_atomicity() {
    let mut caught = 0;
    for seed in 0..SEEDS {
        let correct = isolate_in_doubt_participant(seed, &TpcSetup::default());
        assert!(correct.is_empty(), "seed {seed}: waiting it out is atomic: {correct:#?}");
        let mut buggy = TpcSetup::default();
        buggy.participant.bug_heuristic_commit_after_ns = Some(200 * MS);
        caught += usize::from(!isolate_in_doubt_participant(seed, &buggy).is_empty());
    }
    eprintln!("heuristic commit after 200 ms in doubt: atomicity broken in {caught}/{SEEDS} seeds");
    assert!(caught >= 90, "the checkers catch the heuristic commit ({caught} seeds)");
}

/// Crashes coordinator `n1` right after it committed a transaction, isolating one of the
/// transaction's participants with appends to apply at the same instant (so its commit message
/// is lost).
fn crash_after_commit(seed: u64, setup: &TpcSetup) -> Vec<String> {
    let mut sim = build_two_phase_commit(&spec(seed), setup).expect("builds");
    let mut found = None;
    let at = step_until(&mut sim, 300, 1_000, seed, |sim| {
        let n1 = sim.node(NodeId(0)).and_then(TpcNode::as_coordinator).expect("n1 up");
        // Just committed, and a participant with appends to apply has not heard yet.
        found = n1.unconfirmed_commits().into_iter().find_map(|(txn, waiting)| {
            waiting.into_iter().find(|&p| {
                let participant = sim.node(p).and_then(TpcNode::as_participant);
                participant.and_then(|p| p.prepared_appends(txn)).is_some_and(|appends| appends > 0)
            })
        });
        found.is_some()
    });
    let victim = found.expect("found");
    sim.schedule_fault(at, Fault::Isolate { node: victim }).expect("valid");
    sim.schedule_fault(at, Fault::Crash { node: NodeId(0) }).expect("valid");
    sim.schedule_fault(SimTime(at.0 + 200 * MS), Fault::Restart { node: NodeId(0) }).expect("valid");
    sim.schedule_fault(SimTime(at.0 + 300 * MS), Fault::Heal).expect("valid");
    run(&mut sim, 3_000);
    let data = final_data(&sim, seed);
    let ops = ops_of(&sim.take_history());
    atomicity_violations(&ops, &data)
}

#[test]
fn a_coordinator_without_a_decision_log_forgets_commits_it_announced() {
    let mut caught = 0;
    for seed in 0..SEEDS {
        let correct = crash_after_commit(seed, &TpcSetup::default());
        assert!(correct.is_empty(), "seed {seed}: the logged decision is resent after the restart: {correct:#?}");
        let mut buggy = TpcSetup::default();
        buggy.coordinator.bug_no_decision_log = true;
        caught += usize::from(!crash_after_commit(seed, &buggy).is_empty());
    }
    eprintln!("no decision log: atomicity broken in {caught}/{SEEDS} seeds");
    assert!(caught >= 95, "presumed abort after the crash contradicts the announced commit ({caught} seeds)");
}

#[test]
fn same_seed_same_trace() {
    let hash = |seed| {
        let mut sim = build_two_phase_commit(&spec(seed), &TpcSetup::default()).expect("builds");
        sim.schedule_fault(SimTime::from_millis(500), Fault::Crash { node: NodeId(0) }).expect("valid");
        sim.schedule_fault(SimTime::from_millis(700), Fault::Restart { node: NodeId(0) }).expect("valid");
        run(&mut sim, 2_000);
        sim.trace_hash()
    };
    assert_eq!(hash(3), hash(3));
    assert_ne!(hash(3), hash(4));
}

#[test]
fn registry_entry_builds_and_rejects_bad_parameters() {
    let entry = detsim_protocols::find("two-phase-commit").expect("registered");
    assert_eq!(entry.workloads, &[WorkloadKind::ListAppend]);
    let mut sim = (entry.build)(&spec(1)).expect("builds");
    sim.run_until(SimTime::from_millis(1_000)).expect("runs");
    let ops = ops_of(sim.history());
    assert!(ops.iter().filter(|o| o.outcome == Outcome::Ok).count() > 100, "transactions commit");
    let mut bad = spec(1);
    bad.params = serde_json::json!({ "participant": { "no_such_parameter": 1 } });
    assert!((entry.build)(&bad).is_err(), "unknown parameters are refused");
    let mut bad = spec(1);
    bad.nodes = 2;
    let error = (entry.build)(&bad).err().expect("refused");
    assert!(error.contains("participant"), "{error}");
    let mut bad = spec(1);
    bad.workload.kind = WorkloadKind::Register;
    assert!((entry.build)(&bad).is_err(), "only list-append transactions");
}
