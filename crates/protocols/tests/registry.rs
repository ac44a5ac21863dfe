//! Every protocol in the registry, checked the same way: with default parameters it builds for
//! each workload it says it serves and runs; a spec it cannot serve, an unknown parameter or
//! parameters that are not a table are refused with an error that says what is wrong, never a
//! panic.

use detsim_core::{AnySimulation, SimTime};
use detsim_protocols::{ClusterSpec, ProtocolEntry, WorkloadKind, WorkloadSpec};
use serde_json::json;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Server counts tried for each entry (some serve exactly one server, some need two or more).
const NODE_COUNTS: std::ops::RangeInclusive<usize> = 1..=5;

/// Builds `entry` for `spec`, turning a panic into a failure that names the entry.
fn build(entry: &ProtocolEntry, spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    match catch_unwind(AssertUnwindSafe(|| (entry.build)(spec))) {
        Ok(result) => result,
        Err(_) => panic!(
            "{}: building with {} servers, workload {:?}, params {} panicked instead of returning an error",
            entry.name, spec.nodes, spec.workload.kind, spec.params
        ),
    }
}

fn spec(nodes: usize, kind: WorkloadKind, params: serde_json::Value) -> ClusterSpec {
    let mut spec = ClusterSpec::new(1, nodes, WorkloadSpec { kind, ..WorkloadSpec::default() });
    spec.params = params;
    spec
}

/// The server counts at which `entry` builds with default parameters and its default workload;
/// every other count must be an error with a message.
fn buildable_sizes(entry: &ProtocolEntry) -> Vec<usize> {
    let kind = entry.workloads[0];
    NODE_COUNTS
        .filter(|&nodes| match build(entry, &spec(nodes, kind, json!({}))) {
            Ok(_) => true,
            Err(error) => {
                assert!(!error.trim().is_empty(), "{}: {nodes} servers refused with an empty error", entry.name);
                false
            }
        })
        .collect()
}

#[test]
fn the_registry_names_every_protocol_once_with_a_description_and_workloads() {
    let registry = detsim_protocols::registry();
    assert!(registry.len() >= 25, "the registry lost entries: {}", registry.len());
    for entry in &registry {
        assert!(!entry.description.is_empty(), "{}: no description", entry.name);
        assert!(!entry.workloads.is_empty(), "{}: serves no workload", entry.name);
        assert!(detsim_protocols::find(entry.name).is_some(), "{}: find does not see it", entry.name);
    }
    assert!(detsim_protocols::find("no-such-protocol").is_none());
}

#[test]
fn every_protocol_builds_and_runs_with_default_parameters_for_each_workload_it_serves() {
    for entry in detsim_protocols::registry() {
        let sizes = buildable_sizes(&entry);
        let Some(&nodes) = sizes.first() else {
            panic!("{}: builds with default parameters at none of {NODE_COUNTS:?} servers", entry.name);
        };
        for &kind in entry.workloads {
            // `null` and `{}` both mean "every parameter at its default".
            for params in [serde_json::Value::Null, json!({})] {
                let mut sim = build(&entry, &spec(nodes, kind, params.clone()))
                    .unwrap_or_else(|e| panic!("{}: {nodes} servers, {kind:?}, params {params}: {e}", entry.name));
                let stats = sim
                    .run_until(SimTime::from_millis(300))
                    .unwrap_or_else(|e| panic!("{}: {nodes} servers, {kind:?}: the run failed: {e}", entry.name));
                assert!(stats.events > 0, "{}: {nodes} servers, {kind:?}: nothing happened", entry.name);
            }
        }
    }
}

#[test]
fn every_protocol_rejects_an_unknown_parameter_by_name() {
    for entry in detsim_protocols::registry() {
        let nodes = *buildable_sizes(&entry).first().expect("checked by the default-parameters test");
        let kind = entry.workloads[0];
        let params = json!({ "no_such_parameter": 1 });
        match build(&entry, &spec(nodes, kind, params)) {
            Ok(_) => panic!("{}: an unknown parameter was accepted", entry.name),
            Err(error) => assert!(
                error.contains("no_such_parameter"),
                "{}: the error for an unknown parameter does not name it: {error}",
                entry.name
            ),
        }
    }
}

#[test]
fn every_protocol_rejects_parameters_that_are_not_a_table() {
    for entry in detsim_protocols::registry() {
        let nodes = *buildable_sizes(&entry).first().expect("checked by the default-parameters test");
        for params in [json!(5), json!("fast"), json!([1, 2])] {
            let result = build(&entry, &spec(nodes, entry.workloads[0], params.clone()));
            let error = result.err().unwrap_or_else(|| panic!("{}: params {params} were accepted", entry.name));
            assert!(!error.trim().is_empty(), "{}: params {params} refused with an empty error", entry.name);
        }
    }
}

#[test]
fn every_protocol_refuses_a_workload_it_does_not_serve_without_panicking() {
    let kinds = [
        WorkloadKind::Register,
        WorkloadKind::KeyValue,
        WorkloadKind::Counter,
        WorkloadKind::Set,
        WorkloadKind::ListAppend,
        WorkloadKind::RwRegister,
        WorkloadKind::None,
    ];
    for entry in detsim_protocols::registry() {
        let nodes = *buildable_sizes(&entry).first().expect("checked by the default-parameters test");
        for kind in kinds.into_iter().filter(|k| !entry.workloads.contains(k)) {
            // Refusing is not required (a protocol may ignore the client workload), panicking is
            // forbidden, and a refusal says why.
            if let Err(error) = build(&entry, &spec(nodes, kind, json!({}))) {
                assert!(!error.trim().is_empty(), "{}: {kind:?} refused with an empty error", entry.name);
            }
        }
    }
}
