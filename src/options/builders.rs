//! Every builder method of [`Options`], in one `impl`.
//!
//! The one exception to the crate's ~450-line files: the builders are the options' reference
//! documentation, each with its example, and a reader finds them all in one place.

use std::sync::Arc;

use sentry_types::protocol::v7::{Breadcrumb, Event, Transaction};
use sentry_types::Dsn;

use super::{clamp_rate, Options, RequestBodySize, SamplingContext};
use crate::scrub::ScrubRules;
use crate::sink::Sink;

impl Options {
    /// Defaults: no DSN (nothing is sent), errors always sent, every request traced,
    /// 100 breadcrumbs, no default PII. Reads nothing from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where to report. Without a DSN and without a [`sink`](Self::sink) nothing is sent.
    pub fn dsn(mut self, dsn: Dsn) -> Self {
        self.dsn = Some(dsn);
        self
    }

    /// The environment, e.g. `production`.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The release, e.g. `api@1.2.3`: lets the server tell which deploy introduced an error.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// The server (host) name sent with every event.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The share of error events sent, from 0.0 to 1.0 (default 1.0). Out-of-range values are
    /// clamped.
    pub fn sample_rate(mut self, rate: f32) -> Self {
        self.sample_rate = clamp_rate(rate);
        self
    }

    /// The share of requests recorded as transactions, from 0.0 to 1.0. Out-of-range values
    /// are clamped. Unset by default: as in Sentry's SDKs, no request is traced until this or a
    /// [`traces_sampler`](Self::traces_sampler) is set (errors, release health and per-route
    /// latency are recorded either way, and incoming traces are still passed on).
    /// [`from_env`](Self::from_env) reads `SENTRY_TRACES_SAMPLE_RATE`.
    ///
    /// ```
    /// let options = lighttrace::Options::new();
    /// assert!(!options.tracing_enabled());
    /// assert!(options.traces_sample_rate(0.2).tracing_enabled());
    /// ```
    pub fn traces_sample_rate(mut self, rate: f32) -> Self {
        self.traces_sample_rate = Some(clamp_rate(rate));
        self
    }

    /// How many breadcrumbs an event carries at most, the request's own included; older ones
    /// are dropped first (default 100).
    pub fn max_breadcrumbs(mut self, max: usize) -> Self {
        self.max_breadcrumbs = max;
        self
    }

    /// Whether personal data collected automatically (cookies, client IP addresses) may be sent.
    /// Off by default. Data set explicitly, such as [`set_user`](crate::set_user), is always sent.
    pub fn send_default_pii(mut self, send: bool) -> Self {
        self.send_default_pii = send;
        self
    }

    /// A tag put on every event and transaction (a scope's own tags win).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Called with every error event after scrubbing; return `None` to drop it (counted as
    /// `before_send`). It runs on the client's worker thread, never on the request task; if it
    /// panics, the event is dropped and counted as `event_processor`, and nothing else is
    /// affected.
    ///
    /// ```
    /// let options = lighttrace::Options::new().before_send(|mut event| {
    ///     event.tags.insert("team".into(), "payments".into());
    ///     Some(event)
    /// });
    /// ```
    pub fn before_send<F>(mut self, hook: F) -> Self
    where
        F: Fn(Event<'static>) -> Option<Event<'static>> + Send + Sync + 'static,
    {
        self.before_send = Some(Arc::new(hook));
        self
    }

    /// Called with every transaction after scrubbing; return `None` to drop it (counted as
    /// `before_send`, with its spans). Like [`before_send`](Self::before_send) it runs on the
    /// worker thread, and a panic in it drops the transaction as `event_processor`.
    ///
    /// ```
    /// // Keep health checks out of the performance data.
    /// let options = lighttrace::Options::new().before_send_transaction(|tx| {
    ///     (tx.name.as_deref() != Some("GET /health")).then_some(tx)
    /// });
    /// ```
    pub fn before_send_transaction<F>(mut self, hook: F) -> Self
    where
        F: Fn(Transaction<'static>) -> Option<Transaction<'static>> + Send + Sync + 'static,
    {
        self.before_send_transaction = Some(Arc::new(hook));
        self
    }

    /// Called with the breadcrumbs an error event carries, when that event is built; return
    /// `None` to leave one out. It runs on the client's worker thread when an event is built,
    /// not when the breadcrumb is recorded, so requests that send no event never call it, and a
    /// slow or panicking hook cannot touch a request. A breadcrumb whose hook panics is left
    /// out.
    ///
    /// ```
    /// let options = lighttrace::Options::new()
    ///     .before_breadcrumb(|crumb| (crumb.category.as_deref() != Some("noise")).then_some(crumb));
    /// ```
    pub fn before_breadcrumb<F>(mut self, hook: F) -> Self
    where
        F: Fn(Breadcrumb) -> Option<Breadcrumb> + Send + Sync + 'static,
    {
        self.before_breadcrumb = Some(Arc::new(hook));
        self
    }

    /// Tunes the HTTP sink the DSN makes (queue, timeouts, gzip, disk buffer), without giving
    /// the DSN twice. Ignored when a [`sink`](Self::sink) is set.
    ///
    /// ```
    /// use lighttrace::{HttpSinkOptions, Options};
    /// let options = Options::new()
    ///     .dsn(lighttrace::parse_dsn("https://key@errors.example.com/1").unwrap())
    ///     .http_sink(HttpSinkOptions::default().queue_capacity(100));
    /// assert!(lighttrace::Client::new(options).is_enabled());
    /// ```
    #[cfg(feature = "http-sink")]
    pub fn http_sink(mut self, options: crate::sink::HttpSinkOptions) -> Self {
        self.http_sink = options;
        self
    }

    /// Where envelopes go. Overrides the HTTP transport that a DSN would otherwise create; the
    /// DSN's public key is still used in envelope headers.
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Decides each request's trace sample rate (0.0 to 1.0) from its method, route, headers and
    /// the upstream decision. Without it an upstream decision is honoured, else
    /// `traces_sample_rate` applies. It runs on the request path, so keep it cheap; if it
    /// panics, the request is not traced and its transaction is counted as `event_processor`.
    ///
    /// The rate it returns is compared with the trace's
    /// [`sample_rand`](SamplingContext::sample_rand), like every rate: a trace is kept when
    /// `sample_rand < rate`. Services that share a trace share its `sample_rand`, so one that
    /// samples at 0.25 keeps a subset of what one at 0.5 keeps, and no kept trace is torn.
    ///
    /// ```
    /// let options = lighttrace::Options::new().traces_sampler(|ctx| {
    ///     match (ctx.parent_sampled(), ctx.route()) {
    ///         (Some(parent), _) => if parent { 1.0 } else { 0.0 }, // follow the caller
    ///         (None, Some("/health")) => 0.0,
    ///         _ => 0.25,
    ///     }
    /// });
    /// ```
    pub fn traces_sampler<F>(mut self, sampler: F) -> Self
    where
        F: Fn(&SamplingContext<'_>) -> f32 + Send + Sync + 'static,
    {
        self.traces_sampler = Some(Arc::new(sampler));
        self
    }

    /// Whether the trace rate is lowered while the sink cannot keep up (default `true`, as
    /// sentry-python's `enable_backpressure_handling`).
    ///
    /// Every [`backpressure_check_interval`](Self::backpressure_check_interval) the client looks
    /// at its sink: when it had to drop a transaction since the last look, or would drop one
    /// now (its queue is full, or the server's rate limit covers transactions), the rate every
    /// sampling decision uses is halved again, down to 1/1024 of itself; the first healthy look
    /// restores it. Sampling contexts then carry the rate applied, and what the lowered rate
    /// leaves out is counted as `backpressure` in client reports instead of `sample_rate`.
    /// Error events, sessions and per-route latency are never lowered.
    ///
    /// ```
    /// let options = lighttrace::Options::new().enable_backpressure_handling(false);
    /// assert!(!options.backpressure_handling());
    /// ```
    pub fn enable_backpressure_handling(mut self, enabled: bool) -> Self {
        self.backpressure = enabled;
        self
    }

    /// How often the sink's health is checked for
    /// [backpressure handling](Self::enable_backpressure_handling) (default 10 s, as Sentry's
    /// SDKs; at least 1 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = lighttrace::Options::new().backpressure_check_interval(Duration::from_secs(5));
    /// assert_eq!(options.backpressure_interval(), Duration::from_secs(5));
    /// ```
    pub fn backpressure_check_interval(mut self, interval: std::time::Duration) -> Self {
        self.backpressure_interval = interval.max(std::time::Duration::from_millis(1));
        self
    }

    /// Spans recorded per transaction at most (default 1000); later ones are dropped and counted.
    pub fn max_spans(mut self, max: usize) -> Self {
        self.max_spans = max;
        self
    }

    /// How much memory the client's queue of work (finished requests and captures waiting to be
    /// built off the request task) may hold, estimated from what each job keeps alive: its
    /// request's headers, captured body, breadcrumbs and spans (default 8 MiB). Past it, new
    /// work is dropped and counted in client reports as `queue_overflow`; one job larger than
    /// the whole bound is still taken when the queue is empty.
    ///
    /// ```
    /// let options = lighttrace::Options::new().max_queue_bytes(2 * 1024 * 1024);
    /// ```
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// How much of a JSON, form or text request body an error event shows, in sentry-python's
    /// levels: [`Never`](RequestBodySize::Never), [`Small`](RequestBodySize::Small) (1,000
    /// bytes), [`Medium`](RequestBodySize::Medium) (10,000 bytes, the default) or
    /// [`Always`](RequestBodySize::Always) (1 MiB). The body is teed as the handler reads it,
    /// never buffered in advance; longer bodies are cut (forms at a pair boundary) or, for JSON,
    /// summarised.
    ///
    /// ```
    /// use lighttrace::{Options, RequestBodySize};
    /// let options = Options::new().max_request_body_size(RequestBodySize::Small);
    /// ```
    pub fn max_request_body_size(mut self, size: RequestBodySize) -> Self {
        self.max_request_body_size = size.bytes();
        self
    }

    /// Like [`max_request_body_size`](Self::max_request_body_size), as a number of bytes (0
    /// turns body capture off).
    ///
    /// ```
    /// let options = lighttrace::Options::new().max_request_body_bytes(4096);
    /// ```
    pub fn max_request_body_bytes(mut self, bytes: usize) -> Self {
        self.max_request_body_size = bytes;
        self
    }

    /// What counts as a secret (default: [`ScrubRules::default`](ScrubRules)). Scrubbing
    /// always runs, before any hook sees an event.
    pub fn scrub_rules(mut self, rules: ScrubRules) -> Self {
        self.scrub_rules = rules;
        self
    }

    /// Stack frames whose function starts with one of these paths are marked as your code,
    /// even where the crate's own rules (std, core, alloc, tokio, tower, hyper, axum, futures,
    /// lighttrace are library code) say otherwise.
    ///
    /// ```
    /// let options = lighttrace::Options::new().in_app_include(["my_company_shared::"]);
    /// ```
    pub fn in_app_include<I, S>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.in_app_include = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Stack frames whose function starts with one of these paths are marked as library code.
    ///
    /// ```
    /// let options = lighttrace::Options::new().in_app_exclude(["sqlx::", "my_app::vendored::"]);
    /// ```
    pub fn in_app_exclude<I, S>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.in_app_exclude = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether every request's duration is counted per route, for
    /// [`Client::latency`](crate::Client::latency) and its Prometheus text. On by default; it
    /// costs a request a few atomic operations and a clock read.
    pub fn track_latency(mut self, on: bool) -> Self {
        self.track_latency = on;
        self
    }

    /// How many distinct routes (method and route template) get their own latency histogram
    /// (default 200); requests to further routes are counted under `<other>`. A route's
    /// histograms take about 10 KiB per status class it answered with.
    pub fn max_latency_routes(mut self, routes: usize) -> Self {
        self.max_latency_routes = routes;
        self
    }

    /// Requests that never become transactions: exact transaction names (`"GET /health"`) or
    /// route templates (`"/health"`, any method). Checked when the request arrives, before
    /// anything is recorded; errors of those requests are still reported. (`sentry-python`:
    /// `ignore_transactions`.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().ignore_transactions(["/health", "GET /metrics"]);
    /// ```
    pub fn ignore_transactions<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignore_transactions = names.into_iter().map(Into::into).collect();
        self
    }

    /// The request methods that are traced (default: all but `HEAD` and `OPTIONS`, whose CORS
    /// preflights and health probes would crowd out real traffic). Requests with other methods
    /// record no transaction; their errors are still reported. (`sentry-python`:
    /// `http_methods_to_capture`.)
    ///
    /// ```
    /// let options = lighttrace::Options::new()
    ///     .http_methods_to_capture([http::Method::GET, http::Method::POST]);
    /// ```
    pub fn http_methods_to_capture(
        mut self,
        methods: impl IntoIterator<Item = http::Method>,
    ) -> Self {
        self.http_methods_to_capture = Some(methods.into_iter().collect());
        self
    }

    /// Response statuses whose transactions are dropped (e.g. 404 for scanners), counted as
    /// `event_processor` with their spans; never reported as errors. (`sentry-python`:
    /// `trace_ignore_status_codes`.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().trace_ignore_status_codes([404, 405]);
    /// ```
    pub fn trace_ignore_status_codes(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.trace_ignore_status_codes = codes.into_iter().collect();
        self
    }

    /// Errors that never become events, by type name, matched against every error of the
    /// `source()` chain as events show them (`"io::Error"`, `"DbError"`, `"sqlx::Error"`);
    /// `"panic"` matches panics. (`sentry-python`: `ignore_errors`, with class names.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().ignore_errors(["ConnectionReset", "io::Error"]);
    /// ```
    pub fn ignore_errors<I, S>(mut self, type_names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignore_errors = type_names.into_iter().map(Into::into).collect();
        self
    }

    /// Response statuses that never become error events, although the classifier calls them
    /// failures (e.g. 503 during planned maintenance). (`sentry-python`:
    /// `failed_request_status_codes` says the opposite: which statuses are failures.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().ignore_error_statuses([503]);
    /// ```
    pub fn ignore_error_statuses(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.ignore_error_statuses = codes.into_iter().collect();
        self
    }

    /// Decides the sample rate of each error event (0.0 to 1.0), in place of
    /// [`sample_rate`](Self::sample_rate): keep every rare error, a tenth of a noisy one. It sees
    /// the event as built, before scrubbing and `before_send`, on the client's worker; if it
    /// panics the event is kept. (`sentry-python`: `error_sampler`.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().error_sampler(|event| {
    ///     let noisy = event.exception.values.iter().any(|e| e.ty == "TimeoutError");
    ///     if noisy { 0.1 } else { 1.0 }
    /// });
    /// ```
    pub fn error_sampler<F>(mut self, sampler: F) -> Self
    where
        F: Fn(&Event<'static>) -> f32 + Send + Sync + 'static,
    {
        self.error_sampler = Some(Arc::new(sampler));
        self
    }

    /// Outgoing requests ([`send_traced`](crate::TracedRequest::send_traced),
    /// [`inject_trace_headers`](crate::inject_trace_headers), [`OutgoingLayer`](crate::OutgoingLayer))
    /// get `sentry-trace`, `baggage` (and `traceparent` when [on](Self::propagate_traceparent))
    /// only when their URL matches one of these; the others are still recorded as spans.
    ///
    /// As in sentry-python, each target is a regular expression searched anywhere in the URL
    /// (`api.internal` matches `https://api.internal/x`, and also a URL that mentions it: anchor
    /// with `^https://api\.internal/` to be strict). Default: every URL (`[".*"]`). An empty list
    /// turns propagation off. A target that is not a valid regular expression is matched as
    /// plain text. Requests to the DSN's host never carry trace headers.
    ///
    /// ```
    /// let options = lighttrace::Options::new()
    ///     .trace_propagation_targets([r"^https://api\.internal\.example\.com/", "localhost"]);
    /// ```
    pub fn trace_propagation_targets<I, S>(mut self, targets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.trace_propagation_targets = Some(super::Targets::new(targets));
        self
    }

    /// Also send W3C `traceparent` on outgoing requests (default off).
    pub fn propagate_traceparent(mut self, on: bool) -> Self {
        self.propagate_traceparent = on;
        self
    }

    /// Continue an incoming trace only when it comes from the same Sentry organization: its
    /// `baggage` must carry the same `sentry-org_id` as this client's
    /// ([`org_id`](Self::org_id)), or neither has one. Off by default: then only a different
    /// organization id starts a new trace. Turn it on for a service that takes requests from
    /// outside, so a caller cannot make your requests part of its traces (or yours of theirs).
    ///
    /// ```
    /// let options = lighttrace::Options::new().org_id(42).strict_trace_continuation(true);
    /// ```
    pub fn strict_trace_continuation(mut self, on: bool) -> Self {
        self.strict_trace_continuation = on;
        self
    }

    /// The Sentry organization id, for trace continuation and outgoing `baggage`
    /// (`sentry-org_id`). By default it is read from the DSN's host when it has the
    /// `o<digits>.` form (`o123.ingest.sentry.io`).
    pub fn org_id(mut self, id: u64) -> Self {
        self.org_id = Some(id);
        self
    }

    /// Also sends every envelope to the Spotlight sidecar at its default address
    /// (`http://localhost:8969/stream`): run `npx @spotlightjs/spotlight` and watch errors,
    /// traces and breadcrumbs in its browser UI. Beside the DSN's server, or without one. The
    /// sidecar being absent costs nothing and fails nothing. `SENTRY_SPOTLIGHT=1` (read by
    /// [`from_env`](Self::from_env)) does the same. Needs the `http-sink` feature.
    ///
    /// ```
    /// let options = lighttrace::Options::new().spotlight(true);
    /// assert_eq!(
    ///     options.spotlight_ref().map(|u| u.to_string()).as_deref(),
    ///     Some("http://localhost:8969/stream")
    /// );
    /// ```
    pub fn spotlight(mut self, on: bool) -> Self {
        self.spotlight = on.then(|| http::Uri::from_static(super::env::SPOTLIGHT_URL));
        self
    }

    /// Like [`spotlight`](Self::spotlight), with the sidecar at `url`
    /// (`SENTRY_SPOTLIGHT=<url>` does the same).
    ///
    /// ```
    /// let url: http::Uri = "http://127.0.0.1:9000/stream".parse().unwrap();
    /// let options = lighttrace::Options::new().spotlight_url(url.clone());
    /// assert_eq!(options.spotlight_ref(), Some(&url));
    /// ```
    pub fn spotlight_url(mut self, url: http::Uri) -> Self {
        self.spotlight = Some(url);
        self
    }

    /// Looks for N+1 queries in every sampled request's spans, on the client's worker, and
    /// sends one warning event per problem found: a run of at least 5 database spans under one
    /// parent, one after the other, with the same statement, together lasting 50 ms or more
    /// (the defaults of Sentry's own server-side detector; see
    /// [`n_plus_one_threshold`](Self::n_plus_one_threshold)). The event is titled
    /// `N+1 query: <statement> (×25) in GET /users`, carries the offending spans' ids, is
    /// linked to the trace, and its fingerprint (the transaction and the statement with its
    /// literals replaced) makes each problem one issue. Off by default: sentry.io finds these
    /// itself; servers that do not (Bugsink, GlitchTip) get them from here.
    ///
    /// ```
    /// let options = lighttrace::Options::new().detect_n_plus_one(true);
    /// ```
    pub fn detect_n_plus_one(mut self, on: bool) -> Self {
        use crate::event::performance::{N_PLUS_ONE_REPEATS, N_PLUS_ONE_TOTAL};
        self.detectors.n_plus_one = on.then_some((N_PLUS_ONE_REPEATS, N_PLUS_ONE_TOTAL));
        self
    }

    /// Looks for N+1 queries (see [`detect_n_plus_one`](Self::detect_n_plus_one)) with these
    /// thresholds: at least `repeats` (2 or more) queries lasting `total` together.
    ///
    /// ```
    /// let options = lighttrace::Options::new()
    ///     .n_plus_one_threshold(10, std::time::Duration::from_millis(100));
    /// ```
    pub fn n_plus_one_threshold(mut self, repeats: usize, total: std::time::Duration) -> Self {
        self.detectors.n_plus_one = Some((repeats.max(2), total));
        self
    }

    /// Sends one warning event per `SELECT` slower than `threshold` in a sampled request's
    /// spans (once per statement per request): `Slow DB query: <statement> (812 ms) in GET /x`,
    /// linked to the trace. Sentry's own detector uses 500 ms. Off by default.
    ///
    /// ```
    /// let options = lighttrace::Options::new()
    ///     .slow_db_query_threshold(std::time::Duration::from_millis(500));
    /// ```
    pub fn slow_db_query_threshold(mut self, threshold: std::time::Duration) -> Self {
        self.detectors.slow_db_query = Some(threshold);
        self
    }
}
