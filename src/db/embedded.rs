//! The embedded default database: a private PostgreSQL cluster under the data directory, made with the
//! system's PostgreSQL binaries, so that `geoimport serve` works on a fresh machine with no setup.
//!
//! It listens only on a Unix socket (no TCP port to collide with), runs as an unprivileged user when we
//! are root (PostgreSQL refuses to run as root), and is stopped on exit only by the process that started
//! it, so `geoimport user create` can run beside a running server.

use sqlx::AssertSqlSafe;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

const DATABASE: &str = "geoimport";
const SUPERUSER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no DATABASE_URL is set and no PostgreSQL server binaries were found (looked for initdb and pg_ctl \
         in PATH and /usr/lib/postgresql/*/bin). Install them (apt-get install postgresql) or set DATABASE_URL"
    )]
    NoBinaries,
    #[error(
        "PostGIS is not installed for PostgreSQL {0}: install it (apt-get install postgresql-{0}-postgis-3) \
         or set DATABASE_URL to a database that has it"
    )]
    NoPostgis(String),
    #[error(
        "the embedded PostgreSQL runs as user '{user}', which cannot reach {dir}. Set GEOIMPORT_DATA_DIR to a \
         directory that user can enter (for example /var/lib/geoimport)"
    )]
    Unreachable { user: String, dir: String },
    #[error("cannot prepare the embedded database directory {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0} failed: {1}")]
    Command(String, String),
    #[error("cannot create the database in the embedded cluster: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A private cluster: where it lives, which binaries run it, and as whom.
pub struct EmbeddedCluster {
    dir: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<nix::unistd::User>,
    started_here: bool,
}

impl EmbeddedCluster {
    /// Finds the binaries and PostGIS and decides the paths, without starting anything.
    pub fn locate(data_dir: &Path) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedError::NoBinaries)?;
        let major = major_version(&bin_dir);
        if !postgis_installed(&bin_dir, &major) {
            return Err(EmbeddedError::NoPostgis(major));
        }
        std::fs::create_dir_all(data_dir).map_err(|e| EmbeddedError::Io(data_dir.display().to_string(), e))?;
        let data_dir =
            std::fs::canonicalize(data_dir).map_err(|e| EmbeddedError::Io(data_dir.display().to_string(), e))?;
        let dir = data_dir.join("postgres");
        // Unix socket paths are limited to about 107 bytes; fall back to /tmp when the data dir is deep.
        let socket_dir = if dir.as_os_str().len() < 80 {
            dir.clone()
        } else {
            let digest = crate::users::sha256_hex(dir.as_os_str().as_encoded_bytes());
            PathBuf::from(format!("/tmp/geoimport-{}", &digest[..16]))
        };
        let run_as = if nix::unistd::geteuid().is_root() {
            let name = std::env::var("GEOIMPORT_EMBEDDED_PG_USER").unwrap_or_else(|_| "postgres".into());
            let user = nix::unistd::User::from_name(&name)
                .ok()
                .flatten()
                .ok_or_else(|| EmbeddedError::Command("user lookup".into(), format!("no system user '{name}'")))?;
            Some(user)
        } else {
            None
        };
        Ok(EmbeddedCluster { dir, socket_dir, bin_dir, run_as, started_here: false })
    }

    /// Creates the cluster if needed, starts it unless it already runs, creates our database, and returns
    /// how to connect to it.
    pub async fn ensure_running(&mut self) -> Result<PgConnectOptions, EmbeddedError> {
        let this = self.paths();
        let started = tokio::task::spawn_blocking(move || this.init_and_start())
            .await
            .map_err(|e| EmbeddedError::Command("starting the embedded cluster".into(), e.to_string()))??;
        self.started_here = started;
        let admin = self.options(SUPERUSER);
        let mut conn = admin.connect().await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            // Two processes may get here together; the loser's "already exists" is fine.
            if let Err(e) = sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {DATABASE}"))).execute(&mut conn).await {
                let duplicate = e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "42P04");
                if !duplicate {
                    return Err(e.into());
                }
            }
        }
        conn.close().await?;
        tracing::info!(dir = %self.dir.display(), started = started, "embedded PostgreSQL ready");
        Ok(self.options(DATABASE))
    }

    fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(SUPERUSER)
            .database(database)
            .log_statements(log::LevelFilter::Trace)
    }

    fn paths(&self) -> ClusterPaths {
        ClusterPaths {
            dir: self.dir.clone(),
            socket_dir: self.socket_dir.clone(),
            bin_dir: self.bin_dir.clone(),
            run_as: self.run_as.clone(),
        }
    }

    /// Stops the cluster if this process started it; a cluster found running belongs to someone else.
    pub async fn stop(self) {
        if !self.started_here {
            return;
        }
        let this = self.paths();
        let result = tokio::task::spawn_blocking(move || {
            this.run("pg_ctl", &["stop", "-D", &this.dir.to_string_lossy(), "-m", "fast", "-w"])
        })
        .await;
        match result {
            Ok(Ok(_)) => tracing::info!("embedded PostgreSQL stopped"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not stop the embedded PostgreSQL"),
            Err(e) => tracing::warn!(error = %e, "could not stop the embedded PostgreSQL"),
        }
    }
}

/// The owned parts of a cluster that blocking code needs.
struct ClusterPaths {
    dir: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<nix::unistd::User>,
}

impl ClusterPaths {
    /// Returns true when this call started the server.
    fn init_and_start(&self) -> Result<bool, EmbeddedError> {
        let io = |e| EmbeddedError::Io(self.dir.display().to_string(), e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        std::fs::create_dir_all(&self.socket_dir).map_err(io)?;
        if let Some(user) = &self.run_as {
            for dir in [&self.dir, &self.socket_dir] {
                std::os::unix::fs::chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw())).map_err(io)?;
            }
            if let Some(blocked) = first_unreachable_ancestor(&self.dir, user) {
                return Err(EmbeddedError::Unreachable { user: user.name.clone(), dir: blocked });
            }
        }
        let dir = self.dir.to_string_lossy().into_owned();
        if !self.dir.join("PG_VERSION").exists() {
            self.run("initdb", &["-D", &dir, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale"])?;
            let settings = format!(
                "\n# written by geoimport\nlisten_addresses = ''\nunix_socket_directories = '{}'\n\
                 max_connections = 200\nshared_buffers = '256MB'\nmax_wal_size = '4GB'\n\
                 wal_level = minimal\nmax_wal_senders = 0\n",
                self.socket_dir.display()
            );
            let conf = self.dir.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).map_err(io)?;
            text.push_str(&settings);
            std::fs::write(&conf, text).map_err(io)?;
        }
        if self.run("pg_ctl", &["status", "-D", &dir]).is_ok() {
            return Ok(false);
        }
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        self.run("pg_ctl", &["start", "-D", &dir, "-w", "-t", "60", "-l", &log])?;
        Ok(true)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String, EmbeddedError> {
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.args(args).current_dir("/").env("LC_ALL", "C");
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw()).env("HOME", &user.dir);
        }
        let out = cmd.output().map_err(|e| EmbeddedError::Command(program.into(), e.to_string()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if msg.is_empty() {
                msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            Err(EmbeddedError::Command(format!("{program} {}", args.join(" ")), msg))
        }
    }
}

/// PATH first, then Debian's versioned directories, newest first.
fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_tools(d))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn major_version(bin_dir: &Path) -> String {
    let out = Command::new(bin_dir.join("postgres")).arg("--version").output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    // "postgres (PostgreSQL) 15.20 (Debian ...)"
    text.split_whitespace().nth(2).and_then(|v| v.split('.').next()).map(str::to_owned).unwrap_or_else(|| "15".into())
}

fn postgis_installed(bin_dir: &Path, major: &str) -> bool {
    let mut share_dirs = vec![PathBuf::from(format!("/usr/share/postgresql/{major}"))];
    for pg_config in [bin_dir.join("pg_config"), PathBuf::from("pg_config")] {
        if let Ok(out) = Command::new(pg_config).arg("--sharedir").output()
            && out.status.success()
        {
            share_dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    share_dirs.iter().any(|d| d.join("extension/postgis.control").is_file())
}

/// The first directory on the way to `dir` that `user` may not enter, if any.
fn first_unreachable_ancestor(dir: &Path, user: &nix::unistd::User) -> Option<String> {
    for ancestor in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            continue;
        };
        let mode = meta.mode();
        let can_enter = if meta.uid() == user.uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can_enter {
            return Some(ancestor.display().to_string());
        }
    }
    None
}
