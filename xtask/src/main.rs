//! `cargo xtask`: project automation. `ci` runs exactly what CI runs; `bench` runs the benchmarks;
//! `plots` regenerates docs/img; `report-check` opens a report.html in headless Chromium.

mod bench;
mod plots;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match try_main(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::from(2)
        }
    }
}

fn try_main(args: &[String]) -> Result<ExitCode, String> {
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench_command(&args[1..]),
        Some("plots") => plots::plots(&args[1..]),
        Some("report-check") => plots::report_check(&args[1..]),
        _ => {
            Err("usage: cargo xtask ci | bench [--json] [NAME...] | plots | report-check [REPORT.html | RUN_DIR]"
                .into())
        }
    }
}

/// Runs what CI runs: formatting, then the whole test suite.
fn ci() -> Result<ExitCode, String> {
    let steps: [&[&str]; 2] = [&["fmt", "--all", "--", "--check"], &["test", "--workspace"]];
    for step in steps {
        eprintln!("xtask ci: cargo {}", step.join(" "));
        let status = Command::new(env!("CARGO")).args(step).status().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_command(args: &[String]) -> Result<ExitCode, String> {
    // Benchmarks measure the release build: the `cargo xtask` alias builds xtask in the dev profile,
    // so re-run ourselves in release.
    if cfg!(debug_assertions) {
        let status = Command::new(env!("CARGO"))
            .args(["run", "--quiet", "--release", "--package", "xtask", "--", "bench"])
            .args(args)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        return Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    let json = args.iter().any(|a| a == "--json");
    let names: Vec<&str> = args.iter().filter(|a| !a.starts_with("--")).map(String::as_str).collect();
    let benches = bench::all();
    for name in &names {
        if !benches.iter().any(|b| name.starts_with(b.name)) {
            let known: Vec<&str> = benches.iter().map(|b| b.name).collect();
            return Err(format!("unknown benchmark {name:?}; known: {}", known.join(", ")));
        }
    }
    for bench in benches.iter().filter(|b| names.is_empty() || names.iter().any(|n| n.starts_with(b.name))) {
        for result in (bench.run)() {
            // "broadcast-10" selects the matching result of the "broadcast" benchmark.
            if !names.is_empty() && !names.iter().any(|n| *n == bench.name || *n == result.name) {
                continue;
            }
            if json {
                println!("{}", result.to_json());
            } else {
                let object = result.to_json();
                println!(
                    "{:<24} ops={:<12} wall_s={:<10.4} per_s={:.0}  {}",
                    result.name,
                    result.ops,
                    result.wall_s,
                    object["per_s"].as_f64().unwrap_or(0.0),
                    serde_json::Value::Object(result.extra.clone())
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
