//! A request's transaction written straight to envelope bytes, for a sink that takes them and
//! when no `before_send_transaction` hook needs the struct.
//!
//! The struct path (`event::transaction`, defaults, `scrub::transaction`, `Envelope`, then
//! serialising it in the sink) allocates a few dozen times per transaction and walks the data
//! three times; this writes the same JSON once. The tests below hold the two paths equal,
//! field by field, on varied requests; CI passes what this writes through Relay's normaliser.

mod hex;
mod json;
mod request;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::SystemTime;

use sentry_types::protocol::v7::client_report::Category;
use sentry_types::protocol::v7::{SpanId, Value};

use super::options::Options;
use super::scrub;
use crate::event::{
    self, span_status_for, Finished, RequestSnapshot, SpanRecord, SpanText, FILTERED,
};
use crate::sink::SerializedEnvelope;
use json::{rfc3339, seconds, string, Object};

/// The envelope of a finished, sampled request's transaction: headers (with the sampling
/// context), the item header, the transaction.
pub(super) fn transaction_envelope(options: &Options, finished: &Finished) -> SerializedEnvelope {
    thread_local! {
        static SCRATCH: RefCell<(Vec<u8>, String)> = const { RefCell::new((Vec::new(), String::new())) };
    }
    let facts = Facts {
        event_id: event::new_event_id(),
        trace_id: hex::trace_id(finished.trace.trace_id),
        span_id: hex::span_id(finished.trace.span_id),
        root: finished.trace.span_id,
    };
    let write = |payload: &mut Vec<u8>, scratch: &mut String| {
        payload.clear();
        write_transaction(payload, options, finished, &facts, scratch);
        envelope(options, finished, &facts, payload)
    };
    let bytes = SCRATCH
        .try_with(|cell| {
            let (payload, scratch) = &mut *cell.borrow_mut();
            let bytes = write(payload, scratch);
            // A huge transaction does not keep its buffer alive on the worker.
            if payload.capacity() > 64 * 1024 {
                *payload = Vec::new();
            }
            bytes
        })
        .unwrap_or_else(|_| write(&mut Vec::new(), &mut String::new()));
    let spans = finished.data.as_ref().map_or(0, |d| d.spans.len());
    let spans = u32::try_from(spans + 1).unwrap_or(u32::MAX);
    SerializedEnvelope::new(
        bytes,
        vec![(Category::Transaction, 1), (Category::Span, spans)],
    )
}

/// What is written more than once, or costs formatting: made once per transaction.
struct Facts {
    event_id: sentry_types::Uuid,
    /// The trace and root span ids in hex.
    trace_id: [u8; 32],
    span_id: [u8; 16],
    root: SpanId,
}

/// Envelope header line, item header line, payload, newline.
fn envelope(options: &Options, finished: &Finished, facts: &Facts, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 512);
    let mut header = Object::new(&mut out);
    let mut id = [0u8; 36];
    header.plain(
        "event_id",
        facts.event_id.hyphenated().encode_lower(&mut id).as_bytes(),
    );
    rfc3339(header.field("sent_at"), SystemTime::now());
    match &finished.upstream_dsc {
        Some(upstream) => header.json("trace", &**upstream),
        // Relay requires a public key in the trace header: without a DSN there is none.
        None => {
            if let Some(dsn) = &options.dsn {
                let mut trace = Object::new(header.field("trace"));
                trace.plain("trace_id", &facts.trace_id);
                trace.str("public_key", dsn.public_key());
                sample_rate(trace.field("sample_rate"), finished.trace.sample_rate);
                trace.plain(
                    "sampled",
                    if finished.trace.sampled {
                        b"true"
                    } else {
                        b"false"
                    },
                );
                if let Some(release) = &options.release {
                    trace.str("release", release);
                }
                if let Some(environment) = &options.environment {
                    trace.str("environment", environment);
                }
                write_name(trace.field("transaction"), &finished.request);
                if let Some(org) = options.effective_org_id() {
                    let mut digits = Vec::with_capacity(20);
                    json::uint(&mut digits, org);
                    trace.plain("org_id", &digits);
                }
                trace.end();
            }
        }
    }
    header.end();
    out.extend_from_slice(b"\n{\"type\":\"transaction\",\"length\":");
    json::uint(&mut out, payload.len() as u64);
    out.extend_from_slice(b"}\n");
    out.extend_from_slice(payload);
    out.push(b'\n');
    out
}

/// The transaction itself, as the struct path would serialise it after defaults and
/// scrubbing.
fn write_transaction(
    out: &mut Vec<u8>,
    options: &Options,
    finished: &Finished,
    facts: &Facts,
    scratch: &mut String,
) {
    let rules = &options.scrub_rules;
    let data = finished.data.as_deref();
    let trace = &finished.trace;
    let mut tx = Object::new(out);
    let mut id = [0u8; 32];
    tx.plain(
        "event_id",
        facts.event_id.simple().encode_lower(&mut id).as_bytes(),
    );
    write_name(tx.field("transaction"), &finished.request);
    if let Some(release) = &options.release {
        tx.str("release", release);
    }
    if let Some(environment) = &options.environment {
        tx.str("environment", environment);
    }
    if let Some(user) = data.and_then(|d| d.user.as_deref()) {
        let mut user = user.clone();
        scrub::scrub_map(&mut user.other, rules);
        tx.json("user", &user);
    }
    write_tags(&mut tx, data.map(|d| &d.tags), &options.tags);
    if let Some(extra) = data.map(|d| &d.extra).filter(|e| !e.is_empty()) {
        let mut extra = extra.clone();
        scrub::scrub_map(&mut extra, rules);
        tx.json("extra", &extra);
    }
    tx.field("sdk").extend_from_slice(sdk_json());
    tx.str("platform", "native");
    rfc3339(tx.field("timestamp"), finished.finished);
    seconds(tx.field("start_timestamp"), finished.request.started);
    let spans = tx.field("spans");
    spans.push(b'[');
    for (i, span) in data.map_or(&[][..], |d| &d.spans[..]).iter().enumerate() {
        if i > 0 {
            spans.push(b',');
        }
        write_span(spans, span, facts, rules, scratch);
    }
    spans.push(b']');
    let status = span_status_for(finished.status);
    let mut contexts = Object::new(tx.field("contexts"));
    let mut response = Object::new(contexts.field("response"));
    response.str("type", "response");
    response.uint("status_code", u64::from(finished.status));
    response.end();
    let mut context = Object::new(contexts.field("trace"));
    context.str("type", "trace");
    context.plain("span_id", &facts.span_id);
    context.plain("trace_id", &facts.trace_id);
    if let Some(parent) = trace.parent_span_id {
        context.plain("parent_span_id", &hex::span_id(parent));
    }
    context.str("op", "http.server");
    context.json("status", &status);
    context.str("origin", "auto.http.lighttrace");
    let mut data = Object::new(context.field("data"));
    data.uint("http.response.status_code", u64::from(finished.status));
    data.end();
    context.end();
    contexts.end();
    request::write(
        tx.field("request"),
        &finished.request,
        options.send_default_pii,
        rules,
        scratch,
    );
    if let Some(server_name) = &options.server_name {
        tx.str("server_name", server_name);
    }
    tx.end();
}

/// A sample rate as `sentry-types` writes it in the sampling context (its `Display`, quoted),
/// formatted once per rate a thread sees in a row.
fn sample_rate(out: &mut Vec<u8>, rate: f32) {
    thread_local! {
        static LAST: RefCell<Option<(u32, Vec<u8>)>> = const { RefCell::new(None) };
    }
    let format = |out: &mut Vec<u8>| {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "\"{rate}\"");
    };
    let cached = LAST.try_with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((bits, text)) if *bits == rate.to_bits() => out.extend_from_slice(text),
            _ => {
                let mut text = Vec::with_capacity(16);
                format(&mut text);
                out.extend_from_slice(&text);
                *last = Some((rate.to_bits(), text));
            }
        }
    });
    if cached.is_err() {
        format(out);
    }
}

/// The transaction's name (`RequestSnapshot::transaction_name`) as a JSON string, written
/// without formatting it first.
fn write_name(out: &mut Vec<u8>, request: &RequestSnapshot) {
    match &request.route {
        Some(event::Route::Named(name)) => string(out, name),
        _ => {
            out.push(b'"');
            json::escape(out, request.method.as_str());
            out.push(b' ');
            json::escape(out, request.route().unwrap_or(event::UNMATCHED_ROUTE));
            out.push(b'"');
        }
    }
}

/// The scope's tags, then the options' tags it does not set; nothing when both are empty.
fn write_tags(
    tx: &mut Object<'_>,
    own: Option<&BTreeMap<String, String>>,
    defaults: &BTreeMap<String, String>,
) {
    let own = own.filter(|t| !t.is_empty());
    if own.is_none() && defaults.is_empty() {
        return;
    }
    let mut tags = Object::new(tx.field("tags"));
    for (key, value) in own.into_iter().flatten() {
        string(tags.key(key), value);
    }
    for (key, value) in defaults {
        if !own.is_some_and(|own| own.contains_key(key)) {
            string(tags.key(key), value);
        }
    }
    tags.end();
}

/// One child span, its description and data scrubbed.
fn write_span(
    out: &mut Vec<u8>,
    span: &SpanRecord,
    facts: &Facts,
    rules: &scrub::ScrubRules,
    scratch: &mut String,
) {
    let mut object = Object::new(out);
    object.plain("span_id", &hex::span_id(span.span_id));
    object.plain("trace_id", &facts.trace_id);
    if span.parent == facts.root {
        object.plain("parent_span_id", &facts.span_id);
    } else {
        object.plain("parent_span_id", &hex::span_id(span.parent));
    }
    write_text(object.field("op"), &span.op, None, scratch);
    write_text(
        object.field("description"),
        &span.description,
        Some(rules),
        scratch,
    );
    rfc3339(object.field("timestamp"), span.end);
    seconds(object.field("start_timestamp"), span.start);
    object.json("status", &span.status);
    if !span.data.is_empty() {
        let mut data = Object::new(object.field("data"));
        for (i, (key, value)) in span.data.iter().enumerate() {
            // A key set twice keeps its last value, as the struct's map does.
            if span.data[i + 1..].iter().any(|(k, _)| k == key) {
                continue;
            }
            let out = data.key(key);
            if rules.is_sensitive_key(key) {
                string(out, FILTERED);
                continue;
            }
            match value {
                Value::String(s) => match rules.scrub_text(s) {
                    Some(clean) => string(out, &clean),
                    None => string(out, s),
                },
                Value::Array(_) | Value::Object(_) => {
                    let mut value = value.clone();
                    scrub::scrub_value(&mut value, rules);
                    json::serde_json_value::Json::write(&value, out);
                }
                _ => json::serde_json_value::Json::write(value, out),
            }
        }
        data.end();
    }
    object.end();
}

/// A span's op or description as a JSON string, scrubbed when `rules` are given.
fn write_text(
    out: &mut Vec<u8>,
    text: &SpanText,
    rules: Option<&scrub::ScrubRules>,
    scratch: &mut String,
) {
    let text: &str = match text {
        SpanText::Borrowed(s) => s,
        SpanText::Owned(s) => s,
        SpanText::Path(a, b) => {
            scratch.clear();
            scratch.push_str(a);
            scratch.push_str("::");
            scratch.push_str(b);
            scratch
        }
    };
    match rules.and_then(|r| r.scrub_text(text)) {
        Some(clean) => string(out, &clean),
        None => string(out, text),
    }
}

/// The SDK's identity, serialised once.
fn sdk_json() -> &'static [u8] {
    static SDK: OnceLock<Vec<u8>> = OnceLock::new();
    SDK.get_or_init(|| serde_json::to_vec(&*event::sdk_info()).unwrap_or_else(|_| b"{}".to_vec()))
}

#[cfg(test)]
mod tests;
