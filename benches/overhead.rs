//! Per-request overhead of lighttrace against the official `sentry` + `sentry-tower` 0.49 and
//! tower-http's `CatchPanicLayer`, in one binary, on the same axum router.
//!
//! ```text
//! cargo bench --bench overhead
//! ```
//!
//! Cells: bare, catch-panic only, sentry-tower at traces rate 0.0 and 1.0, lighttrace at 0.0
//! and 1.0; each for a successful `GET /users/{id}`, a 500 (with its error event), and a panic;
//! and a handler instrumented with `tracing` (the `tracing` groups), each SDK with its
//! `tracing` layer (`sentry-tracing` for sentry); and the `recording` group, what per-route
//! latency and release health add to an untraced request.
//! Both SDKs report to a sink that discards, so only the in-process cost is measured. Every
//! request carries 5 ordinary headers. `RUST_BACKTRACE` is unset (it makes std's own panic
//! output slow, for every cell alike) and panic output is silenced.

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use criterion::{criterion_group, Criterion};
use tower_http::catch_panic::CatchPanicLayer;

mod common;
use common::{
    lighttrace, lighttrace_with, routes, sentry_tower, serve, subscriber, Flavor, DROPPED, SENT,
};

/// CPU time of every thread of this process so far, so work moved to other threads is counted
/// too.
#[cfg(unix)]
fn process_cpu() -> Duration {
    // The process's CPU clock: every thread, the calling one up to the nanosecond. (Summing the
    // threads' `schedstat` lagged by up to a scheduler tick, which criterion's first, shortest
    // samples read as zero or double.)
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Elsewhere the CPU cells read zero (the latency cells still measure).
#[cfg(not(unix))]
fn process_cpu() -> Duration {
    Duration::ZERO
}

/// What a cell measures.
#[derive(Clone, Copy)]
enum Measure {
    /// Wall time of the requests on the calling task. lighttrace's off-task worker is drained
    /// between batches, outside the timed part, so no cell runs with a full queue.
    Latency,
    /// CPU time of every thread of the process, the worker's draining included, so work moved
    /// off the request task is counted.
    Cpu,
}

/// Runs requests in batches of 2,000, flushing lighttrace's client between batches.
#[allow(clippy::too_many_arguments)] // one bench cell: what to run, how to measure it, where to report
fn run_cells(
    c: &mut Criterion,
    measure: Measure,
    group: &str,
    cell: &str,
    router: &Router,
    path: &'static str,
    client: Option<&lighttrace::Client>,
    dispatch: Option<&tracing::Dispatch>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group(group);
    g.bench_function(cell, |b| {
        b.iter_custom(|iters| {
            let _subscriber = dispatch.map(tracing::dispatcher::set_default);
            rt.block_on(async {
                let cpu_start = process_cpu();
                let mut elapsed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(2000);
                    let start = Instant::now();
                    for _ in 0..n {
                        black_box(serve(router, path).await);
                    }
                    elapsed += start.elapsed();
                    done += n;
                    if let Some(client) = client {
                        client.flush(Duration::from_secs(10)).await;
                    }
                }
                match measure {
                    Measure::Latency => elapsed,
                    Measure::Cpu => process_cpu().saturating_sub(cpu_start),
                }
            })
        })
    });
    g.finish();
}

/// The sentry-tower and lighttrace cells at traces rates 0.0 and 1.0 (with each SDK's
/// `tracing` layer when `traced`).
fn sdk_cells(c: &mut Criterion, measure: Measure, group: &str, path: &'static str, traced: bool) {
    let sentry_dispatch = traced.then(|| subscriber(Flavor::Sentry));
    let lighttrace_dispatch = traced.then(|| subscriber(Flavor::Lighttrace));
    for rate in [0.0, 1.0] {
        let (router, guard) = sentry_tower(rate);
        let cell = format!("sentry_tower_{rate:.1}");
        run_cells(
            c,
            measure,
            group,
            &cell,
            &router,
            path,
            None,
            sentry_dispatch.as_ref(),
        );
        drop(guard);
        // Leave no sentry client bound for the other cells.
        sentry::Hub::main().bind_client(None);
        SENT.store(0, Ordering::Relaxed);
        DROPPED.store(0, Ordering::Relaxed);
        let cell = format!("lighttrace_{rate:.1}");
        let (router, client) = lighttrace(rate);
        run_cells(
            c,
            measure,
            group,
            &cell,
            &router,
            path,
            Some(&client),
            lighttrace_dispatch.as_ref(),
        );
        eprintln!(
            "{group}/{cell}: {} envelopes built, {} dropped because the queue was full",
            SENT.load(Ordering::Relaxed),
            DROPPED.load(Ordering::Relaxed)
        );
    }
}

/// Request latency: bare, catch-panic only, then both SDKs.
fn cells(c: &mut Criterion) {
    for (path, group) in [("/users/7", "ok"), ("/fail", "500"), ("/panic", "panic")] {
        let latency = Measure::Latency;
        if path != "/panic" {
            run_cells(
                c,
                latency,
                group,
                "bare",
                &routes(Flavor::Plain),
                path,
                None,
                None,
            );
        }
        let catch_panic = routes(Flavor::Plain).layer(CatchPanicLayer::new());
        run_cells(
            c,
            latency,
            group,
            "catch_panic",
            &catch_panic,
            path,
            None,
            None,
        );
        sdk_cells(c, latency, group, path, false);
    }
}

/// A handler instrumented with `tracing` (3 nested spans, 5 `info!`, 1 `warn!`), each SDK with
/// its `tracing` layer, against the same handler under a bare `tracing` registry: request
/// latency and all-thread CPU.
fn tracing_cells(c: &mut Criterion) {
    let path = "/instrumented/7";
    for (measure, group) in [(Measure::Latency, "tracing"), (Measure::Cpu, "cpu_tracing")] {
        let bare = subscriber(Flavor::Plain);
        run_cells(
            c,
            measure,
            group,
            "bare",
            &routes(Flavor::Plain),
            path,
            None,
            Some(&bare),
        );
        sdk_cells(c, measure, group, path, true);
    }
}

/// CPU per request, all threads counted, for the successful and failing requests.
fn cpu_cells(c: &mut Criterion) {
    for (path, group) in [("/users/7", "cpu_ok"), ("/fail", "cpu_500")] {
        run_cells(
            c,
            Measure::Cpu,
            group,
            "bare",
            &routes(Flavor::Plain),
            path,
            None,
            None,
        );
        sdk_cells(c, Measure::Cpu, group, path, false);
    }
}

/// What counting every request costs (untraced `GET /users/7`, request latency): per-route
/// latency off, on (the default), and on with release health (a release set).
fn recording_cells(c: &mut Criterion) {
    let path = "/users/7";
    type Change = fn(lighttrace::Options) -> lighttrace::Options;
    let cells: [(&str, Change); 3] = [
        ("latency_off", |o| o.track_latency(false)),
        ("latency_on", |o| o),
        ("latency_and_health", |o| o.release("bench@1")),
    ];
    for (cell, change) in cells {
        let (router, client) = lighttrace_with(0.0, change);
        run_cells(
            c,
            Measure::Latency,
            "recording",
            cell,
            &router,
            path,
            Some(&client),
            None,
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = cells, cpu_cells, tracing_cells, recording_cells
}

fn main() {
    // Same conditions for every cell: no backtrace printing by std, no panic output.
    std::env::remove_var("RUST_BACKTRACE");
    std::panic::set_hook(Box::new(|_| {}));
    benches();
    Criterion::default().configure_from_args().final_summary();
}
