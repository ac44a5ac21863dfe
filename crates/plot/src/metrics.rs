//! Figures computed from operations: time buckets, quantiles, throughput and availability per bucket,
//! and stale reads (a read that returned a value already overwritten before it began).

use std::collections::BTreeMap;

use detsim_core::history::Value;

use crate::data::{FaultWindow, OpSpan, Outcome};

/// A round bucket width (1, 2 or 5 × 10^k ns) giving about `target_buckets` buckets over `span_ns`.
pub fn bucket_width_ns(span_ns: u64, target_buckets: u64) -> u64 {
    assert!(target_buckets > 0, "at least one bucket");
    let raw = (span_ns / target_buckets).max(1);
    let mut magnitude: u64 = 1;
    while magnitude.saturating_mul(10) <= raw {
        magnitude *= 10;
    }
    for step in [1, 2, 5, 10] {
        if magnitude.saturating_mul(step) >= raw {
            return magnitude.saturating_mul(step);
        }
    }
    unreachable!("step 10 always reaches raw")
}

/// The `q`-quantile (0..=1) of sorted values, nearest-rank; `None` when empty.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "quantile needs sorted input");
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.saturating_sub(1).min(sorted.len() - 1)])
}

/// Latency quantiles of the ok operations invoked in one bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileBucket {
    pub start_ns: u64,
    pub count: usize,
    pub p50_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

pub fn latency_quantiles(ops: &[OpSpan], bucket_ns: u64) -> Vec<QuantileBucket> {
    let mut by_bucket: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.outcome == Outcome::Ok) {
        let end = op.end_ns.expect("ok operations completed");
        by_bucket.entry(op.start_ns / bucket_ns).or_default().push(end - op.start_ns);
    }
    by_bucket
        .into_iter()
        .map(|(bucket, mut latencies)| {
            latencies.sort_unstable();
            QuantileBucket {
                start_ns: bucket * bucket_ns,
                count: latencies.len(),
                p50_ns: quantile(&latencies, 0.50).expect("non-empty"),
                p95_ns: quantile(&latencies, 0.95).expect("non-empty"),
                p99_ns: quantile(&latencies, 0.99).expect("non-empty"),
                max_ns: *latencies.last().expect("non-empty"),
            }
        })
        .collect()
}

/// Operations per bucket by outcome.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutcomeCounts {
    pub ok: u64,
    pub fail: u64,
    pub unknown: u64,
}

impl OutcomeCounts {
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.unknown
    }
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Unknown => self.unknown += 1,
        }
    }
}

/// Completions per bucket (by completion time); operations that never completed are not counted.
pub fn throughput(ops: &[OpSpan], bucket_ns: u64, end_ns: u64) -> Vec<OutcomeCounts> {
    let mut buckets = vec![OutcomeCounts::default(); end_ns.div_ceil(bucket_ns).max(1) as usize];
    for op in ops {
        if let Some(end) = op.end_ns {
            let index = ((end / bucket_ns) as usize).min(buckets.len() - 1);
            buckets[index].add(op.outcome);
        }
    }
    buckets
}

/// Operations per bucket by invocation time and outcome: the availability of a bucket is its ok
/// fraction. Operations the end of the run cut short (never completed) are left out, as run.json's
/// availability leaves them out: they did not fail, the run just stopped.
pub fn outcomes_by_invocation(ops: &[OpSpan], bucket_ns: u64, end_ns: u64) -> Vec<OutcomeCounts> {
    let mut buckets = vec![OutcomeCounts::default(); end_ns.div_ceil(bucket_ns).max(1) as usize];
    for op in ops.iter().filter(|op| op.end_ns.is_some()) {
        let index = ((op.start_ns / bucket_ns) as usize).min(buckets.len() - 1);
        buckets[index].add(op.outcome);
    }
    buckets
}

/// The fraction of completed operations that completed ok (operations the end of the run cut short
/// are left out, as in run.json), `None` without completed operations.
pub fn availability(ops: &[OpSpan]) -> Option<f64> {
    let completed = ops.iter().filter(|op| op.end_ns.is_some()).count();
    if completed == 0 {
        return None;
    }
    Some(ops.iter().filter(|op| op.outcome == Outcome::Ok).count() as f64 / completed as f64)
}

/// Whether an operation was invoked inside some fault window.
pub fn invoked_during_faults(op: &OpSpan, windows: &[FaultWindow]) -> bool {
    windows.iter().any(|w| op.start_ns >= w.start_ns && w.end_ns.is_none_or(|end| op.start_ns < end))
}

fn is_read(f: &str) -> bool {
    matches!(f, "read" | "get" | "r")
}
fn is_write(f: &str) -> bool {
    matches!(f, "write" | "put" | "w")
}

/// Reads and stale reads of a register workload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StaleReads {
    /// Reads that completed ok.
    pub reads_ok: u64,
    /// Of those, reads that returned a value some acknowledged write had overwritten before the read
    /// was invoked: a stale read, which no linearizable register allows.
    pub stale: u64,
}

/// Counts stale reads, per key, conservatively: a read of `v` is stale when `v`'s write (or the initial
/// nil) completed before another acknowledged write was invoked, and that write completed before the
/// read was invoked. Needs distinct written values per key; duplicated values are never called stale.
pub fn stale_reads(ops: &[OpSpan]) -> StaleReads {
    // Per key: each acknowledged write's (start, end, value).
    let mut writes_by_key: BTreeMap<Option<Value>, Vec<(u64, u64, &Value)>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.outcome == Outcome::Ok && is_write(&op.f)) {
        let end = op.end_ns.expect("ok operations completed");
        writes_by_key.entry(op.key.clone()).or_default().push((op.start_ns, end, &op.invoke_value));
    }
    let mut result = StaleReads::default();
    for read in ops.iter().filter(|op| op.outcome == Outcome::Ok && is_read(&op.f)) {
        result.reads_ok += 1;
        let writes = writes_by_key.get(&read.key).map(Vec::as_slice).unwrap_or(&[]);
        let value = &read.result_value;
        // When was the value read last written (completion)? `None`: the initial nil.
        let candidates: Vec<&(u64, u64, &Value)> = writes.iter().filter(|w| w.2 == value).collect();
        if candidates.len() > 1 {
            continue; // the same value written twice: cannot tell which write the read saw.
        }
        let written_end = match candidates.first() {
            Some(write) => Some(write.1),
            None if value.is_nil() => None,
            None => continue, // a value nobody acknowledged writing (maybe an unknown-outcome write)
        };
        let overwritten = writes
            .iter()
            .any(|w| w.2 != value && written_end.is_none_or(|written| written < w.0) && w.1 < read.start_ns);
        if overwritten {
            result.stale += 1;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(f: &str, start: u64, end: Option<u64>, outcome: Outcome, invoke: Value, result: Value) -> OpSpan {
        OpSpan {
            process: 0,
            f: f.into(),
            key: None,
            invoke_value: invoke,
            result_value: result,
            start_ns: start,
            end_ns: end,
            outcome,
        }
    }

    #[test]
    fn bucket_widths_are_round_and_near_the_target() {
        assert_eq!(bucket_width_ns(30_000_000_000, 60), 500_000_000);
        assert_eq!(bucket_width_ns(1_000, 60), 20);
        assert_eq!(bucket_width_ns(0, 60), 1);
        assert_eq!(bucket_width_ns(7_000_000, 7), 1_000_000);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), Some(50));
        assert_eq!(quantile(&values, 0.99), Some(99));
        assert_eq!(quantile(&values, 1.0), Some(100));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn a_read_of_an_overwritten_value_is_stale_and_a_concurrent_one_is_not() {
        let w1 = op("write", 0, Some(10), Outcome::Ok, Value::Int(1), Value::Int(1));
        let w2 = op("write", 20, Some(30), Outcome::Ok, Value::Int(2), Value::Int(2));
        let stale = op("read", 40, Some(50), Outcome::Ok, Value::Nil, Value::Int(1));
        let concurrent = op("read", 25, Some(35), Outcome::Ok, Value::Nil, Value::Int(1));
        let fresh = op("read", 40, Some(50), Outcome::Ok, Value::Nil, Value::Int(2));
        let initial_stale = op("read", 40, Some(50), Outcome::Ok, Value::Nil, Value::Nil);
        let counts = stale_reads(&[w1, w2, stale, concurrent, fresh, initial_stale]);
        assert_eq!(counts, StaleReads { reads_ok: 4, stale: 2 });
    }
}
