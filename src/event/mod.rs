//! Building protocol values (`Event`, `Transaction`, the `Request` interface, contexts) from
//! the cheap facts the request path captured.
//!
//! Nothing here runs unless something is about to be sent.

mod body;
mod exception;
mod ids;
pub(crate) mod propagation;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::SystemTime;

use http::header::{HeaderName, HeaderValue};
use http::{Method, Uri};
use sentry_types::protocol::v7::{
    Breadcrumb, Context, Event, Level, Request, ResponseContext, SpanStatus, TraceContext,
    Transaction, Url,
};

pub(crate) use body::{is_summary, BodyCapture, BodyKind};
#[cfg(feature = "anyhow")]
pub(crate) use exception::stacktrace_from;
pub(crate) use exception::{error_chain, panic_exception, InApp, PanicDetails};
pub(crate) use ids::{new_event_id, new_span_id, new_trace_id};

/// The route a request matched, kept without allocating on the request path.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// axum's `MatchedPath` (an `Arc<str>` inside, so cloning it is cheap).
    #[cfg(feature = "axum")]
    Axum(axum::extract::MatchedPath),
    /// A name given by the user's closure.
    Named(String),
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
    pub(crate) started: SystemTime,
    /// The first bytes of the body, for JSON, form and text bodies.
    pub(crate) body: Option<std::sync::Arc<BodyCapture>>,
    /// The client's address (only collected with `send_default_pii`).
    pub(crate) client_ip: Option<std::net::IpAddr>,
}

impl RequestSnapshot {
    /// `GET /users/{user_id}`, or the shared unmatched name.
    pub(crate) fn transaction_name(&self) -> String {
        match &self.route {
            Some(Route::Named(name)) => name.clone(),
            #[cfg(feature = "axum")]
            Some(Route::Axum(path)) => format!("{} {}", self.method, path.as_str()),
            None => format!("{} {}", self.method, UNMATCHED_ROUTE),
        }
    }

    /// The matched route template (or the user's name for it), if any.
    pub(crate) fn route(&self) -> Option<&str> {
        match &self.route {
            #[cfg(feature = "axum")]
            Some(Route::Axum(path)) => Some(path.as_str()),
            Some(Route::Named(name)) => Some(name),
            None => None,
        }
    }

    /// The `request` interface, unscrubbed: the client scrubs it before anything else sees it.
    pub(crate) fn to_request_interface(&self) -> Request {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &self.headers {
            let value = if value.is_sensitive() {
                // Marked sensitive by the application (tower-http's SetSensitiveHeaders).
                crate::client::FILTERED.into()
            } else {
                String::from_utf8_lossy(value.as_bytes())
            };
            // Repeated headers are joined, as HTTP allows.
            headers
                .entry(canonical_header_name(name.as_str()))
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        Request {
            url: self.url(),
            method: Some(self.method.as_str().to_owned()),
            query_string: self.uri.query().map(str::to_owned),
            data: self.body.as_ref().and_then(|b| b.data()),
            headers,
            ..Default::default()
        }
    }

    /// The absolute URL without its query string (the query goes into `query_string`) and
    /// without userinfo.
    fn url(&self) -> Option<Url> {
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
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        // A `Host` header is whatever the client sent: one that is empty or would carry a path,
        // query or fragment into the URL gives no URL at all.
        if host.is_empty() || host.contains(['/', '\\', '?', '#']) {
            return None;
        }
        // Parsing the scheme and host (IDNA included) was most of the cost of the request
        // interface, and a service answers on few hosts: the last base is kept per thread and
        // only the path is set on a copy of it.
        thread_local! {
            static BASE: RefCell<Option<(String, Url)>> = const { RefCell::new(None) };
        }
        let path = self.uri.path();
        BASE.try_with(|base| {
            let mut base = base.borrow_mut();
            let mut url = match &*base {
                Some((origin, url))
                    if origin
                        .strip_prefix(scheme)
                        .and_then(|rest| rest.strip_prefix("://"))
                        == Some(host) =>
                {
                    url.clone()
                }
                _ => {
                    let url = Url::parse(&format!("{scheme}://{host}/")).ok()?;
                    *base = Some((format!("{scheme}://{host}"), url.clone()));
                    url
                }
            };
            url.set_path(path);
            Some(url)
        })
        // The thread is being torn down: parse it whole.
        .unwrap_or_else(|_| Url::parse(&format!("{scheme}://{host}{path}")).ok())
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
            message: Some(format!("{} {}", self.method, self.uri.path())),
            data,
        }
    }
}

/// `content-type` → `Content-Type`, as Sentry shows headers.
fn canonical_header_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        upper = c == '-';
    }
    out
}

/// The span status Sentry expects for an HTTP status code.
pub(crate) fn span_status_for(status: u16) -> SpanStatus {
    match status {
        100..=399 => SpanStatus::Ok,
        401 => SpanStatus::Unauthenticated,
        403 => SpanStatus::PermissionDenied,
        404 => SpanStatus::NotFound,
        409 => SpanStatus::AlreadyExists,
        429 => SpanStatus::ResourceExhausted,
        499 => SpanStatus::Cancelled,
        400..=498 => SpanStatus::InvalidArgument,
        501 => SpanStatus::Unimplemented,
        503 => SpanStatus::Unavailable,
        504 => SpanStatus::DeadlineExceeded,
        500..=599 => SpanStatus::InternalError,
        _ => SpanStatus::UnknownError,
    }
}

/// Trace identity of the current request (or of a capture outside any request).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TraceIds {
    pub(crate) trace_id: sentry_types::protocol::v7::TraceId,
    pub(crate) span_id: sentry_types::protocol::v7::SpanId,
    pub(crate) parent_span_id: Option<sentry_types::protocol::v7::SpanId>,
    pub(crate) sampled: bool,
    /// The rate the sampling decision was made with.
    pub(crate) sample_rate: f32,
}

impl TraceIds {
    pub(crate) fn new_root(sampled: bool, sample_rate: f32) -> Self {
        TraceIds {
            trace_id: new_trace_id(),
            span_id: new_span_id(),
            parent_span_id: None,
            sampled,
            sample_rate,
        }
    }

    /// Continues a trace an upstream service started.
    pub(crate) fn continuing(
        incoming: &propagation::IncomingTrace,
        sampled: bool,
        sample_rate: f32,
    ) -> Self {
        TraceIds {
            trace_id: incoming.trace_id,
            span_id: new_span_id(),
            parent_span_id: Some(incoming.parent_span_id),
            sampled,
            sample_rate,
        }
    }

    pub(crate) fn trace_context(&self, op: &str, status: Option<SpanStatus>) -> Context {
        // Every field spelled out: `..Default::default()` would draw random ids from a
        // ChaCha generator only to throw them away.
        Context::Trace(Box::new(TraceContext {
            span_id: self.span_id,
            trace_id: self.trace_id,
            parent_span_id: self.parent_span_id,
            op: Some(op.to_owned()),
            description: None,
            status,
            origin: Some("auto.http.lighttrace".to_owned()),
            data: BTreeMap::new(),
        }))
    }
}

/// An empty event with a fresh id. `Event::default()` would also make a v4 id, from the
/// system's random source; ours come from the fast thread-local generator.
pub(crate) fn new_event(level: Level, timestamp: SystemTime) -> Event<'static> {
    Event {
        event_id: new_event_id(),
        level,
        fingerprint: Cow::Borrowed(DEFAULT_FINGERPRINT),
        culprit: None,
        transaction: None,
        message: None,
        logentry: None,
        logger: None,
        modules: BTreeMap::new(),
        platform: Cow::Borrowed("native"),
        timestamp,
        server_name: None,
        release: None,
        dist: None,
        environment: None,
        user: None,
        request: None,
        contexts: BTreeMap::new(),
        breadcrumbs: Default::default(),
        exception: Default::default(),
        stacktrace: None,
        template: None,
        threads: Default::default(),
        tags: BTreeMap::new(),
        extra: BTreeMap::new(),
        debug_meta: Default::default(),
        sdk: None,
    }
}

const DEFAULT_FINGERPRINT: &[Cow<'static, str>] = &[Cow::Borrowed("{{ default }}")];

/// An empty transaction with a fresh id (see [`new_event`] for why not `Default`).
pub(crate) fn new_transaction(
    name: String,
    start_timestamp: SystemTime,
    timestamp: SystemTime,
) -> Transaction<'static> {
    Transaction {
        event_id: new_event_id(),
        name: Some(name),
        release: None,
        environment: None,
        user: None,
        tags: BTreeMap::new(),
        extra: BTreeMap::new(),
        sdk: None,
        platform: Cow::Borrowed("native"),
        timestamp: Some(timestamp),
        start_timestamp,
        spans: Vec::new(),
        contexts: BTreeMap::new(),
        request: None,
        server_name: None,
    }
}

/// The `response` context, so `before_send` can filter on the status code.
pub(crate) fn response_context(status: u16) -> Context {
    Context::Response(Box::new(ResponseContext {
        status_code: Some(u64::from(status)),
        ..Default::default()
    }))
}

/// Static SDK identity, shared by every event.
pub(crate) fn sdk_info() -> Cow<'static, sentry_types::protocol::v7::ClientSdkInfo> {
    use std::sync::OnceLock;
    static SDK: OnceLock<sentry_types::protocol::v7::ClientSdkInfo> = OnceLock::new();
    Cow::Borrowed(
        SDK.get_or_init(|| sentry_types::protocol::v7::ClientSdkInfo {
            name: crate::SDK_NAME.to_owned(),
            version: crate::SDK_VERSION.to_owned(),
            integrations: vec!["tower".to_owned()],
            packages: vec![sentry_types::protocol::v7::ClientSdkPackage {
                name: format!("cargo:{}", crate::SDK_NAME),
                version: crate::SDK_VERSION.to_owned(),
            }],
        }),
    )
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

    #[test]
    fn urls_built_on_the_cached_base_equal_a_full_parse() {
        let cases = [
            ("/a/b", "x.example.com"),
            ("/a/../b%20c/./d", "x.example.com"),
            ("/caf%C3%A9", "y.example.com:81"),
            ("/", "y.example.com:81"),
            ("/p", "EXAMPLE.com"),
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

    #[test]
    fn statuses_map_to_span_statuses() {
        assert_eq!(span_status_for(200), SpanStatus::Ok);
        assert_eq!(span_status_for(404), SpanStatus::NotFound);
        assert_eq!(span_status_for(422), SpanStatus::InvalidArgument);
        assert_eq!(span_status_for(500), SpanStatus::InternalError);
        assert_eq!(span_status_for(503), SpanStatus::Unavailable);
    }
}
