//! PNG tiles of a raster table for a web map, rendered by PostGIS: the overview whose pixels are closest to
//! (and no coarser than) the tile's, its tiles that meet the tile merged, resampled onto the tile's 256 x 256
//! grid (nearest neighbour) and coloured: a raster of one or two bands by a ramp over the first band's
//! values across the whole table (so that neighbouring tiles agree), one of three or more 8-bit bands as
//! red, green and blue. Nodata is transparent. PostGIS hands the coloured raster over as its WKB and the
//! PNG is encoded here: `ST_AsPNG` goes through GDAL drivers that only a superuser may enable
//! (`postgis.gdal_enabled_drivers`), and geoimport works as an ordinary role.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::lookup::{TableKind, qualified};
use super::tiles::{MAX_ZOOM, Tile, TileError, etag_of};
use crate::db::quote_literal;

/// Web mercator's width, in metres.
const WORLD: f64 = 2.0 * 20_037_508.342_789_244;
/// Tile side, in pixels.
const SIDE: u32 = 256;
/// The longest a tile may take to make.
const TIMEOUT: &str = "10s";

/// PNG tile `z`/`x`/`y` of the raster table `name` of `schema`.
pub async fn raster_tile(
    conn: &mut PgConnection,
    schema: &str,
    name: &str,
    z: u32,
    x: u32,
    y: u32,
) -> Result<Tile, TileError> {
    super::tiles::check_table(conn, schema, name, (z, x, y), TableKind::Raster).await?;
    let (scale, bands, pixel_types): (f64, i32, Vec<String>) = sqlx::query_as(
        "SELECT abs(scale_x), num_bands, pixel_types::text[] FROM raster_columns \
         WHERE r_table_schema = $1 AND r_table_name = $2 AND r_raster_column = 'the_raster_webmercator'",
    )
    .bind(schema)
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    let overviews: Vec<(i32, String)> = sqlx::query_as(
        "SELECT overview_factor, o_table_name::text FROM raster_overviews \
         WHERE r_table_schema = $1 AND r_table_name = $2 ORDER BY overview_factor",
    )
    .bind(schema)
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    let tile_pixel = WORLD / f64::from(SIDE) / f64::from(1u32 << z.min(MAX_ZOOM));
    // The coarsest level whose pixels are still no larger than the tile's.
    let level = overviews
        .iter()
        .rfind(|(factor, _)| scale * f64::from(*factor) <= tile_pixel)
        .map_or_else(|| qualified(schema, name), |(_, table)| qualified(schema, table));
    let coarsest = overviews.last().map_or_else(|| qualified(schema, name), |(_, table)| qualified(schema, table));
    let rgb = bands >= 3 && pixel_types.iter().take(3).all(|t| t == "8BUI");
    let mut tx = conn.begin().await?;
    sqlx::query(AssertSqlSafe(format!("SET LOCAL statement_timeout = '{TIMEOUT}'"))).execute(&mut *tx).await?;
    let coloured = match rgb {
        true => format!("ST_AddBand(ST_AddBand({}, {}), {})", band(1), band(2), band(3)),
        false => {
            let (low, high): (Option<f64>, Option<f64>) = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT min((s).min), max((s).max) FROM (SELECT ST_SummaryStats(the_raster_webmercator, 1, true) s \
                 FROM {coarsest}) t"
            )))
            .fetch_one(&mut *tx)
            .await?;
            let (low, high) = (low.unwrap_or(0.0), high.unwrap_or(1.0));
            format!("ST_ColorMap({}, 1, {})", band(1), quote_literal(&ramp(low, high)))
        }
    };
    // Each band onto the tile's grid: a band of nodata over the whole tile, filled where the table has values.
    let statement = format!(
        "WITH env AS (SELECT ST_TileEnvelope({z}, {x}, {y}) AS e), \
         grid AS (SELECT ST_MakeEmptyRaster({SIDE}, {SIDE}, ST_XMin(e), ST_YMax(e), (ST_XMax(e) - ST_XMin(e)) / {SIDE}, \
                  (ST_YMin(e) - ST_YMax(e)) / {SIDE}, 0, 0, 3857) AS g FROM env), \
         merged AS (SELECT ST_Union(t.the_raster_webmercator) AS u FROM {level} t, env \
                    WHERE ST_Intersects(t.the_raster_webmercator, env.e)), \
         aligned AS (SELECT ST_Resample(merged.u, grid.g) AS a FROM grid, merged WHERE merged.u IS NOT NULL) \
         SELECT ST_AsBinary({coloured}) FROM grid, merged, aligned",
    );
    let wkb: Option<Vec<u8>> = sqlx::query_scalar(AssertSqlSafe(statement)).fetch_optional(&mut *tx).await?;
    tx.commit().await?;
    let bytes = match wkb {
        Some(wkb) => png_of(&wkb).map_err(|e| TileError::Database(sqlx::Error::Decode(e.into())))?,
        None => empty_png(),
    };
    Ok(Tile { etag: etag_of(&bytes), bytes })
}

/// Band `n` of the merged tiles resampled onto the tile's grid (`aligned.a`, resampled once for every
/// band) over the whole tile (`grid.g`): a band of nodata filled by map algebra where it has values.
fn band(n: u8) -> String {
    let nodata = format!("coalesce(ST_BandNoDataValue(merged.u, {n}), 0)");
    format!(
        "ST_MapAlgebra(ST_AddBand(grid.g, ST_BandPixelType(merged.u, {n}), {nodata}, {nodata}), 1, \
         aligned.a, {n}, '[rast2]', ST_BandPixelType(merged.u, {n}), 'FIRST', '[rast2]', NULL, NULL)"
    )
}

/// A ramp from blue through green and yellow to red over `low..high` (ST_ColorMap's text form), nodata
/// transparent.
fn ramp(low: f64, high: f64) -> String {
    let span = if high > low { high - low } else { 1.0 };
    let stops =
        [(0.0, "43 131 186"), (0.25, "171 221 164"), (0.5, "255 255 191"), (0.75, "253 174 97"), (1.0, "215 25 28")];
    // ST_ColorMap reads its stops from the highest value down (in ascending order it colours nothing).
    let mut text: Vec<String> = stops.iter().rev().map(|(at, rgb)| format!("{} {rgb} 255", low + at * span)).collect();
    text.push("nv 0 0 0 0".into());
    text.join("\n")
}

/// The PNG of a raster WKB of 8-bit bands: three (RGB) or four (RGBA, as ST_ColorMap makes them).
fn png_of(wkb: &[u8]) -> Result<Vec<u8>, String> {
    let (width, height, bands) = super::raster_wkb::eight_bit_bands(wkb)?;
    let color = match bands.len() {
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        n => return Err(format!("a tile of {n} bands")),
    };
    let mut pixels = Vec::with_capacity(bands.len() * bands[0].len());
    for i in 0..bands[0].len() {
        pixels.extend(bands.iter().map(|band| band[i]));
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, u32::from(width), u32::from(height));
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// A fully transparent tile: where the raster has no pixel.
fn empty_png() -> Vec<u8> {
    static EMPTY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| {
            let mut out = Vec::new();
            let mut encoder = png::Encoder::new(&mut out, SIDE, SIDE);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().expect("a PNG header in memory");
            writer.write_image_data(&vec![0; (SIDE * SIDE * 4) as usize]).expect("PNG data in memory");
            writer.finish().expect("a PNG in memory");
            out
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_tile_is_a_transparent_png_that_decodes() {
        let png = empty_png();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height, info.color_type), (SIDE, SIDE, png::ColorType::Rgba));
        assert!(pixels.iter().all(|b| *b == 0));
    }

    #[test]
    fn the_ramp_runs_from_the_highest_value_down_and_nodata_is_transparent() {
        let ramp = ramp(100.0, 300.0);
        let lines: Vec<&str> = ramp.lines().collect();
        assert_eq!(lines.first(), Some(&"300 215 25 28 255"));
        assert_eq!(lines[4], "100 43 131 186 255");
        assert_eq!(lines.last(), Some(&"nv 0 0 0 0"));
    }
}
