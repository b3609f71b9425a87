//! Opening a connection to a source database, and saying in plain words what went wrong when it fails:
//! the name does not resolve, nothing answers, the user or password is refused, the database or table does
//! not exist, the query is wrong. Every message passes through [`SourceError::scrub`]-ed text, so a
//! password can never reach a status, a log line or the job row, whatever a driver or server puts in its
//! errors.
//!
//! The server's address is resolved here and checked against the connector address policy (private and
//! loopback ranges are refused unless `GEOIMPORT_CONNECTOR_ALLOW` opens them, and this server's own
//! database never is), then we connect to the checked address ourselves and the driver talks through a
//! private relay ([`super::relay`]): a DNS answer that changes in between cannot redirect it, TLS names are
//! still verified against the name the user gave, and a source cannot make the driver buffer more than
//! [`MAX_SOURCE_ROW_BYTES`] at a time.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection as _};

use super::params::{Connection, Provider};
use super::relay::{Progress, Relay};
use crate::errors::{ImportError, codes};
use crate::source::address_policy::{AddressPolicy, PolicyError, ResolveError};

/// The most a source may send past the last whole row we took: one row (or one protocol message) larger
/// than this fails the import instead of being buffered.
pub const MAX_SOURCE_ROW_BYTES: u64 = 32 << 20;

/// An open connection to a source, with the relay it goes through (which lives as long as it does).
pub struct SourceConnection<C> {
    pub conn: C,
    relay: Relay,
}

impl<C> SourceConnection<C> {
    /// Where the reader marks each row it has taken (see [`Progress::mark`]).
    pub fn progress(&self) -> Arc<Progress> {
        self.relay.progress()
    }
}

impl<C> Deref for SourceConnection<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> DerefMut for SourceConnection<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

/// A failure talking to a source database, already in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
    /// The address policy refused the server: the API answers 400 rather than queueing an import.
    pub refused_address: bool,
}

impl SourceError {
    fn new(message: String) -> SourceError {
        SourceError { message, refused_address: false }
    }

    /// Removes the password from the message, wherever a driver or server may have echoed it.
    pub fn scrub(mut self, connection: &Connection) -> SourceError {
        if let Some(p) = connection.password.as_deref().filter(|p| !p.is_empty()) {
            self.message = self.message.replace(p, "********");
        }
        self
    }

    pub fn into_import_error(self) -> ImportError {
        ImportError::new(codes::CONNECTOR_ERROR, self.message)
    }
}

/// Resolves the server and keeps the addresses the policy permits (the first is used).
pub async fn resolve(policy: &AddressPolicy, connection: &Connection) -> Result<SocketAddr, SourceError> {
    let host = connection.server.trim_start_matches('[').trim_end_matches(']');
    match policy.resolve(host, connection.port).await {
        Ok(addrs) => {
            addrs.first().copied().ok_or_else(|| SourceError::new(format!("the server name '{host}' does not resolve")))
        }
        Err(ResolveError::Lookup(_)) => Err(SourceError::new(format!("the server name '{host}' does not resolve"))),
        Err(ResolveError::Policy(PolicyError::Blocked(ip))) => Err(SourceError {
            message: format!(
                "{host} is (or resolves to) {ip}, a private or reserved address that connectors may not reach \
                 unless the server's administrator allows it (GEOIMPORT_CONNECTOR_ALLOW)"
            ),
            refused_address: true,
        }),
        Err(ResolveError::Policy(PolicyError::OwnDatabase(address))) => Err(SourceError {
            message: format!(
                "{host}:{} is (or resolves to) {address}, this server's own database, which connectors never read",
                connection.port
            ),
            refused_address: true,
        }),
        Err(ResolveError::Policy(e)) => Err(SourceError::new(e.to_string())),
    }
}

/// Connects to the checked address through a relay, and fails in words a user can act on.
async fn relay_to(
    c: &Connection,
    address: SocketAddr,
    timeout: Duration,
    socket_name: &str,
) -> Result<Relay, SourceError> {
    Relay::connect(address, timeout, socket_name, MAX_SOURCE_ROW_BYTES).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut => no_answer(c, address, timeout),
        std::io::ErrorKind::ConnectionRefused => SourceError::new(format!(
            "nothing accepts connections at {} ({address}): is the server up, and is the port right?",
            c.server
        )),
        _ => SourceError::new(format!("the connection to {} ({address}) failed: {e}", c.server)),
    })
}

pub async fn mysql(
    policy: &AddressPolicy,
    c: &Connection,
    timeout: Duration,
) -> Result<SourceConnection<MySqlConnection>, SourceError> {
    let address = resolve(policy, c).await?;
    let relay = relay_to(c, address, timeout, "mysql.sock").await?;
    let mut options = MySqlConnectOptions::new()
        .socket(relay.socket())
        .host(&address.ip().to_string())
        .port(address.port())
        .username(&c.username)
        // Our own session: no sql_mode changes (the user's SQL is in MySQL's dialect, where || is OR), and
        // TIMESTAMP values in UTC (the default time_zone='+00:00'), so they are exact instants.
        .pipes_as_concat(false)
        .no_engine_substitution(false)
        .charset("utf8mb4")
        .ssl_mode(MySqlSslMode::Preferred)
        .statement_cache_capacity(8)
        .log_statements(log::LevelFilter::Trace);
    // An empty password must be sent as none at all, or the server compares it with a scrambled "".
    if let Some(p) = c.password.as_deref().filter(|p| !p.is_empty()) {
        options = options.password(p);
    }
    if let Some(db) = &c.database {
        options = options.database(db);
    }
    let connecting = options.connect();
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(conn)) => Ok(SourceConnection { conn, relay }),
        Ok(Err(e)) => Err(describe(c, address, &e).scrub(c)),
        Err(_) => Err(no_answer(c, address, timeout)),
    }
}

pub async fn postgres(
    policy: &AddressPolicy,
    c: &Connection,
    timeout: Duration,
) -> Result<SourceConnection<PgConnection>, SourceError> {
    let address = resolve(policy, c).await?;
    let sslmode = c.sslmode.as_deref().unwrap_or("require");
    let relay = relay_to(c, address, timeout, &format!(".s.PGSQL.{}", address.port())).await?;
    // Through the relay's socket, the host is only the name the certificate must carry (verify-full).
    let mut options = PgConnectOptions::new()
        .socket(relay.dir())
        .host(c.server.trim_start_matches('[').trim_end_matches(']'))
        .port(address.port())
        .username(&c.username)
        .database(c.database.as_deref().unwrap_or("postgres"))
        .ssl_mode(PgSslMode::from_str(sslmode).unwrap_or(PgSslMode::Require))
        .application_name("geoimport connector")
        .statement_cache_capacity(8)
        .log_statements(log::LevelFilter::Trace);
    if let Some(p) = &c.password {
        options = options.password(p);
    }
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => Ok(SourceConnection { conn, relay }),
        Ok(Err(e)) => Err(describe(c, address, &e).scrub(c)),
        Err(_) => Err(no_answer(c, address, timeout)),
    }
}

/// Connects and runs a trivial query: what the discovery `connect` route reports.
pub async fn check(
    provider: Provider,
    policy: &AddressPolicy,
    c: &Connection,
    timeout: Duration,
) -> Result<(), SourceError> {
    match provider {
        Provider::Mysql => {
            let mut source = mysql(policy, c, timeout).await?;
            sqlx::query("SELECT 1").execute(&mut source.conn).await.map_err(|e| query_error(c, &e))?;
            let _ = source.conn.close().await;
        }
        Provider::Postgres => {
            let mut source = postgres(policy, c, timeout).await?;
            sqlx::query("SELECT 1").execute(&mut source.conn).await.map_err(|e| query_error(c, &e))?;
            let _ = source.conn.close().await;
        }
    }
    Ok(())
}

/// MySQL's error number (its SQLSTATEs are too coarse), or PostgreSQL's SQLSTATE.
fn error_code(db: &dyn sqlx::error::DatabaseError) -> String {
    match db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        Some(my) => my.number().to_string(),
        None => db.code().map(|c| c.to_string()).unwrap_or_default(),
    }
}

fn no_answer(c: &Connection, address: SocketAddr, timeout: Duration) -> SourceError {
    SourceError::new(format!(
        "no answer from {} ({address}) within {} seconds: is the server up, and is its port open to us?",
        c.server,
        timeout.as_secs()
    ))
}

/// Words for a failure to connect.
fn describe(c: &Connection, address: SocketAddr, e: &sqlx::Error) -> SourceError {
    if let Some(db) = e.as_database_error() {
        let server_said = db.message();
        let database = c.database.as_deref().unwrap_or_default();
        let message = match error_code(db).as_str() {
            "1045" | "1698" | "28P01" | "28000" => format!(
                "authentication failed: {} refused the user '{}' (wrong password, or the user may not connect from \
                 this server). The server said: {server_said}",
                c.server, c.username
            ),
            "1049" | "3D000" => format!("unknown database: the server has no database '{database}'"),
            // MySQL does not tell a missing database from a forbidden one to a user without rights.
            "1044" => format!(
                "unknown database, or one the user '{}' may not use: '{database}'. The server said: {server_said}",
                c.username
            ),
            _ => format!("{} refused the connection: {server_said}", c.server),
        };
        return SourceError::new(message);
    }
    let text = e.to_string();
    let message = match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("nothing accepts connections at {} ({address}): is the server up, and is the port right?", c.server)
        }
        sqlx::Error::Io(io) => format!("the connection to {} ({address}) failed: {io}", c.server),
        sqlx::Error::Tls(t) => format!("the encrypted connection to {} failed: {t}", c.server),
        _ if text.contains("password") => format!(
            "authentication failed: {} asks for a password for user '{}', and none (or a wrong one) was given",
            c.server, c.username
        ),
        _ => format!("connecting to {} failed: {text}", c.server),
    };
    SourceError::new(message)
}

/// Words for a failure of a query on an open connection (reading the table, running the user's SQL).
pub fn query_error(c: &Connection, e: &sqlx::Error) -> SourceError {
    let message = match e.as_database_error() {
        Some(db) => {
            let said = db.message();
            match error_code(db).as_str() {
                "1146" | "42P01" => format!("unknown table: {said}"),
                "1049" => format!("unknown database: {said}"),
                "3F000" => format!("unknown schema: {said}"),
                "1142" | "1143" | "1044" | "42501" => format!("the user '{}' may not read this: {said}", c.username),
                _ => format!("query error: {said}"),
            }
        }
        None => format!("reading from {} failed: {e}", c.server),
    };
    SourceError::new(message).scrub(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_scrubbed_from_messages() {
        let c = Connection {
            server: "h".into(),
            port: 1,
            database: None,
            username: "u".into(),
            password: Some("s3cr3t!".into()),
            sslmode: None,
        };
        let e = SourceError::new("driver said s3cr3t! twice: s3cr3t!".into()).scrub(&c);
        assert_eq!(e.message, "driver said ******** twice: ********");
    }
}
