//! A transaction that a `before_send_transaction` hook returned, written to envelope bytes for
//! a sink that takes them: every value serialised by `sentry-types` as it always is, in the
//! transaction's layout, but for the start and end times of the transaction and its spans,
//! written in RFC 3339 as the direct writer writes them.
//!
//! `sentry-types` writes `start_timestamp` as float seconds and `timestamp` in RFC 3339; read
//! at millisecond precision (as Spotlight reads them), a sub-millisecond request then ended
//! before it started. The views below borrow the transaction's fields and declare the same
//! layout (`skip_serializing_if` as `sentry-types` has them); a property test holds the result
//! equal to the direct writer's, field by field.

use std::collections::BTreeMap;
use std::time::SystemTime;

use sentry_types::protocol::v7::{
    ClientSdkInfo, Context, EnvelopeHeaders, Request, Span, SpanId, SpanStatus, TraceId,
    Transaction, User, Value,
};
use sentry_types::Uuid;
use serde::{Serialize, Serializer};

use super::SerializedEnvelope;

/// The envelope of `tx` under `headers`; `None` if it does not serialise (then the typed
/// envelope goes to the sink instead).
pub(crate) fn envelope(
    headers: &EnvelopeHeaders,
    tx: &Transaction<'static>,
) -> Option<SerializedEnvelope> {
    let payload = serde_json::to_vec(&TransactionView::of(tx)).ok()?;
    let header = serde_json::to_vec(headers).ok()?;
    // The spans the hook left (and the root one).
    Some(super::transaction_envelope(
        &header,
        &payload,
        tx.spans.len(),
    ))
}

#[derive(Serialize)]
struct TransactionView<'a> {
    #[serde(serialize_with = "simple_id")]
    event_id: &'a Uuid,
    #[serde(rename = "transaction", skip_serializing_if = "Option::is_none")]
    name: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: &'a Option<User>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extra: &'a BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sdk: Option<&'a ClientSdkInfo>,
    #[serde(skip_serializing_if = "is_default_platform")]
    platform: &'a str,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_opt"
    )]
    timestamp: &'a Option<SystemTime>,
    #[serde(serialize_with = "rfc3339")]
    start_timestamp: &'a SystemTime,
    spans: Vec<SpanView<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    contexts: &'a BTreeMap<String, Context>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: &'a Option<Request>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
}

impl<'a> TransactionView<'a> {
    fn of(tx: &'a Transaction<'static>) -> Self {
        TransactionView {
            event_id: &tx.event_id,
            name: &tx.name,
            release: tx.release.as_deref(),
            environment: tx.environment.as_deref(),
            user: &tx.user,
            tags: &tx.tags,
            extra: &tx.extra,
            sdk: tx.sdk.as_deref(),
            platform: &tx.platform,
            timestamp: &tx.timestamp,
            start_timestamp: &tx.start_timestamp,
            spans: tx.spans.iter().map(SpanView::of).collect(),
            contexts: &tx.contexts,
            request: &tx.request,
            server_name: tx.server_name.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct SpanView<'a> {
    span_id: &'a SpanId,
    trace_id: &'a TraceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: &'a Option<SpanId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    same_process_as_parent: &'a Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: &'a Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_opt"
    )]
    timestamp: &'a Option<SystemTime>,
    #[serde(serialize_with = "rfc3339")]
    start_timestamp: &'a SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: &'a Option<SpanStatus>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    data: &'a BTreeMap<String, Value>,
}

impl<'a> SpanView<'a> {
    fn of(span: &'a Span) -> Self {
        SpanView {
            span_id: &span.span_id,
            trace_id: &span.trace_id,
            parent_span_id: &span.parent_span_id,
            same_process_as_parent: &span.same_process_as_parent,
            op: &span.op,
            description: &span.description,
            timestamp: &span.timestamp,
            start_timestamp: &span.start_timestamp,
            status: &span.status,
            tags: &span.tags,
            data: &span.data,
        }
    }
}

/// As `sentry-types` writes an event id: 32 hex digits, no hyphens.
fn simple_id<S: Serializer>(id: &&Uuid, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = [0u8; 32];
    serializer.serialize_str(id.as_simple().encode_lower(&mut text))
}

/// `sentry-types` leaves out the platform `other`, its default.
fn is_default_platform(platform: &&str) -> bool {
    *platform == "other"
}

/// An instant in RFC 3339, as the direct writer writes it.
fn rfc3339<S: Serializer>(at: &&SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    let mut quoted = Vec::with_capacity(34);
    super::json::rfc3339(&mut quoted, **at);
    let text = quoted
        .get(1..quoted.len().saturating_sub(1))
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or_default();
    serializer.serialize_str(text)
}

fn rfc3339_opt<S: Serializer>(at: &&Option<SystemTime>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(&at, serializer),
        None => serializer.serialize_none(),
    }
}
