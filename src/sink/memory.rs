//! `MemorySink`: keeps envelopes in memory, for the integration tests of applications.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::{
    Envelope, EnvelopeItem, Event, ItemContainer, Log, MonitorCheckIn, SessionAggregates,
    Transaction,
};
use tokio::sync::Notify;

use super::{SerializedEnvelope, Sink};

/// Keeps every envelope in memory. Clone the handle, give one clone to the layer, and query the
/// other from your test.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/boom", get(|| async { (http::StatusCode::BAD_GATEWAY, "upstream down") }))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
///
/// let req = http::Request::get("/boom").body(axum::body::Body::empty()).unwrap();
/// let res = app.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), 502);
/// // A request ends when its response's body does, as a server sends it: read it, or drop it.
/// drop(res);
///
/// // Events and transactions are built off the request task: wait for them.
/// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
/// assert_eq!(sink.events()[0].transaction.as_deref(), Some("GET /boom"));
/// assert!(sink.wait_for_transactions(1, std::time::Duration::from_secs(5)).await);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemorySink {
    inner: Arc<MemoryShared>,
}

#[derive(Default)]
struct MemoryShared {
    /// Every envelope, with the bytes it arrived as when the client serialised it.
    envelopes: Mutex<Vec<(Envelope, Option<Vec<u8>>)>>,
    discarded: Mutex<Vec<(Reason, Category, u32)>>,
    changed: Notify,
}

impl std::fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySink")
            .field("envelopes", &self.lock().len())
            .finish()
    }
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Envelope, Option<Vec<u8>>)>> {
        self.inner
            .envelopes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Every envelope received, oldest first.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.lock().iter().map(|(e, _)| e.clone()).collect()
    }

    /// Every envelope in Sentry's wire format (what an HTTP sink would send, before gzip):
    /// the client's own bytes for the envelopes it serialised itself.
    pub fn serialized(&self) -> Vec<Vec<u8>> {
        self.lock()
            .iter()
            .map(|(e, bytes)| match bytes {
                Some(bytes) => bytes.clone(),
                None => {
                    let mut buf = Vec::new();
                    // Writing into a Vec cannot fail.
                    let _ = e.to_writer(&mut buf);
                    buf
                }
            })
            .collect()
    }

    /// Every error event received, oldest first.
    pub fn events(&self) -> Vec<Event<'static>> {
        self.items(|item| match item {
            EnvelopeItem::Event(e) => Some((**e).clone()),
            _ => None,
        })
    }

    /// Every transaction received, oldest first.
    pub fn transactions(&self) -> Vec<Transaction<'static>> {
        self.items(|item| match item {
            EnvelopeItem::Transaction(t) => Some((**t).clone()),
            _ => None,
        })
    }

    /// Every structured log received (from the `tracing` layer), oldest first.
    pub fn logs(&self) -> Vec<Log> {
        self.items(|item| match item {
            EnvelopeItem::ItemContainer(ItemContainer::Logs(logs)) => Some(logs.clone()),
            _ => None,
        })
        .into_iter()
        .flatten()
        .collect()
    }

    /// Every release-health aggregate received (one per minute with requests), oldest first.
    pub fn sessions(&self) -> Vec<SessionAggregates<'static>> {
        self.items(|item| match item {
            EnvelopeItem::SessionAggregates(s) => Some(s.clone()),
            _ => None,
        })
    }

    /// Every cron monitor check-in received, oldest first.
    pub fn check_ins(&self) -> Vec<MonitorCheckIn> {
        self.items(|item| match item {
            EnvelopeItem::MonitorCheckIn(c) => Some(c.clone()),
            _ => None,
        })
    }

    /// What the client dropped before sending, as `(reason, category, quantity)`; what
    /// backpressure left out is counted here as `sample_rate` (see
    /// [`Sink::record_backpressure`]).
    pub fn discarded(&self) -> Vec<(Reason, Category, u32)> {
        self.inner
            .discarded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets everything received so far.
    pub fn clear(&self) {
        self.lock().clear();
        self.inner
            .discarded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn items<T>(&self, pick: impl Fn(&EnvelopeItem) -> Option<T>) -> Vec<T> {
        self.lock()
            .iter()
            .flat_map(|(e, _)| e.items().filter_map(&pick).collect::<Vec<_>>())
            .collect()
    }

    /// Waits until at least `n` envelopes arrived; `false` if `timeout` passed first.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.lock().len() >= n).await
    }

    /// Waits until at least `n` error events arrived; `false` if `timeout` passed first.
    pub async fn wait_for_events(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.events().len() >= n).await
    }

    /// Waits until at least `n` transactions arrived; `false` if `timeout` passed first.
    pub async fn wait_for_transactions(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.transactions().len() >= n)
            .await
    }

    async fn wait_until(&self, timeout: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let wait = async {
            loop {
                let notified = self.inner.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if done(self) {
                    return;
                }
                notified.await;
            }
        };
        // `tokio::time::timeout` copes with any duration, `Duration::MAX` included.
        tokio::time::timeout(timeout, wait).await.is_ok() || done(self)
    }
}

impl Sink for MemorySink {
    fn send(&self, envelope: Envelope) {
        self.lock().push((envelope, None));
        self.inner.changed.notify_waiters();
    }

    /// Serialised envelopes are parsed back (queries see typed items) and their bytes kept
    /// for [`serialized`](MemorySink::serialized). One that does not parse is counted as an
    /// internal error.
    fn takes_serialized(&self) -> bool {
        true
    }

    fn send_serialized(&self, envelope: SerializedEnvelope) {
        match envelope.to_envelope() {
            Ok(parsed) => {
                self.lock().push((parsed, Some(envelope.into_bytes())));
                self.inner.changed.notify_waiters();
            }
            Err(_) => {
                for (category, quantity) in envelope.items() {
                    self.record_discard(Reason::InternalSdkError, *category, *quantity);
                }
            }
        }
    }

    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.inner
            .discarded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((reason, category, quantity));
    }
}
