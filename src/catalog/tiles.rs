//! Vector tiles of a table, made by PostGIS: the features whose `the_geom_webmercator` meets the tile
//! (found through its GiST index), clipped and quantised by `ST_AsMVTGeom`, encoded by `ST_AsMVT` with
//! every other column as a property and `cartodb_id` as the feature id. One layer per tile, named after
//! the table.

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::lookup::{TableKind, find, qualified};
use crate::db::{quote_ident, quote_literal};

/// The deepest zoom served (web maps stop at 22 to 24).
pub const MAX_ZOOM: u32 = 24;
/// Tile extent in MVT units, the specification's default.
const EXTENT: i32 = 4096;
/// Border around each tile, in MVT units, so that lines and polygons do not show seams.
const BUFFER: i32 = 64;
/// Features one tile holds at most: a low zoom over millions of rows would otherwise make a tile of
/// hundreds of megabytes. Past it, a tile shows the first features by `cartodb_id`.
pub const MAX_FEATURES: i64 = 100_000;
/// The longest a tile may take to make.
const TIMEOUT: &str = "10s";

/// A tile's bytes, and an ETag that changes with them.
#[derive(Debug, Clone)]
pub struct Tile {
    pub bytes: Vec<u8>,
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TileError {
    #[error("no such table")]
    NotFound,
    #[error("{0}")]
    BadAddress(String),
    /// The table's tiles are of the other kind (PNG for a raster, MVT for a vector table).
    #[error("{0}")]
    WrongKind(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Tile `z`/`x`/`y` (XYZ, as web maps number them) of the table `name` of `schema`.
pub async fn tile(
    conn: &mut PgConnection,
    schema: &str,
    name: &str,
    z: u32,
    x: u32,
    y: u32,
) -> Result<Tile, TileError> {
    check_table(conn, schema, name, (z, x, y), TableKind::Vector).await?;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 \
         AND NOT a.attisdropped AND format_type(a.atttypid, a.atttypmod) NOT LIKE 'geometry%' ORDER BY a.attnum",
    )
    .bind(qualified(schema, name))
    .fetch_all(&mut *conn)
    .await?;
    let properties: String = columns.iter().map(|c| format!(", t.{}", quote_ident(c))).collect();
    let statement = format!(
        "WITH bounds AS (SELECT ST_TileEnvelope({z}, {x}, {y}) AS envelope), \
         features AS (SELECT ST_AsMVTGeom(t.the_geom_webmercator, bounds.envelope, {EXTENT}, {BUFFER}, true) AS geom \
                      {properties} \
                      FROM {table} t, bounds \
                      WHERE t.the_geom_webmercator && ST_Expand(bounds.envelope, \
                            (ST_XMax(bounds.envelope) - ST_XMin(bounds.envelope)) * {BUFFER}.0 / {EXTENT}) \
                      ORDER BY t.cartodb_id LIMIT {MAX_FEATURES}) \
         SELECT coalesce(ST_AsMVT(features.*, {layer}, {EXTENT}, 'geom', 'cartodb_id'), ''::bytea) \
         FROM features WHERE geom IS NOT NULL",
        table = qualified(schema, name),
        layer = quote_literal(name),
    );
    let mut tx = conn.begin().await?;
    sqlx::query(AssertSqlSafe(format!("SET LOCAL statement_timeout = '{TIMEOUT}'"))).execute(&mut *tx).await?;
    let bytes: Vec<u8> = sqlx::query_scalar(AssertSqlSafe(statement)).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(Tile { etag: etag_of(&bytes), bytes })
}

/// A tile of the table `name` of `schema`, of `kind`, at an address web maps can ask for.
pub(super) async fn check_table(
    conn: &mut PgConnection,
    schema: &str,
    name: &str,
    (z, x, y): (u32, u32, u32),
    kind: TableKind,
) -> Result<(), TileError> {
    check_address(z, x, y)?;
    match find(conn, schema, name).await? {
        None => Err(TileError::NotFound),
        Some(found) if found == kind => Ok(()),
        Some(TableKind::Raster) => Err(TileError::WrongKind("a raster table's tiles are .png")),
        Some(TableKind::Vector) => Err(TileError::WrongKind("a vector table's tiles are .mvt")),
    }
}

/// A tile address web maps can ask for: zoom up to [`MAX_ZOOM`], x and y within the zoom's grid.
fn check_address(z: u32, x: u32, y: u32) -> Result<(), TileError> {
    if z > MAX_ZOOM {
        return Err(TileError::BadAddress(format!("zoom {z} is past the deepest, {MAX_ZOOM}")));
    }
    let side = 1u64 << z;
    if u64::from(x) >= side || u64::from(y) >= side {
        return Err(TileError::BadAddress(format!("at zoom {z}, x and y go from 0 to {}", side - 1)));
    }
    Ok(())
}

/// An ETag that changes with the tile's bytes.
pub(super) fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..12]))
}
