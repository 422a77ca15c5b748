//! One cell of `overhead.rs`, run a fixed number of times, for instruction counting under
//! callgrind: deterministic where wall-clock cells on a shared 2-core machine are not.
//!
//! ```text
//! python3 scripts/callgrind.py        # builds this, runs every cell twice, prints per-request counts
//! ```
//!
//! Run by hand: `instructions <cell> <path> <requests>` (`/users/7`, `/fail`, `/instrumented/7`,
//! `grpc` for a unary gRPC call (benches/grpc.rs's cells)
//! for the `tracing` handler, or `/queries/<n>` for a handler whose `n` sqlx statement events
//! an async driver reports in the request's task), with cell one of `bare`,
//! `lighttrace_0.0`, `lighttrace_1.0`, `sentry_tower_0.0`, `sentry_tower_1.0`, and
//! `lighttrace_0.0_latency_off` / `lighttrace_0.0_health` (per-route latency off; release
//! health on). Without
//! arguments (as `cargo bench` runs it) it does nothing.

use std::hint::black_box;
use std::time::Duration;

mod common;
use common::{lighttrace, lighttrace_with, routes, sentry_tower, serve, subscriber, Flavor};

fn main() {
    std::env::remove_var("RUST_BACKTRACE");
    std::panic::set_hook(Box::new(|_| {}));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cell, path, n) = match &args[..] {
        [cell, path, n] if !cell.starts_with('-') => {
            let path: &'static str = Box::leak(path.clone().into_boxed_str());
            (
                cell.clone(),
                path,
                n.parse::<u64>().expect("a request count"),
            )
        }
        _ => return,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if path == "grpc" {
        return rt.block_on(grpc_calls(&cell, n));
    }
    let (router, client, _guard, flavor) = match cell.as_str() {
        "bare" => (routes(Flavor::Plain), None, None, Flavor::Plain),
        "lighttrace_0.0" | "lighttrace_1.0" => {
            let (router, client) = lighttrace(if cell.ends_with("1.0") { 1.0 } else { 0.0 });
            (router, Some(client), None, Flavor::Lighttrace)
        }
        "lighttrace_0.0_latency_off" => {
            let (router, client) = lighttrace_with(0.0, |o| o.track_latency(false));
            (router, Some(client), None, Flavor::Lighttrace)
        }
        "lighttrace_0.0_health" => {
            let (router, client) = lighttrace_with(0.0, |o| o.release("bench@1"));
            (router, Some(client), None, Flavor::Lighttrace)
        }
        "sentry_tower_0.0" | "sentry_tower_1.0" => {
            let (router, guard) = sentry_tower(if cell.ends_with("1.0") { 1.0 } else { 0.0 });
            (router, None, Some(guard), Flavor::Sentry)
        }
        other => panic!("unknown cell {other}"),
    };
    // The instrumented handler (and the one whose queries sqlx reports) runs under each
    // flavor's `tracing` subscriber, as in overhead.rs.
    let _subscriber = (path.starts_with("/instrumented") || path.starts_with("/queries"))
        .then(|| tracing::dispatcher::set_default(&subscriber(flavor)));
    rt.block_on(async {
        for i in 0..n {
            black_box(serve(&router, path).await);
            if let (Some(client), true) = (&client, i % 2000 == 1999) {
                client.flush(Duration::from_secs(10)).await;
            }
        }
        if let Some(client) = &client {
            client.flush(Duration::from_secs(10)).await;
        }
    });
}

/// `n` unary gRPC calls through `cell`'s stack (benches/grpc.rs's cells).
async fn grpc_calls(cell: &str, n: u64) {
    let (stack, client, _guard) = match cell {
        "bare" => (common::grpc::bare(), None, None),
        "lighttrace_0.0" | "lighttrace_1.0" => {
            let (stack, client) =
                common::grpc::lighttrace(if cell.ends_with("1.0") { 1.0 } else { 0.0 });
            (stack, Some(client), None)
        }
        "sentry_tower_0.0" | "sentry_tower_1.0" => {
            let (stack, guard) =
                common::grpc::sentry_tower(if cell.ends_with("1.0") { 1.0 } else { 0.0 });
            (stack, None, Some(guard))
        }
        other => panic!("unknown cell {other}"),
    };
    for i in 0..n {
        black_box(common::grpc::place(&stack).await);
        if let (Some(client), true) = (&client, i % 2000 == 1999) {
            client.flush(Duration::from_secs(10)).await;
        }
    }
    if let Some(client) = &client {
        client.flush(Duration::from_secs(10)).await;
    }
}
