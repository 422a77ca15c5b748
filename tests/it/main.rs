//! The integration tests, as one binary (each test binary links the whole dependency tree).
//! Tests that change process-wide state (the panic hook, the global client, a global `tracing`
//! subscriber, environment variables) have binaries of their own beside this one.

mod common;
#[path = "../../examples/shop/mod.rs"]
mod shop;

mod architecture;
mod diesel;
mod errors;
mod grpc;
mod health;
mod http_sink;
mod layer;
mod migrating;
mod options;
mod outgoing;
mod pipeline;
mod readme;
mod sampling;
mod secrets;
mod sinks_and_tower;
mod spotlight;
mod stacktrace;
mod streaming;
mod traces;
mod transport_faults;
