//! Work moved off the request task: a finished request's error event and transaction, and
//! captures, built, scrubbed, passed through the user's hooks and handed to the sink.
//!
//! A request only pushes a plain value onto a queue (a short lock, no syscall while the worker
//! is awake). The queue is bounded by an estimate of the bytes its jobs keep alive, not by their
//! number: a job can pin a request's headers, up to `max_request_body_size` of its body and up
//! to `max_spans` spans. One worker thread per client drains it in batches. While work keeps
//! coming it naps briefly between batches, so producers never wake it; once a nap finds nothing
//! to do it parks until a producer (or a flush, or the client going away) wakes it, or until
//! the runner's next deadline (a batch of logs that must go out, say).
//!
//! What a request allocated is freed by a request thread, not by the worker: the worker hands
//! spent jobs back, and the next push drops them. glibc's allocator serves a thread's frees and
//! mallocs from its own cache, but a producer that only allocates and a consumer that only frees
//! meet on the producer's arena lock, and the request thread then waits on a futex.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use sentry_types::protocol::v7::client_report::{Category, Reason};

use super::job::Job;

/// Runs jobs. Implemented by the client's core; a trait so the queue can be tested alone.
pub(crate) trait Runner: Send + Sync + 'static {
    /// Builds and hands on what `job` carries. What is left of it (a finished request, whose
    /// values were copied rather than moved) is given back, to be freed by a request thread.
    fn run(&self, job: Job) -> Option<Job>;
    /// Counts what a lost job would have sent.
    fn discard(&self, reason: Reason, category: Category, quantity: u32);
    /// Sends what the runner buffers and is due (everything, when `flush`), and says when it
    /// next needs to be called, if ever.
    fn tick(&self, flush: bool) -> Option<Instant> {
        let _ = flush;
        None
    }
}

/// How long the worker naps between batches before it parks for good.
const NAP: Duration = Duration::from_millis(2);

struct QueueState {
    queue: Mutex<Vec<(Job, usize)>>,
    max_bytes: usize,
    /// Estimated bytes of the jobs queued or running.
    bytes: AtomicUsize,
    /// The worker is parked without a timeout: a producer must wake it.
    sleeping: AtomicBool,
    /// Flushes asked for, and the latest the worker completed: everything queued before it
    /// ran, and the runner's buffers sent.
    flushes_asked: AtomicU64,
    flushes_done: AtomicU64,
    closed: AtomicBool,
    /// Woken when the worker completes a flush.
    drained: tokio::sync::Notify,
    worker: OnceLock<Option<Thread>>,
    /// Times the worker woke up, for tests of its idle behaviour.
    wakeups: AtomicU64,
    /// Spent jobs for a request thread to free, and how many.
    returns: Mutex<Vec<Job>>,
    returned: AtomicUsize,
}

/// The job queue of one client, and its worker thread (started on first use).
pub(crate) struct Worker {
    state: Arc<QueueState>,
    runner: Arc<dyn Runner>,
}

impl Worker {
    pub(crate) fn new(runner: Arc<dyn Runner>, max_bytes: usize) -> Self {
        Worker {
            state: Arc::new(QueueState {
                queue: Mutex::new(Vec::new()),
                max_bytes,
                bytes: AtomicUsize::new(0),
                sleeping: AtomicBool::new(false),
                flushes_asked: AtomicU64::new(0),
                flushes_done: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                drained: tokio::sync::Notify::new(),
                worker: OnceLock::new(),
                wakeups: AtomicU64::new(0),
                returns: Mutex::new(Vec::new()),
                returned: AtomicUsize::new(0),
            }),
            runner,
        }
    }

    /// Queues a job; when the queue's byte bound would be passed, the job is dropped and what
    /// it would have sent is counted as `queue_overflow`.
    pub(crate) fn push(&self, job: Job) {
        let Some(worker) = self.worker() else {
            // No thread could be started: do the work here rather than lose it.
            drop(run(&*self.runner, job));
            return;
        };
        let state = &*self.state;
        let bytes = job.retained_bytes();
        // Reserved before it is visible to the worker, which releases it after running it.
        let before = state.bytes.fetch_add(bytes, Ordering::AcqRel);
        if before.saturating_add(bytes) > state.max_bytes && before > 0 {
            state.bytes.fetch_sub(bytes, Ordering::AcqRel);
            count(&*self.runner, &job, Reason::QueueOverflow);
            return;
        }
        state
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((job, bytes));
        // Pairs with the worker's fence between announcing sleep and looking at the queue.
        fence(Ordering::SeqCst);
        if state.sleeping.load(Ordering::Relaxed) {
            worker.unpark();
        }
        if state.returned.load(Ordering::Relaxed) > 0 {
            let spent =
                std::mem::take(&mut *state.returns.lock().unwrap_or_else(|e| e.into_inner()));
            state.returned.store(0, Ordering::Relaxed);
            // Freed here, outside the lock, by a thread that allocates.
            drop(spent);
        }
    }

    /// Waits until every job queued before the call has run and the runner's buffers were
    /// sent, at most `timeout`.
    pub(crate) async fn drain(&self, timeout: std::time::Duration) -> bool {
        let state = &*self.state;
        let worker = match state.worker.get() {
            Some(Some(worker)) => worker,
            // No thread could be started: jobs ran on their callers; send what is buffered.
            Some(None) => {
                crate::util::unwind::contain(|| self.runner.tick(true));
                return true;
            }
            // Never started: nothing was ever queued, but the runner may hold counts.
            None => {
                crate::util::unwind::contain(|| self.runner.tick(true));
                return true;
            }
        };
        let asked = state.flushes_asked.fetch_add(1, Ordering::AcqRel) + 1;
        let wait = async {
            loop {
                let notified = state.drained.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if state.flushes_done.load(Ordering::Acquire) >= asked {
                    return;
                }
                worker.unpark();
                // Also re-check now and then, in case a wake-up raced with the check above.
                let _ = tokio::time::timeout(Duration::from_millis(5), notified).await;
            }
        };
        // `tokio::time::timeout` copes with any duration, `Duration::MAX` included.
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Times the worker thread woke up so far.
    #[cfg(test)]
    pub(crate) fn wakeups(&self) -> u64 {
        self.state.wakeups.load(Ordering::Relaxed)
    }

    /// Whether the worker is parked until a producer wakes it.
    #[cfg(test)]
    pub(crate) fn is_sleeping(&self) -> bool {
        self.state.sleeping.load(Ordering::Acquire)
    }

    /// Starts the worker thread now rather than with the first job, for a runner whose
    /// buffers fill without jobs (it is ticked from the start).
    pub(crate) fn start(&self) {
        self.worker();
    }

    fn worker(&self) -> Option<&Thread> {
        self.state
            .worker
            .get_or_init(|| {
                let (state, runner) = (self.state.clone(), self.runner.clone());
                std::thread::Builder::new()
                    .name("lighttrace-worker".into())
                    .spawn(move || {
                        crate::util::internal::mark_thread();
                        work(&state, &*runner)
                    })
                    .ok()
                    .map(|handle| handle.thread().clone())
            })
            .as_ref()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The worker finishes what is queued, then exits.
        self.state.closed.store(true, Ordering::Release);
        if let Some(Some(worker)) = self.state.worker.get() {
            worker.unpark();
        }
    }
}

/// Counts what `job` would have sent as lost for `reason`.
fn count(runner: &dyn Runner, job: &Job, reason: Reason) {
    let (items, over_cap) = job.items();
    if over_cap > 0 {
        runner.discard(Reason::BufferOverflow, Category::Span, over_cap);
    }
    for (category, quantity) in items {
        runner.discard(reason, category, quantity);
    }
}

fn run(runner: &dyn Runner, job: Job) -> Option<Job> {
    // Hooks are contained where they are called; this only guards against a bug of ours, so
    // that one bad job neither takes the worker down nor goes uncounted.
    let (items, _) = job.items();
    match crate::util::unwind::contain(|| runner.run(job)) {
        Some(spent) => spent,
        None => {
            for (category, quantity) in items {
                runner.discard(Reason::InternalSdkError, category, quantity);
            }
            None
        }
    }
}

/// Spent jobs waiting for a request thread at most; past it the worker frees them itself
/// (nobody is pushing, so nobody contends for the allocator).
const MAX_RETURNS: usize = 4096;

/// Hands spent jobs back for a request thread to free.
fn give_back(state: &QueueState, spent: &mut Vec<Job>) {
    if spent.is_empty() {
        return;
    }
    let mut returns = state.returns.lock().unwrap_or_else(|e| e.into_inner());
    if returns.len() + spent.len() > MAX_RETURNS {
        drop(returns);
        spent.clear();
        return;
    }
    returns.append(spent);
    state.returned.store(returns.len(), Ordering::Relaxed);
}

fn work(state: &QueueState, runner: &dyn Runner) {
    // Swapped with the queue each round, so neither is reallocated from zero every batch.
    let mut batch: Vec<(Job, usize)> = Vec::with_capacity(256);
    let mut spent: Vec<Job> = Vec::with_capacity(256);
    let mut napped = false;
    let mut deadline: Option<Instant> =
        crate::util::unwind::contain(|| runner.tick(false)).flatten();
    loop {
        // Read before the queue: a flush asked now covers every job queued before it.
        let asked = state.flushes_asked.load(Ordering::Acquire);
        std::mem::swap(
            &mut *state.queue.lock().unwrap_or_else(|e| e.into_inner()),
            &mut batch,
        );
        let worked = !batch.is_empty();
        if worked {
            napped = false;
            let mut bytes = 0;
            for (job, size) in batch.drain(..) {
                spent.extend(run(runner, job));
                bytes += size;
            }
            state.bytes.fetch_sub(bytes, Ordering::AcqRel);
            give_back(state, &mut spent);
        }
        let closed = state.closed.load(Ordering::Acquire);
        let flush = asked > state.flushes_done.load(Ordering::Acquire);
        if flush && worked {
            // Jobs may have been queued between the flush and the swap: take them too.
            continue;
        }
        if flush || closed || deadline.is_some_and(|d| d <= Instant::now()) {
            deadline = crate::util::unwind::contain(|| runner.tick(flush || closed)).flatten();
        }
        if flush {
            state.flushes_done.store(asked, Ordering::Release);
            state.drained.notify_waiters();
            continue;
        }
        if worked {
            // A job may have started a buffer with a deadline.
            deadline = crate::util::unwind::contain(|| runner.tick(false)).flatten();
            continue;
        }
        if closed {
            return;
        }
        let until_deadline = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if !napped {
            // Work may still be coming: nap once rather than make producers wake us.
            napped = true;
            std::thread::park_timeout(until_deadline.map_or(NAP, |d| d.min(NAP)));
            state.wakeups.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        state.sleeping.store(true, Ordering::Relaxed);
        // Pairs with the producers' fence between queueing and looking at `sleeping`.
        fence(Ordering::SeqCst);
        let idle = state
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        let asked_now = state.flushes_asked.load(Ordering::Acquire);
        if idle
            && !state.closed.load(Ordering::Acquire)
            && asked_now <= state.flushes_done.load(Ordering::Acquire)
        {
            match until_deadline {
                Some(wait) => std::thread::park_timeout(wait),
                None => std::thread::park(),
            }
            state.wakeups.fetch_add(1, Ordering::Relaxed);
        }
        state.sleeping.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Capture, CaptureContext, Captured};
    use std::sync::atomic::AtomicU32;

    #[derive(Default)]
    struct Counting {
        ran: AtomicU32,
        discarded: Mutex<Vec<(Reason, Category, u32)>>,
        panic_on: Option<String>,
        caller: Option<std::thread::ThreadId>,
    }

    impl Runner for Counting {
        fn run(&self, job: Job) -> Option<Job> {
            if let Job::Capture(c) = &job {
                if let Captured::Message(m) = &c.what {
                    if Some(m) == self.panic_on.as_ref() {
                        panic!("a bug of ours");
                    }
                }
            }
            if let Some(caller) = self.caller {
                assert_ne!(std::thread::current().id(), caller);
            }
            self.ran.fetch_add(1, Ordering::Relaxed);
            Some(job)
        }
        fn discard(&self, reason: Reason, category: Category, quantity: u32) {
            self.discarded
                .lock()
                .unwrap()
                .push((reason, category, quantity));
        }
    }

    fn message(text: &str) -> Job {
        Job::Capture(Box::new(Capture {
            event_id: crate::event::new_event_id(),
            level: sentry_types::protocol::v7::Level::Error,
            timestamp: std::time::SystemTime::now(),
            what: Captured::Message(text.to_owned()),
            origin_tag: None,
            context: CaptureContext::default(),
        }))
    }

    #[tokio::test]
    async fn jobs_run_off_thread_and_drain_waits_for_them() {
        let runner = Arc::new(Counting {
            caller: Some(std::thread::current().id()),
            ..Default::default()
        });
        let worker = Worker::new(runner.clone(), usize::MAX);
        for _ in 0..1000 {
            worker.push(message("x"));
        }
        assert!(worker.drain(Duration::from_secs(5)).await);
        assert_eq!(runner.ran.load(Ordering::Relaxed), 1000);
        // Any timeout is accepted, however long.
        assert!(worker.drain(Duration::MAX).await);
    }

    #[tokio::test]
    async fn a_job_that_panics_is_counted_and_the_worker_goes_on() {
        let runner = Arc::new(Counting {
            panic_on: Some("boom".into()),
            ..Default::default()
        });
        let worker = Worker::new(runner.clone(), usize::MAX);
        worker.push(message("boom"));
        worker.push(message("fine"));
        assert!(worker.drain(Duration::from_secs(5)).await);
        assert_eq!(runner.ran.load(Ordering::Relaxed), 1);
        assert_eq!(
            *runner.discarded.lock().unwrap(),
            [(Reason::InternalSdkError, Category::Error, 1)]
        );
    }

    #[tokio::test]
    async fn the_queue_is_bounded_by_bytes_and_counts_what_it_drops() {
        let runner = Arc::new(Counting::default());
        let one = message("x").retained_bytes();
        // Room for three jobs, all taken by jobs in flight.
        let worker = Worker::new(runner.clone(), one * 3);
        let state = worker.state.clone();
        state.bytes.fetch_add(one * 3, Ordering::AcqRel);
        worker.push(message("over the bound"));
        assert_eq!(
            *runner.discarded.lock().unwrap(),
            [(Reason::QueueOverflow, Category::Error, 1)]
        );
        state.bytes.fetch_sub(one * 3, Ordering::AcqRel);
        worker.push(message("fits"));
        assert!(worker.drain(Duration::from_secs(5)).await);
        assert_eq!(runner.ran.load(Ordering::Relaxed), 1);
        assert_eq!(state.bytes.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn an_idle_worker_sleeps_until_there_is_work() {
        let runner = Arc::new(Counting::default());
        let worker = Worker::new(runner.clone(), usize::MAX);
        worker.push(message("wake up"));
        assert!(worker.drain(Duration::from_secs(5)).await);
        // After one nap without work it parks for good.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !worker.is_sleeping() && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert!(worker.is_sleeping());
        let before = worker.wakeups();
        // Absence can only be shown over time: a polling worker (the old one woke every
        // 2-50 ms) would wake at least four times in this window. A slow machine can only
        // lower the count; one wake-up is allowed for a spurious return from `park`.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let woke = worker.wakeups() - before;
        assert!(woke <= 1, "an idle worker woke up {woke} times");
        // And a producer wakes it.
        worker.push(message("more"));
        assert!(worker.drain(Duration::from_secs(5)).await);
        assert_eq!(runner.ran.load(Ordering::Relaxed), 2);
    }
}
