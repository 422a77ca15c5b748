//! A transaction that a `before_send_transaction` hook returned, written to envelope bytes for
//! a sink that takes them: serialised by `sentry-types`, with the transaction's and its spans'
//! `start_timestamp` in RFC 3339, as the direct writer gives them.
//!
//! `sentry-types` writes `start_timestamp` as float seconds and `timestamp` in RFC 3339; read
//! at millisecond precision (as Spotlight reads them), a sub-millisecond request then ended
//! before it started.

use std::time::SystemTime;

use sentry_types::protocol::v7::{EnvelopeHeaders, Transaction};
use serde_json::{Map, Value};

use super::json;
use crate::sink::SerializedEnvelope;

/// The envelope of `tx` under `headers`; `None` if it does not serialise (then the typed
/// envelope goes to the sink instead).
pub(crate) fn envelope(
    headers: &EnvelopeHeaders,
    tx: &Transaction<'static>,
) -> Option<SerializedEnvelope> {
    let mut payload = serde_json::to_value(tx).ok()?;
    let object = payload.as_object_mut()?;
    start_in_rfc3339(object, tx.start_timestamp);
    if let Some(Value::Array(spans)) = object.get_mut("spans") {
        for (json, span) in spans.iter_mut().zip(&tx.spans) {
            if let Some(span_object) = json.as_object_mut() {
                start_in_rfc3339(span_object, span.start_timestamp);
            }
        }
    }
    let payload = serde_json::to_vec(&payload).ok()?;
    let header = serde_json::to_vec(headers).ok()?;
    // The spans the hook left (and the root one).
    Some(super::transaction_envelope(
        &header,
        &payload,
        tx.spans.len(),
    ))
}

/// Replaces the float `start_timestamp` of `object` with `at` in RFC 3339.
fn start_in_rfc3339(object: &mut Map<String, Value>, at: SystemTime) {
    if let Some(slot) = object.get_mut("start_timestamp") {
        let mut quoted = Vec::with_capacity(34);
        json::rfc3339(&mut quoted, at);
        let text = quoted
            .get(1..quoted.len().saturating_sub(1))
            .and_then(|t| std::str::from_utf8(t).ok());
        if let Some(text) = text {
            *slot = Value::String(text.to_owned());
        }
    }
}
