//! `SamplingContext`: what a `traces_sampler` sees of a request.

/// What a [`traces_sampler`](crate::Options::traces_sampler) sees of a request.
#[derive(Debug)]
pub struct SamplingContext<'a> {
    pub(crate) method: &'a http::Method,
    pub(crate) route: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) headers: &'a http::HeaderMap,
    pub(crate) parent_sampled: Option<bool>,
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
}
