//! OGR fields: which PostgreSQL type each field type becomes, and writing a feature's value as binary COPY.
//! Values are read through GDAL's C API, which gives every type (dates with their time zone, times,
//! binary) without the gdal crate's gaps.

use std::ffi::CStr;
use std::os::raw::c_int;

use gdal_sys::{OGRFieldSubType, OGRFieldType};

use crate::load::copy::CopyBuffer;
use crate::load::table::PgType;

/// How a field's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FieldKind {
    Boolean,
    Integer,
    BigInt,
    Double,
    Text,
    Date,
    Time,
    DateTime,
    Binary,
}

impl FieldKind {
    pub fn of(field_type: OGRFieldType::Type, sub_type: OGRFieldSubType::Type) -> FieldKind {
        match field_type {
            OGRFieldType::OFTInteger if sub_type == OGRFieldSubType::OFSTBoolean => FieldKind::Boolean,
            OGRFieldType::OFTInteger => FieldKind::Integer,
            OGRFieldType::OFTInteger64 => FieldKind::BigInt,
            OGRFieldType::OFTReal => FieldKind::Double,
            OGRFieldType::OFTDate => FieldKind::Date,
            OGRFieldType::OFTTime => FieldKind::Time,
            OGRFieldType::OFTDateTime => FieldKind::DateTime,
            OGRFieldType::OFTBinary => FieldKind::Binary,
            // strings, and lists (written as GDAL formats them)
            _ => FieldKind::Text,
        }
    }

    pub fn pg_type(self) -> PgType {
        match self {
            FieldKind::Boolean => PgType::Boolean,
            FieldKind::Integer => PgType::Integer,
            FieldKind::BigInt => PgType::BigInt,
            FieldKind::Double => PgType::Double,
            FieldKind::Text => PgType::Text,
            FieldKind::Date => PgType::Date,
            FieldKind::Time => PgType::Time,
            FieldKind::DateTime => PgType::TimestampTz,
            FieldKind::Binary => PgType::Bytea,
        }
    }
}

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch, in Julian day numbers.
const PG_EPOCH_JULIAN: i32 = 2_451_545;

/// Writes field `index` of `feature` as `kind`; NULL when unset or unreadable.
///
/// # Safety
/// `feature` must be a live OGR feature handle and `index` a valid field index of it.
pub unsafe fn write_field(feature: gdal_sys::OGRFeatureH, index: c_int, kind: FieldKind, out: &mut CopyBuffer) {
    unsafe {
        if gdal_sys::OGR_F_IsFieldSetAndNotNull(feature, index) == 0 {
            out.null();
            return;
        }
        match kind {
            FieldKind::Boolean => out.bool(gdal_sys::OGR_F_GetFieldAsInteger(feature, index) != 0),
            FieldKind::Integer => out.i32(gdal_sys::OGR_F_GetFieldAsInteger(feature, index)),
            FieldKind::BigInt => out.i64(gdal_sys::OGR_F_GetFieldAsInteger64(feature, index)),
            FieldKind::Double => out.f64(gdal_sys::OGR_F_GetFieldAsDouble(feature, index)),
            FieldKind::Text => {
                let raw = gdal_sys::OGR_F_GetFieldAsString(feature, index);
                if raw.is_null() {
                    out.null();
                } else {
                    out.text(&CStr::from_ptr(raw).to_string_lossy());
                }
            }
            FieldKind::Binary => {
                let mut len: c_int = 0;
                let data = gdal_sys::OGR_F_GetFieldAsBinary(feature, index, &mut len);
                if data.is_null() || len < 0 {
                    out.null();
                } else {
                    out.bytes(std::slice::from_raw_parts(data, len as usize));
                }
            }
            FieldKind::Date | FieldKind::Time | FieldKind::DateTime => match date_time(feature, index) {
                Some(v) => match kind {
                    FieldKind::Date => out.date(v.days),
                    FieldKind::Time => out.i64(v.micros),
                    _ => out.timestamp(i64::from(v.days) * 86_400_000_000 + v.micros - v.offset_secs * 1_000_000),
                },
                None => out.null(),
            },
        }
    }
}

struct DateTimeValue {
    /// Days since 2000-01-01.
    days: i32,
    /// Microseconds since midnight.
    micros: i64,
    /// Seconds east of UTC (0 when the zone is unknown or local).
    offset_secs: i64,
}

unsafe fn date_time(feature: gdal_sys::OGRFeatureH, index: c_int) -> Option<DateTimeValue> {
    let (mut y, mut mo, mut d, mut h, mut mi, mut tz) = (0, 0, 0, 0, 0, 0);
    let mut s: f32 = 0.0;
    let ok = unsafe {
        gdal_sys::OGR_F_GetFieldAsDateTimeEx(feature, index, &mut y, &mut mo, &mut d, &mut h, &mut mi, &mut s, &mut tz)
    };
    if ok == 0 {
        return None;
    }
    // A time field has no date; GDAL reports year 0 for it.
    let days = if y == 0 && mo == 0 {
        0
    } else {
        let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
        time::Date::from_calendar_date(y, month, u8::try_from(d).ok()?).ok()?.to_julian_day() - PG_EPOCH_JULIAN
    };
    let micros = (i64::from(h) * 3600 + i64::from(mi) * 60) * 1_000_000 + (f64::from(s) * 1_000_000.0).round() as i64;
    // GDAL's zone flag: 0 unknown, 1 local time, 100 UTC, 100 ± n quarters of an hour otherwise.
    let offset_secs = if tz > 1 { i64::from(tz - 100) * 15 * 60 } else { 0 };
    Some(DateTimeValue { days, micros, offset_secs })
}
