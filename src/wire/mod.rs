//! The wire format: a request's transaction written straight to envelope bytes, for a sink
//! that takes them and when no `before_send_transaction` hook needs the struct; a hooked
//! transaction's bytes (`hooked`); the transaction envelope's framing; and the JSON writing
//! they share (`json`, `hex`). Scrubbed as it is written, from `scrub::interface` and the
//! scrub rules.
//!
//! The struct path (`event::transaction`, defaults, `scrub::transaction`, `Envelope`, then
//! serialising it in the sink) allocates a few dozen times per transaction and walks the data
//! three times; this writes the same JSON once. The tests below hold the two paths equal,
//! field by field, on varied requests; CI passes what this writes through Relay's normaliser.

mod categories;
mod hex;
pub(crate) mod hooked;
mod json;
mod request;
mod serialized;
mod span;

use span::write_span;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use sentry_types::protocol::v7::{SampleRand, SpanId};

use crate::event::{self, Finished, RequestSnapshot};
use crate::scrub::{self, HeaderNames, ScrubRules};
pub(crate) use categories::item_categories;
use json::{rfc3339, string, Object};
pub use serialized::SerializedEnvelope;

/// Writes a client's transactions (and builds its events' `request` interfaces): the parts its
/// options fix are written once, and the buffers and header names are reused from one
/// transaction or event to the next.
pub(crate) struct Writer {
    fixed: Fixed,
    /// The options' tags, merged with a transaction's own.
    tags: BTreeMap<String, String>,
    pii: bool,
    rules: ScrubRules,
    reused: Mutex<Reused>,
}

/// What a client's options fix about what it writes, handed over once.
pub(crate) struct Setup {
    pub(crate) release: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) server_name: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
    /// The DSN's public key (without a DSN there is no sampling context).
    pub(crate) public_key: Option<String>,
    pub(crate) org_id: Option<u64>,
    /// `send_default_pii`.
    pub(crate) pii: bool,
    pub(crate) rules: ScrubRules,
}

/// Fields the options fix, written once as `"a":…,"b":…` (empty when there are none).
struct Fixed {
    /// `release` and `environment`, in the transaction and in the sampling context.
    release_environment: Vec<u8>,
    /// The options' tags, for a transaction whose scope set none.
    tags: Vec<u8>,
    /// `sdk` and `platform`.
    sdk_platform: Vec<u8>,
    server_name: Vec<u8>,
    /// The DSN's public key; `None` without a DSN (then there is no sampling context).
    public_key: Option<Vec<u8>>,
    org_id: Vec<u8>,
}

/// What one transaction borrows while it is written.
struct Reused {
    payload: Vec<u8>,
    header: Vec<u8>,
    /// The transaction's name as a JSON string (written twice).
    name: Vec<u8>,
    /// The last sample rate and its text.
    sample_rate: Option<(u32, Vec<u8>)>,
    scratch: String,
    names: HeaderNames,
}

impl Writer {
    pub(crate) fn new(setup: Setup) -> Self {
        let fields = |write: &dyn Fn(&mut Object<'_>)| {
            let mut out = Vec::new();
            let mut object = Object::new(&mut out);
            write(&mut object);
            object.end();
            // Without the braces: spliced into objects being written.
            out[1..out.len() - 1].to_vec()
        };
        let fixed = Fixed {
            release_environment: fields(&|o| {
                if let Some(release) = &setup.release {
                    o.str("release", release);
                }
                if let Some(environment) = &setup.environment {
                    o.str("environment", environment);
                }
            }),
            tags: fields(&|o| write_tags(o, None, &setup.tags)),
            sdk_platform: fields(&|o| {
                o.field("sdk").extend_from_slice(sdk_json());
                o.str("platform", "native");
            }),
            server_name: fields(&|o| {
                if let Some(server_name) = &setup.server_name {
                    o.str("server_name", server_name);
                }
            }),
            public_key: setup
                .public_key
                .as_ref()
                .map(|key| fields(&|o| o.str("public_key", key))),
            org_id: fields(&|o| {
                if let Some(org) = setup.org_id {
                    let mut digits = Vec::with_capacity(20);
                    json::uint(&mut digits, org);
                    o.plain("org_id", &digits);
                }
            }),
        };
        Writer {
            fixed,
            tags: setup.tags,
            pii: setup.pii,
            rules: setup.rules,
            reused: Mutex::new(Reused {
                payload: Vec::new(),
                header: Vec::new(),
                name: Vec::new(),
                sample_rate: None,
                scratch: String::new(),
                names: HeaderNames::new(),
            }),
        }
    }

    /// The envelope of a finished, sampled request's transaction: headers (with the sampling
    /// context), the item header, the transaction.
    pub(crate) fn transaction_envelope(&self, finished: &Finished) -> SerializedEnvelope {
        let mut id = [0u8; 32];
        let event_id = event::new_event_id();
        event_id.simple().encode_lower(&mut id);
        let facts = Facts {
            event_id: id,
            trace_id: hex::trace_id(finished.trace.trace_id),
            span_id: hex::span_id(finished.trace.span_id),
            root: finished.trace.span_id,
        };
        // The client's worker writes (or, when no worker thread could start, the threads that
        // submit): the lock is uncontended but for that fallback (a poisoned one held buffers
        // only, which are cleared before use).
        let mut reused = self.reused.lock().unwrap_or_else(|e| e.into_inner());
        let reused = &mut *reused;
        reused.name.clear();
        write_name(&mut reused.name, &finished.request);
        reused.payload.clear();
        self.write_transaction(reused, finished, &facts);
        reused.header.clear();
        self.write_header(
            &mut reused.header,
            finished,
            &facts,
            &reused.name,
            &mut reused.sample_rate,
        );
        let spans = finished.data.as_ref().map_or(0, |d| d.spans.len());
        let envelope = transaction_envelope(&reused.header, &reused.payload, spans);
        // A huge transaction does not keep its buffer alive on the worker.
        if reused.payload.capacity() > 64 * 1024 {
            reused.payload = Vec::new();
        }
        envelope
    }

    /// The scrubbed `request` interface of an event (which keeps the struct path), built with
    /// the header names' table this writer keeps.
    pub(crate) fn request_interface(
        &self,
        request: &RequestSnapshot,
    ) -> sentry_types::protocol::v7::Request {
        // The client's worker builds (or, when no worker thread could start, the threads that
        // submit): the lock is uncontended but for that fallback.
        let mut reused = self.reused.lock().unwrap_or_else(|e| e.into_inner());
        scrub::interface::build(request, self.pii, &self.rules, &mut reused.names)
    }

    /// The envelope header line: the event id, `sent_at` and the sampling context.
    fn write_header(
        &self,
        out: &mut Vec<u8>,
        finished: &Finished,
        facts: &Facts,
        name: &[u8],
        last_rate: &mut Option<(u32, Vec<u8>)>,
    ) {
        let mut header = Object::new(out);
        header.plain("event_id", &hyphenated(&facts.event_id));
        rfc3339(header.field("sent_at"), SystemTime::now());
        match &finished.upstream_dsc {
            Some(upstream) => header.json("trace", &**upstream),
            // Relay requires a public key in the trace header: without a DSN there is none.
            None => {
                if let Some(public_key) = &self.fixed.public_key {
                    let mut trace = Object::new(header.field("trace"));
                    trace.plain("trace_id", &facts.trace_id);
                    trace.fields(public_key);
                    sample_rate(
                        trace.field("sample_rate"),
                        finished.trace.sample_rate,
                        last_rate,
                    );
                    if SampleRand::try_from(finished.trace.sample_rand).is_ok() {
                        sample_rand(trace.field("sample_rand"), finished.trace.sample_rand);
                    }
                    // A string in the sampling context, as `sentry-types` writes it.
                    trace.plain(
                        "sampled",
                        if finished.trace.sampled {
                            b"true"
                        } else {
                            b"false"
                        },
                    );
                    trace.fields(&self.fixed.release_environment);
                    trace.field("transaction").extend_from_slice(name);
                    trace.fields(&self.fixed.org_id);
                    trace.end();
                }
            }
        }
        header.end();
    }
}

/// A transaction's envelope: the header line, the item header, the payload; counted as one
/// transaction and its `spans` spans plus the root one.
fn transaction_envelope(header: &[u8], payload: &[u8], spans: usize) -> SerializedEnvelope {
    let mut bytes = Vec::with_capacity(header.len() + payload.len() + 48);
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(b"\n{\"type\":\"transaction\",\"length\":");
    json::uint(&mut bytes, payload.len() as u64);
    bytes.extend_from_slice(b"}\n");
    bytes.extend_from_slice(payload);
    bytes.push(b'\n');
    let spans = u32::try_from(spans.saturating_add(1)).unwrap_or(u32::MAX);
    SerializedEnvelope::transaction(bytes, spans)
}

/// The event id's 32 hex digits in the 8-4-4-4-12 form of the envelope header.
fn hyphenated(simple: &[u8; 32]) -> [u8; 36] {
    let mut out = [b'-'; 36];
    out[..8].copy_from_slice(&simple[..8]);
    out[9..13].copy_from_slice(&simple[8..12]);
    out[14..18].copy_from_slice(&simple[12..16]);
    out[19..23].copy_from_slice(&simple[16..20]);
    out[24..].copy_from_slice(&simple[20..]);
    out
}

/// What is written more than once, or costs formatting: made once per transaction.
pub(super) struct Facts {
    /// The event id's 32 hex digits.
    event_id: [u8; 32],
    /// The trace and root span ids in hex.
    trace_id: [u8; 32],
    span_id: [u8; 16],
    root: SpanId,
}

impl Writer {
    /// The transaction itself, as the struct path would serialise it after defaults and
    /// scrubbing.
    fn write_transaction(&self, reused: &mut Reused, finished: &Finished, facts: &Facts) {
        let rules = &self.rules;
        let data = finished.data.as_deref();
        let trace = &finished.trace;
        let mut tx = Object::new(&mut reused.payload);
        tx.plain("event_id", &facts.event_id);
        tx.field("transaction").extend_from_slice(&reused.name);
        tx.fields(&self.fixed.release_environment);
        if let Some(user) = data.and_then(|d| d.user.as_deref()) {
            let mut user = user.clone();
            scrub::scrub_map(&mut user.other, rules);
            tx.json("user", &user);
        }
        match data.map(|d| &d.tags).filter(|t| !t.is_empty()) {
            Some(own) => write_tags(&mut tx, Some(own), &self.tags),
            None => tx.fields(&self.fixed.tags),
        }
        if let Some(extra) = data.map(|d| &d.extra).filter(|e| !e.is_empty()) {
            let mut extra = extra.clone();
            scrub::scrub_map(&mut extra, rules);
            tx.json("extra", &extra);
        }
        tx.fields(&self.fixed.sdk_platform);
        rfc3339(tx.field("timestamp"), finished.finished);
        // RFC 3339 like `timestamp` (the struct path writes seconds as a float): a viewer that
        // reads both at millisecond precision (Spotlight) then never shows a negative duration.
        rfc3339(tx.field("start_timestamp"), finished.request.started);
        let spans = tx.field("spans");
        spans.push(b'[');
        for (i, span) in data.map_or(&[][..], |d| &d.spans[..]).iter().enumerate() {
            if i > 0 {
                spans.push(b',');
            }
            write_span(spans, span, facts, rules, &mut reused.scratch);
        }
        spans.push(b']');
        // The contexts, their fixed parts written whole.
        let out = tx.field("contexts");
        out.extend_from_slice(b"{\"response\":{\"type\":\"response\",\"status_code\":");
        json::uint(out, u64::from(finished.status));
        out.extend_from_slice(b"},\"trace\":{\"type\":\"trace\",\"span_id\":\"");
        out.extend_from_slice(&facts.span_id);
        out.extend_from_slice(b"\",\"trace_id\":\"");
        out.extend_from_slice(&facts.trace_id);
        out.push(b'"');
        if let Some(parent) = trace.parent_span_id {
            out.extend_from_slice(b",\"parent_span_id\":\"");
            out.extend_from_slice(&hex::span_id(parent));
            out.push(b'"');
        }
        if finished.request.grpc {
            // A gRPC call: its op, status and RPC attributes, as the struct path has them.
            out.extend_from_slice(b",\"op\":");
            string(out, finished.op());
            out.extend_from_slice(b",\"status\":");
            json::serde_json_value::Json::write(&finished.span_status(), out);
            out.extend_from_slice(b",\"origin\":");
            string(out, event::origin_of(finished.op()));
            out.extend_from_slice(b",\"data\":");
            let mut data = Object::new(&mut *out);
            for (key, value) in finished.span_data() {
                json::serde_json_value::Json::write(&value, data.key(key));
            }
            data.end();
            out.extend_from_slice(b"}}");
        } else {
            out.extend_from_slice(b",\"op\":\"http.server\",\"status\":");
            json::serde_json_value::Json::write(&finished.span_status(), out);
            out.extend_from_slice(
                b",\"origin\":\"auto.http.lighttrace\",\"data\":{\"http.response.status_code\":",
            );
            json::uint(out, u64::from(finished.status));
            out.extend_from_slice(b"}}}");
        }
        request::write(
            tx.field("request"),
            &finished.request,
            self.pii,
            rules,
            &mut reused.scratch,
            &mut reused.names,
        );
        tx.fields(&self.fixed.server_name);
        tx.end();
    }
}

/// A `sample_rand` as the sampling context's string, as `sentry-types` writes it (six
/// decimals, never rounded up to 1), from its millionths: float formatting cost ~750
/// instructions per transaction.
fn sample_rand(out: &mut Vec<u8>, rand: f64) {
    let micros = ((rand * 1e6).round() as u32).min(999_999);
    let mut text = *b"\"0.000000\"";
    let mut n = micros;
    for digit in text[3..9].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&text);
}

/// A sample rate as `sentry-types` writes it in the sampling context (its `Display`, quoted),
/// formatted only when it differs from the last one (`last`).
fn sample_rate(out: &mut Vec<u8>, rate: f32, last: &mut Option<(u32, Vec<u8>)>) {
    if !matches!(last, Some((bits, _)) if *bits == rate.to_bits()) {
        use std::io::Write;
        let mut text = Vec::with_capacity(16);
        // Writing into a Vec cannot fail.
        let _ = write!(text, "\"{rate}\"");
        *last = Some((rate.to_bits(), text));
    }
    if let Some((_, text)) = last {
        out.extend_from_slice(text);
    }
}

/// The transaction's name (`RequestSnapshot::transaction_name`) as a JSON string, written
/// without formatting it first.
fn write_name(out: &mut Vec<u8>, request: &RequestSnapshot) {
    match request.name() {
        Some(name) => string(out, name),
        None => {
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

/// The SDK's identity, serialised once.
fn sdk_json() -> &'static [u8] {
    static SDK: OnceLock<Vec<u8>> = OnceLock::new();
    SDK.get_or_init(|| serde_json::to_vec(&*event::sdk_info()).unwrap_or_else(|_| b"{}".to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample rate's text follows the rate when it changes, and is reused when it does not.
    #[test]
    fn the_sample_rate_text_follows_the_rate() {
        let mut last = None;
        for rate in [1.0f32, 0.25, 0.25, 1.0, 0.1] {
            let mut out = Vec::new();
            sample_rate(&mut out, rate, &mut last);
            assert_eq!(out, format!("\"{rate}\"").into_bytes());
        }
    }

    #[test]
    fn sample_rand_has_six_decimals_and_never_reads_one() {
        for (rand, text) in [
            (0.0, "\"0.000000\""),
            (0.25, "\"0.250000\""),
            (0.123_456, "\"0.123456\""),
            (0.000_001, "\"0.000001\""),
            (0.999_999_7, "\"0.999999\""),
        ] {
            let mut out = Vec::new();
            sample_rand(&mut out, rand);
            assert_eq!(String::from_utf8(out).unwrap(), text);
            // As sentry-types writes it.
            let theirs = SampleRand::try_from(rand).unwrap().to_string();
            assert_eq!(text.trim_matches('"'), theirs);
        }
        // Every value of the grid sample_rand is drawn on reads as sentry-types writes it.
        for micros in (0..1_000_000u32).step_by(997) {
            let rand = f64::from(micros) / 1e6;
            let mut out = Vec::new();
            sample_rand(&mut out, rand);
            let theirs = SampleRand::try_from(rand).unwrap().to_string();
            assert_eq!(String::from_utf8(out).unwrap().trim_matches('"'), theirs);
        }
    }
}
