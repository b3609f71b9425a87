//! `POST /api/v1/imports` with a `connector`: validated at once (400 with the reason), the connection
//! sealed, and the import queued with `data_type` "datasource", as the reference marks connector imports.

use serde_json::Value;
use uuid::Uuid;

use super::enqueue::{Created, Enqueued, Extra, enqueue};
use super::idempotency::IdempotencyKey;
use crate::connector::connect;
use crate::connector::params::{self, ConnectorRequest};
use crate::connector::seal::Binding;
use crate::connector::store::StoredConnector;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::queue::{DataType, ImportOptions, NewImport};
use crate::users::User;

/// Checks a connector request as far as can be done without connecting: its parameters, and that the
/// server's address is one connectors may reach. Returns it with its stored form, sealed for `binding`
/// (the import or synchronization that will hold it).
pub async fn accept(
    state: &AppState,
    value: &Value,
    binding: Binding,
) -> Result<(ConnectorRequest, StoredConnector), String> {
    let request = params::parse_request(value).map_err(|e| e.0)?;
    // A name that does not resolve now is accepted (the import will say so); a refused address is not.
    if let Err(e) = connect::resolve(&state.services.connectors.policy, &request.connection).await
        && e.refused_address
    {
        return Err(e.message);
    }
    let spec = serde_json::to_value(&request.spec).map_err(|e| e.to_string())?;
    let plain = serde_json::to_vec(&request.connection).map_err(|e| e.to_string())?;
    let stored = StoredConnector { spec, sealed_connection: state.services.connectors.sealer.seal(&plain, binding) };
    Ok((request, stored))
}

pub async fn queue_import(
    state: &AppState,
    user: &User,
    value: &Value,
    options: ImportOptions,
    key: Option<&IdempotencyKey>,
) -> Result<Created, ApiError> {
    let id = Uuid::new_v4();
    let binding = Binding { user: user.id, owner: id };
    let (request, stored) = accept(state, value, binding).await.map_err(ApiError::bad_import)?;
    let job = NewImport {
        id,
        user_id: user.id,
        data_type: DataType::Datasource,
        staged_path: None,
        display_name: request.spec.wanted_name().to_string(),
        original_url: Some(String::new()),
        source_url: None,
        synchronization_id: None,
        options,
        staged_bytes: 0,
    };
    let queued = enqueue(state, user, &job, key, Extra::Connector(&stored)).await?;
    if let Enqueued::New = queued {
        tracing::info!(import = %id, user = %user.username, provider = request.spec.provider.id(), "connector import queued");
    }
    Ok(queued.answer(id))
}
