//! Reading a run folder (run.json, history.jsonl, trace.jsonl) into what the charts need: operations
//! with their outcome and latency, fault windows and instants, and a one-pass summary of the trace.
//!
//! The trace is streamed line by line and never held whole: long runs keep memory flat. Only the
//! Lamport diagram reads it a second time, for its own window.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use detsim_core::history::{EventType, History, Value};
use detsim_core::trace::TraceRecord;
use serde::Deserialize;

use crate::PlotError;

/// A verdict as run.json and sweep files write it: `true`, `false` or `"unknown"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Validity {
    Valid,
    Invalid,
    Unknown,
}

impl Validity {
    /// `true` → valid, `false` → invalid, anything else (`"unknown"`, absent) → unknown.
    pub fn from_json(value: &serde_json::Value) -> Validity {
        match value.as_bool() {
            Some(true) => Validity::Valid,
            Some(false) => Validity::Invalid,
            None => Validity::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        }
    }
}

/// One checker's verdict as run.json records it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CheckInfo {
    pub name: String,
    pub valid: serde_json::Value,
    pub report: String,
    pub details: serde_json::Value,
}

impl CheckInfo {
    pub fn validity(&self) -> Validity {
        Validity::from_json(&self.valid)
    }
}

/// A period of degraded service: `[start_ns, end_ns)`, `end_ns` absent when still open at the end.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FaultWindow {
    pub kind: String,
    pub start_ns: u64,
    #[serde(default)]
    pub end_ns: Option<u64>,
}

/// run.json as the run-folder contract documents it. Every field is optional; unknown ones are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunInfo {
    pub scenario: Option<String>,
    pub description: Option<String>,
    pub file: Option<String>,
    pub protocol: Option<String>,
    pub seed: Option<u64>,
    pub trace_hash: Option<String>,
    pub valid: serde_json::Value,
    pub expect: Option<String>,
    pub outcome_ok: Option<bool>,
    pub ops: Option<u64>,
    pub ok: Option<u64>,
    pub fail: Option<u64>,
    pub info: Option<u64>,
    pub availability: Option<f64>,
    pub latency_ns: Option<BTreeMap<String, f64>>,
    pub messages_per_op: Option<f64>,
    pub events: Option<u64>,
    pub sim_time_s: Option<f64>,
    pub wall_s: Option<f64>,
    pub checks: Vec<CheckInfo>,
    pub fault_windows: Option<Vec<FaultWindow>>,
    pub faults: Vec<serde_json::Value>,
    pub nodes: Vec<String>,
    pub servers: Vec<String>,
    pub clients: Vec<String>,
    pub replay: Option<String>,
    pub swarm: Option<serde_json::Value>,
}

impl RunInfo {
    pub fn validity(&self) -> Validity {
        Validity::from_json(&self.valid)
    }
    /// A short name for legends: the scenario, else the protocol, else "run".
    pub fn label(&self) -> String {
        self.scenario.clone().or_else(|| self.protocol.clone()).unwrap_or_else(|| "run".to_string())
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    Fail,
    /// `info`, or never completed before the run ended.
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One client operation: its invocation paired with its completion (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct OpSpan {
    pub process: u64,
    pub f: String,
    pub key: Option<Value>,
    /// The value the client sent (a write's value).
    pub invoke_value: Value,
    /// The value the completion carried (a read's result).
    pub result_value: Value,
    pub start_ns: u64,
    /// `None`: the operation never completed before the run ended.
    pub end_ns: Option<u64>,
    pub outcome: Outcome,
}

impl OpSpan {
    /// Latency in nanoseconds, measured to `run_end_ns` when the operation never completed.
    pub fn latency_ns(&self, run_end_ns: u64) -> u64 {
        self.end_ns.unwrap_or(run_end_ns.max(self.start_ns)) - self.start_ns
    }
}

/// Pairs each invocation with the next completion of the same process. Completions without an
/// invocation are ignored (a malformed history is the checkers' business, not the plots').
pub fn operations(history: &History) -> Vec<OpSpan> {
    let mut spans: Vec<OpSpan> = Vec::new();
    let mut open_by_process: BTreeMap<u64, usize> = BTreeMap::new();
    for event in &history.events {
        match event.kind {
            EventType::Invoke => {
                open_by_process.insert(event.process, spans.len());
                spans.push(OpSpan {
                    process: event.process,
                    f: event.f.clone(),
                    key: event.key.clone(),
                    invoke_value: event.value.clone(),
                    result_value: Value::Nil,
                    start_ns: event.time_ns,
                    end_ns: None,
                    outcome: Outcome::Unknown,
                });
            }
            EventType::Ok | EventType::Fail | EventType::Info => {
                let Some(index) = open_by_process.remove(&event.process) else { continue };
                let span = &mut spans[index];
                span.end_ns = Some(event.time_ns);
                span.result_value = event.value.clone();
                span.outcome = match event.kind {
                    EventType::Ok => Outcome::Ok,
                    EventType::Fail => Outcome::Fail,
                    _ => Outcome::Unknown,
                };
            }
        }
    }
    spans
}

/// A fault as it happened: when, what, and the node it names first (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultInstant {
    pub t_ns: u64,
    pub kind: String,
    pub node: Option<String>,
    /// A short human description (`"clock-jump n2 +50 ms"`).
    pub label: String,
}

/// What one streaming pass over the trace learns.
#[derive(Clone, Debug, Default)]
pub struct TraceSummary {
    pub events: u64,
    pub sends: u64,
    pub deliveries: u64,
    pub drops: u64,
    pub last_t_ns: u64,
    /// Sends by message type.
    pub sends_by_kind: BTreeMap<String, u64>,
    /// Drops by reason.
    pub drops_by_reason: BTreeMap<String, u64>,
    pub faults: Vec<FaultInstant>,
    /// Nodes in order of first appearance.
    pub nodes: Vec<String>,
}

/// Everything the charts of one run need.
#[derive(Clone, Debug)]
pub struct RunData {
    pub dir: PathBuf,
    pub info: RunInfo,
    pub history: History,
    pub ops: Vec<OpSpan>,
    pub trace: TraceSummary,
    pub fault_windows: Vec<FaultWindow>,
    /// The end of the run in true nanoseconds (the latest of trace, history and run.json's sim time).
    pub end_ns: u64,
}

impl RunData {
    /// Nodes to draw, in run.json's order if it has one, else the trace's order of appearance.
    pub fn node_names(&self) -> Vec<String> {
        if self.info.nodes.is_empty() {
            self.trace.nodes.clone()
        } else {
            let mut names = self.info.nodes.clone();
            for name in &self.trace.nodes {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
            names
        }
    }
    pub fn trace_path(&self) -> PathBuf {
        self.dir.join("trace.jsonl")
    }
}

fn io_error(path: &Path, error: std::io::Error) -> PlotError {
    PlotError::Io { path: path.to_path_buf(), message: error.to_string() }
}

/// Reads run.json; a missing file gives an empty [`RunInfo`] (the charts still render).
pub fn read_run_info(dir: &Path) -> Result<RunInfo, PlotError> {
    let path = dir.join("run.json");
    if !path.exists() {
        return Ok(RunInfo::default());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
    serde_json::from_str(&text).map_err(|e| PlotError::Parse {
        path,
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Reads history.jsonl (required: without it there is nothing to plot).
pub fn read_history(dir: &Path) -> Result<History, PlotError> {
    let path = dir.join("history.jsonl");
    let file = File::open(&path).map_err(|e| io_error(&path, e))?;
    History::read_jsonl(BufReader::new(file)).map_err(|e| match e {
        detsim_core::history::HistoryReadError::Syntax { line, column, message } => {
            PlotError::Parse { path: path.clone(), line, column, message }
        }
        detsim_core::history::HistoryReadError::Io(e) => io_error(&path, e),
    })
}

/// Streams trace.jsonl, calling `visit` on each record in order. A missing trace visits nothing.
pub fn for_each_trace_record(path: &Path, mut visit: impl FnMut(TraceRecord)) -> Result<(), PlotError> {
    if !path.exists() {
        return Ok(());
    }
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| io_error(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: TraceRecord = serde_json::from_str(&line).map_err(|e| PlotError::Parse {
            path: path.to_path_buf(),
            line: index + 1,
            column: e.column(),
            message: e.to_string(),
        })?;
        visit(record);
    }
    Ok(())
}

fn describe_fault(record: &TraceRecord) -> FaultInstant {
    let kind = record.fault.as_ref().map_or("fault", |f| f.kind()).to_string();
    let detail = match &record.fault {
        Some(detsim_core::Fault::ClockJump { by_ns, .. }) => format!(" {}", signed_duration(*by_ns)),
        Some(detsim_core::Fault::ClockOffset { offset_ns, .. }) => format!(" {}", signed_duration(*offset_ns)),
        Some(detsim_core::Fault::ClockDrift { drift_ppm, .. }) => format!(" {drift_ppm:+} ppm"),
        Some(detsim_core::Fault::LatencySpike { extra_ns, .. }) => format!(" +{}", signed_duration(*extra_ns as i64)),
        Some(detsim_core::Fault::LossBurst { loss, .. }) => format!(" loss {loss}"),
        _ => String::new(),
    };
    let node_part = record.node.as_ref().map(|n| format!(" {n}")).unwrap_or_default();
    FaultInstant {
        t_ns: record.t,
        kind: kind.clone(),
        node: record.node.clone(),
        label: format!("{kind}{node_part}{detail}"),
    }
}

/// `+50 ms`, `-1.5 s`: a signed duration for labels.
pub fn signed_duration(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "+" };
    format!("{sign}{}", human_duration(ns.unsigned_abs()))
}

/// `850 µs`, `12 ms`, `1.5 s`: a duration for labels, three significant digits at most.
pub fn human_duration(ns: u64) -> String {
    let (value, unit) = if ns >= 1_000_000_000 {
        (ns as f64 / 1e9, "s")
    } else if ns >= 1_000_000 {
        (ns as f64 / 1e6, "ms")
    } else if ns >= 1_000 {
        (ns as f64 / 1e3, "µs")
    } else {
        (ns as f64, "ns")
    };
    let text = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    format!("{text} {unit}")
}

/// One pass over the trace.
pub fn summarize_trace(path: &Path) -> Result<TraceSummary, PlotError> {
    let mut summary = TraceSummary::default();
    for_each_trace_record(path, |record| {
        summary.events += 1;
        summary.last_t_ns = summary.last_t_ns.max(record.t);
        for name in [&record.node, &record.from, &record.to].into_iter().flatten() {
            if !summary.nodes.contains(name) {
                summary.nodes.push(name.clone());
            }
        }
        match record.ev.as_str() {
            "send" => {
                summary.sends += 1;
                *summary.sends_by_kind.entry(record.kind.clone().unwrap_or_else(|| "msg".into())).or_insert(0) += 1;
            }
            "deliver" => summary.deliveries += 1,
            "drop" => {
                summary.drops += 1;
                *summary
                    .drops_by_reason
                    .entry(record.reason.clone().unwrap_or_else(|| "dropped".into()))
                    .or_insert(0) += 1;
            }
            "fault" => summary.faults.push(describe_fault(&record)),
            _ => {}
        }
    })?;
    Ok(summary)
}

/// Fault windows rebuilt from the trace's fault records with the scheduler's rules (used when run.json
/// has none): partitions replace each other and heal ends them; crash ends at restart, pause at resume.
pub fn windows_from_faults(faults: &[FaultInstant]) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    let close = |windows: &mut Vec<FaultWindow>, t: u64, matching: &dyn Fn(&str) -> bool| {
        for window in windows.iter_mut().filter(|w| w.end_ns.is_none() && matching(&w.kind)) {
            window.end_ns = Some(t);
        }
    };
    for fault in faults {
        let t = fault.t_ns;
        let node = fault.node.clone().unwrap_or_default();
        let open = |windows: &mut Vec<FaultWindow>, kind: String| {
            windows.push(FaultWindow { kind, start_ns: t, end_ns: None });
        };
        match fault.kind.as_str() {
            "partition" | "isolate" | "bridge" => {
                close(&mut windows, t, &|k| matches!(k, "partition" | "isolate" | "bridge"));
                open(&mut windows, fault.kind.clone());
            }
            "one-way" | "latency-spike" | "loss-burst" | "topology-edge" | "corrupt" => {
                open(&mut windows, fault.kind.clone())
            }
            "heal" => close(&mut windows, t, &|k| matches!(k, "partition" | "isolate" | "bridge" | "one-way")),
            "crash" => {
                let pause = format!("pause {node}");
                close(&mut windows, t, &|k| k == pause);
                open(&mut windows, format!("crash {node}"));
            }
            "restart" => {
                let crash = format!("crash {node}");
                close(&mut windows, t, &|k| k == crash);
            }
            "pause" => open(&mut windows, format!("pause {node}")),
            "resume" => {
                let pause = format!("pause {node}");
                close(&mut windows, t, &|k| k == pause);
            }
            "latency-spike-end" => close(&mut windows, t, &|k| k == "latency-spike"),
            "loss-burst-end" => close(&mut windows, t, &|k| k == "loss-burst"),
            _ => {}
        }
    }
    windows
}

/// Loads a run folder. history.jsonl is required; run.json and trace.jsonl are optional.
pub fn load_run(dir: &Path) -> Result<RunData, PlotError> {
    let info = read_run_info(dir)?;
    let history = read_history(dir)?;
    let ops = operations(&history);
    let trace = summarize_trace(&dir.join("trace.jsonl"))?;
    let fault_windows = match &info.fault_windows {
        Some(windows) => windows.clone(),
        None => windows_from_faults(&trace.faults),
    };
    let history_end = history.events.last().map_or(0, |e| e.time_ns);
    let info_end = info.sim_time_s.map_or(0, |s| (s.max(0.0) * 1e9) as u64);
    let end_ns = history_end.max(trace.last_t_ns).max(info_end);
    Ok(RunData { dir: dir.to_path_buf(), info, history, ops, trace, fault_windows, end_ns })
}

/// One row of a sweep's JSON Lines output: a seed, its verdict, and numeric metrics by name.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    pub seed: u64,
    pub valid: Validity,
    /// `scenario` (else `file`) of the row, when it has one: sweeps over several scenarios group by it.
    pub scenario: Option<String>,
    pub protocol: Option<String>,
    /// The checks that found a violation (`violations`).
    pub violations: Vec<String>,
    pub metrics: BTreeMap<String, f64>,
}

impl SweepRow {
    /// The label a comparison groups the row under: the scenario, else the protocol, else "sweep".
    pub fn group(&self) -> String {
        self.scenario.clone().or_else(|| self.protocol.clone()).unwrap_or_else(|| "sweep".into())
    }
}

/// Reads a sweep's JSON Lines: one object per seed with at least `seed` and `valid`; every other
/// numeric field (also one level down, as `latency_ns.p99`) becomes a metric.
pub fn read_sweep(path: &Path) -> Result<Vec<SweepRow>, PlotError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parse_error = |message: String, column: usize| PlotError::Parse {
            path: path.to_path_buf(),
            line: index + 1,
            column,
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| parse_error(e.to_string(), e.column()))?;
        let object = value.as_object().ok_or_else(|| parse_error("expected a JSON object".into(), 1))?;
        // Lines without a seed (a summary a tool appended) are not seeds.
        let Some(seed_value) = object.get("seed") else { continue };
        let seed =
            seed_value.as_u64().ok_or_else(|| parse_error("\"seed\" is not a non-negative integer".into(), 1))?;
        let valid = Validity::from_json(object.get("valid").unwrap_or(&serde_json::Value::Null));
        let text = |name: &str| object.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let scenario = text("scenario").or_else(|| text("file"));
        let protocol = text("protocol");
        let violations = object
            .get("violations")
            .and_then(|v| v.as_array())
            .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let mut metrics = BTreeMap::new();
        for (name, value) in object {
            if name == "seed" {
                continue;
            }
            if let Some(number) = value.as_f64() {
                metrics.insert(name.clone(), number);
            } else if let Some(inner) = value.as_object() {
                for (inner_name, inner_value) in inner {
                    if let Some(number) = inner_value.as_f64() {
                        metrics.insert(format!("{name}.{inner_name}"), number);
                    }
                }
            }
        }
        rows.push(SweepRow { seed, valid, scenario, protocol, violations, metrics });
    }
    Ok(rows)
}
