//! One outgoing HTTP call, as every client integration records it: the trace headers (within
//! `trace_propagation_targets`), an `http.client` span, and a breadcrumb.
//!
//! The span follows Sentry's requests module (op `http.client`, description `METHOD url`, data
//! `http.request.method`, `url`, `http.query`, `server.address`, `http.response.status_code`);
//! the breadcrumb is Sentry's `http` breadcrumb type (category `http`, data `method`, `url`,
//! `status_code`, `reason`; level `warning` for a 4xx, `error` for a 5xx or no answer), added
//! whether the request is sampled or not, as sentry-python adds it. The URL never carries
//! credentials, and its query string (`http.query`) leaves out the pairs an incoming request's would
//! show as `[Filtered]`.

use std::borrow::Cow;

use http::{HeaderMap, Method, StatusCode, Uri};
use sentry_types::protocol::v7::{Breadcrumb, Level, SpanStatus, Value};

use crate::event::{grpc, span_status_for};
use crate::scope::{self, Running};

/// A call under way. Dropped before it ended (its future was cancelled), its span is recorded
/// as cancelled and no breadcrumb is added.
pub(crate) struct HttpCall {
    span: Option<Running>,
    method: Method,
    /// Without credentials, query or fragment.
    url: String,
}

/// gRPC's `UNKNOWN`: a call that ended without a status.
const UNKNOWN: i32 = 2;

/// How a call ended.
pub(crate) enum Ended<'a> {
    /// The server answered with this status.
    Status(StatusCode),
    /// A gRPC call ended with this status code (from a trailers-only answer or the trailers;
    /// `None` when the response ended without one).
    Grpc(Option<i32>),
    /// No answer; `timed_out` when a deadline passed.
    Failed { timed_out: bool, reason: &'a str },
}

impl HttpCall {
    /// Starts recording a call to `uri`, under the span current here, and puts the trace on
    /// `headers` when the URL is a propagation target.
    pub(crate) fn start(method: &Method, uri: &Uri, headers: &mut HeaderMap) -> HttpCall {
        let url = without_credentials_or_query(uri);
        let mut span = Running::start("http.client".to_owned(), format!("{method} {url}"));
        if let Some(span) = span.as_mut() {
            span.set_data("http.request.method", method.as_str().into());
            span.set_data("url", url.clone().into());
            let query = uri.query().map(scrubbed_query).unwrap_or_default();
            if !query.is_empty() {
                span.set_data("http.query", query.into());
            }
        }
        HttpCall::begin(span, method.clone(), url, uri, headers)
    }

    /// Starts recording a gRPC call to `uri` (`http://host/package.Service/Method`): op
    /// `grpc.client`, named `package.Service/Method` with OpenTelemetry's RPC attributes
    /// (`rpc.system`, `rpc.method`, `server.address`), as the server names its transaction.
    pub(crate) fn start_grpc(uri: &Uri, headers: &mut HeaderMap) -> HttpCall {
        let url = without_credentials_or_query(uri);
        let method = uri.path().trim_start_matches('/');
        let mut span = Running::start("grpc.client".to_owned(), method.to_owned());
        if let Some(span) = span.as_mut() {
            span.set_data("rpc.system", "grpc".into());
            span.set_data("rpc.method", method.into());
        }
        HttpCall::begin(span, Method::POST, url, uri, headers)
    }

    /// The call under `span`: the server's address in its data, the trace on `headers`.
    fn begin(
        mut span: Option<Running>,
        method: Method,
        url: String,
        uri: &Uri,
        headers: &mut HeaderMap,
    ) -> HttpCall {
        if let (Some(span), Some(host)) = (span.as_mut(), uri.host()) {
            span.set_data("server.address", host.into());
        }
        let parent = span.as_ref().and_then(Running::id);
        scope::inject_current(&uri.to_string(), headers, parent);
        HttpCall { span, method, url }
    }

    /// Ends the call as failed without an answer (not by a deadline), for `reason`.
    pub(crate) fn failed(self, reason: &str) {
        self.finish(
            Ended::Failed {
                timed_out: false,
                reason,
            },
            None,
        );
    }

    /// Ends the span with the call's outcome (a `status` overrides what the HTTP status says,
    /// as a gRPC status does), and adds the breadcrumb.
    pub(crate) fn finish(mut self, ended: Ended<'_>, status: Option<SpanStatus>) {
        // A gRPC call's code, and the HTTP status it stands for (the breadcrumb's level).
        let mut grpc_code = None;
        let (code, span_status, reason): (Option<u16>, SpanStatus, Cow<'_, str>) = match ended {
            Ended::Status(code) => (
                Some(code.as_u16()),
                span_status_for(code.as_u16()),
                Cow::Borrowed(code.canonical_reason().unwrap_or("")),
            ),
            Ended::Grpc(status) => {
                let code = status.unwrap_or(UNKNOWN);
                grpc_code = Some((code, grpc::http_status(i64::from(code))));
                let name = grpc::code_name(i64::from(code)).unwrap_or("UNKNOWN");
                let span_status = grpc::span_status(i64::from(code));
                (
                    None,
                    span_status.unwrap_or(SpanStatus::UnknownError),
                    Cow::Borrowed(name),
                )
            }
            Ended::Failed { timed_out, reason } => (
                None,
                if timed_out {
                    SpanStatus::DeadlineExceeded
                } else {
                    SpanStatus::InternalError
                },
                Cow::Borrowed(reason),
            ),
        };
        if let Some(mut span) = self.span.take() {
            if let Some((grpc_code, _)) = grpc_code {
                span.set_data("rpc.grpc.status_code", grpc_code.into());
                span.set_data("rpc.response.status_code", reason.as_ref().into());
            }
            if let Some(code) = code {
                span.set_data("http.response.status_code", code.into());
            }
            span.set_status(status.unwrap_or(span_status));
            span.finish(SpanStatus::Ok);
        }
        // Inside a request, or on the global client's process scope; else nowhere.
        let level = code.or(grpc_code.map(|(_, http)| http));
        scope::add_breadcrumb(self.breadcrumb(code, level, &reason));
    }

    /// Sentry's `http` breadcrumb; its level follows `level` (an HTTP status, or the one a gRPC
    /// code stands for; `None`: no answer).
    fn breadcrumb(&self, code: Option<u16>, level: Option<u16>, reason: &str) -> Breadcrumb {
        let mut data = std::collections::BTreeMap::new();
        data.insert("method".to_owned(), Value::from(self.method.as_str()));
        data.insert("url".to_owned(), Value::from(self.url.as_str()));
        if let Some(code) = code {
            data.insert("status_code".to_owned(), Value::from(code));
        }
        if !reason.is_empty() {
            data.insert("reason".to_owned(), Value::from(reason));
        }
        let level = match level {
            Some(500..=599) | None => Level::Error,
            Some(400..=499) => Level::Warning,
            Some(_) => Level::Info,
        };
        Breadcrumb {
            ty: "http".to_owned(),
            category: Some("http".to_owned()),
            level,
            data,
            ..Default::default()
        }
    }
}

/// `uri` without userinfo, query or fragment.
fn without_credentials_or_query(uri: &Uri) -> String {
    let mut out = String::new();
    if let Some(scheme) = uri.scheme_str() {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        let host = authority
            .as_str()
            .rsplit_once('@')
            .map_or(authority.as_str(), |(_, h)| h);
        out.push_str(host);
    }
    out.push_str(uri.path());
    out
}

/// A query string without the pairs the rules of the request's client call sensitive (a span
/// is only recorded inside a request).
fn scrubbed_query(query: &str) -> String {
    scope::with_current(|s| {
        crate::scrub::query_without_secrets(query, &s.client.options_ref().scrub_rules)
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        let uri: Uri = "https://user:pw@api.example.com:8443/v1/items?token=x#top"
            .parse()
            .unwrap();
        assert_eq!(
            without_credentials_or_query(&uri),
            "https://api.example.com:8443/v1/items"
        );
        let relative: Uri = "/pkg.Service/Method".parse().unwrap();
        assert_eq!(
            without_credentials_or_query(&relative),
            "/pkg.Service/Method"
        );
    }
}
