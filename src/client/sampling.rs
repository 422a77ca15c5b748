//! Sampling decisions: which requests are traced (and with which rate), and which error events
//! are kept.
//!
//! A trace is kept when its `sample_rand` is below the rate (Sentry's developer documentation,
//! "Traces", "Propagated Random Value"): every service of a trace compares the same number, so
//! a service sampling at 0.25 keeps a subset of what one at 0.5 keeps.

use std::sync::atomic::{AtomicU64, Ordering};

use sentry_types::protocol::v7::client_report::{Category, Reason};

use super::backpressure::downsampled;
use crate::options::{clamp_rate, Options, SamplingContext};
use crate::sink::Sink;

/// Requests not traced since the sink was last told, by reason, on a cache line of their own:
/// every unsampled request adds to one, and the options next to them are read by every request.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Unsampled {
    /// Left out by the rate itself.
    sample_rate: AtomicU64,
    /// Left out only because backpressure lowered the rate.
    backpressure: AtomicU64,
}

impl Unsampled {
    fn add(&self, backpressure: bool) {
        let counter = match backpressure {
            true => &self.backpressure,
            false => &self.sample_rate,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Tells the sink how many transactions sampling dropped, for its client reports: each
    /// once as a transaction and once as a span (its root span; no other was recorded), as
    /// sentry-python counts them.
    pub(crate) fn report_to(&self, sink: &dyn Sink) {
        for (counter, reason) in [
            (&self.sample_rate, Some(Reason::SampleRate)),
            (&self.backpressure, None),
        ] {
            if counter.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let n = u32::try_from(counter.swap(0, Ordering::Relaxed)).unwrap_or(u32::MAX);
            for category in [Category::Transaction, Category::Span] {
                match reason {
                    Some(reason) => sink.record_discard(reason, category, n),
                    None => sink.record_backpressure(category, n),
                }
            }
        }
    }
}

/// Decides whether a request is traced, and with which rate (the one applied, backpressure
/// included). The rate is the `traces_sampler`'s if set (a panic in it counts the transaction
/// as an `event_processor` discard and leaves the request untraced), else the upstream
/// decision's (1 or 0: it is inherited whole), else `traces_sample_rate`; it is divided by
/// `2^factor` under backpressure, then compared with the trace's `sample_rand`.
pub(crate) fn sample_trace(
    options: &Options,
    ctx: &SamplingContext<'_>,
    unsampled: &Unsampled,
    factor: u8,
    sink: Option<&dyn Sink>,
) -> (bool, f32) {
    if !options.tracing_enabled() {
        // Nothing is sampled out: nothing is recorded here at all.
        return (false, 0.0);
    }
    if !options.traces_request(ctx.method, ctx.route, ctx.name) {
        // Filtered, not sampled out: `ignore_transactions` counts what it drops.
        if options.ignores_transaction(ctx.method, ctx.route, ctx.name) {
            if let Some(sink) = sink {
                sink.record_discard(Reason::EventProcessor, Category::Transaction, 1);
            }
        }
        return (false, 0.0);
    }
    let base = match (&options.traces_sampler, ctx.parent_sampled) {
        (Some(sampler), _) => match crate::util::unwind::contain(|| sampler(ctx)) {
            Some(rate) => clamp_rate(rate),
            None => {
                if let Some(sink) = sink {
                    sink.record_discard(Reason::EventProcessor, Category::Transaction, 1);
                }
                return (false, 0.0);
            }
        },
        (None, Some(parent)) => f32::from(u8::from(parent)),
        (None, None) => options.traces_sample_rate.unwrap_or(0.0),
    };
    let rate = downsampled(base, factor);
    // Compared as `f32`, the rates' own precision: widening 0.3f32 would give 0.30000001,
    // above a `sample_rand` of 0.300000 that a rate of 0.3 must leave out. Six-decimal values
    // stay distinct and in order as `f32`.
    let rand = ctx.sample_rand as f32;
    let sampled = rand < rate;
    if !sampled {
        unsampled.add(rand < base);
    }
    (sampled, rate)
}

/// `true` with probability `rate`.
pub(crate) fn sample(rate: f32) -> bool {
    rate >= 1.0 || (rate > 0.0 && fastrand::f32() < rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(
        method: &'a http::Method,
        headers: &'a http::HeaderMap,
        parent_sampled: Option<bool>,
        sample_rand: f64,
    ) -> SamplingContext<'a> {
        SamplingContext {
            method,
            route: Some("/orders"),
            name: None,
            headers,
            parent_sampled,
            parent_sample_rate: None,
            sample_rand,
        }
    }

    #[test]
    fn the_rate_is_compared_with_sample_rand() {
        let (get, headers) = (http::Method::GET, http::HeaderMap::new());
        let counts = Unsampled::default();
        let options = Options::new().traces_sample_rate(0.5);
        let decide = |rand, parent| {
            sample_trace(
                &options,
                &context(&get, &headers, parent, rand),
                &counts,
                0,
                None,
            )
        };
        assert_eq!(decide(0.499_999, None), (true, 0.5));
        assert_eq!(decide(0.5, None), (false, 0.5), "strictly below");
        let options = Options::new().traces_sample_rate(0.3);
        let at_point_3 = |rand| {
            sample_trace(
                &options,
                &context(&get, &headers, None, rand),
                &counts,
                0,
                None,
            )
        };
        assert!(at_point_3(0.299_999).0);
        assert!(!at_point_3(0.3).0, "0.3 is not below 0.3");
        // An upstream decision is inherited whole, whatever sample_rand is.
        assert_eq!(decide(0.9, Some(true)), (true, 1.0));
        assert_eq!(decide(0.0, Some(false)), (false, 0.0));
        let sampler = Options::new().traces_sampler(|ctx| {
            assert!(ctx.sample_rand() >= 0.0);
            0.25
        });
        let decide = |rand| {
            sample_trace(
                &sampler,
                &context(&get, &headers, Some(true), rand),
                &counts,
                0,
                None,
            )
        };
        assert_eq!(decide(0.2), (true, 0.25), "a sampler overrides the parent");
        assert_eq!(decide(0.3), (false, 0.25));
        assert_eq!(counts.sample_rate.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn backpressure_lowers_the_rate_and_counts_what_only_it_left_out() {
        let (get, headers) = (http::Method::GET, http::HeaderMap::new());
        let counts = Unsampled::default();
        let options = Options::new().traces_sample_rate(0.5);
        let decide = |rand, factor| {
            sample_trace(
                &options,
                &context(&get, &headers, None, rand),
                &counts,
                factor,
                None,
            )
        };
        assert_eq!(decide(0.1, 2), (true, 0.125));
        assert_eq!(
            decide(0.3, 2),
            (false, 0.125),
            "kept at 0.5, left out at 0.125"
        );
        assert_eq!(decide(0.7, 2), (false, 0.125), "left out at 0.5 already");
        assert_eq!(counts.backpressure.load(Ordering::Relaxed), 1);
        assert_eq!(counts.sample_rate.load(Ordering::Relaxed), 1);
    }
}
