//! `HttpSink`: delivers envelopes to a Sentry-protocol server without ever blocking a request
//! and without dropping anything silently.
//!
//! `send` only puts the envelope on a bounded queue. A worker on its own thread (with its own
//! small tokio runtime, so it works with or without an application runtime) serialises, gzips and
//! POSTs, with bounded concurrency, timeouts, retries for network errors and 5xx, and per-category
//! rate limits. Everything dropped is counted by reason and category and reported to the server
//! as a `client_report`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;
use sentry_types::protocol::v7::client_report::{Category, Item as ReportItem, Reason};
use sentry_types::protocol::v7::{ClientReport, Envelope, EnvelopeItem};
use sentry_types::Dsn;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{FlushFuture, Sink};
use crate::client::RedactedDsn;

/// Tuning for [`HttpSink`]. Start from `HttpSinkOptions::default()` and chain setters.
///
/// ```
/// use std::time::Duration;
/// let options = lighttrace::HttpSinkOptions::default()
///     .queue_capacity(500)
///     .request_timeout(Duration::from_secs(10));
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct HttpSinkOptions {
    queue_capacity: usize,
    concurrency: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_retries: u32,
    retry_backoff: Duration,
    report_interval: Duration,
    compress_from: usize,
}

impl Default for HttpSinkOptions {
    fn default() -> Self {
        HttpSinkOptions {
            queue_capacity: 1000,
            concurrency: 4,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            retry_backoff: Duration::from_millis(200),
            report_interval: Duration::from_secs(30),
            compress_from: 1024,
        }
    }
}

impl HttpSinkOptions {
    /// Envelopes that may wait for delivery; when full, new ones are dropped and counted as
    /// `queue_overflow` (default 1000).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Requests in flight at once (default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Time allowed to connect (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Retries after a network error or a 5xx (default 2), with doubling backoff.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The first retry's delay; each further retry doubles it (default 200 ms).
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Envelopes of at least this many bytes are sent gzip-compressed (default 1 KiB). Smaller
    /// ones, such as most transactions, go uncompressed: deflating them costs more CPU than the
    /// few hundred bytes it saves. 0 compresses everything.
    pub fn compress_from(mut self, bytes: usize) -> Self {
        self.compress_from = bytes;
        self
    }

    /// How often pending client reports are sent when no envelope carries them (default 30 s).
    pub fn report_interval(mut self, interval: Duration) -> Self {
        self.report_interval = interval.max(Duration::from_millis(10));
        self
    }
}

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
pub struct HttpSink {
    inner: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
}

enum Msg {
    Envelope(Box<Envelope>),
    Flush(oneshot::Sender<()>),
}

/// Drop counts by reason and category.
type Outcomes = Vec<((Reason, Category), u64)>;

/// State shared by the handles and the worker.
struct Shared {
    dsn: Dsn,
    /// Kept parsed: reqwest would parse a string URL again for every POST.
    url: reqwest::Url,
    /// The headers every POST carries, built once (the auth value is marked sensitive), or
    /// `None` when the DSN's key cannot be a header value: nothing can then be sent.
    headers: Option<http::HeaderMap>,
    options: HttpSinkOptions,
    limits: Mutex<RateLimits>,
    /// Drops not yet reported to the server.
    outcomes: Mutex<HashMap<(Reason, Category), u64>>,
    /// Every drop since the sink was created.
    dropped_total: Mutex<HashMap<(Reason, Category), u64>>,
    delivered: AtomicU64,
}

impl fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSink")
            .field("dsn", &RedactedDsn(&self.inner.dsn))
            .field("options", &self.inner.options)
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
        let url = dsn.envelope_api_url();
        let mut auth = format!(
            "Sentry sentry_version=7, sentry_client={}/{}, sentry_key={}",
            crate::SDK_NAME,
            crate::SDK_VERSION,
            dsn.public_key()
        );
        if let Some(secret) = dsn.secret_key() {
            auth.push_str(", sentry_secret=");
            auth.push_str(secret);
        }
        let headers = post_headers(&auth);
        drop(auth);
        let (tx, rx) = mpsc::channel(options.queue_capacity);
        let inner = Arc::new(Shared {
            dsn,
            url,
            headers,
            options,
            limits: Mutex::new(RateLimits::default()),
            outcomes: Mutex::new(HashMap::new()),
            dropped_total: Mutex::new(HashMap::new()),
            delivered: AtomicU64::new(0),
        });
        let worker = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("lighttrace-http-sink".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(run(worker, rx)),
                    Err(_) => drain_as_failed(&worker, rx),
                }
            });
        if spawned.is_err() {
            // No thread, no delivery: `send` will find the channel closed and count every drop.
        }
        HttpSink { inner, tx }
    }

    /// Envelopes the server accepted so far.
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Drops counted so far and not yet reported to the server, by reason and category.
    pub fn pending_discards(&self) -> Vec<(Reason, Category, u64)> {
        counts_of(&self.inner.outcomes)
    }

    /// Everything dropped since the sink was created, by reason and category (whether or not it
    /// was reported yet).
    pub fn dropped(&self) -> Vec<(Reason, Category, u64)> {
        counts_of(&self.inner.dropped_total)
    }
}

fn counts_of(map: &Mutex<HashMap<(Reason, Category), u64>>) -> Vec<(Reason, Category, u64)> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.iter().map(|((r, c), n)| (*r, *c, *n)).collect()
}

impl Sink for HttpSink {
    fn send(&self, envelope: Envelope) {
        let Some(envelope) = self.inner.drop_rate_limited(envelope) else {
            return;
        };
        match self.tx.try_send(Msg::Envelope(Box::new(envelope))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Msg::Envelope(e)))
            | Err(mpsc::error::TrySendError::Closed(Msg::Envelope(e))) => {
                self.inner.count_envelope(&e, Reason::QueueOverflow);
            }
            Err(_) => {}
        }
    }

    fn flush(&self, timeout: Duration) -> FlushFuture<'_> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (done_tx, done_rx) = oneshot::channel();
            let wait =
                async move { tx.send(Msg::Flush(done_tx)).await.is_ok() && done_rx.await.is_ok() };
            tokio::time::timeout(timeout, wait).await.unwrap_or(false)
        })
    }

    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.inner.count(reason, category, u64::from(quantity));
    }

    fn would_drop(&self, category: Category) -> Option<Reason> {
        // In the order `send` applies them: a rate limit first, then the queue.
        let limited = {
            let limits = self.inner.limits.lock().unwrap_or_else(|e| e.into_inner());
            limits.is_limited(category, Instant::now())
        };
        if limited {
            return Some(Reason::RatelimitBackoff);
        }
        (self.tx.capacity() == 0).then_some(Reason::QueueOverflow)
    }
}

impl Shared {
    fn count(&self, reason: Reason, category: Category, quantity: u64) {
        if quantity == 0 {
            return;
        }
        {
            let mut totals = self.dropped_total.lock().unwrap_or_else(|e| e.into_inner());
            *totals.entry((reason, category)).or_insert(0) += quantity;
        }
        self.pend(reason, category, quantity);
    }

    fn pend(&self, reason: Reason, category: Category, quantity: u64) {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        *outcomes.entry((reason, category)).or_insert(0) += quantity;
    }

    /// Counts every item of an envelope as dropped (client reports themselves are not counted).
    fn count_envelope(&self, envelope: &Envelope, reason: Reason) {
        for item in envelope.items() {
            for (category, quantity) in item_categories(item) {
                self.count(reason, category, quantity);
            }
        }
    }

    /// Removes the items whose category is rate limited right now, counting them.
    fn drop_rate_limited(&self, envelope: Envelope) -> Option<Envelope> {
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
            self.count(Reason::RatelimitBackoff, category, quantity);
        }
        kept
    }

    /// Whether the server asked for nothing at all to be sent right now.
    fn all_limited(&self) -> bool {
        let limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits.all.is_some_and(|t| t > Instant::now())
    }

    /// A standalone client report, unless everything is rate limited (the counts then wait).
    fn standalone_report(&self) -> Option<(Envelope, Outcomes)> {
        if self.all_limited() {
            return None;
        }
        self.take_report()
            .map(|(report, counts)| (report_envelope(report), counts))
    }

    /// Takes the pending drop counts as a client report, keeping the counts so they can be put
    /// back if the envelope carrying the report does not arrive.
    fn take_report(&self) -> Option<(ClientReport, Outcomes)> {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        if outcomes.is_empty() {
            return None;
        }
        let counts: Outcomes = outcomes.drain().collect();
        let items: Vec<ReportItem> = counts
            .iter()
            .map(|((reason, category), n)| ReportItem::new(*category, *reason, *n))
            .collect();
        Some((ClientReport::new(items), counts))
    }

    fn restore(&self, counts: Outcomes) {
        for ((reason, category), n) in counts {
            self.pend(reason, category, n);
        }
    }
}

/// The rate-limit categories of an item, with quantities; the first is the item's own.
fn item_categories(item: &EnvelopeItem) -> Vec<(Category, u64)> {
    match item {
        EnvelopeItem::Event(_) => vec![(Category::Error, 1)],
        EnvelopeItem::Transaction(tx) => vec![
            (Category::Transaction, 1),
            (Category::Span, tx.spans.len() as u64 + 1),
        ],
        EnvelopeItem::SessionUpdate(_) | EnvelopeItem::SessionAggregates(_) => {
            vec![(Category::Session, 1)]
        }
        EnvelopeItem::Attachment(_) => vec![(Category::Attachment, 1)],
        EnvelopeItem::MonitorCheckIn(_) => vec![(Category::Monitor, 1)],
        _ => Vec::new(),
    }
}

/// Drops everything when the worker could not start.
fn drain_as_failed(shared: &Shared, mut rx: mpsc::Receiver<Msg>) {
    while let Some(msg) = rx.blocking_recv() {
        if let Msg::Envelope(e) = msg {
            shared.count_envelope(&e, Reason::InternalSdkError);
        }
    }
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Msg>) {
    let client = reqwest::Client::builder()
        .connect_timeout(shared.options.connect_timeout)
        .timeout(shared.options.request_timeout)
        .user_agent(format!("{}/{}", crate::SDK_NAME, crate::SDK_VERSION))
        .pool_idle_timeout(Duration::from_secs(60))
        .build();
    let Ok(client) = client else {
        while let Some(msg) = rx.recv().await {
            if let Msg::Envelope(e) = msg {
                shared.count_envelope(&e, Reason::InternalSdkError);
            }
        }
        return;
    };
    let permits = Arc::new(Semaphore::new(shared.options.concurrency));
    let mut packer = Packer::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut reports = tokio::time::interval(shared.options.report_interval);
    reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    reports.tick().await;
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Envelope(envelope)) => {
                    // Limits may have started while it waited in the queue.
                    let Some(mut envelope) = shared.drop_rate_limited(*envelope) else { continue };
                    let Ok(permit) = permits.clone().acquire_owned().await else { break };
                    // Reap finished deliveries now: under a steady stream of envelopes the
                    // select below rarely gets to, and finished tasks would pile up.
                    while tasks.try_join_next().is_some() {}
                    // Pending drop counts ride along (taken only now that it is about to go).
                    let counts = shared.take_report().map(|(report, counts)| {
                        envelope.add_item(report);
                        counts
                    });
                    let Some(packed) = pack(&shared, &mut packer, envelope, counts) else { continue };
                    let (shared, client) = (shared.clone(), client.clone());
                    tasks.spawn(async move {
                        deliver(&shared, &client, packed).await;
                        drop(permit);
                    });
                }
                Some(Msg::Flush(done)) => {
                    while tasks.join_next().await.is_some() {}
                    if let Some((envelope, counts)) = shared.standalone_report() {
                        if let Some(packed) = pack(&shared, &mut packer, envelope, Some(counts)) {
                            deliver(&shared, &client, packed).await;
                        }
                    }
                    let _ = done.send(());
                }
                None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = reports.tick() => {
                if let Some((envelope, counts)) = shared.standalone_report() {
                    if let Some(packed) = pack(&shared, &mut packer, envelope, Some(counts)) {
                        let (shared, client) = (shared.clone(), client.clone());
                        tasks.spawn(async move { deliver(&shared, &client, packed).await });
                    }
                }
            }
        }
    }
    // Every handle is gone: finish what is in flight (bounded by the request timeout).
    while tasks.join_next().await.is_some() {}
}

/// `X-Sentry-Auth` (marked sensitive, so it never shows in a `Debug`) and `Content-Type`.
fn post_headers(auth: &str) -> Option<http::HeaderMap> {
    let mut auth = http::HeaderValue::from_str(auth).ok()?;
    auth.set_sensitive(true);
    let mut headers = http::HeaderMap::with_capacity(4);
    headers.insert(http::HeaderName::from_static("x-sentry-auth"), auth);
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-sentry-envelope"),
    );
    Some(headers)
}

fn report_envelope(report: ClientReport) -> Envelope {
    let mut envelope = Envelope::new();
    envelope.add_item(report);
    envelope
}

/// What became of one attempt.
enum Attempt {
    Delivered,
    /// Rate limited (429): counted as `ratelimit_backoff`, never as a send error.
    RateLimited,
    /// Rejected for good (4xx): counted as `send_error`.
    Rejected,
    /// Worth retrying (5xx or network error).
    Retry(Reason),
    /// Cannot be sent at all (the DSN's key is not a valid header value): counted as
    /// `internal_sdk_error`, never retried.
    Unsendable,
}

/// An envelope ready to go: its gzip body, what it carries (to count it if it is lost) and the
/// drop counts of a client report riding along (put back if it is lost, so they are not).
struct Packed {
    body: bytes::Bytes,
    gzipped: bool,
    items: Vec<(Category, u64)>,
    report: Option<Outcomes>,
}

/// Serialises and gzips envelopes, reusing one compressor and its buffers: a fresh gzip
/// encoder allocates a few hundred KiB of state, which the allocator hands back to the kernel
/// each time, so every envelope paid for page faults and zeroing.
struct Packer {
    raw: Vec<u8>,
    deflate: flate2::Compress,
}

impl Packer {
    fn new() -> Self {
        Packer {
            raw: Vec::with_capacity(16 * 1024),
            deflate: flate2::Compress::new(flate2::Compression::fast(), false),
        }
    }

    /// A gzip member (RFC 1952): header, raw deflate, CRC-32 and length.
    /// The envelope's body, gzipped when it is at least `compress_from` bytes long.
    fn pack(&mut self, envelope: &Envelope, compress_from: usize) -> Option<(bytes::Bytes, bool)> {
        self.raw.clear();
        envelope.to_writer(&mut self.raw).ok()?;
        if self.raw.len() < compress_from {
            return Some((bytes::Bytes::copy_from_slice(&self.raw), false));
        }
        let mut out = Vec::with_capacity(self.raw.len() / 2 + 64);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        self.deflate.reset();
        loop {
            out.reserve(self.raw.len() / 2 + 64);
            let consumed = usize::try_from(self.deflate.total_in()).ok()?;
            let status = self
                .deflate
                .compress_vec(
                    &self.raw[consumed..],
                    &mut out,
                    flate2::FlushCompress::Finish,
                )
                .ok()?;
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(&self.raw);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the length modulo 2^32 by definition.
        out.extend_from_slice(&(self.raw.len() as u32).to_le_bytes());
        Some((bytes::Bytes::from(out), true))
    }
}

/// Sends one packed envelope, retrying as allowed, and counts it if it does not arrive.
async fn deliver(shared: &Shared, client: &reqwest::Client, packed: Packed) {
    let failed = |reason: Reason| {
        for (category, n) in &packed.items {
            shared.count(reason, *category, *n);
        }
        if let Some(counts) = packed.report.clone() {
            shared.restore(counts);
        }
    };
    let mut backoff = shared.options.retry_backoff;
    let mut attempt = 0;
    loop {
        let outcome = post(shared, client, packed.body.clone(), packed.gzipped).await;
        match outcome {
            Attempt::Delivered => {
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Attempt::RateLimited => {
                failed(Reason::RatelimitBackoff);
                return;
            }
            Attempt::Unsendable => {
                failed(Reason::InternalSdkError);
                return;
            }
            Attempt::Rejected => {
                // Counted, but the report it carried is not resent: the server refuses this
                // envelope for good, and resending could repeat forever.
                for (category, n) in &packed.items {
                    shared.count(Reason::SendError, *category, *n);
                }
                return;
            }
            Attempt::Retry(reason) => {
                if attempt >= shared.options.max_retries {
                    failed(reason);
                    return;
                }
                attempt += 1;
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
    }
}

/// Packs an envelope, counting it as an internal error if it cannot be serialised.
fn pack(
    shared: &Shared,
    packer: &mut Packer,
    envelope: Envelope,
    report: Option<Outcomes>,
) -> Option<Packed> {
    let items: Vec<(Category, u64)> = envelope.items().flat_map(item_categories).collect();
    match packer.pack(&envelope, shared.options.compress_from) {
        Some((body, gzipped)) => Some(Packed {
            body,
            gzipped,
            items,
            report,
        }),
        None => {
            for (category, n) in items {
                shared.count(Reason::InternalSdkError, category, n);
            }
            if let Some(counts) = report {
                shared.restore(counts);
            }
            None
        }
    }
}

async fn post(
    shared: &Shared,
    client: &reqwest::Client,
    body: bytes::Bytes,
    gzipped: bool,
) -> Attempt {
    let Some(headers) = &shared.headers else {
        return Attempt::Unsendable;
    };
    let mut request = reqwest::Request::new(reqwest::Method::POST, shared.url.clone());
    *request.headers_mut() = headers.clone();
    if gzipped {
        request.headers_mut().insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static("gzip"),
        );
    }
    *request.body_mut() = Some(body.into());
    let response = match client.execute(request).await {
        Ok(r) => r,
        Err(_) => return Attempt::Retry(Reason::NetworkError),
    };
    let status = response.status();
    {
        let mut limits = shared.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits.update(response.headers(), status.as_u16(), Instant::now());
    }
    // Read (and discard) the body so the connection can be reused; a garbage body is harmless.
    let _ = response.bytes().await;
    match status.as_u16() {
        200..=299 => Attempt::Delivered,
        429 => Attempt::RateLimited,
        500..=599 => Attempt::Retry(Reason::SendError),
        _ => Attempt::Rejected,
    }
}

/// Rate limits the server asked for, per category and global.
#[derive(Default, Debug)]
struct RateLimits {
    all: Option<Instant>,
    categories: HashMap<String, Instant>,
}

impl RateLimits {
    fn any_active(&self, now: Instant) -> bool {
        self.all.is_some_and(|t| t > now) || self.categories.values().any(|t| *t > now)
    }

    fn is_limited(&self, category: Category, now: Instant) -> bool {
        if self.all.is_some_and(|t| t > now) {
            return true;
        }
        self.categories
            .get(category_name(category))
            .is_some_and(|t| *t > now)
    }

    /// Applies `X-Sentry-Rate-Limits` (on any status), else `Retry-After` on a 429, else 60 s
    /// for a bare 429.
    fn update(&mut self, headers: &HeaderMap, status: u16, now: Instant) {
        if let Some(value) = headers
            .get("x-sentry-rate-limits")
            .and_then(|v| v.to_str().ok())
        {
            self.apply_sentry_header(value, now);
        } else if status == 429 {
            let secs = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(60.0);
            extend(&mut self.all, now + secs_duration(secs));
        }
    }

    /// `retry_after:cat1;cat2:scope:reason, …`; no categories means all. The longest limit wins.
    fn apply_sentry_header(&mut self, value: &str, now: Instant) {
        for quota in value.split(',') {
            let mut parts = quota.trim().split(':');
            let Some(secs) = parts
                .next()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
            else {
                continue;
            };
            let until = now + secs_duration(secs);
            let categories = parts.next().unwrap_or("").trim();
            if categories.is_empty() {
                extend(&mut self.all, until);
            } else {
                for category in categories
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                {
                    let entry = self.categories.entry(category.to_owned()).or_insert(until);
                    if *entry < until {
                        *entry = until;
                    }
                }
            }
        }
    }
}

fn secs_duration(secs: f64) -> Duration {
    // Cap absurd values at a day (and keep `Instant` arithmetic from overflowing).
    Duration::from_secs_f64(secs.min(86_400.0))
}

fn extend(slot: &mut Option<Instant>, until: Instant) {
    if slot.is_none_or(|t| t < until) {
        *slot = Some(until);
    }
}

fn category_name(category: Category) -> &'static str {
    match category {
        Category::Error => "error",
        Category::Transaction => "transaction",
        Category::Span => "span",
        Category::Session => "session",
        Category::Attachment => "attachment",
        Category::Monitor => "monitor",
        _ => "default",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bugsink_style_limits() {
        let mut limits = RateLimits::default();
        let now = Instant::now();
        limits.apply_sentry_header("86400:transaction;span:organization", now);
        assert!(limits.is_limited(Category::Transaction, now));
        assert!(limits.is_limited(Category::Span, now));
        assert!(!limits.is_limited(Category::Error, now));
    }

    #[test]
    fn empty_categories_mean_all_and_longest_wins() {
        let mut limits = RateLimits::default();
        let now = Instant::now();
        limits.apply_sentry_header("60::key, 10:error:project, garbage, :x", now);
        assert!(limits.is_limited(Category::Error, now + Duration::from_secs(30)));
        assert!(limits.is_limited(Category::Session, now + Duration::from_secs(59)));
        assert!(!limits.is_limited(Category::Session, now + Duration::from_secs(61)));
        limits.apply_sentry_header("5:error", now);
        assert!(limits.is_limited(Category::Error, now + Duration::from_secs(9)));
    }

    #[test]
    fn retry_after_and_bare_429() {
        let now = Instant::now();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        let mut limits = RateLimits::default();
        limits.update(&headers, 429, now);
        assert!(limits.is_limited(Category::Error, now + Duration::from_secs(6)));
        assert!(!limits.is_limited(Category::Error, now + Duration::from_secs(8)));

        let mut limits = RateLimits::default();
        limits.update(&HeaderMap::new(), 429, now);
        assert!(limits.is_limited(Category::Transaction, now + Duration::from_secs(59)));

        let mut limits = RateLimits::default();
        limits.update(&HeaderMap::new(), 200, now);
        assert!(!limits.any_active(now));
    }

    #[test]
    fn packed_bodies_are_valid_gzip_and_the_packer_is_reusable() {
        use std::io::Read;
        let mut packer = Packer::new();
        for n in [1usize, 5000, 3] {
            let mut envelope = Envelope::new();
            let mut event = sentry_types::protocol::v7::Event::new();
            event.message = Some("x".repeat(n));
            envelope.add_item(event);
            let (body, gzipped) = packer.pack(&envelope, 0).unwrap();
            assert!(gzipped);
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut raw)
                .unwrap();
            let mut expected = Vec::new();
            envelope.to_writer(&mut expected).unwrap();
            assert_eq!(raw, expected);
            let (plain, gzipped) = packer.pack(&envelope, usize::MAX).unwrap();
            assert!(!gzipped);
            assert_eq!(&plain[..], &expected[..]);
        }
    }

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
