//! Per-request overhead of lighttrace against the official `sentry` + `sentry-tower` 0.49 and
//! tower-http's `CatchPanicLayer`, in one binary, on the same axum router.
//!
//! ```text
//! cargo bench --bench overhead
//! ```
//!
//! Cells: bare, catch-panic only, sentry-tower at traces rate 0.0 and 1.0, lighttrace at 0.0
//! and 1.0; each for a successful `GET /users/{id}`, a 500 (with its error event), and a panic.
//! Both SDKs report to a sink that discards, so only the in-process cost is measured. Every
//! request carries 5 ordinary headers. `RUST_BACKTRACE` is unset (it makes std's own panic
//! output slow, for every cell alike) and panic output is silenced.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, Criterion};
use http::{Request, StatusCode};
use lighttrace::protocol::Envelope;
use lighttrace::{HandlerError, Options, Sink, TrackingLayer};
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

const DSN: &str = "https://0123456789abcdef0123456789abcdef@errors.example.com/1";

/// Discards envelopes, counting them and anything the client dropped before the sink, so a cell
/// that outran the off-task builder says so instead of looking cheaper.
struct Discard;
static SENT: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
impl Sink for Discard {
    fn send(&self, envelope: Envelope) {
        SENT.fetch_add(1, Ordering::Relaxed);
        black_box(envelope);
    }
    fn record_discard(
        &self,
        reason: lighttrace::protocol::client_report::Reason,
        _category: lighttrace::protocol::client_report::Category,
        quantity: u32,
    ) {
        if reason == lighttrace::protocol::client_report::Reason::QueueOverflow {
            DROPPED.fetch_add(u64::from(quantity), Ordering::Relaxed);
        }
    }
}

struct SentryDiscard;
impl sentry::Transport for SentryDiscard {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        black_box(envelope);
    }
}

#[derive(Clone, Copy)]
enum Flavor {
    Lighttrace,
    Sentry,
    Plain,
}

fn routes(flavor: Flavor) -> Router {
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route(
            "/fail",
            get(move || async move {
                match flavor {
                    // sentry-tower does not report 5xx: the handler reports it itself.
                    Flavor::Sentry => {
                        sentry::capture_message("database is down", sentry::Level::Error);
                        (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response_parts()
                    }
                    // lighttrace reports the handler's error by itself.
                    Flavor::Lighttrace => {
                        HandlerError::new(std::io::Error::other("database is down")).into_parts()
                    }
                    Flavor::Plain => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response_parts()
                    }
                }
            }),
        )
        .route(
            "/panic",
            get(|| async {
                let v: Vec<u8> = Vec::new();
                black_box(v[1]);
                "unreachable"
            }),
        )
}

trait IntoParts {
    fn into_response_parts(self) -> axum::response::Response;
}
impl<T: axum::response::IntoResponse> IntoParts for T {
    fn into_response_parts(self) -> axum::response::Response {
        self.into_response()
    }
}
trait HandlerParts {
    fn into_parts(self) -> axum::response::Response;
}
impl HandlerParts for HandlerError {
    fn into_parts(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

fn lighttrace(rate: f32) -> (Router, lighttrace::Client) {
    let layer = TrackingLayer::with_options(
        Options::new()
            .dsn(lighttrace::parse_dsn(DSN).unwrap())
            .traces_sample_rate(rate)
            .sink(Discard),
    );
    let client = layer.client().clone();
    (routes(Flavor::Lighttrace).layer(layer), client)
}

/// CPU time of every thread of this process so far (the scheduler's per-thread run time, in
/// nanoseconds), so work moved to other threads is counted too.
fn process_cpu() -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
                total += stat
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(total)
}

fn sentry_tower(rate: f32) -> (Router, sentry::ClientInitGuard) {
    let guard = sentry::init(
        sentry::ClientOptions::new()
            .dsn(DSN)
            .traces_sample_rate(rate)
            .transport(Arc::new(SentryDiscard)),
    );
    // sentry-tower catches no panics: CatchPanicLayer keeps the server alive, as its docs advise.
    let router = routes(Flavor::Sentry)
        .layer(sentry::integrations::tower::SentryHttpLayer::new().enable_transaction())
        .layer(sentry::integrations::tower::NewSentryLayer::<Request<Body>>::new_from_top())
        .layer(CatchPanicLayer::new());
    (router, guard)
}

/// A request with 5 ordinary headers. Names, values and the URI are shared, not copied, as
/// they are when hyper parses a request (slices of its read buffer): cloning them is a
/// reference-count bump, not an allocation.
fn request(path: &'static str) -> Request<Body> {
    use http::header::{HeaderName, HeaderValue, ACCEPT, ACCEPT_ENCODING, HOST, USER_AGENT};
    static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    Request::get(http::Uri::from_static(path))
        .header(HOST, HeaderValue::from_static("api.example.com"))
        .header(USER_AGENT, HeaderValue::from_static("bench/1.0"))
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(ACCEPT_ENCODING, HeaderValue::from_static("gzip"))
        .header(
            X_REQUEST_ID.clone(),
            HeaderValue::from_static("4bf92f3577b34da6"),
        )
        .body(Body::empty())
        .unwrap()
}

/// What a cell measures.
#[derive(Clone, Copy)]
enum Measure {
    /// Wall time of the requests on the calling task. lighttrace's off-task worker is drained
    /// between batches, outside the timed part, so no cell runs with a full queue.
    Latency,
    /// CPU time of every thread of the process, the worker's draining included, so work moved
    /// off the request task is counted.
    Cpu,
}

/// Runs requests in batches of 2,000, flushing lighttrace's client between batches.
fn run_cells(
    c: &mut Criterion,
    measure: Measure,
    group: &str,
    cell: &str,
    router: &Router,
    path: &'static str,
    client: Option<&lighttrace::Client>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group(group);
    g.bench_function(cell, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let cpu_start = process_cpu();
                let mut elapsed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(2000);
                    let start = Instant::now();
                    for _ in 0..n {
                        let res = router.clone().oneshot(request(path)).await.unwrap();
                        black_box(res);
                    }
                    elapsed += start.elapsed();
                    done += n;
                    if let Some(client) = client {
                        client.flush(Duration::from_secs(10)).await;
                    }
                }
                match measure {
                    Measure::Latency => elapsed,
                    Measure::Cpu => process_cpu().saturating_sub(cpu_start),
                }
            })
        })
    });
    g.finish();
}

/// The sentry-tower and lighttrace cells at traces rates 0.0 and 1.0.
fn sdk_cells(c: &mut Criterion, measure: Measure, group: &str, path: &'static str) {
    for rate in [0.0, 1.0] {
        let (router, guard) = sentry_tower(rate);
        let cell = format!("sentry_tower_{rate:.1}");
        run_cells(c, measure, group, &cell, &router, path, None);
        drop(guard);
        // Leave no sentry client bound for the other cells.
        sentry::Hub::main().bind_client(None);
        SENT.store(0, Ordering::Relaxed);
        DROPPED.store(0, Ordering::Relaxed);
        let cell = format!("lighttrace_{rate:.1}");
        let (router, client) = lighttrace(rate);
        run_cells(c, measure, group, &cell, &router, path, Some(&client));
        eprintln!(
            "{group}/{cell}: {} envelopes built, {} dropped because the queue was full",
            SENT.load(Ordering::Relaxed),
            DROPPED.load(Ordering::Relaxed)
        );
    }
}

/// Request latency: bare, catch-panic only, then both SDKs.
fn cells(c: &mut Criterion) {
    for (path, group) in [("/users/7", "ok"), ("/fail", "500"), ("/panic", "panic")] {
        let latency = Measure::Latency;
        if path != "/panic" {
            run_cells(
                c,
                latency,
                group,
                "bare",
                &routes(Flavor::Plain),
                path,
                None,
            );
        }
        let catch_panic = routes(Flavor::Plain).layer(CatchPanicLayer::new());
        run_cells(c, latency, group, "catch_panic", &catch_panic, path, None);
        sdk_cells(c, latency, group, path);
    }
}

/// CPU per request, all threads counted, for the successful and failing requests.
fn cpu_cells(c: &mut Criterion) {
    for (path, group) in [("/users/7", "cpu_ok"), ("/fail", "cpu_500")] {
        run_cells(
            c,
            Measure::Cpu,
            group,
            "bare",
            &routes(Flavor::Plain),
            path,
            None,
        );
        sdk_cells(c, Measure::Cpu, group, path);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = cells, cpu_cells
}

fn main() {
    // Same conditions for every cell: no backtrace printing by std, no panic output.
    std::env::remove_var("RUST_BACKTRACE");
    std::panic::set_hook(Box::new(|_| {}));
    benches();
    Criterion::default().configure_from_args().final_summary();
}
