//! Who may connect to the embedded cluster, and as whom geoimport works in it.
//!
//! The cluster authenticates every connection with a password (SCRAM), never by trust: a socket reachable
//! by another local user gives them nothing. Two roles exist: the superuser `postgres`, used only to set
//! the cluster up (create the database, PostGIS), and `geoimport`, a role with no special privilege that
//! owns the database and everything in it, as which the server works. A statement that went wrong in the
//! server therefore has no more authority than the server's own tables.
//!
//! The two passwords are generated once and kept in `<data dir>/embedded-postgres.json`, readable by the
//! server's user only.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, PgConnection};

use super::error::EmbeddedError;
use crate::db::{quote_ident, quote_literal};

/// The role geoimport works as.
pub const APP_ROLE: &str = "geoimport";
/// The file holding the passwords, under the data directory.
const FILE: &str = "embedded-postgres.json";

#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub superuser_password: String,
    pub app_password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

fn password() -> String {
    let mut raw = [0u8; 24];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

impl Credentials {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE)
    }

    /// The stored passwords, if the cluster has any yet.
    pub fn load(data_dir: &Path) -> Result<Option<Credentials>, EmbeddedError> {
        let path = Self::path(data_dir);
        let io = |e| EmbeddedError::Io(path.display().to_string(), e);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
            Ok(meta) => {
                use std::os::unix::fs::MetadataExt;
                if !meta.is_file() || meta.mode() & 0o077 != 0 || meta.uid() != nix::unistd::geteuid().as_raw() {
                    return Err(EmbeddedError::Command(
                        "reading the embedded database's passwords".into(),
                        format!(
                            "{} must be a regular file of this user's, readable by nobody else (mode 0600)",
                            path.display()
                        ),
                    ));
                }
            }
        }
        let text = std::fs::read_to_string(&path).map_err(io)?;
        serde_json::from_str(&text).map(Some).map_err(|e| {
            EmbeddedError::Command(
                "reading the embedded database's passwords".into(),
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// The stored passwords, or new ones written (0600) before anything uses them. Two processes starting
    /// together end with the same passwords: the file appears whole or not at all (written aside, then
    /// linked into place, which fails if the other process got there first).
    pub fn create_or_read(data_dir: &Path) -> Result<Credentials, EmbeddedError> {
        let path = Self::path(data_dir);
        let aside = data_dir.join(format!(".{FILE}.{}", std::process::id()));
        let io = |e| EmbeddedError::Io(path.display().to_string(), e);
        let made = Credentials { superuser_password: password(), app_password: password() };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&aside).map_err(io)?;
        let json = serde_json::to_vec(&made).map_err(|e| io(std::io::Error::other(e)))?;
        file.write_all(&json).and_then(|_| file.sync_all()).map_err(io)?;
        let linked = std::fs::hard_link(&aside, &path);
        let _ = std::fs::remove_file(&aside);
        match linked {
            Ok(()) => Ok(made),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load(data_dir)?.ok_or_else(|| io(std::io::Error::other("the password file vanished")))
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// As the superuser, in the maintenance database: our role exists with its password, and owns our database.
pub async fn ensure_role_and_database(
    conn: &mut PgConnection,
    credentials: &Credentials,
    database: &str,
) -> Result<(), EmbeddedError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(APP_ROLE)
        .fetch_one(&mut *conn)
        .await?;
    let verb = if exists { "ALTER" } else { "CREATE" };
    let sql = format!(
        "{verb} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {}",
        quote_ident(APP_ROLE),
        quote_literal(&credentials.app_password)
    );
    sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    let owner: Option<String> =
        sqlx::query_scalar("SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1")
            .bind(database)
            .fetch_optional(&mut *conn)
            .await?;
    match owner {
        None => {
            let sql = format!("CREATE DATABASE {} OWNER {}", quote_ident(database), quote_ident(APP_ROLE));
            if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await {
                // Two processes may get here together; the loser's "already exists" is fine.
                let duplicate = e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "42P04");
                if !duplicate {
                    return Err(e.into());
                }
            }
        }
        Some(owner) if owner != APP_ROLE => {
            let sql = format!("ALTER DATABASE {} OWNER TO {}", quote_ident(database), quote_ident(APP_ROLE));
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// As the superuser, in our database: PostGIS (which only a superuser may create), and every object of a
/// cluster made before the role split handed to our role (except PostGIS's own, which stay the
/// extension's).
pub async fn prepare_database(conn: &mut PgConnection) -> Result<(), EmbeddedError> {
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis").execute(&mut *conn).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis_raster").execute(&mut *conn).await?;
    let take_over = format!(
        "DO $$ DECLARE r record; BEGIN \
           FOR r IN SELECT n.nspname FROM pg_namespace n \
                    WHERE n.nspowner = 'postgres'::regrole AND n.nspname NOT LIKE 'pg\\_%' \
                      AND n.nspname NOT IN ('information_schema', 'public') LOOP \
             EXECUTE format('ALTER SCHEMA %I OWNER TO {role}', r.nspname); \
           END LOOP; \
           FOR r IN SELECT n.nspname, c.relname, c.relkind FROM pg_class c \
                    JOIN pg_namespace n ON n.oid = c.relnamespace \
                    WHERE c.relowner = 'postgres'::regrole AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
                      AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
                      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                                      AND d.objid = c.oid AND d.deptype = 'e') LOOP \
             EXECUTE format('ALTER %s %I.%I OWNER TO {role}', \
                            CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' \
                                           WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' \
                                           ELSE 'TABLE' END, r.nspname, r.relname); \
           END LOOP; \
           FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                    WHERE p.proowner = 'postgres'::regrole AND n.nspname = 'geoimport' LOOP \
             EXECUTE format('ALTER FUNCTION %s OWNER TO {role}', r.f); \
           END LOOP; \
         END $$",
        role = quote_ident(APP_ROLE)
    );
    sqlx::query(AssertSqlSafe(take_over)).execute(&mut *conn).await?;
    Ok(())
}

/// Turns a cluster made with trust authentication (by an earlier version) into one that asks for
/// passwords: every `trust` line of pg_hba.conf becomes `scram-sha-256`. Returns whether it changed.
pub fn require_passwords(pgdata: &Path) -> Result<bool, EmbeddedError> {
    let path = pgdata.join("pg_hba.conf");
    let io = |e| EmbeddedError::Io(path.display().to_string(), e);
    let text = std::fs::read_to_string(&path).map_err(io)?;
    let mut changed = false;
    let rewritten: Vec<String> = text
        .lines()
        .map(|line| {
            let is_rule = !line.trim_start().starts_with('#');
            let fields: Vec<&str> = line.split_whitespace().collect();
            if is_rule && fields.last() == Some(&"trust") {
                changed = true;
                format!("{} scram-sha-256", fields[..fields.len() - 1].join(" "))
            } else {
                line.to_string()
            }
        })
        .collect();
    if changed {
        std::fs::write(&path, rewritten.join("\n") + "\n").map_err(io)?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_lines_become_password_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pg_hba.conf"),
            "# comment trust\nlocal   all             all                                     trust\n\
             host    all             all             127.0.0.1/32            trust\n\
             host    all             all             ::1/128                 scram-sha-256\n",
        )
        .unwrap();
        assert!(require_passwords(dir.path()).unwrap());
        let text = std::fs::read_to_string(dir.path().join("pg_hba.conf")).unwrap();
        assert!(text.contains("# comment trust"));
        assert!(!text.lines().filter(|l| !l.starts_with('#')).any(|l| l.ends_with("trust")), "{text}");
        assert_eq!(text.matches("scram-sha-256").count(), 3);
        assert!(!require_passwords(dir.path()).unwrap());
    }

    #[test]
    fn passwords_are_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Credentials::load(dir.path()).unwrap().is_none());
        let made = Credentials::create_or_read(dir.path()).unwrap();
        assert_eq!(Credentials::create_or_read(dir.path()).unwrap().app_password, made.app_password);
        let read = Credentials::load(dir.path()).unwrap().unwrap();
        assert_eq!(made.app_password, read.app_password);
        assert_ne!(made.app_password, made.superuser_password);
        use std::os::unix::fs::PermissionsExt;
        let path = Credentials::path(dir.path());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Credentials::load(dir.path()).is_err(), "a file others can read is refused");
    }
}
