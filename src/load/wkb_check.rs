//! Reading the structure of (E)WKB without reading its coordinates: the SRID in the header, and whether
//! every count is backed by the bytes it counts. geozero sizes its vectors from the counts before reading
//! what they count, so a value is checked here first, with the type read exactly as geozero reads it.

/// The SRID in an EWKB header (0 when there is none); None when the bytes are not WKB at all.
pub fn ewkb_srid(bytes: &[u8]) -> Option<i32> {
    let little = byte_order(bytes, 0)?;
    let kind = wkb_u32(bytes, 1, little)?;
    if kind & 0x2000_0000 != 0 { wkb_u32(bytes, 5, little).map(|s| s as i32) } else { Some(0) }
}

/// The byte-order mark of the geometry at `at`: true for little endian; None when it is no mark.
fn byte_order(bytes: &[u8], at: usize) -> Option<bool> {
    match bytes.get(at)? {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// The 32-bit word at `pos`, in the geometry's byte order.
fn wkb_u32(bytes: &[u8], pos: usize, little: bool) -> Option<u32> {
    let b: [u8; 4] = bytes.get(pos..pos + 4)?.try_into().ok()?;
    Some(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
}

/// Whether every count in a (E)WKB value is backed by enough bytes for what it counts.
pub fn wkb_counts_fit(bytes: &[u8]) -> bool {
    wkb_geometry_end(bytes, 0, 0, None).is_some_and(|end| end <= bytes.len())
}

/// Where the geometry starting at `at` ends, if its structure fits in `bytes` and its type is `expected`
/// (the parts of a MultiPolygon are polygons: geozero reads them so, whatever their header says).
fn wkb_geometry_end(bytes: &[u8], at: usize, depth: usize, expected: Option<u32>) -> Option<usize> {
    if depth > 32 {
        return None;
    }
    let little = byte_order(bytes, at)?;
    let word = |pos: usize| wkb_u32(bytes, pos, little);
    let raw = word(at + 1)?;
    let mut pos = at + 5;
    if raw & 0x2000_0000 != 0 {
        pos += 4; // EWKB SRID
    }
    // The type as geozero's EWKB reader takes it: the low byte, with Z and M as flags. Anything else in the
    // word (ISO's thousands, curves, stray bits) would be read differently there than here: refused.
    let kind = raw & 0x1fff_ffff;
    if !(1..=7).contains(&kind) || expected.is_some_and(|e| e != kind) {
        return None;
    }
    let dims = 2 + usize::from(raw & 0x8000_0000 != 0) + usize::from(raw & 0x4000_0000 != 0);
    let point_bytes = dims * 8;
    let count = |pos: usize| word(pos).map(|n| n as usize);
    match kind {
        1 => Some(pos + point_bytes),
        2 => {
            let n = count(pos)?;
            let end = (pos + 4).checked_add(n.checked_mul(point_bytes)?)?;
            (end <= bytes.len()).then_some(end)
        }
        3 => {
            let rings = count(pos)?;
            // each ring needs at least its own count
            if rings.checked_mul(4)? > bytes.len().saturating_sub(pos + 4) {
                return None;
            }
            let mut p = pos + 4;
            for _ in 0..rings {
                let n = count(p)?;
                p = (p + 4).checked_add(n.checked_mul(point_bytes)?)?;
                if p > bytes.len() {
                    return None;
                }
            }
            Some(p)
        }
        4..=7 => {
            let parts = count(pos)?;
            // each part needs at least a byte-order byte and a type
            if parts.checked_mul(5)? > bytes.len().saturating_sub(pos + 4) {
                return None;
            }
            let mut p = pos + 4;
            // MultiPoint, MultiLineString and MultiPolygon hold their simple kind; a collection anything
            let part = (kind < 7).then(|| kind - 3);
            for _ in 0..parts {
                p = wkb_geometry_end(bytes, p, depth + 1, part)?;
            }
            Some(p)
        }
        _ => None,
    }
}
