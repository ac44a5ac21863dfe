//! Benchmark "sweep": seeds per wall second of `detsim sweep` on a 5-node Raft scenario of 10
//! simulated seconds, with one and with two worker threads (target: at least 1.8x with two), beside
//! the simplest baseline, a plain loop over `run_seed` with no pool and no results file.

use super::{timed, Bench, BenchResult};
use detsim_scenario::{load_str, run_seed, RunOptions, SeedRange, SweepOptions};

pub fn benches() -> Vec<Bench> {
    vec![Bench { name: "sweep", run: sweep }]
}

/// Five Raft servers, three clients, ten simulated seconds, a partition and a crash.
const SCENARIO: &str = r#"
name = "bench-sweep"
duration = "10s"
checks = ["linearizable"]

[cluster]
protocol = "raft"
nodes = 5

[workload]
kind = "register"
clients = 3
timeout = "500ms"

[[faults]]
at = "3s"
kind = "partition"
groups = [["n1", "n2"], ["n3", "n4", "n5"]]
duration = "2s"

[[faults]]
at = "6s"
kind = "crash"
node = "n3"
duration = "1s"
"#;

const SEEDS: u64 = 120;

fn sweep() -> Vec<BenchResult> {
    let registry = detsim_protocols::registry();
    let loaded = load_str(SCENARIO, "bench-sweep.toml", "bench-sweep", &registry).expect("the bench scenario is valid");
    let results = std::env::temp_dir().join(format!("detsim-bench-sweep-{}.jsonl", std::process::id()));
    let seeds = SeedRange { start: 1, end: 1 + SEEDS };

    let (events, baseline_s) = timed(|| {
        (seeds.start..seeds.end)
            .map(|seed| run_seed(&loaded, seed, RunOptions::default()).expect("the run completes").stats.events)
            .sum::<u64>()
    });
    let mut out = vec![BenchResult::new("sweep-baseline-loop", SEEDS, baseline_s)
        .with("unit", "seeds")
        .with("events", events)
        .with("note", "plain loop over run_seed: no pool, no results file")];

    let mut per_s = Vec::new();
    let mut files = Vec::new();
    for jobs in [1usize, 2] {
        let options =
            SweepOptions { seeds, shard: None, jobs, stop_on_failure: false, results: results.clone(), fresh: true };
        let (summary, wall_s) = timed(|| detsim_scenario::sweep(&loaded, &options, |_| {}).expect("the sweep runs"));
        assert_eq!(summary.ran as u64, SEEDS, "every seed ran");
        files.push(std::fs::read_to_string(&results).expect("the results file"));
        per_s.push(SEEDS as f64 / wall_s);
        out.push(
            BenchResult::new(&format!("sweep-jobs-{jobs}"), SEEDS, wall_s)
                .with("unit", "seeds")
                .with("jobs", jobs as u64)
                .with("sim_s_per_seed", 10),
        );
    }
    assert_eq!(files[0], files[1], "the results do not depend on --jobs");
    let speedup = per_s[1] / per_s[0];
    if let Some(last) = out.last_mut() {
        last.extra.insert("speedup_vs_1".into(), serde_json::json!((speedup * 100.0).round() / 100.0));
        last.extra.insert("target_speedup".into(), serde_json::json!(1.8));
    }
    let _ = std::fs::remove_file(&results);
    out
}
