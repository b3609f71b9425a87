//! Publishing a raster table: the table and its overview tables move into the user's schema together, the
//! overviews named as the reference names them (`o_<factor>_<table>`) and registered in `raster_overviews`
//! (`AddOverviewConstraints` names the table, so this can only happen once its final name is known).
//! Replacing a raster table (overwrite, a sync run) drops the old overviews with it.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, PgConnection};

use super::schema::{free_name, move_table};
use crate::db::{quote_ident, quote_literal};
use crate::formats::raster::RASTER_COLUMN;
use crate::load::Overview;
use crate::load::names::{MAX_IDENT, truncate};
use crate::load::table::StagingTable;

/// Moves `table` and its `overviews` into `schema` as `name` and `o_<factor>_<name>`; `existing` holds the
/// schema's relation names and gets the new ones. When `replaces`, the table of that name and its
/// overviews go first.
pub async fn publish_raster(
    conn: &mut PgConnection,
    schema: &str,
    name: &str,
    table: &StagingTable,
    overviews: &[Overview],
    replaces: bool,
    existing: &mut HashSet<String>,
) -> Result<(), sqlx::Error> {
    let s = quote_ident(schema);
    if replaces {
        let old: Vec<String> = sqlx::query_scalar(
            "SELECT o_table_name::text FROM raster_overviews WHERE r_table_schema = $1 AND r_table_name = $2",
        )
        .bind(schema)
        .bind(name)
        .fetch_all(&mut *conn)
        .await?;
        for table in old.iter().map(String::as_str).chain([name]) {
            sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {s}.{}", quote_ident(table))))
                .execute(&mut *conn)
                .await?;
            existing.remove(table);
        }
    }
    move_table(conn, table, schema, name).await?;
    for overview in overviews {
        let wanted = overview_name(overview.factor, name);
        let overview_name = free_name(&wanted, existing);
        existing.insert(overview_name.clone());
        move_table(conn, &overview.staging, schema, &overview_name).await?;
        sqlx::query(AssertSqlSafe(format!(
            "SELECT AddOverviewConstraints({schema_literal}, {}, {column}, {schema_literal}, {}, {column}, {})",
            quote_literal(&overview_name),
            quote_literal(name),
            overview.factor,
            schema_literal = quote_literal(schema),
            column = quote_literal(RASTER_COLUMN),
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// `o_<factor>_<table>`, cut to PostgreSQL's 63 bytes.
fn overview_name(factor: usize, table: &str) -> String {
    truncate(&format!("o_{factor}_{table}"), MAX_IDENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::overview_name;

    #[test]
    fn overview_names_fit_in_an_identifier() {
        assert_eq!(overview_name(2, "dem"), "o_2_dem");
        let long = "é".repeat(40);
        let name = overview_name(128, &long);
        assert!(name.len() <= 63 && name.starts_with("o_128_é"), "{name}");
    }
}
