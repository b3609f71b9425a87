//! Operators' tools, shared by `geoimport user …` and `/api/v1/admin/users…`: what an account looks like to
//! an operator, and what disabling or deleting one does to its imports, synchronizations and files. The
//! command line of these operations is [`cli`].

pub mod cli;

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::errors::{ImportError, codes};
use crate::queue;
use crate::source::staging::StagingArea;
use crate::users::keys::{self, KeyInfo};
use crate::users::manage::{self, ManageError};
use crate::users::{self, User};

/// An account as operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    pub username: String,
    pub id: uuid::Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When an operator disabled it; null while enabled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    pub limits: AccountLimits,
    /// Imports created in the last 24 hours.
    pub imports_24h: i64,
    /// Imports not yet complete or failed.
    pub unfinished_imports: i64,
    pub tables: i64,
    /// Bytes the user's tables take (what `quota_in_bytes` counts).
    pub bytes_used: i64,
    /// Labelled keys beside the master key (never the keys themselves).
    pub keys: Vec<KeyInfo>,
}

/// A user's limits; null means unlimited.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLimits {
    pub max_file_size: i64,
    pub max_concurrent_imports: i32,
    pub max_rows_per_table: Option<i64>,
    pub table_quota: Option<i32>,
    pub quota_in_bytes: Option<i64>,
    pub max_staged_bytes: i64,
    pub max_pending_imports: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user named '{0}'")]
    NoUser(String),
    #[error("'{0}' has {1} imports still running or waiting: wait for them, or force (they are cancelled first)")]
    Busy(String, i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl From<ManageError> for AdminError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::NoUser(name) => AdminError::NoUser(name),
            ManageError::Sql(e) => AdminError::Sql(e),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

impl From<keys::KeyError> for AdminError {
    fn from(e: keys::KeyError) -> Self {
        match e {
            keys::KeyError::NoUser(name) => AdminError::NoUser(name),
            keys::KeyError::Sql(e) => AdminError::Sql(e),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

async fn account_of(pool: &PgPool, user: User) -> Result<Account, sqlx::Error> {
    Ok(Account {
        imports_24h: queue::imports_since(pool, user.id, 24).await?,
        unfinished_imports: queue::unfinished_of_user(pool, user.id).await?,
        tables: manage::table_count(pool, &user).await?,
        bytes_used: users::storage_used(pool, &user).await?,
        keys: keys::list_keys(pool, user.id).await?,
        limits: AccountLimits {
            max_file_size: user.max_file_size,
            max_concurrent_imports: user.max_concurrent_imports,
            max_rows_per_table: user.max_rows_per_table,
            table_quota: user.table_quota,
            quota_in_bytes: user.quota_in_bytes,
            max_staged_bytes: user.max_staged_bytes,
            max_pending_imports: user.max_pending_imports,
        },
        username: user.username,
        id: user.id,
        created_at: user.created_at,
        disabled_at: user.disabled_at,
    })
}

/// Every account, by name.
pub async fn list(pool: &PgPool) -> Result<Vec<Account>, AdminError> {
    let mut accounts = Vec::new();
    for user in manage::all_users(pool).await? {
        accounts.push(account_of(pool, user).await?);
    }
    Ok(accounts)
}

/// The account named `username`.
pub async fn show(pool: &PgPool, username: &str) -> Result<Account, AdminError> {
    let user = manage::find_by_name(pool, username).await?.ok_or_else(|| AdminError::NoUser(username.into()))?;
    Ok(account_of(pool, user).await?)
}

/// Sets the account's limits.
pub async fn set_limits(pool: &PgPool, username: &str, changes: manage::LimitChanges) -> Result<Account, AdminError> {
    let user = manage::set_limits(pool, username, changes).await?;
    Ok(account_of(pool, user).await?)
}

/// Disables the account: its keys are refused from now on, its unfinished imports fail with 6673, and its
/// synchronizations wait (they run again once it is enabled).
pub async fn disable(pool: &PgPool, username: &str) -> Result<Account, AdminError> {
    let user = manage::set_disabled(pool, username, true).await?;
    let error = ImportError::new(codes::ACCOUNT_DISABLED, "the account was disabled by an operator");
    let stopped = queue::fail_unfinished_of_user(pool, user.id, &error).await?;
    tracing::info!(user = %username, stopped, "account disabled");
    Ok(account_of(pool, user).await?)
}

/// Enables a disabled account again.
pub async fn enable(pool: &PgPool, username: &str) -> Result<Account, AdminError> {
    let user = manage::set_disabled(pool, username, false).await?;
    tracing::info!(user = %username, "account enabled");
    Ok(account_of(pool, user).await?)
}

/// What deleting an account did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub username: String,
    /// Unfinished imports cancelled first (with `force`).
    pub imports_stopped: u64,
    /// Whether the user's schema and tables were dropped; if not, they stay, owned by no account.
    pub tables_dropped: bool,
}

/// Deletes the account: its imports, resumable uploads, synchronizations, keys and staged files; with
/// `drop_tables`, its schema and tables too. Refused while imports run or wait, unless `force`, which fails them first.
pub async fn delete(
    pool: &PgPool,
    staging: &StagingArea,
    username: &str,
    drop_tables: bool,
    force: bool,
) -> Result<Deleted, AdminError> {
    let user = manage::find_by_name(pool, username).await?.ok_or_else(|| AdminError::NoUser(username.into()))?;
    let unfinished = queue::unfinished_of_user(pool, user.id).await?;
    if unfinished > 0 && !force {
        return Err(AdminError::Busy(username.into(), unfinished));
    }
    let error = ImportError::new(codes::ACCOUNT_DISABLED, "the account was deleted by an operator");
    let imports_stopped = queue::fail_unfinished_of_user(pool, user.id, &error).await?;
    for job in queue::jobs_of_user(pool, user.id).await? {
        staging.remove_job(job).await;
    }
    for upload in queue::uploads_of_user(pool, user.id).await? {
        staging.remove_upload(upload).await;
    }
    manage::delete_row(pool, &user).await?;
    if drop_tables {
        manage::drop_schema(pool, &user).await?;
    }
    tracing::info!(user = %username, imports_stopped, drop_tables, "account deleted");
    Ok(Deleted { username: username.into(), imports_stopped, tables_dropped: drop_tables })
}
