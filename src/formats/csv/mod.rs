//! Delimited text (`.csv`, `.tsv`, `.txt`): sniff the dialect, scan every row to guess types, then stream
//! the rows again as binary COPY into a staging table. Memory stays flat whatever the file's size: both
//! passes read record by record, and at most a few COPY chunks are in flight.

mod encode;
mod plan;
mod reader;
mod scan;
mod sniff;

use std::path::{Path, PathBuf};

use sqlx::Connection;
use tokio::sync::mpsc;

use crate::errors::{ImportError, codes};
use crate::load::copy::{CHUNKS_IN_FLIGHT, CopyFailure, stream_copy};
use crate::load::names::table_name_for_file;
use crate::load::table::{IdOutcome, StagingTable};
use crate::load::{LoadContext, LoadedLayer};
use crate::queue::ImportState;

pub use plan::GuessOptions;

/// Whether the first bytes of a file read as text in some encoding (what a delimited file must be).
pub fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let encoding = sniff::detect_encoding(head, false);
    let (text, _, _) = encoding.decode(head);
    !sniff::looks_binary(&text)
}

/// Extensions read as delimited text.
pub const EXTENSIONS: &[&str] = &["csv", "tsv", "txt"];

/// Loads the delimited file at `path` (named `file_name` by the client) into a staging table.
pub async fn load(ctx: &LoadContext<'_>, path: &Path, file_name: &str) -> Result<LoadedLayer, ImportError> {
    let extension = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let max_rows = ctx.user.max_rows_per_table;
    let source: PathBuf = path.to_path_buf();
    let (dialect, scan) = blocking(move || {
        let mut dialect = sniff::sniff(&source, &extension)?;
        if let scan::ScanResult::Done(s) = scan::scan(&source, &dialect, max_rows)? {
            return Ok((dialect, s));
        }
        dialect.encoding = scan::detect_encoding_of_whole_file(&source)?;
        tracing::info!(encoding = dialect.encoding.name(), "not UTF-8 after all; scanning again");
        match scan::scan(&source, &dialect, max_rows)? {
            scan::ScanResult::Done(s) => Ok((dialect, s)),
            scan::ScanResult::NotUtf8 => Err(ImportError::new(codes::ENCODING_DETECTION, "the text is not UTF-8")),
        }
    })
    .await?;
    tracing::info!(
        encoding = dialect.encoding.name(),
        delimiter = %(dialect.delimiter as char).escape_default(),
        rows = scan.rows,
        columns = scan.headers.len(),
        "scanned"
    );
    let options = GuessOptions { type_guessing: ctx.type_guessing, quoted_fields_guessing: ctx.quoted_fields_guessing };
    let plan = plan::plan(&scan, &dialect.quoted_columns, options);

    ctx.state.send_replace(ImportState::Importing);
    let staging = StagingTable::new(ctx.job_id, ctx.attempt, 0, plan.columns.clone());
    let mut conn = ctx.pool.acquire().await.map_err(load_error)?;
    let mut tx = conn.begin().await.map_err(load_error)?;
    staging.create(&mut tx).await.map_err(load_error)?;
    let (sender, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let source = path.to_path_buf();
    let encode_plan = plan.clone();
    let producer = tokio::task::spawn_blocking(move || encode::encode_rows(&source, &dialect, &encode_plan, sender));
    let (encoded, copied) = stream_copy(&mut tx, &staging.copy_sql(), chunks, producer, panicked).await.map_err(
        |failure| match failure {
            CopyFailure::Producer(e) => e,
            CopyFailure::Database(e) => load_error(e),
        },
    )?;
    tx.commit().await.map_err(load_error)?;
    let ids = staging.build_indexes(ctx.pool).await.map_err(load_error)?;

    let mut warnings = serde_json::Map::new();
    if !plan.invalid_values.is_empty() {
        let counts: serde_json::Map<_, _> =
            plan.invalid_values.iter().map(|(c, n)| (c.clone(), serde_json::json!(n))).collect();
        warnings.insert("invalid_values".into(), counts.into());
    }
    if scan.short_rows > 0 {
        warnings.insert("short_rows".into(), scan.short_rows.into());
    }
    if let IdOutcome::Renumbered { kept_as } = ids {
        warnings.insert("cartodb_id_renumbered".into(), kept_as.into());
    }
    tracing::info!(rows = copied, with_geometry = encoded.rows_with_geometry, "loaded");
    Ok(LoadedLayer { staging, proposed_name: table_name_for_file(file_name), rows: copied as i64, warnings })
}

/// Runs blocking file work off the async threads; a panic there fails this import only.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImportError> + Send + 'static,
) -> Result<T, ImportError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(panicked(e)))
}

fn panicked(e: tokio::task::JoinError) -> ImportError {
    ImportError::unknown(format!("the reader stopped unexpectedly: {e}"))
}

/// A database error while loading rows.
pub fn load_error(e: sqlx::Error) -> ImportError {
    let detail = match e.as_database_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    let timed_out = e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "57014");
    if timed_out {
        ImportError::new(codes::TIMED_OUT, detail)
    } else {
        ImportError::new(codes::UNABLE_TO_LOAD, format!("the database refused the data: {detail}"))
    }
}
