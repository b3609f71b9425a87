//! The embedded default database: a private PostgreSQL cluster under the data directory, made with the
//! system's PostgreSQL binaries, so that `geoimport serve` works on a fresh machine with no setup.
//!
//! It listens only on a Unix socket (no TCP port to collide with), asks every connection for a password
//! ([`roles`]: geoimport works as a role without privileges, the superuser only sets things up), runs as
//! an unprivileged user when we are root (PostgreSQL refuses to run as root), and is stopped on exit only
//! by the process that started it, so `geoimport user create` can run beside a running server.

mod error;
mod roles;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

pub use error::EmbeddedError;
use roles::{APP_ROLE, Credentials};

const DATABASE: &str = "geoimport";
const SUPERUSER: &str = "postgres";

/// A private cluster: where it lives, which binaries run it, and as whom.
pub struct EmbeddedCluster {
    data_dir: PathBuf,
    dir: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<nix::unistd::User>,
    started_here: bool,
}

impl EmbeddedCluster {
    /// Finds the binaries and PostGIS and decides the paths, without starting anything. As root, the
    /// cluster runs as the system user `run_as_when_root`.
    pub fn locate(data_dir: &Path, run_as_when_root: &str) -> Result<Self, EmbeddedError> {
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
            // SHA-256, as every version named it: `user create` must find the socket the server made
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(dir.as_os_str().as_encoded_bytes()));
            PathBuf::from(format!("/tmp/geoimport-{}", &digest[..16]))
        };
        let run_as = if nix::unistd::geteuid().is_root() {
            let name = run_as_when_root;
            let user = nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| EmbeddedError::Command("user lookup".into(), format!("no system user '{name}'")))?;
            Some(user)
        } else {
            None
        };
        Ok(EmbeddedCluster { data_dir, dir, socket_dir, bin_dir, run_as, started_here: false })
    }

    /// Creates the cluster if needed, starts it unless it already runs, makes sure our role, database and
    /// PostGIS exist, and returns how to connect to it as our role.
    pub async fn ensure_running(&mut self) -> Result<PgConnectOptions, EmbeddedError> {
        // A cluster made before passwords were required has data but no password file: it is converted.
        let existing = self.dir.join("PG_VERSION").exists();
        let (credentials, legacy) = match Credentials::load(&self.data_dir)? {
            Some(c) => (c, false),
            None => (Credentials::create_or_read(&self.data_dir)?, existing),
        };
        let this = self.paths();
        let superuser_password = credentials.superuser_password.clone();
        let started = tokio::task::spawn_blocking(move || this.init_and_start(&superuser_password))
            .await
            .map_err(|e| EmbeddedError::Command("starting the embedded cluster".into(), e.to_string()))??;
        self.started_here = started;
        let superuser = |database: &str, with_password: bool| {
            let options = self.options(SUPERUSER, database);
            if with_password { options.password(&credentials.superuser_password) } else { options }
        };
        let mut conn = match superuser("postgres", !legacy).connect().await {
            Ok(conn) => conn,
            // Another process may have converted the legacy cluster meanwhile.
            Err(_) if legacy => superuser("postgres", true).connect().await?,
            Err(e) => return Err(e.into()),
        };
        if legacy {
            tracing::warn!(dir = %self.dir.display(), "converting the embedded cluster to password authentication");
            let sql = format!(
                "ALTER ROLE {SUPERUSER} PASSWORD {}",
                crate::db::quote_literal(&credentials.superuser_password)
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
        }
        roles::ensure_role_and_database(&mut conn, &credentials, DATABASE).await?;
        conn.close().await?;
        let mut conn = superuser(DATABASE, !legacy).connect().await?;
        roles::prepare_database(&mut conn).await?;
        if legacy && roles::require_passwords(&self.dir)? {
            sqlx::query("SELECT pg_reload_conf()").execute(&mut conn).await?;
        }
        conn.close().await?;
        tracing::info!(dir = %self.dir.display(), started = started, "embedded PostgreSQL ready");
        Ok(self.options(APP_ROLE, DATABASE).password(&credentials.app_password))
    }

    fn options(&self, user: &str, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(user)
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
    fn init_and_start(&self, superuser_password: &str) -> Result<bool, EmbeddedError> {
        let io = |e| EmbeddedError::Io(self.dir.display().to_string(), e);
        private_dir(&self.dir, self.run_as.as_ref())?;
        if self.socket_dir != self.dir {
            private_dir(&self.socket_dir, self.run_as.as_ref())?;
        }
        if let Some(user) = &self.run_as
            && let Some(blocked) = first_unreachable_ancestor(&self.dir, user)
        {
            return Err(EmbeddedError::Unreachable { user: user.name.clone(), dir: blocked });
        }
        let dir = self.dir.to_string_lossy().into_owned();
        if !self.dir.join("PG_VERSION").exists() {
            // initdb reads the superuser's password from a file of the cluster user's, removed at once.
            let pwfile = self.dir.with_file_name(".initdb-password");
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&pwfile).map_err(io)?;
            std::io::Write::write_all(&mut file, superuser_password.as_bytes()).map_err(io)?;
            drop(file);
            if let Some(user) = &self.run_as {
                std::os::unix::fs::lchown(&pwfile, Some(user.uid.as_raw()), Some(user.gid.as_raw())).map_err(io)?;
            }
            let pw = pwfile.to_string_lossy().into_owned();
            let made = self.run(
                "initdb",
                &["-D", &dir, "-U", SUPERUSER, "--auth=scram-sha-256", "--pwfile", &pw, "-E", "UTF8", "--no-locale"],
            );
            let _ = std::fs::remove_file(&pwfile);
            made?;
            let settings = format!(
                "\n# written by geoimport\nlisten_addresses = ''\nunix_socket_directories = '{}'\n\
                 unix_socket_permissions = 0700\nmax_connections = 200\nshared_buffers = '256MB'\n\
                 max_wal_size = '4GB'\nwal_level = minimal\nmax_wal_senders = 0\n",
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

    /// Runs a PostgreSQL program as the cluster's user, with nothing of our environment but what it needs:
    /// the server it starts must not hold our secrets (a statement could read its environment).
    fn run(&self, program: &str, args: &[&str]) -> Result<String, EmbeddedError> {
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.args(args).current_dir("/").env_clear().env("LC_ALL", "C");
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
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

/// Makes `dir` a private directory (mode 0700) of the cluster's user, or checks that it is one. It may sit
/// in a directory others can write to (the temp dir, for the socket of a deep data dir): a name planted
/// there in advance, as a link or a directory of someone else's, is refused rather than followed.
fn private_dir(dir: &Path, owner: Option<&nix::unistd::User>) -> Result<(), EmbeddedError> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |e| EmbeddedError::Io(dir.display().to_string(), e);
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let (uid, gid) = match owner {
        Some(u) => (u.uid.as_raw(), u.gid.as_raw()),
        None => (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw()),
    };
    // lchown never follows a link; the check below refuses one anyway.
    if owner.is_some() {
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(io)?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(EmbeddedError::Command(
            "preparing the embedded cluster".into(),
            format!(
                "{} is not a private directory of the cluster's user (a link, someone else's, or open to others); \
                 remove it, or set GEOIMPORT_DATA_DIR to a shorter path",
                dir.display()
            ),
        ));
    }
    Ok(())
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
