//! Reading PostGIS's raster WKB (as `ST_AsBinary` writes it) back, for the 8-bit bands of a map tile.

/// Bytes before the first band: endianness, version, band count, six doubles, SRID, width and height.
const HEADER: usize = 1 + 2 + 2 + 6 * 8 + 4 + 2 + 2;
/// PostGIS's number for 8-bit unsigned pixels.
const U8: u8 = 4;

/// The width, height and pixels of each band of `wkb`, which must all be 8-bit unsigned (as ST_ColorMap
/// and RGB images make them), little-endian and in the database.
pub fn eight_bit_bands(wkb: &[u8]) -> Result<(u16, u16, Vec<&[u8]>), String> {
    if wkb.len() < HEADER || wkb[0] != 1 {
        return Err("not a little-endian raster WKB".into());
    }
    let count = u16::from_le_bytes([wkb[3], wkb[4]]);
    let width = u16::from_le_bytes([wkb[57], wkb[58]]);
    let height = u16::from_le_bytes([wkb[59], wkb[60]]);
    let pixels = usize::from(width) * usize::from(height);
    let mut at = HEADER;
    let mut bands = Vec::new();
    for b in 0..count {
        let flags = *wkb.get(at).ok_or("the raster WKB ends early")?;
        if flags & 0x0f != U8 || flags & 0x80 != 0 {
            return Err(format!("band {} is not 8-bit unsigned in the database", b + 1));
        }
        // The flags, then the nodata value (one byte), then the pixels.
        let start = at + 2;
        bands.push(wkb.get(start..start + pixels).ok_or("the raster WKB ends early")?);
        at = start + pixels;
    }
    Ok((width, height, bands))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2 x 2 raster's WKB with `bands` of 8-bit pixels, as PostGIS writes it.
    fn wkb(bands: &[[u8; 4]]) -> Vec<u8> {
        let mut out = vec![1, 0, 0];
        out.extend((bands.len() as u16).to_le_bytes());
        out.extend([0u8; 48]);
        out.extend(3857i32.to_le_bytes());
        out.extend(2u16.to_le_bytes());
        out.extend(2u16.to_le_bytes());
        for band in bands {
            out.extend([U8 | 0x40, 0]);
            out.extend(band);
        }
        out
    }

    #[test]
    fn eight_bit_bands_read_back_and_anything_else_is_refused() {
        let wkb = wkb(&[[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]);
        let (width, height, bands) = eight_bit_bands(&wkb).unwrap();
        assert_eq!((width, height), (2, 2));
        assert_eq!(bands, vec![&[1, 2, 3, 4][..], &[5, 6, 7, 8], &[9, 10, 11, 12]]);
        assert!(eight_bit_bands(&wkb[..70]).is_err(), "cut short");
        let mut sixteen = wkb.clone();
        sixteen[HEADER] = 5 | 0x40;
        assert!(eight_bit_bands(&sixteen).is_err(), "16-bit");
    }
}
