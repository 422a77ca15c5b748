//! Trace and span ids in hex without `Display`, which allocates a `String` per id.
//!
//! `sentry-types` keeps an id's bytes private; its derived `Hash` hands them to the hasher in
//! one `write` call, and a hasher that keeps them reads them back without `unsafe`. Should
//! that ever hand over anything else, the bytes are not trusted and `Display` is used.

use std::hash::{Hash, Hasher};

use sentry_types::protocol::v7::{SpanId, TraceId};

/// Collects what `Hash` writes: the id's bytes, if they come in one piece of `N`.
struct Grab<const N: usize> {
    bytes: [u8; N],
    writes: usize,
    ok: bool,
}

impl<const N: usize> Hasher for Grab<N> {
    fn write(&mut self, bytes: &[u8]) {
        self.writes += 1;
        self.ok = bytes.len() == N;
        if self.ok {
            self.bytes.copy_from_slice(bytes);
        }
    }

    // The array's length prefix.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        0
    }
}

fn bytes_of<const N: usize>(id: &impl Hash) -> Option<[u8; N]> {
    let mut grab = Grab {
        bytes: [0; N],
        writes: 0,
        ok: false,
    };
    id.hash(&mut grab);
    (grab.ok && grab.writes == 1).then_some(grab.bytes)
}

/// Lower-case hex of `bytes` into `out` (twice as long).
fn encode(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
}

/// A trace id as its 32 hex digits.
pub(super) fn trace_id(id: TraceId) -> [u8; 32] {
    let mut out = [0u8; 32];
    match bytes_of::<16>(&id) {
        Some(bytes) => encode(&bytes, &mut out),
        None => copy_display(&id, &mut out),
    }
    out
}

/// A span id as its 16 hex digits.
pub(super) fn span_id(id: SpanId) -> [u8; 16] {
    let mut out = [0u8; 16];
    match bytes_of::<8>(&id) {
        Some(bytes) => encode(&bytes, &mut out),
        None => copy_display(&id, &mut out),
    }
    out
}

fn copy_display(id: &impl std::fmt::Display, out: &mut [u8]) {
    let text = id.to_string();
    let n = text.len().min(out.len());
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_through_hash_equal_their_display() {
        for _ in 0..1000 {
            let trace = TraceId::from(fastrand::u128(..).to_be_bytes());
            let span = crate::event::new_span_id();
            assert!(bytes_of::<16>(&trace).is_some(), "the fast path is taken");
            assert_eq!(&trace_id(trace)[..], trace.to_string().as_bytes());
            assert_eq!(&span_id(span)[..], span.to_string().as_bytes());
        }
        let zero = TraceId::from([0; 16]);
        assert_eq!(&trace_id(zero)[..], zero.to_string().as_bytes());
    }
}
