//! What each MySQL column becomes (the type mapping pgloader users ask for), from the result's own
//! metadata and, for columns that come from a table, what `information_schema` says of their declaration
//! (the precision of a DECIMAL, the width of a BIT, a MariaDB JSON column, the declared type of text
//! fetched as raw bytes).

use crate::connector::shape::Role;
use crate::load::table::PgType;

/// How a value is read from the wire and written to the staging table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// TINYINT(1), BIT(1): non-zero is true.
    Bool,
    /// Integers, widened so that every value fits: the target is `smallint`, `integer`, `bigint` or
    /// `numeric` (BIGINT UNSIGNED).
    Int {
        unsigned: bool,
        target: IntTarget,
    },
    Float,
    Double,
    Decimal,
    /// YEAR: a number; the zero year '0000' is NULL.
    Year,
    Date,
    /// DATETIME: wall-clock time of the source's zone, shifted by this fixed offset (seconds east of UTC)
    /// to an instant; or, with None, written as is and converted by PostgreSQL afterwards.
    DateTime {
        offset: Option<i32>,
    },
    /// TIMESTAMP: an instant (the session runs in UTC).
    Timestamp,
    Time,
    /// BIT(n > 1): the bits as an unsigned number (`bigint`, or `numeric` for BIT(64)).
    Bits {
        wide: bool,
    },
    Text,
    Json,
    Bytes,
    Spatial,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntTarget {
    SmallInt,
    Integer,
    BigInt,
    Numeric,
}

/// A table column's declaration, from `information_schema.COLUMNS`.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// `DATA_TYPE`: `decimal`, `tinyint`, `longtext`...
    pub data_type: String,
    /// `COLUMN_TYPE`: `decimal(12,3)`, `tinyint(1) unsigned`, `bit(1)`, `enum('a','b')`...
    pub column_type: String,
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    /// MariaDB's JSON is LONGTEXT with a `json_valid` check.
    pub is_json: bool,
}

/// How the source's DATETIME values relate to instants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceZone {
    /// A fixed offset east of UTC, in seconds (UTC is 0).
    Offset(i32),
    /// A zone with rules (daylight saving): PostgreSQL applies it after the load.
    Named(String),
}

impl SourceZone {
    /// Reads MySQL's `@@time_zone` (with `@@system_time_zone` standing in for `SYSTEM`).
    pub fn parse(time_zone: &str, system: &str) -> SourceZone {
        let zone = if time_zone.eq_ignore_ascii_case("SYSTEM") { system } else { time_zone }.trim();
        if matches!(zone.to_ascii_uppercase().as_str(), "" | "UTC" | "GMT" | "Z" | "UNIVERSAL" | "ETC/UTC" | "ZULU") {
            return SourceZone::Offset(0);
        }
        if let Some(sign @ ('+' | '-')) = zone.chars().next()
            && let Some((h, m)) = zone[1..].split_once(':')
            && let (Ok(h), Ok(m)) = (h.parse::<i32>(), m.parse::<i32>())
        {
            let secs = h * 3600 + m * 60;
            return SourceZone::Offset(if sign == '-' { -secs } else { secs });
        }
        SourceZone::Named(zone.to_string())
    }
}

/// The mapping of one column: how to read it, the staging type, and its role for the table's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub reading: Reading,
    pub pg_type: PgType,
    pub role: Role,
}

fn int(unsigned: bool, target: IntTarget) -> Mapping {
    let pg_type = match target {
        IntTarget::SmallInt => PgType::SmallInt,
        IntTarget::Integer => PgType::Integer,
        IntTarget::BigInt => PgType::BigInt,
        IntTarget::Numeric => PgType::Raw("numeric(20,0)".into()),
    };
    Mapping { reading: Reading::Int { unsigned, target }, pg_type, role: Role::Integer }
}

fn text_types(data_type: &str) -> bool {
    matches!(data_type, "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" | "json")
}

/// Maps a column, given the driver's name for its wire type (`BIGINT UNSIGNED`, `BOOLEAN` for TINYINT(1),
/// `VARBINARY`...), its declaration if it comes from a table, and the source's zone.
pub fn map(wire: &str, declared: Option<&Declared>, zone: &SourceZone) -> Mapping {
    let unsigned = wire.ends_with(" UNSIGNED");
    let base = wire.split(' ').next().unwrap_or("");
    let m = |reading, pg_type, role| Mapping { reading, pg_type, role };
    match base {
        "BOOLEAN" => m(Reading::Bool, PgType::Boolean, Role::Other),
        "TINYINT" => int(unsigned, IntTarget::SmallInt),
        "SMALLINT" if unsigned => int(true, IntTarget::Integer),
        "SMALLINT" => int(false, IntTarget::SmallInt),
        "MEDIUMINT" => int(unsigned, IntTarget::Integer),
        "INT" if unsigned => int(true, IntTarget::BigInt),
        "INT" => int(false, IntTarget::Integer),
        "BIGINT" if unsigned => int(true, IntTarget::Numeric),
        "BIGINT" => int(false, IntTarget::BigInt),
        "FLOAT" => m(Reading::Float, PgType::Real, Role::Number),
        "DOUBLE" => m(Reading::Double, PgType::Double, Role::Number),
        "DECIMAL" => {
            let pg_type = match declared.and_then(|d| d.precision.zip(d.scale)) {
                Some((p, s)) if p > 0 => PgType::Raw(format!("numeric({p},{s})")),
                _ => PgType::Numeric,
            };
            m(Reading::Decimal, pg_type, Role::Number)
        }
        "YEAR" => m(Reading::Year, PgType::SmallInt, Role::Integer),
        "DATE" => m(Reading::Date, PgType::Date, Role::Other),
        "DATETIME" => match zone {
            SourceZone::Offset(secs) => m(Reading::DateTime { offset: Some(*secs) }, PgType::TimestampTz, Role::Other),
            SourceZone::Named(_) => m(Reading::DateTime { offset: None }, PgType::Timestamp, Role::Other),
        },
        "TIMESTAMP" => m(Reading::Timestamp, PgType::TimestampTz, Role::Other),
        "TIME" => m(Reading::Time, PgType::Interval, Role::Other),
        "BIT" => {
            let width = declared
                .and_then(|d| d.column_type.strip_prefix("bit("))
                .and_then(|r| r.trim_end_matches(')').parse::<u32>().ok());
            match width {
                Some(1) => m(Reading::Bool, PgType::Boolean, Role::Other),
                Some(w) if w < 64 => m(Reading::Bits { wide: false }, PgType::BigInt, Role::Integer),
                _ => m(Reading::Bits { wide: true }, PgType::Raw("numeric(20,0)".into()), Role::Integer),
            }
        }
        "JSON" => m(Reading::Json, PgType::Jsonb, Role::Other),
        "GEOMETRY" => m(Reading::Spatial, PgType::Geometry, Role::Spatial),
        "NULL" => m(Reading::Null, PgType::Text, Role::Other),
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => match declared {
            // Text fetched as raw bytes (the `encoding` parameter) still is text.
            Some(d) if d.is_json => m(Reading::Json, PgType::Jsonb, Role::Other),
            Some(d) if text_types(&d.data_type) => m(Reading::Text, PgType::Text, Role::Text),
            _ => m(Reading::Bytes, PgType::Bytea, Role::Bytes),
        },
        // CHAR, VARCHAR, the TEXTs, ENUM and SET: text (an ENUM's labels are its values).
        _ => match declared {
            Some(d) if d.is_json => m(Reading::Json, PgType::Jsonb, Role::Other),
            _ => m(Reading::Text, PgType::Text, Role::Text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(data_type: &str, column_type: &str) -> Declared {
        Declared { data_type: data_type.into(), column_type: column_type.into(), ..Default::default() }
    }

    #[test]
    fn the_mapping_pgloader_users_ask_for() {
        let utc = SourceZone::Offset(0);
        let t = |wire: &str, d: Option<&Declared>| map(wire, d, &utc).pg_type;
        assert_eq!(t("BOOLEAN", None), PgType::Boolean);
        assert_eq!(t("TINYINT UNSIGNED", None), PgType::SmallInt);
        assert_eq!(t("SMALLINT UNSIGNED", None), PgType::Integer);
        assert_eq!(t("INT UNSIGNED", None), PgType::BigInt);
        assert_eq!(t("BIGINT UNSIGNED", None), PgType::Raw("numeric(20,0)".into()));
        let dec = Declared { precision: Some(12), scale: Some(3), ..decl("decimal", "decimal(12,3)") };
        assert_eq!(t("DECIMAL", Some(&dec)), PgType::Raw("numeric(12,3)".into()));
        assert_eq!(t("ENUM", None), PgType::Text);
        assert_eq!(t("CHAR", Some(&decl("set", "set('a','b')"))), PgType::Text);
        assert_eq!(t("JSON", None), PgType::Jsonb);
        let maria_json = Declared { is_json: true, ..decl("longtext", "longtext") };
        assert_eq!(t("TEXT", Some(&maria_json)), PgType::Jsonb);
        assert_eq!(t("BLOB", None), PgType::Bytea);
        assert_eq!(t("BLOB", Some(&decl("varchar", "varchar(20)"))), PgType::Text);
        assert_eq!(t("BIT", Some(&decl("bit", "bit(1)"))), PgType::Boolean);
        assert_eq!(t("BIT", Some(&decl("bit", "bit(12)"))), PgType::BigInt);
        assert_eq!(t("GEOMETRY", None), PgType::Geometry);
        assert_eq!(t("TIMESTAMP", None), PgType::TimestampTz);
        assert_eq!(t("DATETIME", None), PgType::TimestampTz);
        assert_eq!(map("DATETIME", None, &SourceZone::Named("CET".into())).pg_type, PgType::Timestamp);
        assert_eq!(t("TIME", None), PgType::Interval);
    }

    #[test]
    fn source_zones() {
        assert_eq!(SourceZone::parse("SYSTEM", "UTC"), SourceZone::Offset(0));
        assert_eq!(SourceZone::parse("+02:00", "UTC"), SourceZone::Offset(7200));
        assert_eq!(SourceZone::parse("-03:30", "UTC"), SourceZone::Offset(-12600));
        assert_eq!(SourceZone::parse("SYSTEM", "CET"), SourceZone::Named("CET".into()));
        assert_eq!(SourceZone::parse("Europe/Madrid", "UTC"), SourceZone::Named("Europe/Madrid".into()));
    }
}
