//! The API as a CARTO client sees it: the quickstart, the status JSON, authentication, listing, and the
//! documentation and probe routes.

use crate::common::*;
use base64::Engine;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_makes_a_prism_tour_table_with_points_and_typed_columns() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;

    let status = app.import_ok(&alice, "prism_tour.csv", prism_tour_csv(), "").await;
    assert_eq!(status["table_name"], "prism_tour");
    assert_eq!(status["success"], true);
    assert_eq!(status["tables_created_count"], 1);
    assert_eq!(status["rows_imported"], 4);
    assert_eq!(status["table_names"], serde_json::json!(["prism_tour"]));

    let columns = app.columns("alice", "prism_tour").await;
    let expected = [
        ("cartodb_id", "bigint"),
        ("the_geom", "geometry(Geometry,4326)"),
        ("the_geom_webmercator", "geometry(Geometry,3857)"),
        ("name", "text"),
        ("latitude", "double precision"),
        ("longitude", "double precision"),
        ("visitors", "integer"),
        ("opened", "date"),
        ("rating", "double precision"),
        ("open_now", "boolean"),
    ];
    let got: Vec<(&str, &str)> = columns.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert_eq!(got, expected);

    let points = app
        .count(
            "SELECT count(*) FROM alice.prism_tour WHERE GeometryType(the_geom) = 'POINT' AND ST_SRID(the_geom) = 4326",
        )
        .await;
    assert_eq!(points, 4);
    let prado = app.texts("SELECT ST_AsText(the_geom) FROM alice.prism_tour WHERE name = 'Prado'").await;
    assert_eq!(prado, [Some("POINT(-3.6921 40.4138)".to_string())]);
    let off = app
        .count(
            "SELECT count(*) FROM alice.prism_tour WHERE ST_SRID(the_geom_webmercator) <> 3857 \
             OR ST_Distance(the_geom_webmercator, ST_Transform(the_geom, 3857)) > 0.001",
        )
        .await;
    assert_eq!(off, 0, "the_geom_webmercator must be the_geom in EPSG:3857");
    let ids = app.texts("SELECT string_agg(cartodb_id::text, ',' ORDER BY cartodb_id) FROM alice.prism_tour").await;
    assert_eq!(ids, [Some("1,2,3,4".into())]);
    // An insert without an id gets the next one.
    let next: i64 = sqlx::query_scalar("INSERT INTO alice.prism_tour (name) VALUES ('new') RETURNING cartodb_id")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(next, 5);
    let indexes = app
        .texts("SELECT indexdef FROM pg_indexes WHERE schemaname = 'alice' AND tablename = 'prism_tour' ORDER BY 1")
        .await;
    assert_eq!(indexes.len(), 3, "{indexes:?}");
    assert!(indexes.iter().flatten().any(|d| d.contains("gist (the_geom)")));
    assert!(indexes.iter().flatten().any(|d| d.contains("gist (the_geom_webmercator)")));
    assert!(app.staging_tables().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_json_has_every_reference_field_in_order_with_its_type() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;
    let id = app.import(&alice, "prism_tour.csv", prism_tour_csv(), "").await;
    app.wait_final(&alice, id).await;
    let body = app
        .client
        .get(app.url(&format!("/api/v1/imports/{id}?api_key={}", alice.key)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reference = [
        "id",
        "user_id",
        "table_id",
        "data_type",
        "table_name",
        "state",
        "error_code",
        "queue_id",
        "tables_created_count",
        "synchronization_id",
        "type_guessing",
        "quoted_fields_guessing",
        "content_guessing",
        "create_visualization",
        "visualization_id",
        "user_defined_limits",
        "get_error_text",
        "display_name",
        "success",
        "original_url",
        "warnings",
        "is_raster",
        "any_table_raster",
        "derived_visualization_id",
        "table_names",
        "rows_imported",
        "rejections",
    ];
    let parsed: serde_json::Map<String, Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed.len(), reference.len(), "{body}");
    let positions: Vec<usize> = reference
        .iter()
        .map(|k| body.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k} missing from {body}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "fields out of the reference's order: {body}");
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["id"], id.to_string());
    assert_eq!(s["queue_id"], id.to_string());
    assert_eq!(s["user_id"], alice.id.to_string());
    assert!(s["table_id"].is_string());
    assert_eq!(s["data_type"], "file");
    assert_eq!(s["state"], "complete");
    assert!(s["error_code"].is_null() && s["get_error_text"].is_null());
    assert_eq!(s["type_guessing"], true);
    assert_eq!(s["quoted_fields_guessing"], true);
    assert_eq!(s["content_guessing"], false);
    assert_eq!(s["create_visualization"], false);
    assert_eq!(s["user_defined_limits"], "{\"twitter_credits_limit\":0}");
    assert_eq!(s["display_name"], "prism_tour.csv");
    assert_eq!(s["original_url"], "");
    assert_eq!(s["is_raster"], false);
    assert_eq!(s["any_table_raster"], false);
    assert!(s["derived_visualization_id"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_import_explains_itself_with_the_reference_code_and_title() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;
    let status = app.import_and_wait(&alice, "empty.csv", "", "").await;
    assert_eq!(status["state"], "failure");
    assert_eq!(status["success"], false);
    assert_eq!(status["error_code"], 1005);
    assert_eq!(status["get_error_text"]["title"], "Empty file");
    assert_eq!(status["get_error_text"]["source"], "user");
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("0 bytes"));
    assert!(status["tables_created_count"].is_null());
    assert!(status.get("any_table_raster").is_none(), "only complete imports carry it");
    assert!(app.tables_of("alice").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_missing_key_is_401_with_a_json_body() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;
    let wrong = TestUser { key: "0".repeat(40), ..app.create_user("mallory").await };
    let resp = app.upload(&wrong, "x.csv", "a\n1\n", "").await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert!(body["errors"].is_string());
    let resp = app.client.get(app.url("/api/v1/imports")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.json::<Value>().await.unwrap()["errors"].is_string());
    let resp = app.client.get(app.url(&format!("/api/v1/imports?api_key={}x", alice.key))).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_is_accepted_as_basic_auth_form_field_and_under_the_user_prefix() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;

    // HTTP Basic username:api_key
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{}", alice.key));
    let resp = app
        .client
        .get(app.url("/api/v1/imports"))
        .header("Authorization", format!("Basic {basic}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let wrong_user = base64::engine::general_purpose::STANDARD.encode(format!("bob:{}", alice.key));
    let resp = app
        .client
        .get(app.url("/api/v1/imports"))
        .header("Authorization", format!("Basic {wrong_user}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // a multipart form field before the file; after it, the file would be stored unauthenticated: refused
    // The staging area is made with the first upload it keeps: none at all means nothing was written.
    let staged = || {
        let dir = app.data_dir.join("staging");
        assert!(app.data_dir.is_dir());
        if dir.exists() { paths_under(&dir) } else { Vec::new() }
    };
    let staged_before = staged();
    let part = || reqwest::multipart::Part::bytes(b"a,b\n1,2\n".to_vec()).file_name("form_key.csv");
    let late = reqwest::multipart::Form::new().part("file", part()).text("api_key", alice.key.clone());
    let resp = app.client.post(app.url("/api/v1/imports")).multipart(late).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let raw_without_key =
        app.client.post(app.url("/api/v1/imports?filename=x.csv")).body("a\n1\n").send().await.unwrap();
    assert_eq!(raw_without_key.status(), 401);
    // Nothing of either body was written: no file appeared in the staging area, not even a partial one.
    let new_files: Vec<_> = staged().into_iter().filter(|f| !staged_before.contains(f)).collect();
    assert!(new_files.is_empty(), "a refused upload wrote to disk: {new_files:?}");
    let form = reqwest::multipart::Form::new().text("api_key", alice.key.clone()).part("file", part());
    let resp = app.client.post(app.url("/api/v1/imports")).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id: Value = resp.json().await.unwrap();
    let id = uuid::Uuid::parse_str(id["item_queue_id"].as_str().unwrap()).unwrap();
    assert_eq!(app.wait_final(&alice, id).await["table_name"], "form_key");

    // /user/<name>/ prefix: the key must be that user's
    let ok = app
        .client
        .get(app.url(&format!("/user/alice/api/v1/imports/{id}?api_key={}", alice.key)))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok =
        app.client.get(app.url(&format!("/u/alice/api/v1/imports/{id}?api_key={}", alice.key))).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let mismatch =
        app.client.get(app.url(&format!("/user/bob/api/v1/imports?api_key={}", alice.key))).send().await.unwrap();
    assert_eq!(mismatch.status(), 401);
    let bob_ok =
        app.client.get(app.url(&format!("/user/bob/api/v1/imports?api_key={}", bob.key))).send().await.unwrap();
    assert_eq!(bob_ok.status(), 200);

    // a raw body named by `filename`
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports?api_key={}&filename=raw%20body.csv", alice.key)))
        .header("Content-Type", "application/octet-stream")
        .body("x,y\n1,2\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id: Value = resp.json().await.unwrap();
    let id = uuid::Uuid::parse_str(id["item_queue_id"].as_str().unwrap()).unwrap();
    let status = app.wait_final(&alice, id).await;
    assert_eq!(status["table_name"], "raw_body");
    assert_eq!(status["display_name"], "raw_body.csv");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_points_to_its_status_with_location_and_retry_after() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;
    for prefix in ["", "/user/alice"] {
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(b"a,b\n1,2\n".to_vec()).file_name("located.csv"));
        let url = app.url(&format!("{prefix}/api/v1/imports/?api_key={}", alice.key));
        let resp = app.client.post(url).multipart(form).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(location, format!("{prefix}/api/v1/imports/{}", body["item_queue_id"].as_str().unwrap()));
        // The Location is the status resource itself.
        let status = app.client.get(app.url(&format!("{location}?api_key={}", alice.key))).send().await.unwrap();
        assert_eq!(status.status(), 200);
        let status: Value = status.json().await.unwrap();
        assert_eq!(status["id"], body["item_queue_id"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_sees_another_users_import() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let id = app.import(&alice, "secret.csv", "a\n1\n", "").await;
    app.wait_final(&alice, id).await;
    assert_eq!(app.status(&bob, id).await.0, 404);
    assert_eq!(app.status(&alice, uuid::Uuid::new_v4()).await.0, 404);
    let resp =
        app.client.get(app.url(&format!("/api/v1/imports/not-a-uuid?api_key={}", alice.key))).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    // and the tables are in each user's own schema
    assert_eq!(app.tables_of("alice").await, ["secret"]);
    assert!(app.tables_of("bob").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_are_400_and_unknown_ones_are_ignored() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;
    let resp = app.upload(&alice, "a.csv", "a\n1\n", "privacy=secret").await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["errors"]["imports"].as_str().unwrap().contains("privacy"));
    let resp = app.upload(&alice, "a.csv", "a\n1\n", "collision_strategy=replace").await;
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["errors"]["imports"].is_string());
    // Nothing to import at all (CARTO's SDK sends this before its real request): accepted, as the reference
    // does, as an import that failed at once, which never shows among the imports under way.
    let resp = app
        .client
        .post(app.url(&format!("/user/alice/api/v1/imports/?api_key={}", alice.key)))
        .json(&serde_json::json!({"client": "cps-test", "api_key": alice.key}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "nothing to import");
    let id: uuid::Uuid = resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let (_, status) = app.status(&alice, id).await;
    assert_eq!((status["state"].as_str(), status["error_code"].as_i64()), (Some("failure"), Some(1005)), "{status:#}");
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("no file, URL or connector"));
    assert!(!app.get_json(&alice, "/api/v1/imports/").await["imports"].to_string().contains(&id.to_string()));
    let status =
        app.import_ok(&alice, "a.csv", "a\n1\n", "table_name=ignored&append=true&foo=bar&privacy=PUBLIC").await;
    assert_eq!(status["table_name"], "a");
    // The privacy is kept with the table (in any case the client wrote it).
    assert_eq!(app.texts("SELECT privacy FROM geoimport.tables WHERE name = 'a'").await, [Some("public".to_string())]);
    let status = app.import_ok(&alice, "b.csv", "a\n1\n", "type_guessing=false&create_vis=true").await;
    assert_eq!(status["type_guessing"], false);
    assert_eq!(status["create_visualization"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_shows_unfinished_imports_newest_first() {
    // An API-only node: nothing runs, so the imports stay pending.
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let first = app.import(&alice, "one.csv", "a\n1\n", "").await;
    let second = app.import(&alice, "two.csv", "a\n1\n", "").await;
    app.import(&bob, "three.csv", "a\n1\n", "").await;
    // Neither a finished import nor one older than a day is listed.
    let ended = app.import(&alice, "ended.csv", "a\n1\n", "").await;
    let stale = app.import(&alice, "stale.csv", "a\n1\n", "").await;
    sqlx::query("UPDATE geoimport.imports SET state = 'failure', error_code = 6672 WHERE id = $1")
        .bind(ended)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE geoimport.imports SET created_at = now() - interval '25 hours' WHERE id = $1")
        .bind(stale)
        .execute(&app.pool)
        .await
        .unwrap();
    let body = app.get_json(&alice, "/api/v1/imports/").await;
    assert_eq!(body["success"], true);
    assert_eq!(body["imports"], serde_json::json!([second.to_string(), first.to_string()]));
    let (code, status) = app.status(&alice, first).await;
    assert_eq!(code, 200);
    assert_eq!(status["state"], "pending");
    assert!(status.get("success").is_none(), "success appears only in final states");
}

#[tokio::test(flavor = "multi_thread")]
async fn docs_probes_and_request_ids_are_served() {
    let app = TestApp::start().await;
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/imports",
        "/api/v1/imports/{id}",
        "/api/v1/imports/{id}/cancel",
        "/api/v1/synchronizations",
        "/api/v1/synchronizations/{id}",
        "/api/v1/synchronizations/{id}/sync_now",
        "/api/v1/connectors",
        "/livez",
        "/readyz",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    assert!(doc["paths"]["/api/v1/imports"]["post"].is_object());
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    for probe in ["/livez", "/readyz", "/healthz"] {
        let resp = app.client.get(app.url(probe)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{probe}");
        assert!(resp.headers().contains_key("x-request-id"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_imports_by_state_without_naming_anyone() {
    let app = TestApp::start().await;
    let u = app.create_user("mia").await;
    app.import_ok(&u, "three.csv", "a\n1\n2\n3\n", "").await;
    let failed = app.import(&u, "empty.csv", "", "").await;
    assert_eq!(app.wait_final(&u, failed).await["state"], "failure");
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = resp.text().await.unwrap();
    for line in [
        "geoimport_imports{state=\"complete\"} 1",
        "geoimport_imports{state=\"failure\"} 1",
        "geoimport_imports{state=\"pending\"} 0",
        "geoimport_imported_rows 3",
        "geoimport_oldest_pending_import_age_seconds 0.0",
    ] {
        assert!(text.lines().any(|l| l == line), "no '{line}' in:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
    assert!(!text.contains("mia") && !text.contains(&u.id.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_at_the_root_only_and_can_ask_for_a_token() {
    let app = TestApp::start_with(|s| s.runtime.metrics_token = Some("s3cret".into())).await;
    let get = |path: &str, token: Option<&str>| {
        let mut request = app.client.get(app.url(path));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send()
    };
    assert_eq!(get("/metrics", None).await.unwrap().status(), 401);
    assert_eq!(get("/metrics", Some("wrong")).await.unwrap().status(), 401);
    let resp = get("/metrics", Some("s3cret")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    // Every synchronization state is there, at 0 when empty.
    for state in ["created", "queued", "syncing", "success", "failure"] {
        let line = format!("geoimport_synchronizations{{state=\"{state}\"}} 0");
        assert!(text.lines().any(|l| l == line), "no '{line}' in:\n{text}");
    }
    assert_eq!(get("/user/anyone/metrics", Some("s3cret")).await.unwrap().status(), 404);
}
