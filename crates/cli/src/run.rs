//! `detsim run FILE`: one seed of a scenario, a summary (or one JSON object), the run folder
//! (history, trace, run.json, and report.html through detsim-plot) and the exit code 0/1/2.

use crate::common::{exit_code, human_ns, run_error, Exit, ScenarioSeed, Style};
use clap::Args;
use detsim_check::Validity;
use detsim_scenario::{run_seed, LoadedScenario, RunOptions, RunOutcome};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `detsim run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioSeed,
    /// Write the run folder here: history.jsonl, trace.jsonl, run.json, scenario.toml and
    /// report.html (default: runs/<name>-seed-<N>).
    #[arg(long, value_name = "DIR", conflicts_with = "no_out")]
    pub out: Option<PathBuf>,
    /// Write no run folder (the summary only; the fastest way to run).
    #[arg(long)]
    pub no_out: bool,
    /// Print one JSON object instead of the summary (the last line printed).
    #[arg(long)]
    pub json: bool,
    /// Do not render report.html and the charts into the run folder.
    #[arg(long)]
    pub no_report: bool,
    /// Run the seed twice and fail (exit 1) unless both runs have the same trace hash.
    #[arg(long)]
    pub check_determinism: bool,
}

/// The run folder `detsim run` writes when --out is not given.
pub fn default_out_dir(loaded: &LoadedScenario, seed: u64) -> PathBuf {
    PathBuf::from("runs").join(format!("{}-seed-{seed}", loaded.name))
}

/// Runs `detsim run`.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let (loaded, seed) = args.scenario.load()?;
    let out_dir = (!args.no_out).then(|| args.out.clone().unwrap_or_else(|| default_out_dir(&loaded, seed)));
    let options = RunOptions { out_dir: out_dir.clone(), ..RunOptions::default() };
    let outcome = run_seed(&loaded, seed, options).map_err(run_error)?;
    let style = Style::stdout();

    let mut determinism = None;
    if args.check_determinism {
        let again = run_seed(&loaded, seed, RunOptions::default()).map_err(run_error)?;
        determinism = Some(again.trace_hash);
    }
    let mut report = None;
    let mut report_error = None;
    if let Some(dir) = &out_dir {
        std::fs::write(dir.join("scenario.toml"), &loaded.text)
            .map_err(|e| Exit::bad_input(format!("{}: {e}", dir.join("scenario.toml").display())))?;
        if !args.no_report {
            match detsim_plot::render_run(dir, &detsim_plot::RenderOptions::default()) {
                Ok(summary) => report = Some(summary.report),
                Err(error) => report_error = Some(error.to_string()),
            }
        }
    }
    if let Some(error) = &report_error {
        eprintln!("detsim: warning: report.html not written: {error}");
    }

    let deterministic = determinism.is_none_or(|hash| hash == outcome.trace_hash);
    if args.json {
        let mut json = outcome.to_json();
        let object = json.as_object_mut().expect("run.json is an object");
        object.insert("out_dir".into(), json!(out_dir.as_ref().map(|d| d.display().to_string())));
        object.insert("report".into(), json!(report.as_ref().map(|r| r.display().to_string())));
        if let Some(second) = determinism {
            object.insert(
                "determinism".into(),
                json!({"deterministic": deterministic, "second_trace_hash": format!("{second:016x}")}),
            );
        }
        println!("{}", serde_json::to_string(&json).expect("JSON serialises"));
    } else {
        print!("{}", summary_text(&outcome, out_dir.as_deref(), report.as_deref(), style));
        if let Some(second) = determinism {
            let line = if deterministic {
                style.green(&format!("deterministic: a second run has the same trace hash {second:016x}"))
            } else {
                style.red(&format!(
                    "NOT deterministic: the second run's trace hash is {second:016x}, not {}",
                    outcome.trace_hash_hex()
                ))
            };
            println!("{:<12} {line}", "determinism");
        }
    }
    if !deterministic {
        return Err(Exit::unexpected(format!(
            "{}: seed {seed} is not deterministic: trace hash {} then {:016x}\n  replay: {}",
            loaded.file,
            outcome.trace_hash_hex(),
            determinism.unwrap_or_default(),
            outcome.replay_command()
        )));
    }
    Ok(exit_code(outcome.outcome_ok()))
}

/// The human summary of a run (what `detsim run` and `detsim replay` print).
pub fn summary_text(outcome: &RunOutcome, out_dir: Option<&Path>, report: Option<&Path>, style: Style) -> String {
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut line = |label: &str, value: String| lines.push((label.to_string(), value));
    line(
        "scenario",
        format!(
            "{} ({}, {} servers, {} clients), seed {}",
            style.bold(&outcome.scenario),
            outcome.protocol,
            outcome.servers.len(),
            outcome.clients.len(),
            outcome.seed
        ),
    );
    if let Some(swarm) = &outcome.swarm {
        line("swarm", swarm_text(swarm));
    }
    line(
        "simulated",
        format!("{:.3}s in {:.3}s wall, {} events", outcome.sim_time_s, outcome.wall_s, outcome.stats.events),
    );
    line(
        "operations",
        format!(
            "{} (ok {}, fail {}, unknown {}), availability {:.1}%",
            outcome.ops,
            outcome.ok,
            outcome.fail,
            outcome.info,
            outcome.availability * 100.0
        ),
    );
    let latency = outcome.latency_ns;
    if outcome.ok > 0 {
        line(
            "latency",
            format!("p50 {}  p99 {}  max {}", human_ns(latency.p50), human_ns(latency.p99), human_ns(latency.max)),
        );
    }
    if let Some(cap) = &outcome.cap {
        if let Some(text) = cap_text(cap) {
            line("cap", text);
        }
    }
    let per_op = if outcome.ops == 0 {
        "no operations".to_string()
    } else {
        format!("{:.1} per operation", outcome.messages_per_op)
    };
    line(
        "messages",
        format!(
            "{} sent, {} delivered, {} dropped; {per_op}",
            outcome.stats.sends, outcome.stats.deliveries, outcome.stats.drops
        ),
    );
    if outcome.checks.is_empty() {
        line("checks", "none".to_string());
    }
    for check in &outcome.checks {
        let first = check.report.lines().next().unwrap_or_default();
        line("check", format!("{}: {}  {}", check.name, style.verdict(check.valid), style.dim(first)));
        if check.valid == Validity::Invalid {
            for evidence in check.report.lines().skip(1).take(12) {
                line("", format!("  {evidence}"));
            }
        }
    }
    let verdict = match outcome.valid {
        Validity::Valid => "pass",
        Validity::Invalid => "violation",
        Validity::Unknown => "unknown",
    };
    let expected = outcome.expect.as_str();
    let outcome_text = if outcome.outcome_ok() {
        style.green(&format!("{verdict}, as expected"))
    } else {
        style.red(&format!("{verdict}, but the scenario expects {expected}"))
    };
    line("outcome", outcome_text);
    line("trace hash", outcome.trace_hash_hex());
    if let Some(dir) = out_dir {
        line("run folder", dir.display().to_string());
    }
    if let Some(report) = report {
        line("report", report.display().to_string());
    }
    line("replay", outcome.replay_command());
    lines.iter().map(|(label, value)| format!("{} {value}\n", style.dim(&format!("{label:<12}")))).collect()
}

/// The CAP figures of a run in one line: success inside and outside fault windows, stale reads,
/// unknown outcomes (`None` when the report is an error).
pub fn cap_text(cap: &serde_json::Value) -> Option<String> {
    let fraction = |counts: &serde_json::Value| {
        let ops = counts["ops"].as_u64().unwrap_or(0);
        match counts["success_fraction"].as_f64() {
            Some(f) if ops > 0 => format!("{:.1}% of {ops}", f * 100.0),
            _ => "no operations".to_string(),
        }
    };
    cap.get("overall")?;
    let mut text = format!(
        "ok inside faults {}, outside {}; stale reads {} of {}",
        fraction(&cap["inside_faults"]),
        fraction(&cap["outside_faults"]),
        cap["stale_reads"].as_u64().unwrap_or(0),
        cap["reads"].as_u64().unwrap_or(0)
    );
    let worst = cap["worst_staleness_ns"].as_u64().unwrap_or(0);
    if worst > 0 {
        text.push_str(&format!(" (worst {})", human_ns(worst)));
    }
    text.push_str(&format!("; unknown outcomes {}", cap["unknown_outcomes"].as_u64().unwrap_or(0)));
    Some(text)
}

/// The swarm knobs drawn for a seed, as `nodes=5 loss=0.01 ...`.
pub fn swarm_text(swarm: &serde_json::Value) -> String {
    match swarm.as_object() {
        Some(object) => object
            .iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(s) => format!("{key}={s}"),
                serde_json::Value::Array(items) => format!(
                    "{key}={}",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                other => format!("{key}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => swarm.to_string(),
    }
}
