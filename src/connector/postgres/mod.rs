//! Reading from PostgreSQL: the fast path of the reference's PostgreSQL connector. The source runs
//! `COPY (SELECT ...) TO STDOUT (FORMAT binary)` and its stream is re-framed on the fly into our staging
//! table's COPY (see [`transcode`]): values cross unchanged, so types are kept as the source declares them
//! (`numeric(10,2)`, arrays, `jsonb`, PostGIS `geometry` and `geography`).
//!
//! Types that exist only in the source database (enums, domains, extension types other than PostGIS's,
//! composites) would not be understood by ours in binary form, so they are cast to text on the source.
//! The read is one READ ONLY, REPEATABLE READ transaction: a consistent snapshot, and no writes.

mod transcode;

use futures_util::StreamExt;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Column, Executor, SqlSafeStr, Statement};
use tokio::sync::mpsc;

use self::transcode::{Binary, Frame, Geometry, Transcoder};
use super::connect::{self, SourceError};
use super::load::{self, Finishing, Tally};
use super::shape::{self, GeometryFrom, Role, SourceColumn};
use super::{ConnectorJob, clean_query, pick_columns, retyped_columns};
use crate::db::quote_ident;
use crate::errors::{ImportError, codes};
use crate::load::copy::CHUNKS_IN_FLIGHT;
use crate::load::table::{PgType, StagingTable, TableColumn};
use crate::load::{LoadContext, LoadedLayer};

/// What the source's catalog says of a result column's type.
#[derive(Debug, Clone, sqlx::FromRow)]
struct RemoteType {
    /// `format_type` with the column's modifier when it comes from a table: `numeric(10,2)`.
    format: String,
    typname: String,
    /// `b`ase, `e`num, `d`omain, `p`seudo, `c`omposite, `r`ange...
    typtype: String,
    /// The type (and an array's element) ship with PostgreSQL, so both servers read its binary form.
    builtin: bool,
}

/// How one column is read and created.
struct Mapping {
    role: Role,
    pg_type: PgType,
    binary: Binary,
    /// Cast to text on the source (a type our database would not understand).
    as_text: bool,
}

fn classify(t: &RemoteType) -> Mapping {
    let keep = |role, binary| Mapping { role, pg_type: PgType::Raw(t.format.clone()), binary, as_text: false };
    if t.typname == "geometry" || t.typname == "geography" {
        // Drop a schema qualification: PostGIS may live in another schema here than there.
        let modifier = t.format.find('(').map_or("", |i| &t.format[i..]);
        let pg_type = PgType::Raw(format!("{}{modifier}", t.typname));
        return Mapping { role: Role::Spatial, pg_type, binary: Binary::Geometry, as_text: false };
    }
    if !t.builtin || !matches!(t.typtype.as_str(), "b" | "r" | "m") {
        return Mapping { role: Role::Text, pg_type: PgType::Text, binary: Binary::Text, as_text: true };
    }
    match t.typname.as_str() {
        "int2" => keep(Role::Integer, Binary::Int2),
        "int4" => keep(Role::Integer, Binary::Int4),
        "int8" => keep(Role::Integer, Binary::Int8),
        "float4" => keep(Role::Number, Binary::Float4),
        "float8" => keep(Role::Number, Binary::Float8),
        "numeric" => keep(Role::Number, Binary::Numeric),
        "text" | "varchar" | "bpchar" | "name" => keep(Role::Text, Binary::Text),
        "bytea" => keep(Role::Bytes, Binary::Bytea),
        _ => keep(Role::Other, Binary::Other),
    }
}

pub async fn load(ctx: &LoadContext<'_>, job: &ConnectorJob) -> Result<LoadedLayer, ImportError> {
    let c = &job.connection;
    let fail = |e: &sqlx::Error| connect::query_error(c, e).into_import_error();
    let mut conn =
        connect::postgres(&job.policy, c, job.connect_timeout).await.map_err(SourceError::into_import_error)?;
    conn.execute("START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(|e| fail(&e))?;
    let inner = match &job.spec.sql_query {
        Some(q) => clean_query(q),
        None => format!(
            "SELECT * FROM {}.{}",
            quote_ident(job.spec.schema.as_deref().unwrap_or("public")),
            quote_ident(job.spec.table.as_deref().unwrap_or_default())
        ),
    };
    let described: Vec<(String, i64, i64, i32)> = {
        let statement = conn.prepare(AssertSqlSafe(inner.clone()).into_sql_str()).await.map_err(|e| fail(&e))?;
        statement
            .columns()
            .iter()
            .map(|col| {
                (
                    col.name().to_string(),
                    col.type_info().oid().map_or(0, |o| i64::from(o.0)),
                    col.relation_id().map_or(0, |o| i64::from(o.0)),
                    col.relation_attribute_no().map_or(0, i32::from),
                )
            })
            .collect()
    };
    let names: Vec<&str> = described.iter().map(|d| d.0.as_str()).collect();
    if let Some(dup) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)).map(|(_, n)| n) {
        return Err(ImportError::new(
            codes::CONNECTOR_ERROR,
            format!("the query returns two columns named '{dup}': give them different names with AS"),
        ));
    }
    let types = remote_types(&mut conn, &described).await.map_err(|e| fail(&e))?;
    let mappings: Vec<Mapping> = types.iter().map(classify).collect();
    let kept = pick_columns(job, &names)?;
    let sources: Vec<SourceColumn> =
        kept.iter().map(|&i| SourceColumn { name: names[i].to_string(), role: mappings[i].role }).collect();
    let shape = shape::shape(&sources, ctx.type_guessing);

    let column = |i: usize| {
        let c = format!("geoimport_source.{}", quote_ident(names[i]));
        if mappings[i].as_text { format!("{c}::text") } else { c }
    };
    let mut select = Vec::new();
    if let Some(k) = shape.id {
        select.push(column(kept[k]));
    }
    let geometry = match shape.geometry {
        GeometryFrom::Spatial(k) => {
            let g = format!("{}::geometry", column(kept[k]));
            // Reprojected on the source only when we cannot do it ourselves (EPSG:4326 and 3857 we can).
            select.push(format!(
                "CASE WHEN ST_SRID({g}) IN (0, 4326, 3857, 900913) THEN {g} ELSE ST_Transform({g}, 4326) END"
            ));
            Geometry::Field(Binary::Geometry)
        }
        GeometryFrom::Named(k) => {
            select.push(column(kept[k]));
            Geometry::Field(mappings[kept[k]].binary)
        }
        _ => Geometry::None,
    };
    let mut table_columns = Vec::new();
    let mut data_position = Vec::new();
    for (k, &i) in kept.iter().enumerate() {
        if shape.is_data(k) {
            data_position.push(Some(table_columns.len()));
            select.push(column(i));
            table_columns.push(TableColumn { name: shape.names[k].clone(), pg_type: mappings[i].pg_type.clone() });
        } else {
            data_position.push(None);
        }
    }
    let geometry = match shape.geometry {
        GeometryFrom::LatLon { lat, lon } => match (data_position[lat], data_position[lon]) {
            (Some(a), Some(b)) => {
                Geometry::LatLon { lat: (a, mappings[kept[lat]].binary), lon: (b, mappings[kept[lon]].binary) }
            }
            _ => Geometry::None,
        },
        _ => geometry,
    };
    let frame = Frame {
        id: shape.id.map(|k| mappings[kept[k]].binary),
        geometry,
        data_fields: table_columns.len(),
        companion: shape.companion.is_some(),
        max_rows: job.max_rows as u64,
    };
    if let Some(companion) = &shape.companion {
        table_columns.push(TableColumn { name: companion.clone(), pg_type: PgType::Text });
    }
    let select = if select.is_empty() { "NULL".to_string() } else { select.join(", ") };
    let copy = format!(
        "COPY (SELECT {select} FROM ({inner}) AS geoimport_source LIMIT {}) TO STDOUT (FORMAT binary)",
        job.max_rows.saturating_add(1)
    );
    let finishing = Finishing {
        companion: shape.companion.clone(),
        retyped: retyped_columns(job, &names, &kept, &shape.names),
        ..Default::default()
    };
    tracing::info!(columns = table_columns.len(), "reading from PostgreSQL");

    let staging = StagingTable::new(ctx.job_id, ctx.attempt, 0, table_columns);
    let (sender, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let connection = c.clone();
    let producer = tokio::spawn(async move {
        let result = produce(&mut conn, &copy, frame, &sender).await;
        drop(conn);
        result.map_err(|e| match e {
            Produce::Source(e) => connect::query_error(&connection, &e).into_import_error(),
            Produce::Stream(e) => e,
        })
    });
    load::load(ctx, staging, finishing, chunks, producer, job.table_name.clone(), job.max_rows).await
}

enum Produce {
    Source(sqlx::Error),
    Stream(ImportError),
}

async fn produce(
    conn: &mut PgConnection,
    copy: &str,
    frame: Frame,
    sender: &mpsc::Sender<Vec<u8>>,
) -> Result<Tally, Produce> {
    let mut stream = conn.copy_out_raw(copy).await.map_err(Produce::Source)?;
    let mut transcoder = Transcoder::new(frame);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Produce::Source)?;
        if let Some(ready) = transcoder.feed(&chunk).map_err(Produce::Stream)?
            && !load::send(sender, ready).await
        {
            // The COPY failed; its error is the one to report.
            return Ok(transcoder.tally);
        }
    }
    drop(stream);
    let (last, tally) = transcoder.finish().map_err(Produce::Stream)?;
    load::send(sender, last).await;
    Ok(tally)
}

/// The source catalog's view of each result column's type (with its modifier when the column comes
/// straight from a table).
async fn remote_types(
    conn: &mut PgConnection,
    described: &[(String, i64, i64, i32)],
) -> Result<Vec<RemoteType>, sqlx::Error> {
    let types: Vec<i64> = described.iter().map(|d| d.1).collect();
    let relations: Vec<i64> = described.iter().map(|d| d.2).collect();
    let attnums: Vec<i32> = described.iter().map(|d| d.3).collect();
    sqlx::query_as(
        "SELECT format_type(t.oid, CASE WHEN a.attnum IS NULL THEN NULL ELSE a.atttypmod END) AS format, \
                t.typname::text AS typname, t.typtype::text AS typtype, \
                (t.oid < 16384 AND coalesce(e.oid < 16384, true)) AS builtin \
         FROM unnest($1::int8[], $2::int8[], $3::int4[]) WITH ORDINALITY AS c(typ, rel, num, i) \
         LEFT JOIN pg_attribute a ON a.attrelid = c.rel::oid AND a.attnum = c.num AND NOT a.attisdropped \
              AND c.rel <> 0 \
         JOIN pg_type t ON t.oid = coalesce(a.atttypid, c.typ::oid) \
         LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' \
         ORDER BY c.i",
    )
    .bind(types)
    .bind(relations)
    .bind(attnums)
    .fetch_all(conn)
    .await
}
