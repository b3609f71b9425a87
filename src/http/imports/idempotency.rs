//! `Idempotency-Key` on `POST /api/v1/imports` (the IETF httpapi draft): a client that retries a request
//! whose answer it never got receives the import the first attempt created, not a second one.
//!
//! The key is recorded in the transaction that commits the import, under a primary key per user: of two
//! racing requests with one key, the second waits for the first to commit and then finds its import. A key
//! reused for a different request (other parameters or another file) is refused with 422. Keys live a day.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::params::ParamBag;
use crate::http::error::ApiError;
use crate::queue;

pub const HEADER: &str = "idempotency-key";

/// A request's key and the fingerprint of what it asks for.
pub struct IdempotencyKey {
    key: String,
    fingerprint: String,
}

/// The key the request carries, if any: an RFC 8941 string (`"..."`), or the bare value that many clients
/// send; printable ASCII, at most 255 characters.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    let key = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ApiError::bad_import("Idempotency-Key must be 1 to 255 printable ASCII characters"));
    }
    Ok(Some(key.to_string()))
}

impl IdempotencyKey {
    /// `file` is the uploaded file's name and the digest of its bytes.
    pub fn new(key: String, params: &ParamBag, file: Option<(&str, String)>) -> IdempotencyKey {
        let mut hash = Sha256::new();
        hash.update(params.fingerprint_text());
        if let Some((name, digest)) = file {
            hash.update([0]);
            hash.update(name);
            hash.update([0]);
            hash.update(digest);
        }
        IdempotencyKey { key, fingerprint: hex::encode(hash.finalize()) }
    }

    /// Records the key for `import_id` in the caller's transaction, after the import row. Returns the
    /// import an earlier request with this key created (the caller then rolls back and answers with it).
    pub async fn claim(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        import_id: Uuid,
    ) -> Result<Option<Uuid>, ApiError> {
        let Some((fingerprint, earlier)) =
            queue::claim_idempotency_key(conn, user_id, &self.key, &self.fingerprint, import_id).await?
        else {
            return Ok(None);
        };
        if fingerprint != self.fingerprint {
            return Err(self.reused());
        }
        Ok(Some(earlier))
    }

    /// The import an earlier request with this key created, if one did (422 when it asked for something
    /// else): what a retry gets when the first attempt consumed its source, a resumable upload.
    pub async fn earlier(&self, conn: &mut PgConnection, user_id: Uuid) -> Result<Option<Uuid>, ApiError> {
        match queue::find_idempotency_key(conn, user_id, &self.key).await? {
            Some((fingerprint, _)) if fingerprint != self.fingerprint => Err(self.reused()),
            Some((_, earlier)) => Ok(Some(earlier)),
            None => Ok(None),
        }
    }

    fn reused(&self) -> ApiError {
        ApiError::Unprocessable(format!(
            "the Idempotency-Key '{}' was already used for a different request (other parameters or another \
             file); use a new key for a new import",
            self.key
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sf_strings_or_bare_printable_ascii() {
        let mut h = HeaderMap::new();
        assert_eq!(key_from(&h).unwrap(), None);
        h.insert(HEADER, "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"".parse().unwrap());
        assert_eq!(key_from(&h).unwrap().as_deref(), Some("8e03978e-40d5-43e8-bc93-6894a57f9324"));
        h.insert(HEADER, "retry-42".parse().unwrap());
        assert_eq!(key_from(&h).unwrap().as_deref(), Some("retry-42"));
        for bad in ["\"\"", "", &"k".repeat(256)] {
            h.insert(HEADER, bad.parse().unwrap());
            assert!(key_from(&h).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_fingerprint_ignores_the_api_key_but_not_the_file() {
        let a = ParamBag::from_query(Some("api_key=one&type_guessing=false"));
        let b = ParamBag::from_query(Some("type_guessing=false&api_key=two"));
        let fp = |bag: &ParamBag, d: &str| IdempotencyKey::new("k".into(), bag, Some(("a.csv", d.into()))).fingerprint;
        assert_eq!(fp(&a, "d1"), fp(&b, "d1"));
        assert_ne!(fp(&a, "d1"), fp(&a, "d2"));
        let c = ParamBag::from_query(Some("type_guessing=true"));
        assert_ne!(fp(&a, "d1"), fp(&c, "d1"));
    }

    #[test]
    fn no_password_reaches_the_fingerprint() {
        let mut bag = ParamBag::default();
        let connector = r#"{"connector": {"provider": "mysql", "table": "t",
            "Connection": {"server": "db.example.com", "username": "u", "PassWord": "hunter2"}}}"#;
        bag.merge_json(connector.as_bytes()).unwrap();
        let text = bag.fingerprint_text();
        assert!(!text.contains("hunter2") && !text.to_lowercase().contains("password"), "{text}");
        assert!(text.contains("db.example.com"), "{text}");
    }
}
