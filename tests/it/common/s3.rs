//! A real S3-compatible server for the staging store's tests: moto's (`moto[server]`, in the venv
//! scripts/test makes), one per test on a port of its own, with a bucket the test looks into through
//! `object_store` (what the server itself uses) and moto's listing of unfinished multipart uploads.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};

/// moto's server (GEOIMPORT_TEST_MOTO_SERVER, or the venv's).
fn moto_server() -> PathBuf {
    let exe = std::env::var_os("GEOIMPORT_TEST_MOTO_SERVER")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server"));
    assert!(
        exe.exists(),
        "moto is not installed at {}: run scripts/test (it makes the venv: python3 -m venv target/moto-venv && \
         target/moto-venv/bin/pip install 'moto[server]==5.2.5')",
        exe.display()
    );
    exe
}

/// A moto server, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub async fn start() -> Moto {
        // moto takes its port on the command line: a port free a moment ago, retried if taken meanwhile.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new(moto_server())
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto_server");
            let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
            let client = super::http_client();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = moto.child.try_wait() {
                    break;
                }
                if client.get(format!("{}/moto-api/", moto.endpoint)).send().await.is_ok() {
                    return moto;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = moto.child.kill();
        }
        panic!("moto_server did not start");
    }

    /// Creates bucket `name`.
    pub async fn bucket(&self, name: &str) -> Bucket {
        let resp = super::http_client().put(format!("{}/{name}", self.endpoint)).send().await.unwrap();
        assert!(resp.status().is_success(), "creating the bucket: {}", resp.status());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(name)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            // A test fails at once rather than after three minutes of retries.
            .with_retry(RetryConfig { max_retries: 0, ..Default::default() })
            .build()
            .unwrap();
        Bucket { store, name: name.to_string(), endpoint: self.endpoint.clone() }
    }

    /// The environment a geoimport process stages in `bucket` under `staging/` with.
    pub fn env(&self, bucket: &Bucket) -> Vec<(String, String)> {
        [
            ("GEOIMPORT_STAGING_URL", format!("s3://{}/staging", bucket.name)),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Bucket {
    pub store: AmazonS3,
    pub name: String,
    endpoint: String,
}

impl Bucket {
    /// Every object's key.
    pub async fn keys(&self) -> Vec<String> {
        let listed: Vec<_> = self.store.list(None).try_collect().await.unwrap();
        listed.into_iter().map(|meta| meta.location.to_string()).collect()
    }

    /// Multipart uploads begun and neither completed nor aborted (S3 keeps their parts, unlisted).
    pub async fn unfinished_uploads(&self) -> usize {
        let xml = super::http_client()
            .get(format!("{}/{}?uploads", self.endpoint, self.name))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        xml.matches("<UploadId>").count()
    }

    pub async fn put(&self, key: &str, bytes: &'static [u8]) {
        self.store.put(&key.into(), bytes.into()).await.unwrap();
    }

    /// Waits until `check` holds for the keys, up to `limit`; returns them.
    pub async fn wait_keys(&self, limit: Duration, check: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let keys = self.keys().await;
            if check(&keys) || start.elapsed() > limit {
                return keys;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
