//! Staging in object storage (issue 12): with `GEOIMPORT_STAGING_URL=s3://...` uploads wait in an
//! S3-compatible store (moto's server, a real one speaking S3's REST), so an API node and workers on other
//! machines, each with a data directory of its own, import them. Every object goes with its job, whatever
//! its end; a cut upload leaves no multipart upload behind; the janitor removes what no live job owns.
//! The nodes are `geoimport` child processes, each with its own environment, as on separate machines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::common::child_server::ChildServer;
use crate::common::fixture::Fixture;
use crate::common::nodes::{assert_bucket_empties, pairs, store_and_app, upload_to, worker};
use crate::common::raw_http::connect;
use crate::common::s3::{Bucket, Moto};
use crate::common::*;

const WAIT: Duration = Duration::from_secs(90);

async fn final_status(app: &TestApp, base: &str, user: &TestUser, id: Uuid) -> Value {
    wait_final_at(&app.client, base, user, id, WAIT).await
}

/// Rows `i,place i,lat,lon` up to about `bytes`.
fn points_csv(bytes: usize) -> (Vec<u8>, i64) {
    let mut csv = b"id,name,lat,lon\n".to_vec();
    let mut rows = 0;
    while csv.len() < bytes {
        csv.extend(format!("{rows},place {rows},{:.4},{:.4}\n", (rows % 170) as f64 * 0.5 - 42.0, 3.25).as_bytes());
        rows += 1;
    }
    (csv, rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_staged_in_s3_imports_and_the_bucket_is_empty_afterwards() {
    let (moto, bucket, app, ana) = store_and_app().await;
    let server = ChildServer::with_workers(&app, &pairs(&moto.env(&bucket))).await;

    let id = upload_to(&server.base, &ana, "prism_tour.csv", prism_tour_csv().into(), Some("k-1")).await;
    // A retry of the same upload (same key, same bytes) is the same import: the hash of the streamed
    // bytes still tells it.
    let again = upload_to(&server.base, &ana, "prism_tour.csv", prism_tour_csv().into(), Some("k-1")).await;
    assert_eq!(again, id);
    // 12 MB: two parts of the multipart upload.
    let (big, rows) = points_csv(12 << 20);
    let big_id = upload_to(&server.base, &ana, "big_points.csv", big, None).await;

    let status = final_status(&app, &server.base, &ana, id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(app.count("SELECT count(*) FROM ana.prism_tour WHERE GeometryType(the_geom) = 'POINT'").await, 4);
    let status = final_status(&app, &server.base, &ana, big_id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(app.count("SELECT count(*) FROM ana.big_points").await, rows);
    assert_bucket_empties(&bucket).await;
    let staging = app.data_dir.join("staging");
    assert!(!staging.exists() || paths_under(&staging).is_empty(), "an upload went to the local disk");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_node_and_a_worker_with_another_data_directory_import_uploads() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    let elsewhere = tempfile::tempdir().unwrap();

    // The bug of the issue, as the default store still has it: the upload is on the API node's disk,
    // where a worker on another machine cannot read it.
    {
        let api = ChildServer::api_only(&app, &[]).await;
        let _worker = worker(&app, elsewhere.path(), &[]);
        let id = upload_to(&api.base, &ana, "lost.csv", prism_tour_csv().into(), None).await;
        let status = final_status(&app, &api.base, &ana, id).await;
        assert_eq!(status["error_code"], 1000, "{status:#}");
    }

    let moto = Moto::start().await;
    let bucket = moto.bucket("geo").await;
    let env = moto.env(&bucket);
    let api = ChildServer::api_only(&app, &pairs(&env)).await;
    let other = tempfile::tempdir().unwrap();
    let _worker = worker(&app, other.path(), &env);
    // A CSV, and a zipped shapefile (an archive the worker unpacks, read by GDAL).
    let id = upload_to(&api.base, &ana, "prism_tour.csv", prism_tour_csv().into(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let geojson = dir.path().join("places.geojson");
    std::fs::write(
        &geojson,
        r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{"name":"a"},"geometry":{"type":"Point","coordinates":[-3.7,40.4]}},
            {"type":"Feature","properties":{"name":"b"},"geometry":{"type":"Point","coordinates":[2.17,41.38]}}]}"#,
    )
    .unwrap();
    let zipped = zip_dir(&shapefile_folder(dir.path(), "places", &geojson.display().to_string(), &[]));
    let zip_id = upload_to(&api.base, &ana, "places.zip", zipped, None).await;

    let status = final_status(&app, &api.base, &ana, id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(app.count("SELECT count(*) FROM ana.prism_tour WHERE GeometryType(the_geom) = 'POINT'").await, 4);
    let status = final_status(&app, &api.base, &ana, zip_id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(app.count("SELECT count(*) FROM ana.places WHERE the_geom IS NOT NULL").await, 2);
    assert_bucket_empties(&bucket).await;
    // (The default store's lost upload is still there: only a worker on the API node's machine could
    // remove it.)
    let on_api_disk: Vec<_> = paths_under(&app.data_dir.join("staging"))
        .into_iter()
        .filter(|p| [id, zip_id].iter().any(|job| p.to_string_lossy().contains(&job.to_string())))
        .collect();
    assert!(on_api_disk.is_empty(), "the API node's disk holds an upload: {on_api_disk:?}");
    let work = other.path().join("work");
    let start = Instant::now();
    while work.exists() && !paths_under(&work).is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!work.exists() || paths_under(&work).is_empty(), "the worker's scratch copy stayed");
}

/// A FeatureCollection of `n` points with a few properties each, one feature a line.
fn points_geojson(n: usize) -> Vec<u8> {
    let features: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"Feature","properties":{{"id":{i},"name":"parcel {i}","area":{}.5}},"geometry":{{"type":"Point","coordinates":[{:.4},{:.4}]}}}}"#,
                i % 977,
                (i % 360) as f64 - 180.0,
                (i % 170) as f64 * 0.5 - 42.0
            )
        })
        .collect();
    format!("{{\"type\":\"FeatureCollection\",\"features\":[\n{}\n]}}", features.join(",\n")).into_bytes()
}

/// The size of the largest file that appears under `dir`, watched every 20 ms while the task runs.
fn watch_largest_file(dir: &std::path::Path) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    // Directories come and go under the worker (a job's scratch directory): what vanishes is skipped.
    fn largest_under(dir: &std::path::Path) -> u64 {
        let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
        entries
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => largest_under(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .max()
            .unwrap_or(0)
    }
    let largest = Arc::new(AtomicU64::new(0));
    let (seen, dir) = (largest.clone(), dir.to_path_buf());
    let watcher = tokio::spawn(async move {
        loop {
            seen.fetch_max(largest_under(&dir), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (largest, watcher)
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_and_json_in_s3_are_read_from_the_store_without_a_local_copy_and_a_zip_is_still_copied() {
    let (moto, bucket, app, ana) = store_and_app().await;
    let env = moto.env(&bucket);
    let api = ChildServer::api_only(&app, &pairs(&env)).await;
    // A worker whose disk has no room: a reserve no disk has, so that any copy of a staged file onto it
    // fails with 1000 at its first check. Only what is read from the store itself can import there.
    let cramped = tempfile::tempdir().unwrap();
    let no_room = [env.clone(), vec![("GEOIMPORT_MIN_FREE_BYTES".into(), u64::MAX.to_string())]].concat();
    let cramped_worker = worker(&app, cramped.path(), &no_room);
    let (largest, watcher) = watch_largest_file(cramped.path());

    // 24 MB of CSV (six blocks of the reader, read in two passes), 6 MB of GeoJSON, and NDJSON in Latin-1
    // (decoded as it streams).
    let (csv, rows) = points_csv(24 << 20);
    let csv_id = upload_to(&api.base, &ana, "big_points.csv", csv, None).await;
    let geojson = points_geojson(50_000);
    assert!(geojson.len() > 5 << 20, "{} bytes", geojson.len());
    let geojson_id = upload_to(&api.base, &ana, "parcels.geojson", geojson, None).await;
    let latin1 = b"{\"name\":\"M\xe1laga\",\"n\":1}\n{\"name\":\"Besan\xe7on\",\"n\":2}\n".to_vec();
    let latin1_id = upload_to(&api.base, &ana, "cities.json", latin1, None).await;
    // A zipped shapefile: an archive, unpacked and read by GDAL, which needs a local copy.
    let dir = tempfile::tempdir().unwrap();
    let places = dir.path().join("places.geojson");
    std::fs::write(&places, points_geojson(2)).unwrap();
    let zipped = zip_dir(&shapefile_folder(dir.path(), "places", &places.display().to_string(), &[]));
    let zip_id = upload_to(&api.base, &ana, "places.zip", zipped.clone(), None).await;

    for id in [csv_id, geojson_id, latin1_id] {
        let status = final_status(&app, &api.base, &ana, id).await;
        assert_eq!(status["state"], "complete", "{status:#}");
    }
    assert_eq!(app.count("SELECT count(*) FROM ana.big_points WHERE GeometryType(the_geom) = 'POINT'").await, rows);
    assert_eq!(app.count("SELECT count(*) FROM ana.parcels WHERE GeometryType(the_geom) = 'POINT'").await, 50_000);
    assert_eq!(app.count("SELECT sum(id) FROM ana.parcels").await, 49_999 * 50_000 / 2);
    let names = app.texts("SELECT name FROM ana.cities ORDER BY n").await;
    assert_eq!(names, [Some("Málaga".to_string()), Some("Besançon".to_string())]);
    let status = final_status(&app, &api.base, &ana, zip_id).await;
    assert_eq!(status["error_code"], 1000, "the zip was not copied: {status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap_or_default();
    assert!(about.contains("short of disk space"), "{about}");
    watcher.abort();
    let largest = largest.load(Ordering::Relaxed);
    assert!(largest < 1 << 20, "a file of {largest} bytes appeared in the worker's data directory");
    drop(cramped_worker);

    // With room on its disk, a worker copies the same zip and imports it.
    let roomy = tempfile::tempdir().unwrap();
    let _worker = worker(&app, roomy.path(), &env);
    let zip_id = upload_to(&api.base, &ana, "places.zip", zipped, None).await;
    let status = final_status(&app, &api.base, &ana, zip_id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(app.count("SELECT count(*) FROM ana.places WHERE the_geom IS NOT NULL").await, 2);
    assert_bucket_empties(&bucket).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_import_leaves_no_object() {
    let (moto, bucket, app, ana) = store_and_app().await;
    let server = ChildServer::with_workers(&app, &pairs(&moto.env(&bucket))).await;
    let broken = br#"{"type": "FeatureCollection", "features": [{"type": "Feature", "#.to_vec();
    let id = upload_to(&server.base, &ana, "broken.geojson", broken, None).await;
    let status = final_status(&app, &server.base, &ana, id).await;
    assert_eq!(status["state"], "failure", "{status:#}");
    assert_bucket_empties(&bucket).await;
}

/// An API node and a worker that holds every import before publishing, on an S3 store, and what a
/// rescuing worker (another machine) is started with: for runs taken over after their worker dies.
struct Takeover {
    fx: Fixture,
    _moto: Moto,
    bucket: Bucket,
    app: TestApp,
    ana: TestUser,
    api: ChildServer,
    env: Vec<(String, String)>,
    doomed: ChildProcess,
    _dirs: Vec<tempfile::TempDir>,
    _rescuer: Option<ChildProcess>,
}

impl Takeover {
    async fn start() -> Takeover {
        let fx = Fixture::start().await;
        let (moto, bucket, app, ana) = store_and_app().await;
        let mut env = moto.env(&bucket);
        env.push(("GEOIMPORT_URL_ALLOW".into(), "127.0.0.1/32".into()));
        let api = ChildServer::api_only(&app, &pairs(&env)).await;
        env.push(("GEOIMPORT_LEASE_SECS".into(), "2".into()));
        env.push(("GEOIMPORT_WORKERS".into(), "1".into()));
        let mut held = env.clone();
        held.push(("GEOIMPORT_TEST_HOLD_BEFORE_PUBLISH_MS".into(), "60000".into()));
        let first_dir = tempfile::tempdir().unwrap();
        let doomed = worker(&app, first_dir.path(), &held);
        Takeover { fx, _moto: moto, bucket, app, ana, api, env, doomed, _dirs: vec![first_dir], _rescuer: None }
    }

    /// Kills the holding worker; another machine takes import `id` over once the lease lapses. Its final
    /// status, checked complete at the second attempt.
    async fn kill_and_rescue(&mut self, id: Uuid) -> Value {
        self.doomed.signal(Signal::SIGKILL);
        assert!(self.doomed.wait_exit(Duration::from_secs(5)).await);
        let second_dir = tempfile::tempdir().unwrap();
        self._rescuer = Some(worker(&self.app, second_dir.path(), &self.env));
        self._dirs.push(second_dir);
        let status = final_status(&self.app, &self.api.base, &self.ana, id).await;
        assert_eq!(status["state"], "complete", "{status:#}");
        assert_eq!(self.app.job_row(id).await.1, 2, "the rescuer ran the second attempt");
        status
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_import_goes_through_the_store_and_a_retry_elsewhere_reads_it_there() {
    let mut run = Takeover::start().await;
    let (app, ana) = (&run.app, &run.ana);
    let resp = http_client()
        .post(format!("{}/api/v1/imports?api_key={}", run.api.base, ana.key))
        .json(&serde_json::json!({ "url": run.fx.url("/sync.csv") }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id: Uuid = resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    // The download is staged as the upload of the job would be, and the job row says where.
    let staged = format!("staging/{id}/sync.csv");
    let keys = run.bucket.wait_keys(WAIT, |keys| keys.contains(&staged)).await;
    assert_eq!(keys, [staged], "the download was not staged");
    let recorded = app.texts(&format!("SELECT staged_path FROM geoimport.imports WHERE id = '{id}'")).await;
    assert_eq!(recorded, [Some(format!("{id}/sync.csv"))]);
    wait_for_state(&app.pool, id, &["importing"], WAIT).await;

    // Another machine takes the job over once the lease lapses, and reads the staged file: no download.
    run.kill_and_rescue(id).await;
    assert_eq!(run.app.count("SELECT count(*) FROM ana.sync WHERE GeometryType(the_geom) = 'POINT'").await, 3);
    assert_eq!(run.fx.sync_hits().0, 1, "the retry downloaded the file again");
    assert_bucket_empties(&run.bucket).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_run_goes_through_the_store_and_a_retry_elsewhere_reads_it_with_its_validators() {
    let mut run = Takeover::start().await;
    let (app, ana) = (&run.app, &run.ana);
    let resp = http_client()
        .post(format!("{}/api/v1/synchronizations?api_key={}", run.api.base, ana.key))
        .json(&serde_json::json!({ "url": run.fx.url("/sync.csv"), "interval": 3600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let created: Value = resp.json().await.unwrap();
    let id: Uuid = created["data_import"]["item_queue_id"].as_str().unwrap().parse().unwrap();
    let sync_id = created["id"].as_str().unwrap().to_string();
    // The run's download is staged, and the job row keeps the validators of the answer beside it.
    let staged = format!("staging/{id}/sync.csv");
    run.bucket.wait_keys(WAIT, |keys| keys.contains(&staged)).await;
    wait_for_state(&app.pool, id, &["importing"], WAIT).await;
    let kept = app.texts(&format!("SELECT staged_etag FROM geoimport.imports WHERE id = '{id}'")).await;
    assert_eq!(kept, [Some("\"v1\"".to_string())]);

    // Another machine takes the run over and reads the stored file: no second download, and the sync
    // records the validators of the answer the file came with, for its next conditional request.
    run.kill_and_rescue(id).await;
    assert_eq!(run.fx.sync_hits().0, 1, "the retry downloaded the file again");
    let sync: Value = http_client()
        .get(format!("{}/api/v1/synchronizations/{sync_id}?api_key={}", run.api.base, run.ana.key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sync["state"], "success", "{sync:#}");
    assert_eq!(sync["etag"], "\"v1\"", "{sync:#}");
    assert_bucket_empties(&run.bucket).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_janitor_removes_an_orphan_object_after_its_grace_and_keeps_a_live_jobs() {
    let (moto, bucket, app, ana) = store_and_app().await;
    let env = moto.env(&bucket);
    let api = ChildServer::api_only(&app, &pairs(&env)).await;
    let live = upload_to(&api.base, &ana, "waiting.csv", prism_tour_csv().into(), None).await;
    app.postpone(live).await;
    // An object whose job never was (its API node died between completing the upload and the commit).
    let orphan = format!("staging/{}/orphan.csv", Uuid::new_v4());
    bucket.put(&orphan, b"a,b\n1,2\n").await;
    let live_key = format!("staging/{live}/waiting.csv");

    // Within the grace (an hour by default) the orphan stays: its row might be on its way.
    let data = tempfile::tempdir().unwrap();
    let patient = worker(&app, data.path(), &env);
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(patient);
    let mut keys = bucket.keys().await;
    keys.sort();
    let mut both = vec![orphan.clone(), live_key.clone()];
    both.sort();
    assert_eq!(keys, both);

    let grace_over = [("GEOIMPORT_TEST_ORPHAN_GRACE_SECS".to_string(), "0".to_string())];
    let _janitor = worker(&app, data.path(), &[env.clone(), grace_over.to_vec()].concat());
    let keys = bucket.wait_keys(WAIT, |keys| !keys.contains(&orphan)).await;
    assert_eq!(keys, [live_key], "the orphan stayed, or the live job's upload went");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_cut_mid_body_leaves_no_object_and_no_job() {
    let (moto, bucket, app, ana) = store_and_app().await;
    let api = ChildServer::api_only(&app, &pairs(&moto.env(&bucket))).await;

    let mut conn = connect(&api.base).await;
    let head = format!(
        "POST /api/v1/imports?api_key={}&filename=cut.csv HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n\
         Content-Length: {}\r\n\r\n",
        ana.key,
        64 << 20
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (csv, _) = points_csv(20 << 20);
    conn.write_all(&csv).await.unwrap();
    // The upload is under way in the store: a multipart upload with parts sent.
    let start = Instant::now();
    while bucket.unfinished_uploads().await == 0 {
        assert!(start.elapsed() < WAIT, "the upload never reached the store");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(conn);
    let start = Instant::now();
    while bucket.unfinished_uploads().await > 0 {
        assert!(start.elapsed() < Duration::from_secs(15), "the cut upload was never aborted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_bucket_empties(&bucket).await;
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_while_the_store_is_down_is_answered_503_within_seconds_and_queues_nothing() {
    let (moto, bucket, app, ana) = store_and_app().await;
    let down = closed_port();
    let mut env = moto.env(&bucket);
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), format!("http://127.0.0.1:{}", down.port)));
    let api = ChildServer::api_only(&app, &pairs(&env)).await;

    let start = Instant::now();
    let part = reqwest::multipart::Part::bytes(prism_tour_csv().as_bytes().to_vec()).file_name("tour.csv");
    let resp = http_client()
        .post(format!("{}/api/v1/imports?api_key={}", api.base, ana.key))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    // object_store's default retries a store that refuses connections for three minutes.
    assert!(start.elapsed() < Duration::from_secs(30), "answered after {:?}", start.elapsed());
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "60");
    let body: Value = resp.json().await.unwrap();
    assert!(body["errors"]["imports"].as_str().unwrap().contains("try again"), "{body}");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 0, "nothing is queued");
}
