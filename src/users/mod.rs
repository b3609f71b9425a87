//! Accounts: creating a user (with its schema and master API key), finding the user behind a key (the master
//! key or one of the labelled keys of [`keys`]), and what operators change ([`manage`]).

pub mod keys;
pub mod manage;

use sqlx::AssertSqlSafe;
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::db::quote_ident;

/// A user as the API and the workers see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub schema_name: String,
    pub max_file_size: i64,
    pub max_concurrent_imports: i32,
    pub max_rows_per_table: Option<i64>,
    pub table_quota: Option<i32>,
    pub quota_in_bytes: Option<i64>,
    /// Bytes of uploaded files the user's unfinished imports may hold together.
    pub max_staged_bytes: i64,
    /// Unfinished imports the user may have.
    pub max_pending_imports: i32,
    /// The most rows a connector import of this user reads.
    pub max_rows_per_connection: i64,
    /// Set while an operator has disabled the account: its keys are refused, its syncs do not run.
    pub disabled_at: Option<time::OffsetDateTime>,
    pub created_at: time::OffsetDateTime,
}

const USER_COLUMNS: &str = "id, username, schema_name, max_file_size, max_concurrent_imports, \
                            max_rows_per_table, table_quota, quota_in_bytes, max_staged_bytes, max_pending_imports, \
                            max_rows_per_connection, disabled_at, created_at";

/// What `user create` prints: the key is shown once and never stored.
#[derive(Debug, serde::Serialize)]
pub struct NewUser {
    pub id: Uuid,
    pub username: String,
    pub api_key: String,
}

/// What a new user may do: the server's defaults, and the limits given to this user alone.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_file_size: i64,
    pub max_concurrent_imports: i32,
    pub max_staged_bytes: i64,
    pub max_pending_imports: i32,
    pub extra: ExtraLimits,
}

/// Limits to give a new user beyond the server-wide defaults.
#[derive(Debug, Default, Clone)]
pub struct ExtraLimits {
    pub max_rows_per_table: Option<i64>,
    pub table_quota: Option<i32>,
    pub quota_in_bytes: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("invalid username '{0}': use 1 to 40 lowercase letters, digits, '_' or '-', starting with a letter")]
    InvalidName(String),
    #[error("the username '{0}' is reserved")]
    Reserved(String),
    #[error("a user named '{0}' already exists")]
    Exists(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Schemas a username may not take: they belong to PostgreSQL, PostGIS or geoimport.
const RESERVED_NAMES: &[&str] =
    &["public", "geoimport", "geoimport_staging", "information_schema", "topology", "tiger", "postgis", "postgres"];

fn validate_username(name: &str) -> Result<(), UserError> {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if name.is_empty() || name.len() > 40 || !ok_chars || !starts_with_letter {
        return Err(UserError::InvalidName(name.to_string()));
    }
    if RESERVED_NAMES.contains(&name) || name.starts_with("pg_") {
        return Err(UserError::Reserved(name.to_string()));
    }
    Ok(())
}

/// Creates a user, its schema and a fresh master API key, in one transaction.
pub async fn create_user(pool: &PgPool, username: &str, limits: &Limits) -> Result<NewUser, UserError> {
    validate_username(username)?;
    let api_key = keys::new_key();
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO geoimport.users (id, username, api_key_hash, schema_name, max_file_size, \
         max_concurrent_imports, max_rows_per_table, table_quota, quota_in_bytes, max_staged_bytes, \
         max_pending_imports) \
         VALUES ($1, $2, $3, $2, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(username)
    .bind(keys::key_hash(&api_key))
    .bind(limits.max_file_size)
    .bind(limits.max_concurrent_imports)
    .bind(limits.extra.max_rows_per_table)
    .bind(limits.extra.table_quota)
    .bind(limits.extra.quota_in_bytes)
    .bind(limits.max_staged_bytes)
    .bind(limits.max_pending_imports)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(UserError::Exists(username.to_string()));
    }
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(username))))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(NewUser { id, username: username.to_string(), api_key })
}

/// What a key proves.
#[derive(Debug)]
pub enum KeyCheck {
    User(User),
    /// The key is the user's, but an operator disabled the account.
    Disabled(String),
    Unknown,
}

/// The user owning `api_key` (the master key, or a labelled key not expired). When the request named a user
/// (HTTP Basic or a `/user/<name>/` path), the key must belong to that user.
pub async fn authenticate(pool: &PgPool, api_key: &str, username: Option<&str>) -> Result<KeyCheck, sqlx::Error> {
    let hash = keys::key_hash(api_key);
    let master = sqlx::query_as::<_, StoredUser>(AssertSqlSafe(format!(
        "SELECT api_key_hash, {USER_COLUMNS} FROM geoimport.users WHERE api_key_hash = $1"
    )))
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    let found = match master {
        Some(m) => Some(m),
        None => key_owner(pool, &hash).await?,
    };
    let Some(StoredUser { api_key_hash: stored, user }) = found else {
        return Ok(KeyCheck::Unknown);
    };
    // The index lookup already matched; comparing again in constant time keeps the final decision free of
    // timing differences whatever the database does.
    let key_matches: bool = stored.ct_eq(&hash).into();
    let name_matches = username.is_none_or(|n| n == user.username);
    Ok(match (key_matches && name_matches, user.disabled_at.is_some()) {
        (false, _) => KeyCheck::Unknown,
        (true, true) => KeyCheck::Disabled(user.username),
        (true, false) => KeyCheck::User(user),
    })
}

/// The owner of a labelled key that has not expired.
async fn key_owner(pool: &PgPool, hash: &[u8]) -> Result<Option<StoredUser>, sqlx::Error> {
    sqlx::query_as::<_, StoredUser>(AssertSqlSafe(format!(
        "SELECT k.key_hash AS api_key_hash, u.* FROM geoimport.api_keys k \
         JOIN (SELECT {USER_COLUMNS} FROM geoimport.users) u ON u.id = k.user_id \
         WHERE k.key_hash = $1 AND (k.expires_at IS NULL OR k.expires_at > now())"
    )))
    .bind(hash)
    .fetch_optional(pool)
    .await
}

/// Loads a user by id (workers need the limits of a job's owner).
pub async fn find_by_id(pool: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM geoimport.users WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

#[derive(sqlx::FromRow)]
pub(crate) struct StoredUser {
    api_key_hash: Vec<u8>,
    #[sqlx(flatten)]
    user: User,
}

/// The bytes a user's tables take (what their storage quota counts).
pub async fn storage_used<'e>(db: impl sqlx::PgExecutor<'e>, user: &User) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(pg_total_relation_size(format('%I.%I', schemaname, tablename)::regclass)), 0)::bigint \
         FROM pg_tables WHERE schemaname = $1",
    )
    .bind(&user.schema_name)
    .fetch_one(db)
    .await
}

/// What a user may still import before their storage quota is reached; None without a quota.
pub async fn storage_left(pool: &PgPool, user: &User) -> Result<Option<u64>, sqlx::Error> {
    let Some(quota) = user.quota_in_bytes else { return Ok(None) };
    Ok(Some((quota - storage_used(pool, user).await?).max(0) as u64))
}

/// The key user `id`'s webhook deliveries are signed with (HMAC-SHA256): made, 32 random bytes in hex,
/// the first time it is asked for.
pub async fn webhook_secret(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    sqlx::query_scalar(
        // Written only the first time: every delivery asks for it.
        "WITH made AS (UPDATE geoimport.users SET webhook_secret = $2 WHERE id = $1 AND webhook_secret IS NULL \
                       RETURNING webhook_secret) \
         SELECT coalesce((SELECT webhook_secret FROM made), webhook_secret) FROM geoimport.users WHERE id = $1",
    )
    .bind(id)
    .bind(fresh)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("team-gis_2").is_ok());
        assert!(validate_username("Alice").is_err());
        assert!(validate_username("1abc").is_err());
        assert!(validate_username("").is_err());
        assert!(validate_username("a\"b").is_err());
        assert!(matches!(validate_username("public"), Err(UserError::Reserved(_))));
        assert!(matches!(validate_username("pg_foo"), Err(UserError::Reserved(_))));
    }
}
