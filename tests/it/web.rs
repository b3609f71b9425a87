//! The web page at `/` (issue 13), in a real browser: Debian's Chromium, headless, driven by
//! playwright-core from `tests/it/web/page.mjs` against a server of the test's own. The user enters the
//! key, drops a CSV, a zipped shapefile and a broken GeoJSON; the page shows the first two complete and
//! the third failed with its explanation; each table is drawn on the map from its vector tiles, and a raster
//! imported before from its PNG tiles. The
//! script reports what the page showed as one JSON line, and this test compares it with what the API
//! says, so the page cannot pass by showing something else.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;
use crate::formats::write;

const SQUARES: &str = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"label":"west"},"geometry":{"type":"Polygon","coordinates":[[[-4,40],[-3.5,40],[-3.5,40.5],[-4,40.5],[-4,40]]]}},
 {"type":"Feature","properties":{"label":"east"},"geometry":{"type":"Polygon","coordinates":[[[2,41],[2.5,41],[2.5,41.5],[2,41.5],[2,41]]]}}]}"#;

const BROKEN: &str = r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "#;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the screenshots go: `GEOIMPORT_SCREENSHOTS` (`docs/screenshots` to refresh README's), else
/// under target/, so an ordinary run leaves the committed ones alone.
fn screenshot_dir() -> PathBuf {
    match std::env::var_os("GEOIMPORT_SCREENSHOTS") {
        Some(dir) => root().join(dir),
        None => root().join("target/web-screenshots"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_imports_files_shows_their_tables_on_the_map_and_explains_a_failure() {
    let playwright = root().join("web/node_modules/playwright-core/index.mjs");
    assert!(playwright.is_file(), "web/node_modules is missing: run scripts/build-web (scripts/test does)");
    let app = TestApp::start().await;
    let ana = app.create_user("ana").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "prism_tour.csv", prism_tour_csv());
    let geojson = write(dir.path(), "source.geojson", SQUARES);
    let folder = shapefile_folder(dir.path(), "squares", &geojson, &[]);
    let zip = dir.path().join("squares.zip");
    std::fs::write(&zip, zip_dir(&folder)).unwrap();
    let broken = write(dir.path(), "broken.geojson", BROKEN);
    // A raster, imported before the page opens: a DEM of 64 x 64 values in Spain.
    let mut asc = String::from("ncols 64\nnrows 64\nxllcorner -4\nyllcorner 40\ncellsize 0.0625\nNODATA_value -9999\n");
    for y in 0..64 {
        let row: Vec<String> = (0..64).map(|x| ((x * 37 + y * 11) % 900).to_string()).collect();
        asc.push_str(&(row.join(" ") + "\n"));
    }
    let asc = write(dir.path(), "dem.asc", &asc);
    let tif = dir.path().join("dem.tif");
    let made = std::process::Command::new("gdal_translate")
        .args(["-q", "-ot", "Int16", "-a_srs", "EPSG:4326", &asc, tif.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success());
    app.import_ok(&ana, "dem.tif", std::fs::read(&tif).unwrap(), "").await;
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();

    let out = tokio::process::Command::new("node")
        .arg(root().join("tests/it/web/page.mjs"))
        .env("GEOIMPORT_URL", &app.base)
        .env("GEOIMPORT_API_KEY", &ana.key)
        .env("PLAYWRIGHT", &playwright)
        .env("FILES", [csv.as_str(), &zip.display().to_string(), &broken].join("\n"))
        .env("SCREENSHOTS", &shots)
        .output()
        .await
        .expect("node runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser script failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));

    // The list showed each import's outcome as the API has it.
    assert_eq!(seen["cookies"], "", "the key must never be a cookie");
    let imports = seen["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 3, "{seen:#}");
    for shown in imports {
        let id: uuid::Uuid = shown["id"].as_str().unwrap().parse().unwrap();
        let status = app.wait_final(&ana, id).await;
        assert_eq!(shown["state"], status["state"], "{shown:#} {status:#}");
        if status["state"] == "complete" {
            assert_eq!(shown["rows"], format!("{} rows", status["rows_imported"]), "{shown:#}");
        } else {
            let text = &status["get_error_text"];
            assert_eq!(shown["title"], format!("{} ({})", text["title"].as_str().unwrap(), status["error_code"]));
            assert_eq!(shown["explanation"], text["what_about"], "{shown:#}");
        }
    }
    let states: Vec<&str> = imports.iter().map(|i| i["state"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "complete").count(), 2, "{seen:#}");
    assert_eq!(states.iter().filter(|s| **s == "failure").count(), 1, "{seen:#}");

    // Each table was drawn from its tiles: every feature, with its attributes, in the popup and the rows.
    let prism = &seen["tables"]["prism_tour"];
    let mut names: Vec<&str> =
        prism["rendered"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["Prado", "Reina Sofia", "Sorolla", "Thyssen"], "{prism:#}");
    assert_eq!(prism["first_rows"], 4, "{prism:#}");
    // The popup of the feature clicked (the first rendered) shows its attributes.
    let popup = prism["popup"].as_str().unwrap();
    let clicked = prism["rendered"][0]["name"].as_str().unwrap();
    assert!(popup.contains("cartodb_id") && popup.contains(clicked) && popup.contains("rating"), "{prism:#}");
    let squares = &seen["tables"]["squares"];
    let mut labels: Vec<&str> =
        squares["rendered"].as_array().unwrap().iter().map(|f| f["label"].as_str().unwrap()).collect();
    labels.sort();
    assert_eq!(labels, ["east", "west"], "{squares:#}");
    assert!(squares["types"].as_array().unwrap().iter().all(|t| t == "Polygon"), "{squares:#}");
    assert_eq!(squares["first_rows"], 2, "{squares:#}");

    // The raster was drawn from its PNG tiles, every one answered, with the key.
    let dem = &seen["tables"]["dem"];
    assert!(dem["pngs_ok"].as_u64().unwrap() > 0, "{dem:#}");
    assert_eq!((dem["pngs_other"].as_u64(), dem["pngs_without_key"].as_u64()), (Some(0), Some(0)), "{dem:#}");

    // The tiles went with the key as a header, and no request put it in its URL.
    assert!(seen["tile_requests"].as_u64().unwrap() > 0, "{seen:#}");
    assert_eq!(seen["tiles_without_key"], 0, "{seen:#}");
    assert_eq!(seen["urls_with_key"], 0, "{seen:#}");
    for shot in ["web-page.png", "web-points.png", "web-failure.png", "web-raster.png"] {
        assert!(shots.join(shot).metadata().unwrap().len() > 10_000, "{shot} was not saved");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_assets_are_served_with_their_types_and_cache_rules() {
    let app = TestApp::start().await;
    let page = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, h: &str| r.headers().get(h).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(header(&page, "content-type").as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(header(&page, "cache-control").as_deref(), Some("no-cache"));
    assert!(header(&page, "content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    let html = page.text().await.unwrap();
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
    assert!(script.starts_with("/assets/main-") && script.ends_with(".js"), "{script}");
    let js = app.client.get(app.url(&script)).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(header(&js, "content-type").as_deref(), Some("text/javascript; charset=utf-8"));
    assert_eq!(header(&js, "cache-control").as_deref(), Some("public, max-age=31536000, immutable"));
    assert_eq!(app.client.get(app.url("/assets/nothing.js")).send().await.unwrap().status(), 404);
    // Only the root: the API's routes and prefixes are untouched, and the page is not an API route.
    assert_eq!(app.client.get(app.url("/user/ana/")).send().await.unwrap().status(), 404);
    assert_eq!(app.client.get(app.url("/api/v1/imports")).send().await.unwrap().status(), 401);
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.keys().all(|p| p != "/" && !p.starts_with("/assets")), "{:?}", paths.keys());
    // A state change from another site's page is still refused.
    let cross =
        app.client.post(app.url("/api/v1/imports")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(cross.status(), 403);
}
