//! Translating headers between an image HDU and its compressed table.
//!
//! Compressing renames the image's structural keywords (SIMPLE, BITPIX,
//! NAXISn, ...) to their Z-prefixed forms and keeps every other card in
//! order, as cfitsio's imcomp_copy_img2comp does; decompressing undoes it.
//! The round trip gives back every non-structural card unchanged.

use crate::fits::{Card, Header};

/// Image keyword → compressed-table keyword.
fn to_compressed_name(keyword: &str) -> Option<String> {
    let fixed = match keyword {
        "SIMPLE" => "ZSIMPLE",
        "XTENSION" => "ZTENSION",
        "BITPIX" => "ZBITPIX",
        "NAXIS" => "ZNAXIS",
        "EXTEND" => "ZEXTEND",
        "BLOCKED" => "ZBLOCKED",
        "PCOUNT" => "ZPCOUNT",
        "GCOUNT" => "ZGCOUNT",
        "CHECKSUM" => "ZHECKSUM",
        "DATASUM" => "ZDATASUM",
        _ => {
            let n = keyword.strip_prefix("NAXIS")?;
            if !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()) {
                return Some(format!("ZNAXIS{n}"));
            }
            return None;
        }
    };
    Some(fixed.to_string())
}

/// Compressed-table keyword → image keyword, for the Z-copies of
/// structural keywords.
fn to_image_name(keyword: &str) -> Option<String> {
    let fixed = match keyword {
        "ZSIMPLE" => "SIMPLE",
        "ZTENSION" => "XTENSION",
        "ZBITPIX" => "BITPIX",
        "ZNAXIS" => "NAXIS",
        "ZEXTEND" => "EXTEND",
        "ZBLOCKED" => "BLOCKED",
        "ZPCOUNT" => "PCOUNT",
        "ZGCOUNT" => "GCOUNT",
        "ZHECKSUM" => "CHECKSUM",
        "ZDATASUM" => "DATASUM",
        _ => {
            let n = keyword.strip_prefix("ZNAXIS")?;
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                return Some(format!("NAXIS{n}"));
            }
            return None;
        }
    };
    Some(fixed.to_string())
}

fn numbered(keyword: &str, prefix: &str) -> bool {
    keyword
        .strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Keywords that belong to the compressed table itself and never go back
/// into the image.
fn is_table_keyword(keyword: &str) -> bool {
    matches!(
        keyword,
        "XTENSION"
            | "BITPIX"
            | "NAXIS"
            | "PCOUNT"
            | "GCOUNT"
            | "TFIELDS"
            | "THEAP"
            | "ZIMAGE"
            | "ZQUANTIZ"
            | "ZDITHER0"
            | "ZCMPTYPE"
            | "ZBLANK"
            | "ZSCALE"
            | "ZZERO"
            | "CHECKSUM"
            | "DATASUM"
            | "END"
    ) || [
        "NAXIS", "TTYPE", "TFORM", "TUNIT", "TDIM", "TNULL", "TSCAL", "TZERO", "TDISP", "ZTILE",
        "ZNAME", "ZVAL",
    ]
    .iter()
    .any(|p| numbered(keyword, p))
}

/// Structural keywords of an image HDU, which compressed-table writers
/// regenerate rather than copy.
pub fn is_image_structural(keyword: &str) -> bool {
    matches!(
        keyword,
        "SIMPLE"
            | "XTENSION"
            | "BITPIX"
            | "NAXIS"
            | "EXTEND"
            | "PCOUNT"
            | "GCOUNT"
            | "CHECKSUM"
            | "DATASUM"
            | "END"
    ) || numbered(keyword, "NAXIS")
}

/// The image header's cards as they go into the compressed table: structural
/// keywords renamed, everything else unchanged and in order.
pub fn image_cards_for_table(image: &Header) -> Vec<Card> {
    image
        .cards()
        .iter()
        .map(|c| match to_compressed_name(c.keyword()) {
            Some(z) if c.has_value() => c.renamed(&z),
            _ => c.clone(),
        })
        .collect()
}

/// Rebuild an image header from a compressed table's header.
///
/// `as_primary`: the image becomes the primary HDU (SIMPLE) rather than an
/// IMAGE extension. The structural cards come first, in FITS order, taken
/// from their Z-copies when present (keeping their comments) or written
/// anew; every other card follows in its original order.
pub fn restore_image_header(
    compressed: &Header,
    bitpix: i64,
    axes: &[usize],
    as_primary: bool,
) -> Header {
    let zcard = |name: &str| {
        compressed
            .card(name)
            .map(|c| c.renamed(&to_image_name(name).unwrap_or_default()))
    };
    let mut out = Header::new();
    if as_primary {
        out.push(zcard("ZSIMPLE").unwrap_or_else(|| {
            Card::new_logical("SIMPLE", true, Some("file does conform to FITS standard"))
        }));
    } else {
        match compressed.card("ZTENSION") {
            Some(c) => out.push(c.renamed("XTENSION")),
            None => out.push(Card::new_string(
                "XTENSION",
                "IMAGE",
                Some("IMAGE extension"),
            )),
        }
    }
    out.push(
        zcard("ZBITPIX").unwrap_or_else(|| {
            Card::new_int("BITPIX", bitpix, Some("number of bits per data pixel"))
        }),
    );
    out.push(
        zcard("ZNAXIS").unwrap_or_else(|| {
            Card::new_int("NAXIS", axes.len() as i64, Some("number of data axes"))
        }),
    );
    for (i, &n) in axes.iter().enumerate() {
        let key = format!("ZNAXIS{}", i + 1);
        out.push(zcard(&key).unwrap_or_else(|| {
            Card::new_int(
                &format!("NAXIS{}", i + 1),
                n as i64,
                Some("length of data axis"),
            )
        }));
    }
    if as_primary {
        if let Some(c) = zcard("ZEXTEND") {
            out.push(c);
        }
    } else {
        out.push(
            zcard("ZPCOUNT")
                .unwrap_or_else(|| Card::new_int("PCOUNT", 0, Some("required keyword; must = 0"))),
        );
        out.push(
            zcard("ZGCOUNT")
                .unwrap_or_else(|| Card::new_int("GCOUNT", 1, Some("required keyword; must = 1"))),
        );
    }
    let placed = |k: &str| {
        matches!(
            k,
            "ZSIMPLE" | "ZTENSION" | "ZBITPIX" | "ZNAXIS" | "ZEXTEND" | "ZPCOUNT" | "ZGCOUNT"
        ) || numbered(k, "ZNAXIS")
    };
    for card in compressed.cards() {
        let key = card.keyword();
        if placed(key) || is_table_keyword(key) {
            continue;
        }
        // The EXTNAME that only marks the table as a compressed image.
        if key == "EXTNAME"
            && compressed.get_string("EXTNAME").as_deref() == Some("COMPRESSED_IMAGE")
        {
            continue;
        }
        match to_image_name(key) {
            Some(name) if card.has_value() => out.push(card.renamed(&name)),
            _ => out.push(card.clone()),
        }
    }
    // Free header space (whole blocks beyond what the cards need) comes back
    // as it went in, the inverse of fpack's rule in pack::compress, so a
    // restored image has its original header size, as with Debian funpack.
    const CARDS_PER_BLOCK: usize = crate::fits::BLOCK_LEN / crate::fits::card::CARD_LEN;
    let blocks = |cards: usize| (cards + 1).div_ceil(CARDS_PER_BLOCK);
    let spare = compressed
        .blocks()
        .saturating_sub(blocks(compressed.content_cards().len()));
    out.strip_trailing_blanks();
    out.reserve_blocks(blocks(out.len()) + spare);
    out
}

/// The cards two headers must share for a round trip to count as exact:
/// everything except structural keywords, checksums and the trailing blank
/// cards (free space, which cfitsio resizes as it pleases), in order.
pub fn non_structural(header: &Header) -> Vec<&Card> {
    header
        .content_cards()
        .iter()
        .filter(|c| !is_image_structural(c.keyword()))
        .collect()
}
