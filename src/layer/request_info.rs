//! What a transaction-naming closure sees of a request.

use http::{HeaderMap, Method, Uri};

/// What a [`transaction_name`](TrackingLayer::transaction_name) closure sees of a request.
#[derive(Debug)]
pub struct RequestInfo<'a> {
    pub(super) method: &'a Method,
    pub(super) uri: &'a Uri,
    pub(super) headers: &'a HeaderMap,
    pub(super) route: Option<&'a str>,
}

impl<'a> RequestInfo<'a> {
    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The matched route template (axum's `MatchedPath`), if any.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }
}
