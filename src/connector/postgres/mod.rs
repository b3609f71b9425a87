//! Reading from PostgreSQL: the fast path of the reference's PostgreSQL connector. The source runs
//! `COPY (SELECT ...) TO STDOUT (FORMAT binary)` and its stream is re-framed on the fly into our staging
//! table's COPY (see [`transcode`]): values cross unchanged, so types are kept as the source declares them
//! (`numeric(10,2)`, arrays, `jsonb`, PostGIS `geometry` and `geography`).
//!
//! Types that exist only in the source database (enums, domains, extension types other than PostGIS's,
//! composites) would not be understood by ours in binary form, so they are cast to text on the source.
//! The read is one READ ONLY, REPEATABLE READ transaction: a consistent snapshot, and no writes.

pub mod transcode;

use futures_util::StreamExt;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Column, Executor, SqlSafeStr, Statement};
use tokio::sync::mpsc;

use self::transcode::{Binary, Frame, Geometry, Transcoder};
use super::connect::{self, SourceError};
use super::job::{ConnectorJob, clean_query, pick_columns, retyped_columns, source_read_error};
use super::load::{self, Finishing, Tally};
use super::relay::Progress;
use super::shape::{self, GeometryFrom, Role, SourceColumn};
use crate::db::quote_ident;
use crate::errors::{ImportError, codes};
use crate::load::copy::CHUNKS_IN_FLIGHT;
use crate::load::table::{PgType, StagingTable, TableColumn};
use crate::load::{LoadContext, LoadedLayer};

/// What the source's catalog says of a result column's type. Only numbers cross into our SQL: the type's
/// OID and modifier are looked up in our own catalog (see [`local_types`]); the source's type *names* are
/// only compared, never written into a statement, since a hostile source (or a proxy in front of a real
/// one) can answer anything.
#[derive(Debug, Clone, sqlx::FromRow)]
struct RemoteType {
    oid: i64,
    /// The column's modifier (-1 when it has none, or the column is computed).
    typmod: i32,
    typname: String,
    /// For arrays, the element type.
    elem: i64,
}

/// Built-in types (their OIDs are fixed in every PostgreSQL) whose binary form our server reads as the
/// source writes it, with how we use them. Anything else is cast to text on the source.
const BUILTINS: &[(i64, Role, Binary)] = &[
    (16, Role::Other, Binary::Other),      // boolean
    (17, Role::Bytes, Binary::Bytea),      // bytea
    (19, Role::Text, Binary::Text),        // name
    (20, Role::Integer, Binary::Int8),     // bigint
    (21, Role::Integer, Binary::Int2),     // smallint
    (23, Role::Integer, Binary::Int4),     // integer
    (25, Role::Text, Binary::Text),        // text
    (114, Role::Other, Binary::Other),     // json
    (142, Role::Other, Binary::Other),     // xml
    (600, Role::Other, Binary::Other),     // point
    (601, Role::Other, Binary::Other),     // lseg
    (602, Role::Other, Binary::Other),     // path
    (603, Role::Other, Binary::Other),     // box
    (604, Role::Other, Binary::Other),     // polygon
    (628, Role::Other, Binary::Other),     // line
    (650, Role::Other, Binary::Other),     // cidr
    (700, Role::Number, Binary::Float4),   // real
    (701, Role::Number, Binary::Float8),   // double precision
    (718, Role::Other, Binary::Other),     // circle
    (774, Role::Other, Binary::Other),     // macaddr8
    (790, Role::Other, Binary::Other),     // money
    (829, Role::Other, Binary::Other),     // macaddr
    (869, Role::Other, Binary::Other),     // inet
    (1042, Role::Text, Binary::Text),      // character(n)
    (1043, Role::Text, Binary::Text),      // character varying(n)
    (1082, Role::Other, Binary::Other),    // date
    (1083, Role::Other, Binary::Other),    // time
    (1114, Role::Other, Binary::Other),    // timestamp
    (1184, Role::Other, Binary::Other),    // timestamptz
    (1186, Role::Other, Binary::Other),    // interval
    (1266, Role::Other, Binary::Other),    // timetz
    (1560, Role::Other, Binary::Other),    // bit(n)
    (1562, Role::Other, Binary::Other),    // bit varying(n)
    (1700, Role::Number, Binary::Numeric), // numeric(p,s)
    (2950, Role::Other, Binary::Other),    // uuid
    (3802, Role::Other, Binary::Other),    // jsonb
    (3904, Role::Other, Binary::Other),    // int4range
    (3906, Role::Other, Binary::Other),    // numrange
    (3908, Role::Other, Binary::Other),    // tsrange
    (3910, Role::Other, Binary::Other),    // tstzrange
    (3912, Role::Other, Binary::Other),    // daterange
    (3926, Role::Other, Binary::Other),    // int8range
];

/// The type a column gets in our database, named by numbers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalType {
    /// A built-in type, by OID, with its modifier.
    Builtin(i64, i32),
    /// An array of a built-in element type.
    ArrayOf(i64, i32),
    /// PostGIS's types, whose OIDs differ between databases; the modifier encodes type and SRID.
    Geometry(i32),
    Geography(i32),
    Text,
}

impl LocalType {
    fn code(self) -> (&'static str, i64, i32) {
        match self {
            LocalType::Builtin(oid, m) => ("b", oid, m),
            LocalType::ArrayOf(elem, m) => ("a", elem, m),
            LocalType::Geometry(m) => ("g", 0, m),
            LocalType::Geography(m) => ("G", 0, m),
            LocalType::Text => ("b", 25, -1),
        }
    }
}

/// How one column is read and created.
struct Mapping {
    role: Role,
    local: LocalType,
    binary: Binary,
    /// Cast to text on the source (a type our database would not understand).
    as_text: bool,
}

fn builtin(oid: i64) -> Option<(Role, Binary)> {
    BUILTINS.iter().find(|(o, _, _)| *o == oid).map(|(_, role, binary)| (*role, *binary))
}

fn classify(t: &RemoteType) -> Mapping {
    // The source says which column holds PostGIS values; our own PostGIS reads (and checks) the EWKB.
    if t.typname == "geometry" || t.typname == "geography" {
        let local =
            if t.typname == "geometry" { LocalType::Geometry(t.typmod) } else { LocalType::Geography(t.typmod) };
        return Mapping { role: Role::Spatial, local, binary: Binary::Geometry, as_text: false };
    }
    if let Some((role, binary)) = builtin(t.oid) {
        return Mapping { role, local: LocalType::Builtin(t.oid, t.typmod), binary, as_text: false };
    }
    if t.elem != 0 && builtin(t.elem).is_some() && t.oid < FIRST_NORMAL_OID {
        return Mapping {
            role: Role::Other,
            local: LocalType::ArrayOf(t.elem, t.typmod),
            binary: Binary::Other,
            as_text: false,
        };
    }
    Mapping { role: Role::Text, local: LocalType::Text, binary: Binary::Text, as_text: true }
}

/// OIDs below this belong to PostgreSQL itself (`FirstNormalObjectId`); the same in every server.
const FIRST_NORMAL_OID: i64 = 16384;

/// Our catalog's names for `types`: `format_type` of our own OIDs and the integer modifiers.
async fn local_types(pool: &sqlx::PgPool, types: &[LocalType]) -> Result<Vec<PgType>, ImportError> {
    let (kinds, (oids, mods)): (Vec<&str>, (Vec<i64>, Vec<i32>)) =
        types.iter().map(|t| t.code()).map(|(k, o, m)| (k, (o, m))).unzip();
    let names: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT format_type(CASE t.k WHEN 'a' THEN (SELECT typarray FROM pg_type WHERE oid = t.o::oid) \
                                     WHEN 'g' THEN 'geometry'::regtype::oid \
                                     WHEN 'G' THEN 'geography'::regtype::oid \
                                     ELSE t.o::oid END, t.m) \
         FROM unnest($1::text[], $2::int8[], $3::int4[]) WITH ORDINALITY AS t(k, o, m, i) ORDER BY t.i",
    )
    .bind(&kinds)
    .bind(&oids)
    .bind(&mods)
    .fetch_all(pool)
    .await
    .map_err(|e| ImportError::unknown(format!("naming the source's types: {e}")))?;
    names
        .into_iter()
        .map(|n| {
            n.map(PgType::Raw)
                .ok_or_else(|| ImportError::new(codes::CONNECTOR_ERROR, "a source type has no equivalent here"))
        })
        .collect()
}

/// The name, type and origin (table and column) of each column of the query's result.
async fn describe(conn: &mut PgConnection, inner: &str) -> Result<Vec<(String, i64, i64, i32)>, sqlx::Error> {
    let statement = conn.prepare(AssertSqlSafe(inner.to_string()).into_sql_str()).await?;
    Ok(statement
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
        .collect())
}

fn check_unique_names(names: &[&str]) -> Result<(), ImportError> {
    match names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)) {
        Some((_, dup)) => Err(ImportError::new(
            codes::CONNECTOR_ERROR,
            format!("the query returns two columns named '{dup}': give them different names with AS"),
        )),
        None => Ok(()),
    }
}

/// What the COPY reads and how its rows are re-framed.
struct CopyPlan {
    /// The SELECT list over the query's result (`geoimport_source`).
    select: Vec<String>,
    /// The staging table's data columns, typed once `locals` are looked up in our database.
    table_columns: Vec<TableColumn>,
    locals: Vec<LocalType>,
    frame: Frame,
}

/// Plans the COPY of the `kept` columns of a result named `names`, shaped as `shape`.
fn plan_copy(names: &[&str], mappings: &[Mapping], kept: &[usize], shape: &shape::Shape, max_rows: i64) -> CopyPlan {
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
    let mut locals = Vec::new();
    let mut data_position = Vec::new();
    for (k, &i) in kept.iter().enumerate() {
        if shape.is_data(k) {
            data_position.push(Some(table_columns.len()));
            select.push(column(i));
            table_columns.push(TableColumn { name: shape.names[k].clone(), pg_type: PgType::Text });
            locals.push(mappings[i].local);
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
        max_rows: max_rows as u64,
    };
    CopyPlan { select, table_columns, locals, frame }
}

pub async fn load(ctx: &LoadContext<'_>, job: &ConnectorJob<'_>) -> Result<LoadedLayer, ImportError> {
    let c = &job.connection;
    let mut source =
        connect::postgres(&job.env.policy, c, job.env.connect_timeout).await.map_err(SourceError::into_import_error)?;
    let progress = source.progress();
    let fail = |e: &sqlx::Error| source_read_error(c, e, &progress);
    let conn = &mut source.conn;
    conn.execute("START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(|e| fail(&e))?;
    let inner = match &job.spec.sql_query {
        Some(q) => clean_query(q),
        None => format!(
            "SELECT * FROM {}.{}",
            quote_ident(job.spec.schema.as_deref().unwrap_or("public")),
            quote_ident(job.spec.table.as_deref().unwrap_or_default())
        ),
    };
    let described = describe(conn, &inner).await.map_err(|e| fail(&e))?;
    let names: Vec<&str> = described.iter().map(|d| d.0.as_str()).collect();
    check_unique_names(&names)?;
    let types = remote_types(conn, &described).await.map_err(|e| fail(&e))?;
    let mappings: Vec<Mapping> = types.iter().map(classify).collect();
    let kept = pick_columns(job, &names)?;
    let sources: Vec<SourceColumn> =
        kept.iter().map(|&i| SourceColumn { name: names[i].to_string(), role: mappings[i].role }).collect();
    let shape = shape::shape(&sources, ctx.type_guessing);

    let CopyPlan { select, mut table_columns, locals, frame } =
        plan_copy(&names, &mappings, &kept, &shape, job.max_rows);
    for (column, pg_type) in table_columns.iter_mut().zip(local_types(ctx.pool, &locals).await?) {
        column.pg_type = pg_type;
    }
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
        let progress = source.progress();
        let result = produce(&mut source.conn, &copy, frame, &sender, &progress).await;
        drop(source);
        result.map_err(|e| match e {
            Produce::Source(e) => source_read_error(&connection, &e, &progress),
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
    progress: &Progress,
) -> Result<Tally, Produce> {
    let mut stream = conn.copy_out_raw(copy).await.map_err(Produce::Source)?;
    let mut transcoder = Transcoder::new(frame);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Produce::Source)?;
        // What sqlx held is now in the transcoder, which bounds its own buffer.
        progress.mark();
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

/// The source catalog's view of each result column's type: its OID (the declared type of a table column,
/// so that domains show as domains), its modifier, its name (only compared) and an array's element.
async fn remote_types(
    conn: &mut PgConnection,
    described: &[(String, i64, i64, i32)],
) -> Result<Vec<RemoteType>, sqlx::Error> {
    let types: Vec<i64> = described.iter().map(|d| d.1).collect();
    let relations: Vec<i64> = described.iter().map(|d| d.2).collect();
    let attnums: Vec<i32> = described.iter().map(|d| d.3).collect();
    sqlx::query_as(
        "SELECT t.oid::int8 AS oid, coalesce(a.atttypmod, -1)::int4 AS typmod, t.typname::text AS typname, \
                (CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0 END)::int8 AS elem \
         FROM unnest($1::int8[], $2::int8[], $3::int4[]) WITH ORDINALITY AS c(typ, rel, num, i) \
         LEFT JOIN pg_attribute a ON a.attrelid = c.rel::oid AND a.attnum = c.num AND NOT a.attisdropped \
              AND c.rel <> 0 \
         JOIN pg_type t ON t.oid = coalesce(a.atttypid, c.typ::oid) \
         ORDER BY c.i",
    )
    .bind(types)
    .bind(relations)
    .bind(attnums)
    .fetch_all(conn)
    .await
}
