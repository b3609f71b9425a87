//! Scale out (issue 12): one API-only node and three worker-only nodes, each with a data directory of its
//! own as on separate machines, on one PostgreSQL, staging in an S3-compatible store (moto's server). A
//! hundred imports (CSV and zipped shapefile uploads, URL imports) go through the API node while one worker
//! is killed with SIGKILL and started again: every import completes exactly once with its own table, the
//! bucket ends empty, and the API node's disk never held an upload. The nodes' settings are those of
//! docs/deploy/compose.yaml.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use uuid::Uuid;

use crate::common::child_server::ChildServer;
use crate::common::fixture::{Fixture, SAMPLE_CSV};
use crate::common::nodes::{assert_bucket_empties, pairs, store_and_app, upload_to, worker};
use crate::common::*;

const IMPORTS: usize = 100;
const WAIT: Duration = Duration::from_secs(240);

/// What the i-th import sends, and how many rows its table must have.
enum Import {
    Csv(String, Vec<u8>, i64),
    Shapefile(String, Vec<u8>, i64),
    Url(String, i64),
}

/// CSV uploads, zipped shapefiles and URL imports, mixed.
fn imports(fx: &Fixture, shapefile: &[u8], shapefile_rows: i64) -> Vec<Import> {
    (0..IMPORTS)
        .map(|i| match i % 5 {
            0 => Import::Url(fx.url("/data/sample.csv"), SAMPLE_CSV.lines().count() as i64 - 1),
            1 => Import::Shapefile(format!("parcels_{i}.zip"), shapefile.to_vec(), shapefile_rows),
            _ => {
                let rows = (i % 7 + 1) as i64;
                let mut csv = String::from("id,lat,lon\n");
                for r in 0..rows {
                    csv.push_str(&format!("{r},{},{}\n", 40.0 + r as f64 * 0.01, -3.0 - i as f64 * 0.01));
                }
                Import::Csv(format!("points_{i}.csv"), csv.into_bytes(), rows)
            }
        })
        .collect()
}

/// A zipped shapefile of the prism tour's points, and its rows.
fn zipped_shapefile(dir: &std::path::Path) -> (Vec<u8>, i64) {
    let csv = dir.join("tour.csv");
    std::fs::write(&csv, prism_tour_csv()).unwrap();
    let xy = ["-oo", "X_POSSIBLE_NAMES=longitude", "-oo", "Y_POSSIBLE_NAMES=latitude", "-a_srs", "EPSG:4326"];
    let folder = shapefile_folder(dir, "parcels", csv.to_str().unwrap(), &xy);
    (zip_dir(&folder), prism_tour_csv().lines().count() as i64 - 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_imports_through_an_api_node_and_three_workers_one_killed_complete_once_each() {
    let fx = Fixture::start().await;
    let (moto, bucket, app, ana) = store_and_app().await;
    // Four users, as a user may run only a few imports at once (the default is 3) and hold 100 pending.
    let users = [ana, app.create_user("ben").await, app.create_user("cai").await, app.create_user("dan").await];
    let files = tempfile::tempdir().unwrap();
    let (shapefile, shapefile_rows) = zipped_shapefile(files.path());
    // What every node is given: what docs/deploy/compose.yaml gives its nodes, and for the test's sake the
    // fixture's address for URL imports and short leases, so that a killed worker's jobs are taken over
    // quickly.
    let mut shared = compose_env(&app, &moto.env(&bucket));
    shared.push(("GEOIMPORT_URL_ALLOW".into(), "127.0.0.1/32".into()));
    shared.push(("GEOIMPORT_LEASE_SECS".into(), "2".into()));
    let api_dir = tempfile::tempdir().unwrap();
    let mut api_env = shared.clone();
    api_env.push(("GEOIMPORT_DATA_DIR".into(), api_dir.path().display().to_string()));
    let api = ChildServer::api_only(&app, &pairs(&api_env)).await;
    let mut node_env = shared.clone();
    node_env.push(("GEOIMPORT_WORKERS".into(), "2".into()));
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // The first worker holds each import a moment before publishing, so that it has imports in flight
    // when it is killed.
    let mut held = node_env.clone();
    held.push(("GEOIMPORT_TEST_HOLD_BEFORE_PUBLISH_MS".into(), "400".into()));
    let mut doomed = worker(&app, dirs[0].path(), &held);
    let _others: Vec<ChildProcess> = dirs[1..].iter().map(|d| worker(&app, d.path(), &node_env)).collect();

    let mut sent: Vec<(&TestUser, Uuid, i64)> = Vec::new();
    for (i, import) in imports(&fx, &shapefile, shapefile_rows).into_iter().enumerate() {
        let user = &users[i % users.len()];
        let (id, rows) = match import {
            Import::Csv(name, bytes, rows) | Import::Shapefile(name, bytes, rows) => {
                (upload_to(&api.base, user, &name, bytes, None).await, rows)
            }
            Import::Url(url, rows) => {
                let resp = app
                    .client
                    .post(format!("{}/api/v1/imports?api_key={}", api.base, user.key))
                    .json(&serde_json::json!({ "url": url }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
                (resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap(), rows)
            }
        };
        sent.push((user, id, rows));
        if sent.len() == IMPORTS / 4 {
            // A quarter sent: the held worker is busy; it dies with its imports in flight, and comes back.
            let start = Instant::now();
            while in_flight_on(&app, &doomed).await == 0 {
                assert!(start.elapsed() < WAIT, "the first worker never took an import");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            doomed.signal(Signal::SIGKILL);
            assert!(doomed.wait_exit(Duration::from_secs(5)).await);
            doomed = worker(&app, dirs[0].path(), &node_env);
        }
    }

    let mut tables = BTreeSet::new();
    for (user, id, rows) in &sent {
        let status = wait_final_at(&app.client, &api.base, user, *id, WAIT).await;
        assert_eq!(status["state"], "complete", "{status:#}");
        let table = format!("{}.{}", user.name, status["table_name"].as_str().unwrap());
        assert_eq!(app.count(&format!("SELECT count(*) FROM {table} WHERE the_geom IS NOT NULL")).await, *rows);
        assert!(tables.insert(table.clone()), "two imports made {table}");
    }
    // Exactly once: a hundred tables, one per import, none left half-made, and some imports were taken over.
    let mut made = 0;
    for user in &users {
        made += app.tables_of(&user.name).await.len();
    }
    assert_eq!(made, IMPORTS, "one table per import");
    assert!(app.staging_tables().await.is_empty(), "no staging table is left");
    let retried = app.count("SELECT count(*) FROM geoimport.imports WHERE attempts > 1").await;
    assert!(retried >= 1, "no import was taken over from the killed worker");
    let done = app.count("SELECT count(*) FROM geoimport.imports WHERE state = 'complete'").await;
    assert_eq!(done, IMPORTS as i64);
    assert_bucket_empties(&bucket).await;
    let kept = paths_under(api_dir.path());
    assert!(kept.is_empty(), "the API node's disk holds files: {kept:?}");
    drop(doomed);
}

/// The variables docs/deploy/compose.yaml gives every geoimport node (its `x-geoimport-env` block), each
/// with this test's value: the test runs the topology the compose file describes.
fn compose_env(app: &TestApp, store: &[(String, String)]) -> Vec<(String, String)> {
    let compose = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy/compose.yaml")).unwrap();
    let names: Vec<&str> = compose
        .lines()
        .skip_while(|l| !l.starts_with("x-geoimport-env:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().split_once(':').unwrap().0)
        .collect();
    assert!(names.len() >= 5, "docs/deploy/compose.yaml has no x-geoimport-env block: {names:?}");
    let secret = ("GEOIMPORT_SECRET_KEY".to_string(), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string());
    let ours: Vec<(String, String)> =
        app.child_env().into_iter().chain(store.iter().cloned()).chain([secret]).collect();
    names
        .iter()
        .map(|name| {
            ours.iter()
                .find(|(k, _)| k == name)
                .cloned()
                .unwrap_or_else(|| panic!("docs/deploy/compose.yaml gives nodes {name}, which this test does not"))
        })
        .collect()
}

/// Imports whose lease the worker process `worker` holds now.
async fn in_flight_on(app: &TestApp, worker: &ChildProcess) -> i64 {
    let owners = app.texts("SELECT lease_owner FROM geoimport.imports WHERE lease_owner IS NOT NULL").await;
    let pid = worker.pid().to_string();
    owners.iter().flatten().filter(|o| o.split(['-', ':', '/', '@']).any(|part| part == pid)).count() as i64
}
