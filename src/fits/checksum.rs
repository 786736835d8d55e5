//! FITS CHECKSUM/DATASUM (stub: to be implemented).

/// 32-bit ones' complement sum of big-endian 4-byte words, continuing from `sum`.
/// `bytes.len()` is a multiple of 4 (FITS blocks always are).
pub fn ones_complement_sum(_bytes: &[u8], sum: u32) -> u32 {
    sum
}

/// The 16-character ASCII encoding of a checksum (the CHECKSUM keyword value);
/// `complement` is true when encoding the complement, as for CHECKSUM.
pub fn encode(_sum: u32, _complement: bool) -> String {
    "0000000000000000".into()
}

/// Decode the 16-character CHECKSUM string back to the 32-bit value it encodes.
pub fn decode(_text: &str) -> Option<u32> {
    None
}
