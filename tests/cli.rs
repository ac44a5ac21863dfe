//! The `detsim` binary end to end: exit codes 0/1/2, the --json contract, bad-input messages with
//! line and column, the run folder, sweeps that do not depend on --jobs, shards that merge into the
//! unsharded sweep, resuming, shrinking to a scenario that fails on its own, replay, list, help and
//! completions. The binary is built once (with the same cargo and profile) and run as a process.

use detsim_tests::workspace_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `detsim` binary, built on first use.
fn detsim_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let release = !cfg!(debug_assertions);
        let mut build = Command::new(env!("CARGO"));
        build.current_dir(workspace_root()).args(["build", "--quiet", "--package", "detsim", "--bin", "detsim"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the detsim binary failed");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
        let binary = target
            .join(if release { "release" } else { "debug" })
            .join(format!("detsim{}", std::env::consts::EXE_SUFFIX));
        assert!(binary.exists(), "{} exists after the build", binary.display());
        binary
    })
}

/// A scratch folder for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("detsim-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a scratch folder");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write a scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `detsim ARGS` in `dir` with colours off.
fn detsim(dir: &Path, args: &[&str]) -> Output {
    Command::new(detsim_binary()).current_dir(dir).env("NO_COLOR", "1").args(args).output().expect("detsim runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 stderr")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit code, not a signal")
}

fn scenario(name: &str) -> String {
    workspace_root().join("scenarios").join(name).display().to_string()
}

/// The last line of stdout as JSON.
fn last_json(output: &Output) -> serde_json::Value {
    let text = stdout(output);
    let last = text.lines().last().unwrap_or_else(|| panic!("no output; stderr: {}", stderr(output)));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("the last line is JSON ({e}): {last}"))
}

/// A short Raft scenario with a read bug that a partition nemesis exposes on some seeds, expecting a
/// pass (so a violating seed exits 1). `seed` is filled in by [`buggy_raft`].
const BUGGY_RAFT: &str = r#"
description = "Raft answering reads from a deposed leader."
seed = SEED
duration = "8s"
checks = ["linearizable"]

[cluster]
protocol = "raft"
nodes = 5
params = { mutants = { stale_reads = true } }

[workload]
kind = "register"
clients = 3
timeout = "500ms"

[nemesis]
faults = ["partition"]
interval = "1s"
fault_duration = "1s"
"#;

/// Every seed of 1..80 that exposes BUGGY_RAFT's bug, found by a sweep in `scratch`.
fn buggy_raft_seeds(scratch: &Scratch) -> Vec<u64> {
    let probe = scratch.write("probe.toml", &BUGGY_RAFT.replace("SEED", "1"));
    let output = detsim(
        &scratch.0,
        &["sweep", probe.to_str().expect("UTF-8"), "--seeds", "1..80", "--out", "probe.jsonl", "--json"],
    );
    let totals = last_json(&output);
    let failing: Vec<u64> =
        totals["failing"].as_array().map(|seeds| seeds.iter().filter_map(|s| s.as_u64()).collect()).unwrap_or_default();
    assert!(!failing.is_empty(), "some seed of 1..80 exposes the bug: {totals}");
    failing
}

/// Writes BUGGY_RAFT into `scratch` with `seed`; returns the file.
fn write_buggy_raft(scratch: &Scratch, seed: u64) -> PathBuf {
    scratch.write(&format!("buggy-{seed}.toml"), &BUGGY_RAFT.replace("SEED", &seed.to_string()))
}

/// Writes BUGGY_RAFT into `scratch` with its first violating seed as `seed`; returns the file and
/// the seed.
fn buggy_raft(scratch: &Scratch) -> (PathBuf, u64) {
    let seed = buggy_raft_seeds(scratch)[0];
    (write_buggy_raft(scratch, seed), seed)
}

#[test]
fn run_exits_0_as_expected_and_prints_the_json_contract() {
    let scratch = Scratch::new("run");
    let out = scratch.path("out");
    let output =
        detsim(&scratch.0, &["run", &scenario("quickstart.toml"), "--out", out.to_str().expect("UTF-8"), "--json"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let json = last_json(&output);
    for key in ["seed", "trace_hash", "valid", "ops", "availability", "events", "sim_time_s", "wall_s"] {
        assert!(json.get(key).is_some(), "--json has {key:?}: {json}");
    }
    assert_eq!(json["seed"], 1);
    assert_eq!(json["valid"], true);
    assert!(json["ops"].as_u64().expect("ops") > 100);
    assert_eq!(json["trace_hash"].as_str().expect("hex").len(), 16);
    for file in ["history.jsonl", "trace.jsonl", "run.json", "scenario.toml", "report.html"] {
        assert!(out.join(file).exists(), "the run folder has {file}");
    }
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).expect("run.json")).expect("JSON");
    assert_eq!(run_json["trace_hash"], json["trace_hash"], "run.json and --json agree");

    // The human summary: every figure the issue lists, and no colour codes when not on a terminal.
    let output = detsim(&scratch.0, &["run", &scenario("quickstart.toml"), "--no-out"]);
    assert_eq!(code(&output), 0);
    let text = stdout(&output);
    for needle in [
        "operations",
        "ok ",
        "fail ",
        "unknown ",
        "availability",
        "p50",
        "p99",
        "max",
        "per operation",
        "linearizable: valid",
        "trace hash",
        "detsim run",
    ] {
        assert!(text.contains(needle), "the summary shows {needle:?}:\n{text}");
    }
    assert!(!text.contains('\u{1b}'), "no ANSI escapes when stdout is not a terminal");
    assert!(text.contains(json["trace_hash"].as_str().expect("hex")), "the same trace hash in another process");
}

#[test]
fn run_exits_1_when_the_outcome_is_not_what_the_scenario_expects() {
    let scratch = Scratch::new("unexpected");
    let (file, seed) = buggy_raft(&scratch);
    let output = detsim(&scratch.0, &["run", file.to_str().expect("UTF-8"), "--no-out"]);
    assert_eq!(code(&output), 1, "a violation where a pass is expected: {}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("linearizable: INVALID"), "{text}");
    assert!(text.contains("but the scenario expects pass"), "{text}");
    assert!(text.contains(&format!("detsim run {} --seed {seed}", file.display())), "the replay command: {text}");

    // The same seed with the expectation flipped is as expected.
    let text = std::fs::read_to_string(&file).expect("the scenario");
    let flipped = scratch.write("flipped.toml", &text.replace("checks = [", "expect = \"violation\"\nchecks = ["));
    let output = detsim(&scratch.0, &["run", flipped.to_str().expect("UTF-8"), "--no-out", "--json"]);
    assert_eq!(code(&output), 0);
    assert_eq!(last_json(&output)["valid"], false);
}

#[test]
fn bad_input_exits_2_with_file_line_and_column_and_never_panics() {
    let scratch = Scratch::new("bad");
    let quickstart = std::fs::read_to_string(scenario("quickstart.toml")).expect("quickstart");
    let line_of = |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).expect("needle") + 1;
    let cases: Vec<(String, String, String)> = vec![
        (
            quickstart.replace("min = \"1ms\", max = \"10ms\" }", "min = \"1ms\", max = \"10ms\" }\nloss = 1.5"),
            "loss = 1.5".into(),
            "probability between 0 and 1".into(),
        ),
        (quickstart.replace("nodes = 5", "nodes = 0"), "nodes = 0".into(), "at least 1 node".into()),
        (quickstart.replace("node = \"n3\"", "node = \"n9\""), "node = \"n9\"".into(), "no node named \"n9\"".into()),
        (quickstart.replace("at = \"6s\"", "at = \"60s\""), "at = \"60s\"".into(), "after the end of the run".into()),
        (
            quickstart.replace("expect = \"pass\"", "expect = \"pass\"\ncolour = \"blue\""),
            "colour".into(),
            "unknown field `colour`".into(),
        ),
        (quickstart.replace("nodes = 5", "nodes = \"five\""), "nodes = \"five\"".into(), "invalid type".into()),
        (
            quickstart.replace("protocol = \"raft\"", "protocol = \"rafft\""),
            "rafft".into(),
            "unknown protocol \"rafft\"".into(),
        ),
    ];
    for (index, (text, needle, message)) in cases.iter().enumerate() {
        let file = scratch.write(&format!("bad{index}.toml"), text);
        let output = detsim(&scratch.0, &["run", file.to_str().expect("UTF-8"), "--no-out"]);
        let error = stderr(&output);
        assert_eq!(code(&output), 2, "case {index}: bad input exits 2: {error}");
        assert!(!error.contains("panicked"), "case {index}: no panic: {error}");
        let line = line_of(text, needle);
        let place = format!("{}:{line}:", file.display());
        assert!(error.contains(&place), "case {index}: the error is placed at {place}…: {error}");
        assert!(error.contains(message.as_str()), "case {index}: {message:?} in {error}");
    }
    // Things that are not scenario files at all.
    let output = detsim(&scratch.0, &["run", "no-such-file.toml"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("no-such-file.toml: cannot read"), "{}", stderr(&output));
    let output = detsim(&scratch.0, &["sweep", &scenario("quickstart.toml"), "--seeds", "5..1"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("is empty"), "{}", stderr(&output));
    let output = detsim(&scratch.0, &["sweep", &scenario("quickstart.toml"), "--seeds", "1..3", "--shard", "3/3"]);
    assert_eq!(code(&output), 2);
    let output = detsim(&scratch.0, &["frobnicate"]);
    assert_eq!(code(&output), 2, "an unknown subcommand is bad input");
}

#[test]
fn sweep_results_do_not_depend_on_jobs_and_shards_merge_into_the_whole() {
    let scratch = Scratch::new("sweep");
    let file = scenario("lamport-diagram.toml");
    let sweep = |out: &str, extra: &[&str]| {
        let mut args = vec!["sweep", file.as_str(), "--seeds", "1..13", "--out", out];
        args.extend_from_slice(extra);
        let output = detsim(&scratch.0, &args);
        assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
        output
    };
    sweep("one.jsonl", &["--jobs", "1"]);
    let output = sweep("two.jsonl", &["--jobs", "2", "--json"]);
    let totals = last_json(&output);
    assert_eq!(totals["total"], 12);
    assert_eq!(totals["failing"], serde_json::json!([]));
    let one = std::fs::read_to_string(scratch.path("one.jsonl")).expect("results");
    let two = std::fs::read_to_string(scratch.path("two.jsonl")).expect("results");
    assert_eq!(one, two, "the same bytes with --jobs 1 and --jobs 2");
    assert_eq!(one.lines().count(), 12);
    let seeds: Vec<u64> = one
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON")["seed"].as_u64().expect("seed"))
        .collect();
    assert_eq!(seeds, (1..13).collect::<Vec<_>>(), "one line per seed, in seed order");
    assert!(!stderr(&output).contains('\u{1b}'), "plain progress lines when stderr is not a terminal");

    sweep("shard0.jsonl", &["--shard", "0/3", "--jobs", "2"]);
    sweep("shard1.jsonl", &["--shard", "1/3"]);
    sweep("shard2.jsonl", &["--shard", "2/3"]);
    let shard0 = std::fs::read_to_string(scratch.path("shard0.jsonl")).expect("results");
    assert_eq!(shard0.lines().count(), 4, "a third of the seeds");
    let output =
        detsim(&scratch.0, &["merge", "shard2.jsonl", "shard0.jsonl", "shard1.jsonl", "--out", "merged.jsonl"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let merged = std::fs::read_to_string(scratch.path("merged.jsonl")).expect("merged");
    assert_eq!(merged, one, "the merged shards are the unsharded sweep");

    // Merging results of different scenarios is refused.
    detsim(&scratch.0, &["sweep", &scenario("quickstart.toml"), "--seeds", "1..2", "--out", "other.jsonl"]);
    let output = detsim(&scratch.0, &["merge", "one.jsonl", "other.jsonl", "--out", "bad.jsonl"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("another scenario"), "{}", stderr(&output));
}

#[test]
fn an_interrupted_sweep_resumes_without_redoing_finished_seeds() {
    let scratch = Scratch::new("resume");
    let file = scenario("lamport-diagram.toml");
    let run = |seeds: &str, out: &str| {
        let output = detsim(&scratch.0, &["sweep", &file, "--seeds", seeds, "--out", out, "--json"]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        last_json(&output)
    };
    let whole = run("1..11", "whole.jsonl");
    assert_eq!(whole["ran"], 10);
    // Half the sweep, then a write cut short in the middle of a line, as a kill would leave it.
    run("1..6", "partial.jsonl");
    let mut partial = std::fs::read_to_string(scratch.path("partial.jsonl")).expect("partial");
    partial.push_str("{\"seed\":6,\"trace_h");
    std::fs::write(scratch.path("partial.jsonl"), partial).expect("truncate");
    let resumed = run("1..11", "partial.jsonl");
    assert_eq!(resumed["resumed"], 5, "the five finished seeds are kept: {resumed}");
    assert_eq!(resumed["ran"], 5, "only the other five run: {resumed}");
    assert_eq!(
        std::fs::read_to_string(scratch.path("partial.jsonl")).expect("resumed"),
        std::fs::read_to_string(scratch.path("whole.jsonl")).expect("whole"),
        "a resumed sweep ends with the same file as an uninterrupted one"
    );
    // Nothing left to do.
    assert_eq!(run("1..11", "partial.jsonl")["ran"], 0);
    // Results of another scenario are not silently mixed in.
    let output =
        detsim(&scratch.0, &["sweep", &scenario("quickstart.toml"), "--seeds", "1..3", "--out", "partial.jsonl"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("--fresh"), "{}", stderr(&output));
}

#[test]
fn a_failing_sweep_lists_its_seeds_with_replay_commands_and_stops_on_request() {
    let scratch = Scratch::new("failing");
    let (file, seed) = buggy_raft(&scratch);
    let file = file.to_str().expect("UTF-8");
    let range = format!("1..{}", seed + 8);
    let output = detsim(&scratch.0, &["sweep", file, "--seeds", &range, "--jobs", "2", "--out", "r.jsonl", "--json"]);
    assert_eq!(code(&output), 1, "some seed violates: {}", stderr(&output));
    let totals = last_json(&output);
    let failing = totals["failing"].as_array().expect("failing seeds").clone();
    assert!(!failing.is_empty());
    for (seed, replay) in failing.iter().zip(totals["replay"].as_array().expect("replays")) {
        assert_eq!(replay.as_str().expect("a command"), format!("detsim run {file} --seed {seed}"));
    }
    assert_eq!(failing[0], seed, "the first failing seed, whatever the number of threads");
    let text = stdout(&detsim(&scratch.0, &["sweep", file, "--seeds", &range, "--out", "r.jsonl"]));
    assert!(text.contains("did not come out as expected"), "{text}");
    assert!(text.contains(&format!("detsim run {file} --seed {}", failing[0])), "{text}");

    let output = detsim(
        &scratch.0,
        &["sweep", file, "--seeds", "1..200", "--jobs", "1", "--stop-on-failure", "--out", "s.jsonl", "--json"],
    );
    assert_eq!(code(&output), 1);
    let totals = last_json(&output);
    assert!(totals["skipped"].as_u64().expect("skipped") > 150, "it stopped early: {totals}");
    assert_eq!(totals["failing"], serde_json::json!([failing[0]]), "at the first failing seed");
}

#[test]
fn shrink_writes_a_smaller_scenario_that_fails_on_its_own() {
    let scratch = Scratch::new("shrink");
    let seeds = buggy_raft_seeds(&scratch);
    let mut shrunk_fewer_faults = Vec::new();
    for &seed in &seeds {
        let file = write_buggy_raft(&scratch, seed);
        let output = detsim(&scratch.0, &["run", file.to_str().expect("UTF-8"), "--no-out", "--json"]);
        assert_eq!(code(&output), 1, "seed {seed} fails");
        let original = last_json(&output);
        let seed_text = seed.to_string();
        let min = format!("min-{seed}.toml");
        let output =
            detsim(&scratch.0, &["shrink", file.to_str().expect("UTF-8"), "--seed", &seed_text, "--out", &min]);
        assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
        assert!(stdout(&output).contains("still violates linearizable"), "{}", stdout(&output));
        let shrunk = std::fs::read_to_string(scratch.path(&min)).expect("the shrunk scenario");
        assert!(shrunk.contains(&format!("seed = {seed}")), "{shrunk}");
        assert!(!shrunk.contains("[nemesis]"), "the nemesis' faults are written out: {shrunk}");
        assert!(shrunk.matches("[[faults]]").count() >= 1, "a partition is needed to expose the bug: {shrunk}");

        // Every shrunk file fails on its own, and is never longer or busier than its original.
        let output = detsim(&scratch.0, &["run", &min, "--no-out", "--json"]);
        assert_eq!(code(&output), 1, "the shrunk file of seed {seed} fails on its own");
        let minimal = last_json(&output);
        assert_eq!(minimal["valid"], false);
        assert!(minimal["sim_time_s"].as_f64() <= original["sim_time_s"].as_f64(), "no longer than the original");
        let (before, after) =
            (original["faults"].as_array().expect("faults").len(), minimal["faults"].as_array().expect("faults").len());
        assert!(after <= before, "seed {seed}: never more faults than the nemesis drew: {after} vs {before}");
        if after < before && minimal["sim_time_s"].as_f64() < original["sim_time_s"].as_f64() {
            shrunk_fewer_faults.push(seed);
        }
    }
    // Dropping a fault re-times every later message, so a seed's violation may need all its
    // faults; but across the failing seeds the shrinker must find some it can cut.
    assert!(
        shrunk_fewer_faults.len() * 2 >= seeds.len(),
        "at least half the failing seeds {seeds:?} shrink to fewer faults and a shorter run: {shrunk_fewer_faults:?}"
    );

    // A passing seed has nothing to shrink.
    let output = detsim(&scratch.0, &["shrink", &scenario("quickstart.toml"), "--out", "none.toml"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("nothing to shrink"), "{}", stderr(&output));
}

#[test]
fn replay_reproduces_the_run_and_filters_the_trace() {
    let scratch = Scratch::new("replay");
    let file = scenario("lamport-diagram.toml");
    let run = last_json(&detsim(&scratch.0, &["run", &file, "--seed", "4", "--no-out", "--json"]));
    let replay = detsim(&scratch.0, &["replay", &file, "--seed", "4", "--json"]);
    assert_eq!(code(&replay), 0);
    assert_eq!(last_json(&replay)["trace_hash"], run["trace_hash"], "replay's hash is run's hash");

    let traced = detsim(&scratch.0, &["replay", &file, "--seed", "4", "--trace", "--node", "n2"]);
    assert_eq!(code(&traced), 0);
    let text = stdout(&traced);
    let trace_lines: Vec<&str> = text.lines().take_while(|l| !l.starts_with("scenario")).collect();
    assert!(trace_lines.len() > 10, "a trace is printed:\n{text}");
    assert!(trace_lines.iter().all(|l| l.contains("n2") || l.contains(" fault ")), "only n2's events:\n{text}");
    assert!(text.contains(run["trace_hash"].as_str().expect("hex")), "the summary follows with the same hash");

    let typed = stdout(&detsim(
        &scratch.0,
        &["replay", &file, "--seed", "4", "--trace", "--json", "--msg-type", "RequestVote"],
    ));
    let records: Vec<serde_json::Value> = typed
        .lines()
        .filter(|l| l.contains("\"ev\""))
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    assert!(!records.is_empty(), "an election sends RequestVote messages");
    assert!(records.iter().all(|r| r["kind"] == "RequestVote"), "only RequestVote: {typed}");

    let output = detsim(&scratch.0, &["replay", &file, "--trace", "--node", "n9"]);
    assert_eq!(code(&output), 2, "an unknown node is bad input");
}

#[test]
fn check_determinism_runs_twice_and_compares_hashes() {
    let scratch = Scratch::new("determinism");
    let output =
        detsim(&scratch.0, &["run", &scenario("raft-swarm.toml"), "--no-out", "--check-determinism", "--json"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let json = last_json(&output);
    assert_eq!(json["determinism"]["deterministic"], true);
    assert_eq!(json["determinism"]["second_trace_hash"], json["trace_hash"]);
    assert!(json["swarm"]["nodes"].as_u64().is_some(), "swarm knobs are recorded: {json}");
    let text = stdout(&detsim(&scratch.0, &["run", &scenario("raft-swarm.toml"), "--no-out", "--check-determinism"]));
    assert!(text.contains("deterministic: a second run has the same trace hash"), "{text}");
    assert!(text.contains("swarm        clients="), "the drawn knobs are printed: {text}");
}

#[test]
fn list_help_and_completions_describe_the_command_line() {
    let scratch = Scratch::new("list");
    let output = detsim(&scratch.0, &["list"]);
    assert_eq!(code(&output), 0);
    let text = stdout(&output);
    for needle in [
        "protocols",
        "raft",
        "dynamo",
        "workloads",
        "register",
        "checks",
        "linearizable",
        "faults",
        "partition",
        "clock-jump",
        "nemesis",
    ] {
        assert!(text.contains(needle), "detsim list shows {needle}:\n{text}");
    }
    let help = stdout(&detsim(&scratch.0, &["--help"]));
    for command in ["run", "sweep", "merge", "replay", "shrink", "check", "list", "completions"] {
        assert!(help.contains(&format!("  {command}")), "--help lists {command}:\n{help}");
    }
    let run_help = stdout(&detsim(&scratch.0, &["run", "--help"]));
    for flag in ["--seed", "--out", "--json", "--no-report", "--check-determinism"] {
        assert!(run_help.contains(flag), "run --help documents {flag}");
    }
    let bash = detsim(&scratch.0, &["completions", "bash"]);
    assert_eq!(code(&bash), 0);
    assert!(stdout(&bash).contains("_detsim"), "a bash completion function");
    assert_eq!(code(&detsim(&scratch.0, &["completions", "tcsh"])), 2, "an unknown shell is bad input");
}
