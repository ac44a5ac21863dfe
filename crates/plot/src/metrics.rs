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

/// Availability as the clients saw it, per bucket: for each client, the share of the time it spent
/// in (completed) operations that went to operations that succeeded, then the mean over the clients
/// that spent time in operations in the bucket (`None` when none did). A client stuck in timeouts
/// counts as much as a busy one, however few operations it managed to invoke.
pub fn client_time_availability(ops: &[OpSpan], bucket_ns: u64, end_ns: u64) -> Vec<Option<f64>> {
    assert!(bucket_ns > 0, "buckets have a width");
    let buckets = end_ns.div_ceil(bucket_ns).max(1) as usize;
    // Per client and bucket: (time in ok operations, time in operations), ns.
    let mut by_client: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for op in ops {
        let Some(op_end) = op.end_ns else { continue };
        let times = by_client.entry(op.client.as_str()).or_insert_with(|| vec![(0, 0); buckets]);
        let (start, end) = (op.start_ns.min(end_ns), op_end.min(end_ns));
        let mut t = start;
        while t < end {
            let index = ((t / bucket_ns) as usize).min(buckets - 1);
            let bucket_end = ((index as u64 + 1) * bucket_ns).min(end).max(t + 1);
            let span = bucket_end - t;
            times[index].1 += span;
            if op.outcome == Outcome::Ok {
                times[index].0 += span;
            }
            t = bucket_end;
        }
    }
    (0..buckets)
        .map(|index| {
            let shares: Vec<f64> = by_client
                .values()
                .filter(|times| times[index].1 > 0)
                .map(|times| times[index].0 as f64 / times[index].1 as f64)
                .collect();
            (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64)
        })
        .collect()
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

/// The value an operation writes, if it is a write (`write`/`put`: its value; `cas`: the new value of
/// its `[old, new]` pair).
fn written_value(op: &OpSpan) -> Option<&Value> {
    match op.f.as_str() {
        "write" | "put" | "w" => Some(&op.invoke_value),
        "cas" => match &op.invoke_value {
            Value::List(pair) if pair.len() == 2 => Some(&pair[1]),
            _ => None,
        },
        _ => None,
    }
}

/// Reads and stale reads of a register workload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StaleReads {
    /// Reads that completed ok.
    pub reads_ok: u64,
    /// Of those, reads that returned a value every write of which (or the initial nil) had been
    /// overwritten by an acknowledged write before the read was invoked: a stale read, which no
    /// linearizable register allows.
    pub stale: u64,
}

/// A write as the stale-read count sees it.
struct WriteSpan<'a> {
    start_ns: u64,
    /// `None`: the outcome is unknown (it may have taken effect at any time after its start).
    end_ns: Option<u64>,
    acknowledged: bool,
    value: &'a Value,
}

/// Counts stale reads, per key, soundly: a read of `v` is stale when every write that may have
/// written `v` (acknowledged or of unknown outcome; the initial nil for a nil read) completed before
/// some acknowledged write of another value was invoked, and that write completed before the read was
/// invoked. Then in any order consistent with real time a newer value was in place when the read
/// began. Failed writes never took effect and are left out.
pub fn stale_reads(ops: &[OpSpan]) -> StaleReads {
    let mut writes_by_key: BTreeMap<Option<Value>, Vec<WriteSpan<'_>>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.outcome != Outcome::Fail) {
        if let Some(value) = written_value(op) {
            let acknowledged = op.outcome == Outcome::Ok;
            let end_ns = if acknowledged { op.end_ns } else { None };
            writes_by_key.entry(op.key.clone()).or_default().push(WriteSpan {
                start_ns: op.start_ns,
                end_ns,
                acknowledged,
                value,
            });
        }
    }
    let mut result = StaleReads::default();
    for read in ops.iter().filter(|op| op.outcome == Outcome::Ok && is_read(&op.f)) {
        result.reads_ok += 1;
        let writes = writes_by_key.get(&read.key).map(Vec::as_slice).unwrap_or(&[]);
        let value = &read.result_value;
        // Whether some acknowledged write of another value ran entirely after `after_ns` and before
        // the read began.
        let overwritten_after = |after_ns: Option<u64>| {
            writes.iter().any(|w| {
                w.acknowledged
                    && w.value != value
                    && after_ns.is_none_or(|after| after < w.start_ns)
                    && w.end_ns.is_some_and(|end| end < read.start_ns)
            })
        };
        let sources: Vec<&WriteSpan<'_>> = writes.iter().filter(|w| w.value == value).collect();
        let stale = if sources.is_empty() {
            // Only the initial nil can be read without a write; any other value has a source we
            // did not see (a foreign history), so nothing can be said.
            value.is_nil() && overwritten_after(None)
        } else {
            let initial_too = value.is_nil() && overwritten_after(None);
            let every_source_overwritten =
                sources.iter().all(|w| w.end_ns.is_some_and(|end| overwritten_after(Some(end))));
            every_source_overwritten && (!value.is_nil() || initial_too)
        };
        if stale {
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
            client: "c1".into(),
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
        let early_nil = op("read", 5, Some(8), Outcome::Ok, Value::Nil, Value::Nil);
        let counts = stale_reads(&[w1, w2, stale, concurrent, fresh, initial_stale, early_nil]);
        assert_eq!(counts, StaleReads { reads_ok: 5, stale: 2 });
    }

    #[test]
    fn a_value_written_twice_is_stale_only_when_both_writes_were_overwritten() {
        let first = op("write", 0, Some(10), Outcome::Ok, Value::Int(7), Value::Int(7));
        let other = op("write", 20, Some(30), Outcome::Ok, Value::Int(8), Value::Int(8));
        let again = op("write", 40, Some(45), Outcome::Ok, Value::Int(7), Value::Int(7));
        let read = op("read", 50, Some(60), Outcome::Ok, Value::Nil, Value::Int(7));
        assert_eq!(
            stale_reads(&[first.clone(), other.clone(), again.clone(), read.clone()]).stale,
            0,
            "the second 7 is current"
        );
        let newest = op("write", 46, Some(48), Outcome::Ok, Value::Int(9), Value::Int(9));
        assert_eq!(stale_reads(&[first, other, again, newest, read]).stale, 1, "both 7s were overwritten");
    }

    #[test]
    fn writes_of_unknown_outcome_may_take_effect_late_and_cas_writes_its_new_value() {
        let acked = op("write", 0, Some(10), Outcome::Ok, Value::Int(1), Value::Int(1));
        let unknown = op("write", 5, None, Outcome::Unknown, Value::Int(1), Value::Nil);
        let newer = op("write", 20, Some(30), Outcome::Ok, Value::Int(2), Value::Int(2));
        let read = op("read", 40, Some(50), Outcome::Ok, Value::Nil, Value::Int(1));
        assert_eq!(
            stale_reads(&[acked.clone(), unknown, newer.clone(), read.clone()]).stale,
            0,
            "the unknown write may land late"
        );
        let failed = op("write", 5, Some(8), Outcome::Fail, Value::Int(1), Value::Int(1));
        assert_eq!(stale_reads(&[acked, failed, newer, read.clone()]).stale, 1, "a failed write never took effect");
        let cas = op("cas", 0, Some(10), Outcome::Ok, Value::List(vec![Value::Nil, Value::Int(1)]), Value::Nil);
        let newer = op("write", 20, Some(30), Outcome::Ok, Value::Int(2), Value::Int(2));
        assert_eq!(stale_reads(&[cas, newer, read]).stale, 1, "cas [nil, 1] wrote 1");
    }

    #[test]
    fn client_time_availability_weighs_clients_not_operations() {
        let client = |name: &str, start: u64, end: u64, outcome: Outcome| OpSpan {
            client: name.into(),
            ..op("read", start, Some(end), outcome, Value::Nil, Value::Nil)
        };
        // c1 spends 0..100 in one timed-out operation; c2 does ten quick ok ones.
        let mut ops = vec![client("c1", 0, 100, Outcome::Unknown)];
        ops.extend((0..10).map(|i| client("c2", i * 10, i * 10 + 5, Outcome::Ok)));
        let by_bucket = client_time_availability(&ops, 50, 200);
        assert_eq!(by_bucket, [Some(0.5), Some(0.5), None, None], "the stuck client is half the picture");
        assert!((availability(&ops).expect("ops") - 10.0 / 11.0).abs() < 1e-12, "by operations it looks fine");
        // An operation across a bucket boundary counts in both, by the time it spent in each.
        let straddling = [client("c1", 40, 60, Outcome::Ok), client("c2", 0, 100, Outcome::Fail)];
        assert_eq!(client_time_availability(&straddling, 50, 100), [Some(0.5), Some(0.5)]);
    }
}
