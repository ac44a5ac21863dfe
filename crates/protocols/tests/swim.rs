//! SWIM: crashed members are declared dead by every live member within a bounded time, live members
//! are not (suspicion and refutation absorb message loss), restarted members rejoin, a partitioned
//! group merges again after the heal (reconnect probes; without them it stays split), the load per
//! member and the time to first suspicion do not grow with the group, and the no-suspicion bug
//! shows as false positives.

use detsim_core::{Fault, LatencyDist, NodeId, SimTime, Simulation};
use detsim_protocols::swim::{self, Status, SwimNode, SwimParams};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};

const NODES: usize = 8;

fn spec(seed: u64, loss: f64) -> ClusterSpec {
    let mut spec = ClusterSpec::new(seed, NODES, WorkloadSpec { kind: WorkloadKind::None, ..WorkloadSpec::default() });
    spec.network.default_link.latency = LatencyDist::uniform_ms(1, 15);
    spec.network.default_link.loss = loss;
    spec
}

fn run(spec: &ClusterSpec, params: SwimParams, faults: &[(u64, Fault)], end_ms: u64) -> Simulation<SwimNode> {
    let mut sim = swim::build(spec, params).expect("valid swim spec");
    for (at_ms, fault) in faults {
        sim.schedule_fault(SimTime::from_millis(*at_ms), fault.clone()).expect("valid fault");
    }
    sim.run_until(SimTime::from_millis(end_ms)).expect("run completes");
    sim
}

fn crashes(sim: &Simulation<SwimNode>) -> Vec<(u32, u64, u64)> {
    swim::crash_windows(sim.fault_windows(), sim.node_names())
}

#[test]
fn crashes_are_detected_by_all_and_live_members_never_declared_dead_across_100_seeds() {
    let params = SwimParams::default();
    let mut detection_ms = Vec::new();
    let mut suspicions = 0;
    for seed in 0..100u64 {
        let victim = NodeId(1 + (seed % (NODES as u64 - 1)) as u32);
        let faults = [
            (1_000, Fault::LossBurst { node: None, loss: 0.2 }),
            (3_000, Fault::LossBurstEnd { node: None }),
            (4_000, Fault::Crash { node: victim }),
            (5_000, Fault::LatencySpike { node: Some(NodeId(0)), extra_ns: 20_000_000 }),
            (6_000, Fault::LatencySpikeEnd { node: Some(NodeId(0)) }),
        ];
        let sim = run(&spec(seed, 0.05), params.clone(), &faults, 12_000);
        let crashes = crashes(&sim);
        assert_eq!(crashes.len(), 1);
        let false_positives = swim::false_positive_deaths(sim.history(), &crashes);
        assert!(false_positives.is_empty(), "seed {seed}: live members declared dead: {false_positives:?}");
        let observers: Vec<u32> = (0..NODES as u32).filter(|n| *n != victim.0).collect();
        let report = swim::detection_report(sim.history(), &crashes, &observers);
        let all_ns = report[0].all_ns.unwrap_or_else(|| panic!("seed {seed}: every live member declared the crash"));
        detection_ms.push(all_ns as f64 / 1e6);
        for observer in &observers {
            let view = sim.node(NodeId(*observer)).expect("up").view(victim).expect("member");
            assert_eq!(view.status, Status::Dead, "seed {seed}: n{} sees the crash", observer + 1);
        }
        suspicions += detsim_protocols::gossip::events::instant_events(sim.history(), "suspect").len();
    }
    detection_ms.sort_by(f64::total_cmp);
    let mean = detection_ms.iter().sum::<f64>() / detection_ms.len() as f64;
    let p99 = detection_ms[98];
    eprintln!(
        "swim N=8, 5% loss: detection by all members mean {mean:.0} ms, p99 {p99:.0} ms, max {:.0} ms; {suspicions} suspicions, 0 false deaths",
        detection_ms[99]
    );
    // First probe within about one pass over the members, then the suspicion timeout, then
    // dissemination: a few periods each.
    let period_ms = params.protocol_period_ms as f64;
    let bound_ms = period_ms * (2.0 * NODES as f64 + params.suspicion_periods as f64 + 6.0);
    assert!(detection_ms[99] < bound_ms, "max detection {} ms over bound {bound_ms} ms", detection_ms[99]);
}

#[test]
fn no_suspicion_bug_declares_live_members_dead_under_loss() {
    let mut with_suspicion = 0;
    let mut without = 0;
    for seed in 0..100u64 {
        let faults =
            [(1_000, Fault::LossBurst { node: None, loss: 0.25 }), (4_000, Fault::LossBurstEnd { node: None })];
        let good = run(&spec(seed, 0.05), SwimParams::default(), &faults, 6_000);
        with_suspicion += swim::false_positive_deaths(good.history(), &[]).len();
        let bug = SwimParams { bug_no_suspicion: true, ..SwimParams::default() };
        let bad = run(&spec(seed, 0.05), bug, &faults, 6_000);
        without += swim::false_positive_deaths(bad.history(), &[]).len();
    }
    eprintln!("25% loss burst, 100 seeds: false deaths {with_suspicion} with suspicion, {without} without");
    assert_eq!(with_suspicion, 0);
    assert!(without >= 20, "the bug is caught: only {without} false deaths");
}

#[test]
fn restarted_member_rejoins_with_a_higher_incarnation() {
    for seed in 0..100u64 {
        let victim = NodeId(2);
        let faults = [(1_000, Fault::Crash { node: victim }), (5_000, Fault::Restart { node: victim })];
        let sim = run(&spec(seed, 0.02), SwimParams::default(), &faults, 9_000);
        let incarnation = sim.node(victim).expect("up").incarnation();
        assert!(incarnation >= 1, "seed {seed}");
        for member in (0..NODES as u32).map(NodeId).filter(|m| *m != victim) {
            let view = sim.node(member).expect("up").view(victim).expect("member");
            assert_eq!(view.status, Status::Alive, "seed {seed}: {member} sees the rejoin");
            assert!(view.incarnation >= 1);
        }
    }
}

#[test]
fn same_seed_same_trace_and_registry_entry_runs() {
    let faults = [(1_000, Fault::Crash { node: NodeId(3) })];
    let a = run(&spec(3, 0.1), SwimParams::default(), &faults, 4_000);
    let b = run(&spec(3, 0.1), SwimParams::default(), &faults, 4_000);
    assert_eq!(a.trace_hash(), b.trace_hash());
    let entry = detsim_protocols::find("swim").expect("registered");
    let mut spec = spec(3, 0.0);
    spec.params = serde_json::json!({"indirect_probes": 2});
    let mut sim = (entry.build)(&spec).expect("builds");
    sim.schedule_fault(SimTime::from_secs(1), Fault::Crash { node: NodeId(1) }).expect("fault");
    sim.run_until(SimTime::from_secs(6)).expect("runs");
    assert!(sim.history().events.iter().any(|e| e.f == "dead"));
    spec.params = serde_json::json!({"ping_timeout_ms": 500});
    assert!((entry.build)(&spec).is_err(), "a ping timeout beyond the period is rejected");
}

/// Members every member holds alive at the end of a run.
fn live_views(sim: &Simulation<SwimNode>) -> Vec<usize> {
    (0..NODES as u32).map(|n| sim.node(NodeId(n)).expect("up").live_members().len()).collect()
}

#[test]
fn after_a_partition_heals_the_group_merges_again_across_100_seeds() {
    let mut merged_within_ms = Vec::new();
    for seed in 0..100u64 {
        let left: Vec<NodeId> = (0..4).map(NodeId).collect();
        let right: Vec<NodeId> = (4..8).map(NodeId).collect();
        let faults = [(1_000, Fault::Partition { groups: vec![left, right] }), (6_000, Fault::Heal)];
        let sim = run(&spec(seed, 0.05), SwimParams::default(), &faults, 14_000);
        let deaths = detsim_protocols::gossip::events::instant_events(sim.history(), "dead");
        assert!(deaths.len() >= 16, "seed {seed}: each side declared the other dead ({} deaths)", deaths.len());
        assert_eq!(live_views(&sim), vec![NODES - 1; NODES], "seed {seed}: everyone sees everyone alive again");
        // The merge time: when the last member declared dead in the partition was first seen alive
        // again by the member that had declared it.
        let heal_ns = 6_000_000_000;
        let revived = detsim_protocols::gossip::events::instant_events(sim.history(), "alive");
        let mut pairs: Vec<(u32, i64)> = deaths.iter().map(|e| (e.node, e.key.as_int().expect("member"))).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let merge_ns = pairs
            .iter()
            .map(|(observer, member)| {
                revived
                    .iter()
                    .filter(|e| e.node == *observer && e.key.as_int() == Some(*member) && e.time_ns >= heal_ns)
                    .map(|e| e.time_ns)
                    .min()
                    .expect("every member declared dead is seen alive again")
            })
            .max()
            .expect("deaths");
        merged_within_ms.push((merge_ns - heal_ns) as f64 / 1e6);
    }
    merged_within_ms.sort_by(f64::total_cmp);
    eprintln!(
        "swim N=8, 5 s partition into halves: merged {:.0} ms after the heal (median), {:.0} ms (max)",
        merged_within_ms[50], merged_within_ms[99]
    );
    // Reconnect probes every 5 periods (1 s), then dissemination over a few periods: within a few
    // reconnect rounds.
    assert!(merged_within_ms[99] < 6_000.0, "merge took {} ms", merged_within_ms[99]);

    // The paper's protocol, without reconnect probes: the halves never merge.
    let params = SwimParams { reconnect_periods: 0, ..SwimParams::default() };
    let left: Vec<NodeId> = (0..4).map(NodeId).collect();
    let right: Vec<NodeId> = (4..8).map(NodeId).collect();
    let faults = [(1_000, Fault::Partition { groups: vec![left, right] }), (6_000, Fault::Heal)];
    let sim = run(&spec(0, 0.05), params, &faults, 14_000);
    assert_eq!(live_views(&sim), vec![NODES / 2 - 1; NODES], "without reconnecting, each half sees only itself");
}

#[test]
fn load_per_member_and_time_to_first_suspicion_do_not_grow_with_the_group() {
    let params = SwimParams::default();
    let mut figures = Vec::new();
    for nodes in [8usize, 32, 128] {
        let (mut per_member_period, mut first_suspicion_periods) = (0.0, 0.0);
        let seeds = 30u64;
        for seed in 0..seeds {
            let mut spec = spec(seed, 0.0);
            spec.nodes = nodes;
            let victim = NodeId(1 + (seed % (nodes as u64 - 1)) as u32);
            let sim = run(&spec, params.clone(), &[(5_000, Fault::Crash { node: victim })], 10_000);
            let periods = 10_000 / params.protocol_period_ms;
            per_member_period += sim.stats().sends as f64 / (nodes as f64 * periods as f64) / seeds as f64;
            let first = detsim_protocols::gossip::events::instant_events(sim.history(), "suspect")
                .into_iter()
                .filter(|e| e.key.as_int() == Some(victim.0 as i64))
                .map(|e| e.time_ns)
                .min()
                .expect("the crash is suspected");
            first_suspicion_periods +=
                (first - 5_000_000_000) as f64 / (params.protocol_period_ms as f64 * 1e6) / seeds as f64;
        }
        eprintln!(
            "swim N={nodes}: {per_member_period:.2} messages per member per period, first suspicion after {first_suspicion_periods:.2} periods"
        );
        figures.push((per_member_period, first_suspicion_periods));
    }
    for (load, first) in &figures {
        // A ping and its ack per member per period, a little more around the crash (ping-reqs);
        // all-to-all heartbeating would send N - 1.
        assert!((2.0..2.5).contains(load), "messages per member per period: {load}");
        // Some member probes the crashed one within e / (e - 1) periods on average (§3.1), then
        // the probe's period must end.
        assert!(*first < 3.0, "first suspicion after {first} periods");
    }
    let (min, max) = figures.iter().fold((f64::MAX, 0.0f64), |(lo, hi), f| (lo.min(f.1), hi.max(f.1)));
    // From 8 to 128 members: a linear detector would take 16 times longer.
    assert!(max < 2.0 * min, "time to first suspicion does not grow with N: {min} .. {max} periods");
}
