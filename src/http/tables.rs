//! `/api/v1/tables`: the caller's tables, one table's columns and first rows, and its vector tiles for a
//! map. Owner-scoped like everything else: a table is looked up in the caller's schema only, so another
//! user's table answers 404 exactly as a table that does not exist.

use axum::Json;
use axum::extract::{RawPathParams, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::path;
use super::state::AppState;
use crate::catalog::{self, TableDetail, TableSummary, TileError};

/// The media type of Mapbox vector tiles.
const MVT: &str = "application/vnd.mapbox-vector-tile";
/// A raster table's tiles.
const PNG: &str = "image/png";

/// The caller's tables.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tables {
    pub tables: Vec<TableSummary>,
    pub total_entries: usize,
}

/// List your tables.
///
/// Every table your imports made (raster overviews are part of their raster), by name, with its rows,
/// geometry types, bounding box in longitude/latitude and the import that made it. Also served under
/// `/user/{username}/`.
#[utoipa::path(
    get,
    path = "/api/v1/tables",
    tag = "tables",
    responses(
        (status = 200, description = "The caller's tables", body = Tables),
        (status = 401, description = "Missing or wrong API key"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn list(State(state): State<AppState>, Caller(user): Caller) -> Result<Json<Tables>, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let tables = catalog::list(&mut conn, user.id, &user.schema_name).await?;
    Ok(Json(Tables { total_entries: tables.len(), tables }))
}

/// One of your tables.
///
/// Its summary, its columns with their PostgreSQL types, and its first 20 rows by `cartodb_id` as JSON
/// (`the_geom` as GeoJSON). Another user's table answers 404.
#[utoipa::path(
    get,
    path = "/api/v1/tables/{name}",
    tag = "tables",
    params(("name" = String, Path, description = "The table's name")),
    responses(
        (status = 200, description = "The table", body = TableDetail),
        (status = 401, description = "Missing or wrong API key"),
        (status = 404, description = "No such table of the caller's"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
) -> Result<Json<TableDetail>, ApiError> {
    let name = path::param(&params, "name").unwrap_or_default();
    let mut conn = state.pool.acquire().await?;
    let detail = catalog::describe(&mut conn, user.id, &user.schema_name, name).await?;
    detail.map(Json).ok_or(ApiError::NotFound("table"))
}

/// A tile of one of your tables.
///
/// Tile `z`/`x`/`y` (XYZ numbering, as web maps ask for tiles). A vector table's is `<y>.mvt`, made by
/// PostGIS from `the_geom_webmercator`: one layer named after the table, every column but the geometries
/// as properties, `cartodb_id` as each feature's id; at most 100,000 features per tile. A raster table's is
/// `<y>.png`, 256 x 256, rendered by PostGIS from the overview closest to the zoom: one or two bands coloured
/// by a ramp over the first band's values across the table, three 8-bit bands as RGB, nodata transparent.
/// With an `ETag` (a request with the same `If-None-Match` answers 304). Another user's table answers 404.
#[utoipa::path(
    get,
    path = "/api/v1/tables/{name}/tiles/{z}/{x}/{y}",
    tag = "tables",
    params(
        ("name" = String, Path, description = "The table's name"),
        ("z" = u32, Path, description = "Zoom, 0 to 24"),
        ("x" = u32, Path, description = "Column, from the west"),
        ("y" = String, Path, description = "Row from the north, followed by .mvt (a vector table) or .png (a raster)"),
    ),
    responses(
        (status = 200, description = "The tile (empty, or a transparent PNG, where the table has nothing)", content(
            ("application/vnd.mapbox-vector-tile"),
            ("image/png")
        )),
        (status = 304, description = "The tile is the one the client holds (If-None-Match)"),
        (status = 400, description = "No such tile (zoom past 24, x or y past the zoom's last, neither .mvt nor .png), or the other kind's (.mvt of a raster, .png of a vector table)"),
        (status = 401, description = "Missing or wrong API key"),
        (status = 404, description = "No such table of the caller's"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn tile(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = path::param(&params, "name").unwrap_or_default();
    let number = |key: &str| path::param(&params, key).and_then(|v| v.parse::<u32>().ok());
    let last = path::param(&params, "y").unwrap_or_default();
    let (y, media) = match last.rsplit_once('.') {
        Some((y, "mvt")) => (y.parse::<u32>().ok(), MVT),
        Some((y, "png")) => (y.parse::<u32>().ok(), PNG),
        _ => (None, MVT),
    };
    let (Some(z), Some(x), Some(y)) = (number("z"), number("x"), y) else {
        return Err(ApiError::BadRequest(
            "tiles",
            "a tile's address is /tiles/<z>/<x>/<y>.mvt (a vector table) or .png (a raster), in integers".into(),
        ));
    };
    let mut conn = state.pool.acquire().await?;
    let made = match media {
        PNG => catalog::raster_tile(&mut conn, &user.schema_name, name, z, x, y).await,
        _ => catalog::tile(&mut conn, &user.schema_name, name, z, x, y).await,
    };
    let tile = match made {
        Ok(tile) => tile,
        Err(TileError::NotFound) => return Err(ApiError::NotFound("table")),
        Err(TileError::BadAddress(why)) => return Err(ApiError::BadRequest("tiles", why)),
        Err(TileError::WrongKind(why)) => return Err(ApiError::BadRequest("tiles", why.into())),
        Err(TileError::Database(e)) => return Err(e.into()),
    };
    // Tables change when a sync replaces them: the client asks again, and the ETag spares the bytes.
    let cache = [(ETAG, tile.etag.clone()), (CACHE_CONTROL, "private, no-cache".to_string())];
    if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tile.etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((StatusCode::OK, cache, [(CONTENT_TYPE, media)], tile.bytes).into_response())
}
