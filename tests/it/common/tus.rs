//! The tus protocol spoken by hand, request by request, for the tests that need to see each answer (or
//! to send what no well-behaved client sends); tests/it/tus/resume.py drives the real client, tuspy.

use base64::Engine;
use reqwest::{Method, Response};
use serde_json::Value;
use uuid::Uuid;

use super::{TestUser, http_client};

/// A user's view of `/api/v1/uploads` on the server at `base`.
pub struct Tus<'a> {
    pub base: String,
    pub user: &'a TestUser,
    client: reqwest::Client,
}

/// `Authorization: Basic` for `user`: what tus clients send, since they keep headers (not the query) for
/// the URL the server gives back.
pub fn basic(user: &TestUser) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.name, user.key));
    format!("Basic {token}")
}

impl<'a> Tus<'a> {
    pub fn new(base: &str, user: &'a TestUser) -> Tus<'a> {
        Tus { base: base.to_string(), user, client: http_client() }
    }

    /// A request to `path` (under the base) with the key and `Tus-Resumable: 1.0.0`.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", basic(self.user))
            .header("Tus-Resumable", "1.0.0")
    }

    /// POST: an upload of `length` bytes named `file_name`; the answer as it came.
    pub async fn create(&self, length: u64, file_name: &str) -> Response {
        let name = base64::engine::general_purpose::STANDARD.encode(file_name);
        let resp = self
            .request(Method::POST, "/api/v1/uploads")
            .header("Upload-Length", length.to_string())
            .header("Upload-Metadata", format!("filename {name}"))
            .send()
            .await
            .unwrap();
        assert_tus(&resp);
        resp
    }

    /// POST, asserting 201; the upload's id.
    pub async fn created(&self, length: u64, file_name: &str) -> Uuid {
        let resp = self.create(length, file_name).await;
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap_or_default());
        let location = header(&resp, "location").unwrap();
        location.rsplit('/').next().unwrap().parse().unwrap()
    }

    pub async fn head(&self, id: Uuid) -> Response {
        let resp = self.request(Method::HEAD, &format!("/api/v1/uploads/{id}")).send().await.unwrap();
        assert_tus(&resp);
        resp
    }

    /// The offset HEAD gives (asserting 200).
    pub async fn offset(&self, id: Uuid) -> u64 {
        let resp = self.head(id).await;
        assert_eq!(resp.status(), 200);
        header(&resp, "upload-offset").unwrap().parse().unwrap()
    }

    pub async fn patch(&self, id: Uuid, offset: u64, bytes: Vec<u8>) -> Response {
        let resp = self
            .request(Method::PATCH, &format!("/api/v1/uploads/{id}"))
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_tus(&resp);
        resp
    }

    /// PATCH, asserting 204; the new offset.
    pub async fn patched(&self, id: Uuid, offset: u64, bytes: &[u8]) -> u64 {
        let resp = self.patch(id, offset, bytes.to_vec()).await;
        assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap_or_default());
        header(&resp, "upload-offset").unwrap().parse().unwrap()
    }

    pub async fn delete(&self, id: Uuid) -> Response {
        let resp = self.request(Method::DELETE, &format!("/api/v1/uploads/{id}")).send().await.unwrap();
        assert_tus(&resp);
        resp
    }

    /// Sends all of `bytes` to a new upload, in pieces of `piece` bytes; its id.
    pub async fn upload_all(&self, bytes: &[u8], file_name: &str, piece: usize) -> Uuid {
        let id = self.created(bytes.len() as u64, file_name).await;
        let mut offset = 0;
        for chunk in bytes.chunks(piece) {
            offset = self.patched(id, offset, chunk).await;
        }
        assert_eq!(offset, bytes.len() as u64);
        id
    }

    /// `POST /api/v1/imports` of upload `id` with `params` (a JSON object) added.
    pub async fn import(&self, id: Uuid, params: Value, idempotency_key: Option<&str>) -> Response {
        let mut body = params;
        body["upload_id"] = Value::String(id.to_string());
        let mut request =
            self.client.post(format!("{}/api/v1/imports?api_key={}", self.base, self.user.key)).json(&body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.unwrap()
    }

    /// Imports upload `id`, asserting it is queued; the import's id.
    pub async fn imported(&self, id: Uuid, params: Value) -> Uuid {
        let resp = self.import(id, params, None).await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
        resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap()
    }
}

pub fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}

/// Every answer of the tus routes, errors included, names the protocol's version.
pub fn assert_tus(resp: &Response) {
    assert_eq!(header(resp, "tus-resumable").as_deref(), Some("1.0.0"), "{} without Tus-Resumable", resp.status());
}
