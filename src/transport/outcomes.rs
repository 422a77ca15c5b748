//! Exact accounting: what was dropped, by reason and category, until a client report carries it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::Envelope;

pub(super) use crate::wire::item_categories;

/// Why something was left out: a drop (`sentry-types`' reasons), or the trace rate lowered
/// under backpressure, a reason of Sentry's client reports that `sentry-types` does not name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Why {
    Dropped(Reason),
    Backpressure,
}

/// Counts by reason and category, as taken for a client report.
pub(super) type ReportCounts = Vec<((Why, Category), u64)>;

/// Every drop, counted twice: once until a client report carries it to the server, and once for
/// good (for [`HttpSink::dropped`](crate::HttpSink::dropped)).
#[derive(Default)]
pub(super) struct Outcomes {
    /// Drops not yet reported to the server.
    pending: Mutex<HashMap<(Why, Category), u64>>,
    /// Every drop since the sink was created.
    total: Mutex<HashMap<(Why, Category), u64>>,
}

impl Outcomes {
    pub(super) fn count(&self, reason: Reason, category: Category, quantity: u64) {
        self.count_why(Why::Dropped(reason), category, quantity);
    }

    /// Counts what the client left out under backpressure.
    pub(super) fn count_backpressure(&self, category: Category, quantity: u64) {
        self.count_why(Why::Backpressure, category, quantity);
    }

    fn count_why(&self, reason: Why, category: Category, quantity: u64) {
        if quantity == 0 {
            return;
        }
        {
            let mut total = self.total.lock().unwrap_or_else(|e| e.into_inner());
            *total.entry((reason, category)).or_insert(0) += quantity;
        }
        self.pend(reason, category, quantity);
    }

    fn pend(&self, reason: Why, category: Category, quantity: u64) {
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

    /// Takes the pending counts as a client report item (its header line and payload, in the
    /// envelope format), keeping the counts so they can be put back if the envelope carrying
    /// the report does not arrive.
    pub(super) fn take_report(&self) -> Option<(Vec<u8>, ReportCounts)> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_empty() {
            return None;
        }
        let counts: ReportCounts = pending.drain().collect();
        drop(pending);
        Some((report_item(&counts, SystemTime::now()), counts))
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

    /// The drops not reported yet (what backpressure left out is no drop of the sink's).
    pub(super) fn pending(&self) -> Vec<(Reason, Category, u64)> {
        drops_of(&self.pending)
    }

    /// Every drop so far.
    pub(super) fn total(&self) -> Vec<(Reason, Category, u64)> {
        drops_of(&self.total)
    }
}

fn drops_of(map: &Mutex<HashMap<(Why, Category), u64>>) -> Vec<(Reason, Category, u64)> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.iter()
        .filter_map(|((why, c), n)| match why {
            Why::Dropped(r) => Some((*r, *c, *n)),
            Why::Backpressure => None,
        })
        .collect()
}

/// A `client_report` item (developer documentation, "Client Reports"): the item header line and
/// its payload, `{"timestamp": …, "discarded_events": [{"reason", "category", "quantity"}]}`,
/// written here because `sentry-types` has no name for the `backpressure` reason.
fn report_item(counts: &ReportCounts, now: SystemTime) -> Vec<u8> {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let events: Vec<serde_json::Value> = counts
        .iter()
        .map(|((why, category), quantity)| {
            let reason = match why {
                Why::Dropped(reason) => serde_json::to_value(reason).unwrap_or_default(),
                Why::Backpressure => "backpressure".into(),
            };
            serde_json::json!({
                "reason": reason,
                "category": serde_json::to_value(category).unwrap_or_default(),
                "quantity": quantity,
            })
        })
        .collect();
    let payload = serde_json::json!({"timestamp": secs, "discarded_events": events}).to_string();
    let mut out = Vec::with_capacity(payload.len() + 48);
    out.extend_from_slice(b"{\"type\":\"client_report\",\"length\":");
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.extend_from_slice(b"}\n");
    out.extend_from_slice(payload.as_bytes());
    out.push(b'\n');
    out
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
        assert_eq!(
            counts,
            [((Why::Dropped(Reason::QueueOverflow), Category::Error), 3)]
        );
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

    #[test]
    fn a_report_names_every_reason_backpressure_included() {
        let outcomes = Outcomes::default();
        outcomes.count(Reason::RatelimitBackoff, Category::Transaction, 2);
        outcomes.count_backpressure(Category::Span, 5);
        let (item, _) = outcomes.take_report().unwrap();
        let text = String::from_utf8(item).unwrap();
        let (header, payload) = text.trim_end().split_once('\n').unwrap();
        let header: serde_json::Value = serde_json::from_str(header).unwrap();
        assert_eq!(header["type"], "client_report");
        assert_eq!(header["length"], payload.len());
        let payload: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert!(payload["timestamp"].as_f64().unwrap() > 1.6e9);
        let mut events: Vec<String> = payload["discarded_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} {} {}", e["reason"], e["category"], e["quantity"]))
            .collect();
        events.sort();
        assert_eq!(
            events,
            [
                "\"backpressure\" \"span\" 5",
                "\"ratelimit_backoff\" \"transaction\" 2"
            ]
        );
        // Backpressure is reported, not listed among the sink's drops.
        assert_eq!(
            outcomes.total(),
            [(Reason::RatelimitBackoff, Category::Transaction, 2)]
        );
    }
}
