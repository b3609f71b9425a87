//! What operators change about accounts: their limits, whether they are disabled, and the numbers they look
//! at (tables, bytes). What this means for a user's imports and syncs is `admin`'s.

use sqlx::{AssertSqlSafe, PgPool};

use super::{USER_COLUMNS, User};

/// A limit an operator sets: a value, or none (unlimited) for the limits that may be absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit<T> {
    Keep,
    Set(T),
    Unlimited,
}

/// New limits for a user; `Keep` leaves one as it is.
#[derive(Debug, Clone, Copy)]
pub struct LimitChanges {
    pub max_file_size: Option<i64>,
    pub max_concurrent_imports: Option<i32>,
    pub max_rows_per_table: Limit<i64>,
    pub table_quota: Limit<i32>,
    pub quota_in_bytes: Limit<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("no user named '{0}'")]
    NoUser(String),
    #[error("{0} must be at least {1}")]
    TooSmall(&'static str, i64),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// The user named `username`.
pub async fn find_by_name(pool: &PgPool, username: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM geoimport.users WHERE username = $1")))
        .bind(username)
        .fetch_optional(pool)
        .await
}

/// Every user, by name.
pub async fn all_users(pool: &PgPool) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM geoimport.users ORDER BY username")))
        .fetch_all(pool)
        .await
}

/// The tables in the user's schema.
pub async fn table_count(pool: &PgPool, user: &User) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = $1")
        .bind(&user.schema_name)
        .fetch_one(pool)
        .await
}

/// Applies `changes` to the user's limits; returns the user as it now is.
pub async fn set_limits(pool: &PgPool, username: &str, changes: LimitChanges) -> Result<User, ManageError> {
    if let Some(size) = changes.max_file_size.filter(|s| *s < 1) {
        return Err(ManageError::TooSmall("max_file_size", size.min(1)));
    }
    if changes.max_concurrent_imports.is_some_and(|n| n < 1) {
        return Err(ManageError::TooSmall("max_concurrent_imports", 1));
    }
    // (keep?, value) per nullable limit: CASE keeps the column when asked to.
    fn pair<T: Copy>(l: Limit<T>) -> (bool, Option<T>) {
        match l {
            Limit::Keep => (true, None),
            Limit::Set(v) => (false, Some(v)),
            Limit::Unlimited => (false, None),
        }
    }
    let (keep_rows, rows) = pair(changes.max_rows_per_table);
    let (keep_tables, tables) = pair(changes.table_quota);
    let (keep_bytes, bytes) = pair(changes.quota_in_bytes);
    let user = sqlx::query_as::<_, User>(AssertSqlSafe(format!(
        "UPDATE geoimport.users SET \
           max_file_size = coalesce($2, max_file_size), \
           max_concurrent_imports = coalesce($3, max_concurrent_imports), \
           max_rows_per_table = CASE WHEN $4 THEN max_rows_per_table ELSE $5 END, \
           table_quota = CASE WHEN $6 THEN table_quota ELSE $7 END, \
           quota_in_bytes = CASE WHEN $8 THEN quota_in_bytes ELSE $9 END \
         WHERE username = $1 RETURNING {USER_COLUMNS}"
    )))
    .bind(username)
    .bind(changes.max_file_size)
    .bind(changes.max_concurrent_imports)
    .bind(keep_rows)
    .bind(rows)
    .bind(keep_tables)
    .bind(tables)
    .bind(keep_bytes)
    .bind(bytes)
    .fetch_optional(pool)
    .await?;
    user.ok_or_else(|| ManageError::NoUser(username.to_string()))
}

/// Disables or enables the account; returns the user as it now is.
pub async fn set_disabled(pool: &PgPool, username: &str, disabled: bool) -> Result<User, ManageError> {
    let user = sqlx::query_as::<_, User>(AssertSqlSafe(format!(
        "UPDATE geoimport.users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END \
         WHERE username = $1 RETURNING {USER_COLUMNS}"
    )))
    .bind(username)
    .bind(disabled)
    .fetch_optional(pool)
    .await?;
    user.ok_or_else(|| ManageError::NoUser(username.to_string()))
}

/// Removes the user's row (its imports, synchronizations, keys and table records go with it).
pub async fn delete_row(pool: &PgPool, user: &User) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM geoimport.users WHERE id = $1").bind(user.id).execute(pool).await?;
    Ok(())
}

/// Drops the user's schema and every table in it.
pub async fn drop_schema(pool: &PgPool, user: &User) -> Result<(), sqlx::Error> {
    let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", crate::db::quote_ident(&user.schema_name));
    sqlx::query(AssertSqlSafe(sql)).execute(pool).await?;
    Ok(())
}
