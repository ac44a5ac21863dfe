//! `detsim check`: judge history files with the checkers of detsim-check. Exit code 0 when every
//! file is consistent, 1 on a violation, 2 on bad input, 3 when a budget ran out before a verdict;
//! with several files, the worst (2, then 1, then 3, then 0).

use clap::Args;
use detsim_check::{
    availability_with_model, check_history, operations, parse_history_with_lines, Anomaly, CheckOptions, Consistency,
    FaultWindow, Format, HistoryError, LinearizabilityOptions, Model, ParsedHistory, SessionGuarantee, TxnModel,
    Validity, Verdict,
};
use detsim_core::history::Value;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `detsim check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// History files to check (native JSON Lines, Jepsen EDN op maps or history.edn, Jepsen logs).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The object the history works on: register, cas-register, kv, set, counter, queue, or (for
    /// transactions) list-append, rw-register.
    #[arg(long, value_parser = parse_model)]
    pub model: ModelArg,
    /// The history's format; detected from its first line when left out.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// What to check, comma separated: linearizable (default), sequential, causal, eventual,
    /// read-your-writes, monotonic-reads, monotonic-writes, writes-follow-reads, session (all four),
    /// serializable, strong-session-serializable, strict-serializable (default for transaction
    /// models), availability.
    #[arg(long, value_delimiter = ',')]
    pub consistency: Vec<String>,
    /// Check the whole history at once instead of key by key (same verdict, much slower). Past
    /// `--whole-search-steps`, the verdict is settled key by key and checked on the whole history.
    #[arg(long)]
    pub no_partition: bool,
    /// With --no-partition: steps the whole-history search may take before the verdict is settled
    /// key by key (then a valid verdict's merged order is replayed on the whole model).
    #[arg(long, default_value_t = 500_000)]
    pub whole_search_steps: u64,
    /// Porcupine's reading of a failed cas: it ran and saw a value other than `from`, so it must fit
    /// the order (the default is Knossos': a failed cas did not happen).
    #[arg(long)]
    pub strict_cas: bool,
    /// Time budget per file for linearizable and sequential (e.g. 500ms, 10s, 2m); past it the
    /// verdict is "unknown" (exit 3).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Memory budget of the linearizability search, in MiB; past it the verdict is "unknown".
    #[arg(long, default_value_t = 1024)]
    pub max_memory_mb: usize,
    /// The value of every object before the history starts, in EDN (registers start as nil).
    #[arg(long, value_parser = parse_value)]
    pub initial: Option<Value>,
    /// For `eventual`: the time the last fault healed (history time, e.g. 12s; foreign histories
    /// count one unit per record).
    #[arg(long, value_parser = parse_duration)]
    pub heal_at: Option<Duration>,
    /// For `eventual`: how long after the heal reads start to count as final.
    #[arg(long, value_parser = parse_duration)]
    pub settle: Option<Duration>,
    /// For `availability` (and `eventual`, which heals after the last one): a fault window
    /// START..END in history time, e.g. 2s..5s; repeat for several.
    #[arg(long = "fault-window", value_parser = parse_window)]
    pub fault_windows: Vec<FaultWindow>,
    /// For `availability`: the least fraction of operations that must succeed (else a violation).
    #[arg(long)]
    pub min_availability: Option<f64>,
    /// Print one JSON object per file, one a line.
    #[arg(long)]
    pub json: bool,
}

/// A `--model` value: an object model or a transaction model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelArg {
    Object(Model),
    Transactions(TxnModel),
}

impl std::fmt::Display for ModelArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelArg::Object(model) => write!(f, "{model}"),
            ModelArg::Transactions(model) => write!(f, "{model}"),
        }
    }
}

fn parse_model(text: &str) -> Result<ModelArg, String> {
    match (text.parse::<Model>(), text.parse::<TxnModel>()) {
        (Ok(model), _) => Ok(ModelArg::Object(model)),
        (_, Ok(model)) => Ok(ModelArg::Transactions(model)),
        _ => Err(format!(
            "unknown model {text:?} (expected register, cas-register, kv, set, counter, queue, list-append or rw-register)"
        )),
    }
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
}

/// `10s`, `500ms`, `250us`, `42ns`, `2m`, `1.5s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 10s, 2m)"))?;
    let seconds_per_unit = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown time unit {other:?} in {text:?} (use ns, us, ms, s, m or h)")),
    };
    let seconds = number * seconds_per_unit;
    if !seconds.is_finite() || !(0.0..=1e9).contains(&seconds) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_window(text: &str) -> Result<FaultWindow, String> {
    let (start, end) = text.split_once("..").ok_or_else(|| format!("{text:?} is not a window START..END"))?;
    let (start, end) = (parse_duration(start)?, parse_duration(end)?);
    if end < start {
        return Err(format!("the window {text:?} ends before it starts"));
    }
    Ok(FaultWindow::new(nanos(start), nanos(end)))
}

fn parse_value(text: &str) -> Result<Value, String> {
    // Reuse the EDN reader through a one-op history.
    let probe = format!("{{:process 0, :type :invoke, :f :read, :value {text}}}");
    let history =
        detsim_check::parse_history(&probe, Some(Format::Edn)).map_err(|e| format!("{text:?}: {}", e.message))?;
    Ok(history.events.first().map(|e| e.value.clone()).unwrap_or_default())
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// What one `--consistency` item asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Model(Consistency),
    Availability,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Model(consistency) => consistency.name(),
            Check::Availability => "availability",
        }
    }
}

fn checks(args: &CheckArgs) -> anyhow::Result<Vec<Check>> {
    let mut names: Vec<String> =
        args.consistency.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if names.is_empty() {
        names.push(match args.model {
            ModelArg::Object(_) => "linearizable".into(),
            ModelArg::Transactions(_) => "strict-serializable".into(),
        });
    }
    let mut checks = Vec::new();
    for name in names {
        match name.as_str() {
            "availability" => checks.push(Check::Availability),
            "session" => checks.extend(SessionGuarantee::ALL.map(|g| Check::Model(Consistency::Session(g)))),
            other => {
                let consistency: Consistency = other.parse().map_err(anyhow::Error::msg)?;
                let transactional = matches!(args.model, ModelArg::Transactions(_));
                if consistency.is_transactional() != transactional {
                    anyhow::bail!(
                        "--consistency {consistency} does not apply to the {} model ({})",
                        args.model,
                        if transactional {
                            "transactions are checked for serializable, strong-session-serializable or strict-serializable"
                        } else {
                            "serializability is for the list-append and rw-register transaction models"
                        }
                    );
                }
                checks.push(Check::Model(consistency));
            }
        }
    }
    checks.dedup();
    Ok(checks)
}

/// How a file went: its exit code and what to print.
struct FileOutcome {
    code: u8,
    json: serde_json::Value,
    text: String,
}

/// The worse of two exit codes: bad input, then violation, then unknown, then fine.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |code: u8| match code {
        2 => 3,
        1 => 2,
        3 => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Runs `detsim check` and returns the worst exit code over the files.
pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let checks = checks(args)?;
    if let Some(min) = args.min_availability {
        anyhow::ensure!((0.0..=1.0).contains(&min), "--min-availability must be between 0 and 1, not {min}");
    }
    let mut code = 0u8;
    for file in &args.files {
        let outcome = check_file(file, args, &checks);
        code = worse(code, outcome.code);
        if args.json {
            println!("{}", outcome.json);
        } else if outcome.code == 2 {
            eprint!("{}", outcome.text);
        } else {
            print!("{}", outcome.text);
        }
    }
    Ok(ExitCode::from(code))
}

fn bad_input(file: &Path, line: Option<(usize, usize)>, message: &str) -> FileOutcome {
    let place = match line {
        Some((line, column)) => format!("{}:{line}:{column}", file.display()),
        None => file.display().to_string(),
    };
    let mut json = json!({ "file": file.display().to_string(), "valid": null, "error": message, "exit_code": 2 });
    if let Some((line, column)) = line {
        json["line"] = json!(line);
        json["column"] = json!(column);
    }
    FileOutcome { code: 2, json, text: format!("detsim: {place}: {message}\n") }
}

/// Where a history error points: the record's line (column 1).
fn error_position(parsed: &ParsedHistory, error: &HistoryError) -> Option<(usize, usize)> {
    parsed.event_lines.get(error.event_index).map(|&line| (line, 1))
}

fn check_file(file: &Path, args: &CheckArgs, checks: &[Check]) -> FileOutcome {
    let start = Instant::now();
    let text = match std::fs::read(file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => return bad_input(file, None, &format!("not UTF-8 text: {error}")),
        },
        Err(error) => return bad_input(file, None, &format!("cannot read: {error}")),
    };
    let parsed = match parse_history_with_lines(&text, args.format) {
        Ok(parsed) => parsed,
        Err(error) => return bad_input(file, Some((error.line, error.column)), &error.message),
    };
    let ops = match operations(&parsed.history) {
        Ok(ops) => ops,
        Err(error) => return bad_input(file, error_position(&parsed, &error), &error.message),
    };
    let (model, txn_model) = match args.model {
        ModelArg::Object(model) => (Some(model), None),
        ModelArg::Transactions(model) => (None, Some(model)),
    };
    let linear = LinearizabilityOptions {
        partition: !args.no_partition,
        strict_cas: args.strict_cas,
        time_budget: Some(args.timeout),
        initial: args.initial.clone().unwrap_or_default(),
        max_memory_entries: (args.max_memory_mb.saturating_mul(1 << 20) / 48).max(1),
        max_memory_bytes: args.max_memory_mb.saturating_mul(1 << 20).max(1),
        whole_search_steps: args.whole_search_steps,
    };
    let heal_ns = args.heal_at.map(nanos).or_else(|| args.fault_windows.iter().map(|w| w.end_ns).max());
    let options = CheckOptions { model, txn_model, linear, heal_ns, settle_ns: args.settle.map_or(0, nanos) };
    let mut verdicts: Vec<Verdict> = Vec::new();
    let mut availability_json = None;
    let mut text_out = String::new();
    for &check in checks {
        match check {
            Check::Model(consistency) => match check_history(&parsed.history, consistency, &options) {
                Ok(verdict) => verdicts.push(verdict),
                Err(error) => return bad_input(file, error_position(&parsed, &error), &error.message),
            },
            Check::Availability => {
                let report = availability_with_model(&ops, &args.fault_windows, model);
                let mut verdict = Verdict::new("availability", model.map(|m| m.to_string()), ops.len());
                if let Some(min) = args.min_availability {
                    if report.success_fraction() < min {
                        verdict.valid = Validity::Invalid;
                        verdict.anomalies.push(Anomaly::new(
                            "availability",
                            format!(
                                "{:.1}% of operations succeeded, below the required {:.1}%",
                                report.success_fraction() * 100.0,
                                min * 100.0
                            ),
                            Vec::new(),
                        ));
                    }
                }
                text_out.push_str(&report.to_string());
                availability_json = Some(report.to_json());
                verdicts.push(verdict);
            }
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    let valid = verdicts.iter().fold(Validity::Valid, |all, verdict| all.and(verdict.valid));
    let recheck = recheck_command(file, args, checks);
    let mut json = json!({
        "file": file.display().to_string(),
        "valid": valid.to_json(),
        "ops": ops.len(),
        "elapsed_s": elapsed_s,
        "model": args.model.to_string(),
        "consistency": checks.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "checks": verdicts.iter().map(Verdict::to_json).collect::<Vec<_>>(),
        "exit_code": valid.exit_code(),
    });
    if let Some(report) = availability_json {
        json["availability"] = report;
    }
    if valid != Validity::Valid {
        json["recheck"] = json!(recheck);
    }
    let mut text = String::new();
    for verdict in &verdicts {
        if verdict.checker == "availability" {
            text.push_str(&format!("{}: {text_out}", file.display()));
            for anomaly in &verdict.anomalies {
                text.push_str(&format!("  availability: INVALID: {}\n", anomaly.explanation));
            }
        } else {
            text.push_str(&format!("{}: {verdict}", file.display()));
        }
    }
    text.push_str(&format!("  ({} operations checked in {elapsed_s:.3} s)\n", ops.len()));
    if valid != Validity::Valid {
        let what = if valid == Validity::Invalid { "re-check" } else { "re-check with a larger budget" };
        text.push_str(&format!("  {what}: {recheck}\n"));
    }
    FileOutcome { code: valid.exit_code(), json, text }
}

fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn duration_text(duration: Duration) -> String {
    let ns = duration.as_nanos();
    if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{ns}ns")
    }
}

/// The one-line command that checks this file again the same way.
fn recheck_command(file: &Path, args: &CheckArgs, checks: &[Check]) -> String {
    let mut parts = vec![
        "detsim".to_string(),
        "check".to_string(),
        shell_quote(&file.display().to_string()),
        "--model".to_string(),
        args.model.to_string(),
        "--consistency".to_string(),
        checks.iter().map(|c| c.name()).collect::<Vec<_>>().join(","),
    ];
    if let Some(format) = args.format {
        parts.extend(["--format".to_string(), format.to_string()]);
    }
    if args.no_partition {
        parts.push("--no-partition".into());
        if args.whole_search_steps != LinearizabilityOptions::default().whole_search_steps {
            parts.extend(["--whole-search-steps".to_string(), args.whole_search_steps.to_string()]);
        }
    }
    if args.strict_cas {
        parts.push("--strict-cas".into());
    }
    parts.extend(["--timeout".to_string(), duration_text(args.timeout)]);
    if let Some(initial) = &args.initial {
        parts.extend(["--initial".to_string(), shell_quote(&initial.to_string())]);
    }
    if let Some(heal) = args.heal_at {
        parts.extend(["--heal-at".to_string(), duration_text(heal)]);
    }
    if let Some(settle) = args.settle {
        parts.extend(["--settle".to_string(), duration_text(settle)]);
    }
    for window in &args.fault_windows {
        parts.extend(["--fault-window".to_string(), format!("{}ns..{}ns", window.start_ns, window.end_ns)]);
    }
    if let Some(min) = args.min_availability {
        parts.extend(["--min-availability".to_string(), min.to_string()]);
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_windows() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("42ns"), Ok(Duration::from_nanos(42)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_window("1s..2s"), Ok(FaultWindow::new(1_000_000_000, 2_000_000_000)));
        assert!(parse_window("2s..1s").is_err());
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn worst_exit_code_prefers_errors_then_violations() {
        assert_eq!(worse(0, 3), 3);
        assert_eq!(worse(3, 1), 1);
        assert_eq!(worse(1, 3), 1);
        assert_eq!(worse(1, 2), 2);
        assert_eq!(worse(2, 0), 2);
    }

    #[test]
    fn models_and_values_parse() {
        assert_eq!(parse_model("kv"), Ok(ModelArg::Object(Model::KeyValue)));
        assert_eq!(parse_model("list-append"), Ok(ModelArg::Transactions(TxnModel::ListAppend)));
        assert!(parse_model("tree").is_err());
        assert_eq!(parse_value("[1 \"a\"]"), Ok(Value::List(vec![Value::Int(1), Value::from("a")])));
        assert!(parse_value("[1").is_err());
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("dir/x.edn"), "dir/x.edn");
    }
}
