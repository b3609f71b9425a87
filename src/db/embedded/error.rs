//! Why the embedded cluster could not be made or started, in words an operator can act on.

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
