//! What the layer's closures (transaction names, the user) see of a request.

use http::{Extensions, HeaderMap, Method, Uri};

/// What a [`transaction_name`](super::TrackingLayer::transaction_name) or
/// [`user_from`](super::TrackingLayer::user_from) closure sees of a request.
#[derive(Debug)]
pub struct RequestInfo<'a> {
    pub(super) method: &'a Method,
    pub(super) uri: &'a Uri,
    pub(super) headers: &'a HeaderMap,
    pub(super) extensions: &'a Extensions,
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

    /// The request extensions (what middleware before the layer put there, such as an
    /// authenticated identity).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// The matched route template (axum's `MatchedPath`), if any.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }
}
