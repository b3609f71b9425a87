//! Publishing: names that collide, the collision strategies, and the limits that stop a table from
//! appearing. Whatever happens, a failed import leaves no table behind.

use crate::common::*;
use geoimport::users::ExtraLimits;

#[tokio::test(flavor = "multi_thread")]
async fn a_second_upload_of_the_same_name_gets_1_then_2() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let csv = "a,b\n1,2\n";
    assert_eq!(app.import_ok(&u, "places.csv", csv, "").await["table_name"], "places");
    assert_eq!(app.import_ok(&u, "places.csv", csv, "").await["table_name"], "places_1");
    assert_eq!(app.import_ok(&u, "places.csv", csv, "").await["table_name"], "places_2");
    assert_eq!(app.tables_of("ana").await, ["places", "places_1", "places_2"]);
    // reserved names get a suffix
    assert_eq!(app.import_ok(&u, "select.csv", csv, "").await["table_name"], "select_t");
    // each table's indexes are named after it
    let pk = app.texts("SELECT indexname::text FROM pg_indexes WHERE tablename = 'places_1' ORDER BY 1").await;
    assert_eq!(
        pk,
        ["places_1_pkey", "places_1_the_geom_idx", "places_1_the_geom_webmercator_idx"].map(|s| Some(s.to_string()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_rows_are_written_frozen() {
    // COPY FREEZE into the staging table: no page of a new table waits for a later freeze.
    let app = TestApp::start().await;
    let u = app.create_user("fay").await;
    let csv: String = std::iter::once("a,b\n".to_string()).chain((0..2000).map(|i| format!("{i},x{i}\n"))).collect();
    app.import_ok(&u, "frozen.csv", csv, "").await;
    // pg_visibility is a superuser's tool; the server's own role may not use it.
    let admin = sqlx::PgPool::connect(&url_for(&app.db.name)).await.unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_visibility").execute(&admin).await.unwrap();
    let count = |sql: String| {
        let admin = admin.clone();
        async move { sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(&admin).await.unwrap() }
    };
    let pages = "SELECT count(*) FROM pg_visibility_map('fay.frozen')";
    assert!(count(pages.to_string()).await > 1);
    assert_eq!(count(format!("{pages} WHERE NOT all_frozen")).await, 0);
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_leaves_an_existing_table_alone_and_reports_1022() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.import_ok(&u, "towns.csv", "name\nold\n", "").await;
    let status = app.import_and_wait(&u, "towns.csv", "name\nnew\n", "collision_strategy=skip").await;
    assert_eq!(status["state"], "complete");
    assert_eq!(status["error_code"], 1022);
    assert_eq!(status["get_error_text"]["title"], "All tables were skipped");
    assert_eq!(status["tables_created_count"], 0);
    assert_eq!(app.texts("SELECT name FROM ana.towns").await, [Some("old".into())]);
    assert_eq!(app.tables_of("ana").await, ["towns"]);
    assert!(app.staging_tables().await.is_empty());
    // with no clash, skip imports normally
    assert_eq!(app.import_ok(&u, "fresh.csv", "a\n1\n", "collision_strategy=skip").await["table_name"], "fresh");
}

#[tokio::test(flavor = "multi_thread")]
async fn overwrite_replaces_a_compatible_table_and_keeps_its_id() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let first = app.import_ok(&u, "stock.csv", "item,qty\npen,1\n", "").await;
    let second = app.import_ok(&u, "stock.csv", "item,qty,extra\npen,5\ncup,7\n", "collision_strategy=overwrite").await;
    assert_eq!(second["table_name"], "stock");
    assert_eq!(second["table_id"], first["table_id"]);
    assert_eq!(app.tables_of("ana").await, ["stock"]);
    assert_eq!(app.count("SELECT sum(qty) FROM ana.stock").await, 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_layers_of_one_name_never_overwrite_each_other() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.import_ok(&u, "data.csv", "v\n0\n", "").await;
    let zip = zip_of(&[("a/data.csv", b"v\n1\n".to_vec()), ("b/data.csv", b"v\n2\n".to_vec())]);
    let status = app.import_ok(&u, "both.zip", zip, "collision_strategy=overwrite").await;
    assert_eq!(status["table_names"], serde_json::json!(["data", "data_1"]));
    assert_eq!(app.count("SELECT sum(v) FROM ana.data").await, 1);
    assert_eq!(app.count("SELECT sum(v) FROM ana.data_1").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn overwrite_with_missing_columns_fails_2012_and_keeps_the_old_table() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.import_ok(&u, "stock.csv", "item,qty\npen,1\n", "").await;
    let status = app.import_and_wait(&u, "stock.csv", "item,price\npen,x\n", "collision_strategy=overwrite").await;
    assert_eq!(status["state"], "failure");
    assert_eq!(status["error_code"], 2012);
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("qty"));
    assert_eq!(app.count("SELECT sum(qty) FROM ana.stock").await, 1);
    assert!(app.staging_tables().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn row_table_and_storage_limits_fail_with_their_codes_and_leave_no_table() {
    let app = TestApp::start().await;
    let rows = app.create_user_with("rows", ExtraLimits { max_rows_per_table: Some(2), ..Default::default() }).await;
    let status = app.import_and_wait(&rows, "three.csv", "a\n1\n2\n3\n", "").await;
    assert_eq!(status["error_code"], 6668);
    assert_eq!(app.import_ok(&rows, "two.csv", "a\n1\n2\n", "").await["rows_imported"], 2);

    let tables = app.create_user_with("tables", ExtraLimits { table_quota: Some(1), ..Default::default() }).await;
    app.import_ok(&tables, "one.csv", "a\n1\n", "").await;
    let status = app.import_and_wait(&tables, "two.csv", "a\n1\n", "").await;
    assert_eq!(status["error_code"], 8002);
    assert_eq!(app.tables_of("tables").await, ["one"]);

    let bytes = app.create_user_with("bytes", ExtraLimits { quota_in_bytes: Some(1000), ..Default::default() }).await;
    let status = app.import_and_wait(&bytes, "big.csv", "a\n1\n", "").await;
    assert_eq!(status["error_code"], 8001);
    assert!(app.tables_of("bytes").await.is_empty());
    assert!(app.staging_tables().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_over_the_size_limit_is_refused_or_failed_with_6666() {
    let app = TestApp::start_with(|s| s.user_defaults.max_file_size = 100_000).await;
    let u = app.create_user("ana").await;
    let big = "a,b\n".to_string() + &"1,2\n".repeat(200_000 / 4);

    // Content-Length says it all: 413 before a byte is read
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports?api_key={}&filename=big.csv", u.key)))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(resp.json::<serde_json::Value>().await.unwrap()["errors"]["imports"].is_string());

    // a stream of unknown length is cut at the limit, and the import fails with 6666
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.as_bytes().chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports?api_key={}&filename=big.csv", u.key)))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.json::<serde_json::Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["error_code"], 6666);
    // nothing of the cut upload stays on disk
    let leftovers = paths_under(&app.data_dir.join("staging"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
