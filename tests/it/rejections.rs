//! The rejections report (`GET /api/v1/imports/{id}/rejections`): every value moved to an `_invalid`
//! column or stored as NULL, every geometry repaired, simplified or dropped, with its row, column, original
//! value and reason; the status's `rejections` counts them; only the owner sees them; pages and the limit of
//! kept details hold.

use crate::common::mysql::TestMysql;
use crate::common::*;
use crate::connectors_mysql::{self, connector};
use crate::formats::{app_and_user, write};
use serde_json::{Value, json};

/// The import's report, all on one page.
async fn report(app: &TestApp, u: &TestUser, status: &Value) -> Value {
    app.get_json(u, &format!("/api/v1/imports/{}/rejections?per_page=1000", status["id"].as_str().unwrap())).await
}

/// (row, column, value, reason) of each listed rejection.
fn rows_of(report: &Value) -> Vec<(i64, String, Option<String>, String)> {
    report["rejections"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {report:#}"))
        .iter()
        .map(|r| {
            (
                r["row"].as_i64().unwrap(),
                r["column"].as_str().unwrap().to_string(),
                r["value"].as_str().map(String::from),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_reports_each_value_kept_aside_and_each_unreadable_geometry_by_row() {
    let (app, u) = app_and_user().await;
    let mut csv = String::from("name,day,wkt\n");
    for i in 1..=20 {
        csv.push_str(&format!("p{i},2024-01-{i:02},\"POINT({i} 1)\"\n"));
    }
    csv.push_str("odd,the day after,\"POINT(3 3)\"\n"); // row 21: not a date
    csv.push_str("ring,2024-02-01,\"POLYGON((5 5,6 6,5 5))\"\n"); // row 22: a ring PostGIS cannot hold
    let status = app.import_ok(&u, "visits.csv", csv, "").await;
    assert_eq!(app.column_type("ana", "visits", "day").await, "date", "{status:#}");
    assert_eq!(status["rejections"], 2, "{status:#}");
    let report = report(&app, &u, &status).await;
    assert_eq!((report["total"].as_i64(), report["listed"].as_i64()), (Some(2), Some(2)), "{report:#}");
    assert_eq!(report["state"], "complete");
    let rows = rows_of(&report);
    assert_eq!(rows.len(), 2, "{report:#}");
    let (row, column, value, reason) = &rows[0];
    assert_eq!((*row, column.as_str(), value.as_deref()), (21, "day", Some("the day after")), "{report:#}");
    assert!(reason.contains("not a date") && reason.contains("day_invalid"), "{reason}");
    let (row, column, value, reason) = &rows[1];
    assert_eq!((*row, column.as_str(), value.as_deref()), (22, "the_geom", Some("POLYGON((5 5,6 6,5 5))")));
    assert!(reason.contains("not a geometry") && reason.contains("wkt_invalid"), "{reason}");
    assert!(report["rejections"][0]["table_name"] == "visits", "{report:#}");
    // What the report says is where the table keeps it.
    assert_eq!(
        app.texts("SELECT day_invalid FROM ana.visits WHERE name = 'odd'").await,
        [Some("the day after".to_string())]
    );

    // A clean import reports nothing, and says so.
    let clean = app.import_ok(&u, "clean.csv", "a,b\n1,2\n", "").await;
    assert_eq!(clean["rejections"], 0, "{clean:#}");
    assert_eq!(report_total(&app, &u, &clean).await, 0);
}

async fn report_total(app: &TestApp, u: &TestUser, status: &Value) -> i64 {
    report(app, u, status).await["total"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn repaired_simplified_and_dropped_geometries_of_gdal_files_are_reported() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    // Feature 1 is fine, 2 a bow tie (repaired), 3 a collapsed ring (PostGIS cannot hold it: dropped).
    let src = write(
        dir.path(),
        "parcels.geojson",
        r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"n":1},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
 {"type":"Feature","properties":{"n":2},"geometry":{"type":"Polygon","coordinates":[[[0,0],[2,2],[2,0],[0,2],[0,0]]]}},
 {"type":"Feature","properties":{"n":3},"geometry":{"type":"Polygon","coordinates":[[[5,5],[6,6],[5,5]]]}}]}"#,
    );
    let shp_dir = shapefile_folder(dir.path(), "parcels", &src, &[]);
    let status = app.import_ok(&u, "parcels.zip", zip_dir(&shp_dir), "").await;
    assert_eq!(status["rejections"], 2, "{status:#}");
    let rows = rows_of(&report(&app, &u, &status).await);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let dropped = rows.iter().find(|r| r.0 == 3).expect("feature 3 is reported");
    assert_eq!(dropped.1, "the_geom");
    assert!(dropped.2.as_deref().is_some_and(|v| v.starts_with("POLYGON ((5 5,6 6,5 5))")), "{dropped:?}");
    assert!(dropped.3.contains("the feature has none"), "{dropped:?}");
    let repaired = rows.iter().find(|r| r.0 == 2).expect("feature 2 is reported");
    assert!(repaired.3.contains("Self-intersection") && repaired.3.contains("repaired"), "{repaired:?}");
    assert!(repaired.2.as_deref().is_some_and(|v| v.starts_with("POLYGON((0 0,2 2,2 0,0 2,0 0))")), "{repaired:?}");

    // A curve in a GeoPackage: kept, made of straight segments, and the report says so.
    let csv = write(dir.path(), "arcs.csv", "id,WKT\n1,\"CIRCULARSTRING(0 0,1 1,2 0)\"\n2,\"LINESTRING(0 0,1 1)\"\n");
    let gpkg = dir.path().join("arcs.gpkg").display().to_string();
    ogr2ogr(&["-f", "GPKG", &gpkg, &csv, "-oo", "GEOM_POSSIBLE_NAMES=WKT", "-a_srs", "EPSG:4326"]);
    let status = app.import_ok(&u, "arcs.gpkg", std::fs::read(&gpkg).unwrap(), "").await;
    let rows = rows_of(&report(&app, &u, &status).await);
    assert_eq!(rows.len(), 1, "only the arc changed shape: {rows:?}");
    assert_eq!((rows[0].0, rows[0].1.as_str()), (1, "the_geom"));
    assert!(rows[0].2.as_deref().is_some_and(|v| v.starts_with("CIRCULARSTRING")), "{rows:?}");
    assert!(rows[0].3.contains("straight segments"), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_is_the_owners_paged_and_keeps_the_first_thousand_details_of_a_table() {
    let (app, u) = app_and_user().await;
    let other = app.create_user("bob").await;
    // 1100 bow ties: every one repaired, the first 1000 described, all counted.
    let features: Vec<String> = (1..=1100)
        .map(|i| {
            let x = f64::from(i % 100);
            format!(
                r#"{{"type":"Feature","properties":{{"n":{i}}},"geometry":{{"type":"Polygon","coordinates":[[[{x},0],[{x}.5,1],[{x}.5,0],[{x},1],[{x},0]]]}}}}"#
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let src = write(
        dir.path(),
        "ties.geojson",
        &format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(",")),
    );
    let shp_dir = shapefile_folder(dir.path(), "ties", &src, &[]);
    let status = app.import_ok(&u, "ties.zip", zip_dir(&shp_dir), "").await;
    assert_eq!(status["rejections"], 1100, "{status:#}");
    let id = status["id"].as_str().unwrap();
    let first = app.get_json(&u, &format!("/api/v1/imports/{id}/rejections")).await;
    assert_eq!((first["total"].as_i64(), first["listed"].as_i64()), (Some(1100), Some(1000)), "{:#}", first["total"]);
    assert_eq!((first["page"].as_i64(), first["per_page"].as_i64()), (Some(1), Some(100)));
    assert_eq!(first["rejections"].as_array().unwrap().len(), 100);
    let page = app.get_json(&u, &format!("/api/v1/imports/{id}/rejections?page=10&per_page=100")).await;
    let rows = rows_of(&page);
    assert_eq!(rows.len(), 100);
    assert_eq!(rows.last().unwrap().0, 1000, "the last kept is the 1000th");
    let past = app.get_json(&u, &format!("/api/v1/imports/{id}/rejections?page=11&per_page=100")).await;
    assert_eq!(past["rejections"], json!([]), "{past:#}");

    // Another user's key finds no such import, under either prefix; bad paging is a 400.
    for path in [format!("/api/v1/imports/{id}/rejections"), format!("/user/bob/api/v1/imports/{id}/rejections/")] {
        let resp = app.client.get(app.url(&format!("{path}?api_key={}", other.key))).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    let resp = app.client.get(app.url(&format!("/api/v1/imports/{id}/rejections?api_key=wrong"))).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    for bad in ["per_page=1001", "page=0", "page=two"] {
        let url = app.url(&format!("/api/v1/imports/{id}/rejections?{bad}&api_key={}", u.key));
        assert_eq!(app.client.get(url).send().await.unwrap().status(), 400, "{bad}");
    }
    let api = app.get_json(&u, "/api/v1/openapi.json").await;
    assert!(api["paths"]["/api/v1/imports/{id}/rejections"]["get"].is_object(), "documented");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_reports_zero_dates_and_values_that_are_no_geometry() {
    let app = connectors_mysql::app().await;
    let u = app.create_user("ana").await;
    let db = TestMysql::create(
        "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION';
         CREATE TABLE visits (id INT PRIMARY KEY, day DATE, geom TEXT);
         INSERT INTO visits VALUES (1, '2024-01-01', 'POINT(1 2)'), (2, '0000-00-00', 'POINT(1 2)'),
                                   (3, '2024-01-03', 'somewhere');",
    )
    .await;
    let status = connectors_mysql::import_ok(&app, &u, connector(&db, json!({"table": "visits"}))).await;
    assert_eq!(status["rejections"], 2, "{status:#}");
    let rows = rows_of(&report(&app, &u, &status).await);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].0, rows[0].1.as_str(), rows[0].2.as_deref()), (2, "day", Some("0000-00-00")), "{rows:?}");
    assert!(rows[0].3.contains("zero"), "{rows:?}");
    assert_eq!((rows[1].0, rows[1].1.as_str(), rows[1].2.as_deref()), (3, "the_geom", Some("somewhere")), "{rows:?}");
    assert!(rows[1].3.contains("not a geometry"), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feature_gdal_reads_past_is_reported_not_lost_in_silence() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "plots.csv",
        "id,WKT\n1,\"POLYGON((0 0,1 0,1 1,0 0))\"\n2,\"POLYGON((0 0,2 0,2 2,0 0))\"\n3,\"POLYGON((0 0,3 0,3 3,0 0))\"\n",
    );
    let shp_dir =
        shapefile_folder(dir.path(), "plots", &csv, &["-oo", "GEOM_POSSIBLE_NAMES=WKT", "-a_srs", "EPSG:4326"]);
    let shp = shp_dir.join("plots.shp");
    // The last record cut short, as by a copy that stopped: GDAL says so and gives the feature without a geometry.
    let len = std::fs::metadata(&shp).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&shp).unwrap().set_len(len - 30).unwrap();
    let status = app.import_ok(&u, "plots.zip", zip_dir(&shp_dir), "").await;
    assert_eq!(status["warnings"]["reader_errors"]["count"], 1, "{status:#}");
    let said = status["warnings"]["reader_errors"]["last"].as_str().unwrap();
    assert!(said.contains("reading object"), "{said}");
    let rows = rows_of(&report(&app, &u, &status).await);
    assert!(
        rows.iter().any(|(row, _, _, reason)| *row == 3 && reason.contains("GDAL could not read all of this feature")),
        "{rows:?}"
    );
}
