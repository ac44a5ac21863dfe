//! A tiny replicated register that writes a complete run folder: the fixture of this crate's tests,
//! of `cargo xtask plots` before curated scenarios exist, and of the browser check.
//!
//! Two servers (s1, s2) hold one register; clients c1 (home s1) and c2 (home s2) alternate writes of
//! unique values and reads, with a timeout. In [`Mode::Cp`] every request goes to s1, which replicates
//! to s2: reads are fresh, and a client cut off from s1 times out. In [`Mode::Ap`] each client uses its
//! home server, which answers at once and replicates in the background: always available, stale reads
//! during a partition. The fault schedule: a partition {s1,c1} | {s2,c2}, a crash and restart of s2,
//! fast clock drift on s1 and a clock jump on s2.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use detsim_core::history::{Op, Value};
use detsim_core::{
    Ctx, Fault, JsonlTraceWriter, LatencyDist, LinkConfig, LocalClock, Message, NetworkConfig, Node, NodeId, SimConfig,
    SimTime, Simulation, TimerId,
};

use crate::PlotError;

/// Where clients send requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Everything through s1 (consistent, unavailable when cut off).
    Cp,
    /// Each client to its home server (available, stale when partitioned).
    Ap,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cp => "cp",
            Mode::Ap => "ap",
        }
    }
}

/// Settings of a demo run.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoConfig {
    pub mode: Mode,
    pub seed: u64,
    pub duration_ms: u64,
    /// Inject the fault schedule (scaled to the duration).
    pub faults: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { mode: Mode::Cp, seed: 7, duration_ms: 4_000, faults: true }
    }
}

#[derive(Clone, Debug, Hash, PartialEq)]
pub enum DemoMsg {
    Write {
        req: u64,
        value: i64,
    },
    Read {
        req: u64,
    },
    WriteOk {
        req: u64,
    },
    ReadOk {
        req: u64,
        value: Option<i64>,
    },
    /// Background replication: (version, value), the higher version wins.
    Replicate {
        version: (u64, u32),
        value: i64,
    },
}

impl Message for DemoMsg {
    fn kind(&self) -> &'static str {
        match self {
            DemoMsg::Write { .. } => "Write",
            DemoMsg::Read { .. } => "Read",
            DemoMsg::WriteOk { .. } => "WriteOk",
            DemoMsg::ReadOk { .. } => "ReadOk",
            DemoMsg::Replicate { .. } => "Replicate",
        }
    }
}

pub struct Server {
    value: Option<i64>,
    version: (u64, u32),
    peers: Vec<NodeId>,
}

pub struct Client {
    server: NodeId,
    /// The server to switch to after a timeout (AP mode fails over; CP mode has one server).
    fallback: Option<NodeId>,
    process: u64,
    next_req: u64,
    /// The request in flight: (req, op, timeout timer).
    in_flight: Option<(u64, Op, TimerId)>,
    next_value: i64,
    writes_next: bool,
}

pub enum DemoNode {
    Server(Server),
    Client(Client),
}

const TICK_TAG: u64 = 1;
const TIMEOUT_TAG: u64 = 2;
const OP_INTERVAL: Duration = Duration::from_millis(25);
const OP_TIMEOUT: Duration = Duration::from_millis(120);

impl Node for DemoNode {
    type Msg = DemoMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, DemoMsg>) {
        if let DemoNode::Client(_) = self {
            ctx.set_timer(OP_INTERVAL, TICK_TAG);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, DemoMsg>, from: NodeId, msg: DemoMsg) {
        match self {
            DemoNode::Server(server) => match msg {
                DemoMsg::Write { req, value } => {
                    server.version = (server.version.0 + 1, ctx.id().0);
                    server.value = Some(value);
                    let replicate = DemoMsg::Replicate { version: server.version, value };
                    ctx.send_all(server.peers.clone(), &replicate);
                    ctx.send(from, DemoMsg::WriteOk { req });
                }
                DemoMsg::Read { req } => ctx.send(from, DemoMsg::ReadOk { req, value: server.value }),
                DemoMsg::Replicate { version, value } => {
                    if version > server.version {
                        server.version = version;
                        server.value = Some(value);
                    }
                }
                DemoMsg::WriteOk { .. } | DemoMsg::ReadOk { .. } => {}
            },
            DemoNode::Client(client) => {
                let Some((req, op, timer)) = client.in_flight.take() else { return };
                let (reply_req, result) = match msg {
                    DemoMsg::WriteOk { req } => (req, op.clone()),
                    DemoMsg::ReadOk { req, value } => (req, Op::new("read", None, value.into())),
                    _ => (u64::MAX, op.clone()),
                };
                if reply_req != req {
                    client.in_flight = Some((req, op, timer)); // a late reply to an abandoned request
                    return;
                }
                ctx.cancel_timer(timer);
                ctx.ok(client.process, result);
                ctx.set_timer(OP_INTERVAL, TICK_TAG);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, DemoMsg>, _timer: TimerId, tag: u64) {
        let DemoNode::Client(client) = self else { return };
        match tag {
            TICK_TAG => {
                let req = client.next_req;
                client.next_req += 1;
                let (op, msg) = if client.writes_next {
                    client.next_value += 1;
                    let value = client.next_value;
                    (Op::new("write", None, Value::Int(value)), DemoMsg::Write { req, value })
                } else {
                    (Op::new("read", None, Value::Nil), DemoMsg::Read { req })
                };
                client.writes_next = !client.writes_next;
                ctx.invoke(client.process, op.clone());
                ctx.send(client.server, msg);
                let timer = ctx.set_timer(OP_TIMEOUT, TIMEOUT_TAG);
                client.in_flight = Some((req, op, timer));
            }
            TIMEOUT_TAG => {
                if let Some((_, op, _)) = client.in_flight.take() {
                    ctx.info(client.process, op, "timed-out");
                    if let Some(fallback) = client.fallback {
                        client.fallback = Some(client.server);
                        client.server = fallback;
                    }
                    // A process with an unknown outcome never invokes again: continue as a new one.
                    client.process += 1;
                    ctx.set_timer(OP_INTERVAL, TICK_TAG);
                }
            }
            _ => {}
        }
    }
}

fn io_error(path: &Path, error: std::io::Error) -> PlotError {
    PlotError::Io { path: path.to_path_buf(), message: error.to_string() }
}

/// Runs the demo and writes DIR/history.jsonl, DIR/trace.jsonl and DIR/run.json.
pub fn write_demo_run(dir: &Path, config: &DemoConfig) -> Result<(), PlotError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let link = LinkConfig { latency: LatencyDist::uniform_ms(2, 12), ..LinkConfig::default() };
    let sim_config = SimConfig { network: NetworkConfig::new(link), ..SimConfig::new(config.seed) };
    let mut sim: Simulation<DemoNode> =
        Simulation::new(sim_config).map_err(|e| PlotError::Input(format!("demo simulation: {e}")))?;
    let (s1, s2) = (NodeId(0), NodeId(1));
    let server = |peer: NodeId| {
        move |_: NodeId, _: &detsim_core::Storage| {
            DemoNode::Server(Server { value: None, version: (0, 0), peers: vec![peer] })
        }
    };
    sim.add_node_with_clock("s1", LocalClock::new(0, 0.0), server(s2));
    sim.add_node_with_clock("s2", LocalClock::new(2_000_000, 0.0), server(s1));
    for (index, name) in ["c1", "c2"].into_iter().enumerate() {
        let home = if config.mode == Mode::Cp || index == 0 { s1 } else { s2 };
        let fallback = match config.mode {
            Mode::Cp => None,
            Mode::Ap => Some(if home == s1 { s2 } else { s1 }),
        };
        let base_process = index as u64 * 1_000;
        let base_value = (index as i64 + 1) * 1_000_000;
        sim.add_node(name, move |_, _| {
            DemoNode::Client(Client {
                server: home,
                fallback,
                process: base_process,
                next_req: 0,
                in_flight: None,
                next_value: base_value,
                writes_next: true,
            })
        });
    }
    let (c1, c2) = (NodeId(2), NodeId(3));
    let at = |fraction: f64| SimTime((config.duration_ms as f64 * fraction * 1e6) as u64);
    let schedule = if config.faults {
        vec![
            (at(0.125), Fault::ClockDrift { node: s1, drift_ppm: 150_000.0 }),
            (at(0.25), Fault::Partition { groups: vec![vec![s1, c1], vec![s2, c2]] }),
            (at(0.5), Fault::Heal),
            (at(0.625), Fault::Crash { node: s2 }),
            (at(0.75), Fault::Restart { node: s2 }),
            (at(0.875), Fault::ClockJump { node: s2, by_ns: 50_000_000 }),
        ]
    } else {
        Vec::new()
    };
    let mut faults_json = Vec::new();
    for (time, fault) in schedule {
        faults_json.push(
            serde_json::json!({"at_ns": time.0, "fault": serde_json::to_value(&fault).expect("faults serialise")}),
        );
        sim.schedule_fault(time, fault).map_err(|e| PlotError::Input(format!("demo fault: {e}")))?;
    }
    let trace_path = dir.join("trace.jsonl");
    let trace_file = File::create(&trace_path).map_err(|e| io_error(&trace_path, e))?;
    sim.set_trace_sink(Box::new(JsonlTraceWriter::new(BufWriter::new(trace_file))));
    sim.run_until(SimTime::from_millis(config.duration_ms)).map_err(|e| PlotError::Input(format!("demo run: {e}")))?;
    sim.finish().map_err(|e| PlotError::Input(format!("demo trace: {e}")))?;

    let history = sim.history().clone();
    let history_path = dir.join("history.jsonl");
    let mut history_file = BufWriter::new(File::create(&history_path).map_err(|e| io_error(&history_path, e))?);
    history.write_jsonl(&mut history_file).map_err(|e| io_error(&history_path, e))?;
    history_file.flush().map_err(|e| io_error(&history_path, e))?;

    let ops = crate::data::operations(&history);
    let stale = crate::metrics::stale_reads(&ops);
    let count = |o: crate::data::Outcome| ops.iter().filter(|op| op.outcome == o).count();
    let windows: Vec<serde_json::Value> = sim
        .fault_windows()
        .iter()
        .map(|(kind, start, end)| serde_json::json!({"kind": kind, "start_ns": start, "end_ns": end}))
        .collect();
    let name = format!("demo-register-{}", config.mode.as_str());
    let valid = stale.stale == 0;
    let mut latencies: Vec<u64> = ops
        .iter()
        .filter(|op| op.outcome == crate::data::Outcome::Ok)
        .map(|op| op.latency_ns(config.duration_ms * 1_000_000))
        .collect();
    latencies.sort_unstable();
    let quantile = |q: f64| crate::metrics::quantile(&latencies, q).unwrap_or(0);
    let decided = ops.iter().filter(|op| op.end_ns.is_some()).count();
    let availability = if decided == 0 { 1.0 } else { count(crate::data::Outcome::Ok) as f64 / decided as f64 };
    let sends = sim.stats().sends;
    let run = serde_json::json!({
        "scenario": name,
        "description": format!("A two-server register in {} mode under a partition, a crash, clock drift and a clock jump (the detsim-plot fixture).\n\nClients alternate writes of unique values and reads.", config.mode.as_str().to_uppercase()),
        "protocol": format!("demo-register-{}", config.mode.as_str()),
        "seed": config.seed,
        "trace_hash": sim.trace_hash_hex(),
        "valid": valid,
        "expect": "pass",
        "outcome_ok": valid,
        "ops": ops.len(), "ok": count(crate::data::Outcome::Ok), "fail": count(crate::data::Outcome::Fail),
        "info": count(crate::data::Outcome::Unknown),
        "availability": availability,
        "latency_ns": {"p50": quantile(0.5), "p95": quantile(0.95), "p99": quantile(0.99), "max": latencies.last().copied().unwrap_or(0)},
        "messages_per_op": if ops.is_empty() { 0.0 } else { sends as f64 / ops.len() as f64 },
        "violations": if valid { Vec::<&str>::new() } else { vec!["stale-reads"] },
        "events": sim.stats().events,
        "sim_time_s": config.duration_ms as f64 / 1e3,
        "checks": [{
            "name": "stale-reads",
            "valid": valid,
            "report": format!("{} of {} ok reads returned a value overwritten before they began", stale.stale, stale.reads_ok),
            "details": {"stale": stale.stale, "reads_ok": stale.reads_ok}
        }],
        "fault_windows": windows,
        "faults": faults_json,
        "nodes": ["s1", "s2", "c1", "c2"], "servers": ["s1", "s2"], "clients": ["c1", "c2"],
        "replay": format!("cargo test -p detsim-plot (demo {} seed {})", config.mode.as_str(), config.seed),
        "future_field": {"ignored": true}
    });
    let _ = (c1, c2);
    let run_path = dir.join("run.json");
    let text = serde_json::to_string_pretty(&run).expect("run.json serialises");
    std::fs::write(&run_path, text).map_err(|e| io_error(&run_path, e))
}
