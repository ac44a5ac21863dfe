//! Chain replication under a seeded nemesis that reaches the master too: linearizable on every
//! seed, no acknowledged update lost, serving again after the heal; every bug switch is caught by
//! the linearizability checker within 1,000 seeds.

mod support;

use detsim_check::Validity;
use detsim_core::{EventType, History, NodeId, SimTime, Simulation};
use detsim_protocols::chain::{self, ChainNode};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use serde_json::json;
use std::time::Instant;
use support::seeds;

const HEAL_AT_MS: u64 = 2_500;
/// Operations invoked this long after the heal must complete.
const SETTLE_MS: u64 = 1_000;
const END_MS: u64 = 5_000;

struct Run {
    history: History,
    kind: WorkloadKind,
    description: Vec<String>,
    servers: usize,
    /// Set workload: acknowledged adds missing from the final tail's state.
    lost_acked_adds: Vec<String>,
    trace_hash: u64,
}

fn run(seed: u64, params: serde_json::Value) -> Run {
    // Swarm testing: the chain length and the workload come from the seed too.
    let servers = [3, 4, 5][(seed % 3) as usize];
    let kind = if seed.is_multiple_of(2) { WorkloadKind::Register } else { WorkloadKind::Set };
    let workload = WorkloadSpec {
        kind,
        clients: 3,
        keys: 2,
        timeout_ns: 800_000_000,
        think_time_ns: 20_000_000,
        stop_at_ns: Some((END_MS - 300) * 1_000_000),
        ..WorkloadSpec::default()
    };
    let options = support::nemesis_options(HEAL_AT_MS);
    let (spec, mut plan) = support::spec_under_nemesis(seed, servers, workload, params, &options);
    let master = chain::master_id(&spec);
    support::involve_coordinator(&mut plan, seed, master, "master", &options);
    let mut sim = chain::build_simulation(&spec).expect("valid spec");
    plan.run(&mut sim, SimTime::from_millis(END_MS), chain::head).expect("run completes");
    let history = sim.take_history();
    let lost_acked_adds = if kind == WorkloadKind::Set { lost_adds(&sim, master, &history) } else { Vec::new() };
    Run { history, kind, description: plan.description.clone(), servers, lost_acked_adds, trace_hash: sim.trace_hash() }
}

/// Acknowledged adds that the tail of the master's final chain does not hold.
fn lost_adds(sim: &Simulation<ChainNode>, master: NodeId, history: &History) -> Vec<String> {
    let Some(tail) = sim.node(master).and_then(ChainNode::master).and_then(|m| m.config().tail()) else {
        return vec!["no chain at the end".into()];
    };
    let Some(server) = sim.node(tail).and_then(ChainNode::server) else {
        return vec![format!("the final tail n{} is down", tail.0 + 1)];
    };
    support::acked_adds_missing(server.state_machine(), history)
}

fn linearizable(run: &Run) -> Validity {
    support::linearizable(&run.history, support::model_of(run.kind))
}

/// Operations invoked after the heal has settled (early enough that the client's 800 ms timeout
/// falls inside the run), and those of them that got no answer.
fn after_heal(history: &History) -> (usize, Vec<String>) {
    support::after_heal(history, (HEAL_AT_MS + SETTLE_MS) * 1_000_000..(END_MS - 900) * 1_000_000)
}

#[test]
fn chain_is_linearizable_loses_nothing_and_serves_after_heal_on_200_seeds() {
    let started = Instant::now();
    let mut ok_ops = 0;
    support::for_each_seed("chain_is_linearizable_loses_nothing_and_serves_after_heal_on_200_seeds", |seed| {
        let run = run(seed, json!({}));
        assert_eq!(
            linearizable(&run),
            Validity::Valid,
            "seed {seed} ({} servers, {:?}) not linearizable; faults: {:#?}",
            run.servers,
            run.kind,
            run.description
        );
        assert!(run.lost_acked_adds.is_empty(), "seed {seed}: acknowledged adds lost: {:#?}", run.lost_acked_adds);
        // Live after the heal: clients keep working (a long chain with a few percent message loss
        // is slow: about eight messages per operation, and a lost one costs a resend) and at most
        // one operation is unanswered (a reply can be lost three times in a row; a stuck chain
        // leaves many).
        let (late, not_ok) = after_heal(&run.history);
        assert!(
            late >= 5 && not_ok.len() <= 1,
            "seed {seed}: of {late} operations after the heal, these got no answer: {not_ok:#?}; faults: {:#?}",
            run.description
        );
        ok_ops += run.history.events.iter().filter(|e| e.kind == EventType::Ok).count();
    });
    eprintln!("chain: {} seeds, {ok_ops} ok operations, {:?}", seeds().count(), started.elapsed());
}

fn smallest_failing_seed(test: &str, name: &str, params: serde_json::Value) -> u64 {
    support::smallest_failing_seed(test, &format!("chain mutant {name}"), |seed| {
        let run = run(seed, params.clone());
        (linearizable(&run) == Validity::Invalid).then(|| format!("; faults:\n  {}", run.description.join("\n  ")))
    })
}

#[test]
fn mutant_unconfirmed_tail_reads_is_caught() {
    smallest_failing_seed(
        "mutant_unconfirmed_tail_reads_is_caught",
        "unconfirmed-tail-reads",
        json!({ "mutant_unconfirmed_tail_reads": true }),
    );
}

#[test]
fn mutant_reply_at_head_is_caught() {
    smallest_failing_seed("mutant_reply_at_head_is_caught", "reply-at-head", json!({ "mutant_reply_at_head": true }));
}

#[test]
fn mutant_no_fencing_is_caught() {
    smallest_failing_seed("mutant_no_fencing_is_caught", "no-fencing", json!({ "mutant_no_fencing": true }));
}

#[test]
fn same_seed_same_trace() {
    let first = run(7, json!({}));
    let second = run(7, json!({}));
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.history, second.history);
}

#[test]
fn bad_parameters_are_rejected() {
    let mut spec = ClusterSpec::new(1, 3, WorkloadSpec::default());
    spec.params = json!({ "chain_length": 3 });
    assert!(chain::build_simulation(&spec).is_err(), "unknown field");
    spec.params = json!({ "retransmit_ms": 0 });
    assert!(chain::build_simulation(&spec).is_err(), "zero period");
    assert!(detsim_protocols::find("chain").is_some(), "registered");
}

#[test]
fn without_faults_updates_flow_head_to_tail() {
    let spec = ClusterSpec::new(5, 4, WorkloadSpec { clients: 3, keys: 1, ..WorkloadSpec::default() });
    let mut sim = chain::build_simulation(&spec).expect("valid spec");
    sim.run_until(SimTime::from_millis(1_000)).expect("run");
    let master = sim.node(chain::master_id(&spec)).and_then(ChainNode::master).expect("master");
    assert_eq!(master.config().number, 1, "no reconfiguration without faults");
    assert!(master.confirmed(), "state transfer reached the tail");
    assert_eq!(chain::head(&sim), Some(NodeId(0)));
    let seqs: Vec<u64> =
        (0..4).map(|i| sim.node(NodeId(i)).and_then(ChainNode::server).expect("server").applied_seq()).collect();
    assert!(seqs[0] > 10, "the head ordered updates: {seqs:?}");
    // The prefix property: each server holds at most what its predecessor holds.
    assert!(seqs.windows(2).all(|pair| pair[0] >= pair[1]), "{seqs:?}");
    let tail = sim.node(NodeId(3)).and_then(ChainNode::server).expect("tail");
    assert!(tail.ok_answers() > 10, "the tail answers the clients");
    let middle = sim.node(NodeId(1)).and_then(ChainNode::server).expect("middle");
    assert_eq!(middle.ok_answers(), 0, "a middle server answers nobody");
}
