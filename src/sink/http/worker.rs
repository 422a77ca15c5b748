//! The delivery loop: takes envelopes off the queue, packs them and POSTs them with bounded
//! concurrency, retries and rate limits, and sends client reports.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry_types::protocol::v7::client_report::Reason;
use tokio::sync::{mpsc, Semaphore};

use super::pack::{pack, Packed, Packer};
use super::{Msg, Transport};

/// Drops everything when the worker could not start.
pub(super) fn drain_as_failed(transport: &Transport, mut rx: mpsc::Receiver<Msg>) {
    while let Some(msg) = rx.blocking_recv() {
        if let Msg::Envelope(e) = msg {
            transport
                .outcomes
                .count_envelope(&e, Reason::InternalSdkError);
        }
    }
}

pub(super) async fn run(transport: Arc<Transport>, mut rx: mpsc::Receiver<Msg>) {
    let client = reqwest::Client::builder()
        .connect_timeout(transport.options.connect_timeout)
        .timeout(transport.options.request_timeout)
        .user_agent(format!("{}/{}", crate::SDK_NAME, crate::SDK_VERSION))
        .pool_idle_timeout(Duration::from_secs(60))
        .build();
    let Ok(client) = client else {
        while let Some(msg) = rx.recv().await {
            if let Msg::Envelope(e) = msg {
                transport
                    .outcomes
                    .count_envelope(&e, Reason::InternalSdkError);
            }
        }
        return;
    };
    let permits = Arc::new(Semaphore::new(transport.options.concurrency));
    let mut packer = Packer::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut reports = tokio::time::interval(transport.options.report_interval);
    reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    reports.tick().await;
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Envelope(envelope)) => {
                    // Limits may have started while it waited in the queue.
                    let Some(mut envelope) = transport.drop_rate_limited(*envelope) else { continue };
                    let Ok(permit) = permits.clone().acquire_owned().await else { break };
                    // Reap finished deliveries now: under a steady stream of envelopes the
                    // select below rarely gets to, and finished tasks would pile up.
                    while tasks.try_join_next().is_some() {}
                    // Pending drop counts ride along (taken only now that it is about to go).
                    let counts = transport.outcomes.take_report().map(|(report, counts)| {
                        envelope.add_item(report);
                        counts
                    });
                    let Some(packed) = pack(&transport, &mut packer, envelope, counts) else { continue };
                    let (transport, client) = (transport.clone(), client.clone());
                    tasks.spawn(async move {
                        deliver(&transport, &client, packed).await;
                        drop(permit);
                    });
                }
                Some(Msg::Flush(done)) => {
                    while tasks.join_next().await.is_some() {}
                    if let Some((envelope, counts)) = transport.standalone_report() {
                        if let Some(packed) = pack(&transport, &mut packer, envelope, Some(counts)) {
                            deliver(&transport, &client, packed).await;
                        }
                    }
                    let _ = done.send(());
                }
                None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = reports.tick() => {
                if let Some((envelope, counts)) = transport.standalone_report() {
                    if let Some(packed) = pack(&transport, &mut packer, envelope, Some(counts)) {
                        let (transport, client) = (transport.clone(), client.clone());
                        tasks.spawn(async move { deliver(&transport, &client, packed).await });
                    }
                }
            }
        }
    }
    // Every handle is gone: finish what is in flight (bounded by the request timeout).
    while tasks.join_next().await.is_some() {}
}

/// What became of one attempt.
enum Attempt {
    Delivered,
    /// Rate limited (429): counted as `ratelimit_backoff`, never as a send error.
    RateLimited,
    /// Rejected for good (4xx): counted as `send_error`.
    Rejected,
    /// Worth retrying (5xx or network error).
    Retry(Reason),
    /// Cannot be sent at all (the DSN's key is not a valid header value): counted as
    /// `internal_sdk_error`, never retried.
    Unsendable,
}

/// Sends one packed envelope, retrying as allowed, and counts it if it does not arrive.
async fn deliver(transport: &Transport, client: &reqwest::Client, packed: Packed) {
    let failed = |reason: Reason| {
        for (category, n) in &packed.items {
            transport.outcomes.count(reason, *category, *n);
        }
        if let Some(counts) = packed.report.clone() {
            transport.outcomes.restore(counts);
        }
    };
    let mut backoff = transport.options.retry_backoff;
    let mut attempt = 0;
    loop {
        let outcome = post(transport, client, packed.body.clone(), packed.gzipped).await;
        match outcome {
            Attempt::Delivered => {
                transport.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Attempt::RateLimited => {
                failed(Reason::RatelimitBackoff);
                return;
            }
            Attempt::Unsendable => {
                failed(Reason::InternalSdkError);
                return;
            }
            Attempt::Rejected => {
                // Counted, but the report it carried is not resent: the server refuses this
                // envelope for good, and resending could repeat forever.
                for (category, n) in &packed.items {
                    transport.outcomes.count(Reason::SendError, *category, *n);
                }
                return;
            }
            Attempt::Retry(reason) => {
                if attempt >= transport.options.max_retries {
                    failed(reason);
                    return;
                }
                attempt += 1;
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
    }
}

async fn post(
    transport: &Transport,
    client: &reqwest::Client,
    body: bytes::Bytes,
    gzipped: bool,
) -> Attempt {
    let Some(headers) = &transport.headers else {
        return Attempt::Unsendable;
    };
    let mut request = reqwest::Request::new(reqwest::Method::POST, transport.url.clone());
    *request.headers_mut() = headers.clone();
    if gzipped {
        request.headers_mut().insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static("gzip"),
        );
    }
    *request.body_mut() = Some(body.into());
    let response = match client.execute(request).await {
        Ok(r) => r,
        Err(_) => return Attempt::Retry(Reason::NetworkError),
    };
    let status = response.status();
    {
        let mut limits = transport.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits.update(response.headers(), status.as_u16(), Instant::now());
    }
    // Read (and discard) the body so the connection can be reused; a garbage body is harmless.
    let _ = response.bytes().await;
    match status.as_u16() {
        200..=299 => Attempt::Delivered,
        429 => Attempt::RateLimited,
        500..=599 => Attempt::Retry(Reason::SendError),
        _ => Attempt::Rejected,
    }
}
