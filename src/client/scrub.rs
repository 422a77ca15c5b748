//! Client-side scrubbing, applied to every event and transaction before any user hook sees it.
//!
//! The rules follow Relay's server-side defaults, so nothing that Sentry would strip on arrival
//! ever leaves the process in the first place.

use std::collections::BTreeMap;

use sentry_types::protocol::v7::{Breadcrumb, Request, Url, Value};

use crate::util::percent_decode;

/// What a scrubbed value is replaced with (the same marker Relay uses).
pub(crate) const FILTERED: &str = "[Filtered]";

/// Substrings that make a header name sensitive (compared in lower case).
const SENSITIVE_HEADER_PARTS: &[&str] = &[
    "auth",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "key",
    "jwt",
    "bearer",
    "sso",
    "saml",
    "csrf",
    "xsrf",
    "credentials",
    "session",
    "cookie",
];

/// Substrings that make a query, body or data key sensitive (compared in lower case).
const SENSITIVE_KEY_PARTS: &[&str] = &[
    "password",
    "secret",
    "passwd",
    "api_key",
    "api-key",
    "apikey",
    "auth",
    "credentials",
    "mysql_pwd",
    "privatekey",
    "private_key",
    "private-key",
    "token",
    "key",
    "session",
    "csrf",
    "xsrf",
    "jwt",
];

/// Whole key names that are sensitive although they contain none of the parts above.
const SENSITIVE_KEYS_EXACT: &[&str] = &["otp", "two_factor", "two-factor", "pwd", "pass"];

/// Headers that carry the client's address: personal data unless `send_default_pii` is on.
const IP_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
    "true-client-ip",
    "cf-connecting-ip",
];

/// Common headers that never carry secrets: checked first, so most headers cost one comparison
/// pass instead of a search per pattern.
const PLAIN_HEADERS: &[&str] = &[
    "host",
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "content-type",
    "content-length",
    "content-encoding",
    "connection",
    "cache-control",
    "pragma",
    "origin",
    "referer",
    "x-request-id",
    "traceparent",
    "sentry-trace",
    "baggage",
];

pub(crate) fn is_sensitive_header(name: &str) -> bool {
    if PLAIN_HEADERS.iter().any(|p| p.eq_ignore_ascii_case(name)) {
        return false;
    }
    SENSITIVE_HEADER_PARTS
        .iter()
        .any(|p| contains_ignore_case(name, p))
}

pub(crate) fn is_sensitive_key(key: &str) -> bool {
    SENSITIVE_KEYS_EXACT
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
        || SENSITIVE_KEY_PARTS
            .iter()
            .any(|p| contains_ignore_case(key, p))
}

/// Whether `haystack` contains the lower-case ASCII `needle`, ignoring ASCII case, without
/// allocating a lower-cased copy.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// `Bearer <token>` anywhere in a value.
fn has_bearer(value: &str) -> bool {
    contains_ignore_case(value, "bearer ")
}

/// Scrubs the `request` interface in place.
pub(crate) fn scrub_request(request: &mut Request, send_default_pii: bool) {
    // In place: no new map, no new strings for what is kept.
    if !send_default_pii {
        request.headers.retain(|name, _| {
            !(name.eq_ignore_ascii_case("cookie")
                || IP_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)))
        });
    }
    for (name, value) in request.headers.iter_mut() {
        if is_sensitive_header(name) || has_bearer(value) {
            FILTERED.clone_into(value);
        }
    }
    if !send_default_pii {
        request.cookies = None;
    } else if request.cookies.is_some() {
        request.cookies = Some(FILTERED.to_owned());
    }
    if let Some(url) = request.url.as_mut() {
        scrub_url(url, &mut request.query_string);
    }
    if let Some(qs) = request.query_string.as_mut() {
        *qs = scrub_query(qs);
    }
    if let Some(data) = request.data.as_mut() {
        if has_bearer(data) {
            *data = FILTERED.to_owned();
        }
    }
    request.env.retain(|k, _| !is_sensitive_key(k));
}

/// Drops userinfo, and moves a query string embedded in the URL into `query_string`.
fn scrub_url(url: &mut Url, query_string: &mut Option<String>) {
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if let Some(q) = url.query() {
        if query_string.is_none() {
            *query_string = Some(q.to_owned());
        }
        url.set_query(None);
    }
    url.set_fragment(None);
}

/// `a=1&token=xyz` → `a=1&token=[Filtered]`.
pub(crate) fn scrub_query(qs: &str) -> String {
    let mut out = String::with_capacity(qs.len());
    for (i, pair) in qs.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = percent_decode(key, true);
        if is_sensitive_key(&decoded) || has_bearer(&percent_decode(value, true)) {
            out.push_str(key);
            out.push('=');
            out.push_str(FILTERED);
        } else {
            out.push_str(pair);
        }
    }
    out
}

/// Scrubs sensitive keys (at any depth) and bearer tokens in free-form data.
pub(crate) fn scrub_map(map: &mut BTreeMap<String, Value>) {
    for (key, value) in map.iter_mut() {
        if is_sensitive_key(key) {
            *value = Value::String(FILTERED.to_owned());
        } else {
            scrub_value(value);
        }
    }
}

fn scrub_value(value: &mut Value) {
    match value {
        Value::String(s) if has_bearer(s) => *s = FILTERED.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(obj) => {
            for (key, v) in obj.iter_mut() {
                if is_sensitive_key(key) {
                    *v = Value::String(FILTERED.to_owned());
                } else {
                    scrub_value(v);
                }
            }
        }
        _ => {}
    }
}

/// Breadcrumb data is free-form: scrub it like any other data.
pub(crate) fn scrub_breadcrumb(crumb: &mut Breadcrumb) {
    scrub_map(&mut crumb.data);
    if let Some(message) = crumb.message.as_mut() {
        if has_bearer(message) {
            *message = FILTERED.to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], url: &str, qs: Option<&str>) -> Request {
        Request {
            url: Some(url.parse().unwrap()),
            query_string: qs.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn sensitive_headers_are_filtered_and_others_kept() {
        let mut r = request(
            &[
                ("Authorization", "Basic dXNlcjpwYXNz"),
                ("Proxy-Authorization", "Basic Zm9v"),
                ("X-Api-Key", "k-123"),
                ("X-Session-Token", "s-123"),
                ("X-Client-Secret", "c-123"),
                ("X-Password", "p-123"),
                ("Set-Cookie", "sid=1"),
                ("X-Custom", "Bearer abc.def"),
                ("Accept", "application/json"),
                ("X-User-Id", "42"),
            ],
            "http://example.com/x",
            None,
        );
        scrub_request(&mut r, false);
        for name in [
            "Authorization",
            "Proxy-Authorization",
            "X-Api-Key",
            "X-Session-Token",
            "X-Client-Secret",
            "X-Password",
            "Set-Cookie",
            "X-Custom",
        ] {
            assert_eq!(r.headers[name], FILTERED, "{name}");
        }
        assert_eq!(r.headers["Accept"], "application/json");
        assert_eq!(r.headers["X-User-Id"], "42");
    }

    #[test]
    fn cookies_and_ip_headers_are_dropped_without_pii() {
        let headers = [("Cookie", "sid=abc"), ("X-Forwarded-For", "203.0.113.9")];
        let mut r = request(&headers, "http://example.com/", None);
        scrub_request(&mut r, false);
        assert!(!r.headers.contains_key("Cookie"));
        assert!(!r.headers.contains_key("X-Forwarded-For"));

        let mut r = request(&headers, "http://example.com/", None);
        scrub_request(&mut r, true);
        assert_eq!(r.headers["Cookie"], FILTERED);
        assert_eq!(r.headers["X-Forwarded-For"], "203.0.113.9");
    }

    #[test]
    fn query_parameters_and_userinfo() {
        let mut r = request(
            &[],
            "https://bob:hunter2@example.com/login?api_key=zzz&page=2",
            None,
        );
        scrub_request(&mut r, false);
        assert_eq!(
            r.url.as_ref().unwrap().as_str(),
            "https://example.com/login"
        );
        assert_eq!(r.query_string.as_deref(), Some("api_key=[Filtered]&page=2"));
        assert_eq!(
            scrub_query("token=a&Password=b&pass%77ord=c&q=rust&auth_code=d&otp=1"),
            "token=[Filtered]&Password=[Filtered]&pass%77ord=[Filtered]&q=rust&auth_code=[Filtered]&otp=[Filtered]"
        );
        assert_eq!(scrub_query("x=Bearer%20abc"), "x=[Filtered]");
    }

    #[test]
    fn case_insensitive_matching() {
        assert!(is_sensitive_header("X-API-KEY"));
        assert!(is_sensitive_header("x-Auth-Token"));
        assert!(!is_sensitive_header("Accept"));
        assert!(!is_sensitive_header("X-Forwarded-Proto"));
        assert!(is_sensitive_key("DB_Password"));
        assert!(is_sensitive_key("OTP"));
        assert!(!is_sensitive_key("page"));
        assert!(has_bearer("x BeArEr abc"));
        assert!(!has_bearer("bear"));
    }

    #[test]
    fn nested_data_is_scrubbed() {
        let mut map = BTreeMap::new();
        map.insert(
            "payload".to_owned(),
            serde_json::json!({"user": {"password": "p", "name": "ann"}, "list": [{"token": "t"}]}),
        );
        map.insert("amount".to_owned(), serde_json::json!(29.99));
        scrub_map(&mut map);
        assert_eq!(map["payload"]["user"]["password"], FILTERED);
        assert_eq!(map["payload"]["user"]["name"], "ann");
        assert_eq!(map["payload"]["list"][0]["token"], FILTERED);
        assert_eq!(map["amount"], 29.99);
    }
}
