//! Exact accounting: what was dropped, by reason and category, until a client report carries it.

use std::collections::HashMap;
use std::sync::Mutex;

use sentry_types::protocol::v7::client_report::{Category, Item as ReportItem, Reason};
use sentry_types::protocol::v7::{ClientReport, Envelope, EnvelopeItem, ItemContainer, Log};

/// Drop counts by reason and category, as taken for a client report.
pub(super) type ReportCounts = Vec<((Reason, Category), u64)>;

/// Every drop, counted twice: once until a client report carries it to the server, and once for
/// good (for [`HttpSink::dropped`](crate::HttpSink::dropped)).
#[derive(Default)]
pub(super) struct Outcomes {
    /// Drops not yet reported to the server.
    pending: Mutex<HashMap<(Reason, Category), u64>>,
    /// Every drop since the sink was created.
    total: Mutex<HashMap<(Reason, Category), u64>>,
}

impl Outcomes {
    pub(super) fn count(&self, reason: Reason, category: Category, quantity: u64) {
        if quantity == 0 {
            return;
        }
        {
            let mut total = self.total.lock().unwrap_or_else(|e| e.into_inner());
            *total.entry((reason, category)).or_insert(0) += quantity;
        }
        self.pend(reason, category, quantity);
    }

    fn pend(&self, reason: Reason, category: Category, quantity: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending.entry((reason, category)).or_insert(0) += quantity;
    }

    /// ReportCounts every item of an envelope as dropped (client reports themselves are not counted).
    pub(super) fn count_envelope(&self, envelope: &Envelope, reason: Reason) {
        for item in envelope.items() {
            for (category, quantity) in item_categories(item) {
                self.count(reason, category, quantity);
            }
        }
    }

    /// Takes the pending counts as a client report, keeping the counts so they can be put back
    /// if the envelope carrying the report does not arrive.
    pub(super) fn take_report(&self) -> Option<(ClientReport, ReportCounts)> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_empty() {
            return None;
        }
        let counts: ReportCounts = pending.drain().collect();
        let items: Vec<ReportItem> = counts
            .iter()
            .map(|((reason, category), n)| ReportItem::new(*category, *reason, *n))
            .collect();
        Some((ClientReport::new(items), counts))
    }

    /// Puts back counts whose report did not arrive.
    pub(super) fn restore(&self, counts: ReportCounts) {
        for ((reason, category), n) in counts {
            self.pend(reason, category, n);
        }
    }

    /// Whether there are counts not yet reported.
    pub(super) fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    pub(super) fn pending(&self) -> Vec<(Reason, Category, u64)> {
        counts_of(&self.pending)
    }

    pub(super) fn total(&self) -> Vec<(Reason, Category, u64)> {
        counts_of(&self.total)
    }
}

fn counts_of(map: &Mutex<HashMap<(Reason, Category), u64>>) -> Vec<(Reason, Category, u64)> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.iter().map(|((r, c), n)| (*r, *c, *n)).collect()
}

/// The rate-limit categories of an item, with quantities; the first is the item's own.
pub(super) fn item_categories(item: &EnvelopeItem) -> Vec<(Category, u64)> {
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
        EnvelopeItem::ItemContainer(ItemContainer::Logs(logs)) => vec![
            (Category::LogItem, logs.len() as u64),
            (Category::LogByte, logs.iter().map(log_bytes).sum()),
        ],
        _ => Vec::new(),
    }
}

/// A log's approximate size, as client reports count `log_byte`: its body and attributes.
fn log_bytes(log: &Log) -> u64 {
    let attributes: usize = log
        .attributes
        .iter()
        .map(|(k, v)| k.len() + v.0.to_string().len())
        .sum();
    (log.body.len() + attributes) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_takes_the_pending_counts_and_a_lost_one_puts_them_back() {
        let outcomes = Outcomes::default();
        outcomes.count(Reason::QueueOverflow, Category::Error, 2);
        outcomes.count(Reason::QueueOverflow, Category::Error, 1);
        outcomes.count(Reason::SampleRate, Category::Transaction, 0);
        let (_, counts) = outcomes.take_report().unwrap();
        assert_eq!(counts, [((Reason::QueueOverflow, Category::Error), 3)]);
        assert!(outcomes.take_report().is_none());
        outcomes.restore(counts);
        assert_eq!(
            outcomes.pending(),
            [(Reason::QueueOverflow, Category::Error, 3)]
        );
        assert_eq!(
            outcomes.total(),
            [(Reason::QueueOverflow, Category::Error, 3)]
        );
    }
}
