//! PostGIS's raster WKB (RFC2-WellKnownBinaryFormat, as PostGIS 3 writes it), in hex, one tile per line:
//! what `raster_in` parses, and what `raster2pgsql -Y` sends. The raster type has no binary input, so a
//! text COPY of hex WKB is the cheapest way in.

/// A band's pixel type, as PostGIS names and numbers it (the RFC's numbers for the floats are wrong:
/// PostGIS writes 10 for 32BF and 11 for 64BF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelType {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl PixelType {
    fn code(self) -> u8 {
        match self {
            PixelType::I8 => 3,
            PixelType::U8 => 4,
            PixelType::I16 => 5,
            PixelType::U16 => 6,
            PixelType::I32 => 7,
            PixelType::U32 => 8,
            PixelType::F32 => 10,
            PixelType::F64 => 11,
        }
    }

    pub fn size(self) -> usize {
        match self {
            PixelType::I8 | PixelType::U8 => 1,
            PixelType::I16 | PixelType::U16 => 2,
            PixelType::I32 | PixelType::U32 | PixelType::F32 => 4,
            PixelType::F64 => 8,
        }
    }

    /// `value` in this type's little-endian bytes, if the type can hold it exactly.
    pub fn encode(self, value: f64) -> Option<Vec<u8>> {
        let int = |lo: f64, hi: f64| value.fract() == 0.0 && (lo..=hi).contains(&value);
        Some(match self {
            PixelType::I8 if int(-128.0, 127.0) => (value as i8).to_le_bytes().to_vec(),
            PixelType::U8 if int(0.0, 255.0) => (value as u8).to_le_bytes().to_vec(),
            PixelType::I16 if int(i16::MIN.into(), i16::MAX.into()) => (value as i16).to_le_bytes().to_vec(),
            PixelType::U16 if int(0.0, u16::MAX.into()) => (value as u16).to_le_bytes().to_vec(),
            PixelType::I32 if int(i32::MIN.into(), i32::MAX.into()) => (value as i32).to_le_bytes().to_vec(),
            PixelType::U32 if int(0.0, u32::MAX.into()) => (value as u32).to_le_bytes().to_vec(),
            PixelType::F32 if value.is_nan() || (value as f32) as f64 == value => (value as f32).to_le_bytes().to_vec(),
            PixelType::F64 => value.to_le_bytes().to_vec(),
            _ => return None,
        })
    }
}

/// A band as the table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub pixel_type: PixelType,
    /// The nodata value, if the source has one the type can hold.
    pub nodata: Option<f64>,
}

/// Where a tile lies: its upper-left corner and pixel size, in the raster's SRID.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub upper_left: (f64, f64),
    pub scale: (f64, f64),
    pub srid: i32,
}

/// Writes one tile as hex WKB into `out`: `pixels[b]` holds band `b`'s `width` × `height` values, row by row,
/// in the machine's (little-endian) byte order.
pub fn write_tile_hex(out: &mut Vec<u8>, at: &Placement, width: u16, height: u16, bands: &[(&Band, &[u8])]) {
    let mut header = Vec::with_capacity(61 + bands.len() * 9);
    header.push(1u8); // little endian (NDR)
    header.extend_from_slice(&0u16.to_le_bytes()); // version
    header.extend_from_slice(&(bands.len() as u16).to_le_bytes());
    for v in [at.scale.0, at.scale.1, at.upper_left.0, at.upper_left.1, 0.0, 0.0] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    header.extend_from_slice(&at.srid.to_le_bytes());
    header.extend_from_slice(&width.to_le_bytes());
    header.extend_from_slice(&height.to_le_bytes());
    push_hex(out, &header);
    for (band, pixels) in bands {
        debug_assert_eq!(pixels.len(), width as usize * height as usize * band.pixel_type.size());
        let nodata = band.nodata.and_then(|v| band.pixel_type.encode(v));
        let flags = band.pixel_type.code() | if nodata.is_some() { 0x40 } else { 0 };
        push_hex(out, &[flags]);
        // The nodata slot is there even for a band without one.
        let slot = nodata.unwrap_or_else(|| vec![0; band.pixel_type.size()]);
        push_hex(out, &slot);
        push_hex(out, pixels);
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + bytes.len() * 2, 0);
    hex::encode_to_slice(bytes, &mut out[start..]).expect("the slice is twice the input's length");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_is_written_as_postgis_writes_it() {
        // PostGIS 3.3's ST_AsBinary of a 2x2 8BUI raster with nodata 255, every pixel 7, in SRID 3857.
        let expected = [
            "01",
            "0000",
            "0100",
            "0000000000002440",
            "00000000000024c0",
            "0000000000005940",
            "0000000000006940",
            "0000000000000000",
            "0000000000000000",
            "110f0000",
            "0200",
            "0200",
            "44",
            "ff",
            "07070707",
        ]
        .concat();
        let band = Band { pixel_type: PixelType::U8, nodata: Some(255.0) };
        let at = Placement { upper_left: (100.0, 200.0), scale: (10.0, -10.0), srid: 3857 };
        let mut out = Vec::new();
        write_tile_hex(&mut out, &at, 2, 2, &[(&band, &[7, 7, 7, 7])]);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn a_nodata_value_the_type_cannot_hold_is_dropped() {
        assert_eq!(PixelType::U8.encode(-9999.0), None);
        assert_eq!(PixelType::I16.encode(-9999.0), Some((-9999i16).to_le_bytes().to_vec()));
        assert_eq!(PixelType::F32.encode(0.1), None, "0.1 is not a float32");
        assert!(PixelType::F32.encode(f64::NAN).is_some());
        assert_eq!(PixelType::I32.encode(1.5), None);
    }
}
