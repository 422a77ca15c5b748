//! The HTTP transport behind [`HttpSink`](crate::HttpSink): delivers envelopes to a
//! Sentry-protocol server without ever blocking a request and without dropping anything
//! silently.
//!
//! A handle only hands the envelope to a delivery loop on the transport's own thread (with its
//! own small tokio runtime, so it works with or without an application runtime). The loop packs,
//! queues (bounded) and POSTs on a few keep-alive HTTP/1.1 connections (hyper's client
//! connection, rustls for https), with a deadline per request, retries only for requests that
//! got no answer, a circuit breaker for a failing server, per-category rate limits, and an
//! optional disk buffer. Everything dropped is counted by reason and category and reported to
//! the server as a `client_report`.

mod circuit;
mod conn;
mod limits;
mod options;
mod outcomes;
mod pack;
mod spool;
mod tls;
mod worker;

pub use options::HttpSinkOptions;
#[cfg(feature = "probe")]
pub use tls::ring_provider as ring_crypto_provider;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::{Envelope, EnvelopeItem};
use sentry_types::Dsn;
use tokio::sync::{mpsc, oneshot};

use crate::util::RedactedDsn;
use crate::wire::SerializedEnvelope;
use limits::RateLimits;
use outcomes::{item_categories, Outcomes, ReportCounts};

/// A handle on a running transport: what `HttpSink` is made of.
#[derive(Clone)]
pub(crate) struct Handle {
    inner: Arc<Transport>,
    tx: mpsc::Sender<Msg>,
}

enum Msg {
    Envelope(Box<Envelope>),
    Serialized(SerializedEnvelope),
    Flush {
        timeout: Duration,
        done: oneshot::Sender<bool>,
    },
    Close {
        timeout: Duration,
        done: oneshot::Sender<bool>,
    },
}

/// State shared by the handles and the delivery loop.
struct Transport {
    /// Where envelopes go, for `Debug`: the DSN without its keys, or the URL.
    target: String,
    endpoint: conn::Endpoint,
    options: HttpSinkOptions,
    limits: Mutex<RateLimits>,
    outcomes: Outcomes,
    delivered: AtomicU64,
    /// Envelopes in the loop's queue, for `would_drop`.
    queued: AtomicUsize,
    /// Bytes in the disk buffer.
    spooled: AtomicU64,
}

impl Handle {
    /// Where envelopes go, for `Debug`: the DSN without its keys, or the URL.
    pub(crate) fn target(&self) -> &str {
        &self.inner.target
    }

    /// The transport's tuning.
    pub(crate) fn options(&self) -> &HttpSinkOptions {
        &self.inner.options
    }

    /// A transport for `dsn`.
    pub(crate) fn new(dsn: &Dsn, options: HttpSinkOptions) -> Self {
        let endpoint = conn::Endpoint::new(dsn);
        Self::start(RedactedDsn(dsn).to_string(), endpoint, options)
    }

    /// A transport to the Spotlight sidecar at `url` (no authentication; envelopes POSTed to the URL
    /// as given). `None` when the URL has no host.
    pub(crate) fn spotlight(url: &http::Uri) -> Option<Self> {
        let endpoint = conn::Endpoint::for_url(url)?;
        // A development tool on this machine: a small queue, and nothing kept on disk.
        let options = HttpSinkOptions::default().queue_capacity(1000);
        Some(Self::start(url.to_string(), endpoint, options))
    }

    fn start(target: String, endpoint: conn::Endpoint, options: HttpSinkOptions) -> Self {
        // The loop takes envelopes off the channel as they come (and packs them); its own queue
        // is the bound. The channel only absorbs bursts faster than packing.
        let (tx, rx) = mpsc::channel(options.queue_capacity.clamp(1024, 16 * 1024));
        let inner = Arc::new(Transport {
            target,
            endpoint,
            options,
            limits: Mutex::new(RateLimits::default()),
            outcomes: Outcomes::default(),
            delivered: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            spooled: AtomicU64::new(0),
        });
        let worker = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("lighttrace-http-sink".into())
            .spawn(move || {
                crate::util::internal::mark_thread();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(worker::run(worker, rx)),
                    Err(_) => worker::drain_as_failed(&worker, rx),
                }
            });
        if spawned.is_err() {
            // No thread, no delivery: `send` will find the channel closed and count every drop.
        }
        Handle { inner, tx }
    }

    /// Envelopes the server accepted so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Drops counted so far and not yet reported to the server, by reason and category.
    pub(crate) fn pending_discards(&self) -> Vec<(Reason, Category, u64)> {
        self.inner.outcomes.pending()
    }

    /// Everything dropped since the sink was created, by reason and category (whether or not it
    /// was reported yet).
    pub(crate) fn dropped(&self) -> Vec<(Reason, Category, u64)> {
        self.inner.outcomes.total()
    }

    /// Bytes waiting in the [disk buffer](HttpSinkOptions::disk_buffer) (0 without one).
    pub(crate) fn spooled_bytes(&self) -> u64 {
        self.inner.spooled.load(Ordering::Relaxed)
    }
}

impl Handle {
    pub(crate) fn send(&self, envelope: Envelope) {
        let Some(envelope) = self.inner.drop_rate_limited(envelope) else {
            return;
        };
        match self.tx.try_send(Msg::Envelope(Box::new(envelope))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Msg::Envelope(e)))
            | Err(mpsc::error::TrySendError::Closed(Msg::Envelope(e))) => {
                self.inner
                    .outcomes
                    .count_envelope(&e, Reason::QueueOverflow);
            }
            Err(_) => {}
        }
    }

    pub(crate) fn flush(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        let tx = self.tx.clone();
        async move {
            let (done, answer) = oneshot::channel();
            let wait = async move {
                tx.send(Msg::Flush { timeout, done }).await.is_ok() && answer.await == Ok(true)
            };
            // The loop answers by the deadline itself; this only guards a loop that is gone.
            tokio::time::timeout(timeout + Duration::from_millis(100), wait)
                .await
                .unwrap_or(false)
        }
    }

    pub(crate) fn close(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        let tx = self.tx.clone();
        async move {
            let (done, answer) = oneshot::channel();
            let closed = async move {
                tx.send(Msg::Close { timeout, done }).await.is_ok() && answer.await == Ok(true)
            };
            // The loop keeps its own deadline; this only guards a loop that is gone.
            tokio::time::timeout(timeout + Duration::from_millis(200), closed)
                .await
                .unwrap_or(false)
        }
    }

    pub(crate) fn record_backpressure(&self, category: Category, quantity: u32) {
        self.inner
            .outcomes
            .count_backpressure(category, u64::from(quantity));
    }

    pub(crate) fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.inner
            .outcomes
            .count(reason, category, u64::from(quantity));
    }

    pub(crate) fn send_serialized(&self, envelope: SerializedEnvelope) {
        if let Some(category) = envelope.category() {
            let limited = {
                let limits = self.inner.limits.lock().unwrap_or_else(|e| e.into_inner());
                limits.is_limited(category, Instant::now())
            };
            if limited {
                self.inner
                    .count_items(envelope.items(), Reason::RatelimitBackoff);
                return;
            }
        }
        match self.tx.try_send(Msg::Serialized(envelope)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Msg::Serialized(e)))
            | Err(mpsc::error::TrySendError::Closed(Msg::Serialized(e))) => {
                self.inner.count_items(e.items(), Reason::QueueOverflow);
            }
            Err(_) => {}
        }
    }

    pub(crate) fn would_drop(&self, category: Category) -> Option<Reason> {
        // In the order `send` applies them: a rate limit first, then the queue.
        let limited = {
            let limits = self.inner.limits.lock().unwrap_or_else(|e| e.into_inner());
            limits.is_limited(category, Instant::now())
        };
        if limited {
            return Some(Reason::RatelimitBackoff);
        }
        let full = self.inner.queued.load(Ordering::Relaxed) >= self.inner.options.queue_capacity
            && self.inner.options.disk_buffer.is_none();
        (full || self.tx.capacity() == 0).then_some(Reason::QueueOverflow)
    }
}

impl Transport {
    /// ReportCounts what a serialised envelope carries as dropped.
    pub(crate) fn count_items(&self, items: &[(Category, u32)], reason: Reason) {
        for (category, quantity) in items {
            self.outcomes.count(reason, *category, u64::from(*quantity));
        }
    }

    /// Removes the items whose category is rate limited right now, counting them.
    pub(crate) fn drop_rate_limited(&self, envelope: Envelope) -> Option<Envelope> {
        let now = Instant::now();
        let limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        if !limits.any_active(now) {
            return Some(envelope);
        }
        let mut dropped = Vec::new();
        let kept = envelope.filter(|item: &EnvelopeItem| {
            let categories = item_categories(item);
            let limited = categories
                .first()
                .is_some_and(|(c, _)| limits.is_limited(*c, now));
            if limited {
                dropped.extend(categories);
            }
            !limited
        });
        drop(limits);
        for (category, quantity) in dropped {
            self.outcomes
                .count(Reason::RatelimitBackoff, category, quantity);
        }
        kept
    }

    /// Whether the server asked for nothing at all to be sent right now.
    pub(crate) fn all_limited(&self) -> bool {
        let limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits.all_limited(Instant::now())
    }

    /// A standalone client report's item, unless everything is rate limited (the counts then
    /// wait).
    pub(crate) fn standalone_report(&self) -> Option<(Vec<u8>, ReportCounts)> {
        if self.all_limited() {
            return None;
        }
        self.outcomes.take_report()
    }
}
