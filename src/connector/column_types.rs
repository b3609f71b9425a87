//! The types a connector import's `columns` parameter may cast to, checked before they reach SQL.

/// Types the `columns` parameter may ask for: plain data types, optionally with a numeric modifier
/// (`numeric(10,2)`, `varchar(20)`) and as arrays (`int[]`). The cast runs in our database, so types whose
/// input looks things up in its catalog (`regclass`, `regnamespace`...) would reveal other tenants'
/// tables; those, pseudo-types and any type this list does not name are refused.
pub const COLUMN_TYPES: &[&str] = &[
    "text",
    "varchar",
    "character varying",
    "char",
    "character",
    "smallint",
    "int2",
    "integer",
    "int",
    "int4",
    "bigint",
    "int8",
    "numeric",
    "decimal",
    "real",
    "float4",
    "double precision",
    "float8",
    "boolean",
    "bool",
    "date",
    "time",
    "time without time zone",
    "time with time zone",
    "timetz",
    "timestamp",
    "timestamp without time zone",
    "timestamp with time zone",
    "timestamptz",
    "interval",
    "json",
    "jsonb",
    "uuid",
    "bytea",
    "geometry",
    "geography",
];

/// Whether `t` is one of [`COLUMN_TYPES`], with an optional `(n)` or `(p,s)` and `[]`: checked by shape so
/// that it can be written into SQL as it is.
pub fn valid_type_name(t: &str) -> bool {
    let t = t.trim();
    let t = t.strip_suffix("[]").map(str::trim_end).unwrap_or(t);
    let (base, modifier) = match t.split_once('(') {
        Some((base, rest)) => (base.trim_end(), Some(rest)),
        None => (t, None),
    };
    let words: Vec<&str> = base.split_whitespace().collect();
    let base = words.join(" ").to_ascii_lowercase();
    let base_ok = base.len() == words.iter().map(|w| w.len()).sum::<usize>() + words.len().saturating_sub(1)
        && COLUMN_TYPES.contains(&base.as_str());
    let modifier_ok = modifier.is_none_or(|rest| {
        rest.strip_suffix(')').is_some_and(|args| {
            args.split(',').count() <= 2
                && args.split(',').all(|a| {
                    !a.trim().is_empty() && a.trim().len() <= 9 && a.trim().bytes().all(|b| b.is_ascii_digit())
                })
        })
    });
    base_ok && modifier_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_checked_before_reaching_sql() {
        for ok in [
            "text",
            "numeric(10,2)",
            "double precision",
            "int[]",
            "varchar(20)",
            "timestamp with time zone",
            "Timestamp  With Time Zone",
            "numeric(10, 2)[]",
        ] {
            assert!(valid_type_name(ok), "{ok}");
        }
        for bad in [
            "",
            "int); drop table x; --",
            "text'",
            "numeric(a)",
            "1int",
            "x(1",
            "\"t\"",
            "regclass",
            "regnamespace",
            "regrole",
            "regtype",
            "oid",
            "anyelement",
            "record",
            "pg_catalog.text",
            "numeric(1,2,3)",
            "numeric(99999999999)",
        ] {
            assert!(!valid_type_name(bad), "{bad}");
        }
    }
}
