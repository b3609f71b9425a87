//! What real files hold, kept: reference systems (GML's srsName, 3008 when none converts), DBF encodings,
//! curves and faceted surfaces, geometries PostGIS cannot hold (counted, never a failed import), JSON as
//! found in the wild (byte-order marks, legacy encodings, ESRI JSON, TopoJSON), KML of every geometry kind, OSM
//! extracts of real size.

use crate::common::*;
use crate::formats::{POINTS_GEOJSON, app_and_user, assert_cities, write};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_gml_in_web_mercator_is_reprojected_from_its_srs_name() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "cities.geojson", POINTS_GEOJSON);
    let gml = dir.path().join("merc.gml").display().to_string();
    ogr2ogr(&["-f", "GML", &gml, &src, "-t_srs", "EPSG:3857"]);
    let text = std::fs::read_to_string(&gml).unwrap();
    assert!(text.contains("3857"), "the GML names its system: {text}");
    assert_cities(&app, &app.import_ok(&u, "merc.gml", text, "").await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dbf_is_read_in_the_encoding_its_cpg_names() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let src = write(
        dir.path(),
        "towns.geojson",
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"Łódź Źródło"},"geometry":{"type":"Point","coordinates":[19.46,51.76]}}]}"#,
    );
    let shp_dir = shapefile_folder(dir.path(), "towns", &src, &["-lco", "ENCODING=CP1250"]);
    // Central European bytes, which read as Latin-1 would be other letters; the .cpg says which they are.
    assert!(std::fs::read_to_string(shp_dir.join("towns.cpg")).unwrap().contains("1250"));
    let status = app.import_ok(&u, "towns.zip", zip_dir(&shp_dir), "").await;
    assert_eq!(app.texts("SELECT name FROM ana.towns").await, [Some("Łódź Źródło".to_string())], "{status:#}");
    // Without the .cpg, the code page written in the DBF's header says the same.
    std::fs::remove_file(shp_dir.join("towns.cpg")).unwrap();
    let status = app.import_ok(&u, "towns_ldid.zip", zip_dir(&shp_dir), "").await;
    let table = status["table_name"].as_str().unwrap();
    assert_eq!(app.texts(&format!("SELECT name FROM ana.{table}")).await, [Some("Łódź Źródło".to_string())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crs_that_cannot_be_converted_to_4326_fails_3008_and_says_so() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "cities.geojson", POINTS_GEOJSON);
    let shp_dir = shapefile_folder(dir.path(), "plant", &src, &[]);
    // A local engineering CRS (a site grid): no transformation to the Earth's coordinates exists.
    std::fs::write(shp_dir.join("plant.prj"), r#"LOCAL_CS["Site grid",LOCAL_DATUM["Site",0],UNIT["metre",1]]"#)
        .unwrap();
    let status = app.import_and_wait(&u, "plant.zip", zip_dir(&shp_dir), "").await;
    assert_eq!((status["state"].as_str(), status["error_code"].as_i64()), (Some("failure"), Some(3008)), "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("cannot be converted to EPSG:4326"), "{about}");
    assert!(app.tables_of("ana").await.is_empty());
    assert!(app.staging_tables().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn curves_are_made_linear_and_faceted_surfaces_become_multipolygons() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "shapes.csv",
        "id,WKT\n\
         1,\"CIRCULARSTRING(0 0,1 1,2 0)\"\n\
         2,\"COMPOUNDCURVE((0 0,1 0),CIRCULARSTRING(1 0,2 1,3 0))\"\n\
         3,\"CURVEPOLYGON(CIRCULARSTRING(0 0,2 0,2 2,0 2,0 0))\"\n\
         4,\"MULTICURVE((0 0,1 1),CIRCULARSTRING(1 1,2 2,3 1))\"\n\
         5,\"MULTISURFACE(CURVEPOLYGON(CIRCULARSTRING(0 0,2 0,2 2,0 2,0 0)))\"\n\
         6,\"TIN Z(((0 0 1,1 0 1,0 1 1,0 0 1)),((1 0 1,1 1 1,0 1 1,1 0 1)))\"\n\
         7,\"TRIANGLE((0 0,1 0,0 1,0 0))\"\n\
         8,\"POLYHEDRALSURFACE(((0 0,1 0,1 1,0 1,0 0)))\"\n",
    );
    let gpkg = dir.path().join("shapes.gpkg").display().to_string();
    ogr2ogr(&["-f", "GPKG", &gpkg, &csv, "-nlt", "GEOMETRY", "-a_srs", "EPSG:4326"]);
    let status = app.import_ok(&u, "shapes.gpkg", std::fs::read(&gpkg).unwrap(), "").await;
    assert!(status["warnings"].get("features_without_geometry").is_none(), "{status:#}");
    let kinds = app
        .texts("SELECT string_agg(id || ' ' || coalesce(GeometryType(the_geom), 'NULL'), ', ' ORDER BY id) FROM ana.shapes")
        .await;
    assert_eq!(
        kinds,
        [Some(
            "1 LINESTRING, 2 LINESTRING, 3 POLYGON, 4 MULTILINESTRING, 5 MULTIPOLYGON, 6 MULTIPOLYGON, \
             7 MULTIPOLYGON, 8 MULTIPOLYGON"
                .to_string()
        )]
    );
    // A TIN's two triangles, which share an edge, make the unit square once repaired: a polygon still (the
    // repair keeps the layer's dimension), flat, and nothing of its area lost.
    assert_eq!(
        app.texts("SELECT ST_Area(the_geom) || ' ' || ST_NDims(the_geom) FROM ana.shapes WHERE id = '6'").await,
        [Some("1 2".to_string())]
    );
    assert_eq!(status["warnings"]["invalid_geometries_repaired"], 1, "{status:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_geometry_postgis_cannot_hold_becomes_null_and_is_counted_not_a_failed_import() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    // A ring of two distinct points (collapsed in digitising) beside a good parcel.
    let src = write(
        dir.path(),
        "parcels.geojson",
        r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"n":1},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
 {"type":"Feature","properties":{"n":2},"geometry":{"type":"Polygon","coordinates":[[[5,5],[6,6],[5,5]]]}}]}"#,
    );
    let shp_dir = shapefile_folder(dir.path(), "parcels", &src, &[]);
    let status = app.import_ok(&u, "parcels.zip", zip_dir(&shp_dir), "").await;
    assert_eq!(status["rows_imported"], 2, "{status:#}");
    assert_eq!(
        app.texts("SELECT n || ' ' || coalesce(GeometryType(the_geom), 'NULL') FROM ana.parcels ORDER BY n").await,
        [Some("1 POLYGON".to_string()), Some("2 NULL".to_string())]
    );
    assert_eq!(status["warnings"]["unreadable_geometries"], 1, "{status:#}");
    // The same ring written as text in a CSV: the text is kept beside the table, and counted.
    let good = "\"POLYGON((0 0,1 0,1 1,0 0))\"";
    let csv = format!("name,wkt\na,{good}\nb,{good}\nc,{good}\ncollapsed,\"POLYGON((5 5,6 6,5 5))\"\n");
    let status = app.import_ok(&u, "rings.csv", csv, "").await;
    assert_eq!(
        app.texts("SELECT string_agg(name || ' ' || coalesce(GeometryType(the_geom), 'NULL'), ', ' ORDER BY name) FROM ana.rings")
            .await,
        [Some("a POLYGON, b POLYGON, c POLYGON, collapsed NULL".to_string())],
        "{status:#}"
    );
    assert_eq!(
        app.texts("SELECT wkt_invalid FROM ana.rings WHERE name = 'collapsed'").await,
        [Some("POLYGON((5 5,6 6,5 5))".to_string())],
        "{status:#}"
    );
    // And read by the native GeoJSON reader: the feature stays, without its geometry, counted.
    let status = app.import_ok(&u, "parcels.geojson", std::fs::read(&src).unwrap(), "").await;
    let table = status["table_name"].as_str().unwrap();
    assert_eq!(
        app.texts(&format!(
            "SELECT string_agg(n || ' ' || coalesce(GeometryType(the_geom), 'NULL'), ', ' ORDER BY n) FROM ana.{table}"
        ))
        .await,
        [Some("1 POLYGON, 2 NULL".to_string())]
    );
    assert_eq!(status["warnings"]["unreadable_geometries"], 1, "{status:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_as_found_in_the_wild_boms_legacy_encodings_esri_json_and_topojson() {
    let (app, u) = app_and_user().await;
    let feature = |name: &[u8]| {
        [
            &br#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"n":""#[..],
            name,
            br#""},"geometry":{"type":"Point","coordinates":[1,2]}}]}"#,
        ]
        .concat()
    };
    // A byte-order mark, and Latin-1 text: both read as the text they are.
    let bom = [&b"\xef\xbb\xbf"[..], &feature("caf\u{e9}".as_bytes())].concat();
    assert_eq!(app.import_ok(&u, "bom.geojson", bom, "").await["rows_imported"], 1);
    app.import_ok(&u, "latin.geojson", feature(b"M\xe1laga"), "").await;
    assert_eq!(
        app.texts("SELECT n FROM ana.bom UNION ALL SELECT n FROM ana.latin").await,
        [Some("caf\u{e9}".to_string()), Some("M\u{e1}laga".to_string())]
    );
    // ESRI's JSON and TopoJSON are read by GDAL: every feature, every object a table.
    let esri = r#"{"displayFieldName":"","geometryType":"esriGeometryPoint","spatialReference":{"wkid":4326},
      "fields":[{"name":"n","type":"esriFieldTypeString"}],
      "features":[{"attributes":{"n":"a"},"geometry":{"x":1,"y":2}},{"attributes":{"n":"b"},"geometry":{"x":3,"y":4}}]}"#;
    let status = app.import_ok(&u, "esri.json", esri, "").await;
    let table = status["table_name"].as_str().unwrap();
    assert_eq!(
        app.texts(&format!("SELECT string_agg(n || ' ' || ST_AsText(the_geom), ', ' ORDER BY n) FROM ana.{table}"))
            .await,
        [Some("a POINT(1 2), b POINT(3 4)".to_string())]
    );
    let topo = r#"{"type":"Topology","objects":{
      "pts":{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2],"properties":{"n":"a"}},
                                                       {"type":"Point","coordinates":[3,4],"properties":{"n":"b"}}]},
      "more":{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[5,6]}]}},"arcs":[]}"#;
    let status = app.import_ok(&u, "topo.json", topo, "").await;
    assert_eq!(status["table_names"], json!(["topo_pts", "topo_more"]), "{status:#}");
    assert_eq!(status["rows_imported"], 3);
    // A header without rows, and one JSON object that is no data, fail with their codes.
    let header_only = app.import_and_wait(&u, "header.csv", "a,b,c\n", "").await;
    assert_eq!(header_only["error_code"], 1005, "{header_only:#}");
    let document = app.import_and_wait(&u, "settings.json", r#"{"hello": "world"}"#, "").await;
    assert_eq!(document["error_code"], 3007, "{document:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kml_with_every_geometry_kind_imports_each_placemark() {
    let (app, u) = app_and_user().await;
    let kml = r#"<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2"><Document>
<Placemark><name>mix</name><MultiGeometry><Point><coordinates>1,2</coordinates></Point>
  <LineString><coordinates>0,0 1,1</coordinates></LineString>
  <Polygon><outerBoundaryIs><LinearRing><coordinates>0,0 1,0 1,1 0,0</coordinates></LinearRing></outerBoundaryIs></Polygon>
</MultiGeometry></Placemark>
<Placemark><name>track</name><gx:Track><when>2020-01-01T00:00:00Z</when><when>2020-01-01T00:01:00Z</when>
  <gx:coord>1 2 0</gx:coord><gx:coord>3 4 0</gx:coord></gx:Track></Placemark>
<Placemark><name>pt</name><Point><coordinates>5,6</coordinates></Point></Placemark>
<Placemark><name>model</name><Model><Location><longitude>7</longitude><latitude>8</latitude></Location></Model></Placemark>
</Document></kml>"#;
    let status = app.import_ok(&u, "kinds.kml", kml, "").await;
    assert_eq!(status["rows_imported"], 4, "{status:#}");
    assert_eq!(
        app.texts("SELECT string_agg(name || ' ' || coalesce(GeometryType(the_geom), 'NULL'), ', ' ORDER BY name) FROM ana.kinds")
            .await,
        [Some("mix GEOMETRYCOLLECTION, model NULL, pt POINT, track LINESTRING".to_string())]
    );
    // The model has no geometry GDAL reads either: a feature without geometry, not a geometry lost.
    assert_eq!(status["warnings"]["features_without_geometry"], 1, "{status:#}");
    assert!(status["warnings"].get("unreadable_geometries").is_none(), "{status:#}");
}

/// An OSM extract of `nodes` tagged nodes in no order (as real ones are: names that do not compress into
/// nothing), and a street for every ten of them.
fn extract_osm(nodes: u64) -> String {
    use std::fmt::Write;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<osm version=\"0.6\" generator=\"test\">\n");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 1..=nodes {
        let (lat, lon) = (40.4 + (next() % 300_000) as f64 * 1e-6, -3.7 + (next() % 300_000) as f64 * 1e-6);
        let _ = writeln!(
            x,
            " <node id=\"{i}\" lat=\"{lat:.7}\" lon=\"{lon:.7}\" version=\"1\"><tag k=\"amenity\" v=\"cafe\"/>\
             <tag k=\"name\" v=\"n{}\"/></node>",
            next() % 1_000_000_000
        );
    }
    for w in 0..nodes / 10 {
        let nds: String = (w * 10 + 1..w * 10 + 11).map(|r| format!("<nd ref=\"{r}\"/>")).collect();
        let _ = writeln!(
            x,
            " <way id=\"{}\" version=\"1\">{nds}<tag k=\"highway\" v=\"residential\"/><tag k=\"name\" v=\"s{}\"/></way>",
            w + 1,
            next() % 1_000_000_000
        );
    }
    x.push_str("</osm>\n");
    x
}

#[tokio::test(flavor = "multi_thread")]
async fn an_osm_extract_of_a_hundred_thousand_places_imports_every_layer_whole() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let xml = write(dir.path(), "madrid.osm", &extract_osm(120_000));
    let pbf = dir.path().join("madrid.osm.pbf");
    let out = std::process::Command::new("osmium")
        .args(["cat", &xml, "-o", &pbf.display().to_string()])
        .output()
        .expect("osmium (package osmium-tool) is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Read one layer at a time, GDAL's OSM driver keeps the other layers' features it passes until it gives
    // up (past 100,000 of them): the streets were cut short, or the import failed.
    let status = app.import_ok(&u, "madrid.osm.pbf", std::fs::read(&pbf).unwrap(), "").await;
    assert_eq!(status["table_names"], json!(["madrid_osm_points", "madrid_osm_lines"]), "{status:#}");
    assert_eq!(app.count("SELECT count(the_geom) FROM ana.madrid_osm_points").await, 120_000);
    assert_eq!(app.count("SELECT count(the_geom) FROM ana.madrid_osm_lines").await, 12_000);
}
