//! Resumable uploads (tus 1.0 at `/api/v1/uploads`): a real client (tuspy, from PyPI, in the venv
//! scripts/test makes) stops part-way and resumes in another process from the URL it stored; a PATCH
//! whose connection drops keeps the bytes that arrived; uploads are their owner's, within the protocol's
//! rules and the user's limits; the same in S3 (moto), where nothing is left once the import is queued;
//! and uploads expire.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::common::child_server::ChildServer;
use crate::common::python::{run_json_script, venv_python};
use crate::common::raw_http::connect;
use crate::common::s3::Moto;
use crate::common::tus::{Tus, basic, header};
use crate::common::*;

/// Runs tests/it/tus/resume.py with `args` in tuspy's venv; what it printed.
async fn tuspy(args: Value) -> Value {
    let python = venv_python("GEOIMPORT_TEST_TUS_PYTHON", "tus-client-venv", "tusclient", "tuspy==1.1.0");
    run_json_script(&python, "tests/it/tus/resume.py", &args, Duration::from_secs(120)).await
}

/// Rows `i,place i,lat,lon` up to about `bytes`, and how many.
fn places_csv(bytes: usize) -> (Vec<u8>, i64) {
    let mut csv = b"id,name,lat,lon\n".to_vec();
    let mut rows = 0;
    while csv.len() < bytes {
        let (lat, lon) = ((rows % 170) as f64 * 0.5 - 42.0, (rows % 350) as f64 * 0.5 - 87.0);
        csv.extend(format!("{rows},place {rows},{lat:.4},{lon:.4}\n").as_bytes());
        rows += 1;
    }
    (csv, rows)
}

/// Asserts table `schema.table` holds exactly the rows of [`places_csv`]: a byte lost, doubled or moved
/// between two pieces would break a row.
async fn assert_places(app: &TestApp, table: &str, rows: i64) {
    let sql = format!(
        "SELECT count(*) FILTER (WHERE name = 'place ' || id::text AND GeometryType(the_geom) = 'POINT') \
         FROM {table}"
    );
    assert_eq!(app.count(&sql).await, rows, "{table}");
    assert_eq!(app.count(&format!("SELECT count(*) FROM {table}")).await, rows);
    assert_eq!(app.count(&format!("SELECT sum(id) FROM {table}")).await, rows * (rows - 1) / 2);
}

/// The objects of upload `id` in the default store.
fn local_pieces(app: &TestApp, id: Uuid) -> Vec<std::path::PathBuf> {
    let dir = app.data_dir.join("staging/uploads").join(id.to_string());
    if dir.exists() { paths_under(&dir) } else { Vec::new() }
}

#[tokio::test(flavor = "multi_thread")]
async fn tuspy_stops_part_way_resumes_from_its_stored_url_in_another_process_and_the_upload_imports() {
    let app = TestApp::start().await;
    let ana = app.create_user("ana").await;
    let dir = tempfile::tempdir().unwrap();
    let (csv, rows) = places_csv(3 << 20);
    let path = dir.path().join("stations.csv");
    std::fs::write(&path, &csv).unwrap();
    let stop_at = 1_300_000;
    let args = |stop_at: Option<u64>| {
        json!({"base_url": app.base, "username": ana.name, "api_key": ana.key, "path": path,
               "chunk_size": 256 << 10, "url_store": dir.path().join("urls.json"), "stop_at": stop_at})
    };

    let first = tuspy(args(Some(stop_at))).await;
    assert_eq!((first["started_from"].as_u64(), first["offset"].as_u64()), (Some(0), Some(stop_at)), "{first}");
    let url = first["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/api/v1/uploads/", app.base)), "{url}");
    let id: Uuid = url.rsplit('/').next().unwrap().parse().unwrap();
    // The server holds what the client was told, and says so without letting a cache keep it.
    let tus = Tus::new(&app.base, &ana);
    let head = tus.head(id).await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "upload-offset"), Some(stop_at.to_string()));
    assert_eq!(header(&head, "upload-length"), Some(csv.len().to_string()));
    assert_eq!(header(&head, "cache-control").as_deref(), Some("no-store"));
    assert!(!local_pieces(&app, id).is_empty());

    // Another process: the client finds the upload's URL in its store, asks where it stands, resumes.
    let second = tuspy(args(None)).await;
    assert_eq!(second["url"], url.as_str(), "the client started another upload");
    assert_eq!(second["started_from"].as_u64(), Some(stop_at), "{second}");
    assert_eq!(second["offset"].as_u64(), Some(csv.len() as u64));

    let params = json!({"type_guessing": true});
    let queued = tus.import(id, params.clone(), Some("stations-1")).await;
    assert_eq!(queued.status(), 200, "{}", queued.text().await.unwrap_or_default());
    let import: Uuid = queued.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let status = app.wait_final(&ana, import).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(status["table_name"], "stations");
    assert_places(&app, "ana.stations", rows).await;
    // The pieces went as the import was queued; the upload is spent.
    assert!(local_pieces(&app, id).is_empty(), "{:?}", local_pieces(&app, id));
    assert_eq!(tus.head(id).await.status(), 410);
    // A retry of the import with its Idempotency-Key gets the import; another request is refused.
    let retried = tus.import(id, params, Some("stations-1")).await;
    assert_eq!(retried.json::<Value>().await.unwrap()["item_queue_id"], import.to_string());
    let again = tus.import(id, json!({}), None).await;
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains(&import.to_string()), "a second import is not told the first");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_cut_mid_body_keeps_what_arrived_and_the_resumed_upload_imports_the_exact_bytes() {
    let app = TestApp::start().await;
    let ana = app.create_user("ana").await;
    let tus = Tus::new(&app.base, &ana);
    let (csv, rows) = places_csv(2 << 20);
    let id = tus.created(csv.len() as u64, "cut.csv").await;
    let before = tus.patched(id, 0, &csv[..100_000]).await;
    assert_eq!(before, 100_000);

    // A PATCH announcing the rest, of which 600 kB arrive before the link drops.
    let mut conn = connect(&app.base).await;
    let sent = 600_000;
    let head = format!(
        "PATCH /api/v1/uploads/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: {before}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        basic(&ana),
        csv.len() as u64 - before
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&csv[before as usize..before as usize + sent]).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(conn);

    let start = Instant::now();
    let mut offset = before;
    while offset == before && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        offset = tus.offset(id).await;
    }
    assert!(offset > before, "the bytes of the cut PATCH were dropped");
    assert!(offset <= before + sent as u64, "more was counted than was sent: {offset}");
    // The client resumes from what HEAD says, and the file is whole.
    let end = tus.patched(id, offset, &csv[offset as usize..]).await;
    assert_eq!(end, csv.len() as u64);
    let import = tus.imported(id, json!({})).await;
    let status = app.wait_final(&ana, import).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_places(&app, "ana.cut", rows).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_their_owners_and_the_protocol_and_limits_are_kept() {
    let app = TestApp::start_with(|s| s.runtime.max_unfinished_uploads = 3).await;
    let ana = app.create_user("ana").await;
    let bob = app.create_user("bob").await;
    let tus = Tus::new(&app.base, &ana);
    let theirs = Tus::new(&app.base, &bob);
    let client = http_client();

    // Every route is in the OpenAPI document.
    let doc: Value = client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    for (path, methods) in
        [("/api/v1/uploads", &["options", "post"][..]), ("/api/v1/uploads/{id}", &["head", "patch", "delete"])]
    {
        for method in methods {
            assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
        }
    }
    // Discovery needs no version header; everything else does, and a wrong one is 412.
    let options = client.request(reqwest::Method::OPTIONS, app.url("/api/v1/uploads")).send().await.unwrap();
    assert_eq!(options.status(), 204);
    assert_eq!(header(&options, "tus-version").as_deref(), Some("1.0.0"));
    assert_eq!(header(&options, "tus-extension").as_deref(), Some("creation,termination,expiration"));
    assert_eq!(header(&options, "tus-max-size"), Some((1u64 << 30).to_string()));
    assert_eq!(header(&options, "tus-resumable").as_deref(), Some("1.0.0"));
    for version in [None, Some("0.2.2")] {
        let mut request =
            client.post(app.url("/api/v1/uploads")).header("Authorization", basic(&ana)).header("Upload-Length", "4");
        if let Some(v) = version {
            request = request.header("Tus-Resumable", v);
        }
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), 412, "{version:?}");
        assert_eq!(header(&resp, "tus-version").as_deref(), Some("1.0.0"));
    }
    assert_eq!(tus.request(reqwest::Method::POST, "/api/v1/uploads").send().await.unwrap().status(), 400);
    app.set_limit(&ana, "max_file_size", 1000).await;
    assert_eq!(tus.create(1001, "big.csv").await.status(), 413);

    let csv = b"a,b\n1,2\n";
    let id = tus.created(csv.len() as u64, "mine.csv").await;
    // Another user's upload does not exist for them, whatever they do with it.
    assert_eq!(theirs.head(id).await.status(), 404);
    assert_eq!(theirs.patch(id, 0, csv.to_vec()).await.status(), 404);
    assert_eq!(theirs.delete(id).await.status(), 404);
    assert_eq!(theirs.import(id, json!({}), None).await.status(), 404);
    // The protocol's refusals: a wrong offset, a body of another type, a body past the length.
    assert_eq!(tus.patch(id, 3, csv.to_vec()).await.status(), 409);
    let typed = tus
        .request(reqwest::Method::PATCH, &format!("/api/v1/uploads/{id}"))
        .header("Upload-Offset", "0")
        .header("Content-Type", "text/csv")
        .body(csv.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(typed.status(), 415);
    assert_eq!(tus.patch(id, 0, [csv.as_slice(), b"3,4\n"].concat()).await.status(), 413);
    assert_eq!(tus.offset(id).await, 0, "a refused body moved the offset");
    assert_eq!(tus.patched(id, 0, &csv[..4]).await, 4);
    assert_eq!(tus.import(id, json!({}), None).await.status(), 409, "an unfinished upload was imported");
    assert!(!local_pieces(&app, id).is_empty());
    // Termination removes the upload and its bytes.
    assert_eq!(tus.delete(id).await.status(), 204);
    assert!(local_pieces(&app, id).is_empty(), "{:?}", local_pieces(&app, id));
    assert_eq!(tus.head(id).await.status(), 404);

    // Under the user's prefix, with a trailing slash, the upload's URL keeps the prefix.
    let prefixed = tus
        .request(reqwest::Method::POST, "/user/ana/api/v1/uploads/")
        .header("Upload-Length", "8")
        .send()
        .await
        .unwrap();
    assert_eq!(prefixed.status(), 201);
    let location = header(&prefixed, "location").unwrap();
    assert!(location.starts_with("/user/ana/api/v1/uploads/"), "{location}");
    assert!(header(&prefixed, "upload-expires").is_some_and(|d| httpdate::parse_http_date(&d).is_ok()));
    let head = tus.request(reqwest::Method::HEAD, &location).send().await.unwrap();
    assert_eq!(header(&head, "upload-offset").as_deref(), Some("0"));

    // Unfinished uploads count against the user's limits: their number, and their bytes as staged bytes.
    app.set_limit(&ana, "max_staged_bytes", 500).await;
    assert_eq!(tus.create(400, "a.csv").await.status(), 201);
    assert_eq!(tus.create(200, "b.csv").await.status(), 429, "the staged bytes were not counted");
    let upload = app.upload(&ana, "c.csv", vec![b'x'; 150], "").await;
    assert_eq!(upload.status(), 429, "a plain upload did not count the resumable ones");
    app.set_limit(&ana, "max_staged_bytes", 1 << 20).await;
    assert_eq!(tus.create(10, "d.csv").await.status(), 201);
    assert_eq!(tus.create(10, "e.csv").await.status(), 429, "a fourth unfinished upload was allowed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tus_upload_staged_in_s3_imports_and_leaves_no_object() {
    let moto = Moto::start().await;
    let bucket = moto.bucket("geo").await;
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    let env = moto.env(&bucket);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ChildServer::with_workers(&app, &env).await;
    let tus = Tus::new(&server.base, &ana);

    // 7 MB in pieces of 3 MB: each an object of its own, under S3's 5 MiB part minimum.
    let (csv, rows) = places_csv(7 << 20);
    let id = tus.upload_all(&csv, "in_s3.csv", 3 << 20).await;
    let prefix = format!("staging/uploads/{id}/");
    let keys = bucket.keys().await;
    assert_eq!(keys.iter().filter(|k| k.starts_with(&prefix)).count(), 3, "{keys:?}");
    let import = tus.imported(id, json!({})).await;
    let status = wait_final_at(&app.client, &server.base, &ana, import, Duration::from_secs(90)).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_places(&app, "ana.in_s3", rows).await;

    // A terminated upload leaves nothing either.
    let dropped = tus.created(100, "dropped.csv").await;
    tus.patched(dropped, 0, &csv[..60]).await;
    assert_eq!(tus.delete(dropped).await.status(), 204);
    let left = bucket.wait_keys(Duration::from_secs(15), |keys| keys.is_empty()).await;
    assert!(left.is_empty(), "objects left in the bucket: {left:?}");
    assert_eq!(bucket.unfinished_uploads().await, 0, "an unfinished multipart upload was left");
    let staging = app.data_dir.join("staging");
    assert!(!staging.exists() || paths_under(&staging).is_empty(), "an upload went to the local disk");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_expires_unless_bytes_arrive_and_the_janitor_deletes_it() {
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.upload_expiry_secs = 3;
    })
    .await;
    let ana = app.create_user("ana").await;
    let tus = Tus::new(&app.base, &ana);
    let csv = b"a,b\n1,2\n";
    let id = tus.created(csv.len() as u64, "late.csv").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Bytes push the expiry on: 4 s after creation, 2 s after the PATCH, the upload is there.
    assert_eq!(tus.patched(id, 0, &csv[..4]).await, 4);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tus.head(id).await.status(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tus.head(id).await.status(), 410);
    assert_eq!(tus.patch(id, 4, csv[4..].to_vec()).await.status(), 410);
    assert_eq!(tus.import(id, json!({}), None).await.status(), 410);
    assert!(!local_pieces(&app, id).is_empty());
    // Objects of an upload that has no row (its API node died, its account went) are orphans.
    let orphan = Uuid::new_v4();
    let orphan_dir = app.data_dir.join("staging/uploads").join(orphan.to_string());
    std::fs::create_dir_all(&orphan_dir).unwrap();
    std::fs::write(orphan_dir.join("00000000000000000000-0badf00d"), b"a,b\n").unwrap();

    let workers = app.spawn_workers(|s| s.runtime.hooks.orphan_grace_secs = Some(0));
    let start = Instant::now();
    while (tus.head(id).await.status() != 404 || orphan_dir.exists()) && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(tus.head(id).await.status(), 404, "the janitor kept the expired upload");
    assert!(local_pieces(&app, id).is_empty(), "the expired upload's bytes stayed");
    assert!(!orphan_dir.exists(), "the orphan's bytes stayed");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.uploads").await, 0);
    workers.stop().await;
}
