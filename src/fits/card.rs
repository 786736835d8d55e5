//! One 80-character header card (keyword record).
//!
//! A card keeps its original 80 bytes: cards we only carry through (COMMENT,
//! HISTORY, HIERARCH, CONTINUE, anything we do not interpret) are written back
//! exactly as read, so compressing and decompressing never rewrites an
//! astronomer's header. Values are parsed on demand.

use std::fmt;

pub const CARD_LEN: usize = 80;

/// A parsed card value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Logical(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// A value field that is present but empty (undefined value).
    Undefined,
    /// Anything else (complex numbers, malformed values): kept verbatim.
    Other(String),
}

#[derive(Clone, PartialEq, Eq)]
pub struct Card {
    bytes: [u8; CARD_LEN],
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Card({:?})", self.text().trim_end())
    }
}

impl Card {
    /// A card from 80 raw bytes. Bytes outside printable ASCII are replaced
    /// by '?' so that `text()` is always valid ASCII.
    pub fn from_bytes(raw: &[u8]) -> Card {
        let mut bytes = [b' '; CARD_LEN];
        for (dst, &src) in bytes.iter_mut().zip(raw.iter()) {
            *dst = if (0x20..=0x7e).contains(&src) {
                src
            } else {
                b'?'
            };
        }
        Card { bytes }
    }

    /// A card from text, padded with blanks (or cut) to 80 characters.
    pub fn from_text(text: &str) -> Card {
        Card::from_bytes(text.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; CARD_LEN] {
        &self.bytes
    }

    pub fn text(&self) -> &str {
        // from_bytes keeps only printable ASCII.
        std::str::from_utf8(&self.bytes).unwrap_or("")
    }

    fn is_hierarch(&self) -> bool {
        self.bytes.starts_with(b"HIERARCH ")
    }

    /// The keyword: the first 8 columns trimmed, or for HIERARCH cards the
    /// full name before '=' (e.g. "HIERARCH ESO DET CHIP").
    pub fn keyword(&self) -> &str {
        if self.is_hierarch() {
            let text = self.text();
            match text.find('=') {
                Some(eq) => text[..eq].trim_end(),
                None => text.trim_end(),
            }
        } else {
            self.text()[..8].trim_end()
        }
    }

    /// Whether the card has a value indicator ("= " in columns 9–10, or a
    /// '=' in a HIERARCH card).
    pub fn has_value(&self) -> bool {
        if self.is_hierarch() {
            self.text().contains('=')
        } else {
            &self.bytes[8..10] == b"= "
        }
    }

    fn value_field(&self) -> Option<&str> {
        if !self.has_value() {
            return None;
        }
        let text = self.text();
        if self.is_hierarch() {
            text.find('=').map(|eq| &text[eq + 1..])
        } else {
            Some(&text[10..])
        }
    }

    /// The value and the comment text after it.
    fn split_value(&self) -> Option<(Value, Option<&str>)> {
        let field = self.value_field()?;
        let trimmed = field.trim_start();
        if let Some(rest) = trimmed.strip_prefix('\'') {
            // A quoted string: '' inside stands for one quote.
            let mut out = String::new();
            let mut chars = rest.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if let Some(&(_, '\'')) = chars.peek() {
                        out.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    out.push(c);
                }
            }
            let after = end.map(|e| &rest[e..]).unwrap_or("");
            let comment = after.find('/').map(|i| after[i + 1..].trim());
            // Trailing blanks in a FITS string are not significant.
            let value = Value::Text(out.trim_end().to_string());
            return Some((value, comment));
        }
        let (raw, comment) = match trimmed.find('/') {
            Some(i) => (&trimmed[..i], Some(trimmed[i + 1..].trim())),
            None => (trimmed, None),
        };
        let raw = raw.trim();
        let value = if raw.is_empty() {
            Value::Undefined
        } else if raw == "T" {
            Value::Logical(true)
        } else if raw == "F" {
            Value::Logical(false)
        } else if let Ok(i) = raw.parse::<i64>() {
            Value::Int(i)
        } else if let Ok(f) = raw.replace(['D', 'd'], "E").parse::<f64>() {
            Value::Float(f)
        } else {
            Value::Other(raw.to_string())
        };
        Some((value, comment))
    }

    pub fn value(&self) -> Option<Value> {
        self.split_value().map(|(v, _)| v)
    }

    pub fn comment(&self) -> Option<String> {
        self.split_value()
            .and_then(|(_, c)| c.map(|s| s.trim_end().to_string()))
    }

    /// A keyword card with a value already formatted as FITS text.
    fn with_formatted(keyword: &str, value: &str, comment: Option<&str>) -> Card {
        let mut text = format!("{keyword:<8}= {value}");
        if let Some(c) = comment {
            if !c.is_empty() {
                text.push_str(" / ");
                text.push_str(c);
            }
        }
        Card::from_text(&text)
    }

    pub fn new_int(keyword: &str, value: i64, comment: Option<&str>) -> Card {
        Card::with_formatted(keyword, &format!("{value:>20}"), comment)
    }

    pub fn new_logical(keyword: &str, value: bool, comment: Option<&str>) -> Card {
        Card::with_formatted(
            keyword,
            &format!("{:>20}", if value { "T" } else { "F" }),
            comment,
        )
    }

    /// A floating-point value written so that it reads back to the same f64.
    pub fn new_float(keyword: &str, value: f64, comment: Option<&str>) -> Card {
        Card::with_formatted(keyword, &format!("{:>20}", format_float(value)), comment)
    }

    pub fn new_string(keyword: &str, value: &str, comment: Option<&str>) -> Card {
        let escaped = value.replace('\'', "''");
        let quoted = format!("'{escaped:<8}'");
        let quoted = format!("{quoted:<20}");
        Card::with_formatted(keyword, &quoted, comment)
    }

    /// A card with a new keyword name and the rest unchanged (used to turn
    /// BITPIX into ZBITPIX and back). Only for standard 8-character keywords.
    pub fn renamed(&self, keyword: &str) -> Card {
        let mut bytes = self.bytes;
        let name = format!("{keyword:<8}");
        bytes[..8].copy_from_slice(&name.as_bytes()[..8]);
        Card { bytes }
    }
}

/// Shortest text that parses back to the same f64, in FITS style (with a
/// decimal point or exponent so readers see a real number).
pub fn format_float(value: f64) -> String {
    if value.is_finite() && value == value.trunc() && value.abs() < 1e15 {
        return format!("{value:.1}");
    }
    let s = format!("{value:E}");
    // Rust writes "1.5E-7"; FITS readers accept that.
    if s.len() <= 20 {
        s
    } else {
        format!("{value:.16E}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_comments() {
        let c = Card::from_text("NAXIS1  =                  536 / length of axis");
        assert_eq!(c.keyword(), "NAXIS1");
        assert_eq!(c.value(), Some(Value::Int(536)));
        assert_eq!(c.comment().as_deref(), Some("length of axis"));
        let c = Card::from_text("OBJECT  = 'it''s / here'       / a comment");
        assert_eq!(c.value(), Some(Value::Text("it's / here".into())));
        assert_eq!(c.comment().as_deref(), Some("a comment"));
        let c = Card::from_text("EXPTIME =              1.5D+02");
        assert_eq!(c.value(), Some(Value::Float(150.0)));
        let c = Card::from_text("SIMPLE  =                    T");
        assert_eq!(c.value(), Some(Value::Logical(true)));
        let c = Card::from_text("HIERARCH ESO DET CHIP NAME = 'CCD-44' / chip");
        assert_eq!(c.keyword(), "HIERARCH ESO DET CHIP NAME");
        assert_eq!(c.value(), Some(Value::Text("CCD-44".into())));
        let c = Card::from_text("COMMENT   = not a value");
        assert_eq!(c.value(), None);
    }

    #[test]
    fn formatted_cards_read_back() {
        for v in [0.0, 1.5, -2.25e-7, 1e300, 123456789.125, f64::MIN_POSITIVE] {
            let c = Card::new_float("ZZERO", v, None);
            assert_eq!(c.value(), Some(Value::Float(v)), "{}", c.text());
        }
        let c = Card::new_string("EXTNAME", "SCI", Some("name"));
        assert_eq!(&c.text()[..30], "EXTNAME = 'SCI     '          ");
        let c = Card::new_int("BITPIX", -32, None);
        assert_eq!(c.text().trim_end(), "BITPIX  =                  -32");
    }
}
