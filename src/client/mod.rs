//! The client: sampling on the request path, and the worker that builds, scrubs, passes
//! through the user's hooks and hands to the sink everything the request path queues (the
//! pipeline), plus what the worker sends on its own schedule (`periodic`: sessions and logs)
//! and the latency report it reads.

mod backpressure;
mod detect;
mod hooks;
mod job;
mod latency;
mod periodic;
mod pipeline;
mod sampling;
#[cfg(test)]
mod wire_tests;
mod worker;

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::{DynamicSamplingContext, Event, Level};
use sentry_types::Uuid;

pub(crate) use crate::metrics::Health;
pub(crate) use job::Job;

use crate::event::{self, Capture, CaptureContext, Captured, DscInput};
use crate::options::{Options, SamplingContext};
use crate::sink::Sink;
use pipeline::Core;
use worker::Worker;

/// Builds events and transactions off the request task and sends them through scrubbing, hooks
/// and sampling to a [`Sink`].
///
/// A `Client` is a cheap handle: clone it freely. [`TrackingLayer`](crate::TrackingLayer) makes
/// one from its options; build one yourself to share it between layers, or to report from outside
/// requests with [`Client::install_global`].
///
/// ```
/// use lighttrace::{Client, MemorySink, Options};
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let client = Client::new(Options::new().release("api@1.0.0").sink(sink.clone()));
/// assert!(client.is_enabled());
/// let id = client.capture_message("deploy finished", lighttrace::Level::Info);
/// assert!(id.is_some());
/// // Events are built on the client's worker thread: flush before looking.
/// assert!(client.flush(std::time::Duration::from_secs(5)).await);
/// assert_eq!(sink.events()[0].message.as_deref(), Some("deploy finished"));
/// assert_eq!(sink.events()[0].event_id, id.unwrap());
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

// Aligned past a cache line pair: every request clones the `Client` (into its scope), so the
// `Arc`'s reference count is written on every request; nothing read-mostly may share its line.
#[repr(align(128))]
struct ClientInner {
    core: Arc<Core>,
    worker: Worker,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.core.options)
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

static GLOBAL: RwLock<Option<Client>> = RwLock::new(None);

impl Client {
    /// Builds a client. With a [`sink`](Options::sink) it reports there; otherwise, with a DSN
    /// (and the default `http-sink` feature), over HTTP; otherwise it is disabled and sends
    /// nothing.
    pub fn new(options: Options) -> Client {
        let sink = options.sink.clone().or_else(|| default_sink(&options));
        let sink = crate::sink::with_spotlight(sink, options.spotlight.as_ref());
        let max_bytes = options.max_queue_bytes;
        // Without a release there is nothing to tie health to: nothing is counted.
        let sessions =
            (sink.is_some() && options.release.is_some()).then(crate::metrics::Sessions::new);
        let latency = options
            .track_latency
            .then(|| crate::metrics::latency::Latency::new(options.max_latency_routes));
        let backpressure =
            backpressure::Backpressure::new(options.backpressure, options.backpressure_interval);
        let core = Arc::new(Core {
            direct: crate::wire::Writer::new(pipeline::wire_setup(&options)),
            dsc_template: pipeline::dsc_template(&options),
            #[cfg(feature = "tracing")]
            log_attributes: periodic::log_attributes(&options),
            options,
            sink,
            unsampled: Default::default(),
            backpressure,
            sessions,
            latency,
            #[cfg(feature = "tracing")]
            logs: Default::default(),
        });
        let worker = Worker::new(core.clone(), max_bytes);
        if core.sessions.is_some() {
            // Aggregates go out every minute even when no request queues any work.
            worker.start();
        }
        Client {
            inner: Arc::new(ClientInner { worker, core }),
        }
    }

    /// Whether anything can be sent. A disabled client costs requests next to nothing.
    pub fn is_enabled(&self) -> bool {
        self.inner.core.sink.is_some()
    }

    /// The options this client was built from.
    pub fn options(&self) -> &Options {
        &self.inner.core.options
    }

    /// Makes this client the process-wide one that [`capture_error`](crate::capture_error) and
    /// friends use outside any request (in `main`, background threads, CLI tools).
    ///
    /// ```
    /// let client = lighttrace::Client::new(lighttrace::Options::new());
    /// client.install_global();
    /// assert!(lighttrace::Client::global().is_some());
    /// ```
    pub fn install_global(&self) {
        let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
        *global = Some(self.clone());
    }

    /// The process-wide client, if one was installed.
    pub fn global() -> Option<Client> {
        GLOBAL.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Builds what is queued and has the sink deliver it, waiting at most `timeout` (it never
    /// waits longer). Call it before the process exits.
    ///
    /// `true` means that, in time, every event and transaction queued before the call was
    /// built and handed to the sink, and the sink dealt with all of it: delivered, or dropped
    /// and counted (by reason and category) for a client report. With the HTTP sink, counted
    /// drops are sent with the next envelope or in a standalone report at this flush, so a
    /// `true` after an outage can mean "counted and reported", not "delivered". `false` means
    /// the timeout hit first: what was not done by then stays queued.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let client = lighttrace::Client::new(lighttrace::Options::new());
    /// assert!(client.flush(std::time::Duration::from_secs(2)).await);
    /// # }
    /// ```
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.drain_then(timeout, false).await
    }

    /// Flushes like [`flush`](Self::flush), then closes the sink: what it could not deliver by
    /// `timeout` is counted as dropped, or kept on disk by an `HttpSink` with a
    /// [disk buffer](crate::HttpSinkOptions::disk_buffer). Call it last, when the process is
    /// about to exit; the client sends nothing afterwards. Never waits past `timeout`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let client = lighttrace::Client::new(lighttrace::Options::new());
    /// assert!(client.close(std::time::Duration::from_secs(2)).await);
    /// # }
    /// ```
    pub async fn close(&self, timeout: Duration) -> bool {
        self.drain_then(timeout, true).await
    }

    /// Builds what is queued, reports unsampled counts, then flushes (or closes) the sink in
    /// what is left of `timeout`.
    async fn drain_then(&self, timeout: Duration, close: bool) -> bool {
        let core = &self.inner.core;
        let Some(sink) = &core.sink else {
            return true;
        };
        let started = std::time::Instant::now();
        let built = self.inner.worker.drain(timeout).await;
        core.unsampled.report_to(&**sink);
        let left = timeout.saturating_sub(started.elapsed());
        let done = if close {
            sink.close(left).await
        } else {
            sink.flush(left).await
        };
        done && built
    }

    /// Reports a message outside of any request. Inside a request prefer
    /// [`capture_message`](crate::capture_message), which adds the request's context.
    ///
    /// Returns the event's id when it was queued (not sampled out by
    /// [`sample_rate`](Options::sample_rate), and the client enabled); `before_send` may still
    /// drop it. The event is built off the caller's thread.
    pub fn capture_message(&self, message: impl Into<String>, level: Level) -> Option<Uuid> {
        self.capture_outside(Captured::Message(message.into()), level)
    }

    /// Sends a fully built event through sampling, scrubbing and `before_send`, off the
    /// caller's thread. Returns its id when it was queued.
    pub fn capture_event(&self, event: Event<'static>) -> Option<Uuid> {
        let level = event.level;
        self.capture_outside(Captured::Event(Box::new(event)), level)
    }

    fn capture_outside(&self, what: Captured, level: Level) -> Option<Uuid> {
        let event_id = match &what {
            Captured::Event(e) if !e.event_id.is_nil() => e.event_id,
            _ => event::new_event_id(),
        };
        self.capture(Capture {
            event_id,
            level,
            timestamp: SystemTime::now(),
            what,
            origin_tag: None,
            context: CaptureContext::default(),
        })
    }

    /// Queues a capture for the worker, after `sample_rate`. Returns its id when queued.
    pub(crate) fn capture(&self, capture: Capture) -> Option<Uuid> {
        if !self.sample_error() {
            return None;
        }
        let id = capture.event_id;
        self.submit(Job::Capture(Box::new(capture)));
        Some(id)
    }

    /// Queues work for the worker (bounded by bytes; an overflow is counted).
    pub(crate) fn submit(&self, job: Job) {
        if self.is_enabled() {
            self.inner.worker.push(job);
        }
    }

    /// Decides whether a request is traced, and with which rate (see
    /// [`Options::traces_sampler`]).
    pub(crate) fn sample_trace(&self, ctx: &SamplingContext<'_>) -> sampling::Decision {
        let core = &*self.inner.core;
        sampling::sample_trace(
            &core.options,
            ctx,
            &core.unsampled,
            core.backpressure.factor(),
            core.sink.as_deref(),
        )
    }

    /// The sampling context an upstream service froze, with the rate that really applied in
    /// place of its own when backpressure lowered this decision (sentry-python writes its
    /// effective rate there too): a trace is kept below both the upstream rate and the lowered
    /// one, so the smaller of the two is what the server extrapolates from.
    pub(crate) fn applied_rate(
        upstream: Option<Box<DynamicSamplingContext>>,
        decision: &sampling::Decision,
        upstream_rate: Option<f64>,
    ) -> Option<Box<DynamicSamplingContext>> {
        match upstream {
            Some(dsc) if decision.lowered => {
                let rate = upstream_rate.map_or(decision.rate, |up| (up as f32).min(decision.rate));
                Some(Box::new((*dsc).with_sample_rate(rate)))
            }
            other => other,
        }
    }

    /// Decides by `sample_rate` whether an error event is kept, counting it if not. Decided
    /// before anything is built, so a dropped panic costs no symbol lookups.
    pub(crate) fn sample_error(&self) -> bool {
        let Some(sink) = self.inner.core.sink.as_ref() else {
            return false;
        };
        // An error sampler decides on the worker, with the event in hand.
        if self.inner.core.options.error_sampler.is_some() {
            return true;
        }
        let keep = sampling::sample(self.inner.core.options.sample_rate);
        if !keep {
            sink.record_discard(Reason::SampleRate, Category::Error, 1);
        }
        keep
    }

    /// Tells the sink about data dropped before it was sent.
    pub(crate) fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.inner.core.record_discard(reason, category, quantity);
    }

    /// The latency slot of a request's route, when latency is tracked.
    pub(crate) fn latency_slot(
        &self,
        method: &http::Method,
        route: Option<&event::Route>,
    ) -> Option<u32> {
        let latency = self.inner.core.latency.as_ref()?;
        Some(latency.slot(method, route))
    }

    /// Counts a request that ended: its duration into its route's latency (when `slot` is
    /// given), its health into the release's sessions (when `health` is). The time it read as
    /// the end, if it counted anything.
    pub(crate) fn request_ended(
        &self,
        slot: Option<u32>,
        started: SystemTime,
        status: u16,
        health: Option<Health>,
    ) -> Option<SystemTime> {
        let core = &*self.inner.core;
        let latency = slot.zip(core.latency.as_ref());
        let sessions = health.zip(core.sessions.as_ref());
        if latency.is_none() && sessions.is_none() {
            return None;
        }
        // One clock read serves both (a clock read is most of what counting costs), and the
        // caller's transaction end.
        let now = SystemTime::now();
        if let Some((slot, latency)) = latency {
            latency.record(
                slot,
                status,
                now.duration_since(started).unwrap_or_default(),
            );
        }
        if let Some((health, sessions)) = sessions {
            sessions.count(now, health);
        }
        Some(now)
    }

    /// Whether request health is counted (a release is set and something can be sent).
    pub(crate) fn counts_sessions(&self) -> bool {
        self.inner.core.sessions.is_some()
    }

    pub(crate) fn options_ref(&self) -> &Options {
        &self.inner.core.options
    }

    /// The dynamic sampling context this process starts for a trace (outgoing `baggage`).
    pub(crate) fn own_dsc(&self, dsc: DscInput) -> DynamicSamplingContext {
        self.inner.core.own_dsc(dsc)
    }
}

#[cfg(feature = "http-sink")]
fn default_sink(options: &Options) -> Option<Arc<dyn Sink>> {
    let dsn = options.dsn.clone()?;
    Some(Arc::new(crate::sink::HttpSink::with_options(
        dsn,
        options.http_sink.clone(),
    )))
}

#[cfg(not(feature = "http-sink"))]
fn default_sink(_options: &Options) -> Option<Arc<dyn Sink>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn disabled_without_dsn_or_sink() {
        let client = Client::new(Options::new());
        assert!(!client.is_enabled());
        assert_eq!(client.capture_message("x", Level::Error), None);
    }

    #[tokio::test]
    async fn before_send_can_drop_and_is_counted() {
        let sink = MemorySink::new();
        let client = Client::new(Options::new().sink(sink.clone()).before_send(|_| None));
        assert!(client.capture_message("dropped", Level::Error).is_some());
        assert!(client.flush(WAIT).await);
        assert!(sink.envelopes().is_empty());
        assert_eq!(
            sink.discarded(),
            vec![(Reason::BeforeSend, Category::Error, 1)]
        );
    }

    #[tokio::test]
    async fn hooks_run_off_the_callers_thread_and_a_panicking_one_is_counted() {
        let sink = MemorySink::new();
        let caller = std::thread::current().id();
        let client = Client::new(Options::new().sink(sink.clone()).before_send(move |event| {
            assert_ne!(
                std::thread::current().id(),
                caller,
                "ran on the caller's thread"
            );
            if event.message.as_deref() == Some("bad") {
                panic!("a buggy before_send");
            }
            Some(event)
        }));
        assert!(client.capture_message("bad", Level::Error).is_some());
        assert!(client.capture_message("good", Level::Error).is_some());
        assert!(client.flush(WAIT).await);
        let messages: Vec<_> = sink.events().into_iter().map(|e| e.message).collect();
        assert_eq!(messages, [Some("good".to_owned())]);
        assert_eq!(
            sink.discarded(),
            vec![(Reason::EventProcessor, Category::Error, 1)]
        );
    }

    #[tokio::test]
    async fn sample_rate_zero_sends_no_errors() {
        let sink = MemorySink::new();
        let client = Client::new(Options::new().sink(sink.clone()).sample_rate(0.0));
        for _ in 0..20 {
            assert_eq!(client.capture_message("x", Level::Error), None);
        }
        assert!(client.flush(WAIT).await);
        assert!(sink.envelopes().is_empty());
        assert_eq!(sink.discarded().len(), 20);
    }

    #[tokio::test]
    async fn a_panicking_traces_sampler_leaves_the_request_untraced_and_is_counted() {
        let sink = MemorySink::new();
        let client = Client::new(
            Options::new()
                .sink(sink.clone())
                .traces_sampler(|_| panic!("a buggy sampler")),
        );
        let headers = http::HeaderMap::new();
        let ctx = SamplingContext {
            method: &http::Method::GET,
            name: None,
            route: None,
            headers: &headers,
            parent_sampled: None,
            parent_sample_rate: None,
            sample_rand: 0.5,
        };
        assert!(!client.sample_trace(&ctx).sampled);
        assert_eq!(
            sink.discarded(),
            vec![(Reason::EventProcessor, Category::Transaction, 1)]
        );
    }

    #[tokio::test]
    async fn envelope_carries_trace_header_with_public_key() {
        let sink = MemorySink::new();
        let dsn =
            crate::parse_dsn("https://0123456789abcdef0123456789abcdef@example.com/7").unwrap();
        let client = Client::new(
            Options::new()
                .dsn(dsn)
                .release("r@1")
                .environment("test")
                .sink(sink.clone()),
        );
        let id = client.capture_message("hello", Level::Warning).unwrap();
        assert!(client.flush(WAIT).await);
        let bytes = sink.serialized().pop().unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(bytes.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(header["event_id"], id.to_string());
        assert_eq!(
            header["trace"]["public_key"],
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(header["trace"]["release"], "r@1");
        assert!(header["sent_at"].is_string());
        let event = &sink.events()[0];
        assert_eq!(event.platform, "native");
        assert_eq!(event.sdk.as_ref().unwrap().name, "lighttrace");
        assert_eq!(event.environment.as_deref(), Some("test"));
    }
}
