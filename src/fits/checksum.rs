//! FITS CHECKSUM and DATASUM (FITS 4.0 §4.4.2.7 and Appendix J).
//!
//! Why this module exists: fpack writes both keywords into every HDU it
//! creates, and funpack/fitsverify check them. The sum is the 32-bit ones'
//! complement sum of the HDU's big-endian 32-bit words (end-around carry),
//! and CHECKSUM is a 16-character ASCII encoding of the complement of the
//! whole HDU's sum, chosen so that the HDU then sums to all ones (-0).
//!
//! Invariants: [`ones_complement_sum`] gives the same value as cfitsio's
//! `ffcsum` for the same bytes and starting sum (including the choice of
//! 0xFFFFFFFF rather than 0 for a nonzero total that is ≡ 0), [`encode`]
//! produces exactly `ffesum`'s characters, and [`decode`] is `ffdsum`
//! without complementing, so `decode(&encode(x, false)) == Some(x)`.

/// Fold a wide ones' complement accumulator into 32 bits with end-around
/// carry. A nonzero input never folds to 0, matching `ffcsum`.
fn fold(mut wide: u64) -> u32 {
    while wide >> 32 != 0 {
        wide = (wide & 0xFFFF_FFFF) + (wide >> 32);
    }
    wide as u32
}

/// 32-bit ones' complement sum of big-endian 4-byte words, continuing from `sum`.
/// `bytes.len()` is a multiple of 4 (FITS blocks always are); a shorter
/// tail is summed as if padded with zero bytes.
pub fn ones_complement_sum(bytes: &[u8], sum: u32) -> u32 {
    // Plain 64-bit sums of 32-bit words are ones' complement sums that
    // have not had their carries folded yet. Up to 2^32 words fit in 64
    // bits without overflow; blocks far smaller than that keep it safe and
    // let the compiler vectorize the inner loop.
    const BLOCK_BYTES: usize = 1 << 24;
    let mut total = sum as u64;
    let whole = bytes.len() / 4 * 4;
    for block in bytes[..whole].chunks(BLOCK_BYTES) {
        let block_sum: u64 = block
            .chunks_exact(4)
            .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]) as u64)
            .sum();
        total = fold(total + block_sum) as u64;
    }
    let tail = &bytes[whole..];
    if !tail.is_empty() {
        let mut padded = [0u8; 4];
        padded[..tail.len()].copy_from_slice(tail);
        total += u32::from_be_bytes(padded) as u64;
    }
    fold(total)
}

/// ASCII codes between the digits and the letters that the encoding avoids,
/// so that CHECKSUM values are plain alphanumerics.
const PUNCTUATION: [u8; 13] = [
    0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60,
];

/// The 16-character ASCII encoding of a checksum (the CHECKSUM keyword value);
/// `complement` is true when encoding the complement, as for CHECKSUM.
pub fn encode(sum: u32, complement: bool) -> String {
    let value = if complement { !sum } else { sum };
    let mut interleaved = [0u8; 16];
    for (byte_index, byte) in value.to_be_bytes().into_iter().enumerate() {
        // Each byte is spread over four characters whose offsets from '0'
        // add up to the byte; pairs are then nudged apart (one up, one
        // down, keeping each pair's sum) until none is punctuation.
        let quarter = byte / 4 + b'0';
        let mut chars = [quarter; 4];
        chars[0] += byte % 4;
        loop {
            let mut changed = false;
            for &excluded in &PUNCTUATION {
                for pair in [0, 2] {
                    if chars[pair] == excluded || chars[pair + 1] == excluded {
                        chars[pair] += 1;
                        chars[pair + 1] -= 1;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for (position, &ch) in chars.iter().enumerate() {
            interleaved[4 * position + byte_index] = ch;
        }
    }
    // The final rotation by one aligns the string with the 4-byte words of
    // the card it sits in (the value starts at column 12).
    (0..16)
        .map(|i| interleaved[(i + 15) % 16] as char)
        .collect()
}

/// Decode the 16-character CHECKSUM string back to the 32-bit value it encodes.
/// Returns `None` unless the text is 16 ASCII letters or digits.
/// `decode(&encode(x, c))` is `x` when `c` is false and `!x` when true.
pub fn decode(text: &str) -> Option<u32> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut high = 0u32;
    let mut low = 0u32;
    for group in 0..4 {
        // Undo the rotation and the '0' offset.
        let digit = |k: usize| (bytes[(4 * group + k + 1) % 16] - b'0') as u32;
        high += (digit(0) << 8) + digit(1);
        low += (digit(2) << 8) + digit(3);
    }
    // For output of `encode` the sums cannot carry; folding keeps other
    // strings decoded the way ffdsum does.
    loop {
        let high_carry = high >> 16;
        let low_carry = low >> 16;
        if high_carry == 0 && low_carry == 0 {
            break;
        }
        high = (high & 0xFFFF) + low_carry;
        low = (low & 0xFFFF) + high_carry;
    }
    Some((high << 16) + low)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward word-at-a-time reference, as ffcsum does it.
    fn reference_sum(bytes: &[u8], sum: u32) -> u32 {
        let mut high = (sum >> 16) as u64;
        let mut low = (sum & 0xFFFF) as u64;
        for word in bytes.chunks_exact(4) {
            high += u16::from_be_bytes([word[0], word[1]]) as u64;
            low += u16::from_be_bytes([word[2], word[3]]) as u64;
        }
        loop {
            let high_carry = high >> 16;
            let low_carry = low >> 16;
            if high_carry == 0 && low_carry == 0 {
                break;
            }
            high = (high & 0xFFFF) + low_carry;
            low = (low & 0xFFFF) + high_carry;
        }
        ((high << 16) + low) as u32
    }

    fn pseudo_random_bytes(count: usize, mut state: u32) -> Vec<u8> {
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn sum_matches_word_by_word_reference() {
        for (count, start) in [
            (0, 0),
            (4, 7),
            (2880, 0),
            (2880 * 5, 0xFFFF_FFFF),
            (40_000, 123),
        ] {
            let bytes = pseudo_random_bytes(count, 99 + count as u32);
            assert_eq!(
                ones_complement_sum(&bytes, start),
                reference_sum(&bytes, start)
            );
        }
        assert_eq!(ones_complement_sum(&[0xFF; 2880], 0), 0xFFFF_FFFF);
        assert_eq!(ones_complement_sum(&[0; 2880], 0), 0);
        // A short tail counts as zero-padded.
        assert_eq!(ones_complement_sum(&[1, 2, 3], 0), 0x0102_0300);
    }

    #[test]
    fn encode_decode_round_trip() {
        for value in [
            0u32,
            1,
            0xFFFF_FFFF,
            0x1234_5678,
            0x8000_0000,
            0x3A3A_3A3A,
            0xDEAD_BEEF,
        ] {
            let text = encode(value, false);
            assert_eq!(text.len(), 16);
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()), "{text}");
            assert_eq!(decode(&text), Some(value));
            assert_eq!(decode(&encode(value, true)), Some(!value));
        }
        // The CHECKSUM placeholder cfitsio writes before summing.
        assert_eq!(encode(0xFFFF_FFFF, true), "0000000000000000");
        assert_eq!(decode("too short"), None);
        assert_eq!(decode("!!!!!!!!!!!!!!!!"), None);
    }

    /// Build a header with CHECKSUM/DATASUM the way cfitsio does (`ffpcks`)
    /// and check the defining property: the whole HDU then sums to -0.
    #[test]
    fn checksummed_hdu_sums_to_negative_zero() {
        let data = pseudo_random_bytes(2880 * 2, 4242);
        let data_sum = ones_complement_sum(&data, 0);
        let cards = [
            "SIMPLE  =                    T".to_string(),
            "BITPIX  =                    8".to_string(),
            "NAXIS   =                    1".to_string(),
            "NAXIS1  =                 5760".to_string(),
            "CHECKSUM= '0000000000000000'".to_string(),
            format!("DATASUM = '{data_sum}'"),
            "END".to_string(),
        ];
        let mut header: Vec<u8> = cards
            .iter()
            .flat_map(|c| format!("{c:<80}").into_bytes())
            .collect();
        header.resize(2880, b' ');
        let header_sum = ones_complement_sum(&header, data_sum);
        let checksum = encode(header_sum, true);
        let at = header
            .windows(16)
            .position(|w| w == b"0000000000000000")
            .unwrap();
        header[at..at + 16].copy_from_slice(checksum.as_bytes());
        let total = ones_complement_sum(&data, ones_complement_sum(&header, 0));
        assert_eq!(total, 0xFFFF_FFFF);
    }
}

/// CRC-32 (IEEE) of a byte stream, with its length: what the writer checks a
/// file on disk against after writing it. crc32fast picks a SIMD
/// (carry-less multiply) routine at run time, several times faster than the
/// portable one that flate2's `Crc` uses on a baseline x86-64 build; the
/// re-read of every output file was a tenth of funpack-ng's time with it.
#[derive(Clone, Default)]
pub struct Crc {
    hasher: crc32fast::Hasher,
    amount: u64,
}

impl Crc {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.amount += bytes.len() as u64;
    }

    /// The CRC-32 of everything so far.
    pub fn sum(&self) -> u32 {
        self.hasher.clone().finalize()
    }

    /// Bytes so far, modulo 2^32 (as flate2's `Crc::amount`).
    pub fn amount(&self) -> u32 {
        self.amount as u32
    }

    /// Append the stream `other` summed, as if its bytes followed.
    pub fn combine(&mut self, other: &Crc) {
        self.hasher.combine(&other.hasher);
        self.amount += other.amount;
    }
}
