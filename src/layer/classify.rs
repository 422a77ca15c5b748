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
pub trait ClassifyFailure: Send + Sync + 'static {
    /// Whether a response with this status is a failure.
    fn is_failure(&self, status: StatusCode) -> bool;

    /// Whether a gRPC call that ended with this status code (0-16, from `grpc-status`) is a
    /// failure. By default the codes OpenTelemetry's RPC conventions call server errors:
    /// `UNKNOWN` (2), `DEADLINE_EXCEEDED` (4), `UNIMPLEMENTED` (12), `INTERNAL` (13),
    /// `UNAVAILABLE` (14) and `DATA_LOSS` (15); a client's mistake (`NOT_FOUND`,
    /// `INVALID_ARGUMENT`, …) is not.
    ///
    /// ```
    /// use lighttrace::{ClassifyFailure, ServerErrors};
    /// assert!(ServerErrors.is_grpc_failure(13)); // INTERNAL
    /// assert!(!ServerErrors.is_grpc_failure(5)); // NOT_FOUND
    /// ```
    fn is_grpc_failure(&self, code: i32) -> bool {
        crate::event::grpc::is_server_error(code)
    }
}

/// The default classifier: every 5xx status is a failure.
///
/// ```
/// use lighttrace::{ClassifyFailure, ServerErrors};
/// assert!(ServerErrors.is_failure(http::StatusCode::BAD_GATEWAY));
/// assert!(!ServerErrors.is_failure(http::StatusCode::NOT_FOUND));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerErrors;

impl ClassifyFailure for ServerErrors {
    fn is_failure(&self, status: StatusCode) -> bool {
        status.is_server_error()
    }
}

impl<F> ClassifyFailure for F
where
    F: Fn(StatusCode) -> bool + Send + Sync + 'static,
{
    fn is_failure(&self, status: StatusCode) -> bool {
        self(status)
    }
}

impl super::LayerConfig {
    /// Whether a response with `status` is a failure, by the user's classifier (the default
    /// when there is none, or when it panics: a classifier that panics has no opinion).
    pub(crate) fn is_failure(&self, status: StatusCode) -> bool {
        match &self.classifier {
            Some(c) => crate::util::unwind::contain(|| c.is_failure(status))
                .unwrap_or_else(|| ServerErrors.is_failure(status)),
            None => ServerErrors.is_failure(status),
        }
    }

    /// Whether a gRPC call that ended with `code` is a failure, as [`is_failure`](Self::is_failure)
    /// decides for HTTP statuses.
    pub(crate) fn is_grpc_failure(&self, code: i32) -> bool {
        match &self.classifier {
            Some(c) => crate::util::unwind::contain(|| c.is_grpc_failure(code))
                .unwrap_or_else(|| ServerErrors.is_grpc_failure(code)),
            None => ServerErrors.is_grpc_failure(code),
        }
    }
}
