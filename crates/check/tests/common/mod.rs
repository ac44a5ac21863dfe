//! Test helpers: a compact history notation, one operation record a line.
//!
//! `0 invoke write @x 1` is process 0 invoking `write` of 1 on key "x" (the `@key` part is optional;
//! the value is EDN and may be left out). Record times are line numbers, so order is real time.

#![allow(dead_code)]

use detsim_check::{operations, parse_history, Format, Operation, Verdict};
use detsim_core::history::History;

/// Parses the notation into a history.
pub fn history(text: &str) -> History {
    let mut edn = String::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with("//")) {
        let mut parts = line.splitn(4, ' ');
        let process = parts.next().expect("a process");
        let kind = parts.next().expect("a type");
        let f = parts.next().expect("a function");
        let rest = parts.next().unwrap_or("").trim();
        let (key, value) = match rest.strip_prefix('@') {
            Some(rest) => {
                let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
                (format!(", :key \"{key}\""), value.trim())
            }
            None => (String::new(), rest),
        };
        let value = if value.is_empty() { "nil" } else { value };
        edn.push_str(&format!("{{:process {process}, :type :{kind}, :f :{f}{key}, :value {value}}}\n"));
    }
    parse_history(&edn, Some(Format::Edn)).unwrap_or_else(|error| panic!("test history does not parse: {error}\n{edn}"))
}

/// Parses the notation into operations.
pub fn ops(text: &str) -> Vec<Operation> {
    operations(&history(text)).expect("test histories are well formed")
}

/// The names of a verdict's anomalies.
pub fn names(verdict: &Verdict) -> Vec<String> {
    verdict.anomalies.iter().map(|anomaly| anomaly.name.clone()).collect()
}
