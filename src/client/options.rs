//! `Options`: everything a [`Client`](crate::Client) can be configured with.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use sentry_types::protocol::v7::{Breadcrumb, Event, Transaction};
use sentry_types::Dsn;

use super::config::ConfigError;

use crate::sink::Sink;

/// A hook that may change or drop an error event before it is sent.
pub(crate) type BeforeSend = Arc<dyn Fn(Event<'static>) -> Option<Event<'static>> + Send + Sync>;
/// A hook that may change or drop a transaction before it is sent.
pub(crate) type BeforeSendTransaction =
    Arc<dyn Fn(Transaction<'static>) -> Option<Transaction<'static>> + Send + Sync>;
/// Decides the trace sample rate of a request.
pub(crate) type TracesSampler = Arc<dyn Fn(&super::SamplingContext<'_>) -> f32 + Send + Sync>;
/// A hook that may change or drop a breadcrumb when it is recorded.
pub(crate) type BeforeBreadcrumb = Arc<dyn Fn(Breadcrumb) -> Option<Breadcrumb> + Send + Sync>;
/// Decides the sample rate of an error event.
pub(crate) type ErrorSampler = Arc<dyn Fn(&Event<'static>) -> f32 + Send + Sync>;

/// Configuration for a [`Client`](crate::Client). Start from [`Options::new`] (nothing from the
/// environment) or [`Options::from_env`], then chain setters.
///
/// ```
/// use lighttrace::{MemorySink, Options};
///
/// let options = Options::new()
///     .environment("production")
///     .release("api@1.2.3")
///     .traces_sample_rate(0.2)
///     .sink(MemorySink::new());
/// assert_eq!(options.get_release(), Some("api@1.2.3"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct Options {
    pub(crate) dsn: Option<Dsn>,
    pub(crate) environment: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) server_name: Option<String>,
    pub(crate) sample_rate: f32,
    pub(crate) traces_sample_rate: f32,
    pub(crate) max_breadcrumbs: usize,
    pub(crate) send_default_pii: bool,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) before_send: Option<BeforeSend>,
    pub(crate) before_send_transaction: Option<BeforeSendTransaction>,
    pub(crate) before_breadcrumb: Option<BeforeBreadcrumb>,
    pub(crate) sink: Option<Arc<dyn Sink>>,
    pub(crate) traces_sampler: Option<TracesSampler>,
    pub(crate) max_spans: usize,
    pub(crate) max_queue_bytes: usize,
    pub(crate) trace_propagation_targets: Option<Arc<[String]>>,
    pub(crate) propagate_traceparent: bool,
    pub(crate) strict_trace_continuation: bool,
    pub(crate) org_id: Option<u64>,
    pub(crate) ignore_transactions: Vec<String>,
    /// `None`: every method but HEAD and OPTIONS.
    pub(crate) http_methods_to_capture: Option<Vec<http::Method>>,
    pub(crate) trace_ignore_status_codes: Vec<u16>,
    pub(crate) ignore_errors: Vec<String>,
    pub(crate) ignore_error_statuses: Vec<u16>,
    pub(crate) error_sampler: Option<ErrorSampler>,
    pub(crate) max_request_body_size: usize,
    pub(crate) scrub_rules: super::ScrubRules,
    pub(crate) in_app_include: Vec<String>,
    pub(crate) in_app_exclude: Vec<String>,
    pub(crate) track_latency: bool,
    pub(crate) max_latency_routes: usize,
    pub(crate) spotlight: Option<http::Uri>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dsn: None,
            environment: None,
            release: None,
            server_name: None,
            sample_rate: 1.0,
            traces_sample_rate: 1.0,
            max_breadcrumbs: 100,
            send_default_pii: false,
            tags: BTreeMap::new(),
            before_send: None,
            before_send_transaction: None,
            before_breadcrumb: None,
            sink: None,
            traces_sampler: None,
            max_spans: 1000,
            max_queue_bytes: 8 * 1024 * 1024,
            trace_propagation_targets: None,
            propagate_traceparent: false,
            strict_trace_continuation: false,
            org_id: None,
            ignore_transactions: Vec::new(),
            http_methods_to_capture: None,
            trace_ignore_status_codes: Vec::new(),
            ignore_errors: Vec::new(),
            ignore_error_statuses: Vec::new(),
            error_sampler: None,
            max_request_body_size: 10 * 1024,
            scrub_rules: super::ScrubRules::default(),
            in_app_include: Vec::new(),
            in_app_exclude: Vec::new(),
            track_latency: true,
            max_latency_routes: 200,
            spotlight: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("dsn", &self.dsn.as_ref().map(crate::util::RedactedDsn))
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("sample_rate", &self.sample_rate)
            .field("traces_sample_rate", &self.traces_sample_rate)
            .field("max_breadcrumbs", &self.max_breadcrumbs)
            .field("send_default_pii", &self.send_default_pii)
            .field("before_send", &self.before_send.is_some())
            .field("sink", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

/// Reads an environment variable, treating an empty value as unset.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Options {
    /// Defaults: no DSN (nothing is sent), errors always sent, every request traced,
    /// 100 breadcrumbs, no default PII. Reads nothing from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defaults plus the environment: the DSN from `LIGHTTRACE_DSN`, else `SENTRY_DSN`; the release
    /// from `SENTRY_RELEASE`; the environment from `SENTRY_ENVIRONMENT`; the Spotlight sidecar
    /// from `SENTRY_SPOTLIGHT` (`1` or a URL, see [`spotlight`](Self::spotlight)). Setters
    /// called afterwards win over the environment.
    ///
    /// An invalid DSN (or `SENTRY_SPOTLIGHT`) in the environment is an error that names the
    /// variable.
    ///
    /// ```
    /// # std::env::remove_var("LIGHTTRACE_DSN"); std::env::remove_var("SENTRY_DSN");
    /// let options = lighttrace::Options::from_env().unwrap();
    /// assert!(options.get_dsn().is_none()); // nothing set: the client sends nothing
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut options = Self::new().env_release_and_environment();
        for var in ["LIGHTTRACE_DSN", "SENTRY_DSN"] {
            if let Some(value) = env_var(var) {
                options.dsn = Some(super::config::parse_dsn_from(&value, var)?);
                break;
            }
        }
        if let Some(value) = env_var("SENTRY_SPOTLIGHT") {
            options.spotlight = super::spotlight::from_env_value(&value)?;
        }
        Ok(options)
    }

    /// Fills release and environment from `SENTRY_RELEASE` and `SENTRY_ENVIRONMENT` where unset.
    pub(crate) fn env_release_and_environment(mut self) -> Self {
        if self.release.is_none() {
            self.release = env_var("SENTRY_RELEASE");
        }
        if self.environment.is_none() {
            self.environment = env_var("SENTRY_ENVIRONMENT");
        }
        self
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

    /// The share of requests recorded as transactions, from 0.0 to 1.0 (default 1.0). Out-of-range
    /// values are clamped.
    pub fn traces_sample_rate(mut self, rate: f32) -> Self {
        self.traces_sample_rate = clamp_rate(rate);
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
        F: Fn(&super::SamplingContext<'_>) -> f32 + Send + Sync + 'static,
    {
        self.traces_sampler = Some(Arc::new(sampler));
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

    /// How much of a JSON, form or text request body an error event shows (default 10 KiB;
    /// 0 turns body capture off). The body is teed as the handler reads it, never buffered in
    /// advance; longer bodies are cut (forms at a pair boundary) or, for JSON, summarised.
    ///
    /// ```
    /// let options = lighttrace::Options::new().max_request_body_size(4096);
    /// ```
    pub fn max_request_body_size(mut self, bytes: usize) -> Self {
        self.max_request_body_size = bytes;
        self
    }

    /// What counts as a secret (default: [`ScrubRules::default`](super::ScrubRules)). Scrubbing
    /// always runs, before any hook sees an event.
    pub fn scrub_rules(mut self, rules: super::ScrubRules) -> Self {
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

    pub(crate) fn in_app(&self) -> crate::event::InApp<'_> {
        crate::event::InApp {
            include: &self.in_app_include,
            exclude: &self.in_app_exclude,
        }
    }

    /// The configured DSN, if any.
    pub fn get_dsn(&self) -> Option<&Dsn> {
        self.dsn.as_ref()
    }

    /// The configured release, if any.
    pub fn get_release(&self) -> Option<&str> {
        self.release.as_deref()
    }

    /// The configured environment, if any.
    pub fn get_environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }
}

pub(crate) fn clamp_rate(rate: f32) -> f32 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_clamped() {
        let o = Options::new().sample_rate(7.0).traces_sample_rate(f32::NAN);
        assert_eq!(o.sample_rate, 1.0);
        assert_eq!(o.traces_sample_rate, 0.0);
    }

    #[test]
    fn debug_redacts_the_dsn_key() {
        let o =
            Options::new().dsn(crate::parse_dsn("https://abcdef0123456789@example.com/3").unwrap());
        let dbg = format!("{o:?}");
        assert!(!dbg.contains("abcdef0123456789"), "{dbg}");
        assert!(dbg.contains("example.com"));
    }
}
