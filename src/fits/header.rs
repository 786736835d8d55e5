//! A header: the ordered list of cards of one HDU, without its END card.
//!
//! Order is kept exactly (COMMENT and HISTORY cards stay where they were),
//! and cards are looked up by keyword. Long string values spread over
//! CONTINUE cards are joined by [`Header::get_long_string`].

use super::card::{Card, Value, CARD_LEN};
use super::BLOCK_LEN;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    cards: Vec<Card>,
    /// The fewest 2880-byte blocks [`Header::to_bytes`] writes: free space
    /// kept for keywords added later, as cfitsio keeps it (see
    /// [`Header::reserve_blocks`]).
    min_blocks: usize,
}

impl Header {
    pub fn new() -> Self {
        Header::default()
    }

    pub fn from_cards(cards: Vec<Card>) -> Self {
        Header {
            cards,
            min_blocks: 0,
        }
    }

    /// Blank cards after the last keyword: free space, not content. cfitsio
    /// treats them so (it writes new keywords over them), and so does the
    /// round-trip comparison of headers.
    pub fn trailing_blanks(&self) -> usize {
        self.cards
            .iter()
            .rev()
            .take_while(|c| c.as_bytes().iter().all(|&b| b == b' '))
            .count()
    }

    /// Drop the trailing blank cards (see [`Header::trailing_blanks`]).
    pub fn strip_trailing_blanks(&mut self) {
        let keep = self.cards.len() - self.trailing_blanks();
        self.cards.truncate(keep);
    }

    /// The cards without the trailing blanks.
    pub fn content_cards(&self) -> &[Card] {
        &self.cards[..self.cards.len() - self.trailing_blanks()]
    }

    /// Number of 2880-byte blocks this header occupies when written.
    pub fn blocks(&self) -> usize {
        (self.cards.len() + 1)
            .div_ceil(BLOCK_LEN / CARD_LEN)
            .max(self.min_blocks)
    }

    /// Write at least `blocks` blocks. When that is more than the cards
    /// need, END goes at the start of the last block and blank cards fill
    /// the space before it, as cfitsio writes a header with reserved space
    /// (`ffwend`), so a later reader sees the same free space.
    pub fn reserve_blocks(&mut self, blocks: usize) {
        self.min_blocks = blocks;
    }

    pub fn cards(&self) -> &[Card] {
        &self.cards
    }

    pub fn len(&self) -> usize {
        self.cards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }

    pub fn position(&self, keyword: &str) -> Option<usize> {
        self.cards.iter().position(|c| c.keyword() == keyword)
    }

    pub fn card(&self, keyword: &str) -> Option<&Card> {
        self.cards
            .iter()
            .find(|c| c.keyword() == keyword && c.has_value())
    }

    pub fn contains(&self, keyword: &str) -> bool {
        self.card(keyword).is_some()
    }

    pub fn value(&self, keyword: &str) -> Option<Value> {
        self.card(keyword).and_then(|c| c.value())
    }

    pub fn get_int(&self, keyword: &str) -> Option<i64> {
        match self.value(keyword)? {
            Value::Int(i) => Some(i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            _ => None,
        }
    }

    pub fn get_float(&self, keyword: &str) -> Option<f64> {
        match self.value(keyword)? {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    pub fn get_bool(&self, keyword: &str) -> Option<bool> {
        match self.value(keyword)? {
            Value::Logical(b) => Some(b),
            _ => None,
        }
    }

    pub fn get_string(&self, keyword: &str) -> Option<String> {
        match self.value(keyword)? {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// A string value joined across CONTINUE cards (the long-string
    /// convention: a value ending in '&' continues on the next card).
    pub fn get_long_string(&self, keyword: &str) -> Option<String> {
        let start = self
            .cards
            .iter()
            .position(|c| c.keyword() == keyword && c.has_value())?;
        let mut value = match self.cards[start].value()? {
            Value::Text(s) => s,
            _ => return None,
        };
        let mut next = start + 1;
        while value.ends_with('&') {
            let Some(card) = self.cards.get(next) else {
                break;
            };
            if card.keyword() != "CONTINUE" {
                break;
            }
            value.pop();
            let rest = card.text()[8..].trim_start();
            let piece = Card::from_text(&format!("X       = {rest}"));
            match piece.value() {
                Some(Value::Text(s)) => value.push_str(&s),
                _ => break,
            }
            next += 1;
        }
        Some(value)
    }

    pub fn push(&mut self, card: Card) {
        self.cards.push(card);
    }

    pub fn insert(&mut self, index: usize, card: Card) {
        let index = index.min(self.cards.len());
        self.cards.insert(index, card);
    }

    /// Replace the card with this keyword in place, or append it.
    pub fn set(&mut self, card: Card) {
        let key = card.keyword().to_string();
        match self
            .cards
            .iter()
            .position(|c| c.keyword() == key && c.has_value())
        {
            Some(i) => self.cards[i] = card,
            None => self.cards.push(card),
        }
    }

    /// Remove every valued card with this keyword; returns how many.
    pub fn remove(&mut self, keyword: &str) -> usize {
        let before = self.cards.len();
        self.cards
            .retain(|c| !(c.keyword() == keyword && c.has_value()));
        before - self.cards.len()
    }

    pub fn retain(&mut self, keep: impl FnMut(&Card) -> bool) {
        self.cards.retain(keep);
    }

    /// Serialise with an END card, padded with blanks to whole 2880-byte blocks.
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = self.blocks() * BLOCK_LEN;
        let mut out = Vec::with_capacity(len);
        for c in &self.cards {
            out.extend_from_slice(c.as_bytes());
        }
        // With reserved space, END starts the last block (cfitsio's ffwend).
        let end_at = out.len().max(len - BLOCK_LEN);
        out.resize(end_at, b' ');
        out.extend_from_slice(Card::from_text("END").as_bytes());
        out.resize(len, b' ');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_join_continue_cards() {
        let mut h = Header::new();
        h.push(Card::from_text(
            "LONGSTR = 'This is a long string that goes on and on and on&'",
        ));
        h.push(Card::from_text("CONTINUE  ' and continues here&'"));
        h.push(Card::from_text("CONTINUE  ' to the end.'"));
        h.push(Card::from_text("NEXT    =                    1"));
        assert_eq!(
            h.get_long_string("LONGSTR").unwrap(),
            "This is a long string that goes on and on and on and continues here to the end."
        );
        assert_eq!(h.to_bytes().len(), 2880);
    }

    #[test]
    fn reserved_blocks_put_end_at_the_last_block() {
        let mut h = Header::new();
        h.push(Card::new_int("A", 1, None));
        h.push(Card::from_text(""));
        assert_eq!(h.trailing_blanks(), 1);
        h.strip_trailing_blanks();
        assert_eq!(h.len(), 1);
        h.reserve_blocks(3);
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), 3 * 2880);
        assert_eq!(&bytes[2 * 2880..2 * 2880 + 3], b"END");
        assert!(bytes[80..2 * 2880].iter().all(|&b| b == b' '));
        // Fewer reserved blocks than the cards need: the cards win.
        h.reserve_blocks(0);
        assert_eq!(h.to_bytes().len(), 2880);
        assert_eq!(&h.to_bytes()[80..83], b"END");
    }

    #[test]
    fn set_replaces_in_place() {
        let mut h = Header::new();
        h.push(Card::new_int("A", 1, None));
        h.push(Card::new_int("B", 2, None));
        h.set(Card::new_int("A", 5, None));
        assert_eq!(h.position("A"), Some(0));
        assert_eq!(h.get_int("A"), Some(5));
        assert_eq!(h.remove("B"), 1);
        assert_eq!(h.len(), 1);
    }
}
