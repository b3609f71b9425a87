//! Bearer tokens of the operator routes (`/metrics`, `/api/v1/admin/...`).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `Authorization: Bearer <token>` carries exactly `token`. Both sides are hashed first and the
/// digests compared in constant time, so neither the position of the first wrong byte nor the token's
/// length shows in the answer's timing. Nothing is trimmed: a token with other bytes is another token.
pub fn carries_token(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers.get(AUTHORIZATION).map(|v| v.as_bytes()) else { return false };
    let Some(given) = given.strip_prefix(b"Bearer ") else { return false };
    Sha256::digest(given).ct_eq(&Sha256::digest(token.as_bytes())).into()
}
