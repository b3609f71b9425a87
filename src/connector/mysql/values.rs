//! MySQL's binary-protocol values (what a prepared statement returns), read without the driver's typed
//! decoders: those refuse zero dates, unsigned values past i64 and types whose exact declaration only we
//! know. Every function takes the bytes of one non-NULL value.

use time::{Date, Month};

/// Days from the Julian epoch to PostgreSQL's, 2000-01-01.
const PG_EPOCH_JULIAN: i32 = 2_451_545;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// An integer of any width (1, 2, 4 or 8 little-endian bytes).
pub fn integer(b: &[u8], unsigned: bool) -> Option<i128> {
    Some(match (b.len(), unsigned) {
        (1, false) => i128::from(b[0] as i8),
        (1, true) => i128::from(b[0]),
        (2, false) => i128::from(i16::from_le_bytes([b[0], b[1]])),
        (2, true) => i128::from(u16::from_le_bytes([b[0], b[1]])),
        (4, false) => i128::from(i32::from_le_bytes(b.try_into().ok()?)),
        (4, true) => i128::from(u32::from_le_bytes(b.try_into().ok()?)),
        (8, false) => i128::from(i64::from_le_bytes(b.try_into().ok()?)),
        (8, true) => i128::from(u64::from_le_bytes(b.try_into().ok()?)),
        _ => return None,
    })
}

pub fn float(b: &[u8]) -> Option<f32> {
    Some(f32::from_le_bytes(b.try_into().ok()?))
}

pub fn double(b: &[u8]) -> Option<f64> {
    Some(f64::from_le_bytes(b.try_into().ok()?))
}

/// A BIT(n) value: big-endian bytes, right-aligned.
pub fn bits(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
}

/// A DATE, DATETIME or TIMESTAMP (length byte first, as the driver leaves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// A real date and time: days since 2000-01-01 and microseconds into that day.
    At { days: i32, micros: i64 },
    /// '0000-00-00', or a date with a zero month or day: no such day exists.
    Zero,
}

impl Moment {
    /// Microseconds since 2000-01-01 00:00, as PostgreSQL's binary timestamp.
    pub fn pg_micros(days: i32, micros: i64) -> i64 {
        i64::from(days) * MICROS_PER_DAY + micros
    }
}

pub fn moment(b: &[u8]) -> Option<Moment> {
    let (&len, rest) = b.split_first()?;
    if len == 0 {
        return Some(Moment::Zero);
    }
    if len < 4 || rest.len() < usize::from(len) {
        return None;
    }
    let year = i32::from(u16::from_le_bytes([rest[0], rest[1]]));
    let (month, day) = (rest[2], rest[3]);
    let (h, m, s) = if len >= 7 { (rest[4], rest[5], rest[6]) } else { (0, 0, 0) };
    let fraction = if len >= 11 { u32::from_le_bytes([rest[7], rest[8], rest[9], rest[10]]) } else { 0 };
    let date = Month::try_from(month).ok().and_then(|mo| Date::from_calendar_date(year, mo, day).ok());
    let Some(date) = date else { return Some(Moment::Zero) };
    let micros = ((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s)) * 1_000_000 + i64::from(fraction);
    Some(Moment::At { days: date.to_julian_day() - PG_EPOCH_JULIAN, micros })
}

/// A DATE, DATETIME or TIMESTAMP as MySQL writes it (`0000-00-00`, `2020-00-00 10:00:00`), for the
/// rejections report: zero and partial dates are what it shows.
pub fn moment_text(b: &[u8]) -> String {
    let Some((&len, rest)) = b.split_first().filter(|(len, rest)| **len >= 4 && rest.len() >= usize::from(**len))
    else {
        return "0000-00-00".into();
    };
    let date = format!("{:04}-{:02}-{:02}", u16::from_le_bytes([rest[0], rest[1]]), rest[2], rest[3]);
    if len >= 7 { format!("{date} {:02}:{:02}:{:02}", rest[4], rest[5], rest[6]) } else { date }
}

/// A TIME: a signed duration of up to 838 hours, in microseconds.
pub fn duration(b: &[u8]) -> Option<i64> {
    let (&len, rest) = b.split_first()?;
    if len == 0 {
        return Some(0);
    }
    if len < 8 || rest.len() < usize::from(len) {
        return None;
    }
    let negative = rest[0] == 1;
    let days = i64::from(u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]));
    let (h, m, s) = (i64::from(rest[5]), i64::from(rest[6]), i64::from(rest[7]));
    let fraction = if len >= 12 { i64::from(u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]])) } else { 0 };
    let total = (((days * 24 + h) * 60 + m) * 60 + s) * 1_000_000 + fraction;
    Some(if negative { -total } else { total })
}

/// A MySQL geometry, as stored and sent: a little-endian SRID, then WKB. Returns (srid, wkb).
pub fn geometry(b: &[u8]) -> Option<(i32, &[u8])> {
    let srid = i32::from_le_bytes(b.get(..4)?.try_into().ok()?);
    Some((srid, b.get(4..).filter(|w| w.len() >= 5)?))
}

/// WKB with an SRID written into its header (EWKB), as PostGIS reads it.
pub fn ewkb(wkb: &[u8], srid: i32) -> Option<Vec<u8>> {
    let little = match wkb.first()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let kind: [u8; 4] = wkb.get(1..5)?.try_into().ok()?;
    let kind = if little { u32::from_le_bytes(kind) } else { u32::from_be_bytes(kind) } | 0x2000_0000;
    let mut out = Vec::with_capacity(wkb.len() + 4);
    out.push(wkb[0]);
    if little {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&srid.to_le_bytes());
    } else {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&srid.to_be_bytes());
    }
    out.extend_from_slice(&wkb[5..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_every_width_and_sign() {
        assert_eq!(integer(&[0xff], false), Some(-1));
        assert_eq!(integer(&[0xff], true), Some(255));
        assert_eq!(integer(&u64::MAX.to_le_bytes(), true), Some(i128::from(u64::MAX)));
        assert_eq!(integer(&(-5i32).to_le_bytes(), false), Some(-5));
        assert_eq!(integer(&[1, 2, 3], false), None);
        assert_eq!(bits(&[0x01, 0x00]), 256);
    }

    #[test]
    fn zero_and_partial_dates_are_shown_as_mysql_writes_them() {
        assert_eq!(moment_text(&[0]), "0000-00-00");
        assert_eq!(moment_text(&[4, 0xe4, 0x07, 0, 0]), "2020-00-00");
        assert_eq!(moment_text(&[7, 0xe4, 0x07, 2, 0, 10, 5, 0]), "2020-02-00 10:05:00");
    }

    #[test]
    fn dates_zero_dates_and_times() {
        assert_eq!(moment(&[0]), Some(Moment::Zero));
        // 2000-01-02
        assert_eq!(moment(&[4, 0xd0, 0x07, 1, 2]), Some(Moment::At { days: 1, micros: 0 }));
        // 2020-00-00: a partial zero date
        assert_eq!(moment(&[4, 0xe4, 0x07, 0, 0]), Some(Moment::Zero));
        // 2000-01-01 01:02:03.000004
        assert_eq!(
            moment(&[11, 0xd0, 0x07, 1, 1, 1, 2, 3, 4, 0, 0, 0]),
            Some(Moment::At { days: 0, micros: 3_723_000_004 })
        );
        assert_eq!(moment(&[7, 0xd0]), None);
        assert_eq!(duration(&[0]), Some(0));
        // -1 day 02:00:00
        assert_eq!(duration(&[8, 1, 1, 0, 0, 0, 2, 0, 0]), Some(-(26 * 3600 * 1_000_000)));
    }

    #[test]
    fn geometries_gain_their_srid() {
        let wkb = crate::load::geometry::ewkb_point(1.0, 2.0, 4326);
        // a plain WKB point (type 1, no SRID): the EWKB point without its SRID
        let mut plain = vec![1u8];
        plain.extend_from_slice(&1u32.to_le_bytes());
        plain.extend_from_slice(&wkb[9..]);
        assert_eq!(ewkb(&plain, 4326).unwrap(), wkb);
        let mut stored = 4326i32.to_le_bytes().to_vec();
        stored.extend_from_slice(&plain);
        assert_eq!(geometry(&stored), Some((4326, plain.as_slice())));
    }
}
