//! The harness the many-seed protocol tests share (`mod support;` in chain, primary_backup, dynamo
//! and crdt): seed ranges, the replay command every failure prints, the standard nemesis, a
//! coordinator node (chain master, view service) folded into the nemesis plan, linearizability
//! with a time budget, liveness after the heal, final reads appended to a history, and the search
//! for a bug switch's smallest failing seed.

// Each test binary compiles its own copy of this module and uses a different part of it.
#![allow(dead_code)]

use detsim_check::{check_linearizable, LinearizabilityOptions, Model, Validity};
use detsim_core::rng::{derive_stream, StreamPurpose};
use detsim_core::{EventType, Fault, History, NodeId, Op, SimTime, Value};
use detsim_protocols::workload::nemesis::{NemesisOptions, NemesisPlan, PlannedFault, TimedFault};
use detsim_protocols::workload::{ClusterLayout, StateMachine};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use rand::RngExt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Seeds of the many-seed tests: 200; `DETSIM_SEEDS=n` for a longer soak, `DETSIM_SEED=s` to
/// replay one seed.
pub fn seeds() -> std::ops::Range<u64> {
    if let Some(seed) = replayed_seed() {
        return seed..seed + 1;
    }
    let count = std::env::var("DETSIM_SEEDS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    0..count
}

/// Seeds a mutant is tried on: 0..1000, or just `DETSIM_SEED`.
pub fn mutant_seeds() -> std::ops::Range<u64> {
    match replayed_seed() {
        Some(seed) => seed..seed + 1,
        None => 0..1_000,
    }
}

fn replayed_seed() -> Option<u64> {
    std::env::var("DETSIM_SEED").ok().and_then(|s| s.parse::<u64>().ok())
}

/// The one-line command that replays `seed` of `test` in this test binary.
pub fn replay(test: &str, seed: u64) -> String {
    // An integration test's crate name is its target name, the one `--test` takes.
    let target = env!("CARGO_CRATE_NAME");
    format!("DETSIM_SEED={seed} cargo test -p detsim-protocols --test {target} {test} -- --exact")
}

/// Runs one seed's checks; when one fails, prints the command that replays that seed alone.
pub fn with_replay<T>(test: &str, seed: u64, body: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(panic) => {
            eprintln!("replay: {}", replay(test, seed));
            std::panic::resume_unwind(panic)
        }
    }
}

/// Runs `body` on every seed of [`seeds`], each under [`with_replay`].
pub fn for_each_seed(test: &str, mut body: impl FnMut(u64)) {
    for seed in seeds() {
        with_replay(test, seed, || body(seed));
    }
}

/// Tries [`mutant_seeds`] in order until `failure` describes how a seed failed; prints
/// "`what`: smallest failing seed ..." with that description and the replay command, and returns
/// the seed. Panics when no seed fails: the bug switch went unnoticed.
pub fn smallest_failing_seed(test: &str, what: &str, mut failure: impl FnMut(u64) -> Option<String>) -> u64 {
    let started = Instant::now();
    for seed in mutant_seeds() {
        if let Some(description) = failure(seed) {
            eprintln!("{what}: smallest failing seed {seed} ({:?}){description}", started.elapsed());
            eprintln!("replay: {}", replay(test, seed));
            return seed;
        }
    }
    panic!("{what}: not caught on seeds {:?}", mutant_seeds());
}

/// The nemesis of the many-seed tests: faults from 200 ms until the heal at `heal_at_ms`, one
/// every 250 ms on average, each lasting up to a second.
pub fn nemesis_options(heal_at_ms: u64) -> NemesisOptions {
    NemesisOptions {
        start_ms: 200,
        heal_at_ms,
        mean_interval_ms: 250,
        max_fault_ms: 1_000,
        ..NemesisOptions::default()
    }
}

/// A spec of `servers` servers running `workload` with protocol `params`, and the nemesis plan
/// drawn from `seed` for it, already applied to the spec's links and clocks.
pub fn spec_under_nemesis(
    seed: u64,
    servers: usize,
    workload: WorkloadSpec,
    params: serde_json::Value,
    options: &NemesisOptions,
) -> (ClusterSpec, NemesisPlan) {
    let mut spec = ClusterSpec::new(seed, servers, workload);
    spec.params = params;
    let plan = NemesisPlan::random(seed, &ClusterLayout::of(&spec), options);
    plan.apply_to_spec(&mut spec);
    (spec, plan)
}

/// The nemesis draws faults over servers and clients; a coordinator node (`name` in the fault
/// descriptions) is a process too, so this puts it on a random side of each partition and gives it
/// a crash or a pause on some seeds.
pub fn involve_coordinator(
    plan: &mut NemesisPlan,
    seed: u64,
    coordinator: NodeId,
    name: &str,
    options: &NemesisOptions,
) {
    let mut rng = derive_stream(seed, StreamPurpose::Nemesis, 1);
    for step in &mut plan.steps {
        let PlannedFault::Fault(fault) = &mut step.fault else { continue };
        match fault {
            Fault::Partition { groups } if !groups.is_empty() => {
                let side = rng.random_range(0..groups.len());
                groups[side].push(coordinator);
                plan.description.push(format!("{name} on side {} of the partition at {}", side + 1, step.at));
            }
            Fault::Bridge { left, right, .. } => {
                if rng.random_bool(0.5) {
                    left.push(coordinator);
                } else {
                    right.push(coordinator);
                }
            }
            Fault::OneWay { from, to } if rng.random_bool(0.5) => {
                if rng.random_bool(0.5) {
                    from.push(coordinator);
                } else {
                    to.push(coordinator);
                }
                plan.description.push(format!("{name} joins the one-way cut at {}", step.at));
            }
            _ => {}
        }
    }
    if options.crashes && rng.random_bool(0.3) {
        let start_ms = rng.random_range(options.start_ms..options.heal_at_ms);
        let end_ms = (start_ms + rng.random_range(options.min_fault_ms..=options.max_fault_ms)).min(options.heal_at_ms);
        let (down, up, what) = if rng.random_bool(0.5) {
            (Fault::Crash { node: coordinator }, Fault::Restart { node: coordinator }, "crash")
        } else {
            (Fault::Pause { node: coordinator }, Fault::Resume { node: coordinator }, "pause")
        };
        plan.description.push(format!("{what} {name} from {start_ms}ms to {end_ms}ms"));
        plan.steps.push(TimedFault { at: SimTime::from_millis(start_ms), fault: PlannedFault::Fault(down) });
        plan.steps.push(TimedFault { at: SimTime::from_millis(end_ms), fault: PlannedFault::Fault(up) });
        plan.steps.sort_by_key(|s| s.at);
    }
}

/// The linearizability model of a replicated-store workload: a set, or a register with cas.
pub fn model_of(kind: WorkloadKind) -> Model {
    if kind == WorkloadKind::Set {
        Model::Set
    } else {
        Model::CasRegister
    }
}

/// The linearizability checker's verdict on `history` under `model`, within 20 s.
pub fn linearizable(history: &History, model: Model) -> Validity {
    let options = LinearizabilityOptions { time_budget: Some(Duration::from_secs(20)), ..Default::default() };
    check_linearizable(history, model, &options).expect("well-formed history").valid
}

/// Operations invoked in `invoked_ns` (after the heal has settled, and early enough that the
/// client's timeout falls inside the run, so every such operation has an outcome by the end), and
/// those of them that got no answer.
pub fn after_heal(history: &History, invoked_ns: std::ops::Range<u64>) -> (usize, Vec<String>) {
    let mut open = BTreeMap::new();
    let mut late = 0;
    let mut not_ok = Vec::new();
    for event in &history.events {
        match event.kind {
            EventType::Invoke if invoked_ns.contains(&event.time_ns) => {
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

/// Set workload: the acknowledged adds of `history` that `machine` (a replica's final state) does
/// not hold.
pub fn acked_adds_missing(machine: &StateMachine, history: &History) -> Vec<String> {
    history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == "add")
        .filter(|e| {
            let key = e.key.clone().unwrap_or(Value::Nil);
            let held = machine.object(&key).and_then(Value::as_list).is_some_and(|set| set.contains(&e.value));
            !held
        })
        .map(|e| format!("add {} to key {:?} acknowledged at {}ns", e.value, e.key, e.time_ns))
        .collect()
}

/// Process ids of the final reads a test appends to a history (far above any client's).
pub const FINAL_READ_PROCESS: u64 = 1 << 40;

/// Appends a read of `key` at server `server` (from 0) that returned `value`, as its own `process`,
/// invoked at `at_ns` and answered 1 ns later: the test read the replica directly once the run was
/// over, so that the eventual-convergence checker has final reads after the quiet point.
pub fn push_final_read(history: &mut History, at_ns: u64, process: u64, server: usize, key: &Value, value: Value) {
    let node = Some(ClusterSpec::server_name(server));
    let invoke = Op::new("read", Some(key.clone()), Value::Nil);
    history.push(at_ns, process, EventType::Invoke, invoke, None, node.clone());
    history.push(at_ns + 1, process, EventType::Ok, Op::new("read", Some(key.clone()), value), None, node);
}
