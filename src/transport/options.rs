//! `HttpSinkOptions`: the HTTP transport's tuning.

use std::path::PathBuf;
use std::time::Duration;

/// Tuning for [`HttpSink`](crate::HttpSink). Start from `HttpSinkOptions::default()` and chain
/// setters. The defaults fit an error reporter: a server that does not answer within a few
/// seconds is treated as failing, and a failing server is left alone for a while instead of
/// being hammered.
///
/// ```
/// use std::time::Duration;
/// let options = lighttrace::HttpSinkOptions::default()
///     .queue_capacity(500)
///     .request_timeout(Duration::from_secs(3))
///     .disk_buffer(std::env::temp_dir().join("lighttrace-spool"), 64 * 1024 * 1024);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct HttpSinkOptions {
    pub(super) queue_capacity: usize,
    pub(super) concurrency: usize,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) max_retries: u32,
    pub(super) circuit_failures: u32,
    pub(super) circuit_cooldown: Duration,
    pub(super) report_interval: Duration,
    pub(super) compress_from: usize,
    pub(super) compression_level: u32,
    pub(super) disk_buffer: Option<(PathBuf, u64)>,
}

impl Default for HttpSinkOptions {
    fn default() -> Self {
        HttpSinkOptions {
            queue_capacity: 1000,
            concurrency: 4,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_retries: 2,
            circuit_failures: 3,
            circuit_cooldown: Duration::from_secs(1),
            report_interval: Duration::from_secs(30),
            compress_from: 1024,
            compression_level: 1,
            disk_buffer: None,
        }
    }
}

impl HttpSinkOptions {
    /// Envelopes that may wait for delivery; when full, new ones are dropped and counted as
    /// `queue_overflow` (or, with a [disk buffer](Self::disk_buffer), spooled) (default 1000).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.clamp(1, 1 << 24);
        self
    }

    /// Requests in flight at once, each on its own keep-alive connection (default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.clamp(1, 256);
        self
    }

    /// Time allowed to open a connection (TCP and TLS) (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request, connecting included; past it the request counts as a
    /// network failure (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Retries of an envelope whose request failed without an answer (connection refused or
    /// reset, timeout, garbage): default 2. A server's answer (4xx, 5xx, 429) is never retried,
    /// as Sentry's SDK guidelines ask.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Consecutive failures (no answer, or a 5xx) after which the sink stops sending and waits
    /// [`circuit_cooldown`](Self::circuit_cooldown) before probing the server with one request
    /// (default 3).
    pub fn circuit_failures(mut self, failures: u32) -> Self {
        self.circuit_failures = failures.max(1);
        self
    }

    /// How long the sink waits before probing a failing server; each failed probe doubles it,
    /// up to a minute (default 1 s).
    pub fn circuit_cooldown(mut self, cooldown: Duration) -> Self {
        self.circuit_cooldown = cooldown.max(Duration::from_millis(10));
        self
    }

    /// Envelopes of at least this many bytes are sent gzip-compressed (default 1 KiB). Smaller
    /// ones, such as most transactions, go uncompressed: deflating them costs more CPU than the
    /// few hundred bytes it saves. 0 compresses everything; `usize::MAX` nothing (a collector
    /// on the same network).
    pub fn compress_from(mut self, bytes: usize) -> Self {
        self.compress_from = bytes;
        self
    }

    /// The gzip level, 1 (fastest, the default) to 9 (smallest).
    pub fn compression_level(mut self, level: u32) -> Self {
        self.compression_level = level.clamp(1, 9);
        self
    }

    /// How often pending client reports are sent when no envelope carries them (default 30 s).
    pub fn report_interval(mut self, interval: Duration) -> Self {
        self.report_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Keeps what cannot be delivered on disk, in `dir`, up to `max_bytes`, and sends it, in
    /// order, once the server answers again, also after a restart of the process. Off by
    /// default.
    ///
    /// What goes to disk: envelopes whose delivery failed without an answer from the server
    /// (after the retries) or with a 5xx, envelopes the full queue could not take, and, when
    /// the sink shuts down, whatever it could not send. Past `max_bytes` the oldest are dropped
    /// and counted in client reports. Records carry their length and a checksum, so a write
    /// torn by a crash is skipped, never sent as garbage; an envelope may be sent twice after
    /// a crash (servers deduplicate events by their id), never lost. Turn it on when losing
    /// the errors of an outage is worse than a few megabytes of disk: a service whose
    /// collector is across a network that can fail.
    pub fn disk_buffer(mut self, dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        self.disk_buffer = Some((dir.into(), max_bytes.max(64 * 1024)));
        self
    }
}
