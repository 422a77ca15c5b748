//! A unary gRPC call (`shop.Orders/Place`, tonic client and server in memory) with no layer,
//! behind lighttrace's layer and behind sentry-tower's layers, in one binary, same run.
//!
//! ```text
//! cargo bench --bench grpc
//! python3 scripts/callgrind.py --path grpc     # the same cells in instructions
//! ```
//!
//! Both SDKs report to a sink that discards. What the cells do not show: sentry-tower names
//! every call `POST /shop.Orders/Place` with op `http.server` and marks it `ok` whatever its
//! gRPC status (it reads the HTTP status, always 200), so its failures are no events.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};

mod common;
use common::grpc::{self, GrpcStack};

/// Calls in batches of 2,000, draining lighttrace's client between batches (outside the timed
/// part, so no cell runs with a full queue).
fn run(c: &mut Criterion, cell: &str, stack: &GrpcStack, client: Option<&lighttrace::Client>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    c.benchmark_group("grpc").bench_function(cell, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut elapsed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(2000);
                    let start = Instant::now();
                    for _ in 0..n {
                        black_box(grpc::place(stack).await);
                    }
                    elapsed += start.elapsed();
                    done += n;
                    if let Some(client) = client {
                        client.flush(Duration::from_secs(10)).await;
                    }
                }
                elapsed
            })
        })
    });
}

fn cells(c: &mut Criterion) {
    run(c, "bare", &grpc::bare(), None);
    for rate in [0.0, 1.0] {
        let (stack, guard) = grpc::sentry_tower(rate);
        run(c, &format!("sentry_tower_{rate:.1}"), &stack, None);
        drop(guard);
        sentry::Hub::main().bind_client(None);
        let (stack, client) = grpc::lighttrace(rate);
        run(c, &format!("lighttrace_{rate:.1}"), &stack, Some(&client));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = cells
}

fn main() {
    std::env::remove_var("RUST_BACKTRACE");
    benches();
    Criterion::default().configure_from_args().final_summary();
}
