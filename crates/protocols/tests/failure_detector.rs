//! Failure detectors: a fixed timeout detects every crash within its timeout plus the last
//! heartbeat's latency and errs only when that many heartbeats in a row go missing; φ accrual waits
//! longer as loss and jitter grow while a fixed timeout errs more; on links of mixed quality φ
//! accrual makes fewer mistakes than a fixed timeout at the same detection time (and with bounded
//! jitter a timeout above the bound makes none); the sender-timestamp bug is caught.

use detsim_core::{Fault, LatencyDist, LinkConfig, LocalClock, NodeId, SimTime, Simulation};
use detsim_protocols::failure_detector::{self, DetectorKind, DetectorNode, DetectorParams, DetectorQuality};
use detsim_protocols::gossip::events::crash_windows;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};

const NODES: usize = 6;

fn spec(seed: u64, latency: LatencyDist, loss: f64) -> ClusterSpec {
    let mut spec = ClusterSpec::new(seed, NODES, WorkloadSpec { kind: WorkloadKind::None, ..WorkloadSpec::default() });
    spec.network.default_link.latency = latency;
    spec.network.default_link.loss = loss;
    spec
}

/// `crashes` crashes of 2 s each, every 6 s from 4 s, rotating over the nodes (n1 first), plus
/// `faults`; returns the run and its quality figures.
fn run(
    spec: &ClusterSpec,
    kind: DetectorKind,
    params: &DetectorParams,
    crashes: u64,
    faults: &[(u64, Fault)],
    end_ms: u64,
) -> (Simulation<DetectorNode>, DetectorQuality) {
    let mut sim = failure_detector::build(spec, kind, params.clone()).expect("valid detector spec");
    for i in 0..crashes {
        let victim = NodeId(((spec.seed + i) % NODES as u64) as u32);
        sim.schedule_fault(SimTime::from_millis(4_000 + 6_000 * i), Fault::Crash { node: victim }).expect("fault");
        sim.schedule_fault(SimTime::from_millis(6_000 + 6_000 * i), Fault::Restart { node: victim }).expect("fault");
    }
    for (at_ms, fault) in faults {
        sim.schedule_fault(SimTime::from_millis(*at_ms), fault.clone()).expect("valid fault");
    }
    sim.run_until(SimTime::from_millis(end_ms)).expect("run completes");
    let crashes = crash_windows(sim.fault_windows(), sim.node_names());
    let quality = failure_detector::quality(sim.history(), &crashes, NODES, end_ms * 1_000_000);
    (sim, quality)
}

/// Quality over `seeds` seeds of runs with `crashes` crashes (see [`run`]), 6 s each.
fn sweep(
    seeds: u64,
    crashes: u64,
    spec_of: impl Fn(u64) -> ClusterSpec,
    kind: DetectorKind,
    params: &DetectorParams,
) -> DetectorQuality {
    let mut total = DetectorQuality::default();
    for seed in 0..seeds {
        total.merge(run(&spec_of(seed), kind, params, crashes, &[], 4_000 + 6_000 * crashes).1);
    }
    total
}

fn describe(name: &str, q: &DetectorQuality) -> String {
    format!(
        "{name}: {} mistakes ({:.0}/h), query accuracy {:.5}, detection mean {:.0} ms max {:.0} ms over {} crashes",
        q.false_suspicions,
        q.mistakes_per_hour(),
        q.query_accuracy(),
        q.mean_detection_ms(),
        q.max_detection_ms(),
        q.detections_ns.len()
    )
}

/// Every live monitor trusts every live peer at the end of a run.
fn assert_all_trusted(sim: &Simulation<DetectorNode>, seed: u64) {
    for monitor in (0..NODES as u32).map(NodeId) {
        let node = sim.node(monitor).expect("every node is up at the end");
        for peer in (0..NODES as u32).map(NodeId).filter(|p| *p != monitor) {
            assert!(!node.suspects(peer), "seed {seed}: {monitor} still suspects the live {peer}");
        }
    }
}

#[test]
fn fixed_timeout_detects_every_crash_in_time_and_errs_only_in_a_loss_burst_across_100_seeds() {
    let params = DetectorParams::default();
    let timeout_ns = params.timeout_ms * 1_000_000;
    let (burst_start_ms, burst_end_ms) = (7_000, 9_000);
    let mut total = DetectorQuality::default();
    for seed in 0..100u64 {
        let faults = [
            (burst_start_ms, Fault::LossBurst { node: None, loss: 0.4 }),
            (burst_end_ms, Fault::LossBurstEnd { node: None }),
            (
                11_500,
                Fault::LatencySpike { node: Some(NodeId(((seed + 3) % NODES as u64) as u32)), extra_ns: 50_000_000 },
            ),
            (13_000, Fault::LatencySpikeEnd { node: Some(NodeId(((seed + 3) % NODES as u64) as u32)) }),
        ];
        let (sim, quality) = run(
            &spec(seed, LatencyDist::uniform_ms(1, 10), 0.02),
            DetectorKind::FixedTimeout,
            &params,
            3,
            &faults,
            20_000,
        );
        assert_eq!(quality.missed, 0, "seed {seed}: every crash is detected by every live monitor");
        assert_eq!(quality.detections_ns.len(), 3 * (NODES - 1), "seed {seed}");
        for detection in &quality.detections_ns {
            // The last heartbeat left before the crash and arrives within the largest latency (10
            // ms, 60 ms in the spike): suspicion follows one timeout later at most.
            assert!(*detection <= timeout_ns + 60_000_000, "seed {seed}: detection {detection} ns");
            // Nor earlier than a timeout after the last heartbeat sent before the crash.
            assert!(
                *detection + params.heartbeat_ms * 3_000_000 >= timeout_ns,
                "seed {seed}: detection {detection} ns"
            );
        }
        // Five heartbeats in a row must go missing: at 2% loss never, in a 40% burst sometimes.
        for at in &quality.false_suspicions_at_ns {
            let window = burst_start_ms * 1_000_000..burst_end_ms * 1_000_000 + timeout_ns;
            assert!(window.contains(at), "seed {seed}: a mistake outside the loss burst at {at} ns");
        }
        assert_all_trusted(&sim, seed);
        total.merge(quality);
    }
    eprintln!("{}", describe("fixed 500 ms, N=6, 100 seeds, 2% loss + 40% burst", &total));
    assert!(total.false_suspicions > 0, "a 40% loss burst does fool a 5-heartbeat timeout now and then");
}

#[test]
fn phi_accrual_detects_every_crash_learns_a_loss_burst_and_every_mistake_ends_across_100_seeds() {
    // φ's normal model cannot represent loss: one lost heartbeat doubles the gap, which the model of
    // a 2%-loss link calls a 10^-8 event. Like Akka, allow one heartbeat's pause on a lossy link.
    let params = DetectorParams { acceptable_pause_ms: 100, ..DetectorParams::default() };
    let mut total = DetectorQuality::default();
    // Mean detection time of the crash before the loss burst (at 4 s) and of the one after (10 s).
    let (mut before_burst_ms, mut after_burst_ms) = (0.0, 0.0);
    for seed in 0..100u64 {
        let faults = [
            (7_000, Fault::LossBurst { node: None, loss: 0.4 }),
            (9_000, Fault::LossBurstEnd { node: None }),
            (11_500, Fault::LatencySpike { node: None, extra_ns: 30_000_000 }),
            (13_000, Fault::LatencySpikeEnd { node: None }),
        ];
        let spec = spec(seed, LatencyDist::uniform_ms(1, 10), 0.02);
        let (sim, quality) = run(&spec, DetectorKind::PhiAccrual, &params, 3, &faults, 20_000);
        assert_eq!(quality.missed, 0, "seed {seed}: every crash is detected by every live monitor before it restarts");
        assert!(quality.query_accuracy() > 0.98, "seed {seed}: live peers are trusted 98% of the time");
        // No suspicion of a live peer sticks: each ends when a heartbeat gets through.
        assert!(
            quality.longest_mistake_ns < 2_000_000_000,
            "seed {seed}: a mistake lasted {} ns",
            quality.longest_mistake_ns
        );
        let crashes = crash_windows(sim.fault_windows(), sim.node_names());
        let detection_of = |k: usize| {
            failure_detector::quality(sim.history(), &crashes[k..k + 1], NODES, 20_000_000_000).mean_detection_ms()
        };
        before_burst_ms += detection_of(0) / 100.0;
        after_burst_ms += detection_of(1) / 100.0;
        total.merge(quality);
    }
    let mean_mistake_ms = total.mistake_ns as f64 / total.false_suspicions.max(1) as f64 / 1e6;
    eprintln!(
        "{}; mean mistake {mean_mistake_ms:.0} ms, longest {:.0} ms; detection {before_burst_ms:.0} ms before the burst, {after_burst_ms:.0} ms after",
        describe("phi 8 + 100 ms pause, N=6, 100 seeds, 2% loss + 40% burst", &total),
        total.longest_mistake_ns as f64 / 1e6
    );
    assert!(total.query_accuracy() > 0.99, "live peers are trusted 99% of the time overall");
    // A mistake lasts until the next heartbeat gets through: about one interval, a few at 40% loss.
    assert!(mean_mistake_ms < 2.0 * params.heartbeat_ms as f64, "mistakes are short: {mean_mistake_ms} ms");
    // The burst's long gaps stay in the window for a while: φ waits longer after it.
    assert!(
        after_burst_ms > 1.3 * before_burst_ms,
        "phi accrual learns the burst: {before_burst_ms} -> {after_burst_ms} ms"
    );
}

#[test]
fn as_loss_and_jitter_grow_a_fixed_timeout_errs_more_while_phi_accrual_waits_longer() {
    let fixed = DetectorParams { timeout_ms: 250, ..DetectorParams::default() };
    let phi = DetectorParams::default();
    let latencies =
        [("calm", LatencyDist::uniform_ms(5, 15)), ("jittery", LatencyDist::LogNormal { median_ns: 20e6, sigma: 0.8 })];
    let losses = [0.0, 0.05, 0.2];
    // [latency][loss] -> (fixed, phi)
    let mut table: Vec<Vec<(DetectorQuality, DetectorQuality)>> = Vec::new();
    for (name, latency) in &latencies {
        let mut row = Vec::new();
        for loss in losses {
            let spec_of = |seed| spec(seed, latency.clone(), loss);
            let f = sweep(10, 5, spec_of, DetectorKind::FixedTimeout, &fixed);
            let p = sweep(10, 5, spec_of, DetectorKind::PhiAccrual, &phi);
            eprintln!("{}", describe(&format!("{name:7} loss {loss:4}  fixed 250 ms"), &f));
            eprintln!("{}", describe(&format!("{name:7} loss {loss:4}  phi 8       "), &p));
            row.push((f, p));
        }
        table.push(row);
    }
    let range = |detections: Vec<f64>| {
        let low = detections.iter().copied().fold(f64::MAX, f64::min);
        (low, detections.iter().copied().fold(0.0, f64::max))
    };
    let fixed_range = range(table.iter().flatten().map(|(f, _)| f.mean_detection_ms()).collect());
    let phi_range = range(table.iter().flatten().map(|(_, p)| p.mean_detection_ms()).collect());
    for (l, (name, _)) in latencies.iter().enumerate() {
        for i in 1..losses.len() {
            let (before, after) = (&table[l][i - 1], &table[l][i]);
            assert!(
                after.0.false_suspicions > before.0.false_suspicions,
                "{name}: a fixed timeout errs more with more loss"
            );
            assert!(
                after.1.mean_detection_ms() > before.1.mean_detection_ms(),
                "{name}: phi accrual learns the loss and waits longer"
            );
        }
    }
    for (calm, jittery) in table[0].iter().zip(&table[1]) {
        assert!(jittery.0.false_suspicions > calm.0.false_suspicions, "jitter fools a fixed timeout more");
        assert!(jittery.1.mean_detection_ms() > calm.1.mean_detection_ms(), "phi accrual waits longer on jitter");
    }
    // A fixed timeout's detection time barely moves (the timeout dominates it); φ's follows the
    // network.
    assert!(fixed_range.1 < 1.5 * fixed_range.0, "fixed timeout detection within {fixed_range:?} ms");
    assert!(phi_range.1 > 2.0 * phi_range.0, "phi accrual detection within {phi_range:?} ms");
}

/// Odd-numbered nodes (n2, n4, n6) send over `far` links; the rest over 1-5 ms links.
fn mixed_links(seed: u64, far: &LatencyDist) -> ClusterSpec {
    let mut spec = spec(seed, LatencyDist::uniform_ms(1, 5), 0.0);
    for from in (1..NODES as u32).step_by(2) {
        for to in (0..NODES as u32).filter(|t| *t != from) {
            spec.network.links.insert((from, to), LinkConfig { latency: far.clone(), ..LinkConfig::default() });
        }
    }
    spec
}

#[test]
fn phi_accrual_makes_fewer_mistakes_than_a_fixed_timeout_at_the_same_detection_time_on_mixed_links() {
    let far = LatencyDist::LogNormal { median_ns: 30e6, sigma: 0.8 };
    // The fixed timeout's trade-off curve: (mean detection ms, mistakes) per timeout.
    let mut curve: Vec<(f64, f64)> = Vec::new();
    for timeout_ms in [150, 200, 250, 300, 350, 400] {
        let params = DetectorParams { timeout_ms, ..DetectorParams::default() };
        let q = sweep(10, 9, |seed| mixed_links(seed, &far), DetectorKind::FixedTimeout, &params);
        eprintln!("{}", describe(&format!("mixed links, fixed {timeout_ms} ms"), &q));
        curve.push((q.mean_detection_ms(), q.false_suspicions as f64));
    }
    for pair in curve.windows(2) {
        assert!(pair[1].0 > pair[0].0 && pair[1].1 <= pair[0].1, "a longer timeout is slower and errs less");
    }
    for threshold in [8.0, 12.0] {
        let params = DetectorParams { phi_threshold: threshold, ..DetectorParams::default() };
        let q = sweep(10, 9, |seed| mixed_links(seed, &far), DetectorKind::PhiAccrual, &params);
        let detection = q.mean_detection_ms();
        // The fixed timeout's mistakes at the same mean detection time, interpolated on a log scale
        // between the two timeouts around it (mistakes fall about exponentially with the timeout).
        let i = curve.iter().position(|(d, _)| *d >= detection).expect("phi is slower than the shortest timeout");
        assert!(i > 0, "phi is slower than the shortest timeout swept");
        let ((d0, m0), (d1, m1)) = (curve[i - 1], curve[i]);
        let t = (detection - d0) / (d1 - d0);
        let fixed_mistakes = ((m0.max(1.0)).ln() * (1.0 - t) + (m1.max(1.0)).ln() * t).exp();
        eprintln!(
            "{}; a fixed timeout as fast makes about {fixed_mistakes:.0}",
            describe(&format!("mixed links, phi {threshold}"), &q)
        );
        assert!(
            (q.false_suspicions as f64) * 2.0 < fixed_mistakes,
            "phi {threshold}: {} mistakes vs {fixed_mistakes:.0} for a fixed timeout as fast",
            q.false_suspicions
        );
    }
}

#[test]
fn with_bounded_jitter_a_fixed_timeout_above_the_bound_never_errs_where_phi_accrual_does() {
    // Latency in [20, 200] ms: no gap between heartbeats exceeds 100 + 180 = 280 ms. A timeout above
    // that never errs; φ accrual's normal model puts some probability beyond any delay, and its
    // threshold is only as good as the model.
    let far = LatencyDist::uniform_ms(20, 200);
    let fixed = sweep(
        10,
        9,
        |seed| mixed_links(seed, &far),
        DetectorKind::FixedTimeout,
        &DetectorParams { timeout_ms: 300, ..DetectorParams::default() },
    );
    let phi = sweep(10, 9, |seed| mixed_links(seed, &far), DetectorKind::PhiAccrual, &DetectorParams::default());
    eprintln!("{}", describe("bounded jitter, fixed 300 ms", &fixed));
    eprintln!("{}", describe("bounded jitter, phi 8", &phi));
    assert_eq!(fixed.false_suspicions, 0);
    assert!(phi.false_suspicions > 0);
    assert!(fixed.max_detection_ms() <= 300.0 + 200.0, "a timeout plus the largest latency");
}

#[test]
fn sender_timestamps_bug_suspects_live_peers_and_detects_late_under_clock_skew() {
    let params = DetectorParams::default();
    let bug = DetectorParams { bug_sender_timestamps: true, ..params.clone() };
    let offsets_ms = [0i64, -300, 250, -100, 400, 0];
    let (mut correct, mut buggy) = (DetectorQuality::default(), DetectorQuality::default());
    for seed in 0..50u64 {
        let mut spec = spec(seed, LatencyDist::uniform_ms(1, 10), 0.02);
        spec.clocks =
            offsets_ms.iter().map(|ms| LocalClock::new(ms * 1_000_000, 50.0 - 20.0 * (*ms as f64 / 100.0))).collect();
        let (_, good) = run(&spec, DetectorKind::FixedTimeout, &params, 3, &[], 20_000);
        let (_, bad) = run(&spec, DetectorKind::FixedTimeout, &bug, 3, &[], 20_000);
        assert_eq!(good.false_suspicions, 0, "seed {seed}: skew does not matter to receiver-local timing");
        assert!(good.max_detection_ms() <= 510.0 + 1.0, "seed {seed}");
        assert!(bad.false_suspicions > 0, "seed {seed}: the bug suspects peers whose clocks are behind");
        correct.merge(good);
        buggy.merge(bad);
    }
    eprintln!("{}", describe("skewed clocks, fixed 500 ms", &correct));
    eprintln!("{}", describe("skewed clocks, fixed 500 ms, sender timestamps", &buggy));
    assert!(buggy.max_detection_ms() > 510.0 + 300.0, "peers whose clocks are ahead are detected late");
}

#[test]
fn same_seed_same_trace_and_registry_entries_run() {
    let spec = spec(4, LatencyDist::uniform_ms(1, 10), 0.05);
    let a = run(&spec, DetectorKind::PhiAccrual, &DetectorParams::default(), 1, &[], 8_000);
    let b = run(&spec, DetectorKind::PhiAccrual, &DetectorParams::default(), 1, &[], 8_000);
    assert_eq!(a.0.trace_hash(), b.0.trace_hash());
    assert_eq!(a.1, b.1);
    for name in ["heartbeat", "phi-accrual"] {
        let entry = detsim_protocols::find(name).expect("registered");
        let mut spec = spec.clone();
        spec.params = serde_json::json!({"heartbeat_ms": 50, "timeout_ms": 200, "phi_threshold": 10.0});
        let mut sim = (entry.build)(&spec).expect("builds");
        sim.schedule_fault(SimTime::from_secs(1), Fault::Crash { node: NodeId(2) }).expect("fault");
        sim.run_until(SimTime::from_secs(3)).expect("runs");
        assert!(sim.history().events.iter().any(|e| e.f == "suspect"), "{name} suspects the crashed node");
        spec.params = serde_json::json!({"phi_threshold": 0.1});
        assert!((entry.build)(&spec).is_err(), "{name}: impossible parameters are rejected");
        spec.params = serde_json::json!({"timeout": 3});
        assert!((entry.build)(&spec).is_err(), "{name}: unknown parameters are rejected");
    }
}
