//! The binary table that holds a compressed image (FITS 4.0 §10.1).
//!
//! One row per tile. COMPRESSED_DATA is a variable-length array column whose
//! bytes live in the heap; GZIP_COMPRESSED_DATA holds tiles that could not be
//! quantized and were stored losslessly instead; ZSCALE, ZZERO and ZBLANK hold
//! the per-tile quantization parameters. Reading checks every descriptor
//! against the heap before slicing, so a damaged descriptor is an error
//! naming the tile, never an out-of-bounds read.

use crate::error::{Context, Error, Result};
use crate::fits::{Card, Header};

/// What one tile contributes to the table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TileRow {
    /// Codec output for COMPRESSED_DATA (empty when the tile is stored in
    /// GZIP_COMPRESSED_DATA instead).
    pub compressed: Vec<u8>,
    /// Losslessly stored tile (GZIP_1 of the original pixels), or empty.
    pub gzip_fallback: Vec<u8>,
    /// Raw big-endian pixels for UNCOMPRESSED_DATA (NOCOMPRESS), or empty.
    pub uncompressed: Vec<u8>,
    pub zscale: f64,
    pub zzero: f64,
}

/// Which optional columns the table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Element type of COMPRESSED_DATA ('B', or 'I' for PLIO_1).
    pub heap_element: char,
    pub gzip_fallback: bool,
    /// Element type of an UNCOMPRESSED_DATA column, where NOCOMPRESS puts
    /// the pixels (cfitsio reads them from there, not COMPRESSED_DATA).
    pub uncompressed_element: Option<char>,
    pub scale_zero: bool,
    /// Per-tile ZBLANK column (we write ZBLANK as a keyword instead, as
    /// cfitsio does; reading accepts both).
    pub zblank_column: bool,
}

fn elem_size(code: char) -> Option<usize> {
    Some(match code {
        'L' | 'B' | 'A' | 'X' => 1,
        'I' => 2,
        'J' | 'E' => 4,
        'K' | 'D' | 'C' => 8,
        'M' => 16,
        _ => return None,
    })
}

/// Build the table: the structural cards (XTENSION ... TFORMn) and the data
/// unit (rows followed by the heap).
pub fn write_table(rows: &[TileRow], layout: Layout) -> (Vec<Card>, Vec<u8>) {
    let elem = elem_size(layout.heap_element).unwrap_or(1);
    let heap_len: usize = rows
        .iter()
        .map(|r| r.compressed.len() + r.gzip_fallback.len() + r.uncompressed.len())
        .sum();
    // 64-bit descriptors only when the heap needs them, as cfitsio does.
    let wide = heap_len > i32::MAX as usize;
    let (desc_code, desc_len) = if wide { ('Q', 16) } else { ('P', 8) };
    let max_of = |f: &dyn Fn(&TileRow) -> usize| rows.iter().map(f).max().unwrap_or(0);
    let max_main = max_of(&|r| r.compressed.len() / elem);
    let max_gzip = max_of(&|r| r.gzip_fallback.len());
    let raw_elem = layout.uncompressed_element.and_then(elem_size).unwrap_or(1);
    let max_raw = max_of(&|r| r.uncompressed.len() / raw_elem);

    let mut columns: Vec<(&str, String, usize)> = vec![(
        "COMPRESSED_DATA",
        format!("1{desc_code}{}({max_main})", layout.heap_element),
        desc_len,
    )];
    if layout.gzip_fallback {
        columns.push((
            "GZIP_COMPRESSED_DATA",
            format!("1{desc_code}B({max_gzip})"),
            desc_len,
        ));
    }
    if let Some(e) = layout.uncompressed_element {
        columns.push((
            "UNCOMPRESSED_DATA",
            format!("1{desc_code}{e}({max_raw})"),
            desc_len,
        ));
    }
    if layout.scale_zero {
        columns.push(("ZSCALE", "1D".into(), 8));
        columns.push(("ZZERO", "1D".into(), 8));
    }
    let row_len: usize = columns.iter().map(|c| c.2).sum();

    // Rows first, then the heap, in one buffer: descriptors point at heap
    // offsets computed as we go, and each tile's bytes are copied once.
    let table_len = row_len * rows.len();
    let mut table = Vec::with_capacity(table_len + heap_len);
    let mut offset = 0u64;
    let mut put_descriptor = |table: &mut Vec<u8>, len: usize, elem: usize| {
        let count = (len / elem) as u64;
        if wide {
            table.extend_from_slice(&count.to_be_bytes());
            table.extend_from_slice(&offset.to_be_bytes());
        } else {
            table.extend_from_slice(&(count as u32).to_be_bytes());
            table.extend_from_slice(&(offset as u32).to_be_bytes());
        }
        offset += len as u64;
    };
    for row in rows {
        put_descriptor(&mut table, row.compressed.len(), elem);
        if layout.gzip_fallback {
            put_descriptor(&mut table, row.gzip_fallback.len(), 1);
        }
        if layout.uncompressed_element.is_some() {
            put_descriptor(&mut table, row.uncompressed.len(), raw_elem);
        }
        if layout.scale_zero {
            table.extend_from_slice(&row.zscale.to_be_bytes());
            table.extend_from_slice(&row.zzero.to_be_bytes());
        }
    }
    for row in rows {
        table.extend_from_slice(&row.compressed);
        if layout.gzip_fallback {
            table.extend_from_slice(&row.gzip_fallback);
        }
        if layout.uncompressed_element.is_some() {
            table.extend_from_slice(&row.uncompressed);
        }
    }
    let pcount = heap_len;

    let mut cards = vec![
        Card::new_string("XTENSION", "BINTABLE", Some("binary table extension")),
        Card::new_int("BITPIX", 8, Some("8-bit bytes")),
        Card::new_int("NAXIS", 2, Some("2-dimensional binary table")),
        Card::new_int("NAXIS1", row_len as i64, Some("width of table in bytes")),
        Card::new_int("NAXIS2", rows.len() as i64, Some("number of rows in table")),
        Card::new_int("PCOUNT", pcount as i64, Some("size of special data area")),
        Card::new_int("GCOUNT", 1, Some("one data group (required keyword)")),
        Card::new_int(
            "TFIELDS",
            columns.len() as i64,
            Some("number of fields in each row"),
        ),
    ];
    for (i, (name, form, _)) in columns.iter().enumerate() {
        let n = i + 1;
        cards.push(Card::new_string(
            &format!("TTYPE{n}"),
            name,
            Some(&format!("label for field {n:>3}")),
        ));
        cards.push(Card::new_string(
            &format!("TFORM{n}"),
            form,
            Some("data format of field"),
        ));
    }
    (cards, table)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// A variable-length array descriptor (P: 32-bit, Q: 64-bit).
    Var { wide: bool, elem: char },
    /// A fixed-width field of `repeat` elements.
    Fixed { elem: char, repeat: usize },
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    offset: usize,
    form: Form,
}

fn parse_tform(tform: &str) -> Option<(Form, usize)> {
    let t = tform.trim();
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    let repeat: usize = if digits == 0 {
        1
    } else {
        t[..digits].parse().ok()?
    };
    let mut rest = t[digits..].chars();
    let code = rest.next()?;
    match code {
        'P' | 'Q' => {
            let elem = rest.next()?;
            elem_size(elem)?;
            let wide = code == 'Q';
            let width = if wide { 16 } else { 8 };
            Some((Form::Var { wide, elem }, repeat.min(1) * width))
        }
        _ => {
            let size = elem_size(code)?;
            let width = if code == 'X' {
                repeat.div_ceil(8)
            } else {
                repeat.checked_mul(size)?
            };
            Some((Form::Fixed { elem: code, repeat }, width))
        }
    }
}

/// A compressed image's table, parsed and bounds-checked, borrowing the
/// HDU's data unit.
#[derive(Debug)]
pub struct CompressedTable<'a> {
    rows: &'a [u8],
    heap: &'a [u8],
    row_len: usize,
    n_rows: usize,
    columns: Vec<Column>,
    context: Context,
}

impl<'a> CompressedTable<'a> {
    pub fn parse(header: &Header, data: &'a [u8], context: &Context) -> Result<Self> {
        let bad = |m: String| Error::malformed(context.clone(), m);
        let get = |key: &str| -> Result<usize> {
            header
                .get_int(key)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| bad(format!("missing or invalid {key}")))
        };
        let row_len = get("NAXIS1")?;
        let n_rows = get("NAXIS2")?;
        let pcount = header.get_int("PCOUNT").unwrap_or(0);
        let pcount = usize::try_from(pcount).map_err(|_| bad("negative PCOUNT".into()))?;
        let table_len = row_len
            .checked_mul(n_rows)
            .ok_or_else(|| bad("table size overflows".into()))?;
        if table_len > data.len() {
            return Err(bad(format!(
                "table of {table_len} bytes does not fit in a data unit of {} bytes",
                data.len()
            )));
        }
        let theap = match header.get_int("THEAP") {
            Some(v) => usize::try_from(v).map_err(|_| bad("negative THEAP".into()))?,
            None => table_len,
        };
        if theap < table_len {
            return Err(bad(format!("THEAP = {theap} points inside the table")));
        }
        let heap_end = table_len
            .checked_add(pcount)
            .ok_or_else(|| bad("PCOUNT overflows".into()))?
            .min(data.len());
        let heap = data.get(theap..heap_end).unwrap_or(&[]);
        let n_fields = get("TFIELDS")?;
        if n_fields > 999 {
            return Err(bad(format!("TFIELDS = {n_fields}")));
        }
        let mut columns = Vec::with_capacity(n_fields);
        let mut offset = 0usize;
        for i in 1..=n_fields {
            let tform = header
                .get_string(&format!("TFORM{i}"))
                .ok_or_else(|| bad(format!("missing TFORM{i}")))?;
            let (form, width) =
                parse_tform(&tform).ok_or_else(|| bad(format!("invalid TFORM{i} = '{tform}'")))?;
            let name = header
                .get_string(&format!("TTYPE{i}"))
                .unwrap_or_default()
                .trim()
                .to_ascii_uppercase();
            columns.push(Column { name, offset, form });
            offset = offset
                .checked_add(width)
                .ok_or_else(|| bad("row width overflows".into()))?;
        }
        if offset > row_len {
            return Err(bad(format!(
                "columns need {offset} bytes per row but NAXIS1 = {row_len}"
            )));
        }
        Ok(CompressedTable {
            rows: &data[..table_len],
            heap,
            row_len,
            n_rows,
            columns,
            context: context.clone(),
        })
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Index of the column with this TTYPE.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The element type of a variable-length column ('B', 'I', ...).
    pub fn var_element(&self, column: usize) -> Option<char> {
        match self.columns.get(column)?.form {
            Form::Var { elem, .. } => Some(elem),
            Form::Fixed { .. } => None,
        }
    }

    fn field(&self, row: usize, column: usize, len: usize) -> Result<&'a [u8]> {
        let c = &self.columns[column];
        let start = row * self.row_len + c.offset;
        self.rows.get(start..start + len).ok_or_else(|| {
            Error::malformed(self.context.clone().tile(row + 1), "row outside the table")
        })
    }

    /// The heap bytes of a variable-length array cell.
    pub fn var_bytes(&self, row: usize, column: usize) -> Result<&'a [u8]> {
        let ctx = || self.context.clone().tile(row + 1);
        let Form::Var { wide, elem } = self.columns[column].form else {
            return Err(Error::malformed(
                ctx(),
                "column is not a variable-length array",
            ));
        };
        let (count, offset) = if wide {
            let f = self.field(row, column, 16)?;
            (
                u64::from_be_bytes(f[0..8].try_into().unwrap_or_default()),
                u64::from_be_bytes(f[8..16].try_into().unwrap_or_default()),
            )
        } else {
            let f = self.field(row, column, 8)?;
            let count = i32::from_be_bytes(f[0..4].try_into().unwrap_or_default());
            let offset = i32::from_be_bytes(f[4..8].try_into().unwrap_or_default());
            if count < 0 || offset < 0 {
                return Err(Error::malformed(ctx(), "negative heap descriptor"));
            }
            (count as u64, offset as u64)
        };
        let size = elem_size(elem).unwrap_or(1) as u64;
        let end = count
            .checked_mul(size)
            .and_then(|n| n.checked_add(offset))
            .filter(|&e| e <= self.heap.len() as u64)
            .ok_or_else(|| {
                Error::malformed(
                    ctx(),
                    format!(
                        "heap descriptor ({count} elements at offset {offset}) points outside the heap of {} bytes",
                        self.heap.len()
                    ),
                )
            })?;
        Ok(&self.heap[offset as usize..end as usize])
    }

    /// A numeric scalar cell as f64 (ZSCALE, ZZERO, ZBLANK columns).
    pub fn scalar(&self, row: usize, column: usize) -> Result<f64> {
        let Form::Fixed { elem, .. } = self.columns[column].form else {
            return Err(Error::malformed(
                self.context.clone().tile(row + 1),
                "column is not a scalar",
            ));
        };
        let size = elem_size(elem).unwrap_or(1);
        let f = self.field(row, column, size)?;
        Ok(match elem {
            'B' => f64::from(f[0]),
            'I' => f64::from(i16::from_be_bytes([f[0], f[1]])),
            'J' => f64::from(i32::from_be_bytes(f[..4].try_into().unwrap_or_default())),
            'K' => i64::from_be_bytes(f[..8].try_into().unwrap_or_default()) as f64,
            'E' => f64::from(f32::from_be_bytes(f[..4].try_into().unwrap_or_default())),
            'D' => f64::from_be_bytes(f[..8].try_into().unwrap_or_default()),
            _ => {
                return Err(Error::malformed(
                    self.context.clone().tile(row + 1),
                    format!("scalar column of type {elem}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_table_reads_back() {
        let rows = vec![
            TileRow {
                compressed: vec![1, 2, 3],
                gzip_fallback: vec![],
                uncompressed: vec![],
                zscale: 0.5,
                zzero: 10.0,
            },
            TileRow {
                compressed: vec![],
                gzip_fallback: vec![9, 9],
                uncompressed: vec![],
                zscale: 1.5,
                zzero: -1.0,
            },
        ];
        let layout = Layout {
            heap_element: 'B',
            gzip_fallback: true,
            uncompressed_element: None,
            scale_zero: true,
            zblank_column: false,
        };
        let (cards, data) = write_table(&rows, layout);
        let header = Header::from_cards(cards);
        let t = CompressedTable::parse(&header, &data, &Context::default()).unwrap();
        let c = t.column("COMPRESSED_DATA").unwrap();
        let g = t.column("GZIP_COMPRESSED_DATA").unwrap();
        let s = t.column("ZSCALE").unwrap();
        assert_eq!(t.var_bytes(0, c).unwrap(), &[1, 2, 3]);
        assert_eq!(t.var_bytes(1, c).unwrap(), &[] as &[u8]);
        assert_eq!(t.var_bytes(1, g).unwrap(), &[9, 9]);
        assert_eq!(t.scalar(1, s).unwrap(), 1.5);
        assert_eq!(header.get_string("TFORM1").unwrap(), "1PB(3)");
    }

    #[test]
    fn damaged_descriptor_is_an_error() {
        let rows = vec![TileRow {
            compressed: vec![1, 2, 3],
            ..Default::default()
        }];
        let layout = Layout {
            heap_element: 'B',
            gzip_fallback: false,
            uncompressed_element: None,
            scale_zero: false,
            zblank_column: false,
        };
        let (cards, mut data) = write_table(&rows, layout);
        data[3] = 200; // count 200 > heap
        let header = Header::from_cards(cards);
        let t = CompressedTable::parse(&header, &data, &Context::default()).unwrap();
        let err = t.var_bytes(0, 0).unwrap_err().to_string();
        assert!(err.contains("tile 1"), "{err}");
    }
}
