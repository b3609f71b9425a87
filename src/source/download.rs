//! Downloading a URL import into the job's work area: streamed to disk, capped at the user's maximum file
//! size, with connect and overall time limits, at most five redirects (each checked against the address
//! policy), and the reference's error codes for what can go wrong.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED,
};
use url::Url;

use super::address_policy::{AddressPolicy, PolicyError, PolicyResolver, ResolveError};
use super::disk::DiskReserve;
use super::encoding;
use super::fetched::{Target, policy_error, resolve_error, write_body};
use super::ftp::FtpClient;
use super::meter::Meter;
use super::naming::{NameHints, file_name};
use crate::errors::{ImportError, codes};

pub const MAX_REDIRECTS: usize = 5;

pub use super::fetched::{Downloaded, Fetched, SizeLimits, Validators};

#[derive(Clone)]
pub struct Downloader {
    client: reqwest::Client,
    ftp: FtpClient,
    policy: AddressPolicy,
    timeout: Duration,
}

/// How downloads connect.
pub struct DownloadOptions {
    pub policy: AddressPolicy,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Certificates trusted beside the system's, for https and ftps (an internal CA).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
struct TooManyRedirects;

impl Downloader {
    pub fn new(options: DownloadOptions) -> Result<Downloader, String> {
        let DownloadOptions { policy, connect_timeout, timeout, extra_roots } = options;
        let redirect_policy = policy.clone();
        let mut builder = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(PolicyResolver(policy.clone())))
            .no_proxy()
            // Bodies are decoded by source::encoding, which counts the bytes on the wire.
            .no_gzip()
            .connect_timeout(connect_timeout)
            .user_agent(concat!("geoimport/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(TooManyRedirects);
                }
                match redirect_policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            }));
        for root in &extra_roots {
            let cert = reqwest::Certificate::from_der(root).map_err(|e| format!("a trusted certificate: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().map_err(|e| format!("the HTTP client: {e}"))?;
        let ftp = FtpClient { policy: policy.clone(), connect_timeout, tls: Arc::new(tls_config(extra_roots)?) };
        Ok(Downloader { client, ftp, policy, timeout })
    }

    /// The HTTP client, under the address policy (its resolver and redirects): for webhooks too.
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Downloads `url` into `dir`. With `validators`, asks for the file only if it changed.
    pub async fn fetch(
        &self,
        url: &Url,
        dir: &Path,
        limits: SizeLimits,
        validators: Option<&Validators>,
        reserve: Option<&DiskReserve>,
        meter: Option<&Meter>,
    ) -> Result<Fetched, ImportError> {
        self.policy.check_url(url).map_err(|e| policy_error(&e))?;
        let fetching = async {
            if matches!(url.scheme(), "ftp" | "ftps") {
                let target = Target { dir, limits, reserve, meter };
                let fetched = self.ftp.fetch(url, target, validators).await?;
                return Ok(fetched.map_or(Fetched::NotModified, Fetched::File));
            }
            self.fetch_inner(url, dir, limits, validators, reserve, meter).await
        };
        tokio::time::timeout(self.timeout, fetching).await.unwrap_or_else(|_| {
            Err(ImportError::new(
                codes::DOWNLOAD_TIMEOUT,
                format!("the download did not finish within {} seconds", self.timeout.as_secs()),
            ))
        })
    }

    async fn fetch_inner(
        &self,
        url: &Url,
        dir: &Path,
        limits: SizeLimits,
        validators: Option<&Validators>,
        reserve: Option<&DiskReserve>,
        meter: Option<&Meter>,
    ) -> Result<Fetched, ImportError> {
        // Pre-flight: a size the server declares past the limits fails now, not after gigabytes.
        if validators.is_none()
            && let Some(declared) = self.declared_size(url).await
        {
            limits.check(declared)?;
        }
        let mut request = self.client.get(url.clone()).header(ACCEPT_ENCODING, encoding::ACCEPTED);
        if let Some(v) = validators {
            if let Some(etag) = &v.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &v.last_modified {
                request = request.header(IF_MODIFIED_SINCE, modified);
            }
        }
        let response = request.send().await.map_err(request_error)?;
        let status = response.status();
        // "Not modified" only answers a conditional request; to a plain one it is an error like any other.
        if status == StatusCode::NOT_MODIFIED && validators.is_some() {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(status_error(status));
        }
        let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let received = Validators { etag: header(ETAG), last_modified: header(LAST_MODIFIED) };
        // Servers that ignore conditional requests still tell us when nothing changed.
        if let Some(v) = validators {
            let same_etag = v.etag.is_some()
                && received.etag.as_ref().map(|e| e.trim_matches('"')) == v.etag.as_ref().map(|e| e.trim_matches('"'));
            let same_date = v.etag.is_none() && v.last_modified.is_some() && received.last_modified == v.last_modified;
            if same_etag || same_date {
                return Ok(Fetched::NotModified);
            }
        }
        let announced = response.content_length();
        if let Some(len) = announced {
            limits.check(len)?;
        }
        let disposition = header(CONTENT_DISPOSITION);
        let content_type = header(CONTENT_TYPE);
        let content_encoding = header(CONTENT_ENCODING);
        let final_url = response.url().clone();

        let wire = response.bytes_stream().map(|r| r.map_err(std::io::Error::other));
        let mut body = encoding::decode(content_encoding.as_deref(), tokio_util::io::StreamReader::new(wire))?;
        let (wire_bytes, encoding) = (body.wire_bytes.clone(), body.encoding.clone());
        let wire = || wire_bytes.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(meter) = meter {
            // A compressed body's length is not the length of what it becomes.
            meter.start_bytes(announced.filter(|_| content_encoding.is_none()));
        }
        let target = Target { dir, limits, reserve, meter };
        let written = write_body(
            &mut body.reader,
            &target,
            |written| match &encoding {
                Some(encoding) => encoding::check_ratio(written, wire(), encoding),
                None => Ok(()),
            },
            |e, _| read_error(&e, encoding.as_deref(), wire(), announced),
        )
        .await?;
        if let Some(len) = announced.filter(|len| wire() < *len) {
            let sent = wire();
            let partial =
                ImportError::new(codes::PARTIAL_FILE, format!("the server announced {len} bytes but sent {sent}"));
            return Err(written.discard(partial).await);
        }
        let hints = NameHints { content_disposition: disposition.as_deref(), content_type: content_type.as_deref() };
        let name = file_name(&final_url, &hints, &written.head);
        let bytes = written.bytes;
        let path = written.keep(dir, &name).await?;
        tracing::info!(bytes, file = %name, "downloaded");
        Ok(Fetched::File(Downloaded { path, file_name: name, bytes, validators: received }))
    }
}

/// TLS for ftps: the system's roots (as reqwest uses them) and the extra ones, with ring, as everywhere.
fn tls_config(extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
        .map_err(|e| format!("the system's certificates: {e}"))?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

impl Downloader {
    /// The size a HEAD request declares, when the server answers one (many do not, or lie about
    /// HEAD: any failure just means no pre-flight).
    async fn declared_size(&self, url: &Url) -> Option<u64> {
        let head = self.client.head(url.clone()).header(ACCEPT_ENCODING, encoding::ACCEPTED).send();
        let response = tokio::time::timeout(Duration::from_secs(10), head).await.ok()?.ok()?;
        if !response.status().is_success() {
            return None;
        }
        // (reqwest reports no length for HEAD answers: the header is read as sent.)
        response.headers().get(reqwest::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
    }
}

fn status_error(status: StatusCode) -> ImportError {
    let code = match status.as_u16() {
        404 => codes::DOWNLOAD_NOT_FOUND,
        401 | 403 => codes::DOWNLOAD_FORBIDDEN,
        _ => codes::DOWNLOAD_ERROR,
    };
    ImportError::new(code, format!("the server answered HTTP {status}")).with_http_status(status.as_u16())
}

/// Sorts a failed request by its cause, walking the error's sources.
fn request_error(e: reqwest::Error) -> ImportError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if c.downcast_ref::<TooManyRedirects>().is_some() {
            return ImportError::new(
                codes::DOWNLOAD_ERROR,
                format!("the URL redirected more than {MAX_REDIRECTS} times"),
            );
        }
        if let Some(p) = c.downcast_ref::<PolicyError>() {
            return policy_error(p);
        }
        if let Some(r) = c.downcast_ref::<ResolveError>() {
            return resolve_error(r);
        }
        cause = c.source();
    }
    if e.is_timeout() {
        ImportError::new(codes::DOWNLOAD_TIMEOUT, "the server did not answer in time")
    } else if e.is_connect() {
        ImportError::new(codes::UNKNOWN_SERVER, format!("could not connect to the server: {}", root_cause(&e)))
    } else {
        ImportError::new(codes::DOWNLOAD_ERROR, format!("the download failed: {}", root_cause(&e)))
    }
}

/// A failed read of the body: the transfer broke off (1103), or the bytes were not what their encoding said.
fn read_error(e: &std::io::Error, encoding: Option<&str>, wire: u64, announced: Option<u64>) -> ImportError {
    let transfer = e.get_ref().is_some_and(|inner| inner.downcast_ref::<reqwest::Error>().is_some());
    match encoding {
        Some(encoding) if !transfer => ImportError::new(
            codes::DECOMPRESSION,
            format!("the server said the file was {encoding}-encoded, but it could not be decoded: {e}"),
        ),
        _ => {
            let expected = announced.map(|n| format!(" of {n}")).unwrap_or_default();
            ImportError::new(
                codes::PARTIAL_FILE,
                format!("the transfer broke off after {wire}{expected} bytes: {}", root_cause(e)),
            )
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
