//! The scrubbed `request` interface of a request snapshot: the one place that decides what each
//! of its parts shows (which headers, filtered or scrubbed, the cookies, the query string, the
//! body). Two consumers walk it: [`build`] makes the struct an event or a hooked transaction
//! carries, and the wire writer writes a transaction's JSON from the same walk, without the
//! struct.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sentry_types::protocol::v7::Request;

use super::names::{HeaderKind, HeaderNames, Spelling};
use super::ScrubRules;
use crate::event::{header_text, RequestSnapshot, FILTERED};

/// What a shown header's value is.
pub(crate) enum HeaderValue<'a> {
    /// `[Filtered]`.
    Filtered,
    /// ASCII without quotes, backslashes or control characters that no rule changes: shown as
    /// it came (and written to JSON as it is). Bytes, not `str`: they were checked already.
    Plain(&'a [u8]),
    /// The value as text, scrubbed.
    Text(Cow<'a, str>),
}

impl HeaderValue<'_> {
    fn into_string(self) -> String {
        match self {
            HeaderValue::Filtered => FILTERED.to_owned(),
            // ASCII, checked: `from_utf8` takes its word-at-a-time fast path.
            HeaderValue::Plain(bytes) => std::str::from_utf8(bytes).map_or_else(
                |_| String::from_utf8_lossy(bytes).into_owned(),
                str::to_owned,
            ),
            HeaderValue::Text(text) => text.into_owned(),
        }
    }
}

/// What receives the scrubbed parts, in the order the interface lists them. The URL and the
/// method are facts of the snapshot that no rule changes; each consumer writes them its way.
pub(crate) trait Parts {
    /// The body, scrubbed by its declared content type.
    fn data(&mut self, data: &str);
    /// The query string, sensitive keys filtered.
    fn query_string(&mut self, query: &str);
    /// The `Cookie` header, sensitive cookies filtered (with `send_default_pii` only).
    fn cookies(&mut self, cookies: &str);
    /// A header shown by its canonical name (repeated headers are joined under one).
    fn header(&mut self, name: Spelling<'_>, value: HeaderValue<'_>);
}

/// Walks the scrubbed parts of `request`: the body, the query string, the cookies, then every
/// header but the cookie and, without `pii`, the client's address.
pub(crate) fn walk(
    request: &RequestSnapshot,
    pii: bool,
    rules: &ScrubRules,
    names: &mut HeaderNames,
    parts: &mut impl Parts,
) {
    if let Some(data) = request.body.as_ref().and_then(|b| b.data()) {
        // Read by the type the client declared, before any scrubbing of that header.
        let content_type = request
            .headers
            .iter()
            .find(|(name, _)| name == http::header::CONTENT_TYPE)
            .map(|(_, value)| header_text(value));
        if let Some(data) = super::scrub_body(data, content_type.as_deref(), pii, rules) {
            parts.data(&data);
        }
    }
    if let Some(query) = request.uri.query() {
        parts.query_string(&super::scrub_query(query, rules));
    }
    if pii {
        let mut cookies = request
            .headers
            .iter()
            .filter(|(name, _)| name == http::header::COOKIE)
            .map(|(_, value)| header_text(value));
        if let Some(first) = cookies.next() {
            // Repeated `Cookie` headers are joined, as all repeated headers are.
            let joined = cookies.fold(first, |mut all, more| {
                let all_text = all.to_mut();
                all_text.push_str(", ");
                all_text.push_str(&more);
                all
            });
            parts.cookies(&super::scrub_cookies(&joined, rules));
        }
    }
    if has_repeated_headers(request) {
        // Joined under one name, as HTTP allows: rare enough to allocate for.
        return walk_joined(request, pii, rules, names, parts);
    }
    for (name, value) in &request.headers {
        let (canonical, kind) = names.get(name.as_str(), rules);
        if !kind.shown(pii) {
            continue;
        }
        let shown = if kind.filtered() {
            HeaderValue::Filtered
        } else {
            scrubbed(value, rules)
        };
        parts.header(canonical, shown);
    }
}

/// The headers when a name occurs more than once: each name once, its values joined.
fn walk_joined(
    request: &RequestSnapshot,
    pii: bool,
    rules: &ScrubRules,
    names: &mut HeaderNames,
    parts: &mut impl Parts,
) {
    let mut joined: Vec<(String, HeaderKind, String)> = Vec::new();
    for (name, value) in &request.headers {
        let (spelling, kind) = names.get(name.as_str(), rules);
        if !kind.shown(pii) {
            continue;
        }
        let quoted = spelling.as_quoted();
        let text = header_text(value);
        match joined.iter_mut().find(|(n, _, _)| n == quoted) {
            Some((_, _, values)) => {
                values.push_str(", ");
                values.push_str(&text);
            }
            None => joined.push((quoted.to_owned(), kind, text.into_owned())),
        }
    }
    for (name, kind, text) in joined {
        let shown = if kind.filtered() {
            HeaderValue::Filtered
        } else {
            match rules.scrub_text(&text) {
                Some(clean) => HeaderValue::Text(Cow::Owned(clean)),
                None => HeaderValue::Text(Cow::Owned(text)),
            }
        };
        parts.header(Spelling::quoted(&name), shown);
    }
}

/// A header's value as the interface shows it, scrubbed as text.
#[inline]
fn scrubbed<'a>(value: &'a http::HeaderValue, rules: &ScrubRules) -> HeaderValue<'a> {
    let bytes = value.as_bytes();
    if !value.is_sensitive()
        && crate::util::words::is_plain_ascii(bytes)
        && !rules.may_change_text(bytes)
    {
        // Most values: printable ASCII as it came, nothing to escape or scrub.
        return HeaderValue::Plain(bytes);
    }
    let text = header_text(value);
    match rules.scrub_text(&text) {
        Some(clean) => HeaderValue::Text(Cow::Owned(clean)),
        None => HeaderValue::Text(text),
    }
}

/// Whether a header name occurs twice (lists are short: comparing pairs is cheaper than a set).
fn has_repeated_headers(request: &RequestSnapshot) -> bool {
    let headers = &request.headers;
    (1..headers.len()).any(|i| headers[..i].iter().any(|(name, _)| *name == headers[i].0))
}

/// The scrubbed `request` interface of `request`, as the struct an event carries.
pub(crate) fn build(
    request: &RequestSnapshot,
    pii: bool,
    rules: &ScrubRules,
    names: &mut HeaderNames,
) -> Request {
    struct Built {
        request: Request,
        /// Collected, then made a map in one go: the map sorts once and fills its node, where
        /// inserting searched it and shifted entries for every header.
        headers: Vec<(String, String)>,
    }
    impl Parts for Built {
        fn data(&mut self, data: &str) {
            self.request.data = Some(data.to_owned());
        }
        fn query_string(&mut self, query: &str) {
            self.request.query_string = Some(query.to_owned());
        }
        fn cookies(&mut self, cookies: &str) {
            self.request.cookies = Some(cookies.to_owned());
        }
        fn header(&mut self, name: Spelling<'_>, value: HeaderValue<'_>) {
            self.headers
                .push((name.canonical().to_owned(), value.into_string()));
        }
    }
    let mut built = Built {
        request: Request {
            url: request.url(),
            method: Some(request.method.as_str().to_owned()),
            ..Default::default()
        },
        headers: Vec::with_capacity(request.headers.len()),
    };
    walk(request, pii, rules, names, &mut built);
    built.request.headers = BTreeMap::from_iter(built.headers);
    built.request
}
