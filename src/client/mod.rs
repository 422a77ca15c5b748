//! The client: options, sampling, hooks, scrubbing and envelope assembly, in front of a sink.

mod deferred;
mod options;
mod scrub;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::{
    DynamicSamplingContext, Envelope, EnvelopeHeaders, Event, TraceId, Transaction,
};
use sentry_types::{Dsn, Uuid};

pub use options::{parse_dsn, ConfigError, Options};
pub use scrub::ScrubRules;
pub(crate) use scrub::FILTERED;

use crate::sink::Sink;

/// Shows a DSN without its keys, for logs and `Debug` output.
pub(crate) struct RedactedDsn<'a>(pub(crate) &'a Dsn);

impl fmt::Debug for RedactedDsn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for RedactedDsn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.0.public_key();
        let shown: String = key.chars().take(4).collect();
        write!(
            f,
            "{}://{}…@{}:{}/{}",
            self.0.scheme(),
            shown,
            self.0.host(),
            self.0.port(),
            self.0.project_id()
        )
    }
}

/// Trace facts an envelope's `trace` header (the dynamic sampling context) is made from.
pub(crate) struct TraceHeader<'a> {
    pub(crate) trace_id: TraceId,
    pub(crate) transaction: Option<&'a str>,
    pub(crate) sampled: bool,
    /// The rate the sampling decision was made with (default: `traces_sample_rate`).
    pub(crate) sample_rate: Option<f32>,
    /// The context an upstream service froze (from incoming `baggage`): forwarded as it is.
    pub(crate) frozen: Option<&'a DynamicSamplingContext>,
}

impl TraceHeader<'_> {
    /// A fresh trace, for captures outside any request.
    pub(crate) fn unsampled(trace_id: TraceId) -> TraceHeader<'static> {
        TraceHeader {
            trace_id,
            transaction: None,
            sampled: false,
            sample_rate: None,
            frozen: None,
        }
    }
}

/// What a [`traces_sampler`](Options::traces_sampler) sees of a request.
#[derive(Debug)]
pub struct SamplingContext<'a> {
    pub(crate) method: &'a http::Method,
    pub(crate) route: Option<&'a str>,
    pub(crate) headers: &'a http::HeaderMap,
    pub(crate) parent_sampled: Option<bool>,
}

impl<'a> SamplingContext<'a> {
    /// The request method.
    pub fn method(&self) -> &'a http::Method {
        self.method
    }

    /// The matched route template, e.g. `/users/{user_id}`, if any.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }

    /// The request headers.
    pub fn headers(&self) -> &'a http::HeaderMap {
        self.headers
    }

    /// The upstream service's sampling decision, from `sentry-trace` or `traceparent`.
    pub fn parent_sampled(&self) -> Option<bool> {
        self.parent_sampled
    }
}

/// Sends events and transactions through scrubbing, hooks and sampling to a [`Sink`].
///
/// A `Client` is a cheap handle: clone it freely. [`TrackingLayer`](crate::TrackingLayer) makes
/// one from its options; build one yourself to share it between layers, or to report from outside
/// requests with [`Client::install_global`].
///
/// ```
/// use lighttrace::{Client, MemorySink, Options};
///
/// let sink = MemorySink::new();
/// let client = Client::new(Options::new().release("api@1.0.0").sink(sink.clone()));
/// assert!(client.is_enabled());
/// client.capture_message("deploy finished", lighttrace::Level::Info);
/// assert_eq!(sink.events()[0].message.as_deref(), Some("deploy finished"));
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

// Aligned past a cache line pair: every request clones the `Client` (into its scope) and the
// worker thread drops that clone, so the `Arc`'s reference count bounces between cores; the
// options the request path reads must not share its cache line.
#[repr(align(128))]
struct ClientInner {
    options: Options,
    sink: Option<Arc<dyn Sink>>,
    /// Requests not sampled for tracing since the sink was last told (a relaxed atomic add is
    /// all an unsampled request pays for this).
    unsampled: AtomicU64,
    /// Work moved off request tasks.
    deferred: deferred::Deferred,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.options)
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
        let deferred_sink = sink.clone();
        Client {
            inner: Arc::new(ClientInner {
                options,
                sink,
                unsampled: AtomicU64::new(0),
                deferred: deferred::Deferred::new(deferred_sink),
            }),
        }
    }

    /// Whether anything can be sent. A disabled client costs requests next to nothing.
    pub fn is_enabled(&self) -> bool {
        self.inner.sink.is_some()
    }

    /// The options this client was built from.
    pub fn options(&self) -> &Options {
        &self.inner.options
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

    /// Delivers what is queued, waiting at most `timeout`: `true` when everything queued was
    /// dealt with (delivered, or dropped and counted in a client report) in time. Call it before
    /// the process exits; it never waits past `timeout`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let client = lighttrace::Client::new(lighttrace::Options::new());
    /// assert!(client.flush(std::time::Duration::from_secs(2)).await);
    /// # }
    /// ```
    pub async fn flush(&self, timeout: Duration) -> bool {
        match &self.inner.sink {
            Some(sink) => {
                let started = std::time::Instant::now();
                let built = self.inner.deferred.drain(timeout).await;
                self.report_unsampled(sink);
                let left = timeout.saturating_sub(started.elapsed());
                sink.flush(left).await && built
            }
            None => true,
        }
    }

    /// Sends a message event outside of any scope. Inside a request prefer
    /// [`capture_message`](crate::capture_message), which adds the request's context.
    pub fn capture_message(
        &self,
        message: impl Into<String>,
        level: sentry_types::protocol::v7::Level,
    ) -> Option<Uuid> {
        let mut event = crate::event::new_event(level, SystemTime::now());
        event.message = Some(message.into());
        self.capture_event(event)
    }

    /// Sends a fully built event through sampling, scrubbing and `before_send`. Returns its id
    /// when it was handed to the sink.
    pub fn capture_event(&self, event: Event<'static>) -> Option<Uuid> {
        self.send_event(event, TraceHeader::unsampled(crate::event::new_trace_id()))
    }

    /// Whether a new root trace should be sampled.
    /// Decides whether a request is traced, and with which rate: the `traces_sampler` if set,
    /// else the upstream decision if there is one, else `traces_sample_rate`.
    pub(crate) fn sample_trace(&self, ctx: &SamplingContext<'_>) -> (bool, f32) {
        let options = &self.inner.options;
        let (sampled, rate) = match (&options.traces_sampler, ctx.parent_sampled) {
            (Some(sampler), _) => {
                let rate = options::clamp_rate(sampler(ctx));
                (sample(rate), rate)
            }
            (None, Some(parent)) => (parent, options.traces_sample_rate),
            (None, None) => (
                sample(options.traces_sample_rate),
                options.traces_sample_rate,
            ),
        };
        if !sampled {
            self.inner.unsampled.fetch_add(1, Ordering::Relaxed);
        }
        (sampled, rate)
    }

    /// Runs `job` off the request task (building and sending the layer's own events and
    /// transactions). When the queue is full the job is dropped and counted under `categories`.
    pub(crate) fn defer(
        &self,
        categories: &'static [Category],
        job: impl FnOnce() + Send + 'static,
    ) {
        self.defer_work(categories, deferred::Work::Boxed(Box::new(job)));
    }

    /// Sends a sampled request's transaction from the worker (see [`defer`](Self::defer)),
    /// without boxing a closure for it.
    pub(crate) fn defer_transaction(
        &self,
        scope: Arc<crate::scope::RequestScope>,
        status: u16,
        finished: std::time::SystemTime,
    ) {
        let work = deferred::Work::Transaction {
            scope,
            status,
            finished,
        };
        self.defer_work(&[Category::Transaction], work);
    }

    fn defer_work(&self, categories: &'static [Category], work: deferred::Work) {
        let job = deferred::Job { work, categories };
        let Err(job) = self.inner.deferred.push(job) else {
            return;
        };
        match job.work {
            // Counted as the sink would count it: with its spans.
            deferred::Work::Transaction { scope, .. } => {
                scope.discard_transaction(Reason::QueueOverflow);
            }
            deferred::Work::Boxed(_) => {
                for category in categories {
                    self.record_discard(Reason::QueueOverflow, *category, 1);
                }
            }
        }
    }

    /// Whether the sink would drop `category` right now (full queue, rate limit), and why.
    pub(crate) fn sink_would_drop(&self, category: Category) -> Option<Reason> {
        self.inner.sink.as_ref()?.would_drop(category)
    }

    /// Tells the sink about data dropped before it was sent.
    pub(crate) fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        if let Some(sink) = &self.inner.sink {
            sink.record_discard(reason, category, quantity);
        }
    }

    /// Tells the sink how many transactions sampling dropped, for its client reports.
    fn report_unsampled(&self, sink: &Arc<dyn Sink>) {
        if self.inner.unsampled.load(Ordering::Relaxed) == 0 {
            return;
        }
        let n = self.inner.unsampled.swap(0, Ordering::Relaxed);
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        sink.record_discard(Reason::SampleRate, Category::Transaction, n);
    }

    pub(crate) fn options_ref(&self) -> &Options {
        &self.inner.options
    }

    /// The event pipeline: sample, fill defaults, scrub, `before_send`, envelope, sink.
    pub(crate) fn send_event(&self, event: Event<'static>, trace: TraceHeader<'_>) -> Option<Uuid> {
        if !self.sample_error() {
            return None;
        }
        self.send_sampled_event(event, trace)
    }

    /// Decides by `sample_rate` whether an error event is kept, counting it if not. Lets
    /// expensive events (a panic's symbolicated stack) be decided before they are built.
    pub(crate) fn sample_error(&self) -> bool {
        let Some(sink) = self.inner.sink.as_ref() else {
            return false;
        };
        let keep = sample(self.inner.options.sample_rate);
        if !keep {
            sink.record_discard(Reason::SampleRate, Category::Error, 1);
        }
        keep
    }

    /// The event pipeline after sampling: defaults, scrubbing, `before_send`, envelope, sink.
    pub(crate) fn send_sampled_event(
        &self,
        mut event: Event<'static>,
        trace: TraceHeader<'_>,
    ) -> Option<Uuid> {
        let sink = self.inner.sink.as_ref()?;
        let options = &self.inner.options;
        self.fill_event_defaults(&mut event);
        scrub_event(&mut event, options.send_default_pii, &options.scrub_rules);
        if let Some(hook) = &options.before_send {
            match hook(event) {
                Some(e) => event = e,
                None => {
                    sink.record_discard(Reason::BeforeSend, Category::Error, 1);
                    return None;
                }
            }
        }
        let id = event.event_id;
        let mut envelope = Envelope::new().with_headers(self.envelope_headers(id, &trace));
        envelope.add_item(event);
        self.report_unsampled(sink);
        sink.send(envelope);
        Some(id)
    }

    /// The transaction pipeline: fill defaults, scrub, `before_send_transaction`, envelope, sink.
    /// Trace sampling was decided when the request started.
    pub(crate) fn send_transaction(&self, mut tx: Transaction<'static>, trace: TraceHeader<'_>) {
        let Some(sink) = self.inner.sink.as_ref() else {
            return;
        };
        let options = &self.inner.options;
        if tx.release.is_none() {
            tx.release = options.release.clone().map(Into::into);
        }
        if tx.environment.is_none() {
            tx.environment = options.environment.clone().map(Into::into);
        }
        if tx.server_name.is_none() {
            tx.server_name = options.server_name.clone().map(Into::into);
        }
        for (k, v) in &options.tags {
            tx.tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        tx.platform = "native".into();
        tx.sdk = Some(crate::event::sdk_info());
        let rules = &options.scrub_rules;
        if let Some(request) = tx.request.as_mut() {
            scrub::scrub_request(request, options.send_default_pii, rules);
        }
        scrub::scrub_map(&mut tx.extra, rules);
        if let Some(user) = tx.user.as_mut() {
            scrub::scrub_map(&mut user.other, rules);
        }
        for span in tx.spans.iter_mut() {
            scrub::scrub_map(&mut span.data, rules);
        }
        if let Some(hook) = &options.before_send_transaction {
            match hook(tx) {
                Some(t) => tx = t,
                None => {
                    sink.record_discard(Reason::BeforeSend, Category::Transaction, 1);
                    return;
                }
            }
        }
        let id = tx.event_id;
        let mut envelope = Envelope::new().with_headers(self.envelope_headers(id, &trace));
        envelope.add_item(tx);
        self.report_unsampled(sink);
        sink.send(envelope);
    }

    /// A breadcrumb after the `before_breadcrumb` hook, or `None` when it drops it.
    pub(crate) fn process_breadcrumb(
        &self,
        crumb: sentry_types::protocol::v7::Breadcrumb,
    ) -> Option<sentry_types::protocol::v7::Breadcrumb> {
        match &self.inner.options.before_breadcrumb {
            Some(hook) => hook(crumb),
            None => Some(crumb),
        }
    }

    fn fill_event_defaults(&self, event: &mut Event<'static>) {
        let options = &self.inner.options;
        if event.release.is_none() {
            event.release = options.release.clone().map(Into::into);
        }
        if event.environment.is_none() {
            event.environment = options.environment.clone().map(Into::into);
        }
        if event.server_name.is_none() {
            event.server_name = options.server_name.clone().map(Into::into);
        }
        for (k, v) in &options.tags {
            event.tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        // Relay rewrites "rust" to "other"; "native" is what Sentry expects for Rust.
        event.platform = "native".into();
        event.sdk = Some(crate::event::sdk_info());
        if event.event_id.is_nil() {
            event.event_id = crate::event::new_event_id();
        }
    }

    fn envelope_headers(&self, event_id: Uuid, trace: &TraceHeader<'_>) -> EnvelopeHeaders {
        let headers = EnvelopeHeaders::new()
            .with_event_id(event_id)
            .with_sent_at(SystemTime::now());
        match trace.frozen {
            Some(frozen) => headers.with_trace(frozen.clone()),
            // Relay requires a public key in the trace header: without a DSN there is none.
            None if self.inner.options.dsn.is_some() => headers.with_trace(self.own_dsc(trace)),
            None => headers,
        }
    }

    /// The dynamic sampling context this process starts for a trace.
    pub(crate) fn own_dsc(&self, trace: &TraceHeader<'_>) -> DynamicSamplingContext {
        let options = &self.inner.options;
        let mut dsc = DynamicSamplingContext::new()
            .with_trace_id(trace.trace_id)
            .with_sample_rate(trace.sample_rate.unwrap_or(options.traces_sample_rate))
            .with_sampled(trace.sampled);
        if let Some(dsn) = &options.dsn {
            dsc = dsc.with_public_key(dsn.public_key().to_owned());
        }
        if let Some(release) = &options.release {
            dsc = dsc.with_release(release.clone());
        }
        if let Some(environment) = &options.environment {
            dsc = dsc.with_environment(environment.clone());
        }
        if let Some(name) = trace.transaction {
            dsc = dsc.with_transaction(name.to_owned());
        }
        dsc
    }
}

/// Scrubs everything in an event that could carry a secret the user did not set explicitly.
fn scrub_event(event: &mut Event<'static>, send_default_pii: bool, rules: &ScrubRules) {
    if let Some(request) = event.request.as_mut() {
        scrub::scrub_request(request, send_default_pii, rules);
    }
    scrub::scrub_map(&mut event.extra, rules);
    for crumb in event.breadcrumbs.values.iter_mut() {
        scrub::scrub_breadcrumb(crumb, rules);
    }
    if let Some(user) = event.user.as_mut() {
        scrub::scrub_map(&mut user.other, rules);
    }
    scrub::scrub_messages(event, rules);
}

fn sample(rate: f32) -> bool {
    rate >= 1.0 || (rate > 0.0 && fastrand::f32() < rate)
}

#[cfg(feature = "http-sink")]
fn default_sink(options: &Options) -> Option<Arc<dyn Sink>> {
    let dsn = options.dsn.clone()?;
    Some(Arc::new(crate::sink::HttpSink::new(dsn)))
}

#[cfg(not(feature = "http-sink"))]
fn default_sink(_options: &Options) -> Option<Arc<dyn Sink>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;

    #[test]
    fn disabled_without_dsn_or_sink() {
        let client = Client::new(Options::new());
        assert!(!client.is_enabled());
        assert_eq!(
            client.capture_message("x", sentry_types::protocol::v7::Level::Error),
            None
        );
    }

    #[test]
    fn before_send_can_drop_and_is_counted() {
        let sink = MemorySink::new();
        let client = Client::new(Options::new().sink(sink.clone()).before_send(|_| None));
        assert_eq!(
            client.capture_message("dropped", sentry_types::protocol::v7::Level::Error),
            None
        );
        assert!(sink.envelopes().is_empty());
        assert_eq!(
            sink.discarded(),
            vec![(Reason::BeforeSend, Category::Error, 1)]
        );
    }

    #[test]
    fn sample_rate_zero_sends_no_errors() {
        let sink = MemorySink::new();
        let client = Client::new(Options::new().sink(sink.clone()).sample_rate(0.0));
        for _ in 0..20 {
            client.capture_message("x", sentry_types::protocol::v7::Level::Error);
        }
        assert!(sink.envelopes().is_empty());
        assert_eq!(sink.discarded().len(), 20);
    }

    #[test]
    fn envelope_carries_trace_header_with_public_key() {
        let sink = MemorySink::new();
        let dsn = parse_dsn("https://0123456789abcdef0123456789abcdef@example.com/7").unwrap();
        let client = Client::new(
            Options::new()
                .dsn(dsn)
                .release("r@1")
                .environment("test")
                .sink(sink.clone()),
        );
        let id = client
            .capture_message("hello", sentry_types::protocol::v7::Level::Warning)
            .unwrap();
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
