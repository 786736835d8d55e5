//! The entropy-coding layer of MIXPRED_1: static per-context frequency
//! tables, an rANS coder with two interleaved states and 16-bit
//! renormalisation, and a raw-bit stream beside it.
//!
//! Why static tables and rANS: decoding must be about as fast as Rice, and
//! a table-driven rANS decode is two lookups, one multiply and a
//! branch-free word read per symbol; two states let consecutive symbols
//! proceed without waiting on each other, and the encoder divides by a
//! multiply with an exact reciprocal. The encoder knows the whole tile, so it counts the
//! tokens of every context first and sends the tables (a few hundred bytes
//! per tile, compactly quantised; see [`write_tables`]).
//!
//! Invariants, for any input bytes: decoding never reads outside its slice
//! (a read past the end sets a flag that the caller turns into an error),
//! tables always sum to exactly [`PROB_SCALE`] with every coded symbol at
//! frequency ≥ 1, and no allocation depends on anything but the fixed
//! number of contexts and tokens.

/// Frequencies are in units of 2^-12.
pub const PROB_BITS: u32 = 12;
pub const PROB_SCALE: u32 = 1 << PROB_BITS;
/// The rANS state stays in [RANS_L, 2^32); renormalisation moves 16-bit words.
const RANS_L: u32 = 1 << 16;

pub use super::model::{N_CTX, N_TOKENS, TOKEN_BITS};

/// One context's normalised frequencies, summing to [`PROB_SCALE`].
#[derive(Clone)]
pub struct Table {
    pub freq: [u16; N_TOKENS],
    pub cum: [u16; N_TOKENS],
}

impl Table {
    fn from_freq(freq: [u16; N_TOKENS]) -> Table {
        let mut cum = [0u16; N_TOKENS];
        let mut c = 0u32;
        for (i, f) in freq.iter().enumerate() {
            cum[i] = c as u16;
            c += *f as u32;
        }
        Table { freq, cum }
    }
}

/// Keep the leading 1 and three more bits of a frequency: what the table
/// format can carry. Never rounds up, so the largest symbol can take the rest.
fn representable(f: u32) -> u32 {
    if f < 16 {
        f
    } else {
        let bl = 32 - f.leading_zeros();
        f >> (bl - 4) << (bl - 4)
    }
}

/// Normalise token counts to frequencies summing to exactly
/// [`PROB_SCALE`], every counted token at least 1, all but the most frequent
/// token representable in the table format. `counts` must not be all zero.
pub fn normalise(counts: &[u32; N_TOKENS]) -> ([u16; N_TOKENS], usize) {
    let total: u64 = counts.iter().map(|&c| c as u64).sum();
    let largest = (0..N_TOKENS)
        .max_by_key(|&i| (counts[i], usize::MAX - i))
        .unwrap_or(0);
    let mut f = [0u32; N_TOKENS];
    for i in 0..N_TOKENS {
        if counts[i] > 0 {
            f[i] = ((counts[i] as u64 * PROB_SCALE as u64 / total.max(1)) as u32).max(1);
        }
    }
    // Too many forced-to-1 tokens can overshoot: take from the biggest others.
    loop {
        let others: u32 = (0..N_TOKENS)
            .filter(|&i| i != largest)
            .map(|i| representable(f[i]))
            .sum();
        if others < PROB_SCALE {
            let mut out = [0u16; N_TOKENS];
            for i in 0..N_TOKENS {
                if i != largest {
                    out[i] = representable(f[i]) as u16;
                }
            }
            out[largest] = (PROB_SCALE - others) as u16;
            return (out, largest);
        }
        let big = (0..N_TOKENS)
            .filter(|&i| i != largest)
            .max_by_key(|&i| f[i])
            .unwrap_or(0);
        f[big] = (f[big] - f[big] / 8).max(1);
    }
}

/// Estimated cost in bits of coding `counts` with their own table, the
/// table included (encoder-side decisions only: floating point is fine here,
/// the decoder never repeats it).
fn cost_bits(counts: &[u64; N_TOKENS]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 1.0;
    }
    let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
    let last = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
    let t = total as f64;
    let data: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64 * (t / c as f64).log2())
        .sum();
    data + 22.0 + 6.0 * (last - first) as f64
}

/// Group neighbouring contexts (contexts are ordered by activity, so
/// neighbours have similar statistics) when one shared table costs fewer
/// bits than separate ones, as JPEG-XL clusters its histograms. Returns,
/// per context, whether it starts a new group (always true for the first).
pub fn cluster(counts: &[[u32; N_TOKENS]]) -> Vec<bool> {
    let mut starts = vec![false; counts.len()];
    // Empty contexts join their neighbour for free: start with the groups of
    // non-empty contexts (each with the empty ones after it).
    let mut groups: Vec<(usize, [u64; N_TOKENS], f64)> = Vec::new();
    for (k, c) in counts.iter().enumerate() {
        if groups.is_empty() || c.iter().any(|&n| n > 0) {
            let mut wide = [0u64; N_TOKENS];
            for (w, &n) in wide.iter_mut().zip(c.iter()) {
                *w = n as u64;
            }
            let cost = cost_bits(&wide);
            groups.push((k, wide, cost));
        }
    }
    let merged = |a: &[u64; N_TOKENS], b: &[u64; N_TOKENS]| {
        let mut m = *a;
        for (x, &y) in m.iter_mut().zip(b.iter()) {
            *x += y;
        }
        m
    };
    let gain = |g: &[(usize, [u64; N_TOKENS], f64)], i: usize| {
        g[i].2 + g[i + 1].2 - cost_bits(&merged(&g[i].1, &g[i + 1].1))
    };
    let mut gains: Vec<f64> = (0..groups.len().saturating_sub(1))
        .map(|i| gain(&groups, i))
        .collect();
    while let Some((i, &best)) = gains.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) {
        if best <= 0.0 {
            break;
        }
        let m = merged(&groups[i].1, &groups[i + 1].1);
        groups[i].2 = cost_bits(&m);
        groups[i].1 = m;
        groups.remove(i + 1);
        gains.remove(i);
        if i < gains.len() {
            gains[i] = gain(&groups, i);
        }
        if i > 0 {
            gains[i - 1] = gain(&groups, i - 1);
        }
    }
    for g in &groups {
        starts[g.0] = true;
    }
    starts
}

/// A bit writer, least significant bit first. Branch-free: the
/// accumulator is stored whole after every value and the position advances
/// by the bytes completed.
#[derive(Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    pos: usize,
    acc: u64,
    n: u32,
}

impl BitWriter {
    pub fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            bytes: vec![0; bytes + 8],
            pos: 0,
            acc: 0,
            n: 0,
        }
    }

    /// Append the low `bits` (≤ 32) bits of `value`.
    #[inline(always)]
    pub fn put(&mut self, value: u32, bits: u32) {
        debug_assert!(bits <= 32);
        self.acc |= ((value as u64) & ((1u64 << bits) - 1)) << self.n;
        self.n += bits;
        if self.bytes.len() < self.pos + 8 {
            self.grow();
        }
        self.bytes[self.pos..self.pos + 8].copy_from_slice(&self.acc.to_le_bytes());
        let whole = self.n >> 3;
        self.pos += whole as usize;
        // n ≤ 7 + 32 < 64, so the shift is in range.
        self.acc >>= whole * 8;
        self.n &= 7;
    }

    #[cold]
    fn grow(&mut self) {
        let len = (self.bytes.len() * 2).max(self.pos + 64);
        self.bytes.resize(len, 0);
    }

    /// Bits written so far.
    pub fn bits(&self) -> u64 {
        self.pos as u64 * 8 + self.n as u64
    }

    pub fn finish(mut self) -> Vec<u8> {
        let end = self.pos + (self.n as usize).div_ceil(8);
        if self.bytes.len() < self.pos + 8 {
            self.grow();
        }
        self.bytes[self.pos..self.pos + 8].copy_from_slice(&self.acc.to_le_bytes());
        self.bytes.truncate(end);
        self.bytes
    }
}

/// A bit reader, least significant bit first; bits past the end read as
/// zero and make [`BitReader::past_end`] true.
pub struct BitReader<'a> {
    bytes: &'a [u8],
    /// Bits consumed.
    pos: usize,
}

/// The last bytes of a slice from `at` on, zero-padded to 8 (a free
/// function, so that the reader's fields can live in registers).
#[cold]
fn tail_word(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if at < bytes.len() {
        let rest = &bytes[at..];
        b[..rest.len()].copy_from_slice(rest);
    }
    u64::from_le_bytes(b)
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    /// The next `bits` (≤ 32) bits. Branch-free but for the last bytes of
    /// the slice: one unaligned 8-byte read.
    #[inline(always)]
    pub fn get(&mut self, bits: u32) -> u32 {
        debug_assert!(bits <= 32);
        let at = self.pos >> 3;
        let word = match self.bytes.get(at..at + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            None => tail_word(self.bytes, at),
        };
        let v = (word >> (self.pos & 7)) & ((1u64 << bits) - 1);
        self.pos += bits as usize;
        v as u32
    }

    /// Whether more bits were consumed than the slice holds.
    pub fn past_end(&self) -> bool {
        self.pos as u64 > self.bytes.len() as u64 * 8
    }
}

/// Write the tables of the used contexts. Per context: a presence bit; if
/// present, the first and last token with a non-zero frequency (7 bits
/// each), the index of the largest (7 bits), then for every other token in
/// that range its frequency as a 4-bit bit length and up to 3 mantissa
/// bits. The largest token's frequency is what makes the sum 4096.
pub fn write_tables(out: &mut BitWriter, tables: &[Option<([u16; N_TOKENS], usize)>]) {
    for t in tables {
        match t {
            None => out.put(0, 1),
            Some((freq, largest)) => {
                out.put(1, 1);
                let first = freq.iter().position(|&f| f > 0).unwrap_or(0);
                let last = freq.iter().rposition(|&f| f > 0).unwrap_or(0);
                out.put(first as u32, TOKEN_BITS);
                out.put(last as u32, TOKEN_BITS);
                out.put(*largest as u32, TOKEN_BITS);
                for (i, &f) in freq.iter().enumerate().take(last + 1).skip(first) {
                    if i == *largest {
                        continue;
                    }
                    let f = f as u32;
                    let bl = 32 - f.leading_zeros();
                    out.put(bl, 4);
                    if bl > 1 {
                        let nm = (bl - 1).min(3);
                        out.put((f >> (bl - 1 - nm)) & ((1 << nm) - 1), nm);
                    }
                }
            }
        }
    }
}

/// Read what [`write_tables`] wrote; an invalid table is an error.
pub fn read_tables(input: &mut BitReader, n: usize) -> Result<Vec<Option<Table>>, &'static str> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if input.get(1) == 0 {
            out.push(None);
            continue;
        }
        let first = input.get(TOKEN_BITS) as usize;
        let last = input.get(TOKEN_BITS) as usize;
        let largest = input.get(TOKEN_BITS) as usize;
        if first > last || largest < first || largest > last || last >= N_TOKENS {
            return Err("bad frequency table range");
        }
        let mut freq = [0u16; N_TOKENS];
        let mut sum = 0u32;
        for (i, slot) in freq.iter_mut().enumerate().take(last + 1).skip(first) {
            if i == largest {
                continue;
            }
            let bl = input.get(4);
            let f = if bl <= 1 {
                bl
            } else {
                if bl > PROB_BITS {
                    return Err("frequency out of range");
                }
                let nm = (bl - 1).min(3);
                let m = input.get(nm);
                ((1 << nm) | m) << (bl - 1 - nm)
            };
            sum += f;
            *slot = f as u16;
        }
        if sum >= PROB_SCALE {
            return Err("frequencies exceed the table scale");
        }
        freq[largest] = (PROB_SCALE - sum) as u16;
        if input.past_end() {
            return Err("frequency tables are truncated");
        }
        out.push(Some(Table::from_freq(freq)));
    }
    Ok(out)
}

/// Builds a table from normalised frequencies (encoder side).
pub fn table(freq: &[u16; N_TOKENS]) -> Table {
    Table::from_freq(*freq)
}

/// A symbol's encoder parameters: start, frequency and ⌈2^44 / freq⌉, with
/// which ⌊x / freq⌋ = ⌊x · rcp / 2^44⌋ for every x < 2^32 (the error
/// x · (rcp − 2^44/freq) / 2^44 < 2^-12 ≤ 1/freq cannot cross an integer).
#[derive(Clone, Copy, Default)]
pub struct EncSymbol {
    pub rcp: u64,
    pub freq: u32,
    pub start: u32,
}

impl Table {
    /// The encoder parameters of every token.
    pub fn enc_symbols(&self) -> [EncSymbol; N_TOKENS] {
        let mut out = [EncSymbol::default(); N_TOKENS];
        for (t, o) in out.iter_mut().enumerate() {
            let f = self.freq[t] as u64;
            if f > 0 {
                *o = EncSymbol {
                    rcp: (1u64 << 44).div_ceil(f),
                    freq: f as u32,
                    start: self.cum[t] as u32,
                };
            }
        }
        out
    }
}

/// rANS encoder with two interleaved states (symbol i uses state i mod 2,
/// so consecutive symbols do not wait on each other) sharing one word
/// stream. Symbols are pushed in reverse order; `finish` returns the bytes
/// in decoding order.
pub struct RansEncoder {
    state: [u32; 2],
    /// Words in reverse order of reading.
    rev: Vec<u16>,
    len: usize,
}

impl RansEncoder {
    /// An encoder for at most `symbols` symbols.
    pub fn new(symbols: usize) -> Self {
        RansEncoder {
            state: [RANS_L; 2],
            rev: vec![0; symbols + 4],
            len: 0,
        }
    }

    /// Push symbol number `index` (symbols must come in decreasing index
    /// order), coded with `sym` (see [`EncSymbol`]).
    #[inline(always)]
    pub fn put(&mut self, index: usize, sym: &EncSymbol) {
        let s = &mut self.state[index & 1];
        // The state stays in [RANS_L, 2^32): at most one 16-bit word out.
        // x_max is 2^32 when freq = PROB_SCALE: then no word is ever due.
        let x_max = (((RANS_L >> PROB_BITS) as u64) << 16) * sym.freq as u64;
        let mut x = *s;
        let out = (x as u64 >= x_max) as usize;
        if self.len >= self.rev.len() {
            self.rev.resize(self.len + 64, 0);
        }
        self.rev[self.len] = x as u16;
        self.len += out;
        x >>= 16 * out as u32;
        // x / freq by a multiply (exact, see EncSymbol).
        let q = ((x as u128 * sym.rcp as u128) >> 44) as u32;
        *s = (q << PROB_BITS) + (x - q * sym.freq) + sym.start;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.rev.truncate(self.len);
        let [a, b] = self.state;
        self.rev
            .extend_from_slice(&[b as u16, (b >> 16) as u16, a as u16, (a >> 16) as u16]);
        let mut out = Vec::with_capacity(self.rev.len() * 2);
        for w in self.rev.iter().rev() {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }
}

/// The decoding tables of a tile: per table, the token of every slot and
/// the packed frequency (high 16 bits) and start (low 16 bits) of every
/// token, and per context the table it uses. Contexts without a table
/// point to a spare one whose use marks the stream as corrupt.
pub struct DecodeTables {
    groups: Vec<GroupTable>,
    ctx_table: [u32; N_CTX],
    spare: u32,
}

/// One table's slots and tokens, side by side for one bounds check.
#[derive(Clone)]
struct GroupTable {
    slots: [u8; PROB_SCALE as usize],
    freq_start: [u32; 256],
}

impl DecodeTables {
    /// `tables[g]` is group g's table (None: no table sent); `group_of`
    /// maps contexts to groups.
    pub fn new(tables: &[Option<Table>], group_of: &[u16; N_CTX]) -> Self {
        let spare = tables.len() as u32;
        let mut groups = vec![
            GroupTable {
                slots: [0; PROB_SCALE as usize],
                freq_start: [0; 256],
            };
            tables.len() + 1
        ];
        for (g, t) in tables.iter().enumerate() {
            if let Some(t) = t {
                for tok in 0..N_TOKENS {
                    let (c, f) = (t.cum[tok] as usize, t.freq[tok] as usize);
                    groups[g].slots[c..c + f].fill(tok as u8);
                    groups[g].freq_start[tok] = ((f as u32) << 16) | c as u32;
                }
            }
        }
        // The spare table: token 0 at every slot, a valid distribution.
        groups[spare as usize].freq_start[0] = PROB_SCALE << 16;
        let ctx_table = group_of.map(|g| match tables.get(g as usize) {
            Some(Some(_)) => g as u32,
            _ => spare,
        });
        DecodeTables {
            groups,
            ctx_table,
            spare,
        }
    }
}

/// rANS decoder over a slice, two interleaved states (see
/// [`RansEncoder`]); words past the end read as zero and make
/// [`RansDecoder::overrun`] true.
pub struct RansDecoder<'a> {
    /// The state of this symbol, then of the next.
    state: u32,
    next: u32,
    bytes: &'a [u8],
    pos: usize,
    /// Whether a context without a table was used (a corrupt stream).
    pub bad_context: bool,
}

impl<'a> RansDecoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        let mut d = RansDecoder {
            state: 0,
            next: 0,
            bytes,
            pos: 0,
            bad_context: false,
        };
        let mut init = [0u32; 2];
        for s in init.iter_mut() {
            let hi = d.word();
            let lo = d.word();
            *s = (hi << 16) | lo;
        }
        [d.state, d.next] = init;
        if d.state < RANS_L || d.next < RANS_L {
            // No encoder ends below RANS_L; starting there keeps every later
            // state ≥ RANS_L, so each renormalisation reads at most a word.
            d.pos = bytes.len() + 2;
            d.state = RANS_L;
            d.next = RANS_L;
        }
        d
    }

    /// The word at the read position, 0 past the end (the position still
    /// advances, so the overrun shows).
    #[inline(always)]
    fn word(&mut self) -> u32 {
        let w = match self.bytes.get(self.pos..self.pos + 2) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]) as u32,
            None => 0,
        };
        self.pos += 2;
        w
    }

    /// Whether words past the end were read.
    pub fn overrun(&self) -> bool {
        self.pos > self.bytes.len()
    }

    /// Decode one token in context `ctx`.
    #[inline(always)]
    pub fn get(&mut self, t: &DecodeTables, ctx: usize) -> u32 {
        let g = t.ctx_table[ctx];
        self.bad_context |= g == t.spare;
        let table = &t.groups[g as usize];
        let state = self.state;
        let slot = state & (PROB_SCALE - 1);
        let token = table.slots[slot as usize] as usize;
        let fs = table.freq_start[token];
        let mut x = (fs >> 16) * (state >> PROB_BITS) + slot - (fs & 0xffff);
        // Branch-free renormalisation: a word is read when the state fell
        // below RANS_L (about half the symbols, at random).
        let need = (x < RANS_L) as u32;
        let w = match self.bytes.get(self.pos..self.pos + 2) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]) as u32,
            None => 0,
        };
        x = (x << (need * 16)) | (w & need.wrapping_neg());
        self.pos += 2 * need as usize;
        self.state = self.next;
        self.next = x;
        token as u32
    }

    /// A valid stream ends with both states in the encoder's initial state
    /// and every byte read.
    pub fn finished_cleanly(&self) -> bool {
        self.state == RANS_L && self.next == RANS_L && self.pos == self.bytes.len()
    }
}
