//! Lease-based lock: under clock drift two clients believe they hold the lock at once (measured
//! from the clients' own lease beliefs, in true time); without fencing the register history of
//! their critical sections is not linearizable, with fencing it is; with accurate clocks the lease
//! alone keeps holders apart; a restarted lock server waits out a lease and never reuses a token.

use detsim_check::{check_linearizable, LinearizabilityOptions, Model};
use detsim_core::rng::{derive_stream, StreamPurpose};
use detsim_core::{Fault, History, LinkConfig, LocalClock, NetworkConfig, NodeId, SimTime, Simulation, Value};
use detsim_protocols::lease::*;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use rand::RngExt;

const SEEDS: u64 = 100;
const MS: u64 = 1_000_000;
const CLIENTS: usize = 3;
const END_MS: u64 = 5_000;

/// Lock server `n1`, storage `n2`, three clients; 1% loss.
fn spec(seed: u64) -> ClusterSpec {
    let workload = WorkloadSpec { kind: WorkloadKind::Register, clients: CLIENTS, ..WorkloadSpec::default() };
    let mut spec = ClusterSpec::new(seed, 2, workload);
    spec.network = NetworkConfig::new(LinkConfig { loss: 0.01, ..LinkConfig::default() });
    spec
}

/// Client clock drifts, drawn from the seed: one client's clock runs 30-60% slow (a badly broken
/// clock, or a VM starved of CPU), the others within 100 ppm. Returns the drift of each client.
fn drifting_clocks(spec: &mut ClusterSpec, seed: u64) -> Vec<f64> {
    let mut rng = derive_stream(seed, StreamPurpose::Swarm, 0);
    let slow = rng.random_range(0..CLIENTS);
    let drifts: Vec<f64> = (0..CLIENTS)
        .map(|c| if c == slow { -rng.random_range(300_000.0..600_000.0) } else { rng.random_range(-100.0..100.0) })
        .collect();
    spec.clocks = vec![LocalClock::new(0, 0.0), LocalClock::new(0, 0.0)];
    spec.clocks.extend(drifts.iter().map(|&d| LocalClock::new(rng.random_range(-50 * MS as i64..50 * MS as i64), d)));
    drifts
}

/// A storage pause and a lock-server crash at times drawn from the seed.
fn schedule_faults(sim: &mut Simulation<LeaseNode>, seed: u64) {
    let mut rng = derive_stream(seed, StreamPurpose::Nemesis, 0);
    let pause_at = rng.random_range(300..4_000u64);
    let pause_ms = rng.random_range(30..150u64);
    sim.schedule_fault(SimTime::from_millis(pause_at), Fault::Pause { node: NodeId(1) }).expect("valid");
    sim.schedule_fault(SimTime::from_millis(pause_at + pause_ms), Fault::Resume { node: NodeId(1) }).expect("valid");
    let crash_at = rng.random_range(300..4_200u64);
    sim.schedule_fault(SimTime::from_millis(crash_at), Fault::Crash { node: NodeId(0) }).expect("valid");
    sim.schedule_fault(SimTime::from_millis(crash_at + 100), Fault::Restart { node: NodeId(0) }).expect("valid");
}

/// A span of true time during which a client believed it held the lease.
#[derive(Clone, Debug)]
struct Belief {
    client: usize,
    token: u64,
    start_ns: u64,
    end_ns: u64,
}

/// Runs to `END_MS` event by event, recording every client's lease beliefs in true time: from the
/// grant's arrival until the client's clock reaches the lease's end or the client lets go,
/// whichever is first. `drifts` are the clients' (constant) drift rates.
fn run_recording_beliefs(sim: &mut Simulation<LeaseNode>, drifts: &[f64]) -> Vec<Belief> {
    let clients: Vec<NodeId> = (0..CLIENTS).map(|c| NodeId(2 + c as u32)).collect();
    let mut open: Vec<Option<Belief>> = vec![None; CLIENTS];
    let mut beliefs = Vec::new();
    let end = SimTime::from_millis(END_MS);
    sim.run_until(SimTime::ZERO).expect("starts the nodes");
    while sim.pending_events() > 0 && sim.now() < end {
        sim.step().expect("steps");
        let now = sim.now().0;
        for (c, &id) in clients.iter().enumerate() {
            let lease = sim.node(id).and_then(LeaseNode::as_client).and_then(|client| client.current_lease());
            let held = open[c].as_ref().map(|b| b.token);
            if held.is_some() && held != lease.map(|l| l.0) {
                let mut belief = open[c].take().expect("held");
                belief.end_ns = belief.end_ns.min(now);
                beliefs.push(belief);
            }
            if let Some((token, until)) = lease {
                if open[c].is_none() {
                    let local = sim.local_time(id).as_nanos();
                    let left_local_ns = (until.as_nanos() - local).max(0) as f64;
                    let left_true_ns = left_local_ns / (1.0 + drifts[c] / 1e6);
                    open[c] = Some(Belief { client: c, token, start_ns: now, end_ns: now + left_true_ns as u64 });
                }
            }
        }
    }
    beliefs.extend(open.into_iter().flatten());
    beliefs.sort_by_key(|b| b.start_ns);
    beliefs
}

/// Pairs of beliefs of different clients that overlap in true time.
fn overlaps(beliefs: &[Belief]) -> usize {
    let mut count = 0;
    for (i, a) in beliefs.iter().enumerate() {
        for b in &beliefs[i + 1..] {
            count += usize::from(a.client != b.client && a.start_ns < b.end_ns && b.start_ns < a.end_ns);
        }
    }
    count
}

fn linearizable(history: &History) -> bool {
    let options = LinearizabilityOptions { initial: Value::Int(0), ..LinearizabilityOptions::default() };
    check_linearizable(history, Model::CasRegister, &options).expect("well-formed").is_valid()
}

struct Outcome {
    overlaps: usize,
    linearizable: bool,
    fenced_off: u64,
    sections_ok: u64,
}

fn run_seed(seed: u64, setup: &LeaseSetup, drift: bool, faults: bool) -> Outcome {
    let mut spec = spec(seed);
    let drifts = if drift { drifting_clocks(&mut spec, seed) } else { vec![0.0; CLIENTS] };
    let mut sim = build_lease_lock(&spec, setup).expect("builds");
    if faults {
        schedule_faults(&mut sim, seed);
    }
    let beliefs = run_recording_beliefs(&mut sim, &drifts);
    let storage = sim.node(NodeId(1)).and_then(LeaseNode::as_storage).expect("storage up");
    let fenced_off = storage.fenced_off;
    let sections_ok: u64 = (0..CLIENTS)
        .map(|c| sim.node(NodeId(2 + c as u32)).and_then(LeaseNode::as_client).expect("up").stats.sections_ok)
        .sum();
    let history = sim.take_history();
    Outcome { overlaps: overlaps(&beliefs), linearizable: linearizable(&history), fenced_off, sections_ok }
}

/// Critical sections that use most of the lease (100-160 ms of work out of the 170 ms a client
/// trusts): a client whose clock runs slow overruns the lease in true time.
fn setup(fencing: bool) -> LeaseSetup {
    let mut setup = LeaseSetup::default();
    setup.storage.bug_no_fencing = !fencing;
    setup.client.work_min_ns = 100 * MS;
    setup.client.work_max_ns = 160 * MS;
    setup
}

fn no_fencing() -> LeaseSetup {
    setup(false)
}

#[test]
fn with_fencing_the_register_stays_linearizable_though_drifting_clients_overlap() {
    let (mut overlapping_seeds, mut fenced, mut sections) = (0, 0, 0);
    for seed in 0..SEEDS {
        let outcome = run_seed(seed, &setup(true), true, true);
        assert!(outcome.linearizable, "seed {seed}: fencing keeps the increments serialized");
        overlapping_seeds += usize::from(outcome.overlaps > 0);
        fenced += outcome.fenced_off;
        sections += outcome.sections_ok;
    }
    eprintln!(
        "fencing, one client clock 30-60% slow: beliefs overlap in {overlapping_seeds}/{SEEDS} seeds, \
         {fenced} stale requests fenced off, {sections} sections done, all histories linearizable"
    );
    assert!(overlapping_seeds >= 90, "two clients believe they hold the lock ({overlapping_seeds} seeds)");
    assert!(fenced >= 100, "the storage turns the stale holders away ({fenced})");
}

#[test]
fn without_fencing_a_client_with_a_slow_clock_loses_updates() {
    let (mut caught, mut overlapping_seeds) = (0, 0);
    for seed in 0..SEEDS {
        let outcome = run_seed(seed, &no_fencing(), true, true);
        overlapping_seeds += usize::from(outcome.overlaps > 0);
        caught += usize::from(!outcome.linearizable);
    }
    eprintln!("no fencing: beliefs overlap in {overlapping_seeds}/{SEEDS} seeds, history not linearizable in {caught}");
    assert!(caught >= 80, "the checker sees the lost updates ({caught} seeds)");
}

#[test]
fn with_accurate_clocks_the_lease_alone_keeps_holders_apart() {
    // Delays (at most 10 ms) stay within the 30 ms safety margin and clocks agree: no overlap, and
    // even an unfenced register stays linearizable.
    let mut sections = 0;
    for seed in 0..SEEDS {
        let outcome = run_seed(seed, &no_fencing(), false, false);
        assert_eq!(outcome.overlaps, 0, "seed {seed}: no two clients believe they hold the lock");
        assert!(outcome.linearizable, "seed {seed}: linearizable without fencing");
        sections += outcome.sections_ok;
    }
    eprintln!("accurate clocks: no overlapping beliefs in {SEEDS} seeds, {sections} sections done");
    assert!(sections > 10 * SEEDS, "clients take turns at a good rate ({sections})");
}

#[test]
fn a_restarted_lock_server_waits_out_a_lease_and_never_reuses_a_token() {
    for seed in 0..SEEDS {
        let spec = spec(seed);
        let mut sim = build_lease_lock(&spec, &no_fencing()).expect("builds");
        let crash_at = 500 + seed * 10;
        sim.run_until(SimTime::from_millis(crash_at)).expect("runs");
        let before = sim.node(NodeId(0)).and_then(LeaseNode::as_server).expect("up").last_token();
        sim.schedule_fault(SimTime::from_millis(crash_at), Fault::Crash { node: NodeId(0) }).expect("valid");
        sim.schedule_fault(SimTime::from_millis(crash_at + 50), Fault::Restart { node: NodeId(0) }).expect("valid");
        let beliefs = run_recording_beliefs(&mut sim, &[0.0; CLIENTS]);
        assert_eq!(overlaps(&beliefs), 0, "seed {seed}: the grace period keeps a pre-crash lease from overlapping");
        let restart_ns = (crash_at + 50) * MS;
        let first_after = beliefs.iter().filter(|b| b.start_ns > restart_ns).map(|b| b.start_ns).min();
        let first_after = first_after.unwrap_or_else(|| panic!("seed {seed}: grants resume after the grace period"));
        assert!(first_after >= restart_ns + 200 * MS, "seed {seed}: no grant within one lease of the restart");
        let tokens: Vec<u64> = beliefs.iter().filter(|b| b.start_ns > restart_ns).map(|b| b.token).collect();
        assert!(tokens.iter().all(|&t| t > before), "seed {seed}: tokens after the restart exceed every earlier one");
        assert!(tokens.windows(2).all(|w| w[0] < w[1]), "seed {seed}: tokens increase with every grant");
        assert!(linearizable(&sim.take_history()), "seed {seed}");
    }
}

#[test]
fn same_seed_same_trace() {
    let hash = |seed| {
        let mut spec = spec(seed);
        drifting_clocks(&mut spec, seed);
        let mut sim = build_lease_lock(&spec, &LeaseSetup::default()).expect("builds");
        schedule_faults(&mut sim, seed);
        sim.run_until(SimTime::from_millis(END_MS)).expect("runs");
        sim.trace_hash()
    };
    assert_eq!(hash(8), hash(8));
    assert_ne!(hash(8), hash(9));
}

#[test]
fn registry_entry_builds_and_rejects_bad_parameters() {
    let entry = detsim_protocols::find("lease-lock").expect("registered");
    assert_eq!(entry.workloads, &[WorkloadKind::Register]);
    let mut sim = (entry.build)(&spec(1)).expect("builds");
    sim.run_until(SimTime::from_millis(2_000)).expect("runs");
    let history = sim.history();
    assert!(history.events.iter().filter(|e| e.kind == detsim_core::EventType::Ok).count() > 5, "sections complete");
    let mut bad = spec(1);
    bad.params = serde_json::json!({ "storage": { "fencing": true } });
    assert!((entry.build)(&bad).is_err(), "unknown parameters are refused");
    let mut bad = spec(1);
    bad.params = serde_json::json!({ "client": { "safety_margin_ns": 300_000_000u64 } });
    let error = (entry.build)(&bad).err().expect("refused");
    assert!(error.contains("safety_margin_ns"), "{error}");
    let mut bad = spec(1);
    bad.nodes = 3;
    assert!((entry.build)(&bad).is_err(), "two servers exactly");
}
