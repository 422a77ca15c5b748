//! An envelope the client wrote to bytes itself, with what it carries.

use sentry_types::protocol::v7::client_report::Category;
use sentry_types::protocol::v7::{Envelope, EnvelopeError};

/// An envelope already in Sentry's wire format, written by the client without building
/// protocol structs first, and the items it carries (so a sink can count it if it drops it).
///
/// Transactions take this form when no `before_send_transaction` hook needs the struct and the
/// sink [takes serialised envelopes](crate::Sink::takes_serialized): the HTTP, file and memory
/// sinks do. A sink that does not is handed the same envelope parsed back.
///
/// ```
/// use lighttrace::protocol::client_report::Category;
/// use lighttrace::sink::SerializedEnvelope;
///
/// let bytes = b"{}\n{\"type\":\"transaction\",\"length\":12}\n{\"spans\":[]}\n".to_vec();
/// let items = vec![(Category::Transaction, 1), (Category::Span, 1)];
/// let envelope = SerializedEnvelope::new(bytes.clone(), items.clone());
/// assert_eq!(envelope.as_bytes(), &bytes[..]);
/// assert_eq!(envelope.items(), &items[..]);
/// assert_eq!(envelope.to_envelope().unwrap().items().count(), 1);
/// assert_eq!(envelope.into_bytes(), bytes);
/// ```
#[derive(Clone, Debug)]
pub struct SerializedEnvelope {
    bytes: Vec<u8>,
    items: CarriedItems,
}

/// The items' categories: a transaction's two inline (written for every traced request).
#[derive(Clone, Debug)]
enum CarriedItems {
    Transaction([(Category, u32); 2]),
    Listed(Vec<(Category, u32)>),
}

impl SerializedEnvelope {
    /// Bytes in the envelope format, and what they carry: a category and quantity per item,
    /// the envelope's own category first (a transaction is `Transaction` 1 then `Span` with
    /// its span count, the root span included).
    pub fn new(bytes: Vec<u8>, items: Vec<(Category, u32)>) -> Self {
        SerializedEnvelope {
            bytes,
            items: CarriedItems::Listed(items),
        }
    }

    /// A transaction's envelope with `spans` spans (the root one included).
    pub(crate) fn transaction(bytes: Vec<u8>, spans: u32) -> Self {
        SerializedEnvelope {
            bytes,
            items: CarriedItems::Transaction([(Category::Transaction, 1), (Category::Span, spans)]),
        }
    }

    /// The envelope in Sentry's wire format.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, for a sink that writes them.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// What the envelope carries, by category and quantity, its own category first.
    pub fn items(&self) -> &[(Category, u32)] {
        match &self.items {
            CarriedItems::Transaction(items) => items,
            CarriedItems::Listed(items) => items,
        }
    }

    /// The category rate limits are checked against.
    #[cfg(feature = "http-sink")]
    pub(crate) fn category(&self) -> Option<Category> {
        self.items().first().map(|(c, _)| *c)
    }

    /// The envelope parsed back into protocol types.
    pub fn to_envelope(&self) -> Result<Envelope, EnvelopeError> {
        Envelope::from_slice(&self.bytes)
    }
}
