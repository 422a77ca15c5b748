//! gRPC's vocabulary, as both sides of a call read it: its 17 status codes (their names, the
//! span statuses Sentry names after them, the HTTP statuses they stand for), the `grpc-status`
//! and `grpc-message` headers (of a trailers-only answer, or the trailers), `grpc-timeout`, and
//! which codes OpenTelemetry's RPC conventions call server errors.

use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use sentry_types::protocol::v7::SpanStatus;

pub(crate) static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub(crate) static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// gRPC's `CANCELLED`.
pub(crate) const CANCELLED: i32 = 1;
/// gRPC's `DEADLINE_EXCEEDED`.
pub(crate) const DEADLINE_EXCEEDED: i32 = 4;
/// gRPC's `UNIMPLEMENTED`: what a server answers for a method it does not have.
pub(crate) const UNIMPLEMENTED: i32 = 12;
/// gRPC's `INTERNAL`.
pub(crate) const INTERNAL: i32 = 13;

/// gRPC's 17 status codes in order: their names, the span statuses Sentry names after them,
/// and the HTTP statuses `google.rpc.Code` maps them to (its comments in `code.proto`).
const GRPC_STATUSES: [(&str, SpanStatus, u16); 17] = [
    ("OK", SpanStatus::Ok, 200),
    ("CANCELLED", SpanStatus::Cancelled, 499),
    ("UNKNOWN", SpanStatus::UnknownError, 500),
    ("INVALID_ARGUMENT", SpanStatus::InvalidArgument, 400),
    ("DEADLINE_EXCEEDED", SpanStatus::DeadlineExceeded, 504),
    ("NOT_FOUND", SpanStatus::NotFound, 404),
    ("ALREADY_EXISTS", SpanStatus::AlreadyExists, 409),
    ("PERMISSION_DENIED", SpanStatus::PermissionDenied, 403),
    ("RESOURCE_EXHAUSTED", SpanStatus::ResourceExhausted, 429),
    ("FAILED_PRECONDITION", SpanStatus::FailedPrecondition, 400),
    ("ABORTED", SpanStatus::Aborted, 409),
    ("OUT_OF_RANGE", SpanStatus::OutOfRange, 400),
    ("UNIMPLEMENTED", SpanStatus::Unimplemented, 501),
    ("INTERNAL", SpanStatus::InternalError, 500),
    ("UNAVAILABLE", SpanStatus::Unavailable, 503),
    ("DATA_LOSS", SpanStatus::DataLoss, 500),
    ("UNAUTHENTICATED", SpanStatus::Unauthenticated, 401),
];

/// A gRPC status code's row (0-16).
fn row(code: i64) -> Option<&'static (&'static str, SpanStatus, u16)> {
    usize::try_from(code)
        .ok()
        .and_then(|i| GRPC_STATUSES.get(i))
}

/// The span status of a gRPC status code (0-16).
pub(crate) fn span_status(code: i64) -> Option<SpanStatus> {
    row(code).map(|row| row.1)
}

/// The span status of a gRPC status code's name (`DEADLINE_EXCEEDED`).
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn span_status_named(name: &str) -> Option<SpanStatus> {
    GRPC_STATUSES
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|row| row.1)
}

/// The name of a gRPC status code (0-16): `INTERNAL`.
pub(crate) fn code_name(code: i64) -> Option<&'static str> {
    row(code).map(|row| row.0)
}

/// The HTTP status a gRPC status code stands for (0-16; 500 for any other), as a route's
/// latency counts it.
pub(crate) fn http_status(code: i64) -> u16 {
    row(code).map_or(500, |row| row.2)
}

/// The codes OpenTelemetry's RPC conventions call server errors (a server span's error
/// status): `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`,
/// `DATA_LOSS`.
pub(crate) fn is_server_error(code: i32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// Whether these are a gRPC message's headers (`content-type: application/grpc…`).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(is_grpc_content_type)
}

/// Whether a `content-type` value is gRPC's (`application/grpc`, `application/grpc+proto`, …).
pub(crate) fn is_grpc_content_type(value: &HeaderValue) -> bool {
    value.as_bytes().starts_with(b"application/grpc")
}

/// The status code and message in `headers` (a trailers-only answer's, or the trailers), if
/// any. A code gRPC does not define is `UNKNOWN`, as tonic reads it. The few entries are
/// compared by name (a lookup would hash the custom names first).
pub(crate) fn status_in(headers: &HeaderMap) -> Option<(i32, Option<String>)> {
    let (mut code, mut message) = (None, None);
    for (name, value) in headers {
        match name.as_str() {
            "grpc-status" => code = Some(value),
            "grpc-message" => message = Some(value),
            _ => {}
        }
    }
    let digits = code?.as_bytes().trim_ascii();
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
    let code = if code <= 16 { code } else { 2 };
    let message = message
        .and_then(|v| v.to_str().ok())
        .map(|m| crate::util::percent_decode(m, false))
        .filter(|m| !m.is_empty());
    Some((code, message))
}

/// A call's deadline, from its `grpc-timeout` header.
pub(crate) fn timeout_in(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(&GRPC_TIMEOUT)
        .and_then(|v| timeout(v.as_bytes()))
}

/// A `grpc-timeout` value: at most 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`), as
/// gRPC's HTTP/2 protocol spells it; anything else is no deadline.
fn timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn statuses_are_read_from_headers() {
        let mut headers = HeaderMap::new();
        assert!(status_in(&headers).is_none());
        headers.insert(GRPC_STATUS.clone(), HeaderValue::from_static("13"));
        headers.insert(GRPC_MESSAGE.clone(), HeaderValue::from_static("db%20down"));
        assert_eq!(status_in(&headers), Some((13, Some("db down".to_owned()))));
        headers.insert(GRPC_STATUS.clone(), HeaderValue::from_static("99"));
        assert_eq!(
            status_in(&headers).unwrap().0,
            2,
            "unknown codes are UNKNOWN"
        );
        headers.insert(GRPC_STATUS.clone(), HeaderValue::from_static("x"));
        assert!(status_in(&headers).is_none());
        assert!([2, 4, 12, 13, 14, 15].into_iter().all(is_server_error));
        assert!(![0, 1, 3, 5, 6, 7, 8, 9, 10, 11, 16]
            .into_iter()
            .any(is_server_error));
    }

    #[test]
    fn codes_have_names_span_statuses_and_http_statuses() {
        assert_eq!(code_name(13), Some("INTERNAL"));
        assert_eq!(span_status(4), Some(SpanStatus::DeadlineExceeded));
        assert_eq!(span_status_named("not_found"), Some(SpanStatus::NotFound));
        assert_eq!(
            (http_status(5), http_status(14), http_status(99)),
            (404, 503, 500)
        );
        assert_eq!((code_name(17), span_status(-1)), (None, None));
    }

    #[test]
    fn timeouts_are_read_as_the_protocol_spells_them() {
        assert_eq!(timeout(b"200m"), Some(Duration::from_millis(200)));
        assert_eq!(timeout(b"3S"), Some(Duration::from_secs(3)));
        assert_eq!(timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in [&b""[..], b"m", b"123456789m", b"12x", b"-1S", b"1.5S"] {
            assert_eq!(timeout(bad), None, "{bad:?}");
        }
    }
}
