//! Reading one text value as a typed value. The type guesser and the loader use these same functions, so a
//! value counted as fitting a type while guessing is certain to load as that type.
//!
//! The rules lean towards keeping text: a number with leading zeros (ZIP codes, station codes), a `+`
//! prefix (phone numbers), thousands separators or more digits than a double holds is not a number.

use time::{Date, Month};

/// Values that mean "no value" in a typed column. Empty and blank cells are null everywhere.
pub fn is_null_marker(v: &str) -> bool {
    v.is_empty()
        || v.eq_ignore_ascii_case("null")
        || v.eq_ignore_ascii_case("na")
        || v.eq_ignore_ascii_case("n/a")
        || v.eq_ignore_ascii_case("#n/a")
}

pub fn parse_bool(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// What a value is, read as a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
    /// Looks numeric but must stay text to lose nothing (leading zeros, too many digits).
    KeepAsText,
    NotANumber,
}

/// Most significant digits a double carries faithfully.
const MAX_FLOAT_DIGITS: usize = 17;

pub fn parse_number(v: &str) -> Number {
    let b = v.as_bytes();
    let digits_start = usize::from(b.first() == Some(&b'-'));
    let body = &b[digits_start..];
    if body.is_empty() {
        return Number::NotANumber;
    }
    let int_len = body.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == body.len() {
        if int_len > 1 && body[0] == b'0' {
            return Number::KeepAsText;
        }
        return match v.parse::<i64>() {
            Ok(i) => Number::Int(i),
            Err(_) => Number::KeepAsText,
        };
    }
    // decimal: int part, optional fraction, optional exponent; at least one digit before the exponent
    let mut i = int_len;
    let mut frac_len = 0;
    if body.get(i) == Some(&b'.') {
        i += 1;
        frac_len = body[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_len;
    }
    if int_len + frac_len == 0 {
        return Number::NotANumber;
    }
    if matches!(body.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(body.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_len = body[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_len == 0 {
            return Number::NotANumber;
        }
        i = j + exp_len;
    }
    if i != body.len() {
        return Number::NotANumber;
    }
    if int_len > 1 && body[0] == b'0' {
        return Number::KeepAsText;
    }
    let frac_start = (int_len + 1).min(body.len());
    let significant =
        body[..int_len].iter().chain(&body[frac_start..frac_start + frac_len]).skip_while(|c| **c == b'0').count();
    if significant > MAX_FLOAT_DIGITS {
        return Number::KeepAsText;
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() => Number::Float(f),
        _ => Number::KeepAsText,
    }
}

/// Which of day and month comes first in dates written with slashes and the year last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayOrder {
    MonthFirst,
    DayFirst,
}

/// A date, with an optional time of day and UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Temporal {
    pub date: Date,
    /// Microseconds since midnight, when the value has a time.
    pub time_micros: Option<i64>,
    /// Seconds east of UTC, when the value names a zone.
    pub offset_secs: Option<i32>,
}

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_JULIAN: i32 = 2_451_545;

impl Temporal {
    /// Days since 2000-01-01, as PostgreSQL's binary `date`.
    pub fn pg_days(&self) -> i32 {
        self.date.to_julian_day() - PG_EPOCH_JULIAN
    }

    /// Microseconds since 2000-01-01 00:00, as PostgreSQL's binary `timestamp`; for `timestamptz` the
    /// offset is applied so the instant is in UTC (values without a zone are taken as UTC).
    pub fn pg_micros(&self, apply_offset: bool) -> i64 {
        let day = i64::from(self.pg_days()) * 86_400_000_000;
        let offset = if apply_offset { i64::from(self.offset_secs.unwrap_or(0)) * 1_000_000 } else { 0 };
        day + self.time_micros.unwrap_or(0) - offset
    }
}

/// Reads ISO dates and timestamps (`2024-03-01`, `2024/03/01`, `2024-03-01T10:20:30.5Z`, `2024-03-01
/// 10:20+02`) and slash dates with the year last (`03/01/2024 10:20:30`), the latter in the given order.
pub fn parse_temporal(v: &str, order: DayOrder) -> Option<Temporal> {
    let (date_part, rest) = split_date(v)?;
    let date = parse_date(date_part, order)?;
    if rest.is_empty() {
        return Some(Temporal { date, time_micros: None, offset_secs: None });
    }
    let rest = rest.strip_prefix(['T', ' '])?.trim_start();
    let (time_part, zone_part) = split_zone(rest);
    let time_micros = parse_time(time_part)?;
    let offset_secs = match zone_part {
        "" => None,
        z => Some(parse_offset(z)?),
    };
    Some(Temporal { date, time_micros: Some(time_micros), offset_secs })
}

/// Whether a slash date could be read in each order: (month first, day first).
pub fn slash_date_orders(v: &str) -> (bool, bool) {
    (parse_temporal(v, DayOrder::MonthFirst).is_some(), parse_temporal(v, DayOrder::DayFirst).is_some())
}

fn split_date(v: &str) -> Option<(&str, &str)> {
    let end = v.find(['T', ' ']).unwrap_or(v.len());
    (end >= 8).then(|| (&v[..end], &v[end..]))
}

fn parse_date(s: &str, order: DayOrder) -> Option<Date> {
    let sep = if s.contains('-') {
        '-'
    } else if s.contains('/') {
        '/'
    } else {
        return None;
    };
    let mut parts = s.split(sep);
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [a, b, c].iter().any(|p| p.is_empty() || !p.bytes().all(|x| x.is_ascii_digit())) {
        return None;
    }
    let (y, m, d) = if a.len() == 4 && b.len() <= 2 && c.len() <= 2 {
        (a, b, c)
    } else if sep == '/' && c.len() == 4 && a.len() <= 2 && b.len() <= 2 {
        match order {
            DayOrder::MonthFirst => (c, a, b),
            DayOrder::DayFirst => (c, b, a),
        }
    } else {
        return None;
    };
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

fn split_zone(s: &str) -> (&str, &str) {
    if let Some(stripped) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return (stripped, "Z");
    }
    // the zone starts at the last '+' or '-' after the time's digits
    match s.rfind(['+', '-']) {
        Some(i) if i >= 4 => (s[..i].trim_end(), &s[i..]),
        _ => (s, ""),
    }
}

fn parse_time(s: &str) -> Option<i64> {
    let (hms, frac) = match s.split_once(['.', ',']) {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let h: i64 = two_digits(parts.next()?)?;
    let m: i64 = two_digits(parts.next()?)?;
    let sec: i64 = match parts.next() {
        Some(p) => two_digits(p)?,
        None if frac.is_none() => 0,
        None => return None,
    };
    if parts.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let micros = match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            let padded = format!("{f:0<6}");
            padded[..6].parse::<i64>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    Some(((h * 60 + m) * 60 + sec) * 1_000_000 + micros)
}

fn two_digits(p: &str) -> Option<i64> {
    (p.len() == 2 && p.bytes().all(|c| c.is_ascii_digit())).then(|| p.parse().ok()).flatten()
}

fn parse_offset(z: &str) -> Option<i32> {
    if z == "Z" {
        return Some(0);
    }
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
        _ => return None,
    };
    (h <= 15 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_would_lose_information_stay_text() {
        assert_eq!(parse_number("42"), Number::Int(42));
        assert_eq!(parse_number("-7"), Number::Int(-7));
        assert_eq!(parse_number("0"), Number::Int(0));
        assert_eq!(parse_number("3.25"), Number::Float(3.25));
        assert_eq!(parse_number("-0.5"), Number::Float(-0.5));
        assert_eq!(parse_number(".5"), Number::Float(0.5));
        assert_eq!(parse_number("1e3"), Number::Float(1000.0));
        assert_eq!(parse_number("02134"), Number::KeepAsText);
        assert_eq!(parse_number("007.5"), Number::KeepAsText);
        assert_eq!(parse_number("99999999999999999999"), Number::KeepAsText);
        assert_eq!(parse_number("1.234567890123456789"), Number::KeepAsText);
        assert_eq!(parse_number("-73.98765432109876"), Number::Float(-73.98765432109876));
        for text in ["+34600123456", "E000123", "1,234", "12 34", "-", ".", "1e", "inf", "NaN", "0x10", "5-"] {
            assert_eq!(parse_number(text), Number::NotANumber, "{text}");
        }
    }

    #[test]
    fn dates_and_timestamps() {
        let t = parse_temporal("2024-02-29", DayOrder::MonthFirst).unwrap();
        assert_eq!(t.time_micros, None);
        assert_eq!(parse_temporal("2000-01-01", DayOrder::MonthFirst).unwrap().pg_days(), 0);
        assert_eq!(parse_temporal("2000-01-02", DayOrder::MonthFirst).unwrap().pg_days(), 1);
        assert!(parse_temporal("2023-02-29", DayOrder::MonthFirst).is_none());
        assert!(parse_temporal("2024/03/01", DayOrder::MonthFirst).is_some());
        let t = parse_temporal("2000-01-01T01:00:00Z", DayOrder::MonthFirst).unwrap();
        assert_eq!(t.pg_micros(true), 3_600_000_000);
        let t = parse_temporal("2000-01-01 02:00:00+02:00", DayOrder::MonthFirst).unwrap();
        assert_eq!(t.offset_secs, Some(7200));
        assert_eq!(t.pg_micros(true), 0);
        assert_eq!(t.pg_micros(false), 7_200_000_000);
        let t = parse_temporal("2000-01-01 00:00:01.5", DayOrder::MonthFirst).unwrap();
        assert_eq!(t.pg_micros(false), 1_500_000);
        let t = parse_temporal("2000-01-01 10:30-0330", DayOrder::MonthFirst).unwrap();
        assert_eq!(t.offset_secs, Some(-(3 * 3600 + 30 * 60)));
        assert_eq!(slash_date_orders("09/17/1993 00:00:00"), (true, false));
        assert_eq!(slash_date_orders("17/09/1993"), (false, true));
        assert_eq!(slash_date_orders("01/02/1993"), (true, true));
        for bad in ["2024-13-01", "20240301", "hello", "2024-03-01 25:00", "2024-03-01T", "1/2/3", "12/31/99"] {
            assert!(parse_temporal(bad, DayOrder::MonthFirst).is_none(), "{bad}");
        }
    }
}
