//! What the discovery routes ask of a source: whether we can connect, and which tables it has.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use super::connect::{self, SourceError};
use super::params::{Connection, Provider};
use crate::source::address_policy::AddressPolicy;

/// The most tables listed (the reference's limit).
pub const MAX_LISTED_TABLES: i64 = 500;

/// A table (or view) the connection can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TableRef {
    pub schema: String,
    pub name: String,
}

/// The tables and views the user can see, system schemas left out, at most [`MAX_LISTED_TABLES`]. For
/// MySQL, only the connection's database when it names one.
pub async fn tables(
    provider: Provider,
    policy: &AddressPolicy,
    c: &Connection,
    timeout: Duration,
) -> Result<Vec<TableRef>, SourceError> {
    let fail = |e: sqlx::Error| connect::query_error(c, &e);
    match provider {
        Provider::Mysql => {
            let mut conn = connect::mysql(policy, c, timeout).await?;
            let rows = sqlx::query(
                "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
                   AND (? IS NULL OR TABLE_SCHEMA = ?) ORDER BY 1, 2 LIMIT ?",
            )
            .bind(&c.database)
            .bind(&c.database)
            .bind(MAX_LISTED_TABLES)
            .fetch_all(&mut conn.conn)
            .await
            .map_err(fail)?;
            Ok(rows.iter().map(|r| TableRef { schema: text(r, 0), name: text(r, 1) }).collect())
        }
        Provider::Postgres => {
            let mut conn = connect::postgres(policy, c, timeout).await?;
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT table_schema::text, table_name::text FROM information_schema.tables \
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg\\_%' \
                 ORDER BY 1, 2 LIMIT $1",
            )
            .bind(MAX_LISTED_TABLES)
            .fetch_all(&mut conn.conn)
            .await
            .map_err(fail)?;
            Ok(rows.into_iter().map(|(schema, name)| TableRef { schema, name }).collect())
        }
    }
}

fn text(row: &sqlx::mysql::MySqlRow, i: usize) -> String {
    row.try_get_unchecked::<Option<&[u8]>, _>(i)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}
