//! The collector side of `scripts/load.py`: accepts envelopes on 127.0.0.1, counts events,
//! transactions and what client reports say was discarded (by reason and category), and
//! answers `GET /stats`. With `HANG=1` it never answers an envelope. With
//! `SAMPLE=path` it writes the first transaction envelope it receives there (as sent, before
//! any gzip), for the script to replay with a plain HTTP client: the wire's own cost.
//!
//! ```text
//! PORT=18081 HANG=0 cargo run --release --example collector
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};

// Shared with the tests' collector, which also reads each item's header line.
#[allow(dead_code)]
mod envelope_items;

#[derive(Default)]
struct Counts {
    envelopes: AtomicU64,
    events: AtomicU64,
    transactions: AtomicU64,
    invalid: AtomicU64,
    /// Client reports' quantities by `reason:category`.
    discarded: Mutex<BTreeMap<String, u64>>,
}

async fn ingest(
    State((counts, hang)): State<(Arc<Counts>, bool)>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let raw = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_err()
        {
            counts.invalid.fetch_add(1, Ordering::Relaxed);
            return "{}";
        }
        out
    } else {
        body.to_vec()
    };
    match envelope_items::items(&raw) {
        Some((_, items)) => {
            counts.envelopes.fetch_add(1, Ordering::Relaxed);
            for envelope_items::Item { ty, payload, .. } in items {
                match ty.as_str() {
                    "event" => {
                        counts.events.fetch_add(1, Ordering::Relaxed);
                    }
                    "transaction" => {
                        static SAMPLED: std::sync::Once = std::sync::Once::new();
                        SAMPLED.call_once(|| {
                            if let Ok(path) = std::env::var("SAMPLE") {
                                let _ = std::fs::write(path, &raw);
                            }
                        });
                        counts.transactions.fetch_add(1, Ordering::Relaxed);
                    }
                    "client_report" => {
                        let report: serde_json::Value =
                            serde_json::from_slice(payload).unwrap_or_default();
                        let mut discarded = counts.discarded.lock().unwrap();
                        for d in report["discarded_events"].as_array().into_iter().flatten() {
                            let key = format!(
                                "{}:{}",
                                d["reason"].as_str().unwrap_or("?"),
                                d["category"].as_str().unwrap_or("?")
                            );
                            *discarded.entry(key).or_default() +=
                                d["quantity"].as_u64().unwrap_or(0);
                        }
                    }
                    _ => {}
                }
            }
        }
        None => {
            counts.invalid.fetch_add(1, Ordering::Relaxed);
        }
    }
    "{}"
}

async fn stats(State((counts, _)): State<(Arc<Counts>, bool)>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "envelopes": counts.envelopes.load(Ordering::Relaxed),
        "events": counts.events.load(Ordering::Relaxed),
        "transactions": counts.transactions.load(Ordering::Relaxed),
        "invalid": counts.invalid.load(Ordering::Relaxed),
        "discarded": counts.discarded.lock().unwrap().clone(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")?.parse()?;
    let hang = std::env::var("HANG").is_ok_and(|v| v == "1");
    let state = (Arc::new(Counts::default()), hang);
    let app = Router::new()
        .route("/api/{project}/envelope/", post(ingest))
        .route("/api/{project}/store/", post(ingest))
        .route("/stats", get(stats))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("collector on {} (hang: {hang})", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
