//! Random ids from a fast thread-local generator: trace and event ids need to be unique, not
//! unpredictable, and a system RNG call per request costs more than the rest of the request path.

use sentry_types::protocol::v7::{SpanId, TraceId};
use sentry_types::Uuid;

/// A random (version 4) event id.
pub(crate) fn new_event_id() -> Uuid {
    let mut bytes = fastrand::u128(..).to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// A random, non-zero trace id.
pub(crate) fn new_trace_id() -> TraceId {
    TraceId::from(fastrand::u128(1..).to_be_bytes())
}

/// A random, non-zero span id.
pub(crate) fn new_span_id() -> SpanId {
    SpanId::from(fastrand::u64(1..).to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_v4_and_distinct() {
        let a = new_event_id();
        let b = new_event_id();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.to_string().len(), 36);
    }

    #[test]
    fn trace_and_span_ids_have_protocol_lengths() {
        assert_eq!(new_trace_id().to_string().len(), 32);
        assert_eq!(new_span_id().to_string().len(), 16);
        assert_ne!(new_span_id(), new_span_id());
    }
}
