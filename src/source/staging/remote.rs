//! A cloud store (S3 and compatible, GCS, Azure) built from `GEOIMPORT_STAGING_URL` and each cloud's usual
//! variables, with retries bounded in time: object_store's default retries a failing store for three
//! minutes, which an upload's client would spend waiting for an answer. Here a store that stays down for
//! [`RETRY_FOR`] is an error (the API answers 503, a worker's attempt fails and is retried later).

use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreScheme, RetryConfig};

/// How long one request to the store is retried before it fails.
pub const RETRY_FOR: Duration = Duration::from_secs(15);
/// Connecting to the store: a store that does not answer within this is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A builder of `$builder` for `$url` with our retries and timeouts, then every variable of the
/// environment with `$prefix` its builder knows (as its own `from_env` reads them, but after the client
/// options, which `from_env`'s `AWS_ALLOW_HTTP` belongs to).
macro_rules! build {
    ($builder:ty, $url:expr, $prefix:expr) => {{
        let retry = RetryConfig { max_retries: 4, retry_timeout: RETRY_FOR, ..Default::default() };
        let start = <$builder>::new()
            .with_url($url.as_str())
            .with_retry(retry)
            .with_client_options(ClientOptions::new().with_connect_timeout(CONNECT_TIMEOUT));
        let builder = std::env::vars().filter(|(k, _)| k.starts_with($prefix)).fold(start, |builder, (k, v)| {
            match k.to_ascii_lowercase().parse() {
                Ok(key) => builder.with_config(key, v),
                Err(_) => builder,
            }
        });
        Box::new(builder.build().map_err(|e| e.to_string())?) as Box<dyn ObjectStore>
    }};
}

/// The store `url` names (not a `file://` one) and the prefix inside it.
pub fn open(url: &url::Url) -> Result<(Box<dyn ObjectStore>, Path), String> {
    let (scheme, prefix) = ObjectStoreScheme::parse(url).map_err(|e| e.to_string())?;
    let store = match scheme {
        ObjectStoreScheme::AmazonS3 => build!(AmazonS3Builder, url, "AWS_"),
        ObjectStoreScheme::GoogleCloudStorage => build!(GoogleCloudStorageBuilder, url, "GOOGLE_"),
        ObjectStoreScheme::MicrosoftAzure => build!(MicrosoftAzureBuilder, url, "AZURE_"),
        other => return Err(format!("{other:?} is not a staging store (use file://, s3://, gs:// or az://)")),
    };
    Ok((store, prefix))
}
