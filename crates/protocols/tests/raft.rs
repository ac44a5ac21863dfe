//! Raft under random faults: linearizable on every seed and live after the heal; each mutant is
//! caught by the linearizability checker within 1,000 seeds (the smallest failing seed is printed).

use detsim_check::{check_linearizable, LinearizabilityOptions, Model, Validity};
use detsim_core::history::{EventType, History};
use detsim_core::{SimTime, Simulation};
use detsim_protocols::raft::{self, RaftMutants, RaftNode, RaftParams, ReadMode};
use detsim_protocols::workload::nemesis::{NemesisOptions, NemesisPlan};
use detsim_protocols::workload::ClusterLayout;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use std::collections::BTreeMap;
use std::time::Instant;

/// True time the run lasts: faults until the heal, then a quiet stretch for the liveness check.
const HEAL_AT_MS: u64 = 3_000;
const END_MS: u64 = 5_500;
/// After the heal a new leader is elected within a few election timeouts; ops invoked after this
/// much quiet must all complete.
const SETTLE_MS: u64 = 1_000;

struct Run {
    history: History,
    plan: NemesisPlan,
    kind: WorkloadKind,
    sim: Simulation<RaftNode>,
}

fn run_seed(seed: u64, params: &RaftParams, options: &NemesisOptions, servers: Option<usize>) -> Run {
    // Cluster size and workload drawn from the seed, so 200 seeds cover both.
    let servers = servers.unwrap_or(if seed % 3 == 0 { 3 } else { 5 });
    let kind = if seed % 2 == 0 { WorkloadKind::Register } else { WorkloadKind::KeyValue };
    let workload = WorkloadSpec {
        kind,
        clients: 4,
        concurrency: 1,
        keys: 2,
        timeout_ns: 800_000_000,
        think_time_ns: 20_000_000,
        stop_at_ns: Some((END_MS - 1_000) * 1_000_000),
        ..WorkloadSpec::default()
    };
    let mut spec = ClusterSpec::new(seed, servers, workload);
    let plan = NemesisPlan::random(seed, &ClusterLayout::of(&spec), options);
    plan.apply_to_spec(&mut spec);
    let mut sim = raft::build_simulation_with(&spec, params.clone()).expect("valid spec");
    plan.run(&mut sim, SimTime::from_millis(END_MS), raft::leader).expect("run completes");
    Run { history: sim.take_history(), plan, kind, sim }
}

fn nemesis() -> NemesisOptions {
    NemesisOptions { heal_at_ms: HEAL_AT_MS, ..NemesisOptions::default() }
}

fn model(kind: WorkloadKind) -> Model {
    match kind {
        WorkloadKind::KeyValue => Model::KeyValue,
        _ => Model::CasRegister,
    }
}

fn linearizable(run: &Run) -> Validity {
    let verdict =
        check_linearizable(&run.history, model(run.kind), &LinearizabilityOptions::default()).expect("well-formed");
    verdict.valid
}

/// Ops invoked once the cluster had time to settle after the heal, and how many of them did not
/// complete (info, or no completion at all).
fn liveness(run: &Run) -> (usize, usize) {
    let settle_ns = (HEAL_AT_MS + SETTLE_MS) * 1_000_000;
    let mut open: BTreeMap<u64, u64> = BTreeMap::new(); // process -> invoke time
    let (mut invoked, mut stuck) = (0, 0);
    for event in &run.history.events {
        match event.kind {
            EventType::Invoke => {
                open.insert(event.process, event.time_ns);
            }
            kind => {
                let started = open.remove(&event.process).expect("completion after invoke");
                if started >= settle_ns {
                    invoked += 1;
                    stuck += usize::from(kind == EventType::Info);
                }
            }
        }
    }
    let never_completed = open.values().filter(|t| **t >= settle_ns).count();
    (invoked + never_completed, stuck + never_completed)
}

#[test]
fn raft_is_linearizable_and_live_after_heal_on_200_seeds() {
    let started = Instant::now();
    let params = RaftParams::default();
    let options = nemesis();
    let mut ok_ops = 0usize;
    for seed in 0..200 {
        let run = run_seed(seed, &params, &options, None);
        let valid = linearizable(&run);
        assert_eq!(
            valid,
            Validity::Valid,
            "seed {seed}: raft history not linearizable; faults:\n{}",
            run.plan.description.join("\n")
        );
        let (after_heal, stuck) = liveness(&run);
        assert!(after_heal > 10, "seed {seed}: clients work after the heal ({after_heal} ops)");
        assert_eq!(stuck, 0, "seed {seed}: {stuck} of {after_heal} ops after the heal did not complete");
        ok_ops += run.history.events.iter().filter(|e| e.kind == EventType::Ok).count();
        let leaders = (0..run.sim.node_count() as u32)
            .filter_map(|i| run.sim.node(detsim_core::NodeId(i)).and_then(RaftNode::server))
            .filter(|s| s.is_leader())
            .count();
        assert!(leaders >= 1, "seed {seed}: a leader after the heal");
    }
    println!("200 raft seeds: {ok_ops} ok operations, {:.2?} wall", started.elapsed());
}

#[test]
fn raft_log_reads_without_noop_are_linearizable() {
    // The configuration the commit-previous-term mutant runs in, without the mutant: the commit
    // rule alone keeps it safe.
    let params = RaftParams { read_mode: ReadMode::Log, noop_on_election: false, ..RaftParams::default() };
    for seed in 0..40 {
        let run = run_seed(seed, &params, &nemesis(), None);
        assert_eq!(linearizable(&run), Validity::Valid, "seed {seed}:\n{}", run.plan.description.join("\n"));
    }
}

#[test]
fn raft_snapshots_and_restarts_keep_state() {
    // Tiny snapshot interval: followers that fall behind get InstallSnapshot.
    let params = RaftParams { snapshot_every: 20, ..RaftParams::default() };
    for seed in 0..30 {
        let run = run_seed(seed, &params, &nemesis(), None);
        assert_eq!(linearizable(&run), Validity::Valid, "seed {seed}:\n{}", run.plan.description.join("\n"));
        let (after_heal, stuck) = liveness(&run);
        assert_eq!(stuck, 0, "seed {seed}: {stuck} of {after_heal} stuck");
    }
}

#[test]
fn same_seed_same_trace() {
    let params = RaftParams::default();
    let a = run_seed(17, &params, &nemesis(), None);
    let b = run_seed(17, &params, &nemesis(), None);
    assert_eq!(a.sim.trace_hash(), b.sim.trace_hash());
    assert_eq!(a.history, b.history);
}

/// Runs seeds until the checker rejects one; returns the smallest failing seed.
fn first_failing_seed(
    name: &str,
    params: &RaftParams,
    options: &NemesisOptions,
    servers: Option<usize>,
) -> Option<u64> {
    let started = Instant::now();
    for seed in 0..1_000 {
        let run = run_seed(seed, params, options, servers);
        if linearizable(&run) == Validity::Invalid {
            println!(
                "mutant {name}: smallest failing seed {seed} ({:.2?}); faults:\n  {}",
                started.elapsed(),
                run.plan.description.join("\n  ")
            );
            return Some(seed);
        }
    }
    println!("mutant {name}: not caught in 1000 seeds ({:.2?})", started.elapsed());
    None
}

#[test]
fn mutant_stale_reads_is_caught() {
    let params =
        RaftParams { mutants: RaftMutants { stale_reads: true, ..RaftMutants::default() }, ..RaftParams::default() };
    assert!(first_failing_seed("stale_reads", &params, &nemesis(), None).is_some());
}

#[test]
fn mutant_vote_without_log_check_is_caught() {
    let params = RaftParams {
        mutants: RaftMutants { vote_without_log_check: true, ..RaftMutants::default() },
        ..RaftParams::default()
    };
    assert!(first_failing_seed("vote_without_log_check", &params, &nemesis(), None).is_some());
}

#[test]
fn mutant_forget_vote_is_caught() {
    let params =
        RaftParams { mutants: RaftMutants { forget_vote: true, ..RaftMutants::default() }, ..RaftParams::default() };
    assert!(first_failing_seed("forget_vote", &params, &nemesis(), None).is_some());
}

#[test]
fn mutant_commit_previous_term_is_caught() {
    let params = RaftParams {
        read_mode: ReadMode::Log,
        noop_on_election: false,
        mutants: RaftMutants { commit_previous_term: true, ..RaftMutants::default() },
        ..RaftParams::default()
    };
    assert!(first_failing_seed("commit_previous_term", &params, &nemesis(), None).is_some());
}
