//! The user's tables: a summary of each (rows, geometry types, bounding box, the import that made it), and
//! one table's columns and first rows, as a map or a table beside it shows them.

use serde::Serialize;
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgConnection};
use utoipa::ToSchema;
use uuid::Uuid;

use super::lookup::{TableKind, find, qualified, tables};
use crate::db::quote_ident;

/// Rows a table's first rows show.
const FIRST_ROWS: i64 = 20;
/// A text value of the first rows is cut to this many characters: a cell may hold megabytes.
const MAX_TEXT: i32 = 1000;
/// A geometry of the first rows with more points than this is shown as null: its GeoJSON could be huge.
const MAX_POINTS: i32 = 10_000;
/// Geometries sampled for a table's geometry types.
const TYPE_SAMPLE: i64 = 1000;

/// A table, as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TableSummary {
    pub name: String,
    pub kind: TableKind,
    /// Rows (a raster's tiles): exact for a table PostgreSQL has not analysed yet, its estimate otherwise
    /// (exact for tables of up to 30,000 rows, which ANALYZE reads whole).
    pub rows: i64,
    /// The geometry types of a sample of its rows (`POINT`, `MULTIPOLYGON`...); empty for a raster.
    pub geometry_types: Vec<String>,
    /// West, south, east, north, in longitude and latitude (EPSG:4326); null for a table with no geometry.
    pub bbox: Option<[f64; 4]>,
    /// The import that made (or last replaced) it.
    pub import_id: Option<Uuid>,
    /// Bytes it takes, its indexes and TOAST included.
    pub size_bytes: i64,
}

/// A column and its PostgreSQL type.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// A table with its columns and first rows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TableDetail {
    #[serde(flatten)]
    pub summary: TableSummary,
    pub columns: Vec<Column>,
    /// Its first rows by `cartodb_id`, as JSON objects: `the_geom` as GeoJSON (null past 10,000 points),
    /// text cut to 1,000 characters, no `the_geom_webmercator`. For a raster, each tile's size and bands.
    pub first_rows: Vec<Value>,
}

/// Every published table of `schema` (overview tables are part of their raster), by name.
pub async fn list(conn: &mut PgConnection, user_id: Uuid, schema: &str) -> Result<Vec<TableSummary>, sqlx::Error> {
    let mut listed = Vec::new();
    for (name, kind) in tables(conn, schema, None).await? {
        listed.push(summary(conn, user_id, schema, &name, kind).await?);
    }
    Ok(listed)
}

/// The table `name` of `schema` with its columns and first rows; None when it is not one of the user's
/// tables.
pub async fn describe(
    conn: &mut PgConnection,
    user_id: Uuid,
    schema: &str,
    name: &str,
) -> Result<Option<TableDetail>, sqlx::Error> {
    let Some(kind) = find(conn, schema, name).await? else { return Ok(None) };
    let summary = summary(conn, user_id, schema, name, kind).await?;
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    )
    .bind(qualified(schema, name))
    .fetch_all(&mut *conn)
    .await?;
    let table = qualified(schema, name);
    let shown = match kind {
        TableKind::Vector => columns
            .iter()
            .filter(|(c, _)| c != "the_geom_webmercator")
            .map(|(c, t)| shown_value(c, t))
            .collect::<Vec<_>>()
            .join(", "),
        TableKind::Raster => "cartodb_id, ST_Width(the_raster_webmercator) AS width, \
                              ST_Height(the_raster_webmercator) AS height, ST_NumBands(the_raster_webmercator) AS bands"
            .to_string(),
    };
    let first_rows: Vec<Value> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT to_jsonb(s) FROM (SELECT {shown} FROM {table} ORDER BY cartodb_id LIMIT {FIRST_ROWS}) s"
    )))
    .fetch_all(&mut *conn)
    .await?;
    let columns = columns.into_iter().map(|(name, type_name)| Column { name, type_name }).collect();
    Ok(Some(TableDetail { summary, columns, first_rows }))
}

/// How column `name` of type `type_name` shows in the first rows: geometries as GeoJSON, text cut.
fn shown_value(name: &str, type_name: &str) -> String {
    let c = quote_ident(name);
    if type_name.starts_with("geometry") {
        format!("CASE WHEN ST_NPoints({c}) <= {MAX_POINTS} THEN ST_AsGeoJSON({c}, 7)::jsonb END AS {c}")
    } else if type_name == "text" || type_name.starts_with("character") {
        format!("left({c}::text, {MAX_TEXT}) AS {c}")
    } else {
        c
    }
}

async fn summary(
    conn: &mut PgConnection,
    user_id: Uuid,
    schema: &str,
    name: &str,
    kind: TableKind,
) -> Result<TableSummary, sqlx::Error> {
    let table = qualified(schema, name);
    let (estimate, size_bytes): (f32, i64) =
        sqlx::query_as("SELECT reltuples, pg_total_relation_size(oid) FROM pg_class WHERE oid = to_regclass($1)")
            .bind(&table)
            .fetch_one(&mut *conn)
            .await?;
    let rows = match estimate {
        // Never analysed (a table published moments ago): counted.
        e if e < 0.0 => {
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}"))).fetch_one(&mut *conn).await?
        }
        e => e.round() as i64,
    };
    let (geometry_types, extent) = match kind {
        TableKind::Vector => {
            let types: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT DISTINCT GeometryType(the_geom) FROM (SELECT the_geom FROM {table} WHERE the_geom IS NOT NULL \
                 LIMIT {TYPE_SAMPLE}) s ORDER BY 1"
            )))
            .fetch_all(&mut *conn)
            .await?;
            // PostGIS's estimate from the statistics when there are some, else the extent itself.
            let extent = format!(
                "SELECT coalesce(ST_EstimatedExtent({}, {}, 'the_geom')::geometry, \
                 (SELECT ST_Extent(the_geom)::geometry FROM {table}))",
                crate::db::quote_literal(schema),
                crate::db::quote_literal(name)
            );
            (types, extent)
        }
        TableKind::Raster => (
            Vec::new(),
            format!(
                "SELECT ST_Transform(ST_SetSRID(ST_Extent(ST_Envelope(the_raster_webmercator)), 3857), 4326) FROM {table}"
            ),
        ),
    };
    let bbox: Option<(f64, f64, f64, f64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ({extent}) s(e) WHERE e IS NOT NULL"
    )))
    .fetch_optional(&mut *conn)
    .await?;
    let import_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM geoimport.imports WHERE user_id = $1 AND state = 'complete' AND $2 = ANY(table_names) \
         ORDER BY updated_at DESC LIMIT 1",
    )
    .bind(user_id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(TableSummary {
        name: name.to_string(),
        kind,
        rows,
        geometry_types,
        bbox: bbox.map(|(w, s, e, n)| [w, s, e, n]),
        import_id,
        size_bytes,
    })
}
