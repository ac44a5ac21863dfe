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

/// A scenario with every section, the seed of the mutations below.
const FULL: &str = r#"
duration = "2s"
checks = ["linearizable", "availability"]
[check]
min_availability = 0.5
availability_from = "1s"
[cluster]
protocol = "toy-register"
nodes = 3
[network]
latency = { dist = "log-normal", median = "5ms", sigma = 0.5 }
loss = 0.01
bandwidth = "1MiB"
[[network.links]]
from = "n1"
to = "c1"
loss = 0.1
[clocks]
skew = "5ms"
[clocks.nodes.n2]
offset = "-1ms"
[workload]
clients = 2
timeout = "300ms"
[[faults]]
at = "500ms"
kind = "partition"
groups = [["n1"], ["n2", "n3"]]
duration = "500ms"
[nemesis]
faults = ["crash", "clock-jump"]
interval = "700ms"
fault_duration = "300ms"
[swarm]
nodes = [3, 4]
"#;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

    /// The loader never panics on a mutated file, and every error it reports is placed inside it.
    #[test]
    fn the_loader_never_panics_on_mutated_files(
        edits in proptest::collection::vec((0usize..FULL.len(), 0usize..4, proptest::sample::select(
            vec!["", "=", "\"", "[", "]", "{", "}", ",", "\n", "0", "-1", "1.5", "x", "n9", "ms", "#", "[[faults]]\n"]
        )), 1..6)
    ) {
        let mut text = FULL.to_string();
        for (at, remove, insert) in edits {
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + remove).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(at..end, insert);
        }
        let lines = text.lines().count().max(1) + 1;
        match load_str(&text, "m.toml", "m", &toy_registry()) {
            Ok(loaded) => {
                // What loads also runs (briefly) without a panic.
                let options = RunOptions { duration_override_ns: Some(200_000_000), ..RunOptions::default() };
                let _ = run_seed(&loaded, 1, options);
            }
            Err(error) => {
                proptest::prop_assert!(!error.diagnostics.is_empty());
                for diagnostic in &error.diagnostics {
                    proptest::prop_assert!(diagnostic.line.is_none_or(|line| line >= 1 && line <= lines), "{diagnostic}");
                }
            }
        }
    }
}

#[test]
fn the_full_scenario_loads_and_its_nemesis_written_out_is_the_same_run() {
    let loaded = load(FULL);
    let seed = 11;
    let original = run_seed(&loaded, seed, RunOptions::default()).expect("run");
    let plan = detsim_scenario::Plan::new(&loaded, seed).expect("plan");
    assert!(!plan.nemesis_faults.is_empty(), "the nemesis drew faults");
    let text = plan.materialized().to_toml().expect("TOML");
    assert!(!text.contains("[nemesis]") && !text.contains("[swarm]"), "{text}");
    let written = load(&text);
    let again = run_seed(&written, seed, RunOptions::default()).expect("run");
    assert_eq!(again.trace_hash, original.trace_hash, "the written-out scenario is the same run:\n{text}");
}

#[test]
fn shrinking_keeps_the_violation_and_drops_what_is_not_needed() {
    // Stale reads need no fault at all: shrinking drops every fault and most of the run.
    let text = format!(
        "{}\n[cluster.params]\nstale_reads = true\n[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"n3\"\nduration = \"1s\"\n[[faults]]\nat = \"2s\"\nkind = \"pause\"\nnode = \"n2\"\nduration = \"1s\"\n",
        BASE
    );
    let loaded = load(&text);
    let mut steps = Vec::new();
    let shrunk =
        detsim_scenario::shrink(&loaded, 7, &toy_registry(), &Default::default(), |s| steps.push(s.to_string()))
            .expect("seed 7 violates");
    assert_eq!(shrunk.violations, ["linearizable"]);
    assert_eq!((shrunk.faults_before, shrunk.faults_after), (2, 0), "{steps:?}");
    assert!(shrunk.duration_after < shrunk.duration_before, "{steps:?}");
    assert!(shrunk.clients_after < 3, "{steps:?}");
    let reloaded = load(&shrunk.text);
    let outcome = run_seed(&reloaded, reloaded.scenario.seed, RunOptions::default()).expect("run");
    assert_eq!(outcome.violated_checks(), ["linearizable"], "the shrunk file fails on its own");
    assert!(!outcome.outcome_ok(), "it expects a pass, like the original");
}

/// BASE with `checks` replaced and `extra` appended.
fn with_checks(checks: &str, extra: &str) -> String {
    format!("{}{extra}", BASE.replace("checks = [\"linearizable\"]", &format!("checks = [{checks}]")))
}

/// The verdict of each check of one run of `text` with seed 7.
fn verdicts(text: &str) -> Vec<(String, detsim_check::Validity)> {
    let outcome = run_seed(&load(text), 7, RunOptions::default()).expect("the run completes");
    outcome.checks.iter().map(|c| (c.name.clone(), c.valid)).collect()
}

#[test]
fn faults_may_name_the_extra_nodes_the_simulation_has() {
    let observer = "[cluster.params]\nobserver = true\n";
    let crash = "[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"observer\"\nduration = \"1s\"\n";
    let loaded = load(&format!("{BASE}{observer}{crash}"));
    let outcome = run_seed(&loaded, 7, RunOptions::default()).expect("the run completes");
    assert_eq!(outcome.nodes.last().map(String::as_str), Some("observer"));
    let windows: Vec<&str> = outcome.fault_windows.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(windows, ["crash observer"]);
    let plan = detsim_scenario::Plan::new(&loaded, 7).expect("plan");
    assert_eq!(plan.node_names, ["n1", "n2", "n3", "c1", "c2", "c3", "observer"]);
    // A partition group and a nemesis target may name it too.
    let partition = "[[faults]]\nat = \"1s\"\nkind = \"partition\"\ngroups = [[\"n1\", \"observer\"], [\"n2\"]]\n";
    load(&format!("{BASE}{observer}{partition}"));
    let nemesis =
        "[nemesis]\nfaults = [\"crash\"]\ntargets = [\"observer\"]\ninterval = \"1s\"\nfault_duration = \"500ms\"\n";
    let outcome = run_seed(&load(&format!("{BASE}{observer}{nemesis}")), 7, RunOptions::default()).expect("run");
    assert!(outcome.fault_windows.iter().all(|(kind, _, _)| kind == "crash observer"), "{:?}", outcome.fault_windows);
    assert!(!outcome.fault_windows.is_empty());

    // Without the extra node (or with a name nothing has), the error is placed at the name and
    // lists every node the simulation has.
    let base_lines = BASE.lines().count();
    check_error(
        crash,
        &format!("{}:8", base_lines + 4),
        "no node named \"observer\": the simulation has n1..n3, c1..c3",
    );
    let text = format!("{BASE}{observer}{}", partition.replace("\"observer\"", "\"nobody\""));
    let error = load_str(&text, "bad.toml", "bad", &toy_registry()).expect_err("no node named nobody");
    assert_eq!(
        error.diagnostics[0].to_string(),
        format!(
            "bad.toml:{}:18: no node named \"nobody\": the simulation has n1..n3, c1..c3, observer",
            base_lines + 6
        )
    );
    assert_eq!(error.diagnostics.len(), 1, "{error}");
}

#[test]
fn consistency_checks_beyond_linearizability_give_their_verdicts() {
    use detsim_check::Validity::{Invalid, Unknown, Valid};
    let names = |v: &[(String, detsim_check::Validity)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    // "session" stands for its four guarantees, each reported on its own.
    let correct =
        verdicts(&with_checks("\"sequential\", \"causal\", \"eventual\", \"session\"", "updates_until = \"4s\"\n"));
    assert_eq!(
        names(&correct),
        [
            "sequential",
            "causal",
            "eventual",
            "read-your-writes",
            "monotonic-reads",
            "monotonic-writes",
            "writes-follow-reads"
        ]
    );
    assert!(correct.iter().all(|(_, v)| *v == Valid), "a single copy is consistent: {correct:?}");

    // Replicas that serve reads before they hear of a write: stale reads, reads that go back in
    // time, and no convergence either: replicas apply replicated writes in arrival order, which
    // the network does not keep, so once writes stop they can hold different values.
    let stale = "updates_until = \"4s\"\n[cluster.params]\nstale_reads = true\n";
    let text = with_checks("\"linearizable\", \"eventual\", \"monotonic-reads\"", stale);
    let stale_verdicts = verdicts(&text);
    assert_eq!(stale_verdicts[0], ("linearizable".to_string(), Invalid));
    assert_eq!(stale_verdicts[1], ("eventual".to_string(), Invalid), "{stale_verdicts:?}");
    let outcome = run_seed(&load(&text), 7, RunOptions::default()).expect("run");
    assert!(outcome.checks[1].report.contains("not-converged"), "{}", outcome.checks[1].report);
    assert_eq!(stale_verdicts[2], ("monotonic-reads".to_string(), Invalid), "{stale_verdicts:?}");

    // Transactional checks on a history without transactions, and measured checks on a history
    // without measurement events: unknown, never a pass or a violation.
    let other = verdicts(&with_checks("\"strict-serializable\", \"broadcast-delivery\", \"lookups\"", ""));
    assert!(other.iter().all(|(_, v)| *v == Unknown), "{other:?}");
}

#[test]
fn cap_metric_checks_hold_their_thresholds() {
    use detsim_check::Validity::{Invalid, Valid};
    // A pause (a crash would lose the toy server's volatile value: stale reads).
    let crash = "[[faults]]\nat = \"1s\"\nkind = \"pause\"\nnode = \"n1\"\nduration = \"1s\"\n";
    let checks = "\"stale-reads\", \"latency\", \"unknown-outcomes\"";
    let tight = format!("[check]\nmax_latency_p99 = \"1ms\"\n{crash}");
    assert_eq!(
        verdicts(&with_checks(checks, &tight)),
        [("stale-reads".into(), Valid), ("latency".into(), Invalid), ("unknown-outcomes".into(), Invalid)]
    );
    let loose = "[check]\nmax_latency_p99 = \"100ms\"\nmax_latency = \"1s\"\n";
    assert_eq!(
        verdicts(&with_checks(checks, loose)),
        [("stale-reads".into(), Valid), ("latency".into(), Valid), ("unknown-outcomes".into(), Valid)]
    );
    // Stale replicas: stale reads, but none staler than a second.
    let stale = "[cluster.params]\nstale_reads = true\n";
    let v = verdicts(&with_checks("\"stale-reads\"", stale));
    assert_eq!(v, [("stale-reads".into(), Invalid)]);
    let v = verdicts(&with_checks("\"stale-reads\"", &format!("[check]\nmax_staleness = \"1s\"\n{stale}")));
    assert_eq!(v, [("stale-reads".into(), Valid)]);

    // The run reports the CAP figures whatever the checks: inside and outside the fault window.
    let outcome = run_seed(&load(&format!("{BASE}{crash}")), 7, RunOptions::default()).expect("run");
    let cap = outcome.cap.clone().expect("a client workload has CAP figures");
    let inside = cap["inside_faults"]["success_fraction"].as_f64().expect("ops inside the crash");
    let outside = cap["outside_faults"]["success_fraction"].as_f64().expect("ops outside");
    assert!(inside <= 0.5 && outside > 0.95, "inside {inside}, outside {outside}");
    assert!(cap["unknown_outcomes"].as_u64().expect("count") >= 3, "{cap}");
    assert!(outcome.to_json()["cap"]["latency"]["p99_ns"].as_u64().is_some());
    // A sweep's row carries the stale reads, and the availability check's figure only with the check.
    let summary = outcome.summary_json();
    assert_eq!(summary["stale_reads"], cap["stale_reads"]);
    assert!(summary.get("availability_check").is_none(), "no availability check: {summary}");
    let windowed =
        format!("[check]\nmin_availability = 0.9\navailability_from = \"1s\"\navailability_until = \"2s\"\n{crash}");
    let checked = run_seed(&load(&with_checks("\"availability\"", &windowed)), 7, RunOptions::default()).expect("run");
    let during = checked.summary_json()["availability_check"].as_f64().expect("the check's figure");
    assert!(during <= 0.5, "inside the crash window only: {during}");
    assert!(checked.availability > during + 0.2, "overall {} is not the check's {during}", checked.availability);

    // A threshold check without its threshold is bad input, placed at `checks`.
    for (check, needs) in [("latency", "max_latency_p99"), ("clock-sync", "max_clock_error")] {
        let error = load_str(&with_checks(&format!("\"{check}\""), ""), "t.toml", "t", &toy_registry())
            .expect_err("a threshold is missing");
        assert!(error.to_string().starts_with("t.toml:6:10: ") && error.to_string().contains(needs), "{error}");
    }
}

#[test]
fn without_a_clocks_section_the_protocol_draws_the_clocks() {
    let plain = "duration = \"1s\"\n[cluster]\nprotocol = \"toy-register\"\n[workload]\nclients = 1\n";
    let plan = detsim_scenario::Plan::new(&load(plain), 3).expect("plan");
    assert!(plan.spec.clocks.is_empty(), "no [clocks]: the protocol's own draws apply: {:?}", plan.spec.clocks);
    let skewed = format!("{plain}[clocks]\nskew = \"5ms\"\n");
    let plan = detsim_scenario::Plan::new(&load(&skewed), 3).expect("plan");
    assert_eq!(plan.spec.clocks.len(), 4, "[clocks] decides for every server and client");
    let perfect = detsim_core::LocalClock::new(0, 0.0);
    assert!(plan.spec.clocks.iter().any(|clock| *clock != perfect), "{:?}", plan.spec.clocks);
}
