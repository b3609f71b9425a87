//! The connector request (reference §7.1): which provider, where to connect, and what to read. Keys are
//! read case-insensitively, as the reference does. Everything is checked here, when the request arrives,
//! so that a bad request gets its 400 at once instead of a failed import later.
//!
//! A request splits in two: the [`Connection`] (server, user, password...) is sealed before it is stored;
//! the [`ConnectorSpec`] (provider, table or query...) is stored in clear and shown back in synchronizations.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The databases we read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Mysql,
    Postgres,
}

pub const PROVIDERS: &[Provider] = &[Provider::Mysql, Provider::Postgres];

/// Providers the reference knows that we do not offer; named in the refusal so the user knows why.
const OTHER_PROVIDERS: &[&str] = &["sqlserver", "hive", "bigquery", "redshift", "snowflake", "odbc"];

impl Provider {
    pub fn id(self) -> &'static str {
        match self {
            Provider::Mysql => "mysql",
            Provider::Postgres => "postgres",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::Mysql => "MySQL",
            Provider::Postgres => "PostgreSQL",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Provider::Mysql => "MySQL and MariaDB servers: a table, or the result of a query",
            Provider::Postgres => "PostgreSQL servers (PostGIS too): a table, or the result of a query",
        }
    }

    pub fn parse(id: &str) -> Option<Provider> {
        PROVIDERS.iter().copied().find(|p| p.id().eq_ignore_ascii_case(id.trim()))
    }

    pub fn default_port(self) -> u16 {
        match self {
            Provider::Mysql => 3306,
            Provider::Postgres => 5432,
        }
    }

    /// Connection parameters that must be given, then those that may be.
    pub fn connection_parameters(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Provider::Mysql => (&["server", "username", "password"], &["port", "database"]),
            Provider::Postgres => (&["server", "username", "database"], &["port", "password", "sslmode"]),
        }
    }
}

/// Parameters of the connector object besides `provider` and `connection`.
pub const OPTIONAL_PARAMETERS: &[&str] = &["table", "sql_query", "import_as", "schema", "encoding", "columns"];

/// PostgreSQL's TLS modes, as libpq names them.
pub const SSL_MODES: &[&str] = &["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/// Where to connect. Sealed before it is stored; its Debug form never shows the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub server: String,
    pub port: u16,
    pub database: Option<String>,
    pub username: String,
    pub password: Option<String>,
    pub sslmode: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(sealed)"))
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

/// A column to import, with the PostgreSQL type it should have if the user named one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnChoice {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    pub pg_type: Option<String>,
}

/// What to read, stored in clear with the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorSpec {
    pub provider: Provider,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql_query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_as: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<ColumnChoice>>,
}

impl ConnectorSpec {
    /// The name the imported table asks for (before sanitizing and collisions).
    pub fn wanted_name(&self) -> &str {
        self.import_as.as_deref().or(self.table.as_deref()).unwrap_or("query")
    }
}

/// A whole validated request.
#[derive(Debug, Clone)]
pub struct ConnectorRequest {
    pub spec: ConnectorSpec,
    pub connection: Connection,
}

/// Why a connector request was refused (the message is the 400's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConnector(pub String);

fn invalid(message: impl Into<String>) -> InvalidConnector {
    InvalidConnector(message.into())
}

/// Lower-cases every key; two keys that differ only in case are refused (we could not tell which wins).
fn fold_keys(map: &Map<String, Value>, what: &str) -> Result<Map<String, Value>, InvalidConnector> {
    let mut out = Map::new();
    for (k, v) in map {
        let key = k.trim().to_ascii_lowercase();
        if out.insert(key.clone(), v.clone()).is_some() {
            return Err(invalid(format!("the {what} parameter '{key}' is given twice")));
        }
    }
    Ok(out)
}

/// A parameter as text: strings as they are, numbers written out. Null and "" count as absent.
fn text(map: &Map<String, Value>, key: &str) -> Result<Option<String>, InvalidConnector> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(invalid(format!("the connector parameter '{key}' must be a string"))),
    }
}

fn sorted_list(mut names: Vec<String>) -> String {
    names.sort();
    names.join(", ")
}

/// Validates the `connector` value of an import or synchronization request.
pub fn parse_request(value: &Value) -> Result<ConnectorRequest, InvalidConnector> {
    let object = match value {
        Value::Object(m) => m.clone(),
        // Forms can only send it as text holding JSON.
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            _ => return Err(invalid("the connector parameter must be a JSON object")),
        },
        _ => return Err(invalid("the connector parameter must be a JSON object")),
    };
    let params = fold_keys(&object, "connector")?;
    let provider_id = text(&params, "provider")?
        .ok_or_else(|| invalid("the connector has no provider: say which database to read (mysql or postgres)"))?;
    let provider = parse_provider(&provider_id)?;
    if params.contains_key("connection_id") {
        return Err(invalid(
            "stored connections (connection_id) are not supported: give the connection parameters themselves",
        ));
    }
    let unknown: Vec<String> = params
        .keys()
        .filter(|k| !matches!(k.as_str(), "provider" | "connection") && !OPTIONAL_PARAMETERS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(invalid(format!(
            "unknown connector parameters: {} (known: provider, connection, {})",
            sorted_list(unknown),
            OPTIONAL_PARAMETERS.join(", ")
        )));
    }
    let connection = match params.get("connection") {
        None | Some(Value::Null) => {
            return Err(invalid(
                "the connector has no connection: give server, username and the other connection parameters",
            ));
        }
        Some(Value::Object(m)) => parse_connection(provider, m)?,
        Some(_) => return Err(invalid("the connector's connection must be a JSON object")),
    };
    let table = text(&params, "table")?;
    let sql_query = text(&params, "sql_query")?;
    let import_as = text(&params, "import_as")?;
    if table.is_none() && sql_query.is_none() {
        return Err(invalid("the connector needs either a table to import or a sql_query to run"));
    }
    if sql_query.is_some() && import_as.is_none() && table.is_none() {
        return Err(invalid("a sql_query needs import_as: the name of the table its result becomes"));
    }
    let schema = text(&params, "schema")?;
    if provider == Provider::Mysql && sql_query.is_none() && schema.is_none() && connection.database.is_none() {
        return Err(invalid(
            "name the database that holds the table: connection.database, or the connector's schema parameter",
        ));
    }
    let encoding = text(&params, "encoding")?;
    if let Some(e) = &encoding {
        crate::connector::text::encoding_for(e).ok_or_else(|| {
            invalid(format!("'{e}' is not a character encoding we know (try utf8, latin1, win1252...)"))
        })?;
    }
    let columns = match params.get("columns") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_columns(v)?),
    };
    let spec = ConnectorSpec { provider, schema, table, sql_query, import_as, encoding, columns };
    Ok(ConnectorRequest { spec, connection })
}

pub fn parse_provider(id: &str) -> Result<Provider, InvalidConnector> {
    Provider::parse(id).ok_or_else(|| {
        let known = PROVIDERS.iter().map(|p| p.id()).collect::<Vec<_>>().join(" or ");
        if OTHER_PROVIDERS.contains(&id.trim().to_ascii_lowercase().as_str()) {
            invalid(format!("the {} connector is not available on this server; use {known}", id.trim()))
        } else {
            invalid(format!("'{}' is not a connector provider; use {known}", id.trim()))
        }
    })
}

/// Validates connection parameters (the `connection` object, or the flat query of the discovery routes).
pub fn parse_connection(provider: Provider, raw: &Map<String, Value>) -> Result<Connection, InvalidConnector> {
    let params = fold_keys(raw, "connection")?;
    let (required, optional) = provider.connection_parameters();
    let unknown: Vec<String> =
        params.keys().filter(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str())).cloned().collect();
    if !unknown.is_empty() {
        return Err(invalid(format!(
            "unknown connection parameters for {}: {} (known: {}, {})",
            provider.id(),
            sorted_list(unknown),
            required.join(", "),
            optional.join(", ")
        )));
    }
    let mut missing = Vec::new();
    for key in required {
        // An empty password is a password (some servers allow it); an absent one is not.
        let present = match params.get(*key) {
            Some(Value::String(s)) if *key == "password" => s.is_empty() || text(&params, key)?.is_some(),
            _ => text(&params, key)?.is_some(),
        };
        if !present {
            missing.push(key.to_string());
        }
    }
    if !missing.is_empty() {
        return Err(invalid(format!("missing connection parameters for {}: {}", provider.id(), missing.join(", "))));
    }
    let server = text(&params, "server")?.unwrap_or_default().trim().to_string();
    if server.contains(['/', '?', '#', ' ', '@']) || server.len() > 253 {
        return Err(invalid(format!("'{server}' is not a server name or address")));
    }
    let port = match text(&params, "port")? {
        None => provider.default_port(),
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(format!("the port must be a number from 1 to 65535, not '{p}'")))?,
    };
    let sslmode = match text(&params, "sslmode")? {
        None => None,
        Some(m) => {
            let m = m.trim().to_ascii_lowercase();
            if !SSL_MODES.contains(&m.as_str()) {
                return Err(invalid(format!("sslmode must be one of {}, not '{m}'", SSL_MODES.join(", "))));
            }
            Some(m)
        }
    };
    let password = match params.get("password") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => text(&params, "password")?,
    };
    Ok(Connection {
        server,
        port,
        database: text(&params, "database")?,
        username: text(&params, "username")?.unwrap_or_default(),
        password,
        sslmode,
    })
}

/// `columns`: names to import, each optionally followed by the PostgreSQL type it should get, given as
/// `"id, name text, price numeric(10,2)"` (the reference's form) or as a JSON array of such entries.
fn parse_columns(value: &Value) -> Result<Vec<ColumnChoice>, InvalidConnector> {
    let entries: Vec<String> = match value {
        Value::String(s) => split_top_level(s),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| invalid("each entry of columns must be a string")))
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid("columns must be a list such as \"id, name, price numeric(10,2)\"")),
    };
    let mut out = Vec::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let (name, pg_type) = match entry.split_once(char::is_whitespace) {
            Some((n, t)) => (n.trim_matches('"').trim_matches('`'), Some(t.trim().to_string())),
            None => (entry.trim_matches('"').trim_matches('`'), None),
        };
        if name.is_empty() {
            return Err(invalid(format!("'{entry}' in columns names no column")));
        }
        if let Some(t) = pg_type.as_deref().filter(|t| !super::column_types::valid_type_name(t)) {
            return Err(invalid(format!(
                "'{t}' (for column {name}) is not a type columns may ask for; use one of: {}, optionally with \
                 (n) or (p,s) and []",
                super::column_types::COLUMN_TYPES.join(", ")
            )));
        }
        out.push(ColumnChoice { name: name.to_string(), pg_type });
    }
    if out.is_empty() {
        return Err(invalid("columns is empty: leave it out to import every column"));
    }
    Ok(out)
}

/// Splits on commas that are not inside parentheses (`numeric(10,2)` stays whole).
fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        parse_request(&v).unwrap_err().0
    }

    #[test]
    fn the_reference_example_is_accepted_with_keys_in_any_case() {
        let r = parse_request(&json!({"Provider": "MySQL", "CONNECTION": {"Server": "db.example.com",
            "database": "mydb", "username": "me", "PassWord": "secret"}, "table": "mytable"}))
        .unwrap();
        assert_eq!(r.spec.provider, Provider::Mysql);
        assert_eq!(r.connection.port, 3306);
        assert_eq!(r.connection.password.as_deref(), Some("secret"));
        assert_eq!(r.spec.wanted_name(), "mytable");
        assert!(!format!("{r:?}").contains("secret"));
        let r = parse_request(&json!({"provider": "postgres", "connection": {"server": "db.example.com",
            "database": "gis", "username": "me"}, "table": "parks"}))
        .unwrap();
        assert_eq!(r.connection.port, 5432);
    }

    #[test]
    fn every_kind_of_bad_request_is_named() {
        let conn = json!({"server": "h", "username": "u", "password": "p", "database": "d"});
        assert!(err(json!("x")).contains("JSON object"));
        assert!(err(json!({"connection": conn})).contains("no provider"));
        assert!(err(json!({"provider": "oracle", "connection": conn, "table": "t"})).contains("'oracle' is not"));
        assert!(err(json!({"provider": "hive", "connection": conn, "table": "t"})).contains("not available"));
        assert!(err(json!({"provider": "mysql", "table": "t"})).contains("no connection"));
        assert!(err(json!({"provider": "mysql", "connection": conn})).contains("either a table"));
        assert!(err(json!({"provider": "mysql", "connection": conn, "sql_query": "select 1"})).contains("import_as"));
        assert!(
            err(json!({"provider": "mysql", "connection": conn, "table": "t", "limit": 5}))
                .contains("unknown connector")
        );
        assert!(
            err(json!({"provider": "mysql", "connection": {"server": "h"}, "table": "t"}))
                .contains("missing connection parameters for mysql: username, password")
        );
        let c = json!({"server": "h", "username": "u", "password": "p", "sslmode": "require"});
        assert!(err(json!({"provider": "mysql", "connection": c, "table": "t"})).contains("unknown connection"));
        let c = json!({"server": "h", "username": "u", "password": "p", "port": 70000});
        assert!(err(json!({"provider": "mysql", "connection": c, "schema": "s", "table": "t"})).contains("port"));
        let c = json!({"server": "h", "username": "u", "database": "d", "sslmode": "sometimes"});
        assert!(err(json!({"provider": "postgres", "connection": c, "table": "t"})).contains("sslmode"));
        let c = json!({"server": "h", "username": "u", "password": "p"});
        assert!(err(json!({"provider": "mysql", "connection": c, "table": "t"})).contains("database"));
        assert!(
            err(json!({"provider": "mysql", "connection": conn, "table": "t", "encoding": "klingon"}))
                .contains("encoding")
        );
        assert!(
            err(json!({"provider": "mysql", "connection": conn, "table": "t", "connection_id": "x"}))
                .contains("connection_id")
        );
        assert!(err(json!({"provider": "mysql", "connection": conn, "table": "t", "columns": 5})).contains("columns"));
    }

    #[test]
    fn postgres_needs_no_password_and_takes_sslmode() {
        let r = parse_request(&json!({"provider": "postgres", "connection": {"server": "h", "username": "u",
            "database": "d", "sslmode": "Disable", "port": "6543"}, "sql_query": "select 1", "import_as": "one"}))
        .unwrap();
        assert_eq!(r.connection.sslmode.as_deref(), Some("disable"));
        assert_eq!(r.connection.port, 6543);
        assert_eq!(r.connection.password, None);
        assert_eq!(r.spec.wanted_name(), "one");
    }

    #[test]
    fn columns_keep_types_with_commas_inside() {
        let cols = parse_columns(&json!("id, name text, price numeric(10,2)")).unwrap();
        assert_eq!(cols.len(), 3);
        assert_eq!(cols[2], ColumnChoice { name: "price".into(), pg_type: Some("numeric(10,2)".into()) });
        assert_eq!(cols[0].pg_type, None);
    }

    #[test]
    fn the_stored_spec_holds_no_connection() {
        let r = parse_request(&json!({"provider": "mysql", "connection": {"server": "h", "username": "u",
            "password": "hunter2", "database": "d"}, "table": "t"}))
        .unwrap();
        let stored = serde_json::to_string(&r.spec).unwrap();
        assert!(!stored.contains("hunter2") && !stored.contains("\"h\""));
        assert_eq!(serde_json::from_str::<ConnectorSpec>(&stored).unwrap(), r.spec);
    }
}
