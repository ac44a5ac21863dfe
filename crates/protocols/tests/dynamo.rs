//! The Dynamo-style quorum store under a seeded nemesis: available through partitions, converged
//! after the heal (the eventual-convergence checker agrees), yet not linearizable on some seeds —
//! the AP side of CAP; last-writer-wins under clock faults loses acknowledged writes on some seeds;
//! with strict quorums, R + W > N and good clocks no read misses a completed write; the bug switches
//! (R + W <= N sold as strong, read repair that restamps) are caught by the availability report's
//! stale-read count within 1,000 seeds.

mod support;

use detsim_check::{
    availability_with_model, check_eventual, operations, EventualOptions, FaultWindow, Model, Validity,
};
use detsim_core::{EventType, History, NodeId, SimTime, Simulation, Value};
use detsim_protocols::dynamo::{self, DynamoNode};
use detsim_protocols::workload::nemesis::NemesisOptions;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use serde_json::json;
use std::time::Instant;
use support::{seeds, FINAL_READ_PROCESS};

const HEAL_AT_MS: u64 = 2_500;
/// Clients stop here; the rest of the run is quiet so that replicas can converge.
const STOP_AT_MS: u64 = 3_500;
const END_MS: u64 = 5_000;
const KEYS: usize = 3;

struct Run {
    history: History,
    description: Vec<String>,
    servers: usize,
    /// Why the replicas disagree at the end (empty: converged).
    divergence: Vec<String>,
    trace_hash: u64,
}

fn nemesis(clocks: bool) -> NemesisOptions {
    NemesisOptions { clocks, ..support::nemesis_options(HEAL_AT_MS) }
}

fn run(seed: u64, params: serde_json::Value, options: &NemesisOptions) -> Run {
    // Swarm testing: 4 or 5 storage nodes, so a sloppy quorum has fallbacks beyond the N = 3 homes.
    let servers = if seed.is_multiple_of(2) { 4 } else { 5 };
    let workload = WorkloadSpec {
        kind: WorkloadKind::Register,
        clients: 3,
        keys: KEYS,
        timeout_ns: 800_000_000,
        think_time_ns: 20_000_000,
        stop_at_ns: Some(STOP_AT_MS * 1_000_000),
        // Dynamo refuses cas: fewer writes are wasted on it with more reads.
        read_fraction: 0.5,
        ..WorkloadSpec::default()
    };
    let (spec, plan) = support::spec_under_nemesis(seed, servers, workload, params, options);
    let mut sim = dynamo::build_simulation(&spec).expect("valid spec");
    plan.run(&mut sim, SimTime::from_millis(END_MS), |_| None).expect("run completes");
    let divergence = divergence(&sim, servers);
    let mut history = sim.take_history();
    append_final_reads(&sim, servers, &mut history);
    Run { history, description: plan.description.clone(), servers, divergence, trace_hash: sim.trace_hash() }
}

/// Every key's home replicas hold the same versions, and no hint waits for delivery.
fn divergence(sim: &Simulation<DynamoNode>, servers: usize) -> Vec<String> {
    let nodes: Vec<_> = (0..servers as u32).map(|i| sim.node(NodeId(i)).and_then(DynamoNode::server)).collect();
    let mut problems = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        match node {
            None => problems.push(format!("n{} is down at the end", i + 1)),
            Some(server) if server.hint_count() > 0 => {
                problems.push(format!("n{} still holds {} hints", i + 1, server.hint_count()))
            }
            Some(_) => {}
        }
    }
    let Some(any) = nodes.iter().flatten().next() else { return problems };
    for key in 0..KEYS as i64 {
        let key = Value::Int(key);
        let homes = any.homes(&key);
        let held: Vec<_> = homes.iter().filter_map(|h| nodes[h.index()].map(|s| (*h, s.versions(&key)))).collect();
        if held.windows(2).any(|pair| pair[0].1 != pair[1].1) {
            let summary: Vec<String> = held
                .iter()
                .map(|(h, v)| format!("n{}: {:?}", h.0 + 1, v.iter().map(|x| &x.value).collect::<Vec<_>>()))
                .collect();
            problems.push(format!("key {key}: replicas differ: {}", summary.join(", ")));
        }
    }
    problems
}

/// The test reads every key at every home replica directly once the run is over (each read its
/// own process, the value that replica alone would return), so the eventual-convergence checker has
/// final reads after the quiet point.
fn append_final_reads(sim: &Simulation<DynamoNode>, servers: usize, history: &mut History) {
    let mut at_ns = END_MS * 1_000_000;
    let Some(any) = (0..servers as u32).find_map(|i| sim.node(NodeId(i)).and_then(DynamoNode::server)) else {
        return;
    };
    for key in 0..KEYS as i64 {
        let key = Value::Int(key);
        for home in any.homes(&key) {
            let Some(replica) = sim.node(home).and_then(DynamoNode::server) else { continue };
            let process = FINAL_READ_PROCESS + (key.as_int().expect("int key") as u64) * 64 + u64::from(home.0);
            support::push_final_read(history, at_ns, process, home.index(), &key, replica.resolved(&key));
            at_ns += 2;
        }
    }
}

/// The eventual-convergence checker's anomalies (empty: converged and nothing acknowledged lost).
fn eventual_anomalies(history: &History) -> Vec<(String, String)> {
    let ops = operations(history).expect("well-formed history");
    let options = EventualOptions {
        heal_ns: Some(HEAL_AT_MS * 1_000_000),
        // Only the final reads at the end count: clients' reads right after the last write may lag.
        settle_ns: (END_MS - HEAL_AT_MS) * 1_000_000,
        model: Some(Model::Register),
        ..EventualOptions::default()
    };
    let verdict = check_eventual(&ops, &options);
    assert_ne!(verdict.valid, Validity::Unknown, "final reads were judged: {:?}", verdict.reason);
    verdict.anomalies.into_iter().map(|a| (a.name, a.explanation)).collect()
}

/// The availability report of the clients' operations (cas left out: Dynamo refuses it by design,
/// an answer but not a service): the share that succeeded while faults were on, and the reads that
/// missed a write acknowledged before they began.
fn report(history: &History) -> detsim_check::AvailabilityReport {
    let ops: Vec<_> = operations(history)
        .expect("well-formed history")
        .into_iter()
        .filter(|op| op.f != "cas" && op.process < FINAL_READ_PROCESS)
        .collect();
    let faults = [FaultWindow::new(0, HEAL_AT_MS * 1_000_000)];
    availability_with_model(&ops, &faults, Some(Model::Register))
}

#[test]
fn dynamo_stays_available_and_converges_yet_is_not_linearizable() {
    let started = Instant::now();
    let options = nemesis(true);
    let (mut ok, mut total) = (0, 0);
    let (mut non_linearizable, mut lost_writes) = (Vec::new(), Vec::new());
    let mut worst = (f64::MAX, 0);
    support::for_each_seed("dynamo_stays_available_and_converges_yet_is_not_linearizable", |seed| {
        let run = run(seed, json!({}), &options);
        assert!(
            run.divergence.is_empty(),
            "seed {seed} ({} servers): replicas did not converge: {:#?}; faults: {:#?}",
            run.servers,
            run.divergence,
            run.description
        );
        // Converged by the checker too: final reads agree and hold written values. Losing an
        // acknowledged write is allowed here, and counted: last-writer-wins under clock faults.
        let anomalies = eventual_anomalies(&run.history);
        let bad: Vec<_> = anomalies.iter().filter(|(name, _)| name != "lost-write").collect();
        assert!(bad.is_empty(), "seed {seed}: {bad:#?}; faults: {:#?}", run.description);
        if !anomalies.is_empty() {
            lost_writes.push(seed);
        }
        let inside = report(&run.history).inside_faults;
        ok += inside.ok;
        total += inside.ops;
        let share = inside.success_fraction.unwrap_or(1.0);
        if share < worst.0 {
            worst = (share, seed);
        }
        if support::linearizable(&run.history, Model::CasRegister) == Validity::Invalid {
            non_linearizable.push(seed);
        }
    });
    let share = ok as f64 / total.max(1) as f64;
    eprintln!(
        "dynamo over {} seeds ({:?}): {ok} of {total} operations during faults ok ({:.1}%, worst seed {} at {:.1}%); \
         not linearizable on {} seeds (smallest {:?}); last-writer-wins lost an acknowledged write on {} seeds \
         (smallest {:?})",
        seeds().count(),
        started.elapsed(),
        share * 100.0,
        worst.1,
        worst.0 * 100.0,
        non_linearizable.len(),
        non_linearizable.first(),
        lost_writes.len(),
        lost_writes.first(),
    );
    // Available: almost every operation during the faults succeeds (a CP store loses whole sides).
    assert!(worst.0 > 0.75, "seed {} served only {:.1}% during faults", worst.1, worst.0 * 100.0);
    if seeds().count() > 1 {
        // Judged over the seed range (a replay of one seed only prints what it shows).
        assert!(share > 0.95, "only {:.1}% of operations succeeded during faults", share * 100.0);
        assert!(!non_linearizable.is_empty(), "an AP store should fail linearizability on some seed");
        assert!(!lost_writes.is_empty(), "last-writer-wins under clock faults should lose a write on some seed");
    }
}

#[test]
fn without_clock_faults_or_resends_dynamo_loses_no_acknowledged_write() {
    // Timestamps from good clocks order writes as real time does, and without resends no old
    // write is coordinated twice: the converged value is then always a latest write.
    let options = nemesis(false);
    support::for_each_seed("without_clock_faults_or_resends_dynamo_loses_no_acknowledged_write", |seed| {
        let run = run(seed, json!({ "client_resend_ms": null }), &options);
        assert!(run.divergence.is_empty(), "seed {seed}: {:#?}", run.divergence);
        let anomalies = eventual_anomalies(&run.history);
        assert!(anomalies.is_empty(), "seed {seed}: {anomalies:#?}; faults: {:#?}", run.description);
    });
}

/// Strict quorums (no fallbacks) that intersect, clocks without faults and clients that do not
/// resend (a resent write coordinated late gets a fresh timestamp and can overwrite newer writes):
/// the setting in which Dynamo's quorums mean something.
fn strict(extra: serde_json::Value) -> serde_json::Value {
    let mut params = json!({
        "sloppy_quorum": false,
        "replicas_n": 3,
        "read_quorum_r": 2,
        "write_quorum_w": 2,
        "client_resend_ms": null,
    });
    for (k, v) in extra.as_object().expect("an object") {
        params[k] = v.clone();
    }
    params
}

#[test]
fn strict_intersecting_quorums_never_miss_a_completed_write() {
    let options = nemesis(false);
    let mut reads = 0;
    support::for_each_seed("strict_intersecting_quorums_never_miss_a_completed_write", |seed| {
        let run = run(seed, strict(json!({})), &options);
        let report = report(&run.history);
        assert_eq!(
            report.stale_reads, 0,
            "seed {seed}: stale read {:#?}; faults: {:#?}",
            report.worst_stale_read, run.description
        );
        assert!(run.divergence.is_empty(), "seed {seed}: {:#?}", run.divergence);
        reads += report.reads;
    });
    assert!(reads > 5 * seeds().count(), "the check judged reads: {reads}");
}

#[test]
fn vector_clocks_converge_too() {
    let options = nemesis(true);
    for seed in 0..60 {
        let run = run(seed, json!({ "versioning": "vector-clock" }), &options);
        assert!(run.divergence.is_empty(), "seed {seed}: {:#?}; faults: {:#?}", run.divergence, run.description);
    }
}

fn smallest_stale_seed(test: &str, name: &str, params: serde_json::Value) -> u64 {
    let options = nemesis(false);
    support::smallest_failing_seed(test, &format!("dynamo mutant {name}"), |seed| {
        let run = run(seed, params.clone(), &options);
        let report = report(&run.history);
        let stale = report.worst_stale_read.as_ref()?;
        Some(format!(
            ": {} of {} reads stale, worst by {}ms (read {} missed write {}); faults:\n  {}",
            report.stale_reads,
            report.reads,
            stale.staleness_ns / 1_000_000,
            stale.read.output,
            stale.missed.input,
            run.description.join("\n  ")
        ))
    })
}

#[test]
fn mutant_non_intersecting_quorums_are_caught() {
    // R + W <= N sold as "strict": a read quorum can miss every replica that acknowledged a write.
    smallest_stale_seed(
        "mutant_non_intersecting_quorums_are_caught",
        "r1-w1-n3",
        strict(json!({ "read_quorum_r": 1, "write_quorum_w": 1 })),
    );
}

#[test]
fn mutant_repair_restamps_is_caught() {
    smallest_stale_seed(
        "mutant_repair_restamps_is_caught",
        "repair-restamps",
        strict(json!({ "mutant_repair_restamps": true })),
    );
}

#[test]
fn same_seed_same_trace() {
    let first = run(11, json!({}), &nemesis(true));
    let second = run(11, json!({}), &nemesis(true));
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.history, second.history);
}

#[test]
fn bad_parameters_are_rejected() {
    let mut spec = ClusterSpec::new(1, 4, WorkloadSpec::default());
    for params in [
        json!({ "replicas": 3 }),
        json!({ "replicas_n": 5 }),
        json!({ "read_quorum_r": 4 }),
        json!({ "write_quorum_w": 0 }),
        json!({ "versioning": "wall-clock" }),
    ] {
        spec.params = params.clone();
        assert!(dynamo::build_simulation(&spec).is_err(), "{params} accepted");
    }
    spec.params = json!({ "replicas_n": 4, "read_quorum_r": 1, "write_quorum_w": 4 });
    assert!(dynamo::build_simulation(&spec).is_ok());
}

#[test]
fn a_partition_leaves_both_sides_writable_and_the_heal_merges_them() {
    // Two clients on opposite sides of a clean split of four nodes: with a sloppy quorum both
    // sides keep accepting writes, and after the heal every home replica agrees.
    use detsim_core::Fault;
    let workload = WorkloadSpec {
        kind: WorkloadKind::Register,
        clients: 2,
        keys: 1,
        timeout_ns: 800_000_000,
        stop_at_ns: Some(2_800_000_000),
        read_fraction: 0.3,
        ..WorkloadSpec::default()
    };
    let mut spec = ClusterSpec::new(3, 4, workload);
    // Clients give up on an unreachable coordinator quickly and try another one.
    spec.params = json!({ "client_resend_ms": 100 });
    let mut sim = dynamo::build_simulation(&spec).expect("valid spec");
    let (c1, c2) = (NodeId(4), NodeId(5));
    let left = vec![NodeId(0), NodeId(1), c1];
    let right = vec![NodeId(2), NodeId(3), c2];
    sim.schedule_fault(SimTime::from_millis(300), Fault::Partition { groups: vec![left, right] }).expect("fault");
    sim.schedule_fault(SimTime::from_millis(2_500), Fault::Heal).expect("fault");
    sim.run_until(SimTime::from_millis(4_000)).expect("run");
    let divergence = divergence(&sim, 4);
    let history = sim.take_history();
    let during = |client: &str, f: &str| {
        history
            .events
            .iter()
            .filter(|e| e.kind == EventType::Ok && e.f == f && e.node.as_deref() == Some(client))
            .filter(|e| (400_000_000..2_500_000_000).contains(&e.time_ns))
            .count()
    };
    // A CP store would serve at most one side; a sloppy quorum serves both.
    for client in ["c1", "c2"] {
        let (writes, reads) = (during(client, "write"), during(client, "read"));
        assert!(writes >= 2 && reads >= 2, "{client} served during the partition: {writes} writes, {reads} reads");
    }
    assert!(divergence.is_empty(), "{divergence:#?}");
}
