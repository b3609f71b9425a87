//! Nodes as on separate machines: `geoimport` child processes on one test database, each with its own
//! data directory and environment, sharing an S3-compatible staging store (moto's server). What the
//! object-storage and multi-node tests share.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use super::s3::{Bucket, Moto};
use super::*;

/// `env` as the `(&str, &str)` pairs ChildServer takes.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A `geoimport worker` process on the app's database with data directory `data_dir` and `extra` settings.
pub fn worker(app: &TestApp, data_dir: &Path, extra: &[(String, String)]) -> ChildProcess {
    let mut env = app.child_env();
    env.retain(|(k, _)| k != "GEOIMPORT_DATA_DIR");
    env.push(("GEOIMPORT_DATA_DIR".into(), data_dir.display().to_string()));
    env.push(("GEOIMPORT_MIN_FREE_BYTES".into(), "0".into()));
    env.extend(extra.iter().cloned());
    ChildProcess::spawn(&["worker"], &env)
}

/// Uploads `bytes` as `name` through the server at `base`; the import's id.
pub async fn upload_to(base: &str, user: &TestUser, name: &str, bytes: Vec<u8>, key: Option<&str>) -> Uuid {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    let mut request = http_client()
        .post(format!("{base}/api/v1/imports?api_key={}", user.key))
        .multipart(reqwest::multipart::Form::new().part("file", part));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let resp = request.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap()
}

/// An S3-compatible store with a bucket, and a test app whose own workers are off (the nodes of each test
/// are child processes), with its user.
pub async fn store_and_app() -> (Moto, Bucket, TestApp, TestUser) {
    let moto = Moto::start().await;
    let bucket = moto.bucket("geo").await;
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    (moto, bucket, app, ana)
}

/// Asserts the bucket ends up with no object and no unfinished multipart upload.
pub async fn assert_bucket_empties(bucket: &Bucket) {
    let left = bucket.wait_keys(Duration::from_secs(15), |keys| keys.is_empty()).await;
    assert!(left.is_empty(), "objects left in the bucket: {left:?}");
    assert_eq!(bucket.unfinished_uploads().await, 0, "an unfinished multipart upload was left");
}
