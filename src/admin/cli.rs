//! `geoimport user list|show|rotate-key|set|disable|enable|delete|add-key|revoke-key`: the operators' tools
//! on the command line, each printing JSON (`--json`: one line) of what it did.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

use super::AdminError;
use crate::config::StoreArgs;
use crate::source::staging::StagingArea;
use crate::users::keys;
use crate::users::manage::{Limit, LimitChanges};

/// What every account command takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Print one JSON line instead of indented JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug, Clone)]
pub enum AccountCommand {
    /// List users: limits, imports of the last 24 hours, tables, bytes used.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Show one user, with the labels and expiries of its keys.
    Show {
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Give the user a new master key (printed once); the old one stops working at once.
    RotateKey {
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Change the user's limits (`unlimited` lifts the ones that may be absent).
    Set {
        name: String,
        /// Largest file one import may bring, in bytes.
        #[arg(long)]
        max_file_size: Option<i64>,
        /// Imports of the user that may run at once.
        #[arg(long)]
        max_concurrent_imports: Option<i32>,
        /// Most rows one table may have, or `unlimited`.
        #[arg(long, value_parser = limit::<i64>)]
        max_rows: Option<Limit<i64>>,
        /// Most tables the user may have, or `unlimited`.
        #[arg(long, value_parser = limit::<i32>)]
        table_quota: Option<Limit<i32>>,
        /// Most bytes the user's tables may take, or `unlimited`.
        #[arg(long, value_parser = limit::<i64>)]
        quota_bytes: Option<Limit<i64>>,
        #[command(flatten)]
        common: Common,
    },
    /// Disable the user: keys refused (401), unfinished imports failed with 6673, synchronizations paused.
    Disable {
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Enable a disabled user again.
    Enable {
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Delete the user, its imports, synchronizations, keys and staged files.
    Delete {
        name: String,
        /// Drop the user's schema and tables too (otherwise they stay, owned by no account).
        #[arg(long)]
        drop_tables: bool,
        /// Cancel the user's unfinished imports first (otherwise their presence refuses the deletion).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Add a labelled key (printed once), usable like the master key, until it expires.
    AddKey {
        name: String,
        label: String,
        /// When the key stops working (RFC 3339, e.g. 2027-01-31T00:00:00Z). Default: never.
        #[arg(long, value_parser = rfc3339)]
        expires_at: Option<OffsetDateTime>,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a labelled key: it stops working at once.
    RevokeKey {
        name: String,
        label: String,
        #[command(flatten)]
        common: Common,
    },
}

fn limit<T: std::str::FromStr>(text: &str) -> Result<Limit<T>, String> {
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(Limit::Unlimited);
    }
    text.parse().map(Limit::Set).map_err(|_| format!("'{text}' is neither a number nor 'unlimited'"))
}

fn rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|e| e.to_string())
}

fn to_json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl AccountCommand {
    pub fn common(&self) -> &Common {
        match self {
            AccountCommand::List { common }
            | AccountCommand::Show { common, .. }
            | AccountCommand::RotateKey { common, .. }
            | AccountCommand::Set { common, .. }
            | AccountCommand::Disable { common, .. }
            | AccountCommand::Enable { common, .. }
            | AccountCommand::Delete { common, .. }
            | AccountCommand::AddKey { common, .. }
            | AccountCommand::RevokeKey { common, .. } => common,
        }
    }

    /// Runs the command; what it did, as JSON.
    pub async fn run(self, pool: &PgPool, staging: &StagingArea) -> Result<Value, AdminError> {
        Ok(match self {
            AccountCommand::List { .. } => to_json(super::list(pool).await?),
            AccountCommand::Show { name, .. } => to_json(super::show(pool, &name).await?),
            AccountCommand::RotateKey { name, .. } => {
                to_json(keys::rotate_master(pool, &name).await?.ok_or(AdminError::NoUser(name))?)
            }
            AccountCommand::Set {
                name,
                max_file_size,
                max_concurrent_imports,
                max_rows,
                table_quota,
                quota_bytes,
                ..
            } => {
                let changes = LimitChanges {
                    max_file_size,
                    max_concurrent_imports,
                    max_rows_per_table: max_rows.unwrap_or(Limit::Keep),
                    table_quota: table_quota.unwrap_or(Limit::Keep),
                    quota_in_bytes: quota_bytes.unwrap_or(Limit::Keep),
                };
                to_json(super::set_limits(pool, &name, changes).await?)
            }
            AccountCommand::Disable { name, .. } => to_json(super::disable(pool, &name).await?),
            AccountCommand::Enable { name, .. } => to_json(super::enable(pool, &name).await?),
            AccountCommand::Delete { name, drop_tables, force, .. } => {
                to_json(super::delete(pool, staging, &name, drop_tables, force).await?)
            }
            AccountCommand::AddKey { name, label, expires_at, .. } => {
                to_json(keys::add_key(pool, &name, &label, expires_at).await?)
            }
            AccountCommand::RevokeKey { name, label, .. } => {
                if !keys::revoke_key(pool, &name, &label).await? {
                    return Err(AdminError::Invalid(format!("'{name}' has no key labelled '{label}'")));
                }
                json!({ "username": name, "label": label, "revoked": true })
            }
        })
    }
}
