//! The connector's part of the job and synchronization rows: one function per statement.
//!
//! The connection is stored sealed (see [`super::seal`]) and forgotten when the import ends: a trigger of
//! migration 0003 clears `connector_secret` whenever an import reaches `complete` or `failure`, whichever
//! code path gets it there.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// What a connector import keeps in its row: the spec in clear, the connection sealed.
#[derive(Debug, Clone)]
pub struct StoredConnector {
    pub spec: Value,
    pub sealed_connection: Vec<u8>,
}

/// Gives a just-inserted import its connector. Call in the transaction that inserts the import: the
/// workers' NOTIFY is delivered at commit, so no worker can claim the row before it has its connector.
pub async fn attach(conn: &mut PgConnection, import_id: Uuid, stored: &StoredConnector) -> Result<(), sqlx::Error> {
    crate::queue::attach_connector(conn, import_id, &stored.spec, &stored.sealed_connection).await
}

/// The most rows a connector import of this user reads.
pub async fn max_rows(pool: &PgPool, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT max_rows_per_connection FROM geoimport.users WHERE id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
}
