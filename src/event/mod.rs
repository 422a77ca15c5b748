//! The shared vocabulary of every stage: what the request path captures (the request snapshot,
//! trace ids, scope data), the plain values handed to the worker (`Finished`, `Capture`), and the
//! pure builders that turn them into protocol values when something is sent.
//!
//! A leaf: it imports nothing from the rest of the crate but `util`'s pure helpers and the
//! stack traces of `stacktrace`, and calls nothing that does (the scrubbed request interface and
//! the breadcrumb hook are applied by the client).

mod body;
mod build;
mod exception;
mod finished;
pub(crate) mod grpc;
mod ids;
#[cfg(feature = "tracing")]
mod log;
pub(crate) mod performance;
mod records;
mod request;
mod scope_data;
mod trace;

pub(crate) use body::{is_summary, BodyCapture, BodyKind};
#[cfg(feature = "tracing")]
pub(crate) use build::new_event;
pub(crate) use build::{capture_event, failure_event, sdk_info, transaction};
pub(crate) use exception::{error_chain, panic_exception, ErrorValue, PanicDetails};
pub(crate) use finished::{Capture, CaptureContext, Captured, Failure, Finished, RequestOutcome};
pub(crate) use ids::{new_event_id, new_span_id, new_trace_id, sample_rand_of, sample_rand_within};
#[cfg(feature = "tracing")]
pub(crate) use log::{log_item, LogBatch, LogRecord};
#[cfg(feature = "tracing")]
pub(crate) use records::LoggedCrumb;
pub(crate) use records::{Crumb, SpanRecord, SpanText};
#[cfg(any(feature = "tracing", feature = "diesel", test))]
pub(crate) use records::{DbFacts, DbSystem};
pub(crate) use request::{
    header_text, push_canonical_header_name, RequestSnapshot, Route, UNMATCHED_ROUTE,
};
pub(crate) use scope_data::{apply_to_event, ScopeData};
pub(crate) use trace::{origin_of, span_status_for, DscInput, IncomingTrace, TraceIds};

/// What a scrubbed value is replaced with (the same marker Relay uses).
pub(crate) const FILTERED: &str = "[Filtered]";
