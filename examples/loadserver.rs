//! The server side of `scripts/load.py`: one axum route behind one of the variants being
//! compared, on a tokio runtime with a single worker thread.
//!
//! ```text
//! VARIANT=bare|lighttrace|sentry PORT=18080 DSN=http://key@127.0.0.1:18081/1 RATE=1.0 \
//!     cargo run --release --example loadserver
//! ```
//!
//! lighttrace and sentry both report over real HTTP to `DSN` (the collector example). On SIGTERM
//! the server stops, flushes for up to `FLUSH_SECS` (default 5), prints `flushed <bool>` and
//! exits; lighttrace then closes its sink, so what it could not deliver is counted (or kept, with
//! `DISK_BUFFER=dir`).
//!
//! Routes: `GET /users/{id}` (200) and `GET /fail` (500 with an error event). lighttrace's sink
//! can be tuned with `QUEUE` (envelopes), `MAX_QUEUE_BYTES` (the client's queue) and
//! `DISK_BUFFER` (a directory, 64 MiB) and `COMPRESS_FROM` (bytes; gzip from there on);
//! `BACKPRESSURE=0` turns backpressure handling off, `BACKPRESSURE_SECS` sets its check interval.

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let variant = std::env::var("VARIANT").unwrap_or_else(|_| "bare".into());
    let port: u16 = std::env::var("PORT")?.parse()?;
    let rate: f32 = std::env::var("RATE")
        .unwrap_or_else(|_| "1.0".into())
        .parse()?;
    let dsn = std::env::var("DSN").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    let flush_secs: u64 = std::env::var("FLUSH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route(
            "/fail",
            get(|| async {
                Err::<&str, _>(lighttrace::HandlerError::new(std::io::Error::other(
                    "the database is down",
                )))
            }),
        );
    let mut flush: Option<lighttrace::Client> = None;
    let mut sentry_guard = None;
    let app = match variant.as_str() {
        "bare" => app,
        "lighttrace" => {
            let dsn = lighttrace::parse_dsn(&dsn)?;
            let mut sink = lighttrace::HttpSinkOptions::default();
            if let Some(queue) = std::env::var("QUEUE").ok().and_then(|v| v.parse().ok()) {
                sink = sink.queue_capacity(queue);
            }
            if let Some(from) = std::env::var("COMPRESS_FROM")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                sink = sink.compress_from(from);
            }
            if let Ok(dir) = std::env::var("DISK_BUFFER") {
                sink = sink.disk_buffer(dir, 64 * 1024 * 1024);
            }
            let mut options = lighttrace::Options::new()
                .dsn(dsn.clone())
                .traces_sample_rate(rate)
                .enable_backpressure_handling(std::env::var("BACKPRESSURE").as_deref() != Ok("0"))
                .sink(lighttrace::HttpSink::with_options(dsn, sink));
            if let Some(secs) = std::env::var("BACKPRESSURE_SECS")
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
            {
                options = options.backpressure_check_interval(Duration::from_secs_f64(secs));
            }
            if let Some(bytes) = std::env::var("MAX_QUEUE_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                options = options.max_queue_bytes(bytes);
            }
            let layer = lighttrace::TrackingLayer::with_options(options);
            flush = Some(layer.client().clone());
            app.layer(layer)
        }
        "sentry" => {
            // sentry's reqwest transport is built without a TLS provider here; give it ring,
            // the provider lighttrace's sink uses.
            let _ = lighttrace::__probe::ring_crypto_provider().install_default();
            sentry_guard = Some(sentry::init(
                sentry::ClientOptions::new()
                    .dsn(&dsn)
                    .traces_sample_rate(rate),
            ));
            app.layer(sentry::integrations::tower::SentryHttpLayer::new().enable_transaction())
                .layer(sentry::integrations::tower::NewSentryLayer::<Request<Body>>::new_from_top())
                .layer(tower_http::catch_panic::CatchPanicLayer::new())
        }
        other => return Err(format!("unknown VARIANT {other}").into()),
    };

    runtime
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            println!("ready {variant} on {}", listener.local_addr()?);
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                            .expect("SIGTERM handler");
                    term.recv().await;
                })
                .await?;
            let flushed = match &flush {
                Some(client) => client.close(Duration::from_secs(flush_secs)).await,
                None => true,
            };
            Ok::<_, Box<dyn std::error::Error>>(flushed)
        })
        .map(|flushed| {
            let flushed = match sentry_guard.take() {
                Some(guard) => guard.flush(Some(Duration::from_secs(flush_secs))) && flushed,
                None => flushed,
            };
            println!("flushed {flushed}");
        })
}
