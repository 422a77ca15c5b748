//! The one thing a request costs when the client can send nothing: its duration, counted into
//! its route's latency.

use std::time::SystemTime;

use crate::client::Client;

/// A request being timed for latency alone.
pub(crate) struct Meter {
    client: Client,
    slot: u32,
    started: SystemTime,
}

impl Meter {
    pub(crate) fn new(client: Client, slot: u32, started: SystemTime) -> Self {
        Meter {
            client,
            slot,
            started,
        }
    }

    /// Counts the request as ended with `status`.
    pub(crate) fn end(self, status: u16) {
        self.client
            .request_ended(Some(self.slot), self.started, status, None);
    }
}
