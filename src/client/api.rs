//! The server's routes, as calls. The key goes as HTTP Basic (`:<key>`), never in a URL, so that no proxy
//! or log along the way keeps it.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use super::ClientError;

/// A geoimport server and the key to speak to it with.
#[derive(Clone)]
pub struct Api {
    pub server: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(server: &str, key: &str) -> Result<Api, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("geoimport-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Local(format!("cannot make an HTTP client: {e}")))?;
        Ok(Api { server: server.trim_end_matches('/').to_string(), key: key.to_string(), http })
    }

    /// A request to `path` (from `/api/v1/...`) with the key.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.server)).basic_auth("", Some(&self.key))
    }

    /// Sends `request`; a 2xx answer, or the server's refusal with its body.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response =
            request.send().await.map_err(|source| ClientError::Unreachable { server: self.server.clone(), source })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        Err(ClientError::Refused { status, body: response.text().await.unwrap_or_default() })
    }

    /// Sends `request` and reads its JSON answer.
    pub async fn json(&self, request: RequestBuilder) -> Result<Value, ClientError> {
        let response = self.send(request).await?;
        response.json().await.map_err(|e| ClientError::Local(format!("the server's answer is not JSON: {e}")))
    }

    pub async fn status(&self, id: &str) -> Result<Value, ClientError> {
        self.json(self.request(Method::GET, &format!("/api/v1/imports/{id}"))).await
    }

    pub async fn list(&self) -> Result<Value, ClientError> {
        self.json(self.request(Method::GET, "/api/v1/imports")).await
    }

    pub async fn cancel(&self, id: &str) -> Result<Value, ClientError> {
        self.json(self.request(Method::POST, &format!("/api/v1/imports/{id}/cancel"))).await
    }

    /// Queues the import of `url` with `params`; the import's id.
    pub async fn import_url(&self, url: &str, params: &[(String, String)]) -> Result<String, ClientError> {
        let mut body = serde_json::Map::new();
        body.insert("url".into(), url.into());
        body.extend(params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))));
        let answer = self.json(self.request(Method::POST, "/api/v1/imports").json(&body)).await?;
        queue_id(&answer)
    }

    pub async fn create_sync(&self, url: &str, interval: u64) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "url": url, "interval": interval });
        self.json(self.request(Method::POST, "/api/v1/synchronizations").json(&body)).await
    }
}

/// The `item_queue_id` of a create's answer.
pub fn queue_id(answer: &Value) -> Result<String, ClientError> {
    answer["item_queue_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ClientError::Local(format!("the server's answer has no item_queue_id: {answer}")))
}
