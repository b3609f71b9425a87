//! What a provider's loader is given (the job, and the process's connector services), and the steps the
//! MySQL and PostgreSQL loaders share: picking and retyping columns, cleaning a query, telling a read's
//! failure.

use std::time::Duration;

use super::connect;
use super::params::{Connection, ConnectorSpec};
use super::relay;
use super::seal;
use crate::errors::{ImportError, codes};
use crate::source::address_policy::AddressPolicy;

/// Everything a provider's loader needs besides the load context.
pub struct ConnectorJob<'a> {
    pub spec: ConnectorSpec,
    pub connection: Connection,
    /// The address policy and connect timeout, as built at start.
    pub env: &'a ConnectorEnv,
    /// The most rows to read (the user's `max_rows_per_connection`).
    pub max_rows: i64,
    /// The sanitized name the table asks for.
    pub table_name: String,
}

/// What connector imports need from the process: built once at start (see [`crate::services`]).
pub struct ConnectorEnv {
    pub sealer: seal::Sealer,
    /// Which database addresses may be reached.
    pub policy: AddressPolicy,
    pub connect_timeout: Duration,
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
pub(crate) fn pick_columns(job: &ConnectorJob<'_>, names: &[&str]) -> Result<Vec<usize>, ImportError> {
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
    job: &ConnectorJob<'_>,
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

/// Removes trailing semicolons and blanks from a query (it is run as one statement, or wrapped).
pub fn clean_query(sql: &str) -> String {
    sql.trim().trim_end_matches(|c: char| c == ';' || c.is_whitespace()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_lose_their_final_semicolons() {
        assert_eq!(clean_query("  select 1 ;; \n"), "select 1");
    }
}
