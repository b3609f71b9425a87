//! The connector's part of the job and synchronization rows.
//!
//! The connection is stored sealed (see [`super::seal`]) and forgotten when the import ends: a trigger of
//! migration 0003 clears `connector_secret` whenever an import reaches `complete` or `failure`, whichever
//! code path gets it there.

use serde_json::Value;
use sqlx::PgConnection;
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
