//! A second PostgreSQL server for connector tests: the database a connector reads must not be geoimport's
//! own server (connectors refuse it, whatever the allow-list says). One cluster per test process, made
//! with the machine's PostgreSQL binaries, listening on 127.0.0.1 with TLS (a self-signed certificate for
//! `localhost`), and killed with the process that started it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

pub struct SourceCluster {
    pub port: u16,
}

/// A database of its own on the source cluster (user `postgres`, no password), dropped when the test ends.
pub struct SourceDb {
    pub name: String,
    pub url: String,
    pub port: u16,
}

static CLUSTER: OnceLock<SourceCluster> = OnceLock::new();

const PREFIX: &str = "geoimport-test-source-pg-";

impl SourceCluster {
    /// The process's source cluster, started on first use.
    pub fn get() -> &'static SourceCluster {
        CLUSTER.get_or_init(start)
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }
}

impl SourceDb {
    pub async fn create() -> SourceDb {
        let cluster = SourceCluster::get();
        let name = format!("gi_source_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&cluster.admin_url()).await.expect("connect to the source cluster");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
        admin.close().await.ok();
        let url = format!("postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable", cluster.port);
        SourceDb { name, url, port: cluster.port }
    }
}

impl Drop for SourceDb {
    fn drop(&mut self) {
        let (name, admin) = (self.name.clone(), SourceCluster::get().admin_url());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version with initdb").1
}

/// Directories of earlier test processes that are gone.
fn sweep_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|p| p.parse::<i32>().ok()) else { continue };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start() -> SourceCluster {
    sweep_leftovers();
    let dir = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    // PostgreSQL refuses to run as root: then it runs as the postgres user.
    let run_as = nix::unistd::geteuid()
        .is_root()
        .then(|| nix::unistd::User::from_name("postgres").ok().flatten().expect("a postgres system user"));
    if let Some(user) = &run_as {
        std::os::unix::fs::chown(&dir, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    }
    let command = |program: &Path| {
        let mut cmd = Command::new(program);
        cmd.current_dir("/").env("LC_ALL", "C");
        if let Some(user) = &run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        cmd
    };
    let bin = bin_dir();
    let out = command(&bin.join("initdb"))
        .args(["-D", &data.to_string_lossy(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"])
        .output()
        .expect("initdb (package postgresql) runs");
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    let out = command(Path::new("openssl"))
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "2"])
        .args([
            "-keyout",
            &data.join("server.key").to_string_lossy(),
            "-out",
            &data.join("server.crt").to_string_lossy(),
        ])
        .output()
        .expect("openssl (package openssl) is installed");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let base_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
    // PostgreSQL cannot be handed a bound socket: a port is chosen, and chosen again if another process
    // took it before the server bound it.
    for _ in 0..5 {
        let port = unused_port();
        let conf = format!(
            "{base_conf}\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nssl = on\n\
             fsync = off\nmax_connections = 100\nshared_buffers = '32MB'\n",
            dir.display()
        );
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        if run_postgres(command(&bin.join("postgres")), &data) {
            return SourceCluster { port };
        }
    }
    panic!("the source PostgreSQL did not start (five ports tried)");
}

/// A port nothing listens on now (the caller must cope with losing it before it binds).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the server and waits until its postmaster.pid says it is ready; false if it exits first.
fn run_postgres(mut cmd: Command, data: &Path) -> bool {
    let data_arg = data.to_string_lossy().into_owned();
    cmd.args(["-D", &data_arg]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let (sender, ended) = std::sync::mpsc::channel();
    // A thread of its own starts the server and waits for it: the server dies with that thread (at the
    // latest, when the test process exits), never with the test that happened to start it.
    std::thread::spawn(move || {
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGQUIT)?;
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("postgres starts");
        let _ = child.wait();
        let _ = sender.send(());
    });
    let started = Instant::now();
    loop {
        // The eighth line of postmaster.pid is the server's status.
        let status = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
        if status.lines().nth(7).is_some_and(|l| l.trim() == "ready") {
            return true;
        }
        if ended.try_recv().is_ok() {
            return false;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the source PostgreSQL did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}
