//! Files shaped like real ones, written with GDAL itself (FileGDB, GeoPackage with curves and an empty
//! layer, KML folders, GML, FlatGeobuf, DXF, MapInfo, shapefiles in Latin-1 and UTF-8, 3D and measured
//! geometries, odd field names), by hand (ESRI JSON, TopoJSON, odd GeoJSON) and with osmium (an OSM PBF of
//! every layer GDAL's OSM driver makes), each imported and compared
//! with GDAL's own reading of the same file: every layer with features is a table, with every feature,
//! and a geometry wherever GDAL reads one. `scripts/corpus` prints the comparison as a table.

use std::path::{Path, PathBuf};

use gdal::vector::LayerAccess;
use serde_json::Value;

use crate::common::*;

/// What GDAL reads in a file: per layer with features, (features, features with a geometry).
fn gdal_reading(path: &Path) -> Vec<(String, u64, u64)> {
    let dataset = gdal::Dataset::open(path).unwrap_or_else(|e| panic!("GDAL cannot open {}: {e}", path.display()));
    let mut layers = Vec::new();
    for mut layer in dataset.layers() {
        let name = layer.name();
        let (mut features, mut geometries) = (0u64, 0u64);
        for feature in layer.features() {
            features += 1;
            geometries += u64::from(feature.geometry().is_some_and(|g| !g.is_empty()));
        }
        if features > 0 {
            layers.push((name, features, geometries));
        }
    }
    layers
}

fn ogr2ogr_into(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let out_text = out.display().to_string();
    let mut all = vec!["-f"];
    all.extend_from_slice(&args[..1]);
    all.push(&out_text);
    all.extend_from_slice(&args[1..]);
    ogr2ogr(&all);
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The corpus: (name to upload as, the file GDAL reads, the bytes to upload).
fn corpus(dir: &Path) -> Vec<(String, PathBuf, Vec<u8>)> {
    let points = write(
        dir,
        "points.csv",
        "id,name,WKT\n1,Málaga,POINT(-4.42 36.72)\n2,Zürich,POINT(8.54 47.38)\n3,no place,\n4,Łódź,POINT(19.46 51.76)\n",
    );
    let shapes = write(
        dir,
        "shapes.csv",
        "id,\"odd name\",select,WKT\n\
         1,a,x,\"CIRCULARSTRING(0 0,1 1,2 0)\"\n\
         2,b,y,\"CURVEPOLYGON(CIRCULARSTRING(0 0,2 0,2 2,0 2,0 0))\"\n\
         3,c,z,\"POLYGON ZM((0 0 1 2,1 0 1 2,1 1 1 2,0 0 1 2))\"\n\
         4,d,w,\"MULTILINESTRING((0 0,1 1),(2 2,3 3))\"\n\
         5,e,v,\"TIN(((0 0,1 0,0 1,0 0)))\"\n",
    );
    let wkt = ["-oo", "GEOM_POSSIBLE_NAMES=WKT", "-oo", "KEEP_GEOM_COLUMNS=NO", "-a_srs", "EPSG:4326"];
    let mut files = Vec::new();
    let mut add = |name: &str, path: PathBuf, bytes: Vec<u8>| files.push((name.to_string(), path, bytes));

    // A GeoPackage of three layers, one of them empty.
    let gpkg = ogr2ogr_into(dir, "survey.gpkg", &["GPKG", &points.display().to_string(), "-nln", "places"]);
    let g = gpkg.display().to_string();
    ogr2ogr(
        &[
            &["-f", "GPKG", "-update", &g, &shapes.display().to_string(), "-nln", "shapes", "-nlt", "GEOMETRY"][..],
            &wkt[..],
        ]
        .concat(),
    );
    ogr2ogr(&["-f", "GPKG", "-update", &g, &points.display().to_string(), "-nln", "empty", "-where", "id = '0'"]);
    add("survey.gpkg", gpkg.clone(), std::fs::read(&gpkg).unwrap());

    // A FileGDB of two layers.
    let gdb_dir = dir.join("gdb");
    std::fs::create_dir(&gdb_dir).unwrap();
    let gdb = gdb_dir.join("city.gdb");
    let gdb_text = gdb.display().to_string();
    // (FileGDB layers have one geometry type each.)
    let lines_csv =
        write(dir, "streets.csv", "id,WKT\n1,\"LINESTRING(0 0,1 1)\"\n2,\"CIRCULARSTRING(0 0,1 1,2 0)\"\n3,\n");
    ogr2ogr(
        &[
            &["-f", "OpenFileGDB", &gdb_text, &points.display().to_string(), "-nln", "places", "-nlt", "POINT"][..],
            &wkt[..],
        ]
        .concat(),
    );
    ogr2ogr(
        &[
            &[
                "-f",
                "OpenFileGDB",
                "-update",
                &gdb_text,
                &lines_csv.display().to_string(),
                "-nln",
                "streets",
                "-nlt",
                "COMPOUNDCURVE",
            ][..],
            &wkt[..],
        ]
        .concat(),
    );
    add("city.gdb.zip", gdb.clone(), zip_dir(&gdb_dir));

    for (driver, file) in
        [("KML", "places.kml"), ("GML", "places.gml"), ("FlatGeobuf", "places.fgb"), ("GeoJSON", "places.geojson")]
    {
        let out = ogr2ogr_into(dir, file, &[&[driver, &points.display().to_string()][..], &wkt[..]].concat());
        add(file, out.clone(), std::fs::read(&out).unwrap());
    }
    let lines = write(
        dir,
        "lines.geojson",
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"n":1},"geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}}]}"#,
    );
    let dxf = ogr2ogr_into(dir, "plan.dxf", &["DXF", &lines.display().to_string()]);
    add("plan.dxf", dxf.clone(), std::fs::read(&dxf).unwrap());

    // MapInfo and shapefiles travel zipped; the shapefiles in Latin-1 without .cpg, and UTF-8 with one.
    for (dir_name, driver, file, extra) in [
        ("tab", "MapInfo File", "places.tab", vec![]),
        ("latin", "ESRI Shapefile", "places.shp", vec!["-lco", "ENCODING=ISO-8859-1"]),
        ("utf8", "ESRI Shapefile", "places.shp", vec!["-lco", "ENCODING=UTF-8"]),
    ] {
        let sub = dir.join(dir_name);
        std::fs::create_dir(&sub).unwrap();
        let out = sub.join(file);
        let out_text = out.display().to_string();
        ogr2ogr(&[&["-f", driver, &out_text, &points.display().to_string()][..], &wkt[..], &extra[..]].concat());
        if dir_name == "latin" {
            let _ = std::fs::remove_file(sub.join("places.cpg"));
        }
        add(&format!("{dir_name}.zip"), out, zip_dir(&sub));
    }

    // By hand: ESRI JSON, TopoJSON, and a GeoJSON with a byte-order mark, a null geometry and mixed kinds.
    let esri = write(
        dir,
        "esri.json",
        r#"{"geometryType":"esriGeometryPoint","spatialReference":{"wkid":4326},"fields":[{"name":"n","type":"esriFieldTypeString"}],
 "features":[{"attributes":{"n":"a"},"geometry":{"x":1,"y":2}},{"attributes":{"n":"b"},"geometry":{"x":3,"y":4}}]}"#,
    );
    add("esri.json", esri.clone(), std::fs::read(&esri).unwrap());
    let topo = write(
        dir,
        "topo.json",
        r#"{"type":"Topology","objects":{"pts":{"type":"GeometryCollection","geometries":[
 {"type":"Point","coordinates":[1,2],"properties":{"n":"a"}},{"type":"Point","coordinates":[3,4],"properties":{"n":"b"}}]},
 "more":{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[5,6]}]}},"arcs":[]}"#,
    );
    add("topo.json", topo.clone(), std::fs::read(&topo).unwrap());
    let odd = dir.join("odd.geojson");
    let text = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"Name":"a","name":"b"},"geometry":{"type":"Point","coordinates":[1,2,3]}},
 {"type":"Feature","properties":{"Name":"c"},"geometry":null},
 {"type":"Feature","properties":{"Name":"d"},"geometry":{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,1]},{"type":"LineString","coordinates":[[0,0],[1,1]]}]}}]}"#;
    std::fs::write(&odd, [&b"\xef\xbb\xbf"[..], text.as_bytes()].concat()).unwrap();
    add("odd.geojson", odd.clone(), std::fs::read(&odd).unwrap());

    // OSM as extracts come: PBF with dense nodes, tagged and untagged, streets, buildings, a multipolygon
    // with a hole, a bus route and a turn restriction (GDAL's other_relations).
    let xml = write(dir, "town.osm", &town_osm(20_000));
    let pbf = dir.join("town.osm.pbf");
    let out = std::process::Command::new("osmium")
        .args(["cat", &xml.display().to_string(), "-o", &pbf.display().to_string()])
        .output()
        .expect("osmium (package osmium-tool) is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    add("town.osm.pbf", pbf.clone(), std::fs::read(&pbf).unwrap());
    files
}

/// An OSM town of `nodes` nodes on a grid: every fifth a café; ways of ten nodes, every third closed as a
/// building, the rest streets; a multipolygon relation with a hole; a route; a restriction.
fn town_osm(nodes: u64) -> String {
    use std::fmt::Write;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<osm version=\"0.6\" generator=\"test\">\n");
    for i in 1..=nodes {
        let (lat, lon) = (40.4 + (i / 200) as f64 * 0.0001, -3.7 + (i % 200) as f64 * 0.0001);
        let tags = if i % 5 == 0 {
            format!("<tag k=\"amenity\" v=\"cafe\"/><tag k=\"name\" v=\"Café {i}\"/>")
        } else {
            String::new()
        };
        let _ = writeln!(x, " <node id=\"{i}\" lat=\"{lat:.7}\" lon=\"{lon:.7}\" version=\"1\">{tags}</node>");
    }
    let ways = nodes / 10;
    for w in 0..ways {
        let first = w * 10 + 1;
        let closed = w % 3 == 0;
        let mut refs: Vec<u64> = (first..first + 10).collect();
        if closed {
            // a ring: down one side of the grid row and back
            refs = vec![first, first + 1, first + 201, first + 200, first];
        }
        let nds: String = refs.iter().map(|r| format!("<nd ref=\"{r}\"/>")).collect();
        let tag = if closed { "<tag k=\"building\" v=\"yes\"/>" } else { "<tag k=\"highway\" v=\"residential\"/>" };
        let _ = writeln!(x, " <way id=\"{}\" version=\"1\">{nds}{tag}</way>", w + 1);
    }
    // An outer ring and an inner one, both untagged ways, made a park by their relation.
    let (o, i) = (ways + 1, ways + 2);
    let _ = writeln!(
        x,
        " <way id=\"{o}\" version=\"1\"><nd ref=\"1\"/><nd ref=\"10\"/><nd ref=\"2010\"/><nd ref=\"2001\"/><nd ref=\"1\"/></way>"
    );
    let _ = writeln!(
        x,
        " <way id=\"{i}\" version=\"1\"><nd ref=\"403\"/><nd ref=\"405\"/><nd ref=\"805\"/><nd ref=\"803\"/><nd ref=\"403\"/></way>"
    );
    let _ = writeln!(
        x,
        " <relation id=\"1\" version=\"1\"><member type=\"way\" ref=\"{o}\" role=\"outer\"/><member type=\"way\" ref=\"{i}\" role=\"inner\"/>\
         <tag k=\"type\" v=\"multipolygon\"/><tag k=\"leisure\" v=\"park\"/></relation>"
    );
    let _ = writeln!(
        x,
        " <relation id=\"2\" version=\"1\"><member type=\"way\" ref=\"2\"/><member type=\"way\" ref=\"3\"/>\
         <tag k=\"type\" v=\"route\"/><tag k=\"route\" v=\"bus\"/></relation>"
    );
    let _ = writeln!(
        x,
        " <relation id=\"3\" version=\"1\"><member type=\"way\" ref=\"2\" role=\"from\"/><member type=\"node\" ref=\"11\" role=\"via\"/>\
         <member type=\"way\" ref=\"3\" role=\"to\"/><tag k=\"type\" v=\"restriction\"/><tag k=\"restriction\" v=\"no_left_turn\"/></relation>"
    );
    x.push_str("</osm>\n");
    x
}

/// Geometries an import counted as impossible to keep, over all its tables.
fn unreadable_geometries(status: &Value) -> u64 {
    let warnings = &status["warnings"];
    let of_tables: u64 = warnings["tables"]
        .as_object()
        .map(|tables| tables.values().filter_map(|w| w["unreadable_geometries"].as_u64()).sum())
        .unwrap_or(0);
    warnings["unreadable_geometries"].as_u64().unwrap_or(0) + of_tables
}

/// What an import made: per table, (rows, rows with a geometry).
async fn imported(app: &TestApp, status: &Value) -> Vec<(String, u64, u64)> {
    let mut tables = Vec::new();
    for table in status["table_names"].as_array().unwrap() {
        let table = table.as_str().unwrap();
        let rows = app.count(&format!("SELECT count(*) FROM ana.\"{table}\"")).await as u64;
        let geometries = app.count(&format!("SELECT count(the_geom) FROM ana.\"{table}\"")).await as u64;
        tables.push((table.to_string(), rows, geometries));
    }
    tables
}

#[tokio::test(flavor = "multi_thread")]
async fn every_file_of_the_corpus_loses_nothing_gdal_reads() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let dir = tempfile::tempdir().unwrap();
    let mut report =
        vec!["| file | layers (GDAL / ours) | features | with a geometry |".to_string(), "|---|---|---|---|".into()];
    let mut lost = Vec::new();
    for (name, path, bytes) in corpus(dir.path()) {
        let theirs = gdal_reading(&path);
        let status = app.import_and_wait(&u, &name, bytes, "").await;
        let ours = if status["state"] == "complete" { imported(&app, &status).await } else { Vec::new() };
        let sum = |layers: &[(String, u64, u64)]| layers.iter().fold((0, 0), |(f, g), l| (f + l.1, g + l.2));
        let ((their_features, their_geometries), (our_features, our_geometries)) = (sum(&theirs), sum(&ours));
        // A geometry GDAL reads that PostGIS cannot hold (a ring of a way whose nodes the extract cut off) is
        // no loss if it is counted, and the rejections report names it.
        let dropped = unreadable_geometries(&status);
        let shown_dropped = if dropped > 0 { format!(" (+{dropped} counted, not kept)") } else { String::new() };
        report.push(format!(
            "| {name} | {} / {} | {their_features} / {our_features} | {their_geometries} / {our_geometries}{shown_dropped} |",
            theirs.len(),
            ours.len()
        ));
        if ours.len() != theirs.len()
            || our_features != their_features
            || our_geometries + dropped < their_geometries
            || status["rejections"].as_u64().unwrap_or(0) < dropped
        {
            lost.push(format!("{name}: GDAL {theirs:?}, ours {ours:?}, status {}", status["get_error_text"]));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(lost.is_empty(), "GDAL reads more than we load:\n{}", lost.join("\n"));
}
