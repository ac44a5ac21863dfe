//! The checks a scenario can name, mapped to the checkers of detsim-check (which read the history
//! only), plus the scenario-level availability threshold.

use crate::format::WorkloadKind;
use detsim_check::{LinearizabilityOptions, Model, Validity};
use detsim_core::History;
use serde_json::json;

/// A check a scenario can list in `checks`.
#[derive(Clone, Copy, Debug)]
pub struct CheckInfo {
    pub name: &'static str,
    /// One line for `detsim list`.
    pub description: &'static str,
}

/// Every check, in the order `detsim list` shows them.
pub const CHECKS: &[CheckInfo] = &[
    CheckInfo {
        name: "linearizable",
        description: "every operation appears to take effect at one instant between its invocation and completion",
    },
    CheckInfo {
        name: "sequential",
        description: "some legal order of all operations keeps each client's own order (no real-time constraint)",
    },
    CheckInfo { name: "availability", description: "at least [check] min_availability of the operations succeeded" },
];

/// The check named `name`.
pub fn find(name: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|check| check.name == name)
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
}

/// What the checks need besides the history.
#[derive(Clone, Debug)]
pub struct CheckContext {
    pub model: Option<Model>,
    pub options: LinearizabilityOptions,
    /// Fraction of operations that succeeded.
    pub availability: f64,
    pub min_availability: Option<f64>,
    /// The window the availability was measured in, when not the whole run ("invoked from 1s until 3s").
    pub availability_window: Option<String>,
}

/// Runs check `name` on `history`. A malformed history is reported as verdict "unknown" with the
/// reason, never as a violation.
pub fn run_check(name: &str, history: &History, context: &CheckContext) -> CheckResult {
    let unknown = |report: String| CheckResult {
        name: name.to_string(),
        valid: Validity::Unknown,
        details: json!({ "error": report }),
        report,
    };
    match name {
        "linearizable" | "sequential" => {
            let Some(model) = context.model else {
                return unknown(
                    "no model for this workload: set [check] model (register, cas-register, kv, set, counter, queue)"
                        .to_string(),
                );
            };
            let verdict = if name == "linearizable" {
                detsim_check::check_linearizable(history, model, &context.options)
            } else {
                detsim_check::check_sequential(history, model, &context.options)
            };
            match verdict {
                Ok(verdict) => CheckResult {
                    name: name.to_string(),
                    valid: verdict.valid,
                    report: verdict.to_string(),
                    details: verdict.to_json(),
                },
                Err(error) => unknown(format!("malformed history (a protocol bug, not a verdict): {error}")),
            }
        }
        "availability" => {
            let min = context.min_availability.unwrap_or(0.0);
            let valid = if context.availability >= min { Validity::Valid } else { Validity::Invalid };
            CheckResult {
                name: name.to_string(),
                valid,
                report: format!(
                    "availability: {} ({:.1}% of operations{} succeeded; at least {:.1}% required)\n",
                    valid,
                    context.availability * 100.0,
                    context.availability_window.as_ref().map_or(String::new(), |w| format!(" {w}")),
                    min * 100.0
                ),
                details: json!({
                    "availability": context.availability,
                    "min_availability": min,
                    "window": context.availability_window,
                }),
            }
        }
        other => unknown(format!("unknown check {other:?}")),
    }
}
