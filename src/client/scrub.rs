//! Client-side scrubbing, applied to every event and transaction before any user hook sees it.
//!
//! The default rules are at least as strict as Relay's server-side defaults, so nothing that
//! Sentry would strip on arrival leaves the process in the first place.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sentry_types::protocol::v7::{Breadcrumb, Event, Request, Url, Value};

use crate::util::percent_decode;

/// What a scrubbed value is replaced with (the same marker Relay uses).
pub(crate) const FILTERED: &str = "[Filtered]";

const DEFAULT_HEADER_PARTS: &[&str] = &[
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

const DEFAULT_KEY_PARTS: &[&str] = &[
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

const DEFAULT_EXACT_KEYS: &[&str] = &["otp", "two_factor", "two-factor", "pwd", "pass"];

const DEFAULT_COOKIES: &[&str] = &[
    "session",
    "sessionid",
    "__session",
    "user_session",
    "phpsessid",
    "jsessionid",
    "asp.net_sessionid",
    "connect.sid",
    "csrf",
    "xsrf",
    "_csrf",
    "csrftoken",
    "csrf_token",
    "xsrf-token",
    "remember_token",
];

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

/// What counts as a secret. The defaults cover Relay's server-side defaults and more; add or
/// remove rules to fit your data. Patterns match case-insensitively: key and header patterns
/// anywhere in the name, cookie names and exact keys as a whole.
///
/// ```
/// use lighttrace::{Options, ScrubRules};
///
/// let rules = ScrubRules::new()
///     .sensitive_key("ssn")           // also scrub `ssn`, `customer_ssn`, ...
///     .sensitive_header("x-tenant")   // and this header's value
///     .allow_key("key");              // but a key named like `sort_key` is fine here
/// let options = Options::new().scrub_rules(rules);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ScrubRules {
    header_parts: Vec<Cow<'static, str>>,
    key_parts: Vec<Cow<'static, str>>,
    exact_keys: Vec<Cow<'static, str>>,
    cookies: Vec<Cow<'static, str>>,
    credit_cards: bool,
}

impl Default for ScrubRules {
    fn default() -> Self {
        let own = |list: &[&'static str]| list.iter().map(|s| Cow::Borrowed(*s)).collect();
        ScrubRules {
            header_parts: own(DEFAULT_HEADER_PARTS),
            key_parts: own(DEFAULT_KEY_PARTS),
            exact_keys: own(DEFAULT_EXACT_KEYS),
            cookies: own(DEFAULT_COOKIES),
            credit_cards: true,
        }
    }
}

impl ScrubRules {
    /// The default rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys (query parameters, JSON and form fields at any depth, extra and breadcrumb data)
    /// containing `part` are scrubbed.
    pub fn sensitive_key(mut self, part: impl Into<String>) -> Self {
        self.key_parts
            .push(Cow::Owned(part.into().to_ascii_lowercase()));
        self
    }

    /// Headers whose name contains `part` are scrubbed.
    pub fn sensitive_header(mut self, part: impl Into<String>) -> Self {
        self.header_parts
            .push(Cow::Owned(part.into().to_ascii_lowercase()));
        self
    }

    /// The cookie named `name` is scrubbed (cookies are only sent with `send_default_pii`).
    pub fn sensitive_cookie(mut self, name: impl Into<String>) -> Self {
        self.cookies
            .push(Cow::Owned(name.into().to_ascii_lowercase()));
        self
    }

    /// Removes a key pattern or exact key (as listed in the defaults, e.g. `"key"` or `"otp"`).
    pub fn allow_key(mut self, pattern: &str) -> Self {
        self.key_parts.retain(|p| !p.eq_ignore_ascii_case(pattern));
        self.exact_keys.retain(|p| !p.eq_ignore_ascii_case(pattern));
        self
    }

    /// Removes a header pattern (as listed in the defaults, e.g. `"key"`).
    pub fn allow_header(mut self, pattern: &str) -> Self {
        self.header_parts
            .retain(|p| !p.eq_ignore_ascii_case(pattern));
        self
    }

    /// Whether numbers that pass the Luhn check (card numbers) are scrubbed in string values
    /// (default on).
    pub fn credit_cards(mut self, on: bool) -> Self {
        self.credit_cards = on;
        self
    }

    pub(crate) fn is_sensitive_header(&self, name: &str) -> bool {
        if PLAIN_HEADERS.iter().any(|p| p.eq_ignore_ascii_case(name)) {
            return false;
        }
        self.header_parts
            .iter()
            .any(|p| contains_ignore_case(name, p))
    }

    pub(crate) fn is_sensitive_key(&self, key: &str) -> bool {
        self.exact_keys.iter().any(|k| k.eq_ignore_ascii_case(key))
            || self.key_parts.iter().any(|p| contains_ignore_case(key, p))
    }

    fn is_sensitive_cookie(&self, name: &str) -> bool {
        self.cookies.iter().any(|c| c.eq_ignore_ascii_case(name)) || self.is_sensitive_key(name)
    }

    /// A free-form string with bearer tokens, URL credentials and sensitive query parameters
    /// (a `Referer`, an error that prints the URL it failed on) and card numbers removed, if
    /// it had any.
    fn scrub_text(&self, value: &str) -> Option<String> {
        if has_bearer(value) {
            return Some(FILTERED.to_owned());
        }
        let urls = self.scrub_urls(value);
        let text = urls.as_deref().unwrap_or(value);
        let cards = if self.credit_cards {
            scrub_cards(text)
        } else {
            None
        };
        cards.or(urls)
    }

    /// Userinfo and sensitive query parameters of every `scheme://…` URL in `text`.
    fn scrub_urls(&self, text: &str) -> Option<String> {
        if !text.contains("://") {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut changed = false;
        while let Some(pos) = rest.find("://") {
            let after = &rest[pos + 3..];
            let end = after
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '}' | ',')
                })
                .unwrap_or(after.len());
            let (url, tail) = after.split_at(end);
            out.push_str(&rest[..pos + 3]);
            let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
            let (authority, path) = url.split_at(authority_end);
            let host = match authority.rsplit_once('@') {
                Some((_, host)) => {
                    changed = true;
                    host
                }
                None => authority,
            };
            out.push_str(host);
            match path.split_once('?') {
                Some((before, query)) => {
                    let (query, fragment) = match query.split_once('#') {
                        Some((q, f)) => (q, Some(f)),
                        None => (query, None),
                    };
                    let clean = scrub_query(query, self);
                    changed |= clean != query;
                    out.push_str(before);
                    out.push('?');
                    out.push_str(&clean);
                    if let Some(f) = fragment {
                        out.push('#');
                        out.push_str(f);
                    }
                }
                None => out.push_str(path),
            }
            rest = tail;
        }
        out.push_str(rest);
        changed.then_some(out)
    }

    fn scrub_string(&self, value: &mut String) {
        if let Some(clean) = self.scrub_text(value) {
            *value = clean;
        }
    }
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

/// Replaces runs of 13 to 19 digits (spaces and dashes allowed between them) that pass the
/// Luhn check. `None` when there is nothing to replace.
fn scrub_cards(value: &str) -> Option<String> {
    if value.bytes().filter(u8::is_ascii_digit).count() < 13 {
        return None;
    }
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut changed = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // A run of digits with single separators.
        let start = i;
        let mut end = i;
        let mut digits = Vec::with_capacity(19);
        let mut j = i;
        while j < bytes.len() {
            let b = bytes[j];
            if b.is_ascii_digit() {
                digits.push(b - b'0');
                end = j + 1;
                j += 1;
            } else if matches!(b, b' ' | b'-')
                && j + 1 < bytes.len()
                && bytes[j + 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        if (13..=19).contains(&digits.len()) && luhn(&digits) {
            out.push_str(&value[copied..start]);
            out.push_str(FILTERED);
            copied = end;
            changed = true;
        }
        i = end.max(i + 1);
    }
    if !changed {
        return None;
    }
    out.push_str(&value[copied..]);
    Some(out)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Scrubs the `request` interface in place.
pub(crate) fn scrub_request(request: &mut Request, send_default_pii: bool, rules: &ScrubRules) {
    // Cookies leave the headers: without PII they are dropped, with it they go to `cookies`
    // with sensitive values scrubbed.
    let cookie_header = request
        .headers
        .keys()
        .find(|k| k.eq_ignore_ascii_case("cookie"))
        .cloned();
    let cookie = cookie_header.and_then(|k| request.headers.remove(&k));
    let cookies = cookie.or_else(|| request.cookies.take());
    request.cookies = match cookies {
        Some(c) if send_default_pii => Some(scrub_cookies(&c, rules)),
        _ => None,
    };
    if !send_default_pii {
        request
            .headers
            .retain(|name, _| !IP_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)));
    }
    let content_type = request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone());
    for (name, value) in request.headers.iter_mut() {
        if rules.is_sensitive_header(name) {
            FILTERED.clone_into(value);
        } else {
            rules.scrub_string(value);
        }
    }
    if let Some(url) = request.url.as_mut() {
        scrub_url(url, &mut request.query_string);
    }
    if let Some(qs) = request.query_string.as_mut() {
        *qs = scrub_query(qs, rules);
    }
    if let Some(data) = request.data.take() {
        request.data = scrub_body(data, content_type.as_deref(), send_default_pii, rules);
    }
    request.env.retain(|k, _| !rules.is_sensitive_key(k));
}

/// A body by its content type: JSON with sensitive keys scrubbed at any depth, forms pair by
/// pair, text for bearer tokens and card numbers. A raw body that does not parse as its type
/// is dropped unless `send_default_pii` is on.
fn scrub_body(
    data: String,
    content_type: Option<&str>,
    pii: bool,
    rules: &ScrubRules,
) -> Option<String> {
    if crate::event::is_summary(&data) {
        return Some(data);
    }
    match content_type.and_then(crate::event::BodyKind::from_content_type) {
        Some(crate::event::BodyKind::Json) => match serde_json::from_str::<Value>(&data) {
            Ok(mut value) => {
                scrub_value(&mut value, rules);
                Some(value.to_string())
            }
            Err(_) if pii => rules.scrub_text(&data).or(Some(data)),
            Err(_) => None,
        },
        Some(crate::event::BodyKind::Form) => Some(scrub_query(&data, rules)),
        _ => Some(rules.scrub_text(&data).unwrap_or(data)),
    }
}

fn scrub_cookies(cookies: &str, rules: &ScrubRules) -> String {
    cookies
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if rules.is_sensitive_cookie(name.trim()) => {
                format!("{}={FILTERED}", name.trim())
            }
            Some((name, value)) => match rules.scrub_text(value) {
                Some(clean) => format!("{}={clean}", name.trim()),
                None => pair.to_owned(),
            },
            None => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Drops userinfo, and moves a query string embedded in the URL into `query_string`.
fn scrub_url(url: &mut Url, query_string: &mut Option<String>) {
    // Each setter re-serialises the URL: only call the ones with something to remove.
    if !url.username().is_empty() {
        let _ = url.set_username("");
    }
    if url.password().is_some() {
        let _ = url.set_password(None);
    }
    if let Some(q) = url.query() {
        if query_string.is_none() {
            *query_string = Some(q.to_owned());
        }
        url.set_query(None);
    }
    if url.fragment().is_some() {
        url.set_fragment(None);
    }
}

/// `a=1&token=xyz` → `a=1&token=[Filtered]`; values are checked for bearer tokens and cards.
pub(crate) fn scrub_query(qs: &str, rules: &ScrubRules) -> String {
    let mut out = String::with_capacity(qs.len());
    for (i, pair) in qs.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded_value = percent_decode(value, true);
        if rules.is_sensitive_key(&percent_decode(key, true))
            || rules.scrub_text(&decoded_value).is_some()
        {
            out.push_str(key);
            out.push('=');
            out.push_str(FILTERED);
        } else {
            out.push_str(pair);
        }
    }
    out
}

/// Scrubs sensitive keys (at any depth), bearer tokens and cards in free-form data.
pub(crate) fn scrub_map(map: &mut BTreeMap<String, Value>, rules: &ScrubRules) {
    for (key, value) in map.iter_mut() {
        if rules.is_sensitive_key(key) {
            *value = Value::String(FILTERED.to_owned());
        } else {
            scrub_value(value, rules);
        }
    }
}

fn scrub_value(value: &mut Value, rules: &ScrubRules) {
    match value {
        Value::String(s) => rules.scrub_string(s),
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_value(v, rules)),
        Value::Object(obj) => {
            for (key, v) in obj.iter_mut() {
                if rules.is_sensitive_key(key) {
                    *v = Value::String(FILTERED.to_owned());
                } else {
                    scrub_value(v, rules);
                }
            }
        }
        _ => {}
    }
}

/// Breadcrumb data and messages are free-form: scrub them like any other data.
pub(crate) fn scrub_breadcrumb(crumb: &mut Breadcrumb, rules: &ScrubRules) {
    scrub_map(&mut crumb.data, rules);
    if let Some(message) = crumb.message.as_mut() {
        rules.scrub_string(message);
    }
}

/// Messages and exception values can quote secrets too (an error that prints a card number).
pub(crate) fn scrub_messages(event: &mut Event<'static>, rules: &ScrubRules) {
    if let Some(message) = event.message.as_mut() {
        rules.scrub_string(message);
    }
    for exception in event.exception.values.iter_mut() {
        if let Some(value) = exception.value.as_mut() {
            rules.scrub_string(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ScrubRules {
        ScrubRules::default()
    }

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
        scrub_request(&mut r, false, &rules());
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
    fn cookies_and_ip_headers_without_and_with_pii() {
        let headers = [
            ("Cookie", "sessionid=abc; theme=dark; auth_token=t"),
            ("X-Forwarded-For", "203.0.113.9"),
        ];
        let mut r = request(&headers, "http://example.com/", None);
        scrub_request(&mut r, false, &rules());
        assert!(!r.headers.contains_key("Cookie"));
        assert!(r.cookies.is_none());
        assert!(!r.headers.contains_key("X-Forwarded-For"));

        let mut r = request(&headers, "http://example.com/", None);
        scrub_request(&mut r, true, &rules());
        assert!(!r.headers.contains_key("Cookie"), "moved to `cookies`");
        assert_eq!(
            r.cookies.as_deref(),
            Some("sessionid=[Filtered]; theme=dark; auth_token=[Filtered]")
        );
        assert_eq!(r.headers["X-Forwarded-For"], "203.0.113.9");
    }

    #[test]
    fn query_parameters_and_userinfo() {
        let mut r = request(
            &[],
            "https://bob:hunter2@example.com/login?api_key=zzz&page=2",
            None,
        );
        scrub_request(&mut r, false, &rules());
        assert_eq!(
            r.url.as_ref().unwrap().as_str(),
            "https://example.com/login"
        );
        assert_eq!(r.query_string.as_deref(), Some("api_key=[Filtered]&page=2"));
        assert_eq!(
            scrub_query("token=a&Password=b&pass%77ord=c&q=rust&auth_code=d&otp=1", &rules()),
            "token=[Filtered]&Password=[Filtered]&pass%77ord=[Filtered]&q=rust&auth_code=[Filtered]&otp=[Filtered]"
        );
        assert_eq!(scrub_query("x=Bearer%20abc", &rules()), "x=[Filtered]");
        assert_eq!(
            scrub_query("card=4111+1111+1111+1111", &rules()),
            "card=[Filtered]"
        );
    }

    #[test]
    fn case_insensitive_matching() {
        let r = rules();
        assert!(r.is_sensitive_header("X-API-KEY"));
        assert!(r.is_sensitive_header("x-Auth-Token"));
        assert!(!r.is_sensitive_header("Accept"));
        assert!(!r.is_sensitive_header("X-Forwarded-Proto"));
        assert!(r.is_sensitive_key("DB_Password"));
        assert!(r.is_sensitive_key("OTP"));
        assert!(!r.is_sensitive_key("page"));
        assert!(has_bearer("x BeArEr abc"));
        assert!(!has_bearer("bear"));
    }

    #[test]
    fn rules_can_be_added_and_removed() {
        let r = ScrubRules::new()
            .sensitive_key("ssn")
            .allow_key("key")
            .sensitive_header("X-Tenant");
        assert!(r.is_sensitive_key("customer_SSN"));
        assert!(!r.is_sensitive_key("sort_key"));
        assert!(r.is_sensitive_key("api_key"), "api_key is its own pattern");
        assert!(r.is_sensitive_header("x-tenant-id"));
        assert!(ScrubRules::new()
            .credit_cards(false)
            .scrub_text("4111111111111111")
            .is_none());
    }

    #[test]
    fn urls_inside_text_lose_credentials_and_sensitive_parameters() {
        let r = rules();
        assert_eq!(
            r.scrub_text("error sending request for url (https://api.example.com/v1?token=abc&page=2): timed out").as_deref(),
            Some("error sending request for url (https://api.example.com/v1?token=[Filtered]&page=2): timed out")
        );
        assert_eq!(
            r.scrub_text("https://bob:hunter2@db.internal:5432/x")
                .as_deref(),
            Some("https://db.internal:5432/x")
        );
        assert_eq!(r.scrub_text("see https://example.com/docs?page=2"), None);
        assert_eq!(r.scrub_text("no url here"), None);
    }

    #[test]
    fn card_numbers_pass_luhn_only() {
        assert_eq!(
            scrub_cards("paid with 4111 1111 1111 1111 today").as_deref(),
            Some("paid with [Filtered] today")
        );
        assert_eq!(
            scrub_cards("5500-0000-0000-0004").as_deref(),
            Some("[Filtered]")
        );
        assert_eq!(
            scrub_cards("378282246310005").as_deref(),
            Some("[Filtered]")
        );
        assert_eq!(scrub_cards("order 4111111111111112"), None, "fails Luhn");
        assert_eq!(scrub_cards("id 1234"), None);
        assert_eq!(scrub_cards("ts 1700000000000000000000"), None, "too long");
    }

    #[test]
    fn bodies_by_content_type() {
        let r = rules();
        let json = r#"{"user":{"name":"ann","password":"p"},"cards":["4111111111111111"],"n":1}"#;
        let out = scrub_body(json.into(), Some("application/json"), false, &r).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["user"]["password"], FILTERED);
        assert_eq!(v["user"]["name"], "ann");
        assert_eq!(v["cards"][0], FILTERED);
        assert_eq!(v["n"], 1);
        assert_eq!(
            scrub_body(
                "a=1&secret=s".into(),
                Some("application/x-www-form-urlencoded"),
                false,
                &r
            )
            .as_deref(),
            Some("a=1&secret=[Filtered]")
        );
        assert_eq!(
            scrub_body("{not json".into(), Some("application/json"), false, &r),
            None
        );
        assert!(scrub_body("{not json".into(), Some("application/json"), true, &r).is_some());
        assert_eq!(
            scrub_body(
                "Authorization: Bearer abc".into(),
                Some("text/plain"),
                false,
                &r
            )
            .as_deref(),
            Some(FILTERED)
        );
    }

    #[test]
    fn nested_data_is_scrubbed() {
        let mut map = BTreeMap::new();
        map.insert(
            "payload".to_owned(),
            serde_json::json!({"user": {"password": "p", "name": "ann"}, "list": [{"token": "t"}]}),
        );
        map.insert("amount".to_owned(), serde_json::json!(29.99));
        scrub_map(&mut map, &rules());
        assert_eq!(map["payload"]["user"]["password"], FILTERED);
        assert_eq!(map["payload"]["user"]["name"], "ann");
        assert_eq!(map["payload"]["list"][0]["token"], FILTERED);
        assert_eq!(map["amount"], 29.99);
    }
}
