//! Per-request metrics, counted from every request whatever its sampling: latency histograms
//! per route (with their report and Prometheus text) and release-health sessions. Plain data:
//! the layer counts into them and the client reads and sends them.

pub(crate) mod latency;
mod sessions;

pub(crate) use sessions::{Health, Sessions};
