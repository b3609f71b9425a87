//! Finding a table of the caller's schema: the one way a name from a request reaches a statement (looked
//! up in the catalog first, then quoted).

use sqlx::PgConnection;

use crate::db::quote_ident;

/// What kind of table a published table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// Rows with `the_geom` and `the_geom_webmercator`.
    Vector,
    /// Tiles of `the_raster_webmercator`.
    Raster,
}

/// The table `name` of `schema` (its kind), if it is one of the user's published tables; overview tables
/// of rasters are part of their raster, not tables of their own.
pub(crate) async fn find(conn: &mut PgConnection, schema: &str, name: &str) -> Result<Option<TableKind>, sqlx::Error> {
    Ok(tables(conn, schema, Some(name)).await?.pop().map(|(_, kind)| kind))
}

/// The published tables of `schema` (only `name`, if given) and their kinds, by name; overview tables
/// are part of their raster, not tables of their own.
pub(crate) async fn tables(
    conn: &mut PgConnection,
    schema: &str,
    name: Option<&str>,
) -> Result<Vec<(String, TableKind)>, sqlx::Error> {
    let overviews = overview_tables(conn, schema).await?;
    let found: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, bool_or(a.attname = 'the_raster_webmercator') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         WHERE n.nspname = $1 AND ($2::text IS NULL OR c.relname = $2) AND c.relkind IN ('r', 'p') \
         GROUP BY c.oid, c.relname ORDER BY c.relname",
    )
    .bind(schema)
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    let kind = |raster| if raster { TableKind::Raster } else { TableKind::Vector };
    Ok(found.into_iter().filter(|(n, _)| !overviews.contains(n)).map(|(n, raster)| (n, kind(raster))).collect())
}

/// The overview tables of the rasters of `schema` (none where PostGIS has no raster support).
async fn overview_tables(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let rasters: bool =
        sqlx::query_scalar("SELECT to_regclass('raster_overviews') IS NOT NULL").fetch_one(&mut *conn).await?;
    if !rasters {
        return Ok(Default::default());
    }
    let names: Vec<String> =
        sqlx::query_scalar("SELECT o_table_name::text FROM raster_overviews WHERE o_table_schema = $1")
            .bind(schema)
            .fetch_all(&mut *conn)
            .await?;
    Ok(names.into_iter().collect())
}

/// `schema.name`, quoted.
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}
