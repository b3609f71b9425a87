//! Reading from MySQL and MariaDB: the table or query runs as a prepared statement, whose binary-protocol
//! rows stream from the server (never the whole result in memory) and are written as binary COPY chunks
//! while they arrive. The prepared protocol is about twice as fast as the text protocol, and its values
//! need no parsing.
//!
//! The whole read is one READ ONLY transaction: a consistent snapshot, and a `sql_query` that tries to
//! change data fails instead.

mod columns;
mod encode;
mod values;

use std::collections::HashMap;

use futures_util::TryStreamExt;
use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{AssertSqlSafe, Column, Executor, Row, SqlSafeStr, Statement};
use tokio::sync::mpsc;

use self::columns::{Declared, Mapping, Reading, SourceZone};
use self::encode::{Field, GeometryPlan, RowPlan};
use super::connect::{self, SourceError};
use super::job::{ConnectorJob, clean_query, pick_columns, retyped_columns, source_read_error};
use super::load::{self, Finishing, Tally};
use super::relay::Progress;
use super::shape::{self, GeometryFrom, SourceColumn};
use crate::errors::ImportError;
use crate::load::copy::{CHUNK_BYTES, CHUNKS_IN_FLIGHT, CopyBuffer};
use crate::load::table::{PgType, StagingTable, TableColumn};
use crate::load::{LoadContext, LoadedLayer};

/// Backquotes a MySQL identifier.
fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A result column as the prepared statement describes it.
struct ResultColumn {
    name: String,
    wire: String,
    /// (schema, table, column) when it comes straight from a table.
    origin: Option<(String, String, String)>,
}

/// The columns of the statement's result, with their wire types and origins.
async fn describe(conn: &mut MySqlConnection, sql: &str) -> Result<Vec<ResultColumn>, sqlx::Error> {
    let statement = conn.prepare(AssertSqlSafe(sql.to_string()).into_sql_str()).await?;
    Ok(statement
        .columns()
        .iter()
        .map(|col| ResultColumn {
            name: col.name().to_string(),
            wire: col.type_info().to_string(),
            origin: col.origin().table_column().and_then(|t| {
                let (schema, table) = t.table.split_once('.')?;
                Some((schema.to_string(), table.to_string(), t.name.to_string()))
            }),
        })
        .collect())
}

/// How each row is read: the key, the geometry and the data `fields`, from the shape of the `kept` columns.
fn row_plan(
    shape: &shape::Shape,
    kept: &[usize],
    mappings: &[Mapping],
    fields: Vec<Field>,
    encoding: Option<&'static encoding_rs::Encoding>,
) -> RowPlan {
    let reading = |k: usize| (kept[k], mappings[kept[k]].reading);
    let geometry = match shape.geometry {
        GeometryFrom::None => GeometryPlan::None,
        GeometryFrom::Spatial(k) => GeometryPlan::Spatial(kept[k]),
        GeometryFrom::Named(k) => GeometryPlan::Named { source: kept[k], reading: mappings[kept[k]].reading },
        GeometryFrom::LatLon { lat, lon } => GeometryPlan::LatLon { lat: reading(lat), lon: reading(lon) },
    };
    RowPlan { id: shape.id.map(reading), geometry, fields, companion: shape.companion.is_some(), encoding }
}

pub async fn load(ctx: &LoadContext<'_>, job: &ConnectorJob<'_>) -> Result<LoadedLayer, ImportError> {
    let c = &job.connection;
    let mut source =
        connect::mysql(&job.env.policy, c, job.env.connect_timeout).await.map_err(SourceError::into_import_error)?;
    let progress = source.progress();
    let fail = |e: &sqlx::Error| source_read_error(c, e, &progress);
    let conn = &mut source.conn;
    let zone = source_zone(conn).await.map_err(|e| fail(&e))?;
    conn.execute("START TRANSACTION READ ONLY").await.map_err(|e| fail(&e))?;
    let (sql, limited_in_sql) = select_sql(job);
    let described = describe(conn, &sql).await.map_err(|e| fail(&e))?;
    let declared = declarations(conn, &described).await;
    let encoding = job.spec.encoding.as_deref().and_then(super::text::encoding_for);
    if encoding.is_some() {
        // The values as stored, undecoded: the parameter says their real encoding.
        conn.execute("SET character_set_results = binary").await.map_err(|e| fail(&e))?;
    }
    let mappings: Vec<Mapping> = described
        .iter()
        .map(|col| columns::map(&col.wire, col.origin.as_ref().and_then(|o| declared.get(o)), &zone))
        .collect();
    let kept = chosen_columns(job, &described)?;
    let sources: Vec<SourceColumn> =
        kept.iter().map(|&i| SourceColumn { name: described[i].name.clone(), role: mappings[i].role }).collect();
    let shape = shape::shape(&sources, ctx.type_guessing);

    let mut table_columns = Vec::new();
    let mut fields = Vec::new();
    let mut finishing = Finishing { companion: shape.companion.clone(), ..Default::default() };
    for (k, &i) in kept.iter().enumerate() {
        if !shape.is_data(k) {
            continue;
        }
        let name = shape.names[k].clone();
        if let (Reading::DateTime { offset: None }, SourceZone::Named(z)) = (mappings[i].reading, &zone) {
            if zone_known(ctx, z).await {
                finishing.zoned_timestamps.push((name.clone(), z.clone()));
            } else {
                tracing::warn!(zone = %z, column = %name, "the source's time zone is unknown here; DATETIME kept as local time");
                finishing.unzoned_datetimes.push((name.clone(), z.clone()));
            }
        }
        table_columns.push(TableColumn { name: name.clone(), pg_type: mappings[i].pg_type.clone() });
        fields.push(Field { source: i, reading: mappings[i].reading, name });
    }
    if let Some(companion) = &shape.companion {
        table_columns.push(TableColumn { name: companion.clone(), pg_type: PgType::Text });
    }
    finishing.retyped = retyped(job, &described, &kept, &shape.names);
    let plan = row_plan(&shape, &kept, &mappings, fields, encoding);
    tracing::info!(columns = table_columns.len(), limited_in_sql, "reading from MySQL");

    let staging = StagingTable::new(ctx.job_id, ctx.attempt, 0, table_columns);
    let (sender, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let limit = job.max_rows;
    let connection = c.clone();
    let producer = tokio::spawn(async move {
        let result = produce(&mut source.conn, &sql, &plan, limit, &sender, &progress).await;
        // Dropped, not closed: after a cut-off read the server may still be sending rows.
        drop(source);
        result.map_err(|e| source_read_error(&connection, &e, &progress))
    });
    load::load(ctx, staging, finishing, chunks, producer, job.table_name.clone(), job.max_rows).await
}

/// The statement to run, and whether it limits its rows itself (a table) or is cut off while reading (a
/// query, which we do not rewrite).
fn select_sql(job: &ConnectorJob<'_>) -> (String, bool) {
    if let Some(q) = &job.spec.sql_query {
        return (clean_query(q), false);
    }
    let table = job.spec.table.as_deref().unwrap_or_default();
    let schema = job.spec.schema.as_deref().or(job.connection.database.as_deref()).unwrap_or_default();
    (format!("SELECT * FROM {}.{} LIMIT {}", quote(schema), quote(table), job.max_rows.saturating_add(1)), true)
}

async fn produce(
    conn: &mut MySqlConnection,
    sql: &str,
    plan: &RowPlan,
    limit: i64,
    sender: &mpsc::Sender<Vec<u8>>,
    progress: &Progress,
) -> Result<Tally, sqlx::Error> {
    let mut tally = Tally::default();
    let mut out = CopyBuffer::new();
    let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(conn);
    while let Some(row) = rows.try_next().await? {
        progress.mark();
        if tally.rows as i64 >= limit {
            tally.truncated = true;
            break;
        }
        tally.rows += 1;
        plan.encode_row(&row, tally.rows as i64, &mut out, &mut tally);
        if out.len() >= CHUNK_BYTES && !load::send(sender, out.take()).await {
            // The COPY failed; its error is the one to report.
            return Ok(tally);
        }
    }
    drop(rows);
    load::send(sender, out.finish()).await;
    Ok(tally)
}

/// The source's zone for DATETIME values: the server's default, as its clients see it.
async fn source_zone(conn: &mut MySqlConnection) -> Result<SourceZone, sqlx::Error> {
    let row: MySqlRow = sqlx::query("SELECT @@global.time_zone, @@system_time_zone").fetch_one(conn).await?;
    Ok(SourceZone::parse(&text_at(&row, 0).unwrap_or_default(), &text_at(&row, 1).unwrap_or_default()))
}

fn text_at(row: &MySqlRow, i: usize) -> Option<String> {
    row.try_get_unchecked::<Option<&[u8]>, _>(i).ok().flatten().map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Declarations of the table columns behind the result. A source that hides its catalog just gives less
/// precise types (DECIMAL without precision), never a failure.
async fn declarations(
    conn: &mut MySqlConnection,
    columns: &[ResultColumn],
) -> HashMap<(String, String, String), Declared> {
    let mut out = HashMap::new();
    let mut tables: Vec<(String, String)> =
        columns.iter().filter_map(|c| c.origin.as_ref().map(|(s, t, _)| (s.clone(), t.clone()))).collect();
    tables.sort();
    tables.dedup();
    for (schema, table) in tables {
        let rows = sqlx::query(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CAST(NUMERIC_PRECISION AS CHAR), CAST(NUMERIC_SCALE AS CHAR) \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        )
        .bind(&schema)
        .bind(&table)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
        // MariaDB's JSON columns are LONGTEXT checked by json_valid(); MySQL has a real JSON type and no
        // TABLE_NAME in this view, so there the query fails and nothing is lost.
        let checks: Vec<String> = sqlx::query(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
        )
        .bind(&schema)
        .bind(&table)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| text_at(r, 0))
        .collect();
        for row in rows {
            let Some(name) = text_at(&row, 0) else { continue };
            let json_check = format!("json_valid({})", quote(&name));
            let declared = Declared {
                data_type: text_at(&row, 1).unwrap_or_default().to_ascii_lowercase(),
                column_type: text_at(&row, 2).unwrap_or_default().to_ascii_lowercase(),
                precision: text_at(&row, 3).and_then(|p| p.parse().ok()),
                scale: text_at(&row, 4).and_then(|s| s.parse().ok()),
                is_json: checks.iter().any(|c| c.contains(&json_check)),
            };
            out.insert((schema.clone(), table.clone(), name), declared);
        }
    }
    out
}

/// The result columns to import: all, or those the `columns` parameter names, in its order.
fn chosen_columns(job: &ConnectorJob<'_>, described: &[ResultColumn]) -> Result<Vec<usize>, ImportError> {
    pick_columns(job, &described.iter().map(|c| c.name.as_str()).collect::<Vec<_>>())
}

fn retyped(
    job: &ConnectorJob<'_>,
    described: &[ResultColumn],
    kept: &[usize],
    finals: &[String],
) -> Vec<(String, String)> {
    retyped_columns(job, &described.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), kept, finals)
}

/// Whether PostgreSQL knows a zone name (or abbreviation) to apply it.
async fn zone_known(ctx: &LoadContext<'_>, zone: &str) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) \
         OR EXISTS (SELECT 1 FROM pg_timezone_abbrevs WHERE abbrev = $1)",
    )
    .bind(zone)
    .fetch_one(ctx.pool)
    .await
    .unwrap_or(false)
}
