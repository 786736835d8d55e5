//! The entropy-coding layer of MIXPRED_1: static per-context frequency
//! tables, a byte-wise rANS coder, and a raw-bit stream beside it.
//!
//! Why static tables and rANS: decoding must be about as fast as Rice, and
//! a table-driven rANS decode is one lookup, one multiply and a rare byte
//! read per symbol. The encoder knows the whole tile, so it counts the
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
/// The rANS state stays in [RANS_L, RANS_L << 8).
const RANS_L: u32 = 1 << 23;

/// Tokens per context (the hybrid-integer alphabet, see `model.rs`).
pub const N_TOKENS: usize = 128;

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

/// A bit writer, least significant bit first, 64-bit buffered.
#[derive(Default)]
pub struct BitWriter {
    pub bytes: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    pub fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            bytes: Vec::with_capacity(bytes),
            acc: 0,
            n: 0,
        }
    }

    #[inline(always)]
    pub fn put(&mut self, value: u32, bits: u32) {
        debug_assert!(bits <= 32);
        if bits == 0 {
            return;
        }
        self.acc |= ((value as u64) & ((1u64 << bits) - 1)) << self.n;
        self.n += bits;
        if self.n >= 32 {
            self.bytes
                .extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    /// Bits written so far.
    pub fn bits(&self) -> u64 {
        self.bytes.len() as u64 * 8 + self.n as u64
    }

    pub fn finish(mut self) -> Vec<u8> {
        while self.n > 0 {
            self.bytes.push(self.acc as u8);
            self.acc >>= 8;
            self.n = self.n.saturating_sub(8);
        }
        self.bytes
    }
}

/// A bit reader over a slice; reading past the end yields zeros and sets
/// `overrun`.
pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    pub overrun: bool,
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader {
            bytes,
            pos: 0,
            acc: 0,
            n: 0,
            overrun: false,
        }
    }

    #[inline(always)]
    pub fn get(&mut self, bits: u32) -> u32 {
        if bits == 0 {
            return 0;
        }
        if self.n < bits {
            self.refill();
        }
        let v = (self.acc & ((1u64 << bits) - 1)) as u32;
        self.acc >>= bits;
        self.n -= bits;
        v
    }

    #[inline(never)]
    fn refill(&mut self) {
        while self.n <= 56 {
            let b = match self.bytes.get(self.pos) {
                Some(&b) => b,
                None => {
                    // Allow the padding of the last byte; count real overruns.
                    if self.pos >= self.bytes.len() + 8 {
                        self.overrun = true;
                    }
                    0
                }
            };
            self.pos += 1;
            self.acc |= (b as u64) << self.n;
            self.n += 8;
        }
    }

    /// Whether more bits were consumed than the slice holds.
    pub fn past_end(&self) -> bool {
        let consumed_bits = self.pos as u64 * 8 - self.n as u64;
        self.overrun || consumed_bits > self.bytes.len() as u64 * 8
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
                out.put(first as u32, 7);
                out.put(last as u32, 7);
                out.put(*largest as u32, 7);
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
        let first = input.get(7) as usize;
        let last = input.get(7) as usize;
        let largest = input.get(7) as usize;
        if first > last || largest < first || largest > last {
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

/// rANS encoder: symbols are pushed in reverse order; `finish` returns the
/// bytes in decoding order.
pub struct RansEncoder {
    state: u32,
    rev: Vec<u8>,
}

impl RansEncoder {
    pub fn new(capacity: usize) -> Self {
        RansEncoder {
            state: RANS_L,
            rev: Vec::with_capacity(capacity),
        }
    }

    #[inline(always)]
    pub fn put(&mut self, start: u32, freq: u32) {
        let x_max = ((RANS_L >> PROB_BITS) << 8) * freq;
        let mut x = self.state;
        while x >= x_max {
            self.rev.push(x as u8);
            x >>= 8;
        }
        self.state = ((x / freq) << PROB_BITS) + (x % freq) + start;
    }

    pub fn finish(mut self) -> Vec<u8> {
        let x = self.state;
        self.rev
            .extend_from_slice(&[(x) as u8, (x >> 8) as u8, (x >> 16) as u8, (x >> 24) as u8]);
        self.rev.reverse();
        self.rev
    }
}

/// A context's decoding table: the token of every slot.
pub struct DecodeTable {
    pub slot_token: Box<[u8; PROB_SCALE as usize]>,
    pub table: Table,
}

impl DecodeTable {
    pub fn new(table: Table) -> Self {
        let mut slot_token = Box::new([0u8; PROB_SCALE as usize]);
        for t in 0..N_TOKENS {
            let (c, f) = (table.cum[t] as usize, table.freq[t] as usize);
            slot_token[c..c + f].fill(t as u8);
        }
        DecodeTable { slot_token, table }
    }
}

/// rANS decoder over a slice; bytes past the end read as zero and set
/// `overrun`.
pub struct RansDecoder<'a> {
    state: u32,
    bytes: &'a [u8],
    pos: usize,
    pub overrun: bool,
}

impl<'a> RansDecoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        let mut d = RansDecoder {
            state: 0,
            bytes,
            pos: 0,
            overrun: false,
        };
        for _ in 0..4 {
            d.state = (d.state << 8) | d.byte() as u32;
        }
        if d.state < RANS_L {
            // No encoder ends below RANS_L; starting there keeps every later
            // state ≥ RANS_L, so each renormalisation reads at most 3 bytes.
            d.overrun = true;
            d.state = RANS_L;
        }
        d
    }

    #[inline(always)]
    fn byte(&mut self) -> u8 {
        let b = match self.bytes.get(self.pos) {
            Some(&b) => b,
            None => {
                self.overrun = true;
                0
            }
        };
        self.pos += 1;
        b
    }

    #[inline(always)]
    pub fn get(&mut self, t: &DecodeTable) -> usize {
        let slot = self.state & (PROB_SCALE - 1);
        let token = t.slot_token[slot as usize] as usize;
        let (f, c) = (t.table.freq[token] as u32, t.table.cum[token] as u32);
        let mut x = f * (self.state >> PROB_BITS) + slot - c;
        while x < RANS_L {
            x = (x << 8) | self.byte() as u32;
        }
        self.state = x;
        token
    }

    /// A valid stream ends in the encoder's initial state with every byte read.
    pub fn finished_cleanly(&self) -> bool {
        !self.overrun && self.state == RANS_L && self.pos == self.bytes.len()
    }
}
