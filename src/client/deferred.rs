//! Work moved off the request task: building the protocol structs of the layer's own events and
//! transactions, running user hooks, and handing envelopes to the sink.
//!
//! A request only pushes a boxed job onto a queue (a short lock, no syscall). One worker thread
//! per client drains the queue; it is never woken per job, it polls with a short, backing-off
//! sleep, and is woken only when the queue grows long or a flush asks for it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;

use sentry_types::protocol::v7::client_report::{Category, Reason};

use crate::scope::RequestScope;
use crate::sink::Sink;
use std::time::{Duration, SystemTime};

/// A unit of deferred work, with what it would send (counted as lost if it panics).
pub(crate) struct Job {
    pub(crate) work: Work,
    pub(crate) categories: &'static [Category],
}

/// What a job does.
pub(crate) enum Work {
    /// Anything, boxed.
    Boxed(Box<dyn FnOnce() + Send>),
    /// The most common job, a sampled request's transaction, queued without a box: one
    /// allocation less on the request path, and one less for the worker to free.
    Transaction {
        scope: Arc<RequestScope>,
        status: u16,
        finished: SystemTime,
    },
}

impl Work {
    fn run(self) {
        match self {
            Work::Boxed(f) => f(),
            Work::Transaction {
                scope,
                status,
                finished,
            } => scope.send_transaction(status, finished),
        }
    }
}

/// Jobs waiting at most; beyond, new jobs are dropped (and counted by the caller).
const CAPACITY: usize = 10_000;
/// Queue length at which a producer wakes the worker instead of letting it poll.
const WAKE_AT: usize = 256;
/// Polling interval right after work, and the most it backs off to when idle.
const POLL_MIN: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Shared {
    /// Told about jobs that panicked (a user hook's bug), for the client reports.
    sink: Option<Arc<dyn Sink>>,
    queue: Mutex<Vec<Job>>,
    /// Jobs queued or running.
    pending: AtomicUsize,
    urgent: AtomicBool,
    closed: AtomicBool,
    /// Woken when the queue runs empty while a flush waits.
    drained: tokio::sync::Notify,
    worker: OnceLock<Option<Thread>>,
}

/// The deferred-work queue of one client.
pub(crate) struct Deferred {
    shared: Arc<Shared>,
}

impl Deferred {
    pub(crate) fn new(sink: Option<Arc<dyn Sink>>) -> Self {
        Deferred {
            shared: Arc::new(Shared {
                sink,
                ..Shared::default()
            }),
        }
    }

    /// Queues a job, or gives it back when the queue is full (for the caller to count).
    pub(crate) fn push(&self, job: Job) -> Result<(), Job> {
        let Some(worker) = self.worker() else {
            // No thread could be started: do the work here rather than lose it.
            run(&self.shared, job);
            return Ok(());
        };
        // Counted before it is visible to the worker, which subtracts after running it.
        if self.shared.pending.fetch_add(1, Ordering::AcqRel) >= CAPACITY {
            self.shared.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(job);
        }
        let len = {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push(job);
            queue.len()
        };
        if len == WAKE_AT {
            worker.unpark();
        }
        Ok(())
    }

    /// Waits until every queued job has run, at most `timeout`.
    pub(crate) async fn drain(&self, timeout: Duration) -> bool {
        if self.shared.pending.load(Ordering::Acquire) == 0 {
            return true;
        }
        let wait = async {
            loop {
                let notified = self.shared.drained.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.shared.pending.load(Ordering::Acquire) == 0 {
                    return;
                }
                self.shared.urgent.store(true, Ordering::Release);
                if let Some(worker) = self.worker() {
                    worker.unpark();
                }
                // Also re-check now and then, in case a wake-up raced with the check above.
                let _ = tokio::time::timeout(Duration::from_millis(5), notified).await;
            }
        };
        // `tokio::time::timeout` copes with any duration, `Duration::MAX` included.
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    fn worker(&self) -> Option<&Thread> {
        self.shared
            .worker
            .get_or_init(|| {
                let shared = self.shared.clone();
                std::thread::Builder::new()
                    .name("lighttrace-events".into())
                    .spawn(move || work(&shared))
                    .ok()
                    .map(|handle| handle.thread().clone())
            })
            .as_ref()
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        // The worker finishes what is queued, then exits.
        self.shared.closed.store(true, Ordering::Release);
        if let Some(Some(worker)) = self.shared.worker.get() {
            worker.unpark();
        }
    }
}

fn run(shared: &Shared, job: Job) {
    // A panicking user hook must not take the worker down with it; what the job would have
    // sent is counted as lost.
    let work = job.work;
    if catch_unwind(AssertUnwindSafe(|| work.run())).is_err() {
        if let Some(sink) = &shared.sink {
            for category in job.categories {
                sink.record_discard(Reason::InternalSdkError, *category, 1);
            }
        }
    }
}

fn work(shared: &Shared) {
    let mut idle = POLL_MIN;
    // Swapped with the queue each round, so neither is reallocated from zero every batch (a
    // growing queue made the allocator consolidate its free lists over and over).
    let mut batch: Vec<Job> = Vec::with_capacity(1024);
    loop {
        std::mem::swap(
            &mut *shared.queue.lock().unwrap_or_else(|e| e.into_inner()),
            &mut batch,
        );
        if batch.is_empty() {
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            if !shared.urgent.swap(false, Ordering::AcqRel) {
                std::thread::park_timeout(idle);
                idle = (idle * 2).min(POLL_MAX);
            }
            continue;
        }
        idle = POLL_MIN;
        let n = batch.len();
        for job in batch.drain(..) {
            run(shared, job);
        }
        if shared.pending.fetch_sub(n, Ordering::AcqRel) == n {
            shared.drained.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn job(f: impl FnOnce() + Send + 'static) -> Job {
        Job {
            work: Work::Boxed(Box::new(f)),
            categories: &[],
        }
    }

    #[tokio::test]
    async fn jobs_run_off_thread_and_drain_waits_for_them() {
        let deferred = Deferred::new(None);
        let count = Arc::new(AtomicU32::new(0));
        let caller = std::thread::current().id();
        for _ in 0..1000 {
            let count = count.clone();
            let queued = deferred.push(job(move || {
                assert_ne!(std::thread::current().id(), caller);
                count.fetch_add(1, Ordering::Relaxed);
            }));
            assert!(queued.is_ok());
        }
        assert!(deferred.drain(Duration::from_secs(5)).await);
        assert_eq!(count.load(Ordering::Relaxed), 1000);
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_stop_the_worker() {
        let sink = crate::sink::MemorySink::new();
        let deferred = Deferred::new(Some(Arc::new(sink.clone())));
        let ran = Arc::new(AtomicBool::new(false));
        let _ = deferred.push(Job {
            work: Work::Boxed(Box::new(|| panic!("user hook bug"))),
            categories: &[Category::Transaction],
        });
        let r = ran.clone();
        let _ = deferred.push(job(move || r.store(true, Ordering::Relaxed)));
        assert!(deferred.drain(Duration::from_secs(5)).await);
        assert!(ran.load(Ordering::Relaxed));
        assert_eq!(
            sink.discarded(),
            vec![(Reason::InternalSdkError, Category::Transaction, 1)]
        );
        // Any timeout is accepted, however long.
        assert!(deferred.drain(Duration::MAX).await);
    }
}
