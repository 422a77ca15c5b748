//! Scanning bytes eight at a time: which bytes of a 64-bit word belong to a class, as a mask
//! with the high bit of each such byte set. Every mask is exact (no false positives from
//! borrows between bytes), so a caller may look at the marked positions one by one.
//!
//! The scrubbers' prefilter and the JSON writer's escape check each read a header value, a
//! URL or a description this way: a few operations per eight bytes instead of a branch per
//! byte.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const PAD: u8 = 0x7f;

/// Whether `f` holds for any word of `bytes`, given with its offset: words are little-endian
/// (byte `i` of a chunk is bits `8i..8i+8`), the last one padded with DEL (0x7f): ASCII, not a
/// control character JSON escapes, not a digit, and equal to nothing a caller looks for.
#[inline(always)]
pub(crate) fn any_word(bytes: &[u8], mut f: impl FnMut(usize, u64) -> bool) -> bool {
    let mut at = 0;
    while at < bytes.len() {
        let mut word = [PAD; 8];
        match bytes.get(at..at + 8) {
            Some(chunk) => word.copy_from_slice(chunk),
            // Byte by byte: a copy of a length unknown here would be a call.
            None => {
                for (to, from) in word.iter_mut().zip(&bytes[at..]) {
                    *to = *from;
                }
            }
        }
        // One call site, so that `f` is inlined into the loop.
        if f(at, u64::from_le_bytes(word)) {
            return true;
        }
        at += 8;
    }
    false
}

/// Bytes equal to `byte`.
#[inline]
pub(crate) fn equal(word: u64, byte: u8) -> u64 {
    zero(word ^ (ONES * u64::from(byte)))
}

/// Zero bytes.
#[inline]
fn zero(word: u64) -> u64 {
    // Adding 0x7f to the low seven bits carries into the high bit unless they are all zero;
    // or-ing the word back in keeps bytes whose own high bit is set.
    !(((word & LOW7) + LOW7) | word) & HIGH
}

/// ASCII bytes below `n` (`n` at most 0x80); bytes with the high bit set are never below.
#[inline]
pub(crate) fn below(word: u64, n: u8) -> u64 {
    // With every high bit set, subtracting a byte-sized `n` cannot borrow across bytes: a
    // byte's high bit survives exactly when its low seven bits are at least `n`.
    let at_least = (word | HIGH).wrapping_sub(ONES * u64::from(n)) & HIGH;
    !at_least & !word & HIGH
}

/// ASCII digits.
#[inline]
pub(crate) fn digits(word: u64) -> u64 {
    below(word, b'9' + 1) & !below(word, b'0')
}

/// Bytes with the high bit set (not ASCII).
#[inline]
pub(crate) fn high(word: u64) -> u64 {
    word & HIGH
}

/// How many bytes a mask marks.
#[inline]
pub(crate) fn count(mask: u64) -> u32 {
    // Each byte of `mask >> 7` is 0 or 1; the multiplication sums them into the top byte.
    ((mask >> 7).wrapping_mul(ONES) >> 56) as u32
}

/// The index (0..8) of the lowest marked byte of a non-zero mask.
#[inline]
pub(crate) fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// Whether `bytes` are ASCII that a JSON string holds as they are (no quote, backslash or
/// control character), eight bytes at a time.
#[inline]
pub(crate) fn is_plain_ascii(bytes: &[u8]) -> bool {
    !any_word(bytes, |_, w| {
        high(w) | equal(w, b'"') | equal(w, b'\\') | below(w, 0x20) != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every class against its byte-by-byte definition, for every byte at every position
    /// among fillers that tempt borrows (0x00, 0x01, 0x7f, 0x80, 0xff, and ASCII).
    #[test]
    fn masks_are_exact() {
        let naive = |bytes: &[u8; 8], f: &dyn Fn(u8) -> bool| {
            bytes.iter().enumerate().fold(
                0u64,
                |m, (i, &b)| if f(b) { m | 0x80 << (8 * i) } else { m },
            )
        };
        for fill in [0x00u8, 0x01, b'0', b'9', b'a', 0x7f, 0x80, 0xff, b':' + 1] {
            for at in 0..8 {
                for b in 0..=255u8 {
                    let mut bytes = [fill; 8];
                    bytes[at] = b;
                    let w = u64::from_le_bytes(bytes);
                    for c in [b'"', b'\\', b':', b'b', 0, 0xff] {
                        assert_eq!(equal(w, c), naive(&bytes, &|x| x == c), "{bytes:?} {c}");
                    }
                    for n in [0x20u8, b'0', 0x80] {
                        assert_eq!(below(w, n), naive(&bytes, &|x| x < n), "{bytes:?} {n}");
                    }
                    assert_eq!(digits(w), naive(&bytes, &|x| x.is_ascii_digit()));
                    assert_eq!(high(w), naive(&bytes, &|x| x >= 0x80));
                    assert_eq!(
                        count(digits(w)),
                        bytes.iter().filter(|x| x.is_ascii_digit()).count() as u32
                    );
                    assert_eq!(
                        count(high(w)),
                        bytes.iter().filter(|x| **x >= 0x80).count() as u32
                    );
                }
            }
        }
    }

    /// Every length, every offset: the words are the input's eight-byte chunks, the last one
    /// padded with DEL, whether the tail is read byte by byte or as the input's last eight.
    #[test]
    fn words_are_the_padded_chunks_at_every_length() {
        let input: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        for len in 0..input.len() {
            let bytes = &input[..len];
            let mut seen = Vec::new();
            any_word(bytes, |at, w| {
                seen.push((at, w));
                false
            });
            let expected: Vec<(usize, u64)> = bytes
                .chunks(8)
                .enumerate()
                .map(|(i, chunk)| {
                    let mut word = [PAD; 8];
                    word[..chunk.len()].copy_from_slice(chunk);
                    (8 * i, u64::from_le_bytes(word))
                })
                .collect();
            assert_eq!(seen, expected, "length {len}");
        }
    }

    #[test]
    fn words_pad_the_tail_and_first_finds_the_lowest() {
        let mut all = Vec::new();
        let mut offsets = Vec::new();
        assert!(!any_word(b"0123456789", |at, w| {
            offsets.push(at);
            all.push(w);
            false
        }));
        assert_eq!(offsets, [0, 8]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], u64::from_le_bytes(*b"89\x7f\x7f\x7f\x7f\x7f\x7f"));
        assert_eq!(
            below(all[1], 0x20) | digits(all[1]) >> 16,
            0,
            "padding is in no class"
        );
        assert_eq!(first(equal(all[0], b'3')), 3);
        assert!(!any_word(b"", |_, _| true));
        assert!(any_word(b"x", |_, _| true));
    }
}
