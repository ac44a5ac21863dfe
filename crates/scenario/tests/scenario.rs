//! The scenario machinery end to end on the toy protocol: loading, validation errors with their
//! place, running, determinism, expected outcomes, swarm mode and the JSON Schema.

use detsim_scenario::toy::toy_registry;
use detsim_scenario::{load_str, run_seed, LoadedScenario, RunOptions};

const BASE: &str = r#"
name = "toy"
description = "A toy register."
seed = 7
duration = "5s"
checks = ["linearizable"]

[cluster]
protocol = "toy-register"
nodes = 3

[workload]
clients = 3
timeout = "500ms"
"#;

fn load(text: &str) -> LoadedScenario {
    load_str(text, "toy.toml", "toy", &toy_registry()).unwrap_or_else(|e| panic!("valid scenario:\n{e}"))
}

/// Loads `text` (BASE plus an addition) and asserts the first error is `line:column: ...message...`.
fn check_error(addition: &str, place: &str, message: &str) {
    let text = format!("{BASE}{addition}");
    let error = load_str(&text, "bad.toml", "bad", &toy_registry()).expect_err("the scenario is invalid");
    let first = error.diagnostics[0].to_string();
    assert!(first.starts_with(&format!("bad.toml:{place}: ")), "expected place {place}, got: {first}");
    assert!(first.contains(message), "expected {message:?} in: {first}");
}

#[test]
fn malformed_scenarios_are_placed_at_line_and_column() {
    let base_lines = BASE.lines().count();
    let line = |n: usize| base_lines + n;
    check_error("unknown_key = 1\n", &format!("{}:1", line(1)), "unknown field `unknown_key`");
    check_error("[network]\nloss = 1.5\n", &format!("{}:8", line(2)), "probability between 0 and 1");
    check_error("[network]\nloss = \"lots\"\n", &format!("{}:8", line(2)), "invalid type");
    check_error(
        "[network]\nlatency = { dist = \"uniform\", min = \"5parsecs\", max = \"1ms\" }\n",
        &format!("{}:11", line(2)),
        "duration",
    );
    check_error(
        "[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"n9\"\n",
        &format!("{}:8", line(4)),
        "no node named \"n9\"",
    );
    check_error("[[faults]]\nat = \"9s\"\nkind = \"heal\"\n", &format!("{}:6", line(2)), "after the end of the run");
    check_error(
        "[[faults]]\nat = \"1s\"\nkind = \"explode\"\n",
        &format!("{}:8", line(3)),
        "unknown variant `explode`",
    );
    check_error(
        "[[faults]]\nat = \"1s\"\nkind = \"crash\"\nloss = 0.5\nnode = \"n1\"\n",
        &format!("{}:8", line(4)),
        "does not take `loss`",
    );
    let zero_nodes = BASE.replace("nodes = 3", "nodes = 0");
    let error = load_str(&zero_nodes, "z.toml", "z", &toy_registry()).expect_err("0 nodes");
    assert_eq!(error.diagnostics[0].to_string(), "z.toml:10:9: a cluster needs at least 1 node, got 0");
    let unknown = BASE.replace("toy-register", "nope");
    let error = load_str(&unknown, "u.toml", "u", &toy_registry()).expect_err("unknown protocol");
    assert!(
        error.to_string().starts_with("u.toml:9:12: unknown protocol \"nope\": expected one of toy-register"),
        "{error}"
    );
    // A syntax error is placed where the parser stopped: toml reports an unclosed array right after
    // its `[` (line 1, column 13: where the `]` was expected), not at the end of the file.
    let error = load_str("duration = [\n", "s.toml", "s", &toy_registry()).expect_err("syntax");
    assert!(error.to_string().starts_with("s.toml:1:13: unclosed array"), "{error}");
    let error = load_str("seed = 1\nduration = \"5s\"\nname = \"x\" \"y\"\n", "m.toml", "m", &toy_registry())
        .expect_err("syntax in the middle of a file");
    assert!(error.to_string().starts_with("m.toml:3:"), "{error}");
}

#[test]
fn a_valid_scenario_passes_and_is_deterministic() {
    let loaded = load(BASE);
    let first = run_seed(&loaded, 7, RunOptions::default()).expect("the run completes");
    let second = run_seed(&loaded, 7, RunOptions::default()).expect("the run completes");
    assert_eq!(first.trace_hash, second.trace_hash);
    assert!(first.ops > 100, "a 5 s run with 3 clients does many operations, got {}", first.ops);
    assert!(first.outcome_ok(), "{:#?}", first.checks);
    assert_eq!(first.availability, 1.0);
    let other = run_seed(&loaded, 8, RunOptions::default()).expect("the run completes");
    assert_ne!(first.trace_hash, other.trace_hash, "another seed, another run");
}

#[test]
fn stale_reads_are_a_violation_and_the_report_says_so() {
    let text = format!("{}\n[cluster.params]\nstale_reads = true\n", BASE)
        .replace("checks = [", "expect = \"violation\"\nchecks = [");
    let loaded = load(&text);
    let outcome = run_seed(&loaded, 7, RunOptions::default()).expect("the run completes");
    assert_eq!(outcome.violated_checks(), ["linearizable"]);
    assert!(outcome.outcome_ok());
    assert_eq!(outcome.replay_command(), "detsim run toy.toml --seed 7");
}

#[test]
fn scripted_faults_cost_availability_and_show_as_windows() {
    let text = format!("{BASE}[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"n1\"\nduration = \"2s\"\n");
    let outcome = run_seed(&load(&text), 7, RunOptions::default()).expect("the run completes");
    // Each client times out every 500 ms while n1 is down: about 4 unknown outcomes per client.
    assert!(outcome.availability < 0.99, "n1 down for 2 of 5 s, availability {}", outcome.availability);
    assert!(outcome.info >= 9, "unknown outcomes while n1 is down: {}", outcome.info);
    let windows: Vec<_> = outcome.fault_windows.iter().map(|(k, s, e)| (k.as_str(), *s, *e)).collect();
    assert_eq!(windows, [("crash n1", 1_000_000_000, Some(3_000_000_000))]);
}

#[test]
fn swarm_draws_are_recorded_and_follow_the_seed() {
    let text =
        format!("{BASE}[swarm]\nnodes = [1, 5]\nloss = [0.0, 0.05]\nfaults = [\"crash\", \"pause\", \"partition\"]\n");
    let loaded = load(&text);
    let a = run_seed(&loaded, 3, RunOptions::default()).expect("run");
    let b = run_seed(&loaded, 3, RunOptions::default()).expect("run");
    let swarm = a.swarm.clone().expect("swarm values are recorded");
    assert_eq!(Some(swarm.clone()), b.swarm);
    let nodes = swarm["nodes"].as_u64().expect("nodes drawn");
    assert!((1..=5).contains(&nodes));
    assert_eq!(a.servers.len() as u64, nodes);
    let draws: std::collections::BTreeSet<String> = (0..20)
        .map(|seed| run_seed(&loaded, seed, RunOptions::default()).expect("run").swarm.expect("swarm").to_string())
        .collect();
    assert!(draws.len() > 10, "different seeds draw different knobs");
}

#[test]
fn the_run_folder_has_history_trace_and_run_json() {
    let dir = std::env::temp_dir().join(format!("detsim-scenario-test-{}", std::process::id()));
    let options = RunOptions { out_dir: Some(dir.clone()), ..RunOptions::default() };
    let outcome = run_seed(&load(BASE), 7, options).expect("run");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).expect("run.json")).expect("JSON");
    for key in [
        "scenario",
        "seed",
        "trace_hash",
        "valid",
        "ops",
        "availability",
        "events",
        "sim_time_s",
        "wall_s",
        "checks",
        "nodes",
        "replay",
        "latency_ns",
        "fault_windows",
        "faults",
        "servers",
        "clients",
        "outcome_ok",
        "expect",
    ] {
        assert!(run.get(key).is_some(), "run.json has {key}");
    }
    assert_eq!(run["trace_hash"], outcome.trace_hash_hex());
    let history = std::fs::read_to_string(dir.join("history.jsonl")).expect("history");
    assert_eq!(history.lines().count(), outcome.history.events.len());
    let trace = std::fs::read_to_string(dir.join("trace.jsonl")).expect("trace");
    let first: detsim_core::TraceRecord =
        serde_json::from_str(trace.lines().next().expect("a line")).expect("a record");
    assert_eq!(first.ev, "start");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn the_json_schema_in_docs_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/scenario.schema.json");
    let generated = detsim_scenario::schema::scenario_schema_json();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &generated).expect("write the schema");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/scenario.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test -p detsim-scenario --test scenario`"
    );
}
