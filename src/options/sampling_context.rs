//! `SamplingContext`: what a `traces_sampler` sees of a request.

/// What a [`traces_sampler`](crate::Options::traces_sampler) sees of a request.
#[derive(Debug)]
pub struct SamplingContext<'a> {
    pub(crate) method: &'a http::Method,
    pub(crate) route: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) headers: &'a http::HeaderMap,
    pub(crate) parent_sampled: Option<bool>,
    pub(crate) parent_sample_rate: Option<f64>,
    pub(crate) sample_rand: f64,
}

impl<'a> SamplingContext<'a> {
    /// The request method.
    pub fn method(&self) -> &'a http::Method {
        self.method
    }

    /// The matched route template, e.g. `/users/{user_id}`, if any.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }

    /// The transaction's name when the layer's
    /// [`transaction_name`](crate::TrackingLayer::transaction_name) closure gave one.
    pub fn transaction_name(&self) -> Option<&'a str> {
        self.name
    }

    /// The request headers.
    pub fn headers(&self) -> &'a http::HeaderMap {
        self.headers
    }

    /// The upstream service's sampling decision, from `sentry-trace` or `traceparent`.
    pub fn parent_sampled(&self) -> Option<bool> {
        self.parent_sampled
    }

    /// The rate the upstream service decided with, from its `baggage` (`sentry-sample_rate`).
    /// Returning it follows the caller's rate while still deciding by `sample_rand`.
    pub fn parent_sample_rate(&self) -> Option<f64> {
        self.parent_sample_rate
    }

    /// The trace's random number in `[0, 1)`: an upstream service's (`sentry-sample_rand` in
    /// `baggage`), else the one this trace starts with. The rate the sampler returns is
    /// compared with it (`sample_rand < rate` keeps the trace), so the sampler need not draw
    /// its own.
    pub fn sample_rand(&self) -> f64 {
        self.sample_rand
    }
}
