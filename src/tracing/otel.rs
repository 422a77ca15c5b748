//! Spans whose fields follow OpenTelemetry's semantic conventions (reqwest-tracing's, tonic's,
//! `tracing-opentelemetry` users') get the op, description and status that Sentry's own
//! OpenTelemetry span conversion gives them: sentry-javascript's
//! `packages/opentelemetry/src/utils/parseSpanDescription.ts` and `mapStatus.ts`, and
//! sentry-python's `opentelemetry/utils.py` (`infer_op`, `infer_description`,
//! `extract_span_status`), which Relay's `derive_op_for_v2_span` agrees with:
//!
//! - an HTTP method (`http.request.method`, or the older `http.method`) makes the op
//!   `http.client` or `http.server` by `otel.kind` (else `http`), and the description
//!   `METHOD url` (`url.full` or `http.url` without query and fragment, else the scheme,
//!   `server.address` and `server.port`, else `http.route` or `http.target`);
//! - a database system (`db.system.name`, or `db.system`) makes the op `db` and the description
//!   the statement (`db.query.text`, or `db.statement`);
//! - an RPC system (`rpc.system.name`, or `rpc.system`) makes the op `rpc` (`grpc.client` or
//!   `grpc.server` for gRPC, as Sentry's gRPC integrations name them) and the description the
//!   method (`rpc.method`, with `rpc.service` when it is the short name);
//! - `messaging.system` makes the op `message`, `faas.trigger` the op its value;
//! - otherwise `otel.name`, when given, is the description.
//!
//! The status: `otel.status_code` `ERROR` is read from the HTTP status
//! (`http.response.status_code`, or `http.status_code`), else the gRPC status
//! (`rpc.grpc.status_code`, `rpc.response.status_code`), else `internal_error`; `OK` is `ok`;
//! unset, an HTTP status still decides.

use std::borrow::Cow;

use sentry_types::protocol::v7::{SpanStatus, Value};

use crate::event::span_status_for;
use crate::scope::Running;

/// Renames a span after the conventions its data follows, if any.
pub(super) fn rename(running: &mut Running) {
    if let Some(c) = convention(running.data()) {
        running.rename(c.op, c.description);
    }
}

/// Sets a span's status from its data, if the conventions say one.
pub(super) fn set_status(running: &mut Running) {
    if let Some(status) = convention(running.data()).and_then(|c| c.status) {
        running.set_status(status);
    }
}

/// What the conventions make of a span.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Convention {
    pub(super) op: Option<String>,
    pub(super) description: Option<String>,
    pub(super) status: Option<SpanStatus>,
}

type Data = [(Cow<'static, str>, Value)];

fn text<'a>(data: &'a Data, keys: &[&str]) -> Option<Cow<'a, str>> {
    keys.iter().find_map(|key| {
        data.iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| match v {
                Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s.as_str())),
                Value::Number(n) => Some(Cow::Owned(n.to_string())),
                _ => None,
            })
    })
}

fn number(data: &Data, keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|key| {
        data.iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
    })
}

/// The op, description and status the span's data calls for; `None` when it follows none of
/// the conventions.
pub(super) fn convention(data: &Data) -> Option<Convention> {
    let kind = text(data, &["otel.kind"]).map(|k| k.to_ascii_lowercase());
    let kind = kind.as_deref();
    let mut out = Convention::default();
    if let Some(method) = text(data, &["http.request.method", "http.method"]) {
        out.op = Some(
            match kind {
                Some("client") => "http.client",
                Some("server") => "http.server",
                _ => "http",
            }
            .to_owned(),
        );
        out.description = Some(match http_target(data) {
            Some(target) => format!("{method} {target}"),
            None => method.into_owned(),
        });
    } else if text(data, &["db.system.name", "db.system"]).is_some() {
        out.op = Some("db".to_owned());
        out.description = text(data, &["db.query.text", "db.statement", "otel.name"])
            .map(|s| s.trim().to_owned());
    } else if let Some(system) = text(data, &["rpc.system.name", "rpc.system"]) {
        out.op = Some(
            match (system.as_ref(), kind) {
                ("grpc", Some("client")) => "grpc.client",
                ("grpc", Some("server")) => "grpc.server",
                _ => "rpc",
            }
            .to_owned(),
        );
        out.description = rpc_method(data);
    } else if text(data, &["messaging.system"]).is_some() {
        out.op = Some("message".to_owned());
    } else if let Some(trigger) = text(data, &["faas.trigger"]) {
        out.op = Some(trigger.into_owned());
    }
    if out.description.is_none() {
        out.description = text(data, &["otel.name"]).map(Cow::into_owned);
    }
    out.status = status(data);
    (out != Convention::default()).then_some(out)
}

/// The URL part of an HTTP span's description, without query, fragment or credentials.
fn http_target(data: &Data) -> Option<String> {
    if let Some(url) = text(data, &["url.full", "http.url"]) {
        let cut = url.find(['?', '#']).unwrap_or(url.len());
        let url = &url[..cut];
        return Some(match url.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{scheme}://{host}{path}")
            }
            None => url.to_owned(),
        });
    }
    if let Some(host) = text(data, &["server.address", "net.peer.name"]) {
        let scheme = text(data, &["url.scheme", "http.scheme"]).unwrap_or(Cow::Borrowed("http"));
        let port = number(data, &["server.port", "net.peer.port"])
            .filter(|p| !matches!((scheme.as_ref(), *p), ("http", 80) | ("https", 443)));
        let path = text(data, &["url.path", "http.target"]).unwrap_or_default();
        return Some(match port {
            Some(port) => format!("{scheme}://{host}:{port}{path}"),
            None => format!("{scheme}://{host}{path}"),
        });
    }
    text(data, &["http.route", "http.target"]).map(Cow::into_owned)
}

/// `package.Service/Method`: `rpc.method` when it is full (the current conventions), else
/// `rpc.service` and `rpc.method` (the older ones).
fn rpc_method(data: &Data) -> Option<String> {
    let method = text(data, &["rpc.method"]);
    match (text(data, &["rpc.service"]), method) {
        (Some(service), Some(method)) if !method.contains('/') => {
            Some(format!("{service}/{method}"))
        }
        (_, Some(method)) => Some(method.into_owned()),
        (Some(service), None) => Some(service.into_owned()),
        (None, None) => text(data, &["otel.name"]).map(Cow::into_owned),
    }
}

fn status(data: &Data) -> Option<SpanStatus> {
    let http = number(data, &["http.response.status_code", "http.status_code"])
        .and_then(|c| u16::try_from(c).ok());
    let grpc = grpc_status(data);
    match text(data, &["otel.status_code"]).as_deref() {
        Some(s) if s.eq_ignore_ascii_case("error") => Some(
            http.map(span_status_for)
                .filter(|s| *s != SpanStatus::Ok)
                .or(grpc.filter(|s| *s != SpanStatus::Ok))
                .unwrap_or(SpanStatus::InternalError),
        ),
        Some(s) if s.eq_ignore_ascii_case("ok") => Some(SpanStatus::Ok),
        _ => http.map(span_status_for).or(grpc),
    }
}

/// A gRPC status, as a number (`rpc.grpc.status_code`) or a name (`rpc.response.status_code`).
fn grpc_status(data: &Data) -> Option<SpanStatus> {
    if let Some(code) = number(data, &["rpc.grpc.status_code", "rpc.response.status_code"]) {
        return crate::event::grpc::span_status(code);
    }
    let name = text(data, &["rpc.response.status_code", "rpc.status_code"])?;
    crate::event::grpc::span_status_named(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&'static str, Value)]) -> Vec<(Cow<'static, str>, Value)> {
        pairs
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), v.clone()))
            .collect()
    }

    #[test]
    fn reqwest_tracing_spans_are_http_client_spans() {
        let d = data(&[
            ("http.request.method", "GET".into()),
            ("url.scheme", "https".into()),
            ("server.address", "api.example.com".into()),
            ("server.port", 443.into()),
            ("otel.kind", "client".into()),
            ("otel.name", "GET".into()),
            ("http.response.status_code", 503.into()),
            ("otel.status_code", "ERROR".into()),
        ]);
        let c = convention(&d).unwrap();
        assert_eq!(c.op.as_deref(), Some("http.client"));
        assert_eq!(
            c.description.as_deref(),
            Some("GET https://api.example.com")
        );
        assert_eq!(c.status, Some(SpanStatus::Unavailable));
        let d = data(&[
            ("http.method", "POST".into()),
            ("http.url", "https://u:p@x.example/a/b?token=1#f".into()),
        ]);
        let c = convention(&d).unwrap();
        assert_eq!(c.op.as_deref(), Some("http"));
        assert_eq!(c.description.as_deref(), Some("POST https://x.example/a/b"));
    }

    #[test]
    fn database_rpc_and_other_conventions() {
        let db = convention(&data(&[
            ("db.system.name", "postgresql".into()),
            ("db.query.text", " SELECT 1 ".into()),
        ]))
        .unwrap();
        assert_eq!(
            (db.op.as_deref(), db.description.as_deref()),
            (Some("db"), Some("SELECT 1"))
        );
        let old_db = convention(&data(&[
            ("db.system", "mysql".into()),
            ("db.statement", "SELECT 2".into()),
        ]))
        .unwrap();
        assert_eq!(old_db.description.as_deref(), Some("SELECT 2"));
        let grpc = convention(&data(&[
            ("rpc.system", "grpc".into()),
            ("rpc.service", "shop.Cart".into()),
            ("rpc.method", "Add".into()),
            ("otel.kind", "server".into()),
            ("rpc.grpc.status_code", 13.into()),
        ]))
        .unwrap();
        assert_eq!(grpc.op.as_deref(), Some("grpc.server"));
        assert_eq!(grpc.description.as_deref(), Some("shop.Cart/Add"));
        assert_eq!(grpc.status, Some(SpanStatus::InternalError));
        let named = convention(&data(&[
            ("rpc.system.name", "grpc".into()),
            ("rpc.method", "shop.Cart/Add".into()),
            ("otel.status_code", "ERROR".into()),
            ("rpc.response.status_code", "DEADLINE_EXCEEDED".into()),
        ]))
        .unwrap();
        assert_eq!(named.op.as_deref(), Some("rpc"));
        assert_eq!(named.status, Some(SpanStatus::DeadlineExceeded));
        assert_eq!(
            convention(&data(&[("messaging.system", "kafka".into())]))
                .unwrap()
                .op
                .as_deref(),
            Some("message")
        );
        assert_eq!(
            convention(&data(&[("otel.name", "work".into())]))
                .unwrap()
                .description
                .as_deref(),
            Some("work")
        );
        assert_eq!(convention(&data(&[("user", "ann".into())])), None);
        assert_eq!(
            convention(&data(&[("otel.status_code", "OK".into())]))
                .unwrap()
                .status,
            Some(SpanStatus::Ok)
        );
    }
}
