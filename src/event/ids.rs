//! Random ids from a fast thread-local generator: trace and event ids need to be unique, not
//! unpredictable, and a system RNG call per request costs more than the rest of the request path.

use std::hash::{Hash, Hasher};

use sentry_types::protocol::v7::{SpanId, TraceId};
use sentry_types::Uuid;

/// A random (version 4) event id.
pub(crate) fn new_event_id() -> Uuid {
    let mut bytes = fastrand::u128(..).to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// A random, non-zero trace id.
pub(crate) fn new_trace_id() -> TraceId {
    TraceId::from(fastrand::u128(1..).to_be_bytes())
}

/// A random, non-zero span id.
pub(crate) fn new_span_id() -> SpanId {
    SpanId::from(fastrand::u64(1..).to_be_bytes())
}

/// One millionth: a `sample_rand` has six decimals.
const MICROS: u64 = 1_000_000;

/// The `sample_rand` of a trace this process starts: a number in `[0, 1)` with six decimals,
/// derived from the trace id.
///
/// Sentry's developer documentation ("Traces", section "Propagated Random Value") recommends
/// generating it "deterministically using the trace ID as seed" (sentry-python seeds its
/// generator with the trace id): a service that has to make one up for an incoming trace then
/// makes up the same number as every other service of the fleet that does.
pub(crate) fn sample_rand_of(trace_id: TraceId) -> f64 {
    (mix(trace_id) % MICROS) as f64 / MICROS as f64
}

/// A `sample_rand` derived from the trace id within `[lower, upper)`, for an incoming trace
/// that carries a sampling decision and its rate but no `sample_rand`: the number then leads
/// to the same decision (the same section of the documentation: `[0, rate)` for a trace sampled
/// upstream, `[rate, 1)` for one that was not). An empty range gives its lower bound, as
/// sentry-python does; the result is always below 1.
pub(crate) fn sample_rand_within(trace_id: TraceId, lower: f64, upper: f64) -> f64 {
    // In millionths; a bound between two of them rounds up, so that `value < rate` holds for
    // every value of `[0, rate)` and fails for every value of `[rate, 1)`.
    let scaled = |bound: f64| (bound.clamp(0.0, 1.0) * MICROS as f64).ceil() as u64;
    let (lower, upper) = (scaled(lower), scaled(upper).min(MICROS));
    let micros = match upper.checked_sub(lower) {
        Some(width) if width > 0 => lower + mix(trace_id) % width,
        _ => lower.min(MICROS - 1),
    };
    micros as f64 / MICROS as f64
}

/// 64 well-mixed bits from a trace id's bytes (each 8-byte word through SplitMix64's
/// finaliser): the same in every process, whatever part of the id its producer made random.
fn mix(trace_id: TraceId) -> u64 {
    /// Takes the id's bytes as `Hash` hands them over (its fields are private).
    struct Mix(u64);
    impl Hasher for Mix {
        fn write(&mut self, bytes: &[u8]) {
            for chunk in bytes.chunks(8) {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                self.0 = splitmix(self.0 ^ u64::from_le_bytes(word));
            }
        }
        // The array's length prefix: the same for every id.
        fn write_usize(&mut self, _: usize) {}
        fn finish(&self) -> u64 {
            self.0
        }
    }
    let mut hasher = Mix(0x9e37_79b9_7f4a_7c15);
    trace_id.hash(&mut hasher);
    hasher.finish()
}

/// SplitMix64's finaliser.
fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_rand_is_a_six_decimal_number_below_one_the_same_for_a_trace() {
        let id = new_trace_id();
        let a = sample_rand_of(id);
        assert_eq!(a, sample_rand_of(id), "derived, not drawn");
        assert!((0.0..1.0).contains(&a));
        assert_eq!(format!("{a:.6}").parse::<f64>().unwrap(), a, "six decimals");
        // Spread over [0, 1): 10,000 traces fill each tenth with about a thousand.
        let mut tenths = [0u32; 10];
        for _ in 0..10_000 {
            tenths[(sample_rand_of(new_trace_id()) * 10.0) as usize] += 1;
        }
        assert!(tenths.iter().all(|n| (850..1150).contains(n)), "{tenths:?}");
    }

    #[test]
    fn a_backfilled_sample_rand_keeps_the_upstream_decision() {
        for _ in 0..2_000 {
            let id = new_trace_id();
            for rate in [0.1f32, 0.25, 0.333_333_3, 0.5, 0.99] {
                let rate = f64::from(rate);
                assert!(sample_rand_within(id, 0.0, rate) < rate);
                let unsampled = sample_rand_within(id, rate, 1.0);
                assert!(
                    unsampled >= rate && unsampled < 1.0,
                    "{unsampled} for {rate}"
                );
            }
        }
        // Empty or inverted ranges give their lower bound, below 1.
        let id = new_trace_id();
        assert_eq!(sample_rand_within(id, 0.0, 0.0), 0.0);
        assert_eq!(sample_rand_within(id, 1.0, 1.0), 0.999_999);
        assert_eq!(sample_rand_within(id, 0.7, 0.2), 0.7);
    }

    #[test]
    fn event_ids_are_v4_and_distinct() {
        let a = new_event_id();
        let b = new_event_id();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.to_string().len(), 36);
    }

    #[test]
    fn trace_and_span_ids_have_protocol_lengths() {
        assert_eq!(new_trace_id().to_string().len(), 32);
        assert_eq!(new_span_id().to_string().len(), 16);
        assert_ne!(new_span_id(), new_span_id());
    }
}
