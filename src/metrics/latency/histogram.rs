//! A histogram of durations that many threads record into at once: log-linear buckets of
//! atomic counters, 32 linear sub-buckets per power of two of nanoseconds.
//!
//! A bucket's width is at most 1/32 of its lower bound, so reporting its midpoint is within
//! 1/64 (1.6 %) of any duration it holds. Durations under 32 ns are exact; durations past
//! 2^42 ns (73 minutes) share the last bucket (the maximum is kept exactly beside it).
//! Recording is one relaxed atomic addition, a load, and no lock: the sum is not counted but
//! read off the buckets (their midpoints, so within 1.6 % too), which saves every request a
//! second locked instruction.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two, as bits.
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// The largest power of two with its own buckets.
const MAX_EXP: u32 = 42;
/// Buckets in all.
pub(crate) const BUCKETS: usize = (MAX_EXP - SUB_BITS + 2) as usize * SUB;

/// The bucket of a duration in nanoseconds.
pub(crate) fn index(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros();
    if exp > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = (ns >> (exp - SUB_BITS)) as usize & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + sub
}

/// The lowest duration of bucket `i`, and its width, in nanoseconds.
pub(crate) fn bounds(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, 1);
    }
    let group = (i / SUB) as u32;
    let sub = (i % SUB) as u64;
    let width = 1u64 << (group - 1);
    ((SUB as u64 + sub) * width, width)
}

/// What bucket `i` reports its durations as: its midpoint.
pub(crate) fn midpoint(i: usize) -> u64 {
    let (low, width) = bounds(i);
    low + width / 2
}

/// Concurrent counters of durations.
pub(crate) struct Histogram {
    counts: Box<[AtomicU64]>,
    max_ns: AtomicU64,
}

/// A copy of a histogram's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct BucketCounts {
    pub(crate) buckets: Vec<u64>,
    /// The sum of the durations, from the bucket midpoints (within 1.6 %).
    pub(crate) sum_ns: u64,
    pub(crate) max_ns: u64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, ns: u64) {
        self.counts[index(ns)].fetch_add(1, Ordering::Relaxed);
        // A plain load first: the maximum rarely moves, and a locked operation costs more.
        if ns > self.max_ns.load(Ordering::Relaxed) {
            self.max_ns.fetch_max(ns, Ordering::Relaxed);
        }
    }

    /// The counters, zeroed when `reset` (each duration lands in exactly one reading).
    pub(crate) fn read(&self, reset: bool) -> BucketCounts {
        let take = |a: &AtomicU64| {
            if reset {
                a.swap(0, Ordering::Relaxed)
            } else {
                a.load(Ordering::Relaxed)
            }
        };
        let buckets: Vec<u64> = self.counts.iter().map(take).collect();
        let sum_ns = buckets
            .iter()
            .enumerate()
            .map(|(i, n)| n.saturating_mul(midpoint(i)))
            .fold(0u64, u64::saturating_add);
        BucketCounts {
            buckets,
            sum_ns,
            max_ns: take(&self.max_ns),
        }
    }
}

impl BucketCounts {
    /// Durations counted.
    pub(crate) fn total(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds `other` into these counts.
    pub(crate) fn merge(&mut self, other: &BucketCounts) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS];
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// The duration at quantile `q` (0.0 to 1.0), in nanoseconds: the midpoint of the bucket
    /// holding the `ceil(q * total)`-th duration, never above the maximum seen (which the last
    /// rank is, exactly).
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        let total = self.total();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        if rank == total {
            return self.max_ns;
        }
        let mut seen = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return midpoint(i).min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Durations counted at or under `ns`, as far as buckets tell: a bucket counts when all of
    /// it is at or under `ns`, so a duration within one bucket's width (1/32) below `ns` may be
    /// counted with the next bound instead.
    pub(crate) fn at_most(&self, ns: u64) -> u64 {
        self.buckets
            .iter()
            .enumerate()
            .take_while(|(i, _)| {
                let (low, width) = bounds(*i);
                low + width - 1 <= ns
            })
            .map(|(_, c)| c)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_duration_in_order_and_within_their_bounds() {
        let mut last = 0;
        for ns in 0..100_000u64 {
            let i = index(ns);
            assert!(i >= last, "monotonic at {ns}");
            last = i;
        }
        let powers = (1..64).map(|s| 1u64 << s);
        for ns in (0..100_000u64).chain(powers.flat_map(|p| [p - 1, p, p + 1])) {
            let i = index(ns);
            let (low, width) = bounds(i);
            if ns < 1 << (MAX_EXP + 1) {
                assert!(
                    low <= ns && ns < low + width,
                    "{ns} in bucket {i} [{low}, +{width})"
                );
            } else {
                assert_eq!(i, BUCKETS - 1);
            }
        }
        // Adjacent buckets meet.
        for i in 0..BUCKETS - 1 {
            let (low, width) = bounds(i);
            assert_eq!(low + width, bounds(i + 1).0, "bucket {i}");
        }
    }

    #[test]
    fn the_reported_value_is_within_1_6_percent() {
        let mut worst: f64 = 0.0;
        let mut ns = 1u64;
        while ns < 1 << MAX_EXP {
            let reported = midpoint(index(ns)) as f64;
            worst = worst.max((reported - ns as f64).abs() / ns as f64);
            ns = ns + 1 + ns / 997;
        }
        assert!(worst <= 1.0 / 64.0, "worst relative error {worst}");
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let h = Histogram::new();
        // 1 ms, 2 ms, ..., 1000 ms: the q-quantile is q seconds.
        for ms in 1..=1000u64 {
            h.record(ms * 1_000_000);
        }
        let counts = h.read(false);
        assert_eq!(counts.total(), 1000);
        for (q, expected_ms) in [(0.5, 500.0), (0.75, 750.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = counts.quantile(q) as f64 / 1e6;
            assert!(
                (got - expected_ms).abs() / expected_ms <= 1.0 / 64.0,
                "p{q}: {got} ms"
            );
        }
        assert_eq!(
            counts.quantile(1.0),
            1_000_000_000,
            "clamped to the maximum"
        );
        assert_eq!(counts.max_ns, 1_000_000_000);
        let sum = counts.sum_ns as f64;
        assert!((sum - 500.5e9).abs() / 500.5e9 <= 1.0 / 64.0, "sum {sum}");
        // 100 ms as a bound: 100 durations at or under it, give or take one bucket's width.
        let under = counts.at_most(100_000_000);
        assert!((97..=100).contains(&under), "{under}");
        // Reading with a reset hands every count over once.
        assert_eq!(h.read(true).total(), 1000);
        assert_eq!(h.read(false).total(), 0);
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let h = std::sync::Arc::new(Histogram::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        h.record(i * 1000 + t);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.read(false).total(), 40_000);
    }
}
