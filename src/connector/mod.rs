//! Database connectors: imports that read a table, or the result of a query, from a MySQL/MariaDB or
//! PostgreSQL server (the reference's `connector` parameter, its §7), and the discovery routes' work.
//!
//! - [`params`]: the request, validated when it arrives; the connection part is sealed ([`seal`]).
//! - [`connect`]: connecting under the address policy, with failures in plain words and never a password.
//! - [`mysql`]: rows streamed with a prepared statement (binary protocol), each value converted in Rust and
//!   written as binary COPY, like a file's.
//! - [`postgres`]: the source's own binary COPY, re-framed on the fly with our three columns in front.
//! - [`shape`], [`load`]: the table's shape and the load into a staging table, shared by both.
//!
//! No foreign data wrapper and no extension is involved: the target database never connects anywhere.

mod column_types;
pub mod connect;
pub mod discover;
mod job;
mod load;
pub mod mysql;
pub mod params;
mod pgbinary;
pub mod postgres;
pub mod relay;
pub mod seal;
pub mod shape;
pub mod store;
pub mod text;

use crate::errors::{ImportError, codes};
use crate::load::names::sanitize_table_name;
use crate::load::{LoadContext, LoadedLayer, Stage};
pub use column_types::{COLUMN_TYPES, valid_type_name};
pub use job::{ConnectorEnv, ConnectorJob};
pub use params::{Connection, ConnectorRequest, ConnectorSpec, InvalidConnector, Provider};

/// Runs the load of a connector import: opens its sealed connection, reads, fills a staging table.
pub async fn load_job(ctx: &LoadContext<'_>, env: &ConnectorEnv) -> Result<Vec<LoadedLayer>, ImportError> {
    let internal = |e: sqlx::Error| ImportError::unknown(format!("database error: {e}"));
    let (spec, sealed, synchronization) = crate::queue::connector_of(ctx.pool, ctx.job_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ImportError::unknown("the import disappeared"))?;
    let spec: ConnectorSpec = spec
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| ImportError::new(codes::CONNECTOR_INVALID_PARAMETERS, "the import has no connector"))?;
    let sealed = sealed.ok_or_else(|| {
        ImportError::new(codes::CONNECTOR_ERROR, "the import's connection details are gone: import it again")
    })?;
    // A synchronization's runs share its sealed connection, bound to the synchronization.
    let binding = seal::Binding { user: ctx.user.id, owner: synchronization.unwrap_or(ctx.job_id) };
    let opened =
        env.sealer.open(&sealed, binding).map_err(|e| ImportError::new(codes::CONNECTOR_ERROR, e.to_string()))?;
    let connection: Connection = serde_json::from_slice(&opened)
        .map_err(|_| ImportError::new(codes::CONNECTOR_ERROR, "the sealed connection details are unreadable"))?;
    let max_rows = ctx.user.max_rows_per_connection;
    let job = ConnectorJob { table_name: sanitize_table_name(spec.wanted_name()), spec, connection, env, max_rows };
    (ctx.report)(Stage::Importing);
    let layer = match job.spec.provider {
        Provider::Mysql => mysql::load(ctx, &job).await?,
        Provider::Postgres => postgres::load(ctx, &job).await?,
    };
    Ok(vec![layer])
}
