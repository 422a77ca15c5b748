//! Packing: serialising an envelope and gzipping it when it is large enough to pay.

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::Envelope;

use super::outcomes::{item_categories, ReportCounts};
use super::Transport;
use crate::wire::SerializedEnvelope;

/// An envelope ready to go: its body (gzipped or not), what it carries (to count it if it is
/// lost) and the drop counts of a client report riding along (put back if it is lost, so they
/// are not).
pub(super) struct Packed {
    pub(super) body: bytes::Bytes,
    pub(super) gzipped: bool,
    /// The items' categories and quantities; the first is the envelope's own (what a rate
    /// limit is checked against).
    pub(super) items: Vec<(Category, u64)>,
    pub(super) report: Option<ReportCounts>,
    /// Delivery attempts that got no answer so far.
    pub(super) attempts: u32,
    /// The disk-buffer segment it was read back from, if it was.
    pub(super) spooled: Option<u64>,
}

impl Packed {
    /// The category a rate limit is checked against (`None`: a client report alone).
    pub(super) fn category(&self) -> Option<Category> {
        self.items.first().map(|(c, _)| *c)
    }
}

/// Serialises and gzips envelopes, reusing one compressor and its buffers: a fresh gzip
/// encoder allocates a few hundred KiB of state, which the allocator hands back to the kernel
/// each time, so every envelope paid for page faults and zeroing.
pub(super) struct Packer {
    raw: Vec<u8>,
    deflate: flate2::Compress,
}

impl Packer {
    pub(super) fn new(level: u32) -> Self {
        Packer {
            raw: Vec::with_capacity(16 * 1024),
            deflate: flate2::Compress::new(flate2::Compression::new(level), false),
        }
    }

    /// The envelope's body (with the `extra` item's bytes appended), gzipped when it is at
    /// least `compress_from` bytes long.
    pub(super) fn pack(
        &mut self,
        envelope: &Envelope,
        extra: Option<&[u8]>,
        compress_from: usize,
    ) -> Option<(bytes::Bytes, bool)> {
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        let written = envelope.to_writer(&mut raw).map(|()| {
            if let Some(item) = extra {
                append_item(&mut raw, item);
            }
        });
        let packed = match written {
            Ok(()) if raw.len() < compress_from => {
                Some((bytes::Bytes::copy_from_slice(&raw), false))
            }
            Ok(()) => self.gzip(&raw).map(|body| (body, true)),
            Err(_) => None,
        };
        self.raw = raw;
        packed
    }

    /// Bytes already in the envelope format: kept as they are (no copy) below
    /// `compress_from`, gzipped from it.
    pub(super) fn pack_bytes(
        &mut self,
        raw: Vec<u8>,
        compress_from: usize,
    ) -> Option<(bytes::Bytes, bool)> {
        if raw.len() < compress_from {
            return Some((bytes::Bytes::from(raw), false));
        }
        self.gzip(&raw).map(|body| (body, true))
    }

    /// A gzip member (RFC 1952): header, raw deflate, CRC-32 and length.
    fn gzip(&mut self, raw: &[u8]) -> Option<bytes::Bytes> {
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        self.deflate.reset();
        loop {
            out.reserve(raw.len() / 2 + 64);
            let consumed = usize::try_from(self.deflate.total_in()).ok()?;
            let status = self
                .deflate
                .compress_vec(&raw[consumed..], &mut out, flate2::FlushCompress::Finish)
                .ok()?;
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(raw);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the length modulo 2^32 by definition.
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        Some(bytes::Bytes::from(out))
    }
}

/// Packs an envelope, counting it as an internal error if it cannot be serialised.
pub(super) fn pack(
    transport: &Transport,
    packer: &mut Packer,
    envelope: Envelope,
    report: Option<(Vec<u8>, ReportCounts)>,
) -> Option<Packed> {
    let items: Vec<(Category, u64)> = envelope.items().flat_map(item_categories).collect();
    let (item, counts) = report.unzip();
    let packed = packer.pack(&envelope, item.as_deref(), transport.options.compress_from);
    finish(transport, packed, items, counts)
}

/// Packs a client report alone (an envelope with an empty header).
pub(super) fn pack_report(
    transport: &Transport,
    packer: &mut Packer,
    (item, counts): (Vec<u8>, ReportCounts),
) -> Option<Packed> {
    let mut raw = Vec::with_capacity(item.len() + 3);
    raw.extend_from_slice(b"{}\n");
    raw.extend_from_slice(&item);
    let packed = packer.pack_bytes(raw, transport.options.compress_from);
    finish(transport, packed, Vec::new(), Some(counts))
}

/// Packs an envelope the client serialised, with a client report appended when one rides
/// along.
pub(super) fn pack_serialized(
    transport: &Transport,
    packer: &mut Packer,
    envelope: SerializedEnvelope,
    report: Option<(Vec<u8>, ReportCounts)>,
) -> Option<Packed> {
    let items: Vec<(Category, u64)> = envelope
        .items()
        .iter()
        .map(|(c, n)| (*c, u64::from(*n)))
        .collect();
    let mut raw = envelope.into_bytes();
    let counts = report.map(|(item, counts)| {
        append_item(&mut raw, &item);
        counts
    });
    let packed = packer.pack_bytes(raw, transport.options.compress_from);
    finish(transport, packed, items, counts)
}

/// Appends one item (its header line and payload) to an envelope's bytes.
fn append_item(raw: &mut Vec<u8>, item: &[u8]) {
    if !raw.ends_with(b"\n") {
        raw.push(b'\n');
    }
    raw.extend_from_slice(item);
}

fn finish(
    transport: &Transport,
    packed: Option<(bytes::Bytes, bool)>,
    items: Vec<(Category, u64)>,
    report: Option<ReportCounts>,
) -> Option<Packed> {
    match packed {
        Some((body, gzipped)) => Some(Packed {
            body,
            gzipped,
            items,
            report,
            attempts: 0,
            spooled: None,
        }),
        None => {
            for (category, n) in items {
                transport
                    .outcomes
                    .count(Reason::InternalSdkError, category, n);
            }
            if let Some(counts) = report {
                transport.outcomes.restore(counts);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_bodies_are_valid_gzip_and_the_packer_is_reusable() {
        use std::io::Read;
        let mut packer = Packer::new(1);
        for n in [1usize, 5000, 3] {
            let mut envelope = Envelope::new();
            let mut event = sentry_types::protocol::v7::Event::new();
            event.message = Some("x".repeat(n));
            envelope.add_item(event);
            let (body, gzipped) = packer.pack(&envelope, None, 0).unwrap();
            assert!(gzipped);
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut raw)
                .unwrap();
            let mut expected = Vec::new();
            envelope.to_writer(&mut expected).unwrap();
            assert_eq!(raw, expected);
            let (plain, gzipped) = packer.pack(&envelope, None, usize::MAX).unwrap();
            assert!(!gzipped);
            assert_eq!(&plain[..], &expected[..]);
            let (body, gzipped) = packer.pack_bytes(expected.clone(), 0).unwrap();
            assert!(gzipped);
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut raw)
                .unwrap();
            assert_eq!(raw, expected);
        }
    }

    #[test]
    fn a_report_appended_to_serialised_bytes_parses_as_a_second_item() {
        use sentry_types::protocol::v7::EnvelopeItem;
        let outcomes = super::super::outcomes::Outcomes::default();
        outcomes.count(Reason::QueueOverflow, Category::Error, 2);
        let (report, _) = outcomes.take_report().unwrap();
        let mut envelope = Envelope::new();
        envelope.add_item(sentry_types::protocol::v7::Event::new());
        let mut raw = Vec::new();
        envelope.to_writer(&mut raw).unwrap();
        append_item(&mut raw, &report);
        let parsed = Envelope::from_slice(&raw).unwrap();
        let items: Vec<_> = parsed.items().collect();
        assert_eq!(items.len(), 2);
        let EnvelopeItem::ClientReport(report) = items[1] else {
            panic!("{:?}", items[1]);
        };
        let json = serde_json::to_value(report).unwrap();
        assert_eq!(json["discarded_events"][0]["reason"], "queue_overflow");
        assert_eq!(json["discarded_events"][0]["quantity"], 2);
    }
}
