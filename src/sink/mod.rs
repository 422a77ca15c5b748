//! Where envelopes go: the [`Sink`] trait and the built-in sinks ([`HttpSink`], [`FileSink`],
//! [`MemorySink`], and the Spotlight copy).
//!
//! A sink's [`send`](Sink::send) is called on the client's worker thread (or, when no worker
//! thread could start, on the thread that captured), and by the panic hook: it must return at
//! once, queueing the envelope and doing any I/O elsewhere. [`would_drop`](Sink::would_drop)
//! is asked on the worker before a transaction is built.

mod file;
#[cfg(feature = "http-sink")]
mod http;
mod memory;
#[cfg(feature = "http-sink")]
mod spotlight;

#[cfg(feature = "http-sink")]
pub(crate) use spotlight::with_spotlight;

/// Without the HTTP transport there is nothing to reach the Spotlight sidecar with.
#[cfg(not(feature = "http-sink"))]
pub(crate) fn with_spotlight(
    sink: Option<std::sync::Arc<dyn Sink>>,
    _url: Option<&http::Uri>,
) -> Option<std::sync::Arc<dyn Sink>> {
    sink
}

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::Envelope;

#[cfg(feature = "http-sink")]
pub use crate::transport::HttpSinkOptions;
pub use crate::wire::SerializedEnvelope;
pub use file::FileSink;
#[cfg(feature = "http-sink")]
pub use http::HttpSink;
pub use memory::MemorySink;

/// The future [`Sink::flush`] returns: resolves to whether everything queued was delivered.
pub type FlushFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// A destination for envelopes.
///
/// Implement it to send envelopes anywhere: a queue, a log pipeline, a test double.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use lighttrace::{sink::Sink, protocol::Envelope, Options, TrackingLayer};
///
/// /// Counts envelopes; a real sink would hand them to a channel or a background task.
/// #[derive(Clone, Default)]
/// struct Counting(Arc<Mutex<usize>>);
///
/// impl Sink for Counting {
///     fn send(&self, _envelope: Envelope) {
///         *self.0.lock().unwrap() += 1;
///     }
/// }
///
/// let counter = Counting::default();
/// let layer = TrackingLayer::with_options(Options::new().sink(counter.clone()));
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Takes an envelope. Must not block: queue it, or drop it and
    /// [`record_discard`](Self::record_discard) when full.
    fn send(&self, envelope: Envelope);

    /// Delivers what is queued, giving up after `timeout`. Resolves to `true` when everything
    /// queued before the call was dealt with (delivered, or dropped and counted) in time, `false`
    /// when the timeout hit first. The default has nothing queued and resolves to `true` at once.
    fn flush(&self, timeout: Duration) -> FlushFuture<'_> {
        let _ = timeout;
        Box::pin(std::future::ready(true))
    }

    /// Delivers what is queued like [`flush`](Self::flush), then stops: whatever could not be
    /// delivered by `timeout` is counted as dropped (or kept, by a sink that can). For the end
    /// of a process. The default only flushes.
    fn close(&self, timeout: Duration) -> FlushFuture<'_> {
        self.flush(timeout)
    }

    /// Told about data the client dropped before it reached the sink (sampling, `before_send`), so
    /// sinks that send client reports can count it. The default ignores it.
    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        let _ = (reason, category, quantity);
    }

    /// Told about transactions (and their spans) that sampling left out only because
    /// [backpressure](crate::Options::enable_backpressure_handling) had lowered the rate, so
    /// sinks that send client reports can count them under Sentry's `backpressure` reason
    /// (which `sentry-types`' [`Reason`] does not name). The default counts them through
    /// [`record_discard`](Self::record_discard) as `sample_rate`: they were sampled out.
    fn record_backpressure(&self, category: Category, quantity: u32) {
        self.record_discard(Reason::SampleRate, category, quantity);
    }

    /// Whether an envelope carrying `category` would be dropped if it were sent now, and why:
    /// a server rate limit (`RatelimitBackoff`) or a full queue (`QueueOverflow`). The default
    /// never drops.
    ///
    /// The client asks before it builds a transaction, so a saturated or rate-limited sink does
    /// not cost the work of building what it would throw away. Such a transaction never reaches
    /// `before_send_transaction`; it is counted through
    /// [`record_discard`](Self::record_discard) under the reason returned, once as
    /// `Transaction` and as many `Span`s as it had (the root span included), as the sink would
    /// have counted it.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use lighttrace::protocol::client_report::{Category, Reason};
    /// use lighttrace::protocol::Envelope;
    /// use lighttrace::sink::Sink;
    ///
    /// /// Takes no transactions while tracing is paused; errors still go through.
    /// struct Pausable(AtomicBool);
    ///
    /// impl Sink for Pausable {
    ///     fn send(&self, envelope: Envelope) {
    ///         // ... hand `envelope` on ...
    ///     }
    ///
    ///     fn would_drop(&self, category: Category) -> Option<Reason> {
    ///         let paused = self.0.load(Ordering::Relaxed);
    ///         (paused && category == Category::Transaction).then_some(Reason::QueueOverflow)
    ///     }
    /// }
    ///
    /// let sink = Pausable(AtomicBool::new(true));
    /// assert_eq!(sink.would_drop(Category::Transaction), Some(Reason::QueueOverflow));
    /// assert_eq!(sink.would_drop(Category::Error), None);
    /// ```
    fn would_drop(&self, category: Category) -> Option<Reason> {
        let _ = category;
        None
    }

    /// Whether this sink takes envelopes the client serialised itself, through
    /// [`send_serialized`](Self::send_serialized). The default is `false`: every envelope
    /// arrives through [`send`](Self::send) with typed items. Sinks that only write bytes
    /// (HTTP, files) say `true` and spare the client building protocol structs for
    /// transactions.
    fn takes_serialized(&self) -> bool {
        false
    }

    /// Takes an envelope in wire format (see [`SerializedEnvelope`]). Called only when
    /// [`takes_serialized`](Self::takes_serialized) is `true`; must not block, like `send`.
    /// The default parses it back and hands it to `send`, counting it as an internal error
    /// if it does not parse.
    fn send_serialized(&self, envelope: SerializedEnvelope) {
        match envelope.to_envelope() {
            Ok(parsed) => self.send(parsed),
            Err(_) => {
                for (category, quantity) in envelope.items() {
                    self.record_discard(Reason::InternalSdkError, *category, *quantity);
                }
            }
        }
    }
}

impl<S: Sink + ?Sized> Sink for Arc<S> {
    fn send(&self, envelope: Envelope) {
        (**self).send(envelope)
    }

    fn flush(&self, timeout: Duration) -> FlushFuture<'_> {
        (**self).flush(timeout)
    }

    fn close(&self, timeout: Duration) -> FlushFuture<'_> {
        (**self).close(timeout)
    }

    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        (**self).record_discard(reason, category, quantity)
    }

    fn record_backpressure(&self, category: Category, quantity: u32) {
        (**self).record_backpressure(category, quantity)
    }

    fn would_drop(&self, category: Category) -> Option<Reason> {
        (**self).would_drop(category)
    }

    fn takes_serialized(&self) -> bool {
        (**self).takes_serialized()
    }

    fn send_serialized(&self, envelope: SerializedEnvelope) {
        (**self).send_serialized(envelope)
    }
}

/// A one-line, human-readable summary of an envelope, for consoles and logs.
pub(crate) fn summary(envelope: &Envelope) -> String {
    use sentry_types::protocol::v7::EnvelopeItem;
    for item in envelope.items() {
        match item {
            EnvelopeItem::Event(event) => {
                let id = event.event_id.simple().to_string();
                let what = event
                    .exception
                    .values
                    .last()
                    .map(|e| format!("{}: {}", e.ty, e.value.as_deref().unwrap_or("")))
                    .or_else(|| event.message.clone())
                    .unwrap_or_default();
                return format!(
                    "[lighttrace] {:<7} {} {} | {}",
                    event.level.to_string(),
                    &id[..8],
                    event.transaction.as_deref().unwrap_or("-"),
                    what.lines().next().unwrap_or("")
                );
            }
            EnvelopeItem::Transaction(tx) => {
                let ms = tx
                    .timestamp
                    .and_then(|end| end.duration_since(tx.start_timestamp).ok())
                    .map(|d| d.as_secs_f64() * 1000.0)
                    .unwrap_or(0.0);
                let status = match tx.contexts.get("trace") {
                    Some(sentry_types::protocol::v7::Context::Trace(t)) => t
                        .status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".to_owned()),
                    _ => "-".to_owned(),
                };
                return format!(
                    "[lighttrace] tx      {} {:.1} ms {} ({} spans)",
                    tx.name.as_deref().unwrap_or("-"),
                    ms,
                    status,
                    tx.spans.len()
                );
            }
            EnvelopeItem::SessionAggregates(s) => {
                let sum = |f: fn(&sentry_types::protocol::v7::SessionAggregateItem) -> u32| {
                    s.aggregates.iter().map(f).sum::<u32>()
                };
                return format!(
                    "[lighttrace] health  {}: {} exited, {} errored, {} crashed",
                    s.attributes.release,
                    sum(|a| a.exited),
                    sum(|a| a.errored),
                    sum(|a| a.crashed)
                );
            }
            EnvelopeItem::MonitorCheckIn(c) => {
                return format!("[lighttrace] monitor {} {:?}", c.monitor_slug, c.status);
            }
            _ => {}
        }
    }
    "[lighttrace] envelope".to_owned()
}
