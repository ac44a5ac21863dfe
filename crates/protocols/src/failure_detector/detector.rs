//! Failure detectors as library types, fed heartbeat arrival times and asked when to suspect: a
//! fixed timeout, and the φ accrual detector (Hayashibara, Défago, Yared, Katayama 2004, "The φ
//! Accrual Failure Detector", SRDS).
//!
//! Both answer the same question, *how long after the last heartbeat does suspicion begin* (the
//! [`Detector::suspicion_delay_ns`]), so a monitor sets one timer per peer and never polls. A fixed
//! timeout answers with a constant. φ accrual keeps a sliding window of inter-arrival times, models
//! them as a normal distribution N(μ, σ²), and reports the suspicion level
//! `φ(Δ) = -log10(P[inter-arrival > Δ])` for the time `Δ` since the last heartbeat; suspicion begins
//! when φ crosses `phi_threshold` (φ = 8: the heartbeat is late by an amount that a live peer's
//! history makes a 1-in-10^8 event). Because μ and σ are learnt per peer, a jittery link gets a
//! longer delay and a steady one a shorter, where a fixed timeout must fit the worst link.
//!
//! As in Akka's implementation (`akka.remote.PhiAccrualFailureDetector`), σ has a floor
//! (`min_std_dev_ms`: a perfectly regular link would otherwise make any delay infinitely
//! suspicious), an `acceptable_pause_ms` is added to μ, the window is bootstrapped with the expected
//! heartbeat interval, and the normal tail uses the logistic approximation of Bowling, Khasawneh,
//! Kaewkuekool, Cho 2009 ("A logistic approximation to the cumulative normal distribution", J. Ind.
//! Eng. Manag. 2(1)): `P[X > μ + yσ] ≈ e / (1 + e)`, `e = exp(-y (1.5976 + 0.070566 y²))`, which
//! also inverts in closed form up to one cubic, solved here by Newton's method.

use std::collections::VecDeque;

/// Configuration of a φ accrual detector.
#[derive(Clone, Debug, PartialEq)]
pub struct PhiConfig {
    pub threshold: f64,
    /// Inter-arrival samples kept.
    pub window: usize,
    pub min_std_dev_ns: f64,
    pub acceptable_pause_ns: f64,
    /// The heartbeat interval, the estimate before real samples arrive.
    pub expected_interval_ns: f64,
}

/// A φ accrual detector's state for one monitored peer.
#[derive(Clone, Debug)]
pub struct PhiAccrual {
    config: PhiConfig,
    intervals: VecDeque<f64>,
    sum: f64,
    sum_squares: f64,
    /// `y` where the normal tail equals `10^-threshold` (fixed by the threshold).
    y_threshold: f64,
}

impl PhiAccrual {
    pub fn new(config: PhiConfig) -> Self {
        assert!(config.threshold > 0.5, "thresholds at or below φ(μ) = log10(2) are not supported");
        assert!(config.window >= 2 && config.min_std_dev_ns > 0.0 && config.expected_interval_ns > 0.0);
        let y_threshold = logistic_tail_inverse(config.threshold);
        let mut detector = PhiAccrual { config, intervals: VecDeque::new(), sum: 0.0, sum_squares: 0.0, y_threshold };
        // Bootstrap like Akka: two samples at the expected interval ± a quarter of it, so that the
        // first heartbeats are judged against a plausible (μ, σ) rather than against nothing.
        let interval = detector.config.expected_interval_ns;
        detector.push(interval * 0.75);
        detector.push(interval * 1.25);
        detector
    }

    /// Adds an inter-arrival time.
    pub fn push(&mut self, interval_ns: f64) {
        assert!(interval_ns.is_finite() && interval_ns >= 0.0, "inter-arrival times are non-negative");
        if self.intervals.len() == self.config.window {
            let old = self.intervals.pop_front().expect("a full window");
            self.sum -= old;
            self.sum_squares -= old * old;
        }
        self.intervals.push_back(interval_ns);
        self.sum += interval_ns;
        self.sum_squares += interval_ns * interval_ns;
    }

    pub fn samples(&self) -> usize {
        self.intervals.len()
    }

    /// μ of the model, the acceptable pause included.
    pub fn mean_ns(&self) -> f64 {
        self.sum / self.intervals.len() as f64 + self.config.acceptable_pause_ns
    }

    /// σ of the model, floored.
    pub fn std_dev_ns(&self) -> f64 {
        let n = self.intervals.len() as f64;
        let mean = self.sum / n;
        // Running sums can leave a tiny negative variance by cancellation.
        let variance = (self.sum_squares / n - mean * mean).max(0.0);
        variance.sqrt().max(self.config.min_std_dev_ns)
    }

    /// The suspicion level `elapsed_ns` after the last heartbeat.
    pub fn phi(&self, elapsed_ns: f64) -> f64 {
        let y = (elapsed_ns - self.mean_ns()) / self.std_dev_ns();
        let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
        let tail = if y > 0.0 { e / (1.0 + e) } else { 1.0 - 1.0 / (1.0 + e) };
        -tail.max(f64::MIN_POSITIVE).log10()
    }

    /// How long after the last heartbeat φ reaches the threshold.
    pub fn suspicion_delay_ns(&self) -> f64 {
        self.mean_ns() + self.y_threshold * self.std_dev_ns()
    }
}

/// The `y > 0` at which the logistic normal tail equals `10^-phi`: the root of
/// `0.070566 y³ + 1.5976 y = ln((1 - p) / p)`, increasing in `y`, by Newton's method.
fn logistic_tail_inverse(phi: f64) -> f64 {
    let p = 10f64.powf(-phi);
    let target = ((1.0 - p) / p).ln();
    let mut y = target / 1.5976;
    for _ in 0..50 {
        let f = 0.070566 * y * y * y + 1.5976 * y - target;
        let slope = 3.0 * 0.070566 * y * y + 1.5976;
        let next = y - f / slope;
        if (next - y).abs() < 1e-12 {
            return next;
        }
        y = next;
    }
    y
}

/// One monitored peer's detector.
#[derive(Clone, Debug)]
pub enum Detector {
    /// Suspect after this long without a heartbeat.
    FixedTimeout {
        timeout_ns: f64,
    },
    PhiAccrual(PhiAccrual),
}

impl Detector {
    /// Learns the time between two heartbeats (a fixed timeout learns nothing).
    pub fn record_interval(&mut self, interval_ns: f64) {
        if let Detector::PhiAccrual(phi) = self {
            phi.push(interval_ns);
        }
    }

    /// How long after the last heartbeat suspicion begins.
    pub fn suspicion_delay_ns(&self) -> f64 {
        match self {
            Detector::FixedTimeout { timeout_ns } => *timeout_ns,
            Detector::PhiAccrual(phi) => phi.suspicion_delay_ns(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PhiConfig {
        PhiConfig {
            threshold: 8.0,
            window: 100,
            min_std_dev_ns: 1e6,
            acceptable_pause_ns: 0.0,
            expected_interval_ns: 100e6,
        }
    }

    #[test]
    fn phi_reaches_the_threshold_exactly_at_the_suspicion_delay() {
        let mut phi = PhiAccrual::new(config());
        for i in 0..50 {
            phi.push(100e6 + if i % 2 == 0 { 10e6 } else { -10e6 });
        }
        let delay = phi.suspicion_delay_ns();
        assert!((phi.phi(delay) - 8.0).abs() < 1e-6, "φ at the delay is the threshold: {}", phi.phi(delay));
        assert!(phi.phi(delay * 0.99) < 8.0 && phi.phi(delay * 1.01) > 8.0);
        assert!((phi.phi(phi.mean_ns()) - 2f64.log10()).abs() < 1e-9, "φ(μ) = -log10(1/2)");
        assert!(delay > 100e6 + 5.0 * 10e6 && delay < 100e6 + 6.0 * 10e6, "about 5.2 σ past μ");
    }

    #[test]
    fn a_jittery_history_delays_suspicion_and_the_window_forgets() {
        let mut steady = PhiAccrual::new(config());
        let mut jittery = PhiAccrual::new(config());
        for i in 0..100 {
            steady.push(100e6);
            jittery.push(if i % 2 == 0 { 40e6 } else { 160e6 });
        }
        assert!(jittery.suspicion_delay_ns() > 2.0 * steady.suspicion_delay_ns() - 100e6);
        assert_eq!(steady.std_dev_ns(), 1e6, "the floor");
        for _ in 0..100 {
            jittery.push(100e6);
        }
        assert!((jittery.suspicion_delay_ns() - steady.suspicion_delay_ns()).abs() < 1e3, "old samples left");
    }
}
