//! The database: how every subcommand finds it (DATABASE_URL, or the embedded cluster), the pool, PostGIS and
//! the embedded migrations.

pub mod embedded;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Key of the advisory lock that serialises PostGIS creation among processes starting together.
const SETUP_LOCK: i64 = 0x6765_6f69_6d70_0001;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(sqlx::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error(
        "PostGIS is not installed on the database server. Install it there (on Debian or Ubuntu: \
         apt-get install postgresql-<version>-postgis-3) and start again"
    )]
    PostgisUnavailable,
    #[error(
        "the database has no PostGIS extension and this role may not create it ({0}). Ask a superuser to \
         run CREATE EXTENSION postgis in this database, then start again"
    )]
    PostgisForbidden(sqlx::Error),
    #[error("database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error during setup: {0}")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Embedded(#[from] embedded::EmbeddedError),
    #[error(
        "DATABASE_URL connects as the superuser '{0}'. geoimport works as one role that owns every user's \
         tables; give it a role with no other power: as a superuser run CREATE ROLE geoimport LOGIN PASSWORD \
         '...'; CREATE DATABASE geoimport OWNER geoimport; then, in that database, CREATE EXTENSION postgis; \
         and point DATABASE_URL at it. (GEOIMPORT_ALLOW_SUPERUSER=true accepts the superuser anyway.)"
    )]
    Superuser(String),
}

/// The database a process uses, and the embedded cluster behind it if there is one.
pub struct Database {
    pub pool: PgPool,
    pub options: PgConnectOptions,
    pub cluster: Option<embedded::EmbeddedCluster>,
}

/// Where the database is: `database_url`, or the embedded cluster under `data_dir`.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// Work even though `database_url` connects as a superuser (refused by default).
    pub allow_superuser: bool,
    /// When running as root, the system user the embedded cluster runs as.
    pub embedded_pg_user: String,
}

impl Database {
    /// Finds the database the way every subcommand does: DATABASE_URL if set, else the embedded cluster
    /// under the data directory (started if it is not running). Then makes sure PostGIS and our schema exist.
    /// `statement_timeout` caps any one statement (a job's longest allowed run, for processes with workers).
    pub async fn open(
        store: &StoreOptions,
        max_connections: u32,
        statement_timeout: Option<Duration>,
    ) -> Result<Database, SetupError> {
        let (options, cluster) = match &store.database_url {
            Some(url) => (PgConnectOptions::from_str(url).map_err(SetupError::BadUrl)?, None),
            None => {
                let mut cluster = embedded::EmbeddedCluster::locate(&store.data_dir, &store.embedded_pg_user)?;
                let options = cluster.ensure_running().await?;
                (options, Some(cluster))
            }
        };
        let pool = connect(options.clone(), max_connections, statement_timeout).await?;
        if !store.allow_superuser {
            let (role, superuser): (String, bool) =
                sqlx::query_as("SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user")
                    .fetch_one(&pool)
                    .await?;
            if superuser {
                pool.close().await;
                return Err(SetupError::Superuser(role));
            }
        }
        prepare(&pool).await?;
        Ok(Database { pool, options, cluster })
    }

    /// Closes the pool and stops the embedded cluster if this process started it.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            cluster.stop().await;
        }
    }
}

/// A pool on the given database. Statement logging is quiet: COPY and row SQL would drown the logs.
///
/// Every connection resolves names in `public` (where PostGIS lives) after `pg_catalog`, and nowhere else:
/// the default path starts with `"$user"`, and a tenant whose schema is named like our role could then
/// shadow a type or function we name unqualified. With `statement_timeout`, no statement runs longer,
/// whatever happened to the job that started it.
pub async fn connect(
    options: PgConnectOptions,
    max_connections: u32,
    statement_timeout: Option<Duration>,
) -> Result<PgPool, SetupError> {
    let mut options = options
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(10))
        .application_name("geoimport")
        .options([("search_path", "public")]);
    if let Some(limit) = statement_timeout {
        options = options.options([("statement_timeout", format!("{}ms", limit.as_millis()))]);
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(SetupError::Connect)
}

/// Creates PostGIS if it is missing (under an advisory lock, so processes that start together do not race)
/// and runs the embedded migrations (sqlx takes its own lock for those).
pub async fn prepare(pool: &PgPool) -> Result<(), SetupError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(SETUP_LOCK).execute(&mut *conn).await?;
    let result = ensure_postgis(&mut conn).await;
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(SETUP_LOCK).execute(&mut *conn).await?;
    result?;
    drop(conn);
    MIGRATOR.run(pool).await?;
    Ok(())
}

async fn ensure_postgis(conn: &mut sqlx::PgConnection) -> Result<(), SetupError> {
    let installed: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis')")
        .fetch_one(&mut *conn)
        .await?;
    if installed {
        ensure_raster(conn).await?;
        return Ok(());
    }
    let available: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis')")
            .fetch_one(&mut *conn)
            .await?;
    if !available {
        return Err(SetupError::PostgisUnavailable);
    }
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis")
        .execute(&mut *conn)
        .await
        .map_err(SetupError::PostgisForbidden)?;
    ensure_raster(conn).await?;
    Ok(())
}

/// PostGIS's raster support, which raster imports need. Without it the server still runs; a raster
/// import then fails saying what is missing.
async fn ensure_raster(conn: &mut sqlx::PgConnection) -> Result<(), SetupError> {
    let installed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis_raster')")
            .fetch_one(&mut *conn)
            .await?;
    if !installed && let Err(e) = sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis_raster").execute(&mut *conn).await
    {
        tracing::warn!(
            error = %e,
            "the database has no postgis_raster extension and this role may not create it: raster imports \
             will fail until a superuser runs CREATE EXTENSION postgis_raster in this database"
        );
    }
    Ok(())
}

/// Quotes an identifier for SQL. Every name that reaches SQL text goes through here.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for the few statements (DDL) that cannot take bind parameters.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Where this server's own database listens, as ranges and ports that connectors must never reach: the
/// host and port of the pool's connection (all of loopback when it is on this machine, since the same
/// server then answers on every loopback address), or loopback on that port for a Unix socket.
pub async fn own_addresses(pool: &PgPool) -> Vec<(ipnet::IpNet, u16)> {
    let options = pool.connect_options();
    let (host, port) = (options.get_host().to_string(), options.get_port());
    let loopback =
        || ["127.0.0.0/8", "::1/128"].iter().map(|n| (n.parse().expect("a valid range"), port)).collect::<Vec<_>>();
    if host.starts_with('/') || options.get_socket().is_some() {
        return loopback();
    }
    let Ok(found) = tokio::net::lookup_host((host.as_str(), port)).await else { return loopback() };
    let mut refused = Vec::new();
    for address in found {
        if address.ip().is_loopback() {
            refused.extend(loopback());
        } else {
            refused.push((ipnet::IpNet::from(address.ip()), port));
        }
    }
    refused
}
