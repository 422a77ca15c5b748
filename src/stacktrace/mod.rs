//! Stack traces: a panic's frames (from the `backtrace` crate) or an `anyhow` error's (from
//! std's `Backtrace`) turned into Sentry frames, the application's own marked `in_app`, and the
//! images loaded in the process (`debug_meta`) a server symbolicates their addresses with.
//!
//! A leaf beside `event`: it knows the protocol's frames and nothing of requests.

mod frames;
mod images;
mod in_app;
#[cfg(feature = "anyhow")]
mod std_backtrace;

pub(crate) use frames::stacktrace_of;
pub(crate) use images::attach as attach_images;
pub(crate) use in_app::InApp;
#[cfg(feature = "anyhow")]
pub(crate) use std_backtrace::stacktrace_from_std;
