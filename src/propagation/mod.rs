//! Trace propagation: the header formats (`sentry-trace`, `traceparent`, `baggage`), the trace
//! an incoming request continues, the headers an outgoing one carries, and which outgoing
//! requests carry them (`trace_propagation_targets`). Malformed incoming values are ignored.

mod headers;
mod incoming;
mod inject;
mod targets;

pub(crate) use incoming::{incoming_trace, is_trace_header};
pub(crate) use inject::{inject, Outgoing};
pub(crate) use targets::propagates_to;
