//! The disk buffer: envelopes that could not be delivered, kept in segment files and sent again,
//! oldest first, once the server answers.
//!
//! A segment is a file of records: `magic (4) | length (4) | crc32 (4) | payload`, the payload
//! being `flags (1) | item count (1) | (category (1), quantity (4)) × n | body`. A record whose
//! length runs past the end of the file or whose checksum does not match (a write torn by a
//! crash) ends the segment: it and anything after it are skipped, never sent. A segment is
//! deleted only once everything in it was dealt with, so a crash in between sends some of it
//! again rather than losing it.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sentry_types::protocol::v7::client_report::Category;

use super::pack::Packed;

const MAGIC: u32 = 0x4C54_5331; // "LTS1"
const HEADER: usize = 12;

/// The categories a record can hold, by their code on disk.
const CATEGORIES: [Category; 8] = [
    Category::Error,
    Category::Transaction,
    Category::Span,
    Category::Session,
    Category::Attachment,
    Category::Monitor,
    Category::LogItem,
    Category::LogByte,
];

/// One segment file and what it holds.
#[derive(Debug)]
struct Segment {
    seq: u64,
    bytes: u64,
    items: Vec<(Category, u64)>,
}

/// The spool directory, its segments oldest first, and the one being written.
#[derive(Debug)]
pub(super) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    writer: Option<(u64, File)>,
    /// Never reused, so a segment being sent again cannot be mistaken for a newer one.
    next_seq: u64,
}

/// Items dropped from the spool (the oldest, to stay under its bound).
pub(super) type Evicted = Vec<(Category, u64)>;

impl Spool {
    /// Opens (or creates) the spool in `dir`, indexing the segments a previous run left.
    pub(super) fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let mut seqs: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("segment-")?
                    .strip_suffix(".spool")?
                    .parse()
                    .ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut segments = VecDeque::new();
        for seq in seqs {
            let path = segment_path(dir, seq);
            let (records, bytes) = read_segment(&path);
            if records.is_empty() {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let mut items = Vec::new();
            for record in &records {
                add(&mut items, &record.items);
            }
            segments.push_back(Segment { seq, bytes, items });
        }
        let next_seq = segments.back().map_or(1, |s| s.seq + 1);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 16).clamp(16 * 1024, 4 * 1024 * 1024),
            segments,
            writer: None,
            next_seq,
        })
    }

    /// Whether anything waits on disk.
    pub(super) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bytes on disk.
    pub(super) fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Appends an envelope. Over the bound, the oldest segments go first; what they held is
    /// returned to be counted. An envelope that cannot be written is returned whole.
    pub(super) fn push(&mut self, packed: &Packed) -> Result<Evicted, Evicted> {
        let record = encode(packed);
        let mut evicted = Vec::new();
        while self.bytes() + record.len() as u64 > self.max_bytes && !self.segments.is_empty() {
            let oldest = self.segments.pop_front().expect("not empty");
            if self
                .writer
                .as_ref()
                .is_some_and(|(seq, _)| *seq == oldest.seq)
            {
                self.writer = None;
            }
            let _ = std::fs::remove_file(segment_path(&self.dir, oldest.seq));
            add(&mut evicted, &oldest.items);
        }
        let written = self.write(&record, &packed.items);
        match written {
            Ok(()) => Ok(evicted),
            Err(_) => {
                add(&mut evicted, &packed.items);
                Err(evicted)
            }
        }
    }

    fn write(&mut self, record: &[u8], items: &[(Category, u64)]) -> std::io::Result<()> {
        let full = match (&self.writer, self.segments.back()) {
            (Some((seq, _)), Some(last)) => last.seq != *seq || last.bytes >= self.segment_bytes,
            _ => true,
        };
        if full {
            let seq = self.next_seq;
            self.next_seq += 1;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.dir, seq))?;
            self.writer = Some((seq, file));
            self.segments.push_back(Segment {
                seq,
                bytes: 0,
                items: Vec::new(),
            });
        }
        let Some((_, file)) = self.writer.as_mut() else {
            return Err(std::io::Error::other("no segment to write"));
        };
        file.write_all(record)?;
        if let Some(last) = self.segments.back_mut() {
            last.bytes += record.len() as u64;
            add(&mut last.items, items);
        }
        Ok(())
    }

    /// Takes the oldest segment's envelopes to send again (the segment stays on disk until
    /// [`done`](Self::done)). The segment being written is closed first.
    pub(super) fn oldest(&mut self) -> Option<(u64, Vec<Packed>)> {
        let seq = self.segments.front()?.seq;
        if self.writer.as_ref().is_some_and(|(w, _)| *w == seq) {
            if let Some((_, file)) = self.writer.take() {
                let _ = file.sync_data();
            }
        }
        let (records, _) = read_segment(&segment_path(&self.dir, seq));
        let packed = records
            .into_iter()
            .map(|r| Packed {
                body: r.body.into(),
                gzipped: r.gzipped,
                items: r.items,
                report: None,
                attempts: 0,
                spooled: Some(seq),
            })
            .collect();
        Some((seq, packed))
    }

    /// Deletes a segment whose envelopes were all dealt with.
    pub(super) fn done(&mut self, seq: u64) {
        if let Some(pos) = self.segments.iter().position(|s| s.seq == seq) {
            self.segments.remove(pos);
            let _ = std::fs::remove_file(segment_path(&self.dir, seq));
        }
        if self.writer.as_ref().is_some_and(|(w, _)| *w == seq) {
            self.writer = None;
        }
    }

    /// Flushes what was written to the disk (at shutdown).
    pub(super) fn sync(&mut self) {
        if let Some((_, file)) = self.writer.as_mut() {
            let _ = file.sync_data();
        }
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("segment-{seq:020}.spool"))
}

fn add(into: &mut Vec<(Category, u64)>, items: &[(Category, u64)]) {
    for (category, n) in items {
        match into.iter_mut().find(|(c, _)| c == category) {
            Some((_, total)) => *total += n,
            None => into.push((*category, *n)),
        }
    }
}

fn encode(packed: &Packed) -> Vec<u8> {
    let items: Vec<(u8, u32)> = packed
        .items
        .iter()
        .filter_map(|(c, n)| {
            let code = CATEGORIES.iter().position(|k| k == c)?;
            Some((code as u8, u32::try_from(*n).unwrap_or(u32::MAX)))
        })
        .take(255)
        .collect();
    let mut payload = Vec::with_capacity(2 + items.len() * 5 + packed.body.len());
    payload.push(u8::from(packed.gzipped));
    payload.push(items.len() as u8);
    for (code, n) in items {
        payload.push(code);
        payload.extend_from_slice(&n.to_le_bytes());
    }
    payload.extend_from_slice(&packed.body);
    let mut crc = flate2::Crc::new();
    crc.update(&payload);
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(&MAGIC.to_le_bytes());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc.sum().to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

struct SpoolRecord {
    gzipped: bool,
    items: Vec<(Category, u64)>,
    body: Vec<u8>,
}

/// The valid records of a segment, up to the first torn or corrupt one, and their bytes.
fn read_segment(path: &Path) -> (Vec<SpoolRecord>, u64) {
    let mut raw = Vec::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .is_err()
    {
        return (Vec::new(), 0);
    }
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(header) = raw.get(pos..pos + HEADER) {
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (magic, len, crc) = (word(0), word(4) as usize, word(8));
        let Some(payload) = raw.get(pos + HEADER..pos + HEADER + len) else {
            break;
        };
        let mut check = flate2::Crc::new();
        check.update(payload);
        if magic != MAGIC || check.sum() != crc {
            break;
        }
        let Some(record) = decode(payload) else {
            break;
        };
        records.push(record);
        pos += HEADER + len;
    }
    (records, pos as u64)
}

fn decode(payload: &[u8]) -> Option<SpoolRecord> {
    let gzipped = *payload.first()? == 1;
    let n = *payload.get(1)? as usize;
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let at = 2 + i * 5;
        let code = *payload.get(at)? as usize;
        let qty = payload.get(at + 1..at + 5)?;
        let qty = u32::from_le_bytes([qty[0], qty[1], qty[2], qty[3]]);
        items.push((*CATEGORIES.get(code)?, u64::from(qty)));
    }
    let body = payload.get(2 + n * 5..)?.to_vec();
    Some(SpoolRecord {
        gzipped,
        items,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(body: &str, items: Vec<(Category, u64)>) -> Packed {
        Packed {
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
            gzipped: false,
            items,
            report: None,
            attempts: 0,
            spooled: None,
        }
    }

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lighttrace-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn envelopes_come_back_in_order_after_a_reopen() {
        let dir = dir("order");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        for i in 0..5 {
            spool
                .push(&packed(
                    &format!("envelope {i}"),
                    vec![(Category::Error, 1)],
                ))
                .unwrap();
        }
        drop(spool);
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        let (seq, back) = spool.oldest().unwrap();
        let bodies: Vec<_> = back
            .iter()
            .map(|p| String::from_utf8(p.body.to_vec()).unwrap())
            .collect();
        assert_eq!(
            bodies,
            (0..5).map(|i| format!("envelope {i}")).collect::<Vec<_>>()
        );
        assert_eq!(back[0].items, [(Category::Error, 1)]);
        spool.done(seq);
        assert!(spool.is_empty());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_write_is_skipped_never_replayed() {
        let dir = dir("torn");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool
            .push(&packed("whole", vec![(Category::Transaction, 1)]))
            .unwrap();
        spool
            .push(&packed("torn apart", vec![(Category::Error, 1)]))
            .unwrap();
        drop(spool);
        let path = segment_path(&dir, 1);
        let len = std::fs::metadata(&path).unwrap().len();
        // A crash in the middle of the second record's write.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 4)
            .unwrap();
        // And a flipped byte would be caught by the checksum just the same.
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        let (_, back) = spool.oldest().unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(&back[0].body[..], b"whole");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_byte_fails_the_checksum() {
        let dir = dir("corrupt");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool
            .push(&packed("intact body", vec![(Category::Error, 1)]))
            .unwrap();
        drop(spool);
        let path = segment_path(&dir, 1);
        let mut raw = std::fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        std::fs::write(&path, raw).unwrap();
        let spool = Spool::open(&dir, 1 << 20).unwrap();
        assert!(spool.is_empty(), "the corrupt segment held nothing valid");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn over_its_bound_the_oldest_go_and_are_returned_for_counting() {
        let dir = dir("bound");
        let body = "x".repeat(20_000);
        let mut spool = Spool::open(&dir, 64 * 1024).unwrap();
        let mut evicted = Vec::new();
        for _ in 0..10 {
            evicted.extend(
                spool
                    .push(&packed(&body, vec![(Category::Error, 1)]))
                    .unwrap(),
            );
        }
        assert!(spool.bytes() <= 64 * 1024, "{}", spool.bytes());
        let kept: u64 = spool
            .segments
            .iter()
            .flat_map(|s| &s.items)
            .map(|(_, n)| n)
            .sum();
        let dropped: u64 = evicted.iter().map(|(_, n)| n).sum();
        assert_eq!(kept + dropped, 10, "nothing lost without a count");
        assert!(dropped > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
