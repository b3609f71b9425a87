//! A MariaDB server of a test's own, in a time zone of the test's choosing: what a source server in
//! another zone looks like, without touching the zone of the machine's shared MariaDB (whose other users,
//! the other connector tests, run at the same time). Started from the machine's `mariadbd`, on 127.0.0.1,
//! root without a password; stopped and removed when the value is dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct PrivateMariadb {
    pub port: u16,
    dir: PathBuf,
    server: std::process::Child,
}

impl PrivateMariadb {
    /// A server whose system time zone is `tz` (a `TZ` value: `Europe/Paris`, or a POSIX rule such as
    /// `XYZ-3`), its `@@time_zone` left at `SYSTEM`.
    pub fn start(tz: &str) -> PrivateMariadb {
        Self::start_with(tz, false)
    }

    /// A server in UTC that offers TLS (a self-signed certificate).
    pub fn start_with_tls() -> PrivateMariadb {
        Self::start_with("UTC", true)
    }

    fn start_with(tz: &str, tls: bool) -> PrivateMariadb {
        let dir = tempfile::Builder::new().prefix("geoimport-test-mariadb-").tempdir().unwrap().keep();
        let data = dir.join("data");
        // A temporary folder of its own: servers bootstrapping side by side in the shared /tmp have seen
        // each other's temporary tables vanish.
        let tmp = dir.join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let tmpdir = format!("--tmpdir={}", tmp.display());
        let out = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .env("TMPDIR", &tmp)
            .output()
            .expect("mariadb-install-db (package mariadb-server) is installed");
        assert!(out.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&out.stderr));
        let mut tls_args = Vec::new();
        if tls {
            let (key, cert) = (dir.join("server.key"), dir.join("server.crt"));
            let out = Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "2"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .expect("openssl (package openssl) is installed");
            assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
            tls_args = vec![format!("--ssl-key={}", key.display()), format!("--ssl-cert={}", cert.display())];
        }
        // mariadbd cannot be handed a bound socket: a port is chosen, and chosen again if another process
        // took it before the server bound it.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut cmd = Command::new("mariadbd");
            cmd.args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1", "--skip-log-bin"])
                .args(["--innodb-buffer-pool-size=16M", "--skip-name-resolve"])
                .arg(format!("--datadir={}", data.display()))
                .arg(&tmpdir)
                .arg(format!("--socket={}", dir.join("sock").display()))
                .arg(format!("--port={port}"))
                .args(&tls_args)
                .env("TZ", tz)
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(dir.join("server.log")).unwrap());
            // SAFETY: prctl is async-signal-safe. The server dies with the test process.
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                    Ok(())
                });
            }
            let mut server = cmd.spawn().expect("mariadbd (package mariadb-server) is installed");
            if wait_ready(&mut server, &dir.join("sock")) {
                return PrivateMariadb { port, dir, server };
            }
        }
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        panic!("the private MariaDB did not start (five ports tried): {log}");
    }

    /// Teaches the server the zone `name` (from the system's zone database; a fresh server knows only
    /// offsets), so that `time_zone` can name it.
    pub fn load_zone(&self, name: &str) {
        let sql = Command::new("mariadb-tzinfo-to-sql")
            .arg(format!("/usr/share/zoneinfo/{name}"))
            .arg(name)
            .output()
            .expect("mariadb-tzinfo-to-sql (package mariadb-server) is installed");
        assert!(sql.status.success(), "mariadb-tzinfo-to-sql: {}", String::from_utf8_lossy(&sql.stderr));
        let mut client = Command::new("mariadb")
            .args(["--no-defaults", "-uroot", "mysql"])
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("mariadb (package mariadb-client) is installed");
        use std::io::Write;
        client.stdin.take().unwrap().write_all(&sql.stdout).unwrap();
        assert!(client.wait().unwrap().success(), "loading the zone {name} failed");
    }

    /// Its admin URL, as TEST_MYSQL_URL would give it.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }
}

/// Whether the server answers on its socket; false if it exited first.
fn wait_ready(server: &mut std::process::Child, socket: &Path) -> bool {
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = server.try_wait() {
            return false;
        }
        let ping = Command::new("mariadb-admin")
            .args(["--no-defaults", "-uroot", "--connect-timeout=1"])
            .arg(format!("--socket={}", socket.display()))
            .arg("ping")
            .output();
        if ping.is_ok_and(|o| o.status.success()) {
            return true;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the private MariaDB did not answer within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
