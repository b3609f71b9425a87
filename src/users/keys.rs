//! API keys: 160 random bits shown once (40 hex characters, the shape CARTO's keys have, so that clients
//! that validate keys accept ours), stored as their SHA-256 only. Each user has a master key (rotated by an
//! operator: the old one stops working at once) and may have labelled keys with an expiry, each usable
//! exactly like the master key, so that a key can be rolled without downtime.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn new_key() -> String {
    let mut raw = [0u8; 20];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

pub fn key_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// A key as shown once, when it is made.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub username: String,
    /// `master`, or the label given.
    pub label: String,
    pub api_key: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A labelled key as listed: never the key itself.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeyInfo {
    pub label: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// Gives the user a new master key; the old one stops working with this statement. None: no such user.
pub async fn rotate_master(pool: &PgPool, username: &str) -> Result<Option<IssuedKey>, sqlx::Error> {
    let api_key = new_key();
    let updated = sqlx::query("UPDATE geoimport.users SET api_key_hash = $2 WHERE username = $1")
        .bind(username)
        .bind(key_hash(&api_key))
        .execute(pool)
        .await?;
    Ok((updated.rows_affected() == 1).then(|| IssuedKey {
        username: username.to_string(),
        label: "master".into(),
        api_key,
        expires_at: None,
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no user named '{0}'")]
    NoUser(String),
    #[error("'{0}' already has a key labelled '{1}'")]
    LabelTaken(String, String),
    #[error("a key's label is 1 to 64 printable characters, and not 'master'")]
    BadLabel,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Adds a labelled key to the user, valid until `expires_at` (for ever without one).
pub async fn add_key(
    pool: &PgPool,
    username: &str,
    label: &str,
    expires_at: Option<OffsetDateTime>,
) -> Result<IssuedKey, KeyError> {
    let label_ok = !label.is_empty() && label.len() <= 64 && !label.chars().any(char::is_control);
    if !label_ok || label == "master" {
        return Err(KeyError::BadLabel);
    }
    let api_key = new_key();
    let inserted = sqlx::query(
        "INSERT INTO geoimport.api_keys (id, user_id, label, key_hash, expires_at) \
         SELECT $1, id, $3, $4, $5 FROM geoimport.users WHERE username = $2 ON CONFLICT (user_id, label) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(username)
    .bind(label)
    .bind(key_hash(&api_key))
    .bind(expires_at)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM geoimport.users WHERE username = $1)")
            .bind(username)
            .fetch_one(pool)
            .await?;
        return Err(if exists {
            KeyError::LabelTaken(username.into(), label.into())
        } else {
            KeyError::NoUser(username.into())
        });
    }
    Ok(IssuedKey { username: username.to_string(), label: label.to_string(), api_key, expires_at })
}

/// Revokes the user's key labelled `label`: it stops working at once. False: no such key.
pub async fn revoke_key(pool: &PgPool, username: &str, label: &str) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM geoimport.api_keys k USING geoimport.users u \
         WHERE k.user_id = u.id AND u.username = $1 AND k.label = $2",
    )
    .bind(username)
    .bind(label)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected() > 0)
}

/// The user's labelled keys, oldest first.
pub async fn list_keys(pool: &PgPool, user_id: Uuid) -> Result<Vec<KeyInfo>, sqlx::Error> {
    sqlx::query_as(
        "SELECT label, created_at, expires_at FROM geoimport.api_keys WHERE user_id = $1 ORDER BY created_at",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_forty_hex_characters_and_never_repeat() {
        let (a, b) = (super::new_key(), super::new_key());
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
