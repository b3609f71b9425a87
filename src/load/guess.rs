//! Type and geometry guessing for text columns (CSV now; spreadsheets and JSON arrays use it too).
//!
//! Every value of a column is observed before a type is chosen, so the choice is never wrong for a value
//! further down the file. A column gets a typed type when nearly all its values fit; the few that do not
//! are not lost: the loader keeps them, as written, in a `<column>_invalid` text column.

use super::copy::CopyBuffer;
use super::table::PgType;
use super::values::{self, DayOrder, Number, Temporal};

/// How a column's values are read and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Boolean,
    Integer,
    BigInt,
    Double,
    Date(DayOrder),
    Timestamp(DayOrder),
    TimestampTz(DayOrder),
}

impl ValueKind {
    pub fn pg_type(self) -> PgType {
        match self {
            ValueKind::Text => PgType::Text,
            ValueKind::Boolean => PgType::Boolean,
            ValueKind::Integer => PgType::Integer,
            ValueKind::BigInt => PgType::BigInt,
            ValueKind::Double => PgType::Double,
            ValueKind::Date(_) => PgType::Date,
            ValueKind::Timestamp(_) => PgType::Timestamp,
            ValueKind::TimestampTz(_) => PgType::TimestampTz,
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, ValueKind::Integer | ValueKind::BigInt | ValueKind::Double)
    }

    /// Writes one value as this kind. Returns false, writing nothing, when the value does not fit; the
    /// caller then writes NULL and keeps the raw value elsewhere.
    pub fn encode(self, raw: &str, out: &mut CopyBuffer) -> bool {
        if self == ValueKind::Text {
            if raw.is_empty() {
                out.null()
            } else {
                out.text(raw)
            }
            return true;
        }
        let v = raw.trim();
        if values::is_null_marker(v) {
            out.null();
            return true;
        }
        match self {
            ValueKind::Text => unreachable!("handled above"),
            ValueKind::Boolean => values::parse_bool(v).map(|b| out.bool(b)).is_some(),
            ValueKind::Integer => match values::parse_number(v) {
                Number::Int(i) => i32::try_from(i).map(|i| out.i32(i)).is_ok(),
                _ => false,
            },
            ValueKind::BigInt => match values::parse_number(v) {
                Number::Int(i) => {
                    out.i64(i);
                    true
                }
                _ => false,
            },
            ValueKind::Double => match values::parse_number(v) {
                Number::Int(i) => {
                    out.f64(i as f64);
                    true
                }
                Number::Float(f) => {
                    out.f64(f);
                    true
                }
                _ => false,
            },
            ValueKind::Date(order) => match temporal(v, order) {
                Some(t) if t.time_micros.is_none() => {
                    out.date(t.pg_days());
                    true
                }
                _ => false,
            },
            ValueKind::Timestamp(order) => temporal(v, order).map(|t| out.timestamp(t.pg_micros(false))).is_some(),
            ValueKind::TimestampTz(order) => temporal(v, order).map(|t| out.timestamp(t.pg_micros(true))).is_some(),
        }
    }
}

/// [`values::parse_temporal`], with a shortcut for the commonest shapes: ISO dates and timestamps to the
/// second, without a zone (`2024-03-01`, `2024-03-01T10:20:30`, `2024-03-01 10:20:30`). Every value of a
/// date column is read twice (to guess, then to load), and the general reader splits the text into parts
/// several times over. The shortcut reaches the same result by the same checks.
fn temporal(v: &str, order: DayOrder) -> Option<Temporal> {
    let b = v.as_bytes();
    let date_only = b.len() == 10;
    let iso = (date_only || b.len() == 19) && b[4] == b'-' && b[7] == b'-';
    if !iso || !(date_only || (matches!(b[10], b'T' | b' ') && b[13] == b':' && b[16] == b':')) {
        return values::parse_temporal(v, order);
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u16, |n, c| c.is_ascii_digit().then(|| n * 10 + u16::from(c - b'0')))
    };
    let month = time::Month::try_from(u8::try_from(number(5, 7)?).ok()?).ok()?;
    let day = u8::try_from(number(8, 10)?).ok()?;
    let date = time::Date::from_calendar_date(i32::from(number(0, 4)?), month, day).ok()?;
    if date_only {
        return Some(Temporal { date, time_micros: None, offset_secs: None });
    }
    let (h, m, s) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let seconds = (i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s);
    Some(Temporal { date, time_micros: Some(seconds * 1_000_000), offset_secs: None })
}

/// What a scan learned about one column.
#[derive(Debug, Clone, Default)]
pub struct ColumnStats {
    pub non_null: u64,
    bools: u64,
    numbers: u64,
    ints: u64,
    ints32: u64,
    keep_as_text: bool,
    month_first: u64,
    day_first: u64,
    with_time: u64,
    with_zone: u64,
    /// Values that read as a geometry (counted only for columns named like geometry columns).
    pub geometries: u64,
}

/// The guess for a column: its kind and how many of its values do not fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnGuess {
    pub kind: ValueKind,
    pub misfits: u64,
}

/// Whether a type that fits `fits` of `total` values should be chosen: all fit, or at least three do and
/// no more than one in ten (at least one) does not.
pub fn fits_enough(fits: u64, total: u64) -> bool {
    let misfits = total.saturating_sub(fits);
    fits > 0 && (misfits == 0 || (fits >= 3 && misfits <= (total / 10).max(1)))
}

impl ColumnStats {
    pub fn observe(&mut self, raw: &str) {
        let v = raw.trim();
        if values::is_null_marker(v) {
            return;
        }
        self.non_null += 1;
        if values::parse_bool(v).is_some() {
            self.bools += 1;
            return;
        }
        match values::parse_number(v) {
            Number::Int(i) => {
                self.numbers += 1;
                self.ints += 1;
                self.ints32 += u64::from(i32::try_from(i).is_ok());
                return;
            }
            Number::Float(_) => {
                self.numbers += 1;
                return;
            }
            Number::KeepAsText => {
                self.keep_as_text = true;
                return;
            }
            Number::NotANumber => {}
        }
        let b = v.as_bytes();
        if b[0].is_ascii_digit() {
            // A date with the year first reads the same in both orders (only slash dates with the year last
            // depend on it): one parse does for the commonest dates, ISO ones.
            let year_first = b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && matches!(b[4], b'-' | b'/');
            let month_first = temporal(v, DayOrder::MonthFirst);
            let day_first = if year_first { month_first } else { temporal(v, DayOrder::DayFirst) };
            if let Some(t) = month_first.or(day_first) {
                self.month_first += u64::from(month_first.is_some());
                self.day_first += u64::from(day_first.is_some());
                self.with_time += u64::from(t.time_micros.is_some());
                self.with_zone += u64::from(t.offset_secs.is_some());
            }
        }
    }

    /// Counts `raw` as a geometry if it reads as one of at most `max_positions` positions.
    pub fn observe_geometry(&mut self, raw: &str, max_positions: u64) {
        if !values::is_null_marker(raw.trim())
            && super::geometry::parse_geometry_text_within(raw, max_positions).is_some()
        {
            self.geometries += 1;
        }
    }

    /// Whether this column holds geometries (it must also be named like a geometry column).
    pub fn is_geometry(&self) -> bool {
        fits_enough(self.geometries, self.non_null)
    }

    /// Chooses the column's kind. Without type guessing every column is text.
    pub fn guess(&self, type_guessing: bool) -> ColumnGuess {
        let text = ColumnGuess { kind: ValueKind::Text, misfits: 0 };
        if !type_guessing || self.non_null == 0 || self.keep_as_text {
            return text;
        }
        let temporal = self.month_first.max(self.day_first);
        let (fits, kind) =
            [(self.bools, ValueKind::Boolean), (self.numbers, self.numeric_kind()), (temporal, self.temporal_kind())]
                .into_iter()
                .max_by_key(|(fits, _)| *fits)
                .expect("three candidates");
        if fits_enough(fits, self.non_null) { ColumnGuess { kind, misfits: self.non_null - fits } } else { text }
    }

    fn numeric_kind(&self) -> ValueKind {
        if self.ints < self.numbers {
            ValueKind::Double
        } else if self.ints32 < self.ints {
            ValueKind::BigInt
        } else {
            ValueKind::Integer
        }
    }

    fn temporal_kind(&self) -> ValueKind {
        let order = if self.day_first > self.month_first { DayOrder::DayFirst } else { DayOrder::MonthFirst };
        if self.with_time == 0 {
            ValueKind::Date(order)
        } else if self.with_zone > 0 {
            ValueKind::TimestampTz(order)
        } else {
            ValueKind::Timestamp(order)
        }
    }
}

/// Names of columns that may hold geometries, in order of preference (the reference's list).
pub const GEOMETRY_COLUMN_NAMES: &[&str] = &["the_geom", "geometry", "wkb_geometry", "geom", "geojson", "wkt"];

const LATITUDE_NAMES: &[&str] =
    &["latitude", "lat", "latitudedecimal", "latitud", "lati", "decimallatitude", "decimallat", "point_latitude"];
const LONGITUDE_NAMES: &[&str] = &[
    "longitude",
    "lon",
    "lng",
    "longitudedecimal",
    "longitud",
    "long",
    "decimallongitude",
    "decimallong",
    "point_longitude",
];

/// The latitude and longitude columns among sanitized `names`, which must be numeric. Exact names from the
/// reference's lists win; otherwise a prefixed pair such as `pickup_latitude`/`pickup_longitude` is taken.
pub fn pick_lat_lon(names: &[String], kinds: &[ValueKind]) -> Option<(usize, usize)> {
    let numeric = |i: usize| kinds[i].is_numeric();
    let find =
        |list: &[&str]| list.iter().find_map(|want| names.iter().position(|n| n == want).filter(|&i| numeric(i)));
    if let (Some(lat), Some(lon)) = (find(LATITUDE_NAMES), find(LONGITUDE_NAMES)) {
        return Some((lat, lon));
    }
    for (lat, name) in names.iter().enumerate() {
        if !numeric(lat) {
            continue;
        }
        let Some(prefix) = ["_latitude", "_lat"].iter().find_map(|s| name.strip_suffix(s)) else {
            continue;
        };
        let lon = ["_longitude", "_lon", "_lng", "_long"]
            .iter()
            .find_map(|s| names.iter().position(|n| *n == format!("{prefix}{s}")).filter(|&i| numeric(i)));
        if let Some(lon) = lon {
            return Some((lat, lon));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(values: &[&str]) -> ColumnGuess {
        let mut s = ColumnStats::default();
        for v in values {
            s.observe(v);
        }
        s.guess(true)
    }

    #[test]
    fn picks_the_narrowest_type_that_fits() {
        assert_eq!(guess(&["1", "2", "3"]).kind, ValueKind::Integer);
        assert_eq!(guess(&["1", "5000000000"]).kind, ValueKind::BigInt);
        assert_eq!(guess(&["1", "2.5"]).kind, ValueKind::Double);
        assert_eq!(guess(&["true", "FALSE", ""]).kind, ValueKind::Boolean);
        assert_eq!(guess(&["2024-01-01", "2024-02-01"]).kind, ValueKind::Date(DayOrder::MonthFirst));
        assert_eq!(guess(&["17/09/1993", "01/02/1993"]).kind, ValueKind::Date(DayOrder::DayFirst));
        assert_eq!(guess(&["2024-01-01 10:00", "2024-01-02"]).kind, ValueKind::Timestamp(DayOrder::MonthFirst));
        assert_eq!(guess(&["2024-01-01T10:00Z", "2024-01-02"]).kind, ValueKind::TimestampTz(DayOrder::MonthFirst));
        assert_eq!(guess(&["", "null", "N/A"]).kind, ValueKind::Text);
    }

    #[test]
    fn codes_and_phone_numbers_stay_text() {
        assert_eq!(guess(&["02134", "10001", "90210"]).kind, ValueKind::Text);
        assert_eq!(guess(&["+34 600 123 456", "+1 555 0100"]).kind, ValueKind::Text);
        assert_eq!(guess(&["E000123", "E000124", "E000125"]).kind, ValueKind::Text);
        assert_eq!(guess(&["a", "b", "1"]).kind, ValueKind::Text);
    }

    #[test]
    fn a_few_bad_values_do_not_change_the_type() {
        let g = guess(&["2024-01-01", "2024-01-02", "2024-01-03", "not a date", "2024-01-05"]);
        assert_eq!(g, ColumnGuess { kind: ValueKind::Date(DayOrder::MonthFirst), misfits: 1 });
        assert_eq!(guess(&["1", "x"]).kind, ValueKind::Text);
    }

    #[test]
    fn encoding_reports_misfits() {
        let mut buf = CopyBuffer::new();
        assert!(ValueKind::Integer.encode(" 42 ", &mut buf));
        assert!(!ValueKind::Integer.encode("5000000000", &mut buf));
        assert!(ValueKind::Integer.encode("N/A", &mut buf));
        assert!(!ValueKind::Date(DayOrder::MonthFirst).encode("2024-01-01 10:00", &mut buf));
        assert!(ValueKind::Text.encode("anything", &mut buf));
    }

    #[test]
    fn the_shortcut_for_iso_dates_reads_as_the_general_reader_does() {
        for v in [
            "2024-02-29",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "0000-01-01",
            "2024-01-01T23:59:60",
            "2024-01-01 24:00:00",
            "2024-01-01T10:60:00",
            "2024-01-01T10:00:61",
            "2024-01-01x10:00:00",
            "2024-01-0110:00:00",
            "2024-1-01T10:00:00",
            "2024-01-01T1a:00:00",
            "2024-11-24T17:05:37",
            "2024-11-24 17:05:37",
            "2024/11/24 17:05:37",
            "2024-11-24T17:05:37Z",
            "11/24/2024",
            "24/11/2024 10:00",
            "2024-11-2a",
            "1999-12-31T00:00:00",
        ] {
            for order in [DayOrder::MonthFirst, DayOrder::DayFirst] {
                assert_eq!(temporal(v, order), values::parse_temporal(v, order), "{v}");
            }
        }
    }

    #[test]
    fn finds_lat_lon_pairs() {
        let names: Vec<String> = ["name", "Lat", "lng"].iter().map(|s| s.to_lowercase()).collect();
        let kinds = [ValueKind::Text, ValueKind::Double, ValueKind::Double];
        assert_eq!(pick_lat_lon(&names, &kinds), Some((1, 2)));
        let names: Vec<String> =
            ["pickup_longitude", "pickup_latitude", "dropoff_latitude"].iter().map(|s| s.to_string()).collect();
        let kinds = [ValueKind::Double; 3];
        assert_eq!(pick_lat_lon(&names, &kinds), Some((1, 0)));
        let names: Vec<String> = ["lat", "lon"].iter().map(|s| s.to_string()).collect();
        assert_eq!(pick_lat_lon(&names, &[ValueKind::Text, ValueKind::Double]), None);
    }
}
