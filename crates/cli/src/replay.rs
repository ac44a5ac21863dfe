//! `detsim replay FILE --seed N`: runs one seed again (the same trace hash as `detsim run`), and
//! with --trace prints its trace, filtered by node and message type, as it streams.

use crate::common::{exit_code, run_error, Exit, ScenarioSeed, Style};
use crate::run::summary_text;
use clap::Args;
use detsim_core::TraceRecord;
use detsim_scenario::{run_seed, Plan, RunOptions, TraceTo};
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `detsim replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub scenario: ScenarioSeed,
    /// Print the trace: every send, delivery, drop, timer, fault and client operation.
    #[arg(long)]
    pub trace: bool,
    /// Only trace events at, from or to this node (repeatable: --node n1 --node c1).
    #[arg(long, value_name = "NAME", requires = "trace")]
    pub node: Vec<String>,
    /// Only messages of this type, e.g. AppendEntries (repeatable).
    #[arg(long, value_name = "T", requires = "trace")]
    pub msg_type: Vec<String>,
    /// Print trace records as JSON Lines and the summary as one JSON object (the last line).
    #[arg(long)]
    pub json: bool,
}

/// Which trace records to print.
#[derive(Clone, Debug, Default)]
pub struct TraceFilter {
    pub nodes: Vec<String>,
    pub msg_types: Vec<String>,
}

impl TraceFilter {
    pub fn matches(&self, record: &TraceRecord) -> bool {
        let at_node = |name: &String| {
            [&record.node, &record.from, &record.to].iter().any(|field| field.as_deref() == Some(name.as_str()))
        };
        let node_ok = self.nodes.is_empty() || self.nodes.iter().any(at_node);
        let type_ok = self.msg_types.is_empty()
            || record.kind.as_deref().is_some_and(|kind| self.msg_types.iter().any(|t| t == kind));
        node_ok && type_ok
    }
}

/// One trace record as a line a person reads: time, node, event, details.
pub fn trace_line(record: &TraceRecord) -> String {
    let node = record.node.as_deref().unwrap_or("-");
    let local = record.lt.map_or(String::new(), |lt| format!(" (local {:.6}s)", lt as f64 / 1e9));
    let kind = record.kind.as_deref().unwrap_or("?");
    let msg = record.msg.as_deref().unwrap_or_default();
    let detail = match record.ev.as_str() {
        "send" => format!("{node} -> {} {kind} {msg}", record.to.as_deref().unwrap_or("?")),
        "deliver" => format!("{} -> {node} {kind} {msg}", record.from.as_deref().unwrap_or("?")),
        "drop" => format!(
            "{} -> {} {kind} dropped ({}) {msg}",
            record.from.as_deref().unwrap_or("?"),
            record.to.as_deref().unwrap_or("?"),
            record.reason.as_deref().unwrap_or("?")
        ),
        "timer" => format!("{node} timer {} tag {}", record.timer.unwrap_or_default(), record.tag.unwrap_or_default()),
        "fault" => match &record.fault {
            Some(fault) => format!("fault {}", serde_json::to_string(fault).expect("faults serialise")),
            None => "fault".to_string(),
        },
        "op" => match &record.op {
            Some(op) => format!("{node} {}", serde_json::to_string(op).expect("history events serialise")),
            None => format!("{node} op"),
        },
        "note" => format!("{node} note: {}", record.text.as_deref().unwrap_or_default()),
        other => format!("{node} {other}"),
    };
    let corrupted = if record.corrupted { " [corrupted]" } else { "" };
    format!("{:>14.9}s {:<8}{detail}{corrupted}{local}", record.t as f64 / 1e9, record.ev)
}

/// A trace sink that parses each JSON line and prints the records the filter keeps.
struct PrintingTrace {
    filter: TraceFilter,
    json: bool,
    pending: Vec<u8>,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Write for PrintingTrace {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let record: TraceRecord = serde_json::from_slice(&line)
                .map_err(|e| std::io::Error::other(format!("a trace line does not parse: {e}")))?;
            if self.filter.matches(&record) {
                if self.json {
                    self.out.write_all(&line)?;
                } else {
                    writeln!(self.out, "{}", trace_line(&record))?;
                }
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Runs `detsim replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let (loaded, seed) = args.scenario.load()?;
    let plan = Plan::new(&loaded, seed).map_err(|error| Exit::bad_input(error.to_string()))?;
    for name in &args.node {
        if !plan.node_names.contains(name) {
            return Err(Exit::bad_input(format!(
                "--node {name:?}: no such node; seed {seed} has {}",
                detsim_scenario::plan::describe_names(&plan.node_names)
            )));
        }
    }
    let trace = if args.trace {
        let filter = TraceFilter { nodes: args.node.clone(), msg_types: args.msg_type.clone() };
        TraceTo::Writer(Box::new(PrintingTrace {
            filter,
            json: args.json,
            pending: Vec::new(),
            out: std::io::BufWriter::new(std::io::stdout()),
        }))
    } else {
        TraceTo::Nowhere
    };
    let outcome = run_seed(&loaded, seed, RunOptions { trace, ..RunOptions::default() }).map_err(run_error)?;
    if args.json {
        println!("{}", serde_json::to_string(&outcome.to_json()).expect("JSON serialises"));
    } else {
        print!("{}", summary_text(&outcome, None, None, Style::stdout()));
    }
    Ok(exit_code(outcome.outcome_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ev: &str, node: &str, from: Option<&str>, to: Option<&str>, kind: Option<&str>) -> TraceRecord {
        serde_json::from_value(serde_json::json!({
            "t": 1_500_000_000u64, "ev": ev, "node": node, "from": from, "to": to, "kind": kind, "msg": "X { a: 1 }"
        }))
        .expect("a record")
    }

    #[test]
    fn the_filter_keeps_events_at_from_or_to_a_node_and_of_a_type() {
        let send = record("send", "n1", None, Some("n2"), Some("Ping"));
        let deliver = record("deliver", "n2", Some("n1"), None, Some("Ping"));
        let timer = record("timer", "n3", None, None, None);
        let by_node = TraceFilter { nodes: vec!["n2".into()], msg_types: vec![] };
        assert!(by_node.matches(&send) && by_node.matches(&deliver) && !by_node.matches(&timer));
        let by_type = TraceFilter { nodes: vec![], msg_types: vec!["Pong".into()] };
        assert!(!by_type.matches(&send) && !by_type.matches(&timer));
        let both = TraceFilter { nodes: vec!["n1".into()], msg_types: vec!["Ping".into()] };
        assert!(both.matches(&send) && both.matches(&deliver) && !both.matches(&timer));
        assert!(TraceFilter::default().matches(&timer));
        assert_eq!(trace_line(&send), "   1.500000000s send    n1 -> n2 Ping X { a: 1 }");
    }
}
