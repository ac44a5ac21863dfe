//! Virtual time: integer nanoseconds of true (simulated) time, and a node's local clock reading.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in true simulated time, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SimTime(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub fn from_secs(secs: u64) -> Self {
        SimTime(secs * 1_000_000_000)
    }
    pub fn from_millis(millis: u64) -> Self {
        SimTime(millis * 1_000_000)
    }
    pub fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// Time elapsed since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for SimTime {
    type Output = SimTime;
    fn add(self, rhs: Duration) -> SimTime {
        SimTime(self.0.saturating_add(duration_nanos(rhs)))
    }
}

impl Sub for SimTime {
    type Output = Duration;
    fn sub(self, rhs: SimTime) -> Duration {
        self.since(rhs)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_nanos(self.0 as i128))
    }
}

/// A reading of a node's local clock, in nanoseconds. It may run ahead of or behind true time (skew),
/// at a different rate (drift), and jump; it can be negative when a clock starts behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LocalTime(pub i64);

impl LocalTime {
    pub fn as_nanos(self) -> i64 {
        self.0
    }
    /// Local time elapsed since `earlier` (zero if `earlier` is later, e.g. after a backwards jump).
    pub fn since(self, earlier: LocalTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

impl Add<Duration> for LocalTime {
    type Output = LocalTime;
    fn add(self, rhs: Duration) -> LocalTime {
        LocalTime(self.0.saturating_add(duration_nanos(rhs).min(i64::MAX as u64) as i64))
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_nanos(self.0 as i128))
    }
}

/// Nanoseconds in a `Duration`, saturating at `u64::MAX` (about 584 years).
pub fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Human-readable nanoseconds: `0s`, `1.5ms`, `2.000001s`, `-3ms`.
pub fn format_nanos(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let (unit, scale) = if n >= 1_000_000_000 {
        ("s", 1_000_000_000u128)
    } else if n >= 1_000_000 {
        ("ms", 1_000_000)
    } else if n >= 1_000 {
        ("us", 1_000)
    } else {
        return format!("{sign}{n}ns");
    };
    let whole = n / scale;
    let frac = n % scale;
    if frac == 0 {
        format!("{sign}{whole}{unit}")
    } else {
        let digits = scale.ilog10() as usize;
        let frac_text = format!("{frac:0digits$}");
        format!("{sign}{whole}.{}{unit}", frac_text.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_nanos_with_the_largest_whole_unit() {
        assert_eq!(format_nanos(0), "0ns");
        assert_eq!(format_nanos(1_500_000), "1.5ms");
        assert_eq!(format_nanos(2_000_001_000), "2.000001s");
        assert_eq!(format_nanos(-3_000_000), "-3ms");
        assert_eq!(format_nanos(999), "999ns");
    }

    #[test]
    fn local_time_since_never_goes_negative() {
        assert_eq!(LocalTime(5).since(LocalTime(10)), Duration::ZERO);
        assert_eq!(LocalTime(10).since(LocalTime(4)), Duration::from_nanos(6));
    }
}
