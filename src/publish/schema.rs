//! Names in a user's schema: which are taken, the first free one for a table, and moving a staging table
//! into the schema under its final name (its indexes and sequence renamed after it). Shared by publishing
//! and by replacing a table.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, PgConnection};

use crate::db::quote_ident;
use crate::load::names::{is_reserved_table_name, with_suffix};
use crate::load::table::StagingTable;

/// Every relation name in the schema (tables, indexes, sequences, views share one namespace).
pub async fn relation_names(conn: &mut PgConnection, schema: &str) -> Result<HashSet<String>, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
    )
    .bind(schema)
    .fetch_all(conn)
    .await?;
    Ok(names.into_iter().collect())
}

pub async fn table_names(conn: &mut PgConnection, schema: &str) -> Result<HashSet<String>, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = $1")
        .bind(schema)
        .fetch_all(conn)
        .await?;
    Ok(names.into_iter().collect())
}

/// `wanted`, or `wanted_1`, `wanted_2`... whichever no relation of the schema uses.
pub fn free_name(wanted: &str, existing: &HashSet<String>) -> String {
    let taken = |n: &str| existing.contains(n) || is_reserved_table_name(n);
    if !taken(wanted) {
        return wanted.to_string();
    }
    // `pg_1`, `pg_2`... are all reserved: such a name needs a prefix, or the search would never end
    let base = if format!("{wanted}_").starts_with("pg_") { format!("table_{wanted}") } else { wanted.to_string() };
    (1..).map(|i| with_suffix(&base, &format!("_{i}"))).find(|n| !taken(n)).expect("an unbounded search ends")
}

/// Moves a staging table into the user's schema as `name`, and names its indexes and sequence after it.
pub async fn move_table(
    conn: &mut PgConnection,
    staging: &StagingTable,
    schema: &str,
    name: &str,
) -> Result<(), sqlx::Error> {
    let (s, n) = (quote_ident(schema), quote_ident(name));
    sqlx::query(AssertSqlSafe(format!("ALTER TABLE {} SET SCHEMA {s}", staging.qualified())))
        .execute(&mut *conn)
        .await?;
    sqlx::query(AssertSqlSafe(format!("ALTER TABLE {s}.{} RENAME TO {n}", quote_ident(&staging.name))))
        .execute(&mut *conn)
        .await?;
    let qualified = format!("{s}.{n}");
    let mut taken = relation_names(conn, schema).await?;
    let mut renames: Vec<(&str, String, String)> = sqlx::query_scalar::<_, String>(
        "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass",
    )
    .bind(&qualified)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|index| {
        let rest = index.strip_prefix(staging.name.as_str()).unwrap_or("_idx");
        let suffix = if rest == "_cartodb_id" { "_pkey".to_string() } else { rest.to_string() };
        ("INDEX", index, suffix)
    })
    .collect();
    let sequence: Option<String> = sqlx::query_scalar("SELECT pg_get_serial_sequence($1, 'cartodb_id')")
        .bind(&qualified)
        .fetch_one(&mut *conn)
        .await?;
    if let Some(seq) = sequence {
        let bare = seq.rsplit('.').next().unwrap_or(&seq).trim_matches('"').to_string();
        renames.push(("SEQUENCE", bare, "_cartodb_id_seq".into()));
    }
    for (kind, old, suffix) in renames {
        let new_name = free_name(&with_suffix(name, &suffix), &taken);
        taken.insert(new_name.clone());
        sqlx::query(AssertSqlSafe(format!(
            "ALTER {kind} {s}.{} RENAME TO {}",
            quote_ident(&old),
            quote_ident(&new_name)
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_table_named_like_the_catalogs_gets_a_free_name() {
        let existing: HashSet<String> = ["pg".to_string(), "table_pg_1".to_string()].into();
        assert_eq!(free_name("pg", &existing), "table_pg_2");
        assert_eq!(free_name("pgdata", &["pgdata".to_string()].into()), "pgdata_1");
        assert_eq!(free_name("pg_pkey", &HashSet::new()), "table_pg_pkey_1");
        assert_eq!(free_name("roads", &["roads".to_string()].into()), "roads_1");
    }
}
