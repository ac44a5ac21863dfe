//! Client-server family: each configuration run across 100 seeds with faults, asserting what it
//! guarantees (linearizability, bounded staleness, dedup) and the failure it exists to show (a
//! single point of failure, slow-server tail latency, stale caches, double-applied retries, a hung
//! dependency draining a shared pool).

use detsim_check::{check_linearizable, operations, LinearizabilityOptions, Model, Operation, Outcome};
use detsim_core::{Fault, History, LinkConfig, NetworkConfig, NodeId, SimTime, Simulation, Value};
use detsim_protocols::client_server::client::{Jitter, RetryParams};
use detsim_protocols::client_server::lb::LbStrategy;
use detsim_protocols::client_server::*;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use std::collections::BTreeMap;

const SEEDS: u64 = 100;
const MS: u64 = 1_000_000;

fn spec(seed: u64, nodes: usize, clients: usize, concurrency: usize, kind: WorkloadKind) -> ClusterSpec {
    let workload = WorkloadSpec {
        kind,
        clients,
        concurrency,
        keys: 3,
        timeout_ns: 200 * MS,
        think_time_ns: 5 * MS,
        stop_at_ns: None,
        read_fraction: 0.5,
        ..WorkloadSpec::default()
    };
    ClusterSpec::new(seed, nodes, workload)
}

fn with_loss(mut spec: ClusterSpec, loss: f64) -> ClusterSpec {
    spec.network = NetworkConfig::new(LinkConfig { loss, ..LinkConfig::default() });
    spec
}

fn ops_of(history: &History) -> Vec<Operation> {
    operations(history).expect("the client records a well-formed history")
}

/// (ok, total) among operations invoked in `[from_ns, to_ns)` that `keep` selects.
fn availability(ops: &[Operation], from_ns: u64, to_ns: u64, keep: impl Fn(&Operation) -> bool) -> (usize, usize) {
    let window: Vec<&Operation> =
        ops.iter().filter(|o| o.invoke_ns >= from_ns && o.invoke_ns < to_ns && keep(o)).collect();
    (window.iter().filter(|o| o.outcome == Outcome::Ok).count(), window.len())
}

/// Operations that completed `ok` inside `[from_ns, to_ns)`.
fn ok_completed_in(ops: &[Operation], from_ns: u64, to_ns: u64) -> usize {
    ops.iter().filter(|o| o.outcome == Outcome::Ok && o.complete_ns.is_some_and(|c| c >= from_ns && c < to_ns)).count()
}

fn latencies_ns(ops: &[Operation], keep: impl Fn(&Operation) -> bool) -> Vec<u64> {
    let mut l: Vec<u64> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && keep(o))
        .map(|o| o.complete_ns.expect("ok") - o.invoke_ns)
        .collect();
    l.sort_unstable();
    l
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    assert!(!sorted.is_empty(), "percentile of nothing");
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn assert_linearizable(history: &History, seed: u64, what: &str) {
    let verdict =
        check_linearizable(history, Model::Register, &LinearizabilityOptions::default()).expect("well-formed");
    assert!(verdict.is_valid(), "{what}, seed {seed}: not linearizable: {:?}", verdict.counterexample);
}

fn is_linearizable(history: &History) -> bool {
    check_linearizable(history, Model::Register, &LinearizabilityOptions::default()).expect("well-formed").is_valid()
}

fn run(sim: &mut Simulation<CsNode>, until_ms: u64) {
    sim.run_until(SimTime::from_millis(until_ms)).expect("the run stays within its limits");
}

fn crash_and_restart(sim: &mut Simulation<CsNode>, node: NodeId, at_ms: u64, back_ms: u64) {
    sim.schedule_fault(SimTime::from_millis(at_ms), Fault::Crash { node }).expect("valid fault");
    sim.schedule_fault(SimTime::from_millis(back_ms), Fault::Restart { node }).expect("valid fault");
}

// ---------------------------------------------------------------- kv-server

#[test]
fn kv_server_is_linearizable_and_unavailable_while_down() {
    let mut during = (0, 0);
    let mut outside = (0, 0);
    for seed in 0..SEEDS {
        let mut spec = with_loss(spec(seed, 1, 3, 2, WorkloadKind::Register), 0.02);
        spec.workload.stop_at_ns = Some(1_000 * MS);
        let mut sim = build_kv_server(&spec, &KvServerSetup::default()).expect("builds");
        crash_and_restart(&mut sim, NodeId(0), 400, 700);
        run(&mut sim, 1_300);
        let history = sim.take_history();
        assert_linearizable(&history, seed, "kv-server with a crash");
        let ops = ops_of(&history);
        // Invoked while the server is down (and the crash already known): nothing can succeed.
        let d = availability(&ops, 410 * MS, 690 * MS, |_| true);
        assert_eq!(d.0, 0, "seed {seed}: an operation succeeded while the only server was down");
        let o = availability(&ops, 0, 300 * MS, |_| true);
        let after = availability(&ops, 800 * MS, 1_000 * MS, |_| true);
        during = (during.0 + d.0, during.1 + d.1);
        outside = (outside.0 + o.0 + after.0, outside.1 + o.1 + after.1);
    }
    assert!(during.1 > 300, "operations were attempted during the outage: {during:?}");
    let up = outside.0 as f64 / outside.1 as f64;
    eprintln!("kv-server availability: down 0/{} , up {up:.3}", during.1);
    assert!(up > 0.9, "availability while up {up}");
}

#[test]
fn kv_server_without_durability_loses_acknowledged_writes_on_restart() {
    // Deliberate bug: the server keeps data in memory only, so a restart forgets acknowledged writes.
    let mut caught = 0;
    for seed in 0..SEEDS {
        let spec = spec(seed, 1, 3, 1, WorkloadKind::Register);
        let setup =
            KvServerSetup { server: kv::KvServerParams { durable: false, ..Default::default() }, ..Default::default() };
        let mut sim = build_kv_server(&spec, &setup).expect("builds");
        crash_and_restart(&mut sim, NodeId(0), 300, 350);
        run(&mut sim, 700);
        caught += usize::from(!is_linearizable(&sim.take_history()));
    }
    eprintln!("non-durable kv-server: {caught}/{SEEDS} seeds not linearizable");
    assert!(caught >= SEEDS as usize / 2, "the checker catches the amnesiac server in most seeds ({caught})");
}

// ---------------------------------------------------------------- front tier

#[test]
fn front_tier_survives_a_front_crash_but_not_a_store_crash() {
    let retry = RetryParams { attempt_timeout_ns: Some(60 * MS), max_attempts: 4, ..RetryParams::default() };
    let setup = FrontTierSetup { retry, ..FrontTierSetup::default() };
    let (mut front_down, mut store_down) = ((0, 0), (0, 0));
    for seed in 0..SEEDS {
        let spec = with_loss(spec(seed, 3, 3, 2, WorkloadKind::Register), 0.01);
        let mut sim = build_front_tier(&spec, &setup).expect("builds");
        let store = sim.node_id("store").expect("a store");
        crash_and_restart(&mut sim, NodeId(0), 200, 500);
        crash_and_restart(&mut sim, store, 700, 900);
        run(&mut sim, 1_100);
        let history = sim.take_history();
        assert_linearizable(&history, seed, "front tier");
        let ops = ops_of(&history);
        let f = availability(&ops, 210 * MS, 490 * MS, |_| true);
        let s = availability(&ops, 710 * MS, 890 * MS, |_| true);
        // Replies already on the way at the crash arrive within two hops (20 ms); nothing after that.
        assert_eq!(ok_completed_in(&ops, 721 * MS, 900 * MS), 0, "seed {seed}: served while the store was down");
        front_down = (front_down.0 + f.0, front_down.1 + f.1);
        store_down = (store_down.0 + s.0, store_down.1 + s.1);
    }
    let with_front_down = front_down.0 as f64 / front_down.1 as f64;
    eprintln!("front tier availability: one front down {with_front_down:.3}, store down 0/{}", store_down.1);
    assert!(with_front_down > 0.95, "retries fail over to the other fronts: {with_front_down}");
}

// ---------------------------------------------------------------- load balancer

fn lb_tail(strategy: LbStrategy, seeds: u64) -> (u64, u64, f64) {
    let mut all = Vec::new();
    let mut slow_share = 0.0;
    for seed in 0..seeds {
        // 32 processes keep the fast servers busy (about 70% utilised), so where the balancer
        // sends a request matters.
        let mut spec = with_loss(spec(seed, 4, 8, 4, WorkloadKind::Register), 0.005);
        spec.workload.think_time_ns = 10 * MS;
        // Long enough that requests stuck behind the slow server count as slow, not as timeouts:
        // the client waits 3 s and the balancer 2.5 s (a proxy gives up before its caller does).
        spec.workload.timeout_ns = 3_000 * MS;
        // Load for 600 ms, then drain: every operation completes inside the run, so the slowest
        // ones (stuck behind the slow server) are measured instead of cut off by the end of the run.
        spec.workload.stop_at_ns = Some(600 * MS);
        let mut setup = LoadBalancerSetup {
            strategy,
            slow_factor: 10.0,
            backend_timeout_ns: 2_500 * MS,
            ..LoadBalancerSetup::default()
        };
        // Service time dominates network time, so where a request lands decides its latency.
        setup.front.service.mean_service_ns = 5 * MS;
        let mut sim = build_load_balancer(&spec, &setup).expect("builds");
        // A fast server reboots mid-run.
        crash_and_restart(&mut sim, NodeId(3), 250, 300);
        run(&mut sim, 4_000);
        let lb = sim.node(sim.node_id("lb").expect("lb")).and_then(CsNode::as_lb).expect("the lb is up");
        slow_share += lb.sent[0] as f64 / lb.sent.iter().sum::<u64>() as f64;
        let history = sim.take_history();
        if seed % 10 == 0 {
            assert_linearizable(&history, seed, "load balancer");
        }
        let ops = ops_of(&history);
        assert!(ops.iter().all(|o| o.complete_ns.is_some()), "seed {seed}: the run drains every operation");
        all.extend(latencies_ns(&ops, |_| true));
    }
    all.sort_unstable();
    (percentile(&all, 0.5), percentile(&all, 0.99), slow_share / seeds as f64)
}

#[test]
fn load_balancer_strategies_differ_in_tail_latency_with_a_slow_server() {
    let (rr50, rr99, rr_slow) = lb_tail(LbStrategy::RoundRobin, SEEDS);
    let (lo50, lo99, lo_slow) = lb_tail(LbStrategy::LeastOutstanding, SEEDS);
    let (p50, p99, p_slow) = lb_tail(LbStrategy::PowerOfTwoChoices, SEEDS);
    eprintln!(
        "lb p50/p99 ms (share to slow n1): round-robin {:.1}/{:.1} ({rr_slow:.2}), least-outstanding {:.1}/{:.1} ({lo_slow:.2}), p2c {:.1}/{:.1} ({p_slow:.2})",
        rr50 as f64 / 1e6, rr99 as f64 / 1e6, lo50 as f64 / 1e6, lo99 as f64 / 1e6, p50 as f64 / 1e6, p99 as f64 / 1e6
    );
    assert!((rr_slow - 0.25).abs() < 0.02, "round robin is blind to load: a quarter to n1, got {rr_slow}");
    assert!(lo_slow < 0.15 && p_slow < 0.15, "load-aware strategies avoid the slow server ({lo_slow}, {p_slow})");
    assert!(rr99 > 2 * p99, "round robin's tail is far worse than two choices'");
    assert!(rr99 > 2 * lo99, "round robin's tail is far worse than least outstanding's");
}

// ---------------------------------------------------------------- cache

/// The worst staleness of any read: how long before the read was invoked its value had already
/// been overwritten by a write that completed after the read value's write completed.
fn max_staleness_ns(ops: &[Operation]) -> u64 {
    let mut writes: BTreeMap<(Value, Value), &Operation> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.f == "write") {
        writes.insert((op.key.clone().expect("keyed"), op.input.clone()), op);
    }
    let mut worst = 0;
    for read in ops.iter().filter(|o| o.f == "read" && o.outcome == Outcome::Ok) {
        let key = read.key.clone().expect("keyed");
        // The read saw `source` (or the initial nil); any ok write invoked after `source`
        // completed superseded it when it completed.
        let source_done = match &read.output {
            Value::Nil => 0,
            v => writes
                .get(&(key.clone(), v.clone()))
                .expect("a read returns a written value")
                .complete_ns
                .unwrap_or(u64::MAX),
        };
        let superseded = ops
            .iter()
            .filter(|w| w.f == "write" && w.outcome == Outcome::Ok && w.key.as_ref() == Some(&key))
            .filter(|w| w.invoke_ns > source_done)
            .filter_map(|w| w.complete_ns)
            .min();
        if let Some(at) = superseded {
            worst = worst.max(read.invoke_ns.saturating_sub(at));
        }
    }
    worst
}

fn cache_spec(seed: u64) -> ClusterSpec {
    let mut spec = with_loss(spec(seed, 2, 4, 1, WorkloadKind::Register), 0.01);
    spec.workload.keys = 2;
    spec.workload.read_fraction = 0.8;
    spec
}

#[test]
fn cache_staleness_is_bounded_by_the_ttl_and_visible_to_the_checker() {
    let ttl_ms = 100;
    let setup =
        CacheSetup { cache: cache::CacheParams { ttl_ns: ttl_ms * MS, ..Default::default() }, ..Default::default() };
    let (mut stale_seeds, mut worst, mut hits, mut misses) = (0, 0, 0, 0);
    for seed in 0..SEEDS {
        let mut sim = build_cache(&cache_spec(seed), &setup).expect("builds");
        crash_and_restart(&mut sim, NodeId(1), 300, 350);
        run(&mut sim, 800);
        let cache = sim.node(NodeId(0)).and_then(CsNode::as_cache).expect("n1 is up");
        (hits, misses) = (hits + cache.hits, misses + cache.misses);
        let history = sim.take_history();
        let staleness = max_staleness_ns(&ops_of(&history));
        // TTL plus one network delay (at most 10 ms) after the store answered the fill.
        assert!(staleness <= (ttl_ms + 10) * MS, "seed {seed}: staleness {staleness} ns beyond the TTL bound");
        worst = worst.max(staleness);
        stale_seeds += usize::from(!is_linearizable(&history));
    }
    eprintln!(
        "cache ttl {ttl_ms} ms: worst staleness {:.1} ms, {stale_seeds}/{SEEDS} seeds with non-linearizable (stale) reads, n1 hit ratio {:.2}",
        worst as f64 / 1e6,
        hits as f64 / (hits + misses) as f64
    );
    assert!(stale_seeds >= SEEDS as usize / 2, "stale reads are visible to the linearizability checker");
    assert!(hits > misses, "the cache absorbs most reads");
}

#[test]
fn cache_without_ttl_expiry_serves_stale_values_forever() {
    let setup = CacheSetup {
        cache: cache::CacheParams { ttl_ns: 100 * MS, bug_ttl_never_expires: true, ..Default::default() },
        ..Default::default()
    };
    let mut caught = 0;
    for seed in 0..SEEDS {
        let mut sim = build_cache(&cache_spec(seed), &setup).expect("builds");
        run(&mut sim, 1_200);
        caught += usize::from(max_staleness_ns(&ops_of(&sim.take_history())) > 110 * MS);
    }
    eprintln!("cache without expiry: staleness beyond the TTL bound in {caught}/{SEEDS} seeds");
    assert!(caught >= 90, "the staleness bound catches the cache that never expires ({caught})");
}

// ---------------------------------------------------------------- sharded KV

fn sharded_throughput(servers: usize, seed: u64) -> f64 {
    let mut spec = spec(seed, servers, 16, 8, WorkloadKind::Register);
    spec.workload.keys = 64;
    spec.workload.think_time_ns = 0;
    let mut sim = build_sharded_kv(&spec, &ShardedKvSetup::default()).expect("builds");
    run(&mut sim, 300);
    let ops = ops_of(&sim.take_history());
    let (ok, _) = availability(&ops, 50 * MS, 250 * MS, |_| true);
    ok as f64 / 0.2
}

#[test]
fn sharded_kv_throughput_grows_with_the_number_of_shards() {
    let mut figures = Vec::new();
    for servers in [1, 2, 4] {
        let mean = (0..5).map(|seed| sharded_throughput(servers, seed)).sum::<f64>() / 5.0;
        figures.push(mean);
    }
    eprintln!("sharded-kv throughput ops/s with 1, 2, 4 servers: {figures:.0?}");
    assert!(figures[1] > 1.7 * figures[0], "two shard servers nearly double throughput");
    assert!(figures[2] > 1.6 * figures[1], "four nearly double it again");
}

#[test]
fn sharded_kv_is_linearizable_and_loses_only_the_crashed_shard() {
    let (mut other_keys, mut crashed_keys) = ((0, 0), (0, 0));
    for seed in 0..SEEDS {
        let mut spec = with_loss(spec(seed, 3, 4, 2, WorkloadKind::Register), 0.01);
        spec.workload.keys = 6;
        let mut sim = build_sharded_kv(&spec, &ShardedKvSetup::default()).expect("builds");
        crash_and_restart(&mut sim, NodeId(0), 200, 400);
        run(&mut sim, 600);
        let servers: Vec<NodeId> = (0..3).map(NodeId).collect();
        let map = sharding::ShardMap::round_robin(12, &servers);
        let history = sim.take_history();
        assert_linearizable(&history, seed, "sharded kv");
        let ops = ops_of(&history);
        let on_n1 =
            |o: &Operation| map.owner(o.key.as_ref().and_then(Value::as_int).expect("int key") as u64) == NodeId(0);
        let c = availability(&ops, 210 * MS, 390 * MS, on_n1);
        let o = availability(&ops, 210 * MS, 390 * MS, |op| !on_n1(op));
        assert_eq!(c.0, 0, "seed {seed}: a key of the crashed shard server was served");
        crashed_keys = (crashed_keys.0 + c.0, crashed_keys.1 + c.1);
        other_keys = (other_keys.0 + o.0, other_keys.1 + o.1);
    }
    let others = other_keys.0 as f64 / other_keys.1 as f64;
    eprintln!("sharded-kv with n1 down: its keys 0/{}, other keys {others:.3}", crashed_keys.1);
    assert!(crashed_keys.1 > 100 && others > 0.9, "only the crashed server's shards are unavailable");
}

// ---------------------------------------------------------------- retries and idempotency

/// (seeds where some counter ended above the adds that could have been applied, retries sent).
fn retry_runs(idempotency_keys: bool) -> (usize, u64) {
    let mut double_applied = 0;
    let mut retries = 0;
    for seed in 0..SEEDS {
        let mut spec = with_loss(spec(seed, 1, 3, 2, WorkloadKind::Counter), 0.15);
        spec.workload.read_fraction = 0.2;
        let setup = RetriesSetup {
            retry: RetryParams {
                attempt_timeout_ns: Some(40 * MS),
                max_attempts: 6,
                idempotency_keys,
                ..RetryParams::default()
            },
            ..RetriesSetup::default()
        };
        let mut sim = build_idempotent_retries(&spec, &setup).expect("builds");
        crash_and_restart(&mut sim, NodeId(0), 200, 260);
        run(&mut sim, 600);
        let ops = ops_of(sim.history());
        let server = sim.node(NodeId(0)).and_then(CsNode::as_kv).expect("the server is up");
        for c in 0..spec.workload.clients {
            retries += sim.node(NodeId(1 + c as u32)).and_then(CsNode::as_client).expect("client").retries_sent;
        }
        let mut over = false;
        for key in 0..spec.workload.keys as u64 {
            let adds = |o: &&Operation| o.f == "add" && o.key == Some(Value::Int(key as i64));
            let ok = ops.iter().filter(adds).filter(|o| o.outcome == Outcome::Ok).count() as i64;
            let maybe = ops.iter().filter(adds).filter(|o| o.outcome != Outcome::Fail).count() as i64;
            let value = server.value(key).unwrap_or(0);
            assert!(value >= ok, "seed {seed}: an acknowledged add was lost ({value} < {ok})");
            over |= value > maybe;
        }
        double_applied += usize::from(over);
    }
    (double_applied, retries)
}

#[test]
fn retries_with_idempotency_keys_apply_each_operation_at_most_once() {
    let (double_applied, retries) = retry_runs(true);
    eprintln!("retries with idempotency keys: {retries} retries, double-applied in {double_applied}/{SEEDS} seeds");
    assert!(retries > 1_000, "loss makes clients retry");
    assert_eq!(double_applied, 0, "the server deduplicates every retry");
}

#[test]
fn retries_without_idempotency_keys_double_apply() {
    let (double_applied, retries) = retry_runs(false);
    eprintln!("retries without idempotency keys: {retries} retries, double-applied in {double_applied}/{SEEDS} seeds");
    assert!(double_applied >= 90, "a retry of an applied add applies it again ({double_applied} seeds)");
}

#[test]
fn backoff_is_exponential_capped_and_jittered() {
    let mut rng = detsim_core::rng::derive_stream(7, detsim_core::rng::StreamPurpose::Workload, 0);
    let plain =
        RetryParams { backoff_base_ns: 10, backoff_cap_ns: 100, jitter: Jitter::None, ..RetryParams::default() };
    let waits: Vec<u64> = (1..=6).map(|n| plain.backoff_ns(n, &mut rng)).collect();
    assert_eq!(waits, [10, 20, 40, 80, 100, 100]);
    let full = RetryParams { jitter: Jitter::Full, ..plain.clone() };
    let draws: Vec<u64> = (0..200).map(|_| full.backoff_ns(4, &mut rng)).collect();
    assert!(draws.iter().all(|&w| w <= 80));
    assert!(draws.iter().min() < Some(&20) && draws.iter().max() > Some(&60), "full jitter spreads over [0, 80]");
    let equal = RetryParams { jitter: Jitter::Equal, ..plain };
    assert!((0..200).map(|_| equal.backoff_ns(4, &mut rng)).all(|w| (40..=80).contains(&w)));
}

// ---------------------------------------------------------------- breaker and bulkheads

struct GatewayFigures {
    /// Availability of calls to the healthy dependency while the other hangs.
    healthy_availability: f64,
    /// Median latency of calls to the hanging dependency while it hangs, ns.
    hanging_median_ns: u64,
    /// Seeds whose breaker went closed -> open -> half-open -> closed.
    full_breaker_cycles: usize,
}

/// The gateway scenario: open-loop clients (many independent users, who keep arriving when the
/// service slows down) call two dependencies through the gateway `n1`; `n2` hangs from 200 ms to
/// 900 ms. The gateway sits next to its dependencies (sub-millisecond links), the clients are
/// 1-10 ms away: a healthy call then holds a gateway worker for about 2 ms, so an 8-worker
/// compartment is ample for its 300 calls/s (Little's law: 0.6 workers busy on average), while a
/// hung call holds one for the whole 300 ms call timeout. Clients time out after 400 ms, longer
/// than the gateway's 300 ms, as the builder insists.
fn gateway_spec(seed: u64) -> ClusterSpec {
    let loss = 0.002;
    let mut spec = with_loss(spec(seed, 3, 6, 1, WorkloadKind::None), loss);
    spec.workload.rate_per_s = Some(100.0);
    spec.workload.timeout_ns = 400 * MS;
    // Stop at 1.8 s and drain, so that every call of the last window has completed.
    spec.workload.stop_at_ns = Some(1_800 * MS);
    let near = LinkConfig {
        loss,
        latency: detsim_core::LatencyDist::Uniform { min_ns: MS / 10, max_ns: MS },
        ..LinkConfig::default()
    };
    for a in 0..3u32 {
        for b in (0..3u32).filter(|&b| b != a) {
            spec.network.links.insert((a, b), near.clone());
        }
    }
    spec
}

fn gateway_runs(bulkheads: bool, breaker: bool, seeds: u64) -> GatewayFigures {
    let (mut ok, mut total) = (0, 0);
    let mut hanging = Vec::new();
    let mut full_cycles = 0;
    for seed in 0..seeds {
        let spec = gateway_spec(seed);
        let mut setup =
            ResilienceSetup { hang_from_ns: 200 * MS, hang_until_ns: 900 * MS, ..ResilienceSetup::default() };
        setup.gateway.pool_size = 16;
        setup.gateway.bulkheads = bulkheads;
        setup.gateway.breaker.enabled = breaker;
        setup.gateway.breaker.open_ns = 200 * MS;
        let mut sim = build_resilience(&spec, &setup).expect("builds");
        run(&mut sim, 2_300);
        let gateway = sim.node(NodeId(0)).and_then(CsNode::as_gateway).expect("the gateway is up");
        let transitions = gateway.breakers[0].transitions.clone();
        let healthy_opened = !gateway.breakers[1].transitions.is_empty();
        let names: Vec<&str> = transitions.iter().map(|t| t.1).collect();
        let cycle = ["open", "half-open", "closed"];
        full_cycles += usize::from(names.windows(3).any(|w| w == cycle) && names.last() == Some(&"closed"));
        // The healthy dependency's breaker never opens.
        assert!(!healthy_opened || !breaker, "seed {seed}: the healthy breaker opened");
        let ops = ops_of(&sim.take_history());
        assert!(ops.iter().all(|o| o.complete_ns.is_some()), "seed {seed}: the run drains every call");
        let dep = |d: i64| move |o: &Operation| o.key == Some(Value::Int(d));
        let (o, t) = availability(&ops, 400 * MS, 900 * MS, dep(1));
        (ok, total) = (ok + o, total + t);
        let during =
            ops.iter().filter(|o| o.key == Some(Value::Int(0)) && o.invoke_ns >= 400 * MS && o.invoke_ns < 800 * MS);
        hanging.extend(during.filter_map(|o| o.complete_ns.map(|c| c - o.invoke_ns)));
        // After the hang, the breaker lets calls through again.
        // The last hung call times out at 1.2 s; a probe that met the hang reopens the breaker
        // for 200 ms more; by 1.5 s every configuration serves dependency 0 again.
        let (after_ok, after_total) = availability(&ops, 1_500 * MS, 1_800 * MS, dep(0));
        assert!(
            after_total == 0 || after_ok * 10 >= after_total * 8,
            "seed {seed} (bulkheads {bulkheads}, breaker {breaker}): dependency 0 stays cut off after it recovered: {after_ok}/{after_total}, breaker {transitions:?}"
        );
    }
    hanging.sort_unstable();
    GatewayFigures {
        healthy_availability: ok as f64 / total as f64,
        hanging_median_ns: percentile(&hanging, 0.5),
        full_breaker_cycles: full_cycles,
    }
}

#[test]
fn bulkheads_and_breakers_contain_a_hung_dependency() {
    let protected = gateway_runs(true, true, SEEDS);
    let bare = gateway_runs(false, false, SEEDS);
    let breaker_only = gateway_runs(false, true, SEEDS);
    let bulkhead_only = gateway_runs(true, false, SEEDS);
    for (name, f) in
        [("both", &protected), ("none", &bare), ("breaker only", &breaker_only), ("bulkheads only", &bulkhead_only)]
    {
        eprintln!(
            "gateway with {name}: healthy dependency availability {:.3}, hung-dependency median latency {:.1} ms, breaker cycles {}",
            f.healthy_availability,
            f.hanging_median_ns as f64 / 1e6,
            f.full_breaker_cycles
        );
    }
    assert!(bare.healthy_availability < 0.5, "without protection the hung dependency drains the shared pool");
    assert!(protected.healthy_availability > 0.97, "bulkheads keep the healthy dependency served");
    assert!(bulkhead_only.healthy_availability > 0.97, "a bulkhead alone contains the failure");
    assert!(breaker_only.healthy_availability > 0.8, "a breaker alone mostly contains it, by failing fast");
    // An open breaker fails calls at once instead of after the 300 ms timeout.
    assert!(protected.hanging_median_ns < 30 * MS && bare.hanging_median_ns >= 300 * MS);
    assert!(protected.full_breaker_cycles >= 95, "open, half-open, closed again once the dependency recovers");
}

#[test]
fn circuit_breaker_counts_an_outcome_only_in_the_state_that_admitted_the_call() {
    use detsim_core::LocalTime;
    use detsim_protocols::client_server::resilience::{BreakerParams, BreakerState, CircuitBreaker};
    let params = BreakerParams { failure_threshold: 2, open_ns: 100, half_open_probes: 2, ..BreakerParams::default() };
    let mut breaker = CircuitBreaker::new(params);
    let at = LocalTime;
    // Three calls go out while closed; two fail and open the breaker.
    let closed_calls: Vec<_> = (0..3).map(|_| breaker.admit(at(0))).collect();
    breaker.on_failure(at(10), closed_calls[0]);
    breaker.on_failure(at(11), closed_calls[1]);
    assert_eq!(breaker.state().name(), "open");
    assert!(!breaker.would_admit(at(50)), "open: calls fail fast");
    // Half-open after 100: a probe goes out; the third closed-state call times out now. It is not
    // the probe's failure, so the breaker stays half-open.
    assert!(breaker.would_admit(at(111)));
    let probe = breaker.admit(at(111));
    breaker.on_failure(at(112), closed_calls[2]);
    assert_eq!(breaker.state().name(), "half-open", "a stale failure does not reopen the breaker");
    assert_eq!(breaker.stale_outcomes, 1);
    // A second probe is lost; the first succeeds, and so does a third: two successes close it
    // before the lost one times out, and its late failure changes nothing.
    let lost = breaker.admit(at(113));
    assert!(!breaker.would_admit(at(114)), "at most two probes in flight");
    breaker.on_success(at(120), probe);
    assert!(matches!(breaker.state(), BreakerState::HalfOpen { probes_in_flight: 1, successes: 1 }));
    let third = breaker.admit(at(121));
    breaker.on_success(at(130), third);
    assert_eq!(breaker.state().name(), "closed");
    breaker.on_failure(at(400), lost);
    assert_eq!(breaker.state(), BreakerState::Closed { consecutive_failures: 0 }, "the lost probe is stale now");
    let names: Vec<&str> = breaker.transitions.iter().map(|t| t.1).collect();
    assert_eq!(names, ["open", "half-open", "closed"]);
    // A probe that fails while current reopens it.
    let mut strict =
        CircuitBreaker::new(BreakerParams { failure_threshold: 1, open_ns: 10, ..BreakerParams::default() });
    let call = strict.admit(at(0));
    strict.on_failure(at(1), call);
    assert!(strict.would_admit(at(11)));
    let probe = strict.admit(at(11));
    strict.on_failure(at(12), probe);
    assert_eq!(strict.state().name(), "open");
}

// ---------------------------------------------------------------- registry

#[test]
fn registry_entries_build_and_serve_from_a_cluster_spec() {
    for (name, nodes, kind) in [
        ("kv-server", 1, WorkloadKind::Register),
        ("front-tier", 3, WorkloadKind::Register),
        ("load-balancer", 3, WorkloadKind::Register),
        ("cache", 2, WorkloadKind::Register),
        ("sharded-kv", 3, WorkloadKind::Counter),
        ("resilience", 3, WorkloadKind::None),
        ("idempotent-retries", 1, WorkloadKind::Counter),
    ] {
        let entry = detsim_protocols::find(name).unwrap_or_else(|| panic!("{name} is registered"));
        assert!(entry.workloads.contains(&kind));
        let mut spec = spec(1, nodes, 2, 1, kind);
        // Longer than every proxy's own timeout (the resilience gateway insists on it).
        spec.workload.timeout_ns = 1_000 * MS;
        let mut sim = (entry.build)(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        sim.run_until(SimTime::from_millis(300)).expect("runs");
        let ok = ops_of(sim.history()).iter().filter(|o| o.outcome == Outcome::Ok).count();
        assert!(ok > 10, "{name} serves operations ({ok} ok)");
        let mut bad = spec.clone();
        bad.params = serde_json::json!({ "no_such_parameter": 1 });
        assert!((entry.build)(&bad).is_err(), "{name} rejects unknown parameters");
    }
    // A gateway that waits longer than its clients is refused, with the reason.
    let entry = detsim_protocols::find("resilience").expect("registered");
    let mut spec = spec(1, 3, 2, 1, WorkloadKind::None);
    spec.workload.timeout_ns = 300 * MS;
    let error = (entry.build)(&spec).err().expect("gateway timeout 300 ms is not shorter than the client's 300 ms");
    assert!(error.contains("call_timeout_ns") && error.contains("shorter"), "{error}");
    spec.params = serde_json::json!({ "gateway": { "call_timeout_ns": 299_000_000u64 } });
    assert!((entry.build)(&spec).is_ok(), "a gateway timeout below the client's is accepted");
}
