//! Test helpers shared by the integration tests: a local Sentry-protocol collector on 127.0.0.1
//! that can misbehave on demand, and a way to keep envelopes for validation by Relay in CI.

#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use lighttrace::protocol::{Envelope, EnvelopeItem};

/// When `LIGHTTRACE_TEST_ENVELOPE_DIR` is set (CI sets it), every envelope a test produced is
/// written there so `.ci/run` can feed it to Relay's normaliser.
pub fn keep_envelopes(name: &str, envelopes: &[Vec<u8>]) {
    let Ok(dir) = std::env::var("LIGHTTRACE_TEST_ENVELOPE_DIR") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    for (i, raw) in envelopes.iter().enumerate() {
        std::fs::write(dir.join(format!("{name}-{i}.envelope")), raw).unwrap();
    }
}

/// How the collector answers the next requests.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200, optionally with an `X-Sentry-Rate-Limits` header.
    Accept(Option<&'static str>),
    /// 429 with optional `Retry-After` and `X-Sentry-Rate-Limits` headers.
    TooMany {
        retry_after: Option<&'static str>,
        sentry: Option<&'static str>,
    },
    /// 500.
    ServerError,
    /// Never answers.
    Hang,
    /// Answers with this 4xx status.
    Reject(u16),
    /// Accepts, after this long.
    Slow(Duration),
}

/// One request the collector accepted.
#[derive(Debug)]
pub struct Received {
    pub headers: HeaderMap,
    /// The decompressed body.
    pub raw: Vec<u8>,
    /// The envelope without its client reports, parsed by `sentry-types`.
    pub envelope: Envelope,
    /// The client reports' payloads (`sentry-types` cannot parse every reason Sentry knows,
    /// `backpressure` among them).
    pub reports: Vec<serde_json::Value>,
}

#[path = "../../../examples/envelope_items/mod.rs"]
mod envelope_items;

/// Splits client-report items out of an envelope's bytes: the rest, and their payloads.
fn split_reports(raw: &[u8]) -> (Vec<u8>, Vec<serde_json::Value>) {
    let Some((header, items)) = envelope_items::items(raw) else {
        // Left to the protocol parser, which says what is wrong with it.
        return (raw.to_vec(), Vec::new());
    };
    let mut rest = Vec::with_capacity(raw.len());
    let mut reports = Vec::new();
    rest.extend_from_slice(header);
    rest.push(b'\n');
    for item in items {
        if item.ty == "client_report" {
            reports.push(serde_json::from_slice(item.payload).unwrap_or_default());
        } else {
            for part in [item.header, item.payload] {
                rest.extend_from_slice(part);
                rest.push(b'\n');
            }
        }
    }
    (rest, reports)
}

#[derive(Debug)]
struct Inner {
    mode: Mode,
    attempts: u32,
    attempt_types: Vec<Vec<&'static str>>,
    received: Vec<Received>,
    invalid: Vec<String>,
}

/// A local collector speaking the envelope endpoint.
#[derive(Clone, Debug)]
pub struct Collector {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

pub const KEY: &str = "0123456789abcdef0123456789abcdef";

impl Collector {
    pub async fn start(mode: Mode) -> Collector {
        Self::start_on("127.0.0.1:0".parse().unwrap(), mode).await
    }

    /// A collector on a given address (a port nothing listened on before, say).
    pub async fn start_on(addr: SocketAddr, mode: Mode) -> Collector {
        let inner = Arc::new(Mutex::new(Inner {
            mode,
            attempts: 0,
            attempt_types: Vec::new(),
            received: Vec::new(),
            invalid: Vec::new(),
        }));
        let app = Router::new()
            .route("/api/{project}/envelope/", post(ingest))
            // As Spotlight's sidecar takes them.
            .route("/stream", post(ingest))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Collector { addr, inner }
    }

    /// The collector as a Spotlight sidecar.
    pub fn spotlight_url(&self) -> http::Uri {
        format!("http://{}/stream", self.addr).parse().unwrap()
    }

    pub fn dsn(&self) -> lighttrace::Dsn {
        lighttrace::parse_dsn(&format!("http://{KEY}@{}/1", self.addr)).unwrap()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    /// Requests that reached the collector, answered or not.
    pub fn attempts(&self) -> u32 {
        self.inner.lock().unwrap().attempts
    }

    /// Requests that reached the collector carrying an item of type `ty`, answered or not.
    pub fn attempts_with(&self, ty: &str) -> usize {
        let inner = self.inner.lock().unwrap();
        inner
            .attempt_types
            .iter()
            .filter(|t| t.contains(&ty))
            .count()
    }

    pub fn with_received<R>(&self, f: impl FnOnce(&[Received]) -> R) -> R {
        let inner = self.inner.lock().unwrap();
        assert!(
            inner.invalid.is_empty(),
            "invalid envelopes: {:?}",
            inner.invalid
        );
        f(&inner.received)
    }

    /// Item types of every accepted envelope, in order.
    pub fn item_types(&self) -> Vec<Vec<&'static str>> {
        self.with_received(|r| {
            r.iter()
                .map(|rec| {
                    let items = rec.envelope.items().map(item_type);
                    items
                        .chain(rec.reports.iter().map(|_| "client_report"))
                        .collect()
                })
                .collect()
        })
    }

    pub fn count_items(&self, ty: &str) -> usize {
        self.item_types()
            .iter()
            .flatten()
            .filter(|t| **t == ty)
            .count()
    }

    /// Sum of client-report quantities for a reason and category over every accepted envelope.
    pub fn reported(&self, reason: &str, category: &str) -> u64 {
        self.with_received(|r| {
            let mut total = 0;
            for value in r.iter().flat_map(|rec| &rec.reports) {
                for d in value["discarded_events"].as_array().unwrap() {
                    if d["reason"] == reason && d["category"] == category {
                        total += d["quantity"].as_u64().unwrap();
                    }
                }
            }
            total
        })
    }

    pub fn keep(&self, name: &str) {
        let raws: Vec<Vec<u8>> = self.with_received(|r| r.iter().map(|x| x.raw.clone()).collect());
        keep_envelopes(name, &raws);
    }

    /// Waits until at least `n` envelopes were accepted.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.inner.lock().unwrap().received.len() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

pub fn item_type(item: &EnvelopeItem) -> &'static str {
    match item {
        EnvelopeItem::Event(_) => "event",
        EnvelopeItem::Transaction(_) => "transaction",
        EnvelopeItem::ClientReport(_) => "client_report",
        EnvelopeItem::SessionAggregates(_) => "sessions",
        _ => "other",
    }
}

async fn ingest(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = if headers.get("content-encoding").map(|v| v.as_bytes()) == Some(b"gzip") {
        let mut out = Vec::new();
        match flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
            Ok(_) => out,
            Err(e) => {
                inner.lock().unwrap().invalid.push(format!("gzip: {e}"));
                return StatusCode::BAD_REQUEST.into_response();
            }
        }
    } else {
        body.to_vec()
    };
    let (rest, reports) = split_reports(&raw);
    let parsed = Envelope::from_slice(&rest);
    let mode = {
        let mut i = inner.lock().unwrap();
        i.attempts += 1;
        let types = parsed
            .as_ref()
            .map(|e| {
                e.items()
                    .map(item_type)
                    .chain(reports.iter().map(|_| "client_report"))
                    .collect()
            })
            .unwrap_or_default();
        i.attempt_types.push(types);
        i.mode.clone()
    };
    let mode = match mode {
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            Mode::Accept(None)
        }
        other => other,
    };
    match mode {
        Mode::Slow(_) => unreachable!("answered as Accept"),
        Mode::Reject(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Mode::ServerError => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::TooMany {
            retry_after,
            sentry,
        } => {
            let mut res = StatusCode::TOO_MANY_REQUESTS.into_response();
            if let Some(v) = retry_after {
                res.headers_mut().insert("retry-after", v.parse().unwrap());
            }
            if let Some(v) = sentry {
                res.headers_mut()
                    .insert("x-sentry-rate-limits", v.parse().unwrap());
            }
            res
        }
        Mode::Accept(limits) => {
            match parsed {
                Ok(envelope) => inner.lock().unwrap().received.push(Received {
                    headers,
                    raw,
                    envelope,
                    reports,
                }),
                Err(e) => {
                    inner.lock().unwrap().invalid.push(format!("envelope: {e}"));
                    return StatusCode::BAD_REQUEST.into_response();
                }
            }
            let mut res = (StatusCode::OK, r#"{"id":"ok"}"#).into_response();
            if let Some(v) = limits {
                res.headers_mut()
                    .insert("x-sentry-rate-limits", v.parse().unwrap());
            }
            res
        }
    }
}

/// A TCP server that accepts and immediately resets or closes every connection.
pub async fn resetting_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // Closing with unread request bytes makes the kernel answer with a reset.
            drop(stream);
        }
    });
    addr
}

/// A TCP server that answers every request with bytes that are not HTTP.
pub async fn garbage_server() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"\x00\x01garbage\xff\r\n\r\nmore garbage")
                    .await;
            });
        }
    });
    addr
}

/// A sink that forwards to a `MemorySink` and, when `LIGHTTRACE_TEST_ENVELOPE_DIR` is set, also
/// writes each envelope there for Relay validation.
#[derive(Clone)]
pub struct Keep(pub lighttrace::MemorySink);

impl Keep {
    /// Writes an envelope's bytes to `LIGHTTRACE_TEST_ENVELOPE_DIR`, if set.
    fn keep(&self, raw: &[u8], id: Option<lighttrace::Uuid>) {
        let Ok(dir) = std::env::var("LIGHTTRACE_TEST_ENVELOPE_DIR") else {
            return;
        };
        // Log and report envelopes have no id: name them apart.
        static UNNAMED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = id.map(|u| u.simple().to_string()).unwrap_or_else(|| {
            let n = UNNAMED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("{}-{n}", std::process::id())
        });
        std::fs::create_dir_all(&dir).unwrap();
        // Written then renamed: a test process that exits while a worker thread is writing
        // (a last session update) leaves a temporary file, never an empty envelope.
        let dir = std::path::Path::new(&dir);
        let tmp = dir.join(format!(".test-{id}.tmp"));
        std::fs::write(&tmp, raw).unwrap();
        std::fs::rename(&tmp, dir.join(format!("test-{id}.envelope"))).unwrap();
    }
}

impl lighttrace::Sink for Keep {
    fn send(&self, envelope: Envelope) {
        let mut raw = Vec::new();
        envelope.to_writer(&mut raw).unwrap();
        self.keep(&raw, envelope.uuid().copied());
        self.0.send(envelope);
    }

    /// Transactions come as the client wrote them: those bytes are what Relay checks.
    fn takes_serialized(&self) -> bool {
        true
    }

    fn send_serialized(&self, envelope: lighttrace::sink::SerializedEnvelope) {
        let id = envelope.to_envelope().ok().and_then(|e| e.uuid().copied());
        self.keep(envelope.as_bytes(), id);
        self.0.send_serialized(envelope);
    }

    fn record_discard(
        &self,
        reason: lighttrace::protocol::client_report::Reason,
        category: lighttrace::protocol::client_report::Category,
        quantity: u32,
    ) {
        self.0.record_discard(reason, category, quantity);
    }
}

/// A plain HTTP service on 127.0.0.1, the other end of outgoing calls: it answers every
/// request with its status and keeps each request's headers.
#[derive(Clone)]
pub struct Upstream {
    pub base: String,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

impl Upstream {
    pub async fn start(status: u16) -> Upstream {
        let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
        let kept = seen.clone();
        let app = Router::new().fallback(move |headers: HeaderMap| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(headers);
                StatusCode::from_u16(status).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream { base, seen }
    }

    /// The headers of every request it was sent, in order.
    pub fn requests(&self) -> Vec<HeaderMap> {
        self.seen.lock().unwrap().clone()
    }
}

/// The response as a client receives it: its body read to the end, as a server sends it (the
/// layer records a request when its body ends).
pub async fn served(response: axum::response::Response) -> axum::response::Response {
    use http_body_util::BodyExt;
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Options that report to a (never contacted) DSN with the test key, into `sink`, kept for
/// Relay's validation, with every request traced.
pub fn options_into(sink: &lighttrace::MemorySink) -> lighttrace::Options {
    lighttrace::Options::new()
        .dsn(lighttrace::parse_dsn(&format!("https://{KEY}@errors.example.com/1")).unwrap())
        .traces_sample_rate(1.0)
        .sink(Keep(sink.clone()))
}
