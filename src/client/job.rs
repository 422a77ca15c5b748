//! What the request path hands to the client's worker: plain data, never a closure or a handle
//! on the scope it came from.

use sentry_types::protocol::v7::client_report::Category;
use sentry_types::protocol::v7::MonitorCheckIn;

#[cfg(feature = "tracing")]
use crate::event::LogRecord;
use crate::event::{Capture, Finished};

/// A unit of work: plain data, never a closure or a handle on the scope it came from.
// A finished request is boxed where the scope closes: a pointer moves through the queue, the
// worker and back to the producer that frees it, instead of ~300 bytes copied at each step.
#[derive(Debug)]
pub(crate) enum Job {
    /// A request that finished with an error event or a transaction to send.
    Request(Box<Finished>),
    /// A message, an error or a panic to report.
    Capture(Box<Capture>),
    /// A cron monitor's check-in: never sampled, never passed to a hook.
    CheckIn(Box<MonitorCheckIn>),
    /// A structured log line, for the next batch.
    #[cfg(feature = "tracing")]
    Log(Box<LogRecord>),
}

impl Job {
    /// An estimate of the heap bytes the job keeps alive while it waits.
    pub(crate) fn retained_bytes(&self) -> usize {
        match self {
            Job::Request(f) => f.retained_bytes(),
            Job::Capture(c) => c.retained_bytes(),
            Job::CheckIn(_) => std::mem::size_of::<MonitorCheckIn>() + 256,
            #[cfg(feature = "tracing")]
            Job::Log(l) => l.retained_bytes(),
        }
    }

    /// What the job would send, as client reports count it: `(reason-independent category,
    /// quantity)`, plus spans already dropped over the cap (counted as `buffer_overflow`).
    pub(crate) fn items(&self) -> (JobItems, u32) {
        let mut items = JobItems::default();
        match self {
            Job::Request(f) => {
                if f.failure.is_some() {
                    items.push(Category::Error, 1);
                }
                let (spans, dropped) = f
                    .data
                    .as_ref()
                    .map_or((0, 0), |d| (d.spans.len(), d.spans_dropped));
                if f.traced() {
                    items.push(Category::Transaction, 1);
                    let spans = u32::try_from(spans + 1).unwrap_or(u32::MAX);
                    items.push(Category::Span, spans);
                }
                return (items, if f.traced() { dropped } else { 0 });
            }
            Job::Capture(_) => items.push(Category::Error, 1),
            Job::CheckIn(_) => items.push(Category::Monitor, 1),
            #[cfg(feature = "tracing")]
            Job::Log(_) => items.push(Category::LogItem, 1),
        }
        (items, 0)
    }
}

/// What a job carries (at most three categories), kept inline: it is worked out for every job
/// that runs, in case the run fails and must be counted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobItems {
    list: [(Category, u32); 3],
    len: usize,
}

impl Default for JobItems {
    fn default() -> Self {
        JobItems {
            // Fillers past `len`, never read.
            list: [(Category::Error, 0); 3],
            len: 0,
        }
    }
}

impl JobItems {
    fn push(&mut self, category: Category, quantity: u32) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = (category, quantity);
            self.len += 1;
        }
    }
}

impl IntoIterator for JobItems {
    type Item = (Category, u32);
    type IntoIter = std::iter::Take<std::array::IntoIter<(Category, u32), 3>>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter().take(self.len)
    }
}
