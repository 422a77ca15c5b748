//! What the request path keeps of a request (cheap clones only), and the `request` interface
//! and breadcrumb built from it when something is sent.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::SystemTime;

use http::header::{HeaderName, HeaderValue};
use http::{Method, Uri};
use sentry_types::protocol::v7::{Breadcrumb, Level, Url};

use super::BodyCapture;

/// The route template a request matched, kept without allocating on the request path (but
/// for a gRPC call's).
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// axum's `MatchedPath` (an `Arc<str>` inside, so cloning it is cheap).
    #[cfg(feature = "axum")]
    Axum(axum::extract::MatchedPath),
    /// A gRPC call's path, `/package.Service/Method` (the request URI's own bytes, shared):
    /// its method is its route.
    Grpc(http::uri::PathAndQuery),
}

impl Route {
    /// The template, e.g. `/users/{user_id}`.
    pub(crate) fn as_str(&self) -> &str {
        match *self {
            #[cfg(feature = "axum")]
            Route::Axum(ref path) => path.as_str(),
            Route::Grpc(ref path) => path.path(),
        }
    }
}

/// The name every request that matched no route shares, so 404 scans cannot explode the number of
/// transaction names.
pub(crate) const UNMATCHED_ROUTE: &str = "<unmatched>";

/// What the request path keeps about a request: cheap clones only.
#[derive(Clone, Debug)]
pub(crate) struct RequestSnapshot {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    /// The request headers in order: a plain list is one allocation, where cloning the
    /// `HeaderMap` would be two plus rebuilding its index.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) route: Option<Route>,
    /// The transaction name the layer's `transaction_name` closure gave, if any.
    pub(crate) name: Option<String>,
    /// A gRPC call (`content-type: application/grpc…`).
    pub(crate) grpc: bool,
    pub(crate) started: SystemTime,
    /// The first bytes of the body, for JSON, form and text bodies.
    pub(crate) body: Option<std::sync::Arc<BodyCapture>>,
    /// The client's address (only collected with `send_default_pii`).
    pub(crate) client_ip: Option<std::net::IpAddr>,
}

impl RequestSnapshot {
    /// The user's name for the transaction, else `GET /users/{user_id}`, or the shared
    /// unmatched name.
    pub(crate) fn transaction_name(&self) -> String {
        if let Some(name) = self.name() {
            return name.to_owned();
        }
        let route = self.route().unwrap_or(UNMATCHED_ROUTE);
        // Joined by hand: `format!` goes through the formatting machinery and grows the string
        // twice, and every event and transaction names itself.
        let method = self.method.as_str();
        let mut name = String::with_capacity(method.len() + 1 + route.len());
        name.push_str(method);
        name.push(' ');
        name.push_str(route);
        name
    }

    /// The name the request was given: the user's, else a gRPC call's method
    /// (`package.Service/Method`, its route without the leading slash).
    pub(crate) fn name(&self) -> Option<&str> {
        match (&self.name, &self.route) {
            (Some(name), _) => Some(name),
            (None, Some(Route::Grpc(path))) => Some(path.path().trim_start_matches('/')),
            (None, _) => None,
        }
    }

    /// The matched route template, if any.
    pub(crate) fn route(&self) -> Option<&str> {
        self.route.as_ref().map(Route::as_str)
    }

    /// An estimate of the heap bytes this snapshot keeps alive, for bounding queues by memory.
    pub(crate) fn retained_bytes(&self) -> usize {
        // A header costs its name and value, plus their `Bytes` handles and the list entry.
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 80)
            .sum();
        let body = self.body.as_ref().map_or(0, |b| b.retained_bytes());
        let uri = self.uri.path_and_query().map_or(0, |p| p.as_str().len())
            + self.uri.authority().map_or(0, |a| a.as_str().len());
        headers + uri + body
    }

    /// The `request` interface, unscrubbed: the tests' reference for the scrubbed interface
    /// that `scrub::interface` builds (scrubbed by `scrub::scrub_request`, the two must agree).
    #[cfg(test)]
    pub(crate) fn to_request_interface(&self) -> sentry_types::protocol::v7::Request {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &self.headers {
            let value = header_text(value);
            // Repeated headers are joined, as HTTP allows.
            headers
                .entry(canonical_header_name(name.as_str()))
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        sentry_types::protocol::v7::Request {
            url: self.url(),
            method: Some(self.method.as_str().to_owned()),
            query_string: self.uri.query().map(str::to_owned),
            data: self.body.as_ref().and_then(|b| b.data()),
            headers,
            ..Default::default()
        }
    }

    /// The URL of [`url`](Self::url) as text, appended to `out`; `false` when there is none.
    /// Most paths are written as they are after a per-thread cached base: only one that the
    /// URL parser would change (dot segments, characters it escapes) is parsed.
    pub(crate) fn write_url(&self, out: &mut String) -> bool {
        let path = self.uri.path();
        let Some((scheme, host)) = self.origin() else {
            return false;
        };
        if path_is_plain(path) {
            let written = with_urls(scheme, host, |urls| {
                out.push_str(urls.base.as_str().strip_suffix('/')?);
                out.push_str(path);
                Some(())
            });
            if written.is_some() {
                return true;
            }
        }
        match self.url() {
            Some(url) => {
                out.push_str(url.as_str());
                true
            }
            None => false,
        }
    }

    /// The scheme and host the URL is made of (userinfo stripped), if the host is usable.
    fn origin(&self) -> Option<(&str, &str)> {
        let scheme = self.uri.scheme_str().unwrap_or("http");
        let host = self
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| {
                self.headers
                    .iter()
                    .find(|(name, _)| name == http::header::HOST)
                    .and_then(|(_, h)| h.to_str().ok())
            })
            .unwrap_or("localhost");
        // The client strips userinfo too; doing it here means it never even reaches a hook.
        // A `Host` header is whatever the client sent: one that is empty or would carry a path,
        // query or fragment into the URL gives no URL at all. One pass finds both.
        let mut start = 0;
        let mut unusable = false;
        for (i, b) in host.bytes().enumerate() {
            match b {
                b'@' => {
                    start = i + 1;
                    unusable = false;
                }
                b'/' | b'\\' | b'?' | b'#' => unusable = true,
                _ => {}
            }
        }
        // `@` is ASCII: the slice starts on a character boundary.
        let host = host.get(start..)?;
        if host.is_empty() || unusable {
            return None;
        }
        Some((scheme, host))
    }

    /// The absolute URL without its query string (the query goes into `query_string`) and
    /// without userinfo.
    pub(crate) fn url(&self) -> Option<Url> {
        let (scheme, host) = self.origin()?;
        let path = self.uri.path();
        with_urls(scheme, host, |urls| {
            if let Some(last) = urls.last.as_ref().filter(|_| urls.last_path == path) {
                return Some(last.clone());
            }
            let mut url = urls.base.clone();
            url.set_path(path);
            // A long path is not kept alive on the thread.
            if path.len() <= MAX_KEPT_PATH {
                urls.last_path.clear();
                urls.last_path.push_str(path);
                urls.last = Some(url.clone());
            }
            Some(url)
        })
        // The thread is being torn down (or the origin alone does not parse): parse it whole.
        .or_else(|| Url::parse(&format!("{scheme}://{host}{path}")).ok())
    }

    /// The automatic breadcrumb for the request itself, made only when an event is built.
    pub(crate) fn breadcrumb(&self) -> Breadcrumb {
        let mut data = BTreeMap::new();
        data.insert("method".into(), self.method.as_str().into());
        data.insert("url".into(), self.uri.path().into());
        Breadcrumb {
            timestamp: self.started,
            ty: "http".into(),
            category: Some("request".into()),
            level: Level::Info,
            message: Some({
                let (method, path) = (self.method.as_str(), self.uri.path());
                let mut message = String::with_capacity(method.len() + 1 + path.len());
                message.push_str(method);
                message.push(' ');
                message.push_str(path);
                message
            }),
            data,
        }
    }
}

/// Runs `f` on this thread's URLs for `{scheme}://{host}`, made anew when the origin differs
/// from the last one. Parsing the scheme and host (IDNA included) was most of the cost of a
/// request's URL, and a service answers on few hosts: both the URL text the direct writer
/// appends and the parsed URL of an event start from the base kept here. `None` when the
/// thread is being torn down or the origin does not parse.
fn with_urls<R>(scheme: &str, host: &str, f: impl FnOnce(&mut Urls) -> Option<R>) -> Option<R> {
    thread_local! {
        static URLS: RefCell<Option<Urls>> = const { RefCell::new(None) };
    }
    URLS.try_with(|urls| {
        let mut urls = urls.borrow_mut();
        if !urls
            .as_ref()
            .is_some_and(|u| is_origin(&u.origin, scheme, host))
        {
            let base = Url::parse(&format!("{scheme}://{host}/")).ok()?;
            *urls = Some(Urls {
                origin: format!("{scheme}://{host}"),
                base,
                last_path: String::new(),
                last: None,
            });
        }
        f(urls.as_mut()?)
    })
    .ok()
    .flatten()
}

/// The URLs a thread made last (see [`with_urls`]): the origin's base, and the last URL made
/// on it, for the endpoint that fails over and over (an outage sends every request of a route
/// to the same error; setting a path on the base parses it).
struct Urls {
    /// `{scheme}://{host}` of `base`.
    origin: String,
    /// The origin parsed, with the path `/`.
    base: Url,
    /// The path of `last`.
    last_path: String,
    last: Option<Url>,
}

/// The longest path whose URL a thread keeps.
const MAX_KEPT_PATH: usize = 256;

/// Whether `origin` is `{scheme}://{host}`.
fn is_origin(origin: &str, scheme: &str, host: &str) -> bool {
    origin
        .strip_prefix(scheme)
        .and_then(|rest| rest.strip_prefix("://"))
        == Some(host)
}

/// Whether the URL parser would keep this path exactly as it is: it starts with `/`, holds
/// only characters the parser leaves alone, and no segment is a dot segment (`.`, `..`, or
/// those spelled with `%2e`), which the parser resolves.
fn path_is_plain(path: &str) -> bool {
    // Only a path with a dot or a percent sign can have a dot segment.
    let mut dotted = false;
    path.starts_with('/')
        && path.bytes().all(|b| {
            dotted |= b == b'.' || b == b'%';
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'-'
                        | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                        | b'%'
                )
        })
        && !(dotted && path.split('/').any(is_dots))
}

/// Whether a path segment is made of dots alone (`.`, `..`, `%2e`, ...): the parser resolves
/// some of those, so such paths are parsed.
fn is_dots(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        match rest {
            [b'.', tail @ ..] => rest = tail,
            [b'%', b'2', e, tail @ ..] if e.eq_ignore_ascii_case(&b'e') => rest = tail,
            _ => return false,
        }
    }
    true
}

/// `content-type` → `Content-Type`, as Sentry shows headers.
#[cfg(test)]
fn canonical_header_name(name: &str) -> String {
    let mut out = Vec::with_capacity(name.len());
    push_canonical_header_name(name, &mut out);
    // Header names are ASCII tokens, and only ASCII letters change case.
    String::from_utf8(out).unwrap_or_else(|_| name.to_owned())
}

/// Appends `name` in canonical spelling (`content-type` → `Content-Type`) (for writers that build bytes).
pub(crate) fn push_canonical_header_name(name: &str, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(name.as_bytes());
    let mut upper = true;
    for b in &mut out[start..] {
        if upper {
            b.make_ascii_uppercase();
        }
        upper = *b == b'-';
    }
}

/// A header's value as the request interface shows it: `[Filtered]` when the application
/// marked it sensitive (tower-http's `SetSensitiveHeaders`), else its text (invalid UTF-8
/// replaced).
pub(crate) fn header_text(value: &HeaderValue) -> Cow<'_, str> {
    if value.is_sensitive() {
        super::FILTERED.into()
    } else {
        match std::str::from_utf8(value.as_bytes()) {
            Ok(text) => text.into(),
            Err(_) => String::from_utf8_lossy(value.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(uri: &str, host: Option<&str>) -> RequestSnapshot {
        let mut headers = Vec::new();
        if let Some(h) = host {
            headers.push((http::header::HOST, h.parse().unwrap()));
        }
        RequestSnapshot {
            method: Method::GET,
            uri: uri.parse().unwrap(),
            headers,
            route: None,
            name: None,
            grpc: false,
            started: SystemTime::now(),
            body: None,
            client_ip: None,
        }
    }

    #[test]
    fn url_is_rebuilt_from_host_without_query() {
        let s = snapshot("/users/7?page=2", Some("api.example.com:8080"));
        let req = s.to_request_interface();
        assert_eq!(
            req.url.unwrap().as_str(),
            "http://api.example.com:8080/users/7"
        );
        assert_eq!(req.query_string.as_deref(), Some("page=2"));
        assert_eq!(req.method.as_deref(), Some("GET"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// The written URL is the parsed one, whatever the path and host.
        #[test]
        fn written_urls_equal_parsed_ones(
            path in "(/([a-zA-Z0-9._~!$&'()*+,;=:@%-]|%2[eE]|\\.\\.|[{}|^`\\[\\]]){0,6}){1,5}",
            host in proptest::sample::select(vec![
                "example.com", "EXAMPLE.com", "example.com:80", "example.com:8080",
                "127.0.0.1:3000", "[::1]:3000", "b\u{fc}cher.example", "x:0443",
            ]),
            https: bool,
        ) {
            let uri = format!("{}://{host}{path}", if https { "https" } else { "http" });
            let Ok(uri) = uri.parse::<Uri>() else { return Ok(()); };
            let mut s = snapshot("/", None);
            s.uri = uri;
            let mut written = String::new();
            let wrote = s.write_url(&mut written);
            let parsed = s.url();
            proptest::prop_assert_eq!(wrote, parsed.is_some());
            if let Some(parsed) = parsed {
                proptest::prop_assert_eq!(written.as_str(), parsed.as_str());
            }
        }
    }

    #[test]
    fn urls_built_on_the_cached_base_equal_a_full_parse() {
        let long = format!("/{}", "l".repeat(MAX_KEPT_PATH + 1));
        let cases = [
            ("/a/b", "x.example.com"),
            // The last URL again, then another path and back: each read from or replacing it.
            ("/a/b", "x.example.com"),
            ("/a/../b%20c/./d", "x.example.com"),
            ("/a/b", "x.example.com"),
            ("/caf%C3%A9", "y.example.com:81"),
            ("/", "y.example.com:81"),
            ("/p", "EXAMPLE.com"),
            // The same path on another host is not the last URL.
            ("/p", "x.example.com"),
            (&long, "x.example.com"),
            (&long, "x.example.com"),
            ("/p", "x.example.com"),
        ];
        for (uri, host) in cases {
            let url = snapshot(uri, Some(host))
                .to_request_interface()
                .url
                .unwrap();
            let expected = Url::parse(&format!("http://{host}{uri}")).unwrap();
            assert_eq!(url, expected, "{uri} on {host}");
        }
        // Same host, another scheme: not served from the cached `http` base.
        let https = snapshot("https://x.example.com/s", None).to_request_interface();
        assert_eq!(https.url.unwrap().as_str(), "https://x.example.com/s");
        let http = snapshot("/s", Some("x.example.com")).to_request_interface();
        assert_eq!(http.url.unwrap().as_str(), "http://x.example.com/s");
    }

    #[test]
    fn a_host_header_that_is_not_a_host_gives_no_url() {
        for host in [
            "",
            "evil.example.com/admin",
            "a.example.com?x=1",
            "a.example.com#f",
        ] {
            let req = snapshot("/users", Some(host)).to_request_interface();
            assert_eq!(req.url, None, "{host:?}");
        }
    }

    #[test]
    fn absolute_uri_loses_userinfo() {
        let s = snapshot("https://bob:hunter2@example.com/x", None);
        let url = s.to_request_interface().url.unwrap();
        assert_eq!(url.as_str(), "https://example.com/x");
    }

    #[test]
    fn unmatched_requests_share_one_name() {
        let a = snapshot("/wp-admin.php", None);
        let b = snapshot("/.env", None);
        assert_eq!(a.transaction_name(), b.transaction_name());
        assert_eq!(a.transaction_name(), "GET <unmatched>");
    }

    #[test]
    fn header_names_are_canonicalised() {
        assert_eq!(canonical_header_name("x-user-id"), "X-User-Id");
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
    }
}
