//! The checks a scenario can name, mapped to the checkers of detsim-check (which read the history
//! only): consistency models, session guarantees, Elle's transactional anomalies, availability and
//! CAP metrics with thresholds; plus the checks of [`crate::measured`] over the measurement events
//! the P2P, failure-detector and clock protocols record.

use crate::format::{CheckOptions, WorkloadKind};
use crate::measured;
use detsim_check::{
    availability_with_model, check_causal, check_eventual, check_session, check_transactions, operations,
    AvailabilityReport, CausalOptions, EventualOptions, FaultWindow, HistoryError, LinearizabilityOptions, Model,
    Operation, SessionGuarantee, SessionOptions, TxnModel, TxnOptions, Validity, Verdict,
};
use detsim_core::{Fault, History};
use serde_json::json;
use std::cell::OnceCell;

/// What a check reads: the client history, or the measurement events some protocols record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// A consistency model or session guarantee of single-object operations.
    Consistency,
    /// Elle's anomalies of list-append / rw-register transactions.
    Transactions,
    /// Availability and CAP metrics with a threshold from `[check]`.
    Metrics,
    /// Measurement events of P2P, failure-detector and clock protocols.
    Measured,
}

/// A check a scenario can list in `checks`.
#[derive(Clone, Copy, Debug)]
pub struct CheckInfo {
    pub name: &'static str,
    pub kind: CheckKind,
    /// One line for `detsim list`.
    pub description: &'static str,
}

const fn info(name: &'static str, kind: CheckKind, description: &'static str) -> CheckInfo {
    CheckInfo { name, kind, description }
}

/// The name that stands for all four session guarantees.
pub const SESSION: &str = "session";

/// Every check, in the order `detsim list` shows them.
pub const CHECKS: &[CheckInfo] = &[
    info(
        "linearizable",
        CheckKind::Consistency,
        "every operation appears to take effect at one instant between its invocation and completion",
    ),
    info(
        "sequential",
        CheckKind::Consistency,
        "some legal order of all operations keeps each client's own order (no real-time constraint)",
    ),
    info("causal", CheckKind::Consistency, "no bad pattern of causal consistency (registers with unique values)"),
    info(
        "eventual",
        CheckKind::Consistency,
        "after the last fault heals (+ [check] settle), final reads agree and hold every acknowledged update",
    ),
    info("read-your-writes", CheckKind::Consistency, "a client's read reflects its own earlier writes"),
    info("monotonic-reads", CheckKind::Consistency, "a client's reads of a key never go back to an older version"),
    info("monotonic-writes", CheckKind::Consistency, "a client's writes take effect in the order it made them"),
    info(
        "writes-follow-reads",
        CheckKind::Consistency,
        "a write made after a read is ordered after the writes that read saw",
    ),
    info(SESSION, CheckKind::Consistency, "all four session guarantees (one verdict each)"),
    info("serializable", CheckKind::Transactions, "transactions: no Elle anomaly (ww, wr, rw dependency cycles)"),
    info(
        "strong-session-serializable",
        CheckKind::Transactions,
        "transactions: serializable, and each client's transactions in its order",
    ),
    info("strict-serializable", CheckKind::Transactions, "transactions: serializable, and in real-time order"),
    info("availability", CheckKind::Metrics, "at least [check] min_availability of the operations succeeded"),
    info(
        "stale-reads",
        CheckKind::Metrics,
        "at most [check] max_stale_reads reads missed an acknowledged update, none staler than max_staleness",
    ),
    info(
        "latency",
        CheckKind::Metrics,
        "successful operations within [check] max_latency_p50 / max_latency_p99 / max_latency",
    ),
    info(
        "unknown-outcomes",
        CheckKind::Metrics,
        "at most [check] max_unknown_outcomes operations ended with an unknown outcome",
    ),
    info(
        "broadcast-delivery",
        CheckKind::Measured,
        "every live server delivers every broadcast within [check] deliver_within (gossip)",
    ),
    info(
        "failure-detection",
        CheckKind::Measured,
        "crashed nodes declared failed within [check] detect_within; live ones at most max_false_detections times",
    ),
    info(
        "lookups",
        CheckKind::Measured,
        "every successful DHT lookup names the key's true owner among the live nodes (chord)",
    ),
    info(
        "clock-sync",
        CheckKind::Measured,
        "every synchronised clock reading is within [check] max_clock_error of true time (ntp, berkeley)",
    ),
];

/// The check named `name`.
pub fn find(name: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|check| check.name == name)
}

/// The checks a scenario's `checks` list runs, in order: "session" stands for its four
/// guarantees; each check runs once.
pub fn expand(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let parts: Vec<String> = if name == SESSION {
            SessionGuarantee::ALL.iter().map(|g| g.name().to_string()).collect()
        } else {
            vec![name.clone()]
        };
        for part in parts {
            if !out.contains(&part) {
                out.push(part);
            }
        }
    }
    out
}

/// The model a workload kind's history is checked against, when it has one.
pub fn default_model(kind: WorkloadKind) -> Option<Model> {
    match kind {
        WorkloadKind::Register => Some(Model::CasRegister),
        WorkloadKind::KeyValue => Some(Model::KeyValue),
        WorkloadKind::Counter => Some(Model::Counter),
        WorkloadKind::Set => Some(Model::Set),
        WorkloadKind::ListAppend | WorkloadKind::RwRegister | WorkloadKind::None => None,
    }
}

/// The transaction model of a workload kind, when its operations are transactions.
pub fn txn_model(kind: WorkloadKind) -> Option<TxnModel> {
    match kind {
        WorkloadKind::ListAppend => Some(TxnModel::ListAppend),
        WorkloadKind::RwRegister => Some(TxnModel::RwRegister),
        _ => None,
    }
}

/// One check's verdict, as run.json records it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    pub name: String,
    pub valid: Validity,
    /// The checker's text report (the evidence when invalid).
    pub report: String,
    /// The checker's JSON report.
    pub details: serde_json::Value,
}

impl CheckResult {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "valid": self.valid.to_json(),
            "report": self.report,
            "details": self.details,
        })
    }

    fn unknown(name: &str, report: String) -> CheckResult {
        CheckResult { name: name.to_string(), valid: Validity::Unknown, details: json!({ "error": report }), report }
    }

    /// The result of a detsim-check verdict.
    pub fn from_verdict(name: &str, verdict: &Verdict) -> CheckResult {
        CheckResult {
            name: name.to_string(),
            valid: verdict.valid,
            report: verdict.to_string(),
            details: verdict.to_json(),
        }
    }
}

/// What the checks need besides their name: the history, the run's faults and nodes, and the
/// scenario's `[check]` options. Operations and the CAP report are computed once, on first use.
pub struct CheckContext<'a> {
    pub history: &'a History,
    /// The object model of single-object workloads.
    pub model: Option<Model>,
    /// The transaction model of transactional workloads.
    pub txn_model: Option<TxnModel>,
    pub options: LinearizabilityOptions,
    pub check: &'a CheckOptions,
    /// The fraction the "availability" check judges (its window and op filters applied).
    pub availability: f64,
    /// How that fraction selects operations, in words ("invoked from 1s until 3s").
    pub availability_window: Option<String>,
    /// The run's fault windows: (kind, start ns, end ns or `None` when still open at the end).
    pub fault_windows: &'a [(String, u64, Option<u64>)],
    /// The faults the run scheduled, in time order.
    pub faults: &'a [(u64, Fault)],
    /// Where the run ended (ns).
    pub end_ns: u64,
    pub seed: u64,
    /// Every node of the simulation in id order.
    pub node_names: &'a [String],
    /// Servers are the first `servers` nodes.
    pub servers: usize,
    operations: OnceCell<Result<Vec<Operation>, HistoryError>>,
    cap: OnceCell<Result<AvailabilityReport, String>>,
}

impl<'a> CheckContext<'a> {
    /// A context for `history` with `check` options and nothing else known yet; set the public
    /// fields that apply.
    pub fn new(history: &'a History, check: &'a CheckOptions) -> Self {
        CheckContext {
            history,
            model: None,
            txn_model: None,
            options: LinearizabilityOptions::default(),
            check,
            availability: 1.0,
            availability_window: None,
            fault_windows: &[],
            faults: &[],
            end_ns: history.events.last().map_or(0, |e| e.time_ns),
            seed: 0,
            node_names: &[],
            servers: 0,
            operations: OnceCell::new(),
            cap: OnceCell::new(),
        }
    }

    /// The history's operations (invocations paired with completions).
    pub fn operations(&self) -> Result<&[Operation], String> {
        self.operations
            .get_or_init(|| operations(self.history))
            .as_deref()
            .map_err(|error| format!("malformed history (a protocol bug, not a verdict): {error}"))
    }

    /// The fault windows as detsim-check reads them (open ones end with the run).
    pub fn check_fault_windows(&self) -> Vec<FaultWindow> {
        self.fault_windows
            .iter()
            .map(|(_, start, end)| {
                let end_ns = end.unwrap_or(self.end_ns).max(*start);
                FaultWindow::new(*start, end_ns)
            })
            .collect()
    }

    /// The CAP report of the run: success inside and outside fault windows, stale reads, unknown
    /// outcomes, latency quantiles.
    pub fn cap(&self) -> Result<&AvailabilityReport, String> {
        self.cap
            .get_or_init(|| {
                let ops = self.operations()?;
                Ok(availability_with_model(ops, &self.check_fault_windows(), self.model))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// When the last fault window closed (ns), if the run had any.
    pub fn heal_ns(&self) -> Option<u64> {
        self.fault_windows.iter().map(|(_, start, end)| end.unwrap_or(self.end_ns).max(*start)).max()
    }
}

fn ms(ns: u64) -> String {
    crate::units::format_duration_ns(i64::try_from(ns).unwrap_or(i64::MAX))
}

/// Runs check `name`. A malformed history, or one the check cannot judge, is reported as verdict
/// "unknown" with the reason, never as a violation.
pub fn run_check(name: &str, context: &CheckContext<'_>) -> CheckResult {
    let Some(info) = find(name) else {
        return CheckResult::unknown(name, format!("unknown check {name:?}"));
    };
    let result = match info.kind {
        CheckKind::Consistency => consistency(name, context),
        CheckKind::Transactions => transactions(name, context),
        CheckKind::Metrics => metrics(name, context),
        CheckKind::Measured => measured::run(name, context).map(|verdict| CheckResult::from_verdict(name, &verdict)),
    };
    result.unwrap_or_else(|report| CheckResult::unknown(name, report))
}

const NEED_MODEL: &str =
    "no model for this workload: set [check] model (register, cas-register, kv, set, counter, queue)";

fn consistency(name: &str, context: &CheckContext<'_>) -> Result<CheckResult, String> {
    let model = context.model;
    let verdict = match name {
        "linearizable" | "sequential" => {
            let model = model.ok_or(NEED_MODEL)?;
            let verdict = if name == "linearizable" {
                detsim_check::check_linearizable(context.history, model, &context.options)
            } else {
                detsim_check::check_sequential(context.history, model, &context.options)
            };
            verdict.map_err(|error| format!("malformed history (a protocol bug, not a verdict): {error}"))?
        }
        "causal" => {
            let options = CausalOptions { model, ..CausalOptions::default() };
            check_causal(context.operations()?, &options)
        }
        "eventual" => {
            let options = EventualOptions {
                heal_ns: context.heal_ns(),
                settle_ns: context.check.settle.map_or(0, |d| d.as_ns()),
                model,
                ..EventualOptions::default()
            };
            check_eventual(context.operations()?, &options)
        }
        guarantee => {
            let guarantee: SessionGuarantee = guarantee.parse()?;
            check_session(context.operations()?, guarantee, &SessionOptions { model, ..SessionOptions::default() })
        }
    };
    Ok(CheckResult::from_verdict(name, &verdict))
}

fn transactions(name: &str, context: &CheckContext<'_>) -> Result<CheckResult, String> {
    let mut options =
        TxnOptions::for_consistency(name).ok_or_else(|| format!("{name} is not a transactional consistency model"))?;
    options.model = context.txn_model;
    let verdict = check_transactions(context.operations()?, &options)
        .map_err(|error| format!("malformed transaction history (a protocol bug, not a verdict): {error}"))?;
    Ok(CheckResult::from_verdict(name, &verdict))
}

/// A threshold a metric check compares against, for the report.
struct Limit {
    what: String,
    ok: bool,
}

fn metrics(name: &str, context: &CheckContext<'_>) -> Result<CheckResult, String> {
    let check = context.check;
    let cap = context.cap()?;
    let mut limits: Vec<Limit> = Vec::new();
    let mut headline = String::new();
    match name {
        "availability" => {
            let min = check.min_availability.unwrap_or(0.0);
            headline = format!(
                "{:.1}% of operations{} succeeded; at least {:.1}% required",
                context.availability * 100.0,
                context.availability_window.as_ref().map_or(String::new(), |w| format!(" {w}")),
                min * 100.0
            );
            limits.push(Limit { what: "availability".into(), ok: context.availability >= min });
        }
        "stale-reads" => {
            let max_reads = check.max_stale_reads.or(if check.max_staleness.is_some() { None } else { Some(0) });
            headline = format!(
                "{} stale reads of {}, worst {} stale",
                cap.stale_reads,
                cap.reads,
                ms(cap.worst_staleness_ns())
            );
            if let Some(max) = max_reads {
                limits.push(Limit { what: format!("at most {max} stale reads"), ok: cap.stale_reads as u64 <= max });
            }
            if let Some(max) = check.max_staleness {
                limits.push(Limit {
                    what: format!("none staler than {max}"),
                    ok: cap.worst_staleness_ns() <= max.as_ns(),
                });
            }
        }
        "latency" => {
            let latency = &cap.latency;
            headline = format!(
                "{} ok operations: p50 {}, p99 {}, max {}",
                latency.count,
                ms(latency.p50_ns),
                ms(latency.p99_ns),
                ms(latency.max_ns)
            );
            for (label, max, value) in [
                ("p50", check.max_latency_p50, latency.p50_ns),
                ("p99", check.max_latency_p99, latency.p99_ns),
                ("max", check.max_latency, latency.max_ns),
            ] {
                if let Some(max) = max {
                    limits.push(Limit { what: format!("{label} at most {max}"), ok: value <= max.as_ns() });
                }
            }
            if limits.is_empty() {
                return Err(
                    "the \"latency\" check needs [check] max_latency_p50, max_latency_p99 or max_latency".into()
                );
            }
        }
        "unknown-outcomes" => {
            let max = check.max_unknown_outcomes.unwrap_or(0);
            // Operations the end of the run cut short did not fail: the run just stopped.
            let cut_short = context.operations()?.iter().filter(|op| op.complete_ns.is_none()).count();
            let unknown = cap.unknown_outcomes.saturating_sub(cut_short);
            headline = format!(
                "{unknown} of {} operations ended with an unknown outcome, besides {cut_short} cut short by the end of the run",
                cap.overall.ops
            );
            limits.push(Limit { what: format!("at most {max}"), ok: unknown as u64 <= max });
        }
        _ => {}
    }
    let valid = if limits.iter().all(|limit| limit.ok) { Validity::Valid } else { Validity::Invalid };
    let failed: Vec<&str> = limits.iter().filter(|l| !l.ok).map(|l| l.what.as_str()).collect();
    let mut report = format!("{name}: {valid} ({headline})\n");
    if !failed.is_empty() {
        report.push_str(&format!("  required: {}\n", failed.join("; ")));
    }
    for line in cap.to_string().lines() {
        report.push_str(&format!("  {line}\n"));
    }
    let details = json!({
        "limits": limits.iter().map(|l| json!({"limit": l.what, "ok": l.ok})).collect::<Vec<_>>(),
        "availability": context.availability,
        "min_availability": check.min_availability,
        "window": context.availability_window,
        "cap": cap.to_json(),
    });
    Ok(CheckResult { name: name.to_string(), valid, report, details })
}
