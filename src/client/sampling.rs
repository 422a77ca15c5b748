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

/// A sampling decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Decision {
    pub(crate) sampled: bool,
    /// The rate applied, backpressure included.
    pub(crate) rate: f32,
    /// Backpressure lowered the rate of this decision.
    pub(crate) lowered: bool,
}

impl Decision {
    const NOT_TRACED: Decision = Decision {
        sampled: false,
        rate: 0.0,
        lowered: false,
    };
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
) -> Decision {
    if !options.tracing_enabled() {
        // Nothing is sampled out: nothing is recorded here at all.
        return Decision::NOT_TRACED;
    }
    if !options.traces_request(ctx.method, ctx.route, ctx.name) {
        // Filtered, not sampled out: `ignore_transactions` counts what it drops.
        if options.ignores_transaction(ctx.method, ctx.route, ctx.name) {
            if let Some(sink) = sink {
                sink.record_discard(Reason::EventProcessor, Category::Transaction, 1);
            }
        }
        return Decision::NOT_TRACED;
    }
    let base = match (&options.traces_sampler, ctx.parent_sampled) {
        (Some(sampler), _) => match crate::util::unwind::contain(|| sampler(ctx)) {
            Some(rate) => clamp_rate(rate),
            None => {
                if let Some(sink) = sink {
                    sink.record_discard(Reason::EventProcessor, Category::Transaction, 1);
                }
                return Decision::NOT_TRACED;
            }
        },
        (None, Some(parent)) => f32::from(u8::from(parent)),
        (None, None) => options.traces_sample_rate.unwrap_or(0.0),
    };
    let rate = downsampled(base, factor);
    // Compared as `f32`, the rates' own precision: widening 0.3f32 would give 0.30000001,
    // above a `sample_rand` of 0.300000 that a rate of 0.3 must leave out. Six-decimal values
    // stay distinct and in order as `f32`.
    // A rate of 1 keeps everything, whatever a full-precision sample_rand rounds to.
    let rand = ctx.sample_rand as f32;
    let keeps = |rate: f32| rate >= 1.0 || rand < rate;
    let sampled = keeps(rate);
    if !sampled {
        unsampled.add(keeps(base));
    }
    Decision {
        sampled,
        rate,
        lowered: factor > 0,
    }
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

    /// `options` deciding for a request with this parent decision and `sample_rand`, under
    /// backpressure `factor`.
    fn decide(
        options: &Options,
        counts: &Unsampled,
        parent: Option<bool>,
        rand: f64,
        factor: u8,
    ) -> (bool, f32) {
        let (get, headers) = (http::Method::GET, http::HeaderMap::new());
        let d = sample_trace(
            options,
            &context(&get, &headers, parent, rand),
            counts,
            factor,
            None,
        );
        assert_eq!(d.lowered, factor > 0);
        (d.sampled, d.rate)
    }

    #[test]
    fn the_rate_is_compared_with_sample_rand() {
        let counts = Unsampled::default();
        let half = Options::new().traces_sample_rate(0.5);
        assert_eq!(decide(&half, &counts, None, 0.499_999, 0), (true, 0.5));
        assert_eq!(
            decide(&half, &counts, None, 0.5, 0),
            (false, 0.5),
            "strictly below"
        );
        let point_3 = Options::new().traces_sample_rate(0.3);
        assert!(decide(&point_3, &counts, None, 0.299_999, 0).0);
        assert!(
            !decide(&point_3, &counts, None, 0.3, 0).0,
            "0.3 is not below 0.3"
        );
        // An upstream decision is inherited whole, whatever sample_rand is.
        assert_eq!(decide(&half, &counts, Some(true), 0.9, 0), (true, 1.0));
        assert_eq!(decide(&half, &counts, Some(false), 0.0, 0), (false, 0.0));
        // A full-precision value that rounds to 1.0f32 is still kept at a rate of 1.
        let all = Options::new().traces_sample_rate(1.0);
        assert!(decide(&all, &counts, None, 0.999_999_99, 0).0);
        assert!(decide(&half, &counts, Some(true), 0.999_999_99, 0).0);
        let sampler = Options::new().traces_sampler(|ctx| {
            assert!(ctx.sample_rand() >= 0.0);
            0.25
        });
        assert_eq!(
            decide(&sampler, &counts, Some(true), 0.2, 0),
            (true, 0.25),
            "a sampler overrides the parent"
        );
        assert_eq!(decide(&sampler, &counts, Some(true), 0.3, 0), (false, 0.25));
        assert_eq!(counts.sample_rate.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn backpressure_lowers_the_rate_and_counts_what_only_it_left_out() {
        let counts = Unsampled::default();
        let half = Options::new().traces_sample_rate(0.5);
        assert_eq!(decide(&half, &counts, None, 0.1, 2), (true, 0.125));
        assert_eq!(
            decide(&half, &counts, None, 0.3, 2),
            (false, 0.125),
            "kept at 0.5, left out at 0.125"
        );
        assert_eq!(
            decide(&half, &counts, None, 0.7, 2),
            (false, 0.125),
            "left out at 0.5 already"
        );
        assert_eq!(counts.backpressure.load(Ordering::Relaxed), 1);
        assert_eq!(counts.sample_rate.load(Ordering::Relaxed), 1);
        // Tracing off: nothing decided, nothing lowered.
        let off = Options::new();
        assert_eq!(decide(&off, &counts, Some(true), 0.1, 0), (false, 0.0));
    }
}
