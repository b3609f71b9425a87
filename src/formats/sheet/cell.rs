//! A spreadsheet cell as the text a CSV would hold, written so that the type guesser reaches the type the
//! cell had: the guesser, not the workbook, decides column types, exactly as for a CSV.

use calamine::{Data, ExcelDateTime};

/// What a cell holds, as text.
#[derive(Debug, PartialEq, Eq)]
pub enum CellText {
    Value(String),
    Empty,
    /// `#DIV/0!`, `#N/A`...: no value, but worth reporting (as the error shows in the sheet).
    Error(String),
}

pub fn cell_text(cell: &Data) -> CellText {
    match cell {
        Data::Int(i) => CellText::Value(i.to_string()),
        Data::Float(f) => CellText::Value(number_text(*f)),
        Data::String(s) if s.is_empty() => CellText::Empty,
        Data::String(s) => CellText::Value(s.clone()),
        Data::Bool(b) => CellText::Value(b.to_string()),
        Data::DateTime(dt) => CellText::Value(excel_datetime_text(dt)),
        // ODS already says dates, datetimes and durations in ISO 8601, the form the guesser reads.
        Data::DateTimeIso(s) | Data::DurationIso(s) => CellText::Value(s.clone()),
        Data::Error(e) => CellText::Error(e.to_string()),
        Data::Empty => CellText::Empty,
    }
}

/// Every number is a float in most workbooks (openpyxl's 3 is `3.0`): Rust writes one with no fraction
/// without a decimal point ("3"), so that its column can be an integer one, and never in exponent form.
fn number_text(f: f64) -> String {
    f.to_string()
}

/// A date with no time of day as a date, so that a column of them is a date column; a duration in ISO 8601,
/// as ODS writes one. The components are the ones Excel shows (its 1900 and 1904 systems alike).
fn excel_datetime_text(dt: &ExcelDateTime) -> String {
    if dt.is_duration() {
        return iso_duration((dt.as_f64() * 86_400_000.0).round() as i64);
    }
    let (year, month, day, hour, minute, second, milli) = dt.to_ymd_hms_milli();
    let date = format!("{year:04}-{month:02}-{day:02}");
    match (hour, minute, second, milli) {
        (0, 0, 0, 0) => date,
        (_, _, _, 0) => format!("{date}T{hour:02}:{minute:02}:{second:02}"),
        _ => format!("{date}T{hour:02}:{minute:02}:{second:02}.{milli:03}"),
    }
}

fn iso_duration(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    match frac {
        0 => format!("{sign}PT{h}H{m}M{s}S"),
        _ => format!("{sign}PT{h}H{m}M{s}.{frac:03}S"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{CellErrorType, ExcelDateTimeType};

    fn text(cell: Data) -> String {
        match cell_text(&cell) {
            CellText::Value(v) => v,
            other => panic!("{cell:?} gave {other:?}"),
        }
    }

    #[test]
    fn whole_floats_are_integers_and_others_keep_their_digits() {
        assert_eq!(text(Data::Float(3.0)), "3");
        assert_eq!(text(Data::Float(-40.0)), "-40");
        assert_eq!(text(Data::Float(40.41)), "40.41");
        assert_eq!(text(Data::Float(0.1 + 0.2)), "0.30000000000000004");
        assert_eq!(text(Data::Float(1e20)), "100000000000000000000");
        assert_eq!(text(Data::Int(7)), "7");
        assert_eq!(text(Data::Bool(true)), "true");
    }

    #[test]
    fn dates_are_iso_8601_and_midnight_is_a_date() {
        let excel = |v| Data::DateTime(ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false));
        // 45429 is 2024-05-17 in the 1900 system
        assert_eq!(text(excel(45429.0)), "2024-05-17");
        assert_eq!(text(excel(45429.0 + (13.0 * 3600.0 + 45.0 * 60.0 + 30.0) / 86400.0)), "2024-05-17T13:45:30");
        assert_eq!(text(excel(45429.5 + 0.25 / 86400.0)), "2024-05-17T12:00:00.250");
        let mac = Data::DateTime(ExcelDateTime::new(45429.0 - 1462.0, ExcelDateTimeType::DateTime, true));
        assert_eq!(text(mac), "2024-05-17");
        let duration = Data::DateTime(ExcelDateTime::new(1.5 + 30.0 / 86400.0, ExcelDateTimeType::TimeDelta, false));
        assert_eq!(text(duration), "PT36H0M30S");
        assert_eq!(text(Data::DateTimeIso("2024-05-17T13:45:30".into())), "2024-05-17T13:45:30");
    }

    #[test]
    fn errors_and_blanks_are_no_value() {
        assert_eq!(cell_text(&Data::Error(CellErrorType::Div0)), CellText::Error("#DIV/0!".into()));
        assert_eq!(cell_text(&Data::Empty), CellText::Empty);
        assert_eq!(cell_text(&Data::String(String::new())), CellText::Empty);
    }
}
