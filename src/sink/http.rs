//! `HttpSink`: the sink that delivers over HTTP, through the fault-proof transport
//! (`crate::transport`).

use std::fmt;
use std::time::Duration;

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::Envelope;
use sentry_types::Dsn;

use super::{FlushFuture, SerializedEnvelope, Sink};
use crate::transport::{Handle, HttpSinkOptions};

/// Delivers envelopes over HTTP to `{scheme}://{host}/api/{project_id}/envelope/`.
///
/// [`TrackingLayer::new`](crate::TrackingLayer::new) uses one by default. At shutdown, flush it
/// through the client after the server stopped taking requests:
///
/// ```no_run
/// # async fn app() -> axum::Router { axum::Router::new() }
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = lighttrace::TrackingLayer::from_env()?;
/// let client = layer.client().clone();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app().await.layer(layer))
///     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
///     .await?;
/// client.flush(std::time::Duration::from_secs(5)).await; // never hangs past its timeout
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpSink(Handle);

impl fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSink")
            .field("target", &self.0.target())
            .field("options", self.0.options())
            .finish()
    }
}

impl HttpSink {
    /// A sink for `dsn` with default options.
    pub fn new(dsn: Dsn) -> Self {
        Self::with_options(dsn, HttpSinkOptions::default())
    }

    /// A sink for `dsn` with the given options.
    ///
    /// ```
    /// let dsn = lighttrace::parse_dsn("https://public_key@errors.example.com/1").unwrap();
    /// let sink = lighttrace::HttpSink::with_options(
    ///     dsn,
    ///     lighttrace::HttpSinkOptions::default().queue_capacity(100),
    /// );
    /// ```
    pub fn with_options(dsn: Dsn, options: HttpSinkOptions) -> Self {
        HttpSink(Handle::new(&dsn, options))
    }

    /// A sink for the Spotlight sidecar at `url` (no authentication; envelopes POSTed to the URL
    /// as given). `None` when the URL has no host.
    pub(crate) fn spotlight(url: &http::Uri) -> Option<Self> {
        Handle::spotlight(url).map(HttpSink)
    }

    /// Envelopes of yours (events, transactions, sessions, logs, check-ins) the server
    /// accepted so far; client reports sent on their own are not counted.
    pub fn delivered(&self) -> u64 {
        self.0.delivered()
    }

    /// Drops counted so far and not yet reported to the server, by reason and category.
    pub fn pending_discards(&self) -> Vec<(Reason, Category, u64)> {
        self.0.pending_discards()
    }

    /// Everything dropped since the sink was created, by reason and category (whether or not it
    /// was reported yet).
    pub fn dropped(&self) -> Vec<(Reason, Category, u64)> {
        self.0.dropped()
    }

    /// Bytes waiting in the [disk buffer](HttpSinkOptions::disk_buffer) (0 without one).
    pub fn spooled_bytes(&self) -> u64 {
        self.0.spooled_bytes()
    }
}

impl Sink for HttpSink {
    fn send(&self, envelope: Envelope) {
        self.0.send(envelope);
    }

    fn flush(&self, timeout: Duration) -> FlushFuture<'_> {
        Box::pin(self.0.flush(timeout))
    }

    fn close(&self, timeout: Duration) -> FlushFuture<'_> {
        Box::pin(self.0.close(timeout))
    }

    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.0.record_discard(reason, category, quantity);
    }

    fn record_backpressure(&self, category: Category, quantity: u32) {
        self.0.record_backpressure(category, quantity);
    }

    /// Serialised envelopes are sent as they are (gzipped when large enough).
    fn takes_serialized(&self) -> bool {
        true
    }

    fn send_serialized(&self, envelope: SerializedEnvelope) {
        self.0.send_serialized(envelope);
    }

    fn would_drop(&self, category: Category) -> Option<Reason> {
        self.0.would_drop(category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let dsn: Dsn = "https://0123456789abcdef0123456789abcdef@example.com/1"
            .parse()
            .unwrap();
        let sink = HttpSink::new(dsn);
        let dbg = format!("{sink:?}");
        assert!(!dbg.contains("0123456789abcdef0123456789abcdef"), "{dbg}");
    }
}
