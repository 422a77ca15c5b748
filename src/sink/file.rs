//! `FileSink`: one file per envelope, in Sentry's envelope format.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::Envelope;
use tokio::sync::Notify;

use super::{FlushFuture, SerializedEnvelope, Sink};

/// What waits for the writer thread.
enum Queued {
    Typed(Box<Envelope>),
    Serialized(SerializedEnvelope),
}

impl Queued {
    /// What the envelope carries, by category, as client reports count it.
    fn items(&self) -> Vec<(Category, u64)> {
        match self {
            Queued::Typed(envelope) => envelope
                .items()
                .flat_map(crate::wire::item_categories)
                .collect(),
            Queued::Serialized(envelope) => envelope
                .items()
                .iter()
                .map(|(c, n)| (*c, u64::from(*n)))
                .collect(),
        }
    }
}

/// How many envelopes may wait for the writer thread before new ones are dropped.
const QUEUE: usize = 1024;

/// Writes each envelope as one `.envelope` file into a directory, from a background thread.
///
/// The files are exactly what an HTTP sink would POST (before compression), so they can be
/// replayed to a server with `curl --data-binary @file`, or checked with Sentry's tools.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// use lighttrace::{FileSink, Options, Client, Level};
///
/// let dir = std::env::temp_dir().join(format!("lighttrace-doc-{}", std::process::id()));
/// let sink = FileSink::new(&dir)?;
/// let client = Client::new(Options::new().sink(sink.clone()));
/// client.capture_message("hello", Level::Info);
/// assert!(client.flush(std::time::Duration::from_secs(5)).await);
/// assert_eq!(std::fs::read_dir(&dir)?.count(), 1);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileSink {
    inner: Arc<FileShared>,
}

struct FileShared {
    dir: PathBuf,
    tx: SyncSender<Queued>,
    state: Arc<FileWriter>,
}

#[derive(Default)]
struct FileWriter {
    enqueued: AtomicU64,
    done: AtomicU64,
    /// What could not be written, by reason and category.
    dropped: Mutex<HashMap<(Reason, Category), u64>>,
    summary: AtomicBool,
    progressed: Notify,
}

impl FileWriter {
    fn count(&self, reason: Reason, queued: &Queued) {
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        for (category, n) in queued.items() {
            *dropped.entry((reason, category)).or_insert(0) += n;
        }
    }
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl FileSink {
    /// Creates `dir` if needed and starts the writer thread.
    pub fn new(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = sync_channel::<Queued>(QUEUE);
        let state = Arc::new(FileWriter::default());
        let worker_state = state.clone();
        let worker_dir = dir.clone();
        std::thread::Builder::new()
            .name("lighttrace-file-sink".into())
            .spawn(move || {
                crate::util::internal::mark_thread();
                // Ends when every FileSink handle is gone.
                for queued in rx {
                    let written = match &queued {
                        Queued::Typed(envelope) => {
                            let mut buf = Vec::with_capacity(1024);
                            envelope
                                .to_writer(&mut buf)
                                .and_then(|()| write_envelope(&worker_dir, &buf))
                        }
                        Queued::Serialized(envelope) => {
                            write_envelope(&worker_dir, envelope.as_bytes())
                        }
                    };
                    if written.is_err() {
                        worker_state.count(Reason::InternalSdkError, &queued);
                    } else if worker_state.summary.load(Ordering::Relaxed) {
                        let line = match queued {
                            Queued::Typed(envelope) => super::summary(&envelope),
                            Queued::Serialized(envelope) => envelope
                                .to_envelope()
                                .map(|e| super::summary(&e))
                                .unwrap_or_else(|_| "[lighttrace] envelope".to_owned()),
                        };
                        println!("{line}");
                    }
                    worker_state.done.fetch_add(1, Ordering::Release);
                    worker_state.progressed.notify_waiters();
                }
            })?;
        Ok(FileSink {
            inner: Arc::new(FileShared { dir, tx, state }),
        })
    }

    /// Also prints a one-line summary of each envelope to stdout (from the writer thread).
    #[must_use]
    pub fn with_summary(self) -> Self {
        self.inner.state.summary.store(true, Ordering::Relaxed);
        self
    }

    /// The directory envelopes are written to.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Everything not written, by reason and category (as
    /// [`HttpSink::dropped`](crate::HttpSink::dropped) reports it): `queue_overflow` when the
    /// writer fell behind, `internal_sdk_error` when a file could not be written.
    pub fn dropped(&self) -> Vec<(Reason, Category, u64)> {
        let dropped = self
            .inner
            .state
            .dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        dropped.iter().map(|((r, c), n)| (*r, *c, *n)).collect()
    }
}

/// Writes one envelope's bytes to a file named after the time and its event id.
fn write_envelope(dir: &Path, buf: &[u8]) -> std::io::Result<()> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let id = event_id(buf).unwrap_or_else(|| format!("{:016x}", fastrand::u64(..)));
    let name = format!("{millis}-{id}.envelope");
    // Write then rename, so a reader never sees half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(buf)?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))
}

/// The event id in an envelope's header line, without its dashes.
fn event_id(buf: &[u8]) -> Option<String> {
    let line = buf.split(|b| *b == b'\n').next()?;
    let header: serde_json::Value = serde_json::from_slice(line).ok()?;
    let id: sentry_types::Uuid = header.get("event_id")?.as_str()?.parse().ok()?;
    Some(id.simple().to_string())
}

impl FileSink {
    fn queue(&self, queued: Queued) {
        let state = &self.inner.state;
        match self.inner.tx.try_send(queued) {
            Ok(()) => {
                state.enqueued.fetch_add(1, Ordering::Release);
            }
            Err(TrySendError::Full(queued)) | Err(TrySendError::Disconnected(queued)) => {
                state.count(Reason::QueueOverflow, &queued);
            }
        }
    }
}

impl Sink for FileSink {
    fn send(&self, envelope: Envelope) {
        self.queue(Queued::Typed(Box::new(envelope)));
    }

    /// Serialised envelopes are written as they are.
    fn takes_serialized(&self) -> bool {
        true
    }

    fn send_serialized(&self, envelope: SerializedEnvelope) {
        self.queue(Queued::Serialized(envelope));
    }

    fn flush(&self, timeout: Duration) -> FlushFuture<'_> {
        let state = self.inner.state.clone();
        Box::pin(async move {
            let target = state.enqueued.load(Ordering::Acquire);
            let wait = async {
                loop {
                    let notified = state.progressed.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if state.done.load(Ordering::Acquire) >= target {
                        return;
                    }
                    notified.await;
                }
            };
            tokio::time::timeout(timeout, wait).await.is_ok()
        })
    }
}
