//! Spotlight, Sentry's UI for local development: every envelope also goes to its sidecar,
//! beside the server the DSN names (or without one). Delivery to the sidecar never blocks and
//! never fails anything: without a sidecar listening, its copies are dropped.

use std::time::Duration;

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::Envelope;

use super::{FlushFuture, HttpSink, SerializedEnvelope, Sink};

/// The longest a flush or close waits for the sidecar beyond the main sink.
const SIDECAR_WAIT: Duration = Duration::from_secs(1);

/// Sends to the main sink (if any) and a copy to the Spotlight sidecar.
pub(crate) struct WithSpotlight {
    main: Option<std::sync::Arc<dyn Sink>>,
    spotlight: HttpSink,
}

/// `sink` with a copy of everything going to the Spotlight sidecar at `url`, when there is one.
pub(crate) fn with_spotlight(
    sink: Option<std::sync::Arc<dyn Sink>>,
    url: Option<&http::Uri>,
) -> Option<std::sync::Arc<dyn Sink>> {
    match url.and_then(HttpSink::spotlight) {
        Some(spotlight) => Some(std::sync::Arc::new(WithSpotlight::new(sink, spotlight))),
        None => sink,
    }
}

impl WithSpotlight {
    pub(crate) fn new(main: Option<std::sync::Arc<dyn Sink>>, spotlight: HttpSink) -> Self {
        WithSpotlight { main, spotlight }
    }
}

impl Sink for WithSpotlight {
    fn send(&self, envelope: Envelope) {
        match &self.main {
            Some(main) => {
                self.spotlight.send(envelope.clone());
                main.send(envelope);
            }
            None => self.spotlight.send(envelope),
        }
    }

    fn flush(&self, timeout: Duration) -> FlushFuture<'_> {
        Box::pin(async move {
            let (main, _) = tokio::join!(
                async {
                    match &self.main {
                        Some(main) => main.flush(timeout).await,
                        None => true,
                    }
                },
                // The sidecar's delivery does not decide the flush (it may not be running), and
                // holds it up for a second at most.
                tokio::time::timeout(SIDECAR_WAIT.min(timeout), self.spotlight.flush(timeout))
            );
            main
        })
    }

    fn close(&self, timeout: Duration) -> FlushFuture<'_> {
        Box::pin(async move {
            let (main, _) = tokio::join!(
                async {
                    match &self.main {
                        Some(main) => main.close(timeout).await,
                        None => true,
                    }
                },
                tokio::time::timeout(SIDECAR_WAIT.min(timeout), self.spotlight.close(timeout))
            );
            main
        })
    }

    /// Drops before the sink are the main server's business (client reports go there only).
    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        if let Some(main) = &self.main {
            main.record_discard(reason, category, quantity);
        }
    }

    fn record_backpressure(&self, category: Category, quantity: u32) {
        if let Some(main) = &self.main {
            main.record_backpressure(category, quantity);
        }
    }

    /// The main sink's limits decide what is built; with Spotlight alone, nothing is dropped
    /// ahead (a full sidecar queue drops copies, never the app's work).
    fn would_drop(&self, category: Category) -> Option<Reason> {
        self.main
            .as_ref()
            .and_then(|main| main.would_drop(category))
    }

    /// The sidecar's sink takes them: so does the tee, when the main sink does too.
    fn takes_serialized(&self) -> bool {
        self.main
            .as_ref()
            .is_none_or(|main| main.takes_serialized())
    }

    fn send_serialized(&self, envelope: SerializedEnvelope) {
        match &self.main {
            Some(main) => {
                self.spotlight.send_serialized(envelope.clone());
                main.send_serialized(envelope);
            }
            None => self.spotlight.send_serialized(envelope),
        }
    }
}
