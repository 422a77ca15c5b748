//! The preparation of events and transactions, run on the client's worker: filters, defaults,
//! scrubbing, the user's hooks (contained), the envelope with its sampling context, the sink. A
//! transaction no hook needs as a struct is written straight to bytes by the wire writer.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::{
    ClientSdkInfo, DynamicSamplingContext, Envelope, EnvelopeHeaders, EnvelopeItem, Event,
    SampleRand, Transaction,
};
use sentry_types::Uuid;

use super::hooks::{self, Verdict};
use super::job::Job;
use super::sampling::Unsampled;
use super::worker::Runner;
use crate::event::{self, Captured, DscInput, Failure, Finished, RequestSnapshot};
use crate::options::Options;
use crate::scrub;
use crate::sink::Sink;

/// What the worker needs: the options and the sink. Shared by the client's handles and its
/// worker thread.
pub(crate) struct Core {
    pub(crate) options: Options,
    pub(crate) sink: Option<Arc<dyn Sink>>,
    pub(crate) unsampled: Unsampled,
    /// The trace rate's downsampling while the sink cannot keep up.
    pub(crate) backpressure: super::backpressure::Backpressure,
    /// Release health counters (with a release and a sink).
    pub(crate) sessions: Option<crate::metrics::Sessions>,
    /// Per-route latency (unless turned off).
    pub(crate) latency: Option<crate::metrics::latency::Latency>,
    /// Structured logs waiting for their batch to go out.
    #[cfg(feature = "tracing")]
    pub(crate) logs: std::sync::Mutex<crate::event::LogBatch>,
    /// Attributes every log carries, made once from the options.
    #[cfg(feature = "tracing")]
    pub(crate) log_attributes: Vec<(&'static str, sentry_types::protocol::v7::Value)>,
    /// Writes transactions straight to envelope bytes (see `Core::send_transaction`).
    pub(crate) direct: crate::wire::Writer,
    /// The sampling context's fields the options fix (see [`dsc_template`]).
    pub(crate) dsc_template: DynamicSamplingContext,
}

/// What the wire writer needs of the options, handed over once.
pub(crate) fn wire_setup(options: &Options) -> crate::wire::Setup {
    crate::wire::Setup {
        release: options.release.clone(),
        environment: options.environment.clone(),
        server_name: options.server_name.clone(),
        tags: options.tags.clone(),
        public_key: options.dsn.as_ref().map(|dsn| dsn.public_key().to_owned()),
        org_id: options.effective_org_id(),
        pii: options.send_default_pii,
        rules: options.scrub_rules.clone(),
    }
}

/// The fields of the sampling contexts this process starts that its options fix: the public
/// key, release, environment and organization, worked out once per client.
pub(crate) fn dsc_template(options: &Options) -> DynamicSamplingContext {
    let mut out = DynamicSamplingContext::new();
    if let Some(dsn) = &options.dsn {
        out = out.with_public_key(dsn.public_key().to_owned());
    }
    if let Some(release) = &options.release {
        out = out.with_release(release.clone());
    }
    if let Some(environment) = &options.environment {
        out = out.with_environment(environment.clone());
    }
    if let Some(org) = options.effective_org_id() {
        out = out.with_org_id(org.into());
    }
    out
}

impl Runner for Core {
    fn run(&self, job: Job) -> Option<Job> {
        match job {
            Job::Request(mut finished) => {
                self.finish_request(&mut finished);
                Some(Job::Request(finished))
            }
            Job::Capture(capture) => {
                let ignored = self.options.ignores_captured(&capture.what);
                if ignored {
                    self.record_discard(Reason::EventProcessor, Category::Error, 1);
                }
                if !ignored {
                    let mut capture = capture;
                    let interface = match (&capture.context.request, &mut capture.what) {
                        (Some(request), _) => Some(self.request_interface(request)),
                        // An event the user built keeps its own `request`, scrubbed here.
                        (None, Captured::Event(event)) => {
                            if let Some(request) = event.request.as_mut() {
                                scrub::scrub_request(
                                    request,
                                    self.options.send_default_pii,
                                    &self.options.scrub_rules,
                                );
                            }
                            None
                        }
                        (None, _) => None,
                    };
                    let (mut event, dsc) =
                        event::capture_event(*capture, &self.options.in_app(), interface);
                    hooks::bound_breadcrumbs(&self.options, &mut event.breadcrumbs.values);
                    self.send_event(event, dsc);
                }
                None
            }
            Job::CheckIn(check_in) => {
                if let Some(sink) = self.sink.as_deref() {
                    let headers = EnvelopeHeaders::new().with_sent_at(SystemTime::now());
                    let mut envelope = Envelope::new().with_headers(headers);
                    envelope.add_item(EnvelopeItem::MonitorCheckIn(*check_in));
                    sink.send(envelope);
                }
                None
            }
            #[cfg(feature = "tracing")]
            Job::Log(record) => {
                self.add_log(*record);
                None
            }
        }
    }

    fn tick(&self, flush: bool) -> Option<std::time::Instant> {
        let sessions = self.tick_sessions(flush);
        #[cfg(feature = "tracing")]
        let logs = self.tick_logs(flush);
        #[cfg(not(feature = "tracing"))]
        let logs = None;
        let health = self.backpressure.tick(self.sink.as_deref());
        [sessions, logs, health].into_iter().flatten().min()
    }

    fn discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.record_discard(reason, category, quantity);
    }
}

/// The fields events and transactions share defaults for.
struct Common<'a, 'b> {
    release: &'a mut Option<Cow<'b, str>>,
    environment: &'a mut Option<Cow<'b, str>>,
    server_name: &'a mut Option<Cow<'b, str>>,
    tags: &'a mut BTreeMap<String, String>,
    platform: &'a mut Cow<'b, str>,
    sdk: &'a mut Option<Cow<'b, ClientSdkInfo>>,
}

impl Core {
    pub(crate) fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        // The worker's queue overflowing is what backpressure handling looks for.
        if reason == Reason::QueueOverflow && category == Category::Transaction {
            self.backpressure.strained();
        }
        if let Some(sink) = &self.sink {
            sink.record_discard(reason, category, quantity);
        }
    }

    /// The scrubbed `request` interface of a request, for an event or a hooked transaction.
    fn request_interface(&self, request: &RequestSnapshot) -> sentry_types::protocol::v7::Request {
        self.direct.request_interface(request)
    }

    /// A request's error event, then its transaction (copied out of `finished`, which goes back
    /// to a request thread).
    fn finish_request(&self, finished: &mut Finished) {
        // Borrowed, not taken: the failure (the handler's error, a panic's details) was
        // allocated on the request thread and goes back with the spent job to be freed there.
        if let Some(failure) = finished.failure.as_deref() {
            // A handler's error that `ignore_errors` drops never left the request (the layer
            // counted it); a panic is checked here.
            let ignored =
                matches!(failure, Failure::Panic { .. }) && self.ignores(["panic"].into_iter());
            if !ignored {
                let interface = self.request_interface(&finished.request);
                let (mut event, dsc) =
                    event::failure_event(finished, failure, &self.options.in_app(), interface);
                hooks::bound_breadcrumbs(&self.options, &mut event.breadcrumbs.values);
                self.send_event(event, dsc);
            }
        }
        if finished.traced() {
            self.send_transaction(finished);
            self.send_problems(finished);
        }
    }

    /// The performance problems in a sampled request's spans, each a warning event.
    fn send_problems(&self, finished: &Finished) {
        let detectors = self.options.detectors;
        if detectors.n_plus_one.is_none() && detectors.slow_db_query.is_none() {
            return;
        }
        for problem in super::detect::find(finished, detectors) {
            let interface = self.request_interface(&finished.request);
            let (event, dsc) = event::performance::problem_event(finished, &problem, interface);
            self.send_event(event, dsc);
        }
    }

    /// Whether `ignore_errors` names one of these types; the event is then counted, not built.
    fn ignores<'a>(&self, types: impl Iterator<Item = &'a str>) -> bool {
        let ignored = self.options.ignores_error(types);
        if ignored {
            self.record_discard(Reason::EventProcessor, Category::Error, 1);
        }
        ignored
    }

    /// The error sampler's decision (with `error_sampler` set; `sample_rate` decided already
    /// otherwise). A sampler that panics keeps the event.
    fn sampled(&self, event: &Event<'static>) -> bool {
        let Some(sampler) = &self.options.error_sampler else {
            return true;
        };
        let rate = crate::util::unwind::contain(|| sampler(event)).unwrap_or(1.0);
        let keep = super::sampling::sample(crate::options::clamp_rate(rate));
        if !keep {
            self.record_discard(Reason::SampleRate, Category::Error, 1);
        }
        keep
    }

    /// The error sampler, defaults, scrubbing (the `request` interface was scrubbed as it
    /// was built), `before_send`, envelope, sink.
    pub(crate) fn send_event(&self, mut event: Box<Event<'static>>, dsc: DscInput) {
        let Some(sink) = self.sink.as_deref() else {
            return;
        };
        if !self.sampled(&event) {
            return;
        }
        let options = &self.options;
        self.fill_defaults(Common {
            release: &mut event.release,
            environment: &mut event.environment,
            server_name: &mut event.server_name,
            tags: &mut event.tags,
            platform: &mut event.platform,
            sdk: &mut event.sdk,
        });
        if event.event_id.is_nil() {
            event.event_id = event::new_event_id();
        }
        scrub::event(&mut event, &options.scrub_rules);
        let event = match hooks::before_send(options, event) {
            Verdict::Keep(event) => event,
            Verdict::Dropped => {
                sink.record_discard(Reason::BeforeSend, Category::Error, 1);
                return;
            }
            Verdict::Panicked => {
                sink.record_discard(Reason::EventProcessor, Category::Error, 1);
                return;
            }
        };
        let mut envelope = Envelope::new().with_headers(self.envelope_headers(event.event_id, dsc));
        envelope.add_item(EnvelopeItem::Event(event));
        self.unsampled.report_to(sink);
        sink.send(envelope);
    }

    /// Builds a sampled request's transaction, unless the sink would drop it anyway; then
    /// defaults, scrubbing, `before_send_transaction`, envelope, sink.
    pub(super) fn send_transaction(&self, finished: &Finished) {
        let Some(sink) = self.sink.as_deref() else {
            return;
        };
        let (spans, over_cap) = finished
            .data
            .as_ref()
            .map_or((0, 0), |d| (d.spans.len(), d.spans_dropped));
        if over_cap > 0 {
            sink.record_discard(Reason::BufferOverflow, Category::Span, over_cap);
        }
        // Counted as the sink would count it: the transaction, and its spans (the root one
        // included).
        let lost = |reason: Reason| {
            sink.record_discard(reason, Category::Transaction, 1);
            let spans = u32::try_from(spans + 1).unwrap_or(u32::MAX);
            sink.record_discard(reason, Category::Span, spans);
        };
        if let Some(reason) = sink.would_drop(Category::Transaction) {
            // Not built at all: the sink would throw it away.
            self.backpressure.strained();
            lost(reason);
            return;
        }
        if self.options.before_send_transaction.is_none() && sink.takes_serialized() {
            // No hook needs the struct: written straight to the envelope's bytes.
            let envelope = self.direct.transaction_envelope(finished);
            self.unsampled.report_to(sink);
            sink.send_serialized(envelope);
            return;
        }
        let interface = self.request_interface(&finished.request);
        let (mut tx, dsc) = event::transaction(finished, interface);
        let options = &self.options;
        self.fill_defaults(Common {
            release: &mut tx.release,
            environment: &mut tx.environment,
            server_name: &mut tx.server_name,
            tags: &mut tx.tags,
            platform: &mut tx.platform,
            sdk: &mut tx.sdk,
        });
        scrub::transaction(&mut tx, &options.scrub_rules);
        let tx: Transaction<'static> = match hooks::before_send_transaction(options, tx) {
            Verdict::Keep(tx) => tx,
            Verdict::Dropped => return lost(Reason::BeforeSend),
            Verdict::Panicked => return lost(Reason::EventProcessor),
        };
        let headers = self.envelope_headers(tx.event_id, dsc);
        self.unsampled.report_to(sink);
        if sink.takes_serialized() {
            // Written as the direct writer writes it (start times in RFC 3339), so a
            // transaction reads the same whether a hook saw it or not.
            if let Some(envelope) = crate::wire::hooked::envelope(&headers, &tx) {
                sink.send_serialized(envelope);
                return;
            }
        }
        let mut envelope = Envelope::new().with_headers(headers);
        envelope.add_item(tx);
        sink.send(envelope);
    }

    /// Release, environment, server name, the options' tags (the event's own win), platform
    /// and SDK.
    fn fill_defaults(&self, common: Common<'_, '_>) {
        let options = &self.options;
        if common.release.is_none() {
            *common.release = options.release.clone().map(Into::into);
        }
        if common.environment.is_none() {
            *common.environment = options.environment.clone().map(Into::into);
        }
        if common.server_name.is_none() {
            *common.server_name = options.server_name.clone().map(Into::into);
        }
        for (k, v) in &options.tags {
            common.tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        // Relay rewrites "rust" to "other"; "native" is what Sentry expects for Rust.
        *common.platform = "native".into();
        *common.sdk = Some(event::sdk_info());
    }

    fn envelope_headers(&self, event_id: Uuid, dsc: DscInput) -> EnvelopeHeaders {
        let headers = EnvelopeHeaders::new()
            .with_event_id(event_id)
            .with_sent_at(SystemTime::now());
        match dsc.upstream {
            Some(upstream) => headers.with_trace(*upstream),
            // Relay requires a public key in the trace header: without a DSN there is none.
            None if self.options.dsn.is_some() => headers.with_trace(self.own_dsc(dsc)),
            None => headers,
        }
    }

    /// The dynamic sampling context this process starts for a trace (taking the input's
    /// transaction name rather than copying it).
    pub(crate) fn own_dsc(&self, dsc: DscInput) -> DynamicSamplingContext {
        let out = self.dsc_template.clone().with_trace_id(dsc.trace_id);
        // With tracing off nothing was decided here: the context has no rate and no decision
        // (Sentry's "tracing without performance").
        let rate = dsc.sample_rate.or(self.options.traces_sample_rate);
        let out = match (self.options.tracing_enabled(), rate) {
            (true, Some(rate)) => out.with_sample_rate(rate).with_sampled(dsc.sampled),
            (true, None) => out.with_sampled(dsc.sampled),
            (false, _) => out,
        };
        let out = match SampleRand::try_from(dsc.sample_rand) {
            Ok(rand) => out.with_sample_rand(rand),
            Err(_) => out,
        };
        match dsc.transaction {
            Some(name) => out.with_transaction(name),
            None => out,
        }
    }
}
