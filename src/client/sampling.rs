//! Sampling decisions: which requests are traced (and with which rate), and which error events
//! are kept.

use std::sync::atomic::{AtomicU64, Ordering};

use sentry_types::protocol::v7::client_report::{Category, Reason};

use crate::options::{clamp_rate, Options, SamplingContext};
use crate::sink::Sink;

/// Requests not traced since the sink was last told, on a cache line of its own: every
/// unsampled request adds to it, and the options next to it are read by every request.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Unsampled(AtomicU64);

impl Unsampled {
    /// Tells the sink how many transactions sampling dropped, for its client reports.
    pub(crate) fn report_to(&self, sink: &dyn Sink) {
        if self.0.load(Ordering::Relaxed) == 0 {
            return;
        }
        let n = self.0.swap(0, Ordering::Relaxed);
        sink.record_discard(
            Reason::SampleRate,
            Category::Transaction,
            u32::try_from(n).unwrap_or(u32::MAX),
        );
    }
}

/// Decides whether a request is traced, and with which rate: the `traces_sampler` if set (a
/// panic in it counts the transaction as an `event_processor` discard and leaves the request
/// untraced), else the upstream decision if there is one, else `traces_sample_rate`.
pub(crate) fn sample_trace(
    options: &Options,
    ctx: &SamplingContext<'_>,
    unsampled: &Unsampled,
    sink: Option<&dyn Sink>,
) -> (bool, f32) {
    if !options.traces_request(ctx.method, ctx.route, ctx.name) {
        // Filtered, not sampled out: `ignore_transactions` counts what it drops.
        if options.ignores_transaction(ctx.method, ctx.route, ctx.name) {
            if let Some(sink) = sink {
                sink.record_discard(Reason::EventProcessor, Category::Transaction, 1);
            }
        }
        return (false, 0.0);
    }
    let (sampled, rate) = match (&options.traces_sampler, ctx.parent_sampled) {
        (Some(sampler), _) => match crate::util::unwind::contain(|| sampler(ctx)) {
            Some(rate) => {
                let rate = clamp_rate(rate);
                (sample(rate), rate)
            }
            None => {
                if let Some(sink) = sink {
                    sink.record_discard(Reason::EventProcessor, Category::Transaction, 1);
                }
                return (false, 0.0);
            }
        },
        (None, Some(parent)) => (parent, options.traces_sample_rate),
        (None, None) => (
            sample(options.traces_sample_rate),
            options.traces_sample_rate,
        ),
    };
    if !sampled {
        unsampled.0.fetch_add(1, Ordering::Relaxed);
    }
    (sampled, rate)
}

/// `true` with probability `rate`.
pub(crate) fn sample(rate: f32) -> bool {
    rate >= 1.0 || (rate > 0.0 && fastrand::f32() < rate)
}
