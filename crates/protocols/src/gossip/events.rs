//! Measurement events as client-history records, shared by the P2P, clock and failure-detector
//! protocols of this crate.
//!
//! Why the history and not only the trace: a node only knows its own drifting clock, but every
//! history record is stamped by the scheduler with *true* time. A figure such as "time until every
//! node has the rumor" or "time from crash to detection" therefore comes straight out of the
//! history, with no clock error in it. Each event is one instantaneous operation: an `invoke`
//! immediately followed by its `ok`, by the recording node's process (its node index), so the
//! history stays well formed for every checker (a process may invoke again after an `ok`). The
//! function names (`deliver`, `suspect`, ...) belong to no checker model, so model checkers are
//! never asked to judge them; each protocol documents its own vocabulary in its module doc.
//!
//! Every event is also annotated into the trace as `"<f> key=<key> value=<value>"`.

use detsim_core::history::{EventType, History, Op, Value};
use detsim_core::{Ctx, Message};

/// Records an instantaneous measurement event `f(key) = value` at this node and instant.
pub fn record_instant<M: Message>(ctx: &mut Ctx<'_, M>, f: &str, key: Value, value: Value) {
    let process = ctx.id().0 as u64;
    ctx.annotate(format!("{f} key={key} value={value}"));
    let op = Op::new(f, Some(key), value);
    ctx.invoke(process, op.clone());
    ctx.ok(process, op);
}

/// One measurement event read back from a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstantEvent {
    /// True time, nanoseconds.
    pub time_ns: u64,
    /// The recording node's index.
    pub node: u32,
    pub f: String,
    pub key: Value,
    pub value: Value,
}

/// Every measurement event with function name `f`, in history order (the `ok` halves).
pub fn instant_events(history: &History, f: &str) -> Vec<InstantEvent> {
    history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == f)
        .map(|e| InstantEvent {
            time_ns: e.time_ns,
            node: u32::try_from(e.process).expect("measurement processes are node indexes"),
            f: e.f.clone(),
            key: e.key.clone().unwrap_or(Value::Nil),
            value: e.value.clone(),
        })
        .collect()
}

/// Crash windows `(node index, start ns, end ns)` from a run's fault windows (`"crash n3"`);
/// `names` are the node names in id order.
pub fn crash_windows(windows: &[(String, u64, Option<u64>)], names: &[String]) -> Vec<(u32, u64, u64)> {
    windows
        .iter()
        .filter_map(|(kind, start, end)| {
            let name = kind.strip_prefix("crash ")?;
            let node = names.iter().position(|n| n == name)?;
            Some((node as u32, *start, end.unwrap_or(u64::MAX)))
        })
        .collect()
}
