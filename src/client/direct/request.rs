//! The `request` interface of a transaction, scrubbed as it is written: the same rules as
//! `scrub::scrub_request` applies to the struct, without building the struct.

use super::json::{self, string, Object};
use super::names::Names;
use crate::client::scrub::{self, ScrubRules};
use crate::event::{header_text, RequestSnapshot, FILTERED};

/// Writes the scrubbed `request` interface of `request` as a JSON object.
pub(super) fn write(
    out: &mut Vec<u8>,
    request: &RequestSnapshot,
    pii: bool,
    rules: &ScrubRules,
    scratch: &mut String,
    names: &mut Names,
) {
    if has_repeated_headers(request) {
        // Repeated headers are joined under one name: rare enough to take the struct path.
        let mut interface = request.to_request_interface();
        scrub::scrub_request(&mut interface, pii, rules);
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &interface);
        return;
    }
    let mut object = Object::new(out);
    scratch.clear();
    if request.write_url(scratch) {
        object.str("url", scratch);
    }
    object.str("method", request.method.as_str());
    if let Some(data) = request.body.as_ref().and_then(|b| b.data()) {
        let content_type = request
            .headers
            .iter()
            .find(|(name, _)| name == http::header::CONTENT_TYPE)
            .map(|(_, value)| header_text(value));
        if let Some(data) = scrub::scrub_body(data, content_type.as_deref(), pii, rules) {
            object.str("data", &data);
        }
    }
    if let Some(query) = request.uri.query() {
        object.str("query_string", &scrub::scrub_query(query, rules));
    }
    if pii {
        let cookie = request
            .headers
            .iter()
            .find(|(name, _)| name == http::header::COOKIE);
        if let Some((_, value)) = cookie {
            object.str("cookies", &scrub::scrub_cookies(&header_text(value), rules));
        }
    }
    write_headers(&mut object, request, pii, rules, names);
    object.end();
}

/// The `headers` field (last in the object, written when a header is shown): every header
/// but the cookie (sent as `cookies`) and, without `pii`, the client's address, by canonical
/// name, sensitive ones filtered.
fn write_headers(
    object: &mut Object<'_>,
    request: &RequestSnapshot,
    pii: bool,
    rules: &ScrubRules,
    names: &mut Names,
) {
    let mut opened = false;
    for (name, value) in &request.headers {
        let (key, kind) = names.get(name.as_str(), rules);
        if !kind.shown(pii) {
            continue;
        }
        let out = if opened {
            let out = object.value();
            out.push(b',');
            out
        } else {
            opened = true;
            let out = object.field("headers");
            out.push(b'{');
            out
        };
        out.extend_from_slice(key);
        if kind.filtered() {
            string(out, FILTERED);
        } else {
            write_value(out, value, rules);
        }
    }
    if opened {
        object.value().push(b'}');
    }
}

/// A header's value, scrubbed as text.
fn write_value(out: &mut Vec<u8>, value: &http::HeaderValue, rules: &ScrubRules) {
    let bytes = value.as_bytes();
    if !value.is_sensitive() && json::is_plain_ascii(bytes) && !rules.may_change_text(bytes) {
        // Most values: text as it came, nothing to escape or scrub.
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let text = header_text(value);
    match rules.scrub_text(&text) {
        Some(clean) => string(out, &clean),
        None => string(out, &text),
    }
}

/// Whether a header name occurs twice (lists are short: comparing pairs is cheaper than a set).
pub(super) fn has_repeated_headers(request: &RequestSnapshot) -> bool {
    let headers = &request.headers;
    (1..headers.len()).any(|i| headers[..i].iter().any(|(name, _)| *name == headers[i].0))
}
