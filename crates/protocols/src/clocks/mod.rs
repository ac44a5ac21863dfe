//! Clocks: Lamport and vector clocks as library types ([`lamport`], [`vector`]), and two clock
//! synchronisation protocols measured against true time: Cristian's NTP-style probing of a reference
//! server ([`cristian`], registry name `ntp`) and the Berkeley algorithm's fault-tolerant averaging
//! ([`berkeley`], registry name `berkeley`).
//!
//! # The software clock
//! A node cannot set the simulator's clock: `ctx.now()` is its hardware oscillator, skewed and
//! drifting. Like an operating system's clock discipline, each synchronising node keeps a
//! *correction* and reads `corrected = local + correction`; a protocol round changes the correction
//! (a step). ntpd slews small corrections instead, to keep time monotonic; a step changes how the
//! error falls, not the bound it falls to.
//!
//! # What a run records
//! History measurement events (see [`crate::gossip::events`]), in true time:
//! - `clock` every `sample_ms` at every node, key = node index, value = `[corrected_ns, rounds]`
//!   where `rounds` counts the corrections applied since the node (re)started. The error of the
//!   node's clock at that instant is `corrected_ns - time_ns`; [`clock_readings`] computes it and
//!   [`error_windows`] summarises it over time (worst error and spread between nodes).
//! - `sync` at a client when it applies a correction (Cristian) or an adjustment (Berkeley), key =
//!   node index, value = `[rtt_ns, step_ns, age_ns]`: the round trip of the sample used, the change
//!   of correction, and how long ago (local time) that sample was taken. [`sync_events`] reads them.
//!
//! # Initial clocks
//! A node whose clock the cluster spec does not give (no entry in `ClusterSpec::clocks`) gets one
//! drawn from the run seed: skew uniform in `±skew_ms_max`, drift uniform in `±drift_ppm_max`
//! ([`drawn_clocks`]). Cristian's reference server (`n1`) keeps a perfect clock unless the spec
//! gives it one.

pub mod berkeley;
pub mod cristian;
pub mod lamport;
pub mod vector;

use crate::gossip::events::{instant_events, record_instant};
use crate::spec::{ClusterSpec, ProtocolEntry};
use detsim_core::history::{History, Value};
use detsim_core::rng::{derive_stream, StreamPurpose};
use detsim_core::{Ctx, LocalClock, Message};
use rand::RngExt;
use std::collections::BTreeMap;

/// The scenario-runnable configurations of this protocol family.
pub fn entries() -> Vec<ProtocolEntry> {
    let mut entries = cristian::entries();
    entries.extend(berkeley::entries());
    entries
}

/// Stream index of the clock draws ("clocks"), apart from every node's own stream.
const CLOCK_STREAM: u64 = 0xC10C;

/// The clock of each of `spec.nodes` nodes: the spec's where it gives one, otherwise drawn from the
/// run seed with skew in `±skew_ms_max` and drift in `±drift_ppm_max`. Nodes in `perfect` (by index)
/// that the spec leaves out get a perfect clock instead. Every node's draw is made whether or not it
/// is used, so that one node's explicit clock does not change the others'.
pub fn drawn_clocks(spec: &ClusterSpec, skew_ms_max: f64, drift_ppm_max: f64, perfect: &[usize]) -> Vec<LocalClock> {
    let mut rng = derive_stream(spec.seed, StreamPurpose::Workload, CLOCK_STREAM);
    (0..spec.nodes)
        .map(|i| {
            let skew_ns = (rng.random_range(-1.0..=1.0) * skew_ms_max * 1e6).round() as i64;
            let drift_ppm = rng.random_range(-1.0..=1.0) * drift_ppm_max;
            match spec.clocks.get(i) {
                Some(clock) => clock.clone(),
                None if perfect.contains(&i) => LocalClock::new(0, 0.0),
                None => LocalClock::new(skew_ns, drift_ppm),
            }
        })
        .collect()
}

/// Checks the parameters shared by the synchronisation protocols.
fn validate_clock_draws(skew_ms_max: f64, drift_ppm_max: f64, sample_ms: u64) -> Result<(), String> {
    if !(skew_ms_max.is_finite() && skew_ms_max >= 0.0) {
        return Err(format!("skew_ms_max must be a finite, non-negative number, got {skew_ms_max}"));
    }
    if !(drift_ppm_max.is_finite() && (0.0..100_000.0).contains(&drift_ppm_max)) {
        return Err(format!("drift_ppm_max must be in [0, 100000), got {drift_ppm_max}"));
    }
    if sample_ms == 0 {
        return Err("sample_ms must be positive".into());
    }
    Ok(())
}

/// A node's software clock: its hardware reading plus a correction the protocol maintains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoftwareClock {
    pub correction_ns: i64,
    /// Corrections applied since the node (re)started.
    pub rounds: u64,
}

impl SoftwareClock {
    /// The corrected reading now.
    pub fn read<M: Message>(&self, ctx: &Ctx<'_, M>) -> i64 {
        ctx.now().as_nanos().saturating_add(self.correction_ns)
    }

    /// Applies a step of `step_ns` and records the `sync` event.
    pub fn step<M: Message>(&mut self, ctx: &mut Ctx<'_, M>, step_ns: i64, rtt_ns: i64, age_ns: i64) {
        self.correction_ns = self.correction_ns.saturating_add(step_ns);
        self.rounds += 1;
        let node = ctx.id().0 as i64;
        let value = Value::List(vec![Value::Int(rtt_ns), Value::Int(step_ns), Value::Int(age_ns)]);
        record_instant(ctx, "sync", Value::Int(node), value);
    }

    /// Records the `clock` measurement event.
    pub fn sample<M: Message>(&self, ctx: &mut Ctx<'_, M>) {
        let node = ctx.id().0 as i64;
        let value = Value::List(vec![Value::Int(self.read(ctx)), Value::Int(self.rounds as i64)]);
        record_instant(ctx, "clock", Value::Int(node), value);
    }
}

/// One `clock` reading: a node's corrected clock against true time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockReading {
    pub time_ns: u64,
    pub node: u32,
    /// Corrected clock minus true time.
    pub error_ns: i64,
    /// Corrections applied since the node (re)started (0: not synchronised yet).
    pub rounds: u64,
}

/// Every `clock` reading of a run, in time order.
pub fn clock_readings(history: &History) -> Vec<ClockReading> {
    instant_events(history, "clock")
        .into_iter()
        .map(|e| {
            let list = e.value.as_list().expect("clock values are [corrected rounds]");
            let corrected = list[0].as_int().expect("corrected clock");
            let rounds = list[1].as_int().expect("rounds") as u64;
            ClockReading { time_ns: e.time_ns, node: e.node, error_ns: corrected - e.time_ns as i64, rounds }
        })
        .collect()
}

/// One `sync` event: a correction a node applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncEvent {
    pub time_ns: u64,
    pub node: u32,
    /// Round trip of the sample the correction came from (local nanoseconds).
    pub rtt_ns: i64,
    pub step_ns: i64,
    /// Local time from that sample to the correction.
    pub age_ns: i64,
}

/// Every `sync` event of a run, in time order.
pub fn sync_events(history: &History) -> Vec<SyncEvent> {
    instant_events(history, "sync")
        .into_iter()
        .map(|e| {
            let list = e.value.as_list().expect("sync values are [rtt step age]");
            let int = |i: usize| list[i].as_int().expect("sync fields are integers");
            SyncEvent { time_ns: e.time_ns, node: e.node, rtt_ns: int(0), step_ns: int(1), age_ns: int(2) }
        })
        .collect()
}

/// Clock error over one window of time.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorWindow {
    pub start_ns: u64,
    /// Nodes with a synchronised reading in the window.
    pub nodes: usize,
    /// Largest |error| of a synchronised reading in the window.
    pub max_abs_error_ns: i64,
    /// Mean error of the synchronised readings (a shared bias shows here).
    pub mean_error_ns: f64,
    /// Spread between nodes: the largest minus the smallest of each node's last error in the window
    /// (how far apart the clocks are from each other, what Berkeley bounds).
    pub spread_ns: i64,
}

/// Summarises synchronised readings (`rounds > 0`) by windows of `window_ns`, in time order; `skip`
/// says which readings to leave out (e.g. a node known to be faulty).
pub fn error_windows(
    readings: &[ClockReading],
    window_ns: u64,
    skip: impl Fn(&ClockReading) -> bool,
) -> Vec<ErrorWindow> {
    assert!(window_ns > 0, "windows have a length");
    let mut windows: BTreeMap<u64, Vec<&ClockReading>> = BTreeMap::new();
    for reading in readings.iter().filter(|r| r.rounds > 0 && !skip(r)) {
        windows.entry(reading.time_ns / window_ns).or_default().push(reading);
    }
    windows
        .into_iter()
        .map(|(index, readings)| {
            let mut last_by_node: BTreeMap<u32, i64> = BTreeMap::new();
            for r in &readings {
                last_by_node.insert(r.node, r.error_ns);
            }
            let max = last_by_node.values().max().copied().unwrap_or(0);
            let min = last_by_node.values().min().copied().unwrap_or(0);
            ErrorWindow {
                start_ns: index * window_ns,
                nodes: last_by_node.len(),
                max_abs_error_ns: readings.iter().map(|r| r.error_ns.abs()).max().unwrap_or(0),
                mean_error_ns: readings.iter().map(|r| r.error_ns as f64).sum::<f64>() / readings.len() as f64,
                spread_ns: max - min,
            }
        })
        .collect()
}
