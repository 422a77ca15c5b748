//! Which responses are failures that deserve an error event.

use http::StatusCode;

/// Decides whether a response is a failure, reported as an error event.
///
/// The default, [`ServerErrors`], treats every 5xx as a failure. Any
/// `Fn(StatusCode) -> bool` closure is a classifier too:
///
/// ```
/// use lighttrace::{Options, TrackingLayer};
///
/// // Report 5xx except 503 (load shedding), and also 429.
/// let layer = TrackingLayer::with_options(Options::new())
///     .classify(|status: http::StatusCode| {
///         (status.is_server_error() && status != 503) || status == 429
///     });
/// ```
pub trait ClassifyResponse: Send + Sync + 'static {
    /// Whether a response with this status is a failure.
    fn is_failure(&self, status: StatusCode) -> bool;
}

/// The default classifier: every 5xx status is a failure.
///
/// ```
/// use lighttrace::{ClassifyResponse, ServerErrors};
/// assert!(ServerErrors.is_failure(http::StatusCode::BAD_GATEWAY));
/// assert!(!ServerErrors.is_failure(http::StatusCode::NOT_FOUND));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerErrors;

impl ClassifyResponse for ServerErrors {
    fn is_failure(&self, status: StatusCode) -> bool {
        status.is_server_error()
    }
}

impl<F> ClassifyResponse for F
where
    F: Fn(StatusCode) -> bool + Send + Sync + 'static,
{
    fn is_failure(&self, status: StatusCode) -> bool {
        self(status)
    }
}
