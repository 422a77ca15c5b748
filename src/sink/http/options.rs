//! `HttpSinkOptions`: the HTTP transport's tuning.

use std::time::Duration;

use tokio::sync::Semaphore;

/// Tuning for [`HttpSink`](super::HttpSink). Start from `HttpSinkOptions::default()` and chain setters.
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
    pub(super) queue_capacity: usize,
    pub(super) concurrency: usize,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) max_retries: u32,
    pub(super) retry_backoff: Duration,
    pub(super) report_interval: Duration,
    pub(super) compress_from: usize,
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
