//! Broker family: at-least-once delivery across 100 seeds with message loss and broker and
//! consumer crashes, judged by the eventual-convergence checker on the counter history (nothing
//! acknowledged is lost, nothing is applied twice); each deliberate bug caught; load spikes
//! buffered up to the queue's bound and refused beyond it.

use detsim_check::{check_eventual, operations, EventualOptions, Model, Operation, Outcome, Verdict};
use detsim_core::rng::{derive_stream, StreamPurpose};
use detsim_core::{Fault, History, LinkConfig, NetworkConfig, NodeId, SimTime, Simulation, Value};
use detsim_protocols::broker::clients::Spike;
use detsim_protocols::broker::*;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use rand::RngExt;

const SEEDS: u64 = 100;
const MS: u64 = 1_000_000;
/// Producers stop publishing here; the run goes on until `END_MS` so the queue drains.
const STOP_MS: u64 = 2_000;
const END_MS: u64 = 4_000;
/// Final reads start this long after the later of the stop and the last fault.
const SETTLE_MS: u64 = 1_200;

/// Consumers `n2..n6`.
const CONSUMERS: u32 = 5;

/// Broker `n1`, five consumers, four producers at 20 messages/s each over four counters. A
/// consumer handles a message in about 13 ms (2 ms of work, a round trip to the sink), so the five
/// manage about 350 messages/s: the base load of 80/s keeps them a quarter busy.
fn spec(seed: u64, loss: f64) -> ClusterSpec {
    let workload = WorkloadSpec {
        kind: WorkloadKind::Counter,
        clients: 4,
        rate_per_s: Some(20.0),
        keys: 4,
        timeout_ns: 200 * MS,
        stop_at_ns: Some(STOP_MS * MS),
        ..WorkloadSpec::default()
    };
    let mut spec = ClusterSpec::new(seed, 1 + CONSUMERS as usize, workload);
    spec.network = NetworkConfig::new(LinkConfig { loss, ..LinkConfig::default() });
    spec
}

/// Which consumers crash.
#[derive(Clone, Copy, PartialEq)]
enum Consumers {
    None,
    /// One consumer, drawn from the seed.
    One,
    /// Every consumer at the same moment (a deploy that restarts the fleet).
    All,
}

/// Crash windows drawn from the seed, each starting inside `starts_ms`: the broker once (when
/// asked), consumers as asked, all over before the producers stop. Returns the end of the last.
fn schedule_crashes(
    sim: &mut Simulation<BrokerNode>,
    seed: u64,
    broker: bool,
    consumers: Consumers,
    starts_ms: std::ops::Range<u64>,
) -> u64 {
    let mut rng = derive_stream(seed, StreamPurpose::Nemesis, 0);
    let mut last_ns = 0;
    let mut crash = |sim: &mut Simulation<BrokerNode>, nodes: &[NodeId], rng: &mut detsim_core::SimRng| {
        let at_ms = rng.random_range(starts_ms.clone());
        let down_ms = rng.random_range(50..250u64);
        for &node in nodes {
            sim.schedule_fault(SimTime::from_millis(at_ms), Fault::Crash { node }).expect("valid fault");
            sim.schedule_fault(SimTime::from_millis(at_ms + down_ms), Fault::Restart { node }).expect("valid fault");
        }
        last_ns = last_ns.max((at_ms + down_ms) * MS);
    };
    if broker {
        crash(sim, &[NodeId(0)], &mut rng);
    }
    match consumers {
        Consumers::None => {}
        Consumers::One => {
            let consumer = NodeId(rng.random_range(1..=CONSUMERS));
            crash(sim, &[consumer], &mut rng);
        }
        Consumers::All => crash(sim, &(1..=CONSUMERS).map(NodeId).collect::<Vec<_>>(), &mut rng),
    }
    last_ns
}

fn run(sim: &mut Simulation<BrokerNode>, until_ms: u64) {
    sim.run_until(SimTime::from_millis(until_ms)).expect("the run stays within its limits");
}

fn ops_of(history: &History) -> Vec<Operation> {
    operations(history).expect("producers and reader record a well-formed history")
}

/// The counter verdict: final reads after the producers stopped and the last fault healed.
fn verdict(ops: &[Operation], last_fault_ns: u64) -> Verdict {
    let options = EventualOptions {
        heal_ns: Some(last_fault_ns.max(STOP_MS * MS)),
        settle_ns: SETTLE_MS * MS,
        model: Some(Model::Counter),
        initial: Value::Int(0),
    };
    check_eventual(ops, &options)
}

fn anomaly_names(verdict: &Verdict) -> Vec<String> {
    verdict.anomalies.iter().map(|a| a.name.clone()).collect()
}

struct Run {
    verdict: Verdict,
    ops: Vec<Operation>,
    redeliveries: u64,
    duplicates_ignored: u64,
}

/// Crashes start anywhere in 200..1000 ms (so they are over before the producers stop).
const ANY_TIME_MS: std::ops::Range<u64> = 200..1_000;
/// Crashes start while the spike of [`spike_setup`] is on, when the queue holds a backlog.
/// (Late enough that the backlog is deep and every consumer holds a full batch.)
const DURING_SPIKE_MS: std::ops::Range<u64> = 520..600;

fn run_seed(
    seed: u64,
    setup: &BrokerSetup,
    loss: f64,
    broker_crash: bool,
    consumer_crash: Consumers,
    starts_ms: std::ops::Range<u64>,
) -> Run {
    let spec = spec(seed, loss);
    let mut sim = build_broker(&spec, setup).expect("builds");
    let last_fault_ns = schedule_crashes(&mut sim, seed, broker_crash, consumer_crash, starts_ms);
    run(&mut sim, END_MS);
    let broker = sim.node(NodeId(0)).and_then(BrokerNode::as_broker).expect("the broker is up");
    assert_eq!(broker.depth(), 0, "seed {seed}: the queue drained");
    let redeliveries = broker.stats.redeliveries;
    let sink = sim.node_id("sink").and_then(|id| sim.node(id)).and_then(BrokerNode::as_sink).expect("sink");
    let duplicates_ignored = sink.duplicates_ignored;
    let ops = ops_of(&sim.take_history());
    Run { verdict: verdict(&ops, last_fault_ns), ops, redeliveries, duplicates_ignored }
}

#[test]
fn at_least_once_delivery_with_idempotent_consumers_loses_nothing_and_applies_everything_once() {
    let setup = BrokerSetup::default();
    let (mut redeliveries, mut duplicates, mut acked, mut unknown) = (0, 0, 0, 0);
    for seed in 0..SEEDS {
        let run = run_seed(seed, &setup, 0.01, true, Consumers::One, ANY_TIME_MS);
        assert!(
            run.verdict.is_valid(),
            "seed {seed}: {:?}: {:?}",
            anomaly_names(&run.verdict),
            run.verdict.anomalies.first().map(|a| &a.explanation)
        );
        redeliveries += run.redeliveries;
        duplicates += run.duplicates_ignored;
        let adds = run.ops.iter().filter(|o| o.f == "add");
        for op in adds {
            match op.outcome {
                Outcome::Ok => acked += 1,
                Outcome::Info => unknown += 1,
                Outcome::Fail => panic!("seed {seed}: a publish was refused below the queue's bound"),
            }
        }
    }
    eprintln!(
        "broker, 100 seeds with 1% loss and broker and consumer crashes: {acked} publishes acknowledged, {unknown} unknown, \
         {redeliveries} redeliveries (counted since each broker's last restart), {duplicates} duplicate updates ignored by the sink"
    );
    assert!(redeliveries > 100, "crashes and lost acks make the broker redeliver");
    assert!(duplicates > 50, "some redeliveries were already processed: at-least-once, not exactly-once delivery");
}

#[test]
fn naive_consumers_apply_redelivered_messages_twice() {
    let setup = BrokerSetup {
        consumer: consumer::ConsumerParams { idempotent: false, ..Default::default() },
        ..Default::default()
    };
    // 3% loss: lost acks and lost confirmations of updates make redeliveries and resends.
    let mut caught = 0;
    for seed in 0..SEEDS {
        let run = run_seed(seed, &setup, 0.03, false, Consumers::One, ANY_TIME_MS);
        let names = anomaly_names(&run.verdict);
        assert!(!names.iter().any(|n| n == "lost-write"), "seed {seed}: redelivery still loses nothing: {names:?}");
        caught += usize::from(names.iter().any(|n| n == "failed-write-visible"));
    }
    eprintln!("naive consumers: counters above every acknowledged and unknown add in {caught}/{SEEDS} seeds");
    assert!(caught >= 90, "the checker sees the double-applied messages ({caught} seeds)");
}

#[test]
fn acking_on_receipt_loses_the_batches_of_crashed_consumers() {
    // A deploy restarts every consumer under load; those holding a batch they acknowledged and
    // did not process lose it. (A consumer holds nothing while its fetch is on the way, or when
    // its last message's update has already gone to the sink: one alone often loses nothing.)
    let setup = BrokerSetup {
        consumer: consumer::ConsumerParams { bug_ack_on_receipt: true, ..Default::default() },
        ..spike_setup(10_000)
    };
    let mut caught = 0;
    for seed in 0..SEEDS {
        let run = run_seed(seed, &setup, 0.0, false, Consumers::All, DURING_SPIKE_MS);
        caught += usize::from(anomaly_names(&run.verdict).iter().any(|n| n == "lost-write"));
    }
    eprintln!("ack on receipt: acknowledged messages lost in {caught}/{SEEDS} seeds");
    assert!(caught >= 80, "at-most-once delivery loses what a crashed consumer held ({caught} seeds)");
}

#[test]
fn acking_publishes_before_persisting_loses_messages_when_the_broker_crashes() {
    // The broker crashes under load, with acknowledged messages waiting for the next flush.
    let mut setup = spike_setup(10_000);
    setup.broker.bug_ack_before_persist = true;
    let mut caught = 0;
    for seed in 0..SEEDS {
        let run = run_seed(seed, &setup, 0.0, true, Consumers::None, DURING_SPIKE_MS);
        caught += usize::from(anomaly_names(&run.verdict).iter().any(|n| n == "lost-write"));
    }
    eprintln!("ack before persist: acknowledged messages lost in {caught}/{SEEDS} seeds");
    assert!(caught >= 90, "the broker crash loses the unflushed acknowledged messages ({caught} seeds)");
}

/// Samples the queue depth every 10 ms until `END_MS`.
fn depth_profile(sim: &mut Simulation<BrokerNode>) -> Vec<(u64, usize)> {
    let mut profile = Vec::new();
    for t_ms in (10..=END_MS).step_by(10) {
        run(sim, t_ms);
        let broker = sim.node(NodeId(0)).and_then(BrokerNode::as_broker).expect("the broker is up");
        profile.push((t_ms, broker.depth()));
    }
    profile
}

fn spike_setup(max_queue_len: usize) -> BrokerSetup {
    BrokerSetup {
        broker: queue::QueueParams { max_queue_len, ..Default::default() },
        // Fifteen times the base rate for 200 ms: 1,200 messages/s against consumers that manage
        // about 350/s together.
        spike: Some(Spike { from_ns: 400 * MS, until_ns: 600 * MS, factor: 15.0 }),
        ..Default::default()
    }
}

#[test]
fn a_load_spike_is_buffered_and_drained() {
    let (mut peak_sum, mut drained_by_sum) = (0.0, 0.0);
    for seed in 0..SEEDS {
        let spec = spec(seed, 0.01);
        let mut sim = build_broker(&spec, &spike_setup(10_000)).expect("builds");
        let profile = depth_profile(&mut sim);
        let before = profile.iter().filter(|(t, _)| *t < 400).map(|p| p.1).max().expect("samples");
        let (peak_at, peak) = profile.iter().copied().max_by_key(|p| (p.1, std::cmp::Reverse(p.0))).expect("samples");
        let drained_by = profile.iter().find(|(t, d)| *t > peak_at && *d <= before.max(10)).map(|p| p.0);
        assert!(before < 40, "seed {seed}: consumers keep up with the base load (depth {before})");
        assert!((400..=700).contains(&peak_at), "seed {seed}: the backlog peaks with the spike, at {peak_at} ms");
        assert!(
            peak > 40 && peak > 4 * before,
            "seed {seed}: the spike is buffered (peak depth {peak}, before {before})"
        );
        let drained_by = drained_by.unwrap_or_else(|| panic!("seed {seed}: the backlog never drained"));
        assert!(drained_by < STOP_MS, "seed {seed}: drained at {drained_by} ms, while producers still run");
        let ops = ops_of(&sim.take_history());
        assert!(
            ops.iter().all(|o| o.outcome != Outcome::Fail || o.f == "read"),
            "seed {seed}: nothing refused below the bound"
        );
        let verdict = verdict(&ops, 0);
        assert!(verdict.is_valid(), "seed {seed}: {:?}", anomaly_names(&verdict));
        peak_sum += peak as f64;
        drained_by_sum += drained_by as f64;
    }
    eprintln!(
        "15x spike for 200 ms: mean peak depth {:.0} messages, backlog drained by {:.0} ms on average",
        peak_sum / SEEDS as f64,
        drained_by_sum / SEEDS as f64
    );
}

#[test]
fn at_its_bound_the_queue_refuses_publishes_and_keeps_what_it_acknowledged() {
    let bound = 50;
    let mut refused_total = 0;
    for seed in 0..SEEDS {
        let spec = spec(seed, 0.01);
        let mut sim = build_broker(&spec, &spike_setup(bound)).expect("builds");
        let profile = depth_profile(&mut sim);
        assert!(profile.iter().all(|&(_, d)| d <= bound), "seed {seed}: the queue stays within its bound");
        let broker = sim.node(NodeId(0)).and_then(BrokerNode::as_broker).expect("the broker is up");
        assert_eq!(broker.stats.max_depth, bound, "seed {seed}: the spike fills the queue");
        let ops = ops_of(&sim.take_history());
        let refused: Vec<&Operation> =
            ops.iter().filter(|o| o.outcome == Outcome::Fail && o.error.as_deref() == Some("queue-full")).collect();
        assert!(!refused.is_empty(), "seed {seed}: publishes beyond the bound are refused");
        assert!(
            refused.iter().all(|o| (400 * MS..800 * MS).contains(&o.invoke_ns)),
            "seed {seed}: only during the spike"
        );
        refused_total += refused.len();
        // Refused publishes were never stored: the counters add up without them.
        let verdict = verdict(&ops, 0);
        assert!(verdict.is_valid(), "seed {seed}: {:?}", anomaly_names(&verdict));
    }
    eprintln!("queue bounded at {bound}: {refused_total} publishes refused over {SEEDS} seeds, none of them applied");
}

#[test]
fn same_seed_same_trace() {
    let hash = |seed| {
        let mut sim = build_broker(&spec(seed, 0.01), &BrokerSetup::default()).expect("builds");
        schedule_crashes(&mut sim, seed, true, Consumers::One, ANY_TIME_MS);
        run(&mut sim, END_MS);
        sim.trace_hash()
    };
    assert_eq!(hash(5), hash(5));
    assert_ne!(hash(5), hash(6));
}

#[test]
fn registry_entry_builds_and_rejects_bad_parameters() {
    let entry = detsim_protocols::find("broker").expect("registered");
    assert_eq!(entry.workloads, &[WorkloadKind::Counter]);
    let mut sim = (entry.build)(&spec(1, 0.0)).expect("builds");
    sim.run_until(SimTime::from_millis(2_000)).expect("runs");
    let ops = ops_of(sim.history());
    assert!(ops.iter().filter(|o| o.f == "add" && o.outcome == Outcome::Ok).count() > 100, "publishes succeed");
    assert!(
        ops.iter().any(|o| o.f == "read" && o.outcome == Outcome::Ok && o.output != Value::Int(0)),
        "reads see them"
    );
    let mut bad = spec(1, 0.0);
    bad.params = serde_json::json!({ "consumer": { "no_such_parameter": 1 } });
    assert!((entry.build)(&bad).is_err(), "unknown parameters are refused");
    let mut bad = spec(1, 0.0);
    bad.nodes = 1;
    assert!((entry.build)(&bad).err().expect("refused").contains("consumer"), "a broker without consumers is refused");
    let mut bad = spec(1, 0.0);
    bad.params = serde_json::json!({ "broker": { "long_poll_ns": 500_000_000u64 } });
    assert!(
        (entry.build)(&bad).err().expect("refused").contains("fetch_timeout_ns"),
        "an answer must come before the fetch times out"
    );
}
