//! Database connectors: imports that read a table, or the result of a query, from a MySQL/MariaDB or
//! PostgreSQL server (the reference's `connector` parameter, its §7), and the discovery routes' work.
//!
//! - [`params`]: the request, validated when it arrives; the connection part is sealed ([`seal`]).
//! - [`connect`]: connecting under the address policy, with failures in plain words and never a password.
//! - [`mysql`]: rows streamed with a prepared statement (binary protocol), each value converted in Rust and
//!   written as binary COPY, like a file's.
//! - [`postgres`]: the source's own binary COPY, re-framed on the fly with our three columns in front.
//! - [`shape`], [`load`]: the table's shape and the load into a staging table, shared by both.
//!
//! No foreign data wrapper and no extension is involved: the target database never connects anywhere.

pub mod connect;
pub mod discover;
mod load;
pub mod mysql;
pub mod params;
mod pgbinary;
pub mod postgres;
pub mod relay;
pub mod seal;
pub mod shape;
pub mod store;
pub mod text;

use std::time::Duration;

use crate::config::Settings;
use crate::errors::{ImportError, codes};
use crate::load::names::sanitize_table_name;
use crate::load::{LoadContext, LoadedLayer};
use crate::queue::ImportState;
use crate::source::address_policy::AddressPolicy;
pub use params::{Connection, ConnectorRequest, ConnectorSpec, InvalidConnector, Provider};

/// Everything a provider's loader needs besides the load context.
pub struct ConnectorJob {
    pub spec: ConnectorSpec,
    pub connection: Connection,
    pub policy: AddressPolicy,
    pub connect_timeout: Duration,
    /// The most rows to read (the user's `max_rows_per_connection`).
    pub max_rows: i64,
    /// The sanitized name the table asks for.
    pub table_name: String,
}

/// Runs the load of a connector import: opens its sealed connection, reads, fills a staging table.
pub async fn load_job(ctx: &LoadContext<'_>, settings: &Settings) -> Result<Vec<LoadedLayer>, ImportError> {
    let internal = |e: sqlx::Error| ImportError::unknown(format!("database error: {e}"));
    let (spec, sealed, synchronization) = store::for_import(ctx.pool, ctx.job_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ImportError::unknown("the import disappeared"))?;
    let spec: ConnectorSpec = spec
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| ImportError::new(codes::CONNECTOR_INVALID_PARAMETERS, "the import has no connector"))?;
    let sealed = sealed.ok_or_else(|| {
        ImportError::new(codes::CONNECTOR_ERROR, "the import's connection details are gone: import it again")
    })?;
    let sealer = settings.sealer().map_err(|e| ImportError::new(codes::CONNECTOR_ERROR, e.to_string()))?;
    // A synchronization's runs share its sealed connection, bound to the synchronization.
    let binding = seal::Binding { user: ctx.user.id, owner: synchronization.unwrap_or(ctx.job_id) };
    let opened = sealer.open(&sealed, binding).map_err(|e| ImportError::new(codes::CONNECTOR_ERROR, e.to_string()))?;
    let connection: Connection = serde_json::from_slice(&opened)
        .map_err(|_| ImportError::new(codes::CONNECTOR_ERROR, "the sealed connection details are unreadable"))?;
    let max_rows = store::max_rows(ctx.pool, ctx.user.id).await.map_err(internal)?;
    let job = ConnectorJob {
        table_name: sanitize_table_name(spec.wanted_name()),
        spec,
        connection,
        policy: settings.runtime.connector_policy(crate::db::own_addresses(ctx.pool).await),
        connect_timeout: settings.runtime.connect_timeout(),
        max_rows,
    };
    ctx.state.send_replace(ImportState::Importing);
    let layer = match job.spec.provider {
        Provider::Mysql => mysql::load(ctx, &job).await?,
        Provider::Postgres => postgres::load(ctx, &job).await?,
    };
    Ok(vec![layer])
}

/// A failure while reading from a source: the relay's cut (a row or message past the cap) says so, any other
/// error is told in the source's own words.
pub(crate) fn source_read_error(c: &Connection, e: &sqlx::Error, progress: &relay::Progress) -> ImportError {
    if progress.exceeded() {
        return ImportError::new(
            codes::DATASET_TOO_BIG,
            format!(
                "the source sent a row (or a protocol message) larger than {} MiB, the most one row may take; \
                 the read was stopped",
                progress.cap() >> 20
            ),
        );
    }
    connect::query_error(c, e).into_import_error()
}

/// Indexes of the result columns to import among `names`: all, or those `columns` names, in its order.
pub(crate) fn pick_columns(job: &ConnectorJob, names: &[&str]) -> Result<Vec<usize>, ImportError> {
    let Some(wanted) = &job.spec.columns else { return Ok((0..names.len()).collect()) };
    wanted
        .iter()
        .map(|w| {
            names.iter().position(|n| n.eq_ignore_ascii_case(&w.name)).ok_or_else(|| {
                ImportError::new(
                    codes::CONNECTOR_ERROR,
                    format!("the source has no column '{}' (it has: {})", w.name, names.join(", ")),
                )
            })
        })
        .collect()
}

/// Columns the user gave a type in `columns`, under their final names.
pub(crate) fn retyped_columns(
    job: &ConnectorJob,
    names: &[&str],
    kept: &[usize],
    finals: &[String],
) -> Vec<(String, String)> {
    let Some(wanted) = &job.spec.columns else { return Vec::new() };
    wanted
        .iter()
        .filter_map(|w| {
            let t = w.pg_type.clone()?;
            let source = names.iter().position(|n| n.eq_ignore_ascii_case(&w.name))?;
            let k = kept.iter().position(|&i| i == source)?;
            Some((finals[k].clone(), t))
        })
        .collect()
}

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

/// Removes trailing semicolons and blanks from a query (it is run as one statement, or wrapped).
pub fn clean_query(sql: &str) -> String {
    sql.trim().trim_end_matches(|c: char| c == ';' || c.is_whitespace()).to_string()
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

    #[test]
    fn queries_lose_their_final_semicolons() {
        assert_eq!(clean_query("  select 1 ;; \n"), "select 1");
    }
}
