//! `detsim sweep FILE --seeds A..B`: many seeds on a pool of threads (the same results whatever
//! --jobs is), sharded for many machines, resumable, with a progress bar on a terminal and plain
//! lines otherwise, and a summary of the failing seeds with their replay commands.

use crate::common::{exit_code, Exit, Style};
use clap::Args;
use detsim_scenario::sweep::{default_results_path, Progress, SeedRecord};
use detsim_scenario::{SeedRange, Shard, SweepOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `detsim sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The scenario file (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Seeds to run: A..B (B excluded), A..=B (B included), or one seed.
    #[arg(long, value_name = "A..B")]
    pub seeds: SeedRange,
    /// Worker threads (default: the number of CPUs). Results do not depend on it.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Run only part K of N of the seed range (K from 0), for N machines; `detsim merge` joins them.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Start no new seed once one comes out otherwise than the scenario expects.
    #[arg(long)]
    pub stop_on_failure: bool,
    /// The JSON Lines results file, one object per seed (default: <name>.sweep.jsonl, or
    /// <name>.shard-K-of-N.jsonl with --shard). Seeds it already holds are not run again.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite the results file instead of resuming it.
    #[arg(long)]
    pub fresh: bool,
    /// Print one JSON object with the totals (the last line) instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

/// Failing seeds listed one by one in the summary (the rest are in the results file).
const FAILING_SHOWN: usize = 20;

/// How progress is shown: a bar with an ETA on a terminal, a plain line per 5% (and per failing
/// seed) otherwise.
enum Reporter {
    Bar(ProgressBar),
    Lines { next_percent: usize, started: Instant },
}

impl Reporter {
    fn new(total: usize) -> Reporter {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} seeds, {per_sec}, ETA {eta} {msg}",
                )
                .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Reporter::Bar(bar)
        } else {
            Reporter::Lines { next_percent: 5, started: Instant::now() }
        }
    }

    fn update(&mut self, progress: &Progress<'_>, failures: usize, style: Style) {
        let record = progress.record;
        match self {
            Reporter::Bar(bar) => {
                bar.set_position(progress.done as u64);
                if failures > 0 {
                    bar.set_message(style.red(&format!("{failures} failing")));
                }
                if !record.outcome_ok {
                    bar.println(failing_line(record, style));
                }
            }
            Reporter::Lines { next_percent, started } => {
                if !record.outcome_ok {
                    eprintln!("{}", failing_line(record, style));
                }
                let percent = progress.done * 100 / progress.total.max(1);
                if percent >= *next_percent || progress.done == progress.total {
                    let elapsed = started.elapsed().as_secs_f64();
                    eprintln!(
                        "sweep: {}/{} seeds ({percent}%), {failures} failing, {elapsed:.1}s",
                        progress.done, progress.total
                    );
                    *next_percent = (percent / 5 + 1) * 5;
                }
            }
        }
    }

    fn finish(self) {
        if let Reporter::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn failing_line(record: &SeedRecord, style: Style) -> String {
    let why = match (&record.error, record.violations.is_empty()) {
        (Some(error), _) => error.clone(),
        (None, false) => format!("violates {}", record.violations.join(", ")),
        (None, true) => "passes, but the scenario expects a violation".to_string(),
    };
    format!("{} seed {}: {why}\n  replay: {}", style.red("FAIL"), record.seed, record.replay)
}

/// Runs `detsim sweep`.
pub fn run(args: &SweepArgs) -> anyhow::Result<ExitCode> {
    let loaded = crate::common::load(&args.file)?;
    let jobs = match args.jobs {
        Some(0) => return Err(Exit::bad_input("--jobs must be at least 1")),
        Some(jobs) => jobs,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let results = args.out.clone().unwrap_or_else(|| default_results_path(&loaded, args.shard));
    let options = SweepOptions {
        seeds: args.seeds,
        shard: args.shard,
        jobs,
        stop_on_failure: args.stop_on_failure,
        results: results.clone(),
        fresh: args.fresh,
    };
    let style = Style::stderr();
    let total = detsim_scenario::sweep::shard_seeds(args.seeds, args.shard).len();
    let mut reporter = Reporter::new(total);
    let mut failures = 0;
    let started = Instant::now();
    let summary = detsim_scenario::sweep(&loaded, &options, |progress| {
        if !progress.record.outcome_ok {
            failures += 1;
        }
        reporter.update(&progress, failures, style);
    })
    .map_err(Exit::bad_input)?;
    reporter.finish();
    let wall_s = started.elapsed().as_secs_f64();

    let failing = summary.failing();
    let all_ok = failing.is_empty() && summary.skipped == 0;
    if args.json {
        let totals = serde_json::json!({
            "scenario": loaded.name,
            "file": loaded.file,
            "seeds": args.seeds.to_string(),
            "shard": args.shard.map(|s| s.to_string()),
            "results": results.display().to_string(),
            "total": total,
            "ran": summary.ran,
            "resumed": summary.resumed,
            "skipped": summary.skipped,
            "failing": failing.iter().map(|r| r.seed).collect::<Vec<_>>(),
            "replay": failing.iter().map(|r| r.replay.clone()).collect::<Vec<_>>(),
            "wall_s": wall_s,
            "seeds_per_s": if wall_s > 0.0 { summary.ran as f64 / wall_s } else { 0.0 },
            "jobs": jobs,
        });
        println!("{totals}");
    } else {
        let out = Style::stdout();
        let shard = args.shard.map_or(String::new(), |s| format!(" (shard {s})"));
        println!(
            "sweep {} seeds {}{shard}: {} seeds, {} run now, {} resumed from {}, {:.1}s on {jobs} threads",
            loaded.name,
            args.seeds,
            total,
            summary.ran,
            summary.resumed,
            results.display(),
            wall_s
        );
        if summary.skipped > 0 {
            println!("{} seeds not run (--stop-on-failure)", summary.skipped);
        }
        if failing.is_empty() {
            println!(
                "{}",
                out.green(&format!("every seed came out as expected ({})", loaded.scenario.expect.as_str()))
            );
        } else {
            println!(
                "{}",
                out.red(&format!(
                    "{} of {} seeds did not come out as expected ({}):",
                    failing.len(),
                    summary.records.len(),
                    loaded.scenario.expect.as_str()
                ))
            );
            for record in failing.iter().take(FAILING_SHOWN) {
                let why = record.error.clone().unwrap_or_else(|| {
                    if record.violations.is_empty() {
                        "no violation".to_string()
                    } else {
                        format!("violates {}", record.violations.join(", "))
                    }
                });
                println!("  seed {:<8} {why:<40} {}", record.seed, record.replay);
            }
            if failing.len() > FAILING_SHOWN {
                println!("  ... and {} more in {}", failing.len() - FAILING_SHOWN, results.display());
            }
        }
    }
    Ok(exit_code(all_ok))
}
