//! Availability and CAP metrics of a history: how many operations succeeded (overall, inside and
//! outside fault windows), how stale the reads were, how many outcomes are unknown, and latency
//! quantiles.

use crate::model::Model;
use crate::objects::{access, by_key, elements, register_value, Access, KeyOps, ObjectKind, Tokens};
use crate::ops::{Operation, Outcome};
use detsim_core::history::Value;
use serde::Serialize;
use std::fmt;

/// A span of true time during which some fault was active: `[start_ns, end_ns)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FaultWindow {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl FaultWindow {
    pub fn new(start_ns: u64, end_ns: u64) -> Self {
        assert!(start_ns <= end_ns, "a fault window ends after it starts");
        FaultWindow { start_ns, end_ns }
    }

    pub fn contains(&self, time_ns: u64) -> bool {
        self.start_ns <= time_ns && time_ns < self.end_ns
    }
}

/// Operations by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct OutcomeCounts {
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    /// `info`: the outcome is unknown (a timeout, a crash).
    pub unknown: usize,
    /// `ok / ops`; `None` when there are no operations.
    pub success_fraction: Option<f64>,
}

impl OutcomeCounts {
    fn add(&mut self, outcome: Outcome) {
        self.ops += 1;
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.unknown += 1,
        }
        self.success_fraction = Some(self.ok as f64 / self.ops as f64);
    }
}

impl fmt::Display for OutcomeCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.success_fraction {
            Some(fraction) => write!(
                f,
                "{:.1}% of {} succeeded ({} ok, {} failed, {} unknown)",
                fraction * 100.0,
                self.ops,
                self.ok,
                self.fail,
                self.unknown
            ),
            None => write!(f, "no operations"),
        }
    }
}

/// Latency quantiles of successful operations (completion time minus invocation time), nearest rank.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencyQuantiles {
    /// How many latencies these figures summarise.
    pub count: usize,
    pub min_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub mean_ns: u64,
}

impl LatencyQuantiles {
    /// Summarises `latencies` (any order); all zeros when empty.
    pub fn from_latencies(mut latencies: Vec<u64>) -> Self {
        if latencies.is_empty() {
            return LatencyQuantiles::default();
        }
        latencies.sort_unstable();
        let rank = |q: f64| {
            let rank = (q * latencies.len() as f64).ceil() as usize;
            latencies[rank.clamp(1, latencies.len()) - 1]
        };
        let sum: u128 = latencies.iter().map(|&l| u128::from(l)).sum();
        LatencyQuantiles {
            count: latencies.len(),
            min_ns: latencies[0],
            p50_ns: rank(0.5),
            p90_ns: rank(0.9),
            p99_ns: rank(0.99),
            p999_ns: rank(0.999),
            max_ns: *latencies.last().expect("not empty"),
            mean_ns: u64::try_from(sum / latencies.len() as u128).expect("a mean of u64s fits a u64"),
        }
    }
}

/// One read that returned a value already superseded when it began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaleRead {
    pub read: Operation,
    /// How long before the read began the newer value had been acknowledged.
    pub staleness_ns: u64,
    /// The acknowledged update the read missed (the earliest acknowledged one).
    pub missed: Operation,
}

/// Availability and CAP figures of one history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AvailabilityReport {
    pub overall: OutcomeCounts,
    /// Operations invoked while some fault window was open.
    pub inside_faults: OutcomeCounts,
    /// Operations invoked while none was.
    pub outside_faults: OutcomeCounts,
    /// Successful reads whose staleness could be judged.
    pub reads: usize,
    /// Of those, reads that missed an update acknowledged before they began.
    pub stale_reads: usize,
    /// The stalest read, when there is one.
    pub worst_stale_read: Option<StaleRead>,
    /// Operations with an unknown outcome (same as `overall.unknown`).
    pub unknown_outcomes: usize,
    /// Latencies of successful operations.
    pub latency: LatencyQuantiles,
    /// Latencies of successful operations invoked inside fault windows.
    pub latency_inside_faults: LatencyQuantiles,
}

impl AvailabilityReport {
    /// The fraction of operations that succeeded (1 when there are none).
    pub fn success_fraction(&self) -> f64 {
        self.overall.success_fraction.unwrap_or(1.0)
    }

    /// The worst staleness in nanoseconds (0 when no read was stale).
    pub fn worst_staleness_ns(&self) -> u64 {
        self.worst_stale_read.as_ref().map_or(0, |stale| stale.staleness_ns)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("availability reports serialise to JSON");
        value["success_fraction"] = serde_json::json!(self.overall.success_fraction);
        value["worst_staleness_ns"] = serde_json::json!(self.worst_staleness_ns());
        value
    }
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

impl fmt::Display for AvailabilityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "availability: {}", self.overall)?;
        writeln!(f, "  inside fault windows:  {}", self.inside_faults)?;
        writeln!(f, "  outside fault windows: {}", self.outside_faults)?;
        writeln!(f, "  unknown outcomes: {}", self.unknown_outcomes)?;
        write!(f, "  stale reads: {} of {}", self.stale_reads, self.reads)?;
        if let Some(worst) = &self.worst_stale_read {
            write!(f, "; worst {} stale: {} missed {}", ms(worst.staleness_ns), worst.read, worst.missed)?;
        }
        writeln!(f)?;
        let latency = &self.latency;
        writeln!(
            f,
            "  latency of {} ok ops: p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
            latency.count,
            ms(latency.p50_ns),
            ms(latency.p90_ns),
            ms(latency.p99_ns),
            ms(latency.p999_ns),
            ms(latency.max_ns)
        )
    }
}

/// Computes the availability report of `ops` given the fault windows of the run (empty when none).
///
/// An operation is *inside* the faults when it was invoked while a window was open. A read is
/// *stale* when an update acknowledged before the read began is missing from what it saw: for a
/// register, an acknowledged write that began after the write of the value read had ended (or any
/// acknowledged write, when the read saw the initial value); for a set or list, an acknowledged
/// element that is absent; for a counter, a count below the acknowledged increments. The staleness
/// is the time from the earliest such acknowledgement to the read's invocation. Keys that mix puts
/// and appends are left out of the staleness figures.
pub fn availability(ops: &[Operation], faults: &[FaultWindow]) -> AvailabilityReport {
    availability_with_model(ops, faults, None)
}

/// [`availability`], with the model that decides how values are compared (see [`crate::Model`]).
pub fn availability_with_model(ops: &[Operation], faults: &[FaultWindow], model: Option<Model>) -> AvailabilityReport {
    let mut overall = OutcomeCounts::default();
    let mut inside_faults = OutcomeCounts::default();
    let mut outside_faults = OutcomeCounts::default();
    let mut latencies = Vec::new();
    let mut latencies_inside = Vec::new();
    for op in ops {
        let inside = faults.iter().any(|window| window.contains(op.invoke_ns));
        overall.add(op.outcome);
        if inside {
            inside_faults.add(op.outcome);
        } else {
            outside_faults.add(op.outcome);
        }
        if let (Outcome::Ok, Some(complete_ns)) = (op.outcome, op.complete_ns) {
            let latency = complete_ns.saturating_sub(op.invoke_ns);
            latencies.push(latency);
            if inside {
                latencies_inside.push(latency);
            }
        }
    }
    let initial = crate::eventual::effective_initial(model, &Value::Nil);
    let mut reads = 0;
    let mut stale_reads = 0;
    let mut worst: Option<StaleRead> = None;
    for key_ops in by_key(ops, model) {
        for stale in staleness(ops, &key_ops, &initial, &mut reads) {
            stale_reads += 1;
            if worst.as_ref().is_none_or(|w| stale.staleness_ns > w.staleness_ns) {
                worst = Some(stale);
            }
        }
    }
    AvailabilityReport {
        overall,
        inside_faults,
        outside_faults,
        reads,
        stale_reads,
        worst_stale_read: worst,
        unknown_outcomes: overall.unknown,
        latency: LatencyQuantiles::from_latencies(latencies),
        latency_inside_faults: LatencyQuantiles::from_latencies(latencies_inside),
    }
}

/// The acknowledgement time of an ok op.
fn acked_ns(op: &Operation) -> Option<u64> {
    op.complete_ns.filter(|_| op.outcome == Outcome::Ok)
}

/// The stale reads of one key; counts the judged reads into `reads`.
fn staleness(ops: &[Operation], key_ops: &KeyOps, initial: &Value, reads: &mut usize) -> Vec<StaleRead> {
    let kind = key_ops.kind;
    let key_ops_list: Vec<&Operation> = key_ops.ops.iter().map(|&i| &ops[i]).collect();
    let ok_reads: Vec<&Operation> =
        key_ops_list.iter().copied().filter(|op| op.outcome == Outcome::Ok && access(op, kind).is_read()).collect();
    let mut stale = Vec::new();
    match kind {
        ObjectKind::Register => {
            // Acknowledged writes sorted by invocation, with the suffix minimum of their ack times.
            let mut writes: Vec<(&Operation, Value)> = key_ops_list
                .iter()
                .copied()
                .filter(|op| op.outcome == Outcome::Ok)
                .filter_map(|op| match access(op, kind) {
                    Access::Write(value) | Access::Cas { to: value, .. } => Some((op, value)),
                    _ => None,
                })
                .collect();
            writes.sort_by_key(|(op, _)| (op.invoke_ns, op.id));
            let mut suffix_min: Vec<(u64, usize)> = vec![(u64::MAX, usize::MAX); writes.len() + 1];
            for i in (0..writes.len()).rev() {
                let acked = acked_ns(writes[i].0).expect("ok ops have a completion");
                suffix_min[i] = suffix_min[i + 1].min((acked, i));
            }
            let all_writes: Vec<(&Operation, Value)> = key_ops_list
                .iter()
                .copied()
                .filter(|op| op.outcome != Outcome::Fail)
                .filter_map(|op| match access(op, kind) {
                    Access::Write(value) | Access::Cas { to: value, .. } => Some((op, value)),
                    _ => None,
                })
                .collect();
            for read in ok_reads {
                let seen = register_value(&read.output, initial);
                let saw_initial = seen == *initial && !all_writes.iter().any(|(_, value)| *value == seen);
                // The write of the value seen that ended last before the read ended (charitable).
                let writer_end_ns = all_writes
                    .iter()
                    .filter(|(op, value)| *value == seen && op.invoke_ns <= read.complete_ns.unwrap_or(u64::MAX))
                    .map(|(op, _)| acked_ns(op).unwrap_or(u64::MAX))
                    .max();
                if !saw_initial && writer_end_ns.is_none() {
                    continue; // A value nothing wrote: not a staleness question.
                }
                *reads += 1;
                // The acknowledged writes that began after the value seen was written.
                let first = match writer_end_ns {
                    _ if saw_initial => 0,
                    Some(u64::MAX) | None => continue,
                    Some(end_ns) => writes.partition_point(|(op, _)| op.invoke_ns <= end_ns),
                };
                let (acked, index) = suffix_min[first];
                if index != usize::MAX && acked < read.invoke_ns {
                    stale.push(StaleRead {
                        read: read.clone(),
                        staleness_ns: read.invoke_ns - acked,
                        missed: writes[index].0.clone(),
                    });
                }
            }
        }
        ObjectKind::Set | ObjectKind::List => {
            let tokens = Tokens::new(key_ops_list.iter().filter(|op| op.f == "append").map(|op| &op.input));
            let mut acked: Vec<(&Operation, Value)> = key_ops_list
                .iter()
                .copied()
                .filter(|op| op.outcome == Outcome::Ok)
                .filter_map(|op| match access(op, kind) {
                    Access::Append(value) | Access::Add(value) => Some((op, value)),
                    _ => None,
                })
                .collect();
            acked.sort_by_key(|(op, _)| (acked_ns(op), op.id));
            for read in ok_reads {
                let Some(seen) = elements(&read.output, kind, &tokens) else { continue };
                *reads += 1;
                let missed = acked
                    .iter()
                    .take_while(|(op, _)| acked_ns(op).is_some_and(|t| t < read.invoke_ns))
                    .find(|(_, element)| !seen.contains(element));
                if let Some((op, _)) = missed {
                    stale.push(StaleRead {
                        read: read.clone(),
                        staleness_ns: read.invoke_ns - acked_ns(op).expect("acked"),
                        missed: (*op).clone(),
                    });
                }
            }
        }
        ObjectKind::Counter => {
            let mut increments: Vec<(&Operation, i64)> = key_ops_list
                .iter()
                .copied()
                .filter(|op| op.outcome == Outcome::Ok)
                .filter_map(|op| match access(op, kind) {
                    Access::Increment(amount) => Some((op, amount)),
                    _ => None,
                })
                .collect();
            if increments.iter().any(|&(_, amount)| amount < 0) {
                return stale;
            }
            increments.sort_by_key(|(op, _)| (acked_ns(op), op.id));
            for read in ok_reads {
                let Some(count) = register_value(&read.output, &Value::Int(0)).as_int() else { continue };
                *reads += 1;
                let mut sum = 0i64;
                for &(op, amount) in &increments {
                    let Some(t) = acked_ns(op).filter(|&t| t < read.invoke_ns) else { break };
                    sum = sum.saturating_add(amount);
                    if sum > count {
                        stale.push(StaleRead {
                            read: read.clone(),
                            staleness_ns: read.invoke_ns - t,
                            missed: op.clone(),
                        });
                        break;
                    }
                }
            }
        }
        ObjectKind::Mixed => {}
    }
    stale
}
