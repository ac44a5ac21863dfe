//! Determinism: the same seed gives the same trace hash (in one process and across processes), a
//! different seed a different one, and adding an unrelated node leaves the others' draws alone.

mod common;

use common::Chatter;
use detsim_core::{Fault, LatencyDist, LinkConfig, NetworkConfig, NodeId, SimConfig, SimTime, Simulation};

fn config(seed: u64) -> SimConfig {
    let link =
        LinkConfig { latency: LatencyDist::uniform_ms(1, 20), loss: 0.05, duplicate: 0.05, ..LinkConfig::default() };
    SimConfig { seed, network: NetworkConfig::new(link), ..SimConfig::default() }
}

/// A run with every kind of fault; returns its trace hash.
fn run(seed: u64, nodes: u32) -> u64 {
    let mut sim = Simulation::new(config(seed)).expect("valid config");
    for i in 0..nodes {
        sim.add_node(&format!("n{}", i + 1), move |id, storage| {
            Chatter::new(id, nodes, storage.get("count").unwrap_or(0))
        });
    }
    let n = NodeId;
    let faults = [
        (100, Fault::Partition { groups: vec![vec![n(0), n(1)], vec![n(2), n(3)]] }),
        (200, Fault::Heal),
        (250, Fault::Crash { node: n(1) }),
        (300, Fault::Restart { node: n(1) }),
        (320, Fault::Pause { node: n(2) }),
        (360, Fault::Resume { node: n(2) }),
        (400, Fault::ClockDrift { node: n(3), drift_ppm: 500.0 }),
        (410, Fault::ClockJump { node: n(0), by_ns: 3_000_000 }),
        (420, Fault::LatencySpike { node: None, extra_ns: 5_000_000 }),
        (450, Fault::LatencySpikeEnd { node: None }),
        (460, Fault::OneWay { from: vec![n(0)], to: vec![n(1)] }),
        (480, Fault::Heal),
    ];
    for (ms, fault) in faults {
        sim.schedule_fault(SimTime::from_millis(ms), fault).expect("valid fault");
    }
    sim.run_until(SimTime::from_millis(600)).expect("run completes");
    sim.trace_hash()
}

#[test]
fn same_seed_same_hash_in_one_process() {
    assert_eq!(run(7, 4), run(7, 4));
}

#[test]
fn different_seed_different_hash() {
    assert_ne!(run(7, 4), run(8, 4));
}

#[test]
fn same_seed_same_hash_across_processes() {
    // The child re-runs this test binary with one test selected; it prints the hash it computed.
    if let Ok(seed) = std::env::var("DETSIM_DETERMINISM_CHILD_SEED") {
        let seed: u64 = seed.parse().expect("numeric seed");
        println!("HASH={:016x}", run(seed, 4));
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let output = std::process::Command::new(exe)
        .args(["--exact", "same_seed_same_hash_across_processes", "--nocapture", "--test-threads=1"])
        .env("DETSIM_DETERMINISM_CHILD_SEED", "11")
        .output()
        .expect("child test process runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find_map(|l| l.find("HASH=").map(|i| &l[i + 5..i + 21])).expect("child printed a hash");
    assert_eq!(line, format!("{:016x}", run(11, 4)));
}

#[test]
fn adding_an_unrelated_node_keeps_the_other_nodes_draws() {
    // Node streams are derived from (seed, node index) and message draws from (seed, link, the
    // sender's send count): node 0's draws do not depend on how many nodes exist. Check through the
    // public API: what node 0 sends first (peer choice from its own stream) and when each message is
    // due (latency drawn for its link) are the same with 4 and with 5 nodes when peers are
    // restricted to the first 4.
    let first_targets = |nodes: u32| {
        let mut sim = Simulation::new(config(3)).expect("valid config");
        for i in 0..nodes {
            sim.add_node(&format!("n{}", i + 1), move |id, _| Chatter::new(id, 4, 0));
        }
        let trace = detsim_core::MemoryTrace::new();
        sim.set_trace_sink(Box::new(trace.clone()));
        sim.run_until(SimTime::from_millis(50)).expect("run completes");
        trace
            .records()
            .into_iter()
            .filter(|r| r.ev == "send" && r.from.as_deref() == Some("n1"))
            .map(|r| (r.to, r.msg, r.deliver_at))
            .collect::<Vec<_>>()
    };
    let with_four = first_targets(4);
    assert!(!with_four.is_empty());
    let due: Vec<u64> = with_four.iter().filter_map(|(_, _, at)| *at).collect();
    assert!(due.windows(2).any(|w| w[0] != w[1]), "latency is random, so the check can fail");
    assert_eq!(with_four, first_targets(5));
}

#[test]
fn golden_hash_is_pinned() {
    // Changing what the core hashes, or how it draws, changes every recorded trace hash: do it on
    // purpose and update this value in the same commit.
    assert_eq!(format!("{:016x}", run(1, 4)), GOLDEN_SEED1_NODES4);
}

const GOLDEN_SEED1_NODES4: &str = "ffc362a79b9614d5";
