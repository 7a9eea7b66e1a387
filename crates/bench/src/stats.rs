//! Summaries of timing samples: nearest-rank percentiles and the formatting every table uses.
//!
//! Nearest-rank on purpose: every figure we print is a time one real run actually took, never
//! an interpolation between two runs.

use std::time::Duration;

/// The nearest-rank `p`th percentile (0 < p ≤ 100) of `sorted`, which must be sorted
/// ascending. `None` for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What a table says about a set of timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// Median (nearest rank: the lower middle for an even count).
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Summary {
    /// Summarize `samples` (any order). `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Some(Summary {
            n: sorted.len(),
            p50: percentile(&sorted, 50.0)?,
            p90: percentile(&sorted, 90.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: *sorted.last()?,
        })
    }
}

/// A duration for a table: µs below a millisecond, ms with two decimals below 10 s, else s.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.1} s", us / 1e6)
    }
}

/// A ratio such as `1.84×`.
pub fn fmt_ratio(r: f64) -> String {
    format!("{r:.2}×")
}

/// Kibibytes as MiB with two decimals.
pub fn fmt_kib(kib: u64) -> String {
    format!("{:.2} MiB", kib as f64 / 1024.0)
}

/// `a / b`, or infinity when `b` is zero.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::INFINITY } else { a / b }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&x| Duration::from_millis(x)).collect()
    }

    #[test]
    fn nearest_rank_picks_a_real_sample() {
        let s = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&s, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&s, 90.0), Some(Duration::from_millis(9)));
        assert_eq!(percentile(&s, 99.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&s, 100.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&s, 0.1), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn eight_clients_have_their_slowest_as_p99() {
        let s = Summary::of(&ms(&[80, 10, 70, 20, 60, 30, 50, 40])).unwrap();
        assert_eq!(s.n, 8);
        assert_eq!(s.p50, Duration::from_millis(40));
        assert_eq!(s.p99, Duration::from_millis(80));
        assert_eq!(s.max, Duration::from_millis(80));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn formatting_picks_a_readable_unit() {
        assert_eq!(fmt_duration(Duration::from_micros(512)), "512 µs");
        assert_eq!(fmt_duration(Duration::from_micros(1_234)), "1.23 ms");
        assert_eq!(fmt_duration(Duration::from_secs(81)), "81.0 s");
        assert_eq!(fmt_ratio(1.8449), "1.84×");
        assert_eq!(fmt_kib(5120), "5.00 MiB");
        assert!(ratio(1.0, 0.0).is_infinite());
    }
}
