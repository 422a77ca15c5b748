//! gRPC calls, recognised by the layer itself: a request with `content-type:
//! application/grpc…` is named after its method (`package.Service/Method`, op `grpc.server`),
//! and its status is read, in order, from the `tonic::Status` tonic ≥ 0.13.1 puts in the
//! response's extensions (feature `tonic`, with its source error), the `grpc-status` header of
//! a trailers-only response, then the trailers at the end of the body. A panic in a handler is
//! answered as gRPC expects (HTTP 200, `grpc-status: 13`), never as an HTTP 500.

use std::time::Duration;

use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use http::Request;

use crate::event::grpc::{self as protocol, GRPC_MESSAGE, GRPC_STATUS, INTERNAL};

/// What the layer knows of a gRPC call when it starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GrpcCall {
    /// The client's deadline, from `grpc-timeout`.
    pub(crate) timeout: Option<Duration>,
}

/// Whether `req` is a gRPC call (always a `POST`: other requests skip the header lookup).
pub(super) fn is_grpc<B>(req: &Request<B>) -> bool {
    req.method() == http::Method::POST && protocol::is_grpc(req.headers())
}

/// A gRPC call's start: its deadline.
pub(super) fn call_of<B>(req: &Request<B>) -> GrpcCall {
    GrpcCall {
        timeout: protocol::timeout_in(req.headers()),
    }
}

/// A gRPC status as the layer reads it.
#[derive(Debug, Default)]
pub(crate) struct GrpcStatus {
    pub(crate) code: i32,
    pub(crate) message: Option<String>,
    /// The exception list of the error tonic made the status from (its `source()` chain).
    pub(crate) exceptions: Option<Vec<sentry_types::protocol::v7::Exception>>,
}

/// The status in `headers` (a trailers-only response's, or the trailers), if any.
pub(super) fn status_in(headers: &HeaderMap) -> Option<GrpcStatus> {
    let (code, message) = protocol::status_in(headers)?;
    Some(GrpcStatus {
        code,
        message,
        exceptions: None,
    })
}

/// The status a response's head carries: tonic's in its extensions, else a trailers-only
/// response's `grpc-status` header.
pub(super) fn status_of_head<B>(response: &http::Response<B>) -> Option<GrpcStatus> {
    status_from_tonic(response.extensions()).or_else(|| status_in(response.headers()))
}

/// The status tonic left in the response's extensions, with the error it was made from.
#[cfg(feature = "tonic")]
fn status_from_tonic(extensions: &http::Extensions) -> Option<GrpcStatus> {
    let status = extensions.get::<tonic::Status>()?;
    // Read here (the status stays with the response): a failed call is rare, and its error is
    // borrowed from the status.
    let exceptions = std::error::Error::source(status)
        .map(|source| crate::event::error_chain(source, None, "lighttrace.grpc", true));
    let message = (!status.message().is_empty()).then(|| status.message().to_owned());
    Some(GrpcStatus {
        code: status.code() as i32,
        message,
        exceptions,
    })
}

/// Without tonic there is no `tonic::Status` to read.
#[cfg(not(feature = "tonic"))]
fn status_from_tonic(_extensions: &http::Extensions) -> Option<GrpcStatus> {
    None
}

/// The headers of a trailers-only `INTERNAL` answer, for a handler that panicked: a gRPC
/// client then reads `Code::Internal` instead of a protocol error.
pub(super) fn internal_error_headers(headers: &mut HeaderMap) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    internal_error_trailers(headers);
}

/// The trailers of an `INTERNAL` end, for a body that panicked.
pub(super) fn internal_error_trailers(headers: &mut HeaderMap) {
    headers.insert(GRPC_STATUS.clone(), HeaderValue::from(INTERNAL));
    headers.insert(
        GRPC_MESSAGE.clone(),
        HeaderValue::from_static("Internal%20error"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_answered_as_a_grpc_internal_error() {
        let mut answer = HeaderMap::new();
        internal_error_headers(&mut answer);
        let status = status_in(&answer).unwrap();
        assert_eq!(
            (status.code, status.message.as_deref()),
            (INTERNAL, Some("Internal error"))
        );
        assert_eq!(answer[CONTENT_TYPE], "application/grpc");
    }
}
