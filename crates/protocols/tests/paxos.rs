//! Multi-Paxos under a seeded nemesis: linearizable on every seed and live after the heal; every bug
//! switch caught by the linearizability checker within 1,000 seeds.

mod support;

use detsim_check::{check_linearizable, LinearizabilityOptions, Model, Validity};
use detsim_core::{EventType, History, NodeId, SimTime};
use detsim_protocols::paxos::{self, PaxosNode};
use detsim_protocols::workload::nemesis::{NemesisOptions, NemesisPlan};
use detsim_protocols::workload::ClusterLayout;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use serde_json::json;
use std::time::{Duration, Instant};

const HEAL_AT_MS: u64 = 2_500;
/// Operations invoked this long after the heal must complete: a majority is connected by then.
const SETTLE_MS: u64 = 1_000;
const END_MS: u64 = 4_500;

struct Run {
    history: History,
    /// Slots on which two servers' decided logs disagree (must be none without a mutant).
    log_conflicts: Vec<u64>,
    trace_hash: u64,
    description: Vec<String>,
    servers: usize,
}

fn run(seed: u64, params: serde_json::Value) -> Run {
    // Swarm testing: the cluster size comes from the seed too.
    let servers = if seed.is_multiple_of(2) { 3 } else { 5 };
    let workload = WorkloadSpec {
        kind: WorkloadKind::Register,
        clients: 3,
        keys: 2,
        timeout_ns: 800_000_000,
        think_time_ns: 20_000_000,
        stop_at_ns: Some((END_MS - 300) * 1_000_000),
        ..WorkloadSpec::default()
    };
    let mut spec = ClusterSpec::new(seed, servers, workload);
    spec.params = params;
    let options = NemesisOptions {
        start_ms: 200,
        heal_at_ms: HEAL_AT_MS,
        mean_interval_ms: 250,
        max_fault_ms: 1_000,
        ..NemesisOptions::default()
    };
    let plan = NemesisPlan::random(seed, &ClusterLayout::of(&spec), &options);
    plan.apply_to_spec(&mut spec);
    let mut sim = paxos::build_simulation(&spec).expect("valid spec");
    let leader = |sim: &detsim_core::Simulation<PaxosNode>| {
        (0..servers as u32)
            .map(NodeId)
            .filter(|id| sim.node(*id).and_then(PaxosNode::server).is_some_and(|s| s.is_leader()))
            .max_by_key(|id| sim.node(*id).and_then(PaxosNode::server).map(|s| s.promised()))
    };
    plan.run(&mut sim, SimTime::from_millis(END_MS), leader).expect("run completes");
    let mut log_conflicts = Vec::new();
    let logs: Vec<_> = (0..servers as u32)
        .filter_map(|i| sim.node(NodeId(i)).and_then(PaxosNode::server))
        .map(|s| s.decided())
        .collect();
    for (i, a) in logs.iter().enumerate() {
        for b in &logs[i + 1..] {
            log_conflicts
                .extend(a.iter().filter(|(slot, c)| b.get(slot).is_some_and(|other| other != *c)).map(|(s, _)| *s));
        }
    }
    Run {
        history: sim.take_history(),
        log_conflicts,
        trace_hash: sim.trace_hash(),
        description: plan.description.clone(),
        servers,
    }
}

fn linearizable(history: &History) -> Validity {
    let options = LinearizabilityOptions { time_budget: Some(Duration::from_secs(20)), ..Default::default() };
    check_linearizable(history, Model::CasRegister, &options).expect("well-formed history").valid
}

#[test]
fn multi_paxos_is_linearizable_and_live_after_heal_on_200_seeds() {
    let started = Instant::now();
    let mut total_ok = 0;
    for seed in 0..200 {
        let run = run(seed, json!({}));
        let verdict = linearizable(&run.history);
        assert_eq!(
            verdict,
            Validity::Valid,
            "seed {seed} ({} servers) not linearizable; faults: {:#?}",
            run.servers,
            run.description
        );
        assert!(run.log_conflicts.is_empty(), "seed {seed}: logs disagree in slots {:?}", run.log_conflicts);
        let settled_ns = (HEAL_AT_MS + SETTLE_MS) * 1_000_000;
        let last_ns = (END_MS - 400) * 1_000_000;
        let (late, not_ok) = support::after_heal(&run.history, settled_ns..last_ns);
        assert!(
            late > 0 && not_ok.is_empty(),
            "seed {seed}: of {late} operations after the heal, these got no answer: {not_ok:#?}; faults: {:#?}",
            run.description
        );
        total_ok += run.history.events.iter().filter(|e| e.kind == EventType::Ok).count();
    }
    eprintln!("multi-paxos: 200 seeds, {total_ok} ok operations, {:?}", started.elapsed());
}

fn smallest_failing_seed(name: &str, params: serde_json::Value) -> u64 {
    let started = Instant::now();
    for seed in 0..1_000 {
        let run = run(seed, params.clone());
        if linearizable(&run.history) == Validity::Invalid {
            eprintln!("{name}: smallest failing seed {seed} ({:?})", started.elapsed());
            return seed;
        }
    }
    panic!("{name}: not caught within 1,000 seeds");
}

#[test]
fn mutant_accept_lower_ballot_is_caught() {
    smallest_failing_seed("accept-lower-ballot", json!({ "mutant_accept_lower_ballot": true }));
}

#[test]
fn mutant_skip_phase1_is_caught() {
    smallest_failing_seed("skip-phase1", json!({ "mutant_skip_phase1": true }));
}

#[test]
fn mutant_ignore_accepted_is_caught() {
    smallest_failing_seed("ignore-accepted", json!({ "mutant_ignore_accepted": true }));
}

#[test]
fn same_seed_same_trace() {
    let first = run(7, json!({}));
    let second = run(7, json!({}));
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.history, second.history);
}

#[test]
fn unknown_parameters_are_rejected() {
    let mut spec = ClusterSpec::new(1, 3, WorkloadSpec::default());
    spec.params = json!({ "tick": 5 });
    assert!(paxos::build_simulation(&spec).is_err());
}
