//! The `request` interface of an event, as the struct the event carries, scrubbed as it is
//! built: the same rules as `scrub::scrub_request` applies to the struct, with the header
//! names' spelling and verdicts taken from the writer's table, so the event's scrub pass has
//! nothing left to do in it.

use std::collections::BTreeMap;

use sentry_types::protocol::v7::Request;

use super::names::{Kind, Names};
use super::request::has_repeated_headers;
use crate::client::scrub::{self, ScrubRules};
use crate::event::{header_text, RequestSnapshot, FILTERED};

/// The scrubbed `request` interface of `request`.
pub(super) fn build(
    request: &RequestSnapshot,
    pii: bool,
    rules: &ScrubRules,
    names: &mut Names,
) -> Request {
    if has_repeated_headers(request) {
        // Repeated headers are joined under one name: rare enough to take the struct path.
        let mut interface = request.to_request_interface();
        scrub::scrub_request(&mut interface, pii, rules);
        return interface;
    }
    // Collected, then built in one go: the map sorts once and fills its node, where inserting
    // searched it and shifted entries for every header.
    let mut headers = Vec::with_capacity(request.headers.len());
    let mut cookies = None;
    // The body is read by the type the client declared, before any scrubbing of that header.
    let mut content_type = None;
    for (name, value) in &request.headers {
        let (canonical, kind) = names.canonical(name.as_str(), rules);
        if kind == Kind::Cookie && pii {
            cookies = Some(scrub::scrub_cookies(&header_text(value), rules));
        }
        if !kind.shown(pii) {
            continue;
        }
        let shown = if kind.filtered() {
            FILTERED.to_owned()
        } else {
            scrubbed(value, rules)
        };
        if name == http::header::CONTENT_TYPE {
            content_type = Some(header_text(value));
        }
        headers.push((canonical.to_owned(), shown));
    }
    Request {
        url: request.url(),
        method: Some(request.method.as_str().to_owned()),
        data: request
            .body
            .as_ref()
            .and_then(|b| b.data())
            .and_then(|data| scrub::scrub_body(data, content_type.as_deref(), pii, rules)),
        query_string: request.uri.query().map(|q| scrub::scrub_query(q, rules)),
        cookies,
        headers: BTreeMap::from_iter(headers),
        ..Default::default()
    }
}

/// A header's value as text, scrubbed.
fn scrubbed(value: &http::HeaderValue, rules: &ScrubRules) -> String {
    let text = header_text(value);
    match rules.scrub_text(&text) {
        Some(clean) => clean,
        None => text.into_owned(),
    }
}
