//! Packing: serialising an envelope and gzipping it when it is large enough to pay.

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::Envelope;

use super::outcomes::{item_categories, Counts};
use super::Transport;

/// An envelope ready to go: its body (gzipped or not), what it carries (to count it if it is
/// lost) and the drop counts of a client report riding along (put back if it is lost, so they
/// are not).
pub(super) struct Packed {
    pub(super) body: bytes::Bytes,
    pub(super) gzipped: bool,
    /// The items' categories and quantities; the first is the envelope's own (what a rate
    /// limit is checked against).
    pub(super) items: Vec<(Category, u64)>,
    pub(super) report: Option<Counts>,
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

    /// A gzip member (RFC 1952): header, raw deflate, CRC-32 and length.
    /// The envelope's body, gzipped when it is at least `compress_from` bytes long.
    pub(super) fn pack(
        &mut self,
        envelope: &Envelope,
        compress_from: usize,
    ) -> Option<(bytes::Bytes, bool)> {
        self.raw.clear();
        envelope.to_writer(&mut self.raw).ok()?;
        if self.raw.len() < compress_from {
            return Some((bytes::Bytes::copy_from_slice(&self.raw), false));
        }
        let mut out = Vec::with_capacity(self.raw.len() / 2 + 64);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        self.deflate.reset();
        loop {
            out.reserve(self.raw.len() / 2 + 64);
            let consumed = usize::try_from(self.deflate.total_in()).ok()?;
            let status = self
                .deflate
                .compress_vec(
                    &self.raw[consumed..],
                    &mut out,
                    flate2::FlushCompress::Finish,
                )
                .ok()?;
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(&self.raw);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the length modulo 2^32 by definition.
        out.extend_from_slice(&(self.raw.len() as u32).to_le_bytes());
        Some((bytes::Bytes::from(out), true))
    }
}

/// Packs an envelope, counting it as an internal error if it cannot be serialised.
pub(super) fn pack(
    transport: &Transport,
    packer: &mut Packer,
    envelope: Envelope,
    report: Option<Counts>,
) -> Option<Packed> {
    let items: Vec<(Category, u64)> = envelope.items().flat_map(item_categories).collect();
    match packer.pack(&envelope, transport.options.compress_from) {
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
            let (body, gzipped) = packer.pack(&envelope, 0).unwrap();
            assert!(gzipped);
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut raw)
                .unwrap();
            let mut expected = Vec::new();
            envelope.to_writer(&mut expected).unwrap();
            assert_eq!(raw, expected);
            let (plain, gzipped) = packer.pack(&envelope, usize::MAX).unwrap();
            assert!(!gzipped);
            assert_eq!(&plain[..], &expected[..]);
        }
    }
}
