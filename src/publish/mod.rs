//! Publishing: in one transaction, the loaded staging tables move into the user's schema under their final
//! names (after the collision strategy and the quotas have had their say) and the job is marked complete.
//! Either all of that happens or none: a user never sees a table of an import that did not complete, and
//! an import never completes without its tables.

mod raster;
mod replace;
mod schema;

use std::collections::HashSet;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::errors::{ImportError, codes};
use crate::load::LoadedLayer;
use crate::load::names::sanitize_table_name;
use crate::queue::Validators;
use crate::queue::{self, CollisionStrategy, Completion, ImportJob};
use crate::users::User;
use raster::publish_raster;
use replace::replace_table;
use schema::{free_name, move_table, relation_names, table_names};

/// What publishing did.
#[derive(Debug)]
pub struct Published {
    pub table_names: Vec<String>,
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Someone else holds the job now; nothing was changed.
    #[error("the job's lease was lost before publishing")]
    LeaseLost,
    #[error(transparent)]
    Import(#[from] ImportError),
}

impl From<sqlx::Error> for PublishError {
    fn from(e: sqlx::Error) -> Self {
        PublishError::Import(ImportError::new(codes::UNABLE_TO_LOAD, format!("publishing the table failed: {e}")))
    }
}

/// For a sync run: the synchronization whose tables the layers replace.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    pub id: Uuid,
    /// The tables earlier runs made, in layer order.
    pub tables: Vec<String>,
    /// The table name asked for at creation.
    pub name: Option<String>,
    /// The source's validators, kept for the next run's conditional request.
    pub validators: Option<Validators>,
}

/// Publishes `layers` for `job` and completes it, if `owner` still holds it.
pub async fn publish(
    pool: &PgPool,
    job: &ImportJob,
    owner: &str,
    user: &User,
    layers: Vec<LoadedLayer>,
    mut warnings: serde_json::Map<String, serde_json::Value>,
    sync: Option<SyncTarget>,
) -> Result<Published, PublishError> {
    let mut tx = pool.begin().await?;
    // Replacing a table waits for its readers; a reader that runs for long must fail this publish rather
    // than make every new reader of the table queue behind our lock.
    sqlx::query("SET LOCAL lock_timeout = '5s'").execute(&mut *tx).await?;
    if !queue::lock_if_held(&mut tx, job.id, owner).await? {
        return Err(PublishError::LeaseLost);
    }
    // One publisher per user at a time, so two imports cannot pick the same free name.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("geoimport.publish.{}", user.id))
        .execute(&mut *tx)
        .await?;
    let schema = &user.schema_name;
    let mut existing = relation_names(&mut tx, schema).await?;
    let existing_tables = table_names(&mut tx, schema).await?;
    let overwrite = job.collision_strategy == Some(CollisionStrategy::Overwrite);
    let skip = job.collision_strategy == Some(CollisionStrategy::Skip);

    let mut plan: Vec<(LoadedLayer, String, bool)> = Vec::new();
    let mut skipped = Vec::new();
    for (i, layer) in layers.into_iter().enumerate() {
        if let Some(sync) = &sync {
            // A sync run replaces the table an earlier run made; the first run names it.
            if let Some(current) = sync.tables.get(i).filter(|t| existing_tables.contains(*t)) {
                plan.push((layer, current.clone(), true));
                continue;
            }
            let asked = sync.name.as_deref().filter(|_| i == 0).map(sanitize_table_name);
            let name = free_name(&asked.unwrap_or_else(|| layer.proposed_name.clone()), &existing);
            existing.insert(name.clone());
            plan.push((layer, name, false));
            continue;
        }
        let wanted = layer.proposed_name.clone();
        if existing_tables.contains(&wanted) && skip {
            skipped.push(wanted);
            layer.staging.drop(&mut tx).await?;
            continue;
        }
        // Only the first layer of an import may replace a given table; a second with the same name is renamed.
        let replaced_already = plan.iter().any(|(_, name, replaces)| *replaces && *name == wanted);
        if existing_tables.contains(&wanted) && overwrite && !replaced_already {
            if layer.overviews.is_none() || !is_raster_table(&mut tx, schema, &wanted).await? {
                check_compatible(&mut tx, schema, &wanted, &layer).await?;
            }
            plan.push((layer, wanted, true));
            continue;
        }
        let name = free_name(&wanted, &existing);
        existing.insert(name.clone());
        plan.push((layer, name, false));
    }

    check_quotas(&mut tx, user, &plan, &existing_tables).await?;

    let mut names = Vec::new();
    let mut last_table_id = None;
    let mut rows = 0i64;
    let mut rejections = 0i64;
    let mut lost_indexes = Vec::new();
    let any_table_raster = plan.iter().any(|(layer, _, _)| layer.overviews.is_some());
    for (layer, name, replaces) in &plan {
        if let Some(overviews) = &layer.overviews {
            publish_raster(&mut tx, schema, name, &layer.staging, overviews, *replaces, &mut existing).await?;
        } else if *replaces {
            lost_indexes.extend(replace_table(&mut tx, schema, name, layer).await?);
        } else {
            move_table(&mut tx, &layer.staging, schema, name).await?;
        }
        let table_id: Uuid = sqlx::query_scalar(
            "INSERT INTO geoimport.tables (id, user_id, name, import_id, privacy) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, name) DO UPDATE SET import_id = excluded.import_id, \
             privacy = coalesce(excluded.privacy, geoimport.tables.privacy), updated_at = now() RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(user.id)
        .bind(name)
        .bind(job.id)
        .bind(&job.privacy)
        .fetch_one(&mut *tx)
        .await?;
        last_table_id = Some(table_id);
        rows += layer.rows;
        queue::store_rejections(&mut tx, job.id, name, &layer.rejections).await?;
        rejections += layer.rejections.total as i64;
        names.push(name.clone());
    }
    let error_code = (names.is_empty() && !skipped.is_empty()).then_some(codes::ALL_TABLES_SKIPPED);
    if !skipped.is_empty() {
        warnings.insert("skipped_tables".into(), serde_json::json!(skipped));
    }
    if !lost_indexes.is_empty() {
        warnings.insert("indexes_not_recreated".into(), serde_json::json!(lost_indexes));
    }
    if let Some(sync) = &sync {
        queue::record_success(&mut tx, sync.id, sync.validators.as_ref(), Some(&names)).await?;
    }
    let done = Completion {
        table_id: last_table_id,
        table_names: names.clone(),
        rows_imported: rows,
        rejections,
        error_code,
        warnings: (!warnings.is_empty()).then_some(serde_json::Value::Object(warnings)),
        any_table_raster,
    };
    if !queue::mark_complete(&mut tx, job.id, owner, &done).await? {
        return Err(PublishError::LeaseLost);
    }
    tx.commit().await?;
    Ok(Published { table_names: names, skipped })
}

/// Whether the schema's table `name` is a raster table (a raster replaces only another raster).
async fn is_raster_table(conn: &mut PgConnection, schema: &str, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM raster_columns WHERE r_table_schema = $1 AND r_table_name = $2)")
        .bind(schema)
        .bind(name)
        .fetch_one(conn)
        .await
}

/// Overwriting keeps what depends on the table's shape working: every column of the existing table must
/// exist in the new data with the same type.
async fn check_compatible(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    layer: &LoadedLayer,
) -> Result<(), ImportError> {
    let columns = |schema: String, table: String| {
        sqlx::query_as::<_, (String, String)>(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
        )
        .bind(schema)
        .bind(table)
    };
    let old = columns(schema.to_string(), table.to_string()).fetch_all(&mut *conn).await.map_err(db)?;
    let new: HashSet<(String, String)> = columns(crate::load::table::STAGING_SCHEMA.into(), layer.staging.name.clone())
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
    let missing: Vec<String> =
        old.iter().filter(|c| !new.contains(c)).map(|(name, ty)| format!("{name} ({ty})")).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ImportError::new(
            codes::INCOMPATIBLE_SCHEMAS,
            format!(
                "the new data of table {table} lacks these columns, or has them with another type: {}",
                missing.join(", ")
            ),
        ))
    }
}

fn db(e: sqlx::Error) -> ImportError {
    ImportError::new(codes::UNABLE_TO_LOAD, format!("reading the table definition failed: {e}"))
}

/// Table quota (8002) and storage quota (8001), counting what this import adds.
async fn check_quotas(
    conn: &mut PgConnection,
    user: &User,
    plan: &[(LoadedLayer, String, bool)],
    existing_tables: &HashSet<String>,
) -> Result<(), PublishError> {
    if let Some(quota) = user.table_quota {
        let added = plan.iter().filter(|(_, _, replaces)| !replaces).count();
        if existing_tables.len() + added > quota as usize {
            return Err(ImportError::new(
                codes::TABLE_QUOTA,
                format!(
                    "you have {} tables, this import adds {added}, and your limit is {quota}",
                    existing_tables.len()
                ),
            )
            .into());
        }
    }
    if let Some(quota) = user.quota_in_bytes {
        let used = crate::users::storage_used(&mut *conn, user).await?;
        let mut added = 0i64;
        for (layer, _, _) in plan {
            let size: i64 = sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
                .bind(layer.staging.qualified())
                .fetch_one(&mut *conn)
                .await?;
            added += size;
        }
        if used + added > quota {
            return Err(ImportError::new(
                codes::STORAGE_QUOTA,
                format!(
                    "the new tables take {added} bytes; with the {used} bytes in use that exceeds your quota of {quota}"
                ),
            )
            .into());
        }
    }
    Ok(())
}
