//! Chord: after joins and stabilization every lookup finds the true owner; hop counts grow like
//! log N; under churn (crashes and rejoins) lookups keep succeeding, and once the ring has
//! stabilized none names a wrong owner or lacks a route (only lost messages can still time one out);
//! a one-strike failure detector names wrong owners under loss; the never-fixed-fingers bug shows as
//! linear hop counts.

use detsim_core::{EventType, Fault, LatencyDist, NodeId, SimTime, Simulation};
use detsim_protocols::dht::{self, ChordNode, ChordParams};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};

fn spec(seed: u64, nodes: usize, loss: f64) -> ClusterSpec {
    let mut spec = ClusterSpec::new(seed, nodes, WorkloadSpec { kind: WorkloadKind::None, ..WorkloadSpec::default() });
    spec.network.default_link.latency = LatencyDist::uniform_ms(1, 10);
    spec.network.default_link.loss = loss;
    spec
}

fn run(spec: &ClusterSpec, params: ChordParams, faults: &[(u64, Fault)], end_ms: u64) -> Simulation<ChordNode> {
    let mut sim = dht::build(spec, params).expect("valid chord spec");
    for (at_ms, fault) in faults {
        sim.schedule_fault(SimTime::from_millis(*at_ms), fault.clone()).expect("valid fault");
    }
    sim.run_until(SimTime::from_millis(end_ms)).expect("run completes");
    sim
}

/// (mean hops, lookups, wrong owners, failures) of the lookups invoked after `since_ms`.
fn lookup_figures(sim: &Simulation<ChordNode>, seed: u64, live: &[u32], since_ms: u64) -> (f64, usize, usize, usize) {
    let records: Vec<_> =
        dht::lookups(sim.history()).into_iter().filter(|r| r.invoked_ns >= since_ms * 1_000_000).collect();
    let mut hops = 0u64;
    let mut wrong = 0;
    let mut failed = 0;
    for record in &records {
        match record.result {
            Some((owner, h)) => {
                hops += h as u64;
                if owner != dht::expected_owner(seed, live, record.key) {
                    wrong += 1;
                }
            }
            None => failed += 1,
        }
    }
    let succeeded = records.len() - failed;
    (hops as f64 / succeeded.max(1) as f64, records.len(), wrong, failed)
}

#[test]
fn hop_counts_grow_like_log_n_and_the_no_fingers_bug_is_linear() {
    let mut means = Vec::new();
    for nodes in [8usize, 32, 128] {
        let params = ChordParams { lookups_start_ms: 6_000 + 50 * nodes as u64, ..ChordParams::default() };
        let end_ms = params.lookups_start_ms + 2_000;
        let live: Vec<u32> = (0..nodes as u32).collect();
        let mut total = 0.0;
        for seed in 0..3u64 {
            let sim = run(&spec(seed, nodes, 0.0), params.clone(), &[], end_ms);
            let (mean, count, wrong, failed) = lookup_figures(&sim, seed, &live, params.lookups_start_ms);
            assert!(count > nodes, "N={nodes} seed {seed}: lookups ran");
            assert_eq!((wrong, failed), (0, 0), "N={nodes} seed {seed}: a stable ring answers every lookup right");
            total += mean;
        }
        let mean = total / 3.0;
        let log_n = (nodes as f64).log2();
        eprintln!("chord N={nodes}: mean hops {mean:.2} (log2 N = {log_n:.0})");
        assert!(mean <= log_n, "N={nodes}: {mean} hops is more than log2 N");
        means.push((nodes, mean));
    }
    // From 8 to 128 nodes log2 N grows by 4; ½ log2 N by 2. Linear growth would be ×16.
    let growth = means[2].1 - means[0].1;
    assert!((1.0..=4.0).contains(&growth), "hops grew by {growth} from N=8 to N=128");

    let nodes = 128;
    let params = ChordParams { bug_no_fix_fingers: true, lookups_start_ms: 12_000, ..ChordParams::default() };
    let sim = run(&spec(0, nodes, 0.0), params, &[], 14_000);
    let live: Vec<u32> = (0..nodes as u32).collect();
    let (buggy, _, wrong, _) = lookup_figures(&sim, 0, &live, 12_000);
    eprintln!("chord N=128 without finger fixing: mean hops {buggy:.2}");
    assert_eq!(wrong, 0, "successor lists alone still route correctly");
    assert!(buggy > 3.0 * means[2].1, "the bug is caught: {buggy} hops vs {}", means[2].1);
}

/// What one churn run shows: lookups invoked during churn (and how many failed), and the figures
/// of the lookups invoked once the ring had three seconds to stabilize.
struct ChurnRun {
    during: usize,
    during_failed: usize,
    after: usize,
    after_wrong: usize,
    after_failed: usize,
    /// Failures after stabilization that were not timeouts (a routing loop or dead end).
    after_routing_failures: usize,
    after_mean_hops: f64,
}

/// 16 nodes, 1% loss throughout, a 10% loss burst, three crashes of which two rejoin.
fn churn_run(seed: u64, params: &ChordParams) -> ChurnRun {
    let nodes = 16;
    // Three victims (never n1, the bootstrap); one stays down, two come back. Offsets 0, 5, 10
    // (mod 15): three distinct victims.
    let pick = |k: u64| NodeId(1 + ((seed * 7 + k * 5) % (nodes as u64 - 1)) as u32);
    let (a, b, c) = (pick(0), pick(1), pick(2));
    let faults = [
        (2_500, Fault::Crash { node: a }),
        (3_000, Fault::LossBurst { node: None, loss: 0.1 }),
        (3_500, Fault::Crash { node: b }),
        (4_000, Fault::Restart { node: a }),
        (4_500, Fault::Crash { node: c }),
        (5_000, Fault::LossBurstEnd { node: None }),
        (5_500, Fault::Restart { node: b }),
    ];
    let sim = run(&spec(seed, nodes, 0.01), params.clone(), &faults, 11_000);
    let live: Vec<u32> = (0..nodes as u32).filter(|n| *n != c.0).collect();
    for n in &live {
        assert!(sim.node(NodeId(*n)).expect("up").joined(), "seed {seed}: n{} is in the ring", n + 1);
    }
    let records = dht::lookups(sim.history());
    let churn: Vec<_> = records.iter().filter(|r| r.invoked_ns < 8_000_000_000).collect();
    // Three seconds after the last fault the ring has stabilized.
    let (after_mean_hops, after, after_wrong, after_failed) = lookup_figures(&sim, seed, &live, 8_500);
    let after_routing_failures = sim
        .history()
        .events
        .iter()
        .filter(|e| e.f == "lookup" && e.kind == EventType::Fail && e.time_ns >= 8_500_000_000)
        .filter(|e| e.error.as_deref() != Some("timed-out"))
        .count();
    ChurnRun {
        during: churn.len(),
        during_failed: churn.iter().filter(|r| r.result.is_none()).count(),
        after,
        after_wrong,
        after_failed,
        after_routing_failures,
        after_mean_hops,
    }
}

#[test]
fn lookups_survive_churn_and_are_correct_after_stabilization_across_100_seeds() {
    let params = ChordParams { lookups_start_ms: 2_000, ..ChordParams::default() };
    let (mut during, mut during_failed, mut after, mut after_failed, mut hops_after) = (0, 0, 0, 0, 0.0);
    for seed in 0..100u64 {
        let figures = churn_run(seed, &params);
        assert!(figures.after > 100, "seed {seed}: lookups ran after churn");
        // Safety: once the ring has stabilized no lookup names a wrong owner, and none fails for
        // want of a route. The 1% loss goes on, so a lookup can still time out: it takes
        // `max_retries + 1` lost messages within one lookup.
        assert_eq!(figures.after_wrong, 0, "seed {seed}: wrong owners after stabilization");
        assert_eq!(figures.after_routing_failures, 0, "seed {seed}: routing failures after stabilization");
        during += figures.during;
        during_failed += figures.during_failed;
        after += figures.after;
        after_failed += figures.after_failed;
        hops_after += figures.after_mean_hops;
    }
    let failure_rate = during_failed as f64 / during as f64;
    eprintln!(
        "chord N=16 churn: {during} lookups during churn, {:.2}% failed; {after} after, none wrong, {after_failed} timed out, mean hops {:.2}",
        failure_rate * 100.0,
        hops_after / 100.0
    );
    assert!(failure_rate < 0.05, "successor lists and retries keep lookups working: {failure_rate}");
    assert!(after_failed * 1_000 <= after, "timeouts after stabilization are rare: {after_failed} of {after}");
}

#[test]
fn a_one_strike_failure_detector_names_wrong_owners_under_loss() {
    // The same runs with a successor dropped at its first unanswered probe: a lost message makes a
    // node skip its live successor and name the next one as owner, even on a stable ring.
    let params = ChordParams { lookups_start_ms: 2_000, failure_threshold: 1, ..ChordParams::default() };
    let (mut wrong, mut after) = (0, 0);
    for seed in 0..100u64 {
        let figures = churn_run(seed, &params);
        wrong += figures.after_wrong;
        after += figures.after;
    }
    eprintln!("chord N=16, one-strike detector: {wrong} wrong owners among {after} lookups after stabilization");
    assert!(wrong > 0, "a one-strike detector under 1% loss misroutes some lookups");
}

#[test]
fn same_seed_same_trace_and_registry_entry_runs() {
    let a = run(&spec(5, 10, 0.05), ChordParams::default(), &[], 6_000);
    let b = run(&spec(5, 10, 0.05), ChordParams::default(), &[], 6_000);
    assert_eq!(a.trace_hash(), b.trace_hash());
    let entry = detsim_protocols::find("chord").expect("registered");
    let mut spec = spec(5, 10, 0.0);
    spec.params = serde_json::json!({"successors": 3, "lookups_start_ms": 1000});
    let mut sim = (entry.build)(&spec).expect("builds");
    sim.run_until(SimTime::from_secs(3)).expect("runs");
    assert!(sim.history().events.iter().any(|e| e.f == "lookup"));
    spec.params = serde_json::json!({"successors": 0});
    assert!((entry.build)(&spec).is_err());
}
