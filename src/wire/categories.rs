//! What an envelope item counts as, for rate limits and client reports: its categories and
//! quantities.

use sentry_types::protocol::v7::client_report::Category;
use sentry_types::protocol::v7::{EnvelopeItem, ItemContainer, Log};

/// The rate-limit categories of an item, with quantities; the first is the item's own.
pub(crate) fn item_categories(item: &EnvelopeItem) -> Vec<(Category, u64)> {
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
