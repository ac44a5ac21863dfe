//! Benchmarks of the simulation core: "pingpong" (request/response round trips on two nodes),
//! "broadcast-N" (gossip fan-out at 10 to 10,000 nodes) and "memory-10m" (peak memory of 10 million
//! deliveries with the trace streamed to a file). Each compares with the simplest baseline we could
//! build: a bare `BinaryHeap` event loop with no network model, no trace and no hash.

use super::{median, timed, Bench, BenchResult};
use detsim_core::{
    Ctx, JsonlTraceWriter, LatencyDist, LinkConfig, Message, NetworkConfig, Node, NodeId, SimConfig, SimTime,
    Simulation, TimerId,
};
use rand::{Rng, RngExt, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

pub fn benches() -> Vec<Bench> {
    vec![
        Bench { name: "pingpong", run: pingpong },
        Bench { name: "broadcast", run: broadcast },
        Bench { name: "memory-10m", run: memory_10m },
    ]
}

#[derive(Clone, Debug, Hash)]
enum Rpc {
    Ping(u64),
    Pong(u64),
}

impl Message for Rpc {
    fn kind(&self) -> &'static str {
        match self {
            Rpc::Ping(_) => "Ping",
            Rpc::Pong(_) => "Pong",
        }
    }
}

/// Node 0 pings node 1 and sends the next ping when the pong arrives, `round_trips` times.
struct PingPong {
    round_trips: u64,
    done: u64,
}

impl Node for PingPong {
    type Msg = Rpc;
    fn on_start(&mut self, ctx: &mut Ctx<'_, Rpc>) {
        if ctx.id() == NodeId(0) {
            ctx.send(NodeId(1), Rpc::Ping(0));
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Rpc>, from: NodeId, msg: Rpc) {
        match msg {
            Rpc::Ping(seq) => ctx.send(from, Rpc::Pong(seq)),
            Rpc::Pong(seq) => {
                self.done += 1;
                if self.done < self.round_trips {
                    ctx.send(from, Rpc::Ping(seq + 1));
                }
            }
        }
    }
    fn on_timer(&mut self, _: &mut Ctx<'_, Rpc>, _: TimerId, _: u64) {}
}

fn uniform_1_10ms() -> NetworkConfig {
    NetworkConfig::new(LinkConfig { latency: LatencyDist::uniform_ms(1, 10), ..LinkConfig::default() })
}

/// Runs `round_trips` ping-pongs; returns (round trips done, events, trace hash).
pub fn run_pingpong(round_trips: u64, seed: u64, trace_to: Option<Box<dyn std::io::Write>>) -> (u64, u64, u64) {
    let mut sim = Simulation::new(SimConfig { seed, network: uniform_1_10ms(), ..SimConfig::default() })
        .expect("valid benchmark config");
    for name in ["client", "server"] {
        sim.add_node(name, move |_, _| PingPong { round_trips, done: 0 });
    }
    if let Some(out) = trace_to {
        sim.set_trace_sink(Box::new(JsonlTraceWriter::new(out)));
    }
    sim.run_until(SimTime::MAX).expect("benchmark run completes");
    sim.finish().expect("trace flushed");
    let done = sim.node(NodeId(0)).expect("client alive").done;
    assert_eq!(done, round_trips, "every round trip completed");
    (done, sim.stats().events, sim.trace_hash())
}

/// The baseline: the same ping-pong on a bare binary heap of (time, seq, message), with the same
/// latency distribution and no network model, trace or hash.
fn baseline_pingpong(round_trips: u64) -> u64 {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut queue: BinaryHeap<Reverse<(u64, u64, u8, u64)>> = BinaryHeap::new();
    let mut seq = 0;
    queue.push(Reverse((0, 0, 0, 0)));
    let mut done = 0;
    while let Some(Reverse((time, _, to, n))) = queue.pop() {
        let reply_to = 1 - to;
        if to == 0 {
            if n > 0 {
                done += 1;
            }
            if done == round_trips {
                break;
            }
        }
        seq += 1;
        let latency = rng.random_range(1_000_000..=10_000_000u64);
        queue.push(Reverse((time + latency, seq, reply_to, n + 1)));
    }
    let _ = rng.next_u64();
    done
}

fn pingpong() -> Vec<BenchResult> {
    let round_trips = 100_000;
    let runs = 5;
    // Warm up once so the measured runs do not pay for first-touch page faults.
    run_pingpong(10_000, 1, None);
    // A run takes tens of milliseconds, so one is at the mercy of the machine: report the median
    // of several, with the fastest and slowest beside it.
    let mut walls = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let (outcome, wall_s) = timed(|| run_pingpong(round_trips, 1, None));
        assert!(last.is_none_or(|previous| previous == outcome), "every run is the same run");
        last = Some(outcome);
        walls.push(wall_s);
    }
    let (done, events, hash) = last.expect("at least one run");
    let baseline_walls: Vec<f64> = (0..runs)
        .map(|_| {
            let (baseline_done, baseline_s) = timed(|| baseline_pingpong(round_trips));
            assert_eq!(baseline_done, round_trips);
            baseline_s
        })
        .collect();
    let per_s = |wall: f64| round_trips as f64 / wall;
    let (fastest, slowest) = walls.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &w| (lo.min(w), hi.max(w)));
    vec![
        BenchResult::new("pingpong", done, median(walls.clone()))
            .with(
                "unit",
                "round trips (2 nodes, latency uniform 1-10 ms, trace hash on, no trace file; median of 5 runs)",
            )
            .with("events", events)
            .with("trace_hash", format!("{hash:016x}"))
            .with("runs", runs)
            .with("per_s_fastest_run", per_s(fastest))
            .with("per_s_slowest_run", per_s(slowest))
            .with("target_per_s", 5_000_000),
        BenchResult::new("pingpong-baseline-heap", round_trips, median(baseline_walls))
            .with("unit", "round trips on a bare BinaryHeap loop (no network model, trace or hash; median of 5 runs)"),
    ]
}

#[derive(Clone, Debug, Hash)]
struct Rumor(u32);

impl Message for Rumor {
    fn kind(&self) -> &'static str {
        "Rumor"
    }
}

/// Gossip: on first hearing a rumor, forward it to `fanout` random peers. Node `r % n` starts rumor
/// `r` at time `r` ms.
struct Gossiper {
    nodes: u32,
    fanout: u32,
    rumors: u32,
    /// The rumors heard: a bit each, the first `INLINE_WORDS * 64` in the node itself and the rest
    /// on the heap (a node that keeps a small set inline, as a performance-minded user would: at
    /// 10,000 nodes a heap set per node costs a cache miss per delivery).
    seen_inline: [u64; INLINE_WORDS],
    seen_spill: Vec<u64>,
}

const INLINE_WORDS: usize = 2;

impl Gossiper {
    fn first_time(&mut self, rumor: u32) -> bool {
        let (word, bit) = ((rumor / 64) as usize, rumor % 64);
        let bits =
            if word < INLINE_WORDS { &mut self.seen_inline[word] } else { &mut self.seen_spill[word - INLINE_WORDS] };
        let fresh = *bits & (1 << bit) == 0;
        *bits |= 1 << bit;
        fresh
    }
    fn spread(&mut self, ctx: &mut Ctx<'_, Rumor>, rumor: u32) {
        for _ in 0..self.fanout {
            let peer = NodeId(ctx.rng().random_range(0..self.nodes));
            if peer != ctx.id() {
                ctx.send(peer, Rumor(rumor));
            }
        }
    }
}

impl Node for Gossiper {
    type Msg = Rumor;
    fn on_start(&mut self, ctx: &mut Ctx<'_, Rumor>) {
        let me = ctx.id().0;
        let mut rumor = me;
        while rumor < self.rumors {
            ctx.set_timer(Duration::from_millis(rumor as u64), rumor as u64);
            rumor += self.nodes;
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Rumor>, _: NodeId, msg: Rumor) {
        if self.first_time(msg.0) {
            self.spread(ctx, msg.0);
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Rumor>, _: TimerId, tag: u64) {
        let rumor = tag as u32;
        if self.first_time(rumor) {
            self.spread(ctx, rumor);
        }
    }
}

/// Runs the gossip benchmark at `nodes` nodes; returns (deliveries, events, seconds the run took,
/// not counting building the nodes).
pub fn run_broadcast(nodes: u32, deliveries_wanted: u64, seed: u64) -> (u64, u64, f64) {
    let fanout = 4;
    let rumors = (deliveries_wanted / (fanout as u64 * nodes as u64)).max(1) as u32;
    let mut sim = Simulation::new(SimConfig { seed, network: uniform_1_10ms(), ..SimConfig::default() })
        .expect("valid benchmark config");
    for i in 0..nodes {
        sim.add_node(&format!("n{}", i + 1), move |_, _| Gossiper {
            nodes,
            fanout,
            rumors,
            seen_inline: [0; INLINE_WORDS],
            seen_spill: vec![0; (rumors as usize).div_ceil(64).saturating_sub(INLINE_WORDS)],
        });
    }
    let ((), wall_s) = timed(|| {
        sim.run_until(SimTime::MAX).expect("benchmark run completes");
    });
    (sim.stats().deliveries, sim.stats().events, wall_s)
}

fn broadcast() -> Vec<BenchResult> {
    // A run takes a fraction of a second, so one is at the mercy of the machine (and the ratio of
    // two sizes doubly so): each size reports the median of three runs.
    const RUNS: usize = 3;
    let mut results = Vec::new();
    let mut per_s_at_10 = 0.0;
    for nodes in [10u32, 100, 1_000, 10_000] {
        let runs: Vec<(u64, u64, f64)> = (0..RUNS).map(|_| run_broadcast(nodes, 2_000_000, 1)).collect();
        let (deliveries, events, _) = runs[0];
        assert!(runs.iter().all(|&(d, e, _)| (d, e) == (deliveries, events)), "every run is the same run");
        let walls: Vec<f64> = runs.iter().map(|&(_, _, wall_s)| wall_s).collect();
        let (fastest, slowest) = walls.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &w| (lo.min(w), hi.max(w)));
        let wall_s = median(walls);
        let per_s = deliveries as f64 / wall_s;
        if nodes == 10 {
            per_s_at_10 = per_s;
        }
        results.push(
            BenchResult::new(&format!("broadcast-{nodes}"), deliveries, wall_s)
                .with(
                    "unit",
                    "message deliveries (gossip, fanout 4, latency uniform 1-10 ms; building the nodes not timed; \
                     median of 3 runs)",
                )
                .with("events", events)
                .with("runs", RUNS)
                .with("per_s_fastest_run", deliveries as f64 / fastest)
                .with("per_s_slowest_run", deliveries as f64 / slowest)
                .with("relative_to_10_nodes", per_s / per_s_at_10),
        );
    }
    results
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn memory_10m() -> Vec<BenchResult> {
    // 5 million round trips = 10 million deliveries, every event streamed as JSON to a file.
    let path = std::env::temp_dir().join(format!("detsim-bench-trace-{}.jsonl", std::process::id()));
    let file = std::fs::File::create(&path).expect("temp trace file");
    let writer = std::io::BufWriter::with_capacity(1 << 16, file);
    let before = peak_rss_bytes();
    let ((done, events, _), wall_s) = timed(|| run_pingpong(5_000_000, 1, Some(Box::new(writer))));
    let trace_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&path);
    let peak = peak_rss_bytes();
    vec![BenchResult::new("memory-10m", done * 2, wall_s)
        .with("unit", "deliveries (pingpong, 5M round trips) with the trace streamed to a file")
        .with("events", events)
        .with("trace_file_bytes", trace_bytes)
        .with("peak_rss_bytes_before", before.unwrap_or(0))
        .with("peak_rss_bytes", peak.unwrap_or(0))
        .with("peak_rss_mb", peak.unwrap_or(0) as f64 / 1e6)
        .with("target_peak_mb", 100)]
}
