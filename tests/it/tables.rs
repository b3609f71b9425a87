//! `/api/v1/tables` (issue 13): the caller's tables with their rows, geometry types, bounding box and
//! import; one table's columns and first rows; vector tiles made by PostGIS. Another user's table is a 404
//! everywhere, as a table that does not exist.

use reqwest::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::Value;

use crate::common::*;

const SQUARES: &str = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"label":"west"},"geometry":{"type":"Polygon","coordinates":[[[-4,40],[-3.5,40],[-3.5,40.5],[-4,40.5],[-4,40]]]}},
 {"type":"Feature","properties":{"label":"east"},"geometry":{"type":"MultiPolygon","coordinates":[[[[2,41],[2.5,41],[2.5,41.5],[2,41.5],[2,41]]]]}}]}"#;

async fn get(app: &TestApp, user: &TestUser, path: &str) -> reqwest::Response {
    app.client.get(app.url(&format!("{path}?api_key={}", user.key))).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tables_list_tells_rows_types_extent_and_import_and_shows_first_rows() {
    let app = TestApp::start().await;
    let (ana, ben) = (app.create_user("ana").await, app.create_user("ben").await);
    let tour = app.import_ok(&ana, "prism_tour.csv", prism_tour_csv(), "").await;
    let squares = app.import_ok(&ana, "squares.geojson", SQUARES, "").await;
    app.import_ok(&ben, "bens.csv", "name,lat,lon\nx,1,2\n", "").await;

    let listed = app.get_json(&ana, "/api/v1/tables/").await;
    assert_eq!(listed["total_entries"], 2, "{listed:#}");
    let by_name =
        |name: &str| listed["tables"].as_array().unwrap().iter().find(|t| t["name"] == name).cloned().unwrap();
    let t = by_name("prism_tour");
    assert_eq!((t["kind"].clone(), t["rows"].clone()), ("vector".into(), 4.into()), "{t:#}");
    assert_eq!(t["geometry_types"], serde_json::json!(["POINT"]));
    assert_eq!(t["import_id"], tour["id"]);
    let bbox: Vec<f64> = t["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    // Prado, Reina Sofia, Thyssen and the Sorolla museum, in Madrid.
    assert!((bbox[0] + 3.70).abs() < 0.02 && (bbox[2] + 3.69).abs() < 0.02, "{bbox:?}");
    assert!((bbox[1] - 40.41).abs() < 0.02 && (bbox[3] - 40.44).abs() < 0.02, "{bbox:?}");
    let s = by_name("squares");
    assert_eq!(s["geometry_types"], serde_json::json!(["MULTIPOLYGON", "POLYGON"]), "{s:#}");
    assert_eq!(s["import_id"], squares["id"]);
    assert_eq!(s["bbox"], serde_json::json!([-4.0, 40.0, 2.5, 41.5]));

    let detail = app.get_json(&ana, "/api/v1/tables/prism_tour").await;
    let columns: Vec<(String, String)> = detail["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["type"].as_str().unwrap().to_string()))
        .collect();
    assert!(columns.contains(&("cartodb_id".into(), "bigint".into())), "{columns:?}");
    assert!(columns.contains(&("the_geom".into(), "geometry(Geometry,4326)".into())), "{columns:?}");
    assert!(columns.contains(&("visitors".into(), "integer".into())), "{columns:?}");
    let first = &detail["first_rows"][0];
    assert_eq!(first["name"], "Prado", "{detail:#}");
    assert_eq!(first["the_geom"]["type"], "Point");
    assert_eq!(first["the_geom"]["coordinates"], serde_json::json!([-3.6921, 40.4138]));
    assert!(first.get("the_geom_webmercator").is_none(), "{first}");
    assert_eq!(detail["first_rows"].as_array().unwrap().len(), 4);

    // Another user's tables are nowhere to be seen.
    let bens = app.get_json(&ben, "/api/v1/tables").await;
    assert_eq!(bens["total_entries"], 1, "{bens:#}");
    assert_eq!(get(&app, &ben, "/api/v1/tables/prism_tour").await.status(), 404);
    assert_eq!(get(&app, &ana, "/api/v1/tables/no_such_table").await.status(), 404);
    assert_eq!(get(&app, &ana, "/api/v1/tables/bens").await.status(), 404);
    let (x, y) = tile_of(10, (-3.6921, 40.4138));
    assert_eq!(get(&app, &ben, &format!("/api/v1/tables/prism_tour/tiles/10/{x}/{y}.mvt")).await.status(), 404);
    // Names are looked up, never spliced: a quote or a schema in the name finds nothing.
    for name in ["prism_tour%22%3B%20DROP%20TABLE%20x", "ben.bens", "..%2Fbens"] {
        assert_eq!(get(&app, &ana, &format!("/api/v1/tables/{name}")).await.status(), 404, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tiles_are_mapbox_vector_tiles_of_the_features_they_meet_with_an_etag() {
    let app = TestApp::start().await;
    let ana = app.create_user("ana").await;
    app.import_ok(&ana, "prism_tour.csv", prism_tour_csv(), "").await;

    let (x, y) = tile_of(12, (-3.6921, 40.4138));
    let path = format!("/api/v1/tables/prism_tour/tiles/12/{x}/{y}.mvt");
    let resp = get(&app, &ana, &path).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/vnd.mapbox-vector-tile");
    let etag = resp.headers()[ETAG].to_str().unwrap().to_string();
    let bytes = resp.bytes().await.unwrap();
    // The tile is a protobuf whose strings are plain UTF-8: its layer's name and the properties' values.
    let holds = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(holds("prism_tour") && holds("Prado") && holds("Reina Sofia"), "{} bytes", bytes.len());
    // PostGIS reads the same tile back: as many features as the museums inside it.
    let inside = app
        .count(&format!(
            "SELECT count(*) FROM ana.prism_tour WHERE the_geom_webmercator && ST_TileEnvelope(12, {x}, {y})"
        ))
        .await;
    assert!(inside >= 2, "{inside}");

    let again = app
        .client
        .get(app.url(&format!("{path}?api_key={}", ana.key)))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Far from Madrid the tile is empty, and a different tile has a different ETag.
    let (fx, fy) = tile_of(12, (140.0, -30.0));
    let empty = get(&app, &ana, &format!("/api/v1/tables/prism_tour/tiles/12/{fx}/{fy}.mvt")).await;
    assert_eq!(empty.status(), 200);
    assert_ne!(empty.headers()[ETAG].to_str().unwrap(), etag);
    assert!(empty.bytes().await.unwrap().is_empty());
    // The world at zoom 0 holds every museum.
    let world = get(&app, &ana, "/api/v1/tables/prism_tour/tiles/0/0/0.mvt").await.bytes().await.unwrap();
    assert!(world.windows(5).any(|w| w == b"Prado"));
    for bad in ["25/0/0.mvt", "1/2/0.mvt", "1/0/2.mvt", "1/0/0", "1/0/x.mvt"] {
        assert_eq!(get(&app, &ana, &format!("/api/v1/tables/prism_tour/tiles/{bad}")).await.status(), 400, "{bad}");
    }
    // Every route is in the OpenAPI document.
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    for route in ["/api/v1/tables", "/api/v1/tables/{name}", "/api/v1/tables/{name}/tiles/{z}/{x}/{y}"] {
        assert!(doc["paths"].get(route).is_some(), "{route} is not documented");
    }
}
