//! Rasters become PostGIS raster tables as the reference makes them: web mercator, 128 x 128 tiles,
//! `cartodb_id` and `the_raster_webmercator`, the raster constraints, a GiST index, and overview tables
//! `o_<factor>_<table>` registered in `raster_overviews`. Every raster here is made with GDAL's own tools, and
//! the values in the table are checked against GDAL's own reading of the file (`gdallocationinfo`,
//! `gdalinfo -stats`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::formats::{POINTS_GEOJSON, app_and_user, write};

/// Runs a GDAL command-line tool (tests make their rasters with them).
fn gdal(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("{tool} (gdal-bin): {e}"));
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A raster of `width` x `height` made of 8 x 8 blocks of one value each (so that a value read at a block's
/// centre is the same however the warp resamples), written as an ASCII grid then translated by GDAL.
fn blocky(dir: &Path, name: &str, size: (usize, usize), value: impl Fn(usize, usize) -> f64, args: &[&str]) -> PathBuf {
    let (width, height) = size;
    let mut asc = format!("ncols {width}\nnrows {height}\nxllcorner 0\nyllcorner 0\ncellsize 1\n");
    for y in 0..height {
        let row: Vec<String> = (0..width).map(|x| value(x / 8, y / 8).to_string()).collect();
        asc.push_str(&row.join(" "));
        asc.push('\n');
    }
    let source = write(dir, &format!("{name}.asc"), &asc);
    let out = dir.join(name);
    let mut all = args.to_vec();
    all.extend([source.as_str(), out.to_str().unwrap()]);
    gdal("gdal_translate", &all);
    std::fs::remove_file(&source).unwrap();
    out
}

/// What GDAL reads in `band` of `file` at longitude/latitude `at`.
fn gdal_value(file: &Path, band: usize, at: (f64, f64)) -> f64 {
    let b = band.to_string();
    let (lon, lat) = (at.0.to_string(), at.1.to_string());
    let out = gdal("gdallocationinfo", &["-valonly", "-b", &b, "-wgs84", file.to_str().unwrap(), &lon, &lat]);
    out.trim().parse().unwrap_or_else(|_| panic!("gdallocationinfo said {out:?}"))
}

/// The table's value in `band` at longitude/latitude `at`.
async fn table_value(app: &TestApp, table: &str, band: usize, at: (f64, f64)) -> f64 {
    let point = format!("ST_Transform(ST_SetSRID(ST_MakePoint({}, {}), 4326), 3857)", at.0, at.1);
    table_value_at(app, table, band, &point).await
}

/// The table's value in `band` at the point (in EPSG:3857) that `point` computes.
async fn table_value_at(app: &TestApp, table: &str, band: usize, point: &str) -> f64 {
    let sql = format!(
        "SELECT ST_Value(the_raster_webmercator, {band}, p)::float8 FROM {table}, {point} p \
         WHERE ST_Intersects(the_raster_webmercator, p) LIMIT 1"
    );
    sqlx::query_scalar::<_, Option<f64>>(sqlx::AssertSqlSafe(sql))
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .unwrap_or(f64::NAN)
}

/// The longitude and latitude of the point (`x`, `y`) of `srid`, as PostGIS transforms it.
async fn lon_lat(app: &TestApp, srid: i32, x: f64, y: f64) -> (f64, f64) {
    sqlx::query_as("SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint($1, $2), $3), 4326) p")
        .bind(x)
        .bind(y)
        .bind(srid)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The table's row of `raster_columns`: srid, block width and height, bands, pixel types, nodata values.
async fn raster_column(
    app: &TestApp,
    schema: &str,
    table: &str,
) -> (i32, i32, i32, i32, Vec<String>, Vec<Option<f64>>) {
    sqlx::query_as(
        "SELECT srid, blocksize_x, blocksize_y, num_bands, pixel_types::text[], nodata_values::float8[] \
         FROM raster_columns WHERE r_table_schema = $1 AND r_table_name = $2 AND r_raster_column = 'the_raster_webmercator'",
    )
    .bind(schema)
    .bind(table)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{schema}.{table} is not in raster_columns: {e}"))
}

/// The overview factors `raster_overviews` lists for a table, and the tables holding them.
async fn overviews(app: &TestApp, schema: &str, table: &str) -> Vec<(i32, String)> {
    sqlx::query_as(
        "SELECT overview_factor, o_table_name::text FROM raster_overviews \
         WHERE r_table_schema = $1 AND r_table_name = $2 ORDER BY overview_factor",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dem_in_4326_with_nodata_becomes_a_tiled_web_mercator_table_with_overviews() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let height =
        |x: usize, y: usize| if (x + y).is_multiple_of(7) { -9999.0 } else { (x * 37 + y * 101) as f64 % 3000.0 };
    let tif = blocky(
        dir.path(),
        "dem.tif",
        (600, 400),
        height,
        &["-ot", "Int16", "-a_srs", "EPSG:4326", "-a_ullr", "-4", "44", "2", "40", "-a_nodata", "-9999"],
    );
    let status = app.import_ok(&u, "dem.tif", std::fs::read(&tif).unwrap(), "").await;
    assert_eq!(status["is_raster"], true, "{status:#}");
    assert_eq!(status["any_table_raster"], true, "{status:#}");
    assert_eq!(status["table_names"], serde_json::json!(["dem"]));
    let tiles = app.count("SELECT count(*) FROM ana.dem").await;
    assert_eq!(status["rows_imported"].as_i64(), Some(tiles), "rows_imported counts the tiles");
    assert_eq!(
        app.columns("ana", "dem").await,
        [
            ("cartodb_id".to_string(), "bigint".to_string()),
            ("the_raster_webmercator".to_string(), "raster".to_string())
        ]
    );
    let (srid, bx, by, bands, types, nodata) = raster_column(&app, "ana", "dem").await;
    assert_eq!((srid, bands), (3857, 1));
    // Tiles are 128 x 128 but for the last column and row (raster2pgsql without -P): the constraints allow
    // both sizes, and raster_columns shows one of them.
    let first: (i32, i32) = sqlx::query_as(
        "SELECT ST_Width(the_raster_webmercator), ST_Height(the_raster_webmercator) FROM ana.dem WHERE cartodb_id = 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(first, (128, 128));
    assert!(bx <= 128 && by <= 128, "{bx} x {by}");
    assert_eq!((types, nodata), (vec!["16BSI".to_string()], vec![Some(-9999.0)]));
    assert_eq!(
        app.count("SELECT count(*) FROM pg_indexes WHERE schemaname = 'ana' AND tablename = 'dem' AND indexdef ILIKE '%gist (%st_convexhull(the_raster_webmercator))%'").await,
        1
    );
    assert_eq!(app.count("SELECT count(DISTINCT cartodb_id) FROM ana.dem").await, tiles, "cartodb_id is the key");
    // Every value GDAL reads in the file is the table's at the same place: block centres, nodata among them.
    for (bx, by) in [(0, 0), (3, 5), (40, 10), (74, 49), (20, 21)] {
        let at = (-4.0 + (bx as f64 * 8.0 + 4.0) * 0.01, 44.0 - (by as f64 * 8.0 + 4.0) * 0.01);
        let expected = gdal_value(&tif, 1, at);
        assert_eq!(expected, height(bx, by), "GDAL reads the file as written");
        let found = table_value(&app, "ana.dem", 1, at).await;
        if expected == -9999.0 {
            assert!(found.is_nan(), "a nodata pixel has no value in PostGIS, found {found}");
        } else {
            assert_eq!(found, expected, "at {at:?}");
        }
    }
    // gdalinfo's statistics of the file: the extremes survive the warp.
    let info = gdal("gdalinfo", &["-stats", tif.to_str().unwrap()]);
    let stat = |key: &str| -> f64 {
        info.lines().find_map(|l| l.trim().strip_prefix(key)).and_then(|v| v.parse().ok()).unwrap()
    };
    let (min, max): (f64, f64) = sqlx::query_as(
        "SELECT min((ST_SummaryStats(the_raster_webmercator)).min), max((ST_SummaryStats(the_raster_webmercator)).max) FROM ana.dem",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((min, max), (stat("STATISTICS_MINIMUM="), stat("STATISTICS_MAXIMUM=")));
    // Overviews: registered, named as the reference names them, and made of the base's own pixels.
    let found = overviews(&app, "ana", "dem").await;
    assert_eq!(found, [(2, "o_2_dem".to_string()), (4, "o_4_dem".to_string()), (8, "o_8_dem".to_string())]);
    for (factor, table) in &found {
        let (_, bx, _, _, types, nodata) = raster_column(&app, "ana", table).await;
        // A level of one tile has that tile's size as its block size, as raster2pgsql's have.
        assert!(bx <= 128, "{table}: {bx}");
        assert_eq!((types, nodata), (vec!["16BSI".to_string()], vec![Some(-9999.0)]), "{table}");
        let scale = app
            .count(&format!("SELECT round(ST_ScaleX(the_raster_webmercator) * 1000) FROM ana.{table} LIMIT 1"))
            .await;
        let base = app.count("SELECT round(ST_ScaleX(the_raster_webmercator) * 1000) FROM ana.dem LIMIT 1").await;
        assert!((scale - base * *factor as i64).abs() <= *factor as i64, "{table}: scale {scale} against {base}");
    }
    // An overview pixel is the base pixel at its centre: o_2's pixel (i, j) is the base's (2i + 1, 2j + 1).
    let mismatches = app
        .count(
            "SELECT count(*) FROM ana.o_2_dem o, generate_series(1, 40, 3) i, generate_series(1, 40, 3) j, \
             (SELECT ST_ScaleX(the_raster_webmercator) sx, ST_ScaleY(the_raster_webmercator) sy FROM ana.dem LIMIT 1) s, \
             LATERAL (SELECT ST_SetSRID(ST_MakePoint( \
                 ST_RasterToWorldCoordX(o.the_raster_webmercator, i, j) + 1.5 * s.sx, \
                 ST_RasterToWorldCoordY(o.the_raster_webmercator, i, j) + 1.5 * s.sy), 3857) p) pt, \
             LATERAL (SELECT ST_Value(b.the_raster_webmercator, pt.p) v FROM ana.dem b \
                      WHERE ST_Intersects(b.the_raster_webmercator, pt.p) LIMIT 1) bv \
             WHERE o.cartodb_id = 1 AND ST_Value(o.the_raster_webmercator, 1, i, j) IS DISTINCT FROM bv.v",
        )
        .await;
    assert_eq!(mismatches, 0, "o_2 takes the base's centre pixels");
    assert!(app.staging_tables().await.is_empty(), "no staging table is left");
    // The tables API lists the raster once, its overviews as part of it, with its tiles as rows and its
    // extent in longitude/latitude.
    let listed = app.get_json(&u, "/api/v1/tables").await;
    assert_eq!(listed["total_entries"], 1, "{listed:#}");
    let dem = &listed["tables"][0];
    assert_eq!((dem["name"].as_str(), dem["kind"].as_str()), (Some("dem"), Some("raster")), "{dem:#}");
    assert_eq!(dem["rows"].as_i64(), Some(tiles));
    let bbox: Vec<f64> = dem["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!((bbox[0] + 4.0).abs() < 0.01 && (bbox[2] - 2.0).abs() < 0.01, "{bbox:?}");
    assert!((bbox[1] - 40.0).abs() < 0.01 && (bbox[3] - 44.0).abs() < 0.01, "{bbox:?}");
    let tile = app.client.get(app.url(&format!("/api/v1/tables/dem/tiles/0/0/0.mvt?api_key={}", u.key))).send().await;
    assert_eq!(tile.unwrap().status(), 400, "a raster has no vector tiles");
    // Its map tiles are PNGs rendered by PostGIS: 256 x 256, coloured (RGBA: nodata is transparent), from the
    // overview of the zoom (z 3 is coarser than every level, z 9 finer than the base); a tile off the
    // raster is transparent.
    for z in [3, 6, 9] {
        let (x, y) = tile_of(z, (-1.0, 42.0));
        let resp = app.client.get(app.url(&format!("/api/v1/tables/dem/tiles/{z}/{x}/{y}.png?api_key={}", u.key)));
        let resp = resp.send().await.unwrap();
        assert_eq!(resp.status(), 200, "z {z}");
        assert_eq!(resp.headers()["content-type"], "image/png");
        let png = resp.bytes().await.unwrap();
        assert_eq!(png_header(&png), (256, 256, 6), "z {z}");
        assert!(png.len() > 1000, "z {z}: a varied DEM makes a varied tile ({} bytes)", png.len());
        // Drawn where the DEM is (a sliver of a zoom 3 tile, a zoom 9 tile whole) but for its nodata blocks
        // (one in seven).
        let opaque = png_opaque_share(&png);
        let least = match z {
            3 => 0.001,
            6 => 0.1,
            _ => 0.7,
        };
        assert!(opaque > least && opaque < 0.95, "z {z}: {opaque} of the tile drawn");
    }
    let (x, y) = tile_of(6, (120.0, -30.0));
    let off = app.client.get(app.url(&format!("/api/v1/tables/dem/tiles/6/{x}/{y}.png?api_key={}", u.key)));
    let off = off.send().await.unwrap().bytes().await.unwrap();
    assert_eq!(png_header(&off), (256, 256, 6));
    assert_eq!(png_opaque_share(&off), 0.0, "a tile off the raster is transparent");
    // The constraints are those of PostGIS's AddRasterConstraints (as raster2pgsql -C -x asks): a copy of the
    // table given them by PostGIS reads the same in raster_columns, with constraints of the same names.
    for statement in [
        "CREATE TABLE ana.dem_copy AS SELECT * FROM ana.dem",
        "SELECT AddRasterConstraints('ana', 'dem_copy', 'the_raster_webmercator', TRUE, TRUE, TRUE, TRUE, TRUE, TRUE, \
         FALSE, TRUE, TRUE, TRUE, TRUE, FALSE)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&app.pool).await.unwrap();
    }
    let described = |table: &str| {
        format!(
            "SELECT (srid, scale_x, scale_y, same_alignment, regular_blocking, num_bands, pixel_types, nodata_values, \
               out_db, extent IS NULL, (SELECT array_agg(conname::text ORDER BY conname) FROM pg_constraint \
               WHERE conrelid = 'ana.{table}'::regclass AND contype = 'c'))::text \
             FROM raster_columns WHERE r_table_schema = 'ana' AND r_table_name = '{table}'"
        )
    };
    let ours = app.texts(&described("dem")).await;
    assert_eq!(ours, app.texts(&described("dem_copy")).await);
    assert!(ours[0].as_deref().unwrap_or_default().contains("enforce_same_alignment"), "{ours:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_band_utm_image_and_a_float_grid_needing_a_datum_shift_keep_their_bands_and_values() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    // Three bands of bytes in UTM 33N, no nodata.
    let red = blocky(dir.path(), "red.tif", (256, 256), |x, y| ((x * 9 + y) % 250) as f64, &["-ot", "Byte"]);
    let rgb = dir.path().join("image.tif");
    let rgb_s = rgb.to_str().unwrap();
    gdal(
        "gdal_translate",
        &[
            "-b",
            "1",
            "-b",
            "1",
            "-b",
            "1",
            "-scale_2",
            "0",
            "255",
            "255",
            "0",
            "-a_srs",
            "EPSG:32633",
            "-a_ullr",
            "500000",
            "5000000",
            "502560",
            "4997440",
            "-co",
            "PHOTOMETRIC=RGB",
            red.to_str().unwrap(),
            rgb_s,
        ],
    );
    let status = app.import_ok(&u, "image.tif", std::fs::read(&rgb).unwrap(), "").await;
    let table = format!("ana.{}", status["table_name"].as_str().unwrap());
    let (srid, _, _, bands, types, nodata) = raster_column(&app, "ana", status["table_name"].as_str().unwrap()).await;
    assert_eq!((srid, bands), (3857, 3));
    assert_eq!(types, vec!["8BUI".to_string(); 3]);
    assert_eq!(nodata, vec![None; 3], "no nodata in the file, none made up");
    for (x, y) in [(2.0, 3.0), (20.0, 25.0), (30.0, 1.0)] {
        let (lon, lat) =
            lon_lat(&app, 32633, 500000.0 + (x * 8.0 + 4.0) * 10.0, 5000000.0 - (y * 8.0 + 4.0) * 10.0).await;
        for band in 1..=3 {
            let expected = gdal_value(&rgb, band, (lon, lat));
            assert_eq!(table_value(&app, &table, band, (lon, lat)).await, expected, "band {band} at {x},{y}");
        }
    }
    // Three bytes bands are drawn as red, green and blue.
    let (lon, lat) = lon_lat(&app, 32633, 501280.0, 4998720.0).await;
    let (x, y) = tile_of(14, (lon, lat));
    let name = status["table_name"].as_str().unwrap();
    let tile = app.client.get(app.url(&format!("/api/v1/tables/{name}/tiles/14/{x}/{y}.png?api_key={}", u.key)));
    let png = tile.send().await.unwrap().bytes().await.unwrap();
    assert_eq!(png_header(&png), (256, 256, 2), "RGB");
    // Float32 in the British National Grid (OSGB36: a datum shift to WGS 84).
    let grid = blocky(
        dir.path(),
        "rain.tif",
        (200, 160),
        |x, y| (x as f64 * 0.25 + y as f64 * 1.5) - 3.125,
        &["-ot", "Float32", "-a_srs", "EPSG:27700", "-a_ullr", "400000", "300000", "420000", "284000"],
    );
    let status = app.import_ok(&u, "rain.tif", std::fs::read(&grid).unwrap(), "").await;
    let (_, _, _, _, types, _) = raster_column(&app, "ana", "rain").await;
    assert_eq!(types, ["32BF"]);
    for (x, y) in [(1.0, 1.0), (12.0, 9.0), (24.0, 19.0)] {
        let (lon, lat) =
            lon_lat(&app, 27700, 400000.0 + (x * 8.0 + 4.0) * 100.0, 300000.0 - (y * 8.0 + 4.0) * 100.0).await;
        let expected = gdal_value(&grid, 1, (lon, lat));
        assert_eq!(table_value(&app, "ana.rain", 1, (lon, lat)).await, expected, "{status:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raster_across_the_antimeridian_imports_whole() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    // Fiji: 176°E to 184°E (that is, to 176°W), written past 180° as such rasters often are.
    let fiji = blocky(
        dir.path(),
        "fiji.tif",
        (160, 80),
        |x, y| (x * 3 + y) as f64,
        &["-ot", "UInt16", "-a_srs", "EPSG:4326", "-a_ullr", "176", "-15", "184", "-19"],
    );
    let status = app.import_ok(&u, "fiji.tif", std::fs::read(&fiji).unwrap(), "").await;
    let (width, xmin, xmax): (i64, f64, f64) = sqlx::query_as(
        "SELECT sum(ST_Width(the_raster_webmercator)) FILTER (WHERE ST_UpperLeftY(the_raster_webmercator) = \
           (SELECT max(ST_UpperLeftY(the_raster_webmercator)) FROM ana.fiji))::int8, \
         min(ST_XMin(ST_Envelope(the_raster_webmercator))), max(ST_XMax(ST_Envelope(the_raster_webmercator))) FROM ana.fiji",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(width < 400, "the raster stays about its own width ({width} pixels), not the world's: {status:#}");
    assert!(xmin > 19_500_000.0 && xmax > 20_037_508.0, "east of the antimeridian it goes on: {xmin} {xmax}");
    // West of the seam, and east of it (where EPSG:3857 goes on past 20037508 m rather than wrap).
    for (bx, by) in [(2, 2), (9, 5), (10, 3), (19, 8)] {
        let at = (176.0 + (bx as f64 * 8.0 + 4.0) * 0.05, -15.0 - (by as f64 * 8.0 + 4.0) * 0.05);
        let point = format!(
            "ST_SetSRID(ST_MakePoint(6378137 * radians({}), ST_Y(ST_Transform(ST_SetSRID(ST_MakePoint(0, {}), 4326), 3857))), 3857)",
            at.0, at.1
        );
        assert_eq!(table_value_at(&app, "ana.fiji", 1, &point).await, (bx * 3 + by) as f64, "at {at:?}");
        assert_eq!(gdal_value(&fiji, 1, at), (bx * 3 + by) as f64);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rasters_without_a_place_or_damaged_fail_with_their_codes_and_leave_nothing() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let plain = blocky(dir.path(), "plain.tif", (64, 64), |x, y| (x + y) as f64, &["-ot", "Byte"]);
    let status = app.import_and_wait(&u, "plain.tif", std::fs::read(&plain).unwrap(), "").await;
    assert_eq!((status["state"].as_str(), status["error_code"].as_i64()), (Some("failure"), Some(3008)), "{status:#}");
    assert_eq!(status["is_raster"], true);
    let text = status["get_error_text"]["what_about"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("coordinate"), "the explanation says what is missing: {status:#}");
    // A GeoTIFF cut short: its header is fine, its pixels are gone.
    let big = blocky(
        dir.path(),
        "cut.tif",
        (1024, 1024),
        |x, y| (x * y) as f64,
        &["-ot", "Int32", "-a_srs", "EPSG:4326", "-a_ullr", "0", "10", "10", "0"],
    );
    let bytes = std::fs::read(&big).unwrap();
    let status = app.import_and_wait(&u, "cut.tif", bytes[..bytes.len() / 2].to_vec(), "").await;
    assert_eq!((status["state"].as_str(), status["error_code"].as_i64()), (Some("failure"), Some(2001)), "{status:#}");
    let text = status["get_error_text"]["what_about"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("truncated") || text.contains("damaged"), "{status:#}");
    // Complex pixels, which no PostGIS band holds, and more bands than a tile may carry.
    for (name, args) in
        [("complex.tif", ["-bands", "1", "-ot", "CInt16"]), ("wide.tif", ["-bands", "65", "-ot", "Byte"])]
    {
        let file = dir.path().join(name);
        let mut all = vec!["-of", "GTiff", "-outsize", "4", "4", "-a_srs", "EPSG:4326", "-a_ullr", "0", "1", "1", "0"];
        all.extend(args);
        all.push(file.to_str().unwrap());
        gdal("gdal_create", &all);
        let status = app.import_and_wait(&u, name, std::fs::read(&file).unwrap(), "").await;
        assert_eq!(status["error_code"].as_i64(), Some(2001), "{status:#}");
        let text = status["get_error_text"]["what_about"].as_str().unwrap_or_default().to_string();
        assert!(text.contains("CInt16") || text.contains("65 bands"), "the explanation names the problem: {text}");
    }
    assert!(app.tables_of("ana").await.is_empty(), "no table of a failed raster");
    assert!(app.staging_tables().await.is_empty(), "no staging table is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn rasters_import_from_archives_beside_vectors_and_from_urls() {
    let app = TestApp::start_with(|s| s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let u = app.create_user("ana").await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("bundle");
    std::fs::create_dir(&folder).unwrap();
    blocky(
        &folder,
        "elevation.tif",
        (100, 100),
        |x, y| (x + y) as f64,
        &["-ot", "Int16", "-a_srs", "EPSG:4326", "-a_ullr", "0", "1", "1", "0"],
    );
    write(&folder, "cities.geojson", POINTS_GEOJSON);
    // A logo with no world file rides along; a scan with one is a raster.
    std::fs::copy(
        blocky(dir.path(), "logo.png", (16, 16), |x, _| x as f64, &["-of", "PNG", "-ot", "Byte"]),
        folder.join("logo.png"),
    )
    .unwrap();
    let scan = blocky(dir.path(), "scan.png", (32, 32), |x, _| x as f64, &["-of", "PNG", "-ot", "Byte"]);
    std::fs::copy(&scan, folder.join("scan.png")).unwrap();
    std::fs::write(folder.join("scan.pgw"), "0.01\n0\n0\n-0.01\n10.005\n20.005\n").unwrap();
    std::fs::write(folder.join("scan.prj"), "GEOGCS[\"WGS 84\",DATUM[\"WGS_1984\",SPHEROID[\"WGS 84\",6378137,298.257223563]],PRIMEM[\"Greenwich\",0],UNIT[\"degree\",0.0174532925199433]]").unwrap();
    let status = app.import_ok(&u, "bundle.zip", zip_dir(&folder), "").await;
    let mut names: Vec<String> = serde_json::from_value(status["table_names"].clone()).unwrap();
    names.sort();
    assert_eq!(names, ["cities", "elevation", "scan"], "{status:#}");
    assert_eq!((status["is_raster"].clone(), status["any_table_raster"].clone()), (true.into(), true.into()));
    assert!(status["warnings"].get("failed_files").is_none(), "the logo is no failed raster: {status:#}");
    assert_eq!(app.count("SELECT count(*) FROM ana.cities WHERE the_geom IS NOT NULL").await, 3);
    assert_eq!(raster_column(&app, "ana", "scan").await.4, ["8BUI"]);
    // The same raster from a URL.
    let tif = std::fs::read(folder.join("elevation.tif")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = axum::Router::new().route("/dem.tif", axum::routing::get(move || async move { tif.clone() }));
    tokio::spawn(async move { axum::serve(listener, served).await });
    let status = app.import_url(&u, &format!("http://127.0.0.1:{port}/dem.tif")).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(status["any_table_raster"], true);
    assert_eq!(overviews(&app, "ana", status["table_name"].as_str().unwrap()).await.len(), 1);
    // A vector import says it is no raster.
    let status = app.import_ok(&u, "cities.geojson", POINTS_GEOJSON, "").await;
    assert_eq!((status["is_raster"].clone(), status["any_table_raster"].clone()), (false.into(), false.into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_raster_of_a_name_gets_its_own_overviews_and_overwrite_replaces_them() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let dem = |value: f64| {
        let tif = blocky(
            dir.path(),
            "dem.tif",
            (300, 300),
            move |_, _| value,
            &["-ot", "Int16", "-a_srs", "EPSG:4326", "-a_ullr", "0", "3", "3", "0"],
        );
        std::fs::read(tif).unwrap()
    };
    app.import_ok(&u, "dem.tif", dem(1.0), "").await;
    let status = app.import_ok(&u, "dem.tif", dem(2.0), "").await;
    assert_eq!(status["table_name"], "dem_1");
    let first = overviews(&app, "ana", "dem").await;
    let second = overviews(&app, "ana", "dem_1").await;
    assert_eq!(first.len(), second.len());
    assert!(second.iter().all(|(f, t)| *t == format!("o_{f}_dem_1")), "{second:?}");
    // Overwriting a raster table replaces it and its overviews, which describe the new data.
    app.import_ok(&u, "dem.tif", dem(3.0), "collision_strategy=overwrite").await;
    assert_eq!(overviews(&app, "ana", "dem").await, first);
    for (_, table) in &first {
        let values = app
            .texts(&format!("SELECT DISTINCT (ST_SummaryStats(the_raster_webmercator)).max::text FROM ana.{table}"))
            .await;
        assert_eq!(values, [Some("3".to_string())], "{table}");
    }
    let mut tables = app.tables_of("ana").await;
    tables.sort();
    assert_eq!(tables.len(), 2 * (1 + first.len()), "no overview of the replaced table is left: {tables:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_file_declaring_a_huge_raster_fails_6666_before_any_tile_is_written() {
    let app = TestApp::start_with(|s| s.runtime.max_unpacked_bytes = 1 << 30).await;
    let u = app.create_user("ana").await;
    let dir = tempfile::tempdir().unwrap();
    // 100,000 x 100,000 bytes (10 GB) declared, none written: a GeoTIFF of a few hundred kilobytes.
    let bomb = dir.path().join("bomb.tif");
    gdal(
        "gdal_create",
        &[
            "-of",
            "GTiff",
            "-outsize",
            "100000",
            "100000",
            "-bands",
            "1",
            "-ot",
            "Byte",
            "-a_srs",
            "EPSG:3857",
            "-a_ullr",
            "0",
            "100000",
            "100000",
            "0",
            "-co",
            "SPARSE_OK=TRUE",
            "-co",
            "TILED=YES",
            "-co",
            "COMPRESS=DEFLATE",
            bomb.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(&bomb).unwrap();
    assert!(bytes.len() < 2 << 20, "the file is small: {}", bytes.len());
    let started = std::time::Instant::now();
    let status = app.import_and_wait(&u, "bomb.tif", bytes, "").await;
    assert_eq!((status["state"].as_str(), status["error_code"].as_i64()), (Some("failure"), Some(6666)), "{status:#}");
    let text = status["get_error_text"]["what_about"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("GEOIMPORT_MAX_UNPACKED_BYTES"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "refused before reading: {:?}", started.elapsed());
    assert!(app.staging_tables().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raster_that_fails_at_once_is_still_told_a_raster() {
    // The early mark (written while the import runs) comes late here: the failure must not wait for it.
    let app = TestApp::start_with(|s| s.runtime.hooks.slow_state_writes_ms = 1500).await;
    let u = app.create_user("ana").await;
    let dir = tempfile::tempdir().unwrap();
    let plain = blocky(dir.path(), "plain.tif", (64, 64), |x, y| (x + y) as f64, &["-ot", "Byte"]);
    let status = app.import_and_wait(&u, "plain.tif", std::fs::read(&plain).unwrap(), "").await;
    assert_eq!(status["error_code"], 3008, "{status:#}");
    assert_eq!(status["is_raster"], true, "{status:#}");
}
