//! A node's local clock: an offset from true time (skew), a rate error (drift, in parts per million)
//! and jumps. Timers are set and fire on the local clock.
//!
//! Local time is piecewise linear in true time: from an anchor `(true_ns, local_ns)` it advances by
//! `1 + drift_ppm / 1e6` local nanoseconds per true nanosecond. Changing the drift or jumping
//! re-anchors at the current instant, so the clock stays continuous except where it jumps.

use crate::time::{LocalTime, SimTime};

/// Drift is kept in parts per billion (integer, so the arithmetic is exact and portable).
const PPB_PER_PPM: f64 = 1_000.0;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalClock {
    anchor_true_ns: u64,
    anchor_local_ns: i64,
    drift_ppb: i64,
}

impl LocalClock {
    /// A clock that reads `true time + offset_ns` at true time 0 and runs `drift_ppm` fast.
    pub fn new(offset_ns: i64, drift_ppm: f64) -> Self {
        let mut clock = LocalClock { anchor_true_ns: 0, anchor_local_ns: offset_ns, drift_ppb: 0 };
        clock.set_drift_ppm(SimTime::ZERO, drift_ppm);
        clock
    }

    pub fn drift_ppm(&self) -> f64 {
        self.drift_ppb as f64 / PPB_PER_PPM
    }

    /// The local reading at true time `now` (which must not precede the last change).
    pub fn local_at(&self, now: SimTime) -> LocalTime {
        assert!(now.0 >= self.anchor_true_ns, "clock read before its last change");
        if self.drift_ppb == 0 {
            // The common case, without 128-bit division (hot: every handler reads the clock).
            let elapsed = i64::try_from(now.0 - self.anchor_true_ns).unwrap_or(i64::MAX);
            return LocalTime(self.anchor_local_ns.saturating_add(elapsed));
        }
        let elapsed = (now.0 - self.anchor_true_ns) as i128;
        let local = self.anchor_local_ns as i128 + elapsed + elapsed * self.drift_ppb as i128 / 1_000_000_000;
        LocalTime(local.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    /// The earliest true time, not before `now`, at which the local clock reads at least `deadline`.
    pub fn true_time_of(&self, now: SimTime, deadline: LocalTime) -> SimTime {
        let local_now = self.local_at(now);
        if deadline <= local_now {
            return now;
        }
        let local_delta = (deadline.0 as i128) - (local_now.0 as i128);
        let rate = 1_000_000_000i128 + self.drift_ppb as i128;
        assert!(rate > 0, "a clock must move forward");
        // Ceiling division gives an estimate; integer rounding in `local_at` may put the earliest
        // instant a nanosecond or two either side of it, so settle it exactly.
        let true_delta = ((local_delta * 1_000_000_000 + rate - 1) / rate).clamp(0, (u64::MAX - now.0) as i128) as u64;
        let mut at = SimTime(now.0 + true_delta);
        while at > now && self.local_at(SimTime(at.0 - 1)) >= deadline {
            at = SimTime(at.0 - 1);
        }
        while self.local_at(at) < deadline && at.0 < u64::MAX {
            at = SimTime(at.0 + 1);
        }
        at
    }

    fn reanchor(&mut self, now: SimTime) {
        self.anchor_local_ns = self.local_at(now).0;
        self.anchor_true_ns = now.0;
    }

    /// Changes the rate from `now` on. Drift must be above -1,000,000 ppm (a clock that moves).
    pub fn set_drift_ppm(&mut self, now: SimTime, drift_ppm: f64) {
        assert!(drift_ppm.is_finite() && drift_ppm > -1_000_000.0, "drift must be finite and above -1e6 ppm");
        self.reanchor(now);
        self.drift_ppb = (drift_ppm * PPB_PER_PPM).round() as i64;
    }

    /// Jumps the clock by `by_ns` (negative: backwards) at `now`.
    pub fn jump(&mut self, now: SimTime, by_ns: i64) {
        self.reanchor(now);
        self.anchor_local_ns = self.anchor_local_ns.saturating_add(by_ns);
    }

    /// Sets the offset from true time to `offset_ns` at `now` (a step to the new skew).
    pub fn set_offset(&mut self, now: SimTime, offset_ns: i64) {
        self.reanchor(now);
        self.anchor_local_ns = (now.0 as i64).saturating_add(offset_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_drift_shape_the_local_reading() {
        let clock = LocalClock::new(-5_000_000, 100.0);
        assert_eq!(clock.local_at(SimTime(0)), LocalTime(-5_000_000));
        // 100 ppm fast: after 1 s true, 1.0001 s have passed locally.
        assert_eq!(clock.local_at(SimTime::from_secs(1)), LocalTime(1_000_100_000 - 5_000_000));
    }

    #[test]
    fn timers_fire_when_the_local_clock_reaches_the_deadline() {
        for drift in [-500_000.0, -30.0, 0.0, 7.0, 250_000.0] {
            let clock = LocalClock::new(123, drift);
            let now = SimTime(1_000_003);
            let deadline = LocalTime(clock.local_at(now).0 + 10_000_000);
            let at = clock.true_time_of(now, deadline);
            assert!(clock.local_at(at) >= deadline);
            assert!(clock.local_at(SimTime(at.0 - 1)) < deadline, "fires at the earliest instant, drift {drift}");
        }
    }

    #[test]
    fn jumps_and_offsets_reanchor_continuously() {
        let mut clock = LocalClock::new(0, 0.0);
        clock.jump(SimTime(1_000), 500);
        assert_eq!(clock.local_at(SimTime(1_000)), LocalTime(1_500));
        clock.jump(SimTime(2_000), -2_000);
        assert_eq!(clock.local_at(SimTime(2_000)), LocalTime(500));
        clock.set_offset(SimTime(3_000), 10);
        assert_eq!(clock.local_at(SimTime(4_000)), LocalTime(4_010));
        assert_eq!(clock.true_time_of(SimTime(4_000), LocalTime(0)), SimTime(4_000));
    }
}
