//! FTP and FTPS URL imports against a real FTP server (pyftpdlib, in the venv scripts/test makes):
//! anonymous and with a user whose password never shows, each failure with its code, a PASV answer that
//! steers the data connection to a refused address, and explicit TLS checked against a CA of the test's.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::fixture::SAMPLE_CSV;
use crate::common::*;

/// The venv's Python with pyftpdlib (GEOIMPORT_TEST_FTP_PYTHON, or the one scripts/test makes).
fn ftp_python() -> PathBuf {
    crate::common::python::venv_python(
        "GEOIMPORT_TEST_FTP_PYTHON",
        "ftp-venv",
        "pyftpdlib, OpenSSL",
        "pyftpdlib pyopenssl",
    )
}

/// A pyftpdlib server serving the sample CSV, killed when dropped.
struct FtpServer {
    child: Child,
    port: u16,
    root: tempfile::TempDir,
}

impl FtpServer {
    fn start(host: &str, extra: &[&str]) -> FtpServer {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("sample.csv"), SAMPLE_CSV).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/ftp/serve.py");
        let mut child = Command::new(ftp_python())
            .arg(script)
            .arg(root.path())
            .arg(host)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the FTP server said {line:?}"));
        FtpServer { child, port, root }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("ftp://{host}:{}/{path}", self.port)
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn app_allowing(range: &str) -> TestApp {
    let range = range.parse().unwrap();
    TestApp::start_with(|s| s.runtime.url_allow = vec![range]).await
}

async fn assert_points(app: &TestApp, status: &serde_json::Value) {
    assert_eq!(status["state"], "complete", "{status:#}");
    let table = status["table_name"].as_str().unwrap();
    let points = format!("SELECT count(*) FROM ana.{table} WHERE GeometryType(the_geom) = 'POINT'");
    assert_eq!(app.count(&points).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn ftp_urls_import_anonymously_or_as_a_user_whose_password_never_shows() {
    logs::capture();
    let ftp = FtpServer::start("127.0.0.1", &["--user", "ana:s3cret-pw"]);
    let app = app_allowing("127.0.0.1/32").await;
    let u = app.create_user("ana").await;
    let status = app.import_url(&u, &ftp.url("127.0.0.1", "sample.csv")).await;
    assert_points(&app, &status).await;
    assert_eq!(status["display_name"], "sample.csv");

    let with_user = ftp.url("ana:s3cret-pw@127.0.0.1", "sample.csv");
    let status = app.import_url(&u, &with_user).await;
    assert_points(&app, &status).await;
    assert_eq!(status["original_url"], ftp.url("ana@127.0.0.1", "sample.csv"), "{status:#}");
    assert!(!logs::text().contains("s3cret-pw"), "the password is in the logs");

    let closed = closed_port();
    for (url, code) in [
        (ftp.url("ana:wrong@127.0.0.1", "sample.csv"), 1101),
        (ftp.url("127.0.0.1", "missing.csv"), 1100),
        (format!("ftp://127.0.0.1:{}/sample.csv", closed.port), 1102),
    ] {
        let status = app.import_url(&u, &url).await;
        assert_eq!(status["error_code"], code, "{url}: {status:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pasv_answer_steering_the_data_connection_to_a_refused_address_is_not_followed() {
    // The server lives on 127.0.0.2, the only address allowed; its PASV answers name 127.0.0.1.
    let honest = FtpServer::start("127.0.0.2", &[]);
    let hostile = FtpServer::start("127.0.0.2", &["--masquerade", "127.0.0.1"]);
    let app = app_allowing("127.0.0.2/32").await;
    let u = app.create_user("ana").await;
    assert_points(&app, &app.import_url(&u, &honest.url("127.0.0.2", "sample.csv")).await).await;
    let status = app.import_url(&u, &hostile.url("127.0.0.2", "sample.csv")).await;
    assert_eq!(status["error_code"], 1102, "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("data connection to 127.0.0.1"), "{about}");
}

/// A CA and a certificate it signed for 127.0.0.1, in `dir`: (ca.crt, server.crt, server.key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=geoimport test CA",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    (dir.join("ca.crt"), dir.join("server.crt"), dir.join("server.key"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ftps_is_explicit_tls_checked_against_the_trusted_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let ftp = FtpServer::start("127.0.0.1", &["--tls", &cert.display().to_string(), &key.display().to_string()]);
    let url = format!("ftps://127.0.0.1:{}/sample.csv", ftp.port);
    // Trusted through GEOIMPORT_URL_CA_FILE: the file comes over TLS (the server refuses anything else).
    let app = TestApp::start_with(|s| {
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
        s.runtime.url_ca_file = Some(ca.clone());
    })
    .await;
    let u = app.create_user("ana").await;
    assert_points(&app, &app.import_url(&u, &url).await).await;
    // The server requires TLS: plain FTP to it fails.
    let status = app.import_url(&u, &url.replacen("ftps", "ftp", 1)).await;
    assert_eq!(status["state"], "failure", "{status:#}");
    // Without the CA, the certificate is not trusted.
    let app = app_allowing("127.0.0.1/32").await;
    let u = app.create_user("ana").await;
    let status = app.import_url(&u, &url).await;
    assert_eq!(status["state"], "failure", "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.to_lowercase().contains("certificate"), "{about}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ftp_sync_table_runs_again_only_when_the_file_changes_and_never_shows_the_password() {
    use crate::sync::{create_sync, get_sync, run_again};
    let ftp = FtpServer::start("127.0.0.1", &["--user", "ana:s3cret-pw"]);
    let app = app_allowing("127.0.0.1/32").await;
    let u = app.create_user("ana").await;
    let url = ftp.url("ana:s3cret-pw@127.0.0.1", "sample.csv");
    let created: serde_json::Value =
        create_sync(&app, &u, serde_json::json!({ "url": url })).await.json().await.unwrap();
    let first = created["data_import"]["item_queue_id"].as_str().unwrap().to_string();
    assert_points(&app, &app.wait_final(&u, first.parse().unwrap()).await).await;
    let id = created["id"].as_str().unwrap();
    let (_, sync) = get_sync(&app, &u, id).await;
    assert_eq!(sync["url"], ftp.url("ana@127.0.0.1", "sample.csv"), "{sync:#}");
    // Unchanged (the same modification time): nothing is imported.
    let status = run_again(&app, &u, id, &first).await;
    assert_eq!(status["warnings"]["source_unchanged"], true, "{status:#}");
    // A new version, an hour newer: imported.
    let file = ftp.root.path().join("sample.csv");
    std::fs::write(&file, format!("{SAMPLE_CSV}Four,40.4,-3.4\n")).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(later).unwrap();
    let status = run_again(&app, &u, id, status["id"].as_str().unwrap()).await;
    assert_eq!((status["state"].as_str(), status["rows_imported"].as_i64()), (Some("complete"), Some(4)), "{status:#}");
}
