//! FTP and FTPS URL imports, with `suppaftp` (the maintained FTP client of the Rust ecosystem): passive
//! mode, anonymous or with the URL's user and password, `ftps://` as explicit TLS (`AUTH TLS`) on the
//! control and data connections. The address policy applies to the control connection and to every data
//! connection the server proposes: a PASV answer is an address the server chooses, so a hostile server
//! could otherwise point the data connection into the private network.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Status};
use url::Url;

use super::address_policy::{AddressPolicy, PolicyError};
use super::fetched::{Downloaded, Target, Validators, resolve_error, write_body};
use super::naming::{NameHints, file_name};
use crate::errors::{ImportError, codes};

/// How FTP downloads connect.
#[derive(Clone)]
pub struct FtpClient {
    pub policy: AddressPolicy,
    pub connect_timeout: Duration,
    pub tls: Arc<rustls::ClientConfig>,
}

impl FtpClient {
    /// Downloads `url` (ftp or ftps). With `validators`, only if the file's modification time changed;
    /// None then means unchanged.
    pub async fn fetch(
        &self,
        url: &Url,
        target: Target<'_>,
        validators: Option<&Validators>,
    ) -> Result<Option<Downloaded>, ImportError> {
        let host = url.host_str().ok_or_else(|| ImportError::new(codes::DOWNLOAD_ERROR, "the URL has no host"))?;
        let port = url.port().unwrap_or(21);
        let address = *self
            .policy
            .resolve(host.trim_matches(['[', ']']), port)
            .await
            .map_err(|e| resolve_error(&e))?
            .first()
            .ok_or_else(|| ImportError::new(codes::UNKNOWN_SERVER, "the host name does not resolve"))?;
        let refused: Arc<Mutex<Option<IpAddr>>> = Arc::default();
        let mut ftp = AsyncRustlsFtpStream::connect_timeout(address, self.connect_timeout)
            .await
            .map_err(|e| ftp_error(e, "connecting"))?
            .passive_stream_builder(self.data_connections(refused.clone()));
        if url.scheme() == "ftps" {
            let connector = AsyncRustlsConnector::from(tokio_rustls::TlsConnector::from(self.tls.clone()));
            ftp = ftp.into_secure(connector, host).await.map_err(|e| ftp_error(e, "securing the connection"))?;
        }
        let (user, password) = credentials(url);
        ftp.login(user.as_str(), password.as_str()).await.map_err(|e| match e {
            FtpError::UnexpectedResponse(r) => ImportError::new(
                codes::DOWNLOAD_FORBIDDEN,
                format!("the FTP server refused the login: {}", reply_text(&r.body)),
            ),
            other => ftp_error(other, "logging in"),
        })?;
        ftp.transfer_type(FileType::Binary).await.map_err(|e| ftp_error(e, "choosing binary mode"))?;
        let path = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy().into_owned();
        let modified = ftp.mdtm(&path).await.ok().map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        if let (Some(v), Some(m)) = (validators, &modified)
            && v.last_modified.as_ref() == Some(m)
        {
            let _ = ftp.quit().await;
            return Ok(None);
        }
        // Pre-flight: the size the server states, when it does.
        if let Ok(size) = ftp.size(&path).await {
            target.limits.check(size as u64)?;
        }
        let mut stream =
            ftp.retr_as_stream(&path).await.map_err(|e| match (e, refused.lock().ok().and_then(|r| *r)) {
                (_, Some(ip)) => ImportError::new(
                    codes::UNKNOWN_SERVER,
                    format!("the FTP server proposed a data connection to {}", PolicyError::Blocked(ip)),
                ),
                (FtpError::UnexpectedResponse(r), None) if r.status == Status::FileUnavailable => ImportError::new(
                    codes::DOWNLOAD_NOT_FOUND,
                    format!("the FTP server has no file {path}: {}", reply_text(&r.body)),
                ),
                (other, None) => ftp_error(other, "starting the transfer"),
            })?;
        let broke_off = |e: std::io::Error, written: u64| {
            ImportError::new(codes::PARTIAL_FILE, format!("the transfer broke off after {written} bytes: {e}"))
        };
        let written = write_body(&mut stream, &target, |_| Ok(()), broke_off).await?;
        if let Err(e) = stream.finish().await {
            return Err(written.discard(ftp_error(e, "finishing the transfer")).await);
        }
        let _ = ftp.quit().await;
        let name = file_name(url, &NameHints::default(), &written.head);
        let bytes = written.bytes;
        let file = written.keep(target.dir, &name).await?;
        tracing::info!(bytes, file = %name, "downloaded by FTP");
        let validators = Validators { etag: None, last_modified: modified };
        Ok(Some(Downloaded { path: file, file_name: name, bytes, validators }))
    }

    /// Data connections go only where the policy lets URL imports go; a refused address is kept, to say so.
    fn data_connections(
        &self,
        refused: Arc<Mutex<Option<IpAddr>>>,
    ) -> impl Fn(
        SocketAddr,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = suppaftp::FtpResult<tokio::net::TcpStream>> + Send + Sync>,
    > + Send
    + Sync
    + 'static {
        let (policy, timeout) = (self.policy.clone(), self.connect_timeout);
        move |address: SocketAddr| {
            let (policy, refused) = (policy.clone(), refused.clone());
            Box::pin(async move {
                if !policy.permits(address.ip()) {
                    if let Ok(mut r) = refused.lock() {
                        *r = Some(address.ip());
                    }
                    let denied = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "address refused by policy");
                    return Err(FtpError::ConnectionError(denied));
                }
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
                    Ok(connected) => connected.map_err(FtpError::ConnectionError),
                    Err(_) => Err(FtpError::ConnectionError(std::io::ErrorKind::TimedOut.into())),
                }
            })
        }
    }
}

/// The URL's user and password (percent-decoded), or anonymous FTP's.
fn credentials(url: &Url) -> (String, String) {
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    match url.username() {
        "" => ("anonymous".into(), "geoimport@".into()),
        user => (decode(user), url.password().map(decode).unwrap_or_default()),
    }
}

fn reply_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().to_string()
}

/// A failure of the FTP exchange while `doing`: connection problems are 1102, anything else 1001.
fn ftp_error(e: FtpError, doing: &str) -> ImportError {
    match e {
        FtpError::ConnectionError(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            ImportError::new(codes::DOWNLOAD_TIMEOUT, format!("the FTP server did not answer in time ({doing})"))
        }
        FtpError::ConnectionError(io) => {
            ImportError::new(codes::UNKNOWN_SERVER, format!("could not reach the FTP server ({doing}): {io}"))
        }
        FtpError::UnexpectedResponse(r) => ImportError::new(
            codes::DOWNLOAD_ERROR,
            format!("the FTP server answered {} while {doing}: {}", r.status.code(), reply_text(&r.body)),
        ),
        other => ImportError::new(codes::DOWNLOAD_ERROR, format!("the FTP exchange failed while {doing}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_url_or_are_anonymous() {
        let url = Url::parse("ftp://ana:s%40cret@example.com/a.csv").unwrap();
        assert_eq!(credentials(&url), ("ana".into(), "s@cret".into()));
        let url = Url::parse("ftp://example.com/a.csv").unwrap();
        assert_eq!(credentials(&url).0, "anonymous");
    }
}
