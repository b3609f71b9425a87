//! Every vector format: files written by the tests themselves (with GDAL's ogr2ogr, or by hand), imported
//! end to end, checked for tables, row counts, geometry types, coordinates and encodings.

use std::path::Path;

use crate::common::*;
use serde_json::json;

pub(crate) const POINTS_GEOJSON: &str = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"name":"Málaga","pop":578460,"area":398.25},"geometry":{"type":"Point","coordinates":[-4.4214,36.7213]}},
 {"type":"Feature","properties":{"name":"Besançon","pop":117912,"area":65.05},"geometry":{"type":"Point","coordinates":[6.0241,47.2378]}},
 {"type":"Feature","properties":{"name":"Zürich","pop":421878,"area":87.88},"geometry":{"type":"Point","coordinates":[8.5417,47.3769]}}
]}"#;

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

pub(crate) async fn app_and_user() -> (TestApp, TestUser) {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    (app, u)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zipped_shapefile_in_web_mercator_lands_in_4326_at_the_right_place() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "cities.geojson", POINTS_GEOJSON);
    let shp_dir = dir.path().join("shp");
    std::fs::create_dir(&shp_dir).unwrap();
    let out = shp_dir.join("cities.shp").display().to_string();
    ogr2ogr(&["-f", "ESRI Shapefile", &out, &src, "-t_srs", "EPSG:3857"]);
    assert!(std::fs::read_to_string(shp_dir.join("cities.prj")).unwrap().contains("Mercator"));
    let status = app.import_ok(&u, "cities.zip", zip_dir(&shp_dir), "").await;
    assert_eq!(status["table_name"], "cities");
    assert_eq!(status["rows_imported"], 3);
    let malaga = app
        .texts("SELECT ST_X(the_geom)::numeric(10,4) || ' ' || ST_Y(the_geom)::numeric(10,4) FROM ana.cities WHERE name = 'Málaga'")
        .await;
    assert_eq!(malaga, [Some("-4.4214 36.7213".into())]);
    assert_eq!(app.count("SELECT count(*) FROM ana.cities WHERE ST_SRID(the_geom) = 4326").await, 3);
    assert_eq!(app.column_type("ana", "cities", "pop").await, "integer");
    assert_eq!(app.column_type("ana", "cities", "area").await, "double precision");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_latin1_dbf_without_code_page_reads_right_and_a_missing_prj_means_4326() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "cities.geojson", POINTS_GEOJSON);
    let shp_dir = dir.path().join("shp");
    std::fs::create_dir(&shp_dir).unwrap();
    let out = shp_dir.join("towns.shp").display().to_string();
    ogr2ogr(&["-f", "ESRI Shapefile", &out, &src, "-lco", "ENCODING=ISO-8859-1"]);
    // Take away every statement of the encoding and of the projection.
    let _ = std::fs::remove_file(shp_dir.join("towns.cpg"));
    std::fs::remove_file(shp_dir.join("towns.prj")).unwrap();
    let dbf = shp_dir.join("towns.dbf");
    let mut bytes = std::fs::read(&dbf).unwrap();
    bytes[29] = 0;
    assert!(bytes.windows(2).any(|w| w == b"\xe1l"), "the DBF holds Latin-1 text");
    std::fs::write(&dbf, bytes).unwrap();
    app.import_ok(&u, "towns.zip", zip_dir(&shp_dir), "").await;
    assert_eq!(
        app.texts("SELECT name FROM ana.towns ORDER BY pop DESC").await,
        [Some("Málaga".into()), Some("Zürich".into()), Some("Besançon".into())]
    );
    assert_eq!(
        app.texts("SELECT ST_AsText(the_geom) FROM ana.towns WHERE pop = 117912").await,
        [Some("POINT(6.0241 47.2378)".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shapefile_without_dbf_or_shx_fails_with_1006() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "c.geojson", POINTS_GEOJSON);
    let out = dir.path().join("roads.shp").display().to_string();
    ogr2ogr(&["-f", "ESRI Shapefile", &out, &src]);
    let part = |ext: &str| std::fs::read(dir.path().join(format!("roads.{ext}"))).unwrap();
    let no_dbf = zip_of(&[("roads.shp", part("shp")), ("roads.shx", part("shx"))]);
    let status = app.import_and_wait(&u, "roads.zip", no_dbf, "").await;
    assert_eq!(status["error_code"], 1006, "{status}");
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains(".dbf"));
    let no_shx = zip_of(&[("roads.shp", part("shp")), ("roads.dbf", part("dbf"))]);
    assert_eq!(app.import_and_wait(&u, "roads.zip", no_shx, "").await["error_code"], 1006);
}

const KML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
 <Folder><name>Museums</name>
  <Placemark><name>Prado</name><Point><coordinates>-3.6921,40.4138,0</coordinates></Point></Placemark>
  <Placemark><name>Reina</name><Point><coordinates>-3.6946,40.4079,0</coordinates></Point></Placemark>
 </Folder>
 <Folder><name>Parks</name>
  <Placemark><name>Retiro</name><Polygon><outerBoundaryIs><LinearRing><coordinates>-3.69,40.41 -3.68,40.41 -3.68,40.42 -3.69,40.41</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
 </Folder>
 <Folder><name>Empty</name></Folder>
</Document></kml>"#;

#[tokio::test(flavor = "multi_thread")]
async fn kml_and_kmz_make_one_table_per_non_empty_folder() {
    let (app, u) = app_and_user().await;
    let status = app.import_ok(&u, "madrid.kml", KML, "").await;
    assert_eq!(status["table_names"], json!(["museums", "parks"]));
    assert_eq!(app.count("SELECT count(*) FROM ana.museums WHERE GeometryType(the_geom) = 'POINT'").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM ana.parks WHERE GeometryType(the_geom) = 'POLYGON'").await, 1);
    assert_eq!(app.count("SELECT ST_NDims(the_geom) FROM ana.museums LIMIT 1").await, 2, "Z is dropped");

    let one_folder = r#"<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>A</name><Point><coordinates>1,2</coordinates></Point></Placemark></Document></kml>"#;
    let status = app.import_ok(&u, "spots.kmz", zip_of(&[("doc.kml", one_folder.as_bytes().to_vec())]), "").await;
    assert_eq!(status["table_name"], "spots");
    // a KML named .txt is still a KML
    let status = app.import_ok(&u, "renamed.txt", one_folder, "").await;
    assert_eq!(status["table_name"], "renamed");
    assert_eq!(app.count("SELECT count(*) FROM ana.renamed WHERE the_geom IS NOT NULL").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kml_that_only_links_elsewhere_fails_3202_and_too_many_layers_1019() {
    let (app, u) = app_and_user().await;
    let link = r#"<kml xmlns="http://www.opengis.net/kml/2.2"><NetworkLink><name>x</name><Link><href>http://example.com/real.kml</href></Link></NetworkLink></kml>"#;
    assert_eq!(app.import_and_wait(&u, "link.kml", link, "").await["error_code"], 3202);
    let mut many = String::from(r#"<kml xmlns="http://www.opengis.net/kml/2.2"><Document>"#);
    for i in 0..51 {
        many.push_str(&format!(
            "<Folder><name>f{i}</name><Placemark><Point><coordinates>{i},1</coordinates></Point></Placemark></Folder>"
        ));
    }
    many.push_str("</Document></kml>");
    assert_eq!(app.import_and_wait(&u, "many.kml", many, "").await["error_code"], 1019);
    assert!(app.tables_of("ana").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn gpx_makes_a_table_per_non_empty_layer() {
    let (app, u) = app_and_user().await;
    let gpx = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <wpt lat="40.41" lon="-3.70"><name>Sol</name><ele>650</ele></wpt>
 <wpt lat="40.42" lon="-3.71"><name>Opera</name></wpt>
 <trk><name>walk</name><trkseg>
  <trkpt lat="40.41" lon="-3.70"><time>2024-05-01T10:00:00Z</time></trkpt>
  <trkpt lat="40.42" lon="-3.71"><time>2024-05-01T10:10:00Z</time></trkpt>
  <trkpt lat="40.43" lon="-3.72"><time>2024-05-01T10:20:00Z</time></trkpt>
 </trkseg></trk>
</gpx>"#;
    let status = app.import_ok(&u, "walk.gpx", gpx, "").await;
    let names: Vec<String> = serde_json::from_value(status["table_names"].clone()).unwrap();
    assert_eq!(names, ["walk_waypoints", "walk_tracks", "walk_track_points"]);
    assert_eq!(app.count("SELECT count(*) FROM ana.walk_waypoints").await, 2);
    assert_eq!(app.texts("SELECT GeometryType(the_geom) FROM ana.walk_tracks").await, [Some("MULTILINESTRING".into())]);
    assert_eq!(app.count("SELECT count(*) FROM ana.walk_track_points").await, 3);
    assert_eq!(app.column_type("ana", "walk_track_points", "time").await, "timestamp with time zone");
    let t = app
        .texts("SELECT to_char(time AT TIME ZONE 'UTC', 'HH24:MI') FROM ana.walk_track_points ORDER BY time LIMIT 1")
        .await;
    assert_eq!(t, [Some("10:00".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_geopackage_makes_a_table_per_layer_reprojected() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "c.geojson", POINTS_GEOJSON);
    let gpkg = dir.path().join("city.gpkg").display().to_string();
    ogr2ogr(&["-f", "GPKG", &gpkg, &src, "-nln", "towns"]);
    ogr2ogr(&["-f", "GPKG", "-update", &gpkg, &src, "-nln", "towns_merc", "-t_srs", "EPSG:3857"]);
    let status = app.import_ok(&u, "city.gpkg", std::fs::read(&gpkg).unwrap(), "").await;
    let mut names: Vec<String> = serde_json::from_value(status["table_names"].clone()).unwrap();
    names.sort();
    assert_eq!(names, ["city_towns", "city_towns_merc"]);
    let x =
        app.texts("SELECT ST_X(the_geom)::numeric(10,4)::text FROM ana.city_towns_merc WHERE name = 'Zürich'").await;
    assert_eq!(x, [Some("8.5417".into())]);
}

/// The three cities of POINTS_GEOJSON, as `table` of user ana holds them: names, populations and places.
pub(crate) async fn assert_cities(app: &TestApp, status: &serde_json::Value) {
    let table = status["table_name"].as_str().unwrap();
    assert_eq!(status["rows_imported"], 3, "{status:#}");
    let rows = app
        .texts(&format!(
            "SELECT name || ' ' || pop || ' ' || round(ST_X(the_geom)::numeric, 4) || ' ' || \
             round(ST_Y(the_geom)::numeric, 4) || ' ' || GeometryType(the_geom) || ' ' || ST_SRID(the_geom) \
             FROM ana.{table} ORDER BY pop"
        ))
        .await;
    assert_eq!(
        rows,
        [
            Some("Besançon 117912 6.0241 47.2378 POINT 4326".to_string()),
            Some("Zürich 421878 8.5417 47.3769 POINT 4326".to_string()),
            Some("Málaga 578460 -4.4214 36.7213 POINT 4326".to_string()),
        ],
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mapinfo_gml_flatgeobuf_dxf_and_filegdb_import() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "c.geojson", POINTS_GEOJSON);
    let tab_dir = dir.path().join("tab");
    std::fs::create_dir(&tab_dir).unwrap();
    ogr2ogr(&["-f", "MapInfo File", &tab_dir.join("places.tab").display().to_string(), &src]);
    assert_cities(&app, &app.import_ok(&u, "places.zip", zip_dir(&tab_dir), "").await).await;
    // MapInfo's interchange format: a .mif with its .mid
    let mif_dir = dir.path().join("mif");
    std::fs::create_dir(&mif_dir).unwrap();
    ogr2ogr(&["-f", "MapInfo File", &mif_dir.join("sites.mif").display().to_string(), &src, "-dsco", "FORMAT=MIF"]);
    assert_cities(&app, &app.import_ok(&u, "sites.zip", zip_dir(&mif_dir), "").await).await;

    let gml = dir.path().join("features.gml").display().to_string();
    ogr2ogr(&["-f", "GML", &gml, &src]);
    assert_cities(&app, &app.import_ok(&u, "features.gml", std::fs::read(&gml).unwrap(), "").await).await;

    let fgb = dir.path().join("flat.fgb").display().to_string();
    ogr2ogr(&["-f", "FlatGeobuf", &fgb, &src]);
    assert_cities(&app, &app.import_ok(&u, "flat.fgb", std::fs::read(&fgb).unwrap(), "").await).await;

    let lines = write(
        dir.path(),
        "l.geojson",
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}}]}"#,
    );
    let dxf = dir.path().join("plan.dxf").display().to_string();
    ogr2ogr(&["-f", "DXF", &dxf, &lines]);
    let status = app.import_ok(&u, "plan.dxf", std::fs::read(&dxf).unwrap(), "").await;
    assert_eq!(
        app.texts(&format!("SELECT GeometryType(the_geom) FROM ana.{}", status["table_name"].as_str().unwrap())).await,
        [Some("LINESTRING".into())]
    );

    let gdb_root = dir.path().join("gdb");
    std::fs::create_dir(&gdb_root).unwrap();
    ogr2ogr(&["-f", "OpenFileGDB", &gdb_root.join("parcels.gdb").display().to_string(), &src, "-nln", "cities"]);
    let status = app.import_ok(&u, "parcels.gdb.zip", zip_dir(&gdb_root), "").await;
    assert_eq!(status["table_name"], "parcels_cities");
    assert_cities(&app, &status).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn osm_xml_makes_its_geometry_layers() {
    let (app, u) = app_and_user().await;
    let osm = r#"<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
 <node id="1" lat="40.41" lon="-3.70" version="1"><tag k="amenity" v="cafe"/><tag k="name" v="Café"/></node>
 <node id="2" lat="40.42" lon="-3.71" version="1"/>
 <node id="3" lat="40.43" lon="-3.72" version="1"/>
 <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
</osm>"#;
    let status = app.import_ok(&u, "barrio.osm", osm, "").await;
    let names: Vec<String> = serde_json::from_value(status["table_names"].clone()).unwrap();
    // only the layers with features become tables
    assert_eq!(names, ["barrio_points", "barrio_lines"]);
    assert_eq!(app.texts("SELECT name FROM ana.barrio_points").await, [Some("Café".into())]);
    assert_eq!(app.texts("SELECT highway FROM ana.barrio_lines").await, [Some("residential".into())]);

    // the same data as PBF (converted with osmium)
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("barrio.osm");
    std::fs::write(&xml, osm).unwrap();
    let pbf = dir.path().join("barrio.osm.pbf");
    let out = std::process::Command::new("osmium")
        .args(["cat", &xml.display().to_string(), "-o", &pbf.display().to_string()])
        .output()
        .expect("osmium (package osmium-tool) is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = app.import_ok(&u, "barrio.osm.pbf", std::fs::read(&pbf).unwrap(), "").await;
    assert_eq!(status["table_names"][0], "barrio_osm_points");
    assert_eq!(app.texts("SELECT name FROM ana.barrio_osm_points").await, [Some("Café".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn geojson_mixed_geometries_3d_and_typed_properties() {
    let (app, u) = app_and_user().await;
    let gj = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"n":1,"v":1.5,"ok":true,"day":"2024-01-02","zip":"02134","tags":["a","b"]},"geometry":{"type":"Point","coordinates":[1,2,30]}},
 {"type":"Feature","properties":{"n":2,"v":2,"ok":false,"day":"2024-01-03","zip":"10001"},"geometry":{"type":"LineString","coordinates":[[0,0,1],[1,1,1]]}},
 {"type":"Feature","properties":{"n":3,"extra":"only here"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
 {"type":"Feature","properties":{"n":4},"geometry":null}
]}"#;
    let status = app.import_ok(&u, "mixed.geojson", gj, "").await;
    assert_eq!(status["rows_imported"], 4);
    let kinds = app.texts("SELECT coalesce(GeometryType(the_geom), 'NULL') FROM ana.mixed ORDER BY n").await;
    assert_eq!(kinds, ["POINT", "LINESTRING", "POLYGON", "NULL"].map(|s| Some(s.to_string())));
    assert_eq!(app.count("SELECT max(ST_NDims(the_geom)) FROM ana.mixed").await, 2);
    for (col, ty) in [
        ("n", "integer"),
        ("v", "double precision"),
        ("ok", "boolean"),
        ("day", "date"),
        ("zip", "text"),
        ("tags", "text"),
        ("extra", "text"),
    ] {
        assert_eq!(app.column_type("ana", "mixed", col).await, ty, "{col}");
    }
    // strings stay text when quoted fields are not to be guessed
    app.import_ok(&u, "strict.geojson", gj, "quoted_fields_guessing=false").await;
    assert_eq!(app.column_type("ana", "strict", "day").await, "text");
    assert_eq!(app.column_type("ana", "strict", "n").await, "integer");
}

#[tokio::test(flavor = "multi_thread")]
async fn members_around_features_do_not_matter() {
    let (app, u) = app_and_user().await;
    let gj = r#"{"type":"FeatureCollection","name":"roads [v2]","bbox":[-10,-10,10,10],"metadata":{"a":[1,2]},
      "features":[{"type":"Feature","properties":{"k":1},"geometry":{"type":"Point","coordinates":[1,2]}}],"crs":null}"#;
    assert_eq!(app.import_ok(&u, "around.geojson", gj, "").await["rows_imported"], 1);
    let late_type = r#"{"features":[{"type":"Feature","properties":{},"geometry":null}],"type":"FeatureCollection"}"#;
    assert_eq!(app.import_ok(&u, "late.geojson", late_type, "").await["rows_imported"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn gdal_layers_respect_the_row_limit() {
    let app = TestApp::start().await;
    let u = app
        .create_user_with("ana", geoimport::users::ExtraLimits { max_rows_per_table: Some(2), ..Default::default() })
        .await;
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "c.geojson", POINTS_GEOJSON);
    let gpkg = dir.path().join("three.gpkg").display().to_string();
    ogr2ogr(&["-f", "GPKG", &gpkg, &src]);
    let status = app.import_and_wait(&u, "three.gpkg", std::fs::read(&gpkg).unwrap(), "").await;
    assert_eq!(status["error_code"], 6668, "{status}");
    assert!(app.tables_of("ana").await.is_empty(), "a table over the limit was published");
    assert!(app.staging_tables().await.is_empty(), "its staging table stayed");
}

#[tokio::test(flavor = "multi_thread")]
async fn newline_delimited_single_features_bare_geometries_and_json_arrays() {
    let (app, u) = app_and_user().await;
    let ndjson = "{\"type\":\"Feature\",\"properties\":{\"a\":1},\"geometry\":{\"type\":\"Point\",\"coordinates\":[1,2]}}\n\
                  {\"type\":\"Feature\",\"properties\":{\"a\":2},\"geometry\":{\"type\":\"Point\",\"coordinates\":[3,4]}}\n";
    assert_eq!(app.import_ok(&u, "lines.geojson", ndjson, "").await["rows_imported"], 2);
    let single = r#"{"type":"Feature","properties":{"name":"x"},"geometry":{"type":"Point","coordinates":[5,6]}}"#;
    assert_eq!(app.import_ok(&u, "single.json", single, "").await["rows_imported"], 1);
    let bare = r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}"#;
    app.import_ok(&u, "bare.geojson", bare, "").await;
    assert_eq!(app.texts("SELECT GeometryType(the_geom) FROM ana.bare").await, [Some("POLYGON".into())]);
    let array = r#"[{"name":"Sol","latitude":40.41,"longitude":-3.70,"open":true},{"name":"Opera","latitude":40.42,"longitude":-3.71,"open":false,"note":{"k":1}}]"#;
    app.import_ok(&u, "places.json", array, "").await;
    assert_eq!(app.count("SELECT count(*) FROM ana.places WHERE GeometryType(the_geom) = 'POINT'").await, 2);
    assert_eq!(app.column_type("ana", "places", "open").await, "boolean");
    assert_eq!(app.texts("SELECT note FROM ana.places WHERE name = 'Opera'").await, [Some("{\"k\":1}".into())]);
    // GeoJSON without an extension is recognised by its content
    assert_eq!(app.import_ok(&u, "download", single, "").await["table_name"], "download");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_json_fails_3007_and_invalid_geometries_are_repaired() {
    let (app, u) = app_and_user().await;
    let status = app
        .import_and_wait(&u, "bad.geojson", r#"{"type":"FeatureCollection","features":[{"type":"Feature","#, "")
        .await;
    assert_eq!(status["error_code"], 3007, "{status}");
    assert_eq!(app.import_and_wait(&u, "scalars.json", "[1, 2, 3]", "").await["error_code"], 3007);
    let bowtie = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"id":1},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}},
 {"type":"Feature","properties":{"id":2},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}"#;
    let status = app.import_ok(&u, "bowtie.geojson", bowtie, "").await;
    assert_eq!(status["warnings"]["invalid_geometries_repaired"], 1, "{status}");
    assert_eq!(
        app.count("SELECT count(*) FROM ana.bowtie WHERE ST_IsValid(the_geom) AND ST_IsValid(the_geom_webmercator)")
            .await,
        2
    );
}
