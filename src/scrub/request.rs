//! Scrubbing the `request` interface: headers, cookies, the URL, the query string and the body.

use sentry_types::protocol::v7::{Request, Url, Value};

use super::rules::IP_HEADERS;
use super::value::scrub_value;
use super::ScrubRules;
use crate::event::FILTERED;
use crate::util::percent_decode;

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
        request.headers.retain(|name, _| !is_ip_header(name));
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
/// is dropped unless `send_default_pii` is on. A JSON body with nothing to scrub is kept as the
/// client wrote it: re-serialising would reformat it and round its large numbers through `f64`.
pub(crate) fn scrub_body(
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
                if scrub_value(&mut value, rules) {
                    Some(value.to_string())
                } else {
                    Some(data)
                }
            }
            Err(_) if pii => rules.scrub_text(&data).or(Some(data)),
            Err(_) => None,
        },
        Some(crate::event::BodyKind::Form) => Some(scrub_query(&data, rules)),
        _ => Some(rules.scrub_text(&data).unwrap_or(data)),
    }
}

pub(crate) fn scrub_cookies(cookies: &str, rules: &ScrubRules) -> String {
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

/// Whether a header carries the client's address (dropped without `send_default_pii`).
pub(crate) fn is_ip_header(name: &str) -> bool {
    IP_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
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
    scrub_pairs(qs, rules, true)
}

/// A query string with its sensitive pairs left out, for a span's `http.query`: Sentry's default
/// scrubbing filters a whole string value in which `token=` or `password=` appears, even with
/// `[Filtered]` after it (a request's `query_string` it reads pair by pair).
pub(crate) fn query_without_secrets(qs: &str, rules: &ScrubRules) -> String {
    scrub_pairs(qs, rules, false)
}

/// The pairs of `qs`, each sensitive one as `key=[Filtered]` when `mark`, else left out.
fn scrub_pairs(qs: &str, rules: &ScrubRules, mark: bool) -> String {
    let mut out = String::with_capacity(qs.len());
    let mut first = true;
    for pair in qs.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded_value = percent_decode(value, true);
        let sensitive = rules.is_sensitive_key(&percent_decode(key, true))
            || rules.scrub_text(&decoded_value).is_some();
        if sensitive && !mark {
            continue;
        }
        if !first {
            out.push('&');
        }
        first = false;
        if sensitive {
            out.push_str(key);
            out.push('=');
            out.push_str(FILTERED);
        } else {
            out.push_str(pair);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_query_leaves_its_secrets_out() {
        let rules = ScrubRules::new();
        let qs = "token=abc&page=2&password=pw&q=Bearer%20x.y";
        assert_eq!(
            scrub_query(qs, &rules),
            "token=[Filtered]&page=2&password=[Filtered]&q=[Filtered]"
        );
        assert_eq!(query_without_secrets(qs, &rules), "page=2");
        assert_eq!(query_without_secrets("secret_token=1", &rules), "");
        assert_eq!(scrub_query("a=1&&b=2", &rules), "a=1&&b=2");
    }

    /// Text that mixes what the scrubbers look for with anything at all.
    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let token = prop_oneof![
            Just("Bearer abc.def".to_owned()),
            Just("token=".to_owned()),
            Just("password".to_owned()),
            Just("4111 1111 1111 1111".to_owned()),
            Just("4111111111111111".to_owned()),
            Just("https://bob:hunter2@db.internal:5432/x?api_key=k&page=2#f".to_owned()),
            Just("[Filtered]".to_owned()),
            "[&=;,%+ ]".prop_map(|s| s.to_owned()),
            "[a-zA-Z0-9_]{1,8}",
            ".{0,6}",
        ];
        proptest::collection::vec(token, 0..12).prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Scrubbing what was scrubbed changes nothing, whatever the input.
        #[test]
        fn scrubbing_is_idempotent(
            value in text(),
            pii: bool,
            content_type in proptest::sample::select(vec![
                "application/json", "application/x-www-form-urlencoded", "text/plain", "image/png",
            ]),
            header in proptest::sample::select(vec!["X-Custom", "Authorization", "Cookie", "Referer"]),
        ) {
            let r = rules();
            let once = scrub_query(&value, &r);
            proptest::prop_assert_eq!(scrub_query(&once, &r), once.clone());
            let once = scrub_cookies(&value, &r);
            proptest::prop_assert_eq!(scrub_cookies(&once, &r), once.clone());
            let once = scrub_body(value.clone(), Some(content_type), pii, &r);
            let twice = once.clone().and_then(|b| scrub_body(b, Some(content_type), pii, &r));
            proptest::prop_assert_eq!(twice, once);
            let once = r.scrub_text(&value).unwrap_or(value.clone());
            proptest::prop_assert_eq!(r.scrub_text(&once), None, "{:?} -> {:?}", value, once);

            let mut request = request(&[(header, value.as_str())], "http://example.com/p", Some(&value));
            scrub_request(&mut request, pii, &r);
            let once = request.clone();
            scrub_request(&mut request, pii, &r);
            proptest::prop_assert_eq!(request, once);
        }
    }

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
    fn bodies_by_content_type() {
        let r = rules();
        let json = r#"{"user":{"name":"ann","password":"p"},"cards":["4111111111111111"],"n":1}"#;
        let out = scrub_body(json.into(), Some("application/json"), false, &r).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["user"]["password"], FILTERED);
        assert_eq!(v["user"]["name"], "ann");
        assert_eq!(v["cards"][0], FILTERED);
        assert_eq!(v["n"], 1);
        // Nothing to scrub: the body stays as written, whitespace and large numbers included.
        let clean = "{ \"id\": 411111111111111141111111111111114111111111111111, \"q\": 0.1 }";
        let out = scrub_body(clean.into(), Some("application/json"), false, &r);
        assert_eq!(out.as_deref(), Some(clean));
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
}
