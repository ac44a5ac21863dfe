//! Chain replication under a seeded nemesis that reaches the master too: linearizable on every
//! seed, no acknowledged update lost, serving again after the heal; every bug switch is caught by
//! the linearizability checker within 1,000 seeds.

use detsim_check::{check_linearizable, LinearizabilityOptions, Model, Validity};
use detsim_core::rng::{derive_stream, StreamPurpose};
use detsim_core::{EventType, Fault, History, NodeId, SimTime, Simulation, Value};
use detsim_protocols::chain::{self, ChainNode};
use detsim_protocols::workload::nemesis::{NemesisOptions, NemesisPlan, PlannedFault, TimedFault};
use detsim_protocols::workload::ClusterLayout;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use rand::RngExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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

/// The nemesis draws faults over servers and clients; the master is a process too, so this puts
/// it on a random side of each partition and gives it a crash or a pause on some seeds.
fn involve_master(plan: &mut NemesisPlan, seed: u64, master: NodeId, options: &NemesisOptions) {
    let mut rng = derive_stream(seed, StreamPurpose::Nemesis, 1);
    for step in &mut plan.steps {
        let PlannedFault::Fault(fault) = &mut step.fault else { continue };
        match fault {
            Fault::Partition { groups } if !groups.is_empty() => {
                let side = rng.random_range(0..groups.len());
                groups[side].push(master);
                plan.description.push(format!("master on side {} of the partition at {}", side + 1, step.at));
            }
            Fault::Bridge { left, right, .. } => {
                if rng.random_bool(0.5) {
                    left.push(master);
                } else {
                    right.push(master);
                }
            }
            Fault::OneWay { from, to } if rng.random_bool(0.5) => {
                if rng.random_bool(0.5) {
                    from.push(master);
                } else {
                    to.push(master);
                }
                plan.description.push(format!("master joins the one-way cut at {}", step.at));
            }
            _ => {}
        }
    }
    if options.crashes && rng.random_bool(0.3) {
        let start_ms = rng.random_range(options.start_ms..options.heal_at_ms);
        let end_ms = (start_ms + rng.random_range(options.min_fault_ms..=options.max_fault_ms)).min(options.heal_at_ms);
        let (down, up, what) = if rng.random_bool(0.5) {
            (Fault::Crash { node: master }, Fault::Restart { node: master }, "crash")
        } else {
            (Fault::Pause { node: master }, Fault::Resume { node: master }, "pause")
        };
        plan.description.push(format!("{what} master from {start_ms}ms to {end_ms}ms"));
        plan.steps.push(TimedFault { at: SimTime::from_millis(start_ms), fault: PlannedFault::Fault(down) });
        plan.steps.push(TimedFault { at: SimTime::from_millis(end_ms), fault: PlannedFault::Fault(up) });
        plan.steps.sort_by_key(|s| s.at);
    }
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
    let mut spec = ClusterSpec::new(seed, servers, workload);
    spec.params = params;
    let options = NemesisOptions {
        start_ms: 200,
        heal_at_ms: HEAL_AT_MS,
        mean_interval_ms: 250,
        max_fault_ms: 1_000,
        ..NemesisOptions::default()
    };
    let mut plan = NemesisPlan::random(seed, &ClusterLayout::of(&spec), &options);
    plan.apply_to_spec(&mut spec);
    let master = chain::master_id(&spec);
    involve_master(&mut plan, seed, master, &options);
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
    let machine = server.state_machine();
    history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == "add")
        .filter(|e| {
            let key = e.key.clone().unwrap_or(Value::Nil);
            !machine.object(&key).and_then(Value::as_list).is_some_and(|set| set.contains(&e.value))
        })
        .map(|e| format!("add {} to key {:?} acknowledged at {}ns", e.value, e.key, e.time_ns))
        .collect()
}

fn linearizable(run: &Run) -> Validity {
    let model = if run.kind == WorkloadKind::Set { Model::Set } else { Model::CasRegister };
    let options = LinearizabilityOptions { time_budget: Some(Duration::from_secs(20)), ..Default::default() };
    check_linearizable(&run.history, model, &options).expect("well-formed history").valid
}

/// Operations invoked after the heal has settled (early enough that the client's 800 ms timeout
/// falls inside the run), and those of them that got no answer.
fn after_heal(history: &History) -> (usize, Vec<String>) {
    let settled_ns = (HEAL_AT_MS + SETTLE_MS) * 1_000_000;
    let last_ns = (END_MS - 900) * 1_000_000;
    let mut open = BTreeMap::new();
    let mut late = 0;
    let mut not_ok = Vec::new();
    for event in &history.events {
        match event.kind {
            EventType::Invoke if (settled_ns..last_ns).contains(&event.time_ns) => {
                late += 1;
                open.insert(event.process, event.time_ns);
            }
            EventType::Invoke => {}
            kind => {
                if let Some(invoked_ns) = open.remove(&event.process) {
                    if kind == EventType::Info {
                        not_ok.push(format!("{kind:?} {} at {invoked_ns}: {:?}", event.f, event.error));
                    }
                }
            }
        }
    }
    not_ok.extend(open.iter().map(|(p, t)| format!("process {p} invoked at {t} never completed")));
    (late, not_ok)
}

/// Seeds of the many-seed test: 200, or `DETSIM_SEEDS` for a longer soak.
/// Seeds of the many-seed tests: 200; `DETSIM_SEEDS=n` for a longer soak, `DETSIM_SEED=s` to
/// replay one seed.
fn seeds() -> std::ops::Range<u64> {
    if let Some(seed) = std::env::var("DETSIM_SEED").ok().and_then(|s| s.parse::<u64>().ok()) {
        return seed..seed + 1;
    }
    let count = std::env::var("DETSIM_SEEDS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    0..count
}

/// The one-line command that replays `seed` of `test`.
fn replay(test: &str, seed: u64) -> String {
    format!("DETSIM_SEED={seed} cargo test -p detsim-protocols --test chain {test} -- --exact")
}

/// Runs one seed's checks; when one fails, prints the command that replays that seed alone.
fn with_replay<T>(test: &str, seed: u64, body: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(panic) => {
            eprintln!("replay: {}", replay(test, seed));
            std::panic::resume_unwind(panic)
        }
    }
}

/// Seeds a mutant is tried on: 0..1000, or just `DETSIM_SEED`.
fn mutant_seeds() -> std::ops::Range<u64> {
    match std::env::var("DETSIM_SEED").ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(seed) => seed..seed + 1,
        None => 0..1_000,
    }
}

#[test]
fn chain_is_linearizable_loses_nothing_and_serves_after_heal_on_200_seeds() {
    let started = Instant::now();
    let mut ok_ops = 0;
    for seed in seeds() {
        with_replay("chain_is_linearizable_loses_nothing_and_serves_after_heal_on_200_seeds", seed, || {
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
    }
    eprintln!("chain: {} seeds, {ok_ops} ok operations, {:?}", seeds().count(), started.elapsed());
}

fn smallest_failing_seed(test: &str, name: &str, params: serde_json::Value) -> u64 {
    let started = Instant::now();
    for seed in mutant_seeds() {
        let run = run(seed, params.clone());
        if linearizable(&run) == Validity::Invalid {
            eprintln!(
                "chain mutant {name}: smallest failing seed {seed} ({:?}); faults:\n  {}",
                started.elapsed(),
                run.description.join("\n  ")
            );
            eprintln!("replay: {}", replay(test, seed));
            return seed;
        }
    }
    panic!("chain mutant {name}: not caught on seeds {:?}", mutant_seeds());
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
